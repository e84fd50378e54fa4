"""Screening a block of rows at once: each condition is evaluated for every row together.

Row by row, CPython spends about ten microseconds a row on the compiled program and its
bookkeeping. Here a block of N rows is held column-wise in *byte lanes*: Python integers with
one byte per row (row i in byte i, little-endian), so one integer operation (``&``, ``|``,
``+``, ``-``) works on every row of the block at C speed.

What a lane holds, per row:

* a truth is a pair ``(T, F)`` of 0/1 lanes: True, False, or neither (unknown), as the
  engine's Kleene logic has it;
* a number is ``(X, K)``: the value (0..127, so comparisons cannot carry into the next byte)
  and a 0/1 lane saying it is known;
* a choice code or band is ``(I, K)``: the index of the code in the node's list of codes;
* a multiple-choice or free-text answer is only ever read through its column's codes.

Each cell is first turned into a one-byte code by one dict lookup (the column's known texts,
each parsed once by the question's own :class:`AnswerParser`); everything after that is lane
arithmetic. Rows this cannot screen exactly are *marked*, and the caller screens them one at a
time on the engine's path: a cell the parser rejects, an answer that skip logic drops, a row of
the wrong length or without an id, an instrument scored by prorating a missing item. A rule
set using something the lanes do not do (division, a negative number, a number above 127 in
arithmetic, ...) gets no plan at all, and every row goes the row-at-a-time way.

Tests compare this path with the row-at-a-time one on generated rows (tests/test_lanes.py).
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass
from itertools import chain, compress, repeat
from operator import itemgetter
from typing import Any, Callable, Iterable, Sequence

from . import expr
from .program import band_id_for
from .answers import AnswerParser, InvalidAnswer
from .ruleset.model import Instrument, Question, Ruleset

TOP = 127  # the largest number a lane holds exactly
BLANK, DECLINED, BAD = 253, 254, 255  # codes of a blank cell, a declined answer, a bad cell
CODES_LIMIT = 4096  # most distinct cell texts a column remembers


class Unsupported(Exception):
    """The rule set uses something the lanes do not evaluate."""


def _table(pairs: Iterable[tuple[int, int]]) -> bytes:
    """A bytes.translate table: code -> byte, 0 for every code not given."""
    out = bytearray(256)
    for code, byte in pairs:
        out[code] = byte
    return bytes(out)


_KNOWN = _table((c, 1) for c in range(BLANK))
_DECLINED = _table([(DECLINED, 1)])
_BAD = _table([(BAD, 1)])


class Column:
    """One question: how its cells become codes, and which lanes its codes give."""

    def __init__(self, question: Question, slot: int, col: int | None):
        self.question = question
        self.slot = slot
        self.col = col
        self.parser = AnswerParser(question)
        self.kind = {"yesno": expr.BOOL, "integer": expr.NUM, "multi": expr.SET,
                     "text": expr.TEXT}.get(question.type, "")
        self.saturated = False  # numbers above TOP read as TOP (only compared with literals)
        self.lo = self.hi = 0
        self.domain: tuple[Any, ...] = ()
        self.sets: list[frozenset[Any]] = []  # for multi: code -> the set of choices
        self._tables: dict[tuple[str, Any], bytes] = {}  # member and count tables
        if question.type == "choice":
            codes = [c.code for c in question.choices]
            if all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
                if min(codes) < 0:
                    raise Unsupported(f"{question.id}: a negative choice code")
                self.kind, self.lo, self.hi = expr.NUM, min(codes), max(codes)
                self.saturated = self.hi > TOP
            elif all(isinstance(c, str) for c in codes):
                self.kind, self.domain = expr.STR, tuple(codes)
            else:
                raise Unsupported(f"{question.id}: choice codes of mixed kinds")
        elif question.type == "integer":
            if question.min is None or question.min < 0:
                raise Unsupported(f"{question.id}: numbers may be negative")
            self.lo, self.hi = question.min, question.max if question.max is not None else 1 << 62
            self.saturated = self.hi > TOP
        elif question.type == "yesno":
            self.hi = 1
        self.codes: dict[str, int] = {}
        for text in self.parser.likely_texts():
            self.learn(text)

    def encode(self, value: Any) -> int:
        """The code of a parsed value; BAD when there is no room for another."""
        if self.kind == expr.BOOL:
            return int(bool(value))
        if self.kind == expr.NUM:
            return min(int(value), TOP)
        if self.kind == expr.STR:
            return self.domain.index(value)
        if self.kind == expr.SET:
            if value not in self.sets:
                if len(self.sets) >= BLANK:
                    return BAD
                self.sets.append(value)
                self._tables.clear()
            return self.sets.index(value)
        return 0  # free text: answered

    def learn(self, text: str) -> int:
        """Parse ``text`` once and remember its code."""
        try:
            answer = self.parser.parse(text)
        except InvalidAnswer:
            code = BAD
        else:
            if answer is None:
                code = BLANK
            elif answer.declined:
                code = DECLINED
            else:
                code = self.encode(answer.value)
        if len(self.codes) < CODES_LIMIT:
            self.codes[text] = code
        return code

    def block_codes(self, cells: Sequence[str]) -> bytes:
        """The codes of a column's cells, learning the texts not seen before."""
        get = self.codes.get
        codes = bytes(map(get, cells, repeat(BAD)))
        if BAD in codes:
            new = {cell for cell in compress(cells, map(BAD.__eq__, codes))
                   if cell not in self.codes}
            if new:
                local = {cell: self.learn(cell) for cell in new}
                look = {**self.codes, **local} if len(self.codes) >= CODES_LIMIT else self.codes
                codes = bytes(map(look.get, cells, repeat(BAD)))
        return codes

    def values_table(self) -> bytes:
        """Code -> number (NUM) or index (STR) or 1 for True (BOOL)."""
        if self.kind == expr.NUM:
            return _table((c, c) for c in range(TOP + 1))
        if self.kind == expr.STR:
            return _table((i, i) for i in range(len(self.domain)))
        return _table([(1, 1)])

    def false_table(self) -> bytes:
        return _table([(0, 1)])

    def member_table(self, choice: Any) -> bytes:
        """Code -> 1 where the set of choices holds ``choice`` (kept until a set is added)."""
        key = ("in", choice)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = _table((i, 1) for i, s in enumerate(self.sets)
                                               if choice in s)
        return table

    def count_table(self) -> bytes:
        """Code -> how many choices its set holds (kept until a set is added)."""
        key = ("count", None)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = _table((i, len(s)) for i, s in enumerate(self.sets))
        return table


# ----------------------------------------------------------------------------------- blocks


class Block:
    """One block's lanes, computed as they are first needed."""

    def __init__(self, n: int, codes: list[bytes]):
        self.n = n
        self.one = int.from_bytes(b"\x01" * n, "little")
        self.high = self.one << 7  # 0x80 in every byte
        self.codes = codes  # per question slot
        self.cache: dict[Any, Any] = {}
        self.fallback = 0  # rows to screen one at a time (a 0/1 lane)

    def lane(self, slot: int, table: bytes) -> int:
        key = (slot, table)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = int.from_bytes(self.codes[slot].translate(table), "little")
        return hit

    def spread(self, mask: int) -> int:
        """A 0/1 lane as 0x00/0xFF bytes."""
        return mask * 255

    def ge(self, x: int, y: int) -> int:
        """0/1 lane: x >= y, for lanes of numbers 0..127 (x + 128 - y never borrows from the
        next byte, and has bit 7 set exactly when x >= y)."""
        return (((x | self.high) - y) & self.high) >> 7

    def eq(self, x: int, y: int) -> int:
        """0/1 lane: x == y (((x ^ y) | 0x80) - 1 keeps bit 7 exactly where x != y)."""
        return self.one ^ ((((x ^ y) | self.high) - self.one) & self.high) >> 7


Truth = tuple[int, int]
Number = tuple[int, int]


@dataclass(frozen=True)
class Compiled:
    """A compiled node: its kind, and ``fn(block)`` giving its lanes."""

    kind: str
    fn: Callable[[Block], Any]
    lo: int = 0
    hi: int = 0
    saturated: bool = False
    domain: tuple[Any, ...] = ()
    column: Column | None = None  # a question's own column (multi and text answers)


class Compiler:
    """Turns checked condition trees into functions of a :class:`Block`."""

    def __init__(self, ruleset: Ruleset, columns: dict[str, Column]):
        self.ruleset = ruleset
        self.columns = columns
        self.instruments = {i.id: i for i in ruleset.instruments}
        self.bands = {f"{i.id}_band": i for i in ruleset.instruments}
        self.derived = {d.id: d for d in ruleset.derived}
        self.names: dict[str, Compiled] = {}

    # -- names
    def name(self, name: str) -> Compiled:
        hit = self.names.get(name)
        if hit is None:
            hit = self.names[name] = self._name(name)
        return hit

    def _name(self, name: str) -> Compiled:
        if name in self.columns:
            return self._question(self.columns[name])
        if name in self.instruments:
            return self._score(self.instruments[name])
        if name in self.bands:
            return self._band(self.bands[name])
        if name in self.derived:
            inner = self.node(self.derived[name].expr.node)
            return _cached(name, inner)
        raise Unsupported(f"unknown name {name}")

    def _question(self, c: Column) -> Compiled:
        slot = c.slot
        if c.kind == expr.BOOL:
            t_tab, f_tab = c.values_table(), c.false_table()
            return Compiled(expr.BOOL, lambda b: (b.lane(slot, t_tab), b.lane(slot, f_tab)),
                            hi=1, column=c)
        if c.kind in (expr.NUM, expr.STR):
            v_tab = c.values_table()
            return Compiled(c.kind, lambda b: (b.lane(slot, v_tab), b.lane(slot, _KNOWN)),
                            lo=c.lo, hi=min(c.hi, TOP), saturated=c.saturated, domain=c.domain,
                            column=c)
        return Compiled(c.kind, lambda b: None, column=c)  # multi, text: through their codes

    def known(self, c: Compiled) -> Callable[[Block], int]:
        """0/1 lane: the value is not None."""
        if c.column is not None:
            slot = c.column.slot
            return lambda b: b.lane(slot, _KNOWN)
        if c.kind == expr.BOOL:
            return lambda b: _or(c.fn(b))
        if c.kind in (expr.NUM, expr.STR):
            return lambda b: c.fn(b)[1]
        raise Unsupported("answered() of this")

    def _score(self, inst: Instrument) -> Compiled:
        items = []
        for qid, top in zip(inst.items, inst.item_max):
            c = self.name(qid)
            if c.kind not in (expr.NUM, expr.BOOL) or c.saturated:
                raise Unsupported(f"{inst.id}: item {qid} is not a small number")
            items.append((c, top, qid in inst.reverse))
        hi = sum(top if rev else (1 if c.kind == expr.BOOL else c.hi) for c, top, rev in items)
        if not 0 <= inst.gate_score <= TOP or hi > TOP:
            raise Unsupported(f"{inst.id}: scores above {TOP}")
        gate = self.node(inst.gate.node) if inst.gate is not None else None
        policy = inst.missing

        def fn(b: Block) -> Number:
            total = 0
            known = b.one
            for c, top, rev in items:
                x, k = _number(c, b)
                if rev:
                    x = (top * b.one - x) & b.spread(k)  # a missing item adds 0, as _score
                total += x
                known &= k
            if policy == "zero":
                known = b.one
            gate_false = 0
            if gate is not None:
                gate_false = gate.fn(b)[1]
                keep = b.spread(b.one ^ gate_false)
                total = (total & keep) | (inst.gate_score * gate_false)
                known = (known & keep) | gate_false
            if policy == "prorate":  # a missing item is prorated one row at a time
                b.fallback |= (b.one ^ known) & ~gate_false
            return total, known

        return _cached(inst.id, Compiled(expr.NUM, fn, lo=0, hi=max(hi, inst.gate_score)))

    def _band(self, inst: Instrument) -> Compiled:
        score = self.name(inst.id)
        domain = tuple(b.id for b in inst.bands)
        table = _table((s, domain.index(band_id_for(inst, s))) for s in range(score.hi + 1))

        def fn(b: Block) -> Number:
            x, k = score.fn(b)
            return int.from_bytes(x.to_bytes(b.n, "little").translate(table), "little"), k

        return _cached(f"{inst.id}_band", Compiled(expr.STR, fn, domain=domain))

    # -- nodes
    def truth(self, node: expr.Node) -> Callable[[Block], Truth]:
        c = self.node(node)
        if c.kind != expr.BOOL:
            raise Unsupported("a condition that is not true/false")
        return c.fn

    def node(self, node: expr.Node) -> Compiled:
        if isinstance(node, expr.Name):
            return self.name(node.id)
        if isinstance(node, expr.Lit):
            return _literal(node.value)
        if isinstance(node, expr.Not):
            inner = self.truth(node.operand)
            return Compiled(expr.BOOL, lambda b: inner(b)[::-1])
        if isinstance(node, expr.BoolOp):
            parts = [self.truth(i) for i in node.items]
            return Compiled(expr.BOOL, _and(parts) if node.op == "and" else _or_op(parts))
        if isinstance(node, expr.Compare):
            return self._compare(node)
        if isinstance(node, expr.Arith):
            return self._arith(node)
        if isinstance(node, expr.IfElse):
            return self._ifelse(node)
        if isinstance(node, expr.Call):
            return self._call(node)
        raise Unsupported(type(node).__name__)

    def _compare(self, node: expr.Compare) -> Compiled:
        op, left, right = node.op, node.left, node.right
        if op in ("in", "notin"):
            return self._member(left, right, op == "notin")
        if isinstance(left, expr.Lit) and not isinstance(right, expr.Lit):
            left, right = right, left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        a = self.node(left)
        if isinstance(right, expr.Lit):
            return self._against_literal(a, op, right.value)
        b = self.node(right)
        if a.kind != b.kind or a.saturated or b.saturated:
            raise Unsupported("this comparison")
        if a.kind == expr.BOOL and op in ("==", "!="):
            fa, fb = a.fn, b.fn

            def same(blk: Block) -> Truth:
                (ta, xa), (tb, xb) = fa(blk), fb(blk)
                return (ta & tb) | (xa & xb), (ta & xb) | (xa & tb)

            return Compiled(expr.BOOL, same if op == "==" else lambda blk: same(blk)[::-1])
        if a.kind == expr.STR and (op not in ("==", "!=") or a.domain != b.domain):
            raise Unsupported("comparing codes")
        if a.kind not in (expr.NUM, expr.STR):
            raise Unsupported("this comparison")
        fa, fb = a.fn, b.fn
        flip = op in ("<", "<=")
        if flip:
            fa, fb = fb, fa
            op = ">" if op == "<" else ">="

        def both(blk: Block) -> Truth:
            (x, kx), (y, ky) = fa(blk), fb(blk)
            known = kx & ky
            if op == ">=":
                true = blk.ge(x, y)
            elif op == ">":
                true = _gt(blk, x, y)
            elif op == "==":
                true = blk.eq(x, y)
            else:
                true = blk.one ^ blk.eq(x, y)
            true &= known
            return true, known ^ true

        return Compiled(expr.BOOL, both)

    def _against_literal(self, a: Compiled, op: str, value: Any) -> Compiled:
        fa = a.fn
        if a.kind == expr.BOOL:
            if not isinstance(value, bool) or op not in ("==", "!="):
                raise Unsupported("this comparison with True/False")
            keep = (op == "==") == value
            return Compiled(expr.BOOL, fa if keep else lambda b: fa(b)[::-1])
        if a.kind == expr.STR:
            if not isinstance(value, str) or op not in ("==", "!="):
                raise Unsupported("this comparison of a code")
            if value not in a.domain:
                res = op == "!="
                return Compiled(expr.BOOL, lambda b: (fa(b)[1], 0) if res else (0, fa(b)[1]))
            index = a.domain.index(value)
            return Compiled(expr.BOOL, _compare_const(fa, "==", index, op == "!="))
        if a.kind != expr.NUM or isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise Unsupported("this comparison of a number")
        if op in ("==", "!="):
            if a.saturated and value >= TOP:
                raise Unsupported("comparing a large number")
            if value != int(value) or not 0 <= value <= TOP:  # no lane holds it
                res = op == "!="
                return Compiled(expr.BOOL, lambda b: (fa(b)[1], 0) if res else (0, fa(b)[1]))
            return Compiled(expr.BOOL, _compare_const(fa, "==", int(value), op == "!="))
        # x >= k, x > k, x < k, x <= k as x >= k' (or its negation) with a whole k'
        if op in (">=", "<"):
            k = math.ceil(value)
        else:
            k = math.floor(value) + 1
        k = max(0, min(k, TOP + 1))
        if a.saturated and k > TOP:
            raise Unsupported("comparing a large number")
        return Compiled(expr.BOOL, _compare_const(fa, ">=", k, op in ("<", "<=")))

    def _member(self, left: expr.Node, right: expr.Node, negate: bool) -> Compiled:
        if isinstance(right, expr.Name) and isinstance(left, expr.Lit):
            c = self.name(right.id).column
            if c is None or c.kind != expr.SET:
                raise Unsupported("'in' on this")
            choice, slot = left.value, c.slot

            def member(b: Block) -> Truth:
                known = b.lane(slot, _KNOWN)
                true = int.from_bytes(b.codes[slot].translate(c.member_table(choice)),
                                      "little") & known
                return (known ^ true, true) if negate else (true, known ^ true)

            return Compiled(expr.BOOL, member)
        if isinstance(right, expr.Seq):
            a = self.node(left)
            values = [i.value for i in right.items if isinstance(i, expr.Lit)]
            fa = a.fn
            if a.kind == expr.STR and all(isinstance(v, str) for v in values):
                idx = sorted({a.domain.index(v) for v in values if v in a.domain})
            elif a.kind == expr.NUM and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in values):
                if a.saturated and any(v >= TOP for v in values):
                    raise Unsupported("'in' with a large number")
                idx = sorted({v for v in values if 0 <= v <= TOP})
            else:
                raise Unsupported("'in' on this")

            def among(b: Block) -> Truth:
                x, known = fa(b)
                true = 0
                for i in idx:
                    true |= b.eq(x, i * b.one)
                true &= known
                return (known ^ true, true) if negate else (true, known ^ true)

            return Compiled(expr.BOOL, among)
        raise Unsupported("this 'in'")

    def _arith(self, node: expr.Arith) -> Compiled:
        a, b = self.node(node.left), self.node(node.right)
        if a.kind != expr.NUM or b.kind != expr.NUM or a.saturated or b.saturated:
            raise Unsupported("this arithmetic")
        if node.op == "+":
            lo, hi = a.lo + b.lo, a.hi + b.hi
        elif node.op == "*":
            lo, hi = a.lo * b.lo, a.hi * b.hi
        else:
            raise Unsupported(f"'{node.op}'")
        if hi > TOP or lo < 0:
            raise Unsupported("a sum above the lanes' range")
        fa, fb, op = a.fn, b.fn, node.op

        def arith(blk: Block) -> Number:
            (x, kx), (y, ky) = fa(blk), fb(blk)
            known = kx & ky
            if op == "+":
                return x + y, known
            # a product, byte by byte (no lane may carry into the next)
            xs, ys = x.to_bytes(blk.n, "little"), y.to_bytes(blk.n, "little")
            return int.from_bytes(bytes(map(int.__mul__, xs, ys)), "little"), known

        return Compiled(expr.NUM, arith, lo=lo, hi=hi)

    def _ifelse(self, node: expr.IfElse) -> Compiled:
        test = self.truth(node.test)
        body, other = self.node(node.body), self.node(node.orelse)
        if body.kind != other.kind or body.saturated or other.saturated:
            raise Unsupported("this if-else")
        fb, fo = body.fn, other.fn
        if body.kind == expr.BOOL:
            def pick(b: Block) -> Truth:
                (tt, tf), (bt, bf), (ot, of) = test(b), fb(b), fo(b)
                unknown = b.one ^ (tt | tf)
                return ((tt & bt) | (tf & ot) | (unknown & bt & ot),
                        (tt & bf) | (tf & of) | (unknown & bf & of))

            return Compiled(expr.BOOL, pick)
        if body.kind != expr.NUM:
            raise Unsupported("if-else of codes")

        def pick_number(b: Block) -> Number:
            (tt, tf), (x, kx), (y, ky) = test(b), fb(b), fo(b)
            unknown = b.one ^ (tt | tf)
            same = unknown & kx & ky & b.eq(x, y)
            use_x = tt | same
            return ((x & b.spread(use_x)) | (y & b.spread(tf)),
                    (use_x & kx) | (tf & ky))

        return Compiled(expr.NUM, pick_number, lo=min(body.lo, other.lo),
                        hi=max(body.hi, other.hi))

    def _call(self, node: expr.Call) -> Compiled:
        func, args = node.func, node.args
        if func in ("answered", "declined"):
            arg = args[0]
            assert isinstance(arg, expr.Name)
            if func == "declined":
                c = self.columns.get(arg.id)
                if c is None:
                    return _literal(False)
                slot = c.slot
                return Compiled(expr.BOOL, lambda b: (d := b.lane(slot, _DECLINED), b.one ^ d))
            known = self.known(self.name(arg.id))
            return Compiled(expr.BOOL, lambda b: (k := known(b), b.one ^ k))
        if func == "count_set":
            arg = args[0]
            c = self.name(arg.id).column if isinstance(arg, expr.Name) else None
            if c is None or c.kind != expr.SET:
                raise Unsupported("count() of this")
            slot = c.slot
            return Compiled(expr.NUM, lambda b: (
                int.from_bytes(b.codes[slot].translate(c.count_table()), "little"),
                b.lane(slot, _KNOWN)), lo=0, hi=len(c.question.choices))
        if func == "count":
            parts = [self.truth(a) for a in args]
            if len(parts) > TOP:
                raise Unsupported("count() of many")

            def count(b: Block) -> Number:
                total, known = 0, b.one
                for part in parts:
                    t, f = part(b)
                    total += t
                    known &= t | f
                return total, known

            return Compiled(expr.NUM, count, lo=0, hi=len(parts))
        if func in ("min", "max"):
            nums = [self.node(a) for a in args]
            if any(n.kind != expr.NUM or n.saturated for n in nums):
                raise Unsupported(f"{func}() of this")
            fns = [n.fn for n in nums]
            want_max = func == "max"

            def extreme(b: Block) -> Number:
                x, known = fns[0](b)
                for fn in fns[1:]:
                    y, k = fn(b)
                    known &= k
                    y_wins = b.ge(y, x) if want_max else b.ge(x, y)
                    keep = b.spread(y_wins)
                    x = (y & keep) | (x & ~keep)
                return x, known

            return Compiled(expr.NUM, extreme, lo=min(n.lo for n in nums),
                            hi=max(n.hi for n in nums))
        if func == "coalesce":
            a, d = self.node(args[0]), self.node(args[1])
            if a.kind != d.kind or a.saturated or d.saturated:
                raise Unsupported("coalesce() of this")
            fa, fd = a.fn, d.fn
            if a.kind == expr.BOOL:
                def first_truth(b: Block) -> Truth:
                    (ta, xa), (td, xd) = fa(b), fd(b)
                    unknown = b.one ^ (ta | xa)
                    return ta | (unknown & td), xa | (unknown & xd)

                return Compiled(expr.BOOL, first_truth)
            if a.kind == expr.NUM or (a.kind == expr.STR and a.domain == d.domain):
                def first_value(b: Block) -> Number:
                    (x, kx), (y, ky) = fa(b), fd(b)
                    keep = b.spread(kx)
                    return (x & keep) | (y & (b.spread(b.one) ^ keep)), kx | ky

                if a.kind == expr.NUM:
                    return Compiled(expr.NUM, first_value, lo=min(a.lo, d.lo),
                                    hi=max(a.hi, d.hi))
                return Compiled(expr.STR, first_value, domain=a.domain)
            if a.kind == expr.STR and isinstance(args[1], expr.Lit):
                # coalesce(code, 'literal'): the literal joins the codes
                domain = a.domain if args[1].value in a.domain else (*a.domain, args[1].value)
                index = domain.index(args[1].value)

                def first_code(b: Block) -> Number:
                    x, k = fa(b)
                    return (x & b.spread(k)) | (index * (b.one ^ k)), b.one

                return Compiled(expr.STR, first_code, domain=domain)
            raise Unsupported("coalesce() of this")
        raise Unsupported(f"{func}()")


def _gt(b: Block, x: int, y: int) -> int:
    """0/1 lane: x > y (x + 127 - y has bit 7 set exactly when x > y; nothing borrows)."""
    return (((x | b.high) - y - b.one) & b.high) >> 7


def _number(c: Compiled, b: Block) -> Number:
    if c.kind == expr.BOOL:
        t, f = c.fn(b)
        return t, t | f
    result: Number = c.fn(b)
    return result


def _or(truth: Truth) -> int:
    return truth[0] | truth[1]


def _literal(value: Any) -> Compiled:
    if isinstance(value, bool):
        if value:
            return Compiled(expr.BOOL, lambda b: (b.one, 0))
        return Compiled(expr.BOOL, lambda b: (0, b.one))
    if isinstance(value, int) and 0 <= value <= TOP:
        return Compiled(expr.NUM, lambda b: (value * b.one, b.one), lo=value, hi=value)
    if isinstance(value, str):
        return Compiled(expr.STR, lambda b: (0, b.one), domain=(value,))
    raise Unsupported(f"the literal {value!r}")


def _compare_const(fa: Callable[[Block], Number], op: str, k: int,
                   negate: bool) -> Callable[[Block], Truth]:
    """x >= k or x == k (negated if asked), unknown where x is."""
    def compare(b: Block) -> Truth:
        x, known = fa(b)
        true = b.ge(x, k * b.one) if op == ">=" else b.eq(x, k * b.one)
        if negate:
            true ^= b.one
        true &= known
        return true, known ^ true

    return compare


def _and(parts: list[Callable[[Block], Truth]]) -> Callable[[Block], Truth]:
    def both(b: Block) -> Truth:
        t, f = parts[0](b)
        for part in parts[1:]:
            pt, pf = part(b)
            t &= pt
            f |= pf
        return t, f

    return both


def _or_op(parts: list[Callable[[Block], Truth]]) -> Callable[[Block], Truth]:
    def either(b: Block) -> Truth:
        t, f = parts[0](b)
        for part in parts[1:]:
            pt, pf = part(b)
            t |= pt
            f &= pf
        return t, f

    return either


def _cached(name: str, c: Compiled) -> Compiled:
    """The node evaluated once a block (names are read by many conditions)."""
    fn = c.fn

    def once(b: Block) -> Any:
        hit = b.cache.get(name)
        if hit is None:
            hit = b.cache[name] = fn(b)
        return hit

    return Compiled(c.kind, once, c.lo, c.hi, c.saturated, c.domain, c.column)


# ------------------------------------------------------------------------------------ plan


class Plan:
    """The lanes of one rule set over one input layout, built once."""

    def __init__(self, ruleset: Ruleset, question_columns: dict[str, int | None]):
        self.ruleset = ruleset
        self.columns: list[Column] = []
        by_id: dict[str, Column] = {}
        for slot, (qid, q) in enumerate(ruleset.questions.items()):
            c = Column(q, slot, question_columns.get(qid))
            self.columns.append(c)
            by_id[qid] = c
        comp = Compiler(ruleset, by_id)
        self.asks: list[tuple[int, Callable[[Block], Truth]]] = []
        for c in self.columns:
            if c.question.ask_when is not None:
                self.asks.append((c.slot, comp.truth(c.question.ask_when.node)))
        self.rules = [comp.truth(r.when.node) for r in ruleset.rules]
        self.miscs = [comp.truth(m.when.node) for m in ruleset.misconceptions]
        self.scores = [(comp.name(i.id), i) for i in ruleset.instruments]
        # Tokens: one number for each of the commonest cell texts, whatever the column, so a
        # block's cells are looked up in one dict; each column then turns tokens into its own
        # codes with bytes.translate. Words come first (those valid in more columns before
        # others), then numbers, smallest first.
        self.tokens: dict[str, int] = {}
        self.tables = [bytearray([BAD]) * 256 for _ in self.columns]
        valid: dict[str, int] = {}
        for c in self.columns:
            for text, code in c.codes.items():
                if code != BAD:
                    valid[text] = valid.get(text, 0) + 1
        for text in sorted(valid, key=lambda t: (t.isdigit(), -valid[t], len(t), t)):
            self.add_token(text)

    def add_token(self, text: str) -> None:
        """Give ``text`` the next token, if one is left."""
        if text in self.tokens or len(self.tokens) >= BAD:
            return
        token = self.tokens[text] = len(self.tokens)
        for c, table in zip(self.columns, self.tables):
            code = c.codes.get(text)
            table[token] = c.learn(text) if code is None else code

    def codes(self, records: Sequence[Sequence[str]], ncols: int) -> list[bytes]:
        """Each question's codes, from the block's records (each of ``ncols`` cells).

        Every cell is looked up in the token dict in one pass, in row order (the cells of a
        row sit together in memory); a column's tokens are then a slice, and its codes one
        translate. A column with a text that has no token is read again on its own through
        its own table, learning the text (and giving it a token while any are left)."""
        n = len(records)
        flat = bytes(map(self.tokens.get, chain.from_iterable(records), repeat(BAD)))
        blank = bytes([BLANK]) * n
        out = []
        for c, table in zip(self.columns, self.tables):
            if c.col is None:
                out.append(blank)
                continue
            codes = flat[c.col::ncols].translate(table)
            if BAD in codes:
                cells = list(map(itemgetter(c.col), records))
                # the texts that had no token get one (not free text: each is new)
                if len(self.tokens) < BAD and c.kind != expr.TEXT:
                    for text in set(compress(cells, map(BAD.__eq__, flat[c.col::ncols]))):
                        code = c.codes.get(text)
                        if (c.learn(text) if code is None else code) != BAD:
                            self.add_token(text)
                codes = c.block_codes(cells)
            out.append(codes)
        return out

    def evaluate(self, block: Block) -> tuple[list[int], list[int], list[int], list[int],
                                              list[tuple[int, int]]]:
        """Lanes of: rule truths (T), rules unknown (U), misconceptions true, questions open
        (unanswered and asked, or maybe asked), and (score, known) per instrument. Marks in
        ``block.fallback`` the rows screened one at a time."""
        one = block.one
        fallback = 0
        for slot, code in enumerate(block.codes):
            if BAD in code:
                fallback |= block.lane(slot, _BAD)
        not_asked = [0] * len(self.columns)
        for slot, ask in self.asks:
            never = ask(block)[1]
            not_asked[slot] = never
            # an answer (or decline) skip logic drops: the row-at-a-time path reports it
            fallback |= never & (block.lane(slot, _KNOWN) | block.lane(slot, _DECLINED))
        block.fallback |= fallback
        scores = [c.fn(block) for c, _ in self.scores]
        true, unknown = [], []
        for rule in self.rules:
            t, f = rule(block)
            true.append(t)
            unknown.append(one ^ (t | f))
        miscs = [m(block)[0] for m in self.miscs]
        open_ = [one ^ (block.lane(c.slot, _KNOWN) | not_asked[c.slot]) for c in self.columns]
        return true, unknown, miscs, open_, scores


def pack(lanes: Sequence[int], n: int) -> Sequence[Any]:
    """Per row, the bits of ``lanes`` (0/1 lanes) as one int (bit i from lanes[i]); a tuple of
    ints, 64 bits each, when there are more than 64 lanes."""
    if not lanes:
        return bytes(n)
    words = []
    for start in range(0, len(lanes), 64):
        part = lanes[start:start + 64]
        buf = bytearray(8 * n)
        for g in range(0, len(part), 8):
            acc = 0
            for j, lane in enumerate(part[g:g + 8]):
                acc |= lane << j
            buf[g // 8::8] = acc.to_bytes(n, "little")
        word = array("Q", bytes(buf))
        if sys.byteorder == "big":
            word.byteswap()
        words.append(word)
    if len(words) == 1:
        return words[0]
    return list(zip(*words))


def as_int(key: Any) -> int:
    """A packed key as one int."""
    if isinstance(key, tuple):
        return sum(w << (64 * i) for i, w in enumerate(key))
    return int(key)


class Verdicts:
    """What the rule truths decide, in lanes, as :class:`iopscreen.batch.Decision` reads them
    row by row: the level is the highest ``min_level`` of the rules that fired, the flags
    those of the rules that fired; a rule left unknown is pending when it could raise the
    level or add an attention flag not raised already; a pending rule makes the row
    provisional, its possible level the highest a pending rule (or the level) reaches, and
    its deciding questions the open ones behind the pending rules."""

    def __init__(self, decision: Any, nquestions: int):
        d = decision
        self.nlevels, self.nflags = d.nlevels, d.nflags
        self.rank = d.rule_rank
        self.flag_rules = [[r for r, f in enumerate(d.rule_flags) if f >> k & 1]
                           for k in range(d.nflags)]
        self.rank_rules = [[r for r, k in enumerate(d.rule_rank) if k == rank]
                           for rank in range(d.nlevels)]
        self.attention = [[k for k in range(d.nflags) if a >> k & 1] for a in d.rule_attention]
        self.question_rules = [[r for r, b in enumerate(d.rule_behind) if b >> q & 1]
                               for q in range(nquestions)]

    def level_flags(self, key: Any) -> tuple[int, int]:
        """The level and flag mask of a row's packed key from :meth:`decide`'s first lanes."""
        bits = as_int(key)
        return max((bits & ((1 << self.nlevels) - 1)).bit_length() - 1, 0), bits >> self.nlevels

    def decide(self, block: Block, true: list[int], unknown: list[int],
               open_: list[int]) -> tuple[list[int], list[int], list[int], int]:
        """0/1 lanes: level ranks reached then flags raised; possible level ranks and
        deciding questions (both 0 on rows that are not provisional); provisional rows."""
        one = block.one
        levels = [_any(true, rules) for rules in self.rank_rules]
        flags = [_any(true, rules) for rules in self.flag_rules]
        at_or_above = [0] * (self.nlevels + 1)
        for rank in range(self.nlevels - 1, -1, -1):
            at_or_above[rank] = at_or_above[rank + 1] | levels[rank]
        pending = []
        for r, u in enumerate(unknown):
            rank = self.rank[r]
            could = one ^ at_or_above[rank] if rank else 0  # the level is below its rank
            for k in self.attention[r]:
                could |= one ^ flags[k]
            pending.append(u & could)
        provisional = _any(pending, range(len(pending)))
        possible = [(levels[rank] | _any(pending, rules)) & provisional
                    for rank, rules in enumerate(self.rank_rules)]
        deciding = [_any(pending, rules) & o for rules, o in zip(self.question_rules, open_)]
        return levels + flags, possible, deciding, provisional


def _any(lanes: Sequence[int], which: Iterable[int]) -> int:
    acc = 0
    for i in which:
        acc |= lanes[i]
    return acc
