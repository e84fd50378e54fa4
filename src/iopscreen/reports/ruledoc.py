"""The clinical reviewer's document of a rule set, generated so it cannot drift.

``render_markdown(ruleset)`` returns GitHub-flavoured Markdown that explains every level, flag,
instrument, derived value, criterion, misconception and question of a rule set, each with its
sources. The output depends only on the rule set (no clock, no file system, no terminal), so a
committed copy can be checked byte for byte with ``iopscreen rules doc PATH -o FILE --check``.

Cross-references use explicit ``<a id="...">`` anchors rather than GitHub's heading slugs: the
slugs depend on the heading text and on duplicates elsewhere in the page, the anchors do not.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Iterable

from ..engine import ATTENTION_SEVERITIES
from ..ruleset.model import SEVERITIES, Flag, Instrument, Question, Rule, Ruleset

# The shipped rule set and its document; stated once so the regenerate hint stays true.
SHIPPED_COMMAND = "iopscreen rules doc rules/default.yaml -o docs/default-rules.md"
POLICY_KIND = "policy"

_TYPE_WORDS = {
    "yesno": "yes / no",
    "choice": "one choice",
    "multi": "any number of choices",
    "integer": "whole number",
    "text": "free text",
}


def render_markdown(ruleset: Ruleset) -> str:
    """Return the Markdown document for ``ruleset``: deterministic, ending in one newline."""
    doc = _Doc(ruleset)
    return doc.render()


# ------------------------------------------------------------------------------- text helpers

_ENTITY_RE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_ALWAYS_ESCAPE = set("\\`*[]<$~")
# What would open a heading, quote, list or rule if it began a line (or a list item).
_BLOCK_START_RE = re.compile(r"^(?:[#>+=-]|\d{1,9}[.)])")


def text(value: Any, line_start: bool = False) -> str:
    """Plain text as inline Markdown: whitespace collapsed, formatting characters escaped.

    With ``line_start``, also escape what would start a block (``# ``, ``- ``, ``1. `` ...),
    for text that begins a paragraph or a list item.
    """
    s = " ".join(str(value).split())
    out: list[str] = []
    for i, ch in enumerate(s):
        if ch in _ALWAYS_ESCAPE:
            out.append("\\" + ch)
        elif ch == "_":
            # GitHub does not emphasise inside words, so 'phq9_total' stays readable as is.
            inner = 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum()
            out.append("_" if inner else "\\_")
        else:
            out.append(ch)
    result = _ENTITY_RE.sub("&amp;", "".join(out))
    if result.endswith("#"):  # a heading's closing '#'s would be dropped
        result = result[:-1] + "\\#"
    if line_start:
        result = _BLOCK_START_RE.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], result)
    return result


def code(value: Any) -> str:
    """A code span that survives backticks in the value (CommonMark's longer-fence rule)."""
    s = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def cell(markdown: str) -> str:
    """Make inline Markdown safe inside a table cell: a pipe ends a cell even in a code span."""
    return markdown.replace("|", "\\|")


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    """A GitHub table; cells must already be inline Markdown (they are pipe-escaped here)."""
    head = [cell(h) for h in header]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [cell(c) for c in row]
        if len(cells) != len(head):
            raise ValueError(f"table row has {len(cells)} cells, header has {len(head)}")
        lines.append("| " + " | ".join(c if c else " " for c in cells) + " |")
    return lines


def anchor(kind: str, ident: str) -> str:
    return f'<a id="{kind}-{ident}"></a>'


def link(label_md: str, kind: str, ident: str) -> str:
    return f"[{label_md}](#{kind}-{ident})"


def number(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def span(lo: int | float, hi: int | float) -> str:
    return number(lo) if lo == hi else f"{number(lo)}–{number(hi)}"


def _either(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def plural(n: int, word: str, many: str = "") -> str:
    """``1 item``, ``2 items``; ``many`` for irregular plurals (``criteria``)."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


# ---------------------------------------------------------------------------------- document


class _Doc:
    """Builds the document section by section; each method appends lines."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset
        self.lines: list[str] = []
        self.band_names = {f"{inst.id}_band": inst.id for inst in ruleset.instruments}
        self.order: dict[tuple[str, str], int] = {}
        self.users = self._index_users()

    # -------------------------------------------------------------------------- plumbing
    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def para(self, *lines: str) -> None:
        self.lines.extend(lines)
        self.lines.append("")

    def render(self) -> str:
        self.header()
        self.contents()
        self.deciding()
        self.levels()
        if self.rs.flags:
            self.flags()
        if self.rs.crisis.protocol or self.rs.crisis.resources:
            self.crisis()
        if self.rs.instruments:
            self.instruments()
        if self.rs.derived:
            self.derived()
        self.criteria()
        if self.rs.misconceptions:
            self.misconceptions()
        self.questions()
        self.sources()
        return "\n".join(self.lines).rstrip("\n") + "\n"

    def _index_users(self) -> dict[str, list[tuple[str, str]]]:
        """Map each name to the (kind, id) of everything whose condition reads it."""
        users: dict[str, list[tuple[str, str]]] = {}

        def note(names: Iterable[str], kind: str, ident: str) -> None:
            self.order.setdefault((kind, ident), len(self.order))
            for name in sorted(names):
                users.setdefault(name, []).append((kind, ident))

        for q in self.rs.questions.values():
            if q.ask_when is not None:
                note(q.ask_when.names, "q", q.id)
        for inst in self.rs.instruments:
            if inst.gate is not None:
                note(inst.gate.names, "instrument", inst.id)
        for d in self.rs.derived:
            note(d.expr.names, "derived", d.id)
        for r in self.rs.rules:
            note(r.when.names, "rule", r.id)
        for m in self.rs.misconceptions:
            note(m.when.names, "misconception", m.id)
        return users

    def is_policy(self, source_ids: Iterable[str]) -> bool:
        return any(self.rs.sources[s].kind == POLICY_KIND for s in source_ids)

    def name_link(self, name: str) -> str:
        """A link to whatever defines ``name`` (question, score, band or derived value)."""
        sym = self.rs.symbols.get(name)
        role = sym.role if sym else ""
        target = {"question": ("q", name), "score": ("instrument", name),
                  "derived": ("derived", name)}.get(role)
        if name in self.band_names:
            target = ("instrument", self.band_names[name])
        return link(code(name), *target) if target else code(name)

    def names_in(self, condition_text: str, names: Iterable[str]) -> list[str]:
        """``names`` in the order they first appear in the condition text."""
        def first(name: str) -> tuple[int, str]:
            m = re.search(rf"\b{re.escape(name)}\b", condition_text)
            return (m.start() if m else len(condition_text), name)
        return sorted(names, key=first)

    def used_by(self, *names: str) -> str:
        seen: list[tuple[str, str]] = []
        for name in names:
            for user in self.users.get(name, []):
                if user not in seen:
                    seen.append(user)
        seen.sort(key=self.order.__getitem__)
        groups = (("rule", "criteria"), ("derived", "derived values"),
                  ("misconception", "misconceptions"), ("q", "when to ask questions"),
                  ("instrument", "instrument gates"))
        parts = []
        for kind, title in groups:
            refs = [link(code(ident), kind, ident) for k, ident in seen if k == kind]
            if refs:
                parts.append(f"{title} " + ", ".join(refs))
        return "; ".join(parts)

    def source_items(self, source_ids: Iterable[str], indent: str = "  ") -> list[str]:
        """One bullet per source with its full citation."""
        items = []
        for sid in source_ids:
            src = self.rs.sources[sid]
            kind = "**policy choice**" if src.kind == POLICY_KIND else text(src.kind)
            ref = link(code(sid), "source", sid)
            items.append(f"{indent}- **{text(src.short)}:** {text(src.cite)} ({ref}, {kind})")
        return items

    def level_ref(self, level_id: str) -> str:
        return f"**{text(self.rs.level(level_id).label)}** ({code(level_id)})"

    def flag_ref(self, flag: Flag) -> str:
        return f"**{text(flag.label)}** ({code(flag.id)}, {flag.severity})"

    # -------------------------------------------------------------------------- sections
    def header(self) -> None:
        rs = self.rs
        name = PurePath(rs.path).name if rs.path else ""
        origin = f"the rule set {code(name)}" if name else "the rule set"
        self.para(f"# {text(rs.title)}")
        self.para(
            f"> **Generated file: do not edit by hand.** This document is generated from {origin} "
            "by `iopscreen rules doc`, so it always says what the rule set does. To change it, "
            "change the rule set and regenerate: "
            "`iopscreen rules doc <rule-set file> -o <this file>` (for the shipped rule set: "
            f"`{SHIPPED_COMMAND}`). The same command with `--check` fails when this file is "
            "out of date; the test suite runs it.",
        )
        facts = [("Rule set id", code(rs.id)), ("Version", text(rs.version)),
                 ("Effective from", text(rs.effective))]
        if rs.population:
            facts.append(("Population", text(rs.population)))
        if name:
            facts.append(("Rule-set file", code(name)))
        facts.append(("SHA-256 of the file", code(rs.content_hash)))
        facts.append(("Contents", ", ".join([
            plural(len(rs.levels), "level"), plural(len(rs.questions), "question"),
            plural(len(rs.instruments), "instrument"),
            plural(len(rs.rules), "criterion", "criteria"),
            plural(len(rs.misconceptions), "misconception"), plural(len(rs.sources), "source"),
        ])))
        self.para(*(f"- **{label}:** {value}" for label, value in facts))
        self.para(f"> **A screening aid, not a diagnosis.** {text(rs.disclaimer)}")

    def contents(self) -> None:
        entries = [("how", "How the level is decided"), ("levels", "Levels of care")]
        if self.rs.flags:
            entries.append(("flags", "Flags"))
        if self.rs.crisis.protocol or self.rs.crisis.resources:
            entries.append(("crisis", "Crisis protocol"))
        if self.rs.instruments:
            entries.append(("instruments", "Instruments"))
        if self.rs.derived:
            entries.append(("derived", "Derived values"))
        entries.append(("criteria", "Criteria"))
        if self.rs.misconceptions:
            entries.append(("misconceptions", "Misconceptions"))
        entries.extend([("questions", "Appendix: questions"), ("sources", "Sources")])
        self.para("## Contents")
        self.para(*(f"- {link(title, 'section', key)}" for key, title in entries))

    def section(self, key: str, title: str) -> None:
        self.para(f"## {anchor('section', key)}{title}")

    def deciding(self) -> None:
        rs = self.rs
        lowest = rs.levels[0]
        crisis_flags = [f for f in rs.flags.values() if f.severity == "crisis"]
        attention = _either([s for s in SEVERITIES if s in ATTENTION_SEVERITIES])
        self.section("how", "How the level is decided")
        steps = [
            "Each criterion below has a condition over the answers, the instrument scores and "
            "the derived values. When the condition is true, the criterion **fires**.",
            "The recommended level is the **highest minimum level among the criteria that "
            f"fired**. With none fired it is the lowest level, {self.level_ref(lowest.id)}. "
            "Levels and scores are **never averaged or added up** across criteria, and a "
            "criterion can only raise the level, never lower it.",
            "Every flag of every criterion that fired is shown, most severe first (crisis, "
            "urgent, review, note).",
        ]
        if crisis_flags:
            labels = ", ".join(f"**{text(f.label)}**" for f in crisis_flags)
            steps.append(f"A flag of severity crisis (here: {labels}) shows the "
                         f"{link('crisis protocol', 'section', 'crisis')} at once, in the middle "
                         "of the interview.")
        steps += [
            "**Unknown is not no.** A declined or unanswered question is *unknown*, never false. "
            "`and`, `or` and `not` follow three-valued logic: `False and unknown` is false, "
            "`True or unknown` is true, and anything else with an unknown is unknown.",
            "A criterion whose condition is unknown, and that could raise the level or add a "
            f"flag of severity {attention}, makes the result **provisional**: the result names "
            "the level it could reach and the unanswered questions that would decide it.",
            "A question whose *asked when* condition is false is not applicable and is not "
            "asked; when the condition is unknown, the question is asked.",
            "Criteria, instruments, derived values and misconceptions marked **policy "
            "choice** cite a source of kind *policy*: a threshold or a mapping that is the "
            "clinical team's own choice rather than a published standard. These need a "
            "clinical reviewer's judgement most.",
            "A clinician reviews the answers and confirms the level of care.",
        ]
        if rs.instruments:
            steps.insert(-2, "Each instrument's score follows its own missing-item policy (see "
                         f"{link('Instruments', 'section', 'instruments')}).")
        self.para(*(f"{i}. {s}" for i, s in enumerate(steps, 1)))

    def levels(self) -> None:
        self.section("levels", "Levels of care")
        self.para("From least to most intensive.")
        for lv in self.rs.levels:
            self.para(f"### {anchor('level', lv.id)}{lv.rank + 1}. {text(lv.label)} · "
                      f"{code(lv.id)}")
            if lv.description:
                self.para(text(lv.description, line_start=True))
            if lv.sources:
                self.para("Sources:", *self.source_items(lv.sources, indent=""))
            setters = [r for r in self.rs.rules if r.min_level == lv.id]
            if setters:
                refs = ", ".join(link(code(r.id), "rule", r.id) for r in setters)
                self.para(f"Set as the minimum by: {refs}.")
            if lv.rank == 0:
                self.para("The result when no criterion sets a higher minimum.")

    def flags(self) -> None:
        self.section("flags", "Flags")
        self.para("Listed most severe first, as in every result.")
        ordered = sorted(self.rs.flags.values(),
                         key=lambda f: (f.rank, list(self.rs.flags).index(f.id)))
        rows = []
        for f in ordered:
            raisers = ", ".join(link(code(r.id), "rule", r.id) for r in self.rs.rules
                                if f.id in r.flags)
            rows.append((f"{anchor('flag', f.id)}{code(f.id)}", f.severity, text(f.label),
                         raisers or "(no criterion raises it)"))
        self.add(*table(("Flag", "Severity", "Meaning", "Raised by"), rows))
        self.add("")

    def crisis(self) -> None:
        cr = self.rs.crisis
        self.section("crisis", "Crisis protocol")
        crisis_flags = [f for f in self.rs.flags.values() if f.severity == "crisis"]
        if crisis_flags:
            names = ", ".join(self.flag_ref(f) for f in crisis_flags)
            self.para(f"Shown at once, under the title **{text(cr.title)}**, when a criterion "
                      f"raises {names}.")
        else:
            self.para(f"Title: **{text(cr.title)}**. No flag of severity crisis is defined, so "
                      "the interview never shows it by itself.")
        if cr.protocol:
            self.para(*(f"{i}. {text(step, line_start=True)}"
                        for i, step in enumerate(cr.protocol, 1)))
        if cr.resources:
            self.add(*table(("Resource", "Contact"),
                            [(text(r.name), text(r.contact)) for r in cr.resources]))
            self.add("")

    def instruments(self) -> None:
        self.section("instruments", "Instruments")
        for inst in self.rs.instruments:
            self.instrument(inst)

    def instrument(self, inst: Instrument) -> None:
        marker = " · policy choice" if self.is_policy(inst.sources) else ""
        self.para(f"### {anchor('instrument', inst.id)}{text(inst.title)} · {code(inst.id)}"
                  f"{marker}")
        if inst.description:
            self.para(text(inst.description, line_start=True))
        rows = []
        for i, (qid, top) in enumerate(zip(inst.items, inst.item_max), 1):
            q = self.rs.questions[qid]
            if q.type == "yesno":
                scoring = "yes = 1, no = 0"
            else:
                scoring = f"answer code, {span(0, top)}"
            if qid in inst.reverse:
                scoring = f"**reverse-scored**: {top} minus the answer code, {span(0, top)}"
            rows.append((str(i), link(code(qid), "q", qid), text(q.text), scoring))
        self.add(*table(("#", "Item", "Question (our wording)", "Scores"), rows))
        self.add("")
        facts = [
            f"**Score:** the sum of the {plural(len(inst.items), 'item')}, "
            f"{span(0, inst.max_score)}. In conditions: {code(inst.id)} (the score) and "
            f"{code(inst.id + '_band')} (the band id).",
        ]
        reverse = [q for q in inst.items if q in inst.reverse]
        facts.append("**Reverse-scored items:** "
                     + (", ".join(link(code(q), "q", q) for q in reverse) if reverse else "none")
                     + ".")
        facts.append("**Missing items** (unanswered, declined or not applicable): "
                      + self.missing_policy(inst))
        if inst.gate is not None:
            facts.append(f"**Gate:** scored only when {code(inst.gate.text)}. When the gate is "
                         f"false the score is {number(inst.gate_score)} and the items are not "
                         "needed; when it is unknown the items are scored as usual.")
        if inst.minimal_change is not None:
            facts.append(f"**Minimal important change** (for progress reports): "
                         f"{number(inst.minimal_change)} points.")
        facts.append(f"**Licence:** {text(inst.license) if inst.license else 'not stated'}")
        self.para(*(f"- {f}" for f in facts))
        self.add(*table(("Band", "Score", "Label"),
                        [(code(b.id), span(b.min, b.max), text(b.label)) for b in inst.bands]))
        self.add("")
        self.sources_block(inst.sources)
        users = self.used_by(inst.id, inst.id + "_band")
        if users:
            self.para(f"Used by: {users}.")

    @staticmethod
    def missing_policy(inst: Instrument) -> str:
        if inst.missing == "prorate":
            return (f"up to {plural(inst.max_missing, 'missing item')} allowed: the sum of the "
                    f"answered items is scaled up to all {len(inst.items)} items and rounded "
                    "half up. With more missing, the score is unknown.")
        if inst.missing == "zero":
            return "count as 0, as the instrument's own scoring says."
        return "any missing item makes the score unknown (never counted as 0)."

    def sources_block(self, source_ids: tuple[str, ...]) -> None:
        self.add("**Sources:**", "")
        self.para(*self.source_items(source_ids, indent=""))

    def derived(self) -> None:
        self.section("derived", "Derived values")
        self.para("Named values computed from answers, scores and other derived values, "
                  "in the order they are evaluated.")
        for d in self.rs.derived:
            marker = " · policy choice" if self.is_policy(d.sources) else ""
            self.para(f"### {anchor('derived', d.id)}{code(d.id)}{marker}")
            items = [f"- **Value:** {code(d.expr.text)}"]
            if d.description:
                items.append(f"- **Meaning:** {text(d.description)}")
            uses = self.names_in(d.expr.text, d.expr.names)
            if uses:
                items.append("- **Reads:** " + ", ".join(self.name_link(n) for n in uses))
            if d.sources:
                items.append("- **Sources:**")
                items.extend(self.source_items(d.sources))
            users = self.used_by(d.id)
            if users:
                items.append(f"- **Used by:** {users}")
            self.para(*items)

    def categories(self) -> list[tuple[str, list[Rule]]]:
        groups: dict[str, list[Rule]] = {}
        for r in self.rs.rules:
            groups.setdefault(r.category, []).append(r)
        return list(groups.items())

    @staticmethod
    def category_title(category: str) -> str:
        return text(category.replace("_", " ").replace("-", " ").capitalize())

    def criteria(self) -> None:
        self.section("criteria", "Criteria")
        self.para(f"{plural(len(self.rs.rules), 'criterion', 'criteria')}"
                  ", grouped by category, in the order the rule set lists them. Every one that "
                  "fires is shown with its reason and sources in the result.")
        rows = []
        for category, rules in self.categories():
            for r in rules:
                level = text(self.rs.level(r.min_level).label) if r.min_level else "—"
                flags = ", ".join(code(f) for f in r.flags) or "—"
                rows.append((link(text(r.title), "rule", r.id), self.category_title(category),
                             level, flags, "policy choice" if self.is_policy(r.sources) else ""))
        self.add(*table(("Criterion", "Category", "Minimum level", "Flags", "Policy"), rows))
        self.add("")
        for category, rules in self.categories():
            self.para(f"### {anchor('category', category)}{self.category_title(category)}")
            for r in rules:
                self.rule(r)

    def rule(self, r: Rule) -> None:
        policy = [s for s in r.sources if self.rs.sources[s].kind == POLICY_KIND]
        marker = " · policy choice" if policy else ""
        self.para(f"#### {anchor('rule', r.id)}{text(r.title)}{marker}")
        items = [f"- **Id:** {code(r.id)}", f"- **Fires when:** {code(r.when.text)}"]
        uses = self.names_in(r.when.text, r.when.names)
        if uses:
            items.append("- **Reads:** " + ", ".join(self.name_link(n) for n in uses))
        if r.min_level:
            items.append(f"- **Minimum level:** {self.level_ref(r.min_level)}")
        else:
            items.append("- **Minimum level:** none (this criterion does not change the level)")
        if r.flags:
            items.append("- **Flags:** " + "; ".join(self.flag_ref(self.rs.flags[f])
                                                      for f in r.flags))
        if r.levels:
            items.append("- **Note shown for:** " + ", ".join(self.level_ref(lv)
                                                              for lv in r.levels))
        items.append(f"- **Why:** {text(r.reason)}")
        if r.note:
            items.append(f"- **Reviewer note** (never shown with a result): {text(r.note)}")
        if policy:
            items.append("- **Policy choice:** a threshold, time window or mapping to a level or "
                         "flag here is the clinical team's own choice ("
                         + ", ".join(link(code(s), "source", s) for s in policy)
                         + "), not a published standard.")
        items.append("- **Sources:**")
        items.extend(self.source_items(r.sources))
        self.para(*items)

    def misconceptions(self) -> None:
        self.section("misconceptions", "Misconceptions")
        self.para("Concerns the client may raise, each with a plain-words fact the counselor "
                  "can share and its sources.")
        for m in self.rs.misconceptions:
            marker = " · policy choice" if self.is_policy(m.sources) else ""
            self.para(f"### {anchor('misconception', m.id)}{text(m.myth)}{marker}")
            items = [
                f"- **Id:** {code(m.id)}",
                f"- **Myth:** {text(m.myth)}",
                f"- **Facts to share:** {text(m.facts)}",
                f"- **Shown when:** {code(m.when.text)}"
                + (" and the recommended level is " + " or ".join(self.level_ref(lv)
                                                                   for lv in m.levels)
                   if m.levels else ""),
            ]
            if m.note:
                items.append(f"- **Reviewer note** (never shown with a result): {text(m.note)}")
            items += ["- **Sources:**", *self.source_items(m.sources)]
            self.para(*items)

    def questions(self) -> None:
        self.section("questions", "Appendix: questions")
        self.para("In the order they are asked, by section. Every question can be declined; a "
                  "declined answer is unknown, never no. *Asked when* conditions that are "
                  "unknown still ask the question.")
        for sec in self.rs.sections:
            self.para(f"### {anchor('section', 'q-' + sec.id)}{text(sec.title)} · {code(sec.id)}")
            rows = [self.question_row(self.rs.questions[qid]) for qid in sec.questions]
            self.add(*table(("Id", "Question", "Answers", "Required", "Asked when", "Sources"),
                            rows))
            self.add("")

    def question_row(self, q: Question) -> tuple[str, ...]:
        wording = text(q.text)
        if q.help:
            wording += f"<br>*Counselor note:* {text(q.help)}"
        answers = _TYPE_WORDS[q.type]
        if q.min is not None and q.max is not None:
            answers += f", {span(q.min, q.max)}"
        elif q.min is not None:
            answers += f", at least {number(q.min)}"
        elif q.max is not None:
            answers += f", at most {number(q.max)}"
        if q.choices:
            answers += ":<br>" + "<br>".join(
                f"{code(c.code)} = {text(c.label)}" + (
                    " (also " + ", ".join(code(a) for a in c.aliases) + ")" if c.aliases else "")
                for c in q.choices)
        asked = code(q.ask_when.text) if q.ask_when is not None else "always"
        sources = ", ".join(link(code(s), "source", s) for s in q.sources) or "—"
        return (f"{anchor('q', q.id)}{code(q.id)}", wording, answers,
                "yes" if q.required else "optional", asked, sources)

    def sources(self) -> None:
        self.section("sources", "Sources")
        self.para("Every source the rule set cites. Sources of kind *policy* mark the clinical "
                  "team's own choices. Counselors see only the short title, beside the reasons "
                  "and talking points; the citation and the id are for reviewers (and the "
                  "result JSON).")
        rows = []
        for s in self.rs.sources.values():
            kind = "**policy**" if s.kind == POLICY_KIND else text(s.kind)
            rows.append((f"{anchor('source', s.id)}{code(s.id)}", text(s.short), kind,
                         text(s.cite)))
        self.add(*table(("Id", "Title shown to counselors", "Kind", "Citation"), rows))
        self.add("")
