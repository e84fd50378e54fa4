"""The ``records`` and ``progress`` commands: options -> the record store -> rendering.

Importing this module registers the commands on :data:`iopscreen.cli.app` (``cli.py`` imports it
at its end). Errors are :mod:`iopscreen.errors` exceptions, which ``cli.run`` renders and turns
into the exit code; nothing here prints an answer value.
"""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from .cli import (
    DbOpt,
    Format,
    RulesetOpt,
    app,
    open_ruleset,
    store_notice,
)
from .answers_file import read_answers_file
from .console import make_console, render_screening
from .engine import Screening
from .errors import AnswerError, UsageError
from .files import write_private
from .progress import client_progress, sparkline
from .ruleset.model import Flag, Level, Question, Ruleset
from .store import (
    Store,
    open_store,
    rescreen,
    resolve_db_path,
    screening_from_json,
    utc_now,
)

records_app = typer.Typer(help="Saved screenings: list, show, export, amend, delete, audit.",
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(records_app, name="records")


class ExportFormat(str, Enum):
    markdown = "markdown"
    html = "html"
    json = "json"
    fhir = "fhir"


IdArg = typer.Argument(..., metavar="ID", help="Record id (any version of the record).")


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


ByOpt = typer.Option(None, "--by", help="Who does this, for the audit trail (default: your "
                     "login name).", show_default=False)


def _open(db: Optional[Path], *, must_exist: bool) -> Store | None:
    """The store, or None when there is no database yet and ``must_exist`` is false."""
    path = resolve_db_path(db)
    if not path.exists():
        if must_exist:
            raise UsageError(f"there is no record database at {path}",
                             hint="screenings are saved by 'iopscreen screen' and 'iopscreen "
                                  "evaluate --save'; --db or $IOPSCREEN_DB choose another "
                                  "database")
        make_console().print(f"No records yet (no database at {path}).", markup=False,
                             soft_wrap=True)
        return None
    return open_store(path, now=utc_now, on_wait=store_notice())


def _need(db: Optional[Path]) -> Store:
    store = _open(db, must_exist=True)
    assert store is not None
    return store


def _since(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"--since '{value}' is not a date",
                         hint="give a UTC date as YYYY-MM-DD, e.g. --since 2026-01-31") from None
    return day.strftime("%Y-%m-%dT00:00:00Z")


def _when(utc: str) -> str:
    """'2026-03-01T09:30:00Z' -> '2026-03-01 09:30'."""
    return utc[:16].replace("T", " ")


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, expand=False)
    for name in columns:
        table.add_column(name)
    return table


# --------------------------------------------------------------------------- records
@records_app.command("list")
def records_list(
    client: Optional[str] = typer.Option(None, "--client", "-c",
                                         help="Only this client reference (exact)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only screenings saved on or "
                                        "after this UTC date (YYYY-MM-DD)."),
    db: Optional[Path] = DbOpt,
) -> None:
    """List saved screenings (the latest version of each record), oldest first.

    Example: iopscreen records list --client C-1042 --since 2026-01-01
    """
    since_utc = _since(since)
    store = _open(db, must_exist=False)
    if store is None:
        return
    with store:
        found = store.find(client=client, since=since_utc)
    out = make_console()
    if not found:
        out.print(f"No records match in {store.path}.", markup=False, soft_wrap=True)
        return
    # Level ids and a yes/no column keep one record to one line at 80 columns.
    table = _table("ID", "Ver", "Client", "Counselor", "Date (UTC)", "Level", "Prov.",
                   "Flags")
    table.columns[4].no_wrap = table.columns[5].no_wrap = True
    table.columns[7].overflow = "fold"
    for r in found:
        table.add_row(str(r.id), str(r.version), r.client or "-", r.counselor or "-",
                      _when(r.screened_utc), r.level, "yes" if r.provisional else "no",
                      ", ".join(r.flag_ids) or "-")
    out.print(table)
    out.print(f"{len(found)} record(s) in {store.path}", markup=False, soft_wrap=True)


@records_app.command("show")
def records_show(
    record_id: int = IdArg,
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="Output format."),
    ruleset_path: Optional[Path] = RulesetOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Show a saved screening with its reasons, its record details and its version history.

    Example: iopscreen records show 12
    """
    with _need(db) as store:
        record = store.get(record_id)
        history = store.history(record_id)
    if fmt is Format.json:
        typer.echo(json.dumps(record.to_json(), indent=2, ensure_ascii=False))
        return
    assert record.result is not None
    out = make_console()
    latest = history[-1]
    head = Text(f"Record {record.id}", style="bold")
    head.append(f" (version {record.version} of {latest.version}"
                + (f", amends record {record.amends}" if record.amends else "") + ")")
    out.print(head)
    out.print(Text(f"  client {record.client or '-'}; counselor {record.counselor or '-'}; "
                   f"saved {record.created_utc} from {record.source}"))
    if record.note:
        out.print(Text(f"  note: {record.note}"))
    if latest.id != record.id:
        out.print(Text(f"  Superseded: the latest version is record {latest.id}.",
                       style="bold yellow"))
    screening = screening_from_json(record.result)
    current = open_ruleset(ruleset_path)
    if current.content_hash != screening.ruleset_hash:
        out.print(Text(f"  Saved with rule set {screening.ruleset_id} {screening.ruleset_version}"
                       f" (sha256 {screening.ruleset_hash[:12]}), not the one loaded now "
                       f"({current.id} {current.version}); labels come from the saved result.",
                       style="dim"))
    out.print()
    render_screening(out, screening, _view_ruleset(current, screening))
    out.print(Text("VERSION HISTORY", style="bold underline"))
    table = _table("Ver", "ID", "Saved (UTC)", "Level", "Note")
    for v in history:
        mark = " <- shown" if v.id == record.id else ""
        table.add_row(str(v.version), str(v.id), _when(v.created_utc),
                      "(deleted)" if v.deleted else v.level_label, (v.note or "-") + mark)
    out.print(table)


def _view_ruleset(current: Ruleset, screening: Screening) -> Ruleset:
    """A rule set that can render ``screening``: the loaded one when it is the one the result was
    made with; else the loaded one with the saved result's own labels for its levels and flags,
    and stand-ins for anything the loaded rule set no longer has (results outlive rule sets)."""
    if current.content_hash == screening.ruleset_hash:
        return current
    levels = list(current.levels)
    wanted = [screening.possible_level, *(r.min_level for r in screening.fired),
              *(p.min_level for p in screening.pending)]
    for lid in dict.fromkeys(x for x in wanted if x):
        if all(lv.id != lid for lv in levels):
            levels.append(Level(lid, lid, "", len(levels)))
    at = next((i for i, lv in enumerate(levels) if lv.id == screening.level), None)
    if at is None:
        levels.append(Level(screening.level, screening.level_label, "", len(levels)))
    else:
        levels[at] = replace(levels[at], label=screening.level_label)
    flags = dict(current.flags)
    for p in screening.pending:
        for fid in p.flags:
            flags.setdefault(fid, Flag(fid, fid, "note"))
    flags.update({f.id: Flag(f.id, f.label, f.severity) for f in screening.flags})
    questions = dict(current.questions)
    for qid in screening.deciding:
        questions.setdefault(qid, Question(qid, "", qid, "text"))
    return replace(current, id=screening.ruleset_id, version=screening.ruleset_version,
                   content_hash=screening.ruleset_hash, levels=tuple(levels), flags=flags,
                   questions=questions, disclaimer=screening.disclaimer or current.disclaimer)


@records_app.command("export")
def records_export(
    record_id: int = IdArg,
    fmt: ExportFormat = typer.Option(..., "--format", "-f", help="Report format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report here "
                                          "(owner-only file; default: stdout)."),
    force: bool = typer.Option(False, "--force", help="Replace the --output file if it "
                               "exists."),
    ruleset_path: Optional[Path] = RulesetOpt,
    by: Optional[str] = ByOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Export a saved screening for the chart: Markdown, standalone HTML, JSON or FHIR R4.
    When the rule set (default: the shipped one) is the one the record was made with, the
    report adds its wording (level descriptions, crisis protocol, questions).

    Example: iopscreen records export 12 --format html -o c1042-2026-03-01.html
    """
    from .batch_output import check_paths
    from .reports import render_record, ruleset_matches

    if output is not None:  # before any work: a chart report is never silently replaced
        check_paths("-", [("output", str(output))], force)
    ruleset = open_ruleset(ruleset_path)
    with _need(db) as store:
        record = store.get(record_id).to_json()
        text = render_record(fmt.value, record,
                             ruleset if ruleset_matches(record, ruleset) else None)
        if output is None:
            typer.echo(text, nl=not text.endswith("\n"))
        else:
            write_private(output, text)
        store.log_export(record_id, actor=by or _login(),
                         detail=f"{fmt.value} to {output if output is not None else 'stdout'}")
    if output is not None:
        make_console(stderr=True).print(f"Record {record_id} written to {output} "
                                        "(owner-only file).", markup=False, soft_wrap=True)


@records_app.command("amend")
def records_amend(
    record_id: int = IdArg,
    answers: Path = typer.Option(..., "--answers", "-a", help="JSON or YAML file of corrected "
                                 "answers, laid over the saved ones (null removes an answer)."),
    note: str = typer.Option("", "--note", help="Why the record is corrected."),
    ruleset_path: Optional[Path] = RulesetOpt,
    show_values: bool = typer.Option(False, "--show-values",
                                     help="Include answer values in error messages."),
    by: Optional[str] = ByOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Correct a saved screening: re-screen its answers with your corrections and save the
    result as a new version (the earlier versions stay in its history).

    Example: iopscreen records amend 12 --answers fix.json --note "phq9_3 misheard"
    """
    ruleset = open_ruleset(ruleset_path)
    changes, repeated = read_answers_file(answers, ruleset.questions)
    if repeated:
        raise AnswerError(f"{len(repeated)} invalid answer(s) in {answers}",
                          diagnostics=[d for _, d in repeated])
    with _need(db) as store:
        before = store.get(record_id)
        new, dropped = rescreen(store, ruleset, record_id, changes, source=str(answers),
                                note=note, actor=by or _login(), show_values=show_values)
    out = make_console()
    out.print(f"Saved record {new.id}: version {new.version} of the record, amending record "
              f"{record_id}.", markup=False, soft_wrap=True)
    level = (f"{before.level_label} -> {new.level_label}" if before.level != new.level
             else f"{new.level_label} (unchanged)")
    out.print(f"  level: {level}{'; provisional' if new.provisional else ''}", markup=False,
              soft_wrap=True)
    if dropped:
        out.print(f"  Not carried over (the rule set no longer asks them): {', '.join(dropped)}",
                  markup=False, soft_wrap=True)
    out.print(f"  See it with: iopscreen records show {new.id}", markup=False, soft_wrap=True)


@records_app.command("delete")
def records_delete(
    record_id: int = IdArg,
    reason: str = typer.Option(..., "--reason", help="Why it is deleted (kept in the audit "
                               "trail)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    by: Optional[str] = ByOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Delete a saved screening: erase the answers and results of all its versions. A tombstone
    and an audit entry (who, when, why) stay.

    Example: iopscreen records delete 12 --reason "entered for the wrong client"
    """
    if not reason.strip():
        raise UsageError("a reason is required to delete a record",
                         hint="say why, e.g. --reason 'entered for the wrong client'")
    with _need(db) as store:
        record = store.get(record_id)
        versions = store.history(record_id)
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("deleting a record needs confirmation and there is no terminal",
                                 hint="add --yes to confirm")
            ids = ", ".join(str(v.id) for v in versions)
            if not typer.confirm(f"Delete record {record.id} of client {record.client or '-'} "
                                 f"(versions {ids})? Its answers and results are erased; an "
                                 "audit entry stays.", default=False):
                make_console().print("Nothing deleted.", markup=False)
                return
        erased = store.delete(record_id, reason=reason, actor=by or _login())
    make_console().print(f"Deleted record {record_id}: erased version(s) "
                         f"{', '.join(map(str, erased))}; the audit trail keeps who, when and "
                         "why.", markup=False, soft_wrap=True)


@records_app.command("audit")
def records_audit(
    record_id: Optional[int] = typer.Argument(None, metavar="[ID]", help="Only this record "
                                              "(all its versions)."),
    db: Optional[Path] = DbOpt,
) -> None:
    """Show the audit trail: every create, amend, delete and export, with when and who.

    Example: iopscreen records audit 12
    """
    store = _open(db, must_exist=record_id is not None)
    if store is None:
        return
    with store:
        entries = store.audit(record_id)
    out = make_console()
    if not entries:
        out.print("The audit trail is empty.", markup=False)
        return
    table = _table("When (UTC)", "Action", "Record", "By", "Detail")
    for e in entries:
        table.add_row(e.at_utc, e.action, str(e.record_id), e.actor, e.detail)
    out.print(table)


# --------------------------------------------------------------------------- progress
@app.command("progress")
def progress_command(
    client: str = typer.Argument(..., metavar="CLIENT", help="Client reference (exact)."),
    ruleset_path: Optional[Path] = RulesetOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Show a client's screenings over time: level and scores, a chart of the scores, and the
    change since last time against the minimal important differences of the rule set.

    Example: iopscreen progress C-1042
    """
    ruleset = open_ruleset(ruleset_path)
    with _need(db) as store:
        records = store.find(client=client)
    if not records:
        raise UsageError(f"there are no saved screenings for client '{client}'",
                         hint="'iopscreen records list' shows the saved records; client "
                              "references must match exactly")
    progress = client_progress(client, records, ruleset)
    out = make_console()
    out.print(Text(f"Progress of client {client}: {len(records)} screening(s), "
                   f"{records[0].screened_utc[:10]} to {records[-1].screened_utc[:10]}",
                   style="bold"))
    table = _table("Date (UTC)", "Record", "Level", "Prov.", *(s.short for s in progress.series))
    for i, r in enumerate(records):
        table.add_row(r.screened_utc[:10], str(r.id), r.level,
                      "yes" if r.provisional else "no",
                      *("?" if s.values[i] is None else f"{s.values[i]:g}"
                        for s in progress.series))
    out.print(table)
    out.print()
    if progress.series:
        out.print(Text("SCORES OVER TIME (oldest first; a full block is the maximum score; "
                       "· unknown)", style="bold underline"))
        width = max(len(s.short) for s in progress.series)
        for s in progress.series:
            known = [v for v in s.values if v is not None]
            span = (f"{known[0]:g} to {known[-1]:g} of {s.max_score}" if len(known) > 1 else
                    f"{known[0]:g} of {s.max_score}" if known else "no score")
            out.print(Text(f"  {s.short:<{width}}  {sparkline(s.values, s.max_score)}  {span}"))
        out.print()
    if progress.level_change is None:
        out.print(Text("Only one screening so far: nothing to compare yet.", style="dim"))
        return
    before, after = progress.level_change
    out.print(Text(f"CHANGE SINCE LAST TIME ({records[-2].screened_utc[:10]} -> "
                   f"{records[-1].screened_utc[:10]})", style="bold underline"))
    out.print(Text(f"  Level: {before} -> {after}" if before != after
                   else f"  Level: {after} (unchanged)"))
    for change in progress.changes:
        out.print(Text(f"  {change.describe()}"))
