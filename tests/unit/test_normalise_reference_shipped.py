"""The shipped example events (detectors/normalise/example_events.json) are what the parsers make of
examples.yml, and `rules lint` reads them instead of running the parsers while they match it."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from detectors.normalise import reference


@pytest.fixture(autouse=True)
def _fresh() -> object:
    reference.example_events.cache_clear()
    yield
    reference.example_events.cache_clear()


def test_the_shipped_events_are_what_the_parsers_make_of_the_examples() -> None:
    shipped = orjson.loads(reference.EVENTS_FILE.read_bytes())
    made = orjson.loads(orjson.dumps(reference.generated_example_events()))  # as JSON keeps them
    assert shipped == made, "stale: run `python -m detectors.normalise.reference` and commit the file"
    assert len(made["events"]) > 30


def test_example_events_run_no_parser_while_the_shipped_file_matches(monkeypatch) -> None:
    def no_parser(example: reference.Example) -> list:
        raise AssertionError(f"parser run for {example.name}")

    monkeypatch.setattr(reference, "run_example", no_parser)
    events = reference.example_events()
    assert [list(p) for p in events] == orjson.loads(reference.EVENTS_FILE.read_bytes())["events"]


def test_edited_examples_are_run_through_the_parsers_until_the_file_is_regenerated(tmp_path, monkeypatch) -> None:
    stale = tmp_path / "example_events.json"
    doc = orjson.loads(reference.EVENTS_FILE.read_bytes())
    doc["examples_sha256"] = hashlib.sha256(b"the examples before an edit").hexdigest()
    doc["events"] = [["made up", {"event.dataset": "nothing.real"}]]
    stale.write_bytes(orjson.dumps(doc))
    monkeypatch.setattr(reference, "EVENTS_FILE", stale)
    monkeypatch.setenv("SOCPIPE_RULE_CACHE", "off")
    monkeypatch.setattr("detectors.sigma.ruledocs._CACHE", None)
    ran = []
    real = reference.run_example

    def counted(example: reference.Example) -> list:
        ran.append(example.name)
        return real(example)

    monkeypatch.setattr(reference, "run_example", counted)
    events = reference.example_events()
    assert ran and all(name != "made up" for name, _ in events)
    assert orjson.loads(orjson.dumps([list(p) for p in events])) == orjson.loads(
        orjson.dumps(reference.generated_example_events()["events"])
    )


@pytest.mark.parametrize("text", [b"", b"[]", b"{", b'{"examples_sha256": 1}', b'{"events": [[1]]}'])
def test_a_damaged_shipped_file_is_not_used(tmp_path, text: bytes) -> None:
    bad = tmp_path / "example_events.json"
    bad.write_bytes(text)
    assert reference.shipped_example_events(reference.EXAMPLES_FILE.read_bytes(), bad) is None
    assert reference.shipped_example_events(reference.EXAMPLES_FILE.read_bytes()) is not None
