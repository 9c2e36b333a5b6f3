"""The lazily loaded CLI knows every command of every module, and `rules lint` imports no client library."""

import importlib
import pkgutil
import subprocess
import sys

import click

import pipeline.cli
from pipeline.cli import COMMAND_MODULES, main


def test_every_command_of_every_module_is_reachable():
    found = {}
    for info in pkgutil.iter_modules(pipeline.cli.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"pipeline.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            found[command.name] = info.name
    assert found == COMMAND_MODULES
    ctx = click.Context(main)
    for name in COMMAND_MODULES:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
    assert main.get_command(ctx, "nope") is None


# Client libraries, the agent, the models' numeric stack; the wire contract's classes and hashlib (OpenSSL's
# start-up, ~2 ms: the lint's digests come from detectors.common.digests) are start-up cost too
LINT_NEVER_IMPORTS = (
    "kafka",
    "elasticsearch",
    "sklearn",
    "numpy",
    "pydantic",
    "collectors.agent",
    "collectors.wire",
    "hashlib",
)


def test_rules_lint_imports_only_what_it_needs(tmp_path):
    (tmp_path / "r.yml").write_text(
        "title: t\nid: 5b0e1f5e-4b8f-4c4e-9a51-0a4c0a4f3f10\nlogsource: {product: linux}\n"
        "detection:\n  sel: {a: b}\n  condition: sel\n"
    )
    code = (
        f"import sys\nfrom pipeline.cli import main\nUNWANTED = {LINT_NEVER_IMPORTS!r}\n"
        f"try:\n    main(['rules', 'lint', {str(tmp_path)!r}])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in UNWANTED if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "loaded 1 of 1" in out and out.strip().endswith("[]")


def test_digests_without_hashlib_are_hashlibs():
    import hashlib

    from detectors.common.digests import blake2b, sha256

    for data in (b"", b"abc", bytes(range(256)) * 9):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        assert blake2b(data, digest_size=16).hexdigest() == hashlib.blake2b(data, digest_size=16).hexdigest()
