"""The hardened systemd service for the agent, and `socpipe agent install-service`."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

UNIT_PATH = Path("/etc/systemd/system/socpipe-agent.service")


class ServiceError(RuntimeError):
    pass


def unit_text(exec_start: str, config_path: str, state_dir: str, user: str, log_group: str) -> str:
    """The unit: a dedicated user that reads logs through a group, a read-only system except its own
    state dir (StateDirectory=: systemd creates and owns it, never following symlinks), no privileges,
    restart on failure (the spool keeps what was read) but not on a configuration error (exit 2: the
    journal then shows the one clear message, e.g. "enrol first")."""
    state = Path(state_dir)
    if state.parent == Path("/var/lib"):
        state_lines = f"StateDirectory={state.name}\nStateDirectoryMode=0700"
    else:
        state_lines = f"ReadWritePaths={state_dir}"
    return f"""[Unit]
Description=socpipe collector agent (ships logs to the SOC)
Documentation=man:socpipe-agent(1)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={user}
Group={user}
SupplementaryGroups={log_group} systemd-journal
ExecStart={exec_start} run --config {config_path}
Restart=always
RestartSec=5
RestartPreventExitStatus=2
{state_lines}
ReadOnlyPaths=/var/log
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
NoNewPrivileges=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
RestrictSUIDSGID=true
RestrictRealtime=true
RestrictNamespaces=true
LockPersonality=true
MemoryDenyWriteExecute=true
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077
MemoryMax=256M

[Install]
WantedBy=multi-user.target
"""


def install(unit: str, config_path: str, state_dir: str, user: str, log_group: str) -> list[str]:
    if os.geteuid() != 0:
        raise ServiceError("install-service must run as root (it creates a user and a systemd unit)")
    steps = []
    try:
        pwd.getpwnam(user)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                state_dir,
                "--shell",
                "/usr/sbin/nologin",
                user,
            ],
            check=True,
        )
        steps.append(f"created system user {user}")
    try:
        grp.getgrnam(log_group)
        subprocess.run(["usermod", "-a", "-G", log_group, user], check=True)
        steps.append(f"{user} may read logs through group {log_group}")
    except KeyError:
        steps.append(f"warning: group {log_group} does not exist; grant {user} read access to the logs yourself")
    chown_tree(Path(state_dir), user)
    steps.append(f"state dir {state_dir} owned by {user}, mode 0700")
    cfg = Path(config_path)
    if not cfg.exists() and not cfg.is_symlink():
        cfg.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(example_config())
        steps.append(f"wrote {cfg} (every key with its default): list the logs to ship under files:")
    UNIT_PATH.write_text(unit)
    steps.append(f"wrote {UNIT_PATH}")
    if shutil.which("systemctl"):
        subprocess.run(["systemctl", "daemon-reload"], check=False)
        steps.append("next: systemctl enable --now socpipe-agent")
    return steps


def chown_tree(root: Path, user: str) -> None:
    """Give `root` and everything under it to `user`, never following a symlink: a link planted in
    the state dir (say to /etc/shadow) must not hand its target to the service user."""
    info = pwd.getpwnam(user)
    if root.is_symlink():
        raise ServiceError(f"state dir {root} is a symlink; refusing to change its owner")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700, follow_symlinks=False)
    os.chown(root, info.pw_uid, info.pw_gid, follow_symlinks=False)
    for top, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            os.chown(os.path.join(top, name), info.pw_uid, info.pw_gid, follow_symlinks=False)


def example_config() -> str:
    """The documented agent.yaml (every key, its default, commented): shipped in the agent wheel as
    collectors/agent.example.yaml (release/build.py copies config/agent.yaml), else read from the repo."""
    from importlib import resources

    packaged = resources.files("collectors").joinpath("agent.example.yaml")
    if packaged.is_file():
        return packaged.read_text()
    return (Path(__file__).resolve().parents[1] / "config" / "agent.yaml").read_text()
