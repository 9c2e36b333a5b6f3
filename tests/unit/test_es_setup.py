"""Index templates adapt to what the cluster offers (pure: no server)."""

from __future__ import annotations

from pipeline.config import ElasticsearchConfig
from pipeline.elastic.mappings import ALERT_MAPPINGS, EVENT_MAPPINGS
from pipeline.elastic.setup import Capabilities, template_bodies


def _bodies(caps: Capabilities) -> tuple[dict, dict]:
    bodies = template_bodies(ElasticsearchConfig(), "p", caps)
    return bodies["p-alerts"]["template"], bodies["p-events"]["template"]


def test_minimal_distribution_gets_plain_text_and_no_lifecycle():
    alerts, events = _bodies(Capabilities())
    assert events["mappings"]["properties"]["message"] == {"type": "text"}
    assert "index.lifecycle.name" not in alerts["settings"]
    assert "index.lifecycle.name" not in events["settings"]
    assert alerts["mappings"] == ALERT_MAPPINGS


def test_full_distribution_gets_match_only_text_and_lifecycle():
    alerts, events = _bodies(Capabilities(ilm=True, match_only_text=True))
    assert events["mappings"]["properties"]["message"] == {"type": "match_only_text"}
    assert alerts["settings"]["index.lifecycle.name"] == "p-alerts"
    assert events["settings"]["index.lifecycle.name"] == "p-events"
    # the shared constant is not mutated by the variant
    assert EVENT_MAPPINGS["properties"]["message"] == {"type": "text"}


def test_alert_replicas_follow_the_cluster_size():
    alerts, events = _bodies(Capabilities())
    assert alerts["settings"]["auto_expand_replicas"] == "0-1"
    assert "number_of_replicas" not in alerts["settings"]
    assert events["settings"]["number_of_replicas"] == 0
