"""Least-privilege roles per service (pure): what each credential may do, and the stack's roles.yml."""

from __future__ import annotations

import pytest
import yaml

from pipeline.elastic.keys import SERVICES, role_descriptors
from pipeline.stack.elasticsearch_secure import roles_yaml


def _privileges(service: str, prefix: str = "socpipe") -> dict[str, set[str]]:
    (role,) = role_descriptors(service, prefix).values()
    return {name: set(ix["privileges"]) for ix in role["indices"] for name in ix["names"]}


def test_no_service_may_delete_or_manage_indices_or_touch_other_indices():
    for service in SERVICES:
        for pattern, privs in _privileges(service, "p").items():
            assert pattern in ("p-alerts-*", "p-events-*")
            assert not privs & {"all", "delete", "delete_index", "manage", "write"}, (service, privs)


def test_detector_creates_alerts_triage_updates_them_setup_reads_none():
    assert {"create_doc", "create_index"} <= _privileges("detector")["socpipe-alerts-*"]
    assert _privileges("triage") == {"socpipe-alerts-*": {"read", "index"}}
    assert _privileges("setup") == {}
    (setup_role,) = role_descriptors("setup").values()
    assert set(setup_role["cluster"]) == {"manage_index_templates", "manage_ilm", "monitor"}
    with pytest.raises(ValueError, match="unknown service"):
        role_descriptors("kibana")


def test_stack_roles_file_is_the_same_roles():
    roles = yaml.safe_load(roles_yaml())
    assert set(roles) == {f"socpipe-{s}" for s in SERVICES}
    for s in SERVICES:
        assert roles[f"socpipe-{s}"] == role_descriptors(s)[f"socpipe-{s}"]
