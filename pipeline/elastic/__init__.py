"""Elasticsearch side of socpipe: client, templates/setup, alert and event indexers, triage."""

from pipeline.elastic.client import connect
from pipeline.elastic.indexer import AlertIndexer, EventIndexer, IndexResult, error_reason, item_outcome
from pipeline.elastic.setup import SetupReport, setup

__all__ = [
    "AlertIndexer",
    "EventIndexer",
    "IndexResult",
    "SetupReport",
    "connect",
    "error_reason",
    "item_outcome",
    "setup",
]
