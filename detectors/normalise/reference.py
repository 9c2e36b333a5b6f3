"""The field reference: which fields each dataset's parsers emit, with an example value.

Generated, never written by hand: every example in `examples.yml` is a parser test
(tests/unit/test_normalise_examples.py checks its `expect`), and the reference is what those
examples produce when run through the Normaliser exactly as a detector worker runs a batch.
`socpipe fields` prints it; `rules lint` checks rule fields against it (`emitted_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from detectors.common.digests import sha256
from detectors.sigma.ruledocs import document_cache

EXAMPLES_FILE = Path(__file__).with_name("examples.yml")
# The examples' events as shipped, generated from the parsers (`python -m detectors.normalise.reference`
# rewrites it; tests/unit/test_normalise_reference_shipped.py fails while it differs from what the
# parsers make): a first `rules lint` after install runs no parser and imports none.
EVENTS_FILE = Path(__file__).with_name("example_events.json")
READ_AT = 1764288000.0  # 2025-11-28T00:00:00Z: read time of the examples (RFC 3164 year inference)
EXAMPLE_AGENCY, EXAMPLE_AGENT, EXAMPLE_HOST = "so-vi-du", "agent-vi-du", "srv-vi-du"


@dataclass(frozen=True)
class Example:
    """One parser example of examples.yml: log lines of a source, and what parsing them must give."""

    name: str
    source: str
    lines: tuple[str, ...]
    expect: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    dataset: str | None = None


@dataclass
class FieldInfo:
    """A field of the reference: an example value, its type, the examples that emit it."""

    name: str
    example: Any
    type: str
    examples: list[str] = field(default_factory=list)  # names of the examples emitting it


def load_examples(path: Path = EXAMPLES_FILE) -> list[Example]:
    cache = document_cache()  # read on every lint: parsed once per text (rule YAML's bounds and cache)
    docs, _ = cache.documents(path.read_text(encoding="utf-8"))
    cache.save()
    if len(docs) > 1:
        raise ValueError(f"{path}: expected one YAML document, found {len(docs)}")
    doc = (docs[0] if docs else None) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a map with 'examples'")
    out = []
    for i, item in enumerate(doc.get("examples") or []):
        lines = item.get("lines")
        if not isinstance(lines, list) or not lines:
            raise ValueError(f"{path}: example {i + 1} needs a non-empty 'lines' list")
        out.append(
            Example(
                name=str(item.get("name") or f"example {i + 1}"),
                source=str(item.get("source") or "/var/log/syslog"),
                lines=tuple(str(x) for x in lines),
                expect=dict(item.get("expect") or {}),
                dataset=item.get("dataset"),
            )
        )
    return out


def run_example(example: Example) -> list[dict[str, Any]]:
    """The events a worker makes of these lines (one Normaliser per example, flushed)."""
    from collectors.wire import LineBatch, LogLine
    from detectors.normalise.normaliser import Normaliser

    normaliser = Normaliser()
    batch = LineBatch(
        EXAMPLE_AGENCY,
        EXAMPLE_AGENT,
        EXAMPLE_HOST,
        example.source,
        [
            LogLine(text=t, line_no=i + 1, offset=i * 200, seq=i + 1, read_at=READ_AT)
            for i, t in enumerate(example.lines)
        ],
        dataset=example.dataset,
    )
    return normaliser.normalise_batch(batch) + normaliser.flush()


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, list):
        return "list of " + (_type(value[0]) if value else "keyword")
    return "keyword"


def build_reference(examples: list[Example]) -> dict[str, dict[str, FieldInfo]]:
    """dataset -> field -> FieldInfo, fields in first-seen order."""
    ref: dict[str, dict[str, FieldInfo]] = {}
    for ex in examples:
        for ev in run_example(ex):
            fields = ref.setdefault(str(ev.get("event.dataset")), {})
            for name, value in ev.items():
                info = fields.get(name)
                if info is None:
                    info = fields[name] = FieldInfo(name, value, _type(value))
                if ex.name not in info.examples:
                    info.examples.append(ex.name)
    return ref


def _valid_pairs(v: Any) -> bool:
    return type(v) is list and all(type(p) is list and len(p) == 2 and type(p[1]) is dict for p in v)


def _run_examples() -> list[list[Any]]:
    """[example name, event] for every example in examples.yml, made by running the parsers."""
    return [[ex.name, ev] for ex in load_examples() for ev in run_example(ex)]


def generated_example_events() -> dict[str, Any]:
    """What EVENTS_FILE holds: the digest of examples.yml and (example name, event) for every example,
    made by running the parsers."""
    return {
        "examples_sha256": sha256(EXAMPLES_FILE.read_bytes()).hexdigest(),
        "events": _run_examples(),
    }


def shipped_example_events(text: bytes, path: Path | None = None) -> list[Any] | None:
    """The shipped pairs (EVENTS_FILE) if they were generated from exactly these examples.yml bytes."""
    try:
        doc = orjson.loads((path or EVENTS_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if type(doc) is not dict or doc.get("examples_sha256") != sha256(text).hexdigest():
        return None
    pairs = doc.get("events")
    return pairs if _valid_pairs(pairs) else None


@lru_cache(maxsize=1)
def example_events() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(example name, event) for every shipped example (cached: the lint asks per rule).

    `rules lint` needs these on every start. They come from EVENTS_FILE while it was generated from
    the examples.yml beside it; otherwise (examples edited and the file not yet regenerated) from the
    rule cache (detectors.sigma.ruledocs), kept while examples.yml and the source of every module that
    made them are unchanged, and made by running the parsers when that misses."""
    text = EXAMPLES_FILE.read_text(encoding="utf-8")
    pairs = shipped_example_events(text.encode("utf-8"))
    if pairs is None:
        cache = document_cache()
        pairs = cache.derived(
            "example-events",
            text,
            _run_examples,
            code=("detectors.", "collectors."),
            valid=_valid_pairs,
        )
        cache.save()
    return tuple((str(name), ev) for name, ev in pairs)


@lru_cache(maxsize=1)
def reference() -> dict[str, dict[str, FieldInfo]]:
    return build_reference(load_examples())


def base_name(field_name: str) -> str:
    """'process.args[0]' -> 'process.args' (list indexing in mapped field names)."""
    return field_name.split("[", 1)[0]


if __name__ == "__main__":  # python -m detectors.normalise.reference: regenerate EVENTS_FILE
    made = generated_example_events()
    pairs = b",\n".join(orjson.dumps(p) for p in made["events"])  # one event per line: readable diffs
    EVENTS_FILE.write_bytes(
        b'{"examples_sha256": "%s", "events": [\n%s\n]}\n' % (made["examples_sha256"].encode(), pairs)
    )
    print(f"wrote {EVENTS_FILE}")
