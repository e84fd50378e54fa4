"""Throughput and memory of `iopscreen batch` next to a bare csv.reader pass over the same file.

    python benchmarks/batch_throughput.py [N] [--jobs J] [--repeat R] [--keep DIR] [--data CSV]

Writes N synthetic, valid response rows (default 1,000,000) for the shipped default rule set,
then times:
  * a bare ``csv.reader`` pass over the file (in this process: open, decode, parse, nothing else);
  * the installed ``iopscreen batch FILE -o OUT --force --no-progress`` command, run as a
    subprocess, so the time includes start-up, loading the rule set and writing the results.
It prints rows/s for both, the ratio (target: batch <= 3x the bare pass), and the peak resident
memory of the batch run (the largest of its processes, from wait4), which should stay under
100 MB whatever N is. Rows are generated from a fixed seed: runs are comparable. With
``--repeat R`` each is timed R times and the best time is shown (other load on the machine
only ever slows a run down).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from iopscreen.engine import program_for
from iopscreen.ruleset import default_ruleset_path, load_ruleset
from iopscreen.ruleset.model import Question, Ruleset

DECLINED = object()


def synthetic_rows(ruleset: Ruleset, n: int, seed: int = 5) -> tuple[list[str], Iterator[list[str]]]:
    """The header and ``n`` valid rows as a survey tool would export them.

    A latent severity per person drives the answers; about 2% of cells are blank and 0.2%
    declined; 10% of choices are given by label; questions that skip logic does not ask
    (their ``ask_when`` is false) are left blank, as a survey tool leaves them.
    """
    rnd = random.Random(seed)
    questions = list(ruleset.questions.values())
    program = program_for(ruleset)

    def answer(q: Question, severity: float) -> tuple[str, Any]:
        r = rnd.random()
        if r < 0.02:
            return "", None
        if r < 0.022:
            return "declined", DECLINED
        if q.type == "yesno":
            yes = rnd.random() < 0.03 + 0.35 * severity
            return ("yes" if yes else "no"), yes
        if q.type == "choice":
            k = min(int(rnd.random() * severity * len(q.choices) * 1.5), len(q.choices) - 1)
            choice = q.choices[k] if rnd.random() < 0.85 else rnd.choice(q.choices)
            return (choice.label if rnd.random() < 0.1 else str(choice.code)), choice.code
        if q.type == "integer":
            lo = q.min or 0
            number = rnd.randint(lo, min(q.max if q.max is not None else 100, lo + 80))
            return str(number), number
        if q.type == "multi":
            picked = rnd.sample(q.choices, rnd.randint(0, min(2, len(q.choices))))
            return ("|".join(str(c.code) for c in picked) or "none",
                    frozenset(c.code for c in picked))
        return "ok", "ok"

    def rows() -> Iterator[list[str]]:
        for i in range(n):
            severity = rnd.random() ** 3
            cells, values, declined = [], [None] * program.size, set()
            for slot, q in enumerate(questions):
                text, value = answer(q, severity)
                cells.append(text)
                if value is DECLINED:
                    declined.add(q.id)
                else:
                    values[slot] = value
            asked = program.run(values, declined)[2]
            yield [f"R{i:08d}", *(c if a is not False else "" for c, a in zip(cells, asked))]

    return ["id", *ruleset.questions], rows()


def bare_csv_pass(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    rows = 0
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for _ in csv.reader(handle):
            rows += 1
    return time.perf_counter() - start, rows - 1


def batch_run(path: Path, out: Path, jobs: int | None,
              engine: str = "python") -> tuple[float, int, int, bool]:
    """(seconds, exit code, peak RSS in KiB of the largest process, whether the engine asked
    for screened the file itself) of `iopscreen batch --engine ENGINE`."""
    command = [str(Path(sys.executable).parent / "iopscreen"), "batch", str(path), "-o", str(out),
               "--force", "--no-progress", "--engine", engine] + (
                   ["--jobs", str(jobs)] if jobs else [])
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        sys.stderr.write(err.decode("utf-8", "replace"))
    return (elapsed, child.returncode, usage.ru_maxrss,
            b"screened by the python engine" not in err)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=1_000_000, help="rows (default 1,000,000)")
    ap.add_argument("--jobs", type=int, default=None, help="passed to iopscreen batch --jobs")
    ap.add_argument("--repeat", type=int, default=3,
                    help="time each R times, interleaved; show the median (default 3)")
    ap.add_argument("--engine", action="append", choices=("python", "duckdb"), default=None,
                    help="batch engine to time (repeat the option for several; default python)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the files in this folder")
    ap.add_argument("--data", type=Path, default=None,
                    help="time this CSV (e.g. one kept earlier) instead of generating rows")
    args = ap.parse_args()
    engines = args.engine or ["python"]

    ruleset = load_ruleset(default_ruleset_path())
    work = Path(tempfile.mkdtemp(prefix="iopscreen-bench-"))
    try:
        data, out = args.data or work / "responses.csv", work / "results.csv"
        if args.data is None:
            header, rows = synthetic_rows(ruleset, args.n)
            with open(data, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(rows)
        size = data.stat().st_size
        # Interleaved (bare, engine, engine, bare, ...) so a change in the machine's load
        # touches every contender alike; the median of each is reported.
        bares: list[float] = []
        runs: dict[str, list[tuple[float, int, int, bool]]] = {e: [] for e in engines}
        n = 0
        for _ in range(args.repeat):
            took, n = bare_csv_pass(data)
            bares.append(took)
            for engine in engines:
                runs[engine].append(batch_run(data, out, args.jobs, engine))
        bare = statistics.median(bares)
        print(f"{n:,} rows, {size / 1e6:.0f} MB; rule set {ruleset.id} {ruleset.version}; "
              f"{os.cpu_count()} CPU(s); median of {args.repeat}, interleaved")
        print(f"bare csv.reader pass : {bare:7.2f} s  {n / bare:>12,.0f} rows/s")
        with open(out, newline="", encoding="utf-8") as handle:
            written = sum(1 for _ in handle) - 1
        for engine in engines:
            took = statistics.median(r[0] for r in runs[engine])
            peak = max(r[2] for r in runs[engine])
            codes = sorted({r[1] for r in runs[engine]})
            own = "" if all(r[3] for r in runs[engine]) else " (fell back to python!)"
            print(f"batch --engine {engine:7}: {took:7.2f} s  {n / took:>12,.0f} rows/s  "
                  f"ratio {took / bare:5.2f}x the bare pass, peak RSS {peak / 1024:6.1f} MB, "
                  f"exit {codes}{own}")
        print(f"({written:,} result rows in the last output)")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            if args.data is None:
                shutil.copy(data, args.keep / data.name)
            shutil.copy(out, args.keep / out.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
