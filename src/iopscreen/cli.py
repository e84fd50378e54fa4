"""The command line: parse options, call the core, render, pick the exit code.

Exit codes (also in the README):
  0   ok
  1   invalid input data (answers, rows)
  2   usage error (bad option, missing file, no terminal)
  3   invalid rule set
  70  internal error (a bug; rerun with --debug for the traceback)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from . import __version__
from .answers import read_answers
from .answers_file import read_answers_file
from .console import make_console, print_diagnostics, render_ruleset, render_screening
from .engine import decision_for, screen
from .errors import AnswerError, Interrupted, IopscreenError, UsageError
from .ruleset import check_ruleset, default_ruleset_path, load_ruleset, tests_path_for
from .ruleset.model import Ruleset

try:  # typer >= 0.2x vendors click; older releases re-export click's exception tree
    from typer import TyperException as _CliError
except ImportError:  # pragma: no cover
    from click import ClickException as _CliError  # type: ignore[assignment]

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_RULESET, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130

app = typer.Typer(
    name="iopscreen",
    help="Level-of-care screening for intensive outpatient programs (a screening aid; a "
         "clinician confirms the level).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(help="Validate, show and test rule sets.", no_args_is_help=True,
                        rich_markup_mode=None)
app.add_typer(rules_app, name="rules")

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"iopscreen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for internal errors."),
) -> None:
    _state["debug"] = debug


class Format(str, Enum):
    text = "text"
    json = "json"


RulesetArg = typer.Argument(None, help="Rule-set YAML file (default: the shipped rule set).",
                            show_default=False)
DbOpt = typer.Option(None, "--db", help="Record store (default: $IOPSCREEN_DB, else "
                     "records.db in the data folder).", show_default=False)
RulesetOpt = typer.Option(None, "--ruleset", "-r", help="Rule-set YAML file "
                          "(default: the shipped rule set).", show_default=False)


def resolve_ruleset_path(path: Optional[Path]) -> Path:
    return path if path is not None else default_ruleset_path()


def open_ruleset(path: Optional[Path]) -> Ruleset:
    """Load a rule set, printing its warnings to stderr."""
    ruleset, problems = check_ruleset(resolve_ruleset_path(path))
    if problems.warnings and not problems.errors:
        print_diagnostics(problems.sorted())
    problems.raise_if_errors()
    assert ruleset is not None
    return ruleset


def store_notice(console: Any = None) -> Callable[[str], None]:
    """What the record store calls when a save has to wait for another writer: one line on
    stderr (so that JSON on stdout stays clean)."""
    err = console or make_console(stderr=True)
    return lambda message: err.print(message, markup=False, soft_wrap=True)


@rules_app.command("validate")
def rules_validate(path: Optional[Path] = RulesetArg,
                   strict: bool = typer.Option(False, "--strict",
                                               help="Treat warnings as errors.")) -> None:
    """Check a rule set and report every problem with its line and column.

    Example: iopscreen rules validate rules/default.yaml
    """
    target = resolve_ruleset_path(path)
    ruleset, problems = check_ruleset(target)
    print_diagnostics(problems.sorted())
    if problems.errors or (strict and problems.warnings):
        n, w = len(problems.errors), len(problems.warnings)
        make_console(stderr=True).print(f"{target}: {n} error(s), {w} warning(s)", markup=False)
        raise typer.Exit(EXIT_RULESET)
    assert ruleset is not None
    make_console().print(
        f"{target}: ok ({ruleset.id} {ruleset.version}: {len(ruleset.questions)} questions, "
        f"{len(ruleset.instruments)} instruments, {len(ruleset.rules)} rules, "
        f"{len(problems.warnings)} warning(s))", markup=False, soft_wrap=True)


@rules_app.command("show")
def rules_show(path: Optional[Path] = RulesetArg) -> None:
    """Print a rule set readably: levels, questions, instruments, rules, misconceptions.

    Example: iopscreen rules show | less
    """
    render_ruleset(make_console(), open_ruleset(path))


@rules_app.command("test")
def rules_test(path: Optional[Path] = RulesetArg,
               cases: Optional[Path] = typer.Option(None, "--cases", help="Test-case file "
                                                    "(default: NAME.tests.yaml beside the rule "
                                                    "set).")) -> None:
    """Run the test cases stored beside a rule set and show each failure with the difference.

    Example: iopscreen rules test rules/default.yaml
    """
    from .ruletests import run_cases

    target = resolve_ruleset_path(path)
    ruleset = open_ruleset(target)
    results = run_cases(ruleset, cases or tests_path_for(target))
    out = make_console()
    failed = [r for r in results if not r.passed]
    for r in failed:
        out.print(f"FAIL {r.name} (line {r.line})", markup=False, style="red")
        for line in r.failures:
            out.print(f"     {line}", markup=False)
    out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed", markup=False)
    if failed:
        raise typer.Exit(EXIT_DATA)


@rules_app.command("doc")
def rules_doc(
    path: Optional[Path] = RulesetArg,
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write the Markdown here (default: stdout)."),
    check: bool = typer.Option(False, "--check", help="Exit 1 if --output differs from what "
                               "would be generated (for CI: the document must not drift)."),
) -> None:
    """Generate the clinical reviewer's document of a rule set (Markdown), from the rule set itself.

    Example: iopscreen rules doc rules/default.yaml -o docs/default-rules.md
    """
    from .files import write_text_atomic
    from .reports.ruledoc import render_markdown

    text = render_markdown(open_ruleset(path))
    if output is None:
        typer.echo(text, nl=False)
        return
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            make_console(stderr=True).print(
                f"{output} is stale: regenerate it with 'iopscreen rules doc "
                f"{path or ''} -o {output}'".replace("  ", " "), markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_DATA)
        return
    write_text_atomic(output, text)


class Dialect(str, Enum):
    duckdb = "duckdb"
    spark = "spark"
    trino = "trino"
    postgres = "postgres"
    snowflake = "snowflake"
    bigquery = "bigquery"


@rules_app.command("sql")
def rules_sql(
    path: Optional[Path] = RulesetArg,
    dialect: Dialect = typer.Option(Dialect.duckdb, "--dialect", "-d",
                                    help="SQL dialect to write."),
    table: str = typer.Option("responses", "--table", help="Table (or view) of responses: "
                              "one text column per template column ('iopscreen template')."),
    view: Optional[str] = typer.Option(None, "--view", help="Write CREATE OR REPLACE VIEW "
                                       "NAME AS the query, not the bare query.",
                                       show_default=False),
    id_column: str = typer.Option("id", "--id-column", help="The table's id column."),
) -> None:
    """Print the rule set as one SQL query that screens a table of responses.

    The table has the template's columns as text (as a CSV export has them); the query
    returns the columns of 'iopscreen batch --format csv' (without 'row') with the same
    meaning. See docs/scale.md.

    Example: iopscreen rules sql --dialect spark --table intake.responses --view intake.screened
    """
    from .sql import TableShape, to_sql

    ruleset = open_ruleset(path)
    if id_column in ruleset.questions:
        raise UsageError(f"--id-column '{id_column}' is a question of the rule set",
                         hint="name the column that identifies each row")
    shape = TableShape({q: q for q in ruleset.questions}, id_column, None,
                       {q: q for q in ruleset.questions}, (), id_column)
    typer.echo(to_sql(ruleset, dialect.value, table=table, view=view, shape=shape), nl=False)


@app.command()
def evaluate(
    answers: Path = typer.Option(..., "--answers", "-a", help="JSON or YAML file of answers."),
    ruleset_path: Optional[Path] = RulesetOpt,
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the result "
                                          "as JSON, with any errors (owner-only file)."),
    force: bool = typer.Option(False, "--force", help="Replace the --output file if it "
                               "exists."),
    show_values: bool = typer.Option(False, "--show-values",
                                     help="Include answer values in error messages."),
    save: bool = typer.Option(False, "--save", help="Also save the result in the record store "
                              "(not when an answer is invalid)."),
    client: str = typer.Option("", "--client", "-c",
                               help="Pseudonymous client reference, for --save."),
    counselor: str = typer.Option("", "--counselor", help="Counselor's name or id, for --save."),
    db: Optional[Path] = DbOpt,
    allow_dropped_safety: bool = typer.Option(
        False, "--allow-dropped-safety",
        help="Exit 0 although skip logic left out an answer behind a crisis rule."),
) -> None:
    """Screen a file of answers without prompts and print the recommendation with its reasons.
    Invalid answers are listed as errors (exit 1) and the others are still screened, so a crisis
    answer always shows; an invalid one counts as unanswered.

    Example: iopscreen evaluate --answers client.json --format json --save --client C-7
    """
    from .batch_output import check_paths
    from .files import write_private

    if output is not None:
        check_paths(str(answers), [("output", str(output))], force)
    ruleset = open_ruleset(ruleset_path)
    raw, problems = read_answers_file(answers, ruleset.questions)
    typed, invalid = read_answers(ruleset, raw, source=str(answers), show_values=show_values)
    problems += invalid
    result = screen(ruleset, typed)
    errors = [d for _, d in problems]
    safety = decision_for(ruleset).safety_questions
    dropped = [qid for qid in result.ignored if qid in safety]
    data = {**result.to_json(), "safety_review": bool(dropped), "errors": [
        {"code": d.code, "name": d.name, "question": key, "message": d.message, "hint": d.hint}
        for key, d in problems]}
    if fmt is Format.json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        render_screening(make_console(), result, ruleset, typed)
    if output is not None:
        write_private(output, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    err = make_console(stderr=True)  # stderr, so that --format json output stays clean
    if errors:
        print_diagnostics(errors, err)
        err.print(f"{len(errors)} invalid answer(s) in {answers}: the result "
                  f"{'above ' if fmt is Format.text else ''}counts them as unanswered"
                  + ("; a crisis was flagged: act on it now" if result.crisis else "")
                  + ("; not saved: fix them and rerun with --save" if save else ""),
                  markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_DATA)
    if dropped:
        err.print(f"!!! SAFETY REVIEW: {answers}: a safety answer was left out by skip logic "
                  f"({', '.join(dropped)}): it may hold a crisis the result does not "
                  "show; check it with the client or the source"
                  + ("" if allow_dropped_safety else
                     " (exit code 1; --allow-dropped-safety accepts it)"),
                  markup=False, soft_wrap=True)
    if save:
        from .store import open_store, resolve_db_path, save_screening_once, utc_now

        with open_store(resolve_db_path(db), now=utc_now, on_wait=store_notice(err)) as store:
            record, new = save_screening_once(store, ruleset, result, typed, client=client,
                                              counselor=counselor, source="evaluate")
        err.print(f"Saved as record {record.id} in {store.path}." if new else
                  f"Already saved as record {record.id} in {store.path} (same client, rule "
                  "set and answers): nothing new saved.", markup=False, soft_wrap=True)
    if dropped and not allow_dropped_safety:
        raise typer.Exit(EXIT_DATA)


@app.command("screen")
def screen_command(
    ruleset_path: Optional[Path] = RulesetOpt,
    client: str = typer.Option("", "--client", "-c",
                               help="Pseudonymous client reference (no names)."),
    counselor: str = typer.Option("", "--counselor", help="Counselor's name or id."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Also write the result as JSON (owner-only)."),
    resume: bool = typer.Option(False, "--resume", help="List saved drafts and resume one."),
    draft: Optional[str] = typer.Option(None, "--draft", help="Resume this draft id."),
    save: bool = typer.Option(True, "--save/--no-save",
                              help="Save the finished screening in the record store."),
    db: Optional[Path] = DbOpt,
    no_pager: bool = typer.Option(False, "--no-pager", help="Print the result's details "
                                  "straight, never through $PAGER."),
) -> None:
    """Run the intake interview with a client and show the recommended level of care.

    Example: iopscreen screen --client C-1042 --counselor jdoe -o c1042.json
    """
    from .console import interview_console
    from .prompter import TerminalPrompter
    from .session import SessionOptions, run_session

    if not sys.stdin.isatty():
        raise UsageError("'iopscreen screen' is interactive and needs a terminal on stdin",
                         hint="to screen answers from a file use 'iopscreen evaluate --answers "
                              "FILE' (or 'iopscreen batch FILE.csv' for many)")
    if output is not None and not os.access(output.parent if str(output.parent) else ".",
                                            os.W_OK):
        # Found out now, not after a whole interview.
        raise UsageError(f"cannot write the result to '{output}': its folder is missing or "
                         "not writable", hint="give --output a path in an existing folder")
    ruleset = open_ruleset(ruleset_path)
    # The interview talks to the terminal; with stdout a pipe (| tee, | cat) only the result
    # goes there, so prompts never mix with the piped text.
    console = interview_console()
    prompter = TerminalPrompter(lambda text: console.print(text, markup=False),
                                terminal=None if console.file is sys.stdout else console.file)
    # Long details page through $PAGER (default less -R) on a terminal; PAGER=cat, --no-pager
    # and a piped stdout print them straight.
    pager = os.environ.get("PAGER", "less -R").strip() or "less -R"
    if no_pager or not sys.stdout.isatty() or pager == "cat":
        pager = None
    options = SessionOptions(client=client, counselor=counselor, output=output, resume=resume,
                             draft_id=draft, save=save, db=db, pager=pager)
    run_session(ruleset, options, prompter, console, load=load_ruleset,
                out=console if console.file is sys.stdout else make_console())


def run(args: list[str] | None = None) -> int:
    """Run the command line on ``args`` and return the exit code (the one exit-code owner)."""
    try:
        code = app(args=args, prog_name="iopscreen", standalone_mode=False)
    except Interrupted:
        return EXIT_INTERRUPTED  # the session already said what it kept
    except IopscreenError as exc:
        if exc.diagnostics:
            print_diagnostics(exc.diagnostics)
        else:
            console = make_console(stderr=True)
            console.print(f"error: {exc.message}", markup=False, style="red", soft_wrap=True)
            if exc.hint:
                console.print(f"  hint: {exc.hint}", markup=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        make_console(stderr=True).print("interrupted", markup=False)
        return EXIT_INTERRUPTED
    except _CliError as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:  # pragma: no cover
            typer.echo(f"error: {exc.format_message()}", err=True)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - last line of defence; never show locals
        if _state["debug"]:
            raise
        make_console(stderr=True).print(
            f"internal error: {type(exc).__name__} (a bug in iopscreen; nothing you typed is "
            "shown here). Rerun with --debug for the traceback.", markup=False)
        return EXIT_INTERNAL
    return code if isinstance(code, int) else EXIT_OK


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


from . import cli_records  # noqa: E402,F401 - registers records and progress

from . import cli_export  # noqa: E402,F401 - registers rules export

from . import cli_batch  # noqa: E402,F401 - registers batch and template

if __name__ == "__main__":  # pragma: no cover
    main()
