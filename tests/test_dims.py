"""Dims arithmetic (MATH.md, "Stacking, indexing and dims arithmetic"): dims are
polynomials over named dims with integer coefficients, in a normal form, so shapes
compare with ``==``; evaluation binds the names, from the values where it can."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import matdiff as md
from matdiff.errors import EvaluationError, ShapeError
from matdiff.expr.dims import (
    DimPoly,
    dim_add,
    dim_mul,
    dim_names,
    dim_size,
    dim_sub,
    parse_dim,
    solve_dim,
)

NAMES = ("m", "n", "p")


def dims():
    leaf = st.one_of(st.integers(0, 4), st.sampled_from(NAMES))
    return st.recursive(leaf, lambda sub: st.one_of(
        st.tuples(st.just("+"), sub, sub), st.tuples(st.just("-"), sub, sub),
        st.tuples(st.just("*"), sub, sub)), max_leaves=6)


def build(t):
    if not isinstance(t, tuple):
        return t
    op, a, b = t
    return {"+": dim_add, "-": dim_sub, "*": dim_mul}[op](build(a), build(b))


def value(t, sizes):
    """The same dim evaluated by plain integer arithmetic (the independent oracle)."""
    if isinstance(t, int):
        return t
    if isinstance(t, str):
        return sizes[t]
    op, a, b = t
    x, y = value(a, sizes), value(b, sizes)
    return x + y if op == "+" else x - y if op == "-" else x * y


def text(t):
    if not isinstance(t, tuple):
        return str(t)
    op, a, b = t
    return f"({text(a)} {op} {text(b)})"


@given(dims(), st.tuples(*[st.integers(0, 9)] * 3))
def test_polynomial_dims_evaluate_as_integer_arithmetic(t, ns):
    sizes = dict(zip(NAMES, ns))
    d = build(t)
    assert dim_size(d, sizes) == value(t, sizes)
    assert parse_dim(text(t)) == d            # the text form reads back to the same dim
    assert hash(parse_dim(text(t))) == hash(d)


def test_normal_form():
    assert dim_add("n", 1, -1) == "n"
    assert dim_sub("n", "n") == 0
    assert dim_mul("n", 1) == "n"
    assert dim_add("n", "n") == dim_mul(2, "n")
    assert dim_mul("m", "n") == dim_mul("n", "m")
    assert isinstance(dim_add("n", 1), DimPoly)
    assert str(dim_add(dim_mul("m", "n"), dim_mul(2, "n"), 1)) == "m·n + 2·n + 1"
    assert str(dim_sub("n", 1)) == "n - 1"
    assert dim_names(dim_add(dim_mul("m", "n"), 1)) == {"m", "n"}
    assert parse_dim("2n") == dim_mul(2, "n")
    assert parse_dim("m·n") == parse_dim("m*n") == parse_dim("n × m")


@pytest.mark.parametrize("bad", ["n +", "n ++ 1", "(n", "n)", "", "n / 2"])
def test_unreadable_dims(bad):
    with pytest.raises(ShapeError, match="dim"):
        parse_dim(bad)


def test_solve_linear_dims():
    assert solve_dim(dim_add("n", 1), 4, {}) == ("n", 3)
    assert solve_dim(dim_mul("m", "n"), 12, {"m": 3}) == ("n", 4)
    assert solve_dim(dim_mul("m", "n"), 12, {}) is None       # two unknowns
    assert solve_dim(dim_mul(2, "n"), 7, {}) is None           # no integer solution
    assert solve_dim(dim_mul("n", "n"), 9, {}) is None         # not linear


def test_shapes_take_composite_dims_and_evaluate():
    x = md.vector("x", "n+1")
    assert x.shape == (dim_add("n", 1),)
    f = md.sum(x * x)
    v = np.arange(4.0)
    assert float(f.evaluate(x=v)) == pytest.approx(float(v @ v))
    g = md.derive(f, x)
    np.testing.assert_allclose(md.evaluate(g, {"x": v}), 2 * v)
    # the size n is read from the value of x: n + 1 = 4
    m = md.derive(md.mean(x), x)
    np.testing.assert_allclose(md.evaluate(m, {"x": v}), np.full(4, 0.25))


def test_composite_dims_bind_against_other_values():
    A = md.matrix("A", "n+1", "n")
    y = md.vector("y", "n")
    f = md.sum(A @ y)
    assert float(md.evaluate(f, {"A": np.ones((4, 3)), "y": np.ones(3)})) == 12.0
    with pytest.raises(EvaluationError, match="dim n"):
        md.evaluate(f, {"A": np.ones((4, 4)), "y": np.ones(3)})
    B = md.matrix("B", "m*n", "p")
    with pytest.raises(EvaluationError, match="cannot be read from its value"):
        md.evaluate(md.sum(B), {"B": np.ones((6, 2))})
    assert float(md.evaluate(md.sum(B), {"B": np.ones((6, 2))}, dims={"m": 2, "n": 3})) == 12


def test_sizes_print_with_their_parentheses():
    x = md.vector("x", "n+1")
    assert md.to_text(md.derive(md.mean(x), x)) == "𝟏/(n + 1)"  # the ones vector, as in the LaTeX
    assert md.latex(md.derive(md.mean(x), x)) == r"\frac{\mathbf{1}}{n + 1}"
    z = md.vector("z", "n-1")
    assert md.to_text(md.mean(z)) == "mean(z)"  # as written
    assert md.to_text(md.sum(z) / md.size_of(("n-1",))) == "sum(z)/(n − 1)"


def test_check_and_compile_with_composite_dims():
    x = md.vector("x", "n+1")
    f = md.sum(md.exp(x)) / md.sum(x * x)
    assert md.check(f, "x").ok
    g = md.derive(f, x)
    v = np.linspace(0.5, 1.5, 5)
    for backend in ("numpy", "jax", "torch"):
        pytest.importorskip(backend)
        got = np.asarray(md.compile(g, backend=backend)(x=v))
        np.testing.assert_allclose(got, md.evaluate(g, {"x": v}), rtol=1e-6)


def test_cli_shape_with_a_composite_dim(capsys):
    from matdiff import cli

    assert cli.main(["sum(x * x)", "--wrt", "x", "--shape", "x=n+1", "--check"]) == 0
    out = capsys.readouterr().out
    assert "n + 1" in out
