"""An embedded DuckDB set up to run the screening query."""

from __future__ import annotations

from typing import Any


def connect(memory_limit: str | None = None, threads: int | None = None) -> Any:
    """A new in-memory DuckDB connection for the screening query.

    The query's many short IN lists (a cell's accepted spellings) are best left as they are:
    DuckDB's IN-clause rewrite makes planning the default rule set's query three times slower
    and gains nothing for lists this short."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET disabled_optimizers = 'in_clause'")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con
