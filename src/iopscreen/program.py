"""Compile a whole rule set, once, into one Python function that screens one set of answers.

The function's source is generated from the *checked* condition trees (see :mod:`iopscreen.expr`),
never from rule-set text, and runs in a namespace holding only our helpers and no builtins. It is
what makes batch screening fast: one call per row, values in a flat list, no per-rule dispatch.

The generated function ``run(v, d)`` takes
  ``v``: a list with one slot per question (typed value or None), followed by empty slots for
         scores, bands and derived values, which it fills in;
  ``d``: the set of declined question ids (mutated: entries for not-applicable questions go);
and returns ``(rule_truths, misconception_truths, ask_truths, ignored)``: tuples of
True/False/None in rule-set order, the ask_when truth per question, and the ids of answered
questions that skip logic made not applicable (their slots are cleared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import expr
from .ruleset.model import Instrument, Ruleset


@dataclass(frozen=True)
class Program:
    ruleset: Ruleset
    slots: dict[str, int]
    size: int
    run: Callable[[list[Any], set[str]], tuple[Any, ...]]
    source: str
    behind: dict[str, frozenset[str]]  # name -> questions it depends on, transitively


def _score(values: tuple[Any, ...], policy: int, max_missing: int) -> Any:
    missing = 0
    total = 0
    for x in values:
        if x is None:
            missing += 1
        else:
            total += x
    if not missing:
        return total
    if policy == 2:  # zero
        return total
    if policy == 1 and missing <= max_missing and missing < len(values):  # prorate, half up
        return int(total * len(values) / (len(values) - missing) + 0.5)
    return None


_POLICY = {"none": 0, "prorate": 1, "zero": 2}


def compile_program(ruleset: Ruleset) -> Program:
    """Build the screening function for ``ruleset``; returns a :class:`Program`."""
    slots: dict[str, int] = {}
    for qid in ruleset.questions:
        slots[qid] = len(slots)
    for inst in ruleset.instruments:
        slots[inst.id] = len(slots)
        slots[f"{inst.id}_band"] = len(slots)
    for der in ruleset.derived:
        slots[der.id] = len(slots)

    ctx = expr.EmitContext(slot=lambda n: f"v[{slots[n]}]", declined=lambda n: f"({n!r} in d)")
    by_name: dict[str, Any] = {i.id: i for i in ruleset.instruments}
    by_name.update({f"{i.id}_band": i for i in ruleset.instruments})
    by_name.update({d.id: d for d in ruleset.derived})
    deps: dict[str, frozenset[str]] = {}
    for inst in ruleset.instruments:
        gate_names = inst.gate.names if inst.gate else frozenset()
        deps[inst.id] = frozenset(inst.items) | gate_names
        deps[f"{inst.id}_band"] = frozenset([inst.id])
    for der in ruleset.derived:
        deps[der.id] = der.expr.names

    lines = ["def run(v, d):", "    ign = []"]
    done: set[str] = set()

    def ensure(name: str) -> None:
        """Emit the computation of a score/band/derived value (and what it needs) once."""
        if name in done or name in ruleset.questions:
            return
        for dep in sorted(deps[name]):
            ensure(dep)
        done.add(name)
        item = by_name[name]
        if name.endswith("_band") and isinstance(item, Instrument) and name != item.id:
            lines.append(f"    v[{slots[name]}] = {_band_source(item, slots[item.id])}")
        elif isinstance(item, Instrument):
            lines.append(f"    v[{slots[name]}] = {_score_source(item, slots, ctx)}")
        else:
            lines.append(f"    v[{slots[name]}] = {expr.emit(item.expr.node, ctx)}")

    ask_parts = []
    for qid, q in ruleset.questions.items():
        if q.ask_when is None:
            ask_parts.append("True")
            continue
        for name in sorted(q.ask_when.names):
            ensure(name)
        s = slots[qid]
        lines.append(f"    a{s} = {expr.emit(q.ask_when.node, ctx)}")
        lines.append(f"    if a{s} is False and (v[{s}] is not None or {qid!r} in d):")
        lines.append(f"        v[{s}] = None; d.discard({qid!r}); ign.append({qid!r})")
        ask_parts.append(f"a{s}")
    for name in slots:
        ensure(name)
    rules = ", ".join(expr.emit(r.when.node, ctx) for r in ruleset.rules)
    miscs = ", ".join(expr.emit(m.when.node, ctx) for m in ruleset.misconceptions)
    lines.append(f"    return ({rules}{',' if rules else ''}), ({miscs}{',' if miscs else ''}), "
                 f"({', '.join(ask_parts)},), ign")
    source = "\n".join(lines) + "\n"

    namespace = expr.runtime_namespace()
    namespace["_score"] = _score
    namespace.update(ctx.constants)
    # Safe: `source` is generated from checked trees and identifiers we validated; see expr.py.
    code = compile(source, f"<ruleset {ruleset.id} {ruleset.version}>", "exec")
    exec(code, namespace)  # noqa: S102 - generated from the checked tree, no builtins

    behind: dict[str, frozenset[str]] = {}

    def questions_behind(name: str) -> frozenset[str]:
        if name in ruleset.questions:
            return frozenset([name])
        if name not in behind:
            acc: set[str] = set()
            for dep in deps[name]:
                acc |= questions_behind(dep)
            behind[name] = frozenset(acc)
        return behind[name]

    for name in slots:
        questions_behind(name)
    return Program(ruleset, slots, len(slots), namespace["run"], source,
                   {**behind, **{q: frozenset([q]) for q in ruleset.questions}})


def _score_source(inst: Instrument, slots: dict[str, int], ctx: expr.EmitContext) -> str:
    parts = []
    for qid, top in zip(inst.items, inst.item_max):
        ref = f"v[{slots[qid]}]"
        parts.append(f"(None if {ref} is None else {top} - {ref})" if qid in inst.reverse else ref)
    call = f"_score(({', '.join(parts)},), {_POLICY[inst.missing]}, {inst.max_missing})"
    if inst.gate is None:
        return call
    g = ctx.temp()
    return f"({inst.gate_score} if ({g} := {expr.emit(inst.gate.node, ctx)}) is False else {call})"


def _band_source(inst: Instrument, score_slot: int) -> str:
    ordered = sorted(inst.bands, key=lambda b: b.min)
    chain = " else ".join(f"{b.id!r} if s <= {b.max}" for b in ordered[:-1])
    last = repr(ordered[-1].id)
    ref = f"v[{score_slot}]"
    body = f"{chain} else {last}" if chain else last
    return f"(None if (s := {ref}) is None else {body})"
