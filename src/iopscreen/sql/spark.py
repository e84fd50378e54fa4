"""A Spark session set up to run the screening query (``iopscreen batch --engine spark``).

PySpark is an optional extra (``pip install 'iopscreen[spark]'``) and needs a Java runtime; both
are looked for before a JVM is started, so a missing one is a one-line error with a hint.

Spark's JVM writes its log (log4j's start-up lines, warnings, a progress bar) to the stdout and
stderr it inherits: the results may be on our stdout and the summary is on our stderr, so the
JVM is started with both pointed at ``IOPSCREEN_SPARK_LOG`` (a file to keep the log in, for
diagnosing a cluster) or the null device. Spark's failures still reach us whole, as the
exceptions PySpark raises, and are reported in one line (:func:`spark_failure`).
"""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import IopscreenError, UsageError

LOG_ENV = "IOPSCREEN_SPARK_LOG"
DEFAULT_MASTER = "local[*]"
INSTALL_HINT = "pip install 'iopscreen[spark]' (PySpark; it needs Java 17 or later)"


def _java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home:
        return (Path(home) / "bin" / "java").exists()
    return shutil.which("java") is not None


def _require() -> Any:
    """The pyspark.sql module. Raises :class:`UsageError` when PySpark or Java is missing."""
    try:
        import pyspark.sql
    except ImportError:
        raise UsageError("--engine spark needs PySpark, which is not installed",
                         hint=INSTALL_HINT) from None
    if not _java_found():
        raise UsageError("--engine spark needs a Java runtime (17 or later), and none was found "
                         "(no java on PATH, JAVA_HOME not set)",
                         hint="install one, e.g. apt-get install openjdk-17-jre-headless, or "
                              "set JAVA_HOME") from None
    return pyspark.sql


@contextmanager
def _quiet_std_streams() -> Iterator[None]:
    """Point file descriptors 1 and 2 at the Spark log while the JVM starts (it inherits
    them, and keeps them), then give them back to this process."""
    target = os.environ.get(LOG_ENV) or os.devnull
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    log = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (log, *saved):
            os.close(fd)


def get_session(master: str | None = None, config: dict[str, str] | None = None
                ) -> tuple[Any, bool]:
    """A Spark session and whether this call started it (and so should stop it): the one
    already running in this process when there is one (``master`` is then not used), else a
    new one on ``master`` (default ``local[*]``), with the web UI and the console progress
    bar off, and ``config``'s settings. Raises :class:`UsageError` when PySpark or Java is missing and
    :class:`IopscreenError` when Spark cannot start."""
    sql = _require()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active, False
    master = master or DEFAULT_MASTER
    builder = (sql.SparkSession.builder.master(master).appName("iopscreen")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    if master.startswith("local"):
        # The screening query's result is small per row; a few shuffle partitions (Spark's
        # default is 200) keep a local run's sorts from spending their time on empty tasks.
        builder = builder.config("spark.sql.shuffle.partitions", "4")
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    try:
        with _quiet_std_streams():
            spark = builder.getOrCreate()
            spark.sparkContext.setLogLevel("ERROR")
    except Exception as exc:  # PySpark raises several kinds here; each is one line for us
        raise spark_failure(exc, f"Spark could not start on {master}",
                            hint="check --master (e.g. local[*], spark://host:7077, yarn) and "
                                 "that Java 17 or later is installed") from None
    return spark, True


@contextmanager
def spark_session(master: str | None = None, config: dict[str, str] | None = None
                  ) -> Iterator[Any]:
    """:func:`get_session` for a ``with`` block, stopped at its end when it started there."""
    spark, owned = get_session(master, config)
    try:
        yield spark
    finally:
        if owned:
            with _quiet_std_streams():
                spark.stop()


def first_line(exc: BaseException) -> str:
    """The first meaningful line of a Spark or Java exception's message (no trace)."""
    text = str(getattr(exc, "getMessage", lambda: None)() or exc)
    if text.startswith("An error occurred while calling"):  # Py4J: Java's message follows
        text = "\n".join(line[2:] for line in text.splitlines() if line.startswith(": "))
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "JVM stacktrace", "Traceback")):
            return line[:500]
    return type(exc).__name__


def spark_failure(exc: BaseException, what: str = "Spark failed", hint: str = "") -> IopscreenError:
    """The one-line error for a failure inside Spark: ``what`` and Spark's own message."""
    return IopscreenError(f"{what}: {first_line(exc)}",
                          hint=hint or "rerun with --engine python, or see Spark's log (set "
                                       f"{LOG_ENV}=FILE to keep it)")
