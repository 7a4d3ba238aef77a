"""Identities of the Matrix Cookbook (K. B. Petersen and M. S. Pedersen, version of
November 15, 2012), checked in numbers: ``md.derive(...)`` evaluated against the
closed form computed with NumPy.

The Cookbook writes the derivative of a scalar by a matrix with the matrix's own
shape (``∂f/∂X_ij`` at ``[i, j]``), which is matdiff's layout too, and gives the
gradient of a scalar by a vector as a column, which is matdiff's vector of shape
``(n,)``. Its Jacobians of vectors are not used here except element-wise (eqs.
60, 74, 75, 79), where both index orders are spelled out.
"""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from helpers import assert_close, evaluate_dims, well_conditioned

SIZES = {"n": 4, "m": 3, "k": 2}
n, m, k = SIZES["n"], SIZES["m"], SIZES["k"]
inv, det, T = np.linalg.inv, np.linalg.det, np.transpose


@pytest.fixture
def rng(request):
    # one fixed seed per test, so each identity sees its own values
    import zlib

    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def grad(f, wrt, values, rtol=1e-9):
    """``md.derive(f, wrt)`` evaluated; the symbolic shape is ``f.shape + wrt.shape``."""
    D = md.derive(f, wrt)
    assert D.shape == f.shape + wrt.shape
    return evaluate_dims(D, values, SIZES)


def check(f, wrt, values, want, rtol=1e-9, atol=1e-10):
    assert_close(grad(f, wrt, values), want, rtol=rtol, atol=atol,
                 what=f"d/d{wrt.name}")


# ============================================================ 2.1.2 determinants
def test_det_eq49(rng):
    # ∂ det(X) / ∂X = det(X) (X⁻¹)ᵀ  (Cookbook eq. 49)
    X = md.matrix("X", "n", "n")
    X0 = well_conditioned(rng, n)
    check(md.det(X), X, {"X": X0}, det(X0) * inv(X0).T)


def test_det_of_product_eq51(rng):
    # ∂ det(AXB) / ∂X = det(AXB) (X⁻¹)ᵀ  (Cookbook eq. 51; A, X, B square)
    A, X, B = (md.matrix(s, "n", "n") for s in "AXB")
    v = {s: well_conditioned(rng, n) for s in "AXB"}
    check(md.det(A @ X @ B), X, v, det(v["A"] @ v["X"] @ v["B"]) * inv(v["X"]).T)


def test_det_square_form_eq52(rng):
    # ∂ det(XᵀAX) / ∂X = 2 det(XᵀAX) X⁻ᵀ  (Cookbook eq. 52; X square, invertible)
    A, X = md.matrix("A", "n", "n"), md.matrix("X", "n", "n")
    v = {"A": well_conditioned(rng, n), "X": well_conditioned(rng, n)}
    M = v["X"].T @ v["A"] @ v["X"]
    check(md.det(X.T @ A @ X), X, v, 2 * det(M) * inv(v["X"]).T, rtol=1e-8)


def test_det_square_form_symmetric_eq53(rng):
    # ∂ det(XᵀAX) / ∂X = 2 det(XᵀAX) AX (XᵀAX)⁻¹  (Cookbook eq. 53; X not square,
    # A symmetric)
    A, X = md.matrix("A", "n", "n"), md.matrix("X", "n", "m")
    S = rng.standard_normal((n, n))
    v = {"A": S @ S.T + n * np.eye(n), "X": rng.standard_normal((n, m))}
    M = v["X"].T @ v["A"] @ v["X"]
    check(md.det(X.T @ A @ X), X, v, 2 * det(M) * v["A"] @ v["X"] @ inv(M), rtol=1e-8)


def test_det_square_form_general_eq54(rng):
    # ∂ det(XᵀAX) / ∂X = det(XᵀAX) (AX(XᵀAX)⁻¹ + AᵀX(XᵀAᵀX)⁻¹)  (Cookbook eq. 54; X not
    # square, A not symmetric)
    A, X = md.matrix("A", "n", "n"), md.matrix("X", "n", "m")
    v = {"A": well_conditioned(rng, n, 0.5), "X": rng.standard_normal((n, m))}
    A0, X0 = v["A"], v["X"]
    M = X0.T @ A0 @ X0
    want = det(M) * (A0 @ X0 @ inv(M) + A0.T @ X0 @ inv(X0.T @ A0.T @ X0))
    check(md.det(X.T @ A @ X), X, v, want, rtol=1e-8)


def test_logdet_gram_eq55(rng):
    # ∂ ln det(XᵀX) / ∂X = 2 (X⁺)ᵀ  (Cookbook eq. 55; X⁺ the pseudo-inverse)
    X = md.matrix("X", "n", "m")
    X0 = rng.standard_normal((n, m))
    check(md.logdet(X.T @ X), X, {"X": X0}, 2 * np.linalg.pinv(X0).T, rtol=1e-8)


def test_log_abs_det_eq57(rng):
    # ∂ ln|det(X)| / ∂X = (X⁻¹)ᵀ = (Xᵀ)⁻¹  (Cookbook eq. 57; here det X > 0)
    X = md.matrix("X", "n", "n")
    X0 = well_conditioned(rng, n)
    assert det(X0) > 0
    check(md.logdet(X), X, {"X": X0}, inv(X0).T)
    check(md.logdet(X), X, {"X": X0}, inv(X0.T))


def test_det_of_power_eq58(rng):
    # ∂ det(Xᵏ) / ∂X = k det(Xᵏ) X⁻ᵀ  (Cookbook eq. 58; k = 3)
    X = md.matrix("X", "n", "n")
    X0 = well_conditioned(rng, n)
    X3 = X0 @ X0 @ X0
    check(md.det(X @ X @ X), X, {"X": X0}, 3 * det(X3) * inv(X0).T, rtol=1e-8)


# ============================================================ 2.1.3 inverses
def test_inverse_elementwise_eq60(rng):
    # ∂ (X⁻¹)ₖₗ / ∂Xᵢⱼ = −(X⁻¹)ₖᵢ (X⁻¹)ⱼₗ  (Cookbook eq. 60); matdiff indexes [k, l, i, j]
    X = md.matrix("X", "n", "n")
    X0 = well_conditioned(rng, n)
    Y = inv(X0)
    check(md.inv(X), X, {"X": X0}, -np.einsum("ki,jl->klij", Y, Y))


def test_bilinear_inverse_eq61(rng):
    # ∂ aᵀX⁻¹b / ∂X = −X⁻ᵀ a bᵀ X⁻ᵀ  (Cookbook eq. 61)
    a, b, X = md.vector("a", "n"), md.vector("b", "n"), md.matrix("X", "n", "n")
    v = {"a": rng.standard_normal(n), "b": rng.standard_normal(n),
         "X": well_conditioned(rng, n)}
    Xit = inv(v["X"]).T
    check(a @ md.inv(X) @ b, X, v, -Xit @ np.outer(v["a"], v["b"]) @ Xit)


def test_det_of_inverse_eq62(rng):
    # ∂ det(X⁻¹) / ∂X = −det(X⁻¹) (X⁻¹)ᵀ  (Cookbook eq. 62)
    X = md.matrix("X", "n", "n")
    X0 = well_conditioned(rng, n)
    check(md.det(md.inv(X)), X, {"X": X0}, -det(inv(X0)) * inv(X0).T)


def test_trace_inverse_eq63(rng):
    # ∂ Tr(AX⁻¹B) / ∂X = −(X⁻¹BAX⁻¹)ᵀ  (Cookbook eq. 63; also eq. 125)
    A, X, B = md.matrix("A", "m", "n"), md.matrix("X", "n", "n"), md.matrix("B", "n", "m")
    v = {"A": rng.standard_normal((m, n)), "X": well_conditioned(rng, n),
         "B": rng.standard_normal((n, m))}
    Xi = inv(v["X"])
    want = -(Xi @ v["B"] @ v["A"] @ Xi).T
    check(md.tr(A @ md.inv(X) @ B), X, v, want)
    # eq. 125 spells the same as −X⁻ᵀAᵀBᵀX⁻ᵀ
    check(md.tr(A @ md.inv(X) @ B), X, v, -Xi.T @ v["A"].T @ v["B"].T @ Xi.T)


def test_trace_inverse_of_sum_eq64(rng):
    # ∂ Tr((X + A)⁻¹) / ∂X = −((X + A)⁻¹ (X + A)⁻¹)ᵀ  (Cookbook eq. 64)
    A, X = md.matrix("A", "n", "n"), md.matrix("X", "n", "n")
    v = {"A": np.eye(n) + 0.1 * rng.standard_normal((n, n)),
         "X": np.eye(n) + 0.1 * rng.standard_normal((n, n))}
    Y = inv(v["X"] + v["A"])
    check(md.tr(md.inv(X + A)), X, v, -(Y @ Y).T)


# ============================================================ 2.2.1 first order
def test_linear_form_eq69(rng):
    # ∂ xᵀa / ∂x = ∂ aᵀx / ∂x = a  (Cookbook eq. 69)
    x, a = md.vector("x", "n"), md.vector("a", "n")
    v = {"x": rng.standard_normal(n), "a": rng.standard_normal(n)}
    check(x @ a, x, v, v["a"])
    check(a @ x, x, v, v["a"])
    check(md.dot(a, x), x, v, v["a"])


def test_bilinear_eq70_eq71(rng):
    # ∂ aᵀXb / ∂X = abᵀ  (Cookbook eq. 70);  ∂ aᵀXᵀb / ∂X = baᵀ  (Cookbook eq. 71)
    a, b, X = md.vector("a", "m"), md.vector("b", "n"), md.matrix("X", "m", "n")
    v = {"a": rng.standard_normal(m), "b": rng.standard_normal(n),
         "X": rng.standard_normal((m, n))}
    check(a @ X @ b, X, v, np.outer(v["a"], v["b"]))
    Y = md.matrix("Y", "n", "m")
    vy = {**v, "Y": v["X"].T}
    check(a @ Y.T @ b, Y, vy, np.outer(v["b"], v["a"]))


def test_quadratic_in_matrix_eq72(rng):
    # ∂ aᵀXa / ∂X = ∂ aᵀXᵀa / ∂X = aaᵀ  (Cookbook eq. 72)
    a, X = md.vector("a", "n"), md.matrix("X", "n", "n")
    v = {"a": rng.standard_normal(n), "X": rng.standard_normal((n, n))}
    check(a @ X @ a, X, v, np.outer(v["a"], v["a"]))
    check(a @ X.T @ a, X, v, np.outer(v["a"], v["a"]))


def test_jacobian_of_xa_eq74(rng):
    # ∂ (XA)ᵢⱼ / ∂Xₘₙ = δᵢₘ Aₙⱼ  (Cookbook eq. 74); matdiff indexes [i, j, m, n]
    X, A = md.matrix("X", "m", "n"), md.matrix("A", "n", "k")
    v = {"X": rng.standard_normal((m, n)), "A": rng.standard_normal((n, k))}
    check(X @ A, X, v, np.einsum("im,nj->ijmn", np.eye(m), v["A"]))


def test_jacobian_of_xta_eq75(rng):
    # ∂ (XᵀA)ᵢⱼ / ∂Xₘₙ = δᵢₙ Aₘⱼ  (Cookbook eq. 75); matdiff indexes [i, j, m, n]
    X, A = md.matrix("X", "m", "n"), md.matrix("A", "m", "k")
    v = {"X": rng.standard_normal((m, n)), "A": rng.standard_normal((m, k))}
    check(X.T @ A, X, v, np.einsum("in,mj->ijmn", np.eye(n), v["A"]))


# ============================================================ 2.2.2 second order
def test_sum_squared_eq76(rng):
    # ∂/∂Xᵢⱼ Σₖₗₘₙ Xₖₗ Xₘₙ = 2 Σₖₗ Xₖₗ  (Cookbook eq. 76)
    X = md.matrix("X", "m", "n")
    X0 = rng.standard_normal((m, n))
    check(md.sum(X) * md.sum(X), X, {"X": X0}, 2 * X0.sum() * np.ones((m, n)))


def test_btxtxc_eq77(rng):
    # ∂ bᵀXᵀXc / ∂X = X(bcᵀ + cbᵀ)  (Cookbook eq. 77)
    b, c, X = md.vector("b", "n"), md.vector("c", "n"), md.matrix("X", "m", "n")
    v = {"b": rng.standard_normal(n), "c": rng.standard_normal(n),
         "X": rng.standard_normal((m, n))}
    b0, c0 = v["b"], v["c"]
    check(b @ X.T @ X @ c, X, v, v["X"] @ (np.outer(b0, c0) + np.outer(c0, b0)))


def test_affine_bilinear_eq78(rng):
    # ∂ (Bx + b)ᵀC(Dx + d) / ∂x = BᵀC(Dx + d) + DᵀCᵀ(Bx + b)  (Cookbook eq. 78)
    x = md.vector("x", "n")
    B, D = md.matrix("B", "m", "n"), md.matrix("D", "k", "n")
    C = md.matrix("C", "m", "k")
    b, dd = md.vector("b", "m"), md.vector("d", "k")
    v = {"x": rng.standard_normal(n), "B": rng.standard_normal((m, n)),
         "D": rng.standard_normal((k, n)), "C": rng.standard_normal((m, k)),
         "b": rng.standard_normal(m), "d": rng.standard_normal(k)}
    u, w = v["B"] @ v["x"] + v["b"], v["D"] @ v["x"] + v["d"]
    want = v["B"].T @ v["C"] @ w + v["D"].T @ v["C"].T @ u
    check((B @ x + b) @ C @ (D @ x + dd), x, v, want)


def test_jacobian_of_xtbx_eq79(rng):
    # ∂ (XᵀBX)ₖₗ / ∂Xᵢⱼ = δₗⱼ (XᵀB)ₖᵢ + δₖⱼ (BX)ᵢₗ  (Cookbook eq. 79); indexed [k, l, i, j]
    X, B = md.matrix("X", "m", "n"), md.matrix("B", "m", "m")
    v = {"X": rng.standard_normal((m, n)), "B": rng.standard_normal((m, m))}
    XtB, BX, I = v["X"].T @ v["B"], v["B"] @ v["X"], np.eye(n)
    want = np.einsum("lj,ki->klij", I, XtB) + np.einsum("kj,il->klij", I, BX)
    check(X.T @ B @ X, X, v, want)


def test_quadratic_form_eq81(rng):
    # ∂ xᵀBx / ∂x = (B + Bᵀ)x  (Cookbook eq. 81)
    x, B = md.vector("x", "n"), md.matrix("B", "n", "n")
    v = {"x": rng.standard_normal(n), "B": rng.standard_normal((n, n))}
    check(x @ B @ x, x, v, (v["B"] + v["B"].T) @ v["x"])
    # and its Hessian, B + Bᵀ (the derivative of eq. 81 once more)
    assert_close(evaluate_dims(md.hessian(x @ B @ x, x), v, SIZES), v["B"] + v["B"].T)


def test_btxtdxc_eq82(rng):
    # ∂ bᵀXᵀDXc / ∂X = DᵀXbcᵀ + DXcbᵀ  (Cookbook eq. 82)
    b, c = md.vector("b", "n"), md.vector("c", "n")
    X, D = md.matrix("X", "m", "n"), md.matrix("D", "m", "m")
    v = {"b": rng.standard_normal(n), "c": rng.standard_normal(n),
         "X": rng.standard_normal((m, n)), "D": rng.standard_normal((m, m))}
    X0, D0, b0, c0 = v["X"], v["D"], v["b"], v["c"]
    want = D0.T @ X0 @ np.outer(b0, c0) + D0 @ X0 @ np.outer(c0, b0)
    check(b @ X.T @ D @ X @ c, X, v, want)


def test_affine_quadratic_eq83(rng):
    # ∂ (Xb + c)ᵀD(Xb + c) / ∂X = (D + Dᵀ)(Xb + c)bᵀ  (Cookbook eq. 83)
    b, c = md.vector("b", "n"), md.vector("c", "m")
    X, D = md.matrix("X", "m", "n"), md.matrix("D", "m", "m")
    v = {"b": rng.standard_normal(n), "c": rng.standard_normal(m),
         "X": rng.standard_normal((m, n)), "D": rng.standard_normal((m, m))}
    u = v["X"] @ v["b"] + v["c"]
    check((X @ b + c) @ D @ (X @ b + c), X, v, np.outer((v["D"] + v["D"].T) @ u, v["b"]))


def _weighted_ls(rng):
    x, s = md.vector("x", "m"), md.vector("s", "n")
    A, W = md.matrix("A", "m", "n"), md.matrix("W", "m", "m")
    S = rng.standard_normal((m, m))
    v = {"x": rng.standard_normal(m), "s": rng.standard_normal(n),
         "A": rng.standard_normal((m, n)), "W": S @ S.T + np.eye(m)}
    return x, s, A, W, v


def test_weighted_least_squares_eq84_to_eq88(rng):
    # W symmetric:
    # ∂/∂s (x − As)ᵀW(x − As) = −2AᵀW(x − As)  (Cookbook eq. 84)
    # ∂/∂x (x − As)ᵀW(x − As) = 2W(x − As)     (Cookbook eq. 87)
    # ∂/∂A (x − As)ᵀW(x − As) = −2W(x − As)sᵀ  (Cookbook eq. 88)
    x, s, A, W, v = _weighted_ls(rng)
    r = v["x"] - v["A"] @ v["s"]
    f = (x - A @ s) @ W @ (x - A @ s)
    check(f, s, v, -2 * v["A"].T @ v["W"] @ r)
    check(f, x, v, 2 * v["W"] @ r)
    check(f, A, v, -2 * np.outer(v["W"] @ r, v["s"]))


def test_weighted_distance_eq85_eq86(rng):
    # ∂/∂x (x − s)ᵀW(x − s) = 2W(x − s)   (Cookbook eq. 85)
    # ∂/∂s (x − s)ᵀW(x − s) = −2W(x − s)  (Cookbook eq. 86)
    x, s, W = md.vector("x", "m"), md.vector("s", "m"), md.matrix("W", "m", "m")
    S = rng.standard_normal((m, m))
    v = {"x": rng.standard_normal(m), "s": rng.standard_normal(m), "W": S @ S.T}
    f = (x - s) @ W @ (x - s)
    check(f, x, v, 2 * v["W"] @ (v["x"] - v["s"]))
    check(f, s, v, -2 * v["W"] @ (v["x"] - v["s"]))


# ============================================================ 2.2.3 higher order
def test_power_bilinear_eq91(rng):
    # ∂/∂X aᵀXⁿb = Σ_{r=0}^{n−1} (Xʳ)ᵀ a bᵀ (Xⁿ⁻¹⁻ʳ)ᵀ  (Cookbook eq. 91; n = 3)
    a, b, X = md.vector("a", "n"), md.vector("b", "n"), md.matrix("X", "n", "n")
    v = {"a": rng.standard_normal(n), "b": rng.standard_normal(n),
         "X": rng.standard_normal((n, n))}
    P = np.linalg.matrix_power
    want = sum(P(v["X"], r).T @ np.outer(v["a"], v["b"]) @ P(v["X"], 2 - r).T
               for r in range(3))
    check(a @ X @ X @ X @ b, X, v, want)


# ============================================================ 2.3 traces
def test_trace_first_order_eq100_to_eq105(rng):
    # ∂ Tr(X) / ∂X = I          (Cookbook eq. 100)
    # ∂ Tr(XA) / ∂X = Aᵀ        (Cookbook eq. 101)
    # ∂ Tr(AXB) / ∂X = AᵀBᵀ     (Cookbook eq. 102)
    # ∂ Tr(AXᵀB) / ∂X = BA      (Cookbook eq. 103)
    # ∂ Tr(XᵀA) / ∂X = A        (Cookbook eq. 104)
    # ∂ Tr(AXᵀ) / ∂X = A        (Cookbook eq. 105)
    X = md.matrix("X", "m", "n")
    Xs = md.matrix("Xs", "n", "n")
    A_nm, A_mn = md.matrix("Anm", "n", "m"), md.matrix("Amn", "m", "n")
    A_km, B_nk = md.matrix("Akm", "k", "m"), md.matrix("Bnk", "n", "k")
    B_mk, A_kn = md.matrix("Bmk", "m", "k"), md.matrix("Akn", "k", "n")
    v = {name: rng.standard_normal(tuple(SIZES[d] for d in e.shape))
         for name, e in [("X", X), ("Xs", Xs), ("Anm", A_nm), ("Amn", A_mn), ("Akm", A_km),
                         ("Bnk", B_nk), ("Bmk", B_mk), ("Akn", A_kn)]}
    check(md.tr(Xs), Xs, v, np.eye(n))
    check(md.tr(X @ A_nm), X, v, v["Anm"].T)
    check(md.tr(A_km @ X @ B_nk), X, v, v["Akm"].T @ v["Bnk"].T)
    check(md.tr(A_kn @ X.T @ B_mk), X, v, v["Bmk"] @ v["Akn"])
    check(md.tr(X.T @ A_mn), X, v, v["Amn"])
    check(md.tr(A_mn @ X.T), X, v, v["Amn"])


def test_trace_second_order_eq107_to_eq109(rng):
    # ∂ Tr(X²) / ∂X = 2Xᵀ              (Cookbook eq. 107)
    # ∂ Tr(X²B) / ∂X = (XB + BX)ᵀ      (Cookbook eq. 108)
    # ∂ Tr(XᵀBX) / ∂X = BX + BᵀX       (Cookbook eq. 109)
    X, B = md.matrix("X", "n", "n"), md.matrix("B", "n", "n")
    v = {"X": rng.standard_normal((n, n)), "B": rng.standard_normal((n, n))}
    X0, B0 = v["X"], v["B"]
    check(md.tr(X @ X), X, v, 2 * X0.T)
    check(md.tr(X @ X @ B), X, v, (X0 @ B0 + B0 @ X0).T)
    Y, C = md.matrix("Y", "m", "n"), md.matrix("C", "m", "m")
    vy = {"Y": rng.standard_normal((m, n)), "C": rng.standard_normal((m, m))}
    check(md.tr(Y.T @ C @ Y), Y, vy, vy["C"] @ vy["Y"] + vy["C"].T @ vy["Y"])


def test_trace_xbxt_eq112_and_frobenius_eq116(rng):
    # ∂ Tr(XBXᵀ) / ∂X = XBᵀ + XB                (Cookbook eq. 112)
    # ∂ Tr(XᵀX) / ∂X = ∂ Tr(XXᵀ) / ∂X = 2X      (Cookbook eq. 116)
    X, B = md.matrix("X", "m", "n"), md.matrix("B", "n", "n")
    v = {"X": rng.standard_normal((m, n)), "B": rng.standard_normal((n, n))}
    check(md.tr(X @ B @ X.T), X, v, v["X"] @ v["B"].T + v["X"] @ v["B"])
    check(md.tr(X.T @ X), X, v, 2 * v["X"])
    check(md.tr(X @ X.T), X, v, 2 * v["X"])


def test_trace_axbx_eq115(rng):
    # ∂ Tr(AXBX) / ∂X = AᵀXᵀBᵀ + BᵀXᵀAᵀ  (Cookbook eq. 115)
    A, X, B = md.matrix("A", "n", "m"), md.matrix("X", "m", "n"), md.matrix("B", "n", "m")
    v = {"A": rng.standard_normal((n, m)), "X": rng.standard_normal((m, n)),
         "B": rng.standard_normal((n, m))}
    A0, X0, B0 = v["A"], v["X"], v["B"]
    check(md.tr(A @ X @ B @ X), X, v, A0.T @ X0.T @ B0.T + B0.T @ X0.T @ A0.T)


def test_trace_btxtcxb_eq117(rng):
    # ∂ Tr(BᵀXᵀCXB) / ∂X = CᵀXBBᵀ + CXBBᵀ  (Cookbook eq. 117)
    B, X, C = md.matrix("B", "n", "k"), md.matrix("X", "m", "n"), md.matrix("C", "m", "m")
    v = {"B": rng.standard_normal((n, k)), "X": rng.standard_normal((m, n)),
         "C": rng.standard_normal((m, m))}
    B0, X0, C0 = v["B"], v["X"], v["C"]
    check(md.tr(B.T @ X.T @ C @ X @ B), X, v, C0.T @ X0 @ B0 @ B0.T + C0 @ X0 @ B0 @ B0.T)


def test_trace_axbxtc_eq119(rng):
    # ∂ Tr(AXBXᵀC) / ∂X = AᵀCᵀXBᵀ + CAXB  (Cookbook eq. 119)
    A, X = md.matrix("A", "k", "m"), md.matrix("X", "m", "n")
    B, C = md.matrix("B", "n", "n"), md.matrix("C", "m", "k")
    v = {"A": rng.standard_normal((k, m)), "X": rng.standard_normal((m, n)),
         "B": rng.standard_normal((n, n)), "C": rng.standard_normal((m, k))}
    A0, X0, B0, C0 = v["A"], v["X"], v["B"], v["C"]
    check(md.tr(A @ X @ B @ X.T @ C), X, v, A0.T @ C0.T @ X0 @ B0.T + C0 @ A0 @ X0 @ B0)


def test_trace_of_gram_of_affine_eq120(rng):
    # ∂ Tr[(AXB + C)(AXB + C)ᵀ] / ∂X = 2Aᵀ(AXB + C)Bᵀ  (Cookbook eq. 120)
    A, X = md.matrix("A", "k", "m"), md.matrix("X", "m", "n")
    B, C = md.matrix("B", "n", "k"), md.matrix("C", "k", "k")
    v = {"A": rng.standard_normal((k, m)), "X": rng.standard_normal((m, n)),
         "B": rng.standard_normal((n, k)), "C": rng.standard_normal((k, k))}
    R = v["A"] @ v["X"] @ v["B"] + v["C"]
    Y = A @ X @ B + C
    check(md.tr(Y @ Y.T), X, v, 2 * v["A"].T @ R @ v["B"].T)


def test_trace_of_power_eq122_eq123(rng):
    # ∂ Tr(Xᵏ) / ∂X = k (Xᵏ⁻¹)ᵀ                       (Cookbook eq. 122; k = 3)
    # ∂ Tr(AXᵏ) / ∂X = Σ_{r=0}^{k−1} (Xʳ A Xᵏ⁻ʳ⁻¹)ᵀ   (Cookbook eq. 123; k = 3)
    X, A = md.matrix("X", "n", "n"), md.matrix("A", "n", "n")
    v = {"X": rng.standard_normal((n, n)), "A": rng.standard_normal((n, n))}
    P = np.linalg.matrix_power
    check(md.tr(X @ X @ X), X, v, 3 * P(v["X"], 2).T)
    want = sum((P(v["X"], r) @ v["A"] @ P(v["X"], 2 - r)).T for r in range(3))
    check(md.tr(A @ X @ X @ X), X, v, want)


# ============================================================ norms
def test_two_norm_eq129_eq130(rng):
    # ∂ ‖x − a‖₂ / ∂x = (x − a) / ‖x − a‖₂                               (Cookbook eq. 129)
    # ∂/∂x (x − a)/‖x − a‖₂ = I/‖x − a‖₂ − (x − a)(x − a)ᵀ/‖x − a‖₂³     (Cookbook eq. 130)
    x, a = md.vector("x", "n"), md.vector("a", "n")
    v = {"x": rng.standard_normal(n), "a": rng.standard_normal(n)}
    r = v["x"] - v["a"]
    nr = np.linalg.norm(r)
    check(md.norm2(x - a), x, v, r / nr)
    check((x - a) / md.norm2(x - a), x, v, np.eye(n) / nr - np.outer(r, r) / nr ** 3)
    # eq. 130 is also the Hessian of eq. 129's function
    assert_close(evaluate_dims(md.hessian(md.norm2(x - a), x), v, SIZES),
                 np.eye(n) / nr - np.outer(r, r) / nr ** 3, rtol=1e-9, atol=1e-10)


def test_squared_two_norm_eq131(rng):
    # ∂ ‖x‖₂² / ∂x = ∂ xᵀx / ∂x = 2x  (Cookbook eq. 131)
    x = md.vector("x", "n")
    v = {"x": rng.standard_normal(n)}
    check(md.norm2(x) ** 2, x, v, 2 * v["x"])
    check(x @ x, x, v, 2 * v["x"])
    check(md.dot(x, x), x, v, 2 * v["x"])


def test_squared_frobenius_norm_eq132(rng):
    # ∂ ‖X‖_F² / ∂X = ∂ Tr(XXᵀ) / ∂X = 2X  (Cookbook eq. 132)
    X = md.matrix("X", "m", "n")
    v = {"X": rng.standard_normal((m, n))}
    check(md.norm2(X) ** 2, X, v, 2 * v["X"])
    check(md.sum(X * X), X, v, 2 * v["X"])
