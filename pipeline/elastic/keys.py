"""Least-privilege API keys, one per socpipe service (`socpipe es api-key create SERVICE`).

Each service gets only what its code does (pure role descriptors here, tested alone):

* detector — creates alert documents (`create_doc`, `create_index` for the next daily index), reads
  alerts and updates them (`index`: Elasticsearch has no update-only privilege; the detector folds
  suppressed repeats into the open alert's count); the same on incidents (it groups alerts into them);
  optionally creates event documents. No delete, no mapping or template change, no other index.
* triage — reads and updates alerts and incidents (workflow changes with if_seq_no); cannot create
  indices, delete, or touch events or templates.
* setup — installs index templates and ILM policies, and puts the current mapping onto existing
  socpipe indices (`manage` on them: Elasticsearch grants put-mapping with nothing narrower, and
  `manage` also allows deleting those indices, as retention without ILM does); reads no document.

Creating keys needs a user with `manage_api_key` (or `manage_own_api_key`); the key inherits at most the
creator's privileges, limited by these descriptors.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

SERVICES = ("detector", "triage", "setup")


def role_descriptors(service: str, prefix: str = "socpipe") -> dict[str, Any]:
    """The API key's role for `service` over indices named `<prefix>-alerts-*` / `<prefix>-events-*`."""
    alerts, events, incidents = f"{prefix}-alerts-*", f"{prefix}-events-*", f"{prefix}-incidents-*"
    role: dict[str, list[Any]]
    if service == "detector":
        role = {
            "cluster": [],
            "indices": [
                {"names": [alerts, incidents], "privileges": ["create_doc", "create_index", "read", "index"]},
                {"names": [events], "privileges": ["create_doc", "create_index"]},
            ],
        }
    elif service == "triage":
        role = {"cluster": [], "indices": [{"names": [alerts, incidents], "privileges": ["read", "index"]}]}
    elif service == "setup":
        role = {
            "cluster": ["manage_index_templates", "manage_ilm", "monitor"],
            "indices": [{"names": [alerts, events, incidents], "privileges": ["manage"]}],
        }
    else:
        raise ValueError(f"unknown service {service!r} (known: {', '.join(SERVICES)})")
    return {f"socpipe-{service}": role}


def create_key(
    es: Elasticsearch, service: str, prefix: str = "socpipe", expiration: str | None = None
) -> dict[str, Any]:
    """A new API key for `service`: {"id", "name", "encoded"} (`encoded` is what SOCPIPE_ES_API_KEY takes)."""
    kw: dict[str, Any] = {"name": f"socpipe-{service}-{prefix}", "role_descriptors": role_descriptors(service, prefix)}
    if expiration:
        kw["expiration"] = expiration
    resp = es.security.create_api_key(**kw)
    return {"id": resp["id"], "name": resp["name"], "encoded": resp["encoded"]}
