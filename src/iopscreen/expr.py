"""The condition language: a checked subset of Python expressions with three-valued logic.

Why this is safe: rule-set text is parsed with ``ast.parse(mode="eval")`` and every node is
checked against an allowlist before anything else happens. No attribute access, subscript,
lambda, comprehension, f-string, keyword, starred argument or call to anything but the few
functions below gets past :func:`parse`. The checked tree is kept as plain frozen dataclasses
(``Node``), so other targets can be generated from it. :func:`emit` turns a *checked tree*
(never the raw text) into Python source; :mod:`iopscreen.program` compiles that source once and
runs it in a namespace that holds only our helpers and no builtins.

Values: ``None`` means unknown (unanswered, declined, or depends on something unknown). ``and``,
``or`` and ``not`` follow Kleene logic; comparisons and arithmetic with an unknown are unknown.
"""

from __future__ import annotations

import ast
import itertools
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

# ---------------------------------------------------------------------------------------- types

BOOL = "bool"
NUM = "number"
STR = "code"
SET = "set"
TEXT = "text"
LIST = "list"


@dataclass(frozen=True)
class Type:
    """A value's kind and, for codes, the values it can take (None = any)."""

    kind: str
    codes: frozenset[Any] | None = None
    elem: "Type | None" = None  # for LIST

    def describe(self) -> str:
        if self.kind == SET:
            return "multiple-choice answer"
        if self.kind == STR:
            return "choice code"
        if self.kind == LIST:
            return "list"
        return self.kind


T_BOOL = Type(BOOL)
T_NUM = Type(NUM)


@dataclass(frozen=True)
class Symbol:
    """What a name in a condition refers to."""

    name: str
    type: Type
    role: str  # question | score | band | derived


# ----------------------------------------------------------------------------- checked tree


@dataclass(frozen=True)
class Node:
    """Base of the checked tree; ``type`` is known after checking."""


@dataclass(frozen=True)
class Lit(Node):
    value: Any


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Seq(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # and | or
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >= in notin
    left: Node
    right: Node


@dataclass(frozen=True)
class Arith(Node):
    op: str  # + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class IfElse(Node):
    test: Node
    body: Node
    orelse: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Condition:
    """A checked expression: its tree, result type, and the names it reads."""

    text: str
    node: Node
    type: Type
    names: frozenset[str]


@dataclass(frozen=True)
class ExprProblem:
    """Why a condition was rejected. ``offset`` counts characters into the stripped text;
    ``subject`` is the unknown name, for E201."""

    code: str
    name: str
    message: str
    offset: int = 0
    hint: str = ""
    subject: str = ""


class _Reject(Exception):
    def __init__(self, problem: ExprProblem):
        super().__init__(problem.message)
        self.problem = problem


FUNCTIONS = ("answered", "declined", "count", "any", "all", "min", "max", "coalesce")

_CMP_OPS: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "notin",
}
_ARITH_OPS: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

_FORBIDDEN_HINTS: dict[type, str] = {
    ast.Attribute: "attributes (a.b) are not part of the condition language",
    ast.Subscript: "subscripts (a[b]) are not allowed; use 'in' or count()",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed; use any()/all()/count()",
    ast.GeneratorExp: "comprehensions are not allowed; use any()/all()/count()",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions are not allowed",
}


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    from .errors import did_you_mean

    return did_you_mean(word, options)


# ------------------------------------------------------------------------------------ parse


def parse(text: Any, symbols: Mapping[str, Symbol], want: Type | None = T_BOOL) -> Condition:
    """Parse and check ``text`` against ``symbols``.

    Returns a :class:`Condition`. Raises :class:`ExprRejected` (with one ExprProblem) when the
    text is not a valid, well-typed expression; nothing else is ever raised for any input.
    """
    if isinstance(text, bool):
        text = "True" if text else "False"
    if not isinstance(text, str):
        raise ExprRejected(
            ExprProblem("E202", "expr-syntax", "a condition must be text", 0, "quote it")
        )
    if not text.strip():
        raise ExprRejected(ExprProblem("E202", "expr-syntax", "the condition is empty"))
    source = text.strip()
    try:
        tree = _syntax_tree(source)
    except SyntaxError as exc:
        # SyntaxError columns count characters (ast node columns count UTF-8 bytes)
        offset = min(_line_start(source, exc.lineno or 1) + max((exc.offset or 1) - 1, 0),
                     len(source))
        raise ExprRejected(
            ExprProblem(
                "E202",
                "expr-syntax",
                f"cannot parse condition: {exc.msg}",
                offset,
                "conditions use Python syntax, e.g. \"phq9 >= 10 and not si_plan\"",
            )
        ) from None
    except (ValueError, MemoryError, RecursionError):
        raise ExprRejected(ExprProblem("E202", "expr-syntax", "cannot parse condition")) from None
    checker = _Checker(symbols, source)
    try:
        node, typ = checker.check(tree.body)
        if want is not None and want.kind == BOOL and typ.kind != BOOL:
            raise _Reject(
                ExprProblem(
                    "E208",
                    "not-a-condition",
                    f"this must be true or false, but it is a {typ.describe()}",
                    0,
                    "compare it, e.g. \"x >= 10\" or \"x == 'code'\"",
                )
            )
    except _Reject as rej:
        raise ExprRejected(rej.problem) from None
    except RecursionError:
        raise ExprRejected(
            ExprProblem("E203", "not-allowed", "the condition is nested too deeply")
        ) from None
    return Condition(text, node, typ, frozenset(checker.names))


class ExprRejected(Exception):
    """A condition failed to parse or check; ``problem`` says where and why."""

    def __init__(self, problem: ExprProblem):
        super().__init__(problem.message)
        self.problem = problem


def _line_start(source: str, lineno: int) -> int:
    """Character offset where line ``lineno`` (1-based, as ast counts) of ``source`` starts."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", source)]
    return starts[min(max(lineno, 1), len(starts)) - 1]


def _offset(source: str, node: ast.AST) -> int:
    """Character offset of ``node`` in ``source`` (ast gives a line and a UTF-8 byte column)."""
    start = _line_start(source, getattr(node, "lineno", 1))
    line = source[start:].encode("utf-8", "surrogatepass")[:getattr(node, "col_offset", 0)]
    return start + len(line.decode("utf-8", "ignore"))


def _syntax_tree(source: str) -> ast.Expression:
    """``ast.parse`` in eval mode; raises SyntaxError (or ValueError etc.) on bad text."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "1if x": we report our own
        return ast.parse(source, mode="eval")


def _names(text: Any) -> list[ast.Name]:
    """The name nodes of an unchecked expression; empty if it is not text or does not parse."""
    if not isinstance(text, str):
        return []
    try:
        tree = _syntax_tree(text.strip())
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    return [n for n in ast.walk(tree) if isinstance(n, ast.Name)]


def names_in(text: Any) -> set[str]:
    """Names used in an expression, before checking (e.g. to order definitions)."""
    return {n.id for n in _names(text)}


def name_offset(text: str, name: str) -> int | None:
    """Character offset, into ``text.strip()``, of the first use of ``name``; None if unused."""
    source = text.strip()
    return min((_offset(source, n) for n in _names(text) if n.id == name), default=None)


@dataclass
class _Checker:
    symbols: Mapping[str, Symbol]
    source: str
    names: set[str] = field(default_factory=set)

    def fail(self, node: ast.AST, code: str, name: str, message: str, hint: str = "",
             subject: str = "") -> None:
        raise _Reject(ExprProblem(code, name, message, _offset(self.source, node), hint, subject))

    def check(self, node: ast.AST) -> tuple[Node, Type]:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            hint = _FORBIDDEN_HINTS.get(type(node), "only comparisons, and/or/not, arithmetic "
                                        "and the functions " + ", ".join(FUNCTIONS) + " are allowed")
            self.fail(node, "E203", "not-allowed",
                      f"'{type(node).__name__}' is not allowed in a condition", hint)
        return method(node)  # type: ignore[no-any-return]

    # -- leaves
    def _Constant(self, node: ast.Constant) -> tuple[Node, Type]:
        v = node.value
        if isinstance(v, bool):
            return Lit(v), T_BOOL
        if isinstance(v, (int, float)):
            return Lit(v), T_NUM
        if isinstance(v, str):
            return Lit(v), Type(STR, frozenset([v]))
        self.fail(node, "E203", "not-allowed", f"the literal {v!r} is not allowed",
                  "use numbers, 'strings', True or False")
        raise AssertionError

    def _Name(self, node: ast.Name) -> tuple[Node, Type]:
        sym = self.symbols.get(node.id)
        if sym is None:
            if node.id in FUNCTIONS:
                self.fail(node, "E207", "wrong-arity", f"'{node.id}' is a function; call it",
                          f"write {node.id}(...)")
            hint = _did_you_mean(node.id, list(self.symbols))
            if node.id in ("true", "false", "yes", "no", "null", "none", "None"):
                hint = "write True or False (capitalised); unanswered is tested with answered(x)"
            self.fail(node, "E201", "unknown-name", f"'{node.id}' is not defined", hint, node.id)
            raise AssertionError
        self.names.add(node.id)
        return Name(node.id), sym.type

    def _List(self, node: ast.List | ast.Tuple) -> tuple[Node, Type]:
        items = [self.check(e) for e in node.elts]
        if not items:
            return Seq(()), Type(LIST, elem=None)
        kinds = {t.kind for _, t in items}
        if len(kinds) > 1:
            self.fail(node, "E205", "type-mismatch", "a list must hold values of one kind")
        if not all(isinstance(n, Lit) for n, _ in items):
            self.fail(node, "E203", "not-allowed", "lists may hold literal values only")
        codes = frozenset(n.value for n, _ in items if isinstance(n, Lit))
        return Seq(tuple(n for n, _ in items)), Type(LIST, elem=Type(items[0][1].kind, codes))

    _Tuple = _List

    # -- logic
    def _BoolOp(self, node: ast.BoolOp) -> tuple[Node, Type]:
        op = "and" if isinstance(node.op, ast.And) else "or"
        items = []
        for value in node.values:
            n, t = self.check(value)
            self._want_bool(value, t, op)
            items.append(n)
        return BoolOp(op, tuple(items)), T_BOOL

    def _want_bool(self, node: ast.AST, typ: Type, where: str) -> None:
        if typ.kind != BOOL:
            self.fail(node, "E205", "type-mismatch",
                      f"'{where}' needs true/false values, but this is a {typ.describe()}",
                      "compare it first, e.g. \"phq9 >= 10\"")

    def _UnaryOp(self, node: ast.UnaryOp) -> tuple[Node, Type]:
        n, t = self.check(node.operand)
        if isinstance(node.op, ast.Not):
            self._want_bool(node.operand, t, "not")
            return Not(n), T_BOOL
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            if t.kind != NUM:
                self.fail(node, "E205", "type-mismatch", "a sign needs a number")
            if isinstance(node.op, ast.UAdd):
                return n, t
            if isinstance(n, Lit):
                return Lit(-n.value), T_NUM
            return Neg(n), T_NUM
        self.fail(node, "E203", "not-allowed", "this operator is not allowed")
        raise AssertionError

    # -- comparisons
    def _Compare(self, node: ast.Compare) -> tuple[Node, Type]:
        left_ast = node.left
        left, lt = self.check(left_ast)
        parts: list[Node] = []
        for op_ast, right_ast in zip(node.ops, node.comparators):
            op = _CMP_OPS.get(type(op_ast))
            if op is None:
                self.fail(node, "E203", "not-allowed", "'is' is not allowed",
                          "use == and !=, and answered(x) to test for an answer")
                raise AssertionError
            right, rt = self.check(right_ast)
            self._check_compare(op, left_ast, left, lt, right_ast, right, rt)
            parts.append(Compare(op, left, right))
            left_ast, left, lt = right_ast, right, rt
        if len(parts) == 1:
            return parts[0], T_BOOL
        return BoolOp("and", tuple(parts)), T_BOOL

    def _check_compare(self, op: str, la: ast.AST, left: Node, lt: Type,
                       ra: ast.AST, right: Node, rt: Type) -> None:
        if op in ("in", "notin"):
            if rt.kind == SET:
                if lt.kind not in (STR, NUM) or not isinstance(left, Lit):
                    self.fail(la, "E205", "type-mismatch",
                              "the left side of 'in <multiple-choice>' must be one code",
                              "e.g. \"'cost' in concerns\"")
                self._check_codes(la, left, rt, ra)
                return
            if rt.kind == LIST:
                if lt.kind in (SET, TEXT, LIST):
                    self.fail(la, "E205", "type-mismatch",
                              f"a {lt.describe()} cannot be looked up in a list")
                if rt.elem is not None:
                    if rt.elem.kind != lt.kind:
                        self.fail(ra, "E205", "type-mismatch",
                                  f"comparing a {lt.describe()} with a list of {rt.elem.kind}s")
                    for code in sorted(rt.elem.codes or (), key=repr):
                        self._check_code_value(ra, code, lt, left)
                return
            self.fail(ra, "E205", "type-mismatch",
                      f"'in' needs a list or a multiple-choice answer on the right, "
                      f"not a {rt.describe()}", "e.g. \"x in [1, 2]\"")
        if lt.kind in (SET, TEXT, LIST) or rt.kind in (SET, TEXT, LIST):
            bad = lt if lt.kind in (SET, TEXT, LIST) else rt
            hint = {
                SET: "test a multiple-choice answer with \"'code' in name\" or count(name)",
                TEXT: "free-text answers can only be tested with answered(x) or declined(x)",
                LIST: "use 'in' to compare with a list",
            }[bad.kind]
            self.fail(la, "E205", "type-mismatch", f"a {bad.describe()} cannot be compared "
                      f"with '{op}'", hint)
        if op in ("<", "<=", ">", ">="):
            for a, t in ((la, lt), (ra, rt)):
                if t.kind != NUM:
                    self.fail(a, "E205", "type-mismatch",
                              f"'{op}' needs numbers, but this is a {t.describe()}")
            return
        if lt.kind != rt.kind:
            hint = ""
            lit = right if isinstance(right, Lit) else left if isinstance(left, Lit) else None
            if lt.kind == BOOL or rt.kind == BOOL:
                hint = "yes/no answers are True/False: write \"x\" or \"not x\""
            elif lit is not None:
                hint = "choice codes are compared with the code itself, e.g. 2 or 'daily'"
            self.fail(ra, "E205", "type-mismatch",
                      f"comparing a {lt.describe()} with a {rt.describe()}", hint)
        if isinstance(right, Lit):
            self._check_code_value(ra, right.value, lt, left)
        elif isinstance(left, Lit):
            self._check_code_value(la, left.value, rt, right)

    def _check_codes(self, la: ast.AST, left: Node, settype: Type, ra: ast.AST) -> None:
        assert isinstance(left, Lit)
        if settype.codes is not None and left.value not in settype.codes:
            self._impossible(la, left.value, settype)

    def _check_code_value(self, node: ast.AST, value: Any, typ: Type, named: Node) -> None:
        if typ.codes is None or typ.kind not in (STR, NUM):
            return
        if value not in typ.codes or (isinstance(value, bool) and typ.kind == NUM):
            self._impossible(node, value, typ, named)

    def _impossible(self, node: ast.AST, value: Any, typ: Type, named: Node | None = None) -> None:
        codes = sorted(typ.codes or (), key=lambda c: (str(type(c)), c))
        who = f"'{named.id}'" if isinstance(named, Name) else "this value"
        shown = ", ".join(repr(c) for c in codes[:12]) + (" ..." if len(codes) > 12 else "")
        hint = _did_you_mean(str(value), [str(c) for c in codes]) or f"its codes are: {shown}"
        self.fail(node, "E206", "impossible-code", f"{who} can never be {value!r}", hint)

    # -- arithmetic
    def _BinOp(self, node: ast.BinOp) -> tuple[Node, Type]:
        op = _ARITH_OPS.get(type(node.op))
        if op is None:
            self.fail(node, "E203", "not-allowed", "only + - * / are allowed")
            raise AssertionError
        left, lt = self.check(node.left)
        right, rt = self.check(node.right)
        for a, t in ((node.left, lt), (node.right, rt)):
            if t.kind != NUM:
                self.fail(a, "E205", "type-mismatch",
                          f"'{op}' needs numbers, but this is a {t.describe()}",
                          "use count(...) to turn yes/no answers into a number")
        return Arith(op, left, right), T_NUM

    def _IfExp(self, node: ast.IfExp) -> tuple[Node, Type]:
        test, tt = self.check(node.test)
        self._want_bool(node.test, tt, "if")
        body, bt = self.check(node.body)
        orelse, ot = self.check(node.orelse)
        if bt.kind != ot.kind:
            self.fail(node, "E205", "type-mismatch",
                      f"both branches must be of one kind ({bt.describe()} vs {ot.describe()})")
        codes = None
        if bt.codes is not None and ot.codes is not None:
            codes = bt.codes | ot.codes
        return IfElse(test, body, orelse), Type(bt.kind, codes)

    # -- calls
    def _Call(self, node: ast.Call) -> tuple[Node, Type]:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            fname = node.func.id if isinstance(node.func, ast.Name) else "this"
            hint = _did_you_mean(fname, FUNCTIONS) or "allowed: " + ", ".join(FUNCTIONS)
            self.fail(node, "E204", "unknown-function", f"'{fname}' is not an allowed function",
                      hint)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            self.fail(node, "E203", "not-allowed", "keyword and starred arguments are not allowed")
        fname = node.func.id  # type: ignore[union-attr]
        if fname in ("answered", "declined"):
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                self.fail(node, "E207", "wrong-arity", f"{fname}() takes one name",
                          f"e.g. {fname}(si_plan)")
            n, _ = self.check(node.args[0])
            sym = self.symbols[n.id]  # type: ignore[attr-defined]
            if fname == "declined" and sym.role != "question":
                self.fail(node.args[0], "E205", "type-mismatch",
                          "declined() takes a question", "use answered(x) for scores")
            return Call(fname, (n,)), T_BOOL
        args = [self.check(a) for a in node.args]
        if not args:
            self.fail(node, "E207", "wrong-arity", f"{fname}() needs at least one argument")
        if fname == "count":
            if len(args) == 1 and args[0][1].kind == SET:
                return Call("count_set", (args[0][0],)), T_NUM
            for a, (_, t) in zip(node.args, args):
                self._want_bool(a, t, "count")
            return Call("count", tuple(n for n, _ in args)), T_NUM
        if fname in ("any", "all"):
            for a, (_, t) in zip(node.args, args):
                self._want_bool(a, t, fname)
            return BoolOp("or" if fname == "any" else "and", tuple(n for n, _ in args)), T_BOOL
        if fname in ("min", "max"):
            for a, (_, t) in zip(node.args, args):
                if t.kind != NUM:
                    self.fail(a, "E205", "type-mismatch", f"{fname}() needs numbers")
            return Call(fname, tuple(n for n, _ in args)), T_NUM
        # coalesce
        if len(args) != 2:
            self.fail(node, "E207", "wrong-arity", "coalesce() takes two arguments",
                      "e.g. coalesce(sex, 'unknown')")
        (xn, xt), (dn, dtp) = args
        if xt.kind != dtp.kind:
            self.fail(node.args[1], "E205", "type-mismatch",
                      f"the default must be a {xt.describe()} like the value")
        codes = None
        if xt.codes is not None and dtp.codes is not None:
            codes = xt.codes | dtp.codes
        return Call("coalesce", (xn, dn)), Type(xt.kind, codes)


# ------------------------------------------------------------------------------------- emit


@dataclass
class EmitContext:
    """How names become Python source: ``slot(name)`` gives e.g. ``v[3]``."""

    slot: Callable[[str], str]
    declined: Callable[[str], str]
    constants: dict[str, Any] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)

    def temp(self) -> str:
        return f"_t{next(self.counter)}"

    def const(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name


def emit(node: Node, ctx: EmitContext) -> str:
    """Python source for a checked tree; evaluates to a value or None (unknown)."""
    if isinstance(node, Lit):
        return repr(node.value)
    if isinstance(node, Name):
        return ctx.slot(node.id)
    if isinstance(node, Not):
        if _never_unknown(node.operand):
            return f"(not {emit(node.operand, ctx)})"
        t = ctx.temp()
        return f"(None if ({t} := {emit(node.operand, ctx)}) is None else not {t})"
    if isinstance(node, BoolOp):
        return _emit_boolop(node, ctx)
    if isinstance(node, Compare):
        return _emit_compare(node, ctx)
    if isinstance(node, Arith):
        if node.op == "/":
            return _guard([node.left, node.right], ctx, lambda a, b: f"_div({a}, {b})")
        return _guard([node.left, node.right], ctx, lambda a, b: f"({a} {node.op} {b})")
    if isinstance(node, Neg):
        return _guard([node.operand], ctx, lambda a: f"(-{a})")
    if isinstance(node, IfElse):
        t, b, c = ctx.temp(), ctx.temp(), ctx.temp()
        return (f"({emit(node.body, ctx)} if ({t} := {emit(node.test, ctx)}) is True else "
                f"{emit(node.orelse, ctx)} if {t} is False else "
                f"({b} if ({b} := {emit(node.body, ctx)}) == ({c} := {emit(node.orelse, ctx)}) "
                f"else None))")
    if isinstance(node, Call):
        return _emit_call(node, ctx)
    if isinstance(node, Seq):
        return ctx.const(frozenset(i.value for i in node.items if isinstance(i, Lit)))
    raise TypeError(f"cannot emit {type(node).__name__}")  # pragma: no cover - checked tree


def _never_unknown(node: Node) -> bool:
    """True when ``node`` always has a value (never None): answered(), declined(), literals,
    and not/and/or of such."""
    if isinstance(node, Lit):
        return node.value is not None
    if isinstance(node, Call):
        return node.func in ("answered", "declined")
    if isinstance(node, Not):
        return _never_unknown(node.operand)
    if isinstance(node, BoolOp):
        return all(_never_unknown(i) for i in node.items)
    return False


def _emit_boolop(node: BoolOp, ctx: EmitContext) -> str:
    """Three-valued and/or, with Python's own and/or doing the common case.

    The operands are True, False or None (unknown). Python's ``or`` stops at the first true
    operand, which makes the result True; when none is, every operand has been evaluated
    and the result is unknown if one was None, else False. Python's ``and`` gives True when
    every operand is True and False when the first operand that is not True is False; only
    when that one is None does the fully three-valued form decide (a later False still
    makes the result False). Operands that are never unknown need no tests at all.
    """
    items = node.items
    if all(_never_unknown(i) for i in items):
        return "(" + f" {node.op} ".join(emit(i, ctx) for i in items) + ")"
    if node.op == "or":
        parts, checks = [], []
        for item in items:
            if _never_unknown(item):
                parts.append(emit(item, ctx))
            else:
                t = ctx.temp()
                parts.append(f"({t} := {emit(item, ctx)})")
                checks.append(f"{t} is None")
        return (f"(True if ({' or '.join(parts)}) else None if ({' or '.join(checks)}) "
                f"else False)")
    r = ctx.temp()
    fast = " and ".join(emit(i, ctx) for i in items)
    return f"(True if ({r} := ({fast})) else False if {r} is False else {_kleene(node, ctx)})"


def _kleene(node: BoolOp, ctx: EmitContext) -> str:
    """The fully three-valued and/or: each operand evaluated once, tested for True/False."""
    temps = [ctx.temp() for _ in node.items]
    stop, other = ("False", "True") if node.op == "and" else ("True", "False")
    parts = [f"{stop} if ({t} := {emit(item, ctx)}) is {stop} else"
             for t, item in zip(temps, node.items)]
    unknown = " or ".join(f"{t} is None" for t in temps)
    return "(" + " ".join(parts) + f" None if ({unknown}) else {other})"


def _guard(operands: Sequence[Node], ctx: EmitContext, body: Callable[..., str]) -> str:
    """Evaluate operands once; unknown if any non-literal operand is unknown."""
    refs: list[str] = []
    checks: list[str] = []
    for op in operands:
        if isinstance(op, (Lit, Seq)):
            refs.append(emit(op, ctx))
        else:
            t = ctx.temp()
            checks.append(f"({t} := {emit(op, ctx)}) is None")
            refs.append(t)
    if not checks:
        return body(*refs)
    return f"(None if ({' or '.join(checks)}) else {body(*refs)})"


def _emit_compare(node: Compare, ctx: EmitContext) -> str:
    if node.op in ("in", "notin"):
        neg = "not " if node.op == "notin" else ""
        return _guard([node.left, node.right], ctx, lambda a, b: f"({a} {neg}in {b})")
    return _guard([node.left, node.right], ctx, lambda a, b: f"({a} {node.op} {b})")


def _emit_call(node: Call, ctx: EmitContext) -> str:
    if node.func == "answered":
        assert isinstance(node.args[0], Name)
        return f"({ctx.slot(node.args[0].id)} is not None)"
    if node.func == "declined":
        assert isinstance(node.args[0], Name)
        return ctx.declined(node.args[0].id)
    if node.func == "count_set":
        return _guard(node.args, ctx, lambda a: f"len({a})")
    if node.func == "count":
        return _guard(node.args, ctx, lambda *a: "(" + " + ".join(f"({x} is True)" for x in a) + ")")
    if node.func in ("min", "max"):
        return _guard(node.args, ctx, lambda *a: f"{node.func}_({', '.join(a)})")
    if node.func == "coalesce":
        t = ctx.temp()
        return (f"({emit(node.args[1], ctx)} if ({t} := {emit(node.args[0], ctx)}) is None "
                f"else {t})")
    raise TypeError(node.func)  # pragma: no cover


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def runtime_namespace() -> dict[str, Any]:
    """The only names generated code can see: our helpers, and no builtins."""
    return {"__builtins__": {}, "_div": _div, "min_": min, "max_": max, "len": len}


def walk(node: Node) -> list[Node]:
    """Every node of a checked tree, depth first (for tools that read the tree as data)."""
    out = [node]
    for value in vars(node).values():
        if isinstance(value, Node):
            out.extend(walk(value))
        elif isinstance(value, tuple):
            for v in value:
                if isinstance(v, Node):
                    out.extend(walk(v))
    return out
