"""Detection ids are hashed on first use, with the bytes they always had (replays keep their `_id`)."""

from __future__ import annotations

import hashlib
import json

from detectors.sigma import Engine
from detectors.sigma.detection import Deferred, make_detection, stable_hash
from detectors.sigma.model import RuleMeta


def _hash(*parts: object) -> str:  # the id formula as first written: json.dumps per call
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


META = RuleMeta(id="r-1", title="t", level="high")


def test_lazy_id_is_the_eager_formula():
    group = {"source.ip": "203.0.113.9", "user.name": "rööt", "n": 3, "paths": ("/a", 2)}
    ev = {"@timestamp": "2026-01-01T00:00:00.000Z", "message": "x \u2028 ü"}
    det = make_detection(META, "single", group, [5.0], [ev], 1, 5.0, identity=Deferred([ev.get("message")]))
    items = [[k, list(v) if isinstance(v, tuple) else v] for k, v in sorted(group.items())]
    assert det.dedup_key == _hash("dedup", "r-1", [list(i) for i in items])
    assert det.detection_id == _hash("det", "r-1", [list(i) for i in items], 5.0, _hash([ev["message"]]))
    assert det.alert_id == det.detection_id and det.to_dict()["detection_id"] == det.detection_id
    plain = make_detection(META, "event_count", group, [5.0, 9.0], [ev], 2, 5.0, identity="abc")
    assert plain.detection_id == stable_hash("det", "r-1", [list(i) for i in items], 5.0, "abc")


def test_dedup_key_memo_tells_equal_but_different_values_apart():
    keys = {make_detection(META, "single", {"f": v}, [1.0], [], 1, 1.0).dedup_key for v in (1, 1.0, True, "1")}
    assert len(keys) == 4
    assert make_detection(META, "single", {"f": 1}, [1.0], [], 1, 1.0).dedup_key == _hash("dedup", "r-1", [["f", 1]])


def test_engine_ids_stable_across_engines(tmp_path):
    from detectors.sigma import load_rules

    (tmp_path / "r.yml").write_text("""
title: ssh root
id: 11111111-1111-1111-1111-111111111111
logsource: {product: linux, service: sshd}
detection:
  sel: {message|contains: root}
  condition: sel
level: high
""")
    ev = {
        "@timestamp": "2026-01-01T00:00:00.000Z",
        "event.dataset": "system.auth",
        "process.name": "sshd",
        "message": "root login",
        "host.name": "h",
    }
    a = Engine(load_rules([tmp_path]).rules).process(dict(ev))
    b = Engine(load_rules([tmp_path]).rules).process(dict(ev))
    assert len(a) == 1 and a[0].detection_id == b[0].detection_id
