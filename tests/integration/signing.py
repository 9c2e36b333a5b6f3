"""Raw records as enrolled agents send them, for tests that feed the detector directly.

One registry per test process; each (agency, agent name) of a test batch is enrolled on first use
with the id `<agent>.<agency>` (ids are global, names in tests are not), and its batches are signed
with that agent's secret and a fresh counter, exactly as `collectors.agent` does.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from collectors.wire import LineBatch, MessageCounter, signed_record
from pipeline.enrolment.registry import Registry


class TestAgents:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._registry: Registry | None = None
        self._secrets: dict[str, str] = {}
        self._lock = threading.Lock()
        self.counter = MessageCounter()

    @property
    def path(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="socpipe-it-registry-"))
        return self._dir / "registry.db"

    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.path)
        return self._registry

    def secret(self, agency_id: str, agent_id: str) -> str:
        """The secret of the enrolled agent `agent_id` of `agency_id` (enrolled now if new)."""
        with self._lock:
            if agent_id not in self._secrets:
                rec = self.registry().agent(agent_id)
                if rec is None:
                    _, secret = self.registry().enroll_direct(agency_id, "test-host", "test", agent_id=agent_id)
                else:
                    secret = rec.secret
                self._secrets[agent_id] = secret
            return self._secrets[agent_id]

    def enrolled(self, b: LineBatch) -> LineBatch:
        """The batch with its agent id made the enrolled one's (`<agent>.<agency>`)."""
        if not b.agent_id.endswith("." + b.agency_id):
            b.agent_id = f"{b.agent_id}.{b.agency_id}"
        return b

    def record(self, b: LineBatch, counter: int | None = None) -> tuple[bytes, list, bytes]:
        b = self.enrolled(b)
        secret = self.secret(b.agency_id, b.agent_id)
        return signed_record(b, secret, self.counter.next() if counter is None else counter)

    def send(self, producer, topic: str, b: LineBatch) -> None:
        key, headers, value = self.record(b)
        producer.send(topic, key=key, value=value, headers=headers)


TEST_AGENTS = TestAgents()
