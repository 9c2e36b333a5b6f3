"""`socpipe scan` writes the same alert documents, byte for byte, on a small mixed file (issue 15).

The scan path is tuned for speed (engine, episodes, alert building, output): this pins what it
writes on web scanner traffic, sshd brute force and auditd (single detections, correlation windows
and their continuations folded into episodes) against the output of the code before that tuning.
Only what depends on when the scan runs is masked: `event.created`, `event.ingested` and the
workflow times (the wall clock), and where the checkout sits (rule paths). The input sits at one fixed path, as detection ids hash where an
event was read (log.file.path).

If you change the alert documents, the rules under rules/linux or rules/web, or the parsers on
purpose, recompute GOLDEN with `python tests/unit/test_scan_output.py` and say why in the commit.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
RULES = [REPO / "rules" / "linux", REPO / "rules" / "web", SHARED / "sigma" / "rules" / "web"]
PARTS = [  # (corpus file, lines taken from its start)
    ("datasets/apache_scanner_logs_dvwa/w3af.txt", 600),
    ("datasets/loghub_2k_samples/OpenSSH/OpenSSH_2k.log", 2000),
    ("datasets/ait_camlds_attack_manifestations/sequences/3_ssh_apt-26/linuxshare/logs/log/audit/audit.log.gz", 3000),
    ("datasets/secrepo_web_access_samples/access.log.2022-12-22", 400),
]
GOLDEN = {
    "alerts": 43,
    "detections": 5258,
    "digest": "6a39e6483d8518044b3adc5b6a48d9a597b25cddc52f36f05b2972d525bbc1cc",
}
WALL_CLOCK = re.compile(r'"(event\.created|event\.ingested|socpipe\.workflow\.updated_at)": "[^"]*"')
HISTORY_AT = re.compile(r'"at": "[^"]*"')


def _mixed() -> Path | None:
    lines: list[bytes] = []
    for rel, n in PARTS:
        path = SHARED / rel
        if not path.exists():
            return None
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
            lines += [x if x.endswith(b"\n") else x + b"\n" for x in fh.readlines()[:n]]
    folder = Path(tempfile.gettempdir()) / "socpipe-test-scan-output"
    folder.mkdir(exist_ok=True)
    out = folder / "mixed.log"
    part = folder / f"mixed.log.{os.getpid()}"
    part.write_bytes(b"".join(lines))
    part.replace(out)  # whole: another run may be reading it
    return out


def scan_dump() -> tuple[int, int, str] | None:
    """(alerts, detections, sha256 of the masked output), or None without the shared corpora."""
    if not all(r.is_dir() for r in RULES):
        return None
    path = _mixed()
    if path is None:
        return None
    args = ["scan", *[a for r in RULES for a in ("--rules", str(r))], "--input", str(path), "--timezone", "UTC"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    text = out.stdout.replace(str(REPO), "<repo>").replace(str(SHARED), "<shared>")  # rule paths
    text = HISTORY_AT.sub('"at": "<now>"', WALL_CLOCK.sub(lambda m: f'"{m.group(1)}": "<now>"', text))
    alerts = [x for x in text.splitlines() if x.startswith("{")]
    detections = int(out.stderr.split(" detections")[0].rsplit(" ", 1)[1])
    return len(alerts), detections, hashlib.sha256(text.encode()).hexdigest()


def test_scan_writes_the_pinned_alerts_on_a_mixed_file():
    got = scan_dump()
    if got is None:
        pytest.skip("shared corpora or SigmaHQ rules absent")
    alerts, detections, digest = got
    assert detections > 10 * alerts > 0  # a high alert rate, folded into episodes
    assert (alerts, detections) == (GOLDEN["alerts"], GOLDEN["detections"])
    assert digest == GOLDEN["digest"], "scan's alert documents changed (see the module doc)"


if __name__ == "__main__":
    print(scan_dump(), file=sys.stderr)
