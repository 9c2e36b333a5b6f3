"""The detector pipeline end to end: Kafka -> one real worker process -> alerts searchable in ES.

For models off and on (a `web.source` IsolationForest trained on synthetic benign traffic), at a fixed offered rate:

* latency: 20 events/s are scanner requests (a single-event Sigma rule), each from its own address
  so suppression never folds them; the rest are benign access lines, 100 per Kafka record. A poller
  searches the alert indices every 25 ms; p50/p99 of produced -> searchable;
* lag: how long after the last produce the worker had consumed every line (0 = kept up);
* throughput: then BURST lines are produced as fast as possible and the worker's drain rate is read
  from its own `socpipe_detector_lines_total` counter, per wall second and per CPU-second of the
  worker process (the figure that means something on a shared machine; target >= 30k, models off);
* scale-out (--no-scale-out to skip): a backlog over 64 sources drained by one worker, then by two in
  one group, alternately for --rounds (medians); each process's CPU time gives what two free cores
  would drain (target >= 1.7x one). Drains start once both stages' partitions are settled and end on
  the group's committed offsets (Kafka), so no rebalance and no metrics scraping is in the figure;
  --assignment load,range also runs it with kafka-python's range assignor, for comparison.
Completion of the throughput burst is read from committed offsets too.

    . .socpipe/stack/env; python tests/bench/bench_pipeline.py [--seconds 20] [--rate 5000]
        [--models off,on|none] [--profile /tmp/worker.prof]   # cProfile of the worker per mode
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kafka import KafkaProducer  # noqa: E402

from collectors.wire import LineBatch, LogLine  # noqa: E402
from tests.bench.benchreport import target as report_target  # noqa: E402
from tests.bench.benchreport import verdict  # noqa: E402
from tests.integration.conftest import es_client, free_port  # noqa: E402  (plain or secured stack)
from tests.integration.signing import TEST_AGENTS  # noqa: E402  (records signed as an enrolled agent's)

SCANNER_RULE = "a2e3d970-eed5-450e-ab85-5efad65fc2a2"  # rules/web/web_scanner_tools.yml
LINES_PER_RECORD = 100
TRIGGERS_PER_S = 20


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def access_line(ip: str, path: str, agent: str, status: int = 200) -> str:
    ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    return f'{ip} - - [{ts}] "GET {path} HTTP/1.1" {status} 153 "-" "{agent}"'


def train_models(out: Path) -> list[str]:
    from detectors.anomaly import save_model_dir, set_stage, train
    from pipeline.devtools.synthetic import benign_web

    benign = benign_web(time.time() - 3 * 86400, minutes=24 * 60, seed=3)
    dirs = []
    # `web.source` (IsolationForest over per-address 1-minute windows) only: scored when windows
    # close, so cheap per event. Per-request `web.request` models score every event as it arrives: the
    # old forest/baseline kinds measured far too slow in the worker (~0.5 ms/event); the current
    # default kind, request_profile, costs ~11-17 us/request (bench_anomaly) but is not in this
    # end-to-end figure yet.
    for profile, kind in (("web.source", "isolation_forest"),):
        d = out / profile
        save_model_dir(train(profile, benign, fp_rate=0.01, kind=kind), d)
        set_stage(d, "live", note="bench")
        dirs.append(str(d))
    return dirs


def scrape(port: int) -> dict[str, float]:
    """A worker's metrics, `name{labels}` -> value (empty while it is not up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def lines_total(port: int) -> float:
    return scrape(port).get("socpipe_detector_lines_total", 0.0)


class GroupProgress:
    """How far a consumer group has committed on a topic, asked of Kafka, not of the workers: scraping a
    worker's /metrics every 20-50 ms to see when it was done cost it ~1.6 ms of CPU per scrape (~33 ms
    per second, measured on an idle worker), charged to the very figure being measured (and twice as
    heavily to each of two workers, whose share of the work is half)."""

    def __init__(self, kafka: str, group: str, topic: str) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
        self.topic = topic

    def _tps(self) -> list:
        from kafka import TopicPartition

        parts = self.consumer.partitions_for_topic(self.topic) or set()
        return [TopicPartition(self.topic, p) for p in sorted(parts)]

    def end(self) -> dict[int, int]:
        return {tp.partition: off for tp, off in self.consumer.end_offsets(self._tps()).items()}

    def committed(self) -> dict[int, int]:
        return {tp.partition: self.consumer.committed(tp) or 0 for tp in self._tps()}

    def reached(self, end: dict[int, int]) -> bool:
        done = self.committed()
        return all(done.get(p, 0) >= off for p, off in end.items())

    def close(self) -> None:
        self.consumer.close()


DRAIN_TARGET = 30_000  # events per CPU-second of one worker process, models off (issue 15)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far: on a shared machine the
    worker's own CPU time, not the wall clock, says what one core would drain."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(kafka: str, es_url: str, seconds: float, rate: int, burst: int, models: list[str], profile: str | None) -> None:
    unique = uuid.uuid4().hex[:8]
    prefix = f"benchp{unique}"
    port = free_port()
    env = {
        **os.environ,
        "SOCPIPE_KAFKA_BOOTSTRAP": kafka,
        "SOCPIPE_ES_URL": es_url,
        "SOCPIPE_ES_INDEX_PREFIX": prefix,
        "SOCPIPE_GROUP_ID": f"benchp-{unique}",
        "SOCPIPE_RAW_TOPIC": f"raw-{unique}",
        "SOCPIPE_CORRELATION_TOPIC": f"corr-{unique}",
        "SOCPIPE_STATE_TOPIC": f"state-{unique}",
        "SOCPIPE_DEAD_LETTER_TOPIC": f"dlq-{unique}",
        "SOCPIPE_METRICS_PORT": str(port),
        "SOCPIPE_INVENTORY": "",
        "SOCPIPE_REGISTRY": str(TEST_AGENTS.path),
        "SOCPIPE_MODELS": "[" + ",".join(f'"{m}"' for m in models) + "]",
    }
    cmd = [sys.executable, "-m", "pipeline.cli", "detect", "run", "--config", "config/detector.yaml"]
    if profile:
        cmd = [sys.executable, "-m", "cProfile", "-o", profile, *cmd[1:]]
    log = open(f"/tmp/bench_pipeline_worker_{unique}.log", "w")
    worker = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    es = es_client(es_url)
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=5, batch_size=1 << 20, acks=1)
    topic = env["SOCPIPE_RAW_TOPIC"]
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()
    trig_seq = [0]

    def send_trigger(ip: str) -> None:
        trig_seq[0] += 1
        line = LogLine(
            access_line(ip, "/admin/config.php", "sqlmap/1.7.2#stable", 404),
            seq=trig_seq[0],
            line_no=trig_seq[0],
            offset=trig_seq[0] * 120,
            read_at=time.time(),
        )
        batch = LineBatch("bench-agency", "bench", "web01", "/var/log/nginx/access.log", [line], dataset="nginx.access")
        sent[ip] = time.time()
        TEST_AGENTS.send(producer, topic, batch)

    def poll() -> None:
        while not stop.is_set():
            try:
                res = es.search(
                    index=f"{prefix}-alerts-*",
                    size=2000,
                    source_includes=["source.ip"],
                    query={
                        "bool": {
                            "filter": [
                                {"term": {"rule.id": SCANNER_RULE}},
                                {"range": {"event.ingested": {"gte": "now-15s"}}},
                            ]
                        }
                    },
                    ignore_unavailable=True,
                    allow_no_indices=True,
                )
                now = time.time()
                for h in res["hits"]["hits"]:
                    seen.setdefault(h["_source"].get("source", {}).get("ip", ""), now)
            except Exception as exc:  # keep polling through a hiccup; the figures will show it
                print(f"poll error: {exc}", file=sys.stderr)
            time.sleep(0.025)

    seq = [0]

    def noise_record(source: str = "/var/log/nginx/other.log") -> LineBatch:
        lines = []
        for _ in range(LINES_PER_RECORD):
            seq[0] += 1
            s = seq[0]
            lines.append(
                LogLine(
                    access_line(f"10.{s // 50000 % 250}.{s % 250}.{s % 200 + 1}", f"/p/{s % 977}", "Mozilla/5.0"),
                    offset=s * 150,
                    line_no=s,
                    seq=s,
                    read_at=time.time(),
                )
            )
        return LineBatch("bench-agency", "bench", "web02", source, lines, dataset="nginx.access")

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    label = "models on " if models else "models off"
    try:
        deadline, n = time.time() + 120, 0
        while not any(ip.startswith("198.19.") for ip in seen):  # worker up, topics made, group joined
            if time.time() > deadline or worker.poll() is not None:
                raise SystemExit(f"worker produced no alert in 120 s; see {log.name}")
            send_trigger(f"198.19.0.{n % 250 + 1}")
            producer.flush()
            n += 1
            time.sleep(1.0)
        base_lines = lines_total(port)
        records_per_s = max(1, (rate - TRIGGERS_PER_S) // LINES_PER_RECORD)
        start, i, trig = time.time(), 0, 0
        while time.time() - start < seconds:
            TEST_AGENTS.send(producer, topic, noise_record())
            i += 1
            while trig < (time.time() - start) * TRIGGERS_PER_S:
                send_trigger(f"198.18.{trig // 250 % 250}.{trig % 250 + 1}")
                trig += 1
            delay = start + i * (1.0 / records_per_s) - time.time()
            if delay > 0:
                time.sleep(delay)
        producer.flush()
        produced_at = time.time()
        elapsed = produced_at - start
        offered = i * LINES_PER_RECORD + trig
        while lines_total(port) - base_lines < offered and time.time() - produced_at < 120:
            time.sleep(0.05)
        lag = time.time() - produced_at
        tags = [f"198.18.{k // 250 % 250}.{k % 250 + 1}" for k in range(trig)]
        settle = time.time() + 15
        while time.time() < settle and not all(t in seen for t in tags):
            time.sleep(0.1)
        lat = [seen[t] - sent[t] for t in tags if t in seen]
        print(
            f"[{label}] offered {offered / elapsed:,.0f} events/s for {elapsed:.0f} s; {trig} alerting events, "
            f"{len(lat)} alerts seen" + (f" ({trig - len(lat)} missing)" if len(lat) < trig else "")
        )
        if lat:
            print(
                f"[{label}]   produced -> searchable: p50 {pct(lat, 0.5) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms,"
                f" max {max(lat) * 1000:.0f} ms; consumed everything {lag:.1f} s after the last produce"
            )
        # throughput: a burst produced as fast as possible, drained by the worker; done when the
        # group's committed offsets reach the end (asked of Kafka, so the worker is not scraped meanwhile)
        progress = GroupProgress(kafka, env["SOCPIPE_GROUP_ID"], topic)
        end0 = progress.end()
        while not progress.reached(end0) and worker.poll() is None:
            time.sleep(0.05)
        before = lines_total(port)
        cpu_before = process_cpu(worker.pid)
        for _ in range(burst // LINES_PER_RECORD):
            TEST_AGENTS.send(producer, topic, noise_record("/var/log/nginx/burst.log"))
        producer.flush()
        end1 = progress.end()
        t0, first = None, 0
        while True:
            done = progress.committed()
            if all(done.get(p, 0) >= off for p, off in end1.items()):
                break
            if t0 is None and any(done.get(p, 0) > end0.get(p, 0) for p in end1):
                t0 = time.time()  # the first batch of the burst is committed
                first = LINES_PER_RECORD * sum(max(0, done.get(p, 0) - end0.get(p, 0)) for p in end1)
            if worker.poll() is not None:
                raise SystemExit(f"worker died; see {log.name}")
            time.sleep(0.05)
        cpu = process_cpu(worker.pid) - cpu_before
        took = time.time() - (t0 or time.time() - 1e-3)
        progress.close()
        if lines_total(port) - before < burst:
            raise SystemExit(f"worker committed the burst but counted {lines_total(port) - before:,.0f} lines")
        per_cpu = burst / cpu if cpu > 0 else float("nan")
        if not models:
            report_target(
                "worker drain, models off",
                per_cpu,
                DRAIN_TARGET,
                unit="ev/CPU-s",
                higher_is_better=True,
                baseline=f"{(burst - first) / took:,.0f} events/s wall",
            )
        target = (
            "" if models else f"  [target >= {DRAIN_TARGET:,}/CPU-s] {'MET' if per_cpu >= DRAIN_TARGET else 'MISSED'}"
        )
        print(
            f"[{label}]   throughput: {(burst - first) / took:,.0f} events/s wall draining a {burst:,}-line backlog "
            f"(one worker process); {per_cpu:,.0f} events per CPU-second of the worker{target}"
        )
    finally:
        stop.set()
        poller.join(2)
        producer.close(timeout=5)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
        log.close()
        for kind in ("alerts", "events"):
            for name in es.indices.get(index=f"{prefix}-{kind}-*", ignore_unavailable=True, allow_no_indices=True):
                es.indices.delete(index=name)
            es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{kind}")


SCALE_TARGET = 1.7  # two worker processes on two cores vs one (issue 15)


def scale_out(kafka: str, es_url: str, burst: int, rounds: int, assignment: str = "load") -> None:
    """One worker process drains a backlog spread over 64 sources, then a second joins the group and both
    drain the same amount again; the second leaves, and that is repeated `rounds` times (one and two
    alternate, so a change in the machine's load between them moves both alike). On a shared machine the
    wall clock says little, so each process's own CPU time is read: two processes on two free cores would
    take the longer of their CPU times, hence scale = (burst / max CPU of the two) / (burst / CPU of one).

    Fair to both sides: a drain starts only once every worker holds its partitions in both stages (no
    rebalance inside a measurement), and its end is read from the group's committed offsets in Kafka, not
    by scraping the workers. Printed beside it: each raw partition's records and each worker's lines,
    i.e. how evenly the 64 keys hashed, and the ceiling that alone leaves (1 / the larger share)."""
    unique = uuid.uuid4().hex[:8]
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "SOCPIPE_KAFKA_BOOTSTRAP": kafka,
        "SOCPIPE_ES_URL": es_url,
        "SOCPIPE_ES_INDEX_PREFIX": f"benchs{unique}",
        "SOCPIPE_GROUP_ID": f"benchs-{unique}",
        "SOCPIPE_RAW_TOPIC": f"raws-{unique}",
        "SOCPIPE_CORRELATION_TOPIC": f"corrs-{unique}",
        "SOCPIPE_STATE_TOPIC": f"states-{unique}",
        "SOCPIPE_DEAD_LETTER_TOPIC": f"dlqs-{unique}",
        "SOCPIPE_INVENTORY": "",
        "SOCPIPE_REGISTRY": str(TEST_AGENTS.path),
        "SOCPIPE_MODELS": "[]",
        "SOCPIPE_PARTITION_ASSIGNMENT": assignment,
    }
    cmd = [sys.executable, "-m", "pipeline.cli", "detect", "run", "--config", "config/detector.yaml"]
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=5, batch_size=1 << 20, acks=1)
    topic = env["SOCPIPE_RAW_TOPIC"]
    seq = [0]
    per_source: dict[str, int] = {}

    def records(n_lines: int) -> list:
        """Signed records built ahead, so the backlog lands at once and is drained in full batches. Each
        source numbers its own lines 1, 2, 3... as an agent does (one counter shared by all 64 sources
        left a gap in every stream at every record, and the dedup state, saved with every batch, grew by
        every line drained: each round was slower than the last)."""
        out = []
        for r in range(n_lines // LINES_PER_RECORD):
            source = f"/var/log/nginx/site{r % 64}.log"  # 64 sources, as many records each
            lines = []
            for _ in range(LINES_PER_RECORD):
                seq[0] += 1
                k = seq[0]
                per_source[source] = n = per_source.get(source, 0) + 1
                lines.append(
                    LogLine(
                        access_line(f"10.{k // 50000 % 250}.{k % 250}.{k % 200 + 1}", f"/p/{k % 977}", "Mozilla/5.0"),
                        offset=n * 150,
                        line_no=n,
                        seq=n,
                        read_at=time.time(),
                    )
                )
            out.append(
                TEST_AGENTS.record(LineBatch("bench-agency", "bench", "web02", source, lines, dataset="nginx.access"))
            )
        return out

    def produce(backlog: list) -> None:
        for key, headers, value in backlog:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()

    def start(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            cmd, cwd=ROOT, env={**env, "SOCPIPE_METRICS_PORT": str(ports[i])}, stdout=logs[i], stderr=subprocess.STDOUT
        )

    def settle(workers: list) -> None:
        """Until the workers hold every partition of both stages between them, each some of each."""
        assert progress is not None  # known before the first round
        deadline, partitions = time.time() + 120, len(progress.end())  # raw; the correlation topic has as many
        while time.time() < deadline:
            held = [scrape(p) for p in ports[: len(workers)]]
            stages = [[m.get(f'socpipe_detector_partitions{{stage="{s}"}}', 0) for m in held] for s in "12"]
            if all(sum(st) == partitions and all(st) for st in stages):
                time.sleep(0.5)
                return
            if any(w.poll() is not None for w in workers):
                raise SystemExit("scale-out: a worker died")
            time.sleep(0.5)
        raise SystemExit(f"scale-out: workers did not settle on {partitions} partitions per stage in 120 s")

    def drain(workers: list, n_lines: int) -> tuple[list[float], list[float], dict[int, int]]:
        assert progress is not None
        backlog = records(n_lines)
        end0 = progress.end()
        before = [lines_total(p) for p in ports[: len(workers)]]
        cpu0 = [process_cpu(w.pid) for w in workers]
        t0 = time.time()
        produce(backlog)
        end1 = progress.end()
        deadline = time.time() + 600
        while not progress.reached(end1):
            if time.time() > deadline or any(w.poll() is not None for w in workers):
                raise SystemExit("scale-out: workers did not drain the backlog")
            time.sleep(0.05)
        cpu = [process_cpu(w.pid) - c for w, c in zip(workers, cpu0, strict=True)]
        wall = time.time() - t0
        lines = [lines_total(p) - b for p, b in zip(ports, before, strict=False)]
        per_part = {p: end1[p] - end0.get(p, 0) for p in sorted(end1)}
        print(
            f"[scale-out]  {len(workers)} worker(s): records per raw partition {per_part}; lines per worker "
            f"{[int(n) for n in lines]}; CPU s {[round(c, 2) for c in cpu]}; wall {wall:.1f} s; "
            f"lines per CPU-s {[round(n / c) if c else 0 for n, c in zip(lines, cpu, strict=False)]}"
        )
        return cpu, lines, per_part

    logs = [open(f"/tmp/bench_pipeline_scale_{unique}_{i}.log", "w") for i in range(2)]
    workers: list[subprocess.Popen] = []
    progress: GroupProgress | None = None
    try:
        workers.append(start(0))
        deadline = time.time() + 120
        while not lines_total(ports[0]):  # warm up: group joined, topics made, rules loaded
            if time.time() > deadline or workers[0].poll() is not None:
                raise SystemExit("scale-out: the first worker did not start")
            produce(records(8 * LINES_PER_RECORD))
            time.sleep(1.0)
        progress = GroupProgress(kafka, env["SOCPIPE_GROUP_ID"], topic)
        while not progress.reached(progress.end()):
            time.sleep(0.1)
        ratios, ones, twos, shares = [], [], [], []
        for _ in range(rounds):
            settle(workers)
            one, _, _ = drain(workers, burst)
            workers.append(start(1))
            settle(workers)
            two, lines, _ = drain(workers, burst)
            workers.pop().send_signal(signal.SIGTERM)  # the second leaves; the first takes everything back
            ones.append(burst / one[0])
            twos.append(burst / max(two))
            ratios.append(twos[-1] / ones[-1])
            shares.append(max(lines) / sum(lines))
        rate1, rate2 = statistics.median(ones), statistics.median(twos)
        scale = statistics.median(ratios)
        ceiling = 1 / statistics.median(shares)
        if assignment == "load":  # the worker's default; `range` is printed for comparison only
            report_target(
                "two workers / one (CPU-derived)",
                scale,
                SCALE_TARGET,
                unit="x",
                higher_is_better=True,
                baseline=f"one worker {rate1:,.0f} ev/CPU-s; key split ceiling {ceiling:.2f}x",
            )
        print(
            f"[scale-out {assignment}]  {rounds} rounds, medians: one worker {rate1:,.0f} events per CPU-second; two workers "
            f"{rate2:,.0f} events/s on two free cores; {scale:.2f}x one (rounds: {', '.join(f'{r:.2f}' for r in ratios)}); "
            f"the busier worker had {statistics.median(shares):.1%} of the lines: {ceiling:.2f}x at best with that "
            f"key split, so the workers reach {scale / ceiling:.0%} of it "
            f"{verdict(scale, SCALE_TARGET, higher_is_better=True)}"
        )
    finally:
        if progress is not None:
            progress.close()
        producer.close(timeout=5)
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        for f in logs:
            f.close()
        es = es_client(es_url)
        for kind in ("alerts", "events"):
            for name in es.indices.get(
                index=f"benchs{unique}-{kind}-*", ignore_unavailable=True, allow_no_indices=True
            ):
                es.indices.delete(index=name)
            es.options(ignore_status=404).indices.delete_index_template(name=f"benchs{unique}-{kind}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--scale-out",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also two worker processes against one (models off)",
    )
    ap.add_argument(
        "--assignment", default="load", help="scale-out with these partition_assignment settings (load, range)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="scale-out: one/two worker rounds (median reported)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--burst", type=int, default=100_000)
    ap.add_argument("--models", default="off,on", help="modes to run (off, on; none: only the scale-out)")
    ap.add_argument("--profile", default=None, help="write a cProfile of the worker to PROFILE.off / PROFILE.on")
    args = ap.parse_args()
    kafka, es_url = os.environ.get("SOCPIPE_KAFKA_BOOTSTRAP"), os.environ.get("SOCPIPE_ES_URL")
    if not kafka or not es_url:
        raise SystemExit("start the stack and source its env (SOCPIPE_KAFKA_BOOTSTRAP, SOCPIPE_ES_URL)")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in [m for m in args.models.split(",") if m not in ("", "none")]:
            models = train_models(Path(tmp) / mode) if mode == "on" else []
            run(
                kafka,
                es_url,
                args.seconds,
                args.rate,
                args.burst,
                models,
                f"{args.profile}.{mode}" if args.profile else None,
            )
    if args.scale_out:
        for assignment in args.assignment.split(","):
            scale_out(kafka, es_url, args.burst, args.rounds, assignment)


if __name__ == "__main__":
    main()
