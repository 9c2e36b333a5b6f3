"""Packages that re-export names do it lazily through one helper (`collectors.lazy.lazy_exports`):
every listed name resolves to the object of its module, an unknown one is an AttributeError, and
importing one light module of a package does not load the heavy rest."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

LAZY_PACKAGES = ["collectors", "detectors.common", "detectors.anomaly", "detectors.sigma"]


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_every_export_resolves_to_its_module_object(name: str) -> None:
    package = importlib.import_module(name)
    assert sorted(package.__all__) == sorted(package._EXPORTS)
    for attr, module in package._EXPORTS.items():
        assert getattr(package, attr) is getattr(importlib.import_module(module), attr)
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'nope'"):
        package.nope  # noqa: B018


def _loaded_after(imports: str, heavy: tuple[str, ...]) -> list[str]:
    code = f"import sys\nimport {imports}\nprint([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return eval(out)  # noqa: S307 - our own subprocess printing a list of names


def test_a_light_module_does_not_load_its_package() -> None:
    # the CLI's option lists: statuses, closing reasons, severities
    assert (
        _loaded_after(
            "detectors.common.severity, pipeline.triage.workflow",
            ("elasticsearch", "detectors.common.times", "collectors.wire"),
        )
        == []
    )
    # the alert builder's finding types, the SOC side's wire contract
    assert (
        _loaded_after(
            "detectors.anomaly.finding, detectors.sigma.detection, collectors.wire",
            (
                "numpy",
                "sklearn",
                "re2",
                "kafka",
                "collectors.agent",
                "detectors.sigma.engine",
                "detectors.anomaly.scorer",
            ),
        )
        == []
    )
