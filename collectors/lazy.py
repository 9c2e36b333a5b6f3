"""Lazy package exports (PEP 562), one home for every package `__init__` that re-exports names.

A package's `__init__` runs whenever any of its modules is imported; re-exporting names eagerly
would load the whole package (the agent and its Kafka client, numpy and the models, the Elasticsearch
client) for a caller that wanted one small module. Instead a package lists where each name lives:

    _EXPORTS = {"Engine": "detectors.sigma.engine", ...}
    __getattr__ = lazy_exports(__name__, _EXPORTS)

and the module holding a name is imported the first time the name is read. It lives in `collectors/`
(the lowest layer, imported by the agent alone and by the SOC side) and imports nothing of socpipe.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """The module-level `__getattr__` of `package`: `exports` maps each name to its module's path.
    A name is imported once, then stored in the package (later reads do not come back here)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


class LazyLogger:
    """A module's logger with `logging` imported at the first message: for modules on the start-up
    path that log only on errors (the parsers: `socpipe rules lint` runs them on its examples and
    otherwise never needs logging, ~5-10 ms of imports)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import logging

        return getattr(logging.getLogger(self._name), attr)
