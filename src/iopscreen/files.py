"""Where iopscreen keeps its files, and how it writes files that hold answers.

Answers are health data: every file holding them is created readable by its owner only (0600),
in folders only the owner can enter (0700), and written atomically (temp file + rename) so a crash
never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV_HOME = "IOPSCREEN_HOME"


def data_dir() -> Path:
    """The user data folder: $IOPSCREEN_HOME, else $XDG_DATA_HOME/iopscreen, else
    ~/.local/share/iopscreen (created 0700 on first use)."""
    if os.environ.get(ENV_HOME):
        base = Path(os.environ[ENV_HOME])
    elif os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ["XDG_DATA_HOME"]) / "iopscreen"
    else:
        base = Path.home() / ".local" / "share" / "iopscreen"
    return private_dir(base)


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` atomically (temp file + rename) with permissions ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with owner-only permissions (for answers)."""
    write_text_atomic(path, text, 0o600)
