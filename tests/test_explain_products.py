"""md.explain through differentials: products whose factors hold the variable more
than once (the product rule) and matrix functions (their definitions' differentials).

The expected lines are the textbook's, worked by hand (Magnus & Neudecker's
identification rule: ``dy = a dx`` gives ``∂y/∂x = a``; Matrix Cookbook eqs. 46, 51,
59 for det, log det and the inverse).  Every printed member of every differential is
also checked in numbers: the printed text is read back (``syntax="unicode"``) and
evaluated along a random direction ``dx``, and must equal the central difference of
the step along ``dx``; the collected Jacobian and the gradient must equal md.derive's
and central differences.  A planted wrong differential fails that check.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

import matdiff as md
from helpers import fd_directional
from katex import katex_errors
from matdiff.explain.differentials import Differential, differential_of

QUAD = {"x": ("n",), "A": ("n", "n"), "B": ("n", "n")}
MAT = {"X": ("n", "n"), "A": ("n", "n")}
RECT = {"X": ("m", "n")}
VEC = {"x": ("n",)}


def _diff(d: md.Derivation, of: str | None = None) -> Differential:
    """The differential of the derivation's (only, or named) step."""
    found = [loc.differential for s in d.steps for loc in s.derivatives
             if loc.differential is not None and (of is None or loc.of == of)]
    assert len(found) == 1, [str(x) for x in found]
    return found[0]


# =============================================================== the textbook lines
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("expr, shapes, line, gradient", [
    # d(xᵀAx) = dxᵀAx + xᵀA dx = xᵀ(A + Aᵀ)dx,  ∇ = (A + Aᵀ)x
    ("x @ A @ x", QUAD, "dy = dxᵀAx + xᵀA dx = xᵀ(A + Aᵀ) dx", "(A + Aᵀ)x"),
    # d(xᵀx) = dxᵀx + xᵀdx = 2xᵀdx (xᵀdx is the scalar dxᵀx),  ∇ = 2x
    ("x @ x", VEC, "dy = dxᵀx + dxᵀx = 2xᵀ dx", "2x"),
    # d((Ax)ᵀ(Bx)) = (A dx)ᵀBx + (Ax)ᵀB dx = xᵀ(BᵀA + AᵀB)dx
    ("(A @ x) @ (B @ x)", QUAD, "dy = xᵀBᵀA dx + xᵀAᵀB dx = xᵀ(AᵀB + BᵀA) dx",
     "(AᵀB + BᵀA)x"),
    # d log det X = tr(X⁻¹ dX) (= tr(dX X⁻¹), cyclic),  ∇ = X⁻ᵀ
    ("logdet(X)", MAT, "dy = tr(dX X⁻¹)", "X⁻ᵀ"),
    # d det X = det X tr(X⁻¹ dX),  ∇ = det(X) X⁻ᵀ
    ("det(X)", MAT, "dy = det(X)tr(dX X⁻¹)", "det(X)X⁻ᵀ"),
    # d logsumexp(x) = softmax(x)ᵀ dx,  ∇ = softmax(x)
    ("logsumexp(x)", VEC, "dy = dxᵀsoftmax(x) = softmax(x)ᵀ dx", "softmax(x)"),
])
def test_scalar_lines(lang: str, expr: str, shapes: dict, line: str, gradient: str) -> None:
    d = md.explain(expr, next(iter(k for k in shapes if k in ("x", "X"))), lang=lang,
                   shapes=shapes)
    diff = _diff(d)
    assert diff.line() == line
    assert md.to_text(diff.gradient) == gradient == d.mixed  # the one step's gradient
    assert gradient in str(d)
    assert line in str(d)


@pytest.mark.parametrize("expr, wrt, shapes, line", [
    # d(XᵀX) = dXᵀX + XᵀdX: no collected form (a 4th-order Jacobian)
    ("X.T @ X", "X", RECT, "dy = dXᵀX + XᵀdX"),
    # d(X⁻¹) = −X⁻¹ dX X⁻¹
    ("inv(X)", "X", MAT, "dy = −X⁻¹dX X⁻¹"),
    # d(XX) = dX X + X dX
    ("X @ X", "X", MAT, "dy = X dX + dX X"),
    # ds = s ⊙ dx − s(sᵀdx) = (diag(s) − ssᵀ)dx, s = softmax(x)
    ("softmax(x)", "x", VEC, "dy = dx ⊗ softmax(x) − softmax(x)dxᵀsoftmax(x) "
                             "= (diag(softmax(x)) − softmax(x)softmax(x)ᵀ) dx"),
    # d log_softmax(x) = dx − 1 softmax(x)ᵀdx = (I − 1 softmax(x)ᵀ)dx
    ("log_softmax(x)", "x", VEC, "dy = (I − 𝟏softmax(x)ᵀ)dx"),
])
def test_matrix_valued_lines(expr: str, wrt: str, shapes: dict, line: str) -> None:
    d = md.explain(expr, wrt, shapes=shapes)
    diff = _diff(d)
    assert diff.line() == line
    assert diff.gradient is None  # not a scalar: no gradient to read off
    assert line in str(d)


def test_trace_of_a_product_with_the_variable_twice() -> None:
    # d tr(XAXᵀ) = tr(dX A Xᵀ) + tr(X A dXᵀ) = tr((A + Aᵀ)Xᵀ dX),  ∇ = X(A + Aᵀ)
    d = md.explain("tr(X @ A @ X.T)", "X", shapes=MAT)
    diff = _diff(d)
    assert diff.rule == "product" and diff.count == 2 and len(diff.terms) == 2
    assert md.to_text(diff.gradient) == "X(A + Aᵀ)" == d.mixed
    assert diff.collected_text().startswith("tr(")


def test_the_rule_is_the_definitions() -> None:
    """A matrix function's step prints its definition's differential, read from the
    field: no function is named by the explain code."""
    from matdiff.expr.matrix_functions import MATRIX_FUNCTIONS

    X, dX = md.matrix("X", "n", "n"), md.matrix("dX", "n", "n")
    diff = differential_of("y", md.inv(X), X)
    assert diff is not None and diff.rule == "function"
    assert diff.terms == [MATRIX_FUNCTIONS["inv"].differential(X, dX)]


def test_a_step_holding_the_variable_once_has_no_differential() -> None:
    # the paper's own examples keep their one-line local derivatives
    d = md.explain("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
    assert all(loc.differential is None for s in d.steps for loc in s.derivatives)
    d = md.explain("max(0, w @ x + b)", "w", shapes={"w": ("n",), "x": ("n",), "b": ()})
    assert all(loc.differential is None for s in d.steps for loc in s.derivatives)
    assert "product rule" not in str(d)
    # the paper's C = sum(v²)/N: an intermediate's power keeps the element-wise rule
    d = md.explain("mean((y - max(0, X @ w + b))**2)", "w",
                   shapes={"y": ("N",), "X": ("N", "n"), "w": ("n",), "b": ()})
    assert all(loc.differential is None for s in d.steps for loc in s.derivatives)


# =============================================================== numbers
CASES = [
    ("x @ A @ x", "x", QUAD), ("x @ x", "x", VEC), ("(A @ x) @ (B @ x)", "x", QUAD),
    ("tr(X @ A @ X.T)", "X", MAT), ("X.T @ X", "X", RECT), ("X @ X", "X", MAT),
    ("x @ A @ x * x", "x", QUAD), ("sum(x * x * x)", "x", VEC),
    ("inv(X)", "X", MAT), ("det(X)", "X", MAT), ("logdet(X)", "X", MAT),
    ("logsumexp(x)", "x", VEC), ("softmax(x)", "x", VEC), ("log_softmax(x)", "x", VEC),
    ("logsumexp(X)", "X", RECT), ("softmax(X)", "X", RECT),
    # inside longer derivations: the differential of an intermediate step
    ("exp(x @ A @ x)", "x", QUAD), ("sum(log(softmax(A @ x)))", "x", QUAD),
    ("logdet(X.T @ X)", "X", MAT), ("tr(inv(X) @ A)", "X", MAT),
    ("sum((A @ x) * (B @ x))", "x", QUAD),
]


def _values(expr: md.Expr, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values; square matrices near the identity (det > 0: log det is defined)."""
    vals = md.random_values(expr, rng=rng)
    for k, v in vals.items():
        if np.ndim(v) == 2 and np.shape(v)[0] == np.shape(v)[1]:
            vals[k] = np.eye(np.shape(v)[0]) + 0.2 * np.asarray(v)
    return vals


def _read(text: str, shapes: dict) -> md.Expr:
    """A printed member read back: the paper's ⊗ is the element-wise product ⊙."""
    return md.parse(text.replace("⊗", "⊙"), shapes=shapes, syntax="unicode")


def check_differential(step: md.Expr, diff: Differential, vals: dict,
                       rng: np.random.Generator) -> None:
    """Each member of ``dy = …`` evaluated along a random direction equals the
    central difference of the step along it; the Jacobian read off is md.derive's,
    and so is the gradient."""
    v = diff.wrt
    direction = rng.standard_normal(np.shape(vals[v]))
    at = {**vals, diff.dvar.name: direction}
    want = fd_directional(lambda t: step.evaluate({**vals, v: t}), vals[v], direction)
    shapes = {**step.variables(), diff.dvar.name: diff.dvar.shape}
    members = {"sum of the terms": sum(np.asarray(t.evaluate(at)) for t in diff.terms)}
    for text in diff.members():
        members[text] = _read(text, shapes).evaluate(at)
    if diff.collected is not None:
        members["collected"] = diff.collected.evaluate(at)
    for what, got in members.items():
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8,
                                   err_msg=f"{diff.line()}: {what}")
    J = md.derive(step, v)
    np.testing.assert_allclose(diff.jacobian.evaluate(vals), J.evaluate(vals))
    if diff.gradient is not None:
        assert np.shape(diff.gradient.evaluate(vals)) == np.shape(vals[v])
        np.testing.assert_allclose(np.sum(diff.gradient.evaluate(vals) * direction),
                                   want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("expr, wrt, shapes", CASES)
def test_every_member_is_the_directional_derivative(expr: str, wrt: str,
                                                    shapes: dict) -> None:
    d = md.explain(expr, wrt, shapes=shapes)
    if len(d.steps) > 3:  # u₁, u₂, …: names the unicode syntax reads back
        d = md.explain(expr, wrt, shapes=shapes,
                       names=[f"u{chr(97 + k)}" for k in range(len(d.steps) - 1)])
    rng = np.random.default_rng(7)
    seen = 0
    for s in d.steps:
        for loc in s.derivatives:
            if loc.differential is None:
                continue
            seen += 1
            vals = {**_values(d.f, rng), **_values(s.expr, rng)}
            check_differential(s.expr, loc.differential, vals, rng)
    assert seen, f"{expr}: no step explained by its differential"
    # and the derivation ends with md.derive's result, in numbers too
    f = md.parse(expr, shapes=shapes)
    assert d.mixed == md.to_text(md.derive(f, wrt))


def test_a_planted_wrong_differential_fails_the_check() -> None:
    """The product rule with a term left out (dxᵀAx only), and a matrix function's
    differential with its sign flipped, must fail."""
    rng = np.random.default_rng(3)
    for expr, wrt, shapes, plant in [
        ("x @ A @ x", "x", QUAD, lambda t: t[:1]),
        ("logdet(X)", "X", MAT, lambda t: [-t[0]]),
    ]:
        d = md.explain(expr, wrt, shapes=shapes)
        diff = _diff(d)
        wrong = dataclasses.replace(diff, terms=plant(diff.terms))
        with pytest.raises(AssertionError):
            check_differential(d.steps[-1].expr, wrong, _values(d.f, rng), rng)


# =============================================================== formats, languages
FORMAT_CASES = [("x @ A @ x", "x", QUAD), ("inv(X)", "X", MAT), ("det(X)", "X", MAT),
                ("tr(X @ A @ X.T)", "X", MAT), ("X.T @ X", "X", RECT),
                ("softmax(x)", "x", VEC), ("exp(x @ A @ x)", "x", QUAD)]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex_and_markdown_render_with_katex(lang: str) -> None:
    items = []
    for expr, wrt, shapes in FORMAT_CASES:
        d = md.explain(expr, wrt, lang=lang, shapes=shapes)
        diff = _diff(d)
        tex, mdown = d.to_latex(), d.to_markdown()
        lhs, _, rhs = diff.line("latex").partition(" = ")
        assert f"{lhs} &= {rhs}" in tex  # the line, aligned at its first =
        assert diff.line("latex") in mdown
        items.append(tex)
        items += re.findall(r"\$\$(.+?)\$\$", mdown, flags=re.S)
        items += re.findall(r"(?<!\$)\$([^$]+)\$(?!\$)", mdown)
    assert katex_errors(items) == []


def test_the_words_in_both_languages() -> None:
    en = str(md.explain("x @ A @ x", "x", shapes=QUAD))
    zh = str(md.explain("x @ A @ x", "x", lang="zh", shapes=QUAD))
    assert "product rule: x is in 2 factors" in en and "hence ∂y/∂x = xᵀ(A + Aᵀ)" in en
    assert "乘积法则" in zh and "因此 ∂y/∂x = xᵀ(A + Aᵀ)" in zh and "梯度" in zh
    assert "product rule" not in zh and "hence" not in zh
    en = str(md.explain("inv(X)", "X", shapes=MAT))
    zh = str(md.explain("inv(X)", "X", lang="zh", shapes=MAT))
    assert "the differential of X⁻¹, from its definition:" in en
    assert "X⁻¹ 的微分" in zh


def test_the_dict_has_the_differential() -> None:
    d = md.explain("x @ A @ x", "x", shapes=QUAD)
    data = json.loads(d.to_json())
    diff = data["steps"][0]["derivatives"][0]["differential"]
    assert diff["rule"] == "product" and diff["direction"] == "dx"
    assert diff["terms"] == ["dxᵀAx", "xᵀA dx"]
    assert diff["text"] == "dy = dxᵀAx + xᵀA dx = xᵀ(A + Aᵀ) dx"
    assert diff["gradient"] == "(A + Aᵀ)x"


def test_the_direction_does_not_take_a_variables_name() -> None:
    d = md.explain("x @ A @ x + sum(dx)", "x", shapes={**QUAD, "dx": ("n",)})
    diff = _diff(d)
    assert diff.dvar.name != "dx" and diff.dvar.name.endswith("x")
    rng = np.random.default_rng(0)
    step = next(s.expr for s in d.steps for loc in s.derivatives if loc.differential)
    check_differential(step, diff, {**_values(d.f, rng), **_values(step, rng)}, rng)
