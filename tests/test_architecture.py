"""Imports point inward: the core never imports the terminal libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "iopscreen"
ADAPTERS = {"cli.py", "cli_batch.py", "cli_records.py", "cli_export.py", "console.py",
            "prompter.py", "session.py"}
BANNED = {"typer", "rich", "questionary", "prompt_toolkit", "click"}
CORE = sorted(p for p in SRC.rglob("*.py") if p.name not in ADAPTERS)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level and node.module:
            names.add("." + node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(SRC)))
def test_core_modules_do_not_import_terminal_libraries(path: Path) -> None:
    names = imported(path)
    assert not names & BANNED
    assert not names & {"." + a[:-3] for a in ADAPTERS}


def test_only_the_prompter_imports_prompt_toolkit() -> None:
    users = [p.name for p in SRC.rglob("*.py") if "prompt_toolkit" in imported(p)]
    assert users == ["prompter.py"]
    assert not [p.name for p in SRC.rglob("*.py") if "questionary" in imported(p)]
