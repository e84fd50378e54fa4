"""``iopscreen batch`` and ``iopscreen template``: options in, :mod:`iopscreen.batch` does the work.

Registered on the app by the import at the bottom of :mod:`iopscreen.cli`, which owns the exit
codes; this module only turns options into calls and renders the summary on stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack, contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Optional, Sequence

import typer
from rich.console import Console

from . import batch, batch_input, batch_output
from .batch import BatchOptions, Problem, Tally
from .cli import EXIT_DATA, EXIT_OK, DbOpt, RulesetOpt, app, open_ruleset, store_notice
from .console import ProgressBar, make_console
from .errors import Interrupted, IopscreenError, UsageError
from .files import AtomicOutput, write_text_atomic
from .ruleset.model import Ruleset

PROBLEMS_SHOWN = 20  # problems listed on stderr; all of them go to --errors
SAME_CODE_SHOWN = 3  # of them with one code (an export that trims empty cells warns every row)
ROWS_NAMED = 5  # rows named on the line that counts a code's other problems


class Engine(str, Enum):
    python = "python"
    duckdb = "duckdb"
    spark = "spark"


class OutputFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"
    json = "json"
    parquet = "parquet"


def parse_delimiter(text: Optional[str]) -> Optional[str]:
    """``--delimiter`` as a character (None: sniff). Raises :class:`UsageError`."""
    if text is None:
        return None
    found = batch_input.DELIMITERS.get(text.lower() if len(text) > 1 else text)
    if found is None:
        raise UsageError(f"--delimiter '{text}' is not supported",
                         hint="use ',', ';', tab (or '\\t') or '|'")
    return found


def default_jobs() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


@app.command("batch")
def batch_command(
    input_file: str = typer.Argument(..., metavar="INPUT", help="CSV file of responses, one "
                                                               "row each; - reads stdin. "
                                                               "With --engine spark: any "
                                                               "path Spark reads, CSV or "
                                                               "*.parquet."),
    output: str = typer.Option("-", "--output", "-o", metavar="FILE", show_default=False,
                               help="Result file (default: stdout). With --engine spark, a "
                                    "URL or a path ending in / is a dataset folder Spark "
                                    "writes."),
    fmt: Optional[OutputFormat] = typer.Option(
        None, "--format", "-f", show_default=False,
        help="Result format: csv, jsonl, json or parquet (parquet: with --engine duckdb or "
             "spark; default: parquet for -o NAME.parquet, else csv)."),
    ruleset_path: Optional[Path] = RulesetOpt,
    errors_file: Optional[str] = typer.Option(
        None, "--errors", "-e", metavar="FILE",
        help="Write every problem (row, line, id, column, code, message) to this CSV file "
             "(- for stdout, when the results go to a file)."),
    id_column: Optional[str] = typer.Option(
        None, "--id-column", metavar="NAME", help="Column that identifies a row (default: a "
                                                  "column named id, client_id, ... or ending in "
                                                  "_id)."),
    ignore_extra: bool = typer.Option(False, "--ignore-extra",
                                      help="Skip columns that are not questions."),
    delimiter: Optional[str] = typer.Option(
        None, "--delimiter", "-d", metavar="CHAR", help="Field separator: ',', ';', tab or '|' "
                                                        "(default: found from the header)."),
    encoding: Optional[str] = typer.Option(
        None, "--encoding", metavar="NAME", help="Input encoding (default: UTF-8 with or "
                                                 "without BOM, or UTF-16 with BOM), e.g. "
                                                 "cp1252."),
    show_values: bool = typer.Option(False, "--show-values",
                                     help="Include answer values in problem messages."),
    allow_dropped_safety: bool = typer.Option(
        False, "--allow-dropped-safety",
        help="Exit 0 even when skip logic left out an answer to a safety question (the rows "
             "still have safety_review=true and are listed)."),
    raw_csv: bool = typer.Option(False, "--raw-csv",
                                 help="Write cells that start with = + - @ as they are (by "
                                      "default they get a leading ' so that a spreadsheet "
                                      "does not run them as formulas)."),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Never show a progress bar."),
    jobs: int = typer.Option(0, "--jobs", "-j", min=0, metavar="N", show_default=False,
                             help="Processes for large inputs (default: one per core; 1: "
                                  "none)."),
    save: bool = typer.Option(False, "--save", help="Also keep each valid row as a record in "
                              "the record store (client = the row's id)."),
    counselor: str = typer.Option("", "--counselor", help="Counselor's name or id, for --save."),
    db: Optional[Path] = DbOpt,
    engine: Engine = typer.Option(Engine.python, "--engine", help="python: the engine itself, "
                                  "row by row; duckdb: the rule set's SQL on an embedded "
                                  "DuckDB (inputs it cannot read exactly as python does, e.g. "
                                  "with quoted values, go to python, with a note); spark: "
                                  "the rule set's Spark SQL on PySpark (pip install "
                                  "'iopscreen[spark]')."),
    master: Optional[str] = typer.Option(None, "--master", metavar="URL",
                                         help="With --engine spark: Spark's master (default "
                                              "local[*]; e.g. spark://host:7077, yarn)."),
    duckdb_memory: str = typer.Option(
        "256MB", "--duckdb-memory", metavar="SIZE",
        help="DuckDB's memory limit (above it, it spills into a private temporary folder)."),
    duckdb_threads: int = typer.Option(0, "--duckdb-threads", min=0, metavar="N",
                                       show_default=False,
                                       help="DuckDB's threads (default: one per core)."),
) -> None:
    """Screen every row of a CSV file of responses; one result row per input row.

    Columns are question ids (see 'iopscreen template'); cells take the same answers as
    'evaluate': yes/no, a code or its label, a number, a|b for several, 'declined', or blank
    for unanswered. A summary goes to stderr, crisis rows first, then the rows to check
    against the source for safety (malformed rows, safety answers skip logic dropped). Exit 0
    when every row screened, 1 when some rows had errors (the others are still written) or a
    safety answer was dropped, 3 for a bad rule set.

    Example: iopscreen batch responses.csv -o results.csv --errors problems.csv
    """
    fmt_name = fmt.value if fmt else ("parquet" if output.lower().rstrip("/").endswith(
        ".parquet") else "csv")
    on_spark = engine is Engine.spark
    folder = output if on_spark and output != "-" and _spark().is_folder_output(output) else None
    _check_engine_options(engine, input_file, encoding, save, master)
    _check_parquet(input_file, output, fmt_name, engine, save)
    options = BatchOptions(fmt=fmt_name, delimiter=parse_delimiter(delimiter),
                           id_column=id_column, ignore_extra=ignore_extra,
                           show_values=show_values, jobs=jobs or default_jobs(),
                           raw_csv=raw_csv)
    batch_input.resolve_encoding(encoding)
    if save and input_file == "-":
        raise UsageError("--save needs an input file, not standard input",
                         hint="save the CSV to a file first; rows are re-read to be saved")
    if errors_file == "-" and output == "-":
        raise UsageError("the results and the problems cannot both go to stdout",
                         hint="give the results a file with -o, or the problems one with -e")
    batch_output.check_paths(input_file, [("output", None if folder else output),
                                          ("errors file", errors_file)], force)
    ruleset = open_ruleset(ruleset_path)
    # Spark reads URLs and folders (Parquet datasets) itself; a local file is opened here too,
    # so that one Spark does not read as python does can go to the python engine
    remote = on_spark and (_spark().is_url(input_file) or Path(input_file).is_dir())
    source = (None if remote else
              batch_input.open_source(input_file, encoding, stdin=sys.stdin.buffer))
    name = source.name if source is not None else input_file
    shown = ShownProblems()
    out_file = (AtomicOutput(Path(output), clean_stale=True) if output != "-" and not folder
                else None)
    err_file = (AtomicOutput(Path(errors_file), clean_stale=True)
                if errors_file and errors_file != "-" else None)
    wrote_stdout = [False]  # set once anything (results or problems) went to stdout

    def write_stdout(text: str) -> None:
        wrote_stdout[0] = wrote_stdout[0] or bool(text)
        sys.stdout.write(text)

    with source or nullcontext(), ExitStack() as stack:
        stack.enter_context(_stop_signals_interrupt())
        write = stack.enter_context(out_file).write if out_file else write_stdout
        err_handle = stack.enter_context(err_file) if err_file else None
        _say_removed([f for f in (out_file, err_file) if f])
        sink = (batch_output.ProblemWriter(err_handle, raw_csv) if err_handle
                else batch_output.ProblemWriter(SimpleNamespace(write=write_stdout), raw_csv)
                if errors_file == "-" else None)

        def on_problem(problem: Problem) -> None:
            if sink is not None:
                sink(problem)
            shown.add(problem)

        try:
            copy_to = out_file.temporary if out_file else None
            if on_spark:
                tally = _run_spark(ruleset, input_file, source, write, options, on_problem,
                                   master, copy_to, folder, force)
            else:
                assert source is not None
                tally = _run(ruleset, source, write, options, on_problem, no_progress,
                             _duck_options(engine, duckdb_memory, duckdb_threads), copy_to)
        except KeyboardInterrupt:
            kept = " and ".join(f"'{f.path}'" for f in (out_file, err_file) if f)
            make_console(stderr=True).print(
                "interrupted: " + (f"nothing written ({kept} as before)" if kept else
                                   "the output is incomplete"), markup=False, soft_wrap=True)
            raise Interrupted("interrupted") from None
        except BrokenPipeError:  # e.g. piped into `head`: stop quietly, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            make_console(stderr=True).print("stopped: the reader of the output went away",
                                            markup=False)
            raise Interrupted("stopped") from None
        except OSError as exc:
            raise UsageError(f"cannot read or write: {exc.strerror or exc}",
                             hint="check free disk space and permissions") from None
        except IopscreenError:
            if wrote_stdout[0]:  # stdout cannot be taken back; say so (files are renamed
                # into place only at the end: see AtomicOutput)
                sys.stdout.flush()
                make_console(stderr=True).print(
                    "stopped: the output on stdout is incomplete (it holds the rows before the "
                    "problem below)", markup=False, soft_wrap=True)
            raise
        for done in (out_file, err_file):  # only now, after every row: nothing half-written
            if done is not None:
                done.commit()
        if out_file is None:
            sys.stdout.flush()
    _print_summary(ruleset, name, output, errors_file, tally, shown, allow_dropped_safety)
    if save:
        _save(ruleset, input_file, encoding, options, counselor, db)
    raise typer.Exit(EXIT_DATA if tally.error_rows or (tally.dropped_safety and not
                                                       allow_dropped_safety) else EXIT_OK)


def _check_parquet(input_file: str, output: str, fmt: str, engine: Engine, save: bool) -> None:
    """Parquet is read and written by the SQL engines only. Raises :class:`UsageError`."""
    from .batch_duckdb import is_parquet

    parquet_in = input_file != "-" and is_parquet(Path(input_file))
    if fmt == "parquet" and output == "-":
        raise UsageError("Parquet results need a file, not stdout",
                         hint="give one with -o results.parquet")
    if (fmt == "parquet" or parquet_in) and engine is Engine.python:
        raise UsageError("Parquet " + ("input is read" if parquet_in else "results are written")
                         + " by --engine duckdb or spark, not python",
                         hint="use --engine duckdb")
    if parquet_in and save:
        raise UsageError("--save reads the rows again from a CSV input, not Parquet",
                         hint="save a CSV export of the file, or leave out --save")


def _say_removed(outputs: Sequence[AtomicOutput]) -> None:
    """One line on stderr naming the temporary files of killed runs removed beside the
    outputs (they held answers)."""
    removed = [p for f in outputs for p in f.removed]
    if removed:
        make_console(stderr=True).print(
            f"removed {len(removed)} temporary file(s) left by an earlier run that was killed: "
            + ", ".join(map(str, removed)), markup=False, soft_wrap=True)


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While batch runs, SIGTERM and SIGHUP (a closed terminal) stop it as Ctrl-C does: the
    temporary files are removed and nothing is half-written."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = [(sig, signal.signal(sig, stop)) for sig in batch.STOP_SIGNALS]
    try:
        yield
    finally:
        for sig, handler in previous:
            signal.signal(sig, handler)


def _save(ruleset: Ruleset, input_file: str, encoding: Optional[str], options: BatchOptions,
          counselor: str, db: Optional[Path]) -> None:
    from .batch_save import SaveCount, save_rows
    from .store import StoreError, open_store, resolve_db_path, utc_now

    err = make_console(stderr=True)
    done = [SaveCount(0, 0, 0)]
    try:
        with open_store(resolve_db_path(db), now=utc_now, on_wait=store_notice(err)) as store:
            count = save_rows(ruleset, input_file, store, encoding=encoding,
                              delimiter=options.delimiter, id_column=options.id_column,
                              ignore_extra=options.ignore_extra, counselor=counselor,
                              on_chunk=lambda so_far: done.__setitem__(0, so_far))
    except StoreError as exc:
        # The chunks saved so far stay saved; a rerun skips them (same client and answers).
        raise StoreError(f"{exc.message}; {done[0].saved} new record(s) were saved before it",
                         hint=f"{exc.hint}; then run the same 'iopscreen batch ... --save' "
                              "again: rows already saved are skipped") from None
    skipped = "".join(
        f"; not saved: {n} row(s) {why}" for n, why in (
            (count.already_saved, "already saved (same client, rule set and answers)"),
            (count.skipped_invalid, "with errors"),
            (count.skipped_no_id, "without an id (no client to file them under)")) if n)
    err.print(f"saved {count.saved} new record(s) in {store.path}{skipped}", markup=False,
              soft_wrap=True)


def _spark() -> Any:
    from . import batch_spark

    return batch_spark


def _check_engine_options(engine: Engine, input_file: str, encoding: Optional[str], save: bool,
                          master: Optional[str]) -> None:
    """Refuse the options --engine spark alone has, or cannot honour. Raises
    :class:`UsageError`."""
    if engine is not Engine.spark:
        if master is not None:
            raise UsageError("--master is for --engine spark", hint="add --engine spark")
        return
    if input_file == "-":
        raise UsageError("--engine spark reads a file, not standard input",
                         hint="save the input to a file first, or use --engine python")
    if encoding and batch_input.resolve_encoding(encoding) != "utf-8-sig":
        raise UsageError("--engine spark reads UTF-8 only",
                         hint="save the file as 'CSV UTF-8', or use --engine python with "
                              "--encoding")
    if save and _spark().is_url(input_file):
        raise UsageError("--save needs a local input file", hint="copy the file here first")


def _run_spark(ruleset: Ruleset, input_file: str, source: Optional[batch_input.Source],
               write: Callable[[str], object], options: BatchOptions,
               on_problem: Callable[[Problem], None], master: Optional[str],
               copy_to: Optional[Path], folder: Optional[str], force: bool) -> Tally:
    """Screen on Spark; a local CSV file Spark does not read as Python does goes to the
    python engine, with a note (as --engine duckdb does)."""
    from .batch_duckdb import Unsuitable
    from .batch_spark import SparkOptions, run_spark

    err = make_console(stderr=True)
    name = source.name if source is not None else input_file

    def on_layout(layout: batch_input.Layout) -> None:
        _print_layout_notes(layout, name, err.print)

    try:
        return run_spark(ruleset, input_file, options, on_problem, SparkOptions(master),
                         write=write, copy_to=copy_to, folder=folder, force=force,
                         local_file=(source is not None and folder is None
                                     and options.fmt != "parquet"),
                         on_layout=on_layout)
    except Unsuitable as why:
        err.print(f"note: --engine spark: {name} is screened by the python engine "
                  f"({why.reason})", markup=False, soft_wrap=True)
    assert source is not None
    return batch.run_batch(ruleset, source, write, options, on_problem, on_layout=on_layout)


def _duck_options(engine: Engine, memory: str, threads: int) -> Optional[object]:
    """DuckDB's settings when ``engine`` is duckdb, else None."""
    if engine is not Engine.duckdb:
        return None
    from .batch_duckdb import DuckOptions

    return DuckOptions(memory or None, threads or None)


def _run(ruleset: Ruleset, source: batch_input.Source, write: Callable[[str], object],
         options: BatchOptions, on_problem: Callable[[Problem], None], no_progress: bool,
         duck: Optional[object] = None, copy_to: Optional[Path] = None) -> Tally:
    if duck is not None:
        from .batch_duckdb import Unsuitable, run_duckdb

        err = make_console(stderr=True)
        try:
            return run_duckdb(ruleset, source, write, options, on_problem, duck,  # type: ignore[arg-type]
                              on_layout=lambda layout: _print_layout_notes(
                                  layout, source.name, err.print), copy_to=copy_to)
        except Unsuitable as why:
            if options.fmt == "parquet":
                raise UsageError(f"{source.name} cannot be written as Parquet: DuckDB cannot "
                                 f"read it exactly as the python engine does ({why.reason})",
                                 hint="write csv, jsonl or json (the python engine screens "
                                      "it then)") from None
            err.print(f"note: --engine duckdb: {source.name} is screened by the python engine "
                      f"({why.reason})", markup=False, soft_wrap=True)
    if no_progress or not sys.stderr.isatty():
        err = make_console(stderr=True)
        return batch.run_batch(ruleset, source, write, options, on_problem, on_layout=lambda
                               layout: _print_layout_notes(layout, source.name, err.print))
    with ProgressBar(f"screening {Path(source.name).name}", source.size) as bar:

        def on_layout(layout: batch_input.Layout) -> None:
            _print_layout_notes(layout, source.name, bar.print)

        last = [0.0]

        def progress(rows: int, done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1:
                last[0] = now
                bar.update(rows, done)

        return batch.run_batch(ruleset, source, write, options, on_problem,
                               on_layout=on_layout, progress=progress)


def _print_layout_notes(layout: batch_input.Layout, source: str,
                        say: Callable[..., object]) -> None:
    """What the header told us, one line each through ``say`` (a console's or the progress
    bar's print)."""
    if layout.id_index is not None:
        say(f"{source}: rows are identified by column '{layout.id_name}'", markup=False,
            soft_wrap=True)
    else:
        say(f"{source}: no id column found; rows are identified by number "
            "(name one with --id-column)", markup=False, soft_wrap=True)
    if layout.ignored:
        say(f"{source}: ignoring {len(layout.ignored)} column(s) that are not questions: "
            f"{_listed(layout.ignored)}", markup=False, soft_wrap=True)
    if layout.missing:
        say(f"{source}: {len(layout.missing)} question(s) have no column and count as "
            f"unanswered: {_listed(layout.missing)}", markup=False, soft_wrap=True)


def _listed(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _print_rows(err: Console, rows: list[tuple[int, str, str]], total: int, where: str) -> None:
    """The rows of a summary list, one a line, with a count of those not listed."""
    for row, rid, note in rows:
        who = f"id {rid}" if rid else "no id"
        err.print(f"  row {row}: {who}" + (f": {note}" if note else ""), style="bold",
                  markup=False, soft_wrap=True)
    if total > len(rows):
        err.print(f"  ... and {total - len(rows)} more ({where})", markup=False,
                  soft_wrap=True)


def _print_summary(ruleset: Ruleset, source: str, output: str, errors_file: Optional[str],
                   tally: Tally, shown: ShownProblems, allow_dropped_safety: bool) -> None:
    """The end-of-run summary on stderr: crisis rows first, then counts, then problems."""
    err = make_console(stderr=True)
    if tally.crisis:
        err.print(f"!!! CRISIS: {tally.crisis} row(s) - {ruleset.crisis.title} !!!",
                  style="bold white on red", markup=False, soft_wrap=True)
        _print_rows(err, tally.crisis_rows, tally.crisis, "column 'crisis' of the results")
    if tally.review:
        err.print(f"!!! SAFETY REVIEW: {tally.review} row(s) may hold a crisis answer that was "
                  "not screened: check them against the source !!!", style="bold red",
                  markup=False, soft_wrap=True)
        _print_rows(err, tally.review_rows, tally.review,
                    "column 'safety_review' of the results")
    where = "stdout" if output == "-" else output
    err.print(f"{source}: {tally.rows} row(s) screened with {ruleset.id} {ruleset.version} "
              f"-> {where}", markup=False, soft_wrap=True)
    width = max(len(lv.label) for lv in ruleset.levels)
    for lv, count in zip(ruleset.levels, tally.levels):
        err.print(f"  {lv.label:<{width}}  {count:>8}", markup=False, soft_wrap=True)
    if tally.provisional:
        err.print(f"  provisional: {tally.provisional} (unanswered or declined questions could "
                  "change the result; see deciding_questions)", markup=False, soft_wrap=True)
    if tally.error_rows:
        err.print(f"  rows with errors: {tally.error_rows} (not counted above; fix them and "
                  "rerun)", style="red", markup=False, soft_wrap=True)
    if tally.dropped_safety:
        err.print(f"  rows with a safety answer left out by skip logic: {tally.dropped_safety}"
                  + (" (allowed by --allow-dropped-safety)" if allow_dropped_safety else
                     " (exit code 1; --allow-dropped-safety accepts them)"),
                  style="red", markup=False, soft_wrap=True)
    if tally.blank:
        err.print(f"  blank rows skipped: {tally.blank}", markup=False, soft_wrap=True)
    if tally.codes:
        counts = ", ".join(f"{code} x{n}" for code, n in sorted(tally.codes.items()))
        err.print(f"problems: {tally.errors} error(s), {tally.warnings} warning(s) ({counts})"
                  + (f" -> {'stdout' if errors_file == '-' else errors_file}" if errors_file
                     else ""), markup=False, soft_wrap=True)
    if shown.problems and not errors_file:
        hinted: set[tuple[str, str]] = set()
        for p in shown.problems:
            who = f" (id {p.id})" if p.id else ""
            col = f", column {p.column}" if p.column else ""
            err.print(f"{source}:{p.line}: {p.level} {p.code} {p.name}: row {p.row}{who}{col}: "
                      f"{p.message}", style="red" if p.level == "error" else "yellow",
                      markup=False, soft_wrap=True)
            if p.hint and (p.code, p.hint) not in hinted:  # each different hint once
                hinted.add((p.code, p.hint))
                err.print(f"  hint: {p.hint}", markup=False, soft_wrap=True)
        for (code, name), rows in shown.others.items():
            count = tally.codes[code] - shown.per_code[code]
            named = ", ".join(map(str, rows)) + (", ..." if count > len(rows) else "")
            err.print(f"  {code} {name}: {count} more ({'rows' if count > 1 else 'row'} "
                      f"{named})", markup=False, soft_wrap=True)
        more = tally.errors + tally.warnings - len(shown.problems)
        if more > 0:
            err.print(f"... and {more} more; write them all with --errors FILE", markup=False,
                      soft_wrap=True)


class ShownProblems:
    """The problems the summary lists, in row order: the first SAME_CODE_SHOWN of each code,
    PROBLEMS_SHOWN at most; of the others, by code, the first ROWS_NAMED rows (the summary
    counts them from the tally). Every problem still goes to --errors."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.per_code: Counter[str] = Counter()
        self.others: dict[tuple[str, str], list[int]] = {}

    def add(self, problem: Problem) -> None:
        if self.per_code[problem.code] < SAME_CODE_SHOWN and len(self.problems) < PROBLEMS_SHOWN:
            self.problems.append(problem)
            self.per_code[problem.code] += 1
            return
        rows = self.others.setdefault((problem.code, problem.name), [])
        if len(rows) < ROWS_NAMED and problem.row not in rows:
            rows.append(problem.row)


@app.command("template")
def template_command(
    ruleset_path: Optional[Path] = RulesetOpt,
    output: str = typer.Option("-", "--output", "-o", metavar="FILE", show_default=False,
                               help="Empty CSV to fill in (default: stdout)."),
    dictionary: Optional[Path] = typer.Option(
        None, "--dictionary", metavar="FILE", help="Data dictionary CSV (default with -o: NAME.dictionary.csv "
                                   "beside it)."),
    id_column: str = typer.Option("id", "--id-column", metavar="NAME",
                                  help="Name of the id column."),
    delimiter: str = typer.Option(",", "--delimiter", "-d", metavar="CHAR",
                                  help="Field separator: ',', ';', tab or '|'."),
    force: bool = typer.Option(False, "--force", help="Replace existing files."),
) -> None:
    """Write an empty CSV with the header 'batch' expects, and a data dictionary.

    The dictionary has one row per column: the question, its type, allowed codes and labels,
    range, whether it is required, and when it is asked.

    Example: iopscreen template -o responses.csv   (also writes responses.dictionary.csv)
    """
    delim = parse_delimiter(delimiter) or ","
    ruleset = open_ruleset(ruleset_path)
    if id_column in ruleset.questions:
        raise UsageError(f"--id-column '{id_column}' is a question of the rule set",
                         hint="choose another name for the id column")
    if dictionary is None and output != "-":
        out = Path(output)
        dictionary = out.with_name(out.stem + ".dictionary" + (out.suffix or ".csv"))
    batch_output.check_paths("-", [("template", output), ("dictionary",
                                                   str(dictionary) if dictionary else None)],
                      force)
    template = batch_output.csv_text([batch_output.template_header(ruleset, id_column)], delim)
    if output == "-":
        sys.stdout.write(template)
    else:
        write_text_atomic(Path(output), template)
    if dictionary is not None:
        # With a BOM, so that Excel shows the labels' accents and dashes correctly.
        write_text_atomic(dictionary, "\ufeff" + batch_output.csv_text(
            batch_output.dictionary_rows(ruleset, id_column), delim))
    written = [w for w in (None if output == "-" else output, dictionary) if w]
    if written:
        make_console(stderr=True).print(
            f"wrote {' and '.join(map(str, written))} ({len(ruleset.questions) + 1} columns: {id_column} "
            f"and {len(ruleset.questions)} questions of {ruleset.id} {ruleset.version})",
            markup=False, soft_wrap=True)
