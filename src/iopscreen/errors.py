"""One exception tree and one problem record for everything a user can get wrong.

Core code raises these and never prints or exits; ``cli.py`` renders them and picks the exit code.
Messages never contain answer values (they are health data) unless a caller asks for them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem, with a stable code, a kebab-case name and where it is."""

    code: str
    name: str
    message: str
    path: str = ""
    line: int = 0
    col: int = 0
    hint: str = ""
    level: str = ERROR

    def location(self) -> str:
        if not self.path:
            return ""
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path

    def render(self) -> str:
        loc = self.location()
        head = f"{loc}: " if loc else ""
        text = f"{head}{self.level} {self.code} {self.name}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.col, self.code)


class IopscreenError(Exception):
    """Root of every error the program reports to a user."""

    exit_code = 70

    def __init__(self, message: str, *, hint: str = "", diagnostics: Sequence[Diagnostic] = ()):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)

    def render(self) -> str:
        if self.diagnostics:
            return "\n".join(d.render() for d in self.diagnostics)
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UsageError(IopscreenError):
    """The command was called wrongly (bad option, missing file, wrong terminal)."""

    exit_code = 2


class AnswerError(IopscreenError):
    """An answer or a data row is invalid."""

    exit_code = 1


class RulesetError(IopscreenError):
    """A rule set failed to load or validate; ``diagnostics`` holds every problem."""

    exit_code = 3


class ExpressionError(RulesetError):
    """A condition could not be parsed or checked."""


class Interrupted(IopscreenError):
    exit_code = 130


@dataclass
class Problems:
    """Collects diagnostics so a whole file is reported at once."""

    path: str = ""
    items: list[Diagnostic] = field(default_factory=list)

    def add(
        self,
        code: str,
        name: str,
        message: str,
        mark: tuple[int, int] | None = None,
        hint: str = "",
        level: str = ERROR,
    ) -> None:
        line, col = mark if mark else (0, 0)
        self.items.append(Diagnostic(code, name, message, self.path, line, col, hint, level))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.level == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.level == WARNING]

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=Diagnostic.sort_key)

    def raise_if_errors(self) -> None:
        if self.errors:
            count = len(self.errors)
            raise RulesetError(
                f"{count} problem{'s' if count != 1 else ''} in {self.path or 'rule set'}",
                diagnostics=self.sorted(),
            )


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return a hint naming the closest candidate, or '' when nothing is close."""
    options = list(candidates)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close and difflib.SequenceMatcher(None, word, close[0]).ratio() >= 0.8:
        return f"did you mean '{close[0]}'?"  # a near spelling: 'mood_bnd' -> 'mood_band'
    # 'phq9_total' for the score 'phq9': a defined name plus a suffix beats a loose match.
    stems = [c for c in options if word.startswith(c + "_") or word.startswith(c + ".")]
    if stems:
        return f"did you mean '{max(stems, key=len)}'?"
    return f"did you mean '{close[0]}'?" if close else ""
