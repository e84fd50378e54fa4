"""Reading a CSV of responses: its text, its delimiter and its header.

:func:`open_source` gives the input as text (UTF-8 with or without BOM, UTF-16 by its BOM, or
``--encoding``) and locates encoding errors by line and column; :func:`plan_layout` checks the
header against the rule set (which column is which question, which is the id, what is unknown).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from .errors import AnswerError, Diagnostic, UsageError, did_you_mean
from .ruleset.model import Ruleset

DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "\\t": "\t", "|": "|"}
SNIFF_ORDER = (",", ";", "\t", "|")
ID_NAMES = ("id", "client_id", "clientid", "client", "record_id", "respondent_id",
            "response_id", "participant_id", "subject_id", "patient_id", "person_id", "case_id",
            "mrn")

# Problems with the input as a whole (the row problems are in batch.py).
E_UNKNOWN_COLUMN = ("E411", "unknown-column")
E_DUPLICATE_COLUMN = ("E412", "duplicate-column")
E_EMPTY = ("E413", "no-header")
E_ENCODING = ("E414", "bad-encoding")
E_MALFORMED = ("E415", "malformed-csv")
E_NO_QUESTIONS = ("E416", "no-question-columns")


@dataclass
class Source:
    """The input as text, with what is needed to report progress and locate decoding errors."""

    name: str
    text: io.TextIOWrapper
    binary: IO[bytes]
    encoding: str
    size: int | None  # bytes, when known
    path: Path | None  # None for stdin

    def bytes_read(self) -> int:
        try:
            return self.binary.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.path is not None:
            self.text.close()
        else:  # leave stdin itself open
            self.text.detach()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve_encoding(name: str | None) -> str:
    """The codec to read with; 'utf-8' reads with or without a BOM. Raises :class:`UsageError`."""
    if not name:
        return "utf-8-sig"
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise UsageError(f"unknown encoding '{name}'",
                         hint="e.g. --encoding utf-8, cp1252 (Excel on Windows), latin-1 or "
                              "utf-16") from None
    return "utf-8-sig" if info.name == "utf-8" else info.name


def open_source(path: str, encoding: str | None, stdin: IO[bytes] | None = None) -> Source:
    """Open ``path`` (or ``-`` for ``stdin``) for reading as text.

    Without ``encoding``: UTF-8 with or without a BOM, or UTF-16 when the file starts with its
    BOM (Excel's "Unicode text"). Raises :class:`UsageError` when the file cannot be opened.
    """
    codec = resolve_encoding(encoding)
    if path == "-":
        if stdin is None:
            raise UsageError("no standard input to read")
        binary, size, where, name = stdin, None, None, "<stdin>"
    else:
        where = Path(path)
        try:
            binary = open(where, "rb")  # noqa: SIM115 - owned by the Source
            size = os.fstat(binary.fileno()).st_size
        except FileNotFoundError:
            raise UsageError(f"input file '{path}' not found",
                             hint="give a CSV file of responses, or - for standard input") from None
        except IsADirectoryError:
            raise UsageError(f"input '{path}' is a folder, not a file",
                             hint="give the CSV file inside it") from None
        except OSError as exc:
            raise UsageError(f"cannot read input '{path}': {exc.strerror}") from None
        name = path
    if encoding is None and hasattr(binary, "peek"):
        start = binary.peek(4)[:4]
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            codec = "utf-16"
    text = io.TextIOWrapper(binary, encoding=codec, errors="strict", newline="")
    return Source(name, text, binary, codec, size, where)


def encoding_error(source: Source, exc: UnicodeError, line_hint: int) -> AnswerError:
    """The error for input that is not in ``source.encoding``, located as well as possible
    (``exc`` may also be the UTF-16 codec's "does not start with BOM")."""
    line, col = (_locate_bad_bytes(source.path, source.encoding) if source.path else (0, 0))
    where = f"line {line}, column {col}" if line else f"near line {line_hint}"
    shown = "UTF-8" if source.encoding == "utf-8-sig" else source.encoding
    bad = (exc.object[exc.start:exc.start + 1].hex()
           if isinstance(exc, UnicodeDecodeError) and exc.object else "")
    if not isinstance(exc, UnicodeDecodeError) and "BOM" in str(exc):
        where += ": it does not start with a byte-order mark; say which UTF-16 with --encoding " \
                 "utf-16-le or utf-16-be"
    diag = Diagnostic(*E_ENCODING,
                      f"the file is not valid {shown}" + (f" (byte 0x{bad} at {where})"
                                                          if bad else f" ({where})"),
                      source.name, line, col,
                      hint="pass its encoding with --encoding, e.g. --encoding cp1252 (Excel on "
                           "Windows) or --encoding latin-1; or save it as 'CSV UTF-8'")
    return AnswerError(f"{source.name} is not valid {shown}", diagnostics=[diag])


def _locate_bad_bytes(path: Path, codec: str) -> tuple[int, int]:
    """Line and column (1-based) of the first byte ``codec`` cannot decode; (0, 0) if none."""
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    line, line_start, offset = 1, 0, 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 16):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                head = block[:max(exc.start, 0)]
                line += head.count(b"\n")
                nl = head.rfind(b"\n")
                col = (len(head) - nl) if nl >= 0 else (offset + len(head) - line_start + 1)
                return line, col
            except UnicodeError:  # UTF-16 without its BOM: the start is what is wrong
                return line, 1
            line += block.count(b"\n")
            nl = block.rfind(b"\n")
            if nl >= 0:
                line_start = offset + nl + 1
            offset += len(block)
    return 0, 0


@dataclass(frozen=True)
class Layout:
    """What each input column is: the id, a question, or ignored."""

    header: tuple[str, ...]
    id_index: int | None
    question_index: dict[str, int]  # question id -> column index
    ignored: tuple[str, ...]  # extra columns skipped with --ignore-extra
    missing: tuple[str, ...]  # questions with no column (unanswered in every row)

    @property
    def id_name(self) -> str:
        return self.header[self.id_index].strip() if self.id_index is not None else ""

    def column_name(self, index: int) -> str:
        name = self.header[index].strip()
        return name or f"column {index + 1}"


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.replace("\ufeff", "").strip().casefold())


def guess_id_column(header: Sequence[str], questions: Iterable[str]) -> int | None:
    """The column that most likely identifies a row (``id``, ``client_id``, ``*_id`` ...)."""
    qids = set(questions)
    names = [_norm(h) for h in header]
    for wanted in ID_NAMES:
        for i, n in enumerate(names):
            if n == wanted and n not in qids:
                return i
    for i, n in enumerate(names):
        if n.endswith("_id") and n not in qids:
            return i
    return None


def sniff_delimiter(header_line: str, known: Iterable[str]) -> str:
    """The delimiter that splits ``header_line`` into the most known column names."""
    names = {_norm(k) for k in known}
    best, best_key = ",", (-1, -1)
    for delim in SNIFF_ORDER:
        fields = next(csv.reader([header_line], delimiter=delim), [])
        key = (sum(_norm(f) in names or _norm(f).endswith("_id") for f in fields), len(fields))
        if key > best_key:
            best, best_key = delim, key
    return best


def fit_row(record: list[str], ncols: int) -> list[str]:
    """``record`` with ``ncols`` cells: a short one padded with blank cells at its end
    (spreadsheet exports leave out empty cells there); a long one as it is."""
    return record + [""] * (ncols - len(record)) if len(record) < ncols else record


def alignments(record: Sequence[str], ncols: int) -> Iterator[list[str]]:
    """Every reading of a long ``record``'s cells as the ``ncols`` columns, on the guess that
    its extra cells are one run somewhere in it (an extra delimiter, or one inside a value
    that is not in quotes): the record without that run, for each place it can start, from
    the cells aligned at the right end to those aligned at the left."""
    extra = len(record) - ncols
    for start in range(ncols + 1):
        yield [*record[:start], *record[start + extra:]]


def plan_layout(header: Sequence[str], ruleset: Ruleset, source: str, *,
                id_column: str | None = None, ignore_extra: bool = False,
                show_values: bool = False) -> Layout:
    """Check the header against the rule set.

    Returns the :class:`Layout`. Raises :class:`UsageError` for a bad ``--id-column`` and
    :class:`AnswerError` listing every unknown or repeated column (unknown columns are allowed
    with ``ignore_extra``). A header in which no name is a question may well be a row of
    answers (a file without its header): then no name is shown, unless ``show_values``.
    """
    questions = ruleset.questions
    names = [_norm(h) for h in header]
    like_data = not show_values and not any(n in questions for n in names)
    if like_data:
        raise AnswerError(f"{source} has no header row", diagnostics=[Diagnostic(
            *E_EMPTY, f"no column name is a question of {ruleset.id} {ruleset.version}: the first "
            "line looks like data, not a header (its cells are not shown: they may be answers)",
            source, 1, 1, hint=("the header was read as one column: check the delimiter "
                                "(--delimiter); or " if len(header) == 1 else "") +
            "the first line must name the columns ('iopscreen template' writes it); or check "
            "--delimiter and --ruleset; --show-values shows the names read")])
    if id_column is not None:
        wanted = _norm(id_column)
        if wanted in questions:
            raise UsageError(f"--id-column '{id_column}' is a question of the rule set",
                             hint="name the column that identifies each row")
        if wanted not in names:
            shown = ", ".join(h.strip() for h in header[:12]) + (", ..." if len(header) > 12
                                                                  else "")
            raise UsageError(f"--id-column '{id_column}' is not a column of {source}",
                             hint=did_you_mean(wanted, names) or f"the columns are: {shown}")
        id_index: int | None = names.index(wanted)
    else:
        id_index = guess_id_column(header, questions)
    problems: list[Diagnostic] = []
    seen: dict[str, int] = {}
    question_index: dict[str, int] = {}
    ignored: list[str] = []
    for i, n in enumerate(names):
        label = header[i].strip() or f"column {i + 1}"
        if n in seen and n:
            problems.append(Diagnostic(
                *E_DUPLICATE_COLUMN, f"column '{label}' appears twice (columns {seen[n] + 1} "
                f"and {i + 1})", source, 1, _char_col(header, i), hint="keep one of them"))
            continue
        seen[n] = i
        if i == id_index:
            continue
        if n in questions:
            question_index[n] = i
        elif ignore_extra:
            ignored.append(label)
        else:
            close = did_you_mean(n, questions) if n else ""
            if len(header) == 1:
                first = ("the header was read as one column: check the delimiter (--delimiter); ")
            elif not n and i == len(header) - 1:
                first = "the header ends with a delimiter: remove it, or "
            elif not n:
                first = "name the column or remove it; or "
            else:
                first = f"{close} " if close else ""
            problems.append(Diagnostic(
                *E_UNKNOWN_COLUMN,
                f"column '{label}' is not a question of {ruleset.id} {ruleset.version}"
                if n else f"column {i + 1} has no name", source, 1, _char_col(header, i),
                hint=first + "--ignore-extra skips columns that are not questions ('iopscreen "
                             "template' writes the expected header)"))
    if problems:
        raise AnswerError(f"{len(problems)} problem(s) with the header of {source}",
                          diagnostics=problems)
    if not question_index:
        delim = "," if len(header) > 1 else "the delimiter"
        raise AnswerError(f"no column of {source} is a question", diagnostics=[Diagnostic(
            *E_NO_QUESTIONS, f"no column is a question of {ruleset.id} {ruleset.version}",
            source, 1, 1, hint=f"check {delim} (--delimiter), the rule set (--ruleset) and the "
                               "header ('iopscreen template' writes it)")])
    missing = tuple(q for q in questions if q not in question_index)
    return Layout(tuple(header), id_index, question_index, tuple(ignored), missing)


def _char_col(header: Sequence[str], index: int) -> int:
    """Where field ``index`` starts in the header line (exact when nothing is quoted)."""
    return 1 + sum(len(h) + 1 for h in header[:index])


class MalformedCsv(Exception):
    """The CSV itself cannot be read at ``line`` (e.g. a quote that is never closed)."""

    def __init__(self, line: int, message: str):
        super().__init__(line, message)
        self.line, self.message = line, message


def malformed_error(source: str, exc: MalformedCsv) -> AnswerError:
    """The error to report for :class:`MalformedCsv` in ``source``."""
    hint = "check for a quote that is never closed"
    if "never closed" in exc.message:
        hint = "close the quote (a quote inside a value is written twice: \"\")"
    diag = Diagnostic(*E_MALFORMED, f"the CSV cannot be read here: {exc.message}", source,
                      exc.line, 1, hint=hint)
    return AnswerError(f"{source} is not a readable CSV file", diagnostics=[diag])
