"""Rendering of coverage for people: the status table and the report in table, CSV or JSON. Pure."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from collectors.humanize import ago
from detectors.common.times import iso_s
from pipeline.coverage.history import PeriodRow
from pipeline.coverage.state import STATE_RANK, Snapshot


def snapshot_to_dict(snap: Snapshot) -> dict[str, Any]:
    return {
        "at": snap.at,
        "coverage_ratio": snap.ratio(),
        "agencies": [
            {
                "id": a.id,
                "name": a.name,
                "tier": a.tier,
                "state": a.state,
                "last_seen": a.last_seen,
                "silent_sources": a.silent_sources,
                "reasons": a.reasons,
                "versions": a.versions,
                "spool_bytes": a.spool_bytes,
                "inputs_failing": a.inputs_failing,
                "sources": [{"name": s.name, "state": s.state, "last_event": s.last_event} for s in a.sources],
            }
            for a in snap.agencies
        ],
    }


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_status(status: dict[str, Any], now: float) -> str:
    """Every agency, worst state first, then by tier and id; a summary line at the end."""
    agencies = sorted(status["agencies"], key=lambda a: (STATE_RANK.get(a["state"], 9), a["tier"], a["id"]))
    lines = [f"{'AGENCY':<22} {'NAME':<34} {'TIER':<12} {'STATE':<15} {'LAST SEEN':<10} SILENT SOURCES / REASON"]
    for a in agencies:
        detail = "; ".join(a["reasons"]) or ", ".join(a["silent_sources"])
        lines.append(
            f"{_fit(a['id'], 22):<22} {_fit(a['name'], 34):<34} {_fit(a['tier'], 12):<12} {a['state']:<15} "
            f"{ago(a['last_seen'], now):<10} {detail}"
        )
    counted = [a for a in agencies if a["state"] != "decommissioned"]
    monitored = sum(a["state"] == "monitored" for a in counted)
    ratio = monitored / len(counted) if counted else 0.0
    stale = now - status["at"]
    lines.append("")
    lines.append(
        f"coverage {monitored}/{len(counted)} = {ratio:.1%} (evaluated {ago(status['at'], now)})"
        + ("  WARNING: the coverage service seems stopped" if stale > 30 else "")
    )
    for err in status.get("inventory_errors", []):
        lines.append(f"inventory error: {err}")
    if status.get("inventory_file_error"):
        lines.append(f"inventory file error (last good inventory in use): {status['inventory_file_error']}")
    return "\n".join(lines)


def _dropouts_text(row: PeriodRow) -> str:
    return " ".join(f"{d.agency_id}({d.to_state}{',recovered' if d.recovered else ''})" for d in row.dropped_out)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def render_report(rows: list[PeriodRow], fmt: str, since: float, until: float) -> str:
    if fmt == "json":
        return json.dumps(
            {"since": iso_s(since), "until": iso_s(until), "periods": [r.as_dict() for r in rows]},
            ensure_ascii=False,
            indent=2,
        )
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            [
                "period",
                "samples",
                "ratio_avg",
                "ratio_min",
                "ratio_last",
                "agencies_total",
                "monitored_last",
                "dropped_out",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    r.period,
                    r.samples,
                    _num(r.ratio_avg),
                    _num(r.ratio_min),
                    _num(r.ratio_last),
                    _num(r.agencies_total),
                    _num(r.monitored_last),
                    _dropouts_text(r),
                ]
            )
        return buf.getvalue().rstrip("\n")
    out = [f"{'PERIOD':<11} {'SAMPLES':>7} {'AVG':>7} {'MIN':>7} {'LAST':>7} {'MONITORED':>10}  DROPPED OUT"]
    for r in rows:
        mon = "-" if r.monitored_last is None else f"{r.monitored_last}/{r.agencies_total}"
        out.append(
            f"{r.period:<11} {r.samples:>7} {_pct(r.ratio_avg):>7} {_pct(r.ratio_min):>7} "
            f"{_pct(r.ratio_last):>7} {mon:>10}  {_dropouts_text(r) or '-'}"
        )
    return "\n".join(out)


def _num(x: float | None) -> str:
    return "" if x is None else str(x)
