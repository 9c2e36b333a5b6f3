"""Server-side TLS, one policy for both sides: the agent's syslog/Windows listeners and the SOC's own
HTTPS surfaces (pipeline.httpserve: triage, enrolment) take their context from here (TLS 1.2 at least)."""

from __future__ import annotations

import ssl


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server context with this certificate chain and key (PEM); TLS 1.2 or later."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx
