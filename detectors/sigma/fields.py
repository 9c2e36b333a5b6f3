"""Reading rule fields out of flat ECS events (lists, `field[N]` elements, scalars as text)."""

from __future__ import annotations

from typing import Any

from detectors.common.times import to_datetime


def scalar_text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _element(event: dict[str, Any], key: str) -> Any:
    """`field[N]`: element N of a list-valued field (e.g. auditd EXECVE a0 = process.args[0])."""
    base, _, rest = key.partition("[")
    try:
        pos = int(rest.rstrip("]"))
    except ValueError:
        return None
    v = event.get(base)
    if isinstance(v, (list, tuple)) and -len(v) <= pos < len(v):
        return v[pos]
    return None


def field_values(event: dict[str, Any], keys: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for k in keys:
        v = event.get(k)
        if v is None:
            if k.endswith("]"):
                v = _element(event, k)
            if v is None:
                continue
        if isinstance(v, (list, tuple)):
            out.extend(x for x in v if x is not None)
        else:
            out.append(v)
    return out


def to_number(v: object) -> int | float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def time_part(v: object, part: str) -> Any:
    dt = to_datetime(v)
    if dt is None:
        return None
    if part == "week":
        return dt.isocalendar()[1]
    return getattr(dt, part)
