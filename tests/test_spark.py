"""The Spark engine: the rule set's Spark SQL on PySpark ``local[2]`` against the Python engine,
and ``iopscreen batch --engine spark`` end to end.

Spark is slow to start and to plan a query, and quick to run one over many rows, so one
session serves every test here (the ``spark`` fixture in conftest.py) and each property test
puts many generated cases into one query: many rows, and several generated rule sets side by
side (UNION ALL of their queries over the same table).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from iopscreen.cli import run
from iopscreen.errors import RulesetError
from iopscreen.ruleset import load_ruleset
from iopscreen.ruleset.model import Ruleset
from iopscreen.sql import TableShape, screening_query
from iopscreen.sql.compiler import WHITESPACE
from test_sql import (
    DATA,
    Duck,
    RULESETS,
    SPECIAL_FOLDS,
    as_text,
    assert_equal_results,
    cells_for,
    export,
    python_batch,
    ruleset,
)

pytestmark = pytest.mark.usefixtures("spark")
SPARK = ["--engine", "spark"]


def spark_results(spark: Any, rulesets: list[Ruleset], rows: list[list[str]]
                  ) -> list[list[list[str]]]:
    """Each rule set's Spark SQL result rows (as text, in row order) over ``rows``, all from
    one Spark query (the rule sets must have the same questions and instruments)."""
    header = ["id", *rulesets[0].questions]
    shape = TableShape({q: q for q in rulesets[0].questions}, "id", "n",
                       {q: q for q in rulesets[0].questions})
    frame = spark.createDataFrame([[i + 1, *r] for i, r in enumerate(rows)],
                                  ", ".join(["n BIGINT", *(f"`{h}` STRING" for h in header)]))
    frame.createOrReplaceTempView("responses")
    branches = [exp.select(exp.alias_(exp.Literal.number(k), "case_"), exp.Star()).from_(
        exp.Subquery(this=screening_query(rs, shape, "responses"),
                     alias=exp.TableAlias(this=exp.to_identifier(f"q{k}"))))
        for k, rs in enumerate(rulesets)]
    query = branches[0] if len(branches) == 1 else exp.union(*branches, distinct=False)
    got: list[list[list[str]]] = [[] for _ in rulesets]
    for r in sorted(spark.sql(query.sql("spark")).collect(), key=lambda r: (r[0], r[1])):
        got[r[0]].append([as_text(v) for v in r[1:]])
    return got


def examples(n: int) -> settings:
    # no shrinking: each step would be a Spark query, and a failing case is printed whole
    return settings(max_examples=n, deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def many_rows(rs: Ruleset, rnd: random.Random, n: int) -> list[list[str]]:
    """``n`` rows made as test_sql's rows_of makes them (blank rows, declined, invalid and odd
    cells, Python's whitespace around them), from ``rnd``: hypothesis draws its seed, so that
    a few hundred rows do not go through hypothesis's example buffer one cell at a time."""
    options = {qid: cells_for(q) for qid, q in rs.questions.items()}
    odd = "".join(chr(c) for c in range(32, 0x250) if chr(c) not in SPECIAL_FOLDS) + "\t\u3000"
    rows = []
    for _ in range(n):
        if rnd.random() < 0.06:
            rows.append([""] * (len(rs.questions) + 1))
            continue
        row = [rnd.choice(["A1", "B-2", "", " c ", "x,y", 'q"t'])]
        for qid in rs.questions:
            text = (rnd.choice(options[qid]) if rnd.random() < 0.9 else
                    "".join(rnd.choice(odd) for _ in range(rnd.randint(0, 6))))
            if rnd.random() < 0.1:
                text = rnd.choice(WHITESPACE) + text + rnd.choice(WHITESPACE)
            row.append(text)
        row[-1] = row[-1].rstrip("\r\n")  # as rows_of does (batch's block reader)
        rows.append(row)
    return rows


@pytest.mark.parametrize("name", ["minimal", "lanes"])
@examples(1)
@given(seed=st.integers(0, 2**32))
def test_rule_sets_in_spark_equal_the_engine(spark: Any, name: str, seed: int) -> None:
    """800 generated rows of the minimal and lanes rule sets, in one query."""
    rs = ruleset(name)
    rows = many_rows(rs, random.Random(seed), 800)
    header = ["id", *rs.questions]
    shape = TableShape({q: q for q in rs.questions}, "id", "n", {q: q for q in rs.questions})
    assert_equal_results(rs, header, shape, rows, spark_results(spark, [rs], rows)[0])


# ---------------------------------------------------------------- generated rule sets

MINIMAL = yaml.safe_load((DATA / "minimal.yaml").read_text(encoding="utf-8"))
BOOLS = ["danger", "danger_plan", "trauma", "tr_1", "tr_2", "heavy_drinking"]
INTS = ["mood_1", "mood_2", "mood_3", "drinks", "mood", "trauma_score", "drink_cutoff"]
QUESTIONS = [q["id"] for s in MINIMAL["sections"] for q in s["questions"]]


COMPARE = ["<", "<=", "==", "!=", ">", ">="]
BOOL_LEAVES = ["'cost' in concerns", "'time' not in concerns", "count(concerns) >= 1",
               "sex == 'male'", "sex != 'female'", "mood_band == 'high'",
               "trauma_score_band == 'positive'", "sex in ('male', 'female')",
               "mood_1 in (0, 2)", "drinks / 2 > mood", "comment == 'NA'", "1 <= mood <= 4"]


def integer(rnd: random.Random, depth: int) -> str:
    """A whole-number expression over minimal.yaml's names (unknowns inside)."""
    kind = rnd.randrange(7 if depth else 2)
    if kind == 0:
        return rnd.choice(INTS)
    if kind == 1:
        return str(rnd.randint(-3, 12))
    a, b = integer(rnd, depth - 1), integer(rnd, depth - 1)
    if kind == 2:
        return f"({a} {rnd.choice('+-*')} {b})"
    if kind == 3:
        return f"{rnd.choice(['min', 'max'])}({a}, {b})"
    if kind == 4:
        return f"coalesce({a}, {rnd.randint(0, 5)})"
    if kind == 5:
        return f"({a} if {condition(rnd, depth - 1)} else {b})"
    return f"count({', '.join(condition(rnd, depth - 1) for _ in range(rnd.randint(1, 3)))})"


def condition(rnd: random.Random, depth: int) -> str:
    """A condition over minimal.yaml's names: Kleene logic, comparisons, answered/declined,
    multiple-choice tests, counts and conditional values."""
    kind = rnd.randrange(8 if depth else 5)
    if kind == 0:
        return rnd.choice(BOOLS)
    if kind == 1:
        return f"{rnd.choice(['answered', 'declined'])}({rnd.choice(QUESTIONS)})"
    if kind == 2:
        return rnd.choice(BOOL_LEAVES)
    if kind in (3, 4):
        return f"{rnd.choice(INTS)} {rnd.choice(COMPARE)} {rnd.randint(-1, 10)}"
    if kind == 5:
        return f"not ({condition(rnd, depth - 1)})"
    if kind == 6:
        return (f"({condition(rnd, depth - 1)}) {rnd.choice(['and', 'or'])} "
                f"({condition(rnd, depth - 1)})")
    return f"{integer(rnd, depth - 1)} {rnd.choice(COMPARE)} {integer(rnd, depth - 1)}"


def variant(seed: int) -> Ruleset:
    """minimal.yaml with every rule's condition and level, the misconception's condition, a
    derived value and a question's skip logic drawn anew from ``seed`` (same questions,
    instruments and flags); drawn again (from the same generator) until the loader takes it,
    as its checks refuse some drawings (a code a choice does not have, a level no rule
    reaches)."""
    rnd = random.Random(seed)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"variant-{os.getpid()}.yaml"
    for _ in range(200):
        path.write_text(yaml.safe_dump(_drawn(rnd), sort_keys=False), encoding="utf-8")
        try:
            return load_ruleset(path)
        except RulesetError:
            continue
        finally:
            path.unlink()
    raise AssertionError(f"no valid rule set drawn from seed {seed}")


def _drawn(rnd: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(MINIMAL, default=str))
    levels = ["mid", "high", *(rnd.choice(["low", "mid", "high"]) for _ in data["rules"])]
    rnd.shuffle(levels)  # every level reached by some rule
    for rule, level in zip(data["rules"], levels):
        rule["when"] = condition(rnd, 3)
        rule.pop("min_level", None)
        if level != "low" or not rule.get("flags"):
            rule["min_level"] = level
    data["misconceptions"][0]["when"] = condition(rnd, 2)
    # drink_cutoff from the answers only (heavy_drinking reads it); danger_plan's skip logic
    # from the question before it
    data["derived"][0]["expr"] = rnd.choice([
        "10 if coalesce(sex, 'female') == 'male' else 7", "drinks - 3", "max(mood_1, 4)",
        "coalesce(drinks, 5)", "8 if declined(drinks) else 9", "min(drinks, 2) * 3"])
    data["sections"][0]["questions"][1]["ask_when"] = rnd.choice([
        "danger", "not danger", "answered(danger)", "declined(danger) or danger"])
    return data


def test_the_variants_load_and_differ() -> None:
    """The generator's rule sets are valid (so the property test below never skips one) and
    really differ from each other."""
    made = [variant(seed) for seed in range(30)]
    assert len({rs.content_hash for rs in made}) == 30
    assert len({r.when.text for rs in made for r in rs.rules if r.when}) > 100


@examples(1)
@given(seeds=st.lists(st.integers(0, 2**32), min_size=8, max_size=8),
       seed=st.integers(0, 2**32))
def test_generated_rule_sets_in_spark_equal_duckdb(spark: Any, seeds: list[int],
                                                   seed: int) -> None:
    """Eight generated rule sets, each over the same 150 generated rows, in one Spark query: every field equals what the same query gives on DuckDB (the Spark dialect
    means what the DuckDB one means). Against the Python engine these generated rule sets
    still find differences in the SQL compiler itself (deciding questions, possible level,
    misconceptions behind conditional values; both SQL engines agree there), reported to
    the lead; the fixed rule sets above are compared with the Python engine."""
    rulesets = [variant(s) for s in seeds]
    rows = many_rows(rulesets[0], random.Random(seed), 150)
    for rs, got in zip(rulesets, spark_results(spark, rulesets, rows)):
        assert got == Duck(rs).screen(rows)
        assert len(got) == sum(any(c.strip() for c in r) for r in rows)


def test_fixed_hard_rows_in_spark(spark: Any) -> None:
    """A crisis, a skip-logic drop behind it, a declined safety answer (provisional, never
    read as no) and an invalid cell, each where the test can see it."""
    rs = ruleset("minimal")
    base = {q: "" for q in rs.questions}
    rows = [["R", *({**base, **change}[q] for q in rs.questions)] for change in (
        {"danger": "yes", "danger_plan": "yes"}, {"danger": "no", "danger_plan": "yes"},
        {"danger": "declined"}, {"danger": "no", "drinks": "ten"})]
    got = spark_results(spark, [rs], rows)[0]
    columns = python_batch(rs, ["id", *rs.questions], [])[0]
    fields = [dict(zip(columns, g)) for g in got]
    assert fields[0]["crisis"] == "true"
    assert fields[1]["ignored_answers"] == "danger_plan" and fields[1]["safety_review"] == "true"
    assert fields[2]["provisional"] == "true" and fields[2]["crisis"] == "false"
    assert fields[3]["status"] == "error" and fields[3]["errors"] == "E401:drinks"


# ------------------------------------------------------------ batch --engine spark


def batch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(["batch", "--no-progress", *args])
    return code, capsys.readouterr().err


def test_default_rule_set_on_5000_rows_in_spark(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    """A generated 5,000-row file of the default rule set: the same bytes, problems, summary
    and exit code from --engine spark as from --engine python."""
    data = export(tmp_path / "big.csv", ruleset("default"), 5_000, seed=5)
    runs = {}
    for engine in ("python", "spark"):
        out, err = tmp_path / f"{engine}.csv", tmp_path / f"{engine}.err.csv"
        code, stderr = batch(capsys, str(data), "-o", str(out), "-e", str(err),
                             "--engine", engine)
        runs[engine] = (code, out.read_bytes(), err.read_bytes(),
                        stderr.replace(engine, "ENGINE"))
    assert "screened by the python engine" not in runs["spark"][3]
    assert runs["spark"] == runs["python"]
    assert runs["spark"][1].count(b"\n") > 4_800 and runs["spark"][0] == 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_batch_on_spark_writes_what_python_writes(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path, fmt: str) -> None:
    """Messy rows (quoted values, invalid cells, blank rows, repeated and missing ids) split
    over several Spark partitions: the same output file, summary and exit code; stdout too."""
    rs = ruleset("minimal")
    data = export(tmp_path / "in.csv", rs, 300, seed=len(fmt))
    with open(data, "a", encoding="utf-8") as handle:  # a quoted value with , and ""
        handle.write('"Q,1",yes,yes,,,,,,,,,,"said ""no"", twice"\n')
    r = ["-r", str(RULESETS["minimal"]), "-f", fmt]
    got = {}
    for engine in ("python", "spark"):
        out = tmp_path / f"{engine}.out"
        code, err = batch(capsys, str(data), "-o", str(out), "--engine", engine, *r)
        got[engine] = (code, out.read_bytes(), err.replace(str(out), "OUT"))
        assert out.stat().st_mode & 0o777 == 0o600
    assert "screened by the python engine" not in got["spark"][2]
    assert got["spark"] == got["python"] and got["python"][0] == 1
    assert "CRISIS" in got["spark"][2].splitlines()[1]  # crisis list first
    code = run(["batch", str(data), "--no-progress", *SPARK, *r])
    out, err = capsys.readouterr()
    assert code == 1 and out.encode() == got["python"][1]


def test_parquet_in_and_out(spark: Any, capsys: pytest.CaptureFixture[str],
                            tmp_path: Path) -> None:
    """Parquet written by --engine spark (one local file, and a dataset folder) holds the
    result columns of the CSV output; a Parquet input is numbered in its rows' order."""
    rs = ruleset("minimal")
    data = export(tmp_path / "in.csv", rs, 200, seed=3)
    r = ["-r", str(RULESETS["minimal"])]
    code, _ = batch(capsys, str(data), "-o", str(tmp_path / "want.csv"), "--raw-csv", *r)
    want = list(csv.DictReader(io.StringIO((tmp_path / "want.csv").read_text("utf-8"))))
    single, folder = tmp_path / "out.parquet", tmp_path / "set.parquet"
    assert batch(capsys, str(data), "-o", str(single), "-f", "parquet", *SPARK, *r)[0] == code
    assert batch(capsys, str(data), "-o", f"{folder}/", "-f", "parquet", *SPARK, *r)[0] == code
    assert single.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries
    for path in (single, folder):
        rows = [r.asDict() for r in spark.read.parquet(str(path)).orderBy("row").collect()]
        assert [{k: as_text(v) for k, v in r.items()} for r in rows] == want
    # the folder as the input: every column a string, the same rows in the same order
    inp = tmp_path / "in.parquet"
    spark.read.option("header", True).csv(str(data)).repartition(3).sortWithinPartitions(
        "id").write.parquet(str(inp))
    ordered = [r["id"] for r in spark.read.parquet(str(inp)).select(
        "id", "_metadata.file_path", "_metadata.row_index").orderBy(
        "file_path", "row_index").collect()]
    code, err = batch(capsys, str(inp), "-o", str(tmp_path / "p.jsonl"), "-f", "jsonl",
                      *SPARK, *r)
    assert code == 1, err
    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text("utf-8").splitlines()]
    assert len(lines) > 150 and [x["row"] for x in lines] == sorted(x["row"] for x in lines)
    assert all((ordered[x["row"] - 1] or "") == x["id"] for x in lines)


def test_input_spark_reads_otherwise_goes_to_python_or_is_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A local file with a short row is screened by the Python engine, with a note; the same
    file as a URL (no local fallback) is refused naming its line, nothing written."""
    data = tmp_path / "in.csv"
    data.write_text("id,danger,comment\nA,yes,x\nB,no\nC,no,z\n", encoding="utf-8")
    r = ["-r", str(RULESETS["minimal"])]
    out = tmp_path / "out.csv"
    code, err = batch(capsys, str(data), "-o", str(out), *SPARK, *r)
    assert "note: --engine spark:" in err and "screened by the python engine" in err
    assert code == 0 and "W413" in err and out.exists()
    out2 = tmp_path / "out2.csv"
    code, err = batch(capsys, data.as_uri(), "-o", str(out2), *SPARK, *r)
    assert code == 1 and not out2.exists()
    assert "E415 malformed-csv" in err and ":3:" in err and "Traceback" not in err


def test_spark_failures_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    r = ["-r", str(RULESETS["minimal"])]
    code, err = batch(capsys, str(tmp_path / "nope.csv"), *SPARK, *r)
    assert code == 2 and err.startswith("error: input file") and len(err.splitlines()) == 2
    code, err = batch(capsys, (tmp_path / "nope.csv").as_uri(), *SPARK, *r)
    assert code == 2 and "not found" in err.splitlines()[0] and len(err.splitlines()) == 2
    fake = tmp_path / "bad.parquet"
    fake.write_text("id,danger\nA,yes\n", encoding="utf-8")
    code, err = batch(capsys, str(fake), "-o", str(tmp_path / "o.csv"), *SPARK, *r)
    assert code == 70 and err.startswith("error: Spark failed: ")
    assert len(err.splitlines()) == 2 and "hint:" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    code, err = batch(capsys, str(fake), *SPARK, *r)
    assert code == 2 and "needs a Java runtime" in err and len(err.splitlines()) == 2
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    code, err = batch(capsys, str(fake), *SPARK, *r)
    assert code == 2 and "pip install 'iopscreen[spark]'" in err


def test_options_other_engines_do_not_have(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    data = export(tmp_path / "in.csv", ruleset("minimal"), 3, seed=1)
    r = ["-r", str(RULESETS["minimal"])]
    assert batch(capsys, str(data), "-f", "parquet", "-o", str(tmp_path / "x"), *r)[0] == 2
    assert batch(capsys, str(data), "--master", "local[1]", *r)[0] == 2
    assert batch(capsys, "-", *SPARK, *r)[0] == 2
    assert batch(capsys, str(data), "-f", "parquet", *SPARK, *r)[0] == 2
