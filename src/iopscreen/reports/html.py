"""The screening report as one standalone, printable HTML file.

One file with inline CSS and nothing else: no scripts, fonts, images or links to load (a Content
Security Policy in the page forbids them too), so it opens the same offline, from a chart system,
or as an e-mail attachment, and prints on A4 or Letter. Every value is escaped with
:func:`html.escape`. Meaning never rests on colour alone: severities are spelled out, so the
report reads the same printed in black and white.
"""

from __future__ import annotations

from html import escape
from typing import Iterable

from .content import Reason, Report

SEVERITY_WORD = {"crisis": "CRISIS", "urgent": "URGENT", "review": "REVIEW", "note": "NOTE"}

CSS = """
:root { --ink: #1a1a1a; --muted: #555; --line: #c8c8c8; --crisis: #b00020; --urgent: #c0392b;
  --review: #8a6d00; --note: #3d5a80; --ok: #1e7b34; --warn-bg: #fff4d6; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 "Liberation Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1.75rem 2.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .75rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; padding-bottom: .2rem;
  border-bottom: 2px solid var(--ink); }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
p { margin: .35rem 0; }
ul, ol { margin: .35rem 0; padding-left: 1.4rem; }
code { font: .9em "Liberation Mono", "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
.kicker { text-transform: uppercase; letter-spacing: .08em; font-size: .75rem; color: var(--muted);
  margin: 0; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
.meta dt { font-weight: bold; }
.meta dd { margin: 0; }
.crisis { margin: 1.25rem 0; padding: 1rem 1.25rem; background: var(--crisis); color: #fff;
  border: 6px double #fff; outline: 3px solid var(--crisis); }
.crisis h2 { border: 0; margin: 0 0 .5rem; font-size: 1.35rem; letter-spacing: .03em; }
.crisis li { font-weight: bold; }
.level { margin: 1.25rem 0; padding: 1rem 1.25rem; border: 4px solid var(--ink); }
.level-label { font-size: 1.6rem; font-weight: bold; margin: .2rem 0; }
.status { font-weight: bold; padding: .3rem .6rem; display: inline-block; margin-top: .5rem; }
.final .status { color: var(--ok); border: 2px solid var(--ok); }
.crisis-status .status { border: 2px solid var(--crisis); }
.provisional .status { background: var(--warn-bg); border: 2px solid var(--review); }
.flags { list-style: none; padding: 0; }
.flags li { margin: .35rem 0; display: grid; grid-template-columns: 6.5rem 1fr; gap: .6rem;
  align-items: baseline; }
.badge { display: block; text-align: center; font-weight: bold; font-size: .8rem;
  padding: .1rem .4rem; border: 2px solid currentColor; }
.sev-crisis .badge { background: var(--crisis); border-color: var(--crisis); color: #fff; }
.sev-urgent .badge { color: var(--urgent); }
.sev-review .badge { color: var(--review); }
.sev-note .badge { color: var(--note); }
.rule { border-left: 4px solid var(--line); padding: .1rem 0 .1rem .8rem; margin: .8rem 0; }
.effect { font-style: italic; color: var(--muted); }
.detail { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
.note { white-space: pre-wrap; border: 1px solid var(--line); padding: .5rem .75rem; }
footer { margin-top: 2rem; padding-top: .75rem; border-top: 2px solid var(--ink); }
.disclaimer { font-size: .95rem; }
@page { margin: 15mm; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; }
  .crisis, .level, .rule, tr, li { break-inside: avoid; }
}
""".strip()


def render_report(report: Report) -> str:
    """Return the HTML document: deterministic, ending in one newline."""
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{e(report.heading)}</title>",
        f"<style>\n{CSS}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        "<header>",
        '<p class="kicker">Level-of-care screening report</p>',
        f"<h1>{e(report.heading)}</h1>",
        "</header>",
    ]
    if report.crisis is not None:  # first, before anything else can be read
        c = report.crisis
        out += ['<section class="crisis" role="alert">',
                f"<h2>!!! CRISIS - ACT NOW: {e(c.title)} !!!</h2>"]
        if c.because:
            out.append(f"<p>Because: {e('; '.join(c.because))}.</p>")
        out += _list("ol", (e(step) for step in c.protocol))
        if c.resources:
            out += _list("ul", (f"<strong>{e(n)}:</strong> {e(v)}" for n, v in c.resources))
        out.append("</section>")
    out += ['<dl class="meta">', *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in report.meta),
            "</dl>"]

    kind = ("provisional" if report.provisional else "crisis-status" if report.crisis
            else "final")
    out += [f'<section class="level {kind}">',
            '<p class="kicker">Recommended level of care</p>',
            f'<p class="level-label">{e(report.level_label)} <code>{e(report.level_id)}</code></p>']
    if report.level_description:
        out.append(f"<p>{e(report.level_description)}</p>")
    if report.level_sources:
        out.append(f'<p class="detail">Sources: {e("; ".join(report.level_sources))}</p>')
    out.append(f'<p class="status">{e(report.status)}</p>')
    if report.deciding:
        out += ["<p>Questions that would decide it:</p>", *_questions(report.deciding)]
    out.append("</section>")

    out += ["<section>", "<h2>Flags (most severe first)</h2>"]
    if report.flags:
        out.append('<ul class="flags">')
        out += [f'<li class="sev-{e(f.severity)}"><span class="badge">'
                f"{e(SEVERITY_WORD.get(f.severity, f.severity.upper()))}</span>"
                f"<span><strong>{e(f.label)}</strong> "
                f'<span class="detail">raised by {_codes(f.rules)}</span></span></li>'
                for f in report.flags]
        out.append("</ul>")
    else:
        out.append("<p>None.</p>")
    out += ["</section>", "<section>", "<h2>Why</h2>"]
    if report.no_reason:
        out.append(f"<p>{e(report.no_reason)}</p>")
    for r in report.reasons:
        out += _reason(r)
    out.append("</section>")

    if report.pending:
        out += ["<section>", "<h2>Missing answers that could change this</h2>", "<ul>"]
        for p in report.pending:
            out.append(f"<li><strong>{e(p.title)}</strong> <code>{e(p.id)}</code>. {e(p.effect)}")
            if p.deciding:
                out += ["<br>Decided by:", *_questions(p.deciding)]
            out.append("</li>")
        out += ["</ul>", "</section>"]

    if report.scores:
        out += ["<section>", "<h2>Scores</h2>", "<table>",
                "<thead><tr><th>Instrument</th><th>Score</th><th>Band</th>"
                "<th>Missing items</th></tr></thead>", "<tbody>"]
        out += [f'<tr><td>{e(s.title)}</td><td class="num">{e(s.score)}</td>'
                f"<td>{e(s.band)}</td><td>{_codes(s.missing)}</td></tr>" for s in report.scores]
        out += ["</tbody>", "</table>", "</section>"]

    if report.talking_points:
        out += ["<section>", "<h2>Talking points (the client's concerns)</h2>"]
        for m in report.talking_points:
            out += ['<div class="rule">',
                    f"<h3>Concern: \u201c{e(m.myth)}\u201d</h3>",
                    f"<p><strong>Say:</strong> {e(m.facts)}</p>",
                    f'<p class="detail">Sources: {e("; ".join(m.sources))}</p>',
                    "</div>"]
        out.append("</section>")

    if report.engagement:
        out += ["<section>", "<h2>Engagement notes (never lower the level)</h2>"]
        for r in report.engagement:
            out += _reason(r)
        out.append("</section>")

    if report.note:
        out += ["<section>", "<h2>Counselor's note</h2>", f'<p class="note">{e(report.note)}</p>',
                "</section>"]
    if report.not_asked:
        out += ["<section>", "<h2>Not asked</h2>",
                f"<p>The interview was finished early; {len(report.not_asked)} question(s) were "
                "not asked:</p>", *_questions(report.not_asked), "</section>"]
    if report.ignored:
        out.append('<p class="detail">Answers ignored because skip logic made the questions '
                   f"not applicable: {_codes(report.ignored)}.</p>")

    out += ["<footer>",
            f'<p class="disclaimer"><strong>Screening aid.</strong> {e(report.disclaimer)}</p>',
            f'<p class="detail">Rule set {e(report.ruleset_line)}, sha256 '
            f"<code>{e(report.ruleset_sha256)}</code>.</p>",
            "</footer>", "</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def e(value: object) -> str:
    """Escape any value for HTML text and attribute values (quotes included)."""
    return escape(str(value), quote=True)


def _codes(ids: Iterable[str]) -> str:
    return ", ".join(f"<code>{e(i)}</code>" for i in ids)


def _list(tag: str, items_html: Iterable[str]) -> list[str]:
    return [f"<{tag}>", *(f"<li>{item}</li>" for item in items_html), f"</{tag}>"]


def _questions(questions: Iterable[tuple[str, str]]) -> list[str]:
    return _list("ul", (f"<code>{e(q)}</code>" + (f": {e(t)}" if t else "")
                        for q, t in questions))


def _reason(r: Reason) -> list[str]:
    out = ['<div class="rule">', f"<h3>{e(r.title)}</h3>"]
    if r.effect:
        out.append(f'<p class="effect">{e(r.effect)}</p>')
    out.append(f"<p>{e(r.reason)}</p>")
    if r.evidence:
        shown = "; ".join(f"<code>{e(x.name)}</code> = {e(x.value)} ({e(x.kind)})"
                          for x in r.evidence)
        out.append(f'<p class="detail">From: {shown}</p>')
    if r.sources:
        out.append(f'<p class="detail">Sources: {e("; ".join(r.sources))}</p>')
    return out + ["</div>"]
