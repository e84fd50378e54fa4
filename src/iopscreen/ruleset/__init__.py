"""Rule sets: the model, the strict loader, and where the shipped ones live."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .loader import check_ruleset, load_ruleset
from .model import Ruleset

DEFAULT_NAME = "default.yaml"


def shipped_rules_dir() -> Path:
    """The folder of shipped rule sets: package data when installed, ``rules/`` in a checkout."""
    packaged = Path(str(resources.files("iopscreen"))) / "rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "rules"


def default_ruleset_path() -> Path:
    return shipped_rules_dir() / DEFAULT_NAME


def tests_path_for(ruleset_path: Path) -> Path:
    """``NAME.tests.yaml`` beside ``NAME.yaml``."""
    return ruleset_path.with_name(ruleset_path.stem + ".tests.yaml")


__all__ = [
    "Ruleset",
    "check_ruleset",
    "default_ruleset_path",
    "load_ruleset",
    "shipped_rules_dir",
    "tests_path_for",
]
