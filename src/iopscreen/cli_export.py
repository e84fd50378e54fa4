"""``iopscreen rules export``: a rule set in another format (FHIR R4 Questionnaire).

Kept out of cli.py so that file stays small; cli.py imports this module once, at its end, and the
command registers itself on ``rules_app``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .cli import RulesetArg, open_ruleset, rules_app
from .files import write_text_atomic
from .reports import render_questionnaire


class ExportFormat(str, Enum):
    fhir = "fhir"


@rules_app.command("export")
def rules_export(
    path: Optional[Path] = RulesetArg,
    fmt: ExportFormat = typer.Option(ExportFormat.fhir, "--format", "-f",
                                     help="fhir: a FHIR R4 Questionnaire (JSON)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write it here (default: stdout)."),
) -> None:
    """Export a rule set for other systems: as a FHIR R4 Questionnaire (JSON), with its sections
    as groups, answer codes, required questions, skip logic as enableWhen where FHIR can state it,
    and LOINC codes for the instruments that have them.

    Example: iopscreen rules export rules/default.yaml --format fhir -o iop-adult.questionnaire.json
    """
    text = render_questionnaire(open_ruleset(path))
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text_atomic(output, text)
