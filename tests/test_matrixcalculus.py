"""matrixcalculus.org syntax: its published examples, operators, errors, round trip."""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from matdiff.parse.mc import mc_tokens

MC = "matrixcalculus"

#: matrixcalculus.org's published examples and the same expression in numpy syntax
EXAMPLES = [
    ("x'*A*x", "x @ A @ x"),
    ("A*exp(x)", "A @ exp(x)"),
    ("sin(x)'*y", "sin(x) @ y"),
    ("(y.*v)'*x", "(y * v) @ x"),
    ("a^b", "a ** b"),
    ("norm2(A*x-y)^2", "norm2(A @ x - y) ** 2"),
    ("sum(log(exp(-y.*(X*w))+vector(1)))", "sum(log(exp(-y * (X @ w)) + vector(1)))"),
    ("tr(A*X'*B*X*C)", "tr(A @ X.T @ B @ X @ C)"),
    ("log(det(inv(X)))", "log(det(inv(X)))"),
]

#: the shapes inferred for each example, pinned
EXAMPLE_SHAPES = {
    "x'*A*x": {"x": ("n",), "A": ("n", "n")},
    "A*exp(x)": {"A": ("m", "n"), "x": ("n",)},
    "sin(x)'*y": {"x": ("n",), "y": ("n",)},
    "(y.*v)'*x": {"y": ("n",), "v": ("n",), "x": ("n",)},
    "a^b": {"a": (), "b": ()},
    "norm2(A*x-y)^2": {"A": ("m", "n"), "x": ("n",), "y": ("m",)},
    "sum(log(exp(-y.*(X*w))+vector(1)))": {"y": ("n",), "X": ("n", "m"), "w": ("m",)},
    "tr(A*X'*B*X*C)": {"A": ("n", "m"), "X": ("k", "m"), "B": ("k", "k"),
                       "C": ("m", "n")},
    "log(det(inv(X)))": {"X": ("n", "n")},
}

SIZES = {"n": 3, "m": 4, "k": 2}


def _values(f: md.Expr, seed: int = 0) -> dict[str, np.ndarray]:
    vals = md.random_values(f, seed, sizes=SIZES)
    if "a" in vals:  # a ** b needs a > 0
        vals["a"] = np.abs(vals["a"]) + 0.5
    return vals


@pytest.mark.parametrize("mc_text, np_text", EXAMPLES)
def test_example_shapes_are_inferred(mc_text: str, np_text: str) -> None:
    f = md.parse(mc_text, syntax=MC)
    assert f.variables() == EXAMPLE_SHAPES[mc_text]
    assert md.parse(np_text).variables() == f.variables()


@pytest.mark.parametrize("mc_text, np_text", EXAMPLES)
def test_example_values_match_numpy_syntax(mc_text: str, np_text: str) -> None:
    f = md.parse(mc_text, syntax=MC)
    g = md.parse(np_text, shapes=f.variables())
    assert f.shape == g.shape
    vals = _values(f)
    np.testing.assert_allclose(f.evaluate(vals), g.evaluate(vals), rtol=1e-10)


@pytest.mark.parametrize("mc_text, np_text",
                         [pytest.param(m, n, id=m) for m, n in EXAMPLES])
def test_example_derivatives(mc_text: str, np_text: str) -> None:
    f = md.parse(mc_text, syntax=MC)
    g = md.parse(np_text, shapes=f.variables())
    for name in f.variables():
        vals = _values(f, seed=1)
        r = md.check(f, name, vals)
        assert r.ok, (mc_text, name, str(r))
        df, dg = md.derive(f, name), md.derive(g, name)
        assert df.shape == f.shape + f.variables()[name]
        np.testing.assert_allclose(df.evaluate(vals), dg.evaluate(vals), rtol=1e-9,
                                   atol=1e-12)


def test_quadratic_form_gradient_prints() -> None:
    g = md.derive(md.parse("x'*A*x", syntax=MC), "x")
    assert g.shape == ("n",)
    vals = {"x": np.arange(3.0), "A": np.arange(9.0).reshape(3, 3)}
    np.testing.assert_allclose(g.evaluate(vals), (vals["A"] + vals["A"].T) @ vals["x"])


# ====================================================================== operators
@pytest.mark.parametrize("mc_text, np_text, shapes", [
    ("x*y'", "outer(x, y)", {"x": ("n",), "y": ("m",)}),
    ("x'*y", "x @ y", {"x": ("n",), "y": ("n",)}),
    ("x'*A", "x @ A", {"x": ("n",), "A": ("n", "m")}),
    ("(x'*A)'", "A.T @ x", {"x": ("n",), "A": ("n", "m")}),
    ("x'*A*y", "x @ A @ y", {"x": ("n",), "A": ("n", "m"), "y": ("m",)}),
    ("a*x", "a * x", {"a": (), "x": ("n",)}),
    ("x*a", "x * a", {"a": (), "x": ("n",)}),
    ("2*A*x", "2 * (A @ x)", {"A": ("n", "n"), "x": ("n",)}),
    ("x/2", "x / 2", {"x": ("n",)}),
    ("x./y", "x / y", {"x": ("n",), "y": ("n",)}),
    ("x.^2", "x ** 2", {"x": ("n",)}),
    ("2.^x", "2 ** x", {"x": ("n",)}),
    ("X.*Y", "X * Y", {"X": ("n", "m"), "Y": ("n", "m")}),
    ("A^2", "A @ A", {"A": ("n", "n")}),
    ("A^3*x", "A @ A @ A @ x", {"A": ("n", "n"), "x": ("n",)}),
    ("A^-1", "inv(A)", {"A": ("n", "n")}),
    ("A^0*x", "x", {"A": ("n", "n"), "x": ("n",)}),
    ("-x'*x + 1", "-(x @ x) + 1", {"x": ("n",)}),
    ("x - vector(1)", "x - 1", {"x": ("n",)}),
    ("x' + y'", "x + y", {"x": ("n",), "y": ("n",)}),
    ("(x+y)'*(x-y)", "(x + y) @ (x - y)", {"x": ("n",), "y": ("n",)}),
    ("exp(x)'*A", "exp(x) @ A", {"x": ("n",), "A": ("n", "m")}),
    ("norm1(x) + tanh(a)", "norm1(x) + tanh(a)", {"x": ("n",), "a": ()}),
    ("sum(relu(X*w))", "sum(relu(X @ w))", {"X": ("n", "m"), "w": ("m",)}),
    ("vector(1)'*x", "sum(x)", {"x": ("n",)}),
    ("x'*vector(2)", "2 * sum(x)", {"x": ("n",)}),
    ("x'*matrix(1)*x", "x @ matrix(1, n, n) @ x", {"x": ("n",)}),
    ("abs(sign(x)).*arctan(x)", "abs(sign(x)) * arctan(x)", {"x": ("n",)}),
])
def test_operators(mc_text: str, np_text: str, shapes: dict) -> None:
    f = md.parse(mc_text, shapes=shapes, syntax=MC)
    g = md.parse(np_text, shapes=shapes)
    assert f.shape == g.shape
    vals = md.random_values(g, 3, sizes={"n": 3, "m": 2})
    np.testing.assert_allclose(f.evaluate(vals), g.evaluate(vals), rtol=1e-10)


@pytest.mark.parametrize("text, variables", [
    ("a*x", {"a": (), "x": ("n",)}),
    ("x*y'", {"x": ("n",), "y": ("m",)}),
    ("x'*A", {"x": ("n",), "A": ("n", "m")}),
    ("A*B", {"A": ("n", "m"), "B": ("m", "k")}),
    ("A^2", {"A": ("n", "n")}),
    ("x.^a", {"x": ("n",), "a": ()}),
    ("x'*y + c", {"x": ("n",), "y": ("n",), "c": ()}),
    ("sum(x) * X", {"x": ("n",), "X": ("m", "k")}),
    ("tr(x)", {"x": ("n", "n")}),
])
def test_inferred_shapes(text: str, variables: dict) -> None:
    f = md.parse(text, syntax=MC)
    assert {k: f.variables()[k] for k in variables} == variables


def test_number_before_elementwise_operator() -> None:
    assert [t.text for t in mc_tokens("2.*x+.5./y")][:8] == \
        ["2", ".*", "x", "+", ".5", "./", "y", ""]
    assert [t.text for t in mc_tokens("2.5^a")][:3] == ["2.5", "^", "a"]


# ====================================================================== errors
@pytest.mark.parametrize("text, shapes, fragment", [
    ("x*y", {"x": ("n",), "y": ("n",)}, "'*' of a column vector (n,) and a column vector"),
    ("x'*A*x", {"x": ("n",), "A": ("m", "m")}, "differ"),
    ("A*x + x'", {"x": ("n",)}, "the shapes differ"),
    ("x + 1", {"x": ("n",)}, "vector(c)"),
    ("x^2", {"x": ("n",)}, "use .^ for the element-wise power"),
    ("A^b", {"A": ("n", "n"), "b": ()}, "integer power"),
    ("x/y", {"x": ("n",), "y": ("n",)}, "use ./"),
    ("A^2", {"A": ("n", "m")}, "square"),
])
def test_shape_errors(text: str, shapes: dict | None, fragment: str) -> None:
    with pytest.raises(md.ShapeError) as info:
        md.parse(text, shapes=shapes, syntax=MC)
    err = info.value
    assert fragment in err.message
    assert err.spans and "^" in str(err).split("\n")[-1]


def test_conflict_shows_both_uses() -> None:
    text = "x'*A*x"
    with pytest.raises(md.ShapeError) as info:
        md.parse(text, shapes={"x": ("n",), "A": ("m", "m")}, syntax=MC)
    err = info.value
    assert len(err.spans) >= 2
    carets = str(err).split("\n")[-1]
    assert carets.count("^") >= 2


@pytest.mark.parametrize("text, fragment", [
    ("x @ A", "'@' is numpy syntax"),
    ("x ** 2", "write ^"),
    ("x . y", "element-wise operator"),
    ("foo(x)", "unknown function"),
    ("x*", "unexpected end of input"),
    ("2x", "invalid number"),
])
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(md.ParseError) as info:
        md.parse(text, syntax=MC)
    assert fragment in info.value.message


def test_unknown_syntax() -> None:
    with pytest.raises(md.ParseError, match="unknown syntax"):
        md.parse("x", syntax="latex")


def test_fill_without_shape() -> None:
    with pytest.raises(md.ParseError, match="cannot tell the shape of vector"):
        md.parse("sum(vector(1))", syntax=MC)


# ====================================================================== round trip
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from matdiff.render import to_matrixcalculus  # noqa: E402

_LEAVES = {
    0: [md.scalar("a"), md.scalar("c")],
    1: [md.vector("x", "n"), md.vector("y", "n")],
    2: [md.matrix("A", "n", "n"), md.matrix("B", "n", "n")],
}
_FUNCS = ["exp", "sin", "cos", "tanh", "arctan", "abs", "relu"]


@st.composite
def _exprs(draw, depth: int = 3) -> md.Expr:
    rank = draw(st.sampled_from([0, 1, 2]))
    return draw(_of_rank(rank, depth))


def _of_rank(rank: int, depth: int):
    leaf = st.sampled_from(_LEAVES[rank])
    if depth == 0:
        return leaf

    @st.composite
    def build(draw):
        op = draw(st.sampled_from(["leaf", "add", "sub", "had", "scale", "func", "mat",
                                   "T", "reduce", "pow"]))
        sub = lambda r: draw(_of_rank(r, depth - 1))  # noqa: E731
        if op == "leaf":
            return draw(leaf)
        if op in ("add", "sub", "had"):
            fn = {"add": md.add, "sub": md.sub, "had": md.mul}[op]
            return fn(sub(rank), sub(rank))
        if op == "scale":
            return md.mul(sub(0), sub(rank))
        if op == "func":
            return getattr(md, draw(st.sampled_from(_FUNCS)))(sub(rank))
        if op == "pow":
            return md.power(sub(rank), draw(st.sampled_from([2.0, 3.0])))
        if op == "T":
            return md.transpose(sub(rank)) if rank == 2 else sub(rank)
        if op == "reduce" and rank == 0:
            r = draw(st.sampled_from([1, 2]))
            e = sub(r)
            return md.tr(e) if r == 2 and draw(st.booleans()) else md.sum(e)
        if op == "mat":
            if rank == 0:
                return md.matmul(sub(1), sub(1))
            if rank == 1:
                return md.matmul(sub(2), sub(1)) if draw(st.booleans()) else \
                    md.matmul(sub(1), sub(2))
            return md.matmul(sub(2), sub(2)) if draw(st.booleans()) else \
                md.outer(sub(1), sub(1))
        return draw(leaf)

    return build()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(_exprs())
def test_printed_expression_parses_back(e: md.Expr) -> None:
    text = to_matrixcalculus(e)
    back = md.parse(text, shapes=e.variables(), syntax=MC)
    assert back.shape == e.shape
    if back is e:
        return
    vals = md.random_values(e, 5, sizes={"n": 3})
    vals.update({k: v for k, v in md.random_values(back, 5, sizes={"n": 3}).items()
                 if k not in vals})
    np.testing.assert_allclose(back.evaluate(vals), e.evaluate(vals), rtol=1e-9,
                               atol=1e-9)


def test_printed_examples_parse_back_to_the_same_node() -> None:
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    for e in [x @ A @ x, md.outer(x, x), A @ x, md.tr(A @ A.T), md.sum(md.exp(x))]:
        back = md.parse(to_matrixcalculus(e), shapes=e.variables(), syntax=MC)
        assert back is e, (to_matrixcalculus(e), str(back), str(e))


def test_printer_refuses_what_the_syntax_lacks() -> None:
    with pytest.raises(ValueError, match="softmax"):
        to_matrixcalculus(md.softmax(md.vector("x", "n")))


def test_axis_sums_print_as_products_with_ones() -> None:
    # Regression (found by hypothesis): the syntax has no sum(A, axis=k)
    x, A, a = md.vector("x", "n"), md.matrix("A", "n", "m"), md.scalar("a")
    y = md.vector("y", "m")
    for e in [a + md.sum(A, axis=1) @ x, md.sum(A, axis=0) @ y, md.sum(A.T, axis=1) @ y]:
        text = to_matrixcalculus(e)
        assert "vector(1" in text
        back = md.parse(text, shapes=e.variables(), syntax=MC)
        vals = md.random_values(e, 5, sizes={"n": 3, "m": 2})
        np.testing.assert_allclose(back.evaluate(vals), e.evaluate(vals), rtol=1e-12)


def test_identity_from_the_printed_reading_round_trips() -> None:
    # Regression (found by hypothesis): x + Aᵀx reads (I + Aᵀ)x; the syntax has no I
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    for e in [2 * x + A.T @ x, x + x @ A]:
        text = to_matrixcalculus(e)
        back = md.parse(text, shapes=e.variables(), syntax=MC)
        vals = md.random_values(e, 5, sizes={"n": 3})
        np.testing.assert_allclose(back.evaluate(vals), e.evaluate(vals), rtol=1e-12)
