"""Why the agent cannot deliver to Kafka: refused credentials, missing ACLs, an untrusted certificate,
or a broker that is really unreachable.

kafka-python 3.x hides most of these behind one `KafkaTimeoutError: Unable to bootstrap`: a TLS
failure only shows in its connection log, and a SCRAM login the broker rejects looks like "socket
disconnected" (the broker answers the failed SaslAuthenticate and closes; the client drops the answer
with the EOF). So when a failure says nothing specific, `probe` walks the connection once itself,
with blocking sockets: TCP, TLS with the configured CA, SaslHandshake and the SASL exchange
(SCRAM-SHA-256/512 or PLAIN). Authorization errors (the broker accepted the login but the ACLs do
not allow the write) do reach the producer's futures and are classified from the exception.

`classify` and the protocol framing are pure; `probe` does the I/O and never raises.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import ssl
import struct
from typing import Any

from collectors.health import KAFKA_AUTH_FAILED, KAFKA_NOT_AUTHORIZED, KAFKA_TLS_FAILED, KAFKA_UNREACHABLE

REVOKED_HINT = "the agent may have been revoked; re-enrol"
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36  # Kafka API keys, both spoken at version 1


def auth_failed(addr: str, detail: str) -> tuple[str, str]:
    return KAFKA_AUTH_FAILED, f"Kafka refused the agent's credentials at {addr} ({detail}) — {REVOKED_HINT}"


def tls_failed(addr: str, exc: BaseException | str) -> tuple[str, str]:
    text = getattr(exc, "verify_message", "") or str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return KAFKA_TLS_FAILED, (
            f"TLS handshake with {addr} failed: certificate not trusted ({text[:160]}) — check kafka.ssl_cafile "
            "(the CA handed out at enrolment) and that the bootstrap host name matches the broker's certificate"
        )
    return KAFKA_TLS_FAILED, f"TLS handshake with {addr} failed: {text[:160]}"


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def classify(exc: BaseException, bootstrap: str, topic: str) -> tuple[str, str]:
    """(kafka state, message) for an exception from the producer (constructor, send or future)."""
    names, name, raw = _names(exc), type(exc).__name__, str(exc)
    text = raw if raw.startswith(name) else f"{name}: {raw}"
    if "AuthorizationError" in names:  # TopicAuthorizationFailedError, ClusterAuthorizationFailedError ...
        what = f"not allowed to write {topic}" if "TopicAuthorizationFailedError" in names else "not authorized"
        return KAFKA_NOT_AUTHORIZED, (
            f"{what} at {bootstrap} ({type(exc).__name__}) — the broker accepted the agent's login but its ACLs "
            f"do not allow this; {REVOKED_HINT} (or ask the SOC to grant it)"
        )
    if names & {"SaslAuthenticationFailedError", "AuthenticationFailedError", "IllegalSaslStateError"}:
        return auth_failed(bootstrap, type(exc).__name__ + (f": {exc}" if str(exc) else ""))
    if isinstance(exc, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text or "Handshake failed" in text:
        return tls_failed(bootstrap, exc)
    return KAFKA_UNREACHABLE, text[:200]


# --- Kafka protocol, just enough for SaslHandshake v1 and SaslAuthenticate v1 -----------------------------
def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def encode_request(api_key: int, correlation_id: int, client_id: str, body: bytes) -> bytes:
    """Size-prefixed request with header v1 (api_key, api_version 1, correlation id, client id)."""
    msg = struct.pack(">hhi", api_key, 1, correlation_id) + _str(client_id) + body
    return struct.pack(">i", len(msg)) + msg


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode(errors="replace")
        self.pos += n
        return s

    def blob(self) -> bytes:
        n = self.take(">i")
        b = self.data[self.pos : self.pos + max(n, 0)]
        self.pos += max(n, 0)
        return b


def decode_handshake(body: bytes) -> tuple[int, list[str]]:
    r = _Reader(body)
    r.take(">i")  # correlation id
    err = r.take(">h")
    return err, [r.string() or "" for _ in range(r.take(">i"))]


def decode_authenticate(body: bytes) -> tuple[int, str, bytes]:
    r = _Reader(body)
    r.take(">i")
    err = r.take(">h")
    message = r.string() or ""
    return err, message, r.blob()


class Scram:
    """The client side of RFC 5802 (SCRAM-SHA-256 / SCRAM-SHA-512), as Kafka speaks it."""

    def __init__(self, mechanism: str, user: str, password: str, nonce: str | None = None) -> None:
        self.hash = "sha512" if mechanism.endswith("512") else "sha256"
        self.password = password.encode()
        self.nonce = nonce or secrets.token_urlsafe(24)
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = f"n={name},r={self.nonce}"
        self.server_signature = b""

    def first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        fields = dict(f.split("=", 1) for f in text.split(",") if "=" in f)
        if not fields.get("r", "").startswith(self.nonce):
            raise ValueError("server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac(self.hash, self.password, base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored = hashlib.new(self.hash, client_key).digest()
        without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{self.first_bare},{text},{without_proof}".encode()
        signature = hmac.new(stored, auth_message, self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", self.hash).digest()
        self.server_signature = hmac.new(server_key, auth_message, self.hash).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


# --- the probe ------------------------------------------------------------------------------------------
def _recv_exact(sock: socket.socket | ssl.SSLSocket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        buf += chunk
    return buf


def _call(sock: socket.socket | ssl.SSLSocket, api_key: int, cid: int, body: bytes) -> bytes:
    sock.sendall(encode_request(api_key, cid, "socpipe-agent-probe", body))
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    return _recv_exact(sock, size)


def _tls_context(kw: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=kw.get("ssl_cafile") or None)
    ctx.check_hostname = bool(kw.get("ssl_check_hostname", True))
    if kw.get("ssl_certfile"):
        ctx.load_cert_chain(kw["ssl_certfile"], kw.get("ssl_keyfile") or None, kw.get("ssl_password"))
    return ctx


def _sasl(sock: socket.socket | ssl.SSLSocket, kw: dict[str, Any], addr: str) -> tuple[str, str] | None:
    mech = str(kw.get("sasl_mechanism") or "PLAIN")
    user, password = str(kw.get("sasl_plain_username") or ""), str(kw.get("sasl_plain_password") or "")
    err, mechanisms = decode_handshake(_call(sock, SASL_HANDSHAKE, 1, _str(mech)))
    if err:
        return auth_failed(addr, f"the broker does not offer {mech}; it offers {', '.join(mechanisms) or 'none'}")
    scram = Scram(mech, user, password) if mech.startswith("SCRAM-") else None
    tokens = [scram.first()] if scram else [f"\0{user}\0{password}".encode()]
    cid = 2
    while tokens:
        token = tokens.pop()
        try:
            err, message, answer = decode_authenticate(
                _call(sock, SASL_AUTHENTICATE, cid, struct.pack(">i", len(token)) + token)
            )
        except (ConnectionError, OSError) as exc:
            return auth_failed(addr, f"SASL {mech} login as {user!r} rejected: {exc}")
        cid += 1
        if err:
            return auth_failed(addr, f"SASL {mech} login as {user!r} rejected: {message or f'error {err}'}")
        if scram is not None and cid == 3:
            tokens.append(scram.final(answer))
    return None


def probe(kw: dict[str, Any], timeout_s: float = 5.0) -> tuple[str, str] | None:
    """Walk TCP -> TLS -> SASL against each bootstrap server; the first specific failure found, or
    None when one server accepted the whole login (the cause is elsewhere) or every one is unreachable
    (the caller's own error says how)."""
    protocol = str(kw.get("security_protocol") or "PLAINTEXT")
    for server in kw.get("bootstrap_servers") or []:
        host, _, port = str(server).rpartition(":")
        try:
            raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s)
        except (OSError, ValueError):
            continue  # really unreachable (or not this one): try the next
        try:
            sock: socket.socket | ssl.SSLSocket = raw
            if "SSL" in protocol:
                try:
                    sock = _tls_context(kw).wrap_socket(raw, server_hostname=host.strip("[]"))
                except ssl.SSLError as exc:
                    return tls_failed(server, exc)
                except OSError as exc:  # reset during the handshake: not a verdict on the certificate
                    return tls_failed(server, f"connection reset during the handshake ({exc})")
            if "SASL" in protocol:
                found = _sasl(sock, kw, server)
                if found is not None:
                    return found
            return None
        except (OSError, ValueError, struct.error):
            continue
        finally:
            raw.close()
    return None
