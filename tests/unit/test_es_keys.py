"""Least-privilege roles per service (pure): what each credential may do, and the stack's roles.yml."""

from __future__ import annotations

import pytest
import yaml

from pipeline.elastic.keys import SERVICES, role_descriptors
from pipeline.stack.elasticsearch_secure import roles_yaml


def _privileges(service: str, prefix: str = "socpipe") -> dict[str, set[str]]:
    (role,) = role_descriptors(service, prefix).values()
    return {name: set(ix["privileges"]) for ix in role["indices"] for name in ix["names"]}


def test_services_touch_only_socpipe_indices_and_only_setup_manages_them():
    for service in SERVICES:
        for pattern, privs in _privileges(service, "p").items():
            assert pattern in ("p-alerts-*", "p-events-*", "p-incidents-*")
            assert "all" not in privs and "delete" not in privs and "write" not in privs, (service, privs)
            if service != "setup":
                assert "manage" not in privs and "delete_index" not in privs, (service, privs)


def test_detector_creates_alerts_triage_updates_them_setup_reads_none():
    assert {"create_doc", "create_index"} <= _privileges("detector")["socpipe-alerts-*"]
    assert {"create_doc", "create_index", "index"} <= _privileges("detector")["socpipe-incidents-*"]  # grouping
    assert _privileges("triage") == {"socpipe-alerts-*": {"read", "index"}, "socpipe-incidents-*": {"read", "index"}}
    # setup manages the indices (put mapping on upgrade) but reads no document
    assert _privileges("setup") == {
        "socpipe-alerts-*": {"manage"},
        "socpipe-events-*": {"manage"},
        "socpipe-incidents-*": {"manage"},
    }
    (setup_role,) = role_descriptors("setup").values()
    assert set(setup_role["cluster"]) == {"manage_index_templates", "manage_ilm", "monitor"}
    with pytest.raises(ValueError, match="unknown service"):
        role_descriptors("kibana")


def test_stack_roles_file_is_the_same_roles():
    roles = yaml.safe_load(roles_yaml())
    assert set(roles) == {f"socpipe-{s}" for s in SERVICES}
    for s in SERVICES:
        assert roles[f"socpipe-{s}"] == role_descriptors(s)[f"socpipe-{s}"]
