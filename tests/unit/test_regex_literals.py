"""The `re` prefilter literal (detectors.sigma.regex_literals): every text RE2 matches contains it, so the
candidate index never hides a rule whose regex would match."""

from __future__ import annotations

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.regex_literals import required_literals

# (pattern, texts RE2 matches: the literal must be in each)
CASES = [
    ("abc(def)?ghi", ["xxabcghi", "abcdefghi"]),
    ("(?:mimikatz|kiwi)\\.exe", ["mimikatz.exe", "kiwi.exe"]),
    ("a(bc)+d_long_tail", ["abcbcd_long_tail"]),
    ("r [[:alnum:]]xyz5", ["user axyz5"]),  # RE2 POSIX class: Python read ']xyz5' as required
    ("ab[[:digit:]]+cdefgh", ["ab123cdefgh"]),
    ("u[[:^space:]]{2}longer", ["u-xlonger"]),
    ("[[:alpha:]]:\\\\windows\\\\temp", ["c:\\windows\\temp"]),
]


def test_every_match_contains_the_literal() -> None:
    for pattern, texts in CASES:
        lits = required_literals(pattern)
        rx = re2.compile(pattern)
        for text in texts:
            m = rx.search(text)
            assert m is not None, (pattern, text)
            assert not lits or any(lit in m.group(0) for lit in lits), (
                f"{pattern!r}: no literal of {lits} in {m.group(0)!r}"
            )


def test_plain_literals_are_still_found() -> None:
    assert required_literals("abc(def)?ghi") in (["abc"], ["ghi"])
    assert required_literals("cmd\\.exe /c whoami") == ["cmd.exe /c whoami"]
    assert required_literals("a|b") == []


def test_a_rule_with_a_posix_class_fires(tmp_path) -> None:
    """End to end through the candidate index: the rule was never a candidate before (its atom ']xyz5')."""
    from detectors.normalise.core import parse_line
    from detectors.sigma import Engine, load_rules

    (tmp_path / "posix.yml").write_text(
        "title: POSIX class in a regex\n"
        "id: 6f1d3a52-1b0e-4c6e-9f5e-0a1b2c3d4e5f\n"
        "status: experimental\n"
        "logsource:\n    product: linux\n    service: auth\n"
        "detection:\n    selection:\n        message|re: 'r [[:alnum:]]xyz5'\n    condition: selection\n"
        "level: low\n"
    )
    loaded = load_rules([str(tmp_path)])
    assert not loaded.errors and len(loaded.rules) == 1
    line = "2026-12-06T06:00:00+00:00 web01 sshd[1]: Invalid user axyz5 from 203.0.113.9 port 5000"
    event = parse_line(line, "system.auth", "UTC")
    assert len(Engine(loaded.rules, allowed_lateness=5).match(event).detections) == 1


# (pattern, texts RE2 matches (case-insensitively): one of the literals must be in each)
ALTERNATION_CASES = [
    ("(?:invoke-(?:wmi|cim)method|iwmi|gwmi)\\s+-cn", ["Invoke-CimMethod -cn x", "gwmi  -cn y", "iwmi -cn"]),
    (
        "\\bwinrm(?:\\.cmd)?\\s+(?:quickconfig|qc)\\b|\\bset-wsmanquickconfig\\b",
        ["winrm.cmd qc", "Set-WSManQuickConfig"],
    ),
    ("(?:abc)+d|(?:xyz){2,}", ["abcabcd", "xyzxyz"]),
    ("-(?:ntlm|nt)?hash\\s+[0-9a-f]{32}\\b.*-(?:target|source)", ["-hash " + "a" * 32 + " -target"]),
    ("(?:abc|)def|ghij", ["def", "ghij"]),
]


def test_every_match_contains_one_of_the_literals() -> None:

    for pattern, texts in ALTERNATION_CASES:
        lits = required_literals(pattern)
        assert lits, pattern
        rx = re2.compile("(?i)" + pattern)
        for text in texts:
            m = rx.search(text)
            assert m is not None, (pattern, text)
            assert any(lit in m.group(0).lower() for lit in lits), f"{pattern!r}: none of {lits} in {m.group(0)!r}"


def test_alternations_offer_a_set_and_single_runs_stay_single() -> None:

    assert required_literals("(?:get-wmiobject|gwmi)\\s") == ["get-wmiobject", "gwmi"]
    assert required_literals("cmd\\.exe /c whoami") == ["cmd.exe /c whoami"]
    assert required_literals("a|b") == []  # a branch without a usable literal: no set
    assert required_literals("(?:abc|x)yz") == []
    assert required_literals("[[:alpha:]]:\\\\windows") == []


def test_the_literal_is_worked_out_when_the_index_reads_it(monkeypatch) -> None:
    """Compiling a `re` item (what `rules lint` does) parses no literal; reading its atoms (the index)
    does, once, with the same result as before."""
    from detectors.sigma import typed
    from detectors.sigma.compile import compile_item

    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    calls: list[tuple[str, int]] = []

    def counting(pattern: str, shortest: int = 3) -> list[str]:
        calls.append((pattern, shortest))
        return required_literals(pattern, shortest)

    monkeypatch.setattr(typed, "required_literals", counting)
    compiled = compile_item("CommandLine|re", "mimikatz(\\.exe)? sekurlsa", lambda f: (f,), {}, ())
    assert calls == []
    assert compiled.match({"CommandLine": "x mimikatz.exe sekurlsa::logonpasswords"})
    assert calls == []
    assert compiled.need == frozenset({("CommandLine", "sub", " sekurlsa")})
    assert compiled.need == frozenset({("CommandLine", "sub", " sekurlsa")})
    # the index's literals and the item's own guard (as short as one character), once
    assert calls == [("mimikatz(\\.exe)? sekurlsa", 3), ("mimikatz(\\.exe)? sekurlsa", 1)]
    short = compile_item("f|re", "ab.*", lambda f: (f,), {}, ())
    assert short.need is None  # a literal under 3 characters indexes nothing, as before


def test_a_literal_worked_out_by_the_index_is_kept_for_the_next_start(tmp_path, monkeypatch) -> None:
    """The load saves the cache before the index reads the literals: the engine saves what it worked out."""
    from detectors.normalise.core import parse_line
    from detectors.sigma import Engine, load_rules, ruledocs, typed

    monkeypatch.setenv("SOCPIPE_RULE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ruledocs, "_CACHE", None)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "re.yml").write_text(
        "title: A regex with a literal\n"
        "id: 0d6c1f3a-2b4e-4f60-9a7b-1c2d3e4f5a6b\n"
        "status: experimental\n"
        "logsource:\n    product: linux\n    service: auth\n"
        "detection:\n    selection:\n        message|re: 'Invalid user a[xy]+z5 from'\n    condition: selection\n"
        "level: low\n"
    )
    line = "2026-12-06T06:00:00+00:00 web01 sshd[1]: Invalid user axyz5 from 203.0.113.9 port 5000"
    event = parse_line(line, "system.auth", "UTC")
    assert len(Engine(load_rules([str(rules)]).rules, allowed_lateness=5).match(event).detections) == 1

    def unexpected(pattern: str) -> list[str]:
        raise AssertionError(f"worked out again: {pattern}")

    monkeypatch.setattr(ruledocs, "_CACHE", None)  # the next start: the cache read from disk
    monkeypatch.setattr(typed, "required_literals", unexpected)
    engine = Engine(load_rules([str(rules)]).rules, allowed_lateness=5)
    assert len(engine.match(event).detections) == 1


def test_a_pattern_s_leading_run_after_caret_may_be_two_characters() -> None:
    """A UNC path ('^\\\\\\\\host\\\\share' in a rule's regex: two backslashes, then a host pattern) is indexed
    on its two backslashes, which every match starts with; elsewhere a two-character run still is not."""
    unc = "^\\\\\\\\(?:(?:\\d{1,3}\\.){3}\\d{1,3}\\\\[^\\\\]+|[^\\\\]+\\\\(?:[a-z]|admin)\\$)\\\\"
    assert required_literals(unc) == ["\\\\"]
    assert required_literals("^ab.*") == ["ab"] and required_literals("\\Aab") == ["ab"]
    assert required_literals("ab.*") == [] and required_literals("x^ab") == [] and required_literals("^a.*") == []
    assert required_literals("^[a-z]:a.*") == []  # the run after ^ is empty; ":a" is not first
    rx = re2.compile("(?i)" + unc)
    for text in ["\\\\10.0.0.5\\share\\tool.exe", "\\\\SRV02\\C$\\x.exe", "\\\\dc\\ADMIN$\\p.exe"]:
        m = rx.search(text)
        assert m is not None and "\\\\" in m.group(0)


_piece = st.sampled_from(
    [
        "abc",
        "ab",
        "x",
        "\\\\",
        "-k",
        "(?:cmd|powershell)",
        "(?:abc|x)",
        "[a-c]",
        "\\s",
        ".*",
        "\\d{1,3}",
        "(?:de)+",
        "é",
        "ſt",
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    st.booleans(),
    st.sampled_from(["", "(?i)", "(?s)"]),
    st.lists(_piece, min_size=1, max_size=5),
    st.lists(st.text(alphabet="abcdeEAB xkK-\\\\/1é\u017f\u212at", max_size=12), min_size=1, max_size=5),
)
def test_a_regex_test_answers_as_re2_once_its_literals_are_known(caret, flags, pieces, texts) -> None:
    """After the index read its literals, a `re` item skips RE2 on an ASCII text with none of them:
    its answer is still RE2's on every text (ASCII or not, any case)."""
    from detectors.sigma.typed import compile_regex

    pattern = flags + ("^" if caret else "") + "".join(pieces)
    test = compile_regex(pattern, [], ())
    test.atoms  # noqa: B018 - read as the index reads them: the literals are known from now on
    rx = re2.compile(pattern)
    for text in texts + [t.upper() for t in texts] + ["".join(pieces)]:
        assert test(text) == (rx.search(text) is not None), (pattern, text)
