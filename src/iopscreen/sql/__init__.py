"""The rule set compiled to SQL (a sqlglot expression tree, written per dialect).

Importing this package imports sqlglot; the command line imports it only for ``rules sql`` and
the SQL batch engines, so ``iopscreen --help`` and ``screen`` stay light.
"""

from __future__ import annotations

from .compiler import (
    DIALECTS,
    SqlUnsupported,
    TableShape,
    result_columns,
    screening_query,
    template_shape,
    to_sql,
)

__all__ = ["DIALECTS", "SqlUnsupported", "TableShape", "result_columns", "screening_query",
           "template_shape", "to_sql"]
