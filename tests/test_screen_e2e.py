"""The installed `iopscreen screen` command end to end in a pseudo-terminal (pexpect).

Each test plays a counselor at the keyboard: keys are sent only once the prompt they are meant
for is drawn (type-ahead before a prompt is thrown away), and what was recorded is read back from
the draft file, the result file or the record store.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import pexpect
import pytest

COMMAND = str(Path(sys.executable).parent / "iopscreen")
DOWN = "\x1b[B"

HEADER = r"\(question \d+ of about \d+\)"
# A menu's title, drawn fresh (its echo once answered reads "title: choice")
END = r"(\x1b\[[0-9;]*m)*\r"
CRISIS = r"Crisis protocol started\. What next\?" + END
REVIEW = r"Review the answers" + END
RESUME = r"Resume which draft\?" + END
MENU = r"Key shown or arrow, then Enter\."
TICKS = r"Tick: key shown \(or Space\), then Enter\."
TYPED = r"Type (a number|text)"
LEGEND = r"then Enter"

# What the counselor types when a test does not say otherwise: an arrow onto the first answer
# (an explicit choice) and Enter; a number or text; continue after a crisis; finish at review.
DEFAULTS = {MENU: DOWN + "\r", TICKS: DOWN + " \r", TYPED: "34\r"}

Reply = Callable[[str, str], Optional[str]]  # (question text, prompt kind) -> keys, or None


def spawn(home: Path, *args: str, pipe: bool = False) -> pexpect.spawn:
    # A pty does not answer cursor-position requests; without this each prompt waits for one.
    env = {**os.environ, "IOPSCREEN_HOME": str(home), "NO_COLOR": "1", "TERM": "xterm",
           "PROMPT_TOOLKIT_NO_CPR": "1", "PAGER": "cat"}
    if pipe:
        line = " ".join([COMMAND, "screen", *args]) + " | cat; exit ${PIPESTATUS[0]}"
        return pexpect.spawn("/bin/bash", ["-c", line], env=env, encoding="utf-8",
                             codec_errors="replace", dimensions=(40, 100), timeout=20)
    return pexpect.spawn(COMMAND, ["screen", *args], env=env, encoding="utf-8",
                         codec_errors="replace", dimensions=(40, 100), timeout=20)


def next_question(child: pexpect.spawn) -> tuple[str, str]:
    """Wait for the next prompt; returns (kind, text shown before it). Kind is MENU, TICKS,
    TYPED, CRISIS, REVIEW, RESUME or 'EOF'."""
    i = child.expect([HEADER, CRISIS, REVIEW, RESUME, pexpect.EOF])
    if i == 4:
        return "EOF", ""
    if i > 0:
        child.expect(LEGEND)
        return [CRISIS, REVIEW, RESUME][i - 1], ""
    kind = [MENU, TICKS, TYPED][child.expect([MENU, TICKS, TYPED])]
    return kind, " ".join((child.before or "").split())


def play(child: pexpect.spawn, reply: Reply | None = None, limit: int = 200) -> list[str]:
    """Answer every prompt until the command ends; returns the kinds of prompt seen."""
    seen: list[str] = []
    for _ in range(limit):
        kind, text = next_question(child)
        if kind == "EOF":
            break
        seen.append(kind)
        keys = reply(text, kind) if reply else None
        if keys is None:
            keys = {CRISIS: "c\r", REVIEW: "f\r", RESUME: "1\r"}.get(kind) or DEFAULTS[kind]
        child.send(keys)
    child.close()
    return seen


def draft_answers(home: Path) -> dict[str, object]:
    [draft] = list((home / "drafts").glob("*.json"))
    return dict(json.loads(draft.read_text())["state"]["answers"])


def interrupt(child: pexpect.spawn, keep: bool) -> int:
    """Ctrl-C, then answer "Keep a draft?"; returns the exit status."""
    child.sendintr()
    child.expect(r"Keep a draft to resume later\?")
    child.send("y\r" if keep else "n\r")
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


class _Collector:
    def __init__(self, sink: list[str]):
        self.sink = sink

    def write(self, data: str) -> None:
        self.sink.append(data)

    def flush(self) -> None:
        pass


def test_full_interview_to_a_result(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    child = spawn(home, "--client", "C-100", "--counselor", "jd", "-o", str(out))
    transcript: list[str] = []
    child.logfile_read = _Collector(transcript)
    seen = play(child)
    text = "".join(transcript)
    assert child.exitstatus == 0, text[-2000:]
    assert seen.count(CRISIS) == 1  # crisis chosen "continue" once, then the interview went on
    assert seen[-1] == REVIEW  # ended at the review screen
    assert "CRISIS - ACT NOW" in text and "988" in text
    assert "RECOMMENDED LEVEL OF CARE" in text
    assert "screening aid" in text.lower()
    data = json.loads(out.read_text())
    assert data["level"] == "inpatient"
    assert data["flags"][0]["id"] == "crisis"
    assert "not_asked" not in data  # finished at the review: everything was asked
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list((home / "drafts").glob("*.json")) == []  # finished: no draft left
    assert "Saved as record 1" in text
    assert stat.S_IMODE((home / "records.db").stat().st_mode) == 0o600


def test_bare_enter_and_unknown_keys_record_nothing(home: Path) -> None:
    child = spawn(home, "--client", "C-300")
    assert next_question(child)[0] == MENU
    child.send("n\r")
    kind, text = next_question(child)
    assert kind == MENU and "thoughts about ending your own life" in text
    child.send("\r")  # a stray Enter on a fresh question
    child.send("7\r")  # not a key of this question
    child.send("n\r")  # the answer actually chosen
    kind, text = next_question(child)
    # Had a stray key recorded an answer, the "n" would have answered this next question.
    assert draft_answers(home) == {"si_wish_dead": False, "si_active_thoughts": False}
    assert "At any time in your life" in text
    assert interrupt(child, keep=True) == 130
    assert draft_answers(home) == {"si_wish_dead": False, "si_active_thoughts": False}


def _to_crisis(child: pexpect.spawn) -> None:
    """si_wish_dead, si_active_thoughts, si_method and si_intent answered yes: a crisis."""
    for _ in range(4):
        assert next_question(child)[0] == MENU
        child.send("y\r")
    assert next_question(child)[0] == CRISIS


def test_keys_at_the_crisis_choice_never_answer_the_next_question(home: Path) -> None:
    child = spawn(home, "--client", "C-400")
    transcript: list[str] = []
    child.logfile_read = _Collector(transcript)
    _to_crisis(child)
    assert "CRISIS - ACT NOW" in "".join(transcript)  # the banner came before the choice
    child.send("y\r")
    child.send("n\r")
    child.send("c\r")
    kind, text = next_question(child)
    assert kind == MENU and "details" in text  # si_plan, on screen and unanswered
    answers = draft_answers(home)
    assert "si_plan" not in answers and answers["si_intent"] is True
    child.send("d\r")
    next_question(child)
    assert draft_answers(home)["si_plan"] == "declined"  # the key chosen there, no other
    assert interrupt(child, keep=False) == 130
    assert list((home / "drafts").glob("*.json")) == []  # "n": nothing kept


def test_finish_now_after_a_crisis_saves_a_provisional_crisis_record(home: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "crisis.json"
    child = spawn(home, "--client", "C-500", "-o", str(out))
    transcript: list[str] = []
    child.logfile_read = _Collector(transcript)
    _to_crisis(child)
    child.send("y\r")  # y/n Enter are no choice here: had one been taken as "continue",
    child.send("n\r")  # the "f" below would reach the next question and nothing would end
    child.send("f\r")
    child.expect(pexpect.EOF)
    child.close()
    text = "".join(transcript)
    assert child.exitstatus == 0, text[-2000:]
    data = json.loads(out.read_text())
    assert data["flags"][0]["id"] == "crisis" and data["level"] == "inpatient"
    assert data["provisional"] is True  # unasked answers could still add flags
    assert data["not_asked"][:2] == ["si_plan", "si_behaviour_ever"]
    assert "phq9_9" in data["not_asked"] and "si_intent" not in data["not_asked"]
    assert "NOT ASKED" in text and "Saved as record 1" in text
    assert "continue the interview" not in text.split("What next?")[-1].lower()
    assert list((home / "drafts").glob("*.json")) == []
    env = {**os.environ, "IOPSCREEN_HOME": str(home), "NO_COLOR": "1", "PAGER": "cat"}
    shown = subprocess.run([COMMAND, "records", "show", "1", "--format", "json"], env=env,
                           capture_output=True, text=True, timeout=30)
    record = json.loads(shown.stdout)
    assert record["result"]["not_asked"] == data["not_asked"]


def test_finish_now_from_any_question_asks_to_confirm(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "early.json"
    child = spawn(home, "-o", str(out))
    assert next_question(child)[0] == MENU
    child.send("n\r")
    next_question(child)
    child.send("f\r")
    child.expect(r"Finish now and save a record")
    child.expect(r"Choose: y or n")
    child.send("n\r")  # changed their mind: the question is asked again
    child.expect(MENU)
    child.send("f\r")
    child.expect(r"Choose: y or n")
    child.send("y\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    data = json.loads(out.read_text())
    assert data["answers"] == {"si_wish_dead": False}
    assert data["provisional"] is True and data["not_asked"][0] == "si_active_thoughts"


def test_declining_phq9_item_9_is_not_followed_by_you_mentioned(home: Path) -> None:
    child = spawn(home)
    item9 = "better off dead, or thought about harming yourself"
    for _ in range(80):
        kind, text = next_question(child)
        if item9 in text:
            break
        child.send({CRISIS: "c\r"}.get(kind) or ("n\r" if text.endswith("n No") else
                                                 DEFAULTS[kind]))
    else:
        pytest.fail("PHQ-9 item 9 was never asked")
    child.send("d\r")
    kind, follow_up = next_question(child)
    assert "harming yourself" in follow_up  # the follow-up is still asked (declined = unknown)
    assert "mentioned" not in follow_up.lower()
    assert draft_answers(home)["phq9_9"] == "declined"
    interrupt(child, keep=False)


def test_ctrl_c_keeps_a_draft_and_resume_finishes_it(home: Path, tmp_path: Path) -> None:
    child = spawn(home, "--client", "C-200")
    for _ in range(3):
        assert next_question(child)[0] == MENU
        child.send(DOWN + "\r")
    next_question(child)
    child.sendintr()
    child.expect(r"Keep a draft to resume later\?")
    child.send("\r")  # keeping the draft is pre-selected
    child.expect(r"iopscreen screen --resume")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    drafts = list((home / "drafts").glob("*.json"))
    assert len(drafts) == 1
    assert stat.S_IMODE(drafts[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "drafts").stat().st_mode) == 0o700
    saved = json.loads(drafts[0].read_text())
    assert len(saved["state"]["answers"]) == 3 and saved["client"] == "C-200"

    out = tmp_path / "resumed.json"
    child = spawn(home, "--resume", "-o", str(out))
    seen = play(child)
    assert child.exitstatus == 0
    assert seen[0] == RESUME  # picked the draft first
    data = json.loads(out.read_text())
    assert data["session"]["client"] == "C-200"
    assert data["answers"]["si_wish_dead"] is True
    assert list((home / "drafts").glob("*.json")) == []


def test_stdout_may_be_a_pipe(home: Path) -> None:
    child = spawn(home, "--no-save", pipe=True)
    transcript: list[str] = []
    child.logfile_read = _Collector(transcript)
    seen = play(child)
    text = "".join(transcript)
    assert child.exitstatus == 0, text[-2000:]
    assert seen[-1] == REVIEW and "RECOMMENDED LEVEL OF CARE" in text


def test_without_a_terminal_exits_2_pointing_to_evaluate() -> None:
    proc = subprocess.run([COMMAND, "screen"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert "needs a terminal" in proc.stderr and "iopscreen evaluate" in proc.stderr


def test_an_unwritable_output_is_refused_before_the_interview(home: Path) -> None:
    child = spawn(home, "-o", "/nonexistent-folder/result.json")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "cannot write the result" in (child.before or "")


def test_the_talking_points_fit_the_level(home: Path, tmp_path: Path) -> None:
    """An inpatient (crisis) result shows no IOP-only talking point, though cost was a concern."""
    out = tmp_path / "inpatient.json"
    transcript: list[str] = []

    def reply(text: str, kind: str) -> str | None:
        if "hesitant about a more intensive program" in text:
            key = re.search(r"(\w) \[ \] (\x1b\[[0-9;]*m)*Cost or insurance", text)
            assert key, text
            return key.group(1) + "\r"
        return None

    child = spawn(home, "-o", str(out))
    child.logfile_read = _Collector(transcript)
    play(child, reply)
    assert child.exitstatus == 0
    data = json.loads(out.read_text())
    assert data["level"] == "inpatient" and "cost" in data["answers"]["concerns"]
    assert [m["id"] for m in data["misconceptions"]] == ["cost"]  # the result JSON keeps it
    text = "".join(transcript)
    assert "IOP also costs much less" not in text
