"""The screening report as Markdown (GitHub-flavoured; readable as plain text too).

Every value from a record or a rule set is escaped, so a client reference or a note can never turn
into a link, a heading or HTML.
"""

from __future__ import annotations

from .content import Reason, Report
from .ruledoc import code, table, text

SEVERITY_MARK = {"crisis": "!!! CRISIS", "urgent": "!! URGENT", "review": "! REVIEW",
                 "note": "NOTE"}


def render_report(report: Report) -> str:
    """Return the Markdown report: deterministic, ending in one newline."""
    out: list[str] = [f"# {text(report.heading)}", ""]
    if report.crisis is not None:
        c = report.crisis
        box = [f"**!!! CRISIS - ACT NOW: {text(c.title)} !!!**", ""]
        if c.because:
            box += ["Because: " + "; ".join(text(b) for b in c.because) + ".", ""]
        box += [f"{i}. {text(step)}" for i, step in enumerate(c.protocol, 1)]
        if c.resources:
            box += [""] + [f"- **{text(name)}:** {text(contact)}" for name, contact in c.resources]
        out += [("> " + line).rstrip() for line in box] + [""]
    out += [f"- **{text(k)}:** {text(v)}" for k, v in report.meta] + [""]

    out += ["## Recommendation", "", f"**{text(report.level_label)}** ({code(report.level_id)})",
            ""]
    if report.level_description:
        out += [text(report.level_description, line_start=True), ""]
    if report.level_sources:
        out += ["*Sources:* " + "; ".join(text(s) for s in report.level_sources), ""]
    out += [f"**{text(report.status)}**", ""]
    if report.deciding:
        out += ["Questions that would decide it:", ""]
        out += [_question(q, t) for q, t in report.deciding] + [""]

    out += ["## Flags (most severe first)", ""]
    if report.flags:
        out += [f"- **{SEVERITY_MARK.get(f.severity, f.severity.upper())}: {text(f.label)}**"
                f" (raised by {', '.join(code(r) for r in f.rules)})" for f in report.flags]
    else:
        out.append("None.")
    out.append("")

    out += ["## Why", ""]
    if report.no_reason:
        out += [text(report.no_reason, line_start=True), ""]
    for r in report.reasons:
        out += _reason(r)

    if report.pending:
        out += ["## Missing answers that could change this", ""]
        for p in report.pending:
            out.append(f"- **{text(p.title)}** ({code(p.id)}). {text(p.effect)}")
            if p.deciding:
                out += ["  Decided by:"] + ["  " + _question(q, t) for q, t in p.deciding]
        out.append("")

    if report.scores:
        out += ["## Scores", ""]
        out += table(["Instrument", "Score", "Band", "Missing items"],
                     [[text(s.title), text(s.score), text(s.band),
                       ", ".join(code(m) for m in s.missing)] for s in report.scores])
        out.append("")

    if report.talking_points:
        out += ["## Talking points (the client's concerns)", ""]
        for m in report.talking_points:
            out += [f"- **Concern:** \u201c{text(m.myth)}\u201d\\", f"  **Say:** {text(m.facts)}\\",
                    f"  *Sources:* {'; '.join(text(s) for s in m.sources)}"]
        out.append("")

    if report.engagement:
        out += ["## Engagement notes (never lower the level)", ""]
        for r in report.engagement:
            out += _reason(r)

    if report.note:
        out += ["## Counselor's note", "", *_note(report.note), ""]

    if report.not_asked:
        out += ["## Not asked", "", f"The interview was finished early; "
                f"{len(report.not_asked)} question(s) were not asked:", ""]
        out += [f"- {code(q)}" + (f": {text(t)}" if t else "") for q, t in report.not_asked]
        out.append("")

    if report.ignored:
        out += ["Answers ignored because skip logic made the questions not applicable: "
                + ", ".join(code(q) for q in report.ignored) + ".", ""]

    out += ["---", "", f"**Screening aid.** {text(report.disclaimer)}", "",
            f"Rule set {text(report.ruleset_line)}, sha256 {code(report.ruleset_sha256)}."]
    return "\n".join(_squeeze(out)) + "\n"


def _question(qid: str, question_text: str) -> str:
    return f"- {code(qid)}" + (f": {text(question_text)}" if question_text else "")


def _reason(r: Reason) -> list[str]:
    lines = [f"### {text(r.title)}", ""]
    if r.effect:
        lines += [f"*{text(r.effect)}*", ""]
    lines += [text(r.reason, line_start=True), ""]
    if r.evidence:
        lines.append("- From: " + "; ".join(f"{code(e.name)} = {text(e.value)} ({e.kind})"
                                            for e in r.evidence))
    if r.sources:
        lines.append("- Sources: " + "; ".join(text(s) for s in r.sources))
    return lines + [""]


def _note(note: str) -> list[str]:
    """The note's lines as they were typed: a backslash keeps each line break (CommonMark)."""
    lines = note.splitlines()
    out = []
    for line, following in zip(lines, lines[1:] + [""]):
        if not line.strip():
            out.append("")
        else:
            out.append(text(line, line_start=True) + ("\\" if following.strip() else ""))
    return out


def _squeeze(lines: list[str]) -> list[str]:
    """Drop repeated blank lines and trailing blanks (the layout code adds them freely)."""
    out: list[str] = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return out
