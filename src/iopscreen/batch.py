"""Batch screening: a CSV of responses in, one result row per input row out, streaming.

:func:`run_batch` reads the input (see :mod:`iopscreen.batch_input`) in blocks of lines,
screens each block with a :class:`RowScreener` (in this process, or, when the input is large,
in forked worker processes fed through pipes: see :class:`_Workers`), writes the blocks' rows in
input order (formats in :mod:`iopscreen.batch_output`), reports every problem, and returns the
:class:`Tally` for the summary.

A block of lines is screened all at once by the rule set's lanes (:mod:`iopscreen.lanes`: each
condition evaluated for every row of the block together) and written from pieces kept per
distinct value (:class:`_BlockTexts`). The rows the lanes mark, and every row of an input read
with a csv reader, are screened one at a time: each cell parsed by the engine's own
:class:`iopscreen.answers.AnswerParser` (through a table of the texts it has parsed before, so a
cell is one dict lookup; declined answers through a second table) and the row screened by the rule
set's compiled program (its batch variant, which hands back the rule effects as bit masks); the
level, flags and provisional state are then read from them exactly as
:func:`iopscreen.engine.screen` decides them. Both ways give the same bytes (tests/test_lanes.py).

Nothing here prints, exits or imports terminal code. Answer values never appear in a problem's
message unless ``show_values`` is set: answers are health data.
"""

from __future__ import annotations

import csv
import gc
import heapq
import io
import os
import pickle
import re
import signal
import string
import struct
import sys
import tempfile
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from operator import attrgetter, is_, itemgetter, not_
from typing import IO, Any, Callable, Iterable, Iterator, NamedTuple, Sequence

from . import lanes
from .answers import AnswerParser, InvalidAnswer
from .batch_input import (
    E_EMPTY,
    E_ENCODING,
    ID_NAMES,
    Layout,
    MalformedCsv,
    Source,
    alignments,
    encoding_error,
    fit_row,
    malformed_error,
    plan_layout,
    sniff_delimiter,
)
from .batch_output import ENCODERS, JsonEncoder, Memo
from .engine import ATTENTION_SEVERITIES, program_for
from .program import band_id_for
from .errors import AnswerError, Diagnostic, IopscreenError
from .ruleset.model import Ruleset

BLOCK_CHARS = 1 << 18  # text screened at a time (about 1,400 rows of 60 answers)
CHUNK_ROWS = 4096  # rows screened at a time when a csv reader reads the input here
PARALLEL_MIN_CHARS = 4 * BLOCK_CHARS  # smaller inputs are screened in this process
TABLE_LIMIT = 4096  # most distinct cell texts a column's parse table remembers
CRISIS_LISTED = 100  # crisis rows kept for the summary (all are counted and in the output)
BUCKET_IDS = 100_000  # ids checked for repeats at a time (memory stays flat)

ERROR, WARNING = "error", "warning"
E_FIELDS = ("E410", "wrong-field-count")  # E401-E406 come from answers.py
W_MISSING_ID = ("W410", "missing-id")
W_DUPLICATE_ID = ("W411", "duplicate-id")
W_NOT_ASKED = ("W412", "answered-not-asked")
W_SHORT_ROW = ("W413", "short-row")
MALFORMED = "possible crisis: row malformed, check the source"


class Problem(NamedTuple):
    """One problem with one row: where it is (data row, source line, id, column) and what."""

    row: int
    line: int
    id: str
    column: str
    level: str
    code: str
    name: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class BatchOptions:
    """Everything ``iopscreen batch`` lets a user choose about reading and writing."""

    fmt: str = "csv"
    delimiter: str | None = None  # None: sniff from the header
    id_column: str | None = None  # None: guess
    ignore_extra: bool = False
    show_values: bool = False
    jobs: int = 1
    raw_csv: bool = False  # CSV output: leave cells that start like a formula as they are


@dataclass
class Tally:
    """Counts for the summary; merged chunk by chunk in input order."""

    levels: list[int]  # rows without errors, per level rank
    rows: int = 0  # output rows
    error_rows: int = 0
    provisional: int = 0  # among rows without errors
    blank: int = 0  # blank rows skipped
    crisis: int = 0  # all rows, with or without errors
    crisis_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (row, id, note)
    # rows a person must check against the source for a crisis answer not screened (a
    # malformed row in which none was found, a safety answer skip logic dropped)
    review: int = 0
    review_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (row, id, why)
    dropped_safety: int = 0  # rows where skip logic dropped an answer behind a crisis rule
    codes: dict[str, int] = field(default_factory=dict)  # problem code -> count
    errors: int = 0  # problems of level error
    warnings: int = 0

    SUMMARY = ("rows", "blank", "error_rows", "provisional", "crisis", "safety_review",
               "first_row", "last_row", "missing_ids")

    @classmethod
    def from_summary(cls, got: Sequence[Any]) -> tuple[Tally, dict[str, Any]]:
        """The tally of one row of :func:`iopscreen.sql.results.summary_query` (the named
        counts, then one count per level), and the named counts themselves."""
        counts = dict(zip(cls.SUMMARY, got))
        tally = cls([int(n or 0) for n in got[len(cls.SUMMARY):]])
        tally.rows, tally.blank = int(counts["rows"] or 0), int(counts["blank"] or 0)
        tally.error_rows = int(counts["error_rows"] or 0)
        tally.provisional = int(counts["provisional"] or 0)
        tally.crisis = int(counts["crisis"] or 0)
        return tally, counts

    def add(self, other: Tally) -> None:
        self.levels = [a + b for a, b in zip(self.levels, other.levels)]
        self.rows += other.rows
        self.error_rows += other.error_rows
        self.provisional += other.provisional
        self.blank += other.blank
        self.crisis += other.crisis
        self.crisis_rows.extend(other.crisis_rows[:CRISIS_LISTED - len(self.crisis_rows)])
        self.review += other.review
        self.review_rows.extend(other.review_rows[:CRISIS_LISTED - len(self.review_rows)])
        self.dropped_safety += other.dropped_safety
        for code, n in other.codes.items():
            self.codes[code] = self.codes.get(code, 0) + n
        self.errors += other.errors
        self.warnings += other.warnings

    def screened(self, row: int, rid: str, level: int, errors: bool, provisional: bool,
                 crisis: bool) -> None:
        """Count one screened row (both engines count rows this way)."""
        if errors:
            self.error_rows += 1
        else:
            self.levels[level] += 1
            if provisional:
                self.provisional += 1
        if crisis:
            self.crisis += 1
            if len(self.crisis_rows) < CRISIS_LISTED:
                self.crisis_rows.append((row, rid, "row also has errors" if errors else ""))

    def count(self, problem: Problem) -> None:
        self.codes[problem.code] = self.codes.get(problem.code, 0) + 1
        if problem.level == ERROR:
            self.errors += 1
        else:
            self.warnings += 1


@dataclass
class Chunk:
    """The result of screening consecutive data rows: output text, problems, counts, ids."""

    text: str
    problems: list[Problem]
    tally: Tally
    first_row: int
    count: int  # data rows read, blank ones included
    ids: list[tuple[str, str]]  # per id bucket: ids, and "row<TAB>line" (one a line each)
    open_end: bool = False  # the last record ended inside quotes (at the end of the text)
    last_line: int = 0  # where the last record starts


# ---------------------------------------------------------------------------------- screener

_MISS = object()
_DECLINED = object()  # a declined cell, in the values fill_marked returns
BLANK, FAILED = 1, 2
_NO_DECLINED: set[str] = set()  # shared by rows with nothing declined; the program only discards


class Decision:
    """The engine's rules for reading a result from the rule truths, as bit masks.

    As :func:`iopscreen.engine.screen`: the level is the highest ``min_level`` of the rules
    that fired (the lowest level when none did); the flags are those of the rules that fired;
    a rule left unknown is *pending* when it could raise the level or add a crisis, urgent or
    review flag not raised already, and any pending rule makes the result provisional, with
    ``possible_level`` the highest level a pending rule could reach and the deciding questions
    the unanswered, applicable ones behind the pending rules.

    Each rule's ``effect`` holds its flags in the low bits and its level as a bit above them,
    so OR-ing the effects of the fired rules gives both at once. The masks of pending rules
    and their questions are worked out once per distinct case and kept.
    """

    def __init__(self, ruleset: Ruleset, program: Any, crisis_mask: int):
        rank = {lv.id: lv.rank for lv in ruleset.levels}
        flag_bit = {f: 1 << i for i, f in enumerate(ruleset.flags)}
        qindex = {q: i for i, q in enumerate(ruleset.questions)}
        self.rule_rank = tuple(rank[r.min_level] if r.min_level else 0 for r in ruleset.rules)
        self.rule_flags = tuple(sum(flag_bit[f] for f in r.flags) for r in ruleset.rules)
        self.rule_attention = tuple(
            sum(flag_bit[f] for f in r.flags if ruleset.flags[f].severity in ATTENTION_SEVERITIES)
            for r in ruleset.rules)
        self.rule_behind = tuple(
            sum(1 << qindex[q] for name in r.when.names for q in program.behind[name])
            for r in ruleset.rules)
        self.nflags = len(ruleset.flags)
        self.nlevels = len(ruleset.levels)
        self.flag_mask = (1 << self.nflags) - 1
        self.crisis_mask = crisis_mask
        self.rule_effect = tuple(f | (1 << (self.nflags + r))
                                 for f, r in zip(self.rule_flags, self.rule_rank))
        self.could_change = Memo(self._could_change)
        self.pending_effect = Memo(self._pending_effect)
        qids = tuple(ruleset.questions)
        self.behind_questions = Memo(lambda mask: tuple(
            (i, qids[i]) for i in range(len(qids)) if mask >> i & 1))

    def _could_change(self, key: int) -> int:
        """Rules that, left unknown, make a result pending (key: flags * nlevels + level)."""
        flags, level = divmod(key, self.nlevels)
        return sum(1 << i for i, (rank, attention) in enumerate(zip(self.rule_rank,
                                                                    self.rule_attention))
                   if rank > level or attention & ~flags)

    def _pending_effect(self, pending: int) -> tuple[int, int]:
        """(highest min_level rank, questions behind) of the rules in ``pending``."""
        top, behind = 0, 0
        for i, rank in enumerate(self.rule_rank):
            if pending >> i & 1:
                top = max(top, rank)
                behind |= self.rule_behind[i]
        return top, behind


class _BlockTexts:
    """The output rows of a block screened in lanes, built from the encoder's pieces, each
    kept per distinct key (see :meth:`RowScreener.screen_block`).

    A row is the encoder's :meth:`ok_format` with its fields filled. The fired rules are
    written group by group, seven rules a group: a group's piece is picked by a byte holding
    which of its rules fired and, in the top bit, whether a rule of an earlier group did
    (then the piece starts with the separator). The template's literal text is glued to the
    end of the field before it (the first field also gets what comes before it; the id's goes
    to the start of the outcome), so a row is one join of its fields' pieces.
    """

    GROUP = 7

    def __init__(self, enc: Any, ruleset: Ruleset, verdicts: lanes.Verdicts,
                 scores: list[tuple[int, Any]]):
        nmisc = len(ruleset.misconceptions)
        questions = tuple(ruleset.questions)
        rules = tuple(r.id for r in ruleset.rules)
        opening, item, separator, closing = enc.fired_parts
        ngroups = -(-len(rules) // self.GROUP)

        def literal(text: str) -> str:
            return text.replace("{", "{{").replace("}", "}}")

        template = (enc.ok_format().replace(
            "{4}", literal(opening) + "".join("{%d}" % (6 + g) for g in range(ngroups))
            + literal(closing)) + enc.score_separator.join(
            "{%d}" % (6 + ngroups + k) for k in range(len(scores))) + literal(enc.row_end(())))
        self.order: list[int] = []  # the fields, in the order they are written
        after: dict[int, str] = {}
        before = ""
        for text, name, _, _ in string.Formatter().parse(template):
            if self.order:
                after[self.order[-1]] += text
            else:
                before += text
            if name is not None:
                self.order.append(int(name))
                after[int(name)] = ""
        self.row_format = literal(before) + "{}" + literal(after[0])

        def outcome(key: Any) -> str:
            return id_after + enc.outcome(*verdicts.level_flags(key)) + after[2]

        id_after = after.get(1, "")  # written with the outcome, which follows the id
        self.outcome = Memo(outcome)

        def provisional(key: Any) -> str:
            key = lanes.as_int(key)  # possible level ranks, then deciding questions
            nlevels = verdicts.nlevels
            possible, deciding = key & ((1 << nlevels) - 1), key >> nlevels
            if not possible:
                return enc.provisional(None, ()) + after[3]
            return enc.provisional(possible.bit_length() - 1, [
                q for i, q in enumerate(questions) if deciding >> i & 1]) + after[3]

        self.provisional = Memo(provisional)
        self.misconceptions = Memo(lambda key: enc.misconceptions(
            tuple(bool(lanes.as_int(key) >> i & 1) for i in range(nmisc))) + after[5])
        size = self.GROUP
        self.fired = [tuple((separator if b >> size and b & 0x7F else "") + separator.join(
            item.format(rules[g + j]) for j in range(min(size, len(rules) - g)) if b >> j & 1)
            + after[6 + g // size] for b in range(256)) for g in range(0, len(rules), size)]
        # per instrument: the piece for each score byte (255: no score)
        self.scores = [tuple((enc.score(k, s, band_id_for(inst, s)) if s <= hi else
                              enc.score(k, None, None)) + after[6 + ngroups + k]
                             for s in range(256))
                       for k, (hi, inst) in enumerate(scores)]

    def rows(self, fields: dict[int, Iterable[str]]) -> list[str]:
        """Each row's text, from the fields' pieces (by field number)."""
        return list(map("".join, zip(*(fields[i] for i in self.order))))

class RowScreener:
    """Screens CSV records of one layout with one rule set.

    Each cell is one dict lookup in its column's table of texts that column's
    :class:`AnswerParser` has already parsed (filled beforehand with codes, labels, yes/no forms
    and small integer ranges); a new text, a declined answer or an invalid value takes the slow
    path through the parser itself. A fill function generated for the layout builds the values
    and the rule set's compiled program screens them; the level, flags and provisional state are
    then read from the rule truths (see :class:`Decision`).
    """

    def __init__(self, ruleset: Ruleset, layout: Layout, options: BatchOptions):
        self.ruleset = ruleset
        self.layout = layout
        self.options = options
        self.program = program = program_for(ruleset)
        # Question slots come first, in question order, so a slot also indexes the ask truths.
        assert all(program.slots[q] == i for i, q in enumerate(ruleset.questions))
        self.encoder = ENCODERS[options.fmt](ruleset, layout, raw_csv=options.raw_csv)
        self.ncols = len(layout.header)
        self.columns: list[tuple[int, int, str, AnswerParser, dict[str, Any],
                                 dict[str, Any]]] = []
        tables: list[dict[str, Any] | None] = []
        marked: list[dict[str, Any] | None] = []
        for qid, question in ruleset.questions.items():
            col = layout.question_index.get(qid)
            if col is None:
                tables.append(None)
                marked.append(None)
                continue
            parser = AnswerParser(question)
            table, with_declined = _parse_tables(parser)
            tables.append(table)
            marked.append(with_declined)
            self.columns.append((col, program.slots[qid], qid, parser, table, with_declined))
        columns = [layout.question_index.get(q) for q in ruleset.questions]
        self.fill = _compile_fill(columns, tables, program.size)
        # The same with declined answers as _DECLINED: a row with one is no slower to read.
        self.fill_marked = _compile_fill(columns, marked, program.size)
        self.qids = tuple(ruleset.questions)
        score_slots = [program.slots[n] for inst in ruleset.instruments
                       for n in (inst.id, f"{inst.id}_band")]
        self.score_values: Callable[[list[Any]], Iterable[Any]] = (
            itemgetter(*score_slots) if score_slots else lambda v: ())
        self.decision = Decision(ruleset, program, self.encoder.decoder.crisis_mask)
        self.run = program.batch_runner(self.decision.rule_effect)
        crisis_flags = {f for f, flag in ruleset.flags.items() if flag.severity == "crisis"}
        self.safety_questions = frozenset(
            q for rule in ruleset.rules if crisis_flags.intersection(rule.flags)
            for name in rule.when.names for q in program.behind[name])
        self.id_buckets = 1  # set by the run from the input's size, before workers start
        try:
            self.lanes: lanes.Plan | None = lanes.Plan(ruleset, {
                q: layout.question_index.get(q) for q in ruleset.questions})
        except lanes.Unsupported:
            self.lanes = None  # every row goes one at a time
        self.verdicts = lanes.Verdicts(self.decision, len(ruleset.questions))
        self.block_texts = _BlockTexts(self.encoder, ruleset, self.verdicts,
                                       [(c.hi, inst) for c, inst in self.lanes.scores]
                                       if self.lanes is not None else [])

    def slow_fill(self, r: list[str]) -> tuple[list[Any], set[str], list[tuple[int, str, str,
                                                                              str, str]]]:
        """Parse every cell through its parser: values, declined questions and invalid cells
        as (column, code, name, message, hint)."""
        v: list[Any] = [None] * self.program.size
        declined: set[str] = set()
        bad: list[tuple[int, str, str, str, str]] = []
        for col, slot, qid, parser, table, with_declined in self.columns:
            cell = r[col]
            hit = table.get(cell, _MISS)
            if hit is not _MISS:
                v[slot] = hit
                continue
            try:
                answer = parser.parse(cell)
            except InvalidAnswer as exc:
                bad.append((col, exc.code, exc.name, exc.message, exc.hint))
                continue
            if answer is not None and answer.declined:
                declined.add(qid)
                continue
            value = None if answer is None else answer.value
            v[slot] = value
            if len(table) < TABLE_LIMIT:
                table[cell] = with_declined[cell] = value
        return v, declined, bad

    def marked_fill(self, r: list[str]) -> tuple[list[Any], set[str]]:
        """Values and declined questions of a record whose cells are all in the tables but
        some declined. Raises KeyError for a cell that is not (the slow path's cue)."""
        v = self.fill_marked(r)
        slots = list(compress(range(len(self.qids)), map(is_, v, repeat(_DECLINED))))
        for slot in slots:
            v[slot] = None
        qids = self.qids
        return v, {qids[slot] for slot in slots}

    def screen(self, records: Iterable[list[str]], reader: Any, first_row: int,
               line_offset: int) -> Chunk:
        """Screen ``records``, the data rows numbered from ``first_row``.

        With a csv ``reader``, ``line_offset + reader.line_num`` is the source line ending the
        last record read; without one, each record is the one line ``line_offset + 1 + i``.
        Returns the :class:`Chunk`. Raises :class:`MalformedCsv`.
        """
        enc_row, fill, run = self.encoder.row, self.fill, self.run
        score_values, ncols, idc = self.score_values, self.ncols, self.layout.id_index
        d = self.decision
        nflags, nlevels, flag_mask, crisis_mask = d.nflags, d.nlevels, d.flag_mask, d.crisis_mask
        could_change, pending_effect, behind_questions = (d.could_change, d.pending_effect,
                                                          d.behind_questions)
        probe = idc if idc is not None else 0  # a blank here may mean a blank row
        out: list[str] = []
        add = out.append
        problems: list[Problem] = []
        tally = Tally([0] * len(self.ruleset.levels))
        ids: list[str] = []
        lines: list[int] | None = [] if reader is not None else None
        row = first_row - 1
        r: list[str] = []
        before = reader.line_num if reader is not None else 0
        try:
            for r in records:
                row += 1
                if lines is not None:
                    lines.append(line_offset + before + 1)
                    before = reader.line_num
                if len(r) != ncols or not r[probe].strip():
                    rid = r[idc] if idc is not None and len(r) > idc else ""
                    r, done = self._irregular(r, row, rid, problems, tally, add, lines,
                                              line_offset, first_row)
                    if done:
                        if idc is not None:
                            ids.append("" if done == BLANK else rid)
                        continue
                if idc is not None:
                    rid = r[idc]
                    ids.append(rid)
                else:
                    rid = ""
                errors: tuple[tuple[str, str], ...] = ()
                try:
                    v = fill(r)
                    declined = _NO_DECLINED
                except KeyError:
                    try:
                        v, declined = self.marked_fill(r)
                    except KeyError:
                        v, declined, bad = self.slow_fill(r)
                        errors = self._cell_problems(problems, tally, row, rid, r, bad, lines,
                                                     line_offset, first_row)
                effect, unknown, fired, mt, skipped, ignored = run(v, declined)
                # What the rules decide (see Decision), inline: it runs once a row.
                level = (effect >> nflags).bit_length() - 1 if effect else 0
                flags = effect & flag_mask
                possible = None
                deciding: Iterable[str] = ()
                if unknown:
                    pending = unknown & could_change[flags * nlevels + level]
                    if pending:
                        top, behind = pending_effect[pending]
                        possible = level if level > top else top
                        deciding = [q for s, q in behind_questions[behind]
                                    if v[s] is None and not skipped >> s & 1]
                review = bool(ignored) and not self.safety_questions.isdisjoint(ignored)
                add(enc_row(row, rid, errors, level, flags, fired, possible, deciding,
                            score_values(v), mt, ignored, review))
                if ignored:
                    self._not_asked(ignored, problems, tally, row, rid, lines, line_offset,
                                    first_row)
                tally.screened(row, rid, level, bool(errors), possible is not None,
                               bool(flags & crisis_mask))
        except csv.Error as exc:
            raise MalformedCsv(line_offset + before + 1, str(exc)) from None
        tally.rows = len(out)
        count = row - first_row + 1
        open_end = count > 0 and bool(r) and r[-1].endswith(("\n", "\r"))
        starts = lines if lines is not None else range(line_offset + 1, line_offset + 1 + count)
        return Chunk("".join(out), problems, tally, first_row, count,
                     self._bucket_ids(ids, first_row, starts), open_end,
                     starts[-1] if count else 0)

    def screen_block(self, records: list[list[str]], first_row: int,
                     line_offset: int) -> Chunk:
        """Screen ``records``, one a line from ``line_offset + 1`` on, all at once with the
        rule set's lanes (see :mod:`iopscreen.lanes`); the rows the lanes mark, and the rows
        of the wrong length or without an id, go through :meth:`screen` one at a time."""
        plan = self.lanes
        n = len(records)
        if plan is None or not n:
            return self.screen(records, None, first_row, line_offset)
        ncols, idc = self.ncols, self.layout.id_index
        probe = idc if idc is not None else 0
        one_by_one: set[int] = set()
        given = records
        short: list[int] = []  # short rows screened here, padded (exports drop empty ends)
        if any(map(ncols.__ne__, map(len, records))):
            wrong = list(compress(range(n), map(ncols.__ne__, map(len, records))))
            records = list(records)
            dummy = [""] * ncols
            for i in wrong:
                if len(records[i]) < ncols:
                    records[i] = fit_row(records[i], ncols)
                    short.append(i)
                else:
                    one_by_one.add(i)
                    records[i] = dummy
        probe_cells = list(map(itemgetter(probe), records))
        one_by_one.update(compress(range(n), map(not_, map(str.strip, probe_cells))))
        block = lanes.Block(n, plan.codes(records, ncols))
        true, unknown, miscs, open_, scores = plan.evaluate(block)
        if block.fallback:
            one_by_one.update(compress(range(n), block.fallback.to_bytes(n, "little")))
        reached, possible, deciding, provisional = self.verdicts.decide(block, true, unknown,
                                                                        open_)
        lf_words = lanes.pack(reached, n)
        ids = probe_cells if idc is not None else []  # (no id column: no ids to check)
        rids = ids or [""] * n
        enc, texts = self.encoder, self.block_texts
        id_fields = enc.id_fields(rids)
        fields: dict[int, Iterable[str]] = {
            0: map(texts.row_format.format, range(first_row, first_row + n)),
            1: id_fields,
            2: map(texts.outcome.__getitem__, lf_words),
            3: map(texts.provisional.__getitem__, lanes.pack(possible + deciding, n)),
            5: map(texts.misconceptions.__getitem__, lanes.pack(miscs, n))}
        earlier, size = 0, texts.GROUP
        for g, pieces in enumerate(texts.fired):
            acc = earlier << 7
            for j, lane in enumerate(true[size * g:size * g + size]):
                acc |= lane << j
                earlier |= lane
            fields[6 + g] = map(pieces.__getitem__, acc.to_bytes(n, "little"))
        for k, ((x, known), pieces) in enumerate(zip(scores, texts.scores)):
            marked = (x & known * 255) | (255 * (block.one ^ known))
            fields[6 + len(texts.fired) + k] = map(pieces.__getitem__,
                                                   marked.to_bytes(n, "little"))
        out = texts.rows(fields)
        # Counts, from the distinct level-and-flags keys of the rows screened here.
        tally = Tally([0] * len(self.ruleset.levels))
        kept = lf_words
        prov_rows = provisional.to_bytes(n, "little")
        if one_by_one:
            keep = bytes(i not in one_by_one for i in range(n))
            kept = list(compress(lf_words, keep))
            prov_rows = bytes(map(int.__and__, prov_rows, keep))
        crisis_keys = set()
        for key, count in Counter(kept).items():
            level, flags = self.verdicts.level_flags(key)
            tally.levels[level] += count
            if flags & self.decision.crisis_mask:
                tally.crisis += count
                crisis_keys.add(key)
        tally.rows = len(kept)
        tally.provisional = prov_rows.count(1)
        if crisis_keys:
            first = islice((i for i in compress(range(n), map(crisis_keys.__contains__,
                                                               lf_words))
                            if i not in one_by_one), CRISIS_LISTED)
            tally.crisis_rows = [(first_row + i, rids[i], "") for i in first]
        problems: list[Problem] = []
        for i in short:
            if i not in one_by_one:
                self._short_row(problems, tally, first_row + i, line_offset + 1 + i, rids[i],
                                len(given[i]))
        # The rows the lanes do not screen, one at a time, in order.
        if one_by_one:
            alone_tally = Tally([0] * len(self.ruleset.levels))
            for i in sorted(one_by_one):
                r = given[i]
                alone = self.screen([r], None, first_row + i, line_offset + i)
                out[i] = alone.text
                problems.extend(alone.problems)
                alone_tally.add(alone.tally)
                if idc is not None:
                    ids[i] = r[idc] if len(r) > idc else ""
            crisis_rows = sorted(tally.crisis_rows + alone_tally.crisis_rows)[:CRISIS_LISTED]
            tally.add(alone_tally)
            tally.crisis_rows = crisis_rows
            if short:  # the short rows' warnings in row order among the others
                problems.sort(key=attrgetter("row"))
        last = given[-1]
        open_end = bool(last) and last[-1].endswith(("\n", "\r"))
        return Chunk("".join(out), problems, tally, first_row, n,
                     self._bucket_ids(ids, first_row, range(line_offset + 1,
                                                            line_offset + 1 + n)),
                     open_end, line_offset + n)

    def _bucket_ids(self, ids: list[str], first_row: int,
                    lines: Sequence[int]) -> list[tuple[str, str]]:
        """The rows' ids sorted into :class:`DuplicateIds` buckets (here, in the workers)."""
        if not ids:
            return []
        buckets = self.id_buckets
        keys = list(map(str.strip, ids))
        where = list(map("{}\t{}".format, range(first_row, first_row + len(ids)), lines))
        if "" in keys:  # rows without an id
            where = list(compress(where, keys))
            keys = list(compress(keys, keys))
        if buckets == 1:
            sorted_keys, sorted_where = [keys], [where]
        else:  # a stable sort by bucket keeps each bucket's rows in order
            bucket = list(map(int.__mod__, map(hash, keys), repeat(buckets)))
            order = sorted(range(len(keys)), key=bucket.__getitem__)
            keys = list(map(keys.__getitem__, order))
            where = list(map(where.__getitem__, order))
            counts = Counter(bucket)
            sorted_keys, sorted_where, start = [], [], 0
            for b in range(buckets):
                end = start + counts[b]
                sorted_keys.append(keys[start:end])
                sorted_where.append(where[start:end])
                start = end
        out = []
        for k, w in zip(sorted_keys, sorted_where):
            text = "\n".join(k)
            if "\r" in text or text.count("\n") != len(k) - 1:  # a line break inside an id
                text = "\n".join(x.replace("\r", " ").replace("\n", " ") for x in k)
            out.append((text + "\n" if k else "", "\n".join(w) + "\n" if w else ""))
        return out

    def _line(self, lines: list[int] | None, row: int, line_offset: int, first_row: int) -> int:
        return lines[-1] if lines is not None else line_offset + 1 + row - first_row

    def _irregular(self, r: list[str], row: int, rid: str, problems: list[Problem],
                   tally: Tally, add: Callable[[str], None], lines: list[int] | None,
                   line_offset: int, first_row: int) -> tuple[list[str], int]:
        """Handle a blank row, a row of the wrong length or a row without id.

        Returns the record to screen (a short one padded with blank cells) and BLANK
        (skipped), FAILED (written as an error row: its cells cannot be matched to the
        columns) or 0 (screen it).
        """
        if not any(c.strip() for c in r):
            tally.blank += 1
            return r, BLANK
        line = self._line(lines, row, line_offset, first_row)
        if len(r) > self.ncols:
            self._problem(problems, tally, row, line, rid, "", ERROR, *E_FIELDS,
                          f"the row has {len(r)} fields but the header has {self.ncols}, so "
                          "its cells cannot be matched to the columns; it is not screened, "
                          "only checked for crisis answers wherever its cells could line up",
                          "check for an extra delimiter, or a delimiter inside a value that is "
                          "not in quotes")
            tally.error_rows += 1
            found = self._possible_crisis(r)
            add(self.encoder.failed(row, rid, ((E_FIELDS[0], ""),), found or None, True))
            if found:
                tally.crisis += 1
                if len(tally.crisis_rows) < CRISIS_LISTED:
                    tally.crisis_rows.append((row, rid, MALFORMED))
            else:
                tally.review += 1
                if len(tally.review_rows) < CRISIS_LISTED:
                    tally.review_rows.append((row, rid, MALFORMED))
            return r, FAILED
        if len(r) < self.ncols:
            self._short_row(problems, tally, row, line, rid, len(r))
            r = fit_row(r, self.ncols)
            rid = r[self.layout.id_index] if self.layout.id_index is not None else ""
        if self.layout.id_index is not None and not rid.strip():
            self._problem(problems, tally, row, line, "", self.layout.id_name, WARNING,
                          *W_MISSING_ID, "the row has no id",
                          "fill in the id so the result can be matched to the person")
        return r, 0

    def _short_row(self, problems: list[Problem], tally: Tally, row: int, line: int, rid: str,
                   fields: int) -> None:
        self._problem(problems, tally, row, line, rid, "", WARNING, *W_SHORT_ROW,
                      f"the row has {fields} field(s) but the header has {self.ncols}: the "
                      "missing cells at its end are read as blank (unanswered)",
                      "spreadsheet exports leave out empty cells at the end of a row; if a "
                      "delimiter is missing inside the row instead, fix it")

    def _possible_crisis(self, r: list[str]) -> int:
        """The crisis flags raised by any reading of a long record's cells as the columns
        (see :func:`iopscreen.batch_input.alignments`); cells that are not valid answers there
        count as unanswered."""
        found = 0
        for record in alignments(r, self.ncols):
            values, declined, _ = self.slow_fill(record)
            found |= self.run(values, declined)[0] & self.decision.crisis_mask
        return found

    def _not_asked(self, ignored: list[str], problems: list[Problem], tally: Tally, row: int,
                   rid: str, lines: list[int] | None, line_offset: int, first_row: int) -> None:
        """Warn about each answer skip logic dropped (paper and spreadsheet data often holds
        them); note the row for the summary when one is behind a crisis rule."""
        line = self._line(lines, row, line_offset, first_row)
        questions = self.ruleset.questions
        for qid in ignored:
            when = questions[qid].ask_when
            assert when is not None  # only a question asked under a condition is left out
            self._problem(problems, tally, row, line, rid, self.layout.column_name(
                self.layout.question_index[qid]), WARNING, *W_NOT_ASKED,
                f"answered, but skip logic leaves this question out here (it is asked when "
                f"{when.text}), so the answer is not used",
                "check the source: the answer, or an earlier one that decides whether this "
                "question is asked, may be a slip")
        safety = [q for q in ignored if q in self.safety_questions]
        if safety:
            tally.dropped_safety += 1
            tally.review += 1
            if len(tally.review_rows) < CRISIS_LISTED:
                tally.review_rows.append((row, rid, "safety answer left out by skip logic: "
                                          + ", ".join(safety) + "; check the source"))

    def _cell_problems(self, problems: list[Problem], tally: Tally, row: int, rid: str,
                       r: list[str], bad: list[tuple[int, str, str, str, str]],
                       lines: list[int] | None, line_offset: int, first_row: int
                       ) -> tuple[tuple[str, str], ...]:
        line = self._line(lines, row, line_offset, first_row)
        errors = []
        for col, code, name, message, hint in bad:
            column = self.layout.column_name(col)
            if self.options.show_values:
                message += f" (got {r[col]!r})"
            self._problem(problems, tally, row, line, rid, column, ERROR, code, name, message,
                          hint)
            errors.append((code, column))
        return tuple(errors)

    @staticmethod
    def _problem(problems: list[Problem], tally: Tally, row: int, line: int, rid: str,
                 column: str, level: str, code: str, name: str, message: str,
                 hint: str = "") -> None:
        problem = Problem(row, line, rid, column, level, code, name, message, hint)
        problems.append(problem)
        tally.count(problem)


def _parse_tables(parser: AnswerParser) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cell text -> typed value for the forms a column is likely to hold, each parsed by
    ``parser`` itself (so a table can never disagree with it): the answers, and the same with
    the declined forms as _DECLINED (a lookup of one fails in the first table, and
    :meth:`RowScreener.marked_fill` reads the row through the second)."""
    texts = parser.likely_texts()
    table: dict[str, Any] = {}
    declined: dict[str, Any] = {}
    for text in texts:
        try:
            answer = parser.parse(text)
        except InvalidAnswer:
            continue
        if answer is None:
            table[text] = None
        elif answer.declined:
            declined[text] = _DECLINED
        else:
            table[text] = answer.value
    return table, {**table, **declined}


def _compile_fill(columns: Sequence[int | None], tables: Sequence[dict[str, Any] | None],
                  size: int) -> Callable[[list[str]], list[Any]]:
    """``fill(record) -> values``: one table lookup per question column, in slot order.

    A plain closure (no generated code). A cell missing from its table raises KeyError (the
    caller's cue to take the slow path)."""
    pairs = [(tables[i], c) for i, c in enumerate(columns)]
    pad = [None] * (size - len(columns))

    def fill(r: list[str]) -> list[Any]:
        return [None if c is None else t[r[c]] for t, c in pairs] + pad  # type: ignore[index]

    return fill


# ------------------------------------------------------------------------------- duplicates


class DuplicateIds:
    """Finds the ids that occur on more than one row, in bounded memory.

    Ids arrive sorted by hash into ``buckets`` (by :meth:`RowScreener.screen`, in the workers)
    and are spooled to unlinked, owner-only temporary files, with their rows and lines beside
    them. At the end each bucket is checked on its own: a set shows at C speed whether it
    holds a repeat at all, and only then a dict finds which. Memory stays at about one bucket
    (BUCKET_IDS ids) however many rows there are.
    """

    def __init__(self, buckets: int):
        self.buckets = buckets
        self._files: list[tuple[IO[str], IO[str]] | None] = [None] * buckets

    def add(self, parts: Sequence[tuple[str, str]]) -> None:
        """Spool one chunk's ids: per bucket, ids and "row<TAB>line", one a line each."""
        for b, (ids, where) in enumerate(parts):
            if ids:
                files = self._files[b]
                if files is None:
                    files = self._files[b] = (_scratch(), _scratch())
                files[0].write(ids)
                files[1].write(where)

    def found(self) -> Iterator[tuple[int, int, str, int]]:
        """(row, line, id, first row) for every repeat of an id, in row order."""
        files = [f for f in self._files if f is not None]
        self._files = [None] * self.buckets
        try:
            repeats = []
            for id_file, where_file in files:
                id_file.seek(0)
                ids = id_file.read().split("\n")[:-1]
                if len(set(ids)) == len(ids):
                    continue
                where_file.seek(0)
                first: dict[str, int] = {}
                found = []
                for key, at in zip(ids, where_file):
                    row_text, _, line = at.partition("\t")
                    row = int(row_text)
                    seen = first.setdefault(key, row)
                    if seen != row:
                        found.append((row, int(line), key, seen))
                repeats.append(found)
            yield from heapq.merge(*repeats)
        finally:
            for id_file, where_file in files:
                id_file.close()
                where_file.close()


def _scratch() -> IO[str]:
    return tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")


# ------------------------------------------------------------------------------------- runs

Progress = Callable[[int, int], None]  # (data rows done, bytes read)


def run_batch(ruleset: Ruleset, source: Source, write: Callable[[str], object],
              options: BatchOptions, on_problem: Callable[[Problem], None], *,
              on_layout: Callable[[Layout], None] | None = None,
              progress: Progress | None = None) -> Tally:
    """Screen every row of ``source`` and ``write`` one output row per input row, in order.

    Every problem goes to ``on_problem``, in row order; ``on_layout`` hears the checked header
    before any row is written; ``progress`` is called after each chunk. Returns the
    :class:`Tally`. Raises :class:`AnswerError` for an unreadable input or header (for a header
    problem nothing has been written) and :class:`UsageError` for a bad option.
    """
    run = _Run(ruleset, source, write, options, on_problem, progress)
    gc.freeze()  # the collector then skips the rule set and tables: a fifth of the time saved
    try:
        return run.run(on_layout)
    except UnicodeError as exc:  # (the UTF-16 codec's missing BOM is not a decode error)
        raise encoding_error(source, exc, run.next_line) from None
    except MalformedCsv as exc:
        raise malformed_error(source.name, exc) from None
    finally:
        gc.unfreeze()


@dataclass
class _Block:
    """A block of input lines, screened here or by a worker (``chunk`` None until back)."""

    text: str
    first_row: int
    line_offset: int
    lines: int
    chunk: Chunk | None = None


@dataclass
class _Run:
    """One batch run.

    The input is read in blocks of whole lines, cut where the quotes before are balanced, and
    each block is screened on the assumption that every line is one record (see
    :func:`_worker_screen`), here, or by ``jobs`` worker processes when the input is large
    (this process then only reads, hands out blocks and writes). Blocks are
    written in input order; a block that did not hold one record per line (a quoted value with
    a line break, or a stray quote) is thrown away unwritten with everything after it, and a
    csv reader reads the rest of the input here.
    """

    ruleset: Ruleset
    source: Source
    write: Callable[[str], object]
    options: BatchOptions
    on_problem: Callable[[Problem], None]
    progress: Progress | None
    next_row: int = 1
    next_line: int = 1
    tally: Tally = field(init=False)
    screener: RowScreener = field(init=False)
    json_array: bool = False
    held: str = ""  # the json format's last ",\n", written only if another row follows
    duplicates: DuplicateIds = field(init=False)

    def run(self, on_layout: Callable[[Layout], None] | None) -> Tally:
        text = self.source.text
        head = text.read(BLOCK_CHARS)
        while head and not re.search(r"[\r\n]", head) and (more := text.read(BLOCK_CHARS)):
            head += more
        if not head.strip():
            raise AnswerError(f"{self.source.name} is empty", diagnostics=[Diagnostic(
                *E_EMPTY, "the input has no header row", self.source.name, 1, 1,
                hint="the first row must name the columns ('iopscreen template' writes it)")])
        first = re.match(r"[^\r\n]*(\r\n|\n|\r)?", head)
        assert first is not None
        header_line = first.group(0)
        if "\0" in header_line:
            raise AnswerError(f"{self.source.name} looks like UTF-16", diagnostics=[Diagnostic(
                *E_ENCODING, "the header holds NUL characters: the file looks like UTF-16 "
                "without its BOM", self.source.name, 1, header_line.index("\0") + 1,
                hint="pass --encoding utf-16 (or utf-16-le), or save it as 'CSV UTF-8'")])
        delimiter = self.options.delimiter or sniff_delimiter(
            header_line, [*self.ruleset.questions, *ID_NAMES])
        by_blocks = header_line.endswith("\n") and '"' not in header_line
        if by_blocks:
            header = header_line.rstrip("\r\n").split(delimiter)
            rest = head[len(header_line):]
            self.next_line = 2
        else:
            lines = _Lines(head, text)
            reader = csv.reader(lines, delimiter=delimiter)
            try:
                header = next(reader)
            except csv.Error as exc:
                raise MalformedCsv(1, str(exc)) from None
            self.next_line = reader.line_num + 1
        layout = plan_layout(header, self.ruleset, self.source.name,
                             id_column=self.options.id_column,
                             ignore_extra=self.options.ignore_extra,
                             show_values=self.options.show_values)
        if on_layout is not None:
            on_layout(layout)
        self.screener = RowScreener(self.ruleset, layout, self.options)
        self.screener.id_buckets = _id_buckets(self.source.size, head)
        self.duplicates = DuplicateIds(self.screener.id_buckets)
        self.tally = Tally([0] * len(self.ruleset.levels))
        encoder = self.screener.encoder
        self.json_array = isinstance(encoder, JsonEncoder)
        self.write(encoder.header())
        if by_blocks:
            self._blocks(rest, text, delimiter, len(head) >= BLOCK_CHARS)
        else:
            self._sequential(lines, self.next_line - 1, delimiter)
        if self.held:
            self.write("\n")
        self.write(encoder.footer())
        self._report_duplicates()
        return self.tally

    def _blocks(self, rest: str, text: IO[str], delimiter: str, large: bool) -> None:
        """Screen blocks and write them in order; with ``jobs`` > 1 and a large input, ``jobs``
        worker processes screen them while this process reads, hands out and writes."""
        jobs = self.options.jobs
        workers = None
        if jobs > 1 and large and (self.source.size or PARALLEL_MIN_CHARS) >= PARALLEL_MIN_CHARS:
            workers = _Workers.start(jobs, self.screener, delimiter)
        _worker_start(self.screener, delimiter, in_process=True)
        pending: deque[_Block] = deque()  # in input order, not yet written
        try:
            carry, block = rest, "-"
            while True:
                # Hand out blocks while a worker has room (or, without workers, one at a time);
                # blocks screened here wait for those before them, up to a bound (memory).
                while block and (not pending if workers is None else
                                 workers.room() and len(pending) < workers.most_pending):
                    block = text.read(BLOCK_CHARS)
                    data = carry + block
                    cut = _record_end(data) if block else len(data)
                    if cut is None:  # a quoted value seems to run on and on: read it with care
                        self._reread(pending, data, text, delimiter)
                        return
                    part, carry = data[:cut], data[cut:]
                    if not part:
                        continue
                    lines = part.count("\n") + (not part.endswith("\n"))
                    item = _Block(part, self.next_row, self.next_line - 1, lines)
                    pending.append(item)
                    if workers is None or not workers.give(item):
                        item.chunk = _worker_screen(part, item.first_row, item.line_offset)
                    self.next_row += lines
                    self.next_line += lines
                if not pending:
                    return
                if workers is not None and pending[0].chunk is None:
                    workers.collect()
                while pending and pending[0].chunk is not None:
                    if not self._settle(pending):
                        self._reread(pending, carry, text, delimiter)
                        return
        finally:
            if workers is not None:
                workers.stop()

    def _settle(self, pending: deque[_Block]) -> bool:
        """Write the oldest block's rows. False (and nothing written) when the block did not
        hold one record per line, as assumed when numbering the blocks after it."""
        chunk = pending[0].chunk
        assert chunk is not None
        if chunk.count != pending[0].lines or chunk.open_end:
            return False
        pending.popleft()
        self._merge(chunk)
        return True

    def _reread(self, pending: deque[_Block], after: str, text: IO[str], delimiter: str) -> None:
        """Read everything from the oldest unwritten block on with a csv reader, here."""
        if pending:
            self.next_row, self.next_line = pending[0].first_row, pending[0].line_offset + 1
        head = "".join(item.text for item in pending) + after
        pending.clear()
        self._sequential(_Lines(head, text), self.next_line - 1, delimiter)

    def _sequential(self, lines: _Lines, line_offset: int, delimiter: str) -> None:
        """Screen the records a csv reader reads from ``lines``, here."""
        reader = csv.reader(lines, delimiter=delimiter)
        while True:
            chunk = self.screener.screen(islice(reader, CHUNK_ROWS), reader, self.next_row,
                                         line_offset)
            if not chunk.count:
                return
            # islice asks once past the end when the chunk is short; any other ask was the
            # last record running into the end of the input inside quotes.
            if lines.past_end > (chunk.count < CHUNK_ROWS):
                raise MalformedCsv(chunk.last_line, "a quoted value starting in this row is "
                                   "never closed, so the rest of the file would be one value")
            self.next_row += chunk.count
            self.next_line = line_offset + reader.line_num + 1
            self._merge(chunk)

    def _merge(self, chunk: Chunk) -> None:
        out = chunk.text
        if out:
            if self.json_array:
                out, self.held = self.held + out[:-2], out[-2:]
            self.write(out)
        for problem in chunk.problems:
            self.on_problem(problem)
        if chunk.ids:
            self.duplicates.add(chunk.ids)
        self.tally.add(chunk.tally)
        if self.progress is not None:
            self.progress(chunk.first_row + chunk.count - 1, self.source.bytes_read())

    def _report_duplicates(self) -> None:
        """Warn about every repeated id (after the rows: they are found at the end)."""
        column = self.screener.layout.id_name
        for row, line, key, first in self.duplicates.found():
            problem = Problem(row, line, key, column, WARNING, *W_DUPLICATE_ID,
                              f"id '{key}' is also on data row {first}",
                              "ids should be unique; both rows are screened")
            self.tally.count(problem)
            self.on_problem(problem)


def _id_buckets(size: int | None, head: str) -> int:
    """How many buckets keep each under BUCKET_IDS ids: from the file's size and the length
    of its first lines; 64 for a stream of unknown length (up to ~6 million rows)."""
    if size is None:
        return 64
    per_row = max(len(head) / max(head.count("\n"), 1), 1.0)
    return max(1, min(1024, int(size / per_row * 1.25 / BUCKET_IDS) + 1))


class _Lines:
    """The lines of ``head`` and then of ``rest`` (joining the line the two share), for a csv
    reader, counting the reader's asks past the end (``past_end``).

    A csv reader returns a record as soon as its last line is read, so a record it returns
    after an ask past the end is one that ran into the end of the input inside quotes: a
    quote never closed. (The last cell's text cannot tell: a valid quoted value may end in a
    line break too.)"""

    def __init__(self, head: str, rest: IO[str]):
        self.lines = _lines(head, rest)
        self.past_end = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            return next(self.lines)
        except StopIteration:
            self.past_end += 1
            raise


def _lines(head: str, rest: IO[str]) -> Iterator[str]:
    if head.endswith("\r"):  # the "\n" of a "\r\n" may still be in ``rest``
        head += rest.read(1)
    last = ""
    for line in io.StringIO(head, newline=""):
        if last:
            yield last
        last = line
    if last and not last.endswith(("\n", "\r")):
        last += rest.readline()
    if last:
        yield last
    yield from rest


class _Workers:
    """Worker processes, forked (so they inherit the compiled rule set), each screening the
    blocks sent down its own task pipe in order and sending the chunks back on its own
    result pipe.

    This process never blocks writing to a task pipe: the pipe is non-blocking and a block's
    bytes wait in the worker's outbox until the pipe takes them, written a little at a time
    between reading results (:meth:`pump`). A worker may block writing its result, but only
    while this process is reading it, so neither side can wait for the other for good (the
    old design counted free pipe space in bytes, which Linux counts in pages, and deadlocked).
    At most DEPTH blocks are given to a worker and not yet back.
    """

    PIPE_BYTES = 1 << 20
    DEPTH = 3  # blocks given to a worker and not yet back, at most

    def __init__(self) -> None:
        self.procs: list[Any] = []
        self.tasks: list[int] = []  # write ends (file descriptors, non-blocking)
        self.results: list[Any] = []  # read ends
        self.given: list[deque[_Block]] = []
        self.outbox: list[deque[memoryview]] = []  # framed blocks not yet in the task pipe

    @classmethod
    def start(cls, n: int, screener: RowScreener, delimiter: str) -> _Workers | None:
        """``n`` workers, or None where processes cannot be forked."""
        import multiprocessing

        try:
            context = multiprocessing.get_context("fork")
        except ValueError:
            return None
        self = cls()
        try:
            for _ in range(n):
                task_read, task_write = os.pipe()
                result_read, result_write = context.Pipe(duplex=False)
                _enlarge_pipe(task_write, cls.PIPE_BYTES)
                # a chunk then goes in one write, not in 64 KB turns of both processes
                _enlarge_pipe(result_write.fileno(), cls.PIPE_BYTES)
                proc = context.Process(
                    target=_worker_main, daemon=True,
                    args=(task_read, result_write, screener, delimiter,
                          [task_write, *self.tasks], [result_read, *self.results]))
                # The worker starts with Ctrl-C and the stop signals blocked, until it has set
                # its own handlers: one arriving before then must not kill it with the
                # parent's handler (the run would then end as a worker failure, exit 1, not 130).
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
                try:
                    proc.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                    os.close(task_read)
                    result_write.close()
                os.set_blocking(task_write, False)
                self.procs.append(proc)
                self.tasks.append(task_write)
                self.results.append(result_read)
                self.given.append(deque())
                self.outbox.append(deque())
        except OSError:
            if not self.procs:
                return None
        return self

    @property
    def most_pending(self) -> int:
        """How many blocks may wait to be written, in all."""
        return (self.DEPTH + 1) * len(self.procs)

    def room(self) -> bool:
        return any(len(g) < self.DEPTH for g in self.given)

    def give(self, item: _Block) -> bool:
        """Give ``item`` to the worker with room and the fewest blocks waiting; False when no
        worker has room (screen it here)."""
        i = min(range(len(self.given)), key=lambda k: len(self.given[k]))
        if len(self.given[i]) >= self.DEPTH:
            return False
        payload = pickle.dumps((item.text, item.first_row, item.line_offset),
                               pickle.HIGHEST_PROTOCOL)
        self.outbox[i].append(memoryview(_FRAME.pack(len(payload)) + payload))
        self.given[i].append(item)
        self._send(i)
        return True

    def _send(self, i: int) -> None:
        """Write what worker ``i``'s task pipe takes now, without waiting."""
        box = self.outbox[i]
        while box:
            try:
                written = os.write(self.tasks[i], box[0])
            except BlockingIOError:
                return
            except BrokenPipeError:
                raise IopscreenError("a worker process stopped unexpectedly (out of memory?)",
                                     hint="rerun with --jobs 1 to screen in one process"
                                     ) from None
            if written == len(box[0]):
                box.popleft()
            else:
                box[0] = box[0][written:]

    def collect(self) -> None:
        """Wait until at least one block has come back, feeding the task pipes meanwhile,
        and put each that has on its _Block.

        Raises what the worker raised, or :class:`IopscreenError` if a worker died."""
        import selectors

        while True:
            with selectors.DefaultSelector() as selector:
                for i, given in enumerate(self.given):
                    if given:
                        selector.register(self.results[i].fileno(), selectors.EVENT_READ,
                                          (i, True))
                    if self.outbox[i]:
                        selector.register(self.tasks[i], selectors.EVENT_WRITE, (i, False))
                ready = [key.data for key, _ in selector.select()]
            for i, is_result in ready:
                if is_result:
                    self._receive(i)
                else:
                    self._send(i)
            if any(is_result for _, is_result in ready):
                return

    def _receive(self, i: int) -> None:
        """Read worker ``i``'s next result (it has begun to send it, so this does not wait on
        anything but the worker's writing)."""
        try:
            ok, result = self.results[i].recv()
        except (EOFError, OSError):
            raise IopscreenError("a worker process stopped unexpectedly (out of memory?)",
                                 hint="rerun with --jobs 1 to screen in one process") from None
        if not ok:
            raise result
        self.given[i].popleft().chunk = result

    def stop(self) -> None:
        """Close the pipes (a worker ends when it sees that) and wait for the workers; what
        is queued is dropped, and a worker still screening a block is stopped."""
        for fd in self.tasks:
            os.close(fd)
        for conn in self.results:
            conn.close()
        for proc in self.procs:
            proc.join(timeout=1)
            if proc.is_alive():
                proc.terminate()
                proc.join()


_FRAME = struct.Struct("<Q")  # a task's length, before its bytes


def _enlarge_pipe(fd: int, size: int) -> int:
    """Ask for a pipe buffer of ``size`` bytes; returns the size it has (Linux may refuse)."""
    try:
        import fcntl
    except ImportError:
        return 1 << 16
    if not hasattr(fcntl, "F_SETPIPE_SZ"):  # not Linux: pipes keep their usual size
        return 1 << 16
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except OSError:  # above the system's limit: keep what there is
        pass
    try:
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except OSError:
        return 1 << 16


def _read_task(tasks: IO[bytes]) -> Any:
    """The next task from the task pipe; None at its end."""
    head = tasks.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    body = tasks.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def _worker_main(task_fd: int, results: Any, screener: RowScreener, delimiter: str,
                 fds: list[int], conns: list[Any]) -> None:
    """A worker: screen each block received and send back (True, Chunk), or (False, error);
    end when the task pipe closes."""
    for fd in fds:  # the other ends: a worker holding them would never see the end
        os.close(fd)
    for conn in conns:
        conn.close()
    _worker_start(screener, delimiter)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)  # blocked by _Workers.start
    tasks = open(task_fd, "rb")  # noqa: SIM115 - read until the pipe closes
    # Screening a row makes no reference cycles, so the collector only costs time here; what
    # a block leaves (an exception's frames, say) is collected after it.
    gc.disable()
    while True:
        try:
            task = _read_task(tasks)
        except OSError:
            return
        if task is None:
            return
        try:
            reply: tuple[bool, Any] = (True, _worker_screen(*task))
        except Exception as exc:  # noqa: BLE001 - sent back and raised by the reader
            reply = (False, exc)
        gc.collect(1)
        try:
            try:
                results.send(reply)
            except (pickle.PicklingError, TypeError, AttributeError):  # an error we cannot send
                results.send((False, IopscreenError(
                    f"internal error in a worker process: {type(reply[1]).__name__}",
                    hint="rerun with --jobs 1 (and --debug) to see it")))
        except OSError:  # the reader has gone
            return


_WORKER: dict[str, Any] = {}
# Signals that end a run as Ctrl-C does (the command turns them into KeyboardInterrupt).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
_WORKER_SIGNALS = (signal.SIGINT, *STOP_SIGNALS)


def _worker_start(screener: RowScreener, delimiter: str, in_process: bool = False) -> None:
    if not in_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
        for other in STOP_SIGNALS:  # not the parent's handler: a worker just ends
            signal.signal(other, signal.SIG_DFL)
    _WORKER["screener"], _WORKER["delimiter"] = screener, delimiter


def _worker_screen(text: str, first_row: int, line_offset: int) -> Chunk:
    """Screen a block of whole lines, each assumed to be one record (the caller checks).

    A line without quotes is split on the delimiter, which is exactly what a csv reader does
    with it; a line with quotes is read by a strict csv reader on its own. A block with a lone
    CR, or with a line that is not a whole record by itself, is read by a csv reader.
    """
    screener: RowScreener = _WORKER["screener"]
    delimiter: str = _WORKER["delimiter"]
    plain = text.replace("\r\n", "\n") if "\r" in text else text
    if "\r" not in plain:
        try:
            records = _split_lines(plain, delimiter)
        except _NotOneLine:
            pass
        else:
            return screener.screen_block(list(records), first_row, line_offset)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return screener.screen(reader, reader, first_row, line_offset)


def _split_lines(plain: str, delimiter: str) -> Iterator[list[str]]:
    """The records of ``plain`` (lines ending in LF), each line one record: a line without
    quotes split on the delimiter, a line with quotes read by a strict csv reader. The runs of
    lines between quoted ones are split at C speed, as they are screened (a list of them all
    would keep the garbage collector busy). Raises :class:`_NotOneLine`."""
    records: list[Iterable[list[str]]] = []
    pos, end_all = 0, len(plain)
    while pos < end_all:
        quote = plain.find('"', pos)
        if quote < 0:
            rest = plain[pos:]
            lines = rest.split("\n")
            if rest.endswith("\n"):
                lines.pop()
            records.append(map(str.split, lines, repeat(delimiter)))
            break
        start = plain.rfind("\n", pos, quote) + 1 or pos  # the quoted line's first character
        if start > pos:
            records.append(map(str.split, plain[pos:start - 1].split("\n"), repeat(delimiter)))
        end = plain.find("\n", quote)
        if end < 0:
            end = end_all
        try:
            records.append([next(csv.reader([plain[start:end]], delimiter=delimiter,
                                            strict=True))])
        except (csv.Error, StopIteration):
            raise _NotOneLine from None
        pos = end + 1
    return chain.from_iterable(records)


class _NotOneLine(Exception):
    """A line of a block is not a whole CSV record on its own."""


def _record_end(data: str, limit: int = 1000) -> int | None:
    """Where the last whole line of ``data`` ends, outside quotes (an even number of quotes
    before it): 0 when there is none yet, None when ``limit`` lines back there still is none.
    An odd quote in an unquoted value can fool this; the worker's check catches that."""
    cut = data.rfind("\n") + 1
    if not cut:
        return 0
    quotes = data.count('"', 0, cut)
    for _ in range(limit):
        if quotes % 2 == 0:
            return cut
        previous = data.rfind("\n", 0, cut - 1) + 1
        if not previous:
            return 0 if len(data) < 8 * BLOCK_CHARS else None
        quotes -= data.count('"', previous, cut)
        cut = previous
    return None
