"""Matrix functions and products beyond the meta-test (tests/test_matrix_definitions.py):
the identities they satisfy, checked in numbers against independent libraries (SciPy,
JAX's and PyTorch's autodiff), their Hessians, the printed Fréchet adjoint, the code
they compile to, and their bad input.

Sources: Higham, *Functions of Matrices* (2008), ch. 3 (the Fréchet derivative and its
block form, ``F([[X, E], [0, X]]) = [[F(X), L_F(X, E)], [0, F(X)]]``); Magnus &
Neudecker, *Matrix Differential Calculus* (vec, Kronecker, ``vec(AXB) = (Bᵀ ⊗ A)
vec(X)``); the Matrix Cookbook, eq. 59 (``d(X⁻¹) = −X⁻¹ dX X⁻¹``, hence ``d(A⁻¹b)``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.linalg as sl

import matdiff as md
from helpers import fd_jacobian, max_rel_error
from katex import katex_errors
from matdiff.compile.evaluate import interpret
from matdiff.expr import analytic
from matdiff.expr.dims import dim_mul
from matdiff.expr.matrix_functions import MATRIX_FUNCTIONS

RNG = np.random.default_rng(12)
N = 3


def near_identity(n: int = N, seed: int = 0) -> np.ndarray:
    """A non-symmetric matrix with eigenvalues near 1 (logm and sqrtm are defined)."""
    return np.eye(n) + 0.25 * np.random.default_rng(seed).standard_normal((n, n))


def spd(n: int = N, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, n))
    return a @ a.T + 0.5 * np.eye(n)


X = md.matrix("X", "n", "n")
A = md.matrix("A", "n", "n")
SQUARE = {"X": ("n", "n")}


# ====================================================================== values
@pytest.mark.parametrize("fn, ref", [("expm", sl.expm), ("logm", sl.logm),
                                     ("sqrtm", sl.sqrtm)])
@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_values_match_scipy(fn: str, ref, backend: str) -> None:
    """matdiff's own algorithms (Taylor scaling and squaring, Denman–Beavers, inverse
    scaling and squaring) and the libraries' agree with SciPy's Schur-based ones."""
    X0 = near_identity(4, 1)
    f = md.matrix_function(fn)(md.matrix("X", "n", "n"))
    got = md.compile(f, backend=backend)({"X": X0})
    got = np.asarray(got.detach() if hasattr(got, "detach") else got)
    assert max_rel_error(got, np.real(ref(X0))) < 1e-11


def test_expm_of_logm_and_the_square_of_sqrtm_give_x_back() -> None:
    # expm(logm X) = X and sqrtm(X)² = X for an SPD X (and a non-symmetric one)
    for X0 in (spd(4, 2), near_identity(4, 3)):
        assert max_rel_error(md.expm(md.logm(X)).evaluate(X=X0), X0) < 1e-12
        assert max_rel_error((md.sqrtm(X) @ md.sqrtm(X)).evaluate(X=X0), X0) < 1e-12


def test_expm_far_from_the_identity() -> None:
    # scaling and squaring: a norm of 20 needs 6 squarings
    X0 = 5 * np.random.default_rng(4).standard_normal((4, 4))
    assert max_rel_error(md.expm(X).evaluate(X=X0), sl.expm(X0)) < 1e-11


def test_frechet_block_form_against_scipy_expm_frechet() -> None:
    """L_exp(X, E), the top-right block of expm([[X, E], [0, X]]), is SciPy's
    expm_frechet (a different algorithm); the other two against central differences."""
    X0, E0 = near_identity(4, 5), np.random.default_rng(6).standard_normal((4, 4))
    want = sl.expm_frechet(X0, E0, compute_expm=False)
    assert max_rel_error(analytic.frechet("expm", X0, E0), want) < 1e-12
    for fn, ref in (("logm", sl.logm), ("sqrtm", sl.sqrtm)):
        h = 1e-6
        fd = (ref(X0 + h * E0) - ref(X0 - h * E0)) / (2 * h)
        assert max_rel_error(analytic.frechet(fn, X0, E0), fd) < 1e-7


def test_sqrtm_frechet_solves_the_sylvester_equation() -> None:
    # S L + L S = E, S = X^{1/2} (MATH.md): the block form's L satisfies it
    X0, E0 = spd(4, 7), np.random.default_rng(8).standard_normal((4, 4))
    S = sl.sqrtm(X0)
    L = analytic.frechet("sqrtm", X0, E0)
    assert max_rel_error(S @ L + L @ S, E0) < 1e-11
    assert max_rel_error(L, sl.solve_sylvester(S, S, E0)) < 1e-10


# ====================================================================== first derivatives
@pytest.mark.parametrize("fn, ref", [("expm", sl.expm), ("logm", sl.logm),
                                     ("sqrtm", sl.sqrtm)])
def test_gradients_against_finite_differences_of_scipy(fn: str, ref) -> None:
    """∂ sum(G ⊙ F(X))/∂X = L_F(Xᵀ, G), against central differences of SciPy's F."""
    X0 = near_identity(N, 9)
    G0 = np.random.default_rng(10).standard_normal((N, N))
    G = md.matrix("G", "n", "n")
    g = md.derive(md.sum(G * md.matrix_function(fn)(X)), X)
    want = fd_jacobian(lambda t: np.sum(G0 * np.real(ref(t))), X0)
    assert max_rel_error(g.evaluate(X=X0, G=G0), want) < 1e-7


def test_expm_jacobian_against_jax() -> None:
    import jax
    import jax.numpy as jnp
    import jax.scipy.linalg as jsl

    jax.config.update("jax_enable_x64", True)
    X0 = near_identity(N, 11)
    J = md.derive(md.expm(X), X)                  # shape (n, n, n, n)
    want = np.asarray(jax.jacobian(jsl.expm)(jnp.asarray(X0)))
    assert max_rel_error(J.evaluate(X=X0), want) < 1e-10


def test_expm_gradient_against_torch_autograd() -> None:
    import torch

    X0, W0 = near_identity(N, 12), np.random.default_rng(13).standard_normal((N, N))
    W = md.matrix("W", "n", "n")
    g = md.derive(md.sum(W * md.expm(X @ W)), X)
    t = torch.tensor(X0, requires_grad=True)
    w = torch.tensor(W0)
    (w * torch.linalg.matrix_exp(t @ w)).sum().backward()
    assert max_rel_error(g.evaluate(X=X0, W=W0), t.grad.numpy()) < 1e-10


def test_solve_and_kron_gradients_against_torch_autograd() -> None:
    import torch

    rng = np.random.default_rng(14)
    A0, B0, C0 = near_identity(6, 15), rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    b0 = rng.standard_normal(6)
    Am, Bm, Cm = md.matrix("A", 6, 6), md.matrix("B", 2, 3), md.matrix("C", 3, 2)
    bv = md.vector("b", 6)
    f = md.sum(md.solve(Am, md.kron(Bm, Cm) @ bv) ** 2)
    vals = {"A": A0, "B": B0, "C": C0, "b": b0}
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in vals.items()}
    out = (torch.linalg.solve(ts["A"], torch.kron(ts["B"], ts["C"]) @ ts["b"]) ** 2).sum()
    out.backward()
    for name in vals:
        g = md.derive(f, name)
        assert max_rel_error(g.evaluate(vals), ts[name].grad.numpy()) < 1e-10, name


def test_vec_is_column_major_and_vec_axb_is_the_kronecker_identity() -> None:
    # vec(AXB) = (Bᵀ ⊗ A) vec(X)  (Magnus & Neudecker)
    rng = np.random.default_rng(16)
    A0, X0, B0 = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), \
        rng.standard_normal((4, 5))
    Am, Xm, Bm = md.matrix("A", "m", "n"), md.matrix("X", "n", "p"), md.matrix("B", "p", "q")
    vals = {"A": A0, "X": X0, "B": B0}
    assert np.array_equal(md.vec(Xm).evaluate(X=X0), X0.reshape(-1, order="F"))
    left = md.vec(Am @ Xm @ Bm)
    right = md.kron(Bm.T, Am) @ md.vec(Xm)
    assert left.shape == right.shape == (dim_mul("m", "q"),)
    np.testing.assert_allclose(left.evaluate(vals), right.evaluate(vals), rtol=1e-12)
    # d vec(AXB)/dX is Bᵀ ⊗ A on vec(X) (shape (m·q, n, p) here, by the layout rule)
    D = md.derive(left, Xm).evaluate(vals)
    K = np.kron(B0.T, A0)
    np.testing.assert_allclose(D.reshape(len(K), -1, order="C"),
                               K.reshape(len(K), 4, 3).transpose(0, 2, 1).reshape(len(K), -1),
                               rtol=1e-12)


# ====================================================================== Hessians
@pytest.mark.parametrize("text", ["tr(expm(X))", "sum(expm(X) * X)", "tr(logm(X) @ X)",
                                  "sum(sqrtm(X) * sqrtm(X))"])
def test_hessians_of_analytic_functions_against_differences_of_gradients(text: str) -> None:
    """The second derivative comes from the same rule: the Fréchet adjoint's own
    adjoint is the Fréchet derivative of a block matrix (MATH.md)."""
    f = md.parse(text, shapes=SQUARE)
    g = md.derive(f, "X")
    H = md.hessian(f, "X")
    X0 = near_identity(N, 17)
    want = fd_jacobian(lambda t: interpret(g, {"X": t}), X0)
    assert max_rel_error(H.evaluate(X=X0), want) < 1e-6
    # and the Hessian of a scalar is symmetric
    Hm = H.evaluate(X=X0).reshape(N * N, N * N)
    assert max_rel_error(Hm, Hm.T) < 1e-8


def test_hessian_of_expm_against_jax() -> None:
    import jax
    import jax.numpy as jnp
    import jax.scipy.linalg as jsl

    jax.config.update("jax_enable_x64", True)
    W0 = np.random.default_rng(18).standard_normal((N, N))
    W = md.matrix("W", "n", "n")
    X0 = near_identity(N, 19)
    H = md.hessian(md.sum(W * md.expm(X)), X)
    want = jax.hessian(lambda t: jnp.sum(jnp.asarray(W0) * jsl.expm(t)))(jnp.asarray(X0))
    assert max_rel_error(H.evaluate(X=X0, W=W0), np.asarray(want)) < 1e-9


@pytest.mark.parametrize("wrt", ["A", "b"])
def test_hessians_of_solve_against_differences_of_gradients(wrt: str) -> None:
    shapes = {"A": ("n", "n"), "b": ("n",)}
    f = md.parse("sum(solve(A, b)) + solve(A, b) @ solve(A, b)", shapes=shapes)
    vals = {"A": near_identity(N, 20), "b": np.random.default_rng(21).standard_normal(N)}
    g = md.derive(f, wrt)
    H = md.hessian(f, wrt)
    want = fd_jacobian(lambda t: interpret(g, {**vals, wrt: t}), vals[wrt])
    assert max_rel_error(H.evaluate(vals), want) < 1e-6


# ====================================================================== printing
def test_the_adjoint_prints_as_the_frechet_derivative_at_the_transpose() -> None:
    g = md.derive(md.tr(md.expm(X)), X)
    assert str(g) == "L_exp(Xᵀ, I)"
    assert md.latex(g) == r"L_{\exp}(X^\top, I)"
    G = md.matrix("G", "n", "n")
    assert str(md.derive(md.sum(G * md.logm(X)), X)) == "L_log(Xᵀ, G)"
    assert str(md.derive(md.sum(G * md.sqrtm(X)), X)) == "L_sqrt(Xᵀ, G)"
    B = md.matrix("B", "p", "q")
    b = md.vector("b", "n")
    texts = {"A ⊗ B": md.kron(A, B), "(A + X) ⊗ B": md.kron(A + X, B),
             "A⁻¹b": md.solve(A, b), "vec(B)": md.vec(B), "expm(X)": md.expm(X),
             "logm(X) + sqrtm(X)": md.logm(X) + md.sqrtm(X), "X³": md.matrix_power(X, 3)}
    for text, e in texts.items():
        assert str(e) == text
    latex = [md.latex(e) for e in texts.values()]
    latex += [md.latex(md.derive(md.tr(md.expm(X)), X)),
              md.latex(md.derive(md.sum(G * md.sqrtm(X)), X)),
              md.latex(md.derive(md.sum(md.kron(A, B)), B))]
    assert md.latex(md.kron(A, B)) == r"A \otimes B"
    assert katex_errors(latex) == []


def test_the_unicode_syntax_reads_what_is_printed() -> None:
    B = md.matrix("B", "p", "q")
    shapes = {"A": ("n", "n"), "B": ("p", "q"), "X": ("n", "n"), "G": ("n", "n")}
    for e in (md.kron(A, B), md.expm(X) + md.logm(X), md.vec(B), md.sqrtm(X)):
        assert md.parse(str(e), shapes=shapes, syntax="unicode") is e
    G = md.matrix("G", "n", "n")
    g = md.derive(md.sum(G * md.logm(X)), X)
    back = md.parse(str(g), shapes=shapes, syntax="unicode")
    vals = {"X": near_identity(N, 22), "G": RNG.standard_normal((N, N))}
    np.testing.assert_allclose(back.evaluate(vals), g.evaluate(vals), rtol=1e-12)
    with pytest.raises(md.ParseError, match="element-wise product as ⊗"):
        md.parse("w ⊗ x", shapes={"w": ("n",), "x": ("n",)}, syntax="unicode")


# ====================================================================== compiled code
@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_compiled_code_on_every_backend(backend: str) -> None:
    shapes = {"A": ("n", "n"), "X": ("n", "n"), "b": ("n",), "B": ("p", "q")}
    f = md.parse("sum(solve(A, expm(X) @ b)) + tr(logm(X) + sqrtm(X)) "
                 "+ sum(kron(B, B)) * sum(vec(B) * vec(B))", shapes=shapes)
    rng = np.random.default_rng(23)
    vals = {"A": near_identity(N, 24), "X": near_identity(N, 25), "b": rng.standard_normal(N),
            "B": rng.standard_normal((2, 3))}
    outs = [f] + [md.derive(f, v) for v in ("A", "X", "b", "B")]
    got = md.compile(outs, backend=backend)(vals)
    for e, out in zip(outs, got):
        out = np.asarray(out.detach() if hasattr(out, "detach") else out)
        assert max_rel_error(out, interpret(e, vals)) < 1e-9


def test_solve_compiles_as_a_solve_never_an_inverse() -> None:
    shapes = {"A": ("n", "n"), "b": ("n",)}
    f = md.parse("sum(solve(A, b))", shapes=shapes)
    fn = md.compile({"f": f, "gA": md.derive(f, "A"), "gb": md.derive(f, "b")})
    assert "xp.solve(" in fn.source and "xp.inv(" not in fn.source


def test_matrix_power_values_and_derivatives() -> None:
    X0 = near_identity(N, 26)
    for k in range(1, 6):
        P = md.matrix_power(X, k)
        np.testing.assert_allclose(P.evaluate(X=X0), np.linalg.matrix_power(X0, k),
                                   rtol=1e-12)
    # d tr(Xᵏ)/dX = k (Xᵏ⁻¹)ᵀ
    g = md.derive(md.tr(md.parse("matrix_power(X, 5)", shapes=SQUARE)), X)
    np.testing.assert_allclose(g.evaluate(X=X0), 5 * np.linalg.matrix_power(X0, 4).T,
                               rtol=1e-12)
    J = md.derive(md.matrix_power(X, 3), X)
    assert max_rel_error(J.evaluate(X=X0),
                         fd_jacobian(lambda t: np.linalg.matrix_power(t, 3), X0)) < 1e-8
    assert md.matrix_power(X, 0) is md.eye("n")
    assert md.matrix_power(X, 4).count_nodes() < md.matmul(X, md.matmul(X, md.matmul(X, X))
                                                           ).count_nodes() + 1


# ====================================================================== bad input
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_logm_and_sqrtm_of_a_negative_eigenvalue_are_errors_naming_them(backend) -> None:
    Y0 = np.diag([2.0, -0.5, 1.0])
    for fn in ("logm", "sqrtm"):
        f = md.tr(md.matrix_function(fn)(X))
        with pytest.raises(md.EvaluationError, match=rf"{fn}\(X\) is not defined.*-0.5"):
            md.compile(f, backend=backend)({"X": Y0})
        with pytest.raises(md.EvaluationError, match=rf"{fn}\(X\) is not defined"):
            md.derive(f, X).evaluate(X=Y0)
    # a zero eigenvalue: no logarithm, and a square root without a derivative
    Z0 = np.diag([1.0, 0.0, 2.0])
    with pytest.raises(md.EvaluationError, match="logm"):
        md.logm(X).evaluate(X=Z0)
    with pytest.raises(md.EvaluationError, match="sqrtm.*has no derivative"):
        md.sqrtm(X).evaluate(X=Z0)


def test_jax_gives_nan_where_logm_is_not_defined() -> None:
    # compiled JAX code cannot raise: outside the domain its value is nan
    out = md.compile(md.logm(X), backend="jax")({"X": np.diag([2.0, -0.5, 1.0])})
    assert np.isnan(np.asarray(out)).all()


@pytest.mark.parametrize("text, what", [
    ("matrix_power(X, -1)", "matrix_power(inv(X), k)"),
    ("matrix_power(X, 1.5)", "not '1.5'"),
    ("matrix_power(X, k)", "not 'k'"),
])
def test_matrix_power_needs_a_whole_number(text: str, what: str) -> None:
    with pytest.raises(md.ParseError, match="whole number ≥ 0") as e:
        md.parse(text, shapes=SQUARE)
    assert what in str(e.value) and "^" in str(e.value)
    with pytest.raises(md.ShapeError, match="whole number ≥ 0"):
        md.matrix_power(X, float(text.split(",")[1].strip(" )")) if "k" not in text else X)


def test_matrix_power_of_a_non_square_matrix() -> None:
    with pytest.raises(md.ShapeError, match="matrix_power needs a square matrix") as e:
        md.parse("matrix_power(B, 2)", shapes={"B": ("n", "m")})
    assert "^" in str(e.value)


def test_shape_errors_name_the_function_and_the_argument() -> None:
    with pytest.raises(md.ShapeError, match="solve: the matrix's columns and the "
                                            "right-hand side's rows differ") as e:
        md.parse("solve(A, x)", shapes={"A": ("n", "n"), "x": ("m",)})
    assert "^" in str(e.value)
    with pytest.raises(md.ShapeError, match="kron needs a matrix"):
        md.kron(md.vector("x", "n"), A)
    with pytest.raises(md.ShapeError, match="vec needs a matrix"):
        md.parse("vec(x)", shapes={"x": ("n",)})
    with pytest.raises(md.ShapeError, match="expm needs a square matrix"):
        md.expm(md.matrix("B", "n", "m"))
    with pytest.raises(md.ParseError, match="solve takes 2 arguments"):
        md.parse("solve(A)", shapes={"A": ("n", "n")})


def test_a_singular_matrix_in_solve_is_an_evaluation_error() -> None:
    f = md.solve(A, md.vector("b", "n"))
    with pytest.raises(md.EvaluationError, match="singular"):
        f.evaluate(A=np.zeros((N, N)), b=np.ones(N))


# ====================================================================== planted errors
def test_a_planted_wrong_frechet_adjoint_is_caught(monkeypatch) -> None:
    """Planted: the adjoint L_exp(X, G) instead of L_exp(Xᵀ, G) (the transpose
    forgotten), right only for symmetric X: md.check and finite differences catch it."""
    good = MATRIX_FUNCTIONS["expm"]

    def wrong_vjp(node, adj, nf):
        from matdiff.expr.matrix_functions import call

        return call("frechet_exp", (node.children[0], adj))

    monkeypatch.setitem(MATRIX_FUNCTIONS, "expm", dataclasses.replace(good, vjp=wrong_vjp))
    G = md.matrix("G", "n", "n")
    f = md.sum(G * md.expm(X))
    g = md.derive(f, X)
    X0, G0 = near_identity(N, 27), RNG.standard_normal((N, N))
    want = fd_jacobian(lambda t: np.sum(G0 * sl.expm(t)), X0)
    assert max_rel_error(g.evaluate(X=X0, G=G0), want) > 1e-3
    assert not md.check(f, "X").ok
