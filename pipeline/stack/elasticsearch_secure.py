"""The secured Elasticsearch of `socpipe stack up --secure`: x-pack security, HTTPS, one credential per service.

* HTTPS on the HTTP port with a certificate from the stack's CA (`pki`, shared with Kafka's SASL_SSL
  listener); plain HTTP is refused. The transport port stays plain: single node, bound to 127.0.0.1.
* Per-service credentials with least privilege: the roles are `pipeline.elastic.keys.role_descriptors`
  (what `socpipe es api-key create` gives a production cluster as API keys), written to the node's
  `roles.yml`, each held by a file-realm user: `socpipe-detector`, `socpipe-triage`, `socpipe-setup`,
  handed to each service by `Stack.service_env(role)`. `socpipe-admin` (superuser) is the local
  operator's and the tests' credential, exported by the env file like Kafka's loopback super user.
  Passwords are generated once and kept in `<state>/elasticsearch-credentials.json` (mode 0600); a
  password the node's `users` file does not hold yet (the credential file was deleted, or an entry
  removed) is applied at every `stack up --secure`, running node or not (`apply_users`).

Why users and not API keys here: API keys live in the `.security` system index, whose mapping needs
the analysis-common module (`pattern_capture` filter), which Elastic's integration-test distribution
lacks and Maven Central does not publish. File-realm users with file-based roles need no system index.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from pipeline.stack import credfile
from pipeline.stack.pki import LocalCA

ADMIN = "admin"
SERVICES = ("detector", "triage", "setup")
PREFIX = "socpipe"


def credentials_file(state: Path) -> Path:
    return state / "elasticsearch-credentials.json"


def username(name: str) -> str:
    return f"socpipe-{name}"


def credentials(state: Path) -> dict[str, dict[str, str]]:
    """name -> {"username", "password"} for admin and each service; a missing one is created (and
    applied to the node by `apply_users`). StackError naming the file and the entry for one of the wrong
    shape (e.g. a password that is not a string)."""
    path = credentials_file(state)
    data: dict[str, Any] = credfile.load(path) or {}
    out: dict[str, dict[str, str]] = {}
    made = False
    for name in (ADMIN, *SERVICES):
        found = credfile.entry(path, data, name, username(name))
        if found is None:
            found = data[name] = {"username": username(name), "password": secrets.token_urlsafe(24)}
            made = True
        out[name] = found
    if made:  # kept before any server is given it
        credfile.save(path, data)
    return out


def ca_file(state: Path) -> Path:
    return state / "pki" / "ca.pem"


def roles_yaml(prefix: str = PREFIX) -> str:
    from pipeline.elastic.keys import role_descriptors

    roles: dict[str, Any] = {}
    for service in SERVICES:
        roles.update(role_descriptors(service, prefix))
    return yaml.safe_dump(roles, sort_keys=True)


def prepare(state: Path, home: Path, conf: Path, env: dict[str, str], user: str | None) -> dict[str, object]:
    """Certificates into ES_PATH_CONF (Elasticsearch reads TLS files only from there), the roles and the
    users of the file realm; returns the elasticsearch.yml settings that turn security and HTTPS on."""
    cert = LocalCA(state / "pki").issue("elasticsearch")
    certs = conf / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copyfile(cert.cert, certs / "http.pem")
    shutil.copyfile(cert.ca, certs / "ca.pem")
    key = certs / "http.key"
    key.unlink(missing_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, cert.key.read_bytes())
    finally:
        os.close(fd)
    (conf / "roles.yml").write_text(roles_yaml())
    apply_users(state, home, conf, env, user)
    return {
        "xpack.security.enabled": True,
        "xpack.security.http.ssl.enabled": True,
        "xpack.security.http.ssl.certificate": "certs/http.pem",
        "xpack.security.http.ssl.key": "certs/http.key",
        "xpack.security.http.ssl.certificate_authorities": ["certs/ca.pem"],
        "xpack.security.authc.realms.file.file1.order": 0,
    }


def applied_file(conf: Path) -> Path:
    """Digests of the passwords the file realm's `users` holds (beside it: they go together)."""
    return conf / "users.socpipe-applied"


def apply_users(state: Path, home: Path, conf: Path, env: dict[str, str], user: str | None) -> list[str]:
    """The file realm holds exactly the credential file's passwords: a missing user is added with its
    role, one whose password changed (a deleted or cut-short credential file) gets the new one. A running
    node reads `users` again within seconds. Returns the usernames changed (never the passwords)."""
    creds = credentials(state)
    users = conf / "users"
    have = {line.split(":", 1)[0] for line in users.read_text().splitlines()} if users.exists() else set()
    wanted = {c["username"]: c["password"] for c in creds.values()}
    stale = set(credfile.stale(credfile.load_applied(applied_file(conf)), wanted))
    changed = []
    # admin last: `ready` logs in as admin, and a node that has read admin's new line has read the rest
    for name in (*SERVICES, ADMIN):
        c = creds[name]
        if c["username"] not in have:
            role = "superuser" if name == ADMIN else username(name)
            _users_tool(home, env, user, conf, ["useradd", c["username"], "-r", role], c["password"])
        elif c["username"] in stale:
            _users_tool(home, env, user, conf, ["passwd", c["username"]], c["password"])
        else:
            continue
        changed.append(c["username"])
    if changed or stale:
        credfile.save_applied(applied_file(conf), {u: credfile.digest(u, p) for u, p in wanted.items()})
    return changed


def _users_tool(home: Path, env: dict[str, str], user: str | None, conf: Path, args: list[str], password: str) -> None:
    """Run the distribution's `elasticsearch-users`; the password goes to its prompt on standard input
    (entered, then retyped), never on its command line, where any local user could read it in `ps`."""
    import pwd

    kw: dict[str, Any] = {}
    if user:
        pw = pwd.getpwnam(user)
        for path in [conf, *conf.rglob("*")]:  # the tool rewrites users/users_roles in ES_PATH_CONF
            os.lchown(path, pw.pw_uid, pw.pw_gid)
        kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    proc = subprocess.run(
        [str(home / "bin" / "elasticsearch-users"), *args],
        env={**os.environ, **env},
        input=f"{password}\n{password}\n",
        capture_output=True,
        text=True,
        cwd=env.get("ES_TMPDIR", "/"),
        **kw,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"elasticsearch-users {args[0]} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")


def basic_auth(c: dict[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{c['username']}:{c['password']}".encode()).decode()


def _get(state: Path, port: int, path: str, auth: str, timeout: float = 2.0) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=str(ca_file(state)))
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": auth})
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
        body: dict[str, Any] = json.load(resp)
    return body


def ready(state: Path, port: int) -> tuple[dict[str, Any], str] | None:
    """(cluster health, version) over HTTPS as the admin user; None while not green/yellow."""
    auth = basic_auth(credentials(state)[ADMIN])
    health = _get(state, port, "/_cluster/health?timeout=1s", auth)
    if health.get("status") not in ("green", "yellow"):
        return None
    nodes = _get(state, port, "/_nodes/_local?filter_path=nodes.*.version", auth)
    by_node: dict[str, dict[str, Any]] = nodes.get("nodes", {})
    version = next(iter(by_node.values()), {}).get("version", "?")
    return health, version


def _es(state: Path, port: int, name: str) -> dict[str, str]:
    c = credentials(state)[name]
    return {
        "SOCPIPE_ES_URL": f"https://127.0.0.1:{port}",
        "SOCPIPE_ES_CA_CERTS": str(ca_file(state)),
        "SOCPIPE_ES_USERNAME": c["username"],
        "SOCPIPE_ES_PASSWORD": c["password"],
    }


def env(state: Path, port: int) -> dict[str, str]:
    """The env file's Elasticsearch part in secure mode: HTTPS, the CA, the local operator's credential."""
    return {**_es(state, port, ADMIN), "SOCPIPE_STACK_ES_CREDENTIALS": str(credentials_file(state))}


def service_env(state: Path, port: int, role: str) -> dict[str, str]:
    """A service's Elasticsearch settings: HTTPS, the CA and its own least-privilege credential (nothing
    for roles that do not use Elasticsearch)."""
    return _es(state, port, role) if role in SERVICES else {}
