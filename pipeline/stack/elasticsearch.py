"""The local Elasticsearch: Elastic's own integration-test distribution, resolved from Maven Central.

`org.elasticsearch.distribution.integ-test-zip:elasticsearch:<v>` is a complete ES_HOME (bin/, lib/,
modules transport-netty4, x-pack-core, x-pack-security, apm) without the bundled JDK: it runs on the
system's Java 17. It lacks rest-root (`GET /` answers 405), mapper-extras, reindex, painless and ILM;
socpipe detects what a cluster has instead of assuming a full distribution.

Elasticsearch refuses to run as root. When the stack runs as root, the server runs as a system user
(`socpipe-es`, created here) that owns its config, data, logs and tmp directories; its ES_HOME is a
hard-linked copy of the cached distribution (read-only for that user). No process management here.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from pipeline.stack.plan import Ports, PrerequisiteError, StackOptions
from pipeline.stack.servers import Launch, cache_dir, require

ES_VERSION = "8.19.21"
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
ES_HEAP = "-Xms512m -Xmx1g"
CLUSTER_NAME = "socpipe-local"
DEFAULT_USER = "socpipe-es"
# Where the server's own files go when the state directory is not reachable by the system user
# (e.g. a clone under /root, mode 0700): <state>/elasticsearch becomes a symlink to a directory here.
FALLBACK_ROOT = Path("/var/lib/socpipe-es")


def es_user() -> str:
    return os.environ.get("SOCPIPE_STACK_ES_USER", DEFAULT_USER)


def es_dist() -> Path:
    """ES_HOME of the integ-test distribution: downloaded through Maven and unpacked once into the cache."""
    root = cache_dir() / f"elasticsearch-{ES_VERSION}"
    home = root / f"elasticsearch-{ES_VERSION}"
    marker = root / ".complete"
    if marker.exists() and (home / "bin" / "elasticsearch").exists():
        return home
    mvn = require("mvn", "apt-get install -y maven")
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={ES_ARTIFACT}", f"-DoutputDirectory={root}"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    archive = root / f"elasticsearch-{ES_VERSION}.zip"
    if proc.returncode != 0 or not archive.exists():
        raise PrerequisiteError(
            f"resolving {ES_ARTIFACT} with Maven failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    unpack = root / "unpack.tmp"
    shutil.rmtree(unpack, ignore_errors=True)
    unpack_zip(archive, unpack)
    shutil.rmtree(home, ignore_errors=True)
    (unpack / f"elasticsearch-{ES_VERSION}").rename(home)
    shutil.rmtree(unpack, ignore_errors=True)
    archive.unlink()  # Maven keeps its own copy in ~/.m2
    marker.write_text(ES_VERSION)
    return home


def unpack_zip(archive: Path, dest: Path) -> None:
    """Extract keeping the Unix modes the archive records (zipfile alone drops the exec bits)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)


def java_home() -> Path:
    java = require("java", "apt-get install -y openjdk-17-jre-headless")
    return Path(os.path.realpath(java)).parent.parent


def ensure_user(name: str) -> pwd.struct_passwd:
    """The system user the server runs as (created when missing: we are root here)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = require("useradd", "apt-get install -y passwd")
    proc = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "socpipe local Elasticsearch",
            name,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 and "already exists" not in proc.stderr:
        raise PrerequisiteError(f"creating system user {name!r} failed: {proc.stderr.strip()}")
    return pwd.getpwnam(name)


def reachable_by_others(path: Path) -> bool:
    """Every ancestor directory lets other users traverse it (o+x)."""
    for parent in [path, *path.parents]:
        try:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return False
        except FileNotFoundError:
            continue
    return True


def runtime_dir(state: Path, user: pwd.struct_passwd | None) -> Path:
    """<state>/elasticsearch, or a symlink from there to a directory the system user can reach."""
    link = state / "elasticsearch"
    if user is None or reachable_by_others(state):
        if link.is_symlink() and not reachable_by_others(link.resolve()):
            link.unlink()
        link.mkdir(parents=True, exist_ok=True)
        return link.resolve()
    if link.is_symlink():
        return link.resolve()
    target = FALLBACK_ROOT / hashlib.sha256(str(state).encode()).hexdigest()[:12]
    target.mkdir(parents=True, exist_ok=True)
    FALLBACK_ROOT.chmod(0o755)
    if link.exists():  # an old directory from a run as another user: keep its data, move it out of the way
        link.rename(state / "elasticsearch.old")
    link.symlink_to(target)
    return target


def linked_home(dist: Path, home: Path) -> Path:
    """A hard-linked copy of the distribution (no extra disk); a plain copy across filesystems."""
    marker = home / ".socpipe-dist"
    if marker.exists() and marker.read_text() == str(dist):
        return home
    shutil.rmtree(home, ignore_errors=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(dist, home, copy_function=link, symlinks=True)
    marker.write_text(str(dist))
    return home


def config_yaml(ports: Ports, rt: Path, opts: StackOptions, extra: dict[str, object] | None = None) -> str:
    settings: dict[str, object] = {
        "cluster.name": CLUSTER_NAME,
        "node.name": "socpipe-es-1",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": ports.elasticsearch,
        "transport.port": ports.elasticsearch_transport,
        "path.data": str(rt / "data"),
        "path.logs": str(rt / "logs"),
        # a test machine's disk may be fuller than production watermarks allow; never go read-only here
        "cluster.routing.allocation.disk.threshold_enabled": False,
        "xpack.security.enabled": False,
        **(extra or {}),
    }
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.lstat(p).st_uid != uid:
                os.lchown(p, uid, gid)


def _layout(state: Path) -> tuple[Path, Path, Path, dict[str, str], pwd.struct_passwd | None]:
    """(runtime dir, ES_HOME, ES_PATH_CONF, the server's environment, its system user when run as root)."""
    jhome = java_home()
    dist = es_dist()
    user = ensure_user(es_user()) if os.geteuid() == 0 else None
    rt = runtime_dir(state, user)
    home = dist if user is None else linked_home(dist, rt / "home")
    conf = rt / "config"
    for sub in ("config", "data", "logs", "tmp"):
        (rt / sub).mkdir(parents=True, exist_ok=True)
    for item in (dist / "config").iterdir():
        target = conf / item.name
        if item.name != "elasticsearch.yml" and not target.exists():
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
    env = {
        "ES_JAVA_HOME": str(jhome),
        "ES_PATH_CONF": str(conf),
        "ES_TMPDIR": str(rt / "tmp"),
        "ES_JAVA_OPTS": os.environ.get("SOCPIPE_STACK_ES_JAVA_OPTS", ES_HEAP),
        "HOME": str(rt / "tmp"),
    }
    return rt, home, conf, env, user


def elasticsearch_launch(state: Path, ports: Ports, opts: StackOptions | None = None) -> Launch:
    """Prepare ES_PATH_CONF, data, logs and tmp (owned by the server's user) and return its command."""
    opts = opts or StackOptions()
    rt, home, conf, env, user = _layout(state)
    extra: dict[str, object] = {}
    if opts.secure:
        from pipeline.stack import elasticsearch_secure

        extra = elasticsearch_secure.prepare(state, home, conf, env, user.pw_name if user else None)
    (conf / "elasticsearch.yml").write_text(config_yaml(ports, rt, opts, extra))
    if user is not None:
        for sub in ("config", "data", "logs", "tmp"):
            _chown_tree(rt / sub, user.pw_uid, user.pw_gid)
        os.chown(rt, 0, user.pw_gid)
        rt.chmod(0o750)
    # cwd = logs: the distribution's jvm.options writes gc.log and hs_err files relative to it.
    return Launch([str(home / "bin" / "elasticsearch")], env=env, user=user.pw_name if user else None, cwd=rt / "logs")


def apply_credentials(state: Path) -> list[str]:
    """A running secured node is given the passwords of the credential file it does not hold yet
    (its file realm reads `users` again within seconds); the usernames changed."""
    from pipeline.stack import elasticsearch_secure

    rt, home, conf, env, user = _layout(state)
    if "xpack.security.enabled: true" not in (conf / "elasticsearch.yml").read_text():
        return []  # a node started without --secure has no file realm to update
    return elasticsearch_secure.apply_users(state, home, conf, env, user.pw_name if user else None)


def _get(url: str, timeout: float = 2.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: dict[str, Any] = json.load(resp)
    return body


def elasticsearch_ready(ports: Ports, state: Path | None = None, opts: StackOptions | None = None) -> str | None:
    """`_cluster/health` (the distribution has no `GET /`); green or yellow is ready."""
    if opts is not None and opts.secure and state is not None:
        from pipeline.stack import elasticsearch_secure

        got = elasticsearch_secure.ready(state, ports.elasticsearch)
        if got is None:
            return None
        health, version = got
        return f"Elasticsearch {version} (cluster {health.get('cluster_name')}: {health['status']}; HTTPS, security on)"
    base = f"http://127.0.0.1:{ports.elasticsearch}"
    health = _get(f"{base}/_cluster/health?timeout=1s")
    if health.get("status") not in ("green", "yellow"):
        return None
    nodes: dict[str, dict[str, Any]] = _get(f"{base}/_nodes/_local?filter_path=nodes.*.version").get("nodes", {})
    version = next(iter(nodes.values()), {}).get("version", "?")
    return f"Elasticsearch {version} (cluster {health.get('cluster_name')}: {health['status']})"
