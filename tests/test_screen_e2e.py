"""The installed `iopscreen screen` command end to end in a pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pexpect
import pytest

COMMAND = str(Path(sys.executable).parent / "iopscreen")

PROMPTS = [
    r"\(key or arrows, then Enter\)",  # 0 select: take the first choice
    r"\(a number",  # 1 integer
    r"\(text;",  # 2 free text
    r"Space to tick",  # 3 multiple choice
    r"safe to\? (\x1b\[[0-9;]*m)?\(Y/n\)",  # 4 crisis acknowledgement (before it is answered)
    r"Review the answers (\x1b\[[0-9;]*m)*\(arrows",  # 5 (not its echo once answered)
    r"Resume which draft\? (\x1b\[[0-9;]*m)*\(Use arrow keys",  # 6
    pexpect.EOF,  # 7
]
REPLIES = {0: "\r", 1: "34\r", 2: "ok\r", 3: "\r", 4: "\r", 5: "\r", 6: "\r"}


def spawn(home: Path, *args: str) -> pexpect.spawn:
    # A pty does not answer cursor-position requests; without this each prompt waits for one.
    env = {**os.environ, "IOPSCREEN_HOME": str(home), "NO_COLOR": "1", "TERM": "xterm",
           "PROMPT_TOOLKIT_NO_CPR": "1"}
    return pexpect.spawn(COMMAND, ["screen", *args], env=env, encoding="utf-8",
                         codec_errors="replace", dimensions=(40, 100), timeout=20)


def answer_until_done(child: pexpect.spawn, limit: int = 200) -> tuple[int, list[int]]:
    seen: list[int] = []
    for _ in range(limit):
        i = child.expect(PROMPTS)
        if i == 7:
            break
        seen.append(i)
        child.send(REPLIES[i])
    child.close()
    return child.exitstatus, seen


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_full_interview_to_a_result(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    child = spawn(home, "--client", "C-100", "--counselor", "jd", "-o", str(out))
    transcript: list[str] = []
    child.logfile_read = _Collector(transcript)
    status, seen = answer_until_done(child)
    text = "".join(transcript)
    assert status == 0, text[-2000:]
    assert seen.count(4) == 1  # crisis acknowledged once, then the interview went on
    assert seen[-1] == 5  # ended at the review screen
    assert "CRISIS - ACT NOW" in text and "988" in text
    assert "RECOMMENDED LEVEL OF CARE" in text
    assert "screening aid" in text.lower()
    data = json.loads(out.read_text())
    assert data["level"] == "inpatient"
    assert data["flags"][0]["id"] == "crisis"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list((home / "drafts").glob("*.json")) == []  # finished: no draft left
    assert "Saved as record 1" in text
    assert stat.S_IMODE((home / "records.db").stat().st_mode) == 0o600


def test_ctrl_c_keeps_a_draft_and_resume_finishes_it(home: Path, tmp_path: Path) -> None:
    child = spawn(home, "--client", "C-200")
    for _ in range(3):
        child.expect(PROMPTS[0])
        child.send("\r")
    child.expect(PROMPTS[0])
    child.sendintr()
    child.expect(r"Keep a draft to resume later\?")
    child.send("\r")
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
    status, seen = answer_until_done(child)
    assert status == 0
    assert seen[0] == 6  # picked the draft first
    data = json.loads(out.read_text())
    assert data["session"]["client"] == "C-200"
    assert data["answers"]["si_wish_dead"] is True
    assert list((home / "drafts").glob("*.json")) == []


def test_without_a_terminal_exits_2_pointing_to_evaluate() -> None:
    import subprocess

    proc = subprocess.run([COMMAND, "screen"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert "needs a terminal" in proc.stderr and "iopscreen evaluate" in proc.stderr


class _Collector:
    def __init__(self, sink: list[str]):
        self.sink = sink

    def write(self, data: str) -> None:
        self.sink.append(data)

    def flush(self) -> None:
        pass


def test_an_unwritable_output_is_refused_before_the_interview(home: Path) -> None:
    child = spawn(home, "-o", "/nonexistent-folder/result.json")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "cannot write the result" in (child.before or "")
