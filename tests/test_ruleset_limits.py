"""The loader bounds its input (issue 12, items 9 and 10): hostile or runaway rule sets are
refused with one located problem that names the limit and how to raise it, quickly, and never
with a RecursionError, a MemoryError or minutes of work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iopscreen.cli import run
from iopscreen.errors import Diagnostic, UsageError
from iopscreen.ruleset import check_ruleset
from iopscreen.ruleset.limits import ENV_NAMES, MAX_YAML_DEPTH, Limits

DATA = Path(__file__).parent / "data"
MINIMAL = (DATA / "minimal.yaml").read_text(encoding="utf-8")


def problems_of(tmp_path: Path, content: str | bytes, limits: Limits | None = None
                ) -> list[Diagnostic]:
    path = tmp_path / "rules.yaml"
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    ruleset, problems = check_ruleset(path, limits or Limits())
    assert ruleset is None
    return problems.errors


def only(diags: list[Diagnostic], code: str) -> Diagnostic:
    assert [d.code for d in diags] == [code], [d.render() for d in diags]
    d = diags[0]
    assert d.line >= 1 and d.col >= 1
    assert "\n" not in d.message and "\n" not in d.hint
    return d


def test_a_file_past_the_byte_limit_is_refused_where_the_limit_is_reached(tmp_path: Path
                                                                          ) -> None:
    content = MINIMAL + "# padding\n" * 200
    d = only(problems_of(tmp_path, content, Limits(bytes=len(MINIMAL) + 25)), "E109")
    assert d.name == "too-large"
    assert (d.line, d.col) == (MINIMAL.count("\n") + 3, 6)  # byte limit+1, in the 3rd padding
    assert f"{len(content.encode()):,} bytes" in d.message
    assert ENV_NAMES["bytes"] in d.hint


def test_an_eight_million_item_list_is_refused_without_reading_it(tmp_path: Path) -> None:
    content = "ruleset: [" + "0," * 8_000_000 + "0]\n"
    d = only(problems_of(tmp_path, content), "E109")
    assert d.line == 1


def test_an_eight_million_item_list_under_a_raised_byte_limit_stops_at_the_node_limit(
        tmp_path: Path) -> None:
    content = "ruleset: [" + "0," * 8_000_000 + "0]\n"
    d = only(problems_of(tmp_path, content, Limits(bytes=10**8, nodes=1_000)), "E108")
    assert d.name == "too-many-nodes"
    # the 1,001st value: after the top mapping, its key and the list, the 998th item
    assert (d.line, d.col) == (1, 11 + 2 * 997)
    assert ENV_NAMES["nodes"] in d.hint


@pytest.mark.parametrize("content, where", [
    # the top mapping is level 1: the 32nd bracket opens level 33
    ("ruleset: " + "[" * 100_000, (1, 10 + 31)),
    ("ruleset: " + "{a: " * 3_000, (1, 10 + 4 * 31)),
    ("ruleset:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(3_000)), (33, 33)),
    ("ruleset:\n" + "".join(" " * (i + 1) + "-\n" for i in range(3_000)), (33, 33)),
])
def test_deep_nesting_is_refused_at_the_first_level_past_the_limit(
        tmp_path: Path, content: str, where: tuple[int, int]) -> None:
    d = only(problems_of(tmp_path, content, Limits(bytes=10**8)), "E107")
    assert d.name == "too-deep"
    assert (d.line, d.col) == where
    assert ENV_NAMES["depth"] in d.hint


def test_a_raised_depth_limit_is_capped_below_pythons_recursion_limit(tmp_path: Path) -> None:
    deep = Limits(bytes=10**8, depth=MAX_YAML_DEPTH)
    d = only(problems_of(tmp_path, "ruleset: " + "[" * 100_000, deep), "E107")
    assert d.col == 10 + MAX_YAML_DEPTH - 1
    with pytest.raises(UsageError):
        Limits.from_env({ENV_NAMES["depth"]: str(MAX_YAML_DEPTH + 1)})


def test_an_alias_bomb_is_not_expanded(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    diags = problems_of(tmp_path, MINIMAL + "\n".join(lines) + "\n")
    aliases = [d for d in diags if d.code == "E102"]
    assert len(aliases) == 81  # each alias written, once; 9**9 copies are never made


@pytest.mark.parametrize("char, at", [("\x07", (2, 8)), ("\x00", (2, 8)), ("\x1b", (2, 8)),
                                      ("\ufffe", (2, 8))])
def test_a_character_yaml_refuses_is_located(tmp_path: Path, char: str,
                                             at: tuple[int, int]) -> None:
    d = only(problems_of(tmp_path, f"ruleset:\n  id: x{char}\n"), "E106")
    assert (d.line, d.col) == at
    assert f"U+{ord(char):04X}" in d.message


def test_a_control_character_built_by_an_escape_is_refused_where_the_escape_is(
        tmp_path: Path) -> None:
    content = MINIMAL.replace("title: Minimal test rule set", 'title: "Minimal \\0 set"')
    d = only(problems_of(tmp_path, content), "E106")
    line = MINIMAL.split("\n").index("  title: Minimal test rule set") + 1
    assert (d.line, d.col) == (line, 19)


def test_bytes_that_are_not_utf8_are_located(tmp_path: Path) -> None:
    d = only(problems_of(tmp_path, b"ruleset:\n  id: caf\xe9\n"), "E100")
    assert (d.line, d.col) == (2, 10)


def test_a_key_with_a_line_break_is_quoted_on_one_line(tmp_path: Path) -> None:
    content = MINIMAL.replace("ruleset:\n", 'ruleset:\n  "ti\\ntle\\u2028x": 1\n', 1)
    ruleset, problems = check_ruleset(_write(tmp_path, content), Limits())
    assert problems.errors
    for d in problems.items:
        assert "\n" not in d.message and "\u2028" not in d.message
    assert any("ti\\ntle\\u2028x" in d.message for d in problems.errors)


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(content, encoding="utf-8")
    return path


def test_a_fifty_thousand_term_condition_is_refused_at_the_limit(tmp_path: Path) -> None:
    condition = " or ".join(["heavy_drinking"] * 50_000)
    content = MINIMAL.replace('when: "heavy_drinking and 1 <= mood <= 6"',
                              f'when: "{condition}"')
    d = only(problems_of(tmp_path, content), "E214")
    assert "5,000" in d.message and ENV_NAMES["condition_chars"] in d.hint
    d = only(problems_of(tmp_path, content, Limits(condition_chars=10**7)), "E214")
    assert "1,000 terms" in d.message and ENV_NAMES["condition_terms"] in d.hint
    # reported at the term past the limit: the 501st name (names and 'or's alternate)
    line = content.split("\n")
    row = next(i for i, text in enumerate(line) if "heavy_drinking or heavy" in text)
    assert d.line == row + 1
    assert line[row][d.col - 1:].startswith("heavy_drinking")
    assert line[row][:d.col - 1].count("heavy_drinking") == 999


def test_a_number_in_a_condition_names_the_limit_that_raises_it(tmp_path: Path) -> None:
    content = MINIMAL.replace('when: "trauma_score >= 2"', 'when: "trauma_score >= 2000"')
    d = only(problems_of(tmp_path, content, Limits(literal=1000)), "E216")
    assert ENV_NAMES["literal"] in d.hint


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1e3", "9" * 5000])
def test_a_bad_limit_in_the_environment_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError) as info:
        Limits.from_env({ENV_NAMES["nodes"]: value})
    assert ENV_NAMES["nodes"] in info.value.message
    assert len(info.value.message) < 100


def test_limits_come_from_the_environment() -> None:
    env = {name: "7" for name in ENV_NAMES.values()}
    limits = Limits.from_env(env)
    assert all(getattr(limits, field) == 7 for field in ENV_NAMES)
    assert Limits.from_env({}) == Limits()
    assert Limits.from_env({ENV_NAMES["bytes"]: " 2_000_000 "}).bytes == 2_000_000


def test_the_command_line_reads_the_limits_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, MINIMAL)
    assert run(["rules", "validate", str(path)]) == 0
    monkeypatch.setenv(ENV_NAMES["bytes"], "1000")
    assert run(["rules", "validate", str(path)]) == 3
    err = capsys.readouterr().err
    assert re.search(r"rules\.yaml:\d+:\d+: error E109 too-large: ", err)
    monkeypatch.setenv(ENV_NAMES["bytes"], "lots")
    assert run(["rules", "validate", str(path)]) == 2
    assert "IOPSCREEN_MAX_RULESET_BYTES=lots is not a valid limit" in capsys.readouterr().err


def test_the_shipped_rule_sets_are_well_within_the_limits() -> None:
    tight = Limits(bytes=200_000, depth=10, nodes=10_000, condition_chars=1_000,
                   condition_terms=200, condition_depth=12, literal=10**6)
    for path in [DATA / "minimal.yaml", DATA / "lanes.yaml",
                 Path(__file__).parents[1] / "rules" / "default.yaml"]:
        ruleset, problems = check_ruleset(path, tight)
        assert ruleset is not None, [d.render() for d in problems.errors]


def test_a_tests_file_is_read_within_the_limits_too(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, MINIMAL)
    tests = tmp_path / "rules.tests.yaml"
    tests.write_bytes(b"cases:\n  - name: caf\xe9\n")
    assert run(["rules", "test", str(path)]) == 3
    assert "rules.tests.yaml:2:14: error E100 encoding: " in capsys.readouterr().err
    tests.write_text("cases: " + "[" * 100_000, encoding="utf-8")
    assert run(["rules", "test", str(path)]) == 3
    assert "rules.tests.yaml:1:39: error E107 too-deep: " in capsys.readouterr().err
