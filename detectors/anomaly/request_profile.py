"""Per-endpoint, per-parameter profiles of normal web requests (Kruegel & Vigna 2003 style; pure).

Training learns, from attack-free requests only, what each endpoint (path with numeric segments
generalised) and each of its parameters (query string and form body share one namespace) looks
like: which parameters appear and in which order, each value's length (mean, variance, range), the
characters it uses, its shape 3-grams (letters -> A/a, digits -> 9, everything else kept), whether
it is numeric and within which range, and whether it is an enumeration. A request is scored by
summing points for every property it departs from; the reasons (parameter, property, what was seen,
what was expected, points) explain the score.

Values are percent-decoded once as latin-1 (one character per byte), so a multi-byte or doubly
encoded payload shows up as characters this parameter never carried. Nothing here depends on how
attacks look: every property is learned from normal traffic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly.request_parts import endpoint_of, grams, request_parts

ENUM_MAX = 64  # an enumeration has at most this many values ...
ENUM_RATIO = 0.05  # ... and at most this share of distinct values among its samples
ENUM_MIN_SAMPLES = 20
# a parameter seen fewer times than this says too little about its values: the profile of the same
# name across endpoints is used when it knows more, else only its type (numbers) is checked
MIN_PARAM_SAMPLES = 20
_NUMBER = re.compile(r"^[+-]?\d{1,18}(?:[.,]\d{1,12})?$")

# points per departure (the hyperparameters; chosen on the validation split, see README.md)
POINTS: dict[str, float] = {
    "unseen_endpoint": 6.0,
    "unseen_method": 3.0,
    "path_charset": 3.0,  # per character never seen in a path
    "unseen_parameter": 5.0,
    "duplicate_parameter": 3.0,
    "missing_parameter": 3.0,  # per parameter every training request of the endpoint had
    "parameter_order": 1.0,
    "length": 1.0,  # times -ln(Chebyshev bound), capped
    "charset": 2.5,  # per character never seen in this parameter
    "ngrams": 1.5,  # per shape 3-gram never seen in this parameter
    "numeric_type": 6.0,
    "numeric_range": 2.0,  # plus log2 of how many ranges away
    "enumeration": 5.0,
}
CAPS: dict[str, float] = {"length": 8.0, "charset": 12.0, "ngrams": 9.0, "path_charset": 12.0, "numeric_range": 6.0}


@dataclass(slots=True)
class Reason:
    parameter: str  # parameter name, or "(path)" / "(endpoint)"
    property: str
    points: float
    observed: str
    expected: str
    value: float = 0.0  # numeric observation, for the alert's top features
    baseline: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "property": self.property,
            "points": round(self.points, 3),
            "observed": self.observed,
            "expected": self.expected,
        }


# --------------------------------------------------------------------------- learned profiles
@dataclass(slots=True)
class ParamProfile:
    count: int
    len_mean: float
    len_var: float
    len_min: int
    len_max: int
    alphabet: frozenset[str]
    grams: frozenset[str]
    numeric: bool
    num_min: float
    num_max: float
    enum: frozenset[str] | None

    def check(self, name: str, value: str, out: list[Reason]) -> None:
        if self.enum is not None and value in self.enum:
            return  # a value seen in training departs from nothing
        if self.count < MIN_PARAM_SAMPLES:
            if self.numeric and not _NUMBER.match(value):
                out.append(Reason(name, "numeric_type", POINTS["numeric_type"], value[:64], "a number", 1.0, 0.0))
            return
        n = len(value)
        if n > self.len_max or n < self.len_min:
            d = n - self.len_mean
            bound = max(self.len_var, 1.0) / (d * d) if d else 1.0
            if bound < 1.0:
                pts = min(CAPS["length"], -math.log(bound) * POINTS["length"])
                out.append(
                    Reason(
                        name,
                        "length",
                        pts,
                        str(n),
                        f"{self.len_min}..{self.len_max} (mean {self.len_mean:.1f})",
                        n,
                        self.len_mean,
                    )
                )
        if self.enum is not None:
            if value not in self.enum:
                out.append(
                    Reason(
                        name,
                        "enumeration",
                        POINTS["enumeration"],
                        value[:64],
                        f"one of {len(self.enum)} values",
                        1.0,
                        0.0,
                    )
                )
        if self.numeric:
            if not _NUMBER.match(value):
                out.append(Reason(name, "numeric_type", POINTS["numeric_type"], value[:64], "a number", 1.0, 0.0))
            else:
                x = float(value.replace(",", "."))
                if x < self.num_min or x > self.num_max:
                    width = max(self.num_max - self.num_min, 1.0)
                    away = (self.num_min - x if x < self.num_min else x - self.num_max) / width
                    pts = min(CAPS["numeric_range"], POINTS["numeric_range"] + math.log2(1.0 + away))
                    out.append(
                        Reason(
                            name,
                            "numeric_range",
                            pts,
                            value[:32],
                            f"{self.num_min:g}..{self.num_max:g}",
                            x,
                            self.num_max,
                        )
                    )
            return  # a number's characters and shape say nothing the checks above did not
        novel = set(value) - self.alphabet
        if novel:
            pts = min(CAPS["charset"], POINTS["charset"] * len(novel))
            shown = "".join(sorted(novel))[:16]
            out.append(
                Reason(name, "charset", pts, repr(shown), f"{len(self.alphabet)} known characters", len(novel), 0.0)
            )
        if self.enum is None and n >= 3:
            unseen = len(grams(value) - self.grams)
            if unseen:
                pts = min(CAPS["ngrams"], POINTS["ngrams"] * unseen)
                out.append(
                    Reason(name, "ngrams", pts, f"{unseen} new 3-grams", f"{len(self.grams)} known", unseen, 0.0)
                )

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "length": [self.len_mean, self.len_var, self.len_min, self.len_max],
            "alphabet": "".join(sorted(self.alphabet)),
            "grams": sorted(self.grams),
            "numeric": [self.num_min, self.num_max] if self.numeric else None,
            "enum": sorted(self.enum) if self.enum is not None else None,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ParamProfile:
        mean, var, lo, hi = (float(x) for x in d["length"])
        num = d.get("numeric")
        enum = d.get("enum")
        return cls(
            int(d["count"]),
            mean,
            var,
            int(lo),
            int(hi),
            frozenset(str(d["alphabet"])),
            frozenset(str(g) for g in d["grams"]),
            num is not None,
            float(num[0]) if num else 0.0,
            float(num[1]) if num else 0.0,
            frozenset(str(v) for v in enum) if enum is not None else None,
        )


def learn_param(values: list[str]) -> ParamProfile:
    n = len(values)
    lengths = [len(v) for v in values]
    mean = sum(lengths) / n
    var = sum((x - mean) ** 2 for x in lengths) / n
    alphabet: set[str] = set()
    gram_set: set[str] = set()
    distinct = set(values)
    for v in distinct:
        alphabet.update(v)
        gram_set |= grams(v)
    numeric = all(_NUMBER.match(v) for v in distinct)
    nums = [float(v.replace(",", ".")) for v in distinct] if numeric else [0.0]
    is_enum = n >= ENUM_MIN_SAMPLES and len(distinct) <= ENUM_MAX and len(distinct) <= ENUM_RATIO * n
    return ParamProfile(
        n,
        mean,
        var,
        min(lengths),
        max(lengths),
        frozenset(alphabet),
        frozenset(gram_set),
        numeric,
        min(nums),
        max(nums),
        frozenset(distinct) if is_enum else None,
    )


@dataclass(slots=True)
class EndpointProfile:
    count: int
    methods: frozenset[str]
    params: dict[str, ParamProfile]
    required: frozenset[str]  # present in every training request that had parameters
    orders: frozenset[tuple[str, ...]]

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "methods": sorted(self.methods),
            "params": {k: p.to_json() for k, p in sorted(self.params.items())},
            "required": sorted(self.required),
            "orders": sorted(list(o) for o in self.orders),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EndpointProfile:
        return cls(
            int(d["count"]),
            frozenset(str(m) for m in d["methods"]),
            {str(k): ParamProfile.from_json(v) for k, v in d["params"].items()},
            frozenset(str(r) for r in d["required"]),
            frozenset(tuple(str(x) for x in o) for o in d["orders"]),
        )


@dataclass(slots=True)
class RequestProfile:
    endpoints: dict[str, EndpointProfile]
    by_name: dict[str, ParamProfile]  # every endpoint's values of a name: for unseen endpoints
    path_alphabet: frozenset[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def score(self, event: dict[str, Any], top: int = 5) -> tuple[float, list[Reason]]:
        method, path, params = request_parts(event)
        return self.score_parts(method, path, params, top)

    def score_parts(
        self, method: str, path: str, params: list[tuple[str, str]], top: int = 5
    ) -> tuple[float, list[Reason]]:
        out: list[Reason] = []
        novel = set(path[:1024]) - self.path_alphabet
        if novel:
            pts = min(CAPS["path_charset"], POINTS["path_charset"] * len(novel))
            shown = repr("".join(sorted(novel))[:16])
            out.append(Reason("(path)", "path_charset", pts, shown, "characters seen in paths", len(novel), 0.0))
        ep = self.endpoints.get(endpoint_of(path))
        if ep is None:
            out.append(
                Reason("(endpoint)", "unseen_endpoint", POINTS["unseen_endpoint"], path[:128], "a known endpoint", 1, 0)
            )
            known = self.by_name
        else:
            known = ep.params
            if method and method not in ep.methods:
                out.append(
                    Reason("(endpoint)", "unseen_method", POINTS["unseen_method"], method[:16], ",".join(ep.methods))
                )
        seen: set[str] = set()
        for name, value in params:
            if name in seen:
                out.append(
                    Reason(name[:64], "duplicate_parameter", POINTS["duplicate_parameter"], "repeated", "once", 1, 0)
                )
                continue
            seen.add(name)
            prof = known.get(name)
            if prof is not None and prof.count < MIN_PARAM_SAMPLES:
                wider = self.by_name.get(name)
                if wider is not None and wider.count > prof.count:
                    prof = wider
            if prof is None:
                out.append(Reason(name[:64], "unseen_parameter", POINTS["unseen_parameter"], name[:64], "a known name"))
                continue
            prof.check(name, value, out)
        if ep is not None and params:
            missing = ep.required - seen
            if missing:
                pts = POINTS["missing_parameter"] * len(missing)
                out.append(Reason(",".join(sorted(missing))[:64], "missing_parameter", pts, "absent", "present"))
            elif ep.orders and len(seen) == len(params) and tuple(n for n, _ in params) not in ep.orders:
                out.append(
                    Reason("(endpoint)", "parameter_order", POINTS["parameter_order"], "new order", "seen order")
                )
        if not out:
            return 0.0, out
        total = sum(r.points for r in out)
        out.sort(key=lambda r: -r.points)
        return total, out[:top]

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoints": {k: e.to_json() for k, e in sorted(self.endpoints.items())},
            "by_name": {k: p.to_json() for k, p in sorted(self.by_name.items())},
            "path_alphabet": "".join(sorted(self.path_alphabet)),
            "points": dict(POINTS),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RequestProfile:
        if d.get("points", POINTS) != POINTS:
            raise ValueError("scoring points changed since training: retrain")
        return cls(
            {str(k): EndpointProfile.from_json(v) for k, v in d["endpoints"].items()},
            {str(k): ParamProfile.from_json(v) for k, v in d["by_name"].items()},
            frozenset(str(d["path_alphabet"])),
            dict(d.get("meta") or {}),
        )


def learn(events: Iterable[dict[str, Any]], max_endpoints: int = 20_000) -> RequestProfile:
    """Profiles of attack-free requests; endpoints beyond `max_endpoints` (by frequency) are dropped."""
    by_endpoint: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
    path_alphabet: set[str] = set()
    for e in events:
        method, path, params = request_parts(e)
        path_alphabet.update(path[:1024])
        by_endpoint.setdefault(endpoint_of(path), []).append((method, params))
    kept = sorted(by_endpoint, key=lambda k: (-len(by_endpoint[k]), k))[:max_endpoints]
    endpoints: dict[str, EndpointProfile] = {}
    all_values: dict[str, list[str]] = {}
    for key in kept:
        reqs = by_endpoint[key]
        values: dict[str, list[str]] = {}
        orders: set[tuple[str, ...]] = set()
        with_params = 0
        presence: dict[str, int] = {}
        for _method, params in reqs:
            if params:
                with_params += 1
                orders.add(tuple(n for n, _ in params))
            for n in {n for n, _ in params}:
                presence[n] = presence.get(n, 0) + 1
            for n, v in params:
                values.setdefault(n, []).append(v)
        for n, vs in values.items():
            all_values.setdefault(n, []).extend(vs)
        required = frozenset(n for n, c in presence.items() if with_params >= ENUM_MIN_SAMPLES and c == with_params)
        endpoints[key] = EndpointProfile(
            len(reqs),
            frozenset(m for m, _ in reqs if m),
            {n: learn_param(vs) for n, vs in values.items()},
            required,
            frozenset(orders) if len(orders) <= ENUM_MAX else frozenset(),
        )
    by_name = {n: learn_param(vs) for n, vs in all_values.items()}
    return RequestProfile(
        endpoints, by_name, frozenset(path_alphabet), {"requests": sum(map(len, by_endpoint.values()))}
    )
