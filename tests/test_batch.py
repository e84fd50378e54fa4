"""`iopscreen batch` and `iopscreen template`: the messy export, files, encodings, parallel runs,
and the property that batch screening equals screening each row on its own."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import FALLBACK, Engine, Reason
from reportcases import check_golden

from iopscreen import batch, batch_input, batch_output
from iopscreen.answers import coerce_answers
from iopscreen.batch import BatchOptions, Problem, run_batch
from iopscreen.batch_input import open_source
from iopscreen.cli import run
from iopscreen.engine import screen
from iopscreen.files import AtomicOutput
from iopscreen.ruleset import load_ruleset
from iopscreen.ruleset.model import Ruleset

DATA = Path(__file__).parent / "data"
BATCH = DATA / "batch"
MINIMAL = str(DATA / "minimal.yaml")
MESSY = BATCH / "messy.csv"
QUESTIONS = ["danger", "danger_plan", "mood_1", "mood_2", "mood_3", "trauma", "tr_1", "tr_2",
             "sex", "drinks", "concerns", "comment"]


@pytest.fixture(scope="module")
def rs() -> Ruleset:
    return load_ruleset(DATA / "minimal.yaml")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def batch_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return cli(capsys, "batch", "-r", MINIMAL, "--no-progress", *args)


# Why the DuckDB engine hands an input to the python engine (see batch_duckdb.Unsuitable).
ROWS = "not read as the header says"  # short or long rows, a quote it reads otherwise
MESSY_READ = ROWS  # the messy export has short and long rows
HEADER = "its header has problems"
HEADER_LINE = "its header has quotes"
ENCODING = ROWS  # DuckDB rejects a row with bytes that are not UTF-8
LINES = "several lines"


def batch_on(engine: Engine, capsys: pytest.CaptureFixture[str], *args: str,
             falls_back: Reason = None, rules: str | None = MINIMAL) -> tuple[int, str, str]:
    """`iopscreen batch` on ``engine`` (with the minimal rule set, or ``rules``; None: the
    default one): exit code, stdout, and stderr without the engine's fallback note, after
    checking which engine screened (see :meth:`conftest.Engine.checked`)."""
    code, out, err = cli(capsys, "batch", *(["-r", rules] if rules else []), "--no-progress",
                         *engine.args, *args)
    return code, out, engine.checked(err, falls_back)


def default_on(engine: Engine, capsys: pytest.CaptureFixture[str], *args: str,
               falls_back: Reason = None) -> tuple[int, str, str]:
    """:func:`batch_on` with the default rule set."""
    return batch_on(engine, capsys, *args, falls_back=falls_back, rules=None)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header or ["id", *QUESTIONS])
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------- the messy export


def test_the_fixture_is_really_messy() -> None:
    raw = MESSY.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and b";" in raw
    assert b"Some days" in raw and b";;;" in raw and b"Notes" in raw


@pytest.mark.slow_engines
def test_messy_export_gives_exact_rows_errors_and_exit_code(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out, errors = tmp_path / "results.csv", tmp_path / "problems.csv"
    code, stdout, err = batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-o", str(out),
                                 "--errors", str(errors), falls_back=MESSY_READ)
    assert code == 1  # some rows had errors; the others are written all the same
    assert stdout == ""
    check_golden(BATCH / "messy.expected.csv", out.read_text(encoding="utf-8"))
    check_golden(BATCH / "messy.errors.expected.csv", errors.read_text(encoding="utf-8"))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    # every data row but the blank one gives exactly one output row, in order
    assert [r["row"] for r in rows] == ["1", "2", "3", "4", "5", "6", "8", "9", "10"]
    assert [r["status"] for r in rows].count("error") == 2
    # the short row (trailing empty cells left out by the export) is screened, with a warning
    assert rows[7]["status"] == "ok" and rows[7]["row"] == "9"
    assert "W413 x1" in err and "W413,short-row" in errors.read_text(encoding="utf-8")
    # the summary lists the crisis rows first, by id
    assert err.index("CRISIS: 1 row(s)") < err.index("row(s) screened")
    assert "row 6: id C-006" in err
    assert "blank rows skipped: 1" in err and "rows with errors: 2" in err
    assert "ignoring 1 column(s) that are not questions: Notes" in err
    assert "Traceback" not in err


def test_messy_values_are_not_echoed_unless_asked(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-o",
                            str(tmp_path / "o.csv"), falls_back=MESSY_READ)
    assert code == 1
    assert "E401 not-a-number: row 10 (id C-010), column drinks" in err
    assert "lots" not in err
    code, _, err = batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-o",
                            str(tmp_path / "p.csv"), "--show-values",
                            falls_back="--show-values")
    assert "(got 'lots')" in err


def test_unknown_column_is_an_error_and_nothing_is_written(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    code, _, err = batch_on(engine, capsys, str(MESSY), "-o", str(out), "--errors",
                            str(tmp_path / "e.csv"), falls_back=HEADER)
    assert code == 1
    col = MESSY.read_text(encoding="utf-8-sig").index("Notes") + 1
    assert f"{MESSY}:1:{col}: error E411 unknown-column: column 'Notes' is not a question" in err
    assert "--ignore-extra" in err
    assert not out.exists() and not (tmp_path / "e.csv").exists() and not leftovers(tmp_path)


@pytest.mark.parametrize("header, extra, code, hint", [
    ("id,danger,", [], "E411", "the header ends with a delimiter: remove it"),
    ("id,,danger", [], "E411", "name the column or remove it"),
    ("id,danger", ["-d", ";"], "E413", "the header was read as one column: check the delimiter"),
])
def test_header_problems_get_a_hint_that_fits(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path, header: str,
        extra: list[str], code: str, hint: str) -> None:
    data = tmp_path / "h.csv"
    data.write_text(f"{header}\nA,no,\n", encoding="utf-8")
    exit_code, _, err = batch_on(engine, capsys, str(data), *extra, falls_back=HEADER)
    assert exit_code == 1 and code in err
    assert f"hint: {hint}" in err


@pytest.mark.parametrize("extra", [[], ["--ignore-extra"], ["--id-column", "C7"],
                                   ["--id-column", "client"]])
def test_a_file_without_its_header_shows_none_of_its_cells(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        extra: list[str]) -> None:
    """The first data row read as the header must not be echoed as unknown column names."""
    data = tmp_path / "n.csv"
    data.write_text("C7,yes,yes,PHIsecret,2\nC8,no,no,,0\n", encoding="utf-8")
    code, out, err = default_on(engine, capsys, str(data), *extra, falls_back=HEADER)
    assert code == 1 and out == ""
    assert "E413 no-header: no column name is a question of iop-adult 1.2.0: the first line " \
           "looks like data, not a header" in err
    assert "PHIsecret" not in err and "yes" not in err and "'2'" not in err
    if extra[-1:] != ["C7"]:
        assert "C7" not in err
    code, _, err = default_on(engine, capsys, str(data), *extra, "--show-values",
                              falls_back="--show-values")
    assert code in (1, 2) and "looks like data" not in err  # asked for: the names are shown
    assert "yes" in err or "C7" in err


@pytest.mark.slow_engines
def test_an_excel_export_with_every_cell_is_screened_by_every_engine(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" with ';' (a BOM, CRLF, quoted values holding the delimiter, labels in
    any case, 'declined', a bad cell, a blank and a repeated id, a notes column): nothing
    that a SQL engine must hand to python, so each engine screens it itself, the same way."""
    rows = [["C-1", "yes", "Yes ", "most days", "2", "2", "no", "", "", "", "3", "cost; time",
             "ok; thanks"],
            ["C-2", "N", "", "Some days", "declined", "1", "no", "", "", "", "lots", "", ""],
            ["", "no", "", "0", "0", "0", "yes", "no", "no", "female", "0", "none", ""],
            ["C-1", "no", "", "1", "1", "1", "no", "", "", "", "12", "Time", "again"]]
    data = tmp_path / "export.csv"
    with open(data, "w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, delimiter=";", lineterminator="\r\n").writerows(
            [["Client ID", *QUESTIONS[:-1], "Notes"], *rows])
    out, errors = tmp_path / "r.jsonl", tmp_path / "e.csv"
    code, _, err = batch_on(engine, capsys, str(data), "--ignore-extra", "-f", "jsonl", "-o",
                            str(out), "--errors", str(errors))
    assert code == 1  # row 2's drinks
    results = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["Client ID"], r["status"], r["level"], r["crisis"]) for r in results] == [
        ("C-1", "ok", "high", True), ("C-2", "error", "mid", False), ("", "ok", "low", False),
        ("C-1", "ok", "mid", False)]
    assert results[0]["misconceptions"] == ["too_expensive"]
    assert [(p["row"], p["code"], p["column"]) for p in csv.DictReader(errors.open())] == [
        ("2", "E401", "drinks"), ("3", "W410", "Client ID"), ("4", "W411", "Client ID")]
    assert "CRISIS: 1 row(s)" in err and "row 1: id C-1" in err
    assert "ignoring 1 column(s) that are not questions: Notes" in err


@pytest.mark.slow_engines
def test_formats_carry_the_same_results(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    outs = {}
    for fmt in ("csv", "jsonl", "json"):
        outs[fmt] = tmp_path / f"r.{fmt}"
        code, _, _ = batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-f", fmt, "-o",
                              str(outs[fmt]), falls_back=MESSY_READ)
        assert code == 1
    table = list(csv.DictReader(outs["csv"].open(encoding="utf-8")))
    lines = [json.loads(x) for x in outs["jsonl"].read_text().splitlines()]
    array = json.loads(outs["json"].read_text())
    assert lines == array and len(lines) == len(table) == 9
    crisis = next(x for x in lines if x["Client ID"] == "C-006")
    assert crisis["crisis"] is True and crisis["flags"] == ["crisis", "note"]
    assert crisis["level"] == "high" and crisis["mood_score"] == 6
    assert crisis["safety_review"] is False
    for row, obj in zip(table, lines):
        assert row["level"] == (obj["level"] or "")
        assert row["safety_review"] == str(obj["safety_review"]).lower()
        assert row["fired_rules"] == "|".join(obj["fired_rules"] or [])
        assert row["deciding_questions"] == "|".join(obj["deciding_questions"] or [])


def test_json_array_of_no_rows_is_valid(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = write_csv(tmp_path / "empty.csv", [])
    code, out, _ = batch_on(engine, capsys, str(empty), "-f", "json")
    assert code == 0 and json.loads(out) == []


# --------------------------------------------------------------------- files and streams


def test_stdin_to_stdout(engine: Engine, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    data = "id,danger,danger_plan\nA,yes,yes\nB,no,\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    code, out, err = batch_on(engine, capsys, "-", falls_back="standard input")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["id"], r["level"], r["crisis"]) for r in rows] == [("A", "high", "true"),
                                                                  ("B", "low", "false")]
    assert "<stdin>: 2 row(s) screened" in err
    assert "10 question(s) have no column and count as unanswered" in err


def test_problems_to_stdout_with_a_dash(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "d.csv", [["A", "maybe"], ["B", "no"]], header=["id", "danger"])
    code, out, err = batch_on(engine, capsys, str(data), "-o", "r.csv", "-e", "-")
    assert code == 1 and not (tmp_path / "-").exists()
    problems = list(csv.DictReader(io.StringIO(out)))
    assert [(p["row"], p["code"]) for p in problems] == [("1", "E402")]
    assert "-> stdout" in err
    code, _, err = batch_on(engine, capsys, str(data), "-e", "-")  # results on stdout too: refused
    assert code == 2 and "cannot both go to stdout" in err
    assert not (tmp_path / "-").exists()


def test_output_is_not_overwritten_without_force(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    out.write_text("precious\n")
    code, _, err = batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-o", str(out))
    assert code == 2
    assert "already exists" in err and "--force" in err
    assert out.read_text() == "precious\n"
    code, _, _ = batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-o", str(out), "--force",
                          falls_back=MESSY_READ)
    assert code == 1 and out.read_text().startswith("row,Client ID,status")


def test_the_input_is_never_the_output(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    data = write_csv(tmp_path / "in.csv", [["A", "no"] + [""] * 11])
    before = data.read_bytes()
    for args in (["-o", str(data)], ["-o", str(data), "--force"],
                 ["--errors", str(tmp_path / "in.csv"), "--force"],
                 ["-o", str(tmp_path / "x.csv"), "--errors", str(tmp_path / "x.csv")]):
        code, _, err = batch_cli(capsys, str(data), *args)
        assert code == 2, args
        assert "is the input" in err or "is the output" in err
    assert data.read_bytes() == before and not leftovers(tmp_path)


def test_results_and_errors_are_owner_only(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out, errors = tmp_path / "r.csv", tmp_path / "e.csv"
    batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-o", str(out), "--errors", str(errors),
             falls_back=MESSY_READ)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(errors.stat().st_mode) == 0o600


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_leaves_no_partial_file_and_exits_130(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        jobs: str) -> None:
    data = write_csv(tmp_path / "big.csv",
                     [[f"P{i}", "no", "", "0", "1", "2"] + [""] * 6 for i in range(3000)])
    monkeypatch.setattr(batch, "BLOCK_CHARS", 2000)
    monkeypatch.setattr(batch, "PARALLEL_MIN_CHARS", 4000)
    real = batch._Run._merge
    calls = []

    def interrupted(self: batch._Run, chunk: batch.Chunk) -> None:
        calls.append(1)
        if len(calls) == 5:  # Ctrl-C reaches the process that writes (workers ignore it)
            raise KeyboardInterrupt
        real(self, chunk)

    monkeypatch.setattr(batch._Run, "_merge", interrupted)
    out, errors = tmp_path / "results.csv", tmp_path / "problems.csv"
    errors.write_text("old problems\n")
    code, _, err = batch_cli(capsys, str(data), "-o", str(out), "--errors", str(errors),
                             "--force", "-j", jobs)
    assert code == 130
    assert "interrupted: nothing written" in err and "Traceback" not in err
    assert len(calls) == 5  # it stopped mid-stream
    assert not out.exists()
    assert errors.read_text() == "old problems\n"  # the old file is untouched
    assert not leftovers(tmp_path)


@pytest.mark.slow_engines
def test_ctrl_c_on_any_engine_leaves_no_partial_file_and_exits_130(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (here: as the fifth problem is written, rows already out) ends the run with
    nothing written, the old problems file untouched, no temporary file left, exit 130."""
    data = write_csv(tmp_path / "big.csv", [[f"P{i}", "maybe"] for i in range(3000)],
                     header=["id", "danger"])
    real = batch_output.ProblemWriter.__call__
    calls = []

    def interrupted(self: batch_output.ProblemWriter, problem: Problem) -> None:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(self, problem)

    monkeypatch.setattr(batch_output.ProblemWriter, "__call__", interrupted)
    out, errors = tmp_path / "results.csv", tmp_path / "problems.csv"
    errors.write_text("old problems\n")
    code, _, err = batch_on(engine, capsys, str(data), "-o", str(out), "--errors", str(errors),
                            "--force")
    assert code == 130 and len(calls) == 5
    assert "interrupted: nothing written" in err and "Traceback" not in err
    assert not out.exists() and errors.read_text() == "old problems\n"
    assert not leftovers(tmp_path)


def _as_a_terminal_job() -> None:
    """Give the child Ctrl-C's default action, as a shell does for a job it runs in the
    foreground: a test run started in the background (`cmd &` without job control) ignores
    SIGINT, and that would be inherited and make the command ignore it too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_ctrl_c_from_the_terminal_stops_the_workers_too(tmp_path: Path, stop: str) -> None:
    """The installed command, screening with worker processes, gets SIGINT as a terminal's
    Ctrl-C sends it (to the whole foreground process group), or SIGTERM, or SIGHUP as when the
    terminal closes: it exits 130, writes nothing, and no worker is left running."""
    rs = load_ruleset(DATA / "minimal.yaml")
    cells = {"yesno": "no", "integer": "3", "multi": "none", "text": "ok"}
    row = ",".join(cells.get(q.type) or str(q.choices[0].code) for q in rs.questions.values())
    data = tmp_path / "big.csv"
    with open(data, "w", encoding="utf-8") as handle:
        handle.write(",".join(["id", *rs.questions]) + "\n")
        handle.writelines(f"P{i},{row}\n" for i in range(400_000))
    out, errors = tmp_path / "results.csv", tmp_path / "problems.csv"
    command = str(Path(sys.executable).parent / "iopscreen")
    child = subprocess.Popen([command, "batch", "-r", MINIMAL, str(data), "-o", str(out),
                              "--errors", str(errors), "-j", "2", "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True, preexec_fn=_as_a_terminal_job)
    children = Path(f"/proc/{child.pid}/task/{child.pid}/children")
    workers: list[int] = []
    deadline = time.monotonic() + 20
    while len(workers) < 2 and time.monotonic() < deadline and child.poll() is None:
        workers = [int(p) for p in children.read_text().split()] if children.exists() else []
        time.sleep(0.02)
    assert len(workers) == 2, "the workers never started"
    time.sleep(0.2)  # let them screen a little
    os.killpg(child.pid, getattr(signal, stop))
    _, err = child.communicate(timeout=60)  # generous: a loaded CI machine is slow to exit
    assert child.returncode == 130
    assert b"interrupted: nothing written" in err and b"Traceback" not in err
    assert not out.exists() and not errors.exists() and not leftovers(tmp_path)
    for pid in workers:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not Path(f"/proc/{pid}").exists(), "a worker outlived the run"


def test_a_missing_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = batch_cli(capsys, "/nonexistent/responses.csv")
    assert code == 2 and "not found" in err


def test_an_invalid_rule_set_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(MINIMAL).read_text().replace("mood_band == 'high'", "mood_bnd == 'high'"))
    code, _, err = cli(capsys, "batch", "-r", str(bad), str(MESSY), "--ignore-extra")
    assert code == 3 and "E201 unknown-name" in err


# ------------------------------------------------------------------------------ reading


def test_encoding_errors_name_the_place_and_encoding(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "latin1.csv"
    data.write_bytes("id,comment\nA,ok\nB,caf\xe9 au lait\n".encode("latin-1"))
    code, out, err = batch_on(engine, capsys, str(data), falls_back=ENCODING)
    assert code == 1 and out == ""
    assert f"{data}:3:6: error E414 bad-encoding: the file is not valid UTF-8 (byte 0xe9" in err
    assert "--encoding" in err
    code, out, _ = batch_on(engine, capsys, str(data), "--encoding", "latin-1",
                            falls_back="read as")
    assert code == 0 and len(out.splitlines()) == 3


def test_a_file_problem_after_rows_went_to_stdout_says_the_output_is_incomplete(
        engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    data = tmp_path / "late.csv"
    rows = "".join(f"P{i},no\n" for i in range(20_000))
    data.write_bytes(f"id,danger\n{rows}B,caf\xe9\n".encode("latin-1"))
    monkeypatch.setattr(batch, "BLOCK_CHARS", 1000)  # the bad byte is read after rows went out
    code, out, err = batch_on(engine, capsys, str(data), falls_back=ENCODING)
    assert code == 1 and out.count("\n") > 1
    assert "stopped: the output on stdout is incomplete" in err and "E414 bad-encoding" in err
    out_file = tmp_path / "r.csv"
    code, _, err = batch_on(engine, capsys, str(data), "-o", str(out_file),
                            falls_back=ENCODING)  # to a file: nothing written
    assert code == 1 and not out_file.exists() and "incomplete" not in err


def test_utf16_with_bom_and_tabs_is_read_as_excel_writes_it(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "unicode.txt"
    data.write_bytes("id\tdanger\tdanger_plan\r\nA\tyes\tno\r\n".encode("utf-16"))
    code, out, _ = batch_on(engine, capsys, str(data), falls_back="utf-16")
    assert code == 0
    assert list(csv.DictReader(io.StringIO(out)))[0]["fired_rules"] == "danger_no_plan"


def test_utf16_named_but_without_its_bom_is_an_encoding_error(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The UTF-16 codec raises a plain UnicodeError (not a decode error) for a missing BOM: it
    is a located bad-encoding problem, not an internal error (found by the fuzz suite)."""
    data = tmp_path / "u.csv"
    data.write_bytes("id,danger\nA,no\n".encode("utf-16-le"))
    code, _, err = batch_on(engine, capsys, str(data), "--encoding", "utf-16", falls_back="utf-16")
    assert code == 1 and "Traceback" not in err
    assert f"{data}:1:1: error E414 bad-encoding" in err and "utf-16-le or utf-16-be" in err
    code, out, _ = batch_on(engine, capsys, str(data), "--encoding", "utf-16-le",
                            falls_back="utf-16-le")
    assert code == 0 and out.count("\n") == 2


def test_an_unknown_encoding_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = batch_cli(capsys, str(MESSY), "--encoding", "klingon")
    assert code == 2 and "unknown encoding 'klingon'" in err


@pytest.mark.slow_engines
@pytest.mark.parametrize("delimiter,flag", [(";", None), ("\t", None), ("|", None),
                                            (";", ";"), ("\t", "tab"), ("\t", "\\t")])
def test_delimiters_are_found_or_given(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path, delimiter: str,
        flag: str | None) -> None:
    data = tmp_path / "d.csv"
    data.write_text(delimiter.join(["id", "danger", "danger_plan", "concerns"]) + "\n"
                    + delimiter.join(["A", "yes", "yes", "cost,time"]) + "\n")
    code, out, _ = batch_on(engine, capsys, str(data), *(["--delimiter", flag] if flag else []))
    assert code == 0
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["level"] == "high" and row["misconceptions"] == "too_expensive"


def test_a_bad_delimiter_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = batch_cli(capsys, str(MESSY), "--delimiter", "::")
    assert code == 2 and "--delimiter" in err


def test_id_column_guess_option_and_absence(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    both = write_csv(tmp_path / "both.csv", [["7", "A", "yes", "yes"]],
                     header=["case", "record_id", "danger", "danger_plan"])
    code, out, err = batch_on(engine, capsys, str(both), "--ignore-extra")
    assert code == 0 and out.startswith("row,record_id,") and "column 'record_id'" in err
    code, out, _ = batch_on(engine, capsys, str(both), "--id-column", "CASE", "--ignore-extra")
    assert code == 0 and out.startswith("row,case,") and "\n1,7,ok," in out
    code, _, err = batch_on(engine, capsys, str(both), "--id-column", "caes", falls_back=HEADER)
    assert code == 2 and "did you mean 'case'?" in err
    none = write_csv(tmp_path / "none.csv", [["yes", "yes"]], header=["danger", "danger_plan"])
    code, out, err = batch_on(engine, capsys, str(none))
    assert code == 0 and out.startswith("row,status,") and "no id column found" in err
    assert "row 1: no id" in err  # the crisis row, by number


def test_duplicate_and_missing_ids_are_warnings(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", [["A", "no"], ["B", "no"], [" A ", "no"], ["", "no"],
                                          ["B", "no"]], header=["id", "danger"])
    errors = tmp_path / "e.csv"
    code, _, err = batch_on(engine, capsys, str(data), "--errors", str(errors))
    assert code == 0  # every row screened
    problems = list(csv.DictReader(errors.open()))
    assert [(p["row"], p["line"], p["code"], p["message"]) for p in problems] == [
        ("4", "5", "W410", "the row has no id"),
        ("3", "4", "W411", "id 'A' is also on data row 1"),
        ("5", "6", "W411", "id 'B' is also on data row 2"),
    ]
    assert "W411 x2" in err


@pytest.mark.slow_engines
def test_answers_skip_logic_drops_are_warned_and_safety_ones_listed(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Paper and spreadsheet data can answer a question the interview would not have asked:
    'no' to active thoughts, then 'yes' to intent and plan. Skip logic drops those answers
    (as in the interview), but never silently: each is a W412 warning, and rows where a dropped
    answer is behind a crisis rule are listed in the summary, next to the crisis rows."""
    data = write_csv(tmp_path / "s.csv", [
        ["A", "no", "no", "yes", "yes", "", ""],    # intent and plan answered though not asked
        ["B", "no", "yes", "no", "no", "", ""],     # consistent
        ["C", "no", "no", "", "", "no", "yes"],     # a non-safety question answered, skipped
    ], header=["id", "si_wish_dead", "si_active_thoughts", "si_intent", "si_plan", "ptsd_trauma",
               "ptsd_1"])
    errors = tmp_path / "e.csv"
    code, out, err = default_on(engine, capsys, str(data), "--errors", str(errors),
                                "-o", str(tmp_path / "r.csv"))
    assert code == 1  # a dropped safety answer is an input problem to check
    problems = list(csv.DictReader(errors.open()))
    assert [(p["row"], p["id"], p["column"], p["level"], p["code"]) for p in problems] == [
        ("1", "A", "si_intent", "warning", "W412"), ("1", "A", "si_plan", "warning", "W412"),
        ("3", "C", "ptsd_1", "warning", "W412")]
    assert "asked when si_active_thoughts" in problems[0]["message"]
    assert "yes" not in problems[0]["message"]  # no answer values
    assert "!!! SAFETY REVIEW: 1 row(s) may hold a crisis answer" in err
    review = err.split("!!!")[2]
    assert "row 1: id A: safety answer left out by skip logic: si_intent, si_plan" in review
    assert "row 3" not in review
    assert "rows with a safety answer left out by skip logic: 1 (exit code 1" in err
    results = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert results[0]["ignored_answers"] == "si_intent|si_plan"
    assert results[0]["crisis"] == "false"  # the engine's reading, as in the interview
    # ... but the row says a person must look at it, in every format
    assert [r["safety_review"] for r in results] == ["true", "false", "false"]
    for fmt in ("jsonl", "json"):
        code, out, _ = default_on(engine, capsys, str(data), "-f", fmt)
        rows = (json.loads(out) if fmt == "json" else
                [json.loads(x) for x in out.splitlines()])
        assert [r["safety_review"] for r in rows] == [True, False, False]
    # --allow-dropped-safety accepts them (exit 0); the rows are still marked and listed
    code, _, err = default_on(engine, capsys, str(data), "-o",
                              str(tmp_path / "r2.csv"), "--allow-dropped-safety")
    assert code == 0 and "SAFETY REVIEW: 1 row(s)" in err
    assert "(allowed by --allow-dropped-safety)" in err
    assert (tmp_path / "r2.csv").read_text() == (tmp_path / "r.csv").read_text()


SAFETY_HEADER = ["id", "si_active_thoughts", "si_intent", "si_plan", "phq9_9"]

FORMULA_IDS = ['=HYPERLINK("http://x.example/?"&B2)', "+1", "-2", "@SUM(1)", "\tT", "\rR",
               "ok-1", "'quoted"]


# a block screened at once (no CR in it), a block read by a csv reader, and a csv reader for all
@pytest.mark.parametrize("id_header, ids, duckdb_reads", [
    ("id", [i for i in FORMULA_IDS if "\r" not in i], None),
    ("id", FORMULA_IDS, "lone CR"), ('"id"', FORMULA_IDS, HEADER_LINE)])
def test_csv_cells_that_echo_input_never_start_a_formula(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path, id_header: str,
        ids: list[str], duckdb_reads: str | None) -> None:
    """Ids (and the problems file's text) that a spreadsheet would run as formulas get a
    leading ' (OWASP); --raw-csv and JSON keep them as they are; our own cells are untouched."""
    data = tmp_path / "f.csv"
    body = "".join(f"{_csv_line(i)},no,{'maybe' if n == 3 else ''}\n"
                   for n, i in enumerate(ids))
    data.write_text(f"{id_header},si_active_thoughts,si_intent\n{body}", encoding="utf-8")
    errors = tmp_path / "e.csv"
    code, out, _ = default_on(engine, capsys, str(data), "-e", str(errors),
                              falls_back=duckdb_reads)
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == [("'" if i[0] in "=+-@\t\r" else "") + i for i in ids]
    assert {r["ruleset_id"] for r in rows} == {"iop-adult"}
    problems = list(csv.DictReader(errors.open(newline="")))
    assert [p["id"] for p in problems] == ["'@SUM(1)"]
    code, out, _ = default_on(engine, capsys, str(data), "--raw-csv", falls_back=duckdb_reads)
    assert [r["id"] for r in csv.DictReader(io.StringIO(out))] == ids
    code, out, _ = default_on(engine, capsys, str(data), "-f", "jsonl", falls_back=duckdb_reads)
    assert [json.loads(x)["id"] for x in out.splitlines()] == ids


def _csv_line(*cells: str) -> str:
    """One CSV line, without its line end (a cell with CR or LF in quotes)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2]


@pytest.mark.slow_engines
def test_short_rows_are_read_with_blank_cells_and_screened(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Spreadsheet exports leave out empty cells at the end of a row: the row is read with them
    blank, screened (a crisis in it is flagged) and warned about by row."""
    data = tmp_path / "s.csv"
    data.write_text("id,si_active_thoughts,si_intent,si_plan,phq9_9\nA,yes,yes,yes\n"
                    "B,yes,yes,yes,0\nC,no\n", encoding="utf-8")
    code, out, err = default_on(engine, capsys, str(data), falls_back=ROWS)
    assert code == 0  # a warning: every row screened
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["id"], r["status"], r["crisis"]) for r in rows] == [
        ("A", "ok", "true"), ("B", "ok", "true"), ("C", "ok", "false")]
    assert "CRISIS: 2 row(s)" in err and "row 1: id A\n" in err
    assert "W413 short-row: row 1 (id A): the row has 4 field(s) but the header has 5" in err
    assert "W413 short-row: row 3 (id C)" in err and "row 2 (id B)" not in err


def test_a_short_row_warning_on_every_row_is_summed_up_on_the_terminal(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An export that trims the empty cells of every row: the terminal lists the first few
    W413s and counts the rest on one line, so the invalid cell of row 40 is not buried; the
    problems file still has every row's warning."""
    data = tmp_path / "trimmed.csv"
    data.write_text("id,si_active_thoughts,si_intent,si_plan,phq9_9\n" + "".join(
        f"P{i},no{',,,x' if i == 40 else ''}\n" for i in range(1, 51)), encoding="utf-8")
    code, _, err = default_on(engine, capsys, str(data), "-o", str(tmp_path / "r.csv"),
                              falls_back=ROWS)
    assert code == 1
    assert "problems: 1 error(s), 49 warning(s) (E405 x1, W413 x49)" in err
    listed = [line for line in err.splitlines() if " W413 short-row: row " in line]
    assert [line.split(": ")[2] for line in listed] == ["row 1 (id P1)", "row 2 (id P2)",
                                                       "row 3 (id P3)"]
    assert "\n  W413 short-row: 46 more (rows 4, 5, 6, 7, 8, ...)\n" in err
    assert "E405 not-a-choice: row 40 (id P40), column phq9_9" in err
    assert "... and 46 more; write them all with --errors FILE" in err
    errors = tmp_path / "e.csv"
    code, _, err = default_on(engine, capsys, str(data), "-o", str(tmp_path / "r2.csv"),
                              "--errors", str(errors), falls_back=ROWS)
    problems = list(csv.DictReader(errors.open()))
    assert [int(p["row"]) for p in problems if p["code"] == "W413"] == [
        i for i in range(1, 51) if i != 40]
    assert "W413 short-row: row" not in err  # the file has them: none listed


@pytest.mark.slow_engines
def test_long_rows_are_error_rows_still_checked_for_crisis(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A row with more cells than the header cannot be matched to the columns: it is an error
    row, but its cells are checked for a crisis under every way they could line up (the extra
    cells one run anywhere), and every such row is listed for a person to check."""
    data = write_csv(tmp_path / "l.csv", [
        ["A", "yes", "yes", "yes", "0", "extra"],          # the extra cell at the end
        ["B", "an, unquoted", "yes", "yes", "yes", "0"],   # shifted by a comma in a value
        ["C", "no", "no", "no", "0", "x"],                 # no crisis answer however read
        ["D", "no", "", "", "0"],
    ], header=SAFETY_HEADER)
    out = tmp_path / "r.csv"
    code, _, err = default_on(engine, capsys, str(data), "-o", str(out), falls_back=ROWS)
    assert code == 1
    rows = list(csv.DictReader(out.open()))
    assert [(r["status"], r["errors"], r["crisis"], r["safety_review"], r["flags"], r["level"])
            for r in rows] == [
        ("error", "E410", "true", "true", "crisis", ""),
        ("error", "E410", "true", "true", "crisis", ""),
        ("error", "E410", "", "true", "", ""),  # crisis unknown, not 'false'
        ("ok", "", "false", "false", "", "outpatient")]
    crisis, review = err.split("!!!")[2], err.split("!!!")[4]
    assert "CRISIS: 2 row(s)" in err
    assert "row 1: id A: possible crisis: row malformed, check the source" in crisis
    assert "row 2: id B: possible crisis: row malformed, check the source" in crisis
    assert "row 3: id C: possible crisis: row malformed, check the source" in review
    assert "E410 wrong-field-count: row 1 (id A): the row has 6 fields" in err
    for fmt in ("jsonl", "json"):
        code, text, _ = default_on(engine, capsys, str(data), "-f", fmt, falls_back=ROWS)
        objs = json.loads(text) if fmt == "json" else [json.loads(x) for x in text.splitlines()]
        assert [(o["crisis"], o["safety_review"], o["flags"]) for o in objs] == [
            (True, True, ["crisis"]), (True, True, ["crisis"]), (None, True, None),
            (False, False, [])]
        assert all(list(o) == list(objs[3]) for o in objs)  # the same keys, in order


@pytest.mark.parametrize("with_id", [True, False])
def test_every_csv_result_row_has_the_header_s_length(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path, with_id: bool) -> None:
    """ok, invalid-cell, short, long and blank-id rows: every CSV line has as many cells as the
    header, so no column is shifted (a long row's line was one short)."""
    rows = [["A", "no", "no", "", "", "", ""], ["B", "no"], ["C", "no", "no", "x", "", "", "", "+"],
            ["D", "maybe", "no", "", "", "", ""], ["", "no", "no", "", "", "", ""]]
    header = ["id", "si_wish_dead", "si_active_thoughts", "si_intent", "si_plan", "ptsd_trauma",
              "ptsd_1"]
    if not with_id:
        header, rows = header[1:], [r[1:] for r in rows]
    data = write_csv(tmp_path / "w.csv", rows, header=header)
    code, out, _ = default_on(engine, capsys, str(data), falls_back=ROWS)
    assert code == 1
    table = list(csv.reader(io.StringIO(out)))
    assert len(table) == 6 and {len(r) for r in table} == {len(table[0])}
    by_name = [dict(zip(table[0], r)) for r in table[1:]]
    assert all(r["ruleset_id"] == "iop-adult" and r["ignored_answers"] == "" for r in by_name)
    assert [r["status"] for r in by_name] == ["ok", "ok", "error", "error", "ok"]


def test_duplicates_are_found_the_same_across_many_buckets(monkeypatch: pytest.MonkeyPatch,
                                                          rs: Ruleset, tmp_path: Path) -> None:
    ids = [f"P{i % 97}" for i in range(500)]
    data = write_csv(tmp_path / "d.csv", [[i, "no"] for i in ids], header=["id", "danger"])

    def found() -> list[Problem]:
        problems: list[Problem] = []
        with open_source(str(data), None) as source:
            run_batch(rs, source, lambda text: None, BatchOptions(), problems.append)
        return problems

    one = found()
    monkeypatch.setattr(batch, "BUCKET_IDS", 7)
    many = found()
    assert len(one) == 500 - 97 and one == many
    assert [p.row for p in many] == sorted(p.row for p in many)


def test_empty_input_and_header_only(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = batch_on(engine, capsys, str(empty), falls_back=HEADER_LINE)
    assert code == 1 and "E413 no-header" in err
    header = write_csv(tmp_path / "header.csv", [])
    code, out, err = batch_on(engine, capsys, str(header))
    assert code == 0 and out.count("\n") == 1 and "0 row(s) screened" in err


def test_utf16_without_bom_is_recognised(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "u16.csv"
    data.write_bytes("id,danger\nA,no\n".encode("utf-16-le"))
    code, _, err = batch_on(engine, capsys, str(data), falls_back=HEADER_LINE)
    assert code == 1 and "E414 bad-encoding" in err and "--encoding utf-16" in err
    code, out, _ = batch_on(engine, capsys, str(data), "--encoding", "utf-16-le",
                            falls_back="utf-16-le")
    assert code == 0 and "\n1,A,ok," in out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_quote_never_closed_fails_the_file(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             jobs: str) -> None:
    monkeypatch.setattr(batch, "BLOCK_CHARS", 64)
    monkeypatch.setattr(batch, "PARALLEL_MIN_CHARS", 100)
    data = tmp_path / "q.csv"
    data.write_text("id,comment\n" + "A,ok\n" * 20 + 'B,"never closed\n' + "C,x\n" * 20)
    out = tmp_path / "o.csv"
    code, _, err = batch_cli(capsys, str(data), "-o", str(out), "-j", jobs)
    # otherwise row B would silently swallow the 20 rows after it
    assert code == 1 and f"{data}:22:1: error E415 malformed-csv" in err
    assert "never closed" in err and not out.exists()


@pytest.mark.slow_engines
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("final_line_end", [True, False])
def test_a_last_cell_that_is_a_quoted_value_ending_in_a_line_break_is_read(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path, line_end: str,
        final_line_end: bool) -> None:
    """A spreadsheet export whose last row ends in a multi-line comment that itself ends in a
    line break ("text<line end>", quoted) is a valid CSV: every row is screened (it was
    refused as a quote never closed)."""
    rows = ['id,danger,danger_plan,comment', 'A,no,,"two', 'lines"', 'B,yes,yes,"call back',
            '"']
    data = tmp_path / "export.csv"
    data.write_bytes(b"\xef\xbb\xbf" + (line_end.join(rows)
                                        + (line_end if final_line_end else "")).encode())
    out = tmp_path / "r.csv"
    code, _, err = batch_on(engine, capsys, str(data), "-o", str(out), "-f", "jsonl",
                            falls_back="several lines")
    assert code == 0 and "E415" not in err
    results = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["id"], r["crisis"]) for r in results] == [("A", False), ("B", True)]
    assert "CRISIS: 1 row(s)" in err and "row 2: id B" in err


def test_quoted_values_ending_in_a_line_break_anywhere_in_a_long_file_are_read(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Every row ends in such a value, so wherever the reader stops between rows (it reads a
    few thousand at a time) it stops after one: none may be taken for a quote never closed."""
    data = tmp_path / "notes.csv"
    data.write_text("id,danger,comment\r\n" + "".join(
        f'P{i},{"yes" if i % 1000 == 999 else "no"},"note {i}\r\n"\r\n' for i in range(9000)),
        encoding="utf-8", newline="")
    out = tmp_path / "r.csv"
    code, _, err = batch_on(engine, capsys, str(data), "-o", str(out),
                            falls_back="several lines")
    assert code == 0 and "E415" not in err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == [f"P{i}" for i in range(9000)]
    assert "9000 row(s) screened" in err


@pytest.mark.slow_engines
@pytest.mark.parametrize("text", [
    'id,danger,comment\nA,no,ok\nB,no,"never closed\nC,no,x\nD,no,y\n',
    'id,danger,comment\nA,no,ok\nB,no,"never closed\nC,no,x\nD,no,y',  # no final line end
    'id,danger,comment\r\nA,no,ok\r\nB,no,"never closed\r\nC,no,x\r\nD,no,y\r\n',
    'id,danger,comment\nA,no,ok\nB,no,"never closed ""\nC,no,x\nD,no,y\n',
])
def test_a_quote_never_closed_is_refused_with_or_without_a_final_line_end(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str) -> None:
    """Row B's value would swallow rows C and D: the file is refused, nothing written."""
    data = tmp_path / "q.csv"
    data.write_bytes(text.encode())
    out = tmp_path / "r.csv"
    code, _, err = batch_on(engine, capsys, str(data), "-o", str(out),
                            falls_back="not read as the header says")
    assert code == 1 and f"{data}:3:1: error E415 malformed-csv" in err
    assert "never closed" in err and not out.exists() and not leftovers(tmp_path)


def test_quoted_line_breaks_keep_rows_and_lines_right(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "q.csv"
    data.write_text('id,comment,drinks\nA,"two\nlines",1\nB,ok,x\n"C,D",ok,2\n')
    errors = tmp_path / "e.csv"
    code, out, _ = batch_on(engine, capsys, str(data), "--errors", str(errors), falls_back=LINES)
    assert code == 1
    assert [r["id"] for r in csv.DictReader(io.StringIO(out))] == ["A", "B", "C,D"]
    problem = next(csv.DictReader(errors.open()))
    assert (problem["row"], problem["line"], problem["column"]) == ("2", "4", "drinks")


def test_progress_bar_only_on_a_terminal(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    shown: list[str] = []

    class Bar:
        def __init__(self, what: str, total: int | None):
            shown.append(what)

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def update(self, rows: int, done: int) -> None:
            pass

        def print(self, text: str, **options: Any) -> None:
            shown.append(text)  # lines printed while the bar shows go above it

    import iopscreen.cli_batch as cli_batch

    monkeypatch.setattr(cli_batch, "ProgressBar", Bar)
    args = ["batch", "-r", MINIMAL, str(MESSY), "--ignore-extra", "-o"]
    assert cli(capsys, *args, str(tmp_path / "a.csv"))[0] == 1  # (messy has bad rows)
    assert shown == []  # stderr is not a terminal here
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli(capsys, *args, str(tmp_path / "b.csv"))[0] == 1
    assert shown[0] == "screening messy.csv"
    assert shown[1].endswith("messy.csv: rows are identified by column 'Client ID'")
    shown.clear()
    assert cli(capsys, *args, str(tmp_path / "c.csv"), "--no-progress")[0] == 1
    assert shown == []


# ---------------------------------------------------- parallel and block reading = sequential


def messy_rows(n: int) -> str:
    """Rows with quoted values, CRLF, a quoted line break, stray quotes, blanks, errors, short
    and long rows and repeated ids."""
    lines = ["id,danger,danger_plan,mood_1,mood_2,mood_3,comment,drinks,concerns"]
    for i in range(n):
        comment = ('"said ""fine""\r\nthen left"' if i == n // 2
                   else '"late, again"' if i % 7 == 0 else '5" tall' if i % 13 == 0 else "")
        lines.append(",".join([f"P{i % (n - 5)}", ["no", "yes", "", "declined"][i % 4],
                               ["yes", "no", ""][i % 3], ["0", "Some days", "2", "9"][i % 4],
                               str(i % 3), "Often" if i % 5 else "", comment,
                               str(i % 40) if i % 11 else "many", "cost|time" if i % 6 else ""]))
        if i % 50 == 0:
            lines.append(",,,,,,,,")
        if i % 97 == 0:  # a short row (screened) and a long one (an error, checked for crisis)
            lines.append(f"S{i},yes,yes")
            lines.append(f"L{i},yes,yes,0,1,Often,,3,,extra")
    return "\r\n".join(lines) + "\r\n"


def run_all(rs: Ruleset, path: Path, jobs: int, fmt: str = "csv") -> tuple[str, list[Problem]]:
    out: list[str] = []
    problems: list[Problem] = []
    with open_source(str(path), None) as source:
        run_batch(rs, source, out.append, BatchOptions(fmt=fmt, jobs=jobs), problems.append)
    return "".join(out), problems


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_blocks_and_workers_give_what_one_reader_gives(monkeypatch: pytest.MonkeyPatch,
                                                       rs: Ruleset, tmp_path: Path,
                                                       fmt: str) -> None:
    data = tmp_path / "m.csv"
    data.write_bytes(messy_rows(1200).encode("utf-8"))
    monkeypatch.setattr(batch, "BLOCK_CHARS", 10 ** 9)  # one block: the csv reader reads all
    expected = run_all(rs, data, 1, fmt)
    monkeypatch.setattr(batch, "BLOCK_CHARS", 997)
    monkeypatch.setattr(batch, "PARALLEL_MIN_CHARS", 2000)
    for jobs in (1, 2, 3):
        assert run_all(rs, data, jobs, fmt) == expected
    assert len(expected[1]) > 100 and '"' in data.read_text()
    codes = [p.code for p in expected[1]]
    assert codes.count("W413") == 13 and codes.count("E410") == 13  # short and long rows


def test_blocks_bigger_than_a_pipe_reach_the_workers_without_a_deadlock(
        monkeypatch: pytest.MonkeyPatch, rs: Ruleset, tmp_path: Path) -> None:
    """Blocks and results many times the pipes' size: the reader feeds the task pipes a part at
    a time while it reads results, so neither process waits on the other for good (this hung
    now and then when free pipe space was counted in bytes; pytest-timeout fails a hang)."""
    data = tmp_path / "m.csv"
    data.write_bytes(messy_rows(1200).encode("utf-8"))
    expected = run_all(rs, data, 1)
    monkeypatch.setattr(batch._Workers, "PIPE_BYTES", 4096)  # the smallest pipe Linux makes
    monkeypatch.setattr(batch, "PARALLEL_MIN_CHARS", 2000)
    given = []
    real_give = batch._Workers.give

    def give(self: batch._Workers, item: batch._Block) -> bool:
        given.append(real_give(self, item))
        return given[-1]

    monkeypatch.setattr(batch._Workers, "give", give)
    waiting = []  # blocks waiting to be written, each time the oldest is written
    real_settle = batch._Run._settle

    def settle(self: batch._Run, pending: Any) -> bool:
        waiting.append(len(pending))
        return real_settle(self, pending)

    monkeypatch.setattr(batch._Run, "_settle", settle)
    for size in (1500, 9000, 40000):  # blocks that fit a pipe, and blocks that do not
        monkeypatch.setattr(batch, "BLOCK_CHARS", size)
        given.clear()
        assert run_all(rs, data, 2) == expected
        assert given and all(given)  # every block went to a worker
    # memory stays bounded: no more blocks wait than the workers may hold
    assert max(waiting) <= (batch._Workers.DEPTH + 1) * 2


def test_a_failing_worker_fails_the_run_with_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                           rs: Ruleset, tmp_path: Path) -> None:
    data = tmp_path / "m.csv"
    data.write_bytes(messy_rows(1200).encode("utf-8"))
    monkeypatch.setattr(batch, "BLOCK_CHARS", 997)
    monkeypatch.setattr(batch, "PARALLEL_MIN_CHARS", 2000)

    class Unsendable(Exception):  # a local class cannot be pickled back to the reader
        pass

    def broken(self: batch.RowScreener, *args: Any) -> batch.Chunk:
        raise Unsendable("boom")

    monkeypatch.setattr(batch.RowScreener, "screen", broken)
    with pytest.raises(batch.IopscreenError, match="internal error in a worker process: "
                                                   "Unsendable"):
        run_all(rs, data, 2)


def test_lone_carriage_returns_are_read_as_line_ends(monkeypatch: pytest.MonkeyPatch,
                                                     rs: Ruleset, tmp_path: Path) -> None:
    data = tmp_path / "mac.csv"
    data.write_bytes(b"id,danger,danger_plan\rA,yes,yes\rB,no,\r")
    monkeypatch.setattr(batch, "BLOCK_CHARS", 8)
    text, problems = run_all(rs, data, 1)
    assert [line.split(",")[1] for line in text.splitlines()[1:]] == ["A", "B"]
    assert problems == []


LINE_CELLS = ["a", "", "b c", '"q, 1"', '"say ""hi"""', '""']


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(LINE_CELLS), min_size=1, max_size=4), max_size=12),
       final_newline=st.booleans())
def test_split_lines_reads_what_a_csv_reader_reads(lines: list[list[str]],
                                                   final_newline: bool) -> None:
    """Blocks are split line by line, quoted lines by a csv reader: the records are exactly
    those a csv reader gives, whatever mix of quoted, plain and blank lines."""
    text = "\n".join(",".join(cells) for cells in lines) + ("\n" if final_newline else "")
    if not final_newline and lines and lines[-1] == [""]:
        text += "\n"  # a last blank line without its line end is no line at all
    expected = [r if r else [""] for r in csv.reader(io.StringIO(text, newline=""))]
    assert list(batch._split_lines(text, ",")) == expected


def test_split_lines_refuses_a_line_that_is_not_one_record() -> None:
    with pytest.raises(batch._NotOneLine):
        list(batch._split_lines('a,b\n"open,c\nd"\n', ","))


# ------------------------------------------------------------ batch = screening row by row

CELLS = {
    "danger": ["yes", "no", "Y", "N", "TRUE", "false", "1", "0", "", "declined", "maybe"],
    "danger_plan": ["yes", "no", "", "Refused", "nope"],
    "mood_1": ["0", "1", "2", "Not at all", "some days", "MOST DAYS", "", "3", "declined"],
    "mood_2": ["0", "1", "2", "Some days", "", " 2 "],
    "mood_3": ["0", "1", "2", "Never", "Often", "", "sometimes"],
    "trauma": ["yes", "no", ""],
    "tr_1": ["yes", "no", "", "t"],
    "tr_2": ["yes", "no", ""],
    "sex": ["male", "female", "Male", "", "other"],
    "drinks": ["0", "7", "10", "12", "100", "101", "-1", "", "8.0", "ten", "declined"],
    "concerns": ["cost", "time", "cost|time", "Cost; Time", "none", "", "money", "time,cost"],
    "comment": ["", "ok", "a;b", 'said "no"', "declined"],
}
row_strategy = st.fixed_dictionaries({q: st.sampled_from(v) for q, v in CELLS.items()})


def expected_row(rs: Ruleset, cells: dict[str, str]) -> dict[str, Any]:
    """What screening this row on its own gives: the engine on its valid cells."""
    valid: dict[str, str] = {}
    bad = []
    for q, text in cells.items():
        try:
            coerce_answers(rs, {q: text})
            valid[q] = text
        except Exception:  # noqa: BLE001 - an invalid cell: reported, screened as unanswered
            bad.append(q)
    result = screen(rs, coerce_answers(rs, valid))
    return {
        "status": "error" if bad else "ok", "level": result.level, "crisis": result.crisis,
        "flags": list(result.flag_ids), "provisional": result.provisional,
        "possible_level": result.possible_level, "deciding_questions": list(result.deciding),
        "fired_rules": [r.id for r in result.fired],
        "misconceptions": [m.id for m in result.misconceptions],
        **{f"{s.id}_score": s.score for s in result.scores},
        **{f"{s.id}_band": s.band for s in result.scores},
        "ignored_answers": list(result.ignored),
        "errors": [q for q in QUESTIONS if q in bad],
    }


def test_batch_equals_screening_each_row_on_its_own(engine: Engine, tmp_path: Path) -> None:
    """Each engine's batch result for a row is what the engine gives that row on its own."""
    rs = load_ruleset(DATA / "minimal.yaml")
    screened = []

    # Few files of many rows: a SQL engine's run costs most in building its query.
    @settings(max_examples=10 if engine.name == "python" else 5, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(rows=st.lists(row_strategy, min_size=40, max_size=150))
    def check(rows: list[dict[str, str]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
        writer.writerow(["id", *QUESTIONS])
        for i, row in enumerate(rows):
            writer.writerow([f"R{i}", *(row[q] for q in QUESTIONS)])
        data, out = tmp_path / "rows.csv", tmp_path / "out.jsonl"
        data.write_bytes(text.getvalue().encode("utf-8-sig"))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            run(["batch", "-r", MINIMAL, str(data), "-o", str(out), "--force", "-f", "jsonl",
                 "--no-progress", *engine.args])
        screened.append(not FALLBACK.search(err.getvalue()))
        got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert len(got) == len(rows)
        for i, (row, obj) in enumerate(zip(rows, got)):
            want = expected_row(rs, row)
            assert obj["row"] == i + 1 and obj["id"] == f"R{i}"
            assert [e["column"] for e in obj.pop("errors")] == want.pop("errors")
            assert {k: obj[k] for k in want} == want, row

    check()
    assert sum(screened) >= len(screened) // 2  # the engine itself screened most files


# ------------------------------------------------------------------------------ template


def test_template_and_data_dictionary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "responses.csv"
    code, _, err = cli(capsys, "template", "-r", MINIMAL, "-o", str(target))
    assert code == 0
    assert target.read_text() == "id," + ",".join(QUESTIONS) + "\n"
    dictionary = tmp_path / "responses.dictionary.csv"
    raw = dictionary.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel shows labels right
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["column"] for r in rows] == ["id", *QUESTIONS]
    mood = next(r for r in rows if r["column"] == "mood_1")
    assert mood["type"] == "choice" and mood["allowed_values"] == \
        "0=Not at all; 1=Some days; 2=Most days"
    assert mood["required"] == "yes" and mood["question"] == "Low mood?"
    drinks = next(r for r in rows if r["column"] == "drinks")
    assert drinks["range"] == "0-100" and drinks["type"] == "integer"
    plan = next(r for r in rows if r["column"] == "danger_plan")
    assert plan["asked_when"] == "danger"
    assert next(r for r in rows if r["column"] == "sex")["required"] == "no"
    assert "blank = unanswered" in mood["notes"] and "declined" in mood["notes"]
    assert "responses.dictionary.csv" in err
    # the template is what batch expects: filled in, it screens without --ignore-extra
    with target.open("a") as handle:
        handle.write("P1,yes,yes" + "," * (len(QUESTIONS) - 2) + "\n")
    code, out, _ = batch_cli(capsys, str(target))
    assert code == 0 and ",high,true,false,crisis," in out
    code, _, err = cli(capsys, "template", "-r", MINIMAL, "-o", str(target))
    assert code == 2 and "already exists" in err


def test_template_to_stdout_with_semicolons(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "template", "-r", MINIMAL, "-d", ";", "--id-column", "client")
    assert code == 0 and out == "client;" + ";".join(QUESTIONS) + "\n"


def test_atomic_output_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    with pytest.raises(RuntimeError):
        with AtomicOutput(target) as handle:
            handle.write("half")
            raise RuntimeError("boom")
    assert not target.exists() and os.listdir(tmp_path) == []


def test_a_killed_run_s_temporary_files_are_removed_by_the_next_run(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """kill -9 leaves the temporary results and errors files (they hold answers); their names
    carry the pid, so the next run writing beside them removes them and says so."""
    out, errors = tmp_path / "out.csv", tmp_path / "problems.csv"
    command = str(Path(sys.executable).parent / "iopscreen")
    child = subprocess.Popen([command, "batch", "-r", MINIMAL, "-", "-o", str(out), "--errors",
                              str(errors), "--no-progress", "-j", "1"],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    assert child.stdin is not None and child.stderr is not None
    # More than the first block, so the header is read and noted on stderr; the input stays
    # open, so the run waits for the rest with both temporary files open.
    child.stdin.write(("id,danger\n" + "P,no\n" * (batch.BLOCK_CHARS // 5 + 1)).encode())
    child.stdin.flush()
    assert b"rows are identified by column 'id'" in child.stderr.readline()
    left = leftovers(tmp_path)
    assert sorted(name.split(".")[1:3] for name in left) == [
        ["out", "csv"], ["problems", "csv"]]
    assert all(name.split(".")[3] == str(child.pid) for name in left)
    child.kill()
    child.wait()
    child.stdin.close()
    child.stderr.close()
    assert leftovers(tmp_path) == left and not out.exists()  # what kill -9 leaves
    live = tmp_path / f".out.csv.{os.getpid()}.abcdefgh.tmp"  # a run still writing: kept
    live.write_text("")
    data = write_csv(tmp_path / "in.csv", [["A", "no", ""]], header=["id", "danger",
                                                                     "danger_plan"])
    code, _, err = batch_cli(capsys, str(data), "-o", str(out), "--errors", str(errors))
    assert code == 0 and out.exists() and errors.exists()
    assert leftovers(tmp_path) == [live.name]
    assert err.count("removed 2 temporary file(s) left by an earlier run that was killed: ") == 1
    assert all(str(tmp_path / name) in err for name in left)
    code, _, err = batch_cli(capsys, str(data), "-o", str(out), "--force")
    assert code == 0 and "removed" not in err and leftovers(tmp_path) == [live.name]


@pytest.mark.slow_engines
def test_save_keeps_each_valid_row_as_a_record(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    code, _, err = batch_on(engine, capsys, str(MESSY), "--ignore-extra", "-o",
                            str(tmp_path / "r.csv"),
                            "--save", "--db", str(db), "--counselor", "ana", falls_back=MESSY_READ)
    assert code == 1
    assert "saved 7 new record(s)" in err and "not saved: 2 row(s) with errors" in err  # the short row is saved
    code, out, _ = cli(capsys, "records", "show", "1", "--db", str(db), "--format", "json",
                       "-r", MINIMAL)
    record = json.loads(out)
    assert record["source"] == "batch" and record["counselor"] == "ana"
    results = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    first_ok = next(r for r in results if r["status"] == "ok")
    assert record["client"] == first_ok["Client ID"]
    assert record["result"]["level"] == first_ok["level"]


def test_save_leaves_out_rows_without_an_id(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", [["A", "no"], ["", "yes"], ["C", "maybe"]],
                     header=["id", "danger"])
    db = tmp_path / "records.db"
    code, _, err = batch_on(engine, capsys, str(data), "-o", str(tmp_path / "r.csv"), "--save",
                            "--db", str(db))
    assert code == 1
    assert ("saved 1 new record(s)" in err and "not saved: 1 row(s) with errors" in err
            and "not saved: 1 row(s) without an id" in err)
    code, out, _ = cli(capsys, "records", "show", "1", "--db", str(db), "--format", "json",
                       "-r", MINIMAL)
    assert code == 0 and json.loads(out)["client"] == "A"
    code, _, _ = cli(capsys, "records", "show", "2", "--db", str(db), "-r", MINIMAL)
    assert code != 0  # no second record


def test_save_needs_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = batch_cli(capsys, "-", "--save", "--db", str(tmp_path / "r.db"))
    assert code == 2 and "--save needs an input file" in err


def test_choice_aliases_are_read_in_batch_and_listed_in_the_dictionary(
        engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The default rule set's `sex` aliases (M, F, man, woman, any case) screen like the codes
    on every engine, and the data dictionary lists them beside each code."""
    data = tmp_path / "sex.csv"
    data.write_text("id,sex,audit_c_1,audit_c_2,audit_c_3\n"
                    "A,M,1,1,1\nB,F,1,1,1\nC, woman ,1,1,1\nD,MAN,2,1,1\nE,male,1,1,1\n"
                    "G,g,1,1,1\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    code, _, err = default_on(engine, capsys, str(data), "-o", str(out), "--ignore-extra")
    assert code == 1 and "rows with errors: 1" in err  # G only
    assert "male=Male (also M, man), female=Female (also F, woman)" in err  # the hint
    rows = {r["id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["G"]["errors"] and not any(rows[k]["errors"] for k in "ABCDE")
    # AUDIT-C 3: negative for a man (cutoff 4), positive for a woman (cutoff 3)
    positive = {k: "alcohol_positive" in rows[k]["fired_rules"] for k in "ABCDE"}
    assert positive == {"A": False, "B": True, "C": True, "D": True, "E": False}
    code, _, _ = cli(capsys, "template", "-o", str(tmp_path / "t.csv"))
    assert code == 0
    dictionary = list(csv.DictReader(io.StringIO(
        (tmp_path / "t.dictionary.csv").read_text(encoding="utf-8-sig"))))
    sex = next(r for r in dictionary if r["column"] == "sex")
    assert sex["allowed_values"] == ("male=Male (also M, man); female=Female (also F, woman); "
                                     "other=Another answer, or prefer not to say")
