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

__all__ = ["AnomalyFinding", "Detection", "Event", "Finding"]
