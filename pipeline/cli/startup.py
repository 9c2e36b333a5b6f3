"""What a long-running SOC service (`detect run`, `coverage run`) says when a server it needs at start
does not let it start: one line `cannot start: <server> at <address> <what went wrong>` on stderr and
exit code 1 (a service manager restarts it; a configuration error is exit 2), never a stack trace.

`start_guard` turns Kafka's and Elasticsearch's errors into that line; `kafka_problem` and
`es_problem` word them (pure: tested without servers). Client libraries are imported only when a
command asks for their guard: `socpipe coverage ...` does not load the Elasticsearch client.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import click

# kafka-python logs why each bootstrap attempt failed (refused login, TLS) and raises only
# "Unable to bootstrap" at the end; the last such line is kept to name the cause
_KAFKA_NET_LOGGER = "kafka.net"
_CREDENTIALS_HINTS = ("SaslAuthenticationFailed", "Authentication failed", "UnsupportedSaslMechanism")
_BACKOFF = re.compile(r" \(backoff [0-9.]+ secs\)$")


def fail(message: str, doing: str = "start") -> NoReturn:
    click.echo(f"cannot {doing}: {message}", err=True)
    sys.exit(1)


def redact_url(url: str) -> str:
    """`url` without the user and password it may carry."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def kafka_problem(exc: BaseException, bootstrap: str, last_client_error: str = "") -> str:
    """One line for a Kafka error at start. `last_client_error`: kafka-python's last logged bootstrap
    failure (its exception says only that it could not bootstrap)."""
    from kafka.errors import (
        AuthorizationError,
        IllegalSaslStateError,
        SaslAuthenticationFailedError,
        UnsupportedSaslMechanismError,
    )

    text = str(exc) or type(exc).__name__
    if isinstance(exc, (SaslAuthenticationFailedError, UnsupportedSaslMechanismError, IllegalSaslStateError)) or any(
        h in last_client_error for h in _CREDENTIALS_HINTS
    ):
        detail = text if not last_client_error else f"{text}; {last_client_error}"
        return (
            f"Kafka at {bootstrap} refused the credentials ({detail}): check kafka.sasl_username, "
            "kafka.sasl_password and kafka.sasl_mechanism"
        )
    if isinstance(exc, AuthorizationError):
        return f"Kafka at {bootstrap} did not allow it ({text}): check the ACLs of the configured Kafka user"
    detail = text if not last_client_error else f"{text}; last error: {last_client_error}"
    return f"Kafka at {bootstrap} did not answer ({detail})"


def es_problem(exc: BaseException, url: str) -> str:
    """One line for an Elasticsearch error at start."""
    from elasticsearch import (
        ApiError,
        AuthenticationException,
        AuthorizationException,
        ConnectionError,
        ConnectionTimeout,
        SSLError,
    )

    from pipeline.elastic import error_reason

    where = f"Elasticsearch at {redact_url(url)}"
    if isinstance(exc, ApiError):
        body = exc.body.get("error") if isinstance(exc.body, dict) else None
        said = f"{exc.meta.status}: {error_reason(body) if body else exc.message}"
        if isinstance(exc, AuthenticationException):
            return f"{where} refused the credentials ({said}): check es.api_key or es.username/es.password"
        if isinstance(exc, AuthorizationException):
            return f"{where} did not allow it ({said}): check the credential's privileges"
        return f"{where} answered {said}"
    if isinstance(exc, SSLError):
        return f"TLS with {where} failed ({exc}): check es.ca_certs and es.verify_certs"
    if isinstance(exc, ConnectionTimeout):
        return f"{where} did not answer in time ({exc})"
    if isinstance(exc, ConnectionError):
        return f"{where} is unreachable ({exc})"
    return f"{where} failed ({type(exc).__name__}: {exc})"


class _LastError(logging.Handler):
    """kafka-python's bootstrap failures while a start is guarded: the last one, and the last refused
    login (sticky: a broker that refused the credentials also drops some attempts before the login, and
    the deadline can cut the last attempt short, so the last failure alone may not say it)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text = ""
        self.refused = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot format is no reason to fail the start
            return
        # "Bootstrap connection to bootstrap-0 failed: <why> (backoff 1.37 secs)"; not "... not ready;
        # waiting", nor the final "Bootstrap failed: <the exception raised>" (said already)
        if " failed: " in text and not text.startswith("Bootstrap failed:"):
            text = _BACKOFF.sub("", text)
            self.text = text
            if any(h in text for h in _CREDENTIALS_HINTS):
                self.refused = text

    @property
    def cause(self) -> str:
        return self.refused or self.text


@contextmanager
def start_guard(*, kafka: str | None = None, es: str | None = None, doing: str = "start") -> Iterator[None]:
    """Errors of Kafka (at bootstrap `kafka`) and of Elasticsearch (at `es`) raised inside end the
    command with one `cannot start: ...` line (`doing`: what else than start, e.g. 'read <topic>') and
    exit code 1. A server not named is not guarded."""
    kafka_errors: tuple[type[BaseException], ...] = ()
    es_errors: tuple[type[BaseException], ...] = ()
    last = _LastError()
    net_log = logging.getLogger(_KAFKA_NET_LOGGER)
    if kafka is not None:
        from kafka.errors import KafkaError

        kafka_errors = (KafkaError,)
        net_log.addHandler(last)
    if es is not None:
        from elasticsearch import ApiError, TransportError

        es_errors = (ApiError, TransportError)
    try:
        yield
    except kafka_errors as exc:
        fail(kafka_problem(exc, kafka or "", last.cause), doing)
    except es_errors as exc:
        fail(es_problem(exc, es or ""), doing)
    finally:
        net_log.removeHandler(last)
