from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Union

import pytest

# Output must not depend on the terminal: no colour, fixed width.
os.environ["NO_COLOR"] = "1"
os.environ["COLUMNS"] = "100"
os.environ.pop("FORCE_COLOR", None)


# ------------------------------------------------------------------- batch engines

# Every engine `iopscreen batch --engine` offers; a test that takes an `engine` argument runs
# on each. A slow engine (Spark: a JVM per session, seconds a query) goes in SLOW_ENGINES: it
# then runs only the tests marked `@pytest.mark.slow_engines`, a subset that covers each kind
# of input once.
FAST_ENGINES = ("python", "duckdb")
SLOW_ENGINES: tuple[str, ...] = ()

# What a SQL engine prints when it hands the input to the python engine (batch_duckdb's
# Unsuitable): the reason is checked, so a test cannot pass on the python engine unawares.
FALLBACK = re.compile(r"^note: --engine (\w+): .* is screened by the python engine \((.*)\)\n",
                      re.M)

Reason = Union[str, Mapping[str, str], None]


@dataclass(frozen=True)
class Engine:
    """One engine for `iopscreen batch`: its options, and the check of which engine screened."""

    name: str

    @property
    def args(self) -> list[str]:
        return ["--engine", self.name]

    def checked(self, err: str, falls_back: Reason = None) -> str:
        """``err`` (a run's stderr) without the fallback note, after asserting it says what the
        test expects: ``falls_back`` None: this engine screened (no note); a text: a SQL
        engine handed the input to python for a reason containing it (a mapping: per engine,
        engines not in it screen themselves). Python never prints the note."""
        notes = FALLBACK.findall(err)
        reason = falls_back.get(self.name) if isinstance(falls_back, Mapping) else falls_back
        if self.name == "python" or reason is None:
            assert notes == [], f"--engine {self.name} did not screen: {notes}"
        else:
            assert len(notes) == 1 and notes[0][0] == self.name and reason in notes[0][1], (
                f"expected --engine {self.name} to hand this input to python ({reason}), "
                f"got {notes or 'no note'}")
        return FALLBACK.sub("", err)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Spark session (local[2]) for every test that needs Spark: the JVM takes seconds to
    start. ``iopscreen batch --engine spark`` run in-process uses it too."""
    from iopscreen.sql.spark import spark_session

    with spark_session("local[2]", {"spark.sql.shuffle.partitions": "2",
                                    "spark.driver.memory": "768m",
                                    "spark.sql.files.maxPartitionBytes": "65536"}) as session:
        yield session


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        names = list(FAST_ENGINES)
        if metafunc.definition.get_closest_marker("slow_engines"):
            names += SLOW_ENGINES
        metafunc.parametrize("engine", [Engine(n) for n in names], ids=names)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow_engines: also run on the slow batch engines "
                                       "(SLOW_ENGINES in tests/conftest.py)")
