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
import decimal
import itertools
import math
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
    ``subject`` is the unknown name, for E201; ``limit`` names the :class:`ConditionLimits`
    field a condition went past, for E214 and E216."""

    code: str
    name: str
    message: str
    offset: int = 0
    hint: str = ""
    subject: str = ""
    limit: str = ""


@dataclass(frozen=True)
class ConditionLimits:
    """How big a condition may be. A condition past a limit is refused with code E214 and
    ``limit`` naming the field (the loader says how to raise it).

    ``chars``: length of the text; ``terms``: syntax nodes (names, literals, operators, calls);
    ``depth``: nesting of the syntax tree; ``literal``: the largest magnitude of a number.
    The default literal bound keeps every whole number exact as a 64-bit float (2**53 is about
    9.007e15), so the Python and SQL targets read it alike.
    """

    chars: int = 5_000
    terms: int = 1_000
    depth: int = 32
    literal: int = 10**15


DEFAULT_LIMITS = ConditionLimits()


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


def parse(text: Any, symbols: Mapping[str, Symbol], want: Type | None = T_BOOL,
          limits: ConditionLimits = DEFAULT_LIMITS) -> Condition:
    """Parse and check ``text`` against ``symbols``, within ``limits``.

    Returns a :class:`Condition` whose tree :func:`emit` turns into code that compiles. Raises
    :class:`ExprRejected` (with one ExprProblem) when the text is not a valid, well-typed
    expression within the limits; nothing else is ever raised for any input.
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
    if len(source) > limits.chars:
        raise ExprRejected(ExprProblem(
            "E214", "condition-too-big", f"the condition is {len(source):,} characters long; "
            f"the limit is {limits.chars:,}", limits.chars, limit="chars"))
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
    _check_size(tree, source, limits)
    checker = _Checker(symbols, source, limits)
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
    _check_compiles(node)
    return Condition(text, node, typ, frozenset(checker.names))


def _check_size(tree: ast.Expression, source: str, limits: ConditionLimits) -> None:
    """Refuse a syntax tree with more nodes than ``limits.terms`` or deeper than
    ``limits.depth`` (walked without recursion, so any depth is measured safely)."""
    terms = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (ast.expr_context, ast.boolop, ast.operator, ast.unaryop,
                             ast.cmpop)):
            continue  # parts of their parent's node, not terms of their own
        terms += 1
        if terms > limits.terms:
            raise ExprRejected(ExprProblem(
                "E214", "condition-too-big", f"the condition has more than {limits.terms:,} "
                "terms (names, numbers, operators and calls)", _offset(source, node),
                limit="terms"))
        if depth > limits.depth:
            raise ExprRejected(ExprProblem(
                "E214", "condition-too-big", f"the condition is nested more than "
                f"{limits.depth} levels deep", _offset(source, node), limit="depth"))
        # children in reverse, so the walk (and the place reported) goes left to right
        children = list(ast.iter_child_nodes(node))
        stack.extend((child, depth + 1) for child in reversed(children))


def _check_compiles(node: Node) -> None:
    """Refuse a checked tree whose generated code Python cannot compile (e.g. nesting past
    the compiler's own limits when the depth limit is raised). Only the code :func:`emit`
    builds from the checked tree is compiled here, never rule-set text, and nothing runs."""
    ctx = EmitContext(slot=lambda name: "v[0]", declined=lambda name: "(0 in d)")
    try:
        code = compile(emit(node, ctx), "<condition>", "eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError):
        raise ExprRejected(ExprProblem(
            "E214", "condition-too-big", "the condition is nested too deeply to be compiled",
            limit="depth")) from None
    # The code may name only the answers, its temporaries, its constants and our helpers: a
    # literal whose repr is a name (inf, nan) would fail when the rule runs, not here.
    allowed = set(runtime_namespace()) | set(ctx.constants) | {"v", "d"}
    stray = [n for n in code.co_names if n not in allowed and not _TEMP.fullmatch(n)]
    if stray:  # pragma: no cover - _check_number refuses such literals first
        raise ExprRejected(ExprProblem(
            "E216", "bad-number", "the condition holds a value that cannot be written in the "
            "compiled program", hint="write plain numbers and quoted text"))


_TEMP = re.compile(r"_t\d+")


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
    limits: ConditionLimits = DEFAULT_LIMITS
    names: set[str] = field(default_factory=set)

    def fail(self, node: ast.AST, code: str, name: str, message: str, hint: str = "",
             subject: str = "", limit: str = "") -> None:
        raise _Reject(ExprProblem(code, name, message, _offset(self.source, node), hint, subject,
                                  limit))

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
            self._check_number(node, v)
            return Lit(v), T_NUM
        if isinstance(v, str):
            return Lit(v), Type(STR, frozenset([v]))
        self.fail(node, "E203", "not-allowed", f"the literal {v!r} is not allowed",
                  "use numbers, 'strings', True or False")
        raise AssertionError

    def _check_number(self, node: ast.Constant, value: int | float) -> None:
        """Refuse a number the generated code could not hold exactly as written: infinite or
        not-a-number (``1e999``), rounded to zero (``1e-400``), or beyond the literal limit.
        The code holds ``repr(value)``, so a number whose repr does not read back as the
        same value is refused too."""
        written = ast.get_source_segment(self.source, node) or "?"
        if len(written) > 24:
            written = f"{written[:12]}...({len(written):,} characters)"
        bound = self.limits.literal
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, "E216", "bad-number", f"the number {written} is too large to be "
                      "represented (it would read as infinity)",
                      f"numbers in conditions lie between -{bound:,} and {bound:,}")
        if abs(value) > bound:
            self.fail(node, "E216", "bad-number", f"the number {written} is beyond the limit "
                      f"of {bound:,} (either sign)", limit="literal")
        if isinstance(value, float) and value == 0 and _nonzero(written):
            self.fail(node, "E216", "bad-number", f"the number {written} is too small to be "
                      "represented (it would read as 0)", "write 0, or a number of a sensible "
                      "size")
        try:
            back = ast.literal_eval(repr(value))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            back = None
        if type(back) is not type(value) or back != value:  # pragma: no cover - guarded above
            self.fail(node, "E216", "bad-number", f"the number {written} cannot be "
                      "represented exactly", "write a smaller number")

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


def _nonzero(written: str) -> bool:
    """Whether a number literal as written has a non-zero digit before its exponent."""
    mantissa = re.split(r"[eE]", written.replace("_", ""), maxsplit=1)[0]
    try:
        return decimal.Decimal(mantissa) != 0
    except decimal.InvalidOperation:  # hex, octal or binary: ints, never rounded to zero
        return False


# ------------------------------------------------------------------------------------- emit


@dataclass
class EmitContext:
    """How names become Python source: ``slot(name)`` gives e.g. ``v[3]``."""

    slot: Callable[[str], str]
    declined: Callable[[str], str]
    constants: dict[str, Any] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)
    # id of a node already evaluated into a temporary -> that temporary (see _guard)
    shared: dict[int, str] = field(default_factory=dict)

    def temp(self) -> str:
        return f"_t{next(self.counter)}"

    def const(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name


def emit(node: Node, ctx: EmitContext) -> str:
    """Python source for a checked tree; evaluates to a value or None (unknown)."""
    try:
        return _emit(node, ctx)
    finally:
        ctx.shared.clear()  # temporaries are shared within one tree's code only


def _emit(node: Node, ctx: EmitContext) -> str:
    if isinstance(node, Lit):
        return repr(node.value)
    if isinstance(node, Name):
        return ctx.slot(node.id)
    if isinstance(node, Not):
        if _never_unknown(node.operand):
            return f"(not {_emit(node.operand, ctx)})"
        t = ctx.temp()
        return f"(None if ({t} := {_emit(node.operand, ctx)}) is None else not {t})"
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
        # both branches are evaluated (they are pure and cannot raise): writing each once
        # keeps the code as long as the condition, however deeply if-else values nest
        return f"_if({_emit(node.test, ctx)}, {_emit(node.body, ctx)}, {_emit(node.orelse, ctx)})"
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
    """Three-valued and/or; each operand is written once, so the code grows with the
    condition, never faster, however and/or nest.

    The operands are True, False or None (unknown). Python's ``or`` stops at the first true
    operand, which makes the result True; when none is, every operand has been evaluated
    and the result is unknown if one was None, else False. ``and`` stops at the first False
    operand, which makes the result False; when none is, every operand is True or None, and
    Python's own ``and`` of them is true exactly when all are True (else the result is
    unknown). Operands that are never unknown need no tests at all.
    """
    items = node.items
    if all(_never_unknown(i) for i in items):
        return "(" + f" {node.op} ".join(_emit(i, ctx) for i in items) + ")"
    if node.op == "or":
        parts, checks = [], []
        for item in items:
            if _never_unknown(item):
                parts.append(_emit(item, ctx))
            else:
                t = ctx.temp()
                parts.append(f"({t} := {_emit(item, ctx)})")
                checks.append(f"{t} is None")
        return (f"(True if ({' or '.join(parts)}) else None if ({' or '.join(checks)}) "
                f"else False)")
    temps = [ctx.temp() for _ in items]
    stops = " ".join(f"False if ({t} := {_emit(item, ctx)}) is False else"
                     for t, item in zip(temps, items))
    return f"({stops} True if ({' and '.join(temps)}) else None)"


def _guard(operands: Sequence[Node], ctx: EmitContext, body: Callable[..., str]) -> str:
    """Evaluate operands once; unknown if any non-literal operand is unknown.

    Every operand is evaluated (``|``, not ``or``), so each temporary is set once the guard
    has run. A chain ``a < b < c`` is checked as ``a < b and b < c`` with ``b`` one shared
    node; its second use reads the temporary of the first (the ``and`` always runs its first
    comparison before the second), so a chain writes each operand once.
    """
    refs: list[str] = []
    checks: list[str] = []
    for op in operands:
        if isinstance(op, (Lit, Seq)):
            refs.append(_emit(op, ctx))
        elif id(op) in ctx.shared:
            t = ctx.shared[id(op)]
            checks.append(f"({t} is None)")
            refs.append(t)
        else:
            t = ctx.temp()
            ctx.shared[id(op)] = t
            checks.append(f"(({t} := {_emit(op, ctx)}) is None)")
            refs.append(t)
    if not checks:
        return body(*refs)
    return f"(None if ({' | '.join(checks)}) else {body(*refs)})"


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
        return (f"({_emit(node.args[1], ctx)} if ({t} := {_emit(node.args[0], ctx)}) is None "
                f"else {t})")
    raise TypeError(node.func)  # pragma: no cover


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def _if(test: bool | None, body: Any, orelse: Any) -> Any:
    """``body if test else orelse`` in three-valued logic: with the test unknown, the value
    is known only when both branches agree."""
    if test is True:
        return body
    if test is False:
        return orelse
    return body if body == orelse else None


def runtime_namespace() -> dict[str, Any]:
    """The only names generated code can see: our helpers, and no builtins."""
    return {"__builtins__": {}, "_div": _div, "_if": _if, "min_": min, "max_": max,
            "len": len}


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
