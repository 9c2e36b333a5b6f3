"""The triage API's request handling, independent of the HTTP server (so it is unit-testable).

JSON API (Authorization: Bearer <token>):
  GET  /api/alerts?status=open&severity=high,critical&agency=..&rule=..&assignee=..&since=24h&limit=50
  GET  /api/alerts/<id>                  -> alert + "version" (also the ETag)
  POST /api/alerts/<id>/<action>         action: ack|close|reopen|assign|note
       body {"reason", "assignee", "text", "version"}; or If-Match: "<seq>:<term>"
       -> 200 alert | 401 | 403 | 404 | 409 conflict (current version) | 422 not allowed now
Browser: the triage queue under /queue (pipeline/triage/queue_app.py: sign in once, session cookie,
CSRF). Kibana's alert links (GET /alerts/<id>) lead to the alert's page in the queue.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from elasticsearch import ApiError as EsApiError
from elasticsearch import TransportError

from detectors.common import iso_ms
from detectors.common.severity import KIBANA_LEVELS
from pipeline.elastic.incidents import IncidentStore
from pipeline.elastic.triage import (
    AlertConflict,
    AlertFilter,
    AlertNotFound,
    AlertRecord,
    AmbiguousAlertId,
    TriageService,
    format_version,
    parse_version,
)
from pipeline.triage import pages
from pipeline.triage.auth import Analyst, TokenStore
from pipeline.triage.workflow import ACTIONS, STATUSES, Change, PermissionDenied, TransitionError, check_permission

T = TypeVar("T")

log = logging.getLogger("socpipe.triage_api")

MAX_BODY = 64 * 1024
MAX_ID = 512  # alert ids are 40-hex sha1s; anything much longer is not one
MAX_LIMIT = 500
MAX_SEQ = 2**63 - 1
SEVERITIES = KIBANA_LEVELS  # kibana.alert.severity
LIST_PARAMS = frozenset({"status", "severity", "agency", "rule", "assignee", "since", "until", "limit"})


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Response:
        return cls(
            status,
            json.dumps(payload, ensure_ascii=False, default=str).encode(),
            {"Content-Type": "application/json; charset=utf-8", **headers},
        )

    @classmethod
    def html(cls, status: int, text: str) -> Response:
        return cls(
            status,
            text.encode(),
            {
                "Content-Type": "text/html; charset=utf-8",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
                "X-Frame-Options": "DENY",
            },
        )


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class TriageApi:
    def __init__(
        self,
        service: TriageService,
        tokens: TokenStore,
        clock: Callable[[], datetime] | None = None,
        incidents: IncidentStore | None = None,
        secure_cookies: bool = False,
    ):
        from pipeline.triage.queue_app import QueueApp

        self.service = service
        self.tokens = tokens
        self.clock = clock or (lambda: datetime.now(UTC))
        self.queue = QueueApp(service, incidents, tokens, secure_cookies, self.clock)

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        headers = {k.lower(): v for k, v in headers.items()}
        parts: list[str] = []
        url = urllib.parse.urlsplit("")
        try:
            try:
                url = urllib.parse.urlsplit(target)
                parts = [urllib.parse.unquote(p, errors="strict") for p in url.path.split("/") if p]
                query = urllib.parse.parse_qs(url.query, keep_blank_values=True, errors="strict", max_num_fields=50)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "malformed URL (bad escape, bad UTF-8 or too many parameters)") from None
            if len(body) > MAX_BODY:
                raise ApiError(413, "request body too large")
            if parts == ["healthz"] and method == "GET":
                return Response.json(200, {"ok": True})
            if parts[:1] == ["api"]:
                return self._api(method, parts[1:], query, headers, body)
            if parts[:1] == ["queue"]:  # the browser triage queue (session cookie + CSRF)
                status, text, extra = self.queue.handle(method, parts[1:], query, headers, body)
                resp = Response.html(status, text)
                resp.headers.update(extra)
                return resp
            if parts[:1] == ["alerts"] and 2 <= len(parts) <= 3:
                return self._page(method, parts[1:], body)
            raise ApiError(404, "no such endpoint")
        except ApiError as exc:
            if parts[:1] == ["alerts"]:
                return Response.html(exc.status, pages.message(exc.status, exc.message))
            extra = {"WWW-Authenticate": 'Bearer realm="socpipe-triage"'} if exc.status == 401 else {}
            return Response.json(exc.status, {"error": exc.message, **exc.extra}, **extra)
        except Exception:  # a bug must answer 500, not drop the connection or kill the server
            log.exception("triage_api internal_error method=%s path=%s", method, url.path)
            return Response.json(500, {"error": "internal error"})

    # --- JSON API ----------------------------------------------------------------------------
    def _api(
        self, method: str, parts: list[str], query: dict[str, Any], headers: dict[str, Any], body: bytes
    ) -> Response:
        analyst = self._auth(_bearer(headers.get("authorization")))
        if parts == ["alerts"] and method == "GET":
            flt, limit = _filter(query)
            records = self._call(lambda: self.service.list(flt, limit))
            return Response.json(200, {"alerts": [_view(r) for r in records]})
        if len(parts) >= 2 and parts[0] == "alerts" and len(parts[1]) > MAX_ID:
            raise ApiError(404, "no such alert")
        if len(parts) == 2 and parts[0] == "alerts" and method == "GET":
            rec = self._call(lambda: self.service.get(parts[1]))
            return Response.json(200, _view(rec), ETag=f'"{format_version(rec.version)}"')
        if len(parts) == 3 and parts[0] == "alerts" and method == "POST":
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise ApiError(400, "body must be JSON") from None
            if not isinstance(data, dict):
                raise ApiError(400, "body must be a JSON object")
            version = data.get("version") or headers.get("if-match")
            rec = self._change(analyst, parts[1], parts[2], data, version)
            return Response.json(200, _view(rec), ETag=f'"{format_version(rec.version)}"')
        raise ApiError(405 if parts[:1] == ["alerts"] else 404, "no such endpoint or method")

    def _auth(self, token: str | None) -> Analyst:
        analyst = self.tokens.authenticate(token)
        if analyst is None:
            raise ApiError(401, "missing or unknown API token")
        return analyst

    def _change(self, analyst: Analyst, alert_id: str, action: str, data: Mapping[str, Any], version: Any) -> Any:
        if action not in ACTIONS:
            raise ApiError(404, f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
        try:
            expected = parse_version(str(version)) if version else None
        except ValueError:
            raise ApiError(400, "version must look like 12:1") from None
        if expected is not None and not (0 <= expected[0] <= MAX_SEQ and 1 <= expected[1] <= MAX_SEQ):
            raise ApiError(400, "version out of range")
        for key in ("reason", "assignee", "text"):
            if data.get(key) is not None and not isinstance(data.get(key), str):
                raise ApiError(400, f"{key} must be a string")
        change = Change(
            action,
            analyst.name,
            iso_ms(self.clock()),
            reason=_str(data.get("reason")),
            assignee=_str(data.get("assignee")),
            text=_str(data.get("text")),
        )
        try:
            check_permission(analyst.role, change)
        except PermissionDenied as exc:
            raise ApiError(403, str(exc)) from None
        return self._call(lambda: self.service.change(alert_id, change, expected))

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except AlertNotFound:
            raise ApiError(404, "no such alert") from None
        except AmbiguousAlertId as exc:
            raise ApiError(400, str(exc), candidates=exc.candidates) from None
        except AlertConflict as exc:
            raise ApiError(409, str(exc), version=format_version(exc.current), alert_status=exc.status) from None
        except TransitionError as exc:
            raise ApiError(422, str(exc)) from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        except EsApiError as exc:  # Elasticsearch refused the request: a value it cannot take is the caller's
            if exc.meta.status in (400, 404):
                log.info("triage_api es_rejected status=%s error=%s", exc.meta.status, exc.message)
                raise ApiError(400 if exc.meta.status == 400 else 404, "Elasticsearch rejected a value") from None
            log.warning("triage_api es_error status=%s error=%s", exc.meta.status, exc.message)
            raise ApiError(503, "Elasticsearch unavailable, try again") from None
        except TransportError as exc:
            log.warning("triage_api es_unavailable error=%s", type(exc).__name__)
            raise ApiError(503, "Elasticsearch unavailable, try again") from None

    # --- Kibana's alert links ---------------------------------------------------------------
    def _page(self, method: str, parts: list[str], body: bytes) -> Response:
        """GET /alerts/<id> -> the alert in the queue (sign-in first when needed); nothing else."""
        if method != "GET" or len(parts) != 1:
            raise ApiError(405, "use the triage queue: /queue")
        resp = Response.html(303, "")
        resp.headers["Location"] = "/queue/alert/" + urllib.parse.quote(parts[0], safe="")
        return resp


def _bearer(value: str | None) -> str | None:
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _filter(query: dict[str, list[str]]) -> tuple[AlertFilter, int]:
    def many(name: str) -> list[str]:
        return [v for raw in query.get(name, []) for v in raw.split(",") if v]

    def one(name: str) -> str | None:
        return query.get(name, [None])[-1]

    unknown = sorted(set(query) - LIST_PARAMS)
    if unknown:
        raise ApiError(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(LIST_PARAMS))})")
    try:
        limit = int(one("limit") or 50)
    except ValueError:
        raise ApiError(400, "limit must be a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be 1..{MAX_LIMIT}")
    for name, known in (("status", STATUSES), ("severity", SEVERITIES)):
        bad = [v for v in many(name) if v not in known]
        if bad:
            raise ApiError(400, f"{name} {bad[0]!r} is not one of {', '.join(known)}")
    if any(len(v) > 256 for values in query.values() for v in values):
        raise ApiError(400, "a parameter value is longer than 256 characters")
    flt = AlertFilter(
        status=many("status"),
        severity=many("severity"),
        agency=many("agency"),
        rule=one("rule"),
        assignee=one("assignee"),
        since=one("since"),
        until=one("until"),
    )
    try:
        flt.query()
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return flt, limit


def _view(rec: AlertRecord) -> dict[str, Any]:
    return {"id": rec.id, "index": rec.index, "version": format_version(rec.version), "alert": rec.source}
