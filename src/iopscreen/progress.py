"""A client's screenings over time: score series per instrument, a text sparkline, and the
change since last time judged against the rule set's minimal important difference.

Pure: takes saved records (oldest first) and a rule set, returns plain values; no terminal code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .ruleset.model import Ruleset
from .store import Record

SPARK = "▁▂▃▄▅▆▇█"
UNKNOWN_MARK = "·"


@dataclass(frozen=True)
class Series:
    """One instrument's scores, one per screening (None: unknown or not in that rule set)."""

    id: str
    short: str  # "PHQ-9" from "PHQ-9 depression scale (...)"
    max_score: int
    values: tuple[float | None, ...]
    minimal_change: float | None


@dataclass(frozen=True)
class Change:
    """An instrument's change between the last two screenings."""

    id: str
    short: str
    before: float | None
    after: float | None
    minimal_change: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def meaningful(self) -> bool | None:
        """Whether the change reaches the minimal important difference (None: cannot say)."""
        if self.delta is None or self.minimal_change is None:
            return None
        return abs(self.delta) >= self.minimal_change

    def describe(self) -> str:
        """One line, e.g. 'PHQ-9: 14 -> 8, down 6: at least the minimal important difference
        (5 points), a meaningful drop'."""
        head = f"{self.short}: {_num(self.before)} -> {_num(self.after)}"
        delta = self.delta
        if delta is None:
            when = "last time" if self.before is None else "this time"
            return f"{head}, not comparable (the score was unknown {when})"
        if delta == 0:
            move = "no change"
        else:
            move = f"{'down' if delta < 0 else 'up'} {_num(abs(delta))}"
        if self.minimal_change is None:
            return f"{head}, {move} (the rule set gives no minimal important difference)"
        mid = f"the minimal important difference ({_num(self.minimal_change)} points)"
        if self.meaningful:
            return f"{head}, {move}: at least {mid}, a meaningful {'drop' if delta < 0 else 'rise'}"
        return f"{head}, {move}: less than {mid}"


@dataclass(frozen=True)
class Progress:
    client: str
    records: tuple[Record, ...]  # oldest screening first
    series: tuple[Series, ...]
    changes: tuple[Change, ...]  # empty with fewer than two screenings

    @property
    def level_change(self) -> tuple[str, str] | None:
        """(previous level label, latest level label) when there are two screenings."""
        if len(self.records) < 2:
            return None
        return self.records[-2].level_label, self.records[-1].level_label


def short_title(title: str, fallback: str) -> str:
    """The instrument's name without its description: the title's first word."""
    words = title.split()
    return words[0] if words else fallback


def client_progress(client: str, records: Sequence[Record], ruleset: Ruleset) -> Progress:
    """Series and changes for ``records`` (one client's, oldest first). Instruments come in the
    rule set's order, then any others the records hold; ``minimal_change`` comes from
    ``ruleset`` (matched by instrument id)."""
    scores = [{s["id"]: s for s in (r.result or {}).get("scores", [])} for r in records]
    known = {inst.id: inst for inst in ruleset.instruments}
    order = [i.id for i in ruleset.instruments if any(i.id in s for s in scores)]
    for per_record in scores:
        order.extend(i for i in per_record if i not in order)
    series = []
    for iid in order:
        seen: list[dict[str, Any]] = [s[iid] for s in scores if iid in s]
        title = known[iid].title if iid in known else str(seen[-1].get("title") or iid)
        maximum = known[iid].max_score if iid in known else int(seen[-1].get("max") or 0)
        series.append(Series(
            iid, short_title(title, iid), maximum,
            tuple(_score(s.get(iid)) for s in scores),
            known[iid].minimal_change if iid in known else None))
    changes: tuple[Change, ...] = ()
    if len(records) >= 2:
        changes = tuple(Change(s.id, s.short, s.values[-2], s.values[-1], s.minimal_change)
                        for s in series)
    return Progress(client, tuple(records), tuple(series), changes)


def sparkline(values: Sequence[float | None], maximum: float) -> str:
    """One block per value, its height the value's share of ``maximum`` (``·`` for unknown)."""
    marks = []
    for value in values:
        if value is None:
            marks.append(UNKNOWN_MARK)
            continue
        share = min(max(value / maximum, 0.0), 1.0) if maximum > 0 else 0.0
        marks.append(SPARK[round(share * (len(SPARK) - 1))])
    return "".join(marks)


def _score(entry: dict[str, Any] | None) -> float | None:
    if not entry or entry.get("score") is None:
        return None
    return float(entry["score"])


def _num(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"
