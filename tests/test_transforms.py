"""Function transforms: md.grad, md.value_and_grad, md.jacobian, md.hessian, md.formula."""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from matdiff.transforms import ArgnumsError, TracingError


def loss(w, b, X, y):
    return md.mean((y - md.maximum(0, X @ w + b)) ** 2)


def _data(seed=0, N=7, d=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=d), float(rng.normal()), rng.normal(size=(N, d)), rng.normal(size=N)


def _closed_form(w, b, X, y):
    z = X @ w + b
    r = y - np.maximum(0, z)
    act = (z > 0).astype(float)
    gw = -2 / len(y) * X.T @ (r * act)
    gb = -2 / len(y) * np.sum(r * act)
    return np.mean(r ** 2), gw, gb


def test_grad_of_paper_loss_matches_closed_form():
    w, b, X, y = _data()
    gw = md.grad(loss)(w, b, X, y)
    _, cw, _ = _closed_form(w, b, X, y)
    assert gw.dtype == np.float64 and gw.shape == w.shape
    np.testing.assert_allclose(gw, cw, rtol=1e-12, atol=1e-14)


def test_grad_of_paper_loss_matches_torch():
    torch = pytest.importorskip("torch")
    w, b, X, y = _data(1)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    tX, ty = torch.tensor(X), torch.tensor(y)
    tl = torch.mean((ty - torch.clamp(tX @ tw + tb, min=0)) ** 2)
    tl.backward()
    v, (gw, gb) = md.value_and_grad(loss, argnums=(0, 1))(w, b, X, y)
    np.testing.assert_allclose(v, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, tb.grad.item(), rtol=1e-12, atol=1e-14)


def test_argnums_tuple_and_negative():
    w, b, X, y = _data(2)
    gw, gb, gX = md.grad(loss, argnums=(0, 1, 2))(w, b, X, y)
    _, cw, cb = _closed_form(w, b, X, y)
    np.testing.assert_allclose(gw, cw, atol=1e-13)
    np.testing.assert_allclose(gb, cb, atol=1e-13)
    assert np.shape(gb) == () and gX.shape == X.shape
    (gw2,) = md.grad(loss, argnums=(0,))(w, b, X, y)
    np.testing.assert_allclose(gw2, cw, atol=1e-13)
    gy = md.grad(loss, argnums=-1)(w, b, X, y)
    assert gy.shape == y.shape


def test_value_and_grad_dispatch_keeps_expression_form():
    x = md.vector("x", "n")
    vg = md.value_and_grad(md.sum(x * x), "x")
    v, g = vg(x=np.array([1.0, 2.0]))
    assert float(v) == 5.0 and g.tolist() == [2.0, 4.0]
    v2, g2 = md.value_and_grad(lambda x: md.sum(x * x))(np.array([1.0, 2.0]))
    assert float(v2) == 5.0 and g2.tolist() == [2.0, 4.0]


def test_jacobian_matches_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    rng = np.random.default_rng(3)
    W, x = rng.normal(size=(4, 3)), rng.normal(size=3)

    def f(W, x):
        return md.tanh(W @ x)

    JW, Jx = md.jacobian(f, argnums=(0, 1))(W, x)
    eW, ex = jax.jacrev(lambda W, x: jnp.tanh(W @ x), argnums=(0, 1))(W, x)
    assert JW.shape == (4, 4, 3) and Jx.shape == (4, 3)
    np.testing.assert_allclose(JW, np.asarray(eW), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(Jx, np.asarray(ex), rtol=1e-12, atol=1e-14)


def test_hessian_of_quadratic():
    rng = np.random.default_rng(4)
    A, x = rng.normal(size=(3, 3)), rng.normal(size=3)
    H = md.hessian(lambda x, A: x @ A @ x)(x, A)
    np.testing.assert_allclose(H, A + A.T, atol=1e-13)
    H2 = md.transforms.hessian(lambda x, A: 0.5 * x @ A @ x + md.sum(x))(x, A)
    np.testing.assert_allclose(H2, (A + A.T) / 2, atol=1e-13)
    # expression form unchanged
    assert md.hessian("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")}).shape \
        == ("n", "n")


def test_hessian_argnums_tuple_blocks():
    x, y = np.array([1.0, 2.0]), np.array([3.0])
    H = md.hessian(lambda x, y: md.sum(x) ** 2 * md.sum(y), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(H[0][0], 2 * 3.0 * np.ones((2, 2)))
    np.testing.assert_allclose(H[0][1], 2 * 3.0 * np.ones((2, 1)))
    np.testing.assert_allclose(H[1][1], np.zeros((1, 1)))


def test_caching_and_retrace_for_new_shapes():
    g = md.grad(loss)
    w, b, X, y = _data(5)
    g(w, b, X, y)
    assert g.trace_count == 1
    w2, b2, X2, y2 = _data(6)
    g(w2, b2, X2, y2)
    assert g.trace_count == 1
    w3, b3, X3, y3 = _data(7, N=11, d=5)
    out = g(w3, b3, X3, y3)
    assert g.trace_count == 2 and out.shape == (5,)
    np.testing.assert_allclose(out, _closed_form(w3, b3, X3, y3)[1], atol=1e-13)
    g(w, b, X, y)
    assert g.trace_count == 2


def test_scalar_arguments_and_fallback_names():
    f = md.grad(lambda *args: args[0] * md.sum(args[1] ** 2), argnums=(0, 1))
    ga, gb = f(2.0, np.array([1.0, 3.0]))
    assert float(ga) == 10.0 and gb.tolist() == [4.0, 12.0]
    fm = md.formula(lambda *args: args[0] * md.sum(args[1]), 2.0, np.ones(2))
    assert set(fm.grads) == {"a0", "a1"}


def test_control_flow_is_a_clear_error():
    def f(x):
        if md.sum(x) > 0:
            return md.sum(x)
        return -md.sum(x)

    with pytest.raises(TracingError, match="control flow"):
        md.grad(f)(np.ones(3))

    def g(x):
        return md.sum(x) if md.sum(x) else md.sum(x)

    with pytest.raises(md.MatdiffError, match="md.maximum"):
        md.grad(g)(np.ones(3))


def test_non_scalar_grad_says_use_jacobian():
    with pytest.raises(TracingError, match="jacobian"):
        md.grad(lambda x: md.tanh(x))(np.ones(3))


def test_numpy_function_on_placeholder_is_a_clear_error():
    with pytest.raises(TracingError, match="matdiff's functions"):
        md.grad(lambda x: np.sum(np.exp(x)))(np.ones(3))

    with pytest.raises(TracingError, match="not a matdiff expression"):
        md.grad(lambda x: [md.sum(x)])(np.ones(3))


def test_bad_argnums():
    with pytest.raises(ArgnumsError, match="out of range"):
        md.grad(loss, argnums=4)(*_data())
    with pytest.raises(ArgnumsError, match="int or a tuple"):
        md.grad(loss, argnums="w")
    with pytest.raises(ArgnumsError, match="empty"):
        md.grad(loss, argnums=())
    with pytest.raises(ArgnumsError, match="repeats"):
        md.grad(loss, argnums=(0, -4))(*_data())
    assert issubclass(ArgnumsError, md.MatdiffError)


def test_formula_prints():
    w, b, X, y = _data()
    fm = md.formula(loss, w, b, X, y)
    assert isinstance(fm, md.Formula)
    assert set(fm.grads) == {"w", "b", "X", "y"}
    assert fm.grads["w"].shape == (3,) and fm.value.shape == ()
    text = str(fm)
    assert text.startswith("f = ") and "df/dw = " in text and "df/db = " in text
    only = md.formula(loss, w, b, X, y, argnums=0)
    assert list(only.grads) == ["w"]
    assert "X" in str(md.grad(loss).formula(w, b, X, y))
