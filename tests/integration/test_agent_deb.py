"""The agent's .deb, installed for real on this (root, Debian) machine, as an agency's IT staff would.

Builds the package (packaging/build.py = `make agent-deb`), checks it with lintian, installs it with
apt-get, enrols against the real enrolment server, ships a line from a 0640 root:adm log to the real
Kafka where the real coverage service sees the agency monitored; chmod 0600 makes the SOC see it
degraded with the reason; `apt-get purge` leaves no user, unit or state behind.

When systemd is not PID 1 (containers) the agent runs as the unit's user through runuser, with the
unit's command line; the unit itself is then checked with `systemd-analyze verify` when available.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from collectors.config import AgentConfig, load_agent_config
from pipeline.coverage.config import EnrolmentConfig, KafkaHandout
from pipeline.enrolment.registry import Registry
from pipeline.enrolment.server import serve_in_thread
from tests.integration.conftest import free_port, wait_for
from tests.integration.coverage_helpers import RunningCoverage, agency, write_inventory
from tests.release import release_build

USER = "socpipe-agent"
STATE = Path("/var/lib/socpipe-agent")
UNIT = Path("/lib/systemd/system/socpipe-agent.service")
CONF = Path("/etc/socpipe/agent.yaml")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a Debian package: needs root"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None, reason="not Debian"),
]


def _installed() -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", USER], capture_output=True, text=True)
    return "install ok installed" in res.stdout


def _apt(*args: str) -> subprocess.CompletedProcess:
    cmd = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", *args]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _systemd_is_init() -> bool:
    return Path("/run/systemd/system").is_dir()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_deb_install_enrol_ship_degrade_purge(tmp_path, kafka_bootstrap, unique):
    if _installed() or _user_exists(USER):
        pytest.skip("socpipe-agent is already installed on this machine; not touching it")
    deb = release_build().build_deb(tmp_path / "dist")
    if shutil.which("lintian"):
        lint = subprocess.run(
            ["lintian", "--fail-on", "error,warning", str(deb)], capture_output=True, text=True, timeout=300
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr

    log = Path(f"/var/log/socpipe-deb-{unique}.log")
    agent = None
    try:
        res = _apt("install", str(deb))
        if res.returncode != 0 and "Unable to locate" in res.stderr + res.stdout:
            _apt("update")
            res = _apt("install", str(deb))
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

        # What the package set up: user in adm, state dir, hardened unit, documented config.
        assert "adm" in subprocess.run(["id", "-nG", USER], capture_output=True, text=True).stdout.split()
        st = STATE.stat()
        assert pwd.getpwuid(st.st_uid).pw_name == USER and st.st_mode & 0o777 == 0o700
        unit = UNIT.read_text()
        for directive in ("User=socpipe-agent", "StateDirectory=socpipe-agent", "ProtectSystem=strict"):
            assert directive in unit
        assert "ExecStart=/usr/bin/socpipe-agent run --config /etc/socpipe/agent.yaml" in unit
        assert load_agent_config(CONF, env={}) == AgentConfig()  # every key, with its default
        example = subprocess.run(["socpipe-agent", "example-config"], capture_output=True, text=True)
        assert example.returncode == 0 and example.stdout == CONF.read_text()
        if shutil.which("systemd-analyze"):
            verify = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True)
            assert "socpipe-agent.service:" not in verify.stderr, verify.stderr

        # The SOC: coverage service, enrolment server handing out the shared Kafka.
        inv = write_inventory(
            tmp_path / "inventory.yaml", [agency(f"deb-{unique}", "commune", [{"name": "app", "path": str(log)}])]
        )
        with RunningCoverage(tmp_path, kafka_bootstrap, unique, inv, free_port(), heartbeat_interval_s=2) as cov:
            reg = Registry(cov.cfg.registry)
            _, token = reg.create_token(f"deb-{unique}")
            port = free_port()
            server, _ = serve_in_thread(
                reg, EnrolmentConfig(listen_port=port, kafka=KafkaHandout(bootstrap=kafka_bootstrap))
            )
            try:
                token_file = tmp_path / "token"
                token_file.write_text(token + "\n")
                clean_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
                enrol = subprocess.run(
                    [
                        "socpipe-agent",
                        "enroll",
                        "--server",
                        f"http://127.0.0.1:{port}",
                        "--token-file",
                        str(token_file),
                    ],
                    capture_output=True,
                    text=True,
                    env=clean_env,
                )
            finally:
                server.shutdown()
            assert enrol.returncode == 0, enrol.stderr
            ident = STATE / "identity.json"
            assert pwd.getpwuid(ident.stat().st_uid).pw_name == USER and ident.stat().st_mode & 0o777 == 0o600

            log.write_text(f"deb-test hello {unique}\n")
            os.chown(log, 0, grp.getgrnam("adm").gr_gid)
            log.chmod(0o640)
            CONF.write_text(
                yaml.safe_dump(
                    {
                        "heartbeat_interval_s": 2,
                        "topic": cov.cfg.raw_topic,
                        "heartbeat_topic": cov.cfg.heartbeat_topic,
                        "files": [{"paths": [str(log)]}],
                    }
                )
            )
            if _systemd_is_init():
                subprocess.run(["systemctl", "restart", "socpipe-agent"], check=True)
            else:  # no systemd as PID 1 here: the unit's command, as the unit's user (groups from /etc/group)
                agent = subprocess.Popen(
                    ["runuser", "-u", USER, "--", "/usr/bin/socpipe-agent", "run", "--config", str(CONF)],
                    env=clean_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )

            def state():
                snap = cov.service.snapshot
                views = [a for a in snap.agencies if a.id == f"deb-{unique}"] if snap else []
                return views[0] if views else None

            wait_for(
                lambda: state() is not None and state().state == "monitored",
                timeout_s=60,
                what="the agency monitored (agent log: see stderr)",
            )

            log.chmod(0o600)  # the agent's user may no longer read it
            t0 = time.monotonic()
            wait_for(lambda: state().state == "degraded", timeout_s=30, what="the agency degraded")
            took = time.monotonic() - t0
            reasons = state().reasons
            assert any(r.startswith(f"{log} permission denied") for r in reasons), reasons
            assert took < 2 * 2 + 5, took  # within about one heartbeat (2 s) plus the coverage loop

            status = subprocess.run(["socpipe-agent", "status"], capture_output=True, text=True, env=clean_env)
            assert status.returncode == 1, status.stdout + status.stderr
            assert "permission_denied" in status.stdout and "kafka      connected" in status.stdout
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            try:
                _, err = agent.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                agent.kill()
                _, err = agent.communicate()
            print("agent log:\n" + err[-5000:])
        log.unlink(missing_ok=True)
        purge = _apt("purge", USER)

    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert not _installed()
    assert not _user_exists(USER) and not _group_exists(USER)
    leftovers = [
        p
        for p in (
            UNIT,
            STATE,
            CONF.parent,
            Path("/usr/lib/socpipe-agent"),
            Path("/etc/systemd/system/multi-user.target.wants/socpipe-agent.service"),
            Path("/var/lib/systemd/deb-systemd-helper-enabled/socpipe-agent.service"),
            Path("/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/socpipe-agent.service"),
        )
        if p.exists() or p.is_symlink()
    ]
    assert leftovers == []
