"""The one way to get an Elasticsearch client from `ElasticsearchConfig`."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from pipeline.config import ElasticsearchConfig


def connect(cfg: ElasticsearchConfig | None = None, **overrides: Any) -> Elasticsearch:
    """A client; no request is sent until first use (a worker may start while ES is down).

    Transport-level retries are off: the indexer retries itself so it can tell a caller which
    documents are still pending instead of blocking inside the client.
    """
    cfg = cfg or ElasticsearchConfig()
    kw: dict[str, Any] = {"request_timeout": cfg.request_timeout_s, "max_retries": 0, "retry_on_timeout": False}
    if cfg.api_key:
        kw["api_key"] = cfg.api_key
    elif cfg.username:
        kw["basic_auth"] = (cfg.username, cfg.password)
    if cfg.ca_certs:
        kw["ca_certs"] = cfg.ca_certs
    if cfg.url.startswith("https"):
        kw["verify_certs"] = cfg.verify_certs
    kw.update(overrides)
    return Elasticsearch(cfg.url, **kw)
