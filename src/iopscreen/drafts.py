"""Interview drafts: saved after every answer, so a crash or a closed terminal loses at most the
question on screen. One JSON file per draft, owner-only, under ``<data dir>/drafts``."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import UsageError
from .files import data_dir, private_dir, write_private

FORMAT = "iopscreen.draft"


@dataclass(frozen=True)
class Draft:
    id: str
    path: Path
    created: str
    updated: str
    client: str
    counselor: str
    ruleset_id: str
    ruleset_version: str
    ruleset_hash: str
    ruleset_path: str
    state: dict[str, Any]

    @property
    def answered(self) -> int:
        return len(self.state.get("answers", {})) + len(self.state.get("skipped", []))


def drafts_dir() -> Path:
    """Where drafts live (made, 0700, when the first draft is saved)."""
    return data_dir() / "drafts"


def new_draft_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def save_draft(draft_id: str, *, now: datetime, created: str, client: str, counselor: str,
               ruleset: Any, state: dict[str, Any]) -> Path:
    """Write (or replace) a draft atomically; returns its path."""
    path = private_dir(drafts_dir()) / f"{draft_id}.json"
    record = {
        "format": FORMAT, "id": draft_id, "created": created,
        "updated": now.isoformat(timespec="seconds"), "client": client, "counselor": counselor,
        "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": ruleset.content_hash,
                    "path": str(ruleset.path)},
        "state": state,
    }
    write_private(path, json.dumps(record, indent=1, ensure_ascii=False))
    return path


def _read(path: Path) -> Draft | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rs = data["ruleset"]
        return Draft(data["id"], path, data["created"], data["updated"], data.get("client", ""),
                     data.get("counselor", ""), rs["id"], rs["version"], rs["sha256"],
                     rs.get("path", ""), data["state"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_drafts() -> list[Draft]:
    """Saved drafts, most recently updated first (unreadable files are skipped)."""
    found = [_read(p) for p in drafts_dir().glob("*.json")]
    return sorted((d for d in found if d is not None), key=lambda d: d.updated, reverse=True)


def load_draft(draft_id: str) -> Draft:
    drafts = list_drafts()
    matches = [d for d in drafts if d.id == draft_id or d.id.startswith(draft_id)]
    if len(matches) != 1:
        known = ", ".join(d.id for d in drafts[:5]) or "none saved"
        raise UsageError(
            f"no draft '{draft_id}'" if not matches else f"'{draft_id}' matches several drafts",
            hint=f"run 'iopscreen screen --resume' to pick one (drafts: {known})")
    return matches[0]


def delete_draft(draft_id: str) -> None:
    (drafts_dir() / f"{draft_id}.json").unlink(missing_ok=True)
