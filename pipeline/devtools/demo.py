"""`socpipe demo`: the whole job on the local stack, with the real commands an operator runs.

Four agencies are inventoried; three enrol an agent through the SOC's enrolment server; one of them
is under an SSH brute force. The demo prints the alerts it finds in Elasticsearch and the coverage
ratio as Prometheus reports it (a PromQL query), then stops its own processes (the stack stays).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from pipeline.devtools.demo_scenario import AGENCIES_WITH_AGENTS, TZ, DemoAgency, attacker_ip, auth_log_lines
from pipeline.stack.plan import Ports

if TYPE_CHECKING:  # elasticsearch is imported where it is used
    from elastic_transport import ObjectApiResponse
    from elasticsearch import Elasticsearch

T = TypeVar("T")


class DemoError(RuntimeError):
    pass


class Demo:
    def __init__(self, root: Path, out: Callable[[str], None] = print):
        self.root = root
        self.work = root / ".socpipe" / "demo"
        self.out = out
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        stack_env = Path(os.environ.get("SOCPIPE_STACK_DIR", root / ".socpipe" / "stack")) / "env"
        if not stack_env.exists():
            raise DemoError("the local stack is not up: run `socpipe stack up` (or `make demo`)")
        self.env = dict(os.environ)
        for line in stack_env.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = value
        # Every address comes from the stack's port plan (its env file): nothing here assumes a default port.
        self.ports = Ports.from_env(self.env)
        # The stack's own view (recorded ports and options): per-service settings, and on the secured
        # stack each service's own least-privilege Elasticsearch credential.
        from pipeline.stack import Stack

        self.stack = Stack(stack_env.parent)
        self.attacker = attacker_ip(time.time() / 60)
        self.env.update(
            {
                "SOCPIPE_REGISTRY": str(self.work / "enrolment" / "registry.db"),
                "SOCPIPE_STATE_DIR": str(self.work / "coverage"),
                "SOCPIPE_HEARTBEAT_INTERVAL_S": "5",
                "SOCPIPE_METRICS_HOST": "127.0.0.1",
            }
        )

    # --- processes -----------------------------------------------------------------------------
    def socpipe(self, *args: str, env: dict[str, Any] | None = None) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *args],
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise DemoError(f"`socpipe {' '.join(args)}` failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def role_env(self, role: str, **extra: str) -> dict[str, str]:
        return {**self.env, **self.stack.service_env(role), **extra}

    def start(self, name: str, *args: str, env: dict[str, Any] | None = None) -> None:
        log = open(self.work / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *args],
            cwd=self.root,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self, *names: str) -> None:
        procs = [self.procs.pop(n) for n in (names or list(self.procs)[::-1]) if n in self.procs]
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    def check_processes(self) -> None:
        for p in self.procs.values():
            if p.poll() is not None:
                args = p.args[3:] if isinstance(p.args, list) else [p.args]  # after `python -m pipeline.cli`
                raise DemoError(f"a demo process exited ({' '.join(map(str, args))}); see logs in {self.work}")

    # --- steps ---------------------------------------------------------------------------------
    def run(self) -> int:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        began = self.began = datetime.now(TZ)
        try:
            self.step("SOC side: enrolment server, coverage service, detector worker")
            # templates first, by the only credential allowed to install them (the detector's may not)
            self.socpipe("es", "setup", "--config", "config/detector.yaml", env=self.role_env("setup"))
            self.start("enrol", "enrol", "serve", "--config", "config/coverage.yaml", env=self.role_env("coverage"))
            self.start("coverage", "coverage", "run", "--config", "config/coverage.yaml", env=self.role_env("coverage"))
            self.start("detector", "detect", "run", "--config", "config/detector.yaml", env=self.role_env("detector"))
            self.wait_port(self.ports.enrolment, "enrolment server")

            self.step("Agency side: 3 of the 4 inventoried agencies enrol an agent")
            for agency in AGENCIES_WITH_AGENTS:
                self.enrol_and_start_agent(agency, began)

            self.step(f"Waiting for the brute force from {self.attacker} to reach Elasticsearch as alerts")
            self.wait(lambda: self.alerts(began), 120, "alerts in Elasticsearch")
            time.sleep(5)  # the first correlation is in; let the slower ones of the same attack land too
            alerts = self.alerts(began)
            self.print_alerts(alerts)
            self.step("The same attack as one incident (alerts of one agency sharing the address)")
            incident = self.wait(self.incident, 60, "the incident in Elasticsearch")
            self.print_incident(incident)
            self.triage_api()

            self.step("Coverage as Prometheus reports it (PromQL: socpipe_coverage_ratio)")
            ratio = self.wait(lambda: self.coverage_ratio(expect=0.75), 120, "coverage 0.75 in Prometheus")
            self.out(f"  socpipe_coverage_ratio = {ratio:.2f}  (3 of 4 agencies monitored)")
            self.out(self.socpipe("coverage", "status", "--config", "config/coverage.yaml"))
            self.province()
        finally:
            self.stop()
        self.out("Done. The stack is still running: see `socpipe stack status`; stop it with `socpipe stack down`.")
        return 0

    def enrol_and_start_agent(self, agency: DemoAgency, now: datetime) -> None:
        out = self.socpipe("agency", "token", "create", agency.id, "--config", "config/coverage.yaml")
        found = re.search(r"^token:\s+(\S+)", out, re.M)
        if found is None:
            raise DemoError(f"`socpipe agency token create {agency.id}` printed no token:\n{out}")
        token = found.group(1)
        state = self.work / f"agent-{agency.id}"
        self.socpipe(
            "agent",
            "enroll",
            "--server",
            f"http://127.0.0.1:{self.ports.enrolment}",
            "--token",
            token,
            "--state-dir",
            str(state),
            "--host",
            agency.host,
        )
        log_path = self.work / "logs" / agency.id / "auth.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("\n".join(auth_log_lines(agency, now, self.attacker)) + "\n")
        config = {
            "state_dir": str(state),
            "host": agency.host,
            "heartbeat_interval_s": 5,
            "files": [{"paths": [str(log_path)], "dataset": "system.auth", "start_position": "beginning"}],
        }
        config_path = self.work / f"agent-{agency.id}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        # The agent's own config file says everything, and the Kafka address is the one the enrolment
        # server handed out (the stack's): nothing from the SOC's environment.
        agent_env = {k: v for k, v in os.environ.items() if not k.startswith("SOCPIPE_")}
        self.start(f"agent-{agency.id}", "agent", "run", "--config", str(config_path), env=agent_env)
        self.out(f"  {agency.id:<20} host {agency.host:<14} enrolled, agent shipping {log_path.relative_to(self.root)}")

    def province(self, simulated: int = 160, silent: int = 5) -> None:
        """The province's shape: ~170 agencies, most of them simulated agents on the real topics."""
        inventory = "config/inventory.province.yaml"
        total = len(yaml.safe_load((self.root / inventory).read_text())["agencies"])
        self.step(f"The whole province: {total} agencies, {simulated} simulated agents ({silent} with a silent source)")
        self.stop("coverage")
        province_env = {**self.env, "SOCPIPE_INVENTORY": inventory}
        province_env = {**province_env, **self.stack.service_env("coverage")}
        self.start("coverage-province", "coverage", "run", "--config", "config/coverage.yaml", env=province_env)
        self.start(
            "simulate",
            "coverage",
            "simulate",
            "--config",
            "config/coverage.yaml",
            "--inventory",
            inventory,
            "--count",
            str(simulated),
            "--silent",
            str(silent),
            "--interval",
            "5",
            env=province_env,
        )
        expected = (simulated - silent) / total
        ratio = self.wait(lambda: self.coverage_ratio(expect=expected), 120, f"coverage {expected:.3f} in Prometheus")
        self.out(f"  socpipe_coverage_ratio = {ratio:.3f}  ({simulated - silent} of {total} agencies monitored)")
        for series in sorted(self.promql("socpipe_tier_coverage_ratio"), key=lambda r: r["metric"]["tier"]):
            self.out(
                f'  socpipe_tier_coverage_ratio{{tier="{series["metric"]["tier"]}"}} = {float(series["value"][1]):.3f}'
            )

    def es(self) -> Elasticsearch:
        """The operator's client (the env file's URL, CA and credential)."""
        from pipeline.config import ElasticsearchConfig
        from pipeline.elastic import connect

        e = self.env
        return connect(
            ElasticsearchConfig(
                url=e["SOCPIPE_ES_URL"],
                username=e.get("SOCPIPE_ES_USERNAME", ""),
                password=e.get("SOCPIPE_ES_PASSWORD", ""),
                api_key=e.get("SOCPIPE_ES_API_KEY", ""),
                ca_certs=e.get("SOCPIPE_ES_CA_CERTS", ""),
            )
        )

    def triage_api(self) -> None:
        """The analysts' API on the plan's triage port: the attacked agency's open alerts, as an analyst sees them."""
        agency = next(a.id for a in AGENCIES_WITH_AGENTS if a.attacked)
        env = self.role_env("triage", SOCPIPE_TOKENS=str(self.work / "triage" / "tokens.yml"))
        (self.work / "triage").mkdir(exist_ok=True)
        token = self.socpipe(
            "triage", "token", "demo-analyst", "--role", "analyst", "--config", "config/triage.yaml", env=env
        )
        self.start("triage", "triage", "serve", "--config", "config/triage.yaml", env=env)
        self.wait_port(self.ports.triage, "triage API")
        url = f"http://127.0.0.1:{self.ports.triage}/api/alerts?" + urllib.parse.urlencode(
            {"agency": agency, "status": "open", "since": "1h"}
        )
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token.strip()}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.load(resp)
        alerts = body.get("alerts", body) if isinstance(body, dict) else body
        self.out(f"  triage API {url.split('?')[0]}: {len(alerts)} open alerts for {agency} (analyst token)")

    def alerts(self, since: datetime) -> list[dict[str, Any]]:
        from elasticsearch import ApiError

        self.check_processes()
        es = self.es()
        index = "socpipe-alerts-*"
        try:
            es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
            res = self._alerts_search(es, index, since)
        except ApiError as exc:  # a daily index created this instant has no active shard yet: ask again
            if exc.meta.status != 503:
                raise
            return []
        hits = [h["_source"] for h in res["hits"]["hits"]]
        # Wait for the correlation (brute force) too, not only the first single-event alert.
        return hits if any(h.get("rule", {}).get("category") not in (None, "single") for h in hits) else []

    def _alerts_search(self, es: Elasticsearch, index: str, since: datetime) -> ObjectApiResponse[Any]:
        return es.search(
            index=index,
            size=50,
            sort=[{"@timestamp": "asc"}],
            allow_no_indices=True,
            ignore_unavailable=True,
            query={
                "bool": {
                    "filter": [
                        {"term": {"source.ip": self.attacker}},
                        {"range": {"event.created": {"gte": since.isoformat()}}},
                    ]
                }
            },
        )

    def incident(self) -> dict[str, Any] | None:
        """The open incident holding the attacker's alerts, once it holds all of them."""
        from elasticsearch import ApiError

        es = self.es()
        index = "socpipe-incidents-*"
        try:
            es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
            res = es.search(
                index=index,
                size=5,
                sort=[{"event.end": "desc"}],
                allow_no_indices=True,
                ignore_unavailable=True,
                query={"term": {"socpipe.incident.entity_keys": f"source.ip={self.attacker}"}},
            )
        except ApiError as exc:  # created this instant: no active shard yet
            if exc.meta.status != 503:
                raise
            return None
        hits = [h["_source"] for h in res["hits"]["hits"]]
        alerts = {a["event"]["id"] for a in self.alerts(self.began)}
        for inc in hits:
            if alerts and alerts <= set(inc["socpipe"]["incident"]["alerts"]):
                found: dict[str, Any] = inc
                return found
        return None

    def print_incident(self, inc: dict[str, Any]) -> None:
        i = inc["socpipe"]["incident"]
        self.out(
            f"  INCIDENT {i['title']}  severity={i['severity']}  agency={inc['organization']['id']}  "
            f"alerts={i['alert_count']}  events={i['events']}"
        )
        self.out(f"  tactics (kill-chain order): {' -> '.join(i['tactics']) or '-'}")
        self.out(f"  entities: {', '.join(i['entity_keys'])}")
        for e in i["timeline"]:
            self.out(f"    {e['start']}  {e['level']:<8}  {e['events']:>4} events  {e['rule']}")

    def print_alerts(self, alerts: list[dict[str, Any]]) -> None:
        self.out(f"  {'TIME (UTC)':<24} {'SEVERITY':<9} {'AGENCY':<20} {'SOURCE':<15} {'EVENTS':>6}  RULE")
        for a in alerts:
            self.out(
                f"  {a['@timestamp']:<24} {a['kibana']['alert']['severity']:<9} {a['organization']['id']:<20} "
                f"{a.get('source', {}).get('ip', '-'):<15} {a['socpipe'].get('episode', {}).get('events', a['socpipe']['detection']['count']):>6}  {a['rule']['name']}"
            )

    def promql(self, query: str) -> list[dict[str, Any]]:
        url = self.env["SOCPIPE_PROMETHEUS_URL"] + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=5) as resp:
            result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
        return result

    def coverage_ratio(self, expect: float) -> float | None:
        self.check_processes()
        result = self.promql("socpipe_coverage_ratio")
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value if abs(value - expect) < 1e-6 else None

    def wait_port(self, port: int, what: str) -> None:
        import socket

        def ready() -> bool:
            self.check_processes()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        self.wait(ready, 30, what)

    def wait(self, predicate: Callable[[], T | None], timeout_s: float, what: str) -> T:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(1)
        raise DemoError(f"no {what} after {timeout_s:.0f}s; see the logs in {self.work}")

    def step(self, text: str) -> None:
        self.out(f"\n== {text}")
