"""The screening record store: an embedded SQLite database with an audit trail.

A screening is a clinical record, so the store is **append-only**: every saved screening is a row
that is never changed; a correction is a new row (a new *version*) that names the row it amends,
and the versions of one screening form a chain whose history is always visible. The one change
ever made to a row is deletion, which is explicit: it erases the answers, result, note and client
reference of every version of the chain, keeps a tombstone row (id, version, counselor, dates,
rule set), and logs who deleted it and why. Every create, amend, delete and export is logged in the
``audit`` table; triggers refuse any other UPDATE or DELETE, so the rules hold whatever code runs.

The file holds health data: it is created owner-only (0600, and so are SQLite's ``-wal`` and
``-shm`` files) and deleted content is overwritten (``secure_delete``), then checkpointed out of
the write-ahead log. Several processes may write at once: WAL mode and ``BEGIN IMMEDIATE``
serialise writers without losing any one's records; each transaction is short (a batch saves
:data:`iopscreen.batch_save.CHUNK_ROWS` rows per transaction), so writers take turns, and one that
has to wait says so through ``on_wait`` and keeps waiting up to :data:`WAIT_LIMIT_S`.

Saving is idempotent where asked (:meth:`Store.create_once`): a screening whose client, rule-set
hash and answers equal a saved version's is not saved again. Each version keeps the sha256 of its
answers in canonical JSON for that lookup; deleting erases it with the answers.

Clocks are passed in (``Store(now=...)``); nothing here reads the time itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .answers import Answer, coerce_answers, to_plain
from .engine import (
    Evidence,
    FiredRule,
    FlagResult,
    MisconceptionResult,
    PendingRule,
    Screening,
    ScoreResult,
    screen,
)
from .errors import IopscreenError, UsageError
from .files import data_dir, private_dir
from .ruleset.model import Ruleset

ENV_DB = "IOPSCREEN_DB"
DB_NAME = "records.db"
SOURCES = ("interview", "evaluate", "batch")
ACTIONS = ("create", "amend", "delete", "export")
QUIET_WAIT_S = 0.5  # a writer waits this long for another one before saying it is waiting
WAIT_LIMIT_S = 300.0  # and then this long before giving up (a stuck writer, not a busy one)

Clock = Callable[[], datetime]
Notice = Callable[[str], None]


class StoreError(IopscreenError):
    """The record database cannot be used (not a database, too new, busy, unwritable)."""

    exit_code = 1


class RecordNotFound(UsageError):
    """No record has that id, or it was deleted."""


def utc_now() -> datetime:
    """The wall clock, for the command line to pass in as ``now``."""
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    """``moment`` as ``YYYY-MM-DDTHH:MM:SSZ`` (a naive datetime is taken to be UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_db_path(option: Path | None = None) -> Path:
    """The database to use: ``--db``, else ``$IOPSCREEN_DB``, else ``records.db`` in the data
    folder (``$IOPSCREEN_HOME``, ...; see :func:`iopscreen.files.data_dir`)."""
    if option is not None:
        return option
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB])
    return data_dir() / DB_NAME


# --------------------------------------------------------------------------- schema
def _append_only(cleared: str) -> str:
    """The trigger that lets an update through only when it makes a record a tombstone: it
    sets deleted_utc, ``cleared`` holds (the answers gone), and what a version is keeps."""
    return f"""CREATE TRIGGER records_append_only BEFORE UPDATE ON records
           WHEN NOT (OLD.deleted_utc IS NULL AND NEW.deleted_utc IS NOT NULL
                     AND {cleared}
                     AND NEW.id = OLD.id AND NEW.first_id IS OLD.first_id
                     AND NEW.version = OLD.version AND NEW.amends IS OLD.amends
                     AND NEW.counselor = OLD.counselor AND NEW.created_utc = OLD.created_utc
                     AND NEW.source = OLD.source AND NEW.ruleset_id = OLD.ruleset_id
                     AND NEW.ruleset_version = OLD.ruleset_version
                     AND NEW.ruleset_sha256 = OLD.ruleset_sha256)
           BEGIN SELECT RAISE(ABORT, 'records are append-only'); END"""


# Each migration is a list of statements, applied in order in one transaction; PRAGMA
# user_version counts the migrations applied. Never edit a released migration: add one
# (tests/test_store.py holds each one's digest). _append_only is shared by two of them, so it
# is frozen too.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            first_id INTEGER REFERENCES records(id),  -- the chain's version 1; NULL on it
            version INTEGER NOT NULL CHECK (version >= 1),
            amends INTEGER REFERENCES records(id),
            client TEXT NOT NULL,
            counselor TEXT NOT NULL,
            created_utc TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('interview', 'evaluate', 'batch')),
            ruleset_id TEXT NOT NULL,
            ruleset_version TEXT NOT NULL,
            ruleset_sha256 TEXT NOT NULL,
            answers TEXT,   -- JSON; NULL once deleted
            result TEXT,    -- JSON; NULL once deleted
            note TEXT NOT NULL DEFAULT '',
            deleted_utc TEXT,
            CHECK ((first_id IS NULL) = (version = 1) AND (amends IS NULL) = (version = 1)),
            UNIQUE (first_id, version)
        )""",
        "CREATE INDEX records_client ON records (client)",
        "CREATE INDEX records_first ON records (first_id)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at_utc TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('create', 'amend', 'delete', 'export')),
            actor TEXT NOT NULL,
            record_id INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX audit_record ON audit (record_id)",
        # The only change a record may ever get is becoming a tombstone.
        _append_only("NEW.answers IS NULL AND NEW.result IS NULL"),
        """CREATE TRIGGER records_keep BEFORE DELETE ON records
           BEGIN SELECT RAISE(ABORT, 'records are append-only; delete leaves tombstones'); END""",
        """CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
        """CREATE TRIGGER audit_keep BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
        # One row per version with the id of its chain and the chain's first save time.
        """CREATE VIEW versions AS
           SELECT r.*, COALESCE(r.first_id, r.id) AS chain,
                  COALESCE(f.created_utc, r.created_utc) AS screened_utc
           FROM records r LEFT JOIN records f ON f.id = r.first_id""",
    ),
    (
        # The sha256 of a version's answers (canonical JSON, see answers_digest), so that a
        # screening saved twice is found by one index lookup. NULL on rows saved before it and,
        # like the answers, on tombstones: a digest of a few yes/no answers could be reversed.
        "ALTER TABLE records ADD COLUMN answers_sha256 TEXT",
        "CREATE INDEX records_same ON records (client, ruleset_sha256, answers_sha256)",
        # Migration 1's trigger again, now also requiring the digest to go with the answers.
        "DROP TRIGGER records_append_only",
        _append_only("NEW.answers IS NULL AND NEW.result IS NULL AND NEW.answers_sha256 IS NULL"),
    ),
]


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Record:
    """One version of a saved screening. ``answers``/``result`` are None once deleted."""

    id: int
    version: int
    amends: int | None
    chain: int  # id of the chain's version 1
    client: str
    counselor: str
    created_utc: str
    screened_utc: str  # when version 1 was saved: the screening's date
    source: str
    ruleset: dict[str, str]
    answers: dict[str, Any] | None
    result: dict[str, Any] | None
    note: str
    deleted_utc: str | None

    @property
    def deleted(self) -> bool:
        return self.deleted_utc is not None

    @property
    def level(self) -> str:
        return str(self.result.get("level", "")) if self.result else ""

    @property
    def level_label(self) -> str:
        return str(self.result.get("level_label") or self.level) if self.result else ""

    @property
    def provisional(self) -> bool:
        return bool(self.result and self.result.get("provisional"))

    @property
    def flag_ids(self) -> tuple[str, ...]:
        return tuple(f["id"] for f in (self.result or {}).get("flags", []))

    def to_json(self) -> dict[str, Any]:
        """The record as ``records show --format json`` prints it and reports receive it."""
        return {
            "id": self.id, "version": self.version, "amends": self.amends,
            "client": self.client, "counselor": self.counselor,
            "created_utc": self.created_utc, "source": self.source,
            "ruleset": dict(self.ruleset), "answers": self.answers, "result": self.result,
            "note": self.note,
        }


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at_utc: str
    action: str
    actor: str
    record_id: int
    detail: str


def _record(row: sqlite3.Row) -> Record:
    return Record(
        id=row["id"], version=row["version"], amends=row["amends"], chain=row["chain"],
        client=row["client"], counselor=row["counselor"], created_utc=row["created_utc"],
        screened_utc=row["screened_utc"], source=row["source"],
        ruleset={"id": row["ruleset_id"], "version": row["ruleset_version"],
                 "sha256": row["ruleset_sha256"]},
        answers=json.loads(row["answers"]) if row["answers"] is not None else None,
        result=json.loads(row["result"]) if row["result"] is not None else None,
        note=row["note"], deleted_utc=row["deleted_utc"],
    )


# --------------------------------------------------------------------------- the store
class Store:
    """An open record database. Use :func:`open_store`; close it (or use ``with``)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, now: Clock,
                 on_wait: Notice | None = None):
        self.path = path
        self._conn = conn
        self._now = now
        self._on_wait = on_wait
        self._told = False  # on_wait is called once per store, however often it waits
        self._grouped = 0  # > 0 inside transaction(): writes join it

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # ---------------------------------------------------------------- writing
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes (e.g. a chunk of rows of ``batch --save``) into one transaction: all are
        saved or none, with one disk sync instead of one per record. Other writers wait for it
        to end: keep it short."""
        with self._write():
            self._grouped += 1
            try:
                yield
            finally:
                self._grouped -= 1

    def create(self, *, client: str, counselor: str, source: str, answers: Mapping[str, Any],
               result: Mapping[str, Any], note: str = "", actor: str = "") -> Record:
        """Save a new screening as version 1 of a new record; returns it."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}")
        ruleset = result.get("ruleset") or {}
        with self._write() as conn:
            at = stamp(self._now())
            new_id = _insert(conn, (None, 1, None, client, counselor, at, source), result,
                             answers, note)
            self._log(conn, at, "create", actor or counselor, new_id,
                      f"{source}; rule set {ruleset.get('id', '?')} {ruleset.get('version', '?')}")
            return self._fetch(conn, new_id)

    def create_once(self, *, client: str, counselor: str, source: str,
                    answers: Mapping[str, Any], result: Mapping[str, Any], note: str = "",
                    actor: str = "") -> tuple[Record, bool]:
        """Like :meth:`create`, unless a version with the same client, rule-set hash and answers
        is saved and not deleted: then returns (that version, False) and saves nothing. Returns
        (the new record, True) otherwise. The look-up and the save are one transaction."""
        sha = str((result.get("ruleset") or {}).get("sha256", ""))
        with self.transaction():
            same = self._same(client, sha, answers)
            if same is not None:
                return same, False
            return self.create(client=client, counselor=counselor, source=source,
                               answers=answers, result=result, note=note, actor=actor), True

    def _same(self, client: str, ruleset_sha256: str,
              answers: Mapping[str, Any]) -> Record | None:
        digest = answers_digest(answers)
        rows = self._conn.execute(
            "SELECT * FROM versions WHERE client = ? AND ruleset_sha256 = ? AND deleted_utc IS "
            "NULL AND (answers_sha256 = ? OR answers_sha256 IS NULL) ORDER BY id",
            (client, ruleset_sha256, digest)).fetchall()
        for row in rows:  # rows saved before the digest existed are compared by their answers
            if row["answers_sha256"] == digest or (
                    row["answers"] is not None
                    and answers_digest(json.loads(row["answers"])) == digest):
                return _record(row)
        return None

    def amend(self, record_id: int, *, answers: Mapping[str, Any], result: Mapping[str, Any],
              note: str = "", actor: str = "") -> Record:
        """Save a correction of ``record_id`` (the latest version of its record) as a new
        version linked to it; returns the new version. Raises :class:`RecordNotFound`, and
        :class:`UsageError` when ``record_id`` has already been amended."""
        ruleset = result.get("ruleset") or {}
        with self._write() as conn:
            old = self._fetch(conn, record_id)
            if old.deleted:
                raise _deleted(old)
            latest = self._chain(conn, old.chain)[-1]
            if latest.id != old.id:
                raise UsageError(
                    f"record {old.id} was already amended: its latest version is "
                    f"{latest.id} (version {latest.version})",
                    hint=f"amend the latest version: iopscreen records amend {latest.id} ...")
            at = stamp(self._now())
            new_id = _insert(conn, (old.chain, old.version + 1, old.id, old.client,
                                    old.counselor, at, old.source), result, answers, note)
            self._log(conn, at, "amend", actor or old.counselor, new_id,
                      f"version {old.version + 1}, amends {old.id}; rule set "
                      f"{ruleset.get('id', '?')} {ruleset.get('version', '?')}")
            return self._fetch(conn, new_id)

    def delete(self, record_id: int, *, reason: str, actor: str) -> list[int]:
        """Erase the content of every version of ``record_id``'s record, keeping tombstones and
        an audit entry with ``reason``; returns the erased version ids."""
        if not reason.strip():
            raise UsageError("a reason is required to delete a record",
                             hint="say why, e.g. --reason 'entered for the wrong client'")
        with self._write() as conn:
            record = self._fetch(conn, record_id)
            if record.deleted:
                raise _deleted(record)
            ids = [r.id for r in self._chain(conn, record.chain)]
            at = stamp(self._now())
            conn.execute("UPDATE records SET answers = NULL, answers_sha256 = NULL, "
                         "result = NULL, note = '', client = '', deleted_utc = ? "
                         "WHERE id = ? OR first_id = ?",
                         (at, record.chain, record.chain))
            self._log(conn, at, "delete", actor, record_id,
                      f"versions {', '.join(map(str, ids))}; reason: {reason.strip()}")
        # Erased pages are zeroed (secure_delete); move them out of the write-ahead log too.
        # Best effort: a reader in another process can hold the log until it finishes.
        with self._guard():
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return ids

    def log_export(self, record_id: int, *, actor: str, detail: str) -> None:
        """Note in the audit trail that ``record_id`` was exported (``detail``: format, where)."""
        with self._write() as conn:
            self._fetch(conn, record_id)
            self._log(conn, stamp(self._now()), "export", actor, record_id, detail)

    # ---------------------------------------------------------------- reading
    def get(self, record_id: int) -> Record:
        """The version ``record_id``. Raises :class:`RecordNotFound` when there is none or its
        record was deleted."""
        with self._guard():
            record = self._fetch(self._conn, record_id)
        if record.deleted:
            raise _deleted(record)
        return record

    def history(self, record_id: int) -> list[Record]:
        """Every version of ``record_id``'s record, oldest first (tombstones included)."""
        with self._guard():
            record = self._fetch(self._conn, record_id)
            return self._chain(self._conn, record.chain)

    def find(self, client: str | None = None, since: str | None = None) -> list[Record]:
        """The latest version of each record that is not deleted, oldest screening first;
        ``client`` matches exactly, ``since`` (a UTC stamp) keeps screenings saved then or later."""
        sql = ("SELECT * FROM versions v WHERE deleted_utc IS NULL AND version = "
               "(SELECT MAX(version) FROM records w WHERE w.id = v.chain OR w.first_id = v.chain)")
        args: list[Any] = []
        if client is not None:
            sql += " AND client = ?"
            args.append(client)
        if since is not None:
            sql += " AND screened_utc >= ?"
            args.append(since)
        with self._guard():
            rows = self._conn.execute(sql + " ORDER BY screened_utc, chain", args).fetchall()
        return [_record(r) for r in rows]

    def audit(self, record_id: int | None = None) -> list[AuditEntry]:
        """Audit entries, oldest first: all of them, or those of ``record_id``'s record."""
        with self._guard():
            if record_id is None:
                rows = self._conn.execute("SELECT * FROM audit ORDER BY id").fetchall()
            else:
                chain = self._fetch(self._conn, record_id).chain
                rows = self._conn.execute(
                    "SELECT * FROM audit WHERE record_id IN (SELECT id FROM versions "
                    "WHERE chain = ?) ORDER BY id", (chain,)).fetchall()
        return [AuditEntry(r["id"], r["at_utc"], r["action"], r["actor"], r["record_id"],
                           r["detail"]) for r in rows]

    # ---------------------------------------------------------------- internals
    def _fetch(self, conn: sqlite3.Connection, record_id: int) -> Record:
        row = conn.execute("SELECT * FROM versions WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise RecordNotFound(f"there is no record {record_id} in {self.path}",
                                 hint="'iopscreen records list' shows the saved records")
        return _record(row)

    def _chain(self, conn: sqlite3.Connection, chain: int) -> list[Record]:
        rows = conn.execute("SELECT * FROM versions WHERE chain = ? ORDER BY version",
                            (chain,)).fetchall()
        return [_record(r) for r in rows]

    @staticmethod
    def _log(conn: sqlite3.Connection, at: str, action: str, actor: str, record_id: int,
             detail: str) -> None:
        conn.execute("INSERT INTO audit (at_utc, action, actor, record_id, detail) "
                     "VALUES (?, ?, ?, ?, ?)", (at, action, actor or "unknown", record_id, detail))

    def _begin(self, conn: sqlite3.Connection) -> None:
        """Take the write lock: quietly for :data:`QUIET_WAIT_S`, then, having said why through
        ``on_wait``, for up to :data:`WAIT_LIMIT_S` more. Raises ``sqlite3.OperationalError``
        (busy) when another writer holds it all that time."""
        conn.execute(f"PRAGMA busy_timeout = {int(QUIET_WAIT_S * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        finally:  # everything else (reads, migrations, checkpoints) waits the full time
            conn.execute(f"PRAGMA busy_timeout = {int(WAIT_LIMIT_S * 1000)}")
        if self._on_wait is not None and not self._told:
            self._told = True
            self._on_wait(f"waiting for the record database {self.path}: another iopscreen is "
                          "saving to it (nothing is lost meanwhile; Ctrl-C stops)")
        conn.execute("BEGIN IMMEDIATE")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        with _sqlite_errors(self.path):
            yield

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock at the start, so writers queue
        instead of failing halfway through (see :meth:`_begin`)."""
        conn = self._conn
        if self._grouped:
            yield conn
            return
        with self._guard():
            self._begin(conn)
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def _insert(conn: sqlite3.Connection, head: tuple[Any, ...], result: Mapping[str, Any],
            answers: Mapping[str, Any], note: str) -> int:
    """Insert one version; ``head`` is (first_id, version, amends, client, counselor,
    created_utc, source). Returns its id."""
    ruleset = result.get("ruleset") or {}
    cur = conn.execute(
        "INSERT INTO records (first_id, version, amends, client, counselor, created_utc, source,"
        " ruleset_id, ruleset_version, ruleset_sha256, answers, result, note, answers_sha256)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*head, str(ruleset.get("id", "")), str(ruleset.get("version", "")),
         str(ruleset.get("sha256", "")), json.dumps(answers, ensure_ascii=False),
         json.dumps(result, ensure_ascii=False), note, answers_digest(answers)))
    return int(cur.lastrowid or 0)


def answers_digest(answers: Mapping[str, Any]) -> str:
    """The sha256 of ``answers`` (plain JSON values) in canonical JSON: keys sorted, no spaces;
    equal answers give equal digests whatever order they were given in."""
    text = json.dumps(answers, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _deleted(record: Record) -> RecordNotFound:
    return RecordNotFound(f"record {record.id} was deleted on {record.deleted_utc}",
                          hint=f"'iopscreen records audit {record.id}' shows who deleted it "
                               "and why")


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """SQLite's errors as :class:`StoreError` with a hint (never with answer values)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if _is_busy(exc):
            raise StoreError(f"the record database {path} was busy for over "
                             f"{WAIT_LIMIT_S / 60:g} minutes",
                             hint="another iopscreen has been writing to it all that time (or "
                                  "stopped while writing); try again when it is done") from None
        if "readonly" in text or "unable to open" in text:
            raise StoreError(f"cannot write the record database {path}",
                             hint="check the folder exists and you own the file, or choose "
                                  "another with --db or $IOPSCREEN_DB") from None
        raise StoreError(f"the record database {path} cannot be used: {text}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable iopscreen record database ({exc})",
                         hint="point --db or $IOPSCREEN_DB at a records database, or at a new "
                              "file name to start one") from None


# --------------------------------------------------------------------------- opening
def open_store(path: Path, now: Clock, *,
               migrations: Sequence[Sequence[str]] | None = None,
               on_wait: Notice | None = None) -> Store:
    """Open (creating if needed, owner-only) and migrate the database at ``path``.
    ``on_wait`` is told (once, one line) when a write has to wait for another writer.

    Raises :class:`StoreError` when it is not a database, was written by a newer iopscreen,
    or cannot be opened.
    """
    path = Path(path)
    steps = MIGRATIONS if migrations is None else migrations
    # New files (the database and SQLite's -wal/-shm) are born owner-only.
    old_umask = os.umask(0o077)
    try:
        with _sqlite_errors(path):
            if not path.exists():
                _create(path, steps)
            conn = sqlite3.connect(path, timeout=WAIT_LIMIT_S, isolation_level=None)
            try:
                conn.row_factory = sqlite3.Row
                _configure(conn)
                _migrate(conn, path, steps)
            except BaseException:
                conn.close()
                raise
    except OSError as exc:
        raise StoreError(f"cannot create the record database {path}: {exc.strerror}",
                         hint="choose another file with --db or $IOPSCREEN_DB") from None
    finally:
        os.umask(old_umask)
    _owner_only(path)
    return Store(path, conn, now, on_wait)


def _create(path: Path, steps: Sequence[Sequence[str]]) -> None:
    """Make a new database appear at ``path`` whole: in WAL mode and migrated.

    Switching a database to WAL needs it to oneself (SQLite does not wait for that), so two
    processes creating the same new database could fail; instead each builds one beside it and
    hard-links it into place, and the first link wins.
    """
    private_dir(path.parent)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    try:
        conn = sqlite3.connect(name, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, path, steps)
        finally:
            conn.close()
        try:
            os.link(name, path)
        except FileExistsError:
            pass  # another process created it first: use that one
    finally:
        for leftover in (name, f"{name}-wal", f"{name}-shm"):
            Path(leftover).unlink(missing_ok=True)


def _configure(conn: sqlite3.Connection) -> None:
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA busy_timeout = {int(WAIT_LIMIT_S * 1000)}")
    conn.execute("PRAGMA synchronous = FULL")  # a saved screening survives a power cut
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")  # erased content is overwritten, not left behind


def _migrate(conn: sqlite3.Connection, path: Path, steps: Sequence[Sequence[str]]) -> None:
    def schema() -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    if schema() == len(steps):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema()  # another process may have migrated while we waited
        if current > len(steps):
            raise StoreError(
                f"{path} was written by a newer iopscreen (schema {current}; this one knows "
                f"{len(steps)})", hint="upgrade iopscreen to read it")
        for number in range(current, len(steps)):
            for statement in steps[number]:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(steps)}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _owner_only(path: Path) -> None:
    """Tighten the database and its SQLite side files to 0600 (when we own them)."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if p.exists() and p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)
        except OSError:
            pass


# --------------------------------------------------------------------------- screenings
def plain_answers(ruleset: Ruleset, answers: Mapping[str, Answer]) -> dict[str, Any]:
    """Typed answers in the JSON form the answer parser reads back unchanged."""
    return {qid: to_plain(ruleset.questions[qid], a) for qid, a in answers.items()
            if qid in ruleset.questions}


def save_screening(store: Store, ruleset: Ruleset, screening: Screening,
                   answers: Mapping[str, Answer], *, client: str, counselor: str, source: str,
                   note: str = "", actor: str = "") -> Record:
    """Save a finished screening (``source``: interview, evaluate or batch) with all its typed
    answers, including any the skip logic ignored; returns the new record."""
    return store.create(client=client, counselor=counselor, source=source,
                        answers=plain_answers(ruleset, answers), result=screening.to_json(),
                        note=note, actor=actor)


def save_screening_once(store: Store, ruleset: Ruleset, screening: Screening,
                        answers: Mapping[str, Answer], *, client: str, counselor: str,
                        source: str, note: str = "", actor: str = "") -> tuple[Record, bool]:
    """As :func:`save_screening`, but a screening already saved (same client, rule set and
    answers: see :meth:`Store.create_once`) is not saved again. Returns (the record, whether
    it is new)."""
    return store.create_once(client=client, counselor=counselor, source=source,
                             answers=plain_answers(ruleset, answers), result=screening.to_json(),
                             note=note, actor=actor)


def rescreen(store: Store, ruleset: Ruleset, record_id: int, changes: Mapping[str, Any], *,
             source: str, note: str = "", actor: str = "",
             show_values: bool = False) -> tuple[Record, tuple[str, ...]]:
    """Amend ``record_id``: its answers with ``changes`` laid over them (a null value removes
    an answer), screened again with ``ruleset`` and saved as a new version.

    Returns the new version and the ids of stored answers dropped because ``ruleset`` no longer
    has those questions. Raises :class:`AnswerError` (naming ``source``) for invalid answers.
    """
    old = store.get(record_id)
    base = old.answers or {}
    dropped = tuple(q for q in base if q not in ruleset.questions)
    merged = {q: v for q, v in base.items() if q in ruleset.questions}
    merged.update(changes)
    typed = coerce_answers(ruleset, merged, source=f"{source} (with record {record_id})",
                           show_values=show_values)
    result = screen(ruleset, typed)
    new = store.amend(record_id, answers=plain_answers(ruleset, typed), result=result.to_json(),
                      note=note, actor=actor)
    return new, dropped


def screening_from_json(data: Mapping[str, Any]) -> Screening:
    """Rebuild a :class:`Screening` from its stable JSON form (``Screening.to_json()``)."""
    rs = data.get("ruleset") or {}
    return Screening(
        ruleset_id=rs.get("id", ""), ruleset_version=rs.get("version", ""),
        ruleset_hash=rs.get("sha256", ""), level=data["level"],
        level_label=data.get("level_label") or data["level"],
        provisional=bool(data.get("provisional")), possible_level=data.get("possible_level"),
        flags=tuple(FlagResult(f["id"], f.get("label", f["id"]), f.get("severity", "note"),
                               tuple(f.get("rules", ()))) for f in data.get("flags", ())),
        fired=tuple(FiredRule(
            r["id"], r.get("title", r["id"]), r.get("reason", ""), r.get("min_level"),
            tuple(r.get("flags", ())), r.get("category", "clinical"), tuple(r.get("sources", ())),
            tuple(Evidence(e["name"], e.get("kind", ""), e.get("value", ""))
                  for e in r.get("evidence", ())),
            tuple(r.get("source_ids", ())), tuple(r.get("source_titles", ())),
            tuple(r.get("levels", ()))) for r in data.get("fired_rules", ())),
        pending=tuple(PendingRule(p["id"], p.get("title", p["id"]), p.get("min_level"),
                                  tuple(p.get("flags", ())), tuple(p.get("deciding_questions", ())))
                      for p in data.get("pending_rules", ())),
        deciding=tuple(data.get("deciding_questions", ())),
        scores=tuple(ScoreResult(s["id"], s.get("title", s["id"]), s.get("score"),
                                 int(s.get("max") or 0), s.get("band"), s.get("band_label"),
                                 tuple(s.get("missing_items", ())))
                     for s in data.get("scores", ())),
        misconceptions=tuple(MisconceptionResult(m["id"], m.get("myth", ""), m.get("facts", ""),
                                                 tuple(m.get("sources", ())),
                                                 tuple(m.get("source_ids", ())),
                                                 tuple(m.get("source_titles", ())),
                                                 tuple(m.get("levels", ())))
                             for m in data.get("misconceptions", ())),
        ignored=tuple(data.get("ignored_answers", ())),
        answers=dict(data.get("answers") or {}),
        disclaimer=data.get("disclaimer", ""),
        not_asked=tuple(data.get("not_asked", ())),
    )
