"""What a SQL engine needs around the screening query to give batch's whole answer: the output
lines, the summary counts, the crisis rows, the rows with problems and the repeated ids.

Everything here is a sqlglot tree, written in any dialect of :data:`iopscreen.sql.DIALECTS`
with ``.sql(dialect)``, so every engine (DuckDB, Spark, a warehouse) gets the same answer from
the same trees. How an engine uses them:

1. ``screening_query(ruleset, shape, table, line="csv")`` (``shape.keep_blank=True`` and a
   ``row_column``) gives the named result of ``rules sql`` plus ``blank`` and ``line``: the
   row exactly as ``iopscreen batch`` writes it in that format (``line="csv"``, ``"csv_raw"``
   for ``--raw-csv``, ``"jsonl"``; ``"json"`` is JSONL with :func:`json_array_line` around
   it), without the line end. Materialise it as one relation (a temporary table, a cached
   DataFrame); call it ``screened``.
2. Write the lines of the rows that are not blank, in row order, each followed by ``\\n``
   (for CSV, :func:`csv_header` first; for JSON, see :func:`json_array_line`).
3. Run :func:`summary_query` (one row of counts), :func:`crisis_rows_query` (the first
   crisis rows for the summary), :func:`problem_rows_query` (the few rows with a problem:
   the caller turns each into its problems) and :func:`duplicate_ids_query` over it. Only
   these small answers come back to the caller; the result rows never do.

Row problems keep Python's wording: the engine returns codes and columns, and
:mod:`iopscreen.batch_duckdb` words them as :class:`iopscreen.answers.AnswerParser` does.
"""

from __future__ import annotations

import json
from typing import Sequence

from sqlglot import exp

from ..ruleset.model import Ruleset

LINE_FORMATS = ("csv", "csv_raw", "jsonl")
# What Python's str.strip() removes (every character for which str.isspace() is true).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
              "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
# A cell starting with one of these is run as a formula by spreadsheets (as
# batch_output.FORMULA_START, which the CSV lines follow).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_SPECIAL = (",", '"', "\r", "\n")


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _str(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def concat_text(parts: Sequence[exp.Expression]) -> exp.Expression:
    """``parts`` (never NULL: engines differ on a NULL part) joined into one flat
    concatenation (nested ones spliced in, neighbouring literals merged), '' for none."""
    out: list[exp.Expression] = []
    flat: list[exp.Expression] = []
    for p in parts:
        flat += p.expressions if isinstance(p, exp.Concat) else [p]
    for p in flat:
        if out and isinstance(p, exp.Literal) and p.is_string and isinstance(
                out[-1], exp.Literal) and out[-1].is_string:
            out[-1] = _str(out[-1].this + p.this)
        else:
            out.append(p)
    if not out:
        return _str("")
    if len(out) == 1:
        return out[0]
    return exp.Concat(expressions=out, safe=True)


_concat = concat_text


def _contains(text: exp.Expression, sub: str) -> exp.Expression:
    return exp.GT(this=exp.StrPosition(this=text, substr=_str(sub)),
                  expression=exp.Literal.number(0))


def _any(items: Sequence[exp.Expression]) -> exp.Expression:
    return exp.or_(*(exp.Paren(this=i) for i in items)) if len(items) > 1 else items[0]


def _bool_text(x: exp.Expression) -> exp.Expression:
    return exp.Case().when(x, _str("true")).else_(_str("false"))


def _text(x: exp.Expression) -> exp.Expression:
    """A value as text, '' for NULL (as batch's CSV writes a missing score or band)."""
    return exp.func("COALESCE", exp.cast(x, "VARCHAR"), _str(""))


def strip_text(x: exp.Expression) -> exp.Expression:
    """``x`` without the whitespace Python's strip() removes. The trim itself is slow with so
    many characters to remove (DuckDB: about 600 ns a cell), so it runs only on a text that
    starts or ends with one of them."""
    ws = _str(WHITESPACE)
    edge = _any([exp.GT(this=exp.StrPosition(this=ws, substr=side(
        this=x, expression=exp.Literal.number(1))), expression=exp.Literal.number(0))
        for side in (exp.Left, exp.Right)])
    return exp.Case().when(edge, exp.Trim(this=x, expression=ws, position="BOTH")).else_(x)


def trimmed_id(x: exp.Expression) -> exp.Expression:
    """An id cell without the whitespace Python's strip() removes ('' for NULL)."""
    return strip_text(exp.func("COALESCE", x, _str("")))


def _csv_quoted(x: exp.Expression) -> exp.Expression:
    """``x`` as a CSV field: quoted, quotes doubled, when it holds , " CR or LF."""
    return (exp.Case().when(_any([_contains(x, c) for c in CSV_SPECIAL]), _concat([
        _str('"'), exp.func("REPLACE", x, _str('"'), _str('""')), _str('"')])).else_(x))


def _neutralised(x: exp.Expression) -> exp.Expression:
    """``x`` with a leading ' when a spreadsheet would run it (batch_output.neutralise)."""
    first = exp.Substring(this=x, start=exp.Literal.number(1), length=exp.Literal.number(1))
    return (exp.Case().when(exp.In(this=first, expressions=[_str(c) for c in FORMULA_START]),
                            _concat([_str("'"), x])).else_(x))


def _csv_constant(text: str) -> str:
    if any(c in text for c in CSV_SPECIAL):
        return '"' + text.replace('"', '""') + '"'
    return text


# JSON escapes for the characters json.dumps escapes below U+0080; non-ASCII stays as it is
# (an engine may swap in an exact ensure_ascii form: see json_text's ``rest``).
_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"),
                 ("\b", "\\b"), ("\f", "\\f")] + [
    (chr(c), f"\\u{c:04x}") for c in range(0x20) if chr(c) not in "\n\r\t\b\f"]
_JSON_PLAIN = "^[ !#-\\[\\]-~]*$"  # printable ASCII but " and \: json.dumps leaves it alone


def json_text(x: exp.Expression, rest: exp.Expression | None = None) -> exp.Expression:
    """``x`` (never NULL) as a JSON string, as ``json.dumps`` writes it for ASCII text.

    Text with a character outside printable ASCII goes through ``rest`` when given (an
    engine's exact escape of ``x``, quotes included), else through REPLACE of each escape
    json.dumps uses below U+0080 (non-ASCII then stays unescaped: equal once parsed)."""
    if rest is None:
        rest = x
        for char, escaped in _JSON_ESCAPES:
            rest = exp.func("REPLACE", rest, _str(char), _str(escaped))
        rest = _concat([_str('"'), rest, _str('"')])
    plain = exp.RegexpLike(this=x, expression=_str(_JSON_PLAIN))
    return exp.Case().when(plain, _concat([_str('"'), x, _str('"')])).else_(rest)


def _json_list(x: exp.Expression) -> exp.Expression:
    """A '|'-joined list of rule-set ids (never quotes or |) as a JSON list of strings."""
    return (exp.Case().when(exp.EQ(this=x, expression=_str("")), _str("[]")).else_(_concat([
        _str('["'), exp.func("REPLACE", x, _str("|"), _str('", "')), _str('"]')])))


def line(ruleset: Ruleset, fmt: str, columns: dict[str, exp.Expression], id_key: str | None,
         errors: Sequence[tuple[exp.Expression, str]],
         json_id: exp.Expression | None = None, tail: bool = True) -> exp.Expression:
    """The output line (no line end) of one result row in ``fmt`` (see :data:`LINE_FORMATS`),
    from the expressions of its named result columns (``columns``: name -> expression, with
    ``id`` when the input has one, and ``row``; without ``row`` the line starts just after it,
    for an engine that numbers the rows as it writes them: CSV ``N`` + line, JSON
    ``{"row": N`` + line), the output name of the id column
    (``id_key``), and each cell's error code with its column label (for JSON's errors).
    ``json_id``: an engine's exact JSON form of the id (see :func:`json_text`); ``tail``
    False: without :func:`line_tail`."""
    c = columns
    instruments = [inst.id for inst in ruleset.instruments]
    if fmt in ("csv", "csv_raw"):
        rid = exp.func("COALESCE", c["id"], _str("")) if "id" in c else None
        errs = c["errors"]
        labels_need_quotes = any(ch in label for _, label in errors for ch in CSV_SPECIAL)
        parts: list[exp.Expression] = [exp.cast(c["row"], "VARCHAR") if "row" in c
                                       else _str("")]
        if rid is not None:
            parts.append(_csv_quoted(rid if fmt == "csv_raw" else _neutralised(rid)))
        parts += [c["status"], _csv_quoted(errs) if labels_need_quotes else errs,
                  c["level"], _bool_text(c["crisis"]), _bool_text(c["safety_review"]),
                  c["flags"], _bool_text(c["provisional"]), _text(c["possible_level"]),
                  c["deciding_questions"], c["fired_rules"], c["misconceptions"]]
        for inst in instruments:
            parts += [_text(c[f"{inst}_score"]), _text(c[f"{inst}_band"])]
        parts.append(c["ignored_answers"])
        joined: list[exp.Expression] = []
        for p in parts:
            joined += [p, _str(",")]
        return _concat(joined[:-1] + ([_str(line_tail(ruleset, fmt))] if tail else []))
    if fmt != "jsonl":
        raise ValueError(f"unknown line format {fmt!r}")
    pieces = [exp.Case().when(exp.not_(exp.Is(this=e, expression=exp.Null())), _concat([
        _str(', {"code": "'), e, _str(f'", "column": {json.dumps(label)}}}')])).else_(_str(""))
        for e, label in errors]
    error_list: exp.Expression = (exp.Case().when(
        exp.EQ(this=c["status"], expression=_str("error")),
        _concat([_str("["), exp.Substring(this=_concat(pieces), start=exp.Literal.number(3)),
                 _str("]")])).else_(_str("[]")) if pieces else _str("[]"))

    def key(name: str) -> str:
        return json.dumps(name) + ": "

    def value(x: exp.Expression, text: exp.Expression) -> exp.Expression:
        return exp.Case().when(exp.Is(this=x, expression=exp.Null()), _str("null")).else_(text)

    out: list[exp.Expression] = ([_str('{"row": '), exp.cast(c["row"], "VARCHAR")]
                                 if "row" in c else [])
    if "id" in c:
        assert id_key is not None
        rid = exp.func("COALESCE", c["id"], _str(""))
        out += [_str(", " + key(id_key)), json_id if json_id is not None else json_text(rid)]
    out += [_str(', "status": "'), c["status"], _str('", "errors": '), error_list,
            _str(', "level": "'), c["level"], _str('", "crisis": '), _bool_text(c["crisis"]),
            _str(', "safety_review": '), _bool_text(c["safety_review"]), _str(', "flags": '),
            _json_list(c["flags"]), _str(', "provisional": '), _bool_text(c["provisional"]),
            _str(', "possible_level": '), value(c["possible_level"], _concat([
                _str('"'), c["possible_level"], _str('"')])),
            _str(', "deciding_questions": '), _json_list(c["deciding_questions"]),
            _str(', "fired_rules": '), _json_list(c["fired_rules"]),
            _str(', "misconceptions": '), _json_list(c["misconceptions"])]
    for inst in instruments:
        score, band = c[f"{inst}_score"], c[f"{inst}_band"]
        out += [_str(", " + key(f"{inst}_score")), value(score, exp.cast(score, "VARCHAR")),
                _str(", " + key(f"{inst}_band")), value(band, _concat([_str('"'), band,
                                                                        _str('"')]))]
    out += [_str(', "ignored_answers": '), _json_list(c["ignored_answers"])]
    return _concat(out + ([_str(line_tail(ruleset, fmt))] if tail else []))


def line_tail(ruleset: Ruleset, fmt: str) -> str:
    """The end every output line in ``fmt`` shares (the rule set's id, version and hash):
    what :func:`line` leaves off with ``tail=False``, for an engine that stores the lines
    and adds it as it writes them."""
    if fmt in ("csv", "csv_raw"):
        return "," + ",".join(_csv_constant(t) for t in (ruleset.id, ruleset.version,
                                                         ruleset.content_hash))
    return (f', "ruleset_id": {json.dumps(ruleset.id)}, "ruleset_version": '
            f'{json.dumps(ruleset.version)}, "ruleset_sha256": '
            f'{json.dumps(ruleset.content_hash)}}}')


def csv_header(names: Sequence[str], raw_csv: bool = False) -> str:
    """The CSV header line (with its line end) of result columns ``names``, as batch writes
    it (the id column's name is input text: neutralised unless ``raw_csv``)."""
    from ..batch_output import neutralise

    return ",".join(_csv_constant(n if raw_csv else neutralise(n)) for n in names) + "\n"


def json_array_line(text: exp.Expression, row: exp.Expression, first: int,
                    last: int) -> exp.Expression:
    """A JSONL line as a line of batch's JSON array (``--format json``): '[' on a line
    before the ``first`` row, ',' after every row but the ``last``, which is followed by a
    line holding ']' (so the lines written one a line are the whole array; an input without
    rows is the two lines '[' and ']', which the caller writes itself)."""
    is_first = exp.EQ(this=row, expression=exp.Literal.number(first))
    is_last = exp.EQ(this=row, expression=exp.Literal.number(last))
    return _concat([exp.Case().when(is_first, _str("[\n")).else_(_str("")), text,
                    exp.Case().when(is_last, _str("\n]")).else_(_str(","))])


def _count(cond: exp.Expression) -> exp.Expression:
    return exp.func("SUM", exp.Case().when(cond, exp.Literal.number(1)).else_(
        exp.Literal.number(0)))


def _screened(table: str | exp.Expression) -> exp.Expression:
    return exp.to_table(table, quoted=True) if isinstance(table, str) else table


def _id(id_column: str | None) -> exp.Expression:
    return exp.alias_(_col(id_column) if id_column else exp.Null(), "id", quoted=True)


def _not_blank(has_blank: bool) -> exp.Expression:
    return exp.not_(_col("blank")) if has_blank else exp.true()


def summary_query(ruleset: Ruleset, table: str | exp.Expression = "screened",
                  id_column: str | None = "id", has_blank: bool = True) -> exp.Select:
    """One row of counts over the screened relation: ``rows`` (not blank), ``blank``,
    ``error_rows``, ``provisional`` (rows without errors), ``crisis`` (all rows),
    ``safety_review``, ``first_row`` and ``last_row`` (the first and last rows not blank),
    ``missing_ids`` and one ``level_K`` per level rank K (rows without errors).
    ``id_column``: the result's id column (None: none); ``has_blank``: whether the relation
    has the ``blank`` column (else every row counts). Over no rows SUM, MIN and MAX give
    NULL: read a NULL count as 0."""
    ok = exp.EQ(this=_col("status"), expression=_str("ok"))
    keep = _not_blank(has_blank)

    def where(*conds: exp.Expression) -> exp.Expression:
        return exp.and_(keep, *conds) if has_blank else (exp.and_(*conds) if conds else keep)

    columns = [exp.alias_(_count(where()), "rows", quoted=True),
               exp.alias_(_count(_col("blank")) if has_blank else exp.Literal.number(0),
                          "blank", quoted=True),
               exp.alias_(_count(where(exp.not_(ok))), "error_rows", quoted=True),
               exp.alias_(_count(where(ok, _col("provisional"))), "provisional", quoted=True),
               exp.alias_(_count(where(_col("crisis"))), "crisis", quoted=True),
               exp.alias_(_count(where(_col("safety_review"))), "safety_review", quoted=True),
               exp.alias_(exp.func("MIN", exp.Case().when(where(), _col("row"))), "first_row",
                          quoted=True),
               exp.alias_(exp.func("MAX", exp.Case().when(where(), _col("row"))), "last_row",
                          quoted=True),
               exp.alias_(_count(where(exp.EQ(this=trimmed_id(_col(id_column)),
                                              expression=_str(""))))
                          if id_column else exp.Literal.number(0), "missing_ids", quoted=True)]
    for k, lv in enumerate(ruleset.levels):
        columns.append(exp.alias_(_count(where(ok, exp.EQ(this=_col("level"),
                                                          expression=_str(lv.id)))),
                                  f"level_{k}", quoted=True))
    return exp.select(*columns).from_(_screened(table))


def crisis_rows_query(table: str | exp.Expression = "screened", id_column: str | None = "id",
                      limit: int = 100, has_blank: bool = True) -> exp.Select:
    """The first ``limit`` crisis rows, in row order: ``row``, ``id`` (NULL without one) and
    ``status`` ('error' when the row also has errors)."""
    return (exp.select(_col("row"), _id(id_column), _col("status"))
            .from_(_screened(table)).where(exp.and_(_not_blank(has_blank), _col("crisis")))
            .order_by(_col("row")).limit(limit))


def problem_rows_query(table: str | exp.Expression = "screened",
                       id_column: str | None = "id", has_blank: bool = True) -> exp.Select:
    """The rows with a problem of their own, in row order: ``row``, ``id``, ``errors``,
    ``ignored_answers``, ``safety_review``; a row is here when it has invalid cells, answers
    skip logic left out, or (with an id column) no id. Each becomes, in this order: W410
    missing-id, one E40x per invalid cell, one W412 per ignored answer."""
    found = [exp.NEQ(this=_col("errors"), expression=_str("")),
             exp.NEQ(this=_col("ignored_answers"), expression=_str(""))]
    if id_column:
        found.append(exp.EQ(this=trimmed_id(_col(id_column)), expression=_str("")))
    return (exp.select(_col("row"), _id(id_column), _col("errors"), _col("ignored_answers"),
                       _col("safety_review"))
            .from_(_screened(table)).where(exp.and_(_not_blank(has_blank), exp.Paren(
                this=_any(found)))).order_by(_col("row")))


def duplicate_ids_query(table: str | exp.Expression = "screened", id_column: str = "id",
                        has_blank: bool = True) -> exp.Select:
    """Every row whose id (stripped, not blank) an earlier row has: ``row``, ``key`` (the
    stripped id) and ``first`` (the earlier row), in row order (W411 duplicate-id). The ids
    are grouped once; only the repeated ones are joined back."""
    keys = exp.select(_col("row"), exp.alias_(trimmed_id(_col(id_column)), "key", quoted=True)
                      ).from_(_screened(table)).where(_not_blank(has_blank))
    repeated = (exp.select(_col("key"), exp.alias_(exp.func("MIN", _col("row")), "first",
                                                   quoted=True))
                .from_(exp.to_table("keyed", quoted=True))
                .where(exp.NEQ(this=_col("key"), expression=_str("")))
                .group_by(_col("key"))
                .having(exp.GT(this=exp.func("COUNT", exp.Star()),
                               expression=exp.Literal.number(1))))
    on = exp.EQ(this=exp.column("key", "k", quoted=True),
                expression=exp.column("key", "d", quoted=True))
    row, first = exp.column("row", "k", quoted=True), exp.column("first", "d", quoted=True)
    return (exp.select(exp.alias_(row, "row", quoted=True),
                       exp.alias_(exp.column("key", "k", quoted=True), "key", quoted=True),
                       exp.alias_(first, "first", quoted=True))
            .from_(exp.to_table("keyed", quoted=True, alias="k"))
            .join(exp.Subquery(this=repeated, alias=exp.TableAlias(
                this=exp.to_identifier("d"))), on=on)
            .where(exp.NEQ(this=row, expression=first))
            .order_by(exp.column("row", quoted=True))
            .with_(exp.to_identifier("keyed", quoted=True), as_=keys))
