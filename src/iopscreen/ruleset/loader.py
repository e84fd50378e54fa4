"""Load a rule set strictly: schema, names, types and cross-references, all problems at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from .. import expr
from ..errors import WARNING, Diagnostic, Problems, RulesetError, did_you_mean
from ..expr import Condition, ExprRejected, Symbol, Type
from .model import (
    DECLINED_TOKENS,
    MISSING_POLICIES,
    QUESTION_TYPES,
    SEVERITIES,
    SOURCE_KINDS,
    Band,
    Choice,
    Crisis,
    Derived,
    Flag,
    Instrument,
    Level,
    Misconception,
    Question,
    Resource,
    Rule,
    Ruleset,
    Section,
    Source,
)
from .limits import Limits
from .yamlsource import Document, Path, bool_word_warning, read_yaml

ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RULESET_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

@dataclass(frozen=True)
class Field:
    """One key of a mapping: the Python types its value may have, and whether it is required.

    ``each`` is the type every entry of a list must have (lists of ids and of text).
    """

    types: tuple[type, ...]
    required: bool = False
    each: type | None = None


Spec = dict[str, Field]
STR = (str,)
LIST = (list,)
INT = (int,)
COND = (str, bool)
REQUIRED_TEXT = Field(STR, True)
OPTIONAL_TEXT = Field(STR)
IDS = Field(LIST, True, each=str)  # e.g. sources: [paper-a, paper-b]

TOP_SPEC: Spec = {
    "ruleset": Field((dict,), True),
    "sources": Field((dict,), True),
    "levels": Field(LIST, True),
    "flags": Field(LIST),
    "sections": Field(LIST, True),
    "instruments": Field(LIST),
    "derived": Field(LIST),
    "rules": Field(LIST, True),
    "misconceptions": Field(LIST),
    "crisis": Field((dict,)),
}
META_SPEC: Spec = {
    "id": REQUIRED_TEXT,
    "title": REQUIRED_TEXT,
    "version": REQUIRED_TEXT,
    "effective": REQUIRED_TEXT,
    "population": OPTIONAL_TEXT,
    "disclaimer": REQUIRED_TEXT,
}
SOURCE_SPEC: Spec = {"title": OPTIONAL_TEXT, "kind": REQUIRED_TEXT, "cite": REQUIRED_TEXT}
LEVEL_SPEC: Spec = {"id": REQUIRED_TEXT, "label": REQUIRED_TEXT, "description": REQUIRED_TEXT,
                    "sources": Field(LIST, each=str)}
# A source's title is what a counselor reads beside a reason: short, and never a file name or a
# content hash (those stay in the citation, for the reviewer).
SOURCE_TITLE_MAX = 60
_FILE_LIKE = re.compile(r"\.[A-Za-z0-9]{2,4}$|[0-9a-f]{12}")
FLAG_SPEC: Spec = {"id": REQUIRED_TEXT, "label": REQUIRED_TEXT, "severity": REQUIRED_TEXT}
SECTION_SPEC: Spec = {"id": REQUIRED_TEXT, "title": REQUIRED_TEXT, "questions": Field(LIST, True)}
QUESTION_SPEC: Spec = {
    "id": REQUIRED_TEXT,
    "text": REQUIRED_TEXT,
    "type": REQUIRED_TEXT,
    "help": OPTIONAL_TEXT,
    "choices": Field(LIST),
    "min": Field(INT),
    "max": Field(INT),
    "required": Field((bool,)),
    "ask_when": Field(COND),
    "sources": Field(LIST, each=str),
}
CHOICE_SPEC: Spec = {"code": Field((str, int), True), "label": REQUIRED_TEXT,
                     "aliases": Field(LIST, each=str)}
INSTRUMENT_SPEC: Spec = {
    "id": REQUIRED_TEXT,
    "title": REQUIRED_TEXT,
    "items": IDS,
    "bands": Field(LIST, True),
    "sources": IDS,
    "reverse": Field(LIST, each=str),
    "missing": OPTIONAL_TEXT,
    "max_missing": Field(INT),
    "gate": Field(COND),
    "gate_score": Field(INT),
    "license": OPTIONAL_TEXT,
    "minimal_change": Field((int, float)),
    "description": OPTIONAL_TEXT,
}
BAND_SPEC: Spec = {"id": REQUIRED_TEXT, "min": Field(INT, True), "max": Field(INT, True),
                   "label": REQUIRED_TEXT}
DERIVED_SPEC: Spec = {
    "id": REQUIRED_TEXT,
    "expr": Field((str, bool, int, float), True),
    "description": OPTIONAL_TEXT,
    "sources": Field(LIST, each=str),
}
RULE_SPEC: Spec = {
    "id": REQUIRED_TEXT,
    "title": REQUIRED_TEXT,
    "when": Field(COND, True),
    "reason": REQUIRED_TEXT,
    "sources": IDS,
    "min_level": OPTIONAL_TEXT,
    "flags": Field(LIST, each=str),
    "category": OPTIONAL_TEXT,
    "levels": Field(LIST, each=str),  # engagement notes: the levels they are shown for
    "note": OPTIONAL_TEXT,  # for the reviewer only
}
MISCONCEPTION_SPEC: Spec = {
    "id": REQUIRED_TEXT,
    "myth": REQUIRED_TEXT,
    "facts": REQUIRED_TEXT,
    "when": Field(COND, True),
    "sources": IDS,
    "levels": Field(LIST, each=str),  # the levels this talking point is shown for
    "note": OPTIONAL_TEXT,  # for the reviewer only
}
CRISIS_SPEC: Spec = {"title": OPTIONAL_TEXT, "protocol": Field(LIST, each=str),
                     "resources": Field(LIST)}
RESOURCE_SPEC: Spec = {"name": REQUIRED_TEXT, "contact": REQUIRED_TEXT}

_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true/false",
               list: "a list", dict: "a mapping"}


def load_ruleset(path: str | FsPath, limits: Limits | None = None) -> Ruleset:
    """Load and check the rule set at ``path`` within ``limits`` (see :func:`check_ruleset`).

    Returns the :class:`Ruleset`. Raises :class:`RulesetError` carrying every problem found
    (sorted by position) when there is at least one error; warnings alone do not raise.
    """
    ruleset, problems = check_ruleset(path, limits)
    problems.raise_if_errors()
    assert ruleset is not None
    return ruleset


def check_ruleset(path: str | FsPath,
                  limits: Limits | None = None) -> tuple[Ruleset | None, Problems]:
    """Load ``path`` and return (ruleset or None, all problems including warnings).

    ``limits`` bound the input (default: :meth:`Limits.from_env`, the defaults as raised by
    ``IOPSCREEN_MAX_*`` variables). Every problem has a line and column and a one-line
    message. Raises :class:`RulesetError` only when the file cannot be read at all, and
    :class:`UsageError` for a bad ``IOPSCREEN_MAX_*`` value.
    """
    limits = limits or Limits.from_env()
    problems = Problems(str(path))
    ruleset = _check(FsPath(path), limits, problems)
    problems.items = [_one_line(d) for d in problems.items]
    return ruleset, problems


def _one_line(d: Diagnostic) -> Diagnostic:
    """``d`` with any line break or control character in its text shown as an escape (a key
    or value quoted in a message may hold one)."""
    def clean(text: str) -> str:
        return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)

    if _UNPRINTABLE.search(d.message + d.hint) is None:
        return d
    return dataclasses.replace(d, message=clean(d.message), hint=clean(d.hint))


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _read(path: FsPath, limits: Limits, problems: Problems) -> bytes | None:
    """The bytes of ``path``, or None (with a problem at the first byte past the limit) when
    it holds more than ``limits.bytes``. Reads at most one byte more, whatever the file."""
    limit = limits.bytes
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
            size = path.stat().st_size if len(raw) > limit else 0
    except FileNotFoundError:
        raise RulesetError(
            f"rule set '{path}' not found",
            hint="give a path to a .yaml rule set, or omit it to use the shipped default",
        ) from None
    except IsADirectoryError:
        raise RulesetError(f"'{path}' is a folder, not a rule-set file",
                           hint="name the .yaml file inside it") from None
    except OSError as exc:
        raise RulesetError(f"cannot read rule set '{path}': {exc.strerror}") from None
    if len(raw) <= limit:
        return raw
    shown = f"{size:,} bytes" if size > limit else "more"
    problems.add("E109", "too-large", f"the file is {shown}; the limit is {limit:,} bytes "
                 "(this is where it is reached)", _byte_position(raw, limit),
                 limits.raise_hint("bytes"))
    return None


def _byte_position(raw: bytes, index: int) -> tuple[int, int]:
    """The (line, col) of byte ``index`` of ``raw`` (characters counted as UTF-8 reads them)."""
    before = raw[:index]
    line_start = before.rfind(b"\n") + 1
    col = len(before[line_start:].decode("utf-8", "replace"))
    return before.count(b"\n") + 1, col + 1


def read_source(path: FsPath, limits: Limits, problems: Problems) -> tuple[bytes, str] | None:
    """The bytes and the text of a YAML file (a rule set or its tests), read within
    ``limits.bytes``. Returns None with a located problem (too large, not UTF-8) in
    ``problems``; raises :class:`RulesetError` when the file cannot be read at all."""
    raw = _read(path, limits, problems)
    if raw is None:
        return None
    try:
        return raw, raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        problems.add("E100", "encoding", f"the file is not UTF-8 (byte {start:,} cannot be "
                     "read)", _byte_position(raw, start), "save the file as UTF-8")
        return None


def _check(path: FsPath, limits: Limits, problems: Problems) -> Ruleset | None:
    source = read_source(path, limits, problems)
    if source is None:
        return None
    raw, text = source
    doc = read_yaml(text, problems, limits)
    if doc is None:
        return None
    builder = _Builder(doc, problems, str(path), hashlib.sha256(raw).hexdigest(), limits)
    ruleset = builder.build()
    return None if problems.errors else ruleset


def _fits(value: Any, types: tuple[type, ...]) -> bool:
    """Whether ``value`` has one of ``types`` (a YAML boolean is not a number)."""
    if value is None or not isinstance(value, types):
        return False
    return not isinstance(value, bool) or bool in types


def _id_of(raw: Any) -> str | None:
    """The id written in a raw mapping, if it is text (or a list of just one text: [mood])."""
    rid = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(rid, list) and len(rid) == 1:
        rid = rid[0]
    return rid if isinstance(rid, str) else None


def _forget(failed: set[str], raw: Any, suffixes: tuple[str, ...] = ("",)) -> None:
    """Note that the definition ``raw`` was rejected, if its id can be read."""
    rid = _id_of(raw)
    if rid is not None:
        failed.update(rid + suffix for suffix in suffixes)


@dataclass
class _Builder:
    doc: Document
    problems: Problems
    path: str
    content_hash: str
    limits: Limits = field(default_factory=Limits)
    # values reported as wrong and left out, so checks that miss them stay quiet
    dropped: set[Path] = field(default_factory=set)
    # Ids whose definitions were rejected. A reference to one is a follow-on of that error and
    # is not reported again ("'x' is not defined" would send the reader the wrong way).
    failed: set[str] = field(default_factory=set)  # questions, scores, bands, derived values
    failed_flags: set[str] = field(default_factory=set)
    failed_levels: set[str] = field(default_factory=set)

    # -------------------------------------------------------------------------- helpers
    def add(self, code: str, name: str, message: str, at: Path, hint: str = "",
            level: str = "error", key: bool = False) -> None:
        mark = self.doc.key_mark(at) if key else self.doc.mark(at)
        self.problems.add(code, name, message, mark, hint, level)

    def fields(self, obj: Any, at: Path, spec: Spec, what: str) -> dict[str, Any] | None:
        """Check a mapping against ``spec``; return it (with only valid fields) or None."""
        if not isinstance(obj, dict):
            if at not in self.doc.rejected:
                self.add("E301", "wrong-type", f"{what} must be a mapping of keys to values", at,
                         "write it as 'key: value' lines")
            return None
        good: dict[str, Any] = {}
        meant: set[str] = set()  # keys that an unknown key is a misspelling of
        for key, value in obj.items():
            kat = at + (key,)
            if key not in spec:
                close = difflib.get_close_matches(str(key), list(spec), n=1, cutoff=0.6)
                meant.update(close)
                self.add("E302", "unknown-key", f"unknown key '{key}' in {what}", kat,
                         did_you_mean(str(key), spec) or "allowed keys: " + ", ".join(spec),
                         key=True)
                continue
            f = spec[key]
            if not _fits(value, f.types):
                self.wrong_type(value, kat, f.types, f"'{key}' in {what}", key, f.required)
                continue
            if not self.number_fits(value, kat, f"'{key}' in {what}"):
                continue
            if f.each is not None:
                bad = [j for j, v in enumerate(value) if not _fits(v, (f.each,))]
                for j in bad:
                    self.wrong_type(value[j], kat + (j,), (f.each,), f"each entry of '{key}'",
                                    key)
                if bad:
                    self.dropped.add(kat)
                    continue
            good[key] = value
        # a misspelt key, or a merge key (<<) already reported, explains a missing one
        merged = at + ("<<",) in self.doc.rejected
        for key, f in spec.items():
            if f.required and key not in obj and key not in meant and not merged:
                self.add("E304", "missing-key", f"{what} needs '{key}'", at,
                         f"add '{key}: ...'")
        return good

    def wrong_type(self, value: Any, at: Path, types: tuple[type, ...], what: str, key: str,
                   required: bool = True) -> None:
        self.dropped.add(at)
        if at in self.doc.rejected:
            return  # its alias or tag is already reported
        if isinstance(value, bool) and str in types:
            bool_word_warning(self.doc, at, self.problems, f"'{key}'")
        want = " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in types)
        self.add("E303", "wrong-type", f"{what} must be {want}", at,
                 self.type_hint(value, at, types, want, required))

    def number_fits(self, value: Any, at: Path, what: str) -> bool:
        """Report a number that is not finite or beyond the literal limit (the compiled
        program and the SQL targets hold numbers as 64-bit values)."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return True
        bound = self.limits.literal
        if isinstance(value, float) and not math.isfinite(value):
            message, hint = f"{what} must be a finite number", f"write a number up to {bound:,}"
        elif abs(value) > bound:
            message = f"{what} is beyond the limit of {bound:,} (either sign)"
            hint = self.limits.raise_hint("literal")
        else:
            return True
        self.dropped.add(at)
        self.add("E320", "number-out-of-range", message, at, hint)
        return False

    def type_hint(self, value: Any, at: Path, types: tuple[type, ...], want: str,
                  required: bool) -> str:
        scalar = self.doc.scalars.get(at)
        if value is None:
            return "the value is empty: write it after the colon" + (
                "" if required else ", or remove the line")
        if isinstance(value, bool) and str in types:
            return 'quote words like "no" and "yes"'
        if isinstance(value, (int, float)) and str in types:
            return f'quote it: "{scalar.raw if scalar else value}"'
        if isinstance(value, str) and int in types and scalar and scalar.style in ("'", '"'):
            return "write numbers without quotes"
        if isinstance(value, dict) and str in types and _id_of(value):
            return f"write the id alone: {_id_of(value)}"
        if isinstance(value, list) and str in types and isinstance(at[-1], int):
            return "remove the inner brackets; each entry is one name"
        if isinstance(value, list) and str in types and len(value) == 1:
            return f"write it without brackets: {value[0]}"
        if isinstance(value, (list, dict)) and str in types:
            return "write plain text; quote it if it starts with [ or {"
        if list in types:
            return "write a list: [a, b], or one '- entry' per line"
        return f"write {want} here"

    def check_id(self, value: Any, at: Path, seen: dict[str, Path], what: str,
                 pattern: re.Pattern[str] = ID_RE) -> bool:
        if not isinstance(value, str) or not pattern.match(value):
            self.add("E305", "bad-id", f"{what} id {value!r} is not a valid identifier", at,
                     "use lower-case letters, digits and _, starting with a letter")
            return False
        if value in seen:
            line = self.doc.mark(seen[value])[0]
            self.add("E306", "duplicate-id", f"{what} id '{value}' is already used (line {line})",
                     at, "give each one its own id")
            return False
        seen[value] = at
        return True

    def source_refs(self, obj: dict[str, Any], at: Path, key: str = "sources") -> tuple[str, ...]:
        refs = obj.get(key) or []
        out = []
        if key in obj and not refs:
            self.add("E307", "missing-source", "at least one source is needed", at + (key,),
                     "cite a paper, a seed article, or a policy source")
        for i, ref in enumerate(refs):
            if ref not in self.sources:
                self.add("E308", "unknown-source", f"source '{ref}' is not defined",
                         at + (key, i),
                         did_you_mean(str(ref), self.sources) or "add it under 'sources:'")
            else:
                out.append(ref)
        return tuple(out)

    def where(self, at: Path, text: Any, offset: int) -> tuple[int, int]:
        """The file position of character ``offset`` of the stripped condition ``text``."""
        if not isinstance(text, str):
            return self.doc.mark(at)
        return self.doc.position(at, text, len(text) - len(text.lstrip()) + offset)

    def condition(self, text: Any, at: Path, symbols: dict[str, Symbol],
                  want: Type | None = expr.T_BOOL, scope: str = "") -> Condition | None:
        """Parse and check a condition, reporting a rejection at the offending token.

        ``scope`` says which names ``symbols`` is limited to, for names defined elsewhere.
        """
        try:
            return expr.parse(text, symbols, want, self.limits.condition)
        except ExprRejected as rej:
            p = rej.problem
            if p.subject and p.subject in self.failed:
                return None
            message, hint = p.message, p.hint
            if p.limit:
                field_name = p.limit if p.limit == "literal" else "condition_" + p.limit
                hint = ("split it into derived values, or " if p.limit != "literal" else
                        "") + self.limits.raise_hint(field_name)
            outside = self.symbols.get(p.subject) if p.subject else None
            if outside is not None and scope:
                message = f"'{p.subject}' is a {outside.role}, but {scope}"
                hint = "gates are checked before any score exists; use the questions' answers"
            elif p.code == "E201" and not hint:
                hint = "define it as a question, an instrument or a derived value"
            self.problems.add(p.code, p.name, message, self.where(at, text, p.offset), hint)
            return None

    # ---------------------------------------------------------------------------- build
    def build(self) -> Ruleset | None:
        top = self.fields(self.doc.data if self.doc.data is not None else {}, (),
                          TOP_SPEC, "the rule set")
        if top is None:
            return None
        self.sources = self.build_sources(top.get("sources", {}))
        meta = self.build_meta(top.get("ruleset", {}))
        self.levels = self.build_levels(top.get("levels", []))
        self.flag_at: dict[str, Path] = {}
        self.flags = self.build_flags(top.get("flags", []))
        self.symbols: dict[str, Symbol] = {}
        self.symbol_at: dict[str, Path] = {}
        self.order: dict[str, int] = {}  # question id -> position
        raw_questions = self.collect_questions(top.get("sections", []))
        built = self.build_instruments(top.get("instruments", []), raw_questions)
        derived = self.build_derived(top.get("derived", []))
        questions = self.finish_questions(raw_questions)
        instruments = self.finish_gates(built)
        rules = self.build_rules(top.get("rules", []))
        misconceptions = self.build_misconceptions(top.get("misconceptions", []))
        crisis = self.build_crisis(top.get("crisis"))
        self.check_reachable(rules, top.get("levels", []))
        if self.problems.errors or meta is None:
            return None
        return Ruleset(
            id=meta["id"], title=meta["title"], version=meta["version"],
            effective=meta["effective"], disclaimer=meta["disclaimer"].strip(),
            population=meta.get("population", ""), path=self.path,
            content_hash=self.content_hash, sources=self.sources, levels=self.levels,
            flags=self.flags, sections=self.sections, questions=questions,
            instruments=instruments, derived=derived, rules=rules,
            misconceptions=misconceptions, crisis=crisis, symbols=self.symbols,
        )

    def build_meta(self, raw: Any) -> dict[str, Any] | None:
        meta = self.fields(raw, ("ruleset",), META_SPEC, "'ruleset'")
        if meta is None:
            return None
        if "id" in meta:
            self.check_id(meta["id"], ("ruleset", "id"), {}, "rule set", RULESET_ID_RE)
        if "effective" in meta and not _is_date(meta["effective"]):
            self.add("E309", "bad-date",
                     f"'effective' {meta['effective']} is not a real date" if DATE_RE.match(
                         meta["effective"]) else "'effective' must be a date YYYY-MM-DD",
                     ("ruleset", "effective"), "e.g. effective: 2026-11-24")
        if not all(k in meta for k, f in META_SPEC.items() if f.required):
            return None
        return meta

    def build_sources(self, raw: Any) -> dict[str, Source]:
        out: dict[str, Source] = {}
        if not isinstance(raw, dict):
            return out
        for sid, body in raw.items():
            at: Path = ("sources", sid)
            if not isinstance(sid, str) or not RULESET_ID_RE.match(sid):
                self.add("E305", "bad-id", f"source id {sid!r} is not a valid identifier", at,
                         "use lower-case letters, digits, - and _", key=True)
                continue
            body = self.fields(body, at, SOURCE_SPEC, f"source '{sid}'")
            if body is None or "cite" not in body or "kind" not in body:
                continue
            if body["kind"] not in SOURCE_KINDS:
                self.add("E310", "bad-value", f"source kind '{body['kind']}' is not known",
                         at + ("kind",), did_you_mean(body["kind"], SOURCE_KINDS)
                         or "use one of: " + ", ".join(SOURCE_KINDS))
            out[sid] = Source(sid, body["kind"], body["cite"].strip(),
                              self.source_title(sid, body, at))
        return out

    def source_title(self, sid: str, body: dict[str, Any], at: Path) -> str:
        """The checked short title of a source ("" when it has none: its id is shown)."""
        if "title" not in body:
            if at + ("title",) not in self.dropped:
                self.add("W103", "no-source-title", f"source '{sid}' has no 'title': "
                         "counselors will see its id beside reasons and talking points", at,
                         'add a short title a counselor can read, e.g. title: "Kroenke 2001, '
                         'PHQ-9"', level=WARNING, key=True)
            return ""
        title = " ".join(body["title"].split())
        problem = ("is empty" if not title else
                   f"is longer than {SOURCE_TITLE_MAX} characters" if len(title)
                   > SOURCE_TITLE_MAX else
                   "looks like a file name or an id" if _FILE_LIKE.search(title) else "")
        if problem:
            self.add("E322", "bad-source-title", f"the title of source '{sid}' {problem}",
                     at + ("title",), "write a few words a counselor can read (author and "
                     "year, or what the article is about); file names belong in 'cite'")
            return ""
        return title

    def build_levels(self, raw: list[Any]) -> tuple[Level, ...]:
        out: list[Level] = []
        seen: dict[str, Path] = {}
        if not raw:
            self.add("E311", "no-levels", "a rule set needs at least one level", ("levels",),
                     "list the levels from least to most intensive")
        for i, item in enumerate(raw):
            at: Path = ("levels", i)
            body = self.fields(item, at, LEVEL_SPEC, "a level")
            if body is not None and all(k in body for k, f in LEVEL_SPEC.items()
                                        if f.required) and self.check_id(
                    body["id"], at + ("id",), seen, "level"):
                sources = self.source_refs(body, at) if "sources" in body else ()
                out.append(Level(body["id"], body["label"], body["description"].strip(), i,
                                 sources))
            elif _id_of(item) not in seen:
                _forget(self.failed_levels, item)
        return tuple(out)

    def build_flags(self, raw: list[Any]) -> dict[str, Flag]:
        out: dict[str, Flag] = {}
        seen: dict[str, Path] = {}
        for i, item in enumerate(raw):
            at: Path = ("flags", i)
            body = self.fields(item, at, FLAG_SPEC, "a flag")
            if body is not None and all(k in body for k in FLAG_SPEC):
                if body["severity"] not in SEVERITIES:
                    self.add("E310", "bad-value", f"severity '{body['severity']}' is not known",
                             at + ("severity",), did_you_mean(body["severity"], SEVERITIES)
                             or "use one of: " + ", ".join(SEVERITIES))
                elif self.check_id(body["id"], at + ("id",), seen, "flag"):
                    out[body["id"]] = Flag(body["id"], body["label"], body["severity"])
                    self.flag_at[body["id"]] = at
                    continue
            if _id_of(item) not in out:
                _forget(self.failed_flags, item)
        return out

    def define(self, name: str, typ: Type, role: str, at: Path) -> bool:
        if name in self.symbols:
            line = self.doc.mark(self.symbol_at[name])[0]
            self.add("E306", "duplicate-id",
                     f"'{name}' is already defined (line {line}) as a {self.symbols[name].role}",
                     at, "questions, instruments and derived values share one name space")
            return False
        self.symbols[name] = Symbol(name, typ, role)
        self.symbol_at[name] = at
        return True

    # ------------------------------------------------------------------------ questions
    def collect_questions(self, raw: list[Any]) -> list[tuple[dict[str, Any], Path, str]]:
        out: list[tuple[dict[str, Any], Path, str]] = []
        sections: list[Section] = []
        seen: dict[str, Path] = {}
        for si, sec in enumerate(raw):
            at: Path = ("sections", si)
            body = self.fields(sec, at, SECTION_SPEC, "a section")
            if body is None:
                for q in sec.get("questions", []) if isinstance(sec, dict) else []:
                    _forget(self.failed, q)
                continue
            sid = body.get("id")
            # a section with a bad id still defines its questions, so they are checked too
            good_id = sid is not None and self.check_id(sid, at + ("id",), seen, "section")
            ids: list[str] = []
            for qi, q in enumerate(body.get("questions", [])):
                qat = at + ("questions", qi)
                qb = self.fields(q, qat, QUESTION_SPEC, "a question")
                typ = None
                if qb is not None and all(k in qb for k in ("id", "text", "type")):
                    if ID_RE.match(qb["id"]):
                        typ = self.question_type(qb, qat)
                    else:
                        self.check_id(qb["id"], qat + ("id",), {}, "question")
                if typ is None:
                    _forget(self.failed, q)
                elif self.define(qb["id"], typ, "question", qat + ("id",)):
                    self.order[qb["id"]] = len(self.order)
                    ids.append(qb["id"])
                    out.append((qb, qat, sid or ""))
            if good_id:
                sections.append(Section(sid, body.get("title", sid), tuple(ids)))
        if not out and not self.problems.errors:
            self.add("E312", "no-questions", "the rule set has no questions", ("sections",))
        self.sections = tuple(sections)
        return out

    def question_type(self, qb: dict[str, Any], at: Path) -> Type | None:
        qtype = qb["type"]
        if qtype not in QUESTION_TYPES:
            self.add("E310", "bad-value", f"question type '{qtype}' is not known", at + ("type",),
                     did_you_mean(qtype, QUESTION_TYPES) or "use one of: "
                     + ", ".join(QUESTION_TYPES))
            return None
        has_choices = "choices" in qb
        if qtype in ("choice", "multi"):
            choices = self.choices(qb.get("choices"), at)
            if choices is None:
                return None
            qb["_choices"] = choices
            codes = frozenset(c.code for c in choices)
            if qtype == "multi":
                return Type(expr.SET, codes)
            kind = expr.NUM if isinstance(choices[0].code, int) else expr.STR
            return Type(kind, codes)
        if has_choices:
            self.add("E313", "misplaced-key", f"a {qtype} question takes no 'choices'",
                     at + ("choices",), "use type: choice for coded answers", key=True)
        if qtype == "integer":
            lo, hi = qb.get("min"), qb.get("max")
            if at + ("min",) in self.dropped or at + ("max",) in self.dropped:
                return None  # already reported as wrong
            if lo is None or hi is None:
                self.add("E304", "missing-key", "an integer question needs 'min' and 'max'", at,
                         "add e.g. 'min: 0' and 'max: 120'")
                return None
            if lo > hi:
                self.add("E314", "bad-range", f"min {lo} is greater than max {hi}",
                         at + ("min",), "swap them")
                return None
            return Type(expr.NUM)
        for key in ("min", "max"):
            if key in qb:
                self.add("E313", "misplaced-key", f"a {qtype} question takes no '{key}'",
                         at + (key,), "only integer questions have a range", key=True)
        return expr.T_BOOL if qtype == "yesno" else Type(expr.TEXT)

    def choices(self, raw: Any, at: Path) -> list[Choice] | None:
        if at + ("choices",) in self.dropped:
            return None  # already reported as wrong
        if not raw:
            self.add("E304", "missing-key", "a choice question needs a non-empty 'choices' list",
                     at, "add choices: - {code: ..., label: ...}")
            return None
        out: list[Choice] = []
        codes: dict[Any, Path] = {}
        labels: set[str] = set()
        # every spelling a cell may use (code, label, alias; folded as AnswerParser folds them)
        # -> the choice it stands for, and where it is written
        spellings: dict[str, tuple[int, Path]] = {t: (-1, ()) for t in DECLINED_TOKENS}
        with_aliases: list[tuple[int, int, Path, list[str]]] = []
        kinds: set[type] = set()
        odd: Path | None = None  # the first code of a different kind than the first one
        ok = True
        for i, item in enumerate(raw):
            cat = at + ("choices", i)
            body = self.fields(item, cat, CHOICE_SPEC, "a choice")
            if body is None or "code" not in body or "label" not in body:
                ok = False
                continue
            code = body["code"]
            if kinds and type(code) not in kinds and odd is None:
                odd = cat + ("code",)
            kinds.add(type(code))
            if code in codes:
                self.add("E306", "duplicate-id", f"choice code {code!r} appears twice",
                         cat + ("code",), "each choice needs its own code")
                ok = False
            if body["label"].casefold() in labels:
                self.add("E306", "duplicate-id", f"choice label '{body['label']}' appears twice",
                         cat + ("label",), "labels must tell the choices apart")
                ok = False
            codes[code] = cat
            labels.add(body["label"].casefold())
            for key, kat in ((str(code), cat + ("code",)),
                             (body["label"], cat + ("label",))):
                spellings.setdefault(key.strip().casefold(), (i, kat))
            out.append(Choice(code, body["label"]))
            with_aliases.append((len(out) - 1, i, cat, body.get("aliases", [])))
        # aliases once every code and label is known, so a clash with a later choice shows too
        for k, i, cat, raw_aliases in with_aliases:
            aliases = self.aliases(raw_aliases, i, cat, spellings)
            if aliases is None:
                ok = False
            else:
                out[k] = Choice(out[k].code, out[k].label, aliases)
        if odd is not None:
            self.add("E315", "mixed-codes", "choice codes must be all numbers or all text",
                     odd, "quote numeric codes or use numbers throughout")
            ok = False
        return out if ok else None

    def aliases(self, raw: list[str], choice: int, at: Path,
                spellings: dict[str, tuple[int, Path]]) -> tuple[str, ...] | None:
        """The checked aliases of choice number ``choice`` (0-based); None after reporting a
        clash. ``spellings`` holds every code and label already, and takes each new alias."""
        out: list[str] = []
        ok = True
        for j, alias in enumerate(raw):
            aat = at + ("aliases", j)
            key = alias.strip().casefold()
            owner = spellings.get(key)
            if not key:
                self.add("E323", "alias-clash", "an alias is empty", aat,
                         "write the other spelling, or remove the entry")
                ok = False
            elif owner is not None:
                if owner[0] == -1:
                    what = "means 'declined' for every question"
                elif owner[0] == choice:
                    what = "is already a spelling of this choice"
                else:
                    kind = (f"the {owner[1][-1]}" if owner[1][-1] in ("code", "label")
                            else "an alias")
                    what = (f"is already {kind} of choice {owner[0] + 1} (line "
                            f"{self.doc.mark(owner[1])[0]})")
                self.add("E323", "alias-clash", f"alias '{alias}' {what}", aat,
                         "each spelling may stand for one choice only: remove it here or "
                         "there")
                ok = False
            else:
                spellings[key] = (choice, aat)
                out.append(alias.strip())
        return tuple(out) if ok else None

    def finish_questions(self, raw: list[tuple[dict[str, Any], Path, str]]) -> dict[str, Question]:
        out: dict[str, Question] = {}
        for qb, at, section in raw:
            ask = None
            if "ask_when" in qb:
                ask = self.condition(qb["ask_when"], at + ("ask_when",), self.symbols)
                if ask is not None:
                    self.check_order(qb["id"], ask, at + ("ask_when",))
            out[qb["id"]] = Question(
                id=qb["id"], section=section, text=qb["text"].strip(), type=qb["type"],
                help=qb.get("help", "").strip(), choices=tuple(qb.get("_choices", ())),
                min=qb.get("min"), max=qb.get("max"), required=qb.get("required", True),
                ask_when=ask, sources=self.source_refs(qb, at) if "sources" in qb else (),
            )
        return out

    def questions_behind(self, names: frozenset[str]) -> set[str]:
        """Every question a set of names depends on, through scores and derived values."""
        out: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in out:
                continue
            sym = self.symbols.get(name)
            if sym is None:
                continue
            if sym.role == "question":
                out.add(name)
            else:
                todo.extend(self.depends.get(name, ()))
        return out

    def check_order(self, qid: str, cond: Condition, at: Path) -> None:
        """Report an ask_when that depends on a question asked later, at the name it uses."""
        mine = self.order[qid]
        later = [dep for dep in self.questions_behind(cond.names) if self.order[dep] >= mine]
        if not later:
            return
        dep = min(later, key=self.order.__getitem__)
        # the name in the condition that leads to ``dep`` (itself, or a score or derived value)
        uses = [(offset, name) for name in cond.names
                if dep in self.questions_behind(frozenset([name]))
                and (offset := expr.name_offset(cond.text, name)) is not None]
        offset, via = min(uses) if uses else (0, dep)
        self.problems.add(
            "E209", "skip-order",
            f"'{qid}' is asked before '{dep}', which its ask_when depends on"
            + (f" (through '{via}')" if via != dep else ""),
            self.where(at, cond.text, offset),
            f"move '{qid}' after '{dep}', or change the condition")

    # ---------------------------------------------------------------------- instruments
    def build_instruments(self, raw: list[Any], questions: list[tuple[dict[str, Any], Path, str]]
                          ) -> list[tuple[dict[str, Any], dict[str, Any], Path]]:
        """Check instruments; return (Instrument fields, checked body, path) of each good one."""
        qinfo = {qb["id"]: qb for qb, _, _ in questions}
        self.depends: dict[str, frozenset[str]] = {}
        out = []
        for i, item in enumerate(raw):
            at: Path = ("instruments", i)
            body = self.fields(item, at, INSTRUMENT_SPEC, "an instrument")
            if body is None or not all(k in body for k, f in INSTRUMENT_SPEC.items()
                                       if f.required):
                _forget(self.failed, item, ("", "_band"))
                continue
            iid = body["id"]
            if not ID_RE.match(iid):
                self.check_id(iid, at + ("id",), {}, "instrument")
                continue
            items, item_max, bad = self.instrument_items(body["items"], at, qinfo)
            for j, qid in enumerate(body.get("reverse", [])):
                if qid not in items and qid not in bad:
                    self.add("E201", "unknown-name", f"reverse item '{qid}' is not an item",
                             at + ("reverse", j),
                             did_you_mean(qid, items) or "list it under 'items' too")
            missing = body.get("missing", "none")
            if missing not in MISSING_POLICIES:
                self.add("E310", "bad-value", f"missing policy '{missing}' is not known",
                         at + ("missing",), "use one of: " + ", ".join(MISSING_POLICIES))
            if "max_missing" in body and missing != "prorate":
                self.add("E313", "misplaced-key", "'max_missing' only applies to missing: prorate",
                         at + ("max_missing",), "add 'missing: prorate' or remove 'max_missing'",
                         key=True)
            # with an item left out the maximum score is unknown; checking bands against it
            # would only report follow-on gaps
            total = None if bad else sum(item_max)
            bands = self.build_bands(body["bands"], at, total, iid)
            sources = self.source_refs(body, at)
            if not self.define(iid, expr.T_NUM, "score", at + ("id",)):
                continue
            self.define(f"{iid}_band", Type(expr.STR, frozenset(b.id for b in bands)), "band",
                        at + ("id",))
            self.depends[iid] = frozenset(items)
            self.depends[f"{iid}_band"] = frozenset([iid])
            out.append((dict(
                id=iid, title=body["title"], items=tuple(items), bands=bands, sources=sources,
                item_max=tuple(item_max), reverse=frozenset(body.get("reverse", [])),
                missing=missing, max_missing=body.get("max_missing", 0),
                gate_score=body.get("gate_score", 0), license=body.get("license", ""),
                minimal_change=body.get("minimal_change"),
                description=body.get("description", "").strip(),
            ), body, at))
        return out

    def instrument_items(self, raw: list[str], at: Path, qinfo: dict[str, dict[str, Any]]
                         ) -> tuple[list[str], list[int], set[str]]:
        """Check an instrument's items; return the good ones, their maximum points, the bad."""
        items: list[str] = []
        item_max: list[int] = []
        bad: set[str] = set()
        for j, qid in enumerate(raw):
            iat = at + ("items", j)
            if qid in items:
                self.add("E306", "duplicate-id", f"item '{qid}' is listed twice", iat,
                         "list each item once")
                continue
            qb = qinfo.get(qid)
            bad.add(qid)
            if qb is None:
                if qid not in self.failed:
                    self.add("E201", "unknown-name", f"item '{qid}' is not a question", iat,
                             did_you_mean(qid, qinfo) or "define it under a section")
                continue
            codes = [c.code for c in qb.get("_choices", ())]
            if qb["type"] != "yesno" and not (qb["type"] == "choice"
                                              and isinstance(codes[0], int)):
                self.add("E316", "bad-item",
                         f"item '{qid}' cannot be scored (it is a {qb['type']} question)",
                         iat, "items must be yes/no or choice questions with number codes")
                continue
            if codes and min(codes) < 0:
                self.add("E316", "bad-item", f"item '{qid}' has negative codes", iat,
                         "item codes are the points each answer scores, from 0")
            bad.discard(qid)
            items.append(qid)
            item_max.append(max(codes) if qb["type"] == "choice" else 1)
        return items, item_max, bad

    def build_bands(self, raw: list[Any], at: Path, total: int | None,
                    iid: str) -> tuple[Band, ...]:
        """Check the bands of instrument ``iid``; with ``total`` known, check they cover it."""
        bands: list[tuple[Band, Path]] = []
        seen: dict[str, Path] = {}
        for i, item in enumerate(raw):
            bat = at + ("bands", i)
            body = self.fields(item, bat, BAND_SPEC, "a band")
            if body is None or not all(k in body for k in BAND_SPEC):
                total = None
                continue
            if body["min"] > body["max"]:
                self.add("E314", "bad-range", f"band '{body['id']}' has min above max",
                         bat + ("min",), "swap min and max")
                total = None
                continue
            if self.check_id(body["id"], bat + ("id",), seen, "band"):
                bands.append((Band(body["id"], body["min"], body["max"], body["label"]), bat))
        if total is None:
            return tuple(b for b, _ in bands)  # a band is missing: gaps would be follow-ons
        ordered = sorted(bands, key=lambda b: b[0].min)
        expect = 0
        for band, bat in ordered:
            if band.min > expect:
                self.add("E317", "band-gap",
                         f"scores {expect}-{band.min - 1} of '{iid}' fall in no band", bat + ("min",),
                         f"start this band at {expect} or add a band for the gap")
            elif band.min < expect:
                self.add("E318", "band-overlap",
                         f"band '{band.id}' overlaps the band before it at score {band.min}",
                         bat + ("min",), f"start it at {expect}")
            expect = max(expect, band.max + 1)
        if ordered and expect <= total:
            self.add("E317", "band-gap", f"scores {expect}-{total} of '{iid}' fall in no band "
                     f"(the maximum score is {total})", ordered[-1][1] + ("max",),
                     f"end the last band at {total}")
        elif ordered and expect - 1 > total:
            self.add("W102", "band-beyond-max",
                     f"the bands of '{iid}' reach {expect - 1}, above the maximum score {total}",
                     ordered[-1][1] + ("max",), f"end the last band at {total}", WARNING)
        return tuple(b for b, _ in bands)

    def finish_gates(self, built: list[tuple[dict[str, Any], dict[str, Any], Path]]
                     ) -> tuple[Instrument, ...]:
        out = []
        questions_only = {k: v for k, v in self.symbols.items() if v.role == "question"}
        for spec, body, at in built:
            gate = None
            if "gate" in body:
                gate = self.condition(body["gate"], at + ("gate",), questions_only,
                                      scope="a gate may only refer to questions")
                if gate is not None:
                    self.depends[spec["id"]] = self.depends[spec["id"]] | gate.names
            out.append(Instrument(gate=gate, **spec))
        return tuple(out)

    # -------------------------------------------------------------------------- derived
    def build_derived(self, raw: list[Any]) -> tuple[Derived, ...]:
        bodies: dict[str, tuple[dict[str, Any], Path]] = {}
        for i, item in enumerate(raw):
            at: Path = ("derived", i)
            body = self.fields(item, at, DERIVED_SPEC, "a derived value")
            if body is None or "id" not in body or "expr" not in body:
                _forget(self.failed, item)
                continue
            if not ID_RE.match(body["id"]):
                self.check_id(body["id"], at + ("id",), {}, "derived value")
                continue
            if body["id"] in self.symbols or body["id"] in bodies:
                self.define(body["id"], expr.T_BOOL, "derived", at + ("id",))  # reports it
                continue
            bodies[body["id"]] = (body, at)
        # Order by dependency first, so each is checked with the types of those it uses.
        deps = {d: expr.names_in(b["expr"]) & set(bodies) for d, (b, _) in bodies.items()}
        order: list[str] = []
        state: dict[str, int] = {}
        cyclic: set[str] = set()

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = trail[trail.index(name):] + [name]
                self.add("E210", "derived-cycle", "derived values depend on each other: "
                         + " -> ".join(cycle), bodies[name][1] + ("expr",),
                         "break the cycle; a derived value cannot depend on itself")
                cyclic.update(cycle)
                return
            state[name] = 1
            for dep in sorted(deps[name]):
                visit(dep, trail + [name])
            state[name] = 2
            order.append(name)

        for name in bodies:
            visit(name, [])
        self.failed |= cyclic
        out = []
        for name in order:
            body, at = bodies[name]
            cond = None
            if name not in cyclic:
                cond = self.condition(body["expr"], at + ("expr",), self.symbols, want=None)
            if cond is None:
                self.failed.add(name)
                continue
            self.define(name, cond.type, "derived", at + ("id",))
            self.depends[name] = cond.names
            out.append(Derived(name, cond, body.get("description", "").strip(),
                               self.source_refs(body, at) if "sources" in body else ()))
        return tuple(out)

    # ---------------------------------------------------------------------------- rules
    def build_rules(self, raw: list[Any]) -> tuple[Rule, ...]:
        out = []
        seen: dict[str, Path] = {}
        level_ids = [lv.id for lv in self.levels]
        for i, item in enumerate(raw):
            at: Path = ("rules", i)
            body = self.fields(item, at, RULE_SPEC, "a rule")
            if body is None or not all(k in body for k, f in RULE_SPEC.items() if f.required):
                continue
            ok = self.check_id(body["id"], at + ("id",), seen, "rule")
            level = body.get("min_level")
            if level is not None and level not in level_ids:
                ok = False
                if level not in self.failed_levels:
                    self.add("E211", "unknown-level", f"level '{level}' is not defined",
                             at + ("min_level",), did_you_mean(level, level_ids)
                             or ("levels: " + ", ".join(level_ids) if level_ids
                                 else "define it under 'levels:'"))
            flags = body.get("flags", [])
            for j, flag in enumerate(flags):
                if flag not in self.flags:
                    ok = False
                    if flag not in self.failed_flags:
                        self.add("E212", "unknown-flag", f"flag '{flag}' is not defined",
                                 at + ("flags", j), did_you_mean(flag, self.flags)
                                 or "define it under 'flags:'")
            dropped = any(at + (key,) in self.dropped for key in ("min_level", "flags"))
            if level is None and not flags and not dropped:
                self.add("E213", "no-effect", f"rule '{body['id']}' has no effect", at,
                         "give it a 'min_level', 'flags', or both")
                ok = False
            category = body.get("category", "clinical")
            levels = self.shown_levels(body, at)
            if levels is None:
                ok = False
            elif levels and category != "engagement":
                # A clinical reason is never hidden: only engagement notes may be level-bound.
                self.add("E321", "levels-on-clinical-rule",
                         f"rule '{body['id']}' has 'levels' but is a '{category}' rule", at
                         + ("levels",), "only rules with 'category: engagement' may say the "
                         "levels they are shown for; a clinical reason always shows", key=True)
                ok = False
            when = self.condition(body["when"], at + ("when",), self.symbols)
            sources = self.source_refs(body, at)
            if ok and when is not None:
                out.append(Rule(body["id"], body["title"], when, body["reason"].strip(),
                                sources, level, tuple(flags), category, levels or (),
                                body.get("note", "").strip()))
        return tuple(out)

    def shown_levels(self, body: dict[str, Any], at: Path) -> tuple[str, ...] | None:
        """The ``levels:`` a talking point or engagement note is shown for (() = every
        level); None after reporting an unknown level."""
        level_ids = [lv.id for lv in self.levels]
        levels = body.get("levels", [])
        ok = True
        for j, level in enumerate(levels):
            if level not in level_ids:
                ok = False
                self.add("E211", "unknown-level", f"level '{level}' is not defined",
                         at + ("levels", j), did_you_mean(level, level_ids)
                         or "levels: " + ", ".join(level_ids))
        if ok and "levels" in body and not levels:
            self.add("E211", "unknown-level", "'levels' is empty", at + ("levels",),
                     "list the levels it is shown for, or leave 'levels' out to show it for "
                     "every level", key=True)
            ok = False
        return tuple(levels) if ok else None

    def build_misconceptions(self, raw: list[Any]) -> tuple[Misconception, ...]:
        out = []
        seen: dict[str, Path] = {}
        for i, item in enumerate(raw):
            at: Path = ("misconceptions", i)
            body = self.fields(item, at, MISCONCEPTION_SPEC, "a misconception")
            if body is None or not all(k in body for k, f in MISCONCEPTION_SPEC.items()
                                       if f.required):
                continue
            ok = self.check_id(body["id"], at + ("id",), seen, "misconception")
            levels = self.shown_levels(body, at)
            when = self.condition(body["when"], at + ("when",), self.symbols)
            sources = self.source_refs(body, at)
            if ok and levels is not None and when is not None:
                out.append(Misconception(body["id"], body["myth"].strip(), body["facts"].strip(),
                                         when, sources, levels, body.get("note", "").strip()))
        return tuple(out)

    def build_crisis(self, raw: Any) -> Crisis:
        if raw is None:
            crisis = [fid for fid, f in self.flags.items() if f.severity == "crisis"]
            if crisis:
                self.add("E319", "missing-crisis",
                         f"flag '{crisis[0]}' is a crisis flag but there is no 'crisis' protocol",
                         self.flag_at[crisis[0]] + ("severity",),
                         "add a 'crisis:' section with protocol steps and resources")
            return Crisis()
        body = self.fields(raw, ("crisis",), CRISIS_SPEC, "'crisis'")
        if body is None:
            return Crisis()
        resources = []
        for i, item in enumerate(body.get("resources", [])):
            rb = self.fields(item, ("crisis", "resources", i), RESOURCE_SPEC, "a resource")
            if rb is not None and "name" in rb and "contact" in rb:
                resources.append(Resource(rb["name"], rb["contact"]))
        protocol = [step.strip() for step in body.get("protocol", [])]
        return Crisis(body.get("title", Crisis.title), tuple(protocol), tuple(resources))

    def check_reachable(self, rules: tuple[Rule, ...], raw_levels: list[Any]) -> None:
        reached = {r.min_level for r in rules}
        for lv in self.levels[1:]:
            if lv.id not in reached:
                self.add("W201", "unreachable-level",
                         f"no rule can raise the result to level '{lv.id}'",
                         ("levels", lv.rank, "id"),
                         f"add a rule with 'min_level: {lv.id}', or remove the level", WARNING)


def _is_date(text: str) -> bool:
    """Whether ``text`` is a real calendar date written YYYY-MM-DD."""
    if not DATE_RE.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:  # e.g. 2026-02-30
        return False
    return True


def format_problems(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(d.render() for d in diagnostics)

