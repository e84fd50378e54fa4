"""The clinical reviewer's document: generated from the rule set, and a test fails when stale."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from iopscreen.cli import run
from iopscreen.reports.ruledoc import SHIPPED_COMMAND, code, render_markdown, text
from iopscreen.ruleset import load_ruleset

ROOT = Path(__file__).resolve().parents[1]
# The document is generated from the checkout's rule set (what SHIPPED_COMMAND reads), not from
# whatever copy an installed package might hold.
DEFAULT_RULES = ROOT / "rules" / "default.yaml"
DEFAULT_DOC = ROOT / "docs" / "default-rules.md"
MINIMAL = Path(__file__).parent / "data" / "minimal.yaml"

_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def unescape(markdown: str) -> str:
    """Undo backslash escapes, so plain text from the rule set can be searched for."""
    return _ESCAPED.sub(r"\1", markdown).replace("&amp;", "&")


def rule_block(doc: str, rule_id: str) -> str:
    """The part of the document about one criterion (up to the next heading)."""
    start = doc.index(f'<a id="rule-{rule_id}"></a>')
    end = doc.find("\n#", start)
    return doc[start:end if end != -1 else len(doc)]


@pytest.fixture(scope="module")
def default_doc() -> str:
    return DEFAULT_DOC.read_text(encoding="utf-8")


# ------------------------------------------------------------------------ (a) not stale


def test_committed_document_matches_the_rule_set(default_doc: str) -> None:
    expected = render_markdown(load_ruleset(DEFAULT_RULES))
    assert default_doc == expected, (
        f"{DEFAULT_DOC.relative_to(ROOT)} is stale (the rule set changed, or the renderer did): "
        f"regenerate it from the repository root with '{SHIPPED_COMMAND}' and commit the result"
    )


# ------------------------------------------------------------------ (b) the --check command


def test_check_fails_when_stale_and_passes_after_regenerating(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = tmp_path / "default.yaml"
    shutil.copyfile(DEFAULT_RULES, rules)
    out = tmp_path / "doc.md"

    assert run(["rules", "doc", str(rules), "-o", str(out), "--check"]) == 1  # missing
    assert "stale" in capsys.readouterr().err
    out.write_text("# An old version\n", encoding="utf-8")
    assert run(["rules", "doc", str(rules), "-o", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and "regenerate" in err
    assert out.read_text(encoding="utf-8") == "# An old version\n"  # --check never writes

    assert run(["rules", "doc", str(rules), "-o", str(out)]) == 0
    assert run(["rules", "doc", str(rules), "-o", str(out), "--check"]) == 0
    capsys.readouterr()
    # The copy's document is the committed one: the output depends on the rule set, not on
    # where the file lies.
    assert out.read_text(encoding="utf-8") == DEFAULT_DOC.read_text(encoding="utf-8")

    # Changing a criterion in the rule set makes the document stale again.
    source = rules.read_text(encoding="utf-8")
    assert "min_level: iop\n    flags: [urgent_review]" in source
    rules.write_text(source.replace("min_level: iop\n    flags: [urgent_review]",
                                    "min_level: inpatient\n    flags: [urgent_review]", 1),
                     encoding="utf-8")
    assert run(["rules", "doc", str(rules), "-o", str(out), "--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_doc_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["rules", "doc", str(MINIMAL)]) == 0
    out = capsys.readouterr().out
    assert out == render_markdown(load_ruleset(MINIMAL))


# ---------------------------------------------------------------------- (c) completeness


def test_every_rule_instrument_and_misconception_is_documented(default_doc: str) -> None:
    ruleset = load_ruleset(DEFAULT_RULES)
    plain = unescape(default_doc)
    for rule in ruleset.rules:
        block = unescape(rule_block(default_doc, rule.id))
        assert f"`{rule.id}`" in block
        assert " ".join(rule.when.text.split()) in block, rule.id
        assert " ".join(rule.reason.split()) in block, rule.id
        for sid in rule.sources:
            assert " ".join(ruleset.sources[sid].cite.split()) in block, (rule.id, sid)
        if rule.min_level:
            assert f"(`{rule.min_level}`)" in block, rule.id
        for flag in rule.flags:
            assert f"(`{flag}`, " in block, (rule.id, flag)
    for inst in ruleset.instruments:
        assert f'<a id="instrument-{inst.id}"></a>' in default_doc
        assert inst.title in plain
    for m in ruleset.misconceptions:
        assert f'<a id="misconception-{m.id}"></a>' in default_doc
        assert " ".join(m.facts.split()) in plain
    for qid, q in ruleset.questions.items():
        assert f'<a id="q-{qid}"></a>' in default_doc
        assert " ".join(q.text.split()) in plain
    for sid in ruleset.sources:
        assert f'<a id="source-{sid}"></a>' in default_doc


def test_document_states_identity_disclaimer_and_how_levels_are_decided(
        default_doc: str) -> None:
    ruleset = load_ruleset(DEFAULT_RULES)
    plain = unescape(default_doc)
    assert default_doc.startswith(f"# {ruleset.title}\n")
    for fact in (ruleset.id, ruleset.version, ruleset.effective, ruleset.population,
                 ruleset.content_hash, " ".join(ruleset.disclaimer.split()), SHIPPED_COMMAND):
        assert fact in plain
    assert "do not edit by hand" in plain
    assert "highest minimum level among the criteria that fired" in plain
    assert "never averaged" in plain and "provisional" in plain
    for step in ruleset.crisis.protocol:
        assert step in plain
    for level in ruleset.levels:
        assert " ".join(level.description.split()) in plain


# --------------------------------------------------------------- (d) another rule set


def test_minimal_ruleset_marks_policy_sourced_rules() -> None:
    ruleset = load_ruleset(MINIMAL)
    doc = render_markdown(ruleset)
    policy_rules = {r.id for r in ruleset.rules
                    if any(ruleset.sources[s].kind == "policy" for s in r.sources)}
    assert policy_rules == {"heavy", "cost_note"}
    for rule in ruleset.rules:
        block = rule_block(doc, rule.id)
        marked = "**Policy choice:**" in block and "policy choice" in block.splitlines()[0]
        assert marked == (rule.id in policy_rules), rule.id
    assert "**reverse-scored**" in doc  # mood_3
    assert "up to 1 missing item allowed" in doc  # prorate
    assert "**Gate:** scored only when `trauma`" in doc
    assert "**Minimal important change** (for progress reports): 2 points." in doc


def test_rendering_is_deterministic() -> None:
    ruleset = load_ruleset(MINIMAL)
    assert render_markdown(ruleset) == render_markdown(load_ruleset(MINIMAL))


# -------------------------------------------------------------------- valid Markdown


def _tables(doc: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in doc.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.mark.parametrize("path", [DEFAULT_RULES, MINIMAL], ids=["default", "minimal"])
def test_markdown_structure(path: Path) -> None:
    doc = render_markdown(load_ruleset(path))
    assert doc.endswith("\n") and not doc.endswith("\n\n")
    assert not any(line != line.rstrip() for line in doc.splitlines()), "trailing whitespace"
    # Every table row has as many cells as its header (an unescaped '|' would add one).
    for rows in _tables(doc):
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) == 1, rows[0]
    # Every internal link has its anchor, and no anchor is defined twice.
    anchors = re.findall(r'<a id="([^"]+)"></a>', doc)
    assert len(anchors) == len(set(anchors))
    assert set(re.findall(r"\]\(#([^)]+)\)", doc)) <= set(anchors)


def test_special_characters_are_escaped(tmp_path: Path) -> None:
    source = MINIMAL.read_text(encoding="utf-8")
    source = source.replace("myth: It costs too much.", 'myth: "Costs | too *much* <b>x</b>"')
    source = source.replace("text: Is there a plan?", 'text: "A plan | *now*?"')
    rules = tmp_path / "special.yaml"
    rules.write_text(source, encoding="utf-8")
    doc = render_markdown(load_ruleset(rules))
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(doc)
    assert "Costs | too *much* &lt;b&gt;x&lt;/b&gt;" in html
    assert "A plan | *now*?</td>" in html
    for rows in _tables(doc):
        assert len({len(re.split(r"(?<!\\)\|", row)) for row in rows}) == 1


def test_text_and_code_helpers() -> None:
    assert text("a *b* [c] <d> ~e~ $5") == r"a \*b\* \[c\] \<d> \~e\~ \$5"
    assert text("phq9_total and _x_") == r"phq9_total and \_x\_"
    assert text("1. first", line_start=True) == r"1\. first"
    assert text("- item", line_start=True) == r"\- item"
    assert text("version 1.0") == "version 1.0"
    assert text("two\n  lines") == "two lines"
    assert code("a == 'b'") == "`a == 'b'`"
    assert code("x `y` z") == "``x `y` z``"
    assert code("`y`") == "`` `y` ``"


def test_document_says_which_level_a_talking_point_or_note_is_shown_for(default_doc: str) -> None:
    cost = default_doc[default_doc.index("IOP is usually not covered by insurance"):]
    assert "and the recommended level is **Intensive outpatient program (IOP)**" in \
        cost[:cost.index("- **Sources:**")]
    assert default_doc.count("- **Note shown for:**") == 3  # the three engagement notes
