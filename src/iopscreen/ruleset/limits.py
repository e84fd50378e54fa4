"""How big a rule set may be, and how a user raises a limit.

A rule set is trusted text, but a typo or a generated file can still be huge or deeply nested,
and PyYAML and Python's compiler fail badly on such input (RecursionError, MemoryError, minutes
of work). The loader checks each limit as it reads and reports a one-line problem that names the
limit and the environment variable that raises it. The defaults are many times what the shipped
rule set needs (63 KB, 2,763 YAML nodes, 8 levels deep, conditions of at most 343 characters,
68 terms and 7 levels).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Mapping

from ..errors import UsageError
from ..expr import ConditionLimits

# The YAML composer and our builder recurse once per level; past this Python's own recursion
# limit would be reached, so a raised depth limit is capped here.
MAX_YAML_DEPTH = 200


@dataclass(frozen=True)
class Limits:
    """Every limit the loader checks (see docs/ruleset-format.md, *Limits*)."""

    bytes: int = 1_000_000  # size of the file
    depth: int = 32  # nesting of YAML mappings and lists
    nodes: int = 100_000  # YAML values, keys, mappings and lists
    condition_chars: int = 5_000
    condition_terms: int = 1_000
    condition_depth: int = 32
    literal: int = 10**15  # largest magnitude of a number, in conditions and YAML values

    @property
    def condition(self) -> ConditionLimits:
        return ConditionLimits(self.condition_chars, self.condition_terms, self.condition_depth,
                               self.literal)

    def raise_hint(self, limit: str) -> str:
        """The hint for a problem at ``limit``: how to raise it."""
        return f"raise the limit with {ENV_NAMES[limit]}=N (now {getattr(self, limit)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, with any ``IOPSCREEN_MAX_*`` variable of ``environ`` (default: the
        process environment) applied. Raises :class:`UsageError` for a value that is not a
        whole number of at least 1 (or a YAML depth above the cap)."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = env.get(ENV_NAMES[f.name], "").strip()
            if not raw:
                continue
            top = MAX_YAML_DEPTH if f.name == "depth" else None
            try:
                value = int(raw.replace("_", ""))
            except ValueError:
                value = 0
            if value < 1 or (top is not None and value > top):
                raise UsageError(f"{ENV_NAMES[f.name]}={raw[:40]} is not a valid limit",
                                 hint="give a whole number from 1" + (f" to {top}" if top
                                                                       else ""))
            values[f.name] = value
        return cls(**values)


ENV_NAMES = {
    "bytes": "IOPSCREEN_MAX_RULESET_BYTES",
    "depth": "IOPSCREEN_MAX_RULESET_DEPTH",
    "nodes": "IOPSCREEN_MAX_RULESET_NODES",
    "condition_chars": "IOPSCREEN_MAX_CONDITION_CHARS",
    "condition_terms": "IOPSCREEN_MAX_CONDITION_TERMS",
    "condition_depth": "IOPSCREEN_MAX_CONDITION_DEPTH",
    "literal": "IOPSCREEN_MAX_NUMBER",
}
