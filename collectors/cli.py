"""`socpipe-agent run|enroll|status|install-service`: the agent's own command (argparse: no CLI library).

Also reachable as `python -m collectors ...` and, on a SOC install, as `socpipe agent ...`.
Exit codes: 0 ok, 1 failed (enrolment, install) or degraded (status), 2 configuration error,
3 not running (status).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from collectors.configfile import ConfigError
from collectors.version import __version__

DEFAULT_CONFIG = "/etc/socpipe/agent.yaml"
DEFAULT_STATE_DIR = "/var/lib/socpipe-agent"
PROG = "socpipe-agent"


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = argparse.ArgumentParser(prog=prog, description="The socpipe collector agent: ships logs to the SOC.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent until SIGTERM/SIGINT")
    run.add_argument("--config", default=DEFAULT_CONFIG, help=f"agent YAML (default {DEFAULT_CONFIG})")
    run.add_argument("--log-level", default="INFO")
    run.add_argument("--check-only", action="store_true", help="load the config and identity, report, exit")

    en = sub.add_parser("enroll", help="trade the SOC's enrolment token for this agent's identity")
    en.add_argument("--server", required=True, help="the SOC's enrolment URL, e.g. https://soc.example:8765")
    en.add_argument("--token", help="enrolment token (or --token-file, or env SOCPIPE_ENROL_TOKEN)")
    en.add_argument("--token-file", help="read the token from this file (keeps it out of the process list)")
    en.add_argument("--config", help="take state_dir from this agent YAML")
    en.add_argument("--state-dir", help=f"where identity.json goes (default: the config's, else {DEFAULT_STATE_DIR})")
    en.add_argument("--ca-file", help="CA certificate (PEM) that signed the enrolment server's certificate")
    en.add_argument("--host", help="host name to register (default: this machine's)")
    en.add_argument("--force", action="store_true", help="enrol again although identity.json exists (a NEW agent)")

    st = sub.add_parser("status", help="is the agent running, connected, and is every input ok?")
    st.add_argument("--config", default=DEFAULT_CONFIG, help=f"agent YAML (default {DEFAULT_CONFIG})")
    st.add_argument("--json", action="store_true", help="print the status document as JSON")

    svc = sub.add_parser("install-service", help="install the hardened systemd unit (pip installs; the .deb has it)")
    svc.add_argument("--config", default=DEFAULT_CONFIG)
    svc.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    svc.add_argument("--user", default="socpipe-agent")
    svc.add_argument("--log-group", default="adm", help="group that may read the logs (default adm)")
    svc.add_argument("--dry-run", action="store_true", help="print the unit; change nothing")

    sub.add_parser("example-config", help="print the documented agent.yaml (every key with its default)")

    args = parser.parse_args(argv)
    try:
        commands = {
            "run": _run,
            "enroll": _enroll,
            "status": _status,
            "install-service": _install_service,
            "example-config": _example_config,
        }
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from collectors.config import check_kafka_transport, effective_kafka, load_agent_config
    from collectors.health import quiet_kafka_client
    from collectors.identity import load_identity

    config = load_agent_config(args.config)
    identity = load_identity(config.identity_path)
    check_kafka_transport(effective_kafka(config.kafka, identity.kafka, os.environ), config.allow_plaintext_remote)
    if args.check_only:
        return 0
    level = args.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_kafka_client()
    from collectors.agent import Agent

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Agent(config, identity).run(stop)
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from collectors.enrol import enroll
    from collectors.identity import EnrolmentError

    token = args.token or os.environ.get("SOCPIPE_ENROL_TOKEN", "")
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            print(f"error: --token-file {args.token_file}: {exc.strerror}", file=sys.stderr)
            return 1
    if not token:
        print("error: no token: pass --token, --token-file or set SOCPIPE_ENROL_TOKEN", file=sys.stderr)
        return 1
    state_dir = args.state_dir
    if not state_dir and args.config:
        from collectors.config import load_agent_config

        state_dir = load_agent_config(args.config).state_dir
    state_dir = state_dir or DEFAULT_STATE_DIR
    try:
        identity = enroll(args.server, token, state_dir, host=args.host, ca_file=args.ca_file, force=args.force)
    except EnrolmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"enrolled: agency_id={identity.agency_id} agent_id={identity.agent_id}; identity written to "
        f"{Path(state_dir) / 'identity.json'} (mode 0600)\n"
        "next: list the logs to ship in /etc/socpipe/agent.yaml (files:), then: systemctl restart socpipe-agent"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from collectors.config import effective_kafka, load_agent_config
    from collectors.identity import load_identity
    from collectors.status import EXIT_NOT_RUNNING, STATUS_FILE, assess, pid_alive, render_status

    config = load_agent_config(args.config)
    path = Path(config.state_dir) / STATUS_FILE
    doc = None
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        pass
    except PermissionError:
        print(
            f"error: cannot read {path}: permission denied; run as root or as the service user "
            "(sudo -u socpipe-agent socpipe-agent status)",
            file=sys.stderr,
        )
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    now = time.time()
    code, verdict = assess(doc, now, pid_alive)
    if args.json:
        print(json.dumps({"verdict": verdict, "exit_code": code, "status": doc}, indent=2))
        return code
    if doc is None or code == EXIT_NOT_RUNNING:
        print(verdict)
        try:  # still useful: who we are and where we would connect
            ident = load_identity(config.identity_path)
            k = effective_kafka(config.kafka, ident.kafka, os.environ)
            print(f"identity   agency_id={ident.agency_id} agent_id={ident.agent_id}; kafka bootstrap={k.bootstrap}")
        except ConfigError as exc:
            print(f"identity   {exc}")
        if doc is None:
            return code
    print("\n".join(render_status(doc, now, verdict) if code != EXIT_NOT_RUNNING else render_status(doc, now, "")[1:]))
    return code


def _example_config(args: argparse.Namespace) -> int:
    from collectors.service import example_config

    sys.stdout.write(example_config())
    return 0


def _install_service(args: argparse.Namespace) -> int:
    from collectors.service import ServiceError, install, unit_text

    unit = unit_text(f"{sys.executable} -m collectors", args.config, args.state_dir, args.user, args.log_group)
    if args.dry_run:
        print(unit)
        return 0
    try:
        for step in install(unit, args.config, args.state_dir, args.user, args.log_group):
            print(step)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
