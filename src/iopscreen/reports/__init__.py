"""Renderers: ``render(...) -> str`` for documents and reports (no terminal code).

:func:`render_record` turns a screening record into a chart-ready report: Markdown, a standalone
printable HTML page, the record as JSON, or a FHIR R4 QuestionnaireResponse. All are pure and
deterministic (no clock, no files), so they are tested as golden files.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import UsageError
from ..ruleset.model import Ruleset
from . import fhir, html, markdown
from .content import ReportError, check_record, collect, ruleset_matches

FORMATS = ("markdown", "html", "json", "fhir")


def render_record(fmt: str, record: Mapping[str, Any], ruleset: Ruleset | None = None) -> str:
    """Return ``record`` rendered as ``fmt`` (one of :data:`FORMATS`), ending in one newline.

    ``record`` is a screening record as the record store returns it: ``id``, ``version``,
    ``amends``, ``client``, ``counselor``, ``created_utc``, ``source``, ``ruleset``
    (``{id, version, sha256}``), ``answers``, ``result`` (``Screening.to_json()``) and ``note``.
    ``ruleset``, optional, must be the rule set that made the record (see
    :func:`ruleset_matches`); with it the report adds the level's description, the crisis
    protocol and the deciding questions' wording, and the FHIR response gets typed answers
    grouped as in the rule set's Questionnaire.

    Raises :class:`ReportError` for a malformed record or another rule set, and
    :class:`UsageError` for an unknown format.
    """
    if fmt == "markdown":
        return markdown.render_report(collect(record, ruleset))
    if fmt == "html":
        return html.render_report(collect(record, ruleset))
    if fmt == "json":
        check_record(record, ruleset)
        return to_json_text(dict(record))
    if fmt == "fhir":
        return to_json_text(fhir.questionnaire_response(record, ruleset))
    raise UsageError(f"unknown report format '{fmt}'", hint="use one of: " + ", ".join(FORMATS))


def render_questionnaire(ruleset: Ruleset) -> str:
    """Return ``ruleset`` as a FHIR R4 Questionnaire in JSON, ending in one newline."""
    return to_json_text(fhir.questionnaire(ruleset))


def to_json_text(data: Any) -> str:
    """Indented JSON (non-ASCII kept), ending in one newline; key order as given."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


__all__ = ["FORMATS", "ReportError", "render_questionnaire", "render_record", "ruleset_matches",
           "to_json_text"]
