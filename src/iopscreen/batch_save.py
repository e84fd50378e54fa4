"""``batch --save``: keep every screened row of a file as a record in the store.

Runs after the batch output is complete, as a second pass over the same file with the same input
layer (:mod:`iopscreen.batch_input`) and the engine's own :func:`~iopscreen.engine.screen`, so a
saved record is exactly what ``evaluate`` would have made of that row. Rows with invalid values
are not saved (they are in the errors file to be fixed), nor rows whose id cell is blank (a record
no client can be found by: W410 in the errors file); all rows are saved in one transaction.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

from .answers import coerce_answers
from .batch_input import ID_NAMES, fit_row, open_source, plan_layout, sniff_delimiter
from .engine import screen
from .errors import AnswerError
from .ruleset.model import Ruleset
from .store import Store, save_screening


@dataclass(frozen=True)
class SaveCount:
    saved: int
    skipped_invalid: int
    skipped_blank: int
    skipped_no_id: int = 0


def save_rows(ruleset: Ruleset, path: str, store: Store, *, encoding: str | None,
              delimiter: str | None, id_column: str | None, ignore_extra: bool,
              counselor: str) -> SaveCount:
    """Save each valid row of the CSV file at ``path``; returns what was saved and skipped."""
    saved = invalid = blank = no_id = 0
    source = open_source(path, encoding)
    with source, store.transaction():
        text = source.text
        first = text.readline()
        delim = delimiter or sniff_delimiter(first, [*ruleset.questions, *ID_NAMES])
        header = next(csv.reader([first], delimiter=delim))
        layout = plan_layout(header, ruleset, source.name, id_column=id_column,
                             ignore_extra=ignore_extra)
        for number, row in enumerate(csv.reader(text, delimiter=delim), 1):
            if not any(cell.strip() for cell in row):
                blank += 1
                continue
            if len(row) > len(header):  # batch reports it as an error row: not saved
                invalid += 1
                continue
            row = fit_row(row, len(header))  # a short row is read with blank cells, as batch
            raw: dict[str, Any] = {q: row[i] for q, i in layout.question_index.items()}
            try:
                answers = coerce_answers(ruleset, raw, source=f"{source.name} row {number}")
            except AnswerError:
                invalid += 1
                continue
            client = (row[layout.id_index].strip() if layout.id_index is not None
                      else f"row-{number}")
            if not client:
                no_id += 1
                continue
            save_screening(store, ruleset, screen(ruleset, answers), answers, client=client,
                           counselor=counselor, source="batch")
            saved += 1
    return SaveCount(saved, invalid, blank, no_id)
