"""The layers a newcomer can rely on: `detectors/` is pure (no network, no SOC I/O side), and the worker's
parts keep their roles (stage processors import no Kafka or Elasticsearch client).

Static (every import statement, also inside functions), so a lazy import cannot slip through.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_agent_boundary import _imports  # one AST import scanner for both boundary tests

ROOT = Path(__file__).resolve().parents[2]
NETWORK = {"socket", "ssl", "http", "urllib.request", "urllib3", "requests", "smtplib", "kafka", "elasticsearch"}


def _bad(paths: list[Path], forbidden: set[str]) -> list[str]:
    return [
        f"{p.relative_to(ROOT)}:{line}: imports {mod}"
        for p in paths
        for line, mod in _imports(p)
        if any(mod == f or mod.startswith(f + ".") for f in forbidden)
    ]


def test_detectors_make_no_network_call_and_import_no_io_side() -> None:
    bad = _bad(sorted((ROOT / "detectors").rglob("*.py")), NETWORK | {"pipeline"})
    assert not bad, "\n".join(bad)


def test_worker_stage_processors_hold_no_client() -> None:
    parts = [ROOT / "pipeline/worker" / f for f in ("stages.py", "alerting.py", "intake.py")]
    bad = _bad(parts, {"kafka", "elasticsearch", "socket", "pipeline.kafka_io", "pipeline.elastic"})
    assert not bad, "\n".join(bad)


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text(
        "def f():\n    import urllib.request\n    from kafka import KafkaProducer\n    from urllib.parse import quote\n"
    )
    hits = [(line, mod) for line, mod in _imports(p) if any(mod == f or mod.startswith(f + ".") for f in NETWORK)]
    assert hits == [(2, "urllib.request"), (3, "kafka")]
