"""Batch screening on an embedded DuckDB: the rule set's SQL (:mod:`iopscreen.sql`) over the file.

DuckDB reads the CSV (every column as text), runs the screening query on all cores and writes
the output file itself (the query gives each row's line exactly as the Python path writes it:
:mod:`iopscreen.sql.results`). Only the counts of the summary, the crisis rows, the rows with
problems and the repeated ids come back to Python, which words the problems as the Python path
does. Both read the header the same way (:func:`iopscreen.batch_input.plan_layout`).

It also reads Parquet (every column cast to text, as a CSV export would hold it) and writes
Parquet (the columns of ``rules sql``: booleans, whole-number scores, ``|``-joined lists); the
Python engine does neither.

DuckDB takes a CSV input only where reading it cannot differ from Python's csv reader and every
row's number and line are known: a UTF-8 file (not stdin) with no quote character after the
header, no blank line, no lone CR, and the header's number of fields on every line. Anything else
raises :class:`Unsuitable` before a byte is written, and the caller screens the file with the
Python engine (which reports such rows as it always does).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .answers import AnswerParser, InvalidAnswer
from .batch import (
    CRISIS_LISTED,
    ERROR,
    W_DUPLICATE_ID,
    W_MISSING_ID,
    W_NOT_ASKED,
    WARNING,
    BatchOptions,
    Problem,
    Tally,
)
from .batch_input import ID_NAMES, Layout, Source, plan_layout, sniff_delimiter
from .errors import IopscreenError, UsageError
from .ruleset.model import Ruleset

SCAN_BYTES = 1 << 24
FETCH_ROWS = 20_000


class Unsuitable(Exception):
    """The input is not one DuckDB can read exactly as Python does; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DuckOptions:
    """DuckDB's resources: memory limit (e.g. '1GB'; None: DuckDB's default, 80% of RAM) and
    threads (None: one per core)."""

    memory_limit: str | None = None
    threads: int | None = None


def _check_text(path: Path, delimiter: str | None) -> tuple[str, int]:
    """The header line and the number of line ends after it. Raises :class:`Unsuitable`."""
    with open(path, "rb") as handle:
        first = handle.readline()
        try:
            header = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Unsuitable("its header is not UTF-8") from None
        if '"' in header or "\0" in header or not header.endswith("\n") or not header.strip():
            raise Unsuitable("its header has quotes, NUL characters or no line end")
        if delimiter is None:
            return header, 0
        sep = delimiter.encode()
        count = 0
        tail = b"\n"
        while block := handle.read(SCAN_BYTES):
            data = tail + block
            if block.count(b"\r") != data.count(b"\r\n") - (tail == b"\r"):
                raise Unsuitable("it has a line ending in a lone CR")
            if b"\n\n" in data or b"\n\r\n" in data:
                raise Unsuitable("it has blank lines")
            _check_quotes(data, sep)
            count += block.count(b"\n")
            tail = block[-1:]
        ends_open = tail not in (b"\n", b"")
    return header, count + ends_open


def _check_quotes(data: bytes, sep: bytes) -> None:
    """Raise :class:`Unsuitable` for a quote that neither starts nor ends a value nor is one of
    a doubled pair (a"b, x "y", "x" z): DuckDB and Python's csv reader read those
    differently. A quote that looks right but is not (an unclosed value, a value running over
    lines) makes DuckDB reject the row or read fewer records than lines, which is caught
    after."""
    edges = (sep, b"\n", b"\r", b'"')
    at = data.find(b'"', 1)
    while 0 < at < len(data) - 1:
        if data[at - 1:at] not in edges and data[at + 1:at + 2] not in edges:
            raise Unsuitable("it has a quote inside a value")
        at = data.find(b'"', at + 1)


def run_duckdb(ruleset: Ruleset, source: Source, write: Callable[[str], object],
               options: BatchOptions, on_problem: Callable[[Problem], None], duck: DuckOptions,
               *, on_layout: Callable[[Layout], None] | None = None,
               copy_to: Path | None = None) -> Tally:
    """Screen ``source`` with DuckDB; the same output, problems (in row order, repeated ids at
    the end) and :class:`Tally` as :func:`iopscreen.batch.run_batch`.

    DuckDB writes the results itself: into ``copy_to`` (an existing, owner-only temporary
    file the caller renames into place; see :class:`iopscreen.files.AtomicOutput`), else
    into a private temporary file whose text goes through ``write``. Only the summary's
    counts, the crisis rows, the rows with problems and the repeated ids come back to Python.

    Raises :class:`Unsuitable` (nothing written) when the input is not for DuckDB, and
    :class:`IopscreenError` with DuckDB's message when it fails."""
    if source.path is None:
        raise Unsuitable("it is standard input")
    try:
        import duckdb
    except ImportError:  # pragma: no cover - a base dependency
        raise Unsuitable("duckdb is not installed") from None
    if is_parquet(source.path):
        if options.show_values:
            raise UsageError("--show-values is for CSV input screened by --engine python",
                             hint="leave out --show-values")
        with _connection(duck) as con:
            try:
                header = [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE SELECT * "
                                                    "FROM read_parquet(?))",
                                                    [str(source.path)]).fetchall()]
            except duckdb.Error as exc:
                raise _failed(exc) from None
            layout = plan_layout(header, ruleset, source.name, id_column=options.id_column,
                                 ignore_extra=options.ignore_extra,
                                 show_values=options.show_values)
            try:
                return _Screen(ruleset, layout, options, con, on_problem).run(
                    _parquet_table(source.path, header), None, write, copy_to, on_layout)
            except duckdb.Error as exc:
                raise _failed(exc) from None
    if source.encoding != "utf-8-sig":
        raise Unsuitable(f"it is read as {source.encoding}")
    if options.show_values:
        raise Unsuitable("--show-values shows cells DuckDB does not hand back")
    header_line, _ = _check_text(source.path, None)
    delimiter = options.delimiter or sniff_delimiter(header_line,
                                                     [*ruleset.questions, *ID_NAMES])
    _, lines = _check_text(source.path, delimiter)
    header = header_line.rstrip("\r\n").split(delimiter)
    try:
        layout = plan_layout(header, ruleset, source.name, id_column=options.id_column,
                             ignore_extra=options.ignore_extra,
                             show_values=options.show_values)
    except IopscreenError:
        raise Unsuitable("its header has problems") from None
    with _connection(duck) as con:
        try:
            return _Screen(ruleset, layout, options, con, on_problem).run(
                _csv_table(source.path, delimiter, len(layout.header)), lines, write, copy_to,
                on_layout)
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "Conversion" in type(exc).__name__ or "Invalid Input" in message:
                raise Unsuitable("DuckDB cannot read it as the header says") from None
            raise _failed(exc) from None


@contextmanager
def _connection(duck: DuckOptions) -> Iterator[Any]:
    """A DuckDB connection that spills (above its memory limit) into a private temporary
    folder, removed with what it holds when the run ends."""
    from .sql.duck import connect

    spill = tempfile.mkdtemp(prefix="iopscreen-duckdb-")  # 0700
    try:
        con = connect(duck.memory_limit, duck.threads, spill)
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is a Parquet file (it starts with Parquet's magic bytes)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"PAR1"
    except OSError:
        return False


def _failed(exc: Exception) -> IopscreenError:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return IopscreenError(f"DuckDB failed: {message}",
                          hint="check the input, or rerun a CSV input with --engine python")


def _numbered(select: Any) -> Any:
    """``select`` as the table ``responses``. Its rows are numbered only once screened (see
    _Screen.run): numbering them here (row_number() OVER ()) would run the whole query on
    one thread."""
    from sqlglot import exp

    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier("responses")))


def _csv_table(path: Path, delimiter: str, width: int) -> Any:
    """The CSV's rows, every column text (k0, k1, ...), a rejected row recorded not fatal."""
    from sqlglot import exp

    columns = {f"k{i}": "VARCHAR" for i in range(width)}
    reader = exp.func("read_csv", exp.Literal.string(str(path)), *(
        exp.EQ(this=exp.column(k), expression=v) for k, v in (
            ("header", exp.true()), ("delim", exp.Literal.string(delimiter)),
            ("quote", exp.Literal.string('"')), ("escape", exp.Literal.string('"')),
            ("auto_detect", exp.false()), ("store_rejects", exp.true()),
            ("strict_mode", exp.true()), ("null_padding", exp.false()),
            ("encoding", exp.Literal.string("utf-8")),
            ("columns", exp.Struct(expressions=[exp.PropertyEQ(
                this=exp.Literal.string(k), expression=exp.Literal.string(v))
                for k, v in columns.items()])))))
    return _numbered(exp.select(exp.Star()).from_(reader))


def _parquet_table(path: Path, header: list[str]) -> Any:
    """The Parquet file's rows, every column cast to text (k0, k1, ...), as a CSV export of
    it holds them (true/false, 3, 2.5; a missing value blank)."""
    from sqlglot import exp

    reader = exp.func("read_parquet", exp.Literal.string(str(path)))
    return _numbered(exp.select(*(exp.alias_(exp.cast(exp.column(name, quoted=True),
                                                      "VARCHAR"), f"k{i}")
                                  for i, name in enumerate(header))).from_(reader))


class _Screen:
    def __init__(self, ruleset: Ruleset, layout: Layout, options: BatchOptions, con: Any,
                 on_problem: Callable[[Problem], None]):
        self.ruleset, self.layout, self.options, self.con = ruleset, layout, options, con
        self.on_problem = on_problem
        self.has_id = layout.id_index is not None

    def sql(self, tree: Any) -> str:
        from .sql.duck import duckdb_sql

        return duckdb_sql(tree)

    def run(self, table: Any, lines: int | None, write: Callable[[str], object],
            copy_to: Path | None, on_layout: Callable[[Layout], None] | None) -> Tally:
        """Screen ``table`` (see :func:`_csv_table`); ``lines``: the CSV's line count (None for
        Parquet), which DuckDB's rows must match."""
        from sqlglot import exp

        from .sql import TableShape, screening_query
        from .sql.results import summary_query

        rs, layout, con = self.ruleset, self.layout, self.con
        idc = layout.id_index
        others = tuple(f"k{i}" for i in range(len(layout.header))
                       if i != idc and i not in layout.question_index.values())
        shape = TableShape({q: f"k{i}" for q, i in layout.question_index.items()},
                           f"k{idc}" if idc is not None else None, None,
                           {q: layout.column_name(i) for q, i in layout.question_index.items()},
                           others, layout.id_name or "id", True)
        fmt = self.options.fmt
        line = None if fmt == "parquet" else "jsonl" if fmt in ("json", "jsonl") else \
            "csv_raw" if self.options.raw_csv else "csv"
        self.line = line
        from .sql.duck import json_text

        query = screening_query(rs, shape, table, line=line, line_tail=False,
                                json_id=json_text if line == "jsonl" else None)
        self.names = ["row", *(n.alias_or_name for n in query.expressions)]
        self.id_column = self.names[1] if self.has_id else None
        # kept: what the output, the summary and the problem queries read (Parquet: all)
        kept = [n for n in self.names[1:] if line is None or n == self.id_column or n in (
            "status", "errors", "level", "crisis", "provisional", "safety_review",
            "ignored_answers", "blank", "line")]
        con.execute("CREATE TEMP TABLE screened_rows AS " + self.sql(exp.select(
            *(exp.column(n, quoted=True) for n in kept)).from_(query.subquery("q"))))
        # The table keeps the file's order (DuckDB preserves insertion order), so a row's
        # place in it is its data row number.
        con.execute(self.sql(exp.Create(
            this=exp.to_table("screened", quoted=True), kind="VIEW",
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
            expression=exp.select(exp.alias_(exp.Add(this=exp.column("rowid"),
                                                     expression=exp.Literal.number(1)),
                                             "row", quoted=True), exp.Star())
            .from_(exp.to_table("screened_rows", quoted=True)))))
        # Each line must be one record (so a row's line is its number + 1), and none rejected
        # (a row of the wrong length, a quote DuckDB reads otherwise).
        if lines is not None:
            if con.execute("SELECT count(*) FROM reject_errors").fetchone()[0]:
                raise Unsuitable("some rows are not read as the header says (field count, "
                                 "quotes)")
            if con.execute("SELECT count(*) FROM screened").fetchone()[0] != lines:
                raise Unsuitable("some values run over several lines")
        if on_layout is not None:
            on_layout(layout)
        got = con.execute(self.sql(summary_query(rs, id_column=self.id_column))).fetchone()
        tally, counts = Tally.from_summary(got)
        self._output(fmt, counts["first_row"], counts["last_row"], write, copy_to)
        self._crisis_rows(tally)
        self._problems(tally)
        if self.has_id:
            self._duplicates(tally)
        return tally

    def _output(self, fmt: str, first: int | None, last: int | None,
                write: Callable[[str], object], copy_to: Path | None) -> None:
        """DuckDB writes the lines of the rows that are not blank, in row order, into
        ``copy_to`` or a private temporary file sent on through ``write``."""
        from sqlglot import exp

        from .sql.results import concat_text, csv_header, json_array_line, line_tail

        if fmt == "parquet":  # the columns themselves, typed; also for no rows
            assert copy_to is not None
            self._copy(exp.select(*(exp.column(n, quoted=True) for n in self.names[:-1]))
                       .from_(exp.to_table("screened", quoted=True))
                       .where(exp.not_(exp.column("blank", quoted=True))), copy_to, "parquet")
            return
        head = {"csv": csv_header(self.names[:-2], self.options.raw_csv), "jsonl": "",
                "json": "[\n"}[fmt]
        if first is None or last is None:  # no rows: only the header and the footer
            write(head + ("]\n" if fmt == "json" else ""))
            return
        row = exp.column("row", quoted=True)
        # the line starts just after the row number (see sql.results.line)
        text: exp.Expression = concat_text([
            exp.Literal.string("" if fmt == "csv" else '{"row": '), exp.cast(row, "VARCHAR"),
            exp.column("line", quoted=True),
            exp.Literal.string(line_tail(self.ruleset, self.line))])
        if fmt == "json":
            text = json_array_line(text, row, first, last)
        elif head:
            text = exp.Case().when(exp.EQ(this=row, expression=exp.Literal.number(first)),
                                   exp.Concat(expressions=[exp.Literal.string(head), text],
                                              safe=True)).else_(text)
        select = exp.select(text).from_(exp.to_table("screened", quoted=True)).where(
            exp.not_(exp.column("blank", quoted=True)))
        if copy_to is not None:
            self._copy(select, copy_to)
            return
        import os

        fd, name = tempfile.mkstemp(prefix=".iopscreen.", suffix=".tmp")  # 0600
        os.close(fd)
        try:
            self._copy(select, Path(name))
            with open(name, encoding="utf-8", newline="") as handle:
                while block := handle.read(1 << 20):
                    write(block)
        finally:
            os.unlink(name)

    def _copy(self, select: Any, target: Path, fmt: str = "lines") -> None:
        """COPY into ``target`` itself (no temporary file of DuckDB's: the file keeps its
        owner-only mode): the lines as they are (no quoting, '\n' after each), or Parquet."""
        options = ("FORMAT parquet" if fmt == "parquet" else
                   "FORMAT csv, HEADER false, QUOTE '', ESCAPE '', NEW_LINE '\n'")
        self.con.execute(f"COPY ({self.sql(select)}) TO '{_sql_text(str(target))}' "
                         f"({options}, USE_TMP_FILE false)")

    def _crisis_rows(self, tally: Tally) -> None:
        from .sql.results import crisis_rows_query

        for row, rid, status in self.con.execute(self.sql(crisis_rows_query(
                id_column=self.id_column, limit=CRISIS_LISTED))).fetchall():
            tally.crisis_rows.append((row, rid or "",
                                      "row also has errors" if status == "error" else ""))

    def _problems(self, tally: Tally) -> None:
        """The problems of the rows that have any, in row order, as the Python path words
        them."""
        from .sql.results import problem_rows_query

        rs, layout = self.ruleset, self.layout
        by_label = {layout.column_name(i): q for q, i in layout.question_index.items()}
        messages = {q: _messages(rs, q) for q in rs.questions}
        safety = self._safety()
        questions = rs.questions
        found = self.con.execute(self.sql(problem_rows_query(id_column=self.id_column)))
        while batch := found.fetchmany(FETCH_ROWS):
            for row, rid, errors_text, ignored_text, review in batch:
                rid = rid or ""
                line = row + 1
                if self.has_id and not rid.strip():
                    self._problem(Problem(row, line, "", layout.id_name, WARNING,
                                          *W_MISSING_ID, "the row has no id",
                                          "fill in the id so the result can be matched to "
                                          "the person"), tally)
                if errors_text:
                    for item in errors_text.split("|"):
                        code, column = item.split(":", 1)
                        name, message, hint = messages[by_label[column]][code]
                        self._problem(Problem(row, line, rid, column, ERROR, code, name,
                                              message, hint), tally)
                ignored = ignored_text.split("|") if ignored_text else []
                for qid in ignored:
                    when = questions[qid].ask_when
                    assert when is not None
                    self._problem(Problem(
                        row, line, rid, layout.column_name(layout.question_index[qid]), WARNING,
                        *W_NOT_ASKED, f"answered, but skip logic leaves this question out here "
                        f"(it is asked when {when.text}), so the answer is not used",
                        "check the source: the answer, or an earlier one that decides whether "
                        "this question is asked, may be a slip"), tally)
                if review:
                    dropped = [q for q in ignored if q in safety]
                    tally.dropped_safety += 1
                    tally.review += 1
                    if len(tally.review_rows) < CRISIS_LISTED:
                        tally.review_rows.append((row, rid, "safety answer left out by skip "
                                                  "logic: " + ", ".join(dropped)
                                                  + "; check the source"))

    def _safety(self) -> frozenset[str]:
        from .engine import decision_for

        return decision_for(self.ruleset).safety_questions

    def _problem(self, problem: Problem, tally: Tally) -> None:
        tally.count(problem)
        self.on_problem(problem)

    def _duplicates(self, tally: Tally) -> None:
        """Warn about every repeated id, after the rows, as the Python path does."""
        from .sql.results import duplicate_ids_query

        column = self.layout.id_name
        assert self.id_column is not None
        found = self.con.execute(self.sql(duplicate_ids_query(id_column=self.id_column)))
        while batch := found.fetchmany(FETCH_ROWS):
            for row, key, first in batch:
                self._problem(Problem(row, row + 1, key, column, WARNING, *W_DUPLICATE_ID,
                                      f"id '{key}' is also on data row {first}",
                                      "ids should be unique; both rows are screened"), tally)


def _sql_text(text: str) -> str:
    """``text`` inside a SQL string literal."""
    return text.replace("'", "''")


def _messages(ruleset: Ruleset, qid: str) -> dict[str, tuple[str, str, str]]:
    """code -> (name, message, hint) of the problems a cell of question ``qid`` can have, as
    its own :class:`AnswerParser` words them (asked with cells that can never be valid: a
    control character is in no code or label, and a number above the maximum)."""
    question = ruleset.questions[qid]
    parser = AnswerParser(question)
    out = {}
    probes = ["\x01?"] + ([str(question.max + 1)] if question.max is not None else [])
    for probe in probes:
        try:
            parser.parse(probe)
        except InvalidAnswer as exc:
            out[exc.code] = (exc.name, exc.message, exc.hint)
    return out

