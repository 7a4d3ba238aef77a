"""``solve`` instead of ``inv`` where an inverse is only multiplied (issue 4).

The compiled code of ``A⁻¹b``, ``xᵀA⁻¹x``, ``sum(A⁻¹B)`` and of derivatives that
only multiply ``A⁻¹`` calls ``solve`` and forms no inverse; an inverse that is an
output (the derivative of ``logdet``) or an argument of a sum is still formed.
Values equal the interpreter and NumPy closed forms for every installed backend.
"""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from helpers import well_conditioned
from matdiff.compile.evaluate import interpret

N, M = 5, 3
BACKENDS = ["numpy", "jax", "torch"]


def _np(a):
    return np.asarray(a.detach() if hasattr(a, "detach") else a, dtype=np.float64)


@pytest.fixture
def data():
    rng = np.random.default_rng(11)
    return {"A": well_conditioned(rng, N), "B": rng.standard_normal((N, M)),
            "b": rng.standard_normal(N), "x": rng.standard_normal(N)}


def _vars():
    return (md.matrix("A", "n", "n"), md.matrix("B", "n", "m"), md.vector("b", "n"),
            md.vector("x", "n"))


def _cases():
    A, B, b, x = _vars()
    Ai = md.inv(A)

    def ninv(v):
        return np.linalg.inv(v["A"])

    return {
        # name: (expression, closed form, must use solve)
        "inv_b": (Ai @ b, lambda v: ninv(v) @ v["b"], True),
        "inv_B": (Ai @ B, lambda v: ninv(v) @ v["B"], True),
        "Bt_inv": (B.T @ Ai, lambda v: v["B"].T @ ninv(v), True),
        "b_inv": (b @ Ai, lambda v: v["b"] @ ninv(v), True),
        "xAix": (x @ Ai @ x, lambda v: v["x"] @ ninv(v) @ v["x"], True),
        "sum_inv_B": (md.sum(Ai @ B), lambda v: np.sum(ninv(v) @ v["B"]), True),
        "d_xAix_dA": (md.derive(x @ Ai @ x, A),
                      lambda v: -np.outer(ninv(v).T @ v["x"], ninv(v) @ v["x"]), True),
        "d_xAix_dx": (md.derive(x @ Ai @ x, x),
                      lambda v: (ninv(v) + ninv(v).T) @ v["x"], None),
        "hess_xAix": (md.hessian(x @ Ai @ x, x), lambda v: ninv(v) + ninv(v).T, False),
        "d_logdet": (md.derive(md.logdet(A), A), lambda v: ninv(v).T, False),
        "inv": (Ai, ninv, False),
        "inv_inv_b": (Ai @ Ai @ b, lambda v: ninv(v) @ ninv(v) @ v["b"], True),
        "inv_times_A": (Ai * A, lambda v: ninv(v) * v["A"], False),
        "d_inv_b_dA": (md.derive(Ai @ b, A),
                       lambda v: -np.einsum("ij,k->ijk", ninv(v), ninv(v) @ v["b"]), None),
        "tr_inv": (md.tr(Ai), lambda v: np.trace(ninv(v)), None),
        "tanh_inv_b": (md.tanh(Ai) @ b, lambda v: np.tanh(ninv(v)) @ v["b"], False),
    }


CASES = _cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_equal_interpreter_and_closed_form(name, backend, data):
    if backend != "numpy":
        pytest.importorskip(backend)
    expr, closed, _ = CASES[name]
    c = md.compile(expr, backend=backend)
    vals = {k: v for k, v in data.items() if k in expr.variables()}
    got = _np(c(vals))
    want = interpret(expr, vals)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(got, closed(data), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", sorted(CASES))
def test_source_uses_solve_where_the_inverse_is_only_multiplied(name):
    expr, _, solve = CASES[name]
    src = md.compile(expr).source
    if solve:
        assert "xp.solve(" in src and "xp.inv(" not in src, src
    elif solve is False:
        assert "xp.inv(" in src, src


def test_value_and_derivatives_together(data):
    A, _, _, x = _vars()
    f = x @ md.inv(A) @ x
    outs = [f, md.derive(f, A), md.derive(f, x), md.hessian(f, x)]
    vals = {"A": data["A"], "x": data["x"]}
    for backend in BACKENDS:
        if backend != "numpy":
            pytest.importorskip(backend)
        got = md.compile(outs, backend=backend)(vals)
        for g, e in zip(got, outs):
            np.testing.assert_allclose(_np(g), interpret(e, vals), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", BACKENDS)
def test_solve_entry_takes_vector_and_matrix_right_hand_sides(backend, data):
    if backend != "numpy":
        pytest.importorskip(backend)
    from matdiff.compile.backends import get_backend

    xp = get_backend(backend)
    A = xp.asarray(data["A"])
    Ai = np.linalg.inv(data["A"])
    v = _np(xp.solve(A, xp.asarray(data["b"])))
    assert v.shape == (N,)
    np.testing.assert_allclose(v, Ai @ data["b"], rtol=1e-10)
    m = _np(xp.solve(A, xp.asarray(data["B"])))
    assert m.shape == (N, M)
    np.testing.assert_allclose(m, Ai @ data["B"], rtol=1e-10)
    # a square right-hand side is a matrix, not a batch of vectors
    sq = _np(xp.solve(A, xp.asarray(data["A"].T)))
    np.testing.assert_allclose(sq, Ai @ data["A"].T, rtol=1e-9, atol=1e-12)


def test_jax_solve_is_jit_compatible(data):
    jax = pytest.importorskip("jax")
    A, _, b, _ = _vars()
    c = md.compile(md.inv(A) @ b, backend="jax")
    f = jax.jit(lambda a, bb: c(A=a, b=bb))
    want = np.linalg.solve(data["A"], data["b"])
    with jax.enable_x64(True):   # the user's jit in x64 mode traces float64
        np.testing.assert_allclose(np.asarray(f(data["A"], data["b"])), want, rtol=1e-10)
    with jax.enable_x64(False):  # and without it, their JAX's float32: so is the code
        out = f(data["A"], data["b"])
        assert str(out.dtype) == "float32"
        np.testing.assert_allclose(np.asarray(out), want, rtol=1e-4)


def test_a_zero_right_hand_side_is_zero(data):
    """``A⁻¹0 = 0``: ``solve(A, x − x)`` is the zero vector (of the right-hand side's
    shape), so ``sum(cos(A⁻¹0))`` is ``n``; it had printed ``sum(cos(A⁻¹0))``, read
    back as A⁻¹ times the number 0, whose cosines sum to n² (found by the hunt
    profile's round trip)."""
    A, B, _, x = _vars()
    z = md.solve(A, x - x)
    assert isinstance(z, md.Expr) and z.shape == ("n",) and str(z) == "0"
    f = md.sum(md.cos(z))
    assert str(f) == "n"
    assert float(md.evaluate(f, data, dims={"n": N})) == N
    assert md.solve(A, B - B).shape == ("n", "m")
