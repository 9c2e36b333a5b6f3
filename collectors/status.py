"""`<state_dir>/status.json`: what the running agent knows about itself, for `socpipe-agent status`.

Written by the agent every few seconds (atomically, no secrets): Kafka connection state, the last
batch Kafka acknowledged, spool depth, and per input its state, lag and counters. `render_status`
turns it into the lines an administrator reads; both are pure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collectors.health import KAFKA_CONNECTED, KAFKA_LABELS, OK
from collectors.humanize import ago, size
from collectors.stats import AgentStats

STATUS_FILE = "status.json"
STALE_AFTER_S = 30.0  # the agent writes every 2 s: older than this and it is not running

# `socpipe-agent status` exit codes, for scripts and monitoring checks.
EXIT_OK, EXIT_DEGRADED, EXIT_CONFIG, EXIT_NOT_RUNNING = 0, 1, 2, 3


def status_document(
    stats: AgentStats,
    agency_id: str,
    agent_id: str,
    host: str,
    version: str,
    spool_bytes: int,
    now: float | None = None,
    running: bool = True,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    h = stats.health
    names = sorted(set(stats.sources) | set(h.inputs))
    sources = {}
    for name in names:
        c = stats.sources.get(name)
        st = h.input(name)
        sources[name] = {
            "state": st.state,
            "reason": st.reason,
            "since": st.since,
            "lag_bytes": c.lag_bytes if c else 0,
            "last_read_at": c.last_read_at if c else 0.0,
            "lines_read": c.lines_read if c else 0,
            "lines_shipped": c.lines_shipped if c else 0,
        }
    return {
        "written_at": now,
        "pid": os.getpid(),
        "running": running,
        "agency_id": agency_id,
        "agent_id": agent_id,
        "host": host,
        "version": version,
        "started_at": stats.started_at,
        "kafka": {"state": h.kafka_state, "error": h.kafka_error, "since": h.kafka_since},
        "last_ack": {
            "at": stats.last_ack_at,
            "source": stats.last_ack_source,
            "lines": stats.last_ack_lines,
            "records_total": stats.records_shipped,
        },
        "spool": {"pending_bytes": spool_bytes, "corrupt": stats.spool_corrupt, "dropped": stats.dropped},
        "heartbeats_sent": stats.heartbeats_sent,
        "sources": sources,
    }


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs: it exists (as another user too: the service user) and is not a
    zombie (exited, not yet reaped). The one check of `socpipe-agent status` and `socpipe stack`."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        # 'pid (comm) S ...': comm may itself hold ') ' (it is the program's file name), so the
        # state is read after the last ') '
        return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2][:1] != "Z"
    except (OSError, IndexError):
        return True


def assess(doc: dict[str, Any] | None, now: float, pid_alive: Callable[[int], bool]) -> tuple[int, str]:
    """(exit code, one-line verdict) from a status document (None = never written)."""
    if doc is None:
        return EXIT_NOT_RUNNING, "NOT RUNNING: the agent has never written its status (not started yet?)"
    age = now - float(doc.get("written_at", 0))
    if not doc.get("running", True) or age > STALE_AFTER_S or not pid_alive(int(doc.get("pid", 0))):
        return EXIT_NOT_RUNNING, f"NOT RUNNING: last status written {ago(doc.get('written_at', 0), now)}"
    problems = [n for n, s in doc.get("sources", {}).items() if s.get("state") != OK]
    kafka = doc.get("kafka", {})
    if kafka.get("state") != KAFKA_CONNECTED or problems:
        what = []
        if kafka.get("state") != KAFKA_CONNECTED:
            what.append(f"kafka {KAFKA_LABELS.get(str(kafka.get('state')), kafka.get('state'))}")
        if problems:
            what.append(f"{len(problems)} input(s) not ok")
        return EXIT_DEGRADED, "DEGRADED: " + ", ".join(what)
    return EXIT_OK, "OK: connected, every input ok"


def render_status(doc: dict[str, Any], now: float, verdict: str) -> list[str]:
    k = doc.get("kafka", {})
    ack = doc.get("last_ack", {})
    spool = doc.get("spool", {})
    lines = [
        verdict,
        f"agent      agency_id={doc.get('agency_id')} agent_id={doc.get('agent_id')} host={doc.get('host')} "
        f"version={doc.get('version')} pid={doc.get('pid')} up since {ago(doc.get('started_at', 0), now)}",
        f"kafka      {k.get('state')} since {ago(k.get('since', 0), now)}"
        + (f": {k['error']}" if k.get("error") and k.get("state") != KAFKA_CONNECTED else ""),
        f"last ack   {ago(ack.get('at', 0), now)}"
        + (f" ({ack.get('lines')} lines of {ack.get('source')})" if ack.get("source") else "")
        + f", {ack.get('records_total', 0)} batches acknowledged since start",
        f"spool      {size(int(spool.get('pending_bytes', 0)))} waiting for Kafka"
        + (f", {spool['corrupt']} corrupt records skipped" if spool.get("corrupt") else "")
        + (f", {spool['dropped']} UDP messages dropped" if spool.get("dropped") else ""),
        "",
        f"{'STATE':<18} {'LAG':>10} {'LAST READ':>10} {'SHIPPED':>10}  SOURCE",
    ]
    for name, s in sorted(doc.get("sources", {}).items()):
        lines.append(
            f"{s.get('state', '?'):<18} {size(int(s.get('lag_bytes', 0))):>10} "
            f"{ago(s.get('last_read_at', 0), now):>10} {s.get('lines_shipped', 0):>10}  {name}"
        )
        if s.get("state") != OK and s.get("reason"):
            lines.append(f"{'':<18} {'':>10} {'':>10} {'':>10}    -> {s['reason']}")
    return lines
