"""Build the distributions: `python release/build.py wheels|deb [--out dist]`.

wheels: socpipe-agent (only collectors/, release/agent/pyproject.toml) and socpipe-soc (the repo's
        pyproject: SOC side, agent included), then their SHA-256.
deb:    socpipe-agent_<version>-1_all.deb with dpkg-deb: the agent in /usr/lib/socpipe-agent, hash-
        pinned kafka-python bundled (Debian's is too old), the rest from Debian (python3-yaml,
        -zstandard, -crc32c), system user, hardened unit, commented /etc/socpipe/agent.yaml.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "release"
sys.path.insert(0, str(ROOT))

from collectors.service import unit_text  # noqa: E402
from collectors.version import __version__  # noqa: E402

DEB_REVISION = "1"


def _source_date_epoch() -> str:
    """Reproducible builds: every timestamp in the wheels and the .deb is the last commit's time, so
    anyone rebuilding the same commit gets the same SHA-256 as the SOC's build machine."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True)
        return out.stdout.strip() or "1764979200"
    except OSError:
        return "1764979200"


SOURCE_DATE_EPOCH = _source_date_epoch()
BUILD_ENV = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}


def _copy_package(dest: Path, *extra_ignore: str) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", *extra_ignore)
    shutil.copytree(ROOT / "collectors", dest, ignore=ignore)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_agent_wheel(out: Path, python: str = sys.executable) -> Path:
    """Stage collectors/ with the agent's pyproject and build its wheel (no SOC code can slip in)."""
    stage = ROOT / "build" / "agent-src"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PKG / "agent" / name, stage / name)
    _copy_package(stage / "collectors")
    shutil.copy(ROOT / "config" / "agent.yaml", stage / "collectors" / "agent.example.yaml")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(stage)],
        check=True,
        env=BUILD_ENV,
    )
    return out / f"socpipe_agent-{__version__}-py3-none-any.whl"


def build_soc_wheel(out: Path, python: str = sys.executable) -> Path:
    shutil.rmtree(ROOT / "build" / "lib", ignore_errors=True)
    subprocess.run(
        [python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        env=BUILD_ENV,
    )
    return next(out.glob("socpipe_soc-*.whl"))


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def _vendor_kafka(dest: Path, python: str) -> str:
    """Download the hash-pinned kafka-python wheel and unpack its package, minus benchmarks."""
    dl = ROOT / "build" / "deb-download"
    shutil.rmtree(dl, ignore_errors=True)
    subprocess.run(
        [python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--require-hashes"]
        + ["-r", str(PKG / "deb" / "vendor.txt"), "-d", str(dl)],
        check=True,
        env=BUILD_ENV,
    )
    (wheel,) = dl.glob("kafka_python-*.whl")
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = info.filename
            if not name.startswith("kafka/") or name.startswith("kafka/benchmarks/") or name.endswith("/"):
                continue
            data = z.read(info)
            if name.endswith(".py") and data.startswith(b"#!"):
                data = data.split(b"\n", 1)[1]  # modules, not scripts: no shebang (lintian)
            _write(dest / name, data)
    return version


LAUNCHER = """#!/usr/bin/python3 -I
# socpipe-agent: the agent lives in /usr/lib/socpipe-agent (its bundled kafka-python in third_party/).
import sys

sys.path[:0] = ["/usr/lib/socpipe-agent", "/usr/lib/socpipe-agent/third_party"]
from collectors.cli import main  # noqa: E402

sys.exit(main())
"""


def build_deb(out: Path, python: str = sys.executable) -> Path:
    version = f"{__version__}-{DEB_REVISION}"
    root = ROOT / "build" / "deb" / f"socpipe-agent_{version}_all"
    shutil.rmtree(root, ignore_errors=True)
    lib = root / "usr" / "lib" / "socpipe-agent"
    _copy_package(lib / "collectors", "*.md")
    shutil.copy(ROOT / "config" / "agent.yaml", lib / "collectors" / "agent.example.yaml")
    kafka_version = _vendor_kafka(lib / "third_party", python)
    _write(root / "usr" / "bin" / "socpipe-agent", LAUNCHER, 0o755)
    unit = unit_text(
        "/usr/bin/socpipe-agent", "/etc/socpipe/agent.yaml", "/var/lib/socpipe-agent", "socpipe-agent", "adm"
    )
    _write(root / "lib" / "systemd" / "system" / "socpipe-agent.service", unit)
    _write(root / "etc" / "socpipe" / "agent.yaml", (ROOT / "config" / "agent.yaml").read_bytes())
    doc = root / "usr" / "share" / "doc" / "socpipe-agent"
    _write(doc / "copyright", (PKG / "deb" / "copyright").read_text().replace("@KAFKA_VERSION@", kafka_version))
    _write(
        doc / "changelog.Debian.gz",
        _gzip((PKG / "deb" / "changelog.in").read_text().replace("@VERSION@", version).encode()),
    )
    man = (PKG / "deb" / "socpipe-agent.1").read_text().replace("@VERSION@", __version__)
    _write(root / "usr" / "share" / "man" / "man1" / "socpipe-agent.1.gz", _gzip(man.encode()))
    _write(
        root / "usr" / "share" / "lintian" / "overrides" / "socpipe-agent",
        (PKG / "deb" / "lintian-overrides").read_bytes(),
    )
    for p in [root, *root.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)

    size_kib = sum((p.stat().st_size + 1023) // 1024 for p in root.rglob("*") if p.is_file())
    debian = root / "DEBIAN"
    control = (PKG / "deb" / "control.in").read_text().replace("@VERSION@", version).replace("@SIZE@", str(size_kib))
    _write(debian / "control", control)
    _write(debian / "conffiles", "/etc/socpipe/agent.yaml\n")
    for script in ("postinst", "prerm", "postrm"):
        _write(debian / script, (PKG / "deb" / script).read_bytes(), 0o755)
    sums = "".join(
        f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(root)}\n"  # noqa: S324 (dpkg's format)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "DEBIAN" not in p.relative_to(root).parts and not str(p.relative_to(root)).startswith("etc/")
    )
    _write(debian / "md5sums", sums)
    debian.chmod(0o755)
    stamp = int(SOURCE_DATE_EPOCH)
    for p in [root, *root.rglob("*")]:
        os.utime(p, (stamp, stamp), follow_symlinks=False)
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"socpipe-agent_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
        env=BUILD_ENV,
    )
    return deb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="release/build.py")
    p.add_argument("what", choices=["wheels", "deb"])
    p.add_argument("--out", default=str(ROOT / "dist"))
    args = p.parse_args(argv)
    out = Path(args.out)
    built = [build_agent_wheel(out), build_soc_wheel(out)] if args.what == "wheels" else [build_deb(out)]
    for path in built:
        print(f"{sha256(path)}  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
