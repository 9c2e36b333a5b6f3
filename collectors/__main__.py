"""`python -m collectors run --config FILE`: the long-running agent in a lean process.

`socpipe agent run` re-executes itself into this, so the agent never carries the modules of the other
areas that the one `socpipe` CLI imports (measured: ~10 MB of resident memory on an agency host).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from collectors.configfile import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collectors")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent until SIGTERM/SIGINT")
    run.add_argument("--config", required=True)
    run.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    level = args.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    from collectors.agent import Agent
    from collectors.config import load_agent_config
    from collectors.identity import load_identity

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        config = load_agent_config(args.config)
        identity = load_identity(config.identity_path)
        Agent(config, identity).run(stop)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
