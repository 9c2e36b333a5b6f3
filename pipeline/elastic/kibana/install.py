"""`socpipe kibana install`: one multipart POST to Kibana's saved-objects import API, overwrite=true.

Import with overwrite is idempotent (same ids replace themselves). All files go in one request so
references between them resolve inside the import.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.elastic.kibana.objects import FILES, my_alerts_search
from pipeline.elastic.kibana.saved import TRIAGE_URL

log = logging.getLogger("socpipe.kibana")

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "dashboards" / "kibana"


class KibanaError(RuntimeError):
    pass


@dataclass
class InstallResult:
    objects: int
    success_count: int
    errors: list[dict[str, Any]] = field(default_factory=list)


def load_objects(
    directory: Path = DEFAULT_DIR,
    prefix: str = "socpipe",
    triage_url: str | None = None,
    analysts: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Saved objects from the NDJSON files, in dependency order, adapted to this deployment."""
    objects: list[dict[str, Any]] = []
    for name in FILES:
        path = directory / name
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    objects.append(json.loads(line))
                except ValueError as exc:
                    raise KibanaError(f"{path}:{n}: not JSON: {exc}") from exc
    for obj in objects:
        attrs = obj.get("attributes", {})
        if obj.get("type") == "index-pattern":
            head, _, tail = attrs.get("title", "").partition("-")
            if head == "socpipe" and prefix != "socpipe":
                attrs["title"] = f"{prefix}-{tail}"
            if triage_url and "fieldFormatMap" in attrs:
                attrs["fieldFormatMap"] = attrs["fieldFormatMap"].replace(TRIAGE_URL, triage_url.rstrip("/"))
    objects += [my_alerts_search(a) for a in analysts]
    return objects


def multipart(ndjson: bytes, filename: str = "socpipe.ndjson") -> tuple[bytes, str]:
    boundary = f"socpipe-{uuid.uuid4().hex}"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/ndjson\r\n\r\n"
        ).encode()
        + ndjson
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def install(
    url: str,
    objects: list[dict[str, Any]],
    space: str | None = None,
    username: str = "",
    password: str = "",
    api_key: str = "",
    timeout_s: float = 30.0,
) -> InstallResult:
    ndjson = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode()
    body, content_type = multipart(ndjson)
    base = url.rstrip("/") + (f"/s/{space}" if space else "")
    headers = {"kbn-xsrf": "true", "Content-Type": content_type}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    elif username:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    req = urllib.request.Request(
        f"{base}/api/saved_objects/_import?overwrite=true", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise KibanaError(f"Kibana answered {exc.code}: {exc.read()[:500].decode('utf-8', 'replace')}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise KibanaError(f"cannot reach Kibana at {url}: {exc}") from exc
    except ValueError as exc:
        raise KibanaError(f"Kibana's answer is not JSON: {exc}") from exc
    result = InstallResult(len(objects), int(answer.get("successCount", 0)), list(answer.get("errors") or []))
    log.info("kibana_install objects=%d success=%d errors=%d", result.objects, result.success_count, len(result.errors))
    return result
