"""An interactive screening session: the interview state machine, a prompter, the console and
drafts put together. ``cli.screen`` parses options and calls :func:`run_session`."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.text import Text

from . import drafts
from .console import crisis_banner, crisis_notice, render_result
from .engine import Screening
from .errors import Interrupted, UsageError
from .files import write_private
from .interview import Interview, drive
from .ruleset.model import Ruleset


@dataclass(frozen=True)
class SessionOptions:
    client: str = ""
    counselor: str = ""
    output: Path | None = None
    resume: bool = False
    draft_id: str | None = None
    save: bool = True
    db: Path | None = None
    pager: str | None = None  # page long result details with this command (None: print them)


def run_session(
    ruleset: Ruleset,
    options: SessionOptions,
    prompter: Any,
    console: Console,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    load: Callable[[str], Ruleset] | None = None,
    out: Console | None = None,
) -> Screening:
    """Run one interview to a result (or raise :class:`Interrupted` after keeping a draft).

    The interview talks on ``console``; the result goes to ``out`` (default: the same)."""
    started = now()
    if options.resume or options.draft_id:
        draft = _choose_draft(options, prompter, console)
        ruleset = _ruleset_for(draft, ruleset, console, load)
        interview = Interview.restore(ruleset, draft.state)
        draft_id, created = draft.id, draft.created
        client, counselor = options.client or draft.client, options.counselor or draft.counselor
        console.print(Text(f"Resuming draft {draft_id} ({draft.answered} answered).",
                           style="bold"))
    else:
        interview = Interview(ruleset)
        draft_id, created = drafts.new_draft_id(started), started.isoformat(timespec="seconds")
        client, counselor = options.client, options.counselor

    _intro(console, ruleset, client)
    announced: list[bool] = []  # the full crisis banner is shown once, then shorter notices
    if interview.answers and interview.result().crisis:
        # A resumed interview had a crisis: say it again before anything else.
        crisis_rules = [r.title for r in interview.result().fired
                        if ruleset.crisis_flags & set(r.flags)]
        console.print(crisis_banner(ruleset, crisis_rules))
        announced.append(True)

    def save() -> None:
        drafts.save_draft(draft_id, now=now(), created=created, client=client,
                          counselor=counselor, ruleset=ruleset, state=interview.snapshot())

    def announce(rule_ids: list[str]) -> bool:
        """Show the crisis at once; False when the counselor chose to finish now."""
        titles = [r.title for r in ruleset.rules if r.id in rule_ids]
        console.print()
        if announced:
            # The protocol is already running: say what is new without a second full banner.
            console.print(crisis_notice(titles))
            return True
        announced.append(True)
        console.print(crisis_banner(ruleset, titles, interviewing=True))
        return bool(prompter.after_crisis() == "continue")
    try:
        result = drive(interview, prompter, announce, save)
    except KeyboardInterrupt:
        console.print()
        keep = True
        try:
            if interview.answers or interview.skipped:
                keep = prompter.confirm("Interrupted. Keep a draft to resume later?",
                                        default=True)
        except KeyboardInterrupt:
            keep = True
        if keep and (interview.answers or interview.skipped):
            save()
            console.print(Text(f"Draft {draft_id} kept (owner-only file). Resume with: "
                               f"iopscreen screen --resume", style="bold"))
        else:
            drafts.delete_draft(draft_id)
            console.print(Text("Nothing kept."))
        raise Interrupted("interview interrupted") from None

    not_asked = interview.not_asked()
    if not_asked:
        # Finished early (after a crisis, or a call that dropped): the record says what is open.
        result = replace(result, not_asked=tuple(not_asked))
        console.print()
        console.print(Text(f"Interview finished early: {len(not_asked)} question(s) not asked "
                           "(listed in the result and the record).", style="bold"))
    out = out or console
    notes: list[Text] = []  # said after the result, so they stay in view

    def show() -> None:
        out.print()
        render_result(out, result, ruleset, interview.answers, pager=options.pager)

    def write_output() -> None:
        if options.output is not None:
            meta = {"client": client, "counselor": counselor,
                    "completed": now().isoformat(timespec="seconds"), "draft_id": draft_id}
            write_private(options.output, json.dumps({**result.to_json(), "session": meta},
                                                     indent=2, ensure_ascii=False))
            notes.append(Text(f"Result written to {options.output} (owner-only file)."))

    # Saved before the result is shown (a pager can stay open a while), and before the draft
    # goes: if the store fails, the draft is still there to resume.
    if options.save:
        from .store import StoreError, open_store, resolve_db_path, save_screening

        kept = (f"draft {draft_id} is kept: resume it with 'iopscreen screen --draft "
                f"{draft_id}' and finish it to save the screening")
        try:
            with open_store(resolve_db_path(options.db), now=now, on_wait=lambda message:
                            console.print(Text(message, style="bold yellow"))) as store:
                record = save_screening(store, ruleset, result, interview.answers,
                                        client=client, counselor=counselor, source="interview")
        except StoreError as exc:
            write_output()
            show()  # the counselor still sees the result of the interview
            for line in notes:
                console.print(line)
            raise StoreError(f"the screening was not saved: {exc.message}",
                             hint=f"{exc.hint}; {kept}" if exc.hint else kept) from None
        except KeyboardInterrupt:
            write_output()
            for line in notes:
                console.print(line)
            console.print(Text(f"Interrupted before the screening was saved; {kept}.",
                               style="bold"))
            raise Interrupted("interrupted while saving") from None
        notes.append(Text(f"Saved as record {record.id} (iopscreen records show {record.id})."))
    write_output()
    show()
    for line in notes:
        console.print(line)
    drafts.delete_draft(draft_id)
    return result


def _intro(console: Console, ruleset: Ruleset, client: str) -> None:
    console.print(Text(ruleset.title, style="bold"))
    who = f" for client {client}" if client else ""
    console.print(Text(f"Rule set {ruleset.id} {ruleset.version}{who}. A screening aid, not a "
                       "diagnosis; a clinician confirms the level."))
    console.print(Text("Keys: press the key shown (or an arrow), then Enter: nothing is recorded "
                       "without Enter. d declined, b back, h help, f finish now; in typed "
                       "answers: - declined, < back, ? help, > skip, ! finish now. Ctrl-C "
                       "pauses and keeps a draft. Progress is saved after every answer.",
                       style="dim"))
    console.print()


def _choose_draft(options: SessionOptions, prompter: Any, console: Console) -> drafts.Draft:
    if options.draft_id:
        return drafts.load_draft(options.draft_id)
    found = drafts.list_drafts()
    if not found:
        raise UsageError("there are no saved drafts to resume",
                         hint="start a new interview with 'iopscreen screen'")
    options_list = [(d.id, f"{d.id}  client {d.client or '-'}  counselor {d.counselor or '-'}  "
                     f"{d.answered} answered  updated {d.updated}") for d in found]
    chosen = prompter.pick("Resume which draft?", options_list)
    return next(d for d in found if d.id == chosen)


def _ruleset_for(draft: drafts.Draft, current: Ruleset, console: Console,
                 load: Callable[[str], Ruleset] | None) -> Ruleset:
    """The draft's own rule set when it is still there unchanged, else the current one."""
    if draft.ruleset_hash == current.content_hash:
        return current
    if load is not None and draft.ruleset_path and Path(draft.ruleset_path).exists():
        try:
            earlier = load(draft.ruleset_path)
        except Exception:  # noqa: BLE001 - fall back to the current rule set below
            earlier = None
        if earlier is not None and earlier.content_hash == draft.ruleset_hash:
            return earlier
    console.print(Text(f"Note: this draft was started with {draft.ruleset_id} "
                       f"{draft.ruleset_version}, which has changed since; continuing with "
                       f"{current.id} {current.version}. Answers that no longer fit are "
                       "dropped and will be asked again.", style="bold yellow"))
    return current
