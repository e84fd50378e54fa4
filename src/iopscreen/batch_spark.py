"""Batch screening on Spark: the rule set's Spark SQL over a CSV or Parquet input Spark reads.

The screening is the same query as ``iopscreen rules sql --dialect spark`` (one semantics; the
pieces around it, the output lines, the summary counts, the crisis rows, the rows with
problems and the repeated ids, are the engine-neutral trees of :mod:`iopscreen.sql.results`),
and the problems are worded by the same code as the DuckDB engine's
(:class:`iopscreen.batch_duckdb._Screen`, here given a Spark cursor).

Row numbers. Spark keeps no row order of its own, so every input row is numbered from where
Spark read it, without a pass through Python:

* CSV (one file): read as lines of text. Within a partition of the file scan, Spark's
  ``monotonically_increasing_id`` is the partition number times 2^33 plus the line's place in
  the partition, and a file's partitions are its consecutive byte ranges in order; so one
  aggregate pass counts the lines of each partition, and a line's number is the lines of the
  partitions before it plus its place in its own. Line 0 is the header; data row N is line
  N + 1 of the file. Each line is then split by Spark's CSV parser (``from_csv``, every column a
  string). Every line must be one whole record with the header's number of fields (a regular
  expression checks it first: fields quoted or without quotes, ``""`` inside quotes); a file
  that is not (a short or long row, a quote inside a value, a value running over lines, bytes
  that are not UTF-8) is, when it is a local file, screened by the Python engine with a note
  (as ``--engine duckdb`` does), else refused naming its first such line.
* Parquet (a file or a folder): every column is cast to a string; rows are numbered in the
  order of the files' paths and, within a file, Parquet's own row index
  (``_metadata.row_index``). A row's "line" is its row number + 1 (the line it would have in a
  CSV export with a header).

Nothing here prints or exits; Spark's failures become one-line :class:`IopscreenError`.
"""

from __future__ import annotations

import csv
import re
import shutil
import uuid
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from .batch import BatchOptions, Problem, Tally
from .batch_duckdb import Unsuitable, _Screen
from .batch_input import E_EMPTY, E_ENCODING, E_MALFORMED, ID_NAMES, Layout, plan_layout, \
    sniff_delimiter
from .errors import AnswerError, Diagnostic, IopscreenError, UsageError
from .ruleset.model import Ruleset

FORMATS = ("csv", "jsonl", "json", "parquet")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
NULL_SENTINEL = "\x00iopscreen-null\x00"  # never in a line: empty fields stay ''


@dataclass(frozen=True)
class SparkOptions:
    """Where Spark runs (``--master``; None: ``local[*]``, or the session already running)."""

    master: str | None = None


def is_url(path: str) -> bool:
    return bool(_SCHEME.match(path))


def is_folder_output(path: str) -> bool:
    """Whether ``-o path`` names a dataset folder written by Spark's own writers (a URL such
    as ``hdfs://...`` or ``s3a://...``, or a path ending in ``/``) rather than one local
    file."""
    return is_url(path) or path.endswith("/")


def is_parquet_input(path: str) -> bool:
    """A name ending in .parquet (a file or a dataset folder), or a local Parquet file."""
    from .batch_duckdb import is_parquet

    return path.rstrip("/").lower().endswith(".parquet") or (not is_url(path)
                                                             and is_parquet(Path(path)))


def run_spark(ruleset: Ruleset, location: str, options: BatchOptions,
              on_problem: Callable[[Problem], None], spark_options: SparkOptions, *,
              write: Callable[[str], object] | None = None, copy_to: Path | None = None,
              folder: str | None = None, force: bool = False, local_file: bool = False,
              on_layout: Callable[[Layout], None] | None = None) -> Tally:
    """Screen ``location`` (a CSV file or Parquet file/folder, any path Spark reads) on Spark;
    the same problems (in row order, repeated ids at the end) and :class:`Tally` as
    :func:`iopscreen.batch.run_batch`.

    The results go to ``folder`` (a dataset folder, written by Spark into a temporary folder
    beside it and renamed into place at the end), else to ``copy_to`` (the caller's owner-only
    temporary file, renamed into place by the caller: needed for Parquet) or ``write`` (text
    lines, in row order, streamed to this process). ``local_file``: the input is a local file
    the Python engine can read instead.

    Raises :class:`Unsuitable` (only when ``local_file`` and nothing is written) for a CSV the
    Python engine reads differently, :class:`UsageError` for a missing input, PySpark or Java,
    :class:`AnswerError` for a bad header, and :class:`IopscreenError` when Spark fails."""
    from .sql.spark import spark_session

    with spark_session(spark_options.master) as spark:
        try:
            return _SparkScreen(ruleset, options, spark, on_problem).run(
                location, local_file, write, copy_to, folder, force, on_layout)
        except (IopscreenError, Unsuitable, KeyboardInterrupt):
            raise
        except Exception as exc:  # Py4J and PySpark errors: one line, no trace
            raise _failure(exc) from None


def _failure(exc: BaseException) -> IopscreenError:
    from .sql.spark import first_line, spark_failure

    message = first_line(exc)
    if "PATH_NOT_FOUND" in message or "does not exist" in message:
        return UsageError(f"Spark cannot read the input: {message}",
                          hint="check the path (a local file, hdfs://..., s3a://...)")
    return spark_failure(exc)


class _Cursor:
    """A Spark query's rows as a DB-API cursor gives them (what :class:`_Screen` reads)."""

    def __init__(self, frame: Any):
        self.rows: Iterator[Any] = iter(frame.toLocalIterator())

    def fetchone(self) -> tuple[Any, ...] | None:
        row = next(self.rows, None)
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.rows]

    def fetchmany(self, n: int) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in islice(self.rows, n)]


class _Connection:
    def __init__(self, spark: Any):
        self.spark = spark

    def execute(self, sql: str) -> _Cursor:
        return _Cursor(self.spark.sql(sql))


class _SparkScreen(_Screen):
    def __init__(self, ruleset: Ruleset, options: BatchOptions, spark: Any,
                 on_problem: Callable[[Problem], None]):
        # _Screen's own __init__ needs the layout, which is known only once the header is read
        self.ruleset, self.options, self.on_problem = ruleset, options, on_problem
        self.spark, self.con = spark, _Connection(spark)
        self.layout: Layout
        self.has_id = False

    def sql(self, tree: Any) -> str:
        return str(tree.sql("spark"))

    # -- reading
    def run(self, location: str, local_file: bool, write: Callable[[str], object] | None,  # type: ignore[override]
            copy_to: Path | None, folder: str | None, force: bool,
            on_layout: Callable[[Layout], None] | None) -> Tally:
        from .sql import TableShape, screening_query
        from .sql.results import summary_query

        self.local_file = local_file
        fmt = self.options.fmt
        if folder is not None:
            self._check_folder(folder, force)
        table = (self._read_parquet(location) if is_parquet_input(location)
                 else self._read_csv(location))
        layout = self.layout
        table.createOrReplaceTempView("responses")
        idc = layout.id_index
        others = tuple(f"k{i}" for i in range(len(layout.header))
                       if i != idc and i not in layout.question_index.values())
        shape = TableShape({q: f"k{i}" for q, i in layout.question_index.items()},
                           f"k{idc}" if idc is not None else None, "_n",
                           {q: layout.column_name(i) for q, i in layout.question_index.items()},
                           others, layout.id_name or "id", True)
        line = None if fmt == "parquet" else "jsonl" if fmt in ("json", "jsonl") else \
            "csv_raw" if self.options.raw_csv else "csv"
        self.line = line
        query = screening_query(self.ruleset, shape, "responses", line=line, line_tail=False)
        self.names = [n.alias_or_name for n in query.expressions]
        self.id_column = self.names[1] if self.has_id else None
        # Screened once and kept (on the executors, memory then disk), with the query's plan
        # cut off: the summary, the output, the problem rows and the repeated-id join read a
        # plain table, so Spark does not analyse the rule set's whole plan again for each
        # (the self-join of the repeated ids ran out of memory doing that).
        screened = self.spark.sql(self.sql(query)).localCheckpoint(eager=True)
        screened.createOrReplaceTempView("screened")
        if on_layout is not None:
            on_layout(layout)
        got = self.con.execute(self.sql(summary_query(self.ruleset, id_column=self.id_column))
                               ).fetchone()
        assert got is not None
        tally, counts = Tally.from_summary(got)
        if folder is not None:
            self._write_folder(fmt, folder)
        else:
            self._output(fmt, counts["first_row"], counts["last_row"], write or _no_write,
                         copy_to)
        self._crisis_rows(tally)
        self._problems(tally)
        if self.has_id:
            self._duplicates(tally)
        screened.unpersist()
        self.spark.catalog.dropTempView("screened")
        self.spark.catalog.dropTempView("responses")
        return tally

    def _refuse(self, reason: str, line: int, diag: tuple[str, str], message: str,
                hint: str, source: str) -> None:
        """A CSV Spark does not read as the Python engine does: a local file goes to the
        Python engine (:class:`Unsuitable`), any other is refused with its first such line."""
        if self.local_file:
            raise Unsuitable(reason)
        raise AnswerError(f"{source} cannot be screened by --engine spark", diagnostics=[
            Diagnostic(*diag, message, source, line, 1, hint=hint)])

    def _read_csv(self, location: str) -> Any:
        from pyspark.sql import functions as F

        spark = self.spark
        self._check_input(location)
        lines = spark.read.text(location).select(
            F.col("value"), F.spark_partition_id().alias("_p"),
            F.monotonically_increasing_id().alias("_m"))
        first = lines.select("value").first()
        if first is None or not first[0].lstrip("\ufeff").strip():
            raise AnswerError(f"{location} has no header row", diagnostics=[Diagnostic(
                *E_EMPTY, "the file is empty or its first line is blank", location, 1, 1,
                hint="the first line must name the columns ('iopscreen template' writes it)")])
        header_line = first[0].lstrip("\ufeff")
        delimiter = self.options.delimiter or sniff_delimiter(header_line,
                                                              [*self.ruleset.questions,
                                                               *ID_NAMES])
        header = next(csv.reader([header_line], delimiter=delimiter))
        self.layout = plan_layout(header, self.ruleset, location,
                                  id_column=self.options.id_column,
                                  ignore_extra=self.options.ignore_extra,
                                  show_values=self.options.show_values)
        self.has_id = self.layout.id_index is not None
        ncols = len(header)
        sep = re.escape(delimiter)
        field = f'(?:"(?:[^"]|"")*+"|[^"{sep}]*+)'
        record = f"^{field}(?:{sep}{field}){{{ncols - 1}}}$"
        # the header is line 0: the first line of partition 0, the first of the file
        good = (F.col("value").rlike(record) | (F.col("value") == F.lit(""))
                | (F.col("_m") == 0))
        # One pass: the lines of each partition, and its first line that is not one record
        # of the header's fields or holds a byte that is not UTF-8 (read as U+FFFD).
        parts = lines.groupBy("_p").agg(
            F.count(F.lit(1)).alias("n"), F.min("_m").alias("m0"),
            F.min(F.when(~good, F.col("_m"))).alias("bad"),
            F.min(F.when((F.instr(F.col("value"), "\ufffd") > 0) & (F.col("_m") > 0),
                         F.col("_m"))).alias("utf")
        ).collect()
        offsets, done = {}, 0
        bad: list[tuple[int, str]] = []  # (line index, what), the header (index 0) left out
        for p in sorted(parts, key=lambda r: r["_p"]):
            offsets[p["_p"]] = done - p["m0"]
            bad += [(done + p[kind] - p["m0"], kind) for kind in ("bad", "utf")
                    if p[kind] is not None and done + p[kind] - p["m0"] > 0]
            done += p["n"]
        if bad:
            index, kind = min(bad)
            self._bad_line(index + 1, kind, location, ncols)
        offset = F.lit(0)
        for p, off in offsets.items():  # a handful of partitions: a CASE, no join
            offset = F.when(F.col("_p") == p, F.lit(off)).otherwise(offset)
        numbered = lines.select((offset + F.col("_m")).alias("_n"), "value")
        schema = ", ".join(f"k{i} STRING" for i in range(ncols))
        parsed = F.from_csv(F.col("value"), schema, {
            "sep": delimiter, "quote": '"', "escape": '"', "mode": "PERMISSIVE",
            "nullValue": NULL_SENTINEL, "ignoreLeadingWhiteSpace": "false",
            "ignoreTrailingWhiteSpace": "false"})
        return numbered.where(F.col("_n") > 0).select("_n", parsed.alias("r")).select(
            "_n", *(F.col(f"r.k{i}").alias(f"k{i}") for i in range(ncols)))

    def _bad_line(self, line: int, kind: str, source: str, ncols: int) -> None:
        if kind == "utf":
            self._refuse("it is not valid UTF-8", line, E_ENCODING,
                         f"line {line} is not valid UTF-8",
                         "save it as 'CSV UTF-8' (--engine spark reads UTF-8 only)", source)
        self._refuse("some rows are not read as the header says (field count, quotes, values "
                     "over several lines)", line, E_MALFORMED,
                     f"line {line} is not one record of the header's {ncols} fields (a short "
                     "or long row, a quote inside a value, or a value running over lines)",
                     "fix the row, or screen a local copy with --engine python, which reports "
                     "such rows one by one", source)

    def _read_parquet(self, location: str) -> Any:
        from pyspark.sql import functions as F

        self._check_input(location)
        frame = self.spark.read.parquet(location)
        header = list(frame.columns)
        self.layout = plan_layout(header, self.ruleset, location,
                                  id_column=self.options.id_column,
                                  ignore_extra=self.options.ignore_extra,
                                  show_values=self.options.show_values)
        self.has_id = self.layout.id_index is not None
        cells = [F.col(f"`{h}`").cast("string").alias(f"k{i}") for i, h in enumerate(header)]
        meta = frame.select(F.col("_metadata.file_path").alias("_f"),
                            F.col("_metadata.row_index").alias("_r"), *cells)
        files = sorted(meta.groupBy("_f").count().collect(), key=lambda r: r["_f"])
        offset, done = F.lit(0), 1
        for f in files:
            offset = F.when(F.col("_f") == f["_f"], F.lit(done)).otherwise(offset)
            done += f["count"]
        return meta.select((offset + F.col("_r")).alias("_n"),
                           *(f"k{i}" for i in range(len(header))))

    def _check_input(self, location: str) -> None:
        """Raise :class:`UsageError` when ``location`` does not exist, or is a folder of CSV
        files (their rows' order is not known)."""
        fs, path = self._fs(location)
        if not fs.exists(path):
            raise UsageError(f"input '{location}' not found",
                             hint="give a CSV file or Parquet file or folder Spark can read "
                                  "(a local path, hdfs://..., s3a://...)")
        if fs.getFileStatus(path).isDirectory() and not is_parquet_input(location):
            raise UsageError(f"input '{location}' is a folder",
                             hint="give one CSV file, or a Parquet folder named *.parquet")

    def _fs(self, location: str) -> tuple[Any, Any]:
        jvm = self.spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(location)
        return path.getFileSystem(self.spark._jsc.hadoopConfiguration()), path

    # -- writing
    def _check_folder(self, folder: str, force: bool) -> None:
        fs, path = self._fs(folder)
        if fs.exists(path) and not force:
            raise UsageError(f"output '{folder}' already exists",
                             hint="pass --force to replace it, or choose another name")

    def _rows(self, *columns: str) -> Any:
        """``columns`` of the rows that are not blank, in row order, as a DataFrame."""
        from sqlglot import exp

        select = (exp.select(*(exp.column(n, quoted=True) for n in columns))
                  .from_(exp.to_table("screened", quoted=True))
                  .where(exp.not_(exp.column("blank", quoted=True)))
                  .order_by(exp.column("row", quoted=True)))
        return self.spark.sql(self.sql(select))

    def _write_folder(self, fmt: str, folder: str) -> None:
        """A dataset folder, written by Spark's writers (every partition at once) into a
        temporary folder beside ``folder``, renamed to it when the job has succeeded."""
        if fmt == "json":
            raise UsageError("--format json (one JSON array) cannot be a dataset folder",
                             hint="use --format jsonl or parquet for a folder")
        target = folder.rstrip("/") + f".iopscreen-{uuid.uuid4().hex}.tmp"
        fs, tmp_path = self._fs(target)
        try:
            if fmt == "parquet":
                self._rows(*self.names[:-1]).write.mode("errorifexists").parquet(target)
            elif fmt == "jsonl":
                self._jsonl_rows().write.mode("errorifexists").text(target)
            else:  # Spark's CSV: a header in every part, so Spark reads the folder back
                self._rows(*self.names[:-2]).write.mode("errorifexists").option(
                    "header", True).option("escape", '"').csv(target)
            _, out_path = self._fs(folder.rstrip("/"))
            if fs.exists(out_path):  # only with --force (checked before)
                fs.delete(out_path, True)
            if not fs.rename(tmp_path, out_path):
                raise IopscreenError(f"Spark wrote the results, but they could not be "
                                     f"renamed to '{folder}'", hint=f"they are in '{target}'")
        finally:
            if fs.exists(tmp_path):
                fs.delete(tmp_path, True)

    def _jsonl_rows(self) -> Any:
        from sqlglot import exp

        from .sql.results import concat_text, line_tail

        text = concat_text([exp.column("line", quoted=True),
                            exp.Literal.string(line_tail(self.ruleset, self.line))])
        select = (exp.select(text).from_(exp.to_table("screened", quoted=True))
                  .where(exp.not_(exp.column("blank", quoted=True)))
                  .order_by(exp.column("row", quoted=True)))
        return self.spark.sql(self.sql(select))

    def _copy(self, select: Any, target: Path, fmt: str = "lines") -> None:
        """``select`` (over ``screened``) in row order into ``target``, the caller's
        owner-only temporary file: text lines streamed from Spark one partition at a time,
        or Parquet written by Spark in one part (local masters only: the part is on this
        machine) and copied in."""
        from sqlglot import exp

        ordered = self.spark.sql(self.sql(select.order_by(exp.column("row", quoted=True))))
        if fmt != "parquet":
            with open(target, "w", encoding="utf-8", newline="") as handle:
                for row in ordered.toLocalIterator():
                    handle.write(row[0])
                    handle.write("\n")
            return
        if not self.spark.sparkContext.master.startswith("local"):
            raise UsageError("a single Parquet file is written only with a local master",
                             hint="give -o a folder Spark writes (hdfs://.../out.parquet/, "
                                  "s3a://.../out.parquet/)")
        temp = target.parent / f".{target.name}.spark-{uuid.uuid4().hex}"
        try:
            ordered.coalesce(1).write.parquet(temp.resolve().as_uri())
            parts = sorted(temp.glob("part-*"))
            assert len(parts) == 1, parts
            with open(parts[0], "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        finally:
            shutil.rmtree(temp, ignore_errors=True)


def _no_write(text: str) -> None:  # pragma: no cover - Parquet goes to copy_to
    raise AssertionError("no text output")
