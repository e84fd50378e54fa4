"""Writers take turns in the record store, wait visibly instead of failing, keep their data, and
never save the same screening twice (--save is idempotent)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from iopscreen import drafts
from iopscreen.answers import coerce_answers
from iopscreen.batch_save import CHUNK_ROWS, SaveCount, save_rows
from iopscreen.cli import run
from iopscreen.engine import screen
from iopscreen.interview import FINISH
from iopscreen.ruleset import load_ruleset
from iopscreen.ruleset.model import Ruleset
from iopscreen.session import SessionOptions, run_session
from iopscreen.store import (
    MIGRATIONS,
    StoreError,
    answers_digest,
    open_store,
    plain_answers,
    save_screening_once,
)
from test_interview import CALM, ScriptedPrompter
from test_store import BASE, DATA, MINIMAL, cli

HEADER = "id,danger,mood_1,mood_2,mood_3,trauma,drinks\n"


def clock() -> datetime:
    return datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def rs() -> Ruleset:
    return load_ruleset(MINIMAL)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IOPSCREEN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IOPSCREEN_DB", raising=False)
    return tmp_path / "home"


def once(store: Any, rs: Ruleset, client: str, raw: dict[str, Any]) -> tuple[Any, bool]:
    typed = coerce_answers(rs, raw)
    return save_screening_once(store, rs, screen(rs, typed), typed, client=client,
                               counselor="jd", source="evaluate")


def csv_rows(count: int, start: int = 0) -> str:
    return HEADER + "".join(f"C-{i},no,{i % 3},2,0,no,{i % 50}\n"
                            for i in range(start, start + count))


def iopscreen(*args: str) -> list[str]:
    return [sys.executable, "-c", "from iopscreen.cli import main; main()", *args]


# --------------------------------------------------------------------------- idempotent saves
def test_the_same_screening_is_saved_once(tmp_path: Path, rs: Ruleset) -> None:
    with open_store(tmp_path / "r.db", now=clock) as store:
        first, new = once(store, rs, "C-1", BASE)
        assert new
        reordered = dict(reversed(list(BASE.items())))
        assert once(store, rs, "C-1", reordered) == (first, False)  # key order does not matter
        assert once(store, rs, "C-1", {**BASE, "mood_1": "most days"}) == (first, False)
        assert once(store, rs, "C-2", BASE)[1]  # another client
        assert once(store, rs, "C-1", {**BASE, "drinks": 1})[1]  # other answers
        other = load_ruleset(DATA / "lanes.yaml")
        typed = coerce_answers(other, BASE)
        assert save_screening_once(store, other, screen(other, typed), typed, client="C-1",
                                   counselor="jd", source="evaluate")[1]  # another rule set
        assert len(store.find()) == 4
        store.delete(first.id, reason="wrong client", actor="jd")
        again, new = once(store, rs, "C-1", BASE)  # a deleted record is not "already saved"
        assert new and again.id != first.id


def test_an_amended_version_counts_as_saved(tmp_path: Path, rs: Ruleset) -> None:
    with open_store(tmp_path / "r.db", now=clock) as store:
        first, _ = once(store, rs, "C-1", BASE)
        amended = store.amend(first.id, answers={**first.answers, "drinks": 9},
                              result=first.result, note="fix")
        assert once(store, rs, "C-1", {**BASE, "drinks": 9}) == (amended, False)
        assert once(store, rs, "C-1", BASE) == (first, False)


def test_records_saved_before_the_digest_are_matched_by_their_answers(tmp_path: Path,
                                                                      rs: Ruleset) -> None:
    path = tmp_path / "old.db"
    typed = coerce_answers(rs, BASE)
    open_store(path, now=clock, migrations=MIGRATIONS[:1]).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:  # a row as the first schema's iopscreen wrote it (answers in the file's order)
        conn.execute(
            "INSERT INTO records (version, client, counselor, created_utc, source, ruleset_id, "
            "ruleset_version, ruleset_sha256, answers, result) VALUES (1, 'C-1', 'jd', "
            "'2026-01-01T00:00:00Z', 'evaluate', ?, ?, ?, ?, ?)",
            (rs.id, rs.version, rs.content_hash,
             json.dumps(dict(reversed(list(plain_answers(rs, typed).items())))),
             json.dumps(screen(rs, typed).to_json())))
    finally:
        conn.close()
    with open_store(path, now=clock) as store:  # migrated: the old row has no digest
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT answers_sha256 FROM records").fetchall() == [(None,)]
        conn.close()
        assert once(store, rs, "C-1", BASE) == (store.get(1), False)


def test_delete_erases_the_digest_and_nothing_else_may_change_it(tmp_path: Path,
                                                                 rs: Ruleset) -> None:
    path = tmp_path / "r.db"
    with open_store(path, now=clock) as store:
        record, _ = once(store, rs, "C-1", BASE)
        other, _ = once(store, rs, "C-2", BASE)
        store.delete(record.id, reason="test", actor="jd")
    conn = sqlite3.connect(path)
    try:
        rows = dict(conn.execute("SELECT id, answers_sha256 FROM records").fetchall())
        assert rows[record.id] is None
        assert rows[other.id] == answers_digest(other.answers)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE records SET answers_sha256 = 'x' WHERE id = ?", (other.id,))
    finally:
        conn.close()


def test_evaluate_save_twice_saves_once(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps(BASE))
    db = str(tmp_path / "r.db")
    args = ("evaluate", "-r", MINIMAL, "-a", str(answers), "--save", "-c", "C-1", "--db", db)
    code, _, err = cli(capsys, *args)
    assert code == 0 and f"Saved as record 1 in {db}." in err
    code, _, err = cli(capsys, *args)
    assert code == 0
    assert err.strip() == (f"Already saved as record 1 in {db} (same client, rule set and "
                           "answers): nothing new saved.")
    code, out, _ = cli(capsys, "records", "list", "--db", db)
    assert "1 record(s)" in out


def test_batch_save_rerun_saves_only_what_is_new(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(HEADER + "A,no,2,2,0,no,0\nB,no,1,1,1,no,3\nC,no,9,1,1,no,3\n")
    db = str(tmp_path / "r.db")
    args = ["batch", str(source), "-r", MINIMAL, "--save", "--db", db, "--force", "-j", "1"]
    code, _, err = cli(capsys, *args, "-o", str(tmp_path / "o.csv"))
    assert code == 1  # row C has an invalid cell
    assert f"saved 2 new record(s) in {db}; not saved: 1 row(s) with errors" in err
    code, _, err = cli(capsys, *args, "-o", str(tmp_path / "o.csv"))
    assert (f"saved 0 new record(s) in {db}; not saved: 2 row(s) already saved (same client, "
            "rule set and answers); not saved: 1 row(s) with errors") in err
    source.write_text(HEADER + "A,no,2,2,0,no,0\nB,no,1,1,1,no,3\nC,no,2,1,1,no,3\n")  # fixed
    code, _, err = cli(capsys, *args, "-o", str(tmp_path / "o.csv"))
    assert code == 0
    assert f"saved 1 new record(s) in {db}; not saved: 2 row(s) already saved" in err
    code, out, _ = cli(capsys, "progress", "A", "-r", MINIMAL, "--db", db)
    assert code == 0
    assert "Progress of client A: 1 screening(s)" in out
    assert "Only one screening so far" in out


# --------------------------------------------------------------------------- taking turns
def test_batch_save_lets_other_writers_in_between_chunks(tmp_path: Path, rs: Ruleset) -> None:
    source = tmp_path / "in.csv"
    rows = 2 * CHUNK_ROWS + 500
    source.write_text(csv_rows(rows))
    db = tmp_path / "r.db"
    seen: list[SaveCount] = []

    def other_writer(so_far: SaveCount) -> None:
        seen.append(so_far)
        # A second connection, as another process has: it must get the lock at once.
        conn = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    with open_store(db, now=clock) as store:
        count = save_rows(rs, str(source), store, encoding=None, delimiter=None,
                          id_column=None, ignore_extra=False, counselor="jd",
                          on_chunk=other_writer)
    assert [c.saved for c in seen] == [CHUNK_ROWS, 2 * CHUNK_ROWS, rows]
    assert count == SaveCount(rows, 0, 0, 0, 0)


def test_a_writer_that_must_wait_says_so_once_and_saves(tmp_path: Path) -> None:
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps(BASE))
    db = tmp_path / "r.db"
    open_store(db, now=clock).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer in the middle of its transaction
    env = {**os.environ, "NO_COLOR": "1"}
    waiting = subprocess.Popen(
        iopscreen("evaluate", "-r", MINIMAL, "-a", str(answers), "--save", "-c", "C-1",
                  "--db", str(db), "-f", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert waiting.stderr is not None
        first = waiting.stderr.readline()  # blocks until the writer reports that it waits
        holder.execute("COMMIT")
        out, rest = waiting.communicate(timeout=120)
    finally:
        holder.close()
        if waiting.poll() is None:
            waiting.kill()
    assert first == (f"waiting for the record database {db}: another iopscreen is saving to "
                     "it (nothing is lost meanwhile; Ctrl-C stops)\n")
    assert waiting.returncode == 0, rest
    assert "waiting" not in rest and f"Saved as record 1 in {db}." in rest
    assert json.loads(out)["level"] == "mid"
    with open_store(db, now=clock) as store:
        assert [r.client for r in store.find()] == ["C-1"]


def test_two_batch_saves_at_once_save_every_row(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    open_store(db, now=clock).close()
    count = CHUNK_ROWS + 700
    writers = []
    for name, start in (("a", 0), ("b", count)):
        source = tmp_path / f"{name}.csv"
        source.write_text(csv_rows(count, start))
        writers.append(subprocess.Popen(
            iopscreen("batch", str(source), "-r", MINIMAL, "-o", str(tmp_path / f"{name}.out"),
                      "--save", "--db", str(db), "-j", "1"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "NO_COLOR": "1"}))
    errs = [w.communicate(timeout=300)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errs
    for err in errs:
        assert f"saved {count} new record(s) in {db}" in err
    with open_store(db, now=clock) as store:
        clients = sorted(r.client for r in store.find())
    assert clients == sorted(f"C-{i}" for i in range(2 * count))


def test_a_busy_store_fails_clearly_and_keeps_what_was_saved(
        tmp_path: Path, rs: Ruleset, monkeypatch: pytest.MonkeyPatch) -> None:
    import iopscreen.store as store_module

    monkeypatch.setattr(store_module, "WAIT_LIMIT_S", 0.0)
    monkeypatch.setattr(store_module, "QUIET_WAIT_S", 0.0)
    source = tmp_path / "in.csv"
    source.write_text(csv_rows(CHUNK_ROWS + 10))
    db = tmp_path / "r.db"
    told: list[str] = []
    holder: list[sqlite3.Connection] = []

    def block_the_next_chunk(so_far: SaveCount) -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        holder.append(conn)

    with open_store(db, now=clock, on_wait=told.append) as store:
        with pytest.raises(StoreError, match="busy") as caught:
            save_rows(rs, str(source), store, encoding=None, delimiter=None, id_column=None,
                      ignore_extra=False, counselor="jd", on_chunk=block_the_next_chunk)
    holder[0].execute("ROLLBACK")
    holder[0].close()
    assert caught.value.exit_code == 1
    assert len(told) == 1 and told[0].startswith("waiting for the record database")
    with open_store(db, now=clock) as store:
        assert len(store.find()) == CHUNK_ROWS  # the first chunk stays saved


def test_a_finished_interview_that_cannot_save_keeps_its_draft(home: Path,
                                                               tmp_path: Path) -> None:
    rs = load_ruleset(MINIMAL)
    bad = tmp_path / "not-a-db.db"
    bad.write_text("these are not records\n" * 100)
    out = io.StringIO()
    console = Console(file=out, width=100, no_color=True)
    prompter = ScriptedPrompter([*CALM, ("review", FINISH)])
    with pytest.raises(StoreError) as caught:
        run_session(rs, SessionOptions(client="C-1", db=bad), prompter, console, now=clock)
    kept = drafts.list_drafts()
    assert len(kept) == 1 and kept[0].client == "C-1"
    assert caught.value.message.startswith("the screening was not saved: ")
    assert f"draft {kept[0].id} is kept: resume it with 'iopscreen screen --draft {kept[0].id}'"\
        in caught.value.hint
    assert "Saved as record" not in out.getvalue()
