"""Shared by the report tests: the golden folder, and screening records rebuilt from real rule sets.

A golden record (``tests/golden/NAME.record.json``) is the input of the report tests. Its answers
and metadata are written by hand; its ``ruleset`` and ``result`` are a real screening of those
answers, which :func:`rebuild` recomputes (the tests check they are still current).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from iopscreen.answers import coerce_answers
from iopscreen.engine import screen
from iopscreen.ruleset import load_ruleset
from iopscreen.ruleset.model import Ruleset

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GOLDEN = TESTS / "golden"
UPDATE_ENV = "IOPSCREEN_UPDATE_GOLDEN"
# The checkout's rule sets (not an installed copy), by rule-set id.
RULESET_FILES = {
    "minimal-test": TESTS / "data" / "minimal.yaml",
    "iop-adult": ROOT / "rules" / "default.yaml",
}


def updating() -> bool:
    """True when the golden files are to be rewritten for review (``IOPSCREEN_UPDATE_GOLDEN=1``)."""
    return os.environ.get(UPDATE_ENV, "") not in ("", "0")


@lru_cache(maxsize=None)
def ruleset_for(ruleset_id: str) -> Ruleset:
    return load_ruleset(RULESET_FILES[ruleset_id])


def rebuild(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its ``ruleset`` and ``result`` recomputed from its answers."""
    ruleset = ruleset_for(record["ruleset"]["id"])
    result = screen(ruleset, coerce_answers(ruleset, record["answers"])).to_json()
    out = dict(record)
    out["ruleset"] = result["ruleset"]
    out["result"] = result
    return out


def record_names() -> list[str]:
    return sorted(p.name[: -len(".record.json")] for p in GOLDEN.glob("*.record.json"))


def load_record(name: str) -> dict[str, Any]:
    """The golden record ``name``; in update mode, first rebuilt and rewritten."""
    path = GOLDEN / f"{name}.record.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    if updating():
        record = rebuild(record)
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def check_golden(path: Path, actual: str) -> None:
    """Compare ``actual`` with the golden file byte for byte (or rewrite it in update mode)."""
    if updating():
        path.write_bytes(actual.encode("utf-8"))
        return
    assert path.exists(), f"{path.name} is missing: run the tests with {UPDATE_ENV}=1 to write it"
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        import difflib

        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            f"{path.name} (golden)", f"{path.name} (now)", n=2))
        raise AssertionError(f"{path.name} differs from the output; if the change is intended, "
                             f"rerun with {UPDATE_ENV}=1 and review the diff.\n{diff[:6000]}")
