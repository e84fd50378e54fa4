"""Terminal rendering with rich (the only module that imports rich).

Everything here must read well at 80 columns and with colour off (NO_COLOR): meaning is carried
by words and symbols, never by colour alone.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .answers import Answer, display_value
from .engine import FlagResult, Screening, flag_shown, hidden_advice
from .errors import Diagnostic
from .ruleset.model import Ruleset

SEVERITY_STYLE = {"crisis": "bold white on red", "urgent": "bold red", "review": "bold yellow",
                  "note": "cyan"}
SEVERITY_MARK = {"crisis": "!!!", "urgent": "!!", "review": "!", "note": "-"}


def make_console(stderr: bool = False, width: int | None = None) -> Console:
    """A console that honours NO_COLOR and never wraps wider than the terminal."""
    no_color = "NO_COLOR" in os.environ
    return Console(stderr=stderr, no_color=no_color, width=width, highlight=False,
                   soft_wrap=False, emoji=False)


def print_diagnostics(diagnostics: Iterable[Diagnostic], console: Console | None = None) -> None:
    console = console or make_console(stderr=True)
    for d in diagnostics:
        style = "red" if d.level == "error" else "yellow"
        console.print(Text(d.render().split("\n")[0], style=style), soft_wrap=True)
        if d.hint:
            console.print(Text(f"  hint: {d.hint}"), soft_wrap=True)


def _p(console: Console, text: Text) -> None:
    """Print a line whose wrapped continuation keeps the line's indentation."""
    plain = text.plain
    indent = len(plain) - len(plain.lstrip(" "))
    if not indent:
        console.print(text)
        return
    for line in text[indent:].wrap(console, max(console.width - indent, 20)):
        line.rstrip()
        console.print(Text(" " * indent) + line, soft_wrap=True)


def crisis_banner(ruleset: Ruleset, reasons: Iterable[str] = (),
                  interviewing: bool = False) -> Panel:
    """The crisis protocol, impossible to miss with or without colour. ``interviewing``: shown
    during the interview, which may go on (a result or a record never says so)."""
    body = Text()
    body.append("!!! CRISIS - ACT NOW !!!\n", style="bold")
    for reason in reasons:
        body.append(f"Because: {reason}\n")
    body.append("\n")
    for i, step in enumerate(ruleset.crisis.protocol, 1):
        body.append(f"{i}. {step}\n", style="bold")
    if ruleset.crisis.resources:
        body.append("\n")
    for res in ruleset.crisis.resources:
        body.append(f"* {res.name}: {res.contact}\n")
    if interviewing:
        body.append("\nNext: continue the interview once the person is safe, or finish now "
                    "and save a record.", style="italic")
    else:
        body.rstrip()
    return Panel(body, title=f"!!! {ruleset.crisis.title.upper()} !!!", box=box.DOUBLE,
                 style=SEVERITY_STYLE["crisis"], expand=True, padding=(1, 2))


def crisis_notice(reasons: Iterable[str]) -> Panel:
    """A further crisis criterion while the protocol is already running."""
    body = Text("!!! ANOTHER CRISIS CRITERION: ", style="bold")
    body.append("; ".join(reasons), style="bold")
    body.append("\nThe crisis protocol shown above still applies.")
    return Panel(body, box=box.DOUBLE, style=SEVERITY_STYLE["crisis"], expand=True)


def level_panel(screening: Screening, ruleset: Ruleset) -> Panel:
    level = ruleset.level(screening.level)
    head = Text(justify="center")
    head.append("RECOMMENDED LEVEL OF CARE\n", style="dim")
    head.append(f"{level.label.upper()}", style="bold reverse")
    body = Text(level.description, style="italic")
    if level.sources:
        body.append("\nSources: " + "; ".join(ruleset.source_titles(level.sources)),
                    style="dim")
    status = Text(justify="center")
    line = status_line(screening, ruleset)
    if screening.provisional:
        head_word, rest = line.split(":", 1)
        status.append(head_word, style="bold yellow")
        status.append(":" + rest)
    elif screening.crisis:
        # Never "final": the protocol comes first and a clinician decides what follows.
        status.append(line, style="bold")
    else:
        status.append(line.rstrip("."), style="bold green")
    return Panel(Group(head, Text(""), body, Text(""), status), box=box.HEAVY, expand=True,
                 padding=(1, 2))


SUMMARY_REASONS = 5  # the summary fits a 24-line terminal at 80 columns


def status_line(screening: Screening, ruleset: Ruleset) -> str:
    """Final, provisional (and what it could become) or crisis: never "final" for a crisis."""
    if screening.provisional:
        possible = ruleset.level(screening.possible_level or screening.level)
        if possible.id != screening.level:
            return f"PROVISIONAL: unanswered questions could raise this to {possible.label}."
        return "PROVISIONAL: unanswered questions could add flags that need attention."
    if screening.crisis:
        return "CRISIS: follow the crisis protocol now; a clinician decides the next step."
    return "Final for the answers given."


def render_summary(console: Console, screening: Screening, ruleset: Ruleset) -> None:
    """The result at a glance (level, crisis, status, top reasons) in at most ~20 lines."""
    level = ruleset.level(screening.level)
    body = Text()
    body.append("RECOMMENDED LEVEL: ", style="bold")
    body.append(level.label.upper(), style="bold reverse")
    if screening.crisis:
        body.append("\n!!! CRISIS - follow the crisis protocol now", style="bold")
        contacts = "; ".join(f"{r.name}: {r.contact}" for r in ruleset.crisis.resources[:2])
        if contacts:
            body.append(f" ({contacts})")
    body.append("\n" + status_line(screening, ruleset),
                style="bold" if screening.provisional or screening.crisis else "bold green")
    flags = shown_flags(screening, ruleset)
    if flags:
        body.append("\nFlags: " + "; ".join(f"{SEVERITY_MARK[f.severity]} {f.label}"
                                            for f in flags[:4]))
        if len(flags) > 4:
            body.append(f"; +{len(flags) - 4} more")
    clinical = [r for r in screening.fired if r.category != "engagement"]
    if clinical:
        body.append("\nTop reasons:", style="bold")
        ranked = sorted(clinical, key=lambda r: (-_rule_weight(r, ruleset), screening.fired.index(r)))
        for r in ranked[:SUMMARY_REASONS]:
            body.append(f"\n  * {_short(r.title, 70)}")
        if len(clinical) > SUMMARY_REASONS:
            body.append(f"\n  ... and {len(clinical) - SUMMARY_REASONS} more (in the details)")
    if screening.not_asked:
        body.append(f"\nNot asked: {len(screening.not_asked)} question(s) (finished early; "
                    "listed in the details)")
    console.print(Panel(body, title="Result", box=box.HEAVY, expand=True, padding=(0, 1)))


def _rule_weight(rule: Any, ruleset: Ruleset) -> int:
    """Crisis reasons first, then by the level they set."""
    crisis = any(ruleset.flags[f].severity == "crisis" for f in rule.flags if f in ruleset.flags)
    rank = ruleset.level(rule.min_level).rank if rule.min_level else -1
    return (100 if crisis else 0) + rank


def render_result(console: Console, screening: Screening, ruleset: Ruleset,
                  answers: dict[str, Answer] | None = None, pager: str | None = None) -> None:
    """The summary, then the details: through ``pager`` (a command line) when they are longer
    than the screen, else printed straight."""
    render_summary(console, screening, ruleset)
    if pager is None:
        render_screening(console, screening, ruleset, answers)
        return
    import io
    import shlex
    import subprocess

    buffer = io.StringIO()
    capture = Console(file=buffer, width=console.width, force_terminal=console.is_terminal,
                      color_system=console.color_system, no_color=console.no_color,
                      highlight=False, soft_wrap=False, emoji=False)
    render_screening(capture, screening, ruleset, answers)
    details = buffer.getvalue()
    if details.count("\n") < console.height - 2:
        console.file.write(details)
        console.file.flush()
        return
    console.print(Text("Details follow in the pager (q to leave it)...", style="dim"))
    try:
        subprocess.run(shlex.split(pager), input=details, text=True, check=False)
    except (OSError, ValueError):
        console.file.write(details)  # no such pager: the details are printed instead
        console.file.flush()


def render_screening(console: Console, screening: Screening, ruleset: Ruleset,
                     answers: dict[str, Answer] | None = None) -> None:
    """Print the whole explained result."""
    if screening.crisis:
        reasons = [r.title for r in screening.fired
                   if any(ruleset.flags[f].severity == "crisis" for f in r.flags)]
        console.print(crisis_banner(ruleset, reasons))
    console.print(level_panel(screening, ruleset))

    flags = shown_flags(screening, ruleset)
    if flags:
        _p(console, Text("FLAGS", style="bold underline"))
        for f in flags:
            line = Text(f"  {SEVERITY_MARK[f.severity]} ")
            line.append(f"{f.label}", style=SEVERITY_STYLE[f.severity])
            line.append(f"  [{f.severity}; rules: {', '.join(f.rules)}]", style="dim")
            _p(console, line)
        console.print()

    clinical = [r for r in screening.fired if r.category != "engagement"]
    engagement, talking = shown_notes(screening, ruleset)
    _p(console, Text("WHY", style="bold underline"))
    if not clinical:
        lowest = ruleset.levels[0]
        console.print(f"  No criterion for a higher level was met, so the result is the lowest "
                      f"level ({lowest.label}).", markup=False)
    for r in clinical:
        _print_rule(console, r, ruleset)
    console.print()

    if screening.pending:
        _p(console, Text("MISSING ANSWERS THAT COULD CHANGE THIS", style="bold underline"))
        for p in screening.pending:
            effect = []
            if p.min_level:
                effect.append(f"level {ruleset.level(p.min_level).label}")
            effect.extend(ruleset.flags[f].label for f in p.flags)
            _p(console, Text(f"  ? {p.title} -> {', '.join(effect)}"))
            if p.deciding:
                asks = "; ".join(f"{q} ({_short(ruleset.questions[q].text)})" for q in p.deciding)
                _p(console, Text(f"      decided by: {asks}", style="dim"))
        console.print()

    if ruleset.instruments:
        _p(console, Text("SCORES", style="bold underline"))
        table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, expand=False)
        table.add_column("Instrument")
        table.add_column("Score", justify="right")
        table.add_column("Band")
        for s in screening.scores:
            score = "unknown" if s.score is None else f"{s.score:g}/{s.max_score}"
            band = s.band_label or ("missing: " + ", ".join(s.missing_items)
                                    if s.missing_items else "-")
            table.add_row(s.title, score, band)
        console.print(table)

    if talking:
        _p(console, Text("TALKING POINTS (the client's concerns)", style="bold underline"))
        for m in talking:
            _p(console, Text(f"  Concern: \"{m.myth}\"", style="bold"))
            _p(console, Text(f"    Say: {m.facts}"))
            titles = m.source_titles or m.sources
            _p(console, Text(f"    Source{'s' if len(titles) > 1 else ''}: {'; '.join(titles)}",
                             style="dim"))
        console.print()

    if engagement:
        _p(console, Text("ENGAGEMENT NOTES (never lower the level)", style="bold underline"))
        for r in engagement:
            _print_rule(console, r, ruleset)
        console.print()

    if screening.not_asked:
        _p(console, Text(f"NOT ASKED ({len(screening.not_asked)} questions: the interview was "
                         "finished early)", style="bold underline"))
        _p(console, Text("  " + ", ".join(screening.not_asked)))
        console.print()

    if screening.ignored:
        _p(console, Text("Answers ignored because skip logic made them not applicable: "
                           + ", ".join(screening.ignored), style="dim"))
    _p(console, Text(f"Rule set: {ruleset.id} {ruleset.version} "
                       f"(sha256 {ruleset.content_hash[:12]})", style="dim"))
    console.print(Panel(Text(screening.disclaimer), title="Screening aid", box=box.ROUNDED))


def _hidden(screening: Screening, ruleset: Ruleset) -> tuple[frozenset[str], frozenset[str]]:
    """The engagement notes and talking points not meant for the recommended level: by the
    levels the result carries, else (a record saved before results carried them) by the rule
    set's."""
    rules = {r.id: r.levels for r in ruleset.rules}
    miscs = {m.id: m.levels for m in ruleset.misconceptions}
    notes = hidden_advice(screening.level, ((r.id, r.levels or rules.get(r.id, ()))
                                            for r in screening.fired
                                            if r.category == "engagement"))
    talking = hidden_advice(screening.level, ((m.id, m.levels or miscs.get(m.id, ()))
                                              for m in screening.misconceptions))
    return notes, talking


def shown_notes(screening: Screening, ruleset: Ruleset) -> tuple[list[Any], list[Any]]:
    """The engagement notes and talking points to show: those meant for the recommended
    level (the result itself keeps them all)."""
    notes, talking = _hidden(screening, ruleset)
    return ([r for r in screening.fired if r.category == "engagement" and r.id not in notes],
            [m for m in screening.misconceptions if m.id not in talking])


def shown_flags(screening: Screening, ruleset: Ruleset) -> list[FlagResult]:
    """The flags to show: all but those raised only by notes hidden for this level."""
    notes, _ = _hidden(screening, ruleset)
    return [f for f in screening.flags if flag_shown(f.rules, notes)]


def _print_rule(console: Console, rule, ruleset: Ruleset) -> None:  # type: ignore[no-untyped-def]
    effect = []
    if rule.min_level:
        effect.append(f"min. {ruleset.level(rule.min_level).label}")
    effect.extend(ruleset.flags[f].label for f in rule.flags)
    head = Text("  * ")
    head.append(rule.title, style="bold")
    head.append(f"  ({'; '.join(effect)})", style="dim")
    _p(console, head)
    _p(console, Text(f"      {rule.reason}"))
    if rule.evidence:
        ev = ", ".join(f"{e.name} = {e.value}" for e in rule.evidence)
        _p(console, Text(f"      from: {ev}", style="dim"))
    titles = rule.source_titles or rule.source_ids or rule.sources
    _p(console, Text(f"      source{'s' if len(titles) > 1 else ''}: {'; '.join(titles)}",
                     style="dim"))


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_ruleset(console: Console, ruleset: Ruleset) -> None:
    """A readable rendering of levels, questions, instruments and rules."""
    console.print(Panel(Text(f"{ruleset.title}\n{ruleset.id} version {ruleset.version}, "
                             f"effective {ruleset.effective}"
                             + (f"\nFor: {ruleset.population}" if ruleset.population else "")),
                        box=box.HEAVY))
    _p(console, Text("LEVELS (least to most intensive)", style="bold underline"))
    for lv in ruleset.levels:
        _p(console, Text(f"  {lv.rank + 1}. {lv.label} [{lv.id}]", style="bold"))
        _p(console, Text(f"     {lv.description}"))
    console.print()
    if ruleset.flags:
        _p(console, Text("FLAGS (most severe first)", style="bold underline"))
        for flag in sorted(ruleset.flags.values(), key=lambda f: f.rank):
            _p(console, Text(f"  {SEVERITY_MARK[flag.severity]} {flag.label} [{flag.id}, "
                               f"{flag.severity}]"))
        console.print()
    if ruleset.crisis.protocol or ruleset.crisis.resources:
        _p(console, Text(f"CRISIS PROTOCOL: {ruleset.crisis.title}", style="bold underline"))
        for i, step in enumerate(ruleset.crisis.protocol, 1):
            _p(console, Text(f"  {i}. {step}"))
        for res in ruleset.crisis.resources:
            _p(console, Text(f"  * {res.name}: {res.contact}"))
        console.print()
    _p(console, Text("QUESTIONS", style="bold underline"))
    for sec in ruleset.sections:
        _p(console, Text(f"  {sec.title}", style="bold"))
        for qid in sec.questions:
            q = ruleset.questions[qid]
            kind = q.type + ("" if q.required else ", optional")
            if q.type == "integer":
                kind += f", {q.min}-{q.max}"
            _p(console, Text(f"    {qid} ({kind}): {q.text}"))
            if q.choices:
                _p(console, Text("        " + "; ".join(c.spellings for c in q.choices),
                                   style="dim"))
            if q.ask_when:
                _p(console, Text(f"        asked when: {q.ask_when.text}", style="dim"))
            if q.help:
                _p(console, Text(f"        help: {q.help}", style="dim"))
    console.print()
    if ruleset.instruments:
        _p(console, Text("INSTRUMENTS", style="bold underline"))
        for inst in ruleset.instruments:
            _p(console, Text(f"  {inst.title} [{inst.id}], 0-{inst.max_score}", style="bold"))
            _p(console, Text(f"    items: {', '.join(inst.items)}"))
            if inst.gate:
                _p(console, Text(f"    scored only when: {inst.gate.text} "
                                   f"(else {inst.gate_score})"))
            _p(console, Text("    bands: " + "; ".join(f"{b.min}-{b.max} {b.label}"
                                                         for b in inst.bands)))
            _p(console, Text(f"    missing items: {inst.missing}"
                               + (f" (up to {inst.max_missing})" if inst.missing == "prorate"
                                  else "")))
            if inst.license:
                _p(console, Text(f"    licence: {inst.license}"))
            _p(console, Text("    source: " + "; ".join(ruleset.sources[s].cite
                                                         for s in inst.sources), style="dim"))
        console.print()
    if ruleset.derived:
        _p(console, Text("DERIVED VALUES", style="bold underline"))
        for d in ruleset.derived:
            _p(console, Text(f"  {d.id} = {d.expr.text}"))
            if d.description:
                _p(console, Text(f"    {d.description}", style="dim"))
        console.print()
    _p(console, Text("RULES", style="bold underline"))
    for r in ruleset.rules:
        effect = []
        if r.min_level:
            effect.append(f"min {r.min_level}")
        effect.extend(f"flag {f}" for f in r.flags)
        if r.levels:
            effect.append(f"note shown for {', '.join(r.levels)}")
        _p(console, Text(f"  {r.id}: {r.title} -> {', '.join(effect)}", style="bold"))
        _p(console, Text(f"    when: {r.when.text}"))
        _p(console, Text(f"    {r.reason}"))
        _p(console, Text("    source: " + "; ".join(ruleset.sources[s].cite for s in r.sources),
                           style="dim"))
    console.print()
    if ruleset.misconceptions:
        _p(console, Text("MISCONCEPTIONS", style="bold underline"))
        for m in ruleset.misconceptions:
            shown = f"; shown for: {', '.join(m.levels)}" if m.levels else ""
            _p(console, Text(f"  {m.id} (when {m.when.text}{shown})", style="bold"))
            _p(console, Text(f"    myth: {m.myth}"))
            _p(console, Text(f"    facts: {m.facts}"))
            _p(console, Text("    source: " + "; ".join(ruleset.sources[s].cite
                                                         for s in m.sources), style="dim"))
        console.print()
    _p(console, Text("DISCLAIMER", style="bold underline"))
    _p(console, Text(f"  {ruleset.disclaimer}"))


def render_answers_table(ruleset: Ruleset, answers: dict[str, Answer],
                         order: Iterable[str]) -> Table:
    table = Table(box=box.SIMPLE, show_edge=False, expand=False)
    table.add_column("#", justify="right")
    table.add_column("Question")
    table.add_column("Answer")
    for i, qid in enumerate(order, 1):
        q = ruleset.questions[qid]
        table.add_row(str(i), _short(q.text, 50), display_value(q, answers.get(qid)))
    return table


def interview_console() -> Console:
    """The console the interview talks on: stdout when it is a terminal, else stderr when that
    is one, else the controlling terminal itself (stdout may be a pipe: `screen | tee log`)."""
    if sys.stdout.isatty():
        return make_console()
    if sys.stderr.isatty():
        return make_console(stderr=True)
    try:
        tty = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 - lives for the process
    except OSError:
        return make_console(stderr=True)
    return Console(file=tty, no_color="NO_COLOR" in os.environ, highlight=False,
                   soft_wrap=False, emoji=False)


__all__ = ["Group", "crisis_banner", "make_console", "print_diagnostics", "render_ruleset",
           "render_screening"]


class ProgressBar:
    """A transient progress bar on stderr for long runs; create it only when stderr is a
    terminal. It never refreshes by itself (no thread), so worker processes can be forked
    while it shows."""

    def __init__(self, what: str, total: int | None):
        from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TaskProgressColumn(), TextColumn("{task.fields[rows]} rows"),
                                  TimeRemainingColumn(), console=make_console(stderr=True),
                                  transient=True, auto_refresh=False)
        self._task = self._progress.add_task(what, total=total, rows=0)

    def __enter__(self) -> "ProgressBar":
        self._progress.start()
        return self

    def update(self, rows: int, done: int) -> None:
        self._progress.update(self._task, completed=done, rows=f"{rows:,}")
        self._progress.refresh()

    def print(self, text: str, **options: Any) -> None:
        """Print above the bar (a print to another console would land on the bar's line)."""
        self._progress.console.print(text, **options)
        self._progress.refresh()

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
