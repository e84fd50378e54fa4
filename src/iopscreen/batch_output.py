"""Writing batch results: the output formats, the errors file, files renamed into place, and
the empty input template with its data dictionary.

The encoders turn one screened row (level, flag mask, rule truths, ...) into a line of CSV or
JSON; they run once a row, so what can be is worked out once per distinct value and kept.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from itertools import compress, repeat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence

from .batch_input import Layout
from .errors import UsageError
from .ruleset.model import Ruleset

if TYPE_CHECKING:
    from .batch import Problem

PROBLEM_COLUMNS = ("row", "line", "id", "column", "level", "code", "name", "message", "hint")
MEMO_LIMIT = 4096  # most values whose text a memo keeps


def output_columns(ruleset: Ruleset, layout: Layout) -> list[str]:
    """The output's column names, in order; the id column keeps its input name (prefixed with
    ``input_`` should it clash with one of ours)."""
    ours = ["status", "errors", "level", "crisis", "safety_review", "flags", "provisional",
            "possible_level",
            "deciding_questions", "fired_rules", "misconceptions"]
    for inst in ruleset.instruments:
        ours += [f"{inst.id}_score", f"{inst.id}_band"]
    ours += ["ignored_answers", "ruleset_id", "ruleset_version", "ruleset_sha256"]
    if layout.id_index is None:
        return ["row", *ours]
    name = layout.id_name or "id"
    return ["row", f"input_{name}" if name in ("row", *ours) else name, *ours]


class Memo(dict):  # type: ignore[type-arg]
    """key -> ``make(key)``, remembered for the first MEMO_LIMIT keys (so memory stays flat)."""

    def __init__(self, make: Callable[[Any], Any]):
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> Any:
        text = self.make(key)
        if len(self) < MEMO_LIMIT:
            self[key] = text
        return text


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


# A cell starting with one of these is run as a formula by spreadsheets (OWASP's CSV injection
# list): an id such as =HYPERLINK(...) could send data away when the results are opened.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula (the OWASP
    rule; the quote shows in the cell, and the text is never run)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _input_field(text: str) -> str:
    """A CSV field echoing input text (an id, a column name), neutralised."""
    return _csv_field(neutralise(text))


@dataclass(frozen=True)
class Decoder:
    """What a row's numbers mean: rule ids, level ids, flags by bit, misconception ids."""

    levels: tuple[str, ...]
    rule_ids: tuple[str, ...]
    flags: tuple[str, ...]  # bit i of a flag mask is flags[i]
    flag_rank: tuple[int, ...]
    crisis_mask: int
    misc_ids: tuple[str, ...]

    @classmethod
    def of(cls, ruleset: Ruleset) -> Decoder:
        flags = tuple(ruleset.flags)
        return cls(tuple(lv.id for lv in ruleset.levels), tuple(r.id for r in ruleset.rules),
                   flags, tuple(ruleset.flags[f].rank for f in flags),
                   sum(1 << i for i, f in enumerate(flags) if ruleset.flags[f].severity == "crisis"),
                   tuple(m.id for m in ruleset.misconceptions))

    def flag_ids(self, mask: int) -> list[str]:
        """The flags in ``mask``, most severe first (then in rule-set order), as the engine."""
        on = [i for i in range(len(self.flags)) if mask >> i & 1]
        return [self.flags[i] for i in sorted(on, key=lambda i: (self.flag_rank[i], i))]


class _Pieces:
    """A result row is head + outcome + provisional + fired + misconceptions + scores + end;
    the encoders give each piece, and batch screening builds the pieces of many rows at once
    (see RowScreener.screen_block)."""

    score_separator: str

    def _head(self, row: int, rid: str, errors: tuple[tuple[str, str], ...]) -> str:
        raise NotImplementedError

    def outcome(self, level: int, flags: int, review: bool = False) -> str:
        """The level, crisis, safety_review and flags columns (``review``: a person must check
        the row against its source, see :func:`output_columns`)."""
        raise NotImplementedError

    def provisional(self, possible: int | None, deciding: Iterable[str]) -> str:
        raise NotImplementedError

    def fired(self, fired: Iterable[str]) -> str:
        raise NotImplementedError

    def misconceptions(self, mt: tuple[Any, ...]) -> str:
        raise NotImplementedError

    def score(self, i: int, score: Any, band: Any) -> str:
        raise NotImplementedError

    def row_end(self, ignored: Iterable[str]) -> str:
        raise NotImplementedError

    def row(self, row: int, rid: str, errors: tuple[tuple[str, str], ...], level: int,
            flags: int, fired: list[str], possible: int | None,
            deciding: Iterable[str], scores: Iterable[Any], mt: tuple[Any, ...],
            ignored: list[str], review: bool = False) -> str:
        """One screened row (``scores``: score and band of each instrument in turn)."""
        values = tuple(scores)
        sc = self.score_separator.join(self.score(i, values[2 * i], values[2 * i + 1])
                                       for i in range(len(values) // 2))
        return (f"{self._head(row, rid, errors)}{self.outcome(level, flags, review)}"
                f"{self.provisional(possible, deciding)}{self.fired(fired)}"
                f"{self.misconceptions(mt)}{sc}{self.row_end(ignored)}")


class CsvEncoder(_Pieces):
    """Rows as CSV lines (``,``-separated, ``|`` between the items of a list, true/false).

    Cells that echo input (the id and the id column's name; every other cell is ours: ids of
    the rule set, numbers, true/false) are neutralised (see :func:`neutralise`) unless
    ``raw_csv``. Scores are ours, so a negative one stays a number.
    """

    def __init__(self, ruleset: Ruleset, layout: Layout, raw_csv: bool = False):
        self.raw = raw_csv
        self.id_field = _csv_field if raw_csv else _input_field
        d = self.decoder = Decoder.of(ruleset)
        self.has_id = layout.id_index is not None
        self.columns = output_columns(ruleset, layout)
        self.tail = ",".join(_csv_field(x) for x in (ruleset.id, ruleset.version,
                                                      ruleset.content_hash))
        self.levels = d.levels
        # key: flags * 2 + review -> "crisis,safety_review,flags"
        self.flag_text = Memo(lambda k: ("true," if k >> 1 & d.crisis_mask else "false,")
                              + ("true," if k & 1 else "false,") + "|".join(d.flag_ids(k >> 1)))
        self.misc = Memo(lambda mt: "|".join(compress(d.misc_ids, mt)))
        self.value = Memo(lambda x: "" if x is None else _csv_field(str(x)))
        # the empty columns after flags, each with the comma before it, and the comma before
        # the rule set's three
        self.blank = "," * (len(self.columns) - self.columns.index("flags") - 3)

    def header(self) -> str:
        return ",".join(map(self.id_field, self.columns)) + "\n"

    score_separator = ","

    def _head(self, row: int, rid: str, errors: tuple[tuple[str, str], ...]) -> str:
        status = f"error,{self.errors(errors)}" if errors else "ok,"
        return (f"{row},{self.id_field(rid)}," if self.has_id else f"{row},") + status + ","

    def outcome(self, level: int, flags: int, review: bool = False) -> str:
        return f"{self.levels[level]},{self.flag_text[flags << 1 | review]},"

    def provisional(self, possible: int | None, deciding: Iterable[str]) -> str:
        prov = "false," if possible is None else f"true,{self.levels[possible]}"
        return f"{prov},{'|'.join(deciding)},"

    def fired(self, fired: Iterable[str]) -> str:
        return "|".join(fired) + ","

    # fired(ids) is open + sep.join(item(id) for id in ids) + close
    fired_parts = ("", "{}", "|", ",")

    def misconceptions(self, mt: tuple[Any, ...]) -> str:
        return self.misc[mt] + ","

    def score(self, i: int, score: Any, band: Any) -> str:
        """Instrument i's score and band."""
        return f"{self.value[score]},{self.value[band]}"

    def row_end(self, ignored: Iterable[str]) -> str:
        return f",{'|'.join(ignored)},{self.tail}\n"

    def id_fields(self, ids: Sequence[str]) -> Iterable[str]:
        """The id column of many rows (quoted where a value needs it, neutralised)."""
        if any(c in "".join(ids) for c in ',"\r\n') or (
                not self.raw and any(map(str.startswith, ids, repeat(FORMULA_START)))):
            return map(self.id_field, ids)
        return ids

    def ok_format(self) -> str:
        """str.format template of a row without errors: {0} row, {1} id field, {2} outcome,
        {3} provisional, {4} fired, {5} misconceptions, then the scores; nothing ignored."""
        return ("{0},{1},ok,," if self.has_id else "{0},ok,,") + "{2}{3}{4}{5}"

    def failed(self, row: int, rid: str, errors: tuple[tuple[str, str], ...],
               flags: int | None = None, review: bool = False) -> str:
        """A row that could not be screened: level blank; crisis and flags blank (unknown)
        unless ``flags`` holds the crisis flags found in it."""
        head = f"{row},{self.id_field(rid)}," if self.has_id else f"{row},"
        found = "," if flags is None else (
            ("true," if flags & self.decoder.crisis_mask else "false,")
            + "|".join(self.decoder.flag_ids(flags)))
        crisis, _, listed = found.partition(",")
        return (f"{head}error,{self.errors(errors)},,{crisis},{'true' if review else 'false'},"
                f"{listed}{self.blank}{self.tail}\n")

    @staticmethod
    def errors(errors: tuple[tuple[str, str], ...]) -> str:
        return _csv_field("|".join(f"{code}:{col}" if col else code for code, col in errors))

    def footer(self) -> str:
        return ""


def _json_list(items: Iterable[str]) -> str:
    """A JSON list of identifiers (rule-set ids need no escaping; see the loader's ID_RE)."""
    text = '", "'.join(items)
    return f'["{text}"]' if text else "[]"


class JsonlEncoder(_Pieces):
    """Rows as JSON objects with the CSV's keys and real types (lists, numbers, booleans)."""

    end = "\n"

    def __init__(self, ruleset: Ruleset, layout: Layout, raw_csv: bool = False):
        d = self.decoder = Decoder.of(ruleset)  # (raw_csv: JSON needs no neutralising)
        self.has_id = layout.id_index is not None
        self.columns = output_columns(ruleset, layout)
        self.id_key = json.dumps(self.columns[1]) if self.has_id else ""
        self.tail = (f'"ruleset_id": {json.dumps(ruleset.id)}, "ruleset_version": '
                     f'{json.dumps(ruleset.version)}, "ruleset_sha256": '
                     f'{json.dumps(ruleset.content_hash)}}}{self.end}')
        self.levels = tuple(json.dumps(lv) for lv in d.levels)
        # key: flags * 2 + review
        self.flag_text = Memo(lambda k: f'"crisis": {json.dumps(bool(k >> 1 & d.crisis_mask))}, '
                                        f'"safety_review": {json.dumps(bool(k & 1))}, '
                                        f'"flags": {_json_list(d.flag_ids(k >> 1))}')
        self.misc = Memo(lambda mt: _json_list(compress(d.misc_ids, mt)))
        self.value = Memo(json.dumps)
        self.score_keys = tuple(f"{json.dumps(f'{inst.id}_{part}')}: "
                                for inst in ruleset.instruments for part in ("score", "band"))
        first = self.columns.index("flags") + 1
        self.blank = "".join(f", {json.dumps(c)}: null" for c in self.columns[first:-3])

    def header(self) -> str:
        return ""

    def _head(self, row: int, rid: str, errors: tuple[tuple[str, str], ...]) -> str:
        ident = f"{self.id_key}: {json.dumps(rid)}, " if self.has_id else ""
        if not errors:
            return f'{{"row": {row}, {ident}"status": "ok", "errors": []'
        errs = json.dumps([{"code": c, "column": col or None} for c, col in errors])
        return f'{{"row": {row}, {ident}"status": "error", "errors": {errs}'

    score_separator = ""

    def outcome(self, level: int, flags: int, review: bool = False) -> str:
        return f', "level": {self.levels[level]}, {self.flag_text[flags << 1 | review]}, '

    def provisional(self, possible: int | None, deciding: Iterable[str]) -> str:
        prov = ('"provisional": false, "possible_level": null' if possible is None else
                f'"provisional": true, "possible_level": {self.levels[possible]}')
        return f'{prov}, "deciding_questions": {_json_list(deciding)}, '

    def fired(self, fired: Iterable[str]) -> str:
        return f'"fired_rules": {_json_list(fired)}, '

    fired_parts = ('"fired_rules": [', '"{}"', ", ", "], ")

    def misconceptions(self, mt: tuple[Any, ...]) -> str:
        return f'"misconceptions": {self.misc[mt]}, '

    def score(self, i: int, score: Any, band: Any) -> str:
        """Instrument i's score and band."""
        keys = self.score_keys
        return f"{keys[2 * i]}{self.value[score]}, {keys[2 * i + 1]}{self.value[band]}, "

    def row_end(self, ignored: Iterable[str]) -> str:
        return f'"ignored_answers": {_json_list(ignored)}, {self.tail}'

    def id_fields(self, ids: Sequence[str]) -> Iterable[str]:
        return map(json.encoder.encode_basestring_ascii, ids)  # as json.dumps writes them

    def ok_format(self) -> str:
        """As :meth:`CsvEncoder.ok_format`."""
        key = self.id_key.replace("{", "{{").replace("}", "}}")
        ident = f"{key}: {{1}}, " if self.has_id else ""
        return f'{{{{"row": {{0}}, {ident}"status": "ok", "errors": []{{2}}{{3}}{{4}}{{5}}'

    def failed(self, row: int, rid: str, errors: tuple[tuple[str, str], ...],
               flags: int | None = None, review: bool = False) -> str:
        """As :meth:`CsvEncoder.failed`."""
        d = self.decoder
        found = ('"crisis": null, "safety_review": {}, "flags": null' if flags is None else
                 f'"crisis": {json.dumps(bool(flags & d.crisis_mask))}, "safety_review": {{}}, '
                 f'"flags": {_json_list(d.flag_ids(flags))}').format(json.dumps(review))
        return f'{self._head(row, rid, errors)}, "level": null, {found}{self.blank}, {self.tail}'

    def footer(self) -> str:
        return ""


class JsonEncoder(JsonlEncoder):
    """One JSON array of the JSONL objects, written as it goes.

    Every row ends with ",\n"; the writer holds the last two characters back and drops them at
    the end (rows are encoded in workers that cannot know which row is last).
    """

    end = ",\n"

    def header(self) -> str:
        return "[\n"

    def footer(self) -> str:
        return "]\n"


ENCODERS: dict[str, type[CsvEncoder] | type[JsonlEncoder]] = {
    "csv": CsvEncoder, "jsonl": JsonlEncoder, "json": JsonEncoder}


def check_paths(input_path: str, outputs: Sequence[tuple[str, str | None]], force: bool) -> None:
    """Refuse an output that is the input or another output, or that exists without ``force``.

    ``outputs`` holds (what, path) pairs, path None or '-' for none/stdout. Raises
    :class:`UsageError`.
    """
    seen: list[tuple[str, Path]] = []
    if input_path != "-":
        seen.append(("the input", Path(input_path)))
    for what, path in outputs:
        if path is None or path == "-":
            continue
        target = Path(path)
        for other_what, other in seen:
            if _same_file(target, other):
                raise UsageError(f"{what} '{path}' is {other_what}",
                                 hint=("never write over the input: " if other_what ==
                                       "the input" else "") + "give each output its own name, "
                                      "e.g. -o results.csv --errors problems.csv")
        if target.is_dir():
            raise UsageError(f"{what} '{path}' is a folder", hint="give a file name")
        if target.exists() and not force:
            raise UsageError(f"{what} '{path}' already exists",
                             hint="pass --force to replace it, or choose another name")
        seen.append((f"the {what}", target))


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


class _Writes(Protocol):
    def write(self, text: str, /) -> object: ...


class ProblemWriter:
    """Writes problems as CSV rows (the ``--errors`` file, or stdout); text cells are
    neutralised (see :func:`neutralise`) unless ``raw_csv``."""

    def __init__(self, handle: _Writes, raw_csv: bool = False):
        self._writer = csv.writer(handle, lineterminator="\n")
        self._writer.writerow(PROBLEM_COLUMNS)
        self.raw = raw_csv

    def __call__(self, problem: Problem) -> None:
        self._writer.writerow(problem if self.raw else
                              [c if isinstance(c, int) else neutralise(c) for c in problem])


DICTIONARY_COLUMNS = ("column", "question", "section", "type", "required", "allowed_values",
                      "range", "asked_when", "notes")
_TYPE_NOTES = {
    "yesno": "yes or no (also y/n, true/false, 1/0, any case)",
    "choice": "one code, or its label",
    "multi": "codes or labels separated by | (or 'none')",
    "integer": "a whole number",
    "text": "free text",
}


def template_header(ruleset: Ruleset, id_column: str = "id") -> list[str]:
    """The columns of an empty input file: the id, then every question id in order."""
    return [id_column, *ruleset.questions]


def dictionary_rows(ruleset: Ruleset, id_column: str = "id") -> list[list[str]]:
    """The data dictionary: a header row, then one row per template column."""
    rows = [list(DICTIONARY_COLUMNS),
            [id_column, "Identifies the row; carried to the output and used in the summary",
             "", "id", "recommended", "", "", "", "unique per row"]]
    sections = {s.id: s.title for s in ruleset.sections}
    for q in ruleset.questions.values():
        allowed = "; ".join(c.spellings for c in q.choices)
        if q.type == "yesno":
            allowed = "yes; no"
        rng = f"{q.min}-{q.max}" if q.type == "integer" else ""
        notes = f"{_TYPE_NOTES[q.type]}; blank = unanswered; 'declined' = declined to answer"
        rows.append([q.id, " ".join(q.text.split()), sections.get(q.section, q.section), q.type,
                     "yes" if q.required else "no", allowed, rng,
                     q.ask_when.text if q.ask_when else "", notes])
    return rows


def csv_text(rows: Iterable[Sequence[str]], delimiter: str = ",") -> str:
    """``rows`` as CSV text (minimal quoting, ``\n`` line ends)."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
