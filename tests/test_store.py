"""The screening record store: concurrency, append-only versions, deletion with an audit trail,
owner-only files, migrations; and the records/progress commands over it."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from iopscreen.answers import coerce_answers
from iopscreen.cli import run
from iopscreen.engine import screen
from iopscreen.errors import AnswerError, UsageError
from iopscreen.progress import client_progress, sparkline
from iopscreen.ruleset import load_ruleset
from iopscreen.ruleset.model import Ruleset
from iopscreen.store import (
    MIGRATIONS,
    RecordNotFound,
    Store,
    StoreError,
    open_store,
    rescreen,
    resolve_db_path,
    save_screening,
    screening_from_json,
)

DATA = Path(__file__).parent / "data"
MINIMAL = str(DATA / "minimal.yaml")
BASE = {"danger": "no", "mood_1": 2, "mood_2": 2, "mood_3": 0, "trauma": "no", "drinks": 0}
MARKER = "zebra-marker-7731"  # a free-text answer that must vanish on delete


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, days: int) -> None:
        self.at += timedelta(days=days)


@pytest.fixture(scope="module")
def rs() -> Ruleset:
    return load_ruleset(MINIMAL)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IOPSCREEN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IOPSCREEN_DB", raising=False)
    return tmp_path / "records.db"


@pytest.fixture
def store(db: Path, clock: Clock) -> Any:
    with open_store(db, now=clock) as s:
        yield s


def save(store: Store, rs: Ruleset, client: str = "C-1", **changes: Any) -> Any:
    raw = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    typed = coerce_answers(rs, raw)
    return save_screening(store, rs, screen(rs, typed), typed, client=client, counselor="jd",
                          source="evaluate")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- the store
def test_record_json_has_the_documented_keys(store: Store, rs: Ruleset) -> None:
    record = save(store, rs, comment="ok")
    data = record.to_json()
    assert list(data) == ["id", "version", "amends", "client", "counselor", "created_utc",
                          "source", "ruleset", "answers", "result", "note"]
    assert data["created_utc"] == "2026-01-05T09:30:00Z"
    assert (data["version"], data["amends"], data["source"]) == (1, None, "evaluate")
    assert data["ruleset"] == {"id": "minimal-test", "version": "0.1.0",
                               "sha256": rs.content_hash}
    assert data["answers"]["comment"] == "ok" and data["answers"]["danger"] is False
    assert data["result"]["level"] == "mid"
    assert store.get(record.id) == record


def test_stored_answers_rescreen_to_the_same_result(store: Store, rs: Ruleset) -> None:
    # danger_plan is not asked when danger is no: kept with the answers, ignored by the result.
    record = save(store, rs, danger_plan="yes", concerns="cost|time")
    assert record.answers["danger_plan"] is True
    assert record.result["ignored_answers"] == ["danger_plan"]
    again, dropped = rescreen(store, rs, record.id, {}, source="none")
    assert dropped == ()
    assert again.result == record.result and again.answers == record.answers
    assert screening_from_json(record.result).to_json() == record.result


def _writer(path: str, name: str, count: int, barrier: Any) -> None:
    barrier.wait()  # both processes open the new database and write at the same moment
    clock = Clock()
    result = {"ruleset": {"id": "x", "version": "1", "sha256": "0"}, "level": "low"}
    with open_store(Path(path), now=clock) as s:
        for i in range(count):
            record = s.create(client=name, counselor=name, source="batch", answers={"i": i},
                              result=result, note=f"{name}-{i}")
            # amend reads, then writes: a deferred transaction would fail here under contention
            s.amend(record.id, answers={"i": i}, result=result, note=f"{name}-{i}")


def test_two_processes_writing_at_once_lose_nothing(db: Path, clock: Clock) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    count = 300
    workers = [ctx.Process(target=_writer, args=(str(db), name, count, barrier))
               for name in ("A", "B")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    with open_store(db, now=clock) as s:
        found = s.find()
        assert len(found) == 2 * count
        assert len({r.id for r in found}) == 2 * count
        for name in ("A", "B"):
            notes = sorted(r.note for r in found if r.client == name)
            assert notes == sorted(f"{name}-{i}" for i in range(count))
        assert all(r.version == 2 for r in found)
        actions = [e.action for e in s.audit()]
        assert (actions.count("create"), actions.count("amend")) == (2 * count, 2 * count)


def test_an_amended_record_shows_both_versions(store: Store, rs: Ruleset, clock: Clock) -> None:
    first = save(store, rs)
    clock.advance(2)
    second, _ = rescreen(store, rs, first.id, {"mood_1": 0, "mood_2": 0}, source="fix.json",
                         note="misheard", actor="lee")
    assert (second.version, second.amends, second.note) == (2, first.id, "misheard")
    assert second.result["level"] == "low" and second.answers["mood_1"] == 0
    assert second.screened_utc == first.created_utc != second.created_utc
    history = store.history(second.id)
    assert [r.id for r in history] == [first.id, second.id] == [r.id for r in
                                                                store.history(first.id)]
    assert history[0] == first  # the first version is unchanged
    assert [r.id for r in store.find()] == [second.id]  # lists show the latest version
    with pytest.raises(UsageError, match="already amended"):
        rescreen(store, rs, first.id, {}, source="fix.json")
    actions = [(e.action, e.actor, e.record_id) for e in store.audit(first.id)]
    assert actions == [("create", "jd", first.id), ("amend", "lee", second.id)]


def test_a_transaction_saves_all_or_nothing(store: Store, rs: Ruleset) -> None:
    with store.transaction():
        saved = [save(store, rs, client=f"B-{i}") for i in range(3)]
    assert [r.id for r in store.find()] == [r.id for r in saved]
    with pytest.raises(RuntimeError):
        with store.transaction():
            save(store, rs, client="B-9")
            raise RuntimeError("row 2 failed")
    assert len(store.find()) == 3 and store.find(client="B-9") == []
    assert len(store.audit()) == 3


def test_amend_names_no_answer_values(store: Store, rs: Ruleset) -> None:
    record = save(store, rs)
    with pytest.raises(AnswerError) as caught:
        rescreen(store, rs, record.id, {"mood_1": "very-private"}, source="fix.json")
    assert "very-private" not in caught.value.render()
    assert "fix.json (with record" in caught.value.render()
    assert len(store.history(record.id)) == 1


def test_delete_erases_content_and_leaves_an_audit_entry(db: Path, store: Store, rs: Ruleset,
                                                         clock: Clock) -> None:
    def raw_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))

    first = save(store, rs, comment=MARKER * 500)  # long enough to spill into overflow pages
    second = store.amend(first.id, answers={**first.answers, "drinks": 1}, result=first.result,
                         note=f"note {MARKER}")
    other = save(store, rs, client="C-2")
    assert MARKER.encode() in raw_bytes()
    clock.advance(1)
    erased = store.delete(second.id, reason="entered for the wrong client", actor="alice")
    assert erased == [first.id, second.id]
    for rid in (first.id, second.id):
        with pytest.raises(RecordNotFound, match="was deleted on 2026-01-06T09:30:00Z"):
            store.get(rid)
    tombstones = store.history(first.id)
    assert [(t.version, t.answers, t.result, t.note, t.client) for t in tombstones] == [
        (1, None, None, "", ""), (2, None, None, "", "")]
    assert all(t.deleted_utc == "2026-01-06T09:30:00Z" for t in tombstones)
    last = store.audit(first.id)[-1]
    assert (last.action, last.actor, last.record_id, last.at_utc) == (
        "delete", "alice", second.id, "2026-01-06T09:30:00Z")
    assert "reason: entered for the wrong client" in last.detail
    assert [r.id for r in store.find()] == [other.id]
    assert MARKER.encode() not in raw_bytes()  # not in freed pages, not in the write-ahead log
    with pytest.raises(RecordNotFound):
        with open_store(db, now=clock) as again:
            again.delete(first.id, reason="twice", actor="alice")


def test_the_database_refuses_changes_behind_the_store(db: Path, store: Store,
                                                       rs: Ruleset) -> None:
    record = save(store, rs)
    conn = sqlite3.connect(db)
    try:
        for sql in ("UPDATE records SET result = '{}' WHERE id = ?",
                    "UPDATE records SET answers = NULL, result = NULL, version = 9, "
                    "deleted_utc = 'x' WHERE id = ?",
                    "DELETE FROM records WHERE id = ?",
                    "DELETE FROM audit WHERE record_id = ?",
                    "UPDATE audit SET actor = 'x' WHERE record_id = ?"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql, (record.id,))
    finally:
        conn.close()
    assert store.get(record.id) == record


def test_files_are_owner_only(tmp_path: Path, clock: Clock, rs: Ruleset) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "new" / "records.db"
        with open_store(path, now=clock) as s:
            save(s, rs)
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        loose = tmp_path / "loose.db"
        loose.touch(mode=0o644)
        os.chmod(loose, 0o644)
        open_store(loose, now=clock).close()
        assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


# A released migration is never edited (stores in use have run it as it was): the digest of
# each one's statements, whitespace aside. A new migration adds its digest here.
RELEASED_MIGRATIONS = [
    "62dbbf6b4809f3affeb17ea3ab18328abc018ce15d09b5ac42ecff8f22d29783",
    "6c189e0593bad8621a5604716af0196af924feca0c846d281634cb32877f1f52",
]


def test_released_migrations_are_never_edited() -> None:
    digests = [hashlib.sha256(" ".join(" ".join(statement.split()) for statement in m)
                              .encode()).hexdigest() for m in MIGRATIONS]
    assert digests == RELEASED_MIGRATIONS


def test_migrations_from_an_empty_file_and_reopen(tmp_path: Path, clock: Clock,
                                                  rs: Ruleset) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with open_store(path, now=clock) as s:
        record = save(s, rs)
    assert _user_version(path) == len(MIGRATIONS)
    with open_store(path, now=clock) as s:  # re-open: nothing applied twice, nothing lost
        assert s.get(record.id) == record
    assert _user_version(path) == len(MIGRATIONS)
    later = [*MIGRATIONS, ("ALTER TABLE records ADD COLUMN site TEXT NOT NULL DEFAULT 'main'",)]
    with open_store(path, now=clock, migrations=later) as s:
        assert s.get(record.id) == record
    assert _user_version(path) == len(MIGRATIONS) + 1
    with pytest.raises(StoreError, match="newer iopscreen") as caught:
        open_store(path, now=clock)
    assert caught.value.exit_code == 1 and "upgrade" in caught.value.hint


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not records\n" * 200)
    with pytest.raises(StoreError, match="not a usable iopscreen record database") as caught:
        open_store(path, now=clock)
    assert "--db" in caught.value.hint


def test_db_path_option_then_env_then_data_folder(db: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_db_path(None) == tmp_path / "home" / "records.db"
    monkeypatch.setenv("IOPSCREEN_DB", str(tmp_path / "env.db"))
    assert resolve_db_path(None) == tmp_path / "env.db"
    assert resolve_db_path(tmp_path / "opt.db") == tmp_path / "opt.db"


# --------------------------------------------------------------------------- progress
def test_progress_series_and_minimal_important_difference(store: Store, rs: Ruleset,
                                                          clock: Clock) -> None:
    save(store, rs)  # mood 6 of 6
    clock.advance(30)
    save(store, rs, mood_1=1, mood_2=1)  # mood 4: down 2 = the minimal change of 2
    clock.advance(30)
    save(store, rs, mood_1=1, mood_2=0)  # mood 3: down 1
    save(store, rs, client="C-2")
    records = store.find(client="C-1")
    progress = client_progress("C-1", records, rs)
    mood = progress.series[0]
    assert (mood.id, mood.short, mood.values, mood.minimal_change) == ("mood", "Mood",
                                                                      (6, 4, 3), 2)
    change = progress.changes[0]
    assert (change.delta, change.meaningful) == (-1, False)
    assert change.describe() == ("Mood: 4 -> 3, down 1: less than the minimal important "
                                 "difference (2 points)")
    two = client_progress("C-1", records[:2], rs).changes[0]
    assert two.meaningful is True and two.describe().endswith("a meaningful drop")
    assert progress.changes[1].describe() == ("Trauma: 0 -> 0, no change (the rule set gives "
                                              "no minimal important difference)")
    assert progress.level_change == ("Middle", "Middle")


def test_sparkline_scales_to_the_maximum() -> None:
    assert sparkline([0, 27, 13.5, None], 27) == "▁█▅·"
    assert sparkline([], 10) == ""


# --------------------------------------------------------------------------- commands
@pytest.fixture
def seeded(db: Path, clock: Clock, rs: Ruleset) -> list[Any]:
    with open_store(db, now=clock) as s:
        first = save(s, rs, comment=MARKER)  # C-1, mid, mood 6
        clock.advance(31)
        second = save(s, rs, mood_1=0, mood_2=0, mood_3=2)  # C-1, low, mood 0
        third = save(s, rs, client="C-2", danger="yes", danger_plan="declined")
    return [first, second, third]


def test_records_list_filters_by_client_and_date(capsys: pytest.CaptureFixture[str], db: Path,
                                                 seeded: list[Any]) -> None:
    code, out, _ = cli(capsys, "records", "list", "--db", str(db))
    assert code == 0
    assert out.count("C-1") == 2 and "C-2" in out and "3 record(s)" in out
    assert "2026-01-05 09:30" in out and " mid " in out
    c2 = next(line for line in out.splitlines() if "C-2" in line)
    assert " yes " in c2  # provisional: the plan question was declined
    code, out, _ = cli(capsys, "records", "list", "--db", str(db), "--client", "C-1",
                       "--since", "2026-02-01")
    assert code == 0 and "1 record(s)" in out and "2026-02-05" in out and "C-2" not in out
    code, _, err = cli(capsys, "records", "list", "--db", str(db), "--since", "5 Feb")
    assert code == 2 and "YYYY-MM-DD" in err


def test_records_list_without_a_database(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = cli(capsys, "records", "list")
    assert code == 0 and "No records yet" in out
    assert not db.exists() and not (db.parent / "home" / "records.db").exists()


def test_records_show_text_and_json(capsys: pytest.CaptureFixture[str], db: Path,
                                    seeded: list[Any]) -> None:
    first = seeded[0]
    code, out, _ = cli(capsys, "records", "show", str(first.id), "--db", str(db), "-r", MINIMAL)
    assert code == 0
    assert f"Record {first.id} (version 1 of 1)" in out
    assert "client C-1; counselor jd; saved 2026-01-05T09:30:00Z from evaluate" in out
    assert "RECOMMENDED LEVEL OF CARE" in out and "High mood score" in out
    assert "VERSION HISTORY" in out and "not the one loaded now" not in out
    code, out, _ = cli(capsys, "records", "show", str(first.id), "--db", str(db), "-f", "json")
    assert code == 0 and json.loads(out) == first.to_json()
    code, _, err = cli(capsys, "records", "show", "999", "--db", str(db))
    assert code == 2 and "there is no record 999" in err and "records list" in err


def test_records_show_a_result_from_another_rule_set(capsys: pytest.CaptureFixture[str],
                                                     db: Path, seeded: list[Any]) -> None:
    # The shipped rule set has other levels and flags: the saved result's own labels are used.
    code, out, err = cli(capsys, "records", "show", str(seeded[0].id), "--db", str(db))
    assert code == 0, err
    assert "Saved with rule set minimal-test 0.1.0" in out and "MIDDLE" in out


def test_records_amend_then_show_history(capsys: pytest.CaptureFixture[str], db: Path,
                                         tmp_path: Path, seeded: list[Any]) -> None:
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({"mood_1": 0, "mood_2": 0, "comment": None}))
    first = seeded[0]
    code, out, err = cli(capsys, "records", "amend", str(first.id), "-a", str(fix), "--note",
                         "misheard", "--by", "lee", "--db", str(db), "-r", MINIMAL)
    assert code == 0, err
    assert "version 2 of the record" in out and "Middle -> Low" in out
    new_id = int(out.split("Saved record ")[1].split(":")[0])
    code, out, _ = cli(capsys, "records", "show", str(first.id), "--db", str(db), "-r", MINIMAL)
    assert f"Superseded: the latest version is record {new_id}" in out
    history = out.split("VERSION HISTORY")[1]
    assert "misheard" in history and "Middle" in history and "Low" in history
    code, out, _ = cli(capsys, "records", "show", str(new_id), "--db", str(db), "-f", "json")
    data = json.loads(out)
    assert (data["version"], data["amends"], data["note"]) == (2, first.id, "misheard")
    assert "comment" not in data["answers"]
    code, _, err = cli(capsys, "records", "amend", str(first.id), "-a", str(fix), "--db",
                       str(db), "-r", MINIMAL)
    assert code == 2 and "already amended" in err and f"records amend {new_id}" in err


def test_records_export_json_is_owner_only_and_audited(capsys: pytest.CaptureFixture[str],
                                                       db: Path, tmp_path: Path,
                                                       seeded: list[Any]) -> None:
    target = tmp_path / "out" / "c1.json"
    rid = str(seeded[0].id)
    code, _, err = cli(capsys, "records", "export", rid, "-f", "json", "-o", str(target),
                       "--by", "sam", "--db", str(db))
    assert code == 0, err
    assert json.loads(target.read_text()) == seeded[0].to_json()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    code, out, _ = cli(capsys, "records", "audit", rid, "--db", str(db))
    assert code == 0
    assert "export" in out and "sam" in out and "json to" in out


def test_records_export_markdown_to_stdout(capsys: pytest.CaptureFixture[str], db: Path,
                                           seeded: list[Any]) -> None:
    rid = str(seeded[0].id)
    code, out, err = cli(capsys, "records", "export", rid, "-f", "markdown", "-r", MINIMAL,
                         "--by", "sam", "--db", str(db))
    assert code == 0, err
    assert out.startswith(f"# Level-of-care screening: record {rid}")
    assert "Middle level." in out  # the level's description: the matching rule set was used
    code, out, _ = cli(capsys, "records", "audit", rid, "--db", str(db))
    assert "markdown to stdout" in out


def _stdin(text: str, tty: bool) -> io.StringIO:
    stream = io.StringIO(text)
    stream.isatty = lambda: tty  # type: ignore[method-assign]
    return stream


def test_records_delete_needs_confirmation(capsys: pytest.CaptureFixture[str], db: Path,
                                           seeded: list[Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rid = str(seeded[0].id)
    monkeypatch.setattr("sys.stdin", _stdin("", tty=False))
    code, _, err = cli(capsys, "records", "delete", rid, "--reason", "test", "--db", str(db))
    assert code == 2 and "--yes" in err
    monkeypatch.setattr("sys.stdin", _stdin("n\n", tty=True))
    code, out, _ = cli(capsys, "records", "delete", rid, "--reason", "test", "--db", str(db))
    assert code == 0 and "Nothing deleted." in out
    code, _, _ = cli(capsys, "records", "show", rid, "--db", str(db), "-f", "json")
    assert code == 0
    monkeypatch.setattr("sys.stdin", _stdin("y\n", tty=True))
    code, out, _ = cli(capsys, "records", "delete", rid, "--reason", "wrong client", "--by",
                       "alice", "--db", str(db))
    assert code == 0 and f"Deleted record {rid}" in out


def test_records_delete_with_yes_then_audit(capsys: pytest.CaptureFixture[str], db: Path,
                                            seeded: list[Any]) -> None:
    rid = str(seeded[0].id)
    code, _, err = cli(capsys, "records", "delete", rid, "--reason", " ", "--yes", "--db", str(db))
    assert code == 2 and "reason is required" in err
    code, out, _ = cli(capsys, "records", "delete", rid, "--reason", "wrong client", "--yes",
                       "--by", "alice", "--db", str(db))
    assert code == 0
    code, _, err = cli(capsys, "records", "show", rid, "--db", str(db))
    assert code == 2 and "was deleted" in err and f"records audit {rid}" in err
    code, out, _ = cli(capsys, "records", "audit", rid, "--db", str(db))
    assert code == 0
    assert "create" in out and "delete" in out and "alice" in out and "wrong client" in out
    code, out, _ = cli(capsys, "records", "audit", "--db", str(db))
    assert out.count("create") == 3
    code, out, _ = cli(capsys, "records", "list", "--db", str(db))
    assert "2 record(s)" in out
    assert MARKER not in out


def test_progress_command(capsys: pytest.CaptureFixture[str], db: Path,
                          seeded: list[Any]) -> None:
    code, out, err = cli(capsys, "progress", "C-1", "--db", str(db), "-r", MINIMAL)
    assert code == 0, err
    assert "Progress of client C-1: 2 screening(s), 2026-01-05 to 2026-02-05" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("2026-")]
    assert rows == [["2026-01-05", str(seeded[0].id), "mid", "no", "6", "0"],
                    ["2026-02-05", str(seeded[1].id), "low", "no", "0", "0"]]
    assert "Mood    █▁  6 to 0 of 6" in out
    assert "Level: Middle -> Low" in out
    assert ("Mood: 6 -> 0, down 6: at least the minimal important difference (2 points), "
            "a meaningful drop") in out
    code, _, err = cli(capsys, "progress", "C-9", "--db", str(db), "-r", MINIMAL)
    assert code == 2 and "no saved screenings for client 'C-9'" in err


def test_progress_with_the_shipped_rule_set_uses_the_phq9_difference(
        capsys: pytest.CaptureFixture[str], db: Path, clock: Clock) -> None:
    shipped = load_ruleset(resolve_shipped())
    phq9 = next(i for i in shipped.instruments if i.id == "phq9")
    assert phq9.minimal_change == 5  # Lowe 2004
    make: Callable[[float], dict[str, Any]] = lambda score: {  # noqa: E731
        "ruleset": {"id": shipped.id, "version": shipped.version, "sha256": "x"},
        "level": "iop", "level_label": "IOP", "provisional": False, "flags": [],
        "scores": [{"id": "phq9", "title": phq9.title, "score": score, "max": 27}]}
    with open_store(db, now=clock) as s:
        for score in (18, 12):
            s.create(client="C-7", counselor="jd", source="interview", answers={},
                     result=make(score))
            clock.advance(14)
    code, out, err = cli(capsys, "progress", "C-7", "--db", str(db))
    assert code == 0, err
    assert ("PHQ-9: 18 -> 12, down 6: at least the minimal important difference (5 points), "
            "a meaningful drop") in out


def resolve_shipped() -> Path:
    from iopscreen.ruleset import default_ruleset_path

    return default_ruleset_path()
