"""Enrolment, client side: trade a per-agency token for this agent's identity, without surprises.

Order matters: everything that can fail locally (URL scheme, state directory writable, an identity
already there) is checked BEFORE the token is sent, so a refused write never leaves an orphan agent
registered at the SOC. Every network failure names the URL and the likely cause.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from collectors.configfile import is_loopback
from collectors.identity import EnrolmentError, Identity, KafkaCredentials, save_identity
from collectors.version import __version__

ENROL_PATH = "/v1/enroll"


def check_server_url(server: str) -> str:
    """The enrolment URL, normalised; plain http only to a loopback address (the token and the
    returned secret would otherwise cross the network in clear)."""
    url = urllib.parse.urlsplit(server.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise EnrolmentError(f"--server {server!r}: expected https://HOST[:PORT] (e.g. https://soc.example:8765)")
    if url.scheme == "http" and not is_loopback(url.hostname):
        raise EnrolmentError(
            f"--server {server}: plain http to {url.hostname} is refused (the token and the agent's secret "
            "would travel in clear); use https://"
        )
    return f"{url.scheme}://{url.netloc}{url.path.rstrip('/')}"


def check_state_dir(state_dir: str | Path, force: bool = False) -> Path:
    """Create the state dir if needed and prove we can write into it, before anything is sent."""
    d = Path(state_dir)
    who = _whoami()
    if d.is_symlink():
        raise EnrolmentError(f"state dir {d} is a symlink; point --state-dir at the real directory")
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = d / f".enrol-probe-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        probe.unlink()
    except PermissionError:
        raise EnrolmentError(
            f"state dir {d} is not writable by user {who}: nothing was sent to the SOC. Run as root "
            "(sudo socpipe-agent enroll ...) or as the service user, or choose --state-dir"
        ) from None
    except OSError as exc:
        raise EnrolmentError(f"state dir {d}: {exc.strerror}: nothing was sent to the SOC") from None
    ident = d / "identity.json"
    if (ident.exists() or ident.is_symlink()) and not force:
        raise EnrolmentError(
            f"{ident} exists: this agent is already enrolled (nothing was sent). Re-enrolling registers a "
            "NEW agent at the SOC; pass --force to do that on purpose"
        )
    return d


def enroll(
    server: str,
    token: str,
    state_dir: str | Path,
    host: str | None = None,
    agent_version: str | None = None,
    timeout_s: float = 15.0,
    ca_file: str | None = None,
    force: bool = False,
) -> Identity:
    """POST {server}/v1/enroll; on 200 store the identity (0600, owned like the state dir)."""
    base = check_server_url(server)
    d = check_state_dir(state_dir, force)
    url = base + ENROL_PATH
    body = json.dumps(
        {"token": token, "host": host or socket.gethostname(), "agent_version": agent_version or __version__}
    ).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    ctx = None
    if url.startswith("https:"):
        try:
            ctx = ssl.create_default_context(cafile=ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise EnrolmentError(f"--ca-file {ca_file}: cannot load it: {exc}") from None
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=ctx) as resp:
            data = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise EnrolmentError(explain_http_status(url, exc.code)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise EnrolmentError(explain_connection_error(url, exc, timeout_s)) from None
    except ValueError:
        raise EnrolmentError(
            f"{url} answered with something that is not JSON: is this the SOC's enrolment URL?"
        ) from None
    try:
        kafka = data.get("kafka") or {}
        identity = Identity(
            str(data["agency_id"]),
            str(data["agent_id"]),
            str(data["secret"]),
            KafkaCredentials(**{k: str(kafka.get(k, "")) for k in KafkaCredentials.__dataclass_fields__}),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise EnrolmentError(f"{url}: the enrolment answer is missing {exc}") from None
    path = save_identity(d / "identity.json", identity)
    _own_like_parent(path)
    return identity


def explain_http_status(url: str, code: int) -> str:
    causes = {
        400: "the server rejected the request as malformed (agent and SOC versions may differ)",
        403: "the SOC refused the enrolment token (unknown, expired or revoked): ask the SOC for a new one",
        404: "no enrolment endpoint at this URL: check the host, port and path (the SOC prints the URL)",
        405: "no enrolment endpoint at this URL: check the host, port and path",
    }
    cause = causes.get(code, "the enrolment server failed; try again later or tell the SOC")
    return f"{url}: HTTP {code}: {cause}"


def explain_connection_error(url: str, exc: BaseException, timeout_s: float) -> str:
    """One sentence: the URL, what happened, and what is most likely wrong."""
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = urllib.parse.urlsplit(url).hostname or "?"
    https = url.startswith("https:")
    if isinstance(reason, ssl.SSLCertVerificationError):
        detail = reason.verify_message or str(reason)
        return (
            f"{url}: the server's TLS certificate is not trusted ({detail}): pass the SOC's CA "
            "certificate with --ca-file, or check that the host name matches the certificate"
        )
    if isinstance(reason, ssl.SSLError):
        if "WRONG_VERSION_NUMBER" in str(reason) or "record layer failure" in str(reason):
            return f"{url}: the server does not speak TLS on this port (is it an http:// endpoint, or the wrong port?)"
        return f"{url}: TLS handshake failed ({reason.reason or reason}): client and server TLS settings differ"
    if isinstance(reason, socket.gaierror):
        return f"{url}: cannot resolve host {host!r} (DNS): check the spelling of --server and the DNS settings"
    if isinstance(reason, ConnectionRefusedError):
        return f"{url}: connection refused: nothing listens there; is the enrolment server running, is the port right?"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{url}: no answer within {timeout_s:.0f} s: a firewall may drop the traffic, or the host is down"
    if isinstance(reason, (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine)):
        hint = "does it expect https://?" if not https else "is it an https endpoint?"
        return f"{url}: the server closed the connection without an answer: {hint}"
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"{url}: network unreachable: no route to {host} from this server (routing or firewall)"
    return f"{url}: cannot connect: {reason}"


def _whoami() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def _own_like_parent(path: Path) -> None:
    """Root enrolling into the service user's state dir: hand the identity to that user (never
    following a symlink), or the service could not read its own identity."""
    if os.geteuid() != 0:
        return
    st = path.parent.stat()
    if st.st_uid != 0:
        os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
