"""Anomaly models in the stream: a model trained on benign AIT harrison web logs, loaded by a real
worker, flags the CAM-LDS nikto and ffuf steps fed through real Kafka; the alert reaches Elasticsearch
naming its top features. A second, missing model directory is reported and the rules keep working.
A per-request model trained on CSIC 2010 normal requests flags attack requests sent as access-log
lines through Kafka; each alert names the parameter and the property that made it anomalous.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from collectors.wire import LineBatch, LogLine
from detectors.anomaly import save_model_dir, set_stage, train
from detectors.anomaly.sources import InputSpec, read_records
from tests.integration.conftest import alert_sources, es_client, wait_for
from tests.integration.test_detector_e2e import detector_env, produce

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
CSIC = DATASETS / "csic2010_http_training" / "normalTrafficTraining.txt.gz"
HARRISON = DATASETS / "ait_ldsv2_harrison_apache_normal" / "logs" / "intranet.mannsmith.harrison.com-access.log.5"
STEPS = DATASETS / "ait_camlds_attack_manifestations" / "sequences"
ATTACKER = "192.42.1.174"  # the attacker host of CAM-LDS scenario 1 (labels.json: LHOST)
SCANNER_RULE = "a2e3d970-eed5-450e-ab85-5efad65fc2a2"


def step_batches(step: str, agent: str, limit: int = 3000, per_batch: int = 200) -> list[LineBatch]:
    path = STEPS / step / "videoserver" / "logs" / "access.log.2.gz"
    with gzip.open(path, "rt", errors="replace") as fh:
        texts = [line.rstrip("\n") for _, line in zip(range(limit), fh)]
    batches = []
    for i in range(0, len(texts), per_batch):
        lines = [
            LogLine(t, offset=n * 200, line_no=n + 1, seq=n + 1, read_at=time.time())
            for n, t in enumerate(texts[i : i + per_batch], start=i)
        ]
        batches.append(
            LineBatch("city-video", agent, "videoserver", "/var/log/apache2/access.log", lines, dataset="apache.access")
        )
    return batches


def alerts_of(es: Elasticsearch, prefix: str, ruleset: str) -> list[dict]:
    return alert_sources(es, prefix, {"term": {"rule.ruleset": ruleset}})


@pytest.mark.skipif(not HARRISON.is_file() or not STEPS.is_dir(), reason=f"shared datasets not found at {DATASETS}")
def test_nikto_and_ffuf_steps_raise_anomaly_alerts_naming_features(kafka_bootstrap, es_url, unique, procs, tmp_path):
    benign = [r.event for r in read_records(InputSpec(HARRISON, 0, None))]
    model = train("web.source", benign, fp_rate=0.01, n_estimators=50, name="web-harrison")
    model_dir = tmp_path / "web-harrison"
    save_model_dir(model, model_dir)
    set_stage(model_dir, "live", note="integration test")

    env = detector_env(kafka_bootstrap, es_url, unique)
    env |= {
        "SOCPIPE_MODELS": json.dumps([str(model_dir), str(tmp_path / "no-such-model")]),
        "SOCPIPE_ANOMALY_IDLE_FLUSH_S": "2",
        "SOCPIPE_MAX_BATCH_RECORDS": "50",
    }
    prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], step_batches("1_autostart_localaccount-3", "agent-nikto"))
    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    es = es_client(es_url)

    def attacker_anomalies():
        return [
            a
            for a in alerts_of(es, prefix, "anomaly")
            if a["socpipe"]["anomaly"]["entity"].get("source.ip") == ATTACKER
        ]

    def both_steps_seen():
        found = attacker_anomalies()
        return (
            found if found and found[0]["socpipe"]["suppression"]["last_seen"] >= "2025-09-22T18:32" else None
        )  # the 18:31 window ends 18:32

    # nikto (18:30) opens the alert. Nothing follows it, so only the worker's idle flush (2 s without
    # records) can close its window: ffuf, sent after that quiet period, must still be scored (an idle
    # flush once closed all event time, and every later event was dropped as late)
    wait_for(lambda: det.check_alive() and attacker_anomalies(), 90, what="the nikto step's anomaly alert")
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], step_batches("1_autostart_localaccount-4", "agent-ffuf"))
    # ffuf (18:31) repeats its dedup key (model + address) inside the suppression window, so it bumps
    # the count of the same alert instead of opening another
    found = wait_for(lambda: det.check_alive() and both_steps_seen(), 90, what="anomaly alerts covering both steps")
    assert len(found) == 1, [a["event"]["id"] for a in found]
    alert = found[0]
    assert alert["event"]["start"].startswith("2025-09-22T18:30")
    assert alert["socpipe"]["suppression"]["count"] >= 1
    assert alert["rule"]["id"] == "anomaly:web-harrison"
    assert alert["source"]["ip"] == ATTACKER
    features = alert["socpipe"]["anomaly"]["top_features"]
    assert features and all(f["name"] in model.feature_names for f in features)
    assert alert["socpipe"]["anomaly"]["score"] >= alert["socpipe"]["anomaly"]["threshold"]

    # the missing model is a clear error, and the rules kept working
    assert "anomaly_model_unusable" in det.log_tail(200_000) and "no-such-model" in det.log_tail(200_000)
    assert any(a["rule"]["id"] == SCANNER_RULE for a in alerts_of(es, prefix, "sigma"))


def access_batches(lines: list[tuple[str, str]], agent: str) -> list[LineBatch]:
    """(client address, request target) -> one Apache combined line each, one second apart."""
    texts = [
        f'{ip} - - [06/Dec/2026:01:{i // 60:02d}:{i % 60:02d} +0000] "GET {target} HTTP/1.1" 200 2310 "-" '
        '"Mozilla/5.0 (compatible; Konqueror/3.5; Linux) KHTML/3.5.8 (like Gecko)"'
        for i, (ip, target) in enumerate(lines)
    ]
    log_lines = [LogLine(t, offset=n * 300, line_no=n + 1, seq=n + 1, read_at=time.time()) for n, t in enumerate(texts)]
    return [LineBatch("city-shop", agent, "shop", "/var/log/apache2/access.log", log_lines, dataset="apache.access")]


@pytest.mark.skipif(not CSIC.is_file(), reason=f"CSIC 2010 not found at {CSIC}")
def test_attack_requests_raise_alerts_naming_parameter_and_property(kafka_bootstrap, es_url, unique, procs, tmp_path):
    events = [r.event for r in read_records(InputSpec(CSIC, 0, 8000))]
    model = train("web.request", events[:6000], kind="request_profile", name="shop-requests")
    model_dir = tmp_path / "shop-requests"
    save_model_dir(model, model_dir)
    set_stage(model_dir, "live", note="integration test")

    # normal GET requests the model never saw, chosen so that offline scoring keeps them quiet: the
    # stream must agree with it (no alert for these clients)
    normal = [
        e["url.original"] for e in events[6000:] if e.get("url.query") and model.score_request(e)[0] < model.threshold
    ][:30]
    attacks = {
        "198.51.100.7": (
            "/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100"
            "&cantidad=55%27+OR+%271%27%3D%271&B1=A%F1adir+al+carrito",
            "cantidad",
            "numeric_type",
        ),
        "198.51.100.8": (
            "/tienda1/publico/autenticar.jsp?modo=entrar&login=choong&pwd=%2e%2e%2f%2e%2e%2fetc%2fpasswd"
            "&remember=on&B1=Entrar",
            "pwd",
            "charset",
        ),
        "198.51.100.9": ("/tienda1/publico/caracteristicas.jsp?id=2&debug=true", "debug", "unseen_parameter"),
    }
    lines = [(f"10.1.0.{i % 8 + 1}", target) for i, target in enumerate(normal)]
    for n, (ip, (target, _, _)) in enumerate(attacks.items()):
        lines.insert(5 + n * 7, (ip, target))

    env = detector_env(kafka_bootstrap, es_url, unique)
    env |= {"SOCPIPE_MODELS": json.dumps([str(model_dir)]), "SOCPIPE_MAX_BATCH_RECORDS": "50"}
    prefix = env["SOCPIPE_ES_INDEX_PREFIX"]
    produce(kafka_bootstrap, env["SOCPIPE_RAW_TOPIC"], access_batches(lines, "agent-shop"))
    det = procs.start("detector", ["detect", "run", "--config", "config/detector.yaml"], env)
    es = es_client(es_url)

    def all_attacks_alerted():
        found = {a["socpipe"]["anomaly"]["entity"].get("source.ip"): a for a in alerts_of(es, prefix, "anomaly")}
        return found if set(attacks) <= set(found) else None

    found = wait_for(lambda: det.check_alive() and all_attacks_alerted(), 60, what="anomaly alerts for 3 attacks")
    for ip, (target, parameter, prop) in attacks.items():
        alert = found[ip]
        assert alert["rule"]["id"] == "anomaly:shop-requests" and alert["source"]["ip"] == ip
        a = alert["socpipe"]["anomaly"]
        assert a["profile"] == "web.request" and a["score"] >= a["threshold"]
        assert {"parameter": parameter, "property": prop} in [
            {"parameter": r["parameter"], "property": r["property"]} for r in a["reasons"]
        ], a["reasons"]
        assert f"{parameter}.{prop}" in [f["name"] for f in a["top_features"]]
        assert "top reason:" in alert["rule"]["description"]
        assert target in json.dumps(alert)  # the request itself is in the alert's evidence
    time.sleep(2)  # the normal lines were in the same batch; give any stray alert time to land
    quiet = [a for a in alerts_of(es, prefix, "anomaly") if a["source"]["ip"].startswith("10.1.0.")]
    assert quiet == [], [q["socpipe"]["anomaly"]["reasons"] for q in quiet]
