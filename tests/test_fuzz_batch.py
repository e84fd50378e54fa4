"""Fuzzing `iopscreen batch` with generated CSV files: random cells, short and long rows, blank
lines, formula-like ids, delimiters, line ends, encodings, files without a header and random
bytes.

Every case runs the command in this process (as `iopscreen batch` does, through cli.run), on
every fast engine (conftest.FAST_ENGINES): each other engine must give the python engine's
files, summary and exit code (or hand the input to python with a note), and the python run is
checked for what must hold for any input: no traceback and an exit code of the documented
set; every data row accounted for (one result row each, or counted as blank, or the whole file
reported as one problem with nothing written); no answer value on stderr (cells carry marker
tokens that must never be printed); every row holding a crisis answer flagged; no CSV cell
starting a formula.

A few hundred cases run by default; ``FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_batch.py`` runs
more (see the README's "Fuzzing").
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import FALLBACK, FAST_ENGINES

from iopscreen import batch as batch_module
from iopscreen.answers import AnswerParser, InvalidAnswer
from iopscreen.cli import run
from iopscreen.ruleset import load_ruleset

DATA = Path(__file__).parent / "data"
MINIMAL = DATA / "minimal.yaml"
RULESET = load_ruleset(MINIMAL)
QUESTIONS = list(RULESET.questions)
PARSERS = {q: AnswerParser(RULESET.questions[q]) for q in QUESTIONS}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
FUZZ = settings(max_examples=EXAMPLES or 150, deadline=None, derandomize=not EXAMPLES,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
# A long run (FUZZ_EXAMPLES) takes longer than the suite's per-test limit.
pytestmark = [pytest.mark.timeout(0)] if EXAMPLES else []
# A SQL engine's run costs ten of python's (building and planning its query): the default run
# compares the engines on a third of the files, a long run (FUZZ_EXAMPLES) on every one.
COMPARED_EVERY = 1 if EXAMPLES else 3
EXIT_CODES = {0, 1, 2}  # usage errors cannot happen here; 3 (rule set) and 70 (bug) must not
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# A marker no message may print: each is one cell's text, or part of it.
secrets = st.integers(0, 16 ** 6).map(lambda n: f"PHI{n:06x}")
answers = st.sampled_from(["yes", "no", "Yes ", "YES", " y", "N", "true", "0", "1", "2", "3",
                           "declined", "Refused", "", " ", "Some days", "most days", "Often",
                           "none", "cost|time", "cost | TIME", "12", "+12", "12.0", "-1",
                           "1e1", "100", "101", "male", "female", "other", "sí", "Não"])
# Cells that hold a marker: invalid answers, text answers, formula-like and quoted values.
marked = st.tuples(secrets, st.sampled_from(["{}", "=SUM({})", "+{}", "-{}", "@{}", "{}, also",
                                             '"{}"', "{}\n2nd line", "{}\r\n", "\t{}",
                                             "yes {}", "{};x|y"])).map(lambda p: p[1].format(p[0]))
cells = st.one_of(answers, answers, answers, marked)
ids = st.one_of(st.sampled_from(["C-1", "C-2", "", " ", "=HYPERLINK(\"x\")", "+44 20", "-7",
                                 "@me", "A,B", 'say "hi"', "Zoë-3"]),
                st.integers(0, 50).map(lambda n: f"P{n}"))


@st.composite
def rows(draw: Any, columns: list[str]) -> tuple[list[str], str, list[str]]:
    """A record as the file holds it, how it was made ('ok', 'short': trailing cells left out,
    'long': a run of extra cells put somewhere, 'blank' or 'empty': a blank line), and the
    record it was made from (one cell per column)."""
    width = len(columns) + 1
    original = [draw(ids), *(draw(cells) for _ in range(width - 1))]
    if draw(st.integers(0, 2)) == 0:  # a crisis answer, where the columns allow one
        for question in ("danger", "danger_plan"):
            if question in columns:
                original[1 + columns.index(question)] = draw(st.sampled_from(
                    ["yes", "Yes ", "YES", "y", "TRUE", "1"]))
    kind = draw(st.sampled_from(["ok"] * 4 + ["short"] * 2 + ["long"] * 3 + ["blank", "empty"]))
    record = list(original)
    if kind == "short":
        record = original = record[:draw(st.integers(1, width - 1))]
    elif kind == "long":
        at = draw(st.integers(1, width))
        record[at:at] = draw(st.lists(cells, min_size=1, max_size=3))
    elif kind == "blank":
        record = original = [""] * width
    elif kind == "empty":
        record = original = []
    return record, kind, original


@st.composite
def files(draw: Any) -> dict[str, Any]:
    """A CSV file of responses, and the options to read it with."""
    columns = draw(st.lists(st.sampled_from(QUESTIONS), min_size=1, max_size=len(QUESTIONS),
                            unique=True))
    if "danger" in columns and draw(st.booleans()):  # the crisis questions, often
        columns = [c for c in columns if c != "danger_plan"] + ["danger_plan"]
    header = ["id", *(draw(st.sampled_from([c, c.upper(), f" {c} "])) for c in columns)]
    body = draw(st.lists(rows(columns), max_size=25))
    return {"header": header, "columns": columns, "rows": body,
            "with_header": draw(st.sampled_from([True] * 9 + [False])),
            "delimiter": draw(st.sampled_from([",", ",", ";", "\t"])),
            "line_end": draw(st.sampled_from(["\n", "\r\n"])),
            "encoding": draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16",
                                              "cp1252"])),
            "tell_encoding": draw(st.booleans()),
            "format": draw(st.sampled_from(["csv", "csv", "jsonl", "json"])),
            "raw_csv": draw(st.sampled_from([False] * 4 + [True])),
            # tiny blocks: records cut across blocks, quoted line breaks found late
            "block": draw(st.sampled_from([None, None, 64, 300]))}


def csv_bytes(case: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=case["delimiter"], lineterminator=case["line_end"])
    if case["with_header"]:
        writer.writerow(case["header"])
    for record, _, _ in case["rows"]:
        writer.writerow(record)
    return buffer.getvalue().encode(case["encoding"], errors="replace")


def yes(question: str, cell: str) -> bool:
    try:
        answer = PARSERS[question].parse(cell)
    except InvalidAnswer:
        return False
    return answer is not None and not answer.declined and answer.value is True


def has_crisis_answer(columns: list[str], record: list[str]) -> bool:
    """Whether the record, read as the columns (short rows padded), answers the minimal rule
    set's crisis rule: danger and danger_plan both yes."""
    cells = dict(zip(columns, record[1:]))
    return yes("danger", cells.get("danger", "")) and yes("danger_plan", cells.get("danger_plan",
                                                                                   ""))


def batch(capsys: pytest.CaptureFixture[str], path: Path, *options: str,
          outputs: tuple[Path, ...] = (), screened: Counter[str] | None = None) -> tuple[int, str]:
    """Exit code and stderr of `iopscreen batch` on ``path`` with the python engine, after
    checking, for one file in COMPARED_EVERY (by its bytes, so the choice is the same each
    run), that every other engine gives the same (the same files ``outputs`` too). In
    ``screened``: how many files were compared, and each engine's runs without the fallback
    note."""
    compare = zlib.crc32(path.read_bytes()) % COMPARED_EVERY == 0
    if screened is not None:
        screened["compared"] += compare
    runs = {}
    for engine in FAST_ENGINES if compare else FAST_ENGINES[:1]:
        for old in outputs:
            old.unlink(missing_ok=True)
        capsys.readouterr()
        code = run(["batch", "-r", str(MINIMAL), "--no-progress", str(path), *options,
                    "--engine", engine])
        _, err = capsys.readouterr()
        notes = FALLBACK.findall(err)
        if screened is not None and not notes:
            screened[engine] += 1
        runs[engine] = (code, FALLBACK.sub("", err),
                        [f.read_bytes() if f.exists() else None for f in outputs])
        assert runs[engine] == runs["python"], f"--engine {engine} differs from python"
    return runs["python"][:2]


def results(path: Path, fmt: str) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if fmt == "csv":
        table = list(csv.reader(io.StringIO(text, newline="")))
        assert {len(r) for r in table} == {len(table[0])}, "a CSV row is not aligned"
        return [dict(zip(table[0], r)) for r in table[1:]]
    if fmt == "json":
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines()]


def truth(value: Any) -> bool:
    return value is True or value == "true"


def test_generated_files_are_screened_without_losing_or_leaking(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    screened: Counter[str] = Counter()

    @FUZZ
    @given(case=files())
    def check(case: dict[str, Any]) -> None:
        check_generated_file(capsys, monkeypatch, tmp_path, case, screened)

    check()
    # Each engine really screened a good share of the files (the others it handed to python).
    examples = FUZZ.max_examples
    assert screened["python"] == examples and screened["compared"] >= examples // 5
    assert all(screened[e] >= screened["compared"] // 10 for e in FAST_ENGINES[1:]), screened


def check_generated_file(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path, case: dict[str, Any], screened: Counter[str]) -> None:
    data, out, errors = tmp_path / "in.csv", tmp_path / "out", tmp_path / "problems.csv"
    raw = csv_bytes(case)
    data.write_bytes(raw)
    options = ["-o", str(out), "--errors", str(errors), "--force", "-f", case["format"]]
    if case["tell_encoding"]:
        options += ["--encoding", case["encoding"]]
    if case["raw_csv"]:
        options.append("--raw-csv")
    if case["block"]:
        monkeypatch.setattr(batch_module, "BLOCK_CHARS", case["block"])
    try:
        code, err = batch(capsys, data, *options, outputs=(out, errors), screened=screened)
    finally:
        monkeypatch.undo()
    assert code in EXIT_CODES and "Traceback" not in err and "internal error" not in err
    assert "PHI" not in err, "an answer value was printed"
    if not out.exists():  # the file as a whole could not be read: one located problem
        assert code == 1 and "error E41" in err
        return
    got = results(out, case["format"])
    if not case["with_header"]:  # the first row was read as the header
        assert code == 1 and "E41" in err
        return
    # every data row accounted for: a result row each, or skipped as blank
    written = [(r, k, o) for r, k, o in case["rows"] if any(c.strip() for c in r)]
    blank = len(case["rows"]) - len(written)
    assert len(got) == len(written)
    assert f"blank rows skipped: {blank}" in err if blank else "blank rows" not in err
    assert [int(r["row"]) for r in got] == sorted(int(r["row"]) for r in got)
    flagged = 0
    for (record, kind, original), result in zip(written, got):
        assert result["status"] in ("ok", "error")
        if len(record) > len(case["header"]):
            assert truth(result["safety_review"]) and result["status"] == "error"
        if has_crisis_answer(case["columns"], original):
            assert truth(result["crisis"]), f"a crisis answer was not flagged ({kind} row)"
        flagged += truth(result["crisis"])
        if case["format"] == "csv" and not case["raw_csv"]:
            assert not result["id"].startswith(FORMULA_START), "a formula cell was written"
    if flagged:
        assert f"!!! CRISIS: {flagged} row(s)" in err
    if case["format"] == "csv" and not case["raw_csv"]:
        problems = list(csv.DictReader(errors.open(encoding="utf-8", newline="")))
        for p in problems:
            assert not any(p[k].startswith(FORMULA_START) for k in ("id", "column", "message"))


@FUZZ
@given(head=st.sampled_from([b"", b"id,danger,danger_plan\n", b"\xef\xbb\xbfid;danger\r\n",
                             b"\xff\xfei\x00d\x00,\x00d\x00a\x00n\x00g\x00e\x00r\x00\n\x00"]),
       body=st.binary(max_size=400),
       encoding=st.sampled_from([None, "utf-8", "latin-1", "utf-16"]))
def test_random_bytes_never_crash_or_leak(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          head: bytes, body: bytes, encoding: str | None) -> None:
    """(A SQL engine hands nearly all of these to python: what is checked for it is that its
    look at such bytes never fails, writes or says anything else.)"""
    data, out = tmp_path / "in.csv", tmp_path / "out.csv"
    data.write_bytes(head + body)
    options = ["-o", str(out), "--force"] + (["--encoding", encoding] if encoding else [])
    code, err = batch(capsys, data, *options, outputs=(out,))
    assert code in EXIT_CODES and "Traceback" not in err and "internal error" not in err
    if code == 0:
        assert out.exists()
    if out.exists():
        text = out.read_text(encoding="utf-8")
        table = list(csv.reader(io.StringIO(text, newline="")))
        assert {len(r) for r in table} == {len(table[0])}


def test_the_generators_reach_every_kind_of_row() -> None:
    """The strategies make what the properties are about (a check on the fuzzer itself)."""
    seen: set[str] = set()
    crisis = [False]

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=files())
    def look(case: dict[str, Any]) -> None:
        seen.update(kind for _, kind, _ in case["rows"])
        seen.update(k for k in ("utf-16", "cp1252") if case["encoding"] == k)
        if not case["with_header"]:
            seen.add("no header")
        if any(has_crisis_answer(case["columns"], o) for _, k, o in case["rows"] if k == "long"):
            crisis[0] = True

    look()
    assert seen >= {"ok", "short", "long", "blank", "empty", "utf-16", "cp1252", "no header"}
    assert crisis[0]
    assert codecs.lookup("cp1252")  # the encodings the cases use exist here
