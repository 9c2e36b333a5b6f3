"""Real product objects for unit tests that need one but not the rule behind it (so a test never hands
the product a look-alike the type checker cannot vouch for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from detectors.sigma import Engine, load_rules
from detectors.sigma.detection import Detection


def detection(
    alert_id: str,
    dedup_key: str,
    start_ts: float,
    end_ts: float | None = None,
    count: int = 1,
    evidence: list[dict[str, Any]] | None = None,
) -> Detection:
    """A single-event-rule Detection whose alert id is `alert_id` (not hashed from a rule and group)."""
    return Detection(
        rule_id="test-rule",
        rule_title="Test Rule",
        rule_name=None,
        description="",
        level="medium",
        status="test",
        author="",
        tags=[],
        references=[],
        falsepositives=[],
        fields=[],
        rule_path="",
        kind="single",
        group={},
        start_ts=start_ts,
        end_ts=start_ts if end_ts is None else end_ts,
        count=count,
        evidence=evidence or [],
        dedup_key=dedup_key,
        id_parts=((), start_ts, None),
        id_cache=alert_id,
    )


def engine_of(tmp_path: Path, doc: dict[str, Any]) -> Engine:
    """An engine of the one rule `doc`, loaded from a file as the detector loads rules."""
    f = tmp_path / "r.yml"
    f.write_text(yaml.safe_dump(doc), encoding="utf-8")
    res = load_rules([str(f)])
    assert not res.errors, res.errors
    return Engine(res.rules)
