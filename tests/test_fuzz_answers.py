"""Fuzzing ``evaluate`` with answers files (hypothesis): random values, wrong types, unknown ids,
hostile strings, huge numbers, nesting, hostile YAML and bad bytes.

Every example asserts: no traceback and no internal error, an exit code ``evaluate`` documents
(0 ok, 1 input data problems), no answer value on stderr, and, for every file whose safety
answers make a crisis (decided here from the answers, not by the engine), the crisis banner
(text) or a crisis flag (JSON).

``FUZZ_EXAMPLES`` sets the examples per test (default 100, a fixed seed: three tests, a few
hundred in all): ``FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz_answers.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import iopscreen.cli as cli_module
from iopscreen.answers import AnswerParser, InvalidAnswer
from iopscreen.ruleset import default_ruleset_path, load_ruleset

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
# The suite's run has a fixed seed (the same examples every time, so CI is repeatable); a long
# run with FUZZ_EXAMPLES set explores new ones.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RULES = load_ruleset(default_ruleset_path())
EVALUATE_EXITS = {0, 1}  # README: 0 ok, 1 invalid answers or an unreadable answers file
SECRET = "Zq"  # every generated free-text value carries it; no key does

# The safety questions behind the crisis rules; the oracle below decides from them alone, so
# other keys never get them (see `junk_key`).
SAFETY = ("si_active_thoughts", "si_intent", "si_plan", "si_behaviour_ever",
          "si_behaviour_recent", "harm_others", "harm_others_intent", "phq9_9", "phq9_9_safe")
YES = ("yes", "Yes", "YES", " y ", "true", "T", "1", True, 1)
NO = ("no", "No", "N", "false", "0", False, 0)
DECLINED = ("declined", "Refused", "decline")
PHQ_POSITIVE = (1, 2, 3, "2", 3.0, "nearly every day", "On several days")
PHQ_OTHER = (0, "0", "not at all")


# --------------------------------------------------------------------------- strategies
def secret_text() -> st.SearchStrategy[str]:
    return st.builds(lambda a, n, b: f"{a}{SECRET}{n:06d}{b}", st.text(max_size=8),
                     st.integers(0, 999_999), st.text(max_size=8))


HOSTILE = ["__import__('os').system('true')", "().__class__.__bases__", "9**9**9",
           "\x1b[31mred\x1b[0m", "\x00", "\u202eevil", "{{7*7}}", "'; DROP TABLE records; --",
           "../../etc/passwd", "\ud7ff", "yes\nno", "%s%s%n", "=HYPERLINK(\"x\")"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-10**6, 10**6),
    st.sampled_from([40, 63, 4000]).map(lambda e: (-1) ** e * 10**e),  # huge numbers
    st.floats(allow_nan=True, allow_infinity=True),
    secret_text(),
    st.sampled_from(HOSTILE).map(lambda h: f"{h}{SECRET}"),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=12)

# Keys: the rule set's other questions, near misses, random and hostile text; never SECRET.
OTHER_IDS = sorted(set(RULES.questions) - set(SAFETY))
junk_key = st.one_of(
    st.sampled_from(OTHER_IDS),
    st.sampled_from(OTHER_IDS).map(lambda q: q[:-1] + "x"),
    st.text(max_size=30),
    st.sampled_from(["__proto__", "answers", "", " ", "\x1b]0;title\x07", "k" * 300]),
).filter(lambda k: SECRET not in k and k not in SAFETY)


def unreadable(qid: str) -> Callable[[Any], bool]:
    """Whether a value is not an answer to ``qid`` (random values include valid ones: a
    random False is a "no", not an invalid answer)."""
    parser = AnswerParser(RULES.questions[qid])

    def check(value: Any) -> bool:
        try:
            return parser.parse(value) is None
        except InvalidAnswer:
            return True
    return check


def safety_value(qid: str, category: str) -> st.SearchStrategy[Any]:
    return {"yes": st.sampled_from(YES), "no": st.sampled_from(NO),
            "declined": st.sampled_from(DECLINED), "invalid": values.filter(unreadable(qid)),
            "phq_positive": st.sampled_from(PHQ_POSITIVE),
            "phq_other": st.sampled_from(PHQ_OTHER)}[category]


@st.composite
def answers_mapping(draw: st.DrawFn) -> tuple[dict[Any, Any], bool]:
    """A mapping of junk and safety answers, and whether its safety answers make a crisis."""
    answers: dict[Any, Any] = draw(st.dictionaries(junk_key, values, max_size=12))
    # Ordinary answers to real questions too, so that most files are partly valid.
    for qid in draw(st.lists(st.sampled_from(OTHER_IDS), max_size=10, unique=True)):
        question = RULES.questions[qid]
        if question.type == "yesno":
            answers[qid] = draw(st.sampled_from(YES + NO + DECLINED))
        elif question.choices:
            answers[qid] = draw(st.sampled_from([c.code for c in question.choices]))
    category: dict[str, str] = {}
    for qid in SAFETY:
        kinds = (["absent", "phq_positive", "phq_other", "declined", "invalid"]
                 if qid == "phq9_9" else ["absent", "yes", "no", "declined", "invalid"])
        category[qid] = draw(st.sampled_from(kinds))
        if category[qid] != "absent":
            answers[qid] = draw(safety_value(qid, category[qid]))
    return answers, crisis_expected(category)


def crisis_expected(c: dict[str, str]) -> bool:
    """The default rule set's crisis rules, from the kinds of the safety answers: an invalid
    answer counts as unanswered, and an unanswered gate question does not close its follow-up."""
    def open_gate(qid: str) -> bool:
        return c[qid] != "no"

    return ((c["si_intent"] == "yes" or c["si_plan"] == "yes") and open_gate("si_active_thoughts")
            or c["si_behaviour_recent"] == "yes" and open_gate("si_behaviour_ever")
            or c["harm_others"] == "yes" and c["harm_others_intent"] == "yes"
            or c["phq9_9"] == "phq_positive" and c["phq9_9_safe"] == "no")


@st.composite
def answers_file(draw: st.DrawFn) -> tuple[str, bytes, bool, dict[Any, Any]]:
    """(file name, bytes, crisis expected, the mapping) for a well-formed JSON or YAML file."""
    answers, crisis = draw(answers_mapping())
    data: Any = {"answers": answers} if draw(st.booleans()) else answers
    if draw(st.booleans()):
        text = json.dumps(data, ensure_ascii=draw(st.booleans()))
        name = "answers.json"
    else:
        text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()))
        name = draw(st.sampled_from(["answers.yaml", "answers.yml", "answers.txt"]))
    prefix = "\ufeff" if draw(st.booleans()) else ""
    return name, (prefix + text).encode("utf-8"), crisis, answers


@st.composite
def broken_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file damaged after writing: cut short, random bytes in, another encoding."""
    name, data, _, _ = draw(answers_file())
    how = draw(st.sampled_from(["cut", "insert", "utf16", "latin1", "random"]))
    if how == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "insert":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif how == "utf16":
        data = data.decode("utf-8").encode("utf-16")
    elif how == "latin1":
        data = data.decode("utf-8").encode("latin-1", errors="replace")
    else:
        data = draw(st.binary(max_size=200))
    return name, data


YAML_HOSTILE = [
    "x: !!python/object/apply:os.system ['true']\n",
    "x: !!python/name:os.system\n",
    "a: &a [" + ",".join(["Zq1"] * 9) + "]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "concerns: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",  # an alias bomb
    "concerns: " + "[" * 3000 + "]" * 3000 + "\n",
    "concerns: {" * 500 + "}" * 500 + "\n",
    "? [a, b]\n: Zq2\n",  # a list as a key
    "concerns: *undefined\n",
    "age: Zq3\nage: Zq4\n",  # a duplicate key
    "\tage: Zq5\n",
    "age: \"unterminated Zq6\n",
    "--- \nage: Zq7\n--- \nage: Zq8\n",  # two documents
    "age: !!binary aGVsbG8=\n",
    "age: !!timestamp 2026-01-01\n",
    "age: 0x1F\nphq9_1: 0o7\ncommitments: .inf\n",
    "age: 1_000\n",
    "concerns: \x85Zq9\n",
]


@st.composite
def hostile_yaml(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A YAML file with crisis answers written out by hand plus hostile lines."""
    plant = draw(st.booleans())
    lines = ["si_active_thoughts: yes\n", "si_intent: yes\n"] if plant else []
    lines += draw(st.lists(st.sampled_from(YAML_HOSTILE), min_size=1, max_size=3))
    order = draw(st.permutations(lines))
    return "".join(order).encode("utf-8"), plant


# --------------------------------------------------------------------------- running
@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def loaded_once() -> Iterator[None]:
    # The rule set is the same for every example: load it once (the loader has its own fuzz
    # tests) so a few hundred examples take seconds. Everything after loading is the real path.
    saved = cli_module.open_ruleset
    cli_module.open_ruleset = lambda path: RULES  # type: ignore[assignment]
    try:
        yield
    finally:
        cli_module.open_ruleset = saved  # type: ignore[assignment]


def evaluate(path: Path, fmt: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_module.run(["evaluate", "-a", str(path), "-f", fmt])
    return code, out.getvalue(), err.getvalue()


def check(code: int, out: str, err: str) -> None:
    assert code in EVALUATE_EXITS, (code, err)
    assert "Traceback" not in out + err and "internal error" not in err, err
    assert SECRET not in err, err
    assert "\x1b" not in err  # no terminal escape reaches the screen from a file
    if code == 0:
        assert err == ""


def flagged(out: str, fmt: str) -> bool:
    if fmt == "text":
        return "!!! CRISIS - ACT NOW !!!" in out
    return any(f["severity"] == "crisis" for f in json.loads(out)["flags"])


@FUZZ
@given(answers_file(), st.sampled_from(["json", "text"]))
@example(("a.yaml", b"answers: {}\nsi_behaviour_recent: 'yes'\n", True, {}), "json")
@example(("a.json", json.dumps({"si_intent": "yes", "phq9_1": "Zq000001",
                                 "si_active_thoughts": [[["x"]]], "age": 10**4000}).encode(),
          True, {}), "text")
def test_every_crisis_in_an_answers_file_is_flagged(folder: Path,
                                                     case: tuple[str, bytes, bool, Any],
                                                     fmt: str) -> None:
    name, data, crisis, _ = case
    path = folder / name
    path.write_bytes(data)
    code, out, err = evaluate(path, fmt)
    check(code, out, err)
    if code == 1 and out == "":  # the file as a whole could not be read: one located error
        assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1
        assert "nothing in the file was screened" in err
        return
    if crisis:
        assert flagged(out, fmt), (fmt, err)
    if fmt == "json":
        result = json.loads(out)
        assert (code == 1) == bool(result["errors"])
        for problem in result["errors"]:
            assert SECRET not in json.dumps(problem)


@FUZZ
@given(broken_file(), st.sampled_from(["json", "text"]))
def test_damaged_answers_files_fail_cleanly(folder: Path, case: tuple[str, bytes],
                                             fmt: str) -> None:
    name, data = case
    path = folder / name
    path.write_bytes(data)
    check(*evaluate(path, fmt))


@FUZZ
@given(hostile_yaml(), st.sampled_from(["json", "text"]))
def test_hostile_yaml_is_refused_or_screened_never_run(folder: Path, case: tuple[bytes, bool],
                                                       fmt: str) -> None:
    data, plant = case
    path = folder / "hostile.yaml"
    path.write_bytes(data)
    code, out, err = evaluate(path, fmt)
    check(code, out, err)
    if plant and out:  # read as a whole: the crisis answers are in it and must show
        assert flagged(out, fmt)
