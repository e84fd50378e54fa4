"""Where iopscreen keeps its files, and how it writes files that hold answers.

Answers are health data: every file holding them is created readable by its owner only (0600),
in folders only the owner can enter (0700), and written atomically (temp file + rename) so a crash
never leaves half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import IO

from .errors import UsageError

ENV_HOME = "IOPSCREEN_HOME"


def data_dir() -> Path:
    """The user data folder: $IOPSCREEN_HOME, else $XDG_DATA_HOME/iopscreen, else
    ~/.local/share/iopscreen. Only its path: the folder is made (0700) by the first write that
    needs it (:func:`private_dir`), so reading commands create nothing."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME])
    if os.environ.get("XDG_DATA_HOME"):
        return Path(os.environ["XDG_DATA_HOME"]) / "iopscreen"
    return Path.home() / ".local" / "share" / "iopscreen"


def private_dir(path: Path) -> Path:
    """Make ``path`` and any missing parents, each one we create 0700 whatever the umask;
    returns ``path``. A folder that already exists is left exactly as it is (never chmodded: it
    may be a shared folder its owner set up on purpose). Raises :class:`OSError`."""
    missing: list[Path] = []
    at = path
    while not at.is_dir():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by another process meanwhile: its own, leave it be
        # mkdir's mode is masked by the umask (0o277 would give 0o500): set it exactly.
        os.chmod(folder, 0o700)
    return path


class AtomicOutput:
    """A text file written under a temporary name beside ``path`` and renamed into place by
    :meth:`commit`; leaving the ``with`` block without committing removes it, so nothing is
    ever half-written. Created with permissions ``mode`` (default 0600: answers are health
    data). Raises :class:`UsageError` when the folder is missing or not writable.

    The temporary name holds this process's id (``.NAME.PID.RANDOM.tmp``): a run killed
    outright (``kill -9``, a power cut) cannot remove its file, so with ``clean_stale`` the
    next one removes those of processes that no longer run, and lists them in ``removed``.
    """

    def __init__(self, path: Path, mode: int = 0o600, clean_stale: bool = False):
        self.path = path
        self.mode = mode
        self.clean_stale = clean_stale
        self.removed: list[Path] = []  # stale temporary files removed on entering
        self._tmp: str | None = None
        self.handle: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        if self.clean_stale:
            self.removed = remove_stale_temporaries(self.path)
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}.",
                                             suffix=".tmp", dir=directory)
        except OSError as exc:
            raise UsageError(f"cannot write '{self.path}': {exc.strerror}",
                             hint="check that the folder exists and you may write to it") from None
        os.fchmod(fd, self.mode)
        self.handle = open(fd, "w", encoding="utf-8", newline="",  # noqa: SIM115
                           buffering=1 << 20)
        return self.handle

    @property
    def temporary(self) -> Path:
        """The temporary file (inside the ``with`` block): another writer (DuckDB's COPY) may
        write it in place, keeping its mode, before :meth:`commit` syncs and renames it."""
        assert self._tmp is not None
        return Path(self._tmp)

    def commit(self) -> None:
        assert self.handle is not None and self._tmp is not None
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self._tmp, self.path)
        self._tmp = None

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            if self.handle is not None:
                self.handle.close()
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of :class:`AtomicOutput` for ``path`` that processes which no
    longer run left beside it (owned by this user); returns them. A file whose process still
    runs, or that cannot be removed, is left alone."""
    directory = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[A-Za-z0-9_]+\.tmp")
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in sorted(names):
        match = pattern.fullmatch(name)
        if match is None or _running(int(match.group(1))):
            continue
        stale = directory / name
        try:
            if stale.lstat().st_uid != os.getuid() or not stale.is_file():
                continue
            stale.unlink()
        except OSError:
            continue
        removed.append(stale)
    return removed


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts: it may be writing)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or no process can have that id
        return False
    except PermissionError:  # another user's
        return True
    return True


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename) with permissions ``mode``.

    A missing folder is created, owner-only like every folder we make (for
    ``-o reports/c1.html``). Raises :class:`UsageError` when it cannot be created or written to.
    """
    try:
        private_dir(path.parent)
    except OSError as exc:
        raise UsageError(f"cannot create the folder of '{path}': {exc.strerror}",
                         hint="check the path and your permissions") from None
    output = AtomicOutput(path, mode)
    with output as handle:
        handle.write(text)
        output.commit()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with owner-only permissions (for answers)."""
    write_text_atomic(path, text, 0o600)
