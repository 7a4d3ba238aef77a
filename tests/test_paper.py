"""The worked examples of Parr & Howard, "The Matrix Calculus You Need For Deep
Learning" (examples 1 to 10 of paper/SUMMARY.md), checked in numbers against the
paper's closed forms.

matdiff's layout: the derivative of ``f`` by ``x`` has shape ``f.shape + x.shape``
(numerator layout for Jacobians; a scalar's gradient has the variable's own shape,
so the paper's row ``xᵀ`` is the vector ``x`` here).
"""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from helpers import assert_close, evaluate_dims, fd_derivative

RNG_SEED = 20180205  # the paper's arXiv date
N_DIM = 4


@pytest.fixture
def rng():
    return np.random.default_rng(RNG_SEED)


def d(f, wrt, values, sizes=None):
    """``md.derive(f, wrt)`` evaluated, with its symbolic shape checked."""
    D = md.derive(f, wrt)
    assert D.shape == f.shape + wrt.shape
    return evaluate_dims(D, values, sizes or {"n": N_DIM})


# ---------------------------------------------------------------- example 1
def test_example_1_gradient_of_3x2y():
    """Example 1: f(x, y) = 3x²y, ∇f = [6yx, 3x²]."""
    x, y = md.scalar("x"), md.scalar("y")
    f = 3 * x ** 2 * y
    for x0, y0 in [(1.5, -2.0), (-0.7, 0.3), (2.0, 4.0)]:
        v = {"x": x0, "y": y0}
        assert float(f.evaluate(v)) == pytest.approx(3 * x0 ** 2 * y0)
        assert d(f, x, v).shape == ()
        assert float(d(f, x, v)) == pytest.approx(6 * y0 * x0)
        assert float(d(f, y, v)) == pytest.approx(3 * x0 ** 2)


# ---------------------------------------------------------------- example 2
def test_example_2_gradient_of_2x_plus_y8_and_jacobian_of_f_g():
    """Example 2: g(x, y) = 2x + y⁸, ∇g = [2, 8y⁷]; the Jacobian of [f, g] stacks the
    gradients: [[6yx, 3x²], [2, 8y⁷]]."""
    x, y = md.scalar("x"), md.scalar("y")
    f = 3 * x ** 2 * y
    g = 2 * x + y ** 8
    x0, y0 = 1.25, -0.9
    v = {"x": x0, "y": y0}
    assert float(d(g, x, v)) == pytest.approx(2.0)
    assert float(d(g, y, v)) == pytest.approx(8 * y0 ** 7)
    # the vector function [f, g], built with the unit vectors e1, e2 of R²
    e1, e2 = md.vector("e1", 2), md.vector("e2", 2)
    F = f * e1 + g * e2
    vv = {**v, "e1": np.array([1.0, 0.0]), "e2": np.array([0.0, 1.0])}
    J = np.stack([d(F, x, vv), d(F, y, vv)], axis=1)  # columns: by x, by y
    assert_close(J, [[6 * y0 * x0, 3 * x0 ** 2], [2.0, 8 * y0 ** 7]], what="J[f,g]")


# ---------------------------------------------------------------- example 3
def test_example_3_identity_jacobian():
    """Example 3: dx/dx = I (n x n)."""
    x = md.vector("x", "n")
    J = md.derive(x, x)
    assert J.shape == ("n", "n")
    # (the identity carries no variable: its dims are bound explicitly; see
    # test_structure.py::test_evaluate_binds_dims_from_values_of_absent_variables)
    assert_close(d(x, x, {"x": np.arange(1.0, N_DIM + 1)}), np.eye(N_DIM))
    A = md.matrix("A", "m", "n")
    JA = d(A, A, {"A": np.ones((2, 3))}, {"m": 2, "n": 3})
    assert_close(JA, np.einsum("ik,jl->ijkl", np.eye(2), np.eye(3)), what="dA/dA")


# ---------------------------------------------------------------- example 4
@pytest.mark.parametrize("op,dw,dx", [
    ("w + x", lambda w, x: np.eye(len(w)), lambda w, x: np.eye(len(w))),
    ("w - x", lambda w, x: np.eye(len(w)), lambda w, x: -np.eye(len(w))),
    ("w * x", lambda w, x: np.diag(x), lambda w, x: np.diag(w)),
    ("w / x", lambda w, x: np.diag(1 / x), lambda w, x: np.diag(-w / x ** 2)),
])
def test_example_4_elementwise_binary_jacobians_are_diagonal(op, dw, dx, rng):
    """Example 4: Jacobians of y = w ○ x by w and by x: I, -I, diag(x), diag(w),
    diag(1 ⊘ x), diag(-w ⊘ x²)."""
    w, x = md.vector("w", "n"), md.vector("x", "n")
    y = {"w + x": w + x, "w - x": w - x, "w * x": w * x, "w / x": w / x}[op]
    v = {"w": rng.uniform(-2, 2, N_DIM), "x": rng.uniform(0.5, 2, N_DIM)}
    Jw, Jx = d(y, w, v), d(y, x, v)
    assert Jw.shape == Jx.shape == (N_DIM, N_DIM)
    assert_close(Jw, dw(v["w"], v["x"]), what=f"d({op})/dw")
    assert_close(Jx, dx(v["w"], v["x"]), what=f"d({op})/dx")


def test_example_4_shapes_of_product_and_its_sum(rng):
    """Example 4 / 8 shapes: d(w⊗x)/dw is n×n diag(x); d sum(w⊗x)/dw has shape (n,) = x."""
    w, x = md.vector("w", "n"), md.vector("x", "n")
    v = {"w": rng.standard_normal(N_DIM), "x": rng.standard_normal(N_DIM)}
    assert md.derive(w * x, w).shape == ("n", "n")
    assert md.derive(md.sum(w * x), w).shape == ("n",)
    assert_close(d(md.sum(w * x), w, v), v["x"])


# ---------------------------------------------------------------- example 5
def test_example_5_scalar_expansion(rng):
    """Example 5: scalar expansion with scalar z: d(x+z)/dx = I, d(x+z)/dz = 1;
    d(x−z)/dz = −1; d(xz)/dx = Iz, d(xz)/dz = x; d(x/z)/dx = I/z, d(x/z)/dz = −x/z²."""
    x, z = md.vector("x", "n"), md.scalar("z")
    v = {"x": rng.uniform(-2, 2, N_DIM), "z": 1.7}
    x0, z0, eye, one = v["x"], v["z"], np.eye(N_DIM), np.ones(N_DIM)
    table = [
        (x + z, eye, one),
        (x - z, eye, -one),
        (x * z, eye * z0, x0),
        (x / z, eye / z0, -x0 / z0 ** 2),
        (z + x, eye, one),  # either order
        (z * x, eye * z0, x0),
    ]
    for y, want_x, want_z in table:
        assert md.derive(y, z).shape == ("n",)  # a column of the n x 1 Jacobian
        assert_close(d(y, x, v), want_x, what="by x")
        assert_close(d(y, z, v), want_z, what="by z")


# ---------------------------------------------------------------- example 6
def test_example_6_sum_reduction(rng):
    """Example 6: d sum(x)/dx = 1ᵀ; d sum(f(x))/dx = [Σᵢ ∂fᵢ/∂x_j]; d sum(xz)/dz = sum(x)
    and d sum(xz)/dx = z 1ᵀ."""
    x, z = md.vector("x", "n"), md.scalar("z")
    v = {"x": rng.uniform(-2, 2, N_DIM), "z": -0.6}
    assert_close(d(md.sum(x), x, v), np.ones(N_DIM))
    # an element-wise f: only the diagonal of its Jacobian survives the sum
    f = md.sin(x) * x
    assert_close(d(md.sum(f), x, v), np.cos(v["x"]) * v["x"] + np.sin(v["x"]))
    assert_close(d(md.sum(f), x, v), d(f, x, v).sum(axis=0), what="column sums")
    assert_close(d(md.sum(x * z), z, v), np.sum(v["x"]))
    assert_close(d(md.sum(x * z), x, v), v["z"] * np.ones(N_DIM))


# ---------------------------------------------------------------- example 7
def test_example_7_vector_chain_rule_ln_x2_sin_3x():
    """Example 7: y = [ln(x²), sin(3x)] for scalar x: dy/dx = [2/x, 3cos(3x)]ᵀ,
    the product of the Jacobians df/dg (diag) and dg/dx = [2x, 3]ᵀ of g = [x², 3x]."""
    x = md.scalar("x")
    e1, e2 = md.vector("e1", 2), md.vector("e2", 2)
    y = md.log(x ** 2) * e1 + md.sin(3 * x) * e2
    for x0 in (0.4, 1.3, -2.1):
        v = {"x": x0, "e1": np.array([1.0, 0.0]), "e2": np.array([0.0, 1.0])}
        D = d(y, x, v)
        assert D.shape == (2,)
        assert_close(D, [2 / x0, 3 * np.cos(3 * x0)], what=f"x={x0}")
        # the chain rule through the intermediate vector g = [x², 3x]
        g0 = np.array([x0 ** 2, 3 * x0])
        dfdg = np.diag([1 / g0[0], np.cos(g0[1])])
        dgdx = np.array([2 * x0, 3.0])
        assert_close(D, dfdg @ dgdx)


def test_example_7_explained_as_the_paper_does():
    """Example 7 step by step (md.explain): g = [x², 3x], ∂y/∂g = diag(1/g₁, cos g₂),
    ∂g/∂x = [2x, 3]ᵀ (a column: matdiff's [2x, 3]) and the product [2/x, 3cos(3x)]ᵀ;
    each local derivative in numbers against the paper's closed forms."""
    dv = md.explain("[log(x**2), sin(3*x)]", "x", shapes={"x": ()})
    (g_step, y_step) = dv.steps
    assert (g_step.name, g_step.definition) == ("g", "[x², 3x]")
    (dgdx,), (dydg,) = g_step.derivatives, y_step.derivatives
    assert (dgdx.text, dydg.text) == ("[2x, 3]", "diag([g₁⁻¹, cos(g₂)])")
    assert dv.numerator == "[2/x, 3cos(3x)]"
    for x0 in (0.4, 1.3, -2.1):
        g0 = np.array([x0 ** 2, 3 * x0])
        assert_close(dgdx.expr.evaluate({"x": x0}), [2 * x0, 3.0])
        assert_close(dydg.expr.evaluate({"g₁": g0[0], "g₂": g0[1]}),
                     np.diag([1 / g0[0], np.cos(g0[1])]))
        assert_close(dv.result.evaluate({"x": x0}), [2 / x0, 3 * np.cos(3 * x0)])


def test_example_7_elementwise_chain_collapses_to_diag(rng):
    """Example 7: when fᵢ depends only on gᵢ and gᵢ only on xᵢ, df(g(x))/dx is
    diag(fᵢ'(gᵢ) gᵢ'(xᵢ)); here f = sin, g = x²."""
    x = md.vector("x", "n")
    v = {"x": rng.uniform(-2, 2, N_DIM)}
    x0 = v["x"]
    assert_close(d(md.sin(x ** 2), x, v), np.diag(np.cos(x0 ** 2) * 2 * x0))


def test_example_7_total_derivative_x_plus_x2():
    """Example 7, total derivative: f(x) = x + x² through u₁ = x², u₂ = x + u₁ gives
    df/dx = 1 + 2x."""
    x = md.scalar("x")
    u1 = x ** 2
    u2 = x + u1
    for x0 in (-1.5, 0.0, 0.25, 3.0):
        assert float(d(u2, x, {"x": x0})) == pytest.approx(1 + 2 * x0)


# ---------------------------------------------------------------- example 8
def test_example_8_dot_product_through_chain_rule(rng):
    """Example 8: u = w ⊗ x, y = sum(u): du/dw = diag(x), dy/du = 1ᵀ, so
    dy/dw = 1ᵀ diag(x) = xᵀ, and dy/dx = wᵀ."""
    w, x = md.vector("w", "n"), md.vector("x", "n")
    v = {"w": rng.standard_normal(N_DIM), "x": rng.standard_normal(N_DIM)}
    u = w * x
    y = md.sum(u)
    assert_close(d(u, w, v), np.diag(v["x"]))
    assert_close(np.ones(N_DIM) @ d(u, w, v), d(y, w, v), what="1ᵀ diag(x)")
    assert_close(d(y, w, v), v["x"])
    assert_close(d(y, x, v), v["w"])
    # the dot product written directly gives the same
    assert_close(d(md.dot(w, x), w, v), v["x"])
    assert_close(d(w @ x, x, v), v["w"])


# ---------------------------------------------------------------- example 9
@pytest.mark.parametrize("active", [True, False])
def test_example_9_neuron_activation(active, rng):
    """Example 9: activation(x) = max(0, w·x + b): d/dw = xᵀ and d/db = 1 where
    z = w·x + b > 0, and 0ᵀ, 0 where z <= 0."""
    w, x, b = md.vector("w", "n"), md.vector("x", "n"), md.scalar("b")
    act = md.maximum(0, md.dot(w, x) + b)
    w0, x0 = rng.standard_normal(N_DIM), rng.standard_normal(N_DIM)
    z_wanted = 0.8 if active else -0.8
    b0 = z_wanted - w0 @ x0
    v = {"w": w0, "x": x0, "b": b0}
    assert float(act.evaluate(v)) == pytest.approx(max(0.0, z_wanted))
    assert_close(d(act, w, v), x0 if active else np.zeros(N_DIM))
    assert_close(d(act, b, v), 1.0 if active else 0.0)
    assert_close(d(act, x, v), w0 if active else np.zeros(N_DIM))
    # the intermediate z: dz/dw = xᵀ, dz/db = 1
    z = md.dot(w, x) + b
    assert_close(d(z, w, v), x0)
    assert_close(d(z, b, v), 1.0)


def test_example_9_elementwise_max_is_diag_of_indicators():
    """Example 9, element-wise version: d max(0, x)/dx = diag of the 0/1 indicators
    of x > 0."""
    x = md.vector("x", "n")
    x0 = np.array([-2.0, 0.5, -0.1, 3.0])
    assert_close(d(md.maximum(0, x), x, {"x": x0}), np.diag([0.0, 1.0, 0.0, 1.0]))


# ---------------------------------------------------------------- example 10
def _loss_data(rng, N=8, n=3):
    X0 = rng.standard_normal((N, n))
    w0 = rng.standard_normal(n)
    z_target = np.where(np.arange(N) % 3 == 0, -1.0, 1.0) * rng.uniform(0.3, 2.0, N)
    b0 = 0.2
    # shift each row of X along w so that z_i = w·x_i + b is z_target (away from 0)
    X0 = X0 + np.outer(z_target - (X0 @ w0 + b0), w0) / (w0 @ w0)
    y0 = rng.standard_normal(N)
    return {"X": X0, "w": w0, "b": b0, "y": y0}


def test_example_10_loss_gradient_of_one_neuron(rng):
    """Example 10: C = (1/N) Σᵢ (yᵢ − max(0, w·xᵢ + b))², with eᵢ = w·xᵢ + b − yᵢ:
    dC/dw = (2/N) Σ eᵢ xᵢᵀ and dC/db = (2/N) Σ eᵢ over the active examples
    (w·xᵢ + b > 0); inactive examples contribute nothing."""
    X, y = md.matrix("X", "N", "n"), md.vector("y", "N")
    w, b = md.vector("w", "n"), md.scalar("b")
    C = md.mean((y - md.maximum(0, X @ w + b)) ** 2)
    assert C.shape == ()
    v = _loss_data(rng)
    X0, y0, w0, b0 = v["X"], v["y"], v["w"], v["b"]
    N = len(y0)
    z = X0 @ w0 + b0
    active = z > 0
    assert 0 < active.sum() < N  # both kinds of example are present
    e = z - y0
    assert float(C.evaluate(v)) == pytest.approx(np.mean((y0 - np.maximum(0, z)) ** 2))
    want_w = 2 / N * np.sum((e * active)[:, None] * X0, axis=0)
    want_b = 2 / N * np.sum(e * active)
    sizes = {"N": N, "n": X0.shape[1]}
    assert_close(d(C, w, v, sizes), want_w, what="dC/dw")
    assert_close(d(C, b, v, sizes), want_b, what="dC/db")
    # and against finite differences (no example is near the kink)
    assert_close(d(C, w, v, sizes), fd_derivative(C, v, "w"), rtol=1e-6, atol=1e-8)
    assert_close(d(C, b, v, sizes), fd_derivative(C, v, "b"), rtol=1e-6, atol=1e-8)


def test_example_10_bias_folding_gives_the_same_gradient(rng):
    """Example 10, the bias trick: ŵ = [wᵀ, b], x̂ = [xᵀ, 1], z = ŵ·x̂ gives the same
    loss and dC/dŵ = [dC/dw, dC/db]."""
    X, y = md.matrix("X", "N", "n"), md.vector("y", "N")
    w, b = md.vector("w", "n"), md.scalar("b")
    C = md.mean((y - md.maximum(0, X @ w + b)) ** 2)
    Xh, wh = md.matrix("Xh", "N", "k"), md.vector("wh", "k")
    Ch = md.mean((y - md.maximum(0, Xh @ wh)) ** 2)
    v = _loss_data(rng)
    N, n = v["X"].shape
    vh = {"Xh": np.hstack([v["X"], np.ones((N, 1))]), "wh": np.append(v["w"], v["b"]),
          "y": v["y"]}
    assert float(Ch.evaluate(vh)) == pytest.approx(float(C.evaluate(v)))
    sizes = {"N": N, "n": n}
    g = np.append(d(C, w, v, sizes), d(C, b, v, sizes))
    gh = d(Ch, wh, vh, {"N": N, "k": n + 1})
    assert_close(gh, g, what="dC/dŵ vs [dC/dw, dC/db]")


def test_example_10_bias_folding_in_one_expression(rng):
    """Example 10, the bias trick written with the unfolded pieces: z = X̂ŵ where
    the last column of X̂ is 1 and the last entry of ŵ is b (as sums of products)."""
    X, y = md.matrix("X", "N", "n"), md.vector("y", "N")
    w, b = md.vector("w", "n"), md.scalar("b")
    ones = md.ones("N")
    z_folded = X @ w + ones * b  # X̂ŵ = Xw + 1·b
    C1 = md.mean((y - md.maximum(0, X @ w + b)) ** 2)
    C2 = md.mean((y - md.relu(z_folded)) ** 2)
    v = _loss_data(rng)
    sizes = {"N": v["X"].shape[0], "n": v["X"].shape[1]}
    assert_close(d(C2, w, v, sizes), d(C1, w, v, sizes))
    assert_close(d(C2, b, v, sizes), d(C1, b, v, sizes))
