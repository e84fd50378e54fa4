"""Load a rule set strictly: schema, names, types and cross-references, all problems at once."""

from __future__ import annotations

import ast
import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from .. import expr
from ..errors import WARNING, Diagnostic, Problems, RulesetError, did_you_mean
from ..expr import Condition, ExprRejected, Symbol, Type
from .model import (
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
from .yamlsource import Document, Path, bool_word_warning, read_yaml

ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RULESET_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# field name -> (allowed python types, required)
Spec = dict[str, tuple[tuple[type, ...], bool]]
STR = (str,)
LIST = (list,)
INT = (int,)

TOP_SPEC: Spec = {
    "ruleset": ((dict,), True),
    "sources": ((dict,), True),
    "levels": (LIST, True),
    "flags": (LIST, False),
    "sections": (LIST, True),
    "instruments": (LIST, False),
    "derived": (LIST, False),
    "rules": (LIST, True),
    "misconceptions": (LIST, False),
    "crisis": ((dict,), False),
}
META_SPEC: Spec = {
    "id": (STR, True),
    "title": (STR, True),
    "version": (STR, True),
    "effective": (STR, True),
    "population": (STR, False),
    "disclaimer": (STR, True),
}
SOURCE_SPEC: Spec = {"kind": (STR, True), "cite": (STR, True)}
LEVEL_SPEC: Spec = {"id": (STR, True), "label": (STR, True), "description": (STR, True)}
FLAG_SPEC: Spec = {"id": (STR, True), "label": (STR, True), "severity": (STR, True)}
SECTION_SPEC: Spec = {"id": (STR, True), "title": (STR, True), "questions": (LIST, True)}
QUESTION_SPEC: Spec = {
    "id": (STR, True),
    "text": (STR, True),
    "type": (STR, True),
    "help": (STR, False),
    "choices": (LIST, False),
    "min": (INT, False),
    "max": (INT, False),
    "required": ((bool,), False),
    "ask_when": ((str, bool), False),
    "sources": (LIST, False),
}
CHOICE_SPEC: Spec = {"code": ((str, int), True), "label": (STR, True)}
INSTRUMENT_SPEC: Spec = {
    "id": (STR, True),
    "title": (STR, True),
    "items": (LIST, True),
    "bands": (LIST, True),
    "sources": (LIST, True),
    "reverse": (LIST, False),
    "missing": (STR, False),
    "max_missing": (INT, False),
    "gate": ((str, bool), False),
    "gate_score": (INT, False),
    "license": (STR, False),
    "minimal_change": ((int, float), False),
    "description": (STR, False),
}
BAND_SPEC: Spec = {"id": (STR, True), "min": (INT, True), "max": (INT, True), "label": (STR, True)}
DERIVED_SPEC: Spec = {
    "id": (STR, True),
    "expr": ((str, bool, int, float), True),
    "description": (STR, False),
    "sources": (LIST, False),
}
RULE_SPEC: Spec = {
    "id": (STR, True),
    "title": (STR, True),
    "when": ((str, bool), True),
    "reason": (STR, True),
    "sources": (LIST, True),
    "min_level": (STR, False),
    "flags": (LIST, False),
    "category": (STR, False),
}
MISCONCEPTION_SPEC: Spec = {
    "id": (STR, True),
    "myth": (STR, True),
    "facts": (STR, True),
    "when": ((str, bool), True),
    "sources": (LIST, True),
}
CRISIS_SPEC: Spec = {"title": (STR, False), "protocol": (LIST, False), "resources": (LIST, False)}
RESOURCE_SPEC: Spec = {"name": (STR, True), "contact": (STR, True)}

_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true/false",
               list: "a list", dict: "a mapping"}


def load_ruleset(path: str | FsPath) -> Ruleset:
    """Load and check the rule set at ``path``.

    Returns the :class:`Ruleset`. Raises :class:`RulesetError` carrying every problem found
    (sorted by position) when there is at least one error; warnings alone do not raise.
    """
    ruleset, problems = check_ruleset(path)
    problems.raise_if_errors()
    assert ruleset is not None
    return ruleset


def check_ruleset(path: str | FsPath) -> tuple[Ruleset | None, Problems]:
    """Load ``path`` and return (ruleset or None, all problems including warnings)."""
    fs_path = FsPath(path)
    problems = Problems(str(path))
    try:
        raw = fs_path.read_bytes()
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
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add("E100", "encoding", f"the file is not UTF-8 (byte {exc.start})",
                     None, "save the file as UTF-8")
        return None, problems
    doc = read_yaml(text, problems)
    if doc is None:
        return None, problems
    builder = _Builder(doc, problems, str(path), hashlib.sha256(raw).hexdigest())
    ruleset = builder.build()
    if problems.errors:
        return None, problems
    return ruleset, problems


@dataclass
class _Builder:
    doc: Document
    problems: Problems
    path: str
    content_hash: str

    # -------------------------------------------------------------------------- helpers
    def add(self, code: str, name: str, message: str, at: Path, hint: str = "",
            level: str = "error", key: bool = False) -> None:
        mark = self.doc.key_mark(at) if key else self.doc.mark(at)
        self.problems.add(code, name, message, mark, hint, level)

    def fields(self, obj: Any, at: Path, spec: Spec, what: str) -> dict[str, Any] | None:
        """Check a mapping against ``spec``; return it (with only valid fields) or None."""
        if not isinstance(obj, dict):
            self.add("E301", "wrong-type", f"{what} must be a mapping of keys to values", at,
                     "write it as 'key: value' lines")
            return None
        good: dict[str, Any] = {}
        for key, value in obj.items():
            if key not in spec:
                self.add("E302", "unknown-key", f"unknown key '{key}' in {what}", at + (key,),
                         did_you_mean(str(key), spec) or "allowed keys: " + ", ".join(spec),
                         key=True)
                continue
            types, _ = spec[key]
            if value is None or not isinstance(value, types) or (
                isinstance(value, bool) and bool not in types
            ):
                if isinstance(value, bool) and str in types:
                    bool_word_warning(self.doc, at + (key,), self.problems, f"'{key}'")
                want = " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in types)
                self.add("E303", "wrong-type", f"'{key}' in {what} must be {want}", at + (key,),
                         'quote words like "no" and "yes"' if isinstance(value, bool) else "")
                continue
            good[key] = value
        for key, (_, required) in spec.items():
            if required and key not in obj:
                self.add("E304", "missing-key", f"{what} needs '{key}'", at,
                         f"add '{key}: ...'")
        return good

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
            if not isinstance(ref, str) or ref not in self.sources:
                self.add("E308", "unknown-source", f"source '{ref}' is not defined",
                         at + (key, i),
                         did_you_mean(str(ref), self.sources) or "add it under 'sources:'")
            else:
                out.append(ref)
        return tuple(out)

    def condition(self, text: Any, at: Path, symbols: dict[str, Symbol],
                  want: Type | None = expr.T_BOOL) -> Condition | None:
        try:
            return expr.parse(text, symbols, want)
        except ExprRejected as rej:
            p = rej.problem
            line, col = self.doc.mark(at)
            if isinstance(text, str) and "\n" not in text.strip():
                col += p.offset + len(text) - len(text.lstrip())
            self.problems.add(p.code, p.name, p.message, (line, col), p.hint)
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
        self.flags = self.build_flags(top.get("flags", []))
        self.symbols: dict[str, Symbol] = {}
        self.symbol_at: dict[str, Path] = {}
        self.order: dict[str, int] = {}  # question id -> position
        raw_questions = self.collect_questions(top.get("sections", []))
        instruments = self.build_instruments(top.get("instruments", []), raw_questions)
        derived = self.build_derived(top.get("derived", []))
        questions = self.finish_questions(raw_questions)
        instruments = self.finish_gates(instruments, top.get("instruments", []))
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
        if "effective" in meta and not DATE_RE.match(meta["effective"]):
            self.add("E309", "bad-date", "'effective' must be a date YYYY-MM-DD",
                     ("ruleset", "effective"), "e.g. effective: 2026-11-24")
        if not all(k in meta for k, (_, req) in META_SPEC.items() if req):
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
            out[sid] = Source(sid, body["kind"], body["cite"].strip())
        return out

    def build_levels(self, raw: list[Any]) -> tuple[Level, ...]:
        out: list[Level] = []
        seen: dict[str, Path] = {}
        if not raw:
            self.add("E311", "no-levels", "a rule set needs at least one level", ("levels",),
                     "list the levels from least to most intensive")
        for i, item in enumerate(raw):
            at: Path = ("levels", i)
            body = self.fields(item, at, LEVEL_SPEC, "a level")
            if body is None or not all(k in body for k in LEVEL_SPEC):
                continue
            if self.check_id(body["id"], at + ("id",), seen, "level"):
                out.append(Level(body["id"], body["label"], body["description"].strip(), i))
        return tuple(out)

    def build_flags(self, raw: list[Any]) -> dict[str, Flag]:
        out: dict[str, Flag] = {}
        seen: dict[str, Path] = {}
        for i, item in enumerate(raw):
            at: Path = ("flags", i)
            body = self.fields(item, at, FLAG_SPEC, "a flag")
            if body is None or not all(k in body for k in FLAG_SPEC):
                continue
            if body["severity"] not in SEVERITIES:
                self.add("E310", "bad-value", f"severity '{body['severity']}' is not known",
                         at + ("severity",), did_you_mean(body["severity"], SEVERITIES)
                         or "use one of: " + ", ".join(SEVERITIES))
                continue
            if self.check_id(body["id"], at + ("id",), seen, "flag"):
                out[body["id"]] = Flag(body["id"], body["label"], body["severity"])
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
            if body is None or "id" not in body:
                continue
            if not self.check_id(body["id"], at + ("id",), seen, "section"):
                continue
            ids: list[str] = []
            for qi, q in enumerate(body.get("questions", [])):
                qat = at + ("questions", qi)
                qb = self.fields(q, qat, QUESTION_SPEC, "a question")
                if qb is None or not all(k in qb for k in ("id", "text", "type")):
                    continue
                typ = self.question_type(qb, qat)
                if typ is None or not ID_RE.match(qb["id"]):
                    if not ID_RE.match(qb["id"]):
                        self.check_id(qb["id"], qat + ("id",), {}, "question")
                    continue
                if self.define(qb["id"], typ, "question", qat + ("id",)):
                    self.order[qb["id"]] = len(self.order)
                    ids.append(qb["id"])
                    out.append((qb, qat, body["id"]))
            sections.append(Section(body["id"], body.get("title", body["id"]), tuple(ids)))
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
        if not raw:
            self.add("E304", "missing-key", "a choice question needs a non-empty 'choices' list",
                     at, "add choices: - {code: ..., label: ...}")
            return None
        out: list[Choice] = []
        codes: dict[Any, Path] = {}
        labels: set[str] = set()
        kinds: set[type] = set()
        ok = True
        for i, item in enumerate(raw):
            cat = at + ("choices", i)
            body = self.fields(item, cat, CHOICE_SPEC, "a choice")
            if body is None or "code" not in body or "label" not in body:
                ok = False
                continue
            code = body["code"]
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
            out.append(Choice(code, body["label"]))
        if len(kinds) > 1:
            self.add("E315", "mixed-codes", "choice codes must be all numbers or all text",
                     at + ("choices",), "quote numeric codes or use numbers throughout")
            ok = False
        return out if ok else None

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
        mine = self.order[qid]
        for dep in sorted(self.questions_behind(cond.names), key=self.order.__getitem__):
            if self.order[dep] >= mine:
                self.add("E209", "skip-order",
                         f"'{qid}' is asked before '{dep}', which its ask_when depends on",
                         at, f"move '{qid}' after '{dep}', or change the condition")
                return

    # ---------------------------------------------------------------------- instruments
    def build_instruments(self, raw: list[Any],
                          questions: list[tuple[dict[str, Any], Path, str]]) -> tuple[Any, ...]:
        qinfo = {qb["id"]: qb for qb, _, _ in questions}
        self.depends: dict[str, frozenset[str]] = {}
        out = []
        for i, item in enumerate(raw):
            at: Path = ("instruments", i)
            body = self.fields(item, at, INSTRUMENT_SPEC, "an instrument")
            if body is None or not all(k in body for k, (_, r) in INSTRUMENT_SPEC.items() if r):
                continue
            iid = body["id"]
            if not ID_RE.match(iid):
                self.check_id(iid, at + ("id",), {}, "instrument")
                continue
            item_max: list[int] = []
            items: list[str] = []
            for j, qid in enumerate(body["items"]):
                iat = at + ("items", j)
                qb = qinfo.get(qid)
                if qb is None:
                    self.add("E201", "unknown-name", f"item '{qid}' is not a question", iat,
                             did_you_mean(str(qid), qinfo) or "define it under a section")
                    continue
                if qb["type"] == "yesno":
                    item_max.append(1)
                elif qb["type"] == "choice" and isinstance(qb["_choices"][0].code, int):
                    item_max.append(max(c.code for c in qb["_choices"]))
                    if min(c.code for c in qb["_choices"]) < 0:
                        self.add("E316", "bad-item", f"item '{qid}' has negative codes", iat,
                                 "item codes are the points each answer scores, from 0")
                else:
                    self.add("E316", "bad-item",
                             f"item '{qid}' cannot be scored (it is a {qb['type']} question)",
                             iat, "items must be yes/no or choice questions with number codes")
                    continue
                if qid in items:
                    self.add("E306", "duplicate-id", f"item '{qid}' is listed twice", iat)
                    continue
                items.append(qid)
            reverse = frozenset(body.get("reverse", []))
            for j, qid in enumerate(body.get("reverse", [])):
                if qid not in items:
                    self.add("E201", "unknown-name", f"reverse item '{qid}' is not an item",
                             at + ("reverse", j), did_you_mean(str(qid), items))
            missing = body.get("missing", "none")
            if missing not in MISSING_POLICIES:
                self.add("E310", "bad-value", f"missing policy '{missing}' is not known",
                         at + ("missing",), "use one of: " + ", ".join(MISSING_POLICIES))
            if "max_missing" in body and missing != "prorate":
                self.add("E313", "misplaced-key", "'max_missing' only applies to missing: prorate",
                         at + ("max_missing",), key=True)
            total = sum(item_max)
            bands = self.build_bands(body["bands"], at, total, iid)
            sources = self.source_refs(body, at)
            if not self.define(iid, expr.T_NUM, "score", at + ("id",)):
                continue
            self.define(f"{iid}_band", Type(expr.STR, frozenset(b.id for b in bands)), "band",
                        at + ("id",))
            self.depends[iid] = frozenset(items)
            self.depends[f"{iid}_band"] = frozenset([iid])
            out.append(dict(
                id=iid, title=body["title"], items=tuple(items), bands=bands, sources=sources,
                item_max=tuple(item_max), reverse=reverse, missing=missing,
                max_missing=body.get("max_missing", 0), gate_score=body.get("gate_score", 0),
                license=body.get("license", ""), minimal_change=body.get("minimal_change"),
                description=body.get("description", "").strip(),
            ))
        return tuple(out)

    def build_bands(self, raw: list[Any], at: Path, total: int, iid: str) -> tuple[Band, ...]:
        bands: list[tuple[Band, Path]] = []
        seen: dict[str, Path] = {}
        for i, item in enumerate(raw):
            bat = at + ("bands", i)
            body = self.fields(item, bat, BAND_SPEC, "a band")
            if body is None or not all(k in body for k in BAND_SPEC):
                continue
            if body["min"] > body["max"]:
                self.add("E314", "bad-range", f"band '{body['id']}' has min above max",
                         bat + ("min",), "swap min and max")
                continue
            if self.check_id(body["id"], bat + ("id",), seen, "band"):
                bands.append((Band(body["id"], body["min"], body["max"], body["label"]), bat))
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

    def finish_gates(self, built: tuple[Any, ...], raw: list[Any]) -> tuple[Instrument, ...]:
        out = []
        questions_only = {k: v for k, v in self.symbols.items() if v.role == "question"}
        raw_by_id = {r.get("id"): (i, r) for i, r in enumerate(raw) if isinstance(r, dict)}
        for spec in built:
            i, body = raw_by_id[spec["id"]]
            gate = None
            if "gate" in body:
                gat: Path = ("instruments", i, "gate")
                gate = self.condition(body["gate"], gat, questions_only)
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
                continue
            if not ID_RE.match(body["id"]):
                self.check_id(body["id"], at + ("id",), {}, "derived value")
                continue
            if body["id"] in self.symbols or body["id"] in bodies:
                self.define(body["id"], expr.T_BOOL, "derived", at + ("id",))  # reports it
                continue
            bodies[body["id"]] = (body, at)
        # Order by dependency first, so each is checked with the types of those it uses.
        deps = {d: _names_in(b["expr"]) & set(bodies) for d, (b, _) in bodies.items()}
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = trail[trail.index(name):] + [name]
                self.add("E210", "derived-cycle", "derived values depend on each other: "
                         + " -> ".join(cycle), bodies[name][1] + ("expr",),
                         "break the cycle; a derived value cannot depend on itself")
                return
            state[name] = 1
            for dep in sorted(deps[name]):
                visit(dep, trail + [name])
            state[name] = 2
            order.append(name)

        for name in bodies:
            visit(name, [])
        out = []
        for name in order:
            body, at = bodies[name]
            cond = self.condition(body["expr"], at + ("expr",), self.symbols, want=None)
            if cond is None:
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
            if body is None or not all(k in body for k, (_, r) in RULE_SPEC.items() if r):
                continue
            ok = self.check_id(body["id"], at + ("id",), seen, "rule")
            level = body.get("min_level")
            if level is not None and level not in level_ids:
                self.add("E211", "unknown-level", f"level '{level}' is not defined",
                         at + ("min_level",), did_you_mean(level, level_ids)
                         or "levels: " + ", ".join(level_ids))
                ok = False
            flags = body.get("flags", [])
            for j, flag in enumerate(flags):
                if flag not in self.flags:
                    self.add("E212", "unknown-flag", f"flag '{flag}' is not defined",
                             at + ("flags", j), did_you_mean(str(flag), self.flags)
                             or "define it under 'flags:'")
                    ok = False
            if level is None and not flags:
                self.add("E213", "no-effect", f"rule '{body['id']}' has no effect", at,
                         "give it a 'min_level', 'flags', or both")
                ok = False
            when = self.condition(body["when"], at + ("when",), self.symbols)
            sources = self.source_refs(body, at)
            if ok and when is not None:
                out.append(Rule(body["id"], body["title"], when, body["reason"].strip(),
                                sources, level, tuple(flags), body.get("category", "clinical")))
        return tuple(out)

    def build_misconceptions(self, raw: list[Any]) -> tuple[Misconception, ...]:
        out = []
        seen: dict[str, Path] = {}
        for i, item in enumerate(raw):
            at: Path = ("misconceptions", i)
            body = self.fields(item, at, MISCONCEPTION_SPEC, "a misconception")
            if body is None or not all(k in body for k in MISCONCEPTION_SPEC):
                continue
            ok = self.check_id(body["id"], at + ("id",), seen, "misconception")
            when = self.condition(body["when"], at + ("when",), self.symbols)
            sources = self.source_refs(body, at)
            if ok and when is not None:
                out.append(Misconception(body["id"], body["myth"].strip(), body["facts"].strip(),
                                         when, sources))
        return tuple(out)

    def build_crisis(self, raw: Any) -> Crisis:
        if raw is None:
            if any(f.severity == "crisis" for f in self.flags.values()):
                self.add("E319", "missing-crisis",
                         "a crisis flag is defined but there is no 'crisis' protocol", ("flags",),
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
        protocol = []
        for i, step in enumerate(body.get("protocol", [])):
            if not isinstance(step, str):
                self.add("E303", "wrong-type", "each protocol step must be text",
                         ("crisis", "protocol", i))
            else:
                protocol.append(step.strip())
        return Crisis(body.get("title", Crisis.title), tuple(protocol), tuple(resources))

    def check_reachable(self, rules: tuple[Rule, ...], raw_levels: list[Any]) -> None:
        reached = {r.min_level for r in rules}
        for lv in self.levels[1:]:
            if lv.id not in reached:
                self.add("W201", "unreachable-level",
                         f"no rule can raise the result to level '{lv.id}'",
                         ("levels", lv.rank, "id"),
                         f"add a rule with 'min_level: {lv.id}', or remove the level", WARNING)


def _names_in(text: Any) -> set[str]:
    """Names in an expression, before checking (for ordering); empty if it does not parse."""
    if not isinstance(text, str):
        return set()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def format_problems(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(d.render() for d in diagnostics)

