"""The stage contracts of detection, in one place (pure types, no I/O).

    raw line --normalise--> Event --rules / models--> Finding --alerts.build_alert--> alert document

* `Event`: one normalised log record, a flat ECS dict with dotted keys (`"source.ip"`), `@timestamp`
  as ISO-8601 UTC text (what Elasticsearch indexes).
* `Finding`: what a detector reports. A Sigma rule or correlation gives a `Detection`, an anomaly
  model an `AnomalyFinding`. Both carry, under the same names and types, what everything downstream
  of detection reads: `alert_id` (deterministic, so replays are idempotent), `dedup_key`
  (suppression), `start_ts`/`end_ts` (epoch seconds: times stay floats until the alert document
  is rendered), `severity` (`detectors.common.Severity`), `agencies`, `evidence` (flat events).
  Everything else is kind-specific and read only by `build_alert`'s branch for that kind.

A new detector family adds its own finding dataclass (slots, the common fields above), joins the
`Finding` union here and gets one branch in `detectors.alerts.build` (see ARCHITECTURE.md).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from detectors.anomaly.finding import AnomalyFinding
from detectors.sigma.detection import Detection

Event: TypeAlias = dict[str, Any]
Finding: TypeAlias = Detection | AnomalyFinding


def finding_from_dict(d: object) -> Finding:
    """A Finding's `to_dict` read back, either kind (a dead letter's): ValueError when it is neither."""
    from detectors.anomaly.finding import finding_from_dict as anomaly_from_dict
    from detectors.sigma.detection import detection_from_dict

    if isinstance(d, dict) and "finding_id" in d:
        return anomaly_from_dict(d)
    if isinstance(d, dict) and "detection_id" in d:
        return detection_from_dict(d)
    raise ValueError("neither a detection (detection_id) nor a model finding (finding_id)")


__all__ = ["AnomalyFinding", "Detection", "Event", "Finding", "finding_from_dict"]
