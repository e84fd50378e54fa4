"""The condition language: parsing, checking, three-valued logic, and what it refuses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iopscreen import expr
from iopscreen.expr import ExprRejected, Symbol, Type

SYMBOLS = {
    "x": Symbol("x", expr.T_BOOL, "question"),
    "y": Symbol("y", expr.T_BOOL, "question"),
    "z": Symbol("z", expr.T_BOOL, "question"),
    "n": Symbol("n", expr.T_NUM, "score"),
    "m": Symbol("m", expr.T_NUM, "question"),
    "c": Symbol("c", Type(expr.STR, frozenset({"daily", "weekly", "never"})), "question"),
    "k": Symbol("k", Type(expr.NUM, frozenset({0, 1, 2, 3})), "question"),
    "s": Symbol("s", Type(expr.SET, frozenset({"cost", "time"})), "question"),
    "t": Symbol("t", Type(expr.TEXT), "question"),
}
ORDER = list(SYMBOLS)


def run(text: str, **values: Any) -> Any:
    """Compile ``text`` the way the program does and evaluate it on ``values``."""
    cond = expr.parse(text, SYMBOLS, want=None)
    declined = set(values.pop("_declined", ()))
    ctx = expr.EmitContext(slot=lambda n: f"v[{ORDER.index(n)}]",
                           declined=lambda n: f"({n!r} in d)")
    source = f"def f(v, d):\n    return {expr.emit(cond.node, ctx)}\n"
    ns = expr.runtime_namespace()
    ns.update(ctx.constants)
    exec(compile(source, "<test>", "exec"), ns)
    v = [values.get(name) for name in ORDER]
    return ns["f"](v, declined)


U = None  # unknown


@pytest.mark.parametrize(
    "a, b, want_and, want_or",
    [
        (True, True, True, True),
        (True, False, False, True),
        (False, False, False, False),
        (True, U, U, True),
        (U, True, U, True),
        (False, U, False, U),
        (U, False, False, U),
        (U, U, U, U),
    ],
)
def test_kleene_and_or(a: Any, b: Any, want_and: Any, want_or: Any) -> None:
    assert run("x and y", x=a, y=b) is want_and
    assert run("x or y", x=a, y=b) is want_or


def test_not_of_unknown_is_unknown() -> None:
    assert run("not x", x=U) is None
    assert run("not x", x=False) is True


def test_or_is_true_when_right_is_true_and_left_unknown() -> None:
    assert run("x or y", x=U, y=True) is True


def test_comparisons_with_unknown_are_unknown() -> None:
    assert run("n >= 10", n=U) is None
    assert run("n >= 10", n=12) is True
    assert run("5 <= n <= 9", n=7) is True
    assert run("5 <= n <= 9", n=10) is False
    assert run("5 <= n <= 9", n=U) is None
    assert run("c == 'daily'", c=U) is None
    assert run("c != 'daily'", c="weekly") is True


def test_unknown_does_not_hide_a_decisive_false() -> None:
    # A 'no' upstream makes the rule false even when the follow-up was never asked.
    assert run("x and n >= 3", x=False, n=U) is False


def test_arithmetic_and_division_by_zero() -> None:
    assert run("n + m >= 5", n=2, m=3) is True
    assert run("n + m >= 5", n=2, m=U) is None
    assert run("n / m > 1", n=2, m=0) is None
    assert run("-n < 0", n=3) is True


def test_in_lists_and_multi_choice() -> None:
    assert run("c in ['daily', 'weekly']", c="daily") is True
    assert run("c not in ['daily', 'weekly']", c="never") is True
    assert run("c in ['daily']", c=U) is None
    assert run("'cost' in s", s=frozenset({"cost"})) is True
    assert run("'time' in s", s=frozenset({"cost"})) is False
    assert run("'time' in s", s=U) is None
    assert run("count(s) >= 2", s=frozenset({"cost", "time"})) is True
    assert run("count(s) == 0", s=frozenset()) is True


def test_functions() -> None:
    assert run("answered(n)", n=U) is False
    assert run("answered(n)", n=0) is True
    assert run("declined(x)", x=U, _declined={"x"}) is True
    assert run("declined(x)", x=U) is False
    assert run("count(x, y, z) >= 2", x=True, y=True, z=False) is True
    assert run("count(x, y, z) >= 2", x=True, y=U, z=False) is None
    assert run("any(x, y)", x=U, y=True) is True
    assert run("all(x, y)", x=U, y=False) is False
    assert run("max(n, m) == 4", n=4, m=1) is True
    assert run("min(n, m) == 1", n=U, m=1) is None
    assert run("coalesce(c, 'never') == 'never'", c=U) is True
    assert run("coalesce(c, 'never') == 'never'", c="daily") is False


def test_if_else_with_unknown_test() -> None:
    assert run("(4 if c == 'daily' else 3) == 3", c="weekly") is True
    assert run("(4 if c == 'daily' else 3) == 3", c=U) is None
    assert run("(3 if c == 'daily' else 3) == 3", c=U) is True  # both branches agree


def reject(text: str, want: expr.Type | None = expr.T_BOOL) -> expr.ExprProblem:
    with pytest.raises(ExprRejected) as info:
        expr.parse(text, SYMBOLS, want)
    return info.value.problem


@pytest.mark.parametrize(
    "text, code",
    [
        ("x.__class__", "E203"),
        ("s[0] == 'cost'", "E203"),
        ("(lambda: 1)() == 1", "E204"),
        ("[a for a in s]", "E203"),
        ("f'{x}' == 'a'", "E203"),
        ("__import__('os')", "E204"),
        ("open('f')", "E204"),
        ("eval('1')", "E204"),
        ("x is None", "E203"),
        ("(y := 1) == 1", "E203"),
        ("n ** 2 > 1", "E203"),
        ("None == n", "E203"),
        ("count(x=1) > 0", "E203"),
        ("xx", "E201"),
        ("phq9_totl >= 10", "E201"),
        ("x == 'yes'", "E205"),
        ("c == 'dialy'", "E206"),
        ("k == 7", "E206"),
        ("c > 2", "E205"),
        ("t == 'hello'", "E205"),
        ("n", "E208"),
        ("x and", "E202"),
        ("", "E202"),
        ("answered(1)", "E207"),
        ("declined(n)", "E205"),
        ("'fish' in s", "E206"),
    ],
)
def test_rejects(text: str, code: str) -> None:
    assert reject(text).code == code


def test_unknown_name_has_did_you_mean() -> None:
    p = reject("mm >= 3")
    assert p.code == "E201" and p.name == "unknown-name"
    assert "did you mean" in p.hint


def test_impossible_code_hint_names_the_close_code() -> None:
    p = reject("c == 'dialy'")
    assert "'daily'" in p.hint


def test_offsets_point_at_the_bad_token() -> None:
    assert reject("n >= 3 and zz").offset == len("n >= 3 and ")


def test_condition_names_are_recorded() -> None:
    cond = expr.parse("x and n >= 3 or 'cost' in s", SYMBOLS)
    assert cond.names == {"x", "n", "s"}


# ---------------------------------------------------------------- property tests (hypothesis)

BOOL_NAMES = ["x", "y", "z"]
NUM_NAMES = ["n", "m"]


def bool_exprs() -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(BOOL_NAMES),
        st.sampled_from(["True", "False"]),
        st.builds(lambda a, op, b: f"{a} {op} {b}", st.sampled_from(NUM_NAMES),
                  st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
                  st.integers(-3, 30).map(str)),
        st.sampled_from(["answered(n)", "declined(x)", "'cost' in s", "c == 'daily'"]),
        st.builds(lambda a, b: f"{a} <= n < {b}", st.integers(-3, 30), st.integers(-3, 30)),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"({a} and {b})", inner, inner),
            st.builds(lambda a, b, c: f"(({a}) if {b} else ({c}))", inner, inner, inner),
            st.builds(lambda a, k: f"(0 <= (n if {a} else m) <= {k})", inner,
                      st.integers(-3, 30)),
            st.builds(lambda a, b: f"({a} or {b})", inner, inner),
            st.builds(lambda a: f"(not {a})", inner),
            st.builds(lambda a, b: f"any({a}, {b})", inner, inner),
            st.builds(lambda a, b: f"(count({a}, {b}) >= 1)", inner, inner),
        ),
        max_leaves=12,
    )


def reference(text: str, env: dict[str, Any], declined: set[str]) -> Any:
    """An independent, slow evaluator of the same semantics over Python's own AST."""
    import ast

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if isinstance(node, ast.BoolOp):
            vals = [ev(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return False if False in vals else (None if None in vals else True)
            return True if True in vals else (None if None in vals else False)
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            if isinstance(node.op, ast.USub):
                return None if v is None else -v
            return None if v is None else not v
        if isinstance(node, ast.Compare):  # a chain is the Kleene 'and' of its comparisons
            operands = [ev(node.left)] + [ev(c) for c in node.comparators]
            parts = [compare(op, a, b) for op, a, b in zip(node.ops, operands, operands[1:])]
            return False if False in parts else (None if None in parts else True)
        if isinstance(node, ast.IfExp):
            test, body, orelse = ev(node.test), ev(node.body), ev(node.orelse)
            if test is None:
                return body if body == orelse else None
            return body if test else orelse
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            if name == "answered":
                return env.get(node.args[0].id) is not None  # type: ignore[attr-defined]
            if name == "declined":
                return node.args[0].id in declined  # type: ignore[attr-defined]
            vals = [ev(a) for a in node.args]
            if name == "any":
                return True if True in vals else (None if None in vals else False)
            if name == "count":
                return None if None in vals else sum(v is True for v in vals)
        raise AssertionError(ast.dump(node))

    def compare(op: ast.cmpop, left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        ops = {ast.Lt: lambda: left < right, ast.LtE: lambda: left <= right,
               ast.Gt: lambda: left > right, ast.GtE: lambda: left >= right,
               ast.Eq: lambda: left == right, ast.NotEq: lambda: left != right,
               ast.In: lambda: left in right}
        return ops[type(op)]()

    return ev(ast.parse(text, mode="eval").body)


values_strategy = st.fixed_dictionaries({
    "x": st.sampled_from([True, False, None]),
    "y": st.sampled_from([True, False, None]),
    "z": st.sampled_from([True, False, None]),
    "n": st.one_of(st.none(), st.integers(-5, 30)),
    "m": st.one_of(st.none(), st.integers(-5, 30)),
    "c": st.sampled_from(["daily", "weekly", "never", None]),
    "s": st.one_of(st.none(), st.frozensets(st.sampled_from(["cost", "time"]))),
})


@settings(max_examples=300, deadline=None)
@given(text=bool_exprs(), env=values_strategy, x_declined=st.booleans())
def test_compiled_matches_reference_semantics(text: str, env: dict[str, Any],
                                              x_declined: bool) -> None:
    declined = {"x"} if x_declined and env["x"] is None else set()
    got = run(text, _declined=declined, **env)
    assert got is reference(text, env, declined)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("xyznmcst()[]'.,:=<>!+-*/%@&|^~ 0129_aeilnorsdf\"")),
               max_size=40))
def test_arbitrary_text_only_ever_raises_our_error(text: str) -> None:
    try:
        cond = expr.parse(text, SYMBOLS, want=None)
    except ExprRejected:
        return
    # Whatever got through is made only of allowlisted nodes.
    allowed = (expr.Lit, expr.Name, expr.Seq, expr.Not, expr.BoolOp, expr.Compare, expr.Arith,
               expr.Neg, expr.IfElse, expr.Call)
    assert all(isinstance(node, allowed) for node in expr.walk(cond.node))
    for node in expr.walk(cond.node):
        if isinstance(node, expr.Call):
            assert node.func in (*expr.FUNCTIONS, "count_set")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["__import__", "open", "exec", "eval", "getattr", "compile", "globals",
                        "vars", "type", "object", "print"]),
       st.sampled_from(["({})", "({}).x", "({})[0]", "{}.__class__", "{}()"]))
def test_no_input_reaches_dangerous_names(name: str, shape: str) -> None:
    text = shape.format(name)
    with pytest.raises(ExprRejected):
        expr.parse(text, SYMBOLS, want=None)


def test_runtime_namespace_has_no_builtins() -> None:
    ns = expr.runtime_namespace()
    assert ns["__builtins__"] == {}


def test_a_score_name_with_a_suffix_suggests_the_score() -> None:
    symbols = {**SYMBOLS, "phq9": Symbol("phq9", expr.T_NUM, "score"),
               "phq9_9_today": Symbol("phq9_9_today", expr.T_BOOL, "question")}
    with pytest.raises(ExprRejected) as info:
        expr.parse("phq9_total >= 20", symbols)
    assert info.value.problem.hint == "did you mean 'phq9'?"


# ------------------------------------------------- literals and limits (issue 12, items 8, 10)


@pytest.mark.parametrize("text, literal", [
    ("n < 1e999", "1e999"),
    ("n > -1e999", "1e999"),
    ("n in [1, 1e999]", "1e999"),
    ("n > 1e-400", "1e-400"),
    ("n < 99999999999999999999", "99999999999999999999"),
    ("n < 0x" + "f" * 4000, "0xffff"),
    ("n < 1e16", "1e16"),
    ("n < 1_000_000_000_000_001", "1_000_000_000_000_001"),
])
def test_a_number_the_program_cannot_hold_is_refused_at_the_literal(text: str,
                                                                     literal: str) -> None:
    with pytest.raises(ExprRejected) as info:
        expr.parse(text, SYMBOLS, want=None)
    p = info.value.problem
    assert (p.code, p.name) == ("E216", "bad-number")
    assert text[p.offset:].startswith(literal)
    assert "\n" not in p.message and len(p.message) < 200  # one short line, even for 4000 digits


def test_a_number_past_the_literal_limit_names_the_limit() -> None:
    with pytest.raises(ExprRejected) as info:
        expr.parse("n < 2000", SYMBOLS, limits=expr.ConditionLimits(literal=1000))
    assert info.value.problem.limit == "literal"
    assert "1,000" in info.value.problem.message
    assert expr.parse("n < 1000", SYMBOLS, limits=expr.ConditionLimits(literal=1000))


@pytest.mark.parametrize("text, values, want", [
    ("n == -0.0", {"n": 0}, True),
    ("n < 1e15", {"n": 10**15 - 1}, True),
    ("n > -1_000_000_000_000_000", {"n": 0}, True),
    ("n == 0e-400", {"n": 0}, True),
    ("n == 0x10", {"n": 16}, True),
    ("c == '" + "a" * 3000 + "'", {"c": "daily"}, False),
])
def test_literals_within_range_run_as_written(text: str, values: dict[str, Any],
                                              want: Any) -> None:
    symbols = {**SYMBOLS, "c": Symbol("c", Type(expr.STR), "question")}
    cond = expr.parse(text, symbols, want=None)
    ctx = expr.EmitContext(slot=lambda n: f"v[{ORDER.index(n)}]", declined=lambda n: "False")
    ns = expr.runtime_namespace()
    ns.update(ctx.constants)
    exec(compile(f"def f(v, d):\n    return {expr.emit(cond.node, ctx)}\n", "<t>", "exec"), ns)
    assert ns["f"]([values.get(name) for name in ORDER], set()) is want


@pytest.mark.parametrize("text, limits, limit", [
    ("x or " * 20 + "x", expr.ConditionLimits(chars=50), "chars"),
    ("x or " * 20 + "x", expr.ConditionLimits(terms=10), "terms"),
    ("not " * 20 + "x", expr.ConditionLimits(depth=10), "depth"),
    ("x and " * 50_000 + "x", expr.ConditionLimits(), "chars"),
    ("x and " * 1200 + "x", expr.ConditionLimits(chars=10**6), "terms"),
])
def test_a_condition_past_a_limit_is_refused_with_the_limit_named(
        text: str, limits: expr.ConditionLimits, limit: str) -> None:
    with pytest.raises(ExprRejected) as info:
        expr.parse(text, SYMBOLS, limits=limits)
    p = info.value.problem
    assert (p.code, p.name, p.limit) == ("E214", "condition-too-big", limit)
    assert 0 <= p.offset <= len(text)


NESTINGS = {  # each adds about one level of nesting per step
    "not": lambda k: "not " * k + "x",
    "if-else": lambda k: "(n if x else " * k + "m" + ")" * k + " > 1",
    "and-or": lambda k: "(x or (y and " * k + "z" + "))" * k,
    "chain": lambda k: "1 < (1 if (" * k + "x" + ") else 2) < 3" * k,
    "arithmetic": lambda k: "(n + " * k + "m" + ")" * k + " > 1",
    "coalesce": lambda k: "coalesce(" * k + "n" + ", 1)" * k + " > 1",
    "max": lambda k: "max(n, " * k + "m" + ")" * k + " > 1",
}


@pytest.mark.parametrize("shape", NESTINGS)
def test_generated_code_grows_with_the_condition_not_faster(shape: str) -> None:
    """Each operand is written once: doubling the nesting about doubles the code (it used
    to double the code at every level of if-else or and-inside-or)."""
    roomy = expr.ConditionLimits(depth=1000)
    sizes = []
    for k in (4, 8):
        cond = expr.parse(NESTINGS[shape](k), SYMBOLS, want=None, limits=roomy)
        ctx = expr.EmitContext(slot=lambda n: f"v[{ORDER.index(n)}]",
                               declined=lambda n: "False")
        sizes.append(len(expr.emit(cond.node, ctx)))
    assert sizes[1] < 2.5 * sizes[0], sizes


@pytest.mark.parametrize("shape", NESTINGS)
def test_anything_within_the_default_depth_compiles(shape: str) -> None:
    depth = expr.DEFAULT_LIMITS.depth
    k = max(k for k in range(1, depth + 1) if _depth(NESTINGS[shape](k)) <= depth)
    cond = expr.parse(NESTINGS[shape](k), SYMBOLS, want=None)  # parse compiles its code
    assert cond.node is not None


@pytest.mark.parametrize("shape", NESTINGS)
def test_nesting_too_deep_to_compile_is_a_problem_not_a_crash(shape: str) -> None:
    with pytest.raises(ExprRejected) as info:
        expr.parse(NESTINGS[shape](400), SYMBOLS, want=None,
                   limits=expr.ConditionLimits(chars=10**6, terms=10**6, depth=10**6))
    assert info.value.problem.code in ("E202", "E203", "E214")


def _depth(text: str) -> int:
    import ast

    def d(node: ast.AST) -> int:
        kids = [c for c in ast.iter_child_nodes(node)
                if not isinstance(c, (ast.expr_context, ast.boolop, ast.operator, ast.unaryop,
                                      ast.cmpop))]
        return 1 + max((d(c) for c in kids), default=0)

    return d(ast.parse(text, mode="eval").body)


HOSTILE_STRINGS = ["'); __import__('os').system('x') #", "\\\\' + open('f') + '", '"""',
                   "{0.__class__}", "\x00\u2028\ud800", "'" * 3]


@pytest.mark.parametrize("literal", HOSTILE_STRINGS)
def test_generated_code_holds_a_string_only_as_a_literal(literal: str) -> None:
    """The code is built from the checked tree: a string becomes its repr, and the code can
    name nothing but our helpers, its temporaries and the answers."""
    symbols = {**SYMBOLS, "c": Symbol("c", Type(expr.STR), "question")}
    cond = expr.parse(f"c == {literal!r} or c in [{literal!r}, 'a']", symbols)
    ctx = expr.EmitContext(slot=lambda n: "v[0]", declined=lambda n: "False")
    code = compile(expr.emit(cond.node, ctx), "<t>", "eval")
    allowed = set(expr.runtime_namespace()) | set(ctx.constants) | {"v"}
    temporaries = {name for name in code.co_names if re.fullmatch(r"_t\d+", name)}
    assert set(code.co_names) - temporaries <= allowed, code.co_names
    ns = {**expr.runtime_namespace(), **ctx.constants, "v": [literal]}
    assert eval(code, ns) is True  # noqa: S307 - our generated code, no builtins
