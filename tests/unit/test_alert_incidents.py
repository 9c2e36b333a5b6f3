"""Incidents: alerts of one agency sharing an entity within a window, as one document (pure)."""

from __future__ import annotations

from detectors.alerts.incidents import alert_entry, can_join, group_alerts, incident_document
from detectors.common.times import iso_ms

T0 = 1_780_000_000.0


def alert(t: float, rule: str, level: str, tactic: list[str], org="so-tc", ip="203.0.113.9", user=None, host="web01"):
    a = {
        "@timestamp": iso_ms(T0 + t + 60),
        "event": {"start": iso_ms(T0 + t), "end": iso_ms(T0 + t + 60)},
        "rule": {"name": rule},
        "organization": {"id": org, "name": "Sở " + org},
        "socpipe": {"level": level, "episode": {"events": 10}},
        "threat": {"tactic": {"name": tactic}},
        "host": {"name": host},
    }
    if ip:
        a["source"] = {"ip": ip}
    if user:
        a["user"] = {"name": user}
    return a


def test_four_alerts_of_one_attack_are_one_incident_in_kill_chain_order():
    alerts = [
        ("a1", alert(0, "Web Scanning", "medium", ["Reconnaissance"], host="web01")),
        ("a2", alert(300, "SSH Brute Force", "high", ["Credential Access"])),
        (
            "a3",
            alert(900, "SSH Login After Failures", "critical", ["Initial Access", "Credential Access"], user="deploy"),
        ),
        ("a4", alert(1500, "Sudo Root Shell", "high", ["Privilege Escalation"], ip=None, user="deploy", host="web01")),
        ("b1", alert(600, "SSH Brute Force", "high", ["Credential Access"], org="so-yte")),  # other agency
        ("c1", alert(20000, "SSH Brute Force", "high", ["Credential Access"])),  # hours later
    ]
    groups = group_alerts(alerts, window_s=3600)
    assert groups == [["a1", "a2", "a3", "a4"], ["b1"], ["c1"]]
    doc = incident_document({"id": "so-tc"}, [alert_entry(a, i) for i, a in alerts[:4]])
    inc = doc["socpipe"]["incident"]
    assert inc["level"] == "critical" and doc["event"]["severity"] == 99 and inc["severity"] == "critical"
    # ATT&CK matrix order, whatever order the alerts came in
    assert inc["tactics"] == ["Reconnaissance", "Initial Access", "Privilege Escalation", "Credential Access"]
    assert [e["alert_id"] for e in inc["timeline"]] == ["a1", "a2", "a3", "a4"]
    assert inc["entities"] == {"host.name": ["web01"], "source.ip": ["203.0.113.9"], "user.name": ["deploy"]}
    assert doc["event"]["start"] == iso_ms(T0) and doc["event"]["end"] == iso_ms(T0 + 1560)
    assert inc["alert_count"] == 4 and inc["events"] == 40 and inc["title"] == "Web Scanning and 3 more"
    # the id derives from the agency and the first alert: a replay makes the same incident
    assert doc["_id"] == incident_document({"id": "so-tc"}, [alert_entry(alerts[0][1], "a1")])["_id"]


def test_weak_entities_do_not_link_and_window_bounds_hold():
    a = alert(0, "r", "low", [], ip=None, user="root", host="localhost")
    inc = incident_document({"id": "so-tc"}, [alert_entry(alert(0, "r", "low", [], user="root"), "x")])
    assert not can_join(inc, a)  # root and localhost are everyone's
    near = alert(3000, "r", "low", [])
    far = alert(3600 + 60 + 1, "r", "low", [])
    assert can_join(inc, near, 3600) and not can_join(inc, far, 3600)
