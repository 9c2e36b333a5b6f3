"""The agent's listener inputs: syslog listeners (Windows event forwarding included) and journald,
all feeding one inbox that the agent's loop thread drains into per-source batches.

Each listener is its own source with its own sequence, resumed from the checkpointed positions; a
Windows listener gives each forwarding computer its own source (`<listener>/<computer>`). A listener
whose bind fails is reported (bind_failed) and bound again later; the other inputs keep working.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from collectors.batcher import Batcher
from collectors.config import AgentConfig, SyslogInputConfig
from collectors.flood import TokenBucket
from collectors.health import OK
from collectors.lines import encode_line
from collectors.listeners import (
    MAX_WINDOWS_HOSTS,
    WINDOWS_DATASET,
    JournaldInput,
    Message,
    SyslogListener,
    bind_failure,
    listener_source_name,
    windows_computer,
)
from collectors.stats import AgentStats

# The agent's one inbox: (input source name, dataset hint, message) from every listener thread.
Inbox = queue.Queue[tuple[str, str | None, Message]]


class ListenerInputs:
    def __init__(self, config: AgentConfig, stats: AgentStats, bucket: Callable[[str], TokenBucket | None]) -> None:
        self.config = config
        self.stats = stats
        self._bucket = bucket  # the source's flood bucket (shared with file sources), None without a rate
        self.listeners: list[SyslogListener] = []
        self.listen_ports: dict[str, int] = {}  # listener source name -> bound port (0 in config = any)
        self.seq: dict[str, int] = {}  # source name -> next sequence number
        self.windows_hosts: dict[str, set[str]] = {}  # Windows listener -> computers given a source
        self.unbound: list[SyslogInputConfig] = []  # listeners whose bind failed, bound again later
        self._inbox: Inbox = queue.Queue()  # start() sets both to the agent's
        self._stop_inputs = threading.Event()

    def start(self, positions: dict[str, Any], inbox: Inbox, stop_inputs: threading.Event) -> JournaldInput | None:
        """Bind the syslog listeners and start journald, each resuming its sequence from `positions`."""
        c = self.config
        self._inbox, self._stop_inputs = inbox, stop_inputs
        for lc in c.syslog:
            name = listener_source_name(lc)
            self.seq[name] = int(positions.get(name, {}).get("q", 1))
            if lc.dataset == WINDOWS_DATASET:  # each forwarding computer's sequence resumes too
                for source, pos in positions.items():
                    if source.startswith(name + "/") and isinstance(pos, dict):
                        self.seq[source] = int(pos.get("q", 1))
                        self.windows_hosts.setdefault(name, set()).add(source[len(name) + 1 :])
            self._bind(lc)
        if not c.journald.enabled:
            return None
        pos = positions.get("journald", {})
        self.seq["journald"] = int(pos.get("q", 1))
        journal = JournaldInput(
            c.journald,
            _Tagger(inbox, "journald", c.journald.dataset or None),
            str(pos.get("c", "")),
            c.flood.max_line_bytes,
            stop_inputs,
        )
        journal.on_state = lambda state, detail="": self.stats.health.set_input("journald", state, detail)
        journal.start()
        return journal

    def _bind(self, lc: SyslogInputConfig) -> bool:
        """Bind one syslog listener; a failure is reported (state bind_failed) and retried, the other
        inputs keep working."""
        name = listener_source_name(lc)
        relay = _Tagger(self._inbox, name, lc.dataset or None)
        try:
            lst = SyslogListener(lc, relay, self.config.flood.max_line_bytes, self._stop_inputs)
        except OSError as exc:
            if lc not in self.unbound:
                self.unbound.append(lc)
            self.stats.source(name)
            self.stats.health.set_input(name, *bind_failure(lc, exc))
            return False
        if lc in self.unbound:
            self.unbound.remove(lc)
        self.listen_ports[lst.name] = lst.port
        lst.start()
        self.listeners.append(lst)
        self.stats.health.set_input(name, OK)
        return True

    def retry_unbound(self) -> None:
        """Bind again the listeners whose bind failed."""
        for lc in list(self.unbound):
            self._bind(lc)

    def drain(self, inbox: Inbox, wall: float, batcher: Batcher) -> bool:
        """Listener messages -> batches (seq assigned here, on the agent's loop thread: it owns every counter)."""
        got = False
        now = time.monotonic()
        for _ in range(5000):
            try:
                name, dataset, msg = inbox.get_nowait()
            except queue.Empty:
                break
            got = True
            if dataset == WINDOWS_DATASET:
                name = self.windows_source(name, msg.text)
            seq = self.seq.get(name, 1)
            self.seq[name] = seq + 1
            bucket = self._bucket(name)
            sc = self.stats.source(name)
            if bucket is not None and not bucket.available(now):
                sc.overflow += 1  # flood: still spooled, counted and reported
            elif bucket is not None:
                bucket.take(1, now)
            sc.lines_read += 1
            sc.bytes_read += len(msg.text)
            sc.last_read_at = wall
            position: dict[str, Any] = {"q": seq + 1}
            if msg.cursor:
                position["c"] = msg.cursor
            batcher.add(name, dataset, [encode_line(msg.text, 0, 0, seq, msg.read_at, msg.flags)], position, now)
        return got

    def windows_source(self, listener: str, text: str) -> str:
        """`<listener>/<computer>`: each forwarding Windows server is its own source (own sequence,
        own coverage); at most MAX_WINDOWS_HOSTS per listener, the rest share `<listener>/other`."""
        computer = windows_computer(text) or "unknown"
        known = self.windows_hosts.setdefault(listener, set())
        if computer not in known:
            if len(known) >= MAX_WINDOWS_HOSTS:
                return f"{listener}/other"
            known.add(computer)
        return f"{listener}/{computer}"


class _Tagger:
    """A queue facade for one input: tags its messages with the source name and dataset."""

    def __init__(self, inbox: Inbox, name: str, dataset: str | None) -> None:
        self.inbox, self.name, self.dataset = inbox, name, dataset

    def put(self, item: Message, block: bool = True, timeout: float | None = None) -> None:
        self.inbox.put((self.name, self.dataset, item), block, timeout)

    def put_nowait(self, item: Message) -> None:
        self.inbox.put_nowait((self.name, self.dataset, item))
