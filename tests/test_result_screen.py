"""The interview's result on screen: a compact summary first, then details (paged when long)."""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path

from rich.console import Console

from iopscreen.answers import coerce_answers
from iopscreen.console import render_result, render_screening, render_summary
from iopscreen.engine import screen
from iopscreen.ruleset import default_ruleset_path, load_ruleset

RS = load_ruleset(default_ruleset_path())
CRISIS = {"si_wish_dead": "yes", "si_active_thoughts": "yes", "si_method": "yes",
          "si_intent": "yes", "concerns": "cost", "ready_commit": "unsure"}


def console(width: int = 80, height: int = 24) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, height=height, no_color=True, highlight=False,
                   soft_wrap=False, emoji=False), out


def crisis_result():  # type: ignore[no-untyped-def]
    return screen(RS, coerce_answers(RS, CRISIS, source="test"))


def test_the_summary_fits_a_24_line_terminal_and_says_crisis_and_provisional() -> None:
    con, out = console()
    result = crisis_result()
    render_summary(con, result, RS)
    text = out.getvalue()
    assert len(text.splitlines()) <= 24
    assert "INPATIENT" in text.upper() and "!!! CRISIS" in text and "PROVISIONAL" in text
    assert "Suicidal intent or plan" in text  # the crisis reason comes first among the reasons
    assert "Final" not in text


def test_an_inpatient_result_shows_no_iop_only_talking_point_or_note() -> None:
    result = crisis_result()
    assert result.level == "inpatient" and [m.id for m in result.misconceptions] == ["cost"]
    con, out = console(width=100, height=1000)
    render_screening(con, result, RS)
    text = out.getvalue()
    assert "TALKING POINTS" not in text and "IOP also costs much less" not in text
    assert "Readiness to commit matters for IOP" not in text
    assert "You can continue the interview" not in text and "continue the interview" not in text


def test_an_iop_result_shows_its_talking_points() -> None:
    result = screen(RS, coerce_answers(RS, {"concerns": "cost", "op_tried": "yes",
                                            "op_not_enough": "yes"}, source="test"))
    assert result.level == "iop"
    con, out = console(width=100, height=1000)
    render_screening(con, result, RS)
    assert "IOP also costs much less" in out.getvalue()


def test_long_details_go_through_the_pager(tmp_path: Path) -> None:
    paged = tmp_path / "paged.txt"
    pager = f"{shlex.quote(sys.executable)} -c " + shlex.quote(
        f"import sys; open({str(paged)!r}, 'w').write(sys.stdin.read())")
    con, out = console()
    render_result(con, crisis_result(), RS, pager=pager)
    shown = out.getvalue()
    assert "RECOMMENDED LEVEL" in shown and "WHY" not in shown  # only the summary on screen
    assert "WHY" in paged.read_text() and "CRISIS - ACT NOW" in paged.read_text()


def test_details_print_straight_without_a_pager_or_when_short() -> None:
    con, out = console()
    render_result(con, crisis_result(), RS, pager=None)
    assert "WHY" in out.getvalue()
    con, out = console(height=1000)
    render_result(con, crisis_result(), RS, pager="no-such-pager-command")
    assert "WHY" in out.getvalue()  # fits the screen: no pager started
    con, out = console()
    render_result(con, crisis_result(), RS, pager="no-such-pager-command")
    assert "WHY" in out.getvalue()  # the pager is missing: printed instead
