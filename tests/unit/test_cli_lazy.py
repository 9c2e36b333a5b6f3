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


def test_rules_lint_imports_only_what_it_needs(tmp_path):
    (tmp_path / "r.yml").write_text(
        "title: t\nlogsource: {product: linux}\ndetection:\n  sel: {a: b}\n  condition: sel\n"
    )
    code = (
        "import sys\nfrom pipeline.cli import main\n"
        f"try:\n    main(['rules', 'lint', {str(tmp_path)!r}])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('kafka', 'elasticsearch', 'sklearn', 'collectors.agent') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "loaded 1 of 1" in out and out.strip().endswith("[]")
