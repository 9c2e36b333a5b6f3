"""What the SOC actually receives, and the state of each agency derived from it. Pure: no I/O, no clock.

Every observation carries `now` as the SOC's receipt time: agency servers' clocks are not trusted
(a commune server an hour off must not look dead or alive because of it). An agency is `monitored`
only when one of its agents is alive AND every expected source delivered within its threshold;
delivery is seen either as raw records on Kafka or as `lines_shipped` growing in heartbeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.coverage.inventory import Agency, ExpectedSource, Inventory

MONITORED = "monitored"
DEGRADED = "degraded"
AGENT_DOWN = "agent_down"
NEVER_SEEN = "never_seen"
DECOMMISSIONED = "decommissioned"
STATES = (MONITORED, DEGRADED, AGENT_DOWN, NEVER_SEEN, DECOMMISSIONED)
# Worst first, for `coverage status` and reports.
STATE_RANK = {AGENT_DOWN: 0, NEVER_SEEN: 1, DEGRADED: 2, MONITORED: 3, DECOMMISSIONED: 4}
MAX_SOURCES_PER_AGENT = 256
MAX_INPUT_PROBLEMS = 16  # per agent, from its heartbeat (agent-supplied text: bounded)
MAX_PROBLEM_CHARS = 200
ANY_SOURCE = "*"  # the source name used when an agency lists no specific source


@dataclass(slots=True)
class Thresholds:
    heartbeat_interval_s: float = 15.0
    missed_heartbeats: int = 3
    source_silent_after_s: float = 900.0
    spooling_after_s: float = 120.0  # spool non-empty for this long -> degraded

    @property
    def agent_down_after_s(self) -> float:
        return self.heartbeat_interval_s * self.missed_heartbeats


@dataclass(slots=True)
class AgentSeen:
    agent_id: str
    agency_id: str
    host: str = ""
    version: str = ""
    last_seen: float = 0.0
    spool_bytes: int = 0
    spooling_since: float | None = None
    shipped: dict[str, int] = field(default_factory=dict)  # source path -> lines_shipped last reported
    # input -> why it is not ok ("permission denied: ..."), as the agent's last heartbeat said
    input_problems: dict[str, str] = field(default_factory=dict)
    # why the agent cannot use Kafka fully ("not authorized: not allowed to write socpipe.raw ..."), as its
    # last heartbeat said; "" when connected (or an agent that predates the field)
    kafka_problem: str = ""


@dataclass(slots=True)
class SourceView:
    name: str
    state: str
    last_event: float | None


@dataclass(slots=True)
class AgencyView:
    id: str
    name: str
    tier: str
    state: str
    last_seen: float | None
    sources: list[SourceView]
    reasons: list[str]
    versions: list[str]
    spool_bytes: int = 0
    inputs_failing: int = 0  # inputs the alive agents report not ok (missing, permission denied ...)

    @property
    def silent_sources(self) -> list[str]:
        return [s.name for s in self.sources if s.state != MONITORED]


@dataclass(slots=True)
class Snapshot:
    at: float
    agencies: list[AgencyView]

    def counted(self) -> list[AgencyView]:
        """Agencies that count toward coverage (everything but decommissioned)."""
        return [a for a in self.agencies if a.state != DECOMMISSIONED]

    def ratio(self, tier: str | None = None) -> float:
        pool = [a for a in self.counted() if tier is None or a.tier == tier]
        return (sum(a.state == MONITORED for a in pool) / len(pool)) if pool else 0.0


class CoverageTracker:
    """Accumulates verified heartbeats and raw-traffic receipts; `evaluate` derives every state."""

    def __init__(self, thresholds: Thresholds | None = None):
        self.thresholds = thresholds or Thresholds()
        self.agents: dict[str, AgentSeen] = {}
        # (agency_id, agent_id, source path) -> SOC receipt time of its latest delivery
        self.deliveries: dict[tuple[str, str, str], float] = {}
        self._per_agent: dict[str, int] = {}

    def observe_heartbeat(
        self,
        *,
        agency_id: str,
        agent_id: str,
        host: str,
        version: str,
        spool_bytes: int,
        shipped: dict[str, int],
        now: float,
        input_problems: dict[str, str] | None = None,
        kafka_problem: str = "",
    ) -> None:
        """A heartbeat whose signature and agency were already verified. `input_problems`: the agent's
        inputs that are not ok (missing, permission denied, rotated away, listener bind failed ...);
        `kafka_problem`: why the agent cannot use Kafka fully (e.g. refused writes to the raw topic)."""
        a = self.agents.get(agent_id)
        if a is None or a.agency_id != agency_id:
            a = self.agents[agent_id] = AgentSeen(agent_id=agent_id, agency_id=agency_id)
        a.host, a.version, a.last_seen = host, version, now
        a.spool_bytes = spool_bytes
        if spool_bytes > 0:
            a.spooling_since = a.spooling_since if a.spooling_since is not None else now
        else:
            a.spooling_since = None
        reported: dict[str, int] = {}
        for path, count in list(shipped.items())[:MAX_SOURCES_PER_AGENT]:
            before = a.shipped.get(path)
            if before is not None and count > before:
                self._deliver((agency_id, agent_id, path), now)
            reported[path] = count
        a.shipped = reported
        a.input_problems = {
            str(name)[:MAX_PROBLEM_CHARS]: str(why)[:MAX_PROBLEM_CHARS]
            for name, why in list((input_problems or {}).items())[:MAX_INPUT_PROBLEMS]
        }
        a.kafka_problem = kafka_problem[:MAX_PROBLEM_CHARS]

    def observe_events(self, *, agency_id: str, agent_id: str, source: str, now: float) -> None:
        """Raw records of one source reached Kafka (counted from the record key, never decoded)."""
        self._deliver((agency_id, agent_id, source), now)

    def _deliver(self, key: tuple[str, str, str], now: float) -> None:
        agent_id = key[1]
        if key not in self.deliveries:
            # Source paths come from agents: cap how many one agent can make us remember.
            n = self._per_agent.get(agent_id, 0)
            if n >= MAX_SOURCES_PER_AGENT:
                return
            self._per_agent[agent_id] = n + 1
        self.deliveries[key] = now

    def evaluate(self, inventory: Inventory, now: float) -> Snapshot:
        by_agency: dict[str, list[AgentSeen]] = {}
        for a in self.agents.values():
            by_agency.setdefault(a.agency_id, []).append(a)
        deliveries_by_agency: dict[str, list[tuple[str, str, float]]] = {}
        for (agency_id, agent_id, path), t in self.deliveries.items():
            deliveries_by_agency.setdefault(agency_id, []).append((agent_id, path, t))
        views = [
            self._agency_view(ag, by_agency.get(ag.id, []), deliveries_by_agency.get(ag.id, []), now)
            for ag in inventory.agencies
        ]
        return Snapshot(at=now, agencies=views)

    def _agency_view(
        self, agency: Agency, agents: list[AgentSeen], deliveries: list[tuple[str, str, float]], now: float
    ) -> AgencyView:
        th = self.thresholds
        last_seen = max((a.last_seen for a in agents), default=None)
        alive = {a.agent_id: a for a in agents if now - a.last_seen <= th.agent_down_after_s}
        hosts = {a.agent_id: a.host for a in agents}
        expected = agency.sources or (ExpectedSource(name=ANY_SOURCE, path="*"),)
        sources: list[SourceView] = []
        reasons: list[str] = []
        for src in expected:
            times = [t for agent_id, path, t in deliveries if src.matches(path, hosts.get(agent_id, ""))]
            times_alive = [
                t
                for agent_id, path, t in deliveries
                if agent_id in alive and src.matches(path, hosts.get(agent_id, ""))
            ]
            last_event = max(times, default=None)
            silent_after = src.silent_after_s or th.source_silent_after_s
            if agency.decommissioned:
                state = DECOMMISSIONED
            elif not agents:
                state = NEVER_SEEN
            elif not alive:
                state = AGENT_DOWN
            elif not times_alive:
                state = NEVER_SEEN if last_event is None else DEGRADED
            elif now - max(times_alive) > silent_after:
                state = DEGRADED
            else:
                state = MONITORED
            if state in (DEGRADED, NEVER_SEEN) and alive:
                reasons.append(
                    f"source {src.name} silent" if last_event is not None else f"source {src.name} never delivered"
                )
            sources.append(SourceView(name=src.name, state=state, last_event=last_event))
        spool = sum(a.spool_bytes for a in alive.values())
        if agency.decommissioned:
            state = DECOMMISSIONED
        elif not agents:
            state, reasons = NEVER_SEEN, ["no heartbeat ever received"]
        elif not alive:
            state = AGENT_DOWN
            reasons = [f"no heartbeat for {now - (last_seen or 0):.0f}s"]
        else:
            spooling_since = [
                a.spooling_since
                for a in alive.values()
                if a.spooling_since is not None and now - a.spooling_since >= th.spooling_after_s
            ]
            if spooling_since:
                reasons.append(f"spooling {spool} bytes for {now - min(spooling_since):.0f}s")
            kafka: list[str] = []  # first: an agent Kafka refuses explains its silent sources
            for a in sorted(alive.values(), key=lambda a: a.agent_id):
                on_host = f" (on {a.host})" if len(alive) > 1 else ""
                if a.kafka_problem:
                    kafka.append(f"kafka {a.kafka_problem}{on_host}")
                for name, why in sorted(a.input_problems.items()):
                    reasons.append(f"{name} {why}{on_host}")
            reasons[:0] = kafka
            state = DEGRADED if (reasons or any(s.state != MONITORED for s in sources)) else MONITORED
        return AgencyView(
            id=agency.id,
            name=agency.name,
            tier=agency.tier,
            state=state,
            last_seen=last_seen,
            sources=sources,
            reasons=reasons,
            versions=sorted({a.version for a in alive.values()}),
            spool_bytes=spool,
            inputs_failing=sum(len(a.input_problems) for a in alive.values()),
        )

    # Persistence of what was seen, so a service restart keeps never_seen apart from agent_down.
    def export_state(self) -> dict[str, Any]:
        return {
            "agents": [
                {
                    "agent_id": a.agent_id,
                    "agency_id": a.agency_id,
                    "host": a.host,
                    "version": a.version,
                    "last_seen": a.last_seen,
                }
                for a in self.agents.values()
            ],
            "deliveries": [[k[0], k[1], k[2], t] for k, t in self.deliveries.items()],
        }

    def import_state(self, data: dict[str, Any]) -> None:
        for a in data.get("agents", []):
            self.agents.setdefault(
                a["agent_id"],
                AgentSeen(
                    agent_id=a["agent_id"],
                    agency_id=a["agency_id"],
                    host=a.get("host", ""),
                    version=a.get("version", ""),
                    last_seen=float(a["last_seen"]),
                ),
            )
        for agency_id, agent_id, path, t in data.get("deliveries", []):
            key = (agency_id, agent_id, path)
            if key not in self.deliveries:
                self._per_agent[agent_id] = self._per_agent.get(agent_id, 0) + 1
            self.deliveries[key] = max(self.deliveries.get(key, 0.0), float(t))
