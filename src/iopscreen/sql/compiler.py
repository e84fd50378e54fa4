"""The rule set compiled to one SQL query, as a sqlglot expression tree, for any dialect.

The query is built from the same checked condition trees :mod:`iopscreen.program` compiles to
Python (never from rule-set text, never by pasting strings together): sqlglot builds the tree
and writes it in each dialect. SQL's NULL is the engine's unknown, and SQL's AND, OR and NOT on
NULL are exactly the engine's Kleene logic; everything else that propagates unknowns in Python
(comparisons, arithmetic, min/max, count) is written with explicit NULL tests where SQL differs.

It reads a table whose columns are text cells (a CSV export as it is), parses each cell as
:class:`iopscreen.answers.AnswerParser` does (its own lookup tables: codes, labels, case,
declined spellings, yes/no forms; whole numbers, multiple choices split on ``|``, ``;`` or
``,``), applies skip logic, scores, bands, derived values, rules and misconceptions, and then the
one decision (:class:`iopscreen.decision.Decision`, translated here step for step). The result
has the columns of ``iopscreen batch --format csv`` with the same meaning and, for CSV, the same
text.

One difference the SQL cannot avoid: case is folded with the engine's ``LOWER``, which agrees
with Python's ``casefold`` for every letter except the few with special folds (``ß``, ``ſ``,
ligatures, final sigma, dotted capital I). A cell using one of those in place of a code or label
may be read differently; codes and labels themselves are matched in both forms.

The query is a chain of common table expressions, one per step of dependence (each step selects
the previous one's columns and adds those that need only them), so no expression is written
twice however often it is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import sqlglot
from sqlglot import exp

from .. import expr as E
from ..answers import NONE_TOKENS, AnswerParser, MULTI_SEPARATORS
from ..decision import Decision
from ..engine import decision_for, program_for
from ..errors import RulesetError
from ..ruleset.model import Instrument, Question, Ruleset
from . import results
from .results import WHITESPACE
from .results import concat_text as _concat
from .results import strip_text as _trim

DIALECTS = ("duckdb", "spark", "trino", "postgres", "snowflake", "bigquery")
INTEGER_TEXT = "^[+-]?[0-9]+([.]0+)?$"  # answers.WHOLE_NUMBER, anchored
INTEGER_DIGITS = 18  # longer whole numbers are outside every range (and would not fit BIGINT)


class SqlUnsupported(RulesetError):
    """The rule set uses something the SQL (or one dialect of it) cannot express."""


@dataclass(frozen=True)
class TableShape:
    """The input table: which column holds each question's cells (absent: unanswered in every
    row), the id column (passed through), the column with the data row number, the label an
    invalid cell's column has in ``errors``, and the extra columns a blank row must also have
    blank."""

    questions: dict[str, str]
    id_column: str | None = None
    row_column: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    other_columns: tuple[str, ...] = ()
    id_output: str = "id"
    keep_blank: bool = False  # keep blank rows (a ``blank`` column in the numeric result)


def template_shape(ruleset: Ruleset, id_column: str = "id") -> TableShape:
    """The shape of a table with the template's header (``iopscreen template``)."""
    return TableShape({q: q for q in ruleset.questions}, id_column, None,
                      {q: q for q in ruleset.questions}, (), id_column)


def result_columns(ruleset: Ruleset, shape: TableShape) -> list[str]:
    """The query's output columns, in order (those of ``batch --format csv``)."""
    ours = ["status", "errors", "level", "crisis", "safety_review", "flags", "provisional",
            "possible_level", "deciding_questions", "fired_rules", "misconceptions"]
    for inst in ruleset.instruments:
        ours += [f"{inst.id}_score", f"{inst.id}_band"]
    ours += ["ignored_answers", "ruleset_id", "ruleset_version", "ruleset_sha256"]
    head = ["row"] if shape.row_column is not None else []
    if shape.id_column is not None:
        name = shape.id_output
        head.append(f"input_{name}" if name in ("row", *ours) else name)
    return head + ours


# ------------------------------------------------------------------------------ tree helpers


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _str(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def _num(value: int | float) -> exp.Expression:
    if isinstance(value, float):
        return exp.cast(exp.Literal.number(repr(value)), "DOUBLE")
    return exp.Literal.number(value)


def _lit(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, (int, float)):
        return _num(value)
    return _str(str(value))


def _is_null(x: exp.Expression) -> exp.Expression:
    return exp.Is(this=_wrap(x), expression=exp.Null())


def _not_null(x: exp.Expression) -> exp.Expression:
    return exp.not_(_is_null(x))


def _wrap(x: exp.Expression) -> exp.Expression:
    if isinstance(x, (exp.Column, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Func,
                      exp.Case, exp.Cast)):
        return x
    return exp.Paren(this=x)


def _and(*items: exp.Expression) -> exp.Expression:
    if not items:
        return exp.true()
    return exp.and_(*(_wrap(i) for i in items)) if len(items) > 1 else items[0]


def _or(*items: exp.Expression) -> exp.Expression:
    if not items:
        return exp.false()
    return exp.or_(*(_wrap(i) for i in items)) if len(items) > 1 else items[0]


def _not(x: exp.Expression) -> exp.Expression:
    return exp.not_(_wrap(x))


def _is_true(x: exp.Expression) -> exp.Expression:
    """True when ``x`` is TRUE, false when FALSE or NULL (never NULL)."""
    return exp.func("COALESCE", _wrap(x), exp.false())


def _is_false(x: exp.Expression) -> exp.Expression:
    """True when ``x`` is FALSE, false when TRUE or NULL (never NULL)."""
    return exp.func("COALESCE", _not(x), exp.false())


def _case(whens: Sequence[tuple[exp.Expression, exp.Expression]],
          default: exp.Expression | None = None) -> exp.Expression:
    # Built at once: Case.when() copies the whole CASE at each branch (the query's long
    # lookups made building it take seconds); each part is copied once, as when() would.
    return exp.Case(ifs=[exp.If(this=cond.copy(), true=value.copy()) for cond, value in whens],
                    default=default.copy() if default is not None else None)


def _eq(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.EQ(this=_wrap(a), expression=_wrap(b))


def _in(x: exp.Expression, texts: Sequence[str]) -> exp.Expression:
    if not texts:
        return exp.false()
    return exp.In(this=_wrap(x), expressions=[_str(t) for t in texts])


def _strpos(text: exp.Expression, sub: str) -> exp.Expression:
    return exp.StrPosition(this=text, substr=_str(sub))


def _contains(text: exp.Expression, sub: str) -> exp.Expression:
    return exp.GT(this=_strpos(text, sub), expression=exp.Literal.number(0))


def _joined(items: Sequence[tuple[exp.Expression, str]],
            guard: exp.Expression | None = None) -> exp.Expression:
    """The ids whose condition holds, joined by ``|`` in order ('' for none). The text is
    built only for the rows where one holds (``guard``: a cheaper test of that)."""
    if not items:
        return _str("")
    pieces = [_case([(cond, _str("|" + text))], _str("")) for cond, text in items]
    joined = exp.Substring(this=_concat(pieces), start=exp.Literal.number(2))
    if guard is None:
        guard = _or(*(cond for cond, _ in items))
    return _case([(_is_true(guard), joined)], _str(""))


def _plus(items: Sequence[exp.Expression]) -> exp.Expression:
    if not items:
        return exp.Literal.number(0)
    out = _wrap(items[0])
    for i in items[1:]:
        out = exp.Add(this=out, expression=_wrap(i))
    return exp.Paren(this=out)


def _greatest(items: Sequence[exp.Expression]) -> exp.Expression:
    """GREATEST of values that are never NULL."""
    if len(items) == 1:
        return items[0]
    return exp.Greatest(this=items[0], expressions=list(items[1:]))


# ---------------------------------------------------------------------------------- compiler


@dataclass
class _SetValue:
    """A multiple-choice value: ``known`` is NULL when unknown; a member per code."""

    known: exp.Expression
    members: dict[Any, exp.Expression]


class _Compiler:
    """Builds the query's columns, each from columns defined before it."""

    def __init__(self, ruleset: Ruleset, shape: TableShape):
        self.ruleset = ruleset
        self.shape = shape
        self.program = program_for(ruleset)
        self.decision: Decision = decision_for(ruleset)
        self.qindex = {q: i for i, q in enumerate(ruleset.questions)}
        self.defs: list[tuple[str, exp.Expression]] = []  # in definition order
        self.depth: dict[str, int] = {}
        self.env: dict[str, exp.Expression | _SetValue] = {}  # condition name -> value
        self.declined: dict[str, exp.Expression] = {}  # question -> declined (never NULL)
        self.inputs: list[tuple[str, exp.Expression]] = []  # the first step's columns
        self.done: set[str] = set()
        # question -> (value, declined, error code, members of a multiple choice)
        self.raw: dict[str, tuple[exp.Expression, exp.Expression, exp.Expression | None,
                                  dict[Any, exp.Expression] | None]] = {}

    # -- columns
    def define(self, name: str, value: exp.Expression) -> exp.Column:
        deps = [c.name for c in value.find_all(exp.Column)]
        self.depth[name] = 1 + max((self.depth[d] for d in deps), default=0)
        self.defs.append((name, value))
        return _col(name)

    def input(self, name: str, column: str | None) -> exp.Column:
        self.depth[name] = 0
        self.inputs.append((name, _col(column) if column is not None else exp.Null()))
        return _col(name)

    # -- cells
    def parse_question(self, qid: str, q: Question) -> None:
        """Columns for the answer in ``q``'s cell: value (or set), declined, error code."""
        i = self.qindex[qid]
        column = self.shape.questions.get(qid)
        raw = self.input(f"c{i}", column)
        if column is None:
            self.set_answer(qid, q, exp.Null(), exp.false(), None, {
                c.code: exp.Null() for c in q.choices} if q.type == "multi" else None)
            return
        if any(isinstance(c.code, bool) for c in q.choices):
            raise SqlUnsupported(f"question '{qid}' has a yes/no choice code, which SQL "
                                 "cannot tell from a number", hint="quote the code")
        parser = AnswerParser(q)
        if q.type in ("yesno", "choice"):
            self.parse_lookup(qid, q, i, raw, parser)
            return
        trimmed = self.define(f"t{i}", _trim(raw))
        folded = self.define(f"f{i}", exp.Lower(this=trimmed))
        blank = _or(_is_null(trimmed), _eq(trimmed, _str("")))
        self.blanks.append(blank)
        declined_keys = sorted(k for k, a in parser.table.items() if a.declined)
        declined = self.define(f"d{i}", _is_true(_in(folded, declined_keys)))
        if q.type == "multi":
            self.parse_multi(qid, q, i, parser, trimmed, folded, blank, declined)
            return
        by_value: dict[Any, list[str]] = {}
        for key, answer in parser.table.items():
            if not answer.declined:
                by_value.setdefault(answer.value, []).append(key)
        known = _in(folded, sorted(parser.table))
        if q.type in ("yesno", "choice"):
            value = _case([(_in(folded, sorted(keys)), _lit(v))
                           for v, keys in by_value.items()]) if by_value else exp.Null()
            code = "E402" if q.type == "yesno" else "E405"
            error = _case([(_and(_not(blank), _not(known)), _str(code))])
        elif q.type == "integer":
            assert q.min is not None and q.max is not None
            if max(abs(q.min), abs(q.max)) >= 10 ** (INTEGER_DIGITS - 1):
                raise SqlUnsupported(f"question '{qid}' allows numbers too large for SQL's "
                                     "BIGINT", hint="narrow its min and max")
            whole = exp.RegexpLike(this=trimmed, expression=_str(INTEGER_TEXT))
            dot = _strpos(trimmed, ".")
            digits = _case([(exp.GT(this=dot, expression=exp.Literal.number(0)),
                             exp.Substring(this=trimmed, start=exp.Literal.number(1),
                                           length=exp.Sub(this=dot,
                                                          expression=exp.Literal.number(1))))],
                           trimmed)
            size = exp.Length(this=exp.Trim(this=digits, expression=_str("+-0"),
                                            position="LEADING"))
            number = self.define(f"n{i}", _case([(
                _and(_not(blank), _not(known), whole,
                     exp.LTE(this=size, expression=exp.Literal.number(INTEGER_DIGITS))),
                exp.cast(exp.Trim(this=digits, expression=_str("+"), position="LEADING"),
                         "BIGINT"))]))
            in_range = exp.Between(this=number, low=_num(q.min), high=_num(q.max))
            value = _case([(in_range, number)])
            error = _case([(_or(blank, known), exp.Null()), (_not(whole), _str("E401")),
                           (_not(_is_true(in_range)), _str("E404"))])
        else:  # text
            value = _case([(_and(_not(blank), _not(known)), trimmed)])
            error = exp.Null()
        self.set_answer(qid, q, self.define(f"v{i}", value), declined,
                        self.define(f"e{i}", error))

    def parse_lookup(self, qid: str, q: Question, i: int, raw: exp.Expression,
                     parser: AnswerParser) -> None:
        """A yes/no or choice cell, parsed once into a small number, its token: NULL blank,
        -1 declined, -2 invalid, else the answer (a choice's whole-number code itself, yes 1
        and no 0, else the answer's place in the parser's table).

        The cell is first looked up as it is: an export mostly holds the table's own keys
        ('yes', '0'), the codes first. Only a cell not found (blank, another case, edge
        whitespace, invalid) is trimmed, folded and looked up again."""
        values: list[Any] = []
        for answer in parser.table.values():
            if not answer.declined and answer.value not in values:
                values.append(answer.value)
        direct = all(isinstance(v, int) and v >= 0 for v in values)  # bools too: no 0, yes 1
        token = {v: int(v) if direct else j for j, v in enumerate(values)}
        first = [str(c.code) for c in q.choices] + ["no", "yes"]

        def tok_of(text: str) -> int:
            answer = parser.table[text.strip().casefold()]
            return -1 if answer.declined else token[answer.value]

        def lookup(text: exp.Expression, keys: list[str]
                   ) -> list[tuple[exp.Expression, exp.Expression]]:
            return [(_eq(text, _str(k)), exp.Literal.number(tok_of(k))) for k in keys]

        keys = sorted(parser.table, key=lambda k: (first.index(k) if k in first
                                                    else len(first), k))
        # the forms an export likely holds, each read here as the parser reads it
        likely = sorted((t for t in parser.likely_texts() if t.strip().casefold() in
                         parser.table), key=lambda k: (first.index(k) if k in first
                                                       else len(first), k))

        missed = exp.Literal.number(-9)  # not found as it is
        found = self.define(f"a{i}", _case([(_is_null(raw), exp.Null()),
                                            *lookup(raw, likely)], missed))
        # folded once, and only where the cell was not found as it is
        folded = self.define(f"f{i}", _case([(_eq(found, missed), exp.Lower(this=_trim(raw)))]))
        tok = self.define(f"y{i}", _case([
            (_is_null(found), exp.Null()), (exp.NEQ(this=found, expression=missed), found),
            (_eq(folded, _str("")), exp.Null()), *lookup(folded, keys)],
            exp.Literal.number(-2)))
        self.blanks.append(_is_null(tok))
        if direct and q.type == "yesno":
            value = _case([(exp.GTE(this=tok, expression=exp.Literal.number(0)),
                            _eq(tok, exp.Literal.number(1)))])
        elif direct:
            value = _case([(exp.GTE(this=tok, expression=exp.Literal.number(0)), tok)])
        else:
            value = _case([(_eq(tok, exp.Literal.number(token[v])), _lit(v)) for v in values])
        declined = self.define(f"d{i}", _is_true(_eq(tok, exp.Literal.number(-1))))
        error = _case([(_eq(tok, exp.Literal.number(-2)),
                        _str("E402" if q.type == "yesno" else "E405"))])
        self.set_answer(qid, q, self.define(f"v{i}", value), declined,
                        self.define(f"e{i}", error))

    def parse_multi(self, qid: str, q: Question, i: int, parser: AnswerParser,
                    trimmed: exp.Expression, folded: exp.Expression, blank: exp.Expression,
                    declined: exp.Expression) -> None:
        """A multiple-choice cell, as AnswerParser._parse_multi reads it: the whole text as
        one code or label, 'none', or items split on the first separator it holds. Each item
        (trimmed, folded) is wrapped in the separator, so a code is in the set exactly when
        its wrapped key is in the wrapped text, and the cell is valid exactly when nothing
        but separators is left after removing every wrapped key."""
        codes: dict[Any, list[str]] = {}
        for key, code in parser._codes.items():
            codes.setdefault(code, []).append(key)
        whole = self.define(f"w{i}", _case(
            [(_in(folded, sorted(keys)), _lit(code)) for code, keys in codes.items()]))
        none = _in(folded, sorted(NONE_TOKENS))
        space = "[" + WHITESPACE.replace("]", "") + "]*"
        wraps = []
        for sep in MULTI_SEPARATORS:
            joined = exp.RegexpReplace(this=folded, expression=_str(f"{space}[{sep}]{space}"),
                                       replacement=_str(sep + sep))
            wraps.append((_contains(trimmed, sep), _concat([_str(sep), joined, _str(sep)])))
        wrapped = self.define(f"p{i}", _case(wraps))
        sep_of = self.define(f"s{i}", _case([(cond, _str(sep)) for (cond, _), sep in
                                             zip(wraps, MULTI_SEPARATORS)]))
        split = _and(_not(blank), _not(declined), _is_null(whole), _not(none),
                     _not_null(wrapped))

        def by_sep(make: Any) -> exp.Expression:
            return _case([(_eq(sep_of, _str(sep)), make(sep)) for sep in MULTI_SEPARATORS])

        def left(sep: str) -> exp.Expression:
            rest: exp.Expression = wrapped
            for keys in codes.values():
                for key in keys:
                    if sep not in key:
                        rest = exp.func("REPLACE", rest, _str(sep + key + sep), _str(""))
            return _eq(exp.func("REPLACE", rest, _str(sep), _str("")), _str(""))

        valid = self.define(f"ok{i}", _or(
            _and(_not(blank), _not(declined), _or(_not_null(whole), none)),
            _and(split, by_sep(left))))
        members: dict[Any, exp.Expression] = {}
        for k, (code, keys) in enumerate(codes.items()):
            def has(sep: str, keys: list[str] = keys) -> exp.Expression:
                return _or(*(_contains(wrapped, sep + key + sep) for key in keys
                             if sep not in key))
            members[code] = self.define(f"m{i}_{k}", _case([
                (_not(_is_true(valid)), exp.Null()),
                (_not_null(whole), _is_true(_eq(whole, _lit(code)))),
                (none, exp.false())], _is_true(by_sep(has))))
        value = self.define(f"v{i}", _case([(_is_true(valid), exp.true())]))
        error = self.define(f"e{i}", _case([(_and(_not(blank), _not(declined),
                                                   _not(_is_true(valid))), _str("E405"))]))
        self.set_answer(qid, q, value, declined, error, members)

    def set_answer(self, qid: str, q: Question, value: exp.Expression,
                   declined: exp.Expression, error: exp.Expression | None,
                   members: dict[Any, exp.Expression] | None = None) -> None:
        self.raw[qid] = (value, declined, error, members)

    # -- skip logic, scores, derived values, rules
    def build(self) -> None:
        rs = self.ruleset
        self.blanks: list[exp.Expression] = []  # each cell is blank (never NULL)
        for qid, q in rs.questions.items():
            self.parse_question(qid, q)
        # A row is blank when every cell is: its answers first (parsed already), and only
        # then, for the rows whose answers are all blank, the id and any other column.
        shape = self.shape
        if shape.id_column is not None:
            self.depth["_id"] = 0
        others = [self.input(f"o{k}", c) for k, c in enumerate(shape.other_columns)]
        empty = [_eq(exp.func("COALESCE", exp.Trim(this=c, expression=_str(WHITESPACE),
                                                   position="BOTH"), _str("")), _str(""))
                 for c in ([_col("_id")] if shape.id_column is not None else []) + others]
        self.define("_blank", _case([(_and(*self.blanks), _and(*empty))], exp.false())
                    if empty else _and(*self.blanks))
        self.ignored: list[tuple[exp.Expression, str]] = []  # (dropped by skip logic, id)
        self.not_applicable: dict[str, exp.Expression] = {}
        for qid, q in rs.questions.items():
            value, declined, _, members = self.raw[qid]
            i = self.qindex[qid]
            if q.ask_when is not None:
                for name in sorted(q.ask_when.names):
                    self.ensure(name)
                na = self.define(f"na{i}", _is_false(self.condition(q.ask_when.node)))
                self.not_applicable[qid] = na
                self.ignored.append((self.define(f"ig{i}", _and(na, _or(_not_null(value),
                                                                        declined))), qid))
                value = self.define(f"av{i}", _case([(na, exp.Null())], value))
                declined = self.define(f"ad{i}", _and(_not(na), declined))
                if members is not None:
                    members = {code: self.define(f"am{i}_{k}", _case([(na, exp.Null())], m))
                               for k, (code, m) in enumerate(members.items())}
            self.env[qid] = _SetValue(value, members) if members is not None else value
            self.declined[qid] = declined
            self.done.add(qid)
        for name in self.program.slots:
            self.ensure(name)
        self.rules = [self.define(f"r{k}", self.condition(r.when.node))
                      for k, r in enumerate(rs.rules)]
        self.miscs = [self.define(f"k{k}", self.condition(m.when.node))
                      for k, m in enumerate(rs.misconceptions)]

    def ensure(self, name: str) -> None:
        if name in self.done:
            return
        rs = self.ruleset
        by_id = {i.id: i for i in rs.instruments}
        bands = {f"{i.id}_band": i for i in rs.instruments}
        derived = {d.id: d for d in rs.derived}
        if name in by_id:
            inst = by_id[name]
            for dep in sorted(set(inst.items) | (inst.gate.names if inst.gate else set())):
                self.ensure(dep)
            self.env[name] = self.score(inst)
        elif name in bands:
            self.ensure(bands[name].id)
            self.env[name] = self.band(bands[name])
        else:
            d = derived[name]
            for dep in sorted(d.expr.names):
                self.ensure(dep)
            k = list(derived).index(name)
            self.env[name] = self.define(f"x{k}", self.condition(d.expr.node))
        self.done.add(name)

    def score(self, inst: Instrument) -> exp.Expression:
        k = self.ruleset.instruments.index(inst)
        points = []
        for qid, top in zip(inst.items, inst.item_max):
            v = self.env[qid]
            assert not isinstance(v, _SetValue)
            if self.ruleset.questions[qid].type == "yesno":
                v = _case([(_is_true(v), exp.Literal.number(1)),
                           (_is_false(v), exp.Literal.number(0))])
            if qid in inst.reverse:
                v = exp.Sub(this=exp.Literal.number(top), expression=_wrap(v))
            points.append(v)
        total = self.define(f"st{k}", _plus([exp.func("COALESCE", _wrap(p),
                                                      exp.Literal.number(0)) for p in points]))
        missing = self.define(f"sm{k}", _plus([_case([(_is_null(p), exp.Literal.number(1))],
                                                     exp.Literal.number(0)) for p in points]))
        n = len(points)
        whens: list[tuple[exp.Expression, exp.Expression]] = []
        if inst.gate is not None:
            whens.append((_is_false(self.condition(inst.gate.node)), _num(inst.gate_score)))
        whens.append((_eq(missing, exp.Literal.number(0)), total))
        if inst.missing == "zero":
            whens.append((exp.true(), total))
        elif inst.missing == "prorate":
            scaled = exp.Div(this=exp.cast(exp.Mul(this=total, expression=exp.Literal.number(n)),
                                           "DOUBLE"),
                             expression=exp.cast(exp.Paren(this=exp.Sub(
                                 this=exp.Literal.number(n), expression=missing)), "DOUBLE"))
            rounded = exp.cast(exp.Floor(this=exp.Add(this=scaled,
                                                      expression=_num(0.5))), "BIGINT")
            whens.append((_and(exp.LTE(this=missing, expression=exp.Literal.number(
                inst.max_missing)), exp.LT(this=missing, expression=exp.Literal.number(n))),
                rounded))
        return self.define(f"sc{k}", _case(whens))

    def band(self, inst: Instrument) -> exp.Expression:
        k = self.ruleset.instruments.index(inst)
        s = self.env[inst.id]
        assert not isinstance(s, _SetValue)
        ordered = sorted(inst.bands, key=lambda b: b.min)
        whens = [(_is_null(s), exp.Null())]
        whens += [(exp.LTE(this=s, expression=_num(b.max)), _str(b.id)) for b in ordered[:-1]]
        return self.define(f"b{k}", _case(whens, _str(ordered[-1].id)))

    # -- conditions
    def condition(self, node: E.Node) -> exp.Expression:
        """The SQL of a checked tree: NULL where the engine's value is None."""
        if isinstance(node, E.Lit):
            if isinstance(node.value, float) and not math.isfinite(node.value):
                raise SqlUnsupported("a condition uses a number too large for SQL "
                                     f"({node.value!r})", hint="use a smaller literal")
            return _lit(node.value)
        if isinstance(node, E.Name):
            value = self.env[node.id]
            if isinstance(value, _SetValue):
                raise SqlUnsupported(f"'{node.id}' is used as a value here, which SQL cannot "
                                     "hold", hint="test it with 'code' in ... or count(...)")
            return value
        if isinstance(node, E.Not):
            return _not(self.condition(node.operand))
        if isinstance(node, E.BoolOp):
            items = [self.condition(i) for i in node.items]
            return _and(*items) if node.op == "and" else _or(*items)
        if isinstance(node, E.Compare):
            return self.compare(node)
        if isinstance(node, E.Arith):
            a, b = self.condition(node.left), self.condition(node.right)
            if node.op == "/":
                return _case([(_eq(b, exp.Literal.number(0)), exp.Null())],
                             exp.Div(this=exp.cast(_wrap(a), "DOUBLE"),
                                     expression=exp.cast(_wrap(b), "DOUBLE")))
            op = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}[node.op]
            return exp.Paren(this=op(this=_wrap(a), expression=_wrap(b)))
        if isinstance(node, E.Neg):
            return exp.Neg(this=_wrap(self.condition(node.operand)))
        if isinstance(node, E.IfElse):
            if isinstance(self._set_or_none(node.body), _SetValue):
                raise SqlUnsupported("a choice between multiple-choice answers (x if c else "
                                     "y) cannot be written in SQL")
            t = self.condition(node.test)
            b, c = self.condition(node.body), self.condition(node.orelse)
            return _case([(_is_true(t), b), (_is_false(t), c), (_is_true(_eq(b, c)), b)])
        if isinstance(node, E.Call):
            return self.call(node)
        raise SqlUnsupported(f"'{type(node).__name__}' cannot be written in SQL")

    def _set_or_none(self, node: E.Node) -> Any:
        if isinstance(node, E.Name):
            return self.env.get(node.id)
        if isinstance(node, (E.IfElse,)):
            return self._set_or_none(node.body)
        if isinstance(node, E.Call) and node.func == "coalesce":
            return self._set_or_none(node.args[0])
        return None

    def set_value(self, node: E.Node) -> _SetValue:
        value = self._set_or_none(node)
        if not isinstance(value, _SetValue) or not isinstance(node, E.Name):
            raise SqlUnsupported("only a multiple-choice question itself can be tested with "
                                 "'in' or count() in SQL")
        return value

    def compare(self, node: E.Compare) -> exp.Expression:
        if node.op in ("in", "notin"):
            if isinstance(node.right, E.Seq):
                left = self.condition(node.left)
                items = [i.value for i in node.right.items if isinstance(i, E.Lit)]
                found: exp.Expression = (exp.In(this=_wrap(left),
                                                expressions=[_lit(v) for v in items])
                                         if items else _case([(_is_null(left), exp.Null())],
                                                             exp.false()))
            else:
                assert isinstance(node.left, E.Lit)
                found = self.set_value(node.right).members[node.left.value]
            return _not(found) if node.op == "notin" else found
        a, b = _wrap(self.condition(node.left)), _wrap(self.condition(node.right))
        op = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT,
              ">=": exp.GTE}[node.op]
        return op(this=a, expression=b)

    def call(self, node: E.Call) -> exp.Expression:
        f = node.func
        if f in ("answered", "declined"):
            assert isinstance(node.args[0], E.Name)
            name = node.args[0].id
            if f == "declined":
                return self.declined[name]
            value = self.env[name]
            return _not_null(value.known if isinstance(value, _SetValue) else value)
        if f == "count_set":
            s = self.set_value(node.args[0])
            return _case([(_not_null(s.known), _plus(
                [_case([(_is_true(m), exp.Literal.number(1))], exp.Literal.number(0))
                 for m in s.members.values()]))])
        args = [self.condition(a) for a in node.args]
        if f == "coalesce":
            return exp.func("COALESCE", *args)
        unknown = _or(*(_is_null(a) for a in args))
        if f == "count":
            total = _plus([_case([(_is_true(a), exp.Literal.number(1))], exp.Literal.number(0))
                           for a in args])
            return _case([(unknown, exp.Null())], total)
        if f in ("min", "max"):
            if len(args) == 1:
                return args[0]
            cls = exp.Least if f == "min" else exp.Greatest
            return _case([(unknown, exp.Null())], cls(this=args[0], expressions=args[1:]))
        raise SqlUnsupported(f"the function {f}() cannot be written in SQL")

    # -- the decision and the result row
    def result(self) -> list[tuple[str, exp.Expression]]:
        """The output columns (see :func:`result_columns`), from the decision."""
        rs, d, shape = self.ruleset, self.decision, self.shape
        fired = [self.define(f"fr{k}", _is_true(r)) for k, r in enumerate(self.rules)]
        ranked = [(fired[k], e.rank) for k, e in enumerate(d.rules) if e.rank > 0]
        level = self.define("lvl", _greatest([exp.Literal.number(0)] + [
            _case([(f, exp.Literal.number(rank))], exp.Literal.number(0))
            for f, rank in ranked]))
        raised = {flag: self.define(f"fl{j}", _or(*(fired[k] for k, e in enumerate(d.rules)
                                                    if flag in e.flags)))
                  for j, flag in enumerate(d.flags)}
        pending = {}
        for k, e in enumerate(d.rules):
            could = []
            if e.rank > 0:
                could.append(exp.GT(this=exp.Literal.number(e.rank), expression=level))
            could += [_not(raised[f]) for f in e.attention]
            if could:
                pending[k] = self.define(f"pe{k}", _and(_is_null(self.rules[k]), _or(*could)))
        provisional = self.define("prov", _or(*pending.values()))
        possible = self.define("poss", _case([(provisional, _greatest([level] + [
            _case([(p, exp.Literal.number(d.rules[k].rank))], exp.Literal.number(0))
            for k, p in pending.items() if d.rules[k].rank > 0]))]))
        deciding = []
        for qid in d.questions:
            behind = [p for k, p in pending.items() if qid in d.rules[k].behind]
            if not behind:
                continue
            value = self.env[qid]
            known = value.known if isinstance(value, _SetValue) else value
            unknown = _and(_is_null(known), _not(self.not_applicable.get(qid, exp.false())))
            deciding.append((_and(_or(*behind), unknown), qid))
        errors = [(e, qid) for qid, (_, _, e, _) in self.raw.items() if e is not None]

        def level_id(rank: exp.Expression) -> exp.Expression:
            return _case([(_eq(rank, exp.Literal.number(k)), _str(lv))
                          for k, lv in enumerate(d.levels)])

        error_text = [_case([(_not_null(e), _concat([_str("|"), e, _str(
            ":" + shape.labels.get(qid, qid))]))], _str("")) for e, qid in errors]
        failed = self.define("err", _or(*(_not_null(e) for e, _ in errors)))
        out: list[tuple[str, exp.Expression]] = []
        if shape.row_column is not None:
            out.append(("row", _col("_row")))
        if shape.id_column is not None:
            out.append(("id", _col("_id")))
        out += [
            ("status", _case([(failed, _str("error"))], _str("ok"))),
            ("errors", _case([(failed, exp.Substring(this=_concat(error_text),
                                                     start=exp.Literal.number(2)))], _str(""))
             if errors else _str("")),
            ("level", level_id(level)),
            ("crisis", _or(*(raised[f] for f in d.crisis_flags))),
            ("safety_review", _or(*(dropped for dropped, qid in self.ignored
                                    if qid in d.safety_questions))),
            ("flags", _joined([(raised[f], f) for f in d.flags])),
            ("provisional", provisional),
            ("possible_level", _case([(provisional, level_id(possible))])),
            ("deciding_questions", _joined(deciding, provisional)),
            ("fired_rules", _joined([(f, r.id) for f, r in zip(fired, rs.rules)])),
            ("misconceptions", _joined([(_is_true(m), mc.id)
                                        for m, mc in zip(self.miscs, rs.misconceptions)])),
        ]
        for inst in rs.instruments:
            out += [(f"{inst.id}_score", self.env[inst.id]),  # type: ignore[list-item]
                    (f"{inst.id}_band", self.env[f"{inst.id}_band"])]  # type: ignore[list-item]
        out += [("ignored_answers", _joined(self.ignored)),
                ("ruleset_id", _str(rs.id)), ("ruleset_version", _str(rs.version)),
                ("ruleset_sha256", _str(rs.content_hash))]
        # The same result as numbers, for batch's own writers (batch_duckdb.py): flag bit i
        # is ruleset.flags' i-th flag, misconception bit k the k-th misconception.
        order = list(rs.flags)

        def mask(bits: Sequence[tuple[exp.Expression, int]]) -> exp.Expression:
            return _plus([_case([(cond, exp.Literal.number(1 << bit))], exp.Literal.number(0))
                          for cond, bit in bits])

        named = dict(out)
        self.machine = [(n, named[n]) for n in ("row", "id", "errors") if n in named] + [
            ("level", level), ("flags", mask([(raised[f], order.index(f)) for f in d.flags])),
            ("possible", _case([(provisional, possible)])),
            ("deciding", named["deciding_questions"]), ("fired", named["fired_rules"]),
            ("misconceptions", mask([(_is_true(m), k) for k, m in enumerate(self.miscs)])),
            *((f"s{k}", named[f"{inst.id}_score"]) for k, inst in enumerate(rs.instruments)),
            *((f"b{k}", named[f"{inst.id}_band"]) for k, inst in enumerate(rs.instruments)),
            ("ignored", named["ignored_answers"]), ("review", named["safety_review"])]
        self.error_cells = [(e, shape.labels.get(qid, qid)) for e, qid in errors]
        names = result_columns(rs, shape)
        return [(name, value) for name, (_, value) in zip(names, out)]

    def query(self, table: exp.Expression, machine: bool = False, line: str | None = None,
              json_id: Any = None, line_tail: bool = True) -> exp.Select:
        """The whole query over ``table`` (``machine``: the numeric result, see result();
        ``line``: also the output line, see :func:`screening_query`)."""
        self.build()
        outputs = self.result()
        if machine:
            outputs = self.machine
        error_columns: list[tuple[str, exp.Expression]] = []
        if line is not None:  # the errors' cells, carried to the result for the line
            error_columns = [(f"_e{k}", e) for k, (e, _) in enumerate(self.error_cells)]
            outputs = [*outputs, *error_columns]
        shape = self.shape
        first = [exp.alias_(value, name, quoted=True) for name, value in self.inputs]
        if shape.id_column is not None:
            first.append(exp.alias_(_col(shape.id_column), "_id", quoted=True))
        if shape.row_column is not None:
            first.append(exp.alias_(_col(shape.row_column), "_row", quoted=True))
        steps: dict[int, list[tuple[str, exp.Expression]]] = {}
        for name, value in self.defs:
            steps.setdefault(self.depth[name], []).append((name, value))
        # each step carries on only the columns a later step or the result still reads
        final_depth = max(steps, default=0) + 1
        last_use: dict[str, int] = {}
        for name, value in self.defs:
            for c in value.find_all(exp.Column):
                last_use[c.name] = max(last_use.get(c.name, 0), self.depth[name])
        for _, value in outputs:
            for c in value.find_all(exp.Column):
                last_use[c.name] = final_depth
        last_use["_blank"] = final_depth
        if shape.keep_blank:
            outputs = [*outputs, ("blank", _col("_blank"))]
        # (the selects are built here and nowhere else: no copies, see _case)
        ctes = [("step0", exp.select(*first).from_(table, copy=False))]
        carried = [name for name, _ in self.inputs] + [
            n for n in ("_id", "_row") if n in last_use]
        for depth in sorted(steps):
            keep = [n for n in carried if last_use.get(n, 0) > depth]
            ctes.append((f"step{depth}", exp.select(*(_col(n) for n in keep), *(
                exp.alias_(v, n, quoted=True, copy=False) for n, v in steps[depth])).from_(
                exp.to_table(ctes[-1][0], quoted=True), copy=False)))
            carried = keep + [n for n, _ in steps[depth]]
        final = exp.select(*(exp.alias_(v, n, quoted=True) for n, v in outputs)).from_(
            exp.to_table(ctes[-1][0], quoted=True), copy=False)
        if not shape.keep_blank:
            final = final.where(_not(_col("_blank")))
        if line is not None:
            ctes.append(("result", final))
            extra = {n for n, _ in error_columns}
            named = [n for n, _ in outputs if n not in extra]
            id_name = (result_columns(self.ruleset, shape)[1 if shape.row_column else 0]
                       if shape.id_column is not None else None)
            # the line starts after the row number, which the engine writes before it
            # (results.line), with or without a row column in the result
            columns = {("id" if n == id_name else n): _col(n) for n in named if n != "row"}
            text = results.line(self.ruleset, line, columns, shape.id_output,
                                [(_col(n), label) for (n, _), (_, label)
                                 in zip(error_columns, self.error_cells)],
                                json_id(exp.func("COALESCE", columns["id"], _str("")))
                                if json_id and "id" in columns else None, line_tail)
            final = exp.select(*(_col(n) for n in named), exp.alias_(text, "line",
                                                                      quoted=True)).from_(
                exp.to_table("result", quoted=True), copy=False)
        for name, select in ctes:
            final = final.with_(exp.to_identifier(name, quoted=True), as_=select, copy=False)
        return final


def screening_query(ruleset: Ruleset, shape: TableShape | None = None,
                    table: str | exp.Expression = "responses", machine: bool = False,
                    line: str | None = None, json_id: Any = None, line_tail: bool = True
                    ) -> exp.Select:
    """The sqlglot tree of the query that screens ``table`` (of the given ``shape``; default:
    the template's header). ``machine``: level, flags and misconceptions as numbers (batch's
    writers take them so). ``line`` (one of :data:`iopscreen.sql.results.LINE_FORMATS`): a
    last column ``line``, the row as ``iopscreen batch`` writes it in that format (see
    :mod:`iopscreen.sql.results` for the whole recipe); ``json_id``: a function giving an
    engine's exact JSON text of the id column (see :func:`results.json_text`); ``line_tail``
    False: the line without the end all lines share (:func:`results.line_tail`). Raises
    :class:`SqlUnsupported`."""
    shape = shape or template_shape(ruleset)
    if line is not None and (machine or line not in results.LINE_FORMATS):
        raise ValueError("line needs the named result")
    return _Compiler(ruleset, shape).query(exp.to_table(table) if isinstance(table, str)
                                           else table, machine, line, json_id, line_tail)


def to_sql(ruleset: Ruleset, dialect: str, *, table: str = "responses",
           view: str | None = None, shape: TableShape | None = None, pretty: bool = True
           ) -> str:
    """The screening query (or ``CREATE VIEW view AS`` it) in ``dialect``, as text.

    Raises :class:`SqlUnsupported` naming what the dialect cannot express."""
    if dialect not in DIALECTS:
        from ..errors import UsageError

        raise UsageError(f"unknown SQL dialect '{dialect}'",
                         hint="choose one of: " + ", ".join(DIALECTS))
    tree: exp.Expression = screening_query(ruleset, shape, table)
    if view is not None:
        tree = exp.Create(this=exp.to_table(view), kind="VIEW", expression=tree,
                          replace=True)
    try:
        return tree.sql(dialect=dialect, pretty=pretty,
                        unsupported_level=sqlglot.ErrorLevel.RAISE) + ";\n"
    except sqlglot.errors.UnsupportedError as exc:
        raise SqlUnsupported(f"the rule set {ruleset.id} cannot be written in {dialect} SQL: "
                             f"{exc}", hint="choose another dialect (--dialect)") from None
