"""Labelled attack requests for evaluating web models (pure apart from reading the payload corpus).

The public CSIC 2010 copy we have holds only the normal training split, so attack requests are
made the way CSIC's own anomalous set was made: real attack payloads placed into requests of the
same application. Payloads come from a published corpus (the `fray` package's payload files, MIT);
nothing here knows the model's features. Carriers are normal requests from a record range the model
never trained on; the payload replaces or is appended to one parameter (or, for path attacks, the
last path segment), percent-encoded as a client would.

Splits (deterministic, independent of any model):
- families in TEST_ONLY_FAMILIES never appear in the validation split;
- in the other families each payload goes to `validation` when sha256(family/file/id) % 10 < 3,
  else to `test`. Hyperparameters may be chosen on `validation`; figures are reported on `test`.
`tampering` is our own generator (values out of their syntax, oversize values, unknown/missing/
duplicated parameters, backup-file paths); it looks only at the carrier request, not at any model.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from detectors.anomaly.request_parts import request_parts

SHARED_FAMILIES = ("sqli", "xss", "path_traversal", "command_injection")
TEST_ONLY_FAMILIES = (
    "crlf_injection",
    "ldap_injection",
    "xpath_injection",
    "ssti",
    "ssrf",
    "xxe",
    "open-redirect",
    "buffer_overflow",
)
SPLITS = ("validation", "test")
MAX_PAYLOAD = 2000
DEFAULT_UA = "Mozilla/5.0 (compatible; Konqueror/3.5; Linux) KHTML/3.5.8 (like Gecko)"


@dataclass(frozen=True, slots=True)
class Payload:
    family: str
    source: str  # file inside the corpus
    pid: str
    text: str

    @property
    def split(self) -> str:
        if self.family in TEST_ONLY_FAMILIES:
            return "test"
        h = int(hashlib.sha256(f"{self.family}/{self.source}/{self.pid}".encode()).hexdigest(), 16)
        return "validation" if h % 10 < 3 else "test"


def corpus_dir() -> Path:
    """The installed payload corpus (`pip install fray`); RuntimeError when absent."""
    try:
        from importlib.resources import files

        root = Path(str(files("fray") / "payloads"))
    except (ImportError, ModuleNotFoundError) as exc:
        raise RuntimeError("payload corpus not installed: pip install fray") from exc
    if not root.is_dir():
        raise RuntimeError(f"{root}: payload corpus not found")
    return root


def corpus_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fray {version('fray')}"
    except PackageNotFoundError:
        return "unknown"


def load_payloads(root: Path, families: Iterable[str] = SHARED_FAMILIES + TEST_ONLY_FAMILIES) -> list[Payload]:
    out: list[Payload] = []
    for family in families:
        d = root / family
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            doc = json.loads(f.read_text(encoding="utf-8"))
            items = doc.get("payloads", []) if isinstance(doc, dict) else doc
            for i, item in enumerate(items):
                text = item.get("payload") if isinstance(item, dict) else item
                if not isinstance(text, str) or not text.strip() or len(text) > MAX_PAYLOAD:
                    continue
                pid = str(item.get("id", i)) if isinstance(item, dict) else str(i)
                out.append(Payload(family, f.name, pid, text))
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in out:  # the corpus repeats some payloads across files
        if (p.family, p.text) not in seen:
            seen.add((p.family, p.text))
            unique.append(p)
    return unique


# --------------------------------------------------------------------------- requests
@dataclass(slots=True)
class Request:
    method: str
    path: str
    params: list[tuple[str, str]]  # raw (still encoded) name, value
    in_body: bool
    user_agent: str = DEFAULT_UA

    def raw(self, host: str = "localhost:8080") -> str:
        """A raw HTTP/1.1 request as CSIC writes them (read back by `--format csic`)."""
        qs = "&".join(f"{n}={v}" for n, v in self.params)
        target = f"http://{host}{self.path}" + (f"?{qs}" if qs and not self.in_body else "")
        lines = [f"{self.method} {target} HTTP/1.1", f"User-Agent: {self.user_agent}", f"Host: {host}"]
        if self.in_body:
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(qs.encode())}"]
        lines += ["Connection: close", ""]
        if self.in_body:
            lines += [qs, ""]
        return "\r\n".join(lines) + "\r\n"


def carrier(event: dict[str, Any]) -> Request:
    method, path, _ = request_parts(event)
    body = event.get("http.request.body.content")
    in_body = isinstance(body, str) and bool(body) and not event.get("url.query")
    raw = str(body if in_body else event.get("url.query") or "")
    params = [(p.partition("=")[0], p.partition("=")[2]) for p in raw.split("&") if p]
    ua = str(event.get("user_agent.original") or DEFAULT_UA)
    return Request(method or "GET", path or "/", params, in_body, ua)


def _encode(rng: random.Random, text: str) -> str:
    # most clients encode everything; some scanners leave URL-safe punctuation as it is
    if rng.random() < 0.7:
        return quote_plus(text, safe="", encoding="utf-8")
    return quote(text, safe="/:'(),;*!$", encoding="utf-8")


def inject(rng: random.Random, req: Request, payload: Payload) -> Request:
    params = list(req.params)
    path_attack = payload.family == "path_traversal" and (not params or rng.random() < 0.5)
    if path_attack or not params:
        head = req.path.rsplit("/", 1)[0]
        seg = quote(payload.text.lstrip("/"), safe="/%.:;?=&", encoding="utf-8")
        return Request(req.method, f"{head}/{seg}", params, req.in_body, req.user_agent)
    i = rng.randrange(len(params))
    name, value = params[i]
    enc = _encode(rng, payload.text)
    params[i] = (name, enc if rng.random() < 0.5 else value + enc)
    return Request(req.method, req.path, params, req.in_body, req.user_agent)


TAMPER_KINDS = ("type", "oversize", "unknown_param", "missing_param", "duplicate_param", "backup_path", "enum_word")


def tamper(rng: random.Random, req: Request, kind: str) -> Request | None:
    """A request made wrong without attack syntax; None when the carrier cannot carry `kind`."""
    params = list(req.params)
    if kind == "backup_path":
        return Request(req.method, req.path + rng.choice((".bak", ".old", "~", ".orig", ".swp")), params, req.in_body)
    if not params:
        return None
    i = rng.randrange(len(params))
    name, value = params[i]
    if kind == "type":
        if not value.isdigit():
            return None
        params[i] = (name, rng.choice(("abc", "uno", "-" + value, value + "0000000", "0x1F", "1e9", "NaN")))
    elif kind == "oversize":
        params[i] = (name, value + "A" * rng.randint(200, 2000))
    elif kind == "unknown_param":
        params.insert(rng.randrange(len(params) + 1), (rng.choice(("debug", "admin", "cmd", "file", "test")), "1"))
    elif kind == "missing_param":
        if len(params) < 2:
            return None
        del params[i]
    elif kind == "duplicate_param":
        params.insert(i + 1, (name, value))
    elif kind == "enum_word":
        if value.isdigit() or len(value) > 20:
            return None
        params[i] = (name, quote_plus(rng.choice(("root", "administrator", "true", "null", "undefined", "none"))))
    return Request(req.method, req.path, params, req.in_body, req.user_agent)


def make_attacks(
    carriers: list[dict[str, Any]], payloads: list[Payload], split: str, *, per_payload: int = 2, seed: int = 11
) -> dict[str, list[str]]:
    """family -> raw attack requests of `split`; carriers come from a range the model never saw."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    rng = random.Random(f"{seed}/{split}")
    reqs = [carrier(e) for e in carriers]
    with_params = [r for r in reqs if r.params]
    if not with_params:
        raise ValueError("no carrier request has parameters")
    out: dict[str, list[str]] = {}
    for p in payloads:
        if p.split != split:
            continue
        for _ in range(per_payload):
            base = rng.choice(with_params if p.family != "path_traversal" else reqs)
            out.setdefault(p.family, []).append(inject(rng, base, p).raw())
    tampered: list[str] = []
    target = max(50, sum(map(len, out.values())) // 10)
    while len(tampered) < target:
        r = tamper(rng, rng.choice(reqs), rng.choice(TAMPER_KINDS))
        if r is not None:
            tampered.append(r.raw())
    out["tampering"] = tampered
    return out
