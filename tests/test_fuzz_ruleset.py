"""Fuzzing the rule-set loader (issue 12): mutated and hostile rule sets never crash it.

Each example mutates a shipped rule set (rules/default.yaml or tests/data/minimal.yaml): keys
dropped or misspelt, values of the wrong type, hostile or random conditions, deep nesting, alias
bombs, tags, control characters, truncation, random bytes. ``rules validate`` runs in-process
(``cli.run``, exactly what the command runs) and must exit 0 or 3 with nothing on stderr but
located one-line problems (``file:line:col: error Exxx name: message`` and a ``hint:`` line).
A rule set that still loads is then screened with ``evaluate`` on random answers, which must
exit 0 or 1 without an internal error.

``FUZZ_EXAMPLES=5000`` raises the number of examples of each test (default: a CI-sized run).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from iopscreen.cli import run
from iopscreen.ruleset import check_ruleset
from iopscreen.ruleset.model import Ruleset

ROOT = Path(__file__).resolve().parents[1]
BASES = {"default": ROOT / "rules" / "default.yaml",
         "minimal": ROOT / "tests" / "data" / "minimal.yaml"}
TEXTS = {name: path.read_text(encoding="utf-8") for name, path in BASES.items()}
DATA = {name: yaml.safe_load(text) for name, text in TEXTS.items()}
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, for speed


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=True, width=10**6)


EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
FUZZ = settings(max_examples=EXAMPLES or 60, deadline=None, derandomize=not EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

LOCATED = re.compile(r"^.+:(?P<line>\d+):(?P<col>\d+): (?:error|warning) [EW]\d{3} "
                     r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*: \S.*$")
HINT = re.compile(r"^  hint: \S.*$")
SUMMARY = re.compile(r"^.+: \d+ error\(s\), \d+ warning\(s\)$")
OK = re.compile(r"^.+: ok \(.*\)$")

OVERFLOW = "drinks" + " * 1e15" * 21 + " > 1"  # past 1e308 while it runs: inf, still compared
HOSTILE_CONDITIONS = [
    "__import__('os')", "__import__('os').system('true')", "().__class__",
    "().__class__.__bases__[0].__subclasses__()", "9**9**9", "10**10**10", "1e999", "-1e999",
    "1e-400", "1e308 * 10", "99999999999999999999999", "0x" + "f" * 300, "-0.0 == 0",
    "[x for x in ()]", "lambda: 0", "f'{0}'", "open('/etc/passwd')", "exec('1')", "eval('1')",
    "globals()", "vars()", "getattr(x, 'y')", "x.__dict__", "'a' * 10**9", "(yield)",
    "await x", "__builtins__", "a if b", "not", "((((", "\x00", "\u202e", "True" * 500,
    "x" * 6000, "(" * 300 + "1" + ")" * 300, "not " * 500 + "True", "count(" * 60 + ")" * 60,
    "min(" * 40 + "1" + ")" * 40 + " > 0", "True or " * 2000 + "True", "'\\N{DIGIT ONE}' == 1",
    "1 if True else 1e999", "(x := 1)", "*a", "{1: 2}", "{1, 2}", "...", "None", "b'x' == 1",
    "1j == 1", "'' in ''", "[] == []", "[[1]] == [[1]]", "count() > 0", "coalesce(1, 2, 3)",
    "answered(1)", "declined('x')", "min() > 1", "1 < 2 < 3 < 4 < 5", "1 / 0 > 0", "True + 1",
    # well typed, so only the number check stands between them and a rule that fails to run
    "drinks < 1e999", "mood > -1e999 or danger", "drinks in [1e999, 1]", "drinks > 1e-400",
    "drinks < 99999999999999999999", "drinks == -0.0", OVERFLOW,
]
HOSTILE_YAML = [
    "x: &a [lol, lol, lol]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "z: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nw: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    "bomb: !!python/object/apply:os.system [\"true\"]\n", "x: !!binary aGVsbG8=\n",
    "<<: *nothing\n", "? [a, b]\n: c\n", "---\nsecond: doc\n", "%YAML 1.2\n---\n",
    "x: \"\\e[31mred\\0\"\n", "ruleset: [" + "[" * 300 + "\n", "x: " + "{a: " * 300 + "\n",
    "\t- tab\n", "\ufeffbom: 1\n", "x: 1\nx: 2\n", "x: 2026-02-30\n", "x: .inf\ny: .nan\n",
    "x: 0b1011\ny: 0o17\nz: 1_000\n", "x: '" + "a" * 10_000 + "'\n", "x: \u2028y\n",
    "\x07\n", "x: \x1b[2J\n", "'unclosed: 1\n", "x: [1, 2\n", "x: |\n bad\n  indent\n",
]


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def cli(*args: str) -> tuple[int, str, str]:
    """Run the command in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, {"NO_COLOR": "1", "COLUMNS": "100000"}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def note(text: str) -> None:
    """Count outcomes for ``--hypothesis-show-statistics`` (outside a hypothesis test, skip)."""
    if currently_in_test_context():
        event(text)


def check_validate(path: Path) -> Ruleset | None:
    """``rules validate`` on ``path``: a clean report, every problem located on one line."""
    code, out, err = cli("rules", "validate", str(path))
    note(f"validate exit {code}")
    assert code in (0, 3), (code, err[-2000:])
    assert "Traceback" not in out + err and "internal error" not in out + err
    for line in err.splitlines():
        m = LOCATED.match(line)
        assert m or HINT.match(line) or SUMMARY.match(line), f"not a located problem: {line!r}"
        if m:
            assert int(m["line"]) >= 1 and int(m["col"]) >= 1, line
    if code == 3:
        assert any(LOCATED.match(line) for line in err.splitlines()), err[-2000:]
        return None
    assert OK.match(out.strip()), out
    ruleset, problems = check_ruleset(path)
    assert ruleset is not None and not problems.errors
    return ruleset


def answers_for(ruleset: Ruleset) -> st.SearchStrategy[dict[str, Any]]:
    """Answers of the right shapes for the rule set's questions, some left out or declined."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for q in ruleset.questions.values():
        codes = [c.code for c in q.choices]
        value: st.SearchStrategy[Any] = {
            "yesno": st.sampled_from(["yes", "no"]),
            "choice": st.sampled_from(codes or ["x"]),
            "multi": st.lists(st.sampled_from(codes or ["x"]), unique=True),
            "integer": st.integers(q.min if q.min is not None else 0,
                                   q.max if q.max is not None else 10),
        }.get(q.type, st.just("free text"))
        fields[q.id] = st.one_of(value, st.just("declined"), st.just(None))
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not None})


def check_evaluate(path: Path, ruleset: Ruleset, data: st.DataObject, workdir: Path) -> None:
    evaluate(path, data.draw(answers_for(ruleset), label="answers"), workdir)


def evaluate(path: Path, answers: dict[str, Any], workdir: Path) -> None:
    """``evaluate`` on ``answers``: a screening (exit 0, or 1 for an invalid answer), never an
    internal error."""
    answers_path = workdir / "answers.json"
    answers_path.write_text(json.dumps(answers), encoding="utf-8")
    code, out, err = cli("evaluate", "-a", str(answers_path), "-r", str(path), "-f", "json")
    note(f"evaluate exit {code}")
    assert code in (0, 1), (code, err[-2000:])
    assert "Traceback" not in out + err and "internal error" not in out + err
    json.loads(out)


# ------------------------------------------------------------------------------- mutations

def paths(data: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a plain YAML tree."""
    out = [at]
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, at + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, at + (i,))
    return out


def get(data: Any, at: tuple[Any, ...]) -> Any:
    for key in at:
        data = data[key]
    return data


WRONG_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
    st.text(max_size=20), st.just("no"), st.just([]), st.just({}), st.just([1, "a", None]),
    st.just({"id": "x"}), st.just(10**400), st.just(float("inf")), st.just("2026-13-45"),
    st.just("x" * 5000),
)


def conditions(data: Any) -> list[tuple[Any, ...]]:
    return [p for p in paths(data) if p and p[-1] in ("when", "ask_when", "gate", "expr")]


def condition_text(ruleset_data: Any) -> st.SearchStrategy[str]:
    """Hostile strings, random text, and random mixes of the rule set's own names."""
    names = [q["id"] for s in ruleset_data["sections"] for q in s["questions"]]
    names += [i["id"] for i in ruleset_data.get("instruments", [])]
    names += [i["id"] + "_band" for i in ruleset_data.get("instruments", [])]
    atoms = st.one_of(st.sampled_from(names), st.integers(-3, 30).map(str),
                      st.sampled_from(["'a'", "True", "1e999", "1.5", "[1, 2]", "'low'"]))
    ops = st.sampled_from([" and ", " or ", " == ", " != ", " < ", " >= ", " + ", " * ",
                           " / ", " in ", " not in ", " if ", " else "])
    mixed = st.lists(st.tuples(atoms, ops), min_size=1, max_size=8).map(
        lambda parts: "".join(a + o for a, o in parts)[:-1].rsplit(" ", 1)[0])
    calls = st.builds(lambda f, a: f"{f}({a})", st.sampled_from(
        ["answered", "declined", "count", "any", "all", "min", "max", "coalesce", "len"]),
        atoms)
    return st.one_of(st.sampled_from(HOSTILE_CONDITIONS), st.text(max_size=40), mixed, calls,
                     st.builds(lambda a, b: f"not ({a}) or {b}", mixed, calls))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A shipped rule set with one to three structural mutations, dumped back to YAML."""
    base = draw(st.sampled_from(["minimal", "minimal", "minimal", "default"]), label="base")
    data = copy.deepcopy(DATA[base])
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "wrong", "condition", "condition", "rename",
                                   "nest", "duplicate"]), label="op")
        if op == "condition" and conditions(data):
            at = draw(st.sampled_from(conditions(data)))
            get(data, at[:-1])[at[-1]] = draw(condition_text(DATA[base]), label="condition")
            continue
        at = draw(st.sampled_from(paths(data)[1:]), label="at")
        parent, key = get(data, at[:-1]), at[-1]
        if op == "drop":
            del parent[key]
        elif op == "wrong":
            parent[key] = draw(WRONG_VALUES, label="value")
        elif op == "rename" and isinstance(parent, dict):
            parent[str(key)[:-1] + draw(st.sampled_from(["x", "_", "Σ", ""]))] = parent.pop(key)
        elif op == "nest":
            depth = draw(st.integers(5, 300), label="depth")
            value: Any = parent[key]
            for _ in range(depth):
                value = [value]
            parent[key] = value
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, parent[key])
    return dump(data)


@st.composite
def damaged_text(draw: st.DrawFn) -> bytes:
    """A shipped rule set's text with a hostile snippet, a cut, or random bytes put in."""
    base = draw(st.sampled_from(["minimal", "minimal", "minimal", "default"]), label="base")
    text = TEXTS[base].encode("utf-8")
    lines = text.split(b"\n")
    op = draw(st.sampled_from(["snippet", "snippet", "truncate", "bytes", "replace"]),
              label="op")
    where = draw(st.integers(0, len(lines)), label="line")
    if op == "snippet":
        snippet = draw(st.one_of(st.sampled_from(HOSTILE_YAML),
                                 st.text(max_size=60).map(lambda t: t + "\n")), label="snippet")
        indent = draw(st.sampled_from([b"", b"  ", b"    "]))
        piece = b"\n".join(indent + line for line in snippet.encode("utf-8").split(b"\n"))
        return b"\n".join(lines[:where] + [piece] + lines[where:])
    if op == "truncate":
        return text[:draw(st.integers(0, len(text)), label="cut")]
    if op == "bytes":
        noise = draw(st.binary(min_size=1, max_size=40), label="noise")
        return b"\n".join(lines[:where] + [noise] + lines[where:])
    at = draw(st.integers(0, len(text) - 1), label="at")
    return text[:at] + draw(st.binary(min_size=1, max_size=8), label="with") + text[at + 8:]


# ----------------------------------------------------------------------------------- tests

@FUZZ
@given(text=mutated(), data=st.data())
def test_mutated_rule_sets_are_reported_never_crash(text: str, data: st.DataObject,
                                                    workdir: Path) -> None:
    path = workdir / "mutated.yaml"
    path.write_text(text, encoding="utf-8")
    ruleset = check_validate(path)
    if ruleset is not None:
        check_evaluate(path, ruleset, data, workdir)


@FUZZ
@given(content=damaged_text(), data=st.data())
def test_damaged_rule_set_text_is_reported_never_crash(content: bytes, data: st.DataObject,
                                                       workdir: Path) -> None:
    path = workdir / "damaged.yaml"
    path.write_bytes(content)
    ruleset = check_validate(path)
    if ruleset is not None:
        check_evaluate(path, ruleset, data, workdir)


@FUZZ
@given(content=st.binary(max_size=2000))
def test_random_bytes_are_reported_never_crash(content: bytes, workdir: Path) -> None:
    path = workdir / "random.yaml"
    path.write_bytes(content)
    assert check_validate(path) is None


@pytest.mark.parametrize("condition", HOSTILE_CONDITIONS)
def test_every_hostile_condition_is_refused(condition: str, workdir: Path) -> None:
    """Each listed condition, put in place of a rule's condition, is a located problem (those
    that are harmless and valid, like a chain of comparisons of numbers, load and run)."""
    data = copy.deepcopy(DATA["minimal"])
    data["rules"][0]["when"] = condition
    path = workdir / "hostile.yaml"
    path.write_text(dump(data), encoding="utf-8")
    harmless = {"-0.0 == 0", "1 < 2 < 3 < 4 < 5", "1 / 0 > 0", "drinks == -0.0", OVERFLOW}
    ruleset = check_validate(path)
    assert (ruleset is not None) == (condition in harmless), condition
    if ruleset is not None:
        for answers in ({}, ANSWERS):
            evaluate(path, answers, workdir)


# every question of tests/data/minimal.yaml answered (drinks large: overflow is harmless)
ANSWERS = {"danger": "yes", "danger_plan": "no", "mood_1": 2, "mood_2": 1, "mood_3": 0,
           "trauma": "yes", "tr_1": "yes", "tr_2": "no", "sex": "male", "drinks": 100,
           "concerns": ["cost"], "comment": "none"}
