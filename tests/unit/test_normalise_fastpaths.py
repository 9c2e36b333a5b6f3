"""The fast paths (one-regex syslog header, backtrack-free sshd regexes, one-regex access lines) must
produce exactly the events of the general paths they stand in front of (property-based)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.normalise import parse_line, sshd, web

READ_AT = 1764288000.0

octet = st.one_of(st.integers(0, 255), st.integers(256, 999)).map(str)
ipv4 = st.tuples(octet, octet, octet, octet).map(".".join)
peer = st.one_of(ipv4, st.sampled_from(["2001:db8::5", "::ffff:10.0.0.1", "host.example", "[10.0.0.9]", "-"]))
word = st.text(st.sampled_from("abcXYZ019_.-@$:[]' "), min_size=0, max_size=12)
port = st.one_of(st.integers(0, 70000).map(str), st.just("x"))
tail = st.sampled_from(["", " [preauth]", "  ", " [preauth] ", "]", ":", " ssh2"])


@st.composite
def sshd_messages(draw) -> str:
    user, host, p = draw(word), draw(peer), draw(port)
    form = draw(
        st.sampled_from(
            [
                "{v} {m} for {inv}{u} from {h} port {p} {proto}{sig}",
                "{v} {m} for {inv}{u} from {h} port {p}",
                "Invalid user {u} from {h} port {p}",
                "Illegal user {u} from {h}",
                "Connection closed by {kind}user {u} {h} port {p}",
                "Connection closed by {h} port {p}",
                "Disconnected from {kind}user {u} {h} port {p}",
                "Connection reset by {h} port {p}",
                "Received disconnect from {h} port {p}:11: {sig2}",
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={h}  user={u}",
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={h}",
            ]
        )
    )
    return form.format(
        v=draw(st.sampled_from(["Failed", "Accepted"])),
        m=draw(st.sampled_from(["password", "publickey", "none"])),
        inv=draw(st.sampled_from(["", "invalid user ", "illegal user "])),
        u=user,
        h=host,
        p=p,
        proto=draw(st.sampled_from(["ssh2", "ssh", "ssh1"])),
        kind=draw(st.sampled_from(["", "authenticating ", "invalid ", "illegal "])),
        sig=draw(st.sampled_from(["", ": RSA SHA256:abc", ": ED25519 SHA256:q/x", ": x]"])),
        sig2=draw(word),
    ) + draw(tail)


PAIRS = [
    (sshd._FAILED_ACCEPTED_FAST, sshd._FAILED_ACCEPTED),
    (sshd._INVALID_USER_FAST, sshd._INVALID_USER),
    (sshd._CLOSED_FAST, sshd._CLOSED),
    (sshd._RECEIVED_DISCONNECT_FAST, sshd._RECEIVED_DISCONNECT),
]


@settings(max_examples=400, deadline=None)
@given(sshd_messages())
def test_fast_sshd_regexes_agree_with_general_ones(msg: str) -> None:
    for fast, general in PAIRS:
        m = fast.match(msg)
        if m is not None:
            g = general.match(msg)
            assert g is not None, (msg, fast.pattern)
            # the general _CLOSED says '' for "no reason", the fast one None; both mean absent
            assert [x or None for x in m.groups()] == [x or None for x in g.groups()], msg


@settings(max_examples=300, deadline=None)
@given(sshd_messages(), st.sampled_from(["sshd", "sshd-session"]), st.integers(1, 99999))
def test_syslog_fast_path_matches_general_path(msg: str, program: str, pid: int) -> None:
    line = f"Nov 27 10:00:01 web1 {program}[{pid}]: {msg}"
    fast = parse_line(line, read_at=READ_AT)
    general = parse_line(line.encode(), read_at=READ_AT)  # bytes skip the str-only fast path
    assert list(fast.items()) == list(general.items())  # same fields, values and order


field = st.text(st.sampled_from('ab-1.,:" \\'), min_size=1, max_size=6)
quoted = st.text(st.sampled_from('ab -/.;()"\\'), max_size=15)


@st.composite
def access_lines(draw) -> str:
    client = draw(st.one_of(ipv4, st.sampled_from(["2001:db8::1", "10.0.0.1, 10.0.0.2", "host"]), field))
    ident, user = draw(st.one_of(st.just("-"), field)), draw(st.one_of(st.just("-"), field))
    ts = draw(
        st.sampled_from(
            [
                "01/Nov/2025:00:00:00 +0700",
                "31/Dec/2025:23:59:59 -0530",
                "01/Nov/2025:00:00:61 +0700",
                "99/Foo/2025:00:00:00 +0000",
            ]
        )
    )
    method = draw(st.sampled_from(["GET", "POST", "get", "PROPFIND", "-"]))
    path = draw(
        st.sampled_from(
            ["/", "/a.php", "/x/y.TAR.GZ", "/s?q=a+b", "/s?", "http://h/p", "*", "/a b", "/x.verylongextension"]
        )
    )
    version = draw(st.sampled_from([" HTTP/1.1", " HTTP/2.0", "", " HTTP/"]))
    status = draw(st.sampled_from(["200", "404", "-", "999"]))
    size = draw(st.sampled_from(["0", "512", "-", "1234567890123456789012"]))
    line = f'{client} {ident} {user} [{ts}] "{method} {path}{version}" {status} {size}'
    if draw(st.booleans()):
        line += f' "{draw(quoted)}" "{draw(quoted)}"'
    return line + draw(st.sampled_from(["", ' "1.2.3.4"', " 0.003", " ", "  \t", "\n"]))


@settings(max_examples=500, deadline=None)
@given(access_lines(), st.sampled_from(["apache.access", "nginx.access"]))
def test_access_fast_path_matches_general_path(line: str, dataset: str) -> None:
    assert web.parse_access(line, "Asia/Ho_Chi_Minh", dataset) == web.access_general(line, "Asia/Ho_Chi_Minh", dataset)
