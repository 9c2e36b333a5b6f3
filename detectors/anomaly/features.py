"""Window features per entity, computed incrementally from flat ECS events (pure, no I/O).

One `Profile` names the entity an anomaly is about (a source address, a host of an agency, a user,
or a single request), which events feed it, and the features of a window. Training, offline scoring
and streaming all go through `Profile.accumulator()` -> `add(event)` -> `features(context)`, so a
feature can never mean one thing in training and another in production.

In parts: `event_fields` (what one event says), `accumulators` (the windows and their feature names),
`vocabulary` (the context learned in training); this module holds the profiles and the model space,
and re-exports the names used from `detectors.anomaly.features`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from detectors.anomaly.accumulators import (
    DATASET_BUCKETS,
    HOST_FEATURES,
    NO_HISTORY,
    USER_FEATURES,
    WEB_REQUEST_FEATURES,
    WEB_SOURCE_FEATURES,
    History,
    HostWindow,
    UserWindow,
    WebRequestWindow,
    WebSourceWindow,
)
from detectors.anomaly.event_fields import (
    AUTH_DATASETS,
    DISTINCT_CAP,
    STATIC_EXTENSIONS,
    WEB_DATASETS,
    char_entropy,
    event_epoch,
    path_depth,
    path_extension,
    request_segments,
)
from detectors.anomaly.vocabulary import build_host_context, build_request_context, build_user_context, load_context

__all__ = [
    "AUTH_DATASETS",
    "DISTINCT_CAP",
    "HOST_FEATURES",
    "NO_HISTORY",
    "PROFILES",
    "STATIC_EXTENSIONS",
    "USER_FEATURES",
    "WEB_DATASETS",
    "WEB_REQUEST_FEATURES",
    "WEB_SOURCE_FEATURES",
    "History",
    "HostWindow",
    "Profile",
    "UserWindow",
    "WebRequestWindow",
    "WebSourceWindow",
    "build_host_context",
    "build_request_context",
    "build_user_context",
    "char_entropy",
    "event_epoch",
    "load_context",
    "model_vector",
    "path_depth",
    "path_extension",
    "request_segments",
]


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    entity_fields: tuple[str, ...]
    datasets: frozenset[str] | None  # None = every dataset
    feature_names: tuple[str, ...]
    log_features: frozenset[str]  # counts: modelled as log1p(x)
    accumulator: Callable[[], Any]
    per_request: bool = False
    build_context: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
    required_fields: tuple[str, ...] = ()

    def accepts(self, event: dict[str, Any]) -> bool:
        if self.datasets is not None and event.get("event.dataset") not in self.datasets:
            return False
        return all(event.get(f) not in (None, "") for f in self.required_fields)

    def entity(self, event: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(event.get(f) or "") for f in self.entity_fields)

    def context(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return self.build_context(events) if self.build_context else {}


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "web.source",
            ("source.ip",),
            WEB_DATASETS,
            tuple(WEB_SOURCE_FEATURES),
            frozenset(
                {"requests", "distinct_paths", "max_url_length", "distinct_urls", "active_seconds", "prior_requests"}
            ),
            WebSourceWindow,
            required_fields=("source.ip",),
        ),
        Profile(
            "web.request",
            ("source.ip",),
            WEB_DATASETS,
            tuple(WEB_REQUEST_FEATURES),
            frozenset({"path_length", "query_length", "max_param_length", "percent_escapes"}),
            WebRequestWindow,
            per_request=True,
            build_context=build_request_context,
        ),
        Profile(
            "host.activity",
            ("organization.id", "host.name"),
            None,
            tuple(HOST_FEATURES),
            frozenset(
                {
                    *(f"events_{b}" for b in DATASET_BUCKETS),
                    "auth_failures",
                    "distinct_users",
                    "distinct_sources",
                    "distinct_processes",
                    "new_processes",
                }
            ),
            HostWindow,
            build_context=build_host_context,
        ),
        Profile(
            "auth.user",
            ("organization.id", "user.name"),
            AUTH_DATASETS,
            tuple(USER_FEATURES),
            frozenset({"logins", "login_failures", "distinct_sources", "new_source_networks"}),
            UserWindow,
            build_context=build_user_context,
            required_fields=("user.name",),
        ),
    )
}


def model_vector(profile: Profile, raw: list[float]) -> list[float]:
    """Raw features -> model space (log1p on counts); non-finite values become 0."""
    out = []
    for name, v in zip(profile.feature_names, raw):
        v = float(v) if math.isfinite(v) else 0.0
        out.append(math.log1p(max(v, 0.0)) if name in profile.log_features else v)
    return out
