"""Reading a rule file (detectors.sigma.rulefiles.read_rule_text) gives what Path.read_text gave, newlines
and errors included; a file over the size bound is refused; rule_files sorts as Path objects sort."""

import os
from pathlib import Path

import pytest

from detectors.sigma import load_rules
from detectors.sigma.rulefiles import MAX_RULE_FILE_BYTES, read_rule_text, rule_files

from .test_sigma_loader import GOOD


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"title: x\n",
        b"a: 1\r\nb: 2\r\n",
        b"a: 1\rb: 2\r",
        b"a: |\r\n  x\r\r\n  y\n\r",
        b"\xef\xbb\xbftitle: bom\n",
        b"x" * 8191 + b"\r\n" + b"y\r" * 5000,  # a CR LF across the text layer's 8 KiB chunks
        "ti\u1ebft: vi\u1ec7t\r\n".encode() * 3000,
    ],
)
def test_the_text_is_what_read_text_gives(tmp_path, data):
    f = tmp_path / "r.yml"
    f.write_bytes(data)
    assert read_rule_text(f) == f.read_text(encoding="utf-8")


@pytest.mark.parametrize("data", [b"\xff", b"a" * 20000 + b"\xc3(", b"ok\r\n" * 3000 + b"\xed\xa0\x80"])
def test_a_file_that_is_not_utf8_raises_what_read_text_raised(tmp_path, data):
    f = tmp_path / "r.yml"
    f.write_bytes(data)
    with pytest.raises(UnicodeDecodeError) as new:
        read_rule_text(f)
    with pytest.raises(UnicodeDecodeError) as old:
        f.read_text(encoding="utf-8")
    assert str(new.value) == str(old.value)


def test_oversized_missing_and_unreadable_files_are_reported_not_raised(tmp_path):
    (tmp_path / "big.yml").write_bytes(b"#" * (MAX_RULE_FILE_BYTES + 1))
    (tmp_path / "good.yml").write_text(GOOD)
    with pytest.raises(OSError, match="larger than"):
        read_rule_text(tmp_path / "big.yml")
    res = load_rules([tmp_path, tmp_path / "gone.yml"])
    assert [r.meta.title for r in res.rules] == ["Good"]
    assert [(Path(e.path).name, e.message) for e in res.errors] == [
        ("big.yml", f"cannot read: file larger than {MAX_RULE_FILE_BYTES} bytes"),
        ("gone.yml", f"cannot read: [Errno 2] No such file or directory: '{tmp_path / 'gone.yml'}'"),
    ]


@pytest.mark.parametrize("root", ["{t}", "{t}/", "{t}//", "{t}/./"])
def test_rule_files_sort_as_paths_sort_whatever_the_root_is_spelled(tmp_path, root):
    names = ["a/b.yml", "a-b/c.yml", "a.b.yml", "a/b/c.yml", "a b/x.yml", "A/z.yml", "a_/y.yml", "ab.yml", "a.yml"]
    for rel in names:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    got = rule_files([root.format(t=tmp_path)])
    assert got == sorted(got) and len(got) == len(names)
    assert [os.path.relpath(p, tmp_path) for p in got][:4] == ["A/z.yml", "a/b/c.yml", "a/b.yml", "a b/x.yml"]


def test_a_file_without_a_size_is_read_to_its_end(tmp_path):
    fifo = tmp_path / "r.yml"
    os.mkfifo(fifo)
    text = "title: piped\r\n" + "x: " + "y" * 200_000 + "\n"
    pid = os.fork()
    if pid == 0:  # the writer
        try:
            with open(fifo, "wb") as fh:
                fh.write(text.encode())
        finally:
            os._exit(0)
    try:
        assert read_rule_text(fifo) == text.replace("\r\n", "\n")
    finally:
        os.waitpid(pid, 0)


def test_a_file_without_a_size_is_bounded_by_what_is_read(tmp_path):
    """A pipe (or a file growing after fstat) was read to its end however long: the size bound held
    only for what fstat said. The writer is stopped once the reader gave up."""
    fifo = tmp_path / "r.yml"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the writer: more than the bound, then more until the reader is gone
        try:
            with open(fifo, "wb") as fh:
                for _ in range(MAX_RULE_FILE_BYTES // 65536 + 64):
                    fh.write(b"#" * 65536)
        finally:
            os._exit(0)
    try:
        with pytest.raises(OSError, match=f"file larger than {MAX_RULE_FILE_BYTES} bytes"):
            read_rule_text(fifo)
    finally:
        os.waitpid(pid, 0)


@pytest.mark.parametrize("root", ["{t}", "{t}/", "{t}//", "{t}/./", "{t}/a/..", ".", "./", "a", "./a/", "a//d/"])
def test_rule_file_names_are_the_text_of_rule_files(tmp_path, monkeypatch, root):
    """The loader's names (no Path objects) are what str() of rule_files' Paths were, however the root is
    spelled: Path drops '.' parts and doubled or trailing separators. A name that is dots and the extension
    alone has none (os.path.splitext: '.yml', '..yaml')."""
    from detectors.sigma.rulefiles import rule_file_names

    for rel in ("a/b.yml", "a/.yml", "a/..yaml", "a/.x.yml", "a/c.tests.yml", "a/d/e.yaml", "top.yml", "n.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    monkeypatch.chdir(tmp_path)
    spelled = root.format(t=tmp_path)
    expected = [
        str(p)
        for p in sorted(
            x
            for x in Path(spelled).rglob("*")
            if os.path.splitext(x.name)[1] in (".yml", ".yaml") and not x.name.endswith(".tests.yml")
        )
    ]
    assert rule_file_names([spelled]) == expected == [str(p) for p in rule_files([spelled])]
    assert ".yml" not in [Path(x).name for x in expected] and "..yaml" not in [Path(x).name for x in expected]


@pytest.mark.parametrize("spelled", ["top.yml", "./top.yml", ".//a/../top.yml", "{t}//top.yml", "{t}/./gone.yml"])
def test_a_rule_file_named_is_spelled_as_its_path(tmp_path, monkeypatch, spelled):
    from detectors.sigma.rulefiles import rule_file_names

    (tmp_path / "a").mkdir()
    (tmp_path / "top.yml").write_text("")
    monkeypatch.chdir(tmp_path)
    spelled = spelled.format(t=tmp_path)
    assert rule_file_names([spelled]) == [str(Path(spelled))] == [str(p) for p in rule_files([spelled])]
