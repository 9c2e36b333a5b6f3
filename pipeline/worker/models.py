"""Anomaly models inside the worker: load at start, reload on change, never stop the rules.

A missing or broken model directory is logged as an error and skipped; the others (and every rule)
keep running. `maybe_reload` is cheap to call often: it compares manifest digests and stages only
every `check_every_s` seconds, and rebuilds the scorer only when something changed. Window state of
the old scorer is dropped on reload (windows restart empty), which is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("socpipe.detector.models")


class ModelSet:
    def __init__(self, dirs: list[str], check_every_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.dirs = [str(d) for d in dirs]
        self.check_every_s = check_every_s
        self._clock = clock
        self._next_check = 0.0
        self.scorer: Any = None
        self.errors: dict[str, str] = {}  # dir -> why it is not loaded
        self.loaded: list[str] = []
        if self.dirs:
            self._load()

    def __bool__(self) -> bool:
        return self.scorer is not None

    def _load(self) -> None:
        from detectors.anomaly import AnomalyScorer, ModelLoadError

        good: list[str] = []
        self.errors = {}
        for d in self.dirs:
            try:
                AnomalyScorer.from_dirs([d])  # verify alone, so one broken dir cannot hide the rest
                good.append(d)
            except ModelLoadError as exc:
                self.errors[d] = str(exc)
                log.error("anomaly_model_unusable dir=%s error=%r action=skip (rules keep working)", d, str(exc))
            except Exception as exc:  # a model must never stop the worker
                self.errors[d] = f"{type(exc).__name__}: {exc}"
                log.error("anomaly_model_unusable dir=%s error=%r action=skip (rules keep working)", d, str(exc))
        self.scorer = AnomalyScorer.from_dirs(good) if good else None
        self.loaded = good
        self._next_check = self._clock() + self.check_every_s

    def maybe_reload(self) -> bool:
        """Reload when a loaded model changed or a broken/missing one became loadable; True if reloaded."""
        if not self.dirs or self._clock() < self._next_check:
            return False
        self._next_check = self._clock() + self.check_every_s
        changed = self.scorer.changed_dirs() if self.scorer is not None else []
        retry = [d for d in self.errors if _loadable(d)]
        if not changed and not retry:
            return False
        log.info("anomaly_models_reload changed=%s recovered=%s note=open_windows_restart", changed, retry)
        self._load()
        return True


def _loadable(d: str) -> bool:
    from detectors.anomaly import ModelLoadError, load_model_dir

    try:
        load_model_dir(d)
        return True
    except (ModelLoadError, OSError, ValueError):
        return False
