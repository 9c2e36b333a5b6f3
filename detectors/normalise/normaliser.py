"""The stateful front used by detector workers: batches in, stamped ECS events out.

State is kept only where a line cannot be understood alone: auditd records wait for the rest of
their event (by serial, per source); sshd's peer address is remembered per connection; a Windows
process's creation context fills its later Sysmon events (process_context.py, per verified sender,
computer and ProcessGuid). Everything else goes straight through `parse_line`. The state is the
worker's (not in its snapshots): a partition moving to another worker starts there without it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from collectors.lazy import LazyLogger
from collectors.wire import LineBatch
from detectors.common.times import DEFAULT_TIMEZONE
from detectors.normalise.auditd import Assembler
from detectors.normalise.core import parse_line
from detectors.normalise.ecs import PARSE_FAILURE_TAG
from detectors.normalise.process_context import SYSMON_DATASET, ProcessContext

log = LazyLogger(__name__)  # logging imported at the first error


def is_path(source: str) -> bool:
    """'/var/log/auth.log' or 'C:\\logs\\x.log' are files; 'syslog-udp:5514' is a listener."""
    return source.startswith(("/", "./", "../", "~")) or (len(source) > 2 and source[1:3] in (":\\", ":/"))


class Normaliser:
    def __init__(
        self, default_timezone: str = DEFAULT_TIMEZONE, max_pending_audit: int = 64, max_processes: int = 20_000
    ) -> None:
        self.default_timezone = default_timezone
        self._assembler = Assembler(max_pending_audit)
        self.processes = ProcessContext(max_processes)  # Windows process creation context
        self._peers: OrderedDict[tuple[Any, ...], tuple[str, int | None]] = OrderedDict()
        self.max_sessions = 4096
        self.failures = 0

    def normalise_batch(self, batch: LineBatch) -> list[dict[str, Any]]:
        """0..n events per batch (auditd records may complete in a later batch; see flush)."""
        tz = batch.timezone or self.default_timezone
        path = batch.source if is_path(batch.source) else None
        stamp = {"organization.id": batch.agency_id, "agent.id": batch.agent_id, "agent.type": "socpipe"}
        if batch.dataset is None or batch.dataset == "auditd.log" or batch.dataset not in _NON_AUDIT:
            source_key = f"{batch.agency_id}|{batch.agent_id}|{batch.source}"
        else:
            source_key = ""
        sender = f"{batch.agency_id}|{batch.agent_id}"  # verified by intake, never from the payload
        processes = self.processes
        out: list[dict[str, Any]] = []
        append = out.append
        for line in batch.lines:
            try:
                ev = parse_line(line.text, batch.dataset, tz, path, line.line_no, read_at=line.read_at)
                ev.update(stamp)
                hostname = ev.get("host.hostname")
                ev["host.name"] = hostname if isinstance(hostname, str) else batch.host
                ev["log.offset"] = line.offset
                ev["socpipe.seq"] = line.seq
                tags = ev.get("tags")
                if line.flags:
                    tags = ev["tags"] = (tags or []) + [f for f in line.flags if f not in (tags or ())]
                if tags and PARSE_FAILURE_TAG in tags:
                    self.failures += 1
                dataset = ev.get("event.dataset")
                if dataset == SYSMON_DATASET:
                    processes.apply(sender, ev)
                elif "process.pid" in ev and dataset == "system.auth":
                    self._remember_peer(batch.source, ev)
                # one raw audit record waits for its siblings; an event already assembled (an ECS
                # JSON line of `socpipe parse` output) carries its record_types and passes as is
                if source_key and "auditd.log.sequence" in ev and "auditd.log.record_types" not in ev:
                    out.extend(self._assembler.add(source_key, ev))
                else:
                    append(ev)
            except Exception:  # noqa: BLE001 - never lose the rest of the batch
                log.exception("event=normalise_error source=%s seq=%s", batch.source, getattr(line, "seq", None))
                out.append(
                    {
                        "message": str(getattr(line, "text", "")),
                        "event.original": str(getattr(line, "text", "")),
                        "tags": [PARSE_FAILURE_TAG],
                        **stamp,
                        "host.name": batch.host,
                        "@timestamp": parse_line("", read_at=getattr(line, "read_at", 0))["@timestamp"],
                    }
                )
        return out

    def _remember_peer(self, source: str, ev: dict[str, Any]) -> None:
        """sshd names the peer once per connection; later lines of the same pid ('Disconnecting: Too
        many authentication failures', kex errors) inherit it so per-IP rules count them."""
        key = (source, ev.get("host.hostname"), ev["process.pid"])
        peers = self._peers
        if "source.ip" in ev:
            peers[key] = (ev["source.ip"], ev.get("source.port"))
            peers.move_to_end(key)
            if len(peers) > self.max_sessions:
                peers.popitem(last=False)
        elif "source.address" not in ev:
            peer = peers.get(key)
            if peer is not None:
                ev["source.ip"] = ev["source.address"] = peer[0]
                if peer[1] is not None:
                    ev["source.port"] = peer[1]

    def flush(self) -> list[dict[str, Any]]:
        """Emit auditd events still waiting for more records (end of input, shutdown, idle timer)."""
        return self._assembler.flush()


_NON_AUDIT = frozenset(("apache.access", "nginx.access", "apache.error", "nginx.error", "iptables.log"))
