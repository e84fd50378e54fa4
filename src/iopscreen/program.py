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
    parts: _Parts  # the generated pieces, for batch_runner

    def batch_runner(self, effects: tuple[int, ...]) -> Callable[[list[Any], set[str]],
                                                                  tuple[Any, ...]]:
        """``run`` as batch screening wants it: ``(effect, unknown, fired, misconception
        truths, not_applicable, ignored)``, where ``effect`` ORs ``effects[i]`` of each rule i
        that is true, bit i of ``unknown`` is set for each rule i left unknown, ``fired``
        lists the ids of the true rules in rule-set order, and bit i of ``not_applicable``
        is set for each question i that skip logic leaves out. Values and ``d`` are updated
        as ``run`` updates them.
        """
        p = self.parts
        lines = ["def run_batch(v, d):", *p.body, "    _e = _u = 0", "    _f = []"]
        for i, (rule, source) in enumerate(zip(self.ruleset.rules, p.rules)):
            lines += [f"    _r = {source}",
                      f"    if _r: _e |= {effects[i]}; _f.append({rule.id!r})",
                      f"    elif _r is None: _u |= {1 << i}"]
        lines.append(f"    return _e, _u, _f, {p.miscs}, _na, ign")
        space = _compile("\n".join(lines) + "\n", p.namespace, self.ruleset, "batch")
        run_batch: Callable[[list[Any], set[str]], tuple[Any, ...]] = space["run_batch"]
        return run_batch


@dataclass(frozen=True)
class _Parts:
    body: tuple[str, ...]  # statements: answers cleared by skip logic, scores, derived values
    rules: tuple[str, ...]  # an expression per rule
    miscs: str  # the misconception truths, a tuple expression
    namespace: dict[str, Any]


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

    namespace = expr.runtime_namespace()
    namespace.update(_score=_score, _TypeError=TypeError, _KeyError=KeyError)
    body = ["    ign = []", "    _na = 0"]
    done: set[str] = set()

    def ensure(name: str) -> None:
        """Emit the computation of a score/band/derived value (and what it needs) once."""
        if name in done or name in ruleset.questions:
            return
        for dep in sorted(deps[name]):
            ensure(dep)
        done.add(name)
        item = by_name[name]
        target = f"v[{slots[name]}]"
        if name.endswith("_band") and isinstance(item, Instrument) and name != item.id:
            body.extend(_band_lines(item, target, slots[item.id], ctx))
        elif isinstance(item, Instrument):
            body.extend(_score_lines(item, target, slots, ctx))
        else:
            body.append(f"    {target} = {expr.emit(item.expr.node, ctx)}")

    ask_parts = []
    last_ask, ask_var = "", ""  # questions in a row asked under one condition share its test
    for qid, q in ruleset.questions.items():
        if q.ask_when is None:
            ask_parts.append("True")
            last_ask = ""
            continue
        for name in sorted(q.ask_when.names):
            ensure(name)
        s = slots[qid]
        if q.ask_when.text != last_ask:
            # Safe to share: a condition reads only earlier questions (checked when
            # loading), and clearing one of the questions sharing it changes none of those.
            last_ask, ask_var = q.ask_when.text, f"a{s}"
            body += [f"    {ask_var} = {expr.emit(q.ask_when.node, ctx)}",
                     f"    if {ask_var} is False:"]
        body += [f"        _na |= {1 << s}",
                 f"        if v[{s}] is not None or {qid!r} in d:",
                 f"            v[{s}] = None; d.discard({qid!r}); ign.append({qid!r})"]
        ask_parts.append(ask_var)
    for name in slots:
        ensure(name)
    rule_sources = tuple(expr.emit(r.when.node, ctx) for r in ruleset.rules)
    miscs = ", ".join(expr.emit(m.when.node, ctx) for m in ruleset.misconceptions)
    misc_tuple = f"({miscs}{',' if miscs else ''})"
    rules = ", ".join(rule_sources)
    namespace.update(ctx.constants)
    asks = f"({', '.join(ask_parts)},)"
    lines = ["def run(v, d):", *body,
             f"    return ({rules}{',' if rules else ''}), {misc_tuple}, {asks}, ign"]
    source = "\n".join(lines) + "\n"
    run = _compile(source, namespace, ruleset, "run")["run"]

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
    return Program(ruleset, slots, len(slots), run, source,
                   {**behind, **{q: frozenset([q]) for q in ruleset.questions}},
                   _Parts(tuple(body), rule_sources, misc_tuple, namespace))


def _compile(source: str, namespace: dict[str, Any], ruleset: Ruleset,
             what: str) -> dict[str, Any]:
    """Run generated ``source`` in a copy of ``namespace``; returns the namespace.

    Safe: the source is generated from checked trees and identifiers we validated (see
    expr.py), and the namespace holds our helpers and no builtins."""
    space = dict(namespace)
    code = compile(source, f"<ruleset {ruleset.id} {ruleset.version} {what}>", "exec")
    exec(code, space)  # noqa: S102 - generated from the checked tree, no builtins
    return space


def _score_lines(inst: Instrument, target: str, slots: dict[str, int],
                 ctx: expr.EmitContext) -> list[str]:
    """Statements setting ``target`` to the instrument's score.

    Most answer sets have every item, so the score is a plain sum from 0 in item order, as
    :func:`_score` adds them (same number, same type); an unanswered item (None) makes the
    sum raise TypeError, and only then does _score apply the missing-item policy. A gated
    instrument scores ``gate_score`` when its gate is False.
    """
    fast, slow = [], []
    for qid, top in zip(inst.items, inst.item_max):
        ref = f"v[{slots[qid]}]"
        if qid in inst.reverse:
            fast.append(f"({top} - {ref})")
            slow.append(f"(None if {ref} is None else {top} - {ref})")
        else:
            fast.append(ref)
            slow.append(ref)
    lines = ["try:",
             f"    {target} = 0 + {' + '.join(fast)}",
             "except _TypeError:",
             f"    {target} = _score(({', '.join(slow)},), {_POLICY[inst.missing]}, "
             f"{inst.max_missing})"]
    if inst.gate is not None:
        lines = [f"if {expr.emit(inst.gate.node, ctx)} is False:",
                 f"    {target} = {inst.gate_score}",
                 "else:", *("    " + line for line in lines)]
    return ["    " + line for line in lines]


BAND_TABLE_LIMIT = 10_000  # wider score ranges use the comparisons alone


def _band_lines(inst: Instrument, target: str, score_slot: int,
                ctx: expr.EmitContext) -> list[str]:
    """Statements setting ``target`` to the band of the score in ``score_slot``: one lookup
    in a table of every whole score the bands cover (and None), each entry found with the
    comparisons themselves; any other score (outside, or a fraction) takes the comparisons."""
    ordered = sorted(inst.bands, key=lambda b: b.min)
    chain = " else ".join(f"{b.id!r} if s <= {b.max}" for b in ordered[:-1])
    last = repr(ordered[-1].id)
    bands = f"{chain} else {last}" if chain else last
    compare = f"(None if (s := v[{score_slot}]) is None else {bands})"
    lo, hi = ordered[0].min, ordered[-1].max
    if not (isinstance(lo, int) and isinstance(hi, int)) or hi - lo > BAND_TABLE_LIMIT:
        return [f"    {target} = {compare}"]
    table: dict[Any, Any] = {None: None}
    for score in range(lo, hi + 1):
        table[score] = band_id_for(inst, score)
    name = ctx.const(table)
    return ["    try:", f"        {target} = {name}[v[{score_slot}]]", "    except _KeyError:",
            f"        {target} = {compare}"]


def band_id_for(inst: Instrument, score: int) -> str:
    """The band of a whole score as the compiled program finds it: the first band, in order of
    ``min``, whose ``max`` the score does not pass; else the last."""
    ordered = sorted(inst.bands, key=lambda b: b.min)
    return next((b.id for b in ordered[:-1] if score <= b.max), ordered[-1].id)
