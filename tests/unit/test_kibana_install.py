"""`socpipe kibana install` against a recorded Kibana saved-objects API stub on a local socket."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from pipeline.cli import main

KIBANA_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "kibana"


class KibanaStub:
    """Answers like Kibana 8's import API; records each request. `status`/`errors` script the answer."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.errors: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.requests.append({"method": "POST", "path": self.path, "headers": self.headers, "body": body})
                if stub.status != 200:
                    payload = {"statusCode": stub.status, "error": "Unauthorized", "message": "no"}
                else:
                    lines = stub.ndjson_lines(len(stub.requests) - 1)
                    payload = {
                        "success": not stub.errors,
                        "successCount": len(lines) - len(stub.errors),
                        "errors": stub.errors,
                        "successResults": [{"type": o["type"], "id": o["id"]} for o in lines],
                    }
                raw = json.dumps(payload).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def file_part(self, i: int = -1):
        req = self.requests[i]
        raw = f"Content-Type: {req['headers']['Content-Type']}\r\n\r\n".encode() + req["body"]
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts = list(msg.iter_parts())
        assert len(parts) == 1
        return parts[0]

    def ndjson_lines(self, i: int = -1) -> list[dict]:
        payload = self.file_part(i).get_payload(decode=True).decode()
        return [json.loads(line) for line in payload.splitlines() if line.strip()]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kibana():
    stub = KibanaStub()
    yield stub
    stub.close()


def _committed() -> list[dict]:
    out = []
    for name in ("data_views.ndjson", "searches.ndjson", "visualizations.ndjson", "dashboards.ndjson"):
        out += [json.loads(line) for line in (KIBANA_DIR / name).read_text().splitlines() if line.strip()]
    return out


def test_install_sends_one_overwriting_multipart_import(kibana):
    res = CliRunner().invoke(main, ["kibana", "install", "--url", kibana.url + "/", "--triage-url", "http://t:8088"])
    assert res.exit_code == 0, res.output
    req = kibana.requests[0]
    url = urlsplit(req["path"])
    assert url.path == "/api/saved_objects/_import" and parse_qs(url.query) == {"overwrite": ["true"]}
    assert req["headers"]["kbn-xsrf"] == "true"
    assert req["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    part = kibana.file_part()
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename().endswith(".ndjson")
    sent = kibana.ndjson_lines()
    committed = _committed()
    assert [(o["type"], o["id"]) for o in sent] == [(o["type"], o["id"]) for o in committed]
    # data views come before what references them, so a fresh Kibana resolves everything in one import
    order = [o["type"] for o in sent]
    assert order.index("dashboard") > max(i for i, t in enumerate(order) if t in ("visualization", "search"))
    assert "http://t:8088/alerts/{{value}}" in sent[0]["attributes"]["fieldFormatMap"]
    assert f"imported {len(committed)}/{len(committed)}" in res.output


def test_install_is_idempotent_and_honours_space_and_auth(kibana):
    args = ["kibana", "install", "--url", kibana.url, "--space", "soc", "--api-key", "k3y"]
    for _ in range(2):
        assert CliRunner().invoke(main, args).exit_code == 0
    assert [r["path"] for r in kibana.requests] == ["/s/soc/api/saved_objects/_import?overwrite=true"] * 2
    assert kibana.requests[0]["headers"]["Authorization"] == "ApiKey k3y"
    assert kibana.ndjson_lines(0) == kibana.ndjson_lines(1)


def test_import_errors_and_refusals_fail_the_command(kibana):
    kibana.errors = [{"type": "dashboard", "id": "socpipe-rule-noise", "error": {"type": "missing_references"}}]
    res = CliRunner().invoke(main, ["kibana", "install", "--url", kibana.url])
    assert res.exit_code == 1 and "missing_references" in res.output
    kibana.errors, kibana.status = [], 401
    res = CliRunner().invoke(main, ["kibana", "install", "--url", kibana.url, "--username", "u", "--password", "p"])
    assert res.exit_code != 0 and "401" in res.output
    assert kibana.requests[-1]["headers"]["Authorization"].startswith("Basic ")


def test_unreachable_kibana_is_a_clear_error():
    from tests.integration.conftest import free_port

    res = CliRunner().invoke(main, ["kibana", "install", "--url", f"http://127.0.0.1:{free_port()}"])
    assert res.exit_code != 0 and "cannot reach Kibana" in res.output
