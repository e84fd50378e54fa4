"""Where a character of a YAML string value sits in the file, for every scalar style."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iopscreen.errors import Problems
from iopscreen.ruleset import yamlsource
from iopscreen.ruleset.yamlsource import read_yaml

# (YAML text, 1-based line and column of "zz" in the file)
STYLES = {
    "plain": ("a:\n  when: b and zz\n", (2, 15)),
    "plain-multiline": ("a:\n  when: b and\n    c and zz\n", (3, 11)),
    "single-quoted-escapes": ("a:\n  when: '''q'' and zz'\n", (2, 20)),
    "single-quoted-blank-line": ("a:\n  when: 'b and\n\n    ''q'' zz'\n", (4, 11)),
    "double-quoted-escapes": ('a:\n  when: "\\u00c4 \\"x\\" and\\tzz"\n', (2, 28)),
    "double-quoted-escaped-break": ('a:\n  when: "b and \\\n     zz"\n', (3, 6)),
    "folded": ("a:\n  when: >-\n    b and\n    zz\n", (4, 5)),
    "literal-with-comment": ("a:\n  when: |  # zz here\n    (b and\n     zz)\n", (4, 6)),
    "tagged": ("a:\n  when: !!str b and zz\n", (2, 21)),
    "crlf": ('a:\r\n  when: "b and zz"\r\n', (2, 16)),
    "after-non-ascii": ("a:\n  when: \"'Ä' == zz\"\n", (2, 17)),
}


@pytest.mark.parametrize("text, where", STYLES.values(), ids=list(STYLES))
def test_position_of_a_character_in_a_value(text: str, where: tuple[int, int]) -> None:
    problems = Problems("x.yaml")
    doc = read_yaml(text, problems)
    assert doc is not None and not problems.items
    value = doc.data["a"]["when"]
    assert doc.position(("a", "when"), value, value.index("zz")) == where


def test_aliases_are_reported_where_they_are_written() -> None:
    problems = Problems("x.yaml")
    doc = read_yaml("a: &x [1]\nb: *x\n", problems)
    assert doc is not None and doc.data == {"a": [1], "b": None}
    assert [(d.code, d.line, d.col) for d in problems.items] == [("E102", 2, 4)]


@pytest.mark.parametrize("text, code", [
    ("a: !!int zero\n", "E103"),
    ("a: !!timestamp soon\n", "E103"),
    ("!!python/name:os.system a: 1\n", "E103"),
    ("a: !!str {b: 1}\n", "E103"),
    ("<<: {b: 1}\n", "E103"),
])
def test_bad_tags_are_reported_not_raised(text: str, code: str) -> None:
    problems = Problems("x.yaml")
    read_yaml(text, problems)
    assert [d.code for d in problems.items] == [code]


def test_a_date_that_does_not_exist_stays_text() -> None:
    doc = read_yaml("a: 2026-13-01\nb: 2026-01-02\n", Problems())
    assert doc is not None and doc.data == {"a": "2026-13-01", "b": "2026-01-02"}


YAML_FILES = sorted([*(Path(__file__).parent / "loader_cases").glob("*.yaml"),
                     *(Path(__file__).parent / "data").glob("*.yaml"),
                     *(Path(__file__).parent.parent / "rules").glob("*.yaml")])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_libyaml_reads_as_the_pure_python_parser_does(path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The C parser (PyYAML's wheels bundle libyaml) gives the same data, marks, spans and
    problems as the pure-Python one."""
    text = path.read_text(encoding="utf-8")

    def read() -> tuple[Any, ...]:
        problems = Problems()
        doc = read_yaml(text, problems)
        if doc is None:
            return (None, problems.items)
        return (doc.data, doc.marks, doc.key_marks, doc.bool_words, doc.scalars, doc.rejected,
                problems.items)

    fast = read()
    monkeypatch.setattr(yamlsource, "_CParser", None)
    assert read() == fast
