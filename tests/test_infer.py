"""Shape inference without declarations, for both syntaxes."""

from __future__ import annotations

import io

import numpy as np
import pytest

import matdiff as md
from matdiff.cli import run

MC = "matrixcalculus"


@pytest.mark.parametrize("text, variables", [
    ("x @ A @ x", {"x": ("n",), "A": ("n", "n")}),
    ("X @ w", {"X": ("m", "n"), "w": ("n",)}),
    ("X @ w + b", {"X": ("m", "n"), "w": ("n",), "b": ()}),  # a–g: scalars
    ("A @ B", {"A": ("n", "m"), "B": ("m", "k")}),
    ("w * x", {"w": ("n",), "x": ("n",)}),
    ("sum(w * x) + b", {"w": ("n",), "x": ("n",), "b": ()}),
    ("x ** 2", {"x": ("n",)}),
    ("x ** a", {"x": (), "a": ()}),
    ("x ** 2 + a ** 2", {"x": ("n",), "a": ()}),
    ("a ** b", {"a": (), "b": ()}),
    ("tr(x)", {"x": ("n", "n")}),
    ("det(inv(X)) * y", {"X": ("m", "m"), "y": ("n",)}),
    ("x @ y", {"x": ("n",), "y": ("n",)}),
    ("outer(x, y) @ z", {"x": ("n",), "y": ("m",), "z": ("m",)}),
    ("A * x", {"A": ("m", "n"), "x": ("n",)}),
    ("eye(N) @ x", {"x": ("N",)}),
    ("vector(1, 3) @ x", {"x": (3,)}),
    ("diag(x) @ A", {"x": ("n",), "A": ("n", "m")}),
    ("sum(X, 0) @ w", {"X": ("m", "n"), "w": ("n",)}),
    ("softmax(x) @ y", {"x": ("n",), "y": ("n",)}),
    ("mean((y - max(0, X @ w + b))**2)",
     {"y": ("n",), "X": ("n", "m"), "w": ("m",), "b": ()}),  # the paper's bias
    ("A.T @ x", {"A": ("n", "m"), "x": ("n",)}),
])
def test_numpy_inferred_shapes(text: str, variables: dict) -> None:
    """matrixcalculus.org's letters (capitals matrices, a–g scalars, h–z vectors)
    wherever usage allows them."""
    f = md.parse(text)
    assert {k: f.variables()[k] for k in variables} == variables
    assert set(f.variables()) == set(variables)


@pytest.mark.parametrize("text, variables", [
    ("x'*A*x", {"x": ("n",), "A": ("n", "n")}),
    ("A*x", {"A": ("m", "n"), "x": ("n",)}),
    ("a*x", {"a": (), "x": ("n",)}),
    ("x'*y + c", {"x": ("n",), "y": ("n",), "c": ()}),
    ("a^b", {"a": (), "b": ()}),
    ("x.^a", {"x": ("n",), "a": ()}),
    ("2.^x", {"x": ("n",)}),
    ("X'*X", {"X": ("n", "m")}),
    ("x*x'", {"x": ("n",)}),
    ("inv(A)*x", {"A": ("n", "n"), "x": ("n",)}),
])
def test_matrixcalculus_inferred_shapes(text: str, variables: dict) -> None:
    f = md.parse(text, syntax=MC)
    assert {k: f.variables()[k] for k in variables} == variables


# ====================================================================== declarations
def test_declarations_override_the_convention() -> None:
    f = md.parse("A * x", shapes={"A": ()})
    assert f.variables() == {"A": (), "x": ("n",)}
    f = md.parse("x'*A*x", shapes={"A": ("N", "N")}, syntax=MC)
    assert f.variables() == {"x": ("N",), "A": ("N", "N")}


def test_partial_declarations_name_the_dims() -> None:
    f = md.parse("X @ w + b", shapes={"w": (5,), "b": ("N",)})
    assert f.variables() == {"X": ("N", 5), "w": (5,), "b": ("N",)}
    f = md.parse("sum(log(exp(-y.*(X*w))+vector(1)))", shapes={"X": ("N", "d")},
                 syntax=MC)
    assert f.variables() == {"X": ("N", "d"), "w": ("d",), "y": ("N",)}


def test_inferred_names_avoid_declared_dims_and_variables() -> None:
    f = md.parse("A @ x + n", shapes={"A": ("m", "k")})
    shapes = f.variables()
    assert shapes["A"] == ("m", "k") and shapes["x"] == ("k",)
    assert shapes["n"] == ("m",)
    g = md.parse("x @ n", shapes={"x": ("n",)})
    assert g.variables()["n"] == ("n",)
    h = md.parse("X @ w", shapes={})
    assert "w" not in h.variables()["X"]


def test_inferred_shapes_evaluate_and_derive() -> None:
    f = md.parse("sum(log(1 + exp(-y * (X @ w))))")
    for name in f.variables():
        assert md.check(f, name).ok
    g = md.derive("x @ A @ x", "x")
    x, A = np.arange(3.0), np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(g.evaluate(x=x, A=A), (A + A.T) @ x)


# ====================================================================== conflicts
@pytest.mark.parametrize("text, shapes, syntax", [
    ("A @ q + q @ M", {"A": ("n", "n"), "M": ("m", "n")}, "numpy"),
    ("x @ A", {"x": ("n",), "A": ("m", "m")}, "numpy"),
    ("tr(x) + outer(x, x)", {}, "numpy"),
    ("x'*A*x", {"x": ("n",), "A": ("m", "m")}, MC),
    ("A*x + x'", {"x": ("n",)}, MC),
    ("x'*B*y + y'*C*x", {"B": ("n", "m"), "C": ("n", "m")}, MC),
])
def test_conflicts_show_two_carets(text: str, shapes: dict, syntax: str) -> None:
    with pytest.raises(md.ShapeError) as info:
        md.parse(text, shapes=shapes, syntax=syntax)
    err = info.value
    assert len(err.spans) >= 2
    lines = str(err).split("\n")
    assert lines[-2] == "  " + text
    assert lines[-1].count("^") >= 2 and set(lines[-1]) <= {" ", "^"}


def test_conflict_through_an_undeclared_variable_points_at_three_uses() -> None:
    text = "A @ q + q @ M"
    with pytest.raises(md.ShapeError) as info:
        md.parse(text, shapes={"A": ("n", "n"), "M": ("m", "n")})
    assert {(8, 9), (12, 13), (0, 1)} <= set(info.value.spans)


def test_rank_conflict_shows_the_other_use() -> None:
    with pytest.raises(md.ShapeError) as info:
        md.parse("tr(x) + outer(x, x)")
    assert (3, 4) in info.value.spans


def test_many_variables_stay_fast() -> None:
    text = " + ".join(f"x{i} @ A{i} @ x{i}" for i in range(40))
    f = md.parse(text)
    shapes = f.variables()
    assert len(shapes["A7"]) == 2 and shapes["A7"][0] == shapes["A7"][1]
    assert shapes["x7"] == shapes["A7"][:1]


# ====================================================================== CLI
def test_cli_prints_inferred_shapes() -> None:
    out = io.StringIO()
    assert run(["x'*A*x", "--syntax", "matrixcalculus", "--wrt", "x"], out=out) == 0
    text = out.getvalue()
    assert "variables:" in text and "x (n,)" in text and "A (n, n)" in text
    assert "∂f/∂x = (A + Aᵀ)x" in text


def test_cli_numpy_without_shapes() -> None:
    out = io.StringIO()
    assert run(["X @ w", "--wrt", "w"], out=out) == 0
    assert "X (m, n)" in out.getvalue()
