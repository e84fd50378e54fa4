"""An embedded DuckDB set up to run the screening query, and the query written for it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


def connect(memory_limit: str | None = None, threads: int | None = None,
            spill: str | None = None) -> Any:
    """A new in-memory DuckDB connection for the screening query; above ``memory_limit`` it
    spills to the folder ``spill`` (make it owner-only: what spills is answers), and never
    to DuckDB's default, a ``.tmp`` folder in the current one.

    The query's many short IN lists (a cell's accepted spellings) are best left as they are:
    DuckDB's IN-clause rewrite makes planning the default rule set's query three times slower
    and gains nothing for lists this short."""
    import duckdb

    con = duckdb.connect(":memory:", config={"temp_directory": spill or ""})
    con.execute("SET disabled_optimizers = 'in_clause'")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


@lru_cache(maxsize=1)
def _dialect() -> Any:
    from sqlglot import exp
    from sqlglot.dialects.duckdb import DuckDB

    class Duck(DuckDB):
        """DuckDB as sqlglot writes it, but a concatenation as one CONCAT(a, b, ...) call:
        DuckDB runs ``a || b || c`` as nested pairs, copying the text at each step (three
        times slower for an output line of thirty pieces). The compiler never concatenates
        a NULL, where the two differ."""

        class Generator(DuckDB.Generator):  # type: ignore[name-defined,misc]
            TRANSFORMS = {**DuckDB.Generator.TRANSFORMS,  # type: ignore[attr-defined]
                          exp.Concat: lambda self, e: self.func("CONCAT", *e.expressions)}

    return Duck


def duckdb_sql(tree: Any) -> str:
    """The sqlglot ``tree`` as DuckDB SQL text."""
    return str(tree.sql(dialect=_dialect()))


# json.dumps's form of a text (ensure_ascii: \uXXXX for every character outside printable
# ASCII, a surrogate pair above U+FFFF), one character at a time. A fixed expression of ours,
# parsed once; the text it escapes is put in as a tree (see json_text).
_JSON_TEXT = r"""'"' || array_to_string(list_transform(string_split(text, ''), lambda c: CASE
 WHEN unicode(c) >= 65536 THEN printf('\u%04x\u%04x', 55296 + ((unicode(c) - 65536) >> 10),
                                      56320 + ((unicode(c) - 65536) & 1023))
 WHEN unicode(c) >= 127 OR unicode(c) < 32 THEN CASE c WHEN chr(10) THEN '\n'
   WHEN chr(13) THEN '\r' WHEN chr(9) THEN '\t' WHEN chr(8) THEN '\b' WHEN chr(12) THEN '\f'
   ELSE printf('\u%04x', unicode(c)) END
 WHEN c = '"' THEN '\"' WHEN c = '\' THEN '\\'
 ELSE c END), '') || '"'"""


@lru_cache(maxsize=1)
def _json_text_tree() -> Any:
    import sqlglot

    return sqlglot.parse_one(_JSON_TEXT, read="duckdb")


def json_text(x: Any) -> Any:
    """The DuckDB tree of ``x`` (a text, never NULL) as ``json.dumps`` writes it: what
    :func:`iopscreen.sql.results.json_text` takes as the exact form of the rare text that
    is not plain ASCII."""
    from sqlglot import exp

    from .results import json_text as json_string

    def put(node: Any) -> Any:
        if isinstance(node, exp.Column) and node.name == "text" and not node.table:
            return x.copy()
        return node

    return json_string(x, _json_text_tree().transform(put))
