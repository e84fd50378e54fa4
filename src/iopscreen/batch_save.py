"""``batch --save``: keep every screened row of a file as a record in the store.

Runs after the batch output is complete, as a second pass over the same file with the same input
layer (:mod:`iopscreen.batch_input`) and the engine's own :func:`~iopscreen.engine.screen`, so a
saved record is exactly what ``evaluate`` would have made of that row. Rows with invalid values
are not saved (they are in the errors file to be fixed), nor rows whose id cell is blank (a record
no client can be found by: W410 in the errors file).

Rows are saved :data:`CHUNK_ROWS` at a time, one transaction each, screened before the write
lock is taken: other writers (another batch, ``evaluate --save``, a finished interview) get their
turn between chunks instead of waiting for the whole file. A row already saved (same client, rule
set and answers) is not saved again, so rerunning after fixing some rows saves only what is new.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any, Callable

from .answers import Answer, coerce_answers
from .batch_input import ID_NAMES, fit_row, open_source, plan_layout, sniff_delimiter
from .engine import Screening, screen
from .errors import AnswerError
from .ruleset.model import Ruleset
from .store import Store, save_screening_once

CHUNK_ROWS = 1000  # rows per transaction: about 0.1 s of holding the write lock (measured)


@dataclass(frozen=True)
class SaveCount:
    saved: int
    skipped_invalid: int
    skipped_blank: int
    skipped_no_id: int = 0
    already_saved: int = 0


def save_rows(ruleset: Ruleset, path: str, store: Store, *, encoding: str | None,
              delimiter: str | None, id_column: str | None, ignore_extra: bool,
              counselor: str,
              on_chunk: Callable[[SaveCount], None] | None = None) -> SaveCount:
    """Save each valid row of the CSV file at ``path`` that is not saved yet; returns what was
    saved and skipped. ``on_chunk`` gets the counts so far after each committed chunk (the
    write lock is free then). Raises :class:`~iopscreen.store.StoreError`; the chunks
    committed before it stay saved."""
    saved = invalid = blank = no_id = already = 0
    pending: list[tuple[str, dict[str, Answer], Screening]] = []

    def flush() -> None:
        nonlocal saved, already
        with store.transaction():
            for client, answers, screening in pending:
                _, new = save_screening_once(store, ruleset, screening, answers, client=client,
                                             counselor=counselor, source="batch")
                saved, already = saved + new, already + (not new)
        pending.clear()
        if on_chunk is not None:
            on_chunk(SaveCount(saved, invalid, blank, no_id, already))

    source = open_source(path, encoding)
    with source:
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
            pending.append((client, answers, screen(ruleset, answers)))
            if len(pending) >= CHUNK_ROWS:
                flush()
        if pending:
            flush()
    return SaveCount(saved, invalid, blank, no_id, already)
