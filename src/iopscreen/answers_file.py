"""Reading one screening's answers from a JSON or YAML file (``evaluate``, ``records amend``).

The file is bounded (size, nesting) and read with ``safe_load`` semantics; whatever is wrong with
it is an error with its place and never its content. An answer given twice is ambiguous (a later
"no" must not silently replace a "yes" to a safety question), so a repeated question is reported
and left unanswered. Turning the values into typed answers is :mod:`iopscreen.answers`' job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Collection

import yaml

from .answers import shown_key
from .errors import AnswerError, Diagnostic, UsageError

ANSWERS_FILE_LIMIT = 1 << 20  # bytes: a whole interview's answers are a few kilobytes
UNSCREENED = "nothing in the file was screened: fix it and rerun"
# safe_load's rules, parsed by libyaml (bundled with PyYAML's wheels) where present: fast, and it
# stops deep nesting at 1,000 levels with a located error (the Python parser recurses instead).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Problem = tuple[str, Diagnostic]  # (the key as it may be shown, the problem)

# The top-level keys a wrapped answers file may have beside "answers" without them being read
# as answers: those of a result (`evaluate --format json`, Screening.to_json) and of a record
# (`records show --format json`), so that either can be read back as it is.
WRAPPER_KEYS = frozenset({
    "answers",
    # a result
    "schema", "schema_version", "ruleset", "level", "level_label", "provisional",
    "possible_level", "deciding_questions", "flags", "fired_rules", "pending_rules",
    "misconceptions", "scores", "ignored_answers", "not_asked", "disclaimer", "safety_review",
    "errors",
    # a record
    "id", "version", "amends", "client", "counselor", "created_utc", "source", "result", "note",
})


def read_answers_file(path: Path, questions: Collection[str] = ()) -> tuple[dict[Any, Any],
                                                                          list[Problem]]:
    """Read a JSON or YAML answers file: a mapping of question id to value, optionally wrapped
    as ``{"answers": {...}}`` (as a result or record JSON is). In a wrapped file the other
    top-level keys are answers too (so an answer beside the wrapper still counts, and a key
    that is no question is reported as one inside would be), except the keys of a result or
    record (:data:`WRAPPER_KEYS`) that are not in ``questions``. Returns the mapping without any
    question given more than once, and an E407 problem for each.

    Raises :class:`UsageError` when it cannot be opened and :class:`AnswerError` (with the place,
    never the content) when it is not text, too big, not valid, or not a mapping: then nothing
    in it is screened, and the hint says so.
    """
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        with path.open("rb") as handle:
            data = handle.read(ANSWERS_FILE_LIMIT + 1)
    except FileNotFoundError:
        raise UsageError(f"answers file '{path}' not found",
                         hint="give a JSON or YAML file of question ids to answers") from None
    except OSError as exc:
        raise UsageError(f"cannot read answers file '{path}': {exc.strerror or exc}") from None
    if len(data) > ANSWERS_FILE_LIMIT:
        raise AnswerError(f"{path}: the answers file is over {ANSWERS_FILE_LIMIT >> 20} MB",
                          hint="an answers file holds one screening; for many use "
                               f"'iopscreen batch FILE.csv'; {UNSCREENED}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnswerError(f"{path}: the answers file is not UTF-8 text (byte {exc.start + 1})",
                          hint=f"save it as UTF-8; {UNSCREENED}") from None
    try:
        root, answers, repeated = _parse_json(text) if kind == "JSON" else _parse_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else (
            f"{path}:{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(path))
        raise AnswerError(f"{where}: the answers file is not valid {kind}",
                          hint=f"check quotes, commas and indentation there; {UNSCREENED}"
                          ) from None
    except (ValueError, RecursionError):  # a number of thousands of digits; deep nesting
        raise AnswerError(f"{path}: the answers file is not valid {kind} (a number too long or "
                          "lists nested too deeply)",
                          hint="an answer is one value, a list of choices, or 'declined'; "
                               + UNSCREENED) from None
    if not isinstance(answers, dict):
        raise AnswerError(f"{path}: answers must be a mapping of question id to answer",
                          hint=f'e.g. {{"phq9_1": 2, "si_plan": "no"}}; {UNSCREENED}')
    if answers is not root:  # wrapped: answers beside the wrapper are answers too
        for key, value in root.items():
            if key != "answers" and (str(key) in questions or key not in WRAPPER_KEYS):
                if key in answers:
                    repeated.setdefault(key, [])
                answers[key] = value
    problems: list[Problem] = []
    for key, lines in repeated.items():
        answers.pop(key, None)
        shown = shown_key(key)
        where = f" (lines {', '.join(map(str, lines))})" if lines else ""
        problems.append((shown, Diagnostic(
            "E407", "repeated-answer", f"'{shown}' is answered more than once{where}",
            str(path), hint="keep one answer per question; until then it counts as "
                            "unanswered")))
    return answers, problems


class _Object(dict):  # type: ignore[type-arg]
    """A JSON object that remembers which of its keys were repeated."""

    repeated: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj, again = _Object(), []
    for key, value in pairs:
        if key in obj:
            again.append(key)
        obj[key] = value
    obj.repeated = tuple(dict.fromkeys(again))
    return obj


def _parse_json(text: str) -> tuple[Any, Any, dict[Any, list[int]]]:
    """(the document, its answers mapping, repeated keys of that mapping)."""
    root = json.loads(text, object_pairs_hook=_pairs)
    data = _unwrap(root)
    return root, data, {k: [] for k in getattr(data, "repeated", ())}


def _parse_yaml(text: str) -> tuple[Any, Any, dict[Any, list[int]]]:
    """(the document, its answers mapping, repeated keys of that mapping with their lines)."""
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        root = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    data = _unwrap(root)
    if isinstance(node, yaml.MappingNode) and data is not root:
        node = [v for k, v in node.value if isinstance(k, yaml.ScalarNode)
                and k.value == "answers"][-1]  # the last one is the one kept
    lines: dict[Any, list[int]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag.endswith(":str"):
                lines.setdefault(key_node.value, []).append(key_node.start_mark.line + 1)
    return root, data, {k: found for k, found in lines.items() if len(found) > 1}


def _unwrap(data: Any) -> Any:
    if isinstance(data, dict) and isinstance(data.get("answers"), dict):
        return data["answers"]
    return data
