"""The block evaluator (iopscreen.lanes) against the row-at-a-time engine path.

Every block is screened twice, once with the rule set's lanes and once row by row (the path
the engine's own tests cover), and the two must agree on every byte of output, every problem,
every count and every id, in all three formats.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iopscreen import batch as B
from iopscreen import lanes
from iopscreen.batch_input import plan_layout
from iopscreen.ruleset import default_ruleset_path, load_ruleset
from iopscreen.ruleset.model import Question, Ruleset

DATA = Path(__file__).parent / "data"
LANES_YAML = DATA / "lanes.yaml"


def _many(tmp: Path) -> Path:
    """lanes.yaml with 70 more yes/no questions and 40 more rules: more than 64 rules and
    questions, so a row's bits take more than one word."""
    text = LANES_YAML.read_text(encoding="utf-8")
    questions = "".join(f"      - id: extra_{i}\n        text: Extra {i}?\n        type: yesno\n"
                        "        required: false\n" for i in range(70))
    text = text.replace("  - id: context\n    title: Context\n    questions:\n",
                        "  - id: context\n    title: Context\n    questions:\n" + questions)
    rules = "".join(f'  - id: extra_rule_{i}\n    title: Extra {i}\n    when: "extra_{i} and '
                    f'drinks >= {i}"\n    min_level: {("low", "mid", "high")[i % 3]}\n'
                    f'    reason: Test.\n    sources: [team-policy]\n' for i in range(40))
    text = text.replace("\nmisconceptions:", rules + "\nmisconceptions:")
    path = tmp / "many.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rulesets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ruleset]:
    tmp = tmp_path_factory.mktemp("lanes")
    return {"lanes": load_ruleset(LANES_YAML), "default": load_ruleset(default_ruleset_path()),
            "minimal": load_ruleset(DATA / "minimal.yaml"), "many": load_ruleset(_many(tmp))}


def cells_for(q: Question) -> list[str]:
    """Texts a messy export holds for ``q``: valid forms, blanks, declines, bad values."""
    common = ["", "", "declined", "Declined", " ", "??"]
    if q.type == "yesno":
        return common + ["yes", "no", "Yes", "NO", "y", "N", "true", "False", "1", "0", " yes ",
                         "yes", "no", "no", "2"]
    if q.type == "choice":
        out = [str(c.code) for c in q.choices] * 3
        out += [c.label for c in q.choices] + [c.label.upper() for c in q.choices]
        return common + out + ["9", "-1"]
    if q.type == "integer":
        return common + ["0", "1", "2", "3", "5", "7", "8", "20", "30", "99", "100", "101",
                         "126", "127", "128", "500", "1000", "1001", "12.0", "+3", "1e2", "-1"]
    if q.type == "multi":
        codes = [str(c.code) for c in q.choices]
        return common + ["none"] + codes + ["|".join(codes), "|".join(reversed(codes)),
                                            codes[0] + "|bogus", q.choices[0].label]
    return common + ["hello", "a, b", 'she said "no"', "NA"]


ID_CELLS = ["A1", "A2", "A3", "B-7", "", " ", "x,y", 'q"t', "A1"]


@st.composite
def exports(draw: Any, ruleset: Ruleset) -> tuple[list[str], list[list[str]]]:
    questions = list(ruleset.questions.values())
    order = draw(st.permutations(range(len(questions))))
    with_id = draw(st.booleans()) or draw(st.booleans())  # mostly with an id column
    header = ["id"] * with_id + [questions[i].id for i in order]
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["row"] * 12 + ["blank", "short", "long"]))
        if kind == "blank":
            rows.append([""] * len(header))
            continue
        row = [draw(st.sampled_from(ID_CELLS))] * with_id
        row += [draw(st.sampled_from(cells_for(questions[i]))) for i in order]
        if kind == "short" and len(row) > 1:
            row = row[:draw(st.integers(1, len(row) - 1))]
        elif kind == "long":
            row.append("extra")
        rows.append(row)
    return header, rows


def both_ways(ruleset: Ruleset, header: list[str], rows: list[list[str]],
              fmt: str) -> tuple[B.Chunk, B.Chunk]:
    layout = plan_layout(header, ruleset, "t.csv", id_column=None, ignore_extra=False)
    screener = B.RowScreener(ruleset, layout, B.BatchOptions(fmt=fmt))
    screener.id_buckets = 3
    assert screener.lanes is not None
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    text = buffer.getvalue()
    B._worker_start(screener, ",", in_process=True)
    with_lanes = B._worker_screen(text, 1, 1)
    screener.lanes = None
    row_by_row = B._worker_screen(text, 1, 1)
    return with_lanes, row_by_row


def assert_same(a: B.Chunk, b: B.Chunk) -> None:
    assert a.text == b.text
    assert a.problems == b.problems
    assert a.tally == b.tally
    assert a.ids == b.ids
    assert (a.count, a.open_end, a.last_line) == (b.count, b.open_end, b.last_line)


@pytest.mark.parametrize("name", ["lanes", "default", "minimal", "many"])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_lanes_equal_row_by_row(rulesets: dict[str, Ruleset], name: str, data: Any) -> None:
    ruleset = rulesets[name]
    header, rows = data.draw(exports(ruleset))
    fmt = data.draw(st.sampled_from(["csv", "jsonl", "json"]))
    assert_same(*both_ways(ruleset, header, rows, fmt))


def clean_rows(ruleset: Ruleset, n: int) -> tuple[list[str], list[list[str]]]:
    """``n`` rows of valid answers to every question (so skip logic drops none)."""
    import random
    rnd = random.Random(7)
    header = ["id", *ruleset.questions]
    rows = []
    for i in range(n):
        row = [f"P{i}"]
        for q in ruleset.questions.values():
            if q.type == "yesno":
                row.append(rnd.choice(["yes", "no", "", "declined"]))
            elif q.type == "choice":
                row.append(rnd.choice([str(c.code) for c in q.choices]))  # none to prorate
            elif q.type == "integer":
                row.append(str(rnd.randint(q.min or 0, min(q.max or 50, 150))))
            elif q.type == "multi":
                row.append(rnd.choice(["none", str(q.choices[0].code), ""]))
            else:
                row.append(rnd.choice(["", "text"]))
        rows.append(row)
    return header, rows


def test_clean_rows_are_screened_in_lanes_not_one_by_one(
        rulesets: dict[str, Ruleset], monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows without problems never take the row-at-a-time path (else this would test
    nothing), and give what it gives."""
    ruleset = rulesets["lanes"]
    header, rows = clean_rows(ruleset, 300)
    # answers skip logic would drop are the row-at-a-time path's to report: blank them
    for row in rows:
        answers = dict(zip(header, row))
        if answers["danger"] != "yes":
            row[header.index("danger_plan")] = ""
        if answers["trauma"] != "yes":
            row[header.index("tr_1")] = row[header.index("tr_2")] = ""
    calls = []
    real = B.RowScreener.screen

    def counting(self: B.RowScreener, records: Any, *args: Any) -> B.Chunk:
        records = list(records)
        calls.append(len(records))
        return real(self, records, *args)

    monkeypatch.setattr(B.RowScreener, "screen", counting)
    with_lanes, row_by_row = both_ways(ruleset, header, rows, "csv")
    assert calls == [300]  # only the row-by-row run
    assert_same(with_lanes, row_by_row)
    assert with_lanes.tally.rows == 300
    assert with_lanes.tally.provisional > 0 and with_lanes.tally.crisis > 0


@pytest.mark.parametrize("when", [
    "drinks / 2 > 3",  # division
    "drinks * 10 > 50",  # a product beyond the lanes' range
    "-drinks < -3",  # a negative number
    "days + 1 > 3",  # arithmetic on a number that can pass 127
])
def test_rule_sets_the_lanes_do_not_do_go_row_by_row(tmp_path: Path, when: str) -> None:
    text = LANES_YAML.read_text(encoding="utf-8").replace('when: "days > 30"',
                                                         f'when: "{when}"')
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    ruleset = load_ruleset(path)
    header = ["id", *ruleset.questions]
    layout = plan_layout(header, ruleset, "t.csv", id_column=None, ignore_extra=False)
    screener = B.RowScreener(ruleset, layout, B.BatchOptions())
    assert screener.lanes is None
    with pytest.raises(lanes.Unsupported):
        lanes.Plan(ruleset, {q: i for i, q in enumerate(ruleset.questions)})
    # ... and batch still screens (row by row)
    B._worker_start(screener, ",", in_process=True)
    chunk = B._worker_screen("P1" + ",yes" * 2 + "," * (len(header) - 3) + "\n", 1, 1)
    assert chunk.tally.rows == 1


def test_lane_comparisons_match_python_on_every_byte_value() -> None:
    """The carry-free comparisons: every pair of values 0..127 in one block."""
    xs = [x for x in range(128) for _ in range(128)]
    ys = [y for _ in range(128) for y in range(128)]
    n = len(xs)
    block = lanes.Block(n, [])
    x, y = int.from_bytes(bytes(xs), "little"), int.from_bytes(bytes(ys), "little")
    for got, want in [(block.ge(x, y), [a >= b for a, b in zip(xs, ys)]),
                      (lanes._gt(block, x, y), [a > b for a, b in zip(xs, ys)]),
                      (block.eq(x, y), [a == b for a, b in zip(xs, ys)])]:
        assert list(got.to_bytes(n, "little")) == [int(w) for w in want]
    k = block.one * 128  # comparing with 128 (a literal above every lane value)
    assert block.ge(x, k) == 0
