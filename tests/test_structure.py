"""Claims about the *form* of derivatives, not only their values: simplification,
size, structure (deltas stay structure), hash-consing, higher orders and depth."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import matdiff as md
from helpers import (
    assert_close,
    evaluate_dims,
    fd_jacobian,
    kinds,
    nodes,
    non_leaf_nodes,
    random_values,
)
from matdiff.expr.core import Add, Const, Delta, Einsum, Map, Var

N = 4


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def xyAw():
    return (md.vector("x", "n"), md.vector("y", "n"), md.matrix("A", "n", "n"),
            md.vector("w", "n"))


# ============================================================ simplification
def test_gradient_of_dot_product_is_the_variable_itself(xyAw):
    """d sum(w ⊗ x)/dw is x: the very node, no arithmetic left (paper, example 8).
    (A derivative result stands for its shared node, its ``body``.)"""
    x, _, _, w = xyAw
    assert md.derive(md.sum(w * x), w).body is x
    assert md.derive(md.sum(w * x), x).body is w
    assert md.derive(md.dot(w, x), w).body is x
    assert md.derive(w @ x, x).body is w


def test_jacobian_of_linear_map_is_the_matrix_itself(xyAw):
    """d(Ax)/dx = A (numerator layout), the node A itself."""
    x, _, A, _ = xyAw
    C = md.matrix("C", "m", "n")
    assert md.derive(A @ x, x).body is A
    assert md.derive(C @ x, x).body is C


def test_quadratic_form_gradient_is_small(xyAw, rng):
    """d(xᵀAx)/dx = (A + Aᵀ)x: at most 3 non-leaf nodes (Ax, Aᵀx, their sum)."""
    x, _, A, _ = xyAw
    g = md.derive(x @ A @ x, x)
    assert g.shape == ("n",)
    inner = non_leaf_nodes(g)
    assert len(inner) <= 3, [e.kind for e in inner]
    assert g.count_nodes() == len(nodes(g))
    assert g.count_nodes() <= 5
    v = {"x": rng.standard_normal(N), "A": rng.standard_normal((N, N))}
    assert_close(g.evaluate(v), (v["A"] + v["A"].T) @ v["x"])
    # and the Hessian A + Aᵀ is as small
    H = md.hessian(x @ A @ x, x)
    assert len(non_leaf_nodes(H)) <= 3
    assert_close(H.evaluate(v), v["A"] + v["A"].T)


def test_elementwise_jacobian_keeps_delta_structure(xyAw, rng):
    """d(w ⊗ x)/dw = diag(x) is x_i δ_ij: a Delta node, no dense n×n constant."""
    x, _, _, w = xyAw
    J = md.derive(w * x, w)
    assert J.shape == ("n", "n")
    ns = nodes(J)
    assert any(isinstance(e, Delta) for e in ns)
    assert not any(isinstance(e, Const) and len(e.shape) >= 2 for e in ns)
    assert not any(isinstance(e, Const) and e.shape == ("n", "n") for e in ns)
    assert len(non_leaf_nodes(J)) == 1  # the product x_i δ_ij
    v = {"w": rng.standard_normal(N), "x": rng.standard_normal(N)}
    assert_close(J.evaluate(v), np.diag(v["x"]))


def test_elementwise_function_jacobian_keeps_delta_structure(xyAw):
    x = xyAw[0]
    for J in (md.derive(md.tanh(x), x), md.derive(md.exp(x) * x, x),
              md.derive(md.relu(x), x)):
        assert any(isinstance(e, Delta) for e in nodes(J))
        assert not any(isinstance(e, Const) and len(e.shape) >= 2 for e in nodes(J))


def test_identity_and_trace_derivatives_are_deltas(xyAw):
    x, _, A, _ = xyAw
    assert isinstance(md.derive(x, x), Delta)
    assert isinstance(md.derive(md.tr(A), A), Delta)
    ones = md.derive(md.sum(x), x)
    assert isinstance(ones, Const) and ones.shape == ("n",) and ones.value == 1.0


@pytest.mark.parametrize("shape", [(), ("n",), ("m", "n")])
def test_derivative_by_absent_variable_is_const_zero(shape):
    """A variable that f does not contain has derivative Const 0 of shape
    f.shape + wrt.shape."""
    f = md.sum(md.var("u", *shape)) * 2.0 + md.var("u", *shape)
    q = md.vector("q", "n")
    D = md.derive(f, q)
    assert isinstance(D, Const)
    assert D.value == 0.0
    assert D.shape == f.shape + ("n",)
    Q = md.matrix("Q", "k", "n")
    DQ = md.derive(f, Q)
    assert isinstance(DQ, Const) and DQ.value == 0.0 and DQ.shape == f.shape + ("k", "n")
    got = evaluate_dims(D, {"u": np.ones([3 if d == "n" else 2 for d in shape])},
                        {"n": 3, "m": 2})
    np.testing.assert_array_equal(got, np.zeros(tuple(3 if d == "n" else 2 for d in shape)
                                                + (3,)))


def test_derivative_by_name_of_absent_variable_needs_shapes():
    x = md.vector("x", "n")
    with pytest.raises(md.UnknownVariableError):
        md.derive(md.sum(x), "q")
    D = md.derive(md.sum(x), "q", shapes={"q": ("n",)})
    assert isinstance(D, Const) and D.shape == ("n",) and D.value == 0.0


def test_evaluate_binds_dims_from_values_of_absent_variables():
    """A derivative that no longer contains the variable (dx/dx = I, d step(x)/dx = 0)
    evaluates with the values it was taken at: they still bind its dims."""
    x = md.vector("x", "n")
    x0 = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(md.derive(x, x).evaluate(x=x0), np.eye(3))
    np.testing.assert_array_equal(md.derive(md.step(x), x).evaluate(x=x0), np.zeros((3, 3)))
    np.testing.assert_array_equal(md.derive(md.sum(x), x).evaluate(x=x0), np.ones(3))
    np.testing.assert_array_equal(md.hessian(md.sum(x), x).evaluate(x=x0), np.zeros((3, 3)))
    np.testing.assert_array_equal(md.derive(x - x, x).evaluate(x=x0), np.zeros((3, 3)))
    q = md.vector("q", "k")
    np.testing.assert_array_equal(md.derive(md.sum(x), q).evaluate(x=x0, q=np.ones(2)),
                                  np.zeros(2))


def test_evaluate_binds_dims_of_variables_simplified_away():
    # x - x is the shared zero of shape (n,): it has no variable, so nothing in it
    # says that x carries n.  It once remembered x in a side table beside the shared
    # node (so what evaluate accepted depended on what was built before); now the
    # plain expression takes n from dims=, and a derivative result, which knows its f,
    # binds n from x's value.
    x = md.vector("x", "n")
    x0 = np.array([1.0, -2.0, 3.0])
    for z in (x - x, 0 * x):
        np.testing.assert_array_equal(md.evaluate(z, {"x": x0}, dims={"n": 3}), np.zeros(3))
        with pytest.raises(md.EvaluationError, match=r"dim\(s\) n.*dims="):
            z.evaluate(x=x0)
    np.testing.assert_array_equal(md.derive(md.sum(x - x) + md.sum(x * 0), x).evaluate(
        x=x0), np.zeros(3))


# ============================================================ hash-consing
def test_same_expression_built_twice_is_the_same_object(xyAw):
    x, y, A, w = xyAw
    assert md.vector("x", "n") is x
    assert (x @ A @ x) is (x @ A @ x)
    assert md.matmul(md.matmul(x, A), x) is x @ A @ x
    assert md.sum(md.exp(A @ x) * y) is md.sum(md.exp(A @ x) * y)
    assert md.dot(x, y) is x @ y
    assert w * x is x * w  # products are canonical: operands sorted
    assert A.T.T is A
    assert md.derive(x @ A @ x, x).body is md.derive(x @ A @ x, x).body


def test_leaves_of_different_shapes_are_different_nodes():
    # the interning key must include the shape (Const 1 vs the ones vector)
    assert md.const(1.0) is not md.ones("n")
    assert md.ones("n").shape == ("n",) and md.const(1.0).shape == ()
    assert md.scalar("s") is not md.vector("s", "n")
    assert md.vector("s", "n") is not md.vector("s", "m")
    assert md.const(0.0, ("n",)) is not md.const(0.0, ("m",))


def test_x_plus_x_is_2x_and_x_minus_x_is_zero(xyAw):
    x, _, A, _ = xyAw
    assert x + x is 2 * x
    assert x + x is 2.0 * x
    assert x + x + x is 3 * x
    z = x - x
    assert isinstance(z, Const) and z.value == 0.0 and z.shape == ("n",)
    Z = A - A
    assert isinstance(Z, Const) and Z.value == 0.0 and Z.shape == ("n", "n")
    assert (2 * x - x) is x
    assert md.neg(md.neg(x)) is x


def test_shared_subexpressions_count_once(xyAw):
    x, _, A, _ = xyAw
    u = md.tanh(A @ x)
    f = md.sum(u * u) + md.sum(u)
    kinds_count = [e for e in nodes(f) if isinstance(e, Map) and e.fn == "tanh"]
    assert len(kinds_count) == 1
    assert f.count_nodes() == len(nodes(f))


# ============================================================ higher order
def test_third_derivative_of_sum_x4(rng):
    """d³ sum(x⁴)/dx³ = 24 xᵢ δᵢⱼₖ, checked against the closed form and against
    central differences of the Hessian."""
    x = md.vector("x", "n")
    f = md.sum(x ** 4)
    g = md.derive(f, x)
    H = md.derive(g, x)
    T = md.derive(H, x)
    assert T.shape == ("n", "n", "n")
    x0 = rng.uniform(-1.5, 1.5, N)
    want = np.zeros((N, N, N))
    for i in range(N):
        want[i, i, i] = 24 * x0[i]
    got = evaluate_dims(T, {"x": x0}, {"n": N})
    assert_close(got, want, rtol=1e-12, atol=1e-12)
    fd = fd_jacobian(lambda t: evaluate_dims(H, {"x": t}, {"n": N}), x0, 1e-5)
    assert_close(got, fd, rtol=1e-6, atol=1e-6)
    assert_close(evaluate_dims(H, {"x": x0}, {"n": N}), np.diag(12 * x0 ** 2))
    # and the fourth: 24 δᵢⱼₖₗ, a constant
    F = md.derive(T, x)
    want4 = np.zeros((N,) * 4)
    for i in range(N):
        want4[i, i, i, i] = 24.0
    assert_close(evaluate_dims(F, {"x": x0}, {"n": N}), want4, rtol=0, atol=1e-12)


def test_third_derivative_of_matrix_expression(rng):
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    f = md.logsumexp(A @ x)
    H = md.hessian(f, x)
    T = md.derive(H, x)
    assert T.shape == ("n", "n", "n")
    v = random_values(f, rng, {"n": N})
    assert v["x"].shape == (N,) and v["A"].shape == (N, N)
    fd = fd_jacobian(lambda t: H.evaluate({**v, "x": t}), v["x"], 1e-5)
    assert_close(T.evaluate(v), fd, rtol=1e-6, atol=1e-7)


# ============================================================ depth
def test_1000_deep_chain_of_sin():
    """Derivatives of 1000-deep chains build and evaluate without RecursionError."""
    limit = sys.getrecursionlimit()
    x = md.vector("x", "n")
    f = x
    for _ in range(1000):
        f = md.sin(f)
    s = md.sum(f)
    g = md.derive(s, x)
    assert g.shape == ("n",)
    x0 = np.array([0.3, -0.8, 1.2])
    # reference: the chain rule by hand
    u, dudx = x0.copy(), np.ones(3)
    for _ in range(1000):
        u, dudx = np.sin(u), dudx * np.cos(u)
    assert_close(f.evaluate(x=x0), u, rtol=1e-10, atol=1e-12)
    assert_close(g.evaluate(x=x0), dudx, rtol=1e-8, atol=1e-12)
    assert sys.getrecursionlimit() == limit  # no cheating by raising the limit


def test_1000_deep_chain_mixing_products_and_sums(rng):
    """A 1000-deep chain through products, sums and functions: x ← tanh(A x) + 0.5 x."""
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    f = x
    for _ in range(1000):
        f = md.tanh(A @ f) + 0.5 * f
    s = md.sum(f)
    g = md.derive(s, x)
    gA = md.derive(s, A)
    v = {"x": rng.uniform(-1, 1, 3), "A": 0.3 * rng.standard_normal((3, 3))}
    # reference: forward values and reverse-mode by hand
    us = [v["x"]]
    for _ in range(1000):
        us.append(np.tanh(v["A"] @ us[-1]) + 0.5 * us[-1])
    assert_close(f.evaluate(v), us[-1], rtol=1e-10, atol=1e-12)
    bar = np.ones(3)
    barA = np.zeros((3, 3))
    for u in reversed(us[:-1]):
        t = (1 - np.tanh(v["A"] @ u) ** 2) * bar
        barA += np.outer(t, u)
        bar = v["A"].T @ t + 0.5 * bar
    assert_close(g.evaluate(v), bar, rtol=1e-8, atol=1e-12)
    assert_close(gA.evaluate(v), barA, rtol=1e-8, atol=1e-12)


def test_deep_chain_hessian():
    """The Hessian of a 200-deep scalar chain builds and evaluates."""
    a = md.scalar("a")
    f = a
    for _ in range(200):
        f = md.sin(f) + 0.1 * f
    H = md.hessian(f, a)
    g = md.derive(f, a)
    a0 = 0.7
    fd = (float(g.evaluate(a=a0 + 1e-6)) - float(g.evaluate(a=a0 - 1e-6))) / 2e-6
    assert float(H.evaluate(a=a0)) == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_long_product_chain_of_matrices(rng):
    """A product of 300 matrices (longer than the flattening limit) derives correctly."""
    A = md.matrix("A", "n", "n")
    x = md.vector("x", "n")
    f = x
    for _ in range(300):
        f = A @ f
    s = md.sum(f)
    gx = md.derive(s, x)
    A0 = np.eye(3) + 0.01 * rng.standard_normal((3, 3))
    x0 = rng.standard_normal(3)
    P = np.linalg.matrix_power(A0, 300)
    assert_close(f.evaluate(A=A0, x=x0), P @ x0, rtol=1e-9)
    assert_close(gx.evaluate(A=A0, x=x0), P.T @ np.ones(3), rtol=1e-9)


def test_node_kinds_of_derivatives_are_core_kinds(xyAw):
    x, y, A, _ = xyAw
    f = md.logdet(A @ A.T + md.eye("n")) + md.sum(md.softmax(A @ x) * y) + md.logsumexp(x)
    core = {"var", "const", "size", "delta", "einsum", "add", "map", "call"}
    for wrt in (x, y, A):
        assert kinds(md.derive(f, wrt)) <= core
    assert all(isinstance(e, (Var, Const, Einsum, Add, Map, Delta)) or e.kind in core
               for e in nodes(md.hessian(f, x)))


# ---------------------------------------------------------------- common factors
def test_logistic_hessian_is_one_weighted_gram_matrix(rng):
    # Xᵀdiag(a)X + Xᵀdiag(b)X is factored to Xᵀdiag(a + b)X: one product, one GEMM
    X, w, y = md.matrix("X", "N", "d"), md.vector("w", "d"), md.vector("y", "N")
    H = md.hessian(md.sum(md.log(1 + md.exp(-y * (X @ w)))), w)
    assert isinstance(H, Einsum) and not isinstance(H, Add)
    assert str(H).startswith("−Xᵀdiag(") and str(H).endswith(")X")
    vals = {"X": rng.standard_normal((9, 4)), "w": rng.standard_normal(4),
            "y": np.sign(rng.standard_normal(9))}
    s = 1 / (1 + np.exp(-vals["y"] * (vals["X"] @ vals["w"])))
    want = vals["X"].T @ ((s * (1 - s) * vals["y"] ** 2)[:, None] * vals["X"])
    np.testing.assert_allclose(H.evaluate(vals), want, rtol=1e-12)
    src = md.compile(H, dims={"N": 50, "d": 5}).source
    assert src.count("@") == 2  # Xw, and the one weighted Gram product


def test_sum_of_diagonals_is_the_diagonal_of_the_sum(xyAw, rng):
    x = xyAw[0]
    J = md.derive(md.sin(x) + md.cos(x), x)      # diag(cos x) − diag(sin x)
    assert isinstance(J, Einsum) and str(J).count("diag(") == 1
    x0 = rng.standard_normal(5)
    np.testing.assert_allclose(J.evaluate(x=x0), np.diag(np.cos(x0) - np.sin(x0)),
                               rtol=1e-12, atol=1e-15)


def test_terms_sharing_a_factor_on_other_axes_are_not_merged(xyAw, rng):
    # x yᵀ + y xᵀ share x and y, but on different axes: nothing to factor
    x, y = xyAw[0], xyAw[1]
    S = md.outer(x, y) + md.outer(y, x)
    assert isinstance(S, Add) and len(S.children) == 2
    x0, y0 = rng.standard_normal(4), rng.standard_normal(4)
    np.testing.assert_allclose(S.evaluate(x=x0, y=y0), np.outer(x0, y0) + np.outer(y0, x0))


def test_shared_coefficient_and_scalar_factor_come_out_of_a_sum(xyAw, rng):
    x, y = xyAw[0], xyAw[1]
    e = 2 * x - 2 * y
    assert str(e) == "2(x − y)"
    x0, y0 = rng.standard_normal(4), rng.standard_normal(4)
    np.testing.assert_allclose(e.evaluate(x=x0, y=y0), 2 * x0 - 2 * y0)
    # the cross-entropy gradient: (softmax(Z) − Y)/N, the textbook backward pass
    m = md.nn.MLP([4, 5, 3], "relu", seed=0)
    g = md.derive(m.loss_expr("cross_entropy"), "b2")
    assert str(g).startswith("sum(softmax(") and str(g).endswith(" − Y, axis=0)/N")
    X = rng.standard_normal((6, 4))
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    _, grads = m.value_and_grad(X, Y.argmax(axis=1), "cross_entropy")
    vals = {**m.params, "X": X, "Y": Y}
    np.testing.assert_allclose(g.evaluate(vals), grads["b2"], rtol=1e-12)
    Z = np.maximum(X @ m.params["W1"] + m.params["b1"], 0) @ m.params["W2"] + m.params["b2"]
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grads["b2"], (P - Y).mean(axis=0), rtol=1e-12)
