"""Which part of a rule the candidate index keys it on: a Windows channel (every Security or Sysmon
event carries one) prunes nothing, so a selection's other literal (a regex's required text, a
contains value) is preferred, and the channel is used only when nothing else is there."""

from detectors.sigma import Engine, load_rules

RULE = """\
title: {title}
id: {id}
status: test
logsource:
    product: windows
detection:
{detection}
level: high
"""


def _load(tmp_path, **details):
    for i, (name, detection) in enumerate(details.items()):
        (tmp_path / f"{name}.yml").write_text(
            RULE.format(title=name, id=f"00000000-0000-4000-8000-00000000000{i}", detection=detection)
        )
    res = load_rules([tmp_path])
    assert not res.errors, res.errors
    return {r.meta.title: r for r in res.rules}


def test_a_regex_literal_is_preferred_to_the_channel(tmp_path):
    rules = _load(
        tmp_path,
        dcom=(
            "    sel:\n"
            "        Channel: Microsoft-Windows-Sysmon/Operational\n"
            "        CommandLine|re|i: 'GetTypeFrom(?:ProgID|CLSID)\\s*\\('\n"
            "    condition: sel\n"
        ),
        cleared=("    sel:\n        Channel: Security\n        EventID: 1102\n    condition: sel\n"),
        channel_only=("    sel:\n        Channel: Security\n    condition: sel\n"),
    )
    assert {(kind, text) for _, kind, text in rules["dcom"].need} == {("sub", "gettypefrom")}
    assert rules["cleared"].need == frozenset({("event.code", "eq", "1102")})
    assert rules["channel_only"].need == frozenset({("winlog.channel", "eq", "security")})

    engine = Engine(list(rules.values()))
    plain = {
        "event.dataset": "windows.sysmon_operational",
        "winlog.channel": "Microsoft-Windows-Sysmon/Operational",
        "event.code": "1",
        "winlog.event_data.CommandLine": "a",
    }
    assert not engine.candidates(plain)  # not even evaluated
    dcom = {**plain, "winlog.event_data.CommandLine": "[Type]::GetTypeFromProgID ('MMC20.Application', '10.0.0.5')"}
    assert [r.meta.title for r in engine.matching_rules(dcom)] == ["dcom"]
    cleared = {"event.dataset": "system.security", "winlog.channel": "Security", "event.code": "1102"}
    assert sorted(r.meta.title for r in engine.matching_rules(cleared)) == ["channel_only", "cleared"]
