"""Folders and files the program makes: owner-only whatever the umask, and existing folders
left exactly as they are; an exported report is never silently replaced."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Iterator

import pytest

from iopscreen.cli import run
from iopscreen.files import private_dir

DATA = Path(__file__).parent / "data"
MINIMAL = str(DATA / "minimal.yaml")
ANSWERS = {"danger": "no", "mood_1": 2, "mood_2": 2, "mood_3": 0, "trauma": "no", "drinks": 0}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def saved_record(capsys: pytest.CaptureFixture[str], tmp_path: Path, db: Path) -> str:
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps(ANSWERS))
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", str(answers), "--save",
                       "--client", "C-1", "--db", str(db))
    assert code == 0, err
    return err.split("record ")[1].split()[0]


def test_private_dir_makes_each_missing_folder_0700_and_leaves_existing_ones(
        tmp_path: Path, loose_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    made = private_dir(shared / "a" / "b")
    assert made == shared / "a" / "b"
    assert mode(shared) == 0o1777
    assert mode(shared / "a") == 0o700 and mode(shared / "a" / "b") == 0o700
    os.chmod(made, 0o755)
    private_dir(made)  # exists: not tightened behind its owner's back
    assert mode(made) == 0o755


def test_private_dir_under_a_strict_umask_is_still_usable(tmp_path: Path) -> None:
    old = os.umask(0o277)  # mkdir alone would give 0500: no way to write into it
    try:
        made = private_dir(tmp_path / "x" / "y")
    finally:
        os.umask(old)
    assert mode(tmp_path / "x") == 0o700 and mode(made) == 0o700


def test_an_existing_home_folder_is_never_chmodded(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "shared-home"
    home.mkdir()
    os.chmod(home, 0o1777)
    monkeypatch.setenv("IOPSCREEN_HOME", str(home))
    monkeypatch.delenv("IOPSCREEN_DB", raising=False)
    code, out, _ = cli(capsys, "records", "list")
    assert code == 0 and "No records yet" in out
    assert mode(home) == 0o1777
    assert list(home.iterdir()) == []  # a reading command creates nothing
    saved_record(capsys, tmp_path, home / "records.db")
    code, out, _ = cli(capsys, "records", "list")
    assert code == 0 and "1 record(s)" in out
    assert mode(home) == 0o1777
    assert mode(home / "records.db") == 0o600


def test_a_new_home_folder_is_0700_under_umask_000(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path, loose_umask: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "new" / "home"
    monkeypatch.setenv("IOPSCREEN_HOME", str(home))
    monkeypatch.delenv("IOPSCREEN_DB", raising=False)
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps(ANSWERS))
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", str(answers), "--save")
    assert code == 0, err
    assert mode(tmp_path / "new") == 0o700 and mode(home) == 0o700
    assert mode(home / "records.db") == 0o600


def test_folders_that_output_creates_are_0700_under_umask_000(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, loose_umask: None) -> None:
    db = tmp_path / "records.db"
    rid = saved_record(capsys, tmp_path, db)
    target = tmp_path / "reports" / "2026" / "c1.json"
    code, _, err = cli(capsys, "records", "export", rid, "-f", "json", "-o", str(target),
                       "--db", str(db))
    assert code == 0, err
    assert mode(tmp_path / "reports") == 0o700 and mode(target.parent) == 0o700
    assert mode(target) == 0o600
    doc = tmp_path / "docs" / "rules.md"
    code, _, err = cli(capsys, "rules", "doc", MINIMAL, "-o", str(doc))
    assert code == 0, err
    assert mode(doc.parent) == 0o700
    assert mode(doc) == 0o644  # a rule set's document holds no answers: readable by others


def test_records_export_does_not_replace_a_file_without_force(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "records.db"
    rid = saved_record(capsys, tmp_path, db)
    target = tmp_path / "c1.json"
    target.write_text("the chart's earlier report\n")
    code, out, err = cli(capsys, "records", "export", rid, "-f", "json", "-o", str(target),
                         "--db", str(db))
    assert code == 2
    assert err.splitlines() == [f"error: output '{target}' already exists",
                                "  hint: pass --force to replace it, or choose another name"]
    assert out == ""
    assert target.read_text() == "the chart's earlier report\n"
    code, out, _ = cli(capsys, "records", "audit", rid, "--db", str(db))
    assert "export" not in out  # nothing was exported, so nothing is logged
    code, _, err = cli(capsys, "records", "export", rid, "-f", "json", "-o", str(target),
                       "--force", "--db", str(db))
    assert code == 0, err
    assert json.loads(target.read_text())["id"] == int(rid)
    assert mode(target) == 0o600
