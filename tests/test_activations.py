"""The activations of deep learning, against the libraries that define them.

Each activation is one definition (a row of ``expr/functions.py``, ``log_softmax`` a
definition of ``expr/matrix_functions.py``), which the meta-tests check through every
layer.  Here they are compared with independent references: ``torch.nn.functional``
and ``jax.nn`` (values), ``torch.autograd`` and ``jax.grad`` (first and second
derivatives), in float64, on random points of both signs and large magnitudes; the
conventions at the kinks are PyTorch's autograd; every backend stays finite (no
overflow) up to |x| = 1e3; md.check passes on a small network with each.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import matdiff as md
from matdiff.expr.functions import FUNCTIONS

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import torch.nn.functional as F  # noqa: E402

BACKENDS = ("numpy", "jax", "torch")

# the points: random of both signs, some large, none at a kink (0); and the extremes
_rng = np.random.default_rng(12)
POINTS = np.concatenate([_rng.standard_normal(12) * 2.5, _rng.uniform(-40.0, 40.0, 6),
                         [-1e3, -200.0, -30.0, -5.0, -0.7, 0.4, 3.0, 30.0, 200.0, 1e3]])
POINTS = np.where(np.abs(POINTS) < 1e-3, 0.5, POINTS)
EXTREMES = np.array([-1e3, -750.0, -100.0, 100.0, 750.0, 1e3])

#: name -> (matdiff builder of one argument, torch reference, JAX reference); the
#: arity-2 activations at a parameter value other than the default, and at the default
ALPHA = 0.3
UNARY = {
    "gelu": (md.gelu, F.gelu, lambda t: jax.nn.gelu(t, approximate=False)),
    "silu": (md.silu, F.silu, jax.nn.silu),
    "log_sigmoid": (md.log_sigmoid, F.logsigmoid, jax.nn.log_sigmoid),
    "softsign": (md.softsign, F.softsign, jax.nn.soft_sign),
    "normal_cdf": (md.normal_cdf, torch.special.ndtr, jax.scipy.special.ndtr),
    "erf": (md.erf, torch.special.erf, jax.scipy.special.erf),
    "leaky_relu": (lambda x: md.leaky_relu(x, ALPHA),
                   lambda t: F.leaky_relu(t, ALPHA), lambda t: jax.nn.leaky_relu(t, ALPHA)),
    "leaky_relu_default": (md.leaky_relu, F.leaky_relu, jax.nn.leaky_relu),
    "elu": (lambda x: md.elu(x, ALPHA), lambda t: F.elu(t, ALPHA),
            lambda t: jax.nn.elu(t, ALPHA)),
    "elu_default": (md.elu, F.elu, jax.nn.elu),
}


def _np(a) -> np.ndarray:
    return np.asarray(a.detach() if hasattr(a, "detach") else a, dtype=np.float64)


def _torch_derivatives(ref, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f'(x) and f''(x), element-wise, by torch.autograd (double backward)."""
    t = torch.tensor(pts, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(ref(t).sum(), t, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), t, allow_unused=True)
    return _np(g), (np.zeros_like(pts) if h is None else _np(h))


def _jax_derivatives(ref, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f'(x) and f''(x), element-wise, by jax.grad."""
    d1 = jax.vmap(jax.grad(ref))
    d2 = jax.vmap(jax.grad(jax.grad(ref)))
    x = jnp.asarray(pts)
    return np.asarray(d1(x)), np.asarray(d2(x))


def _matdiff(build, pts: np.ndarray, backend: str = "numpy"):
    """The value, f'(x) and f''(x) of the activation, element-wise, from matdiff's
    symbolic derivatives (gradient and Hessian of the sum), compiled for ``backend``."""
    x = md.vector("x", "n")
    f = build(x)
    g = md.derive(md.sum(f), x)
    H = md.hessian(md.sum(f), x)
    out = md.compile([f, g, H], backend=backend)(x=pts)
    v, d1, d2 = (_np(o) for o in out)
    assert np.count_nonzero(d2 - np.diag(np.diag(d2))) == 0  # element-wise: diagonal
    return v, d1, np.diag(d2)


def _close(got, want, what) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13, err_msg=what)


# ====================================================================== values
@pytest.mark.parametrize("name", sorted(UNARY))
def test_value_against_torch_and_jax(name: str) -> None:
    build, ref_torch, ref_jax = UNARY[name]
    want_torch = _np(ref_torch(torch.tensor(POINTS, dtype=torch.float64)))
    want_jax = np.asarray(ref_jax(jnp.asarray(POINTS)))
    for backend in BACKENDS:
        v, _, _ = _matdiff(build, POINTS, backend)
        _close(v, want_torch, f"{name} on {backend} vs torch")
        _close(v, want_jax, f"{name} on {backend} vs jax")


def test_log_softmax_against_torch_and_jax() -> None:
    rng = np.random.default_rng(3)
    for shape in [("n",), ("m", "n")]:
        X0 = rng.standard_normal((5,) if len(shape) == 1 else (3, 5)) * 20
        X0.flat[0], X0.flat[1] = 1e3, -1e3  # far apart: no exp may overflow
        X = md.var("X", *shape)
        want_t = _np(torch.log_softmax(torch.tensor(X0), dim=-1))
        want_j = np.asarray(jax.nn.log_softmax(jnp.asarray(X0)))
        for backend in BACKENDS:
            got = _np(md.compile(md.log_softmax(X), backend=backend)(X=X0))
            _close(got, want_t, f"log_softmax on {backend} vs torch")
            _close(got, want_j, f"log_softmax on {backend} vs jax")


# ====================================================================== derivatives
@pytest.mark.parametrize("name", sorted(UNARY))
def test_first_and_second_derivatives_against_autograd(name: str) -> None:
    build, ref_torch, ref_jax = UNARY[name]
    t1, t2 = _torch_derivatives(ref_torch, POINTS)
    j1, j2 = _jax_derivatives(ref_jax, POINTS)
    for backend in BACKENDS:
        _, d1, d2 = _matdiff(build, POINTS, backend)
        _close(d1, t1, f"{name}' on {backend} vs torch.autograd")
        _close(d1, j1, f"{name}' on {backend} vs jax.grad")
        _close(d2, t2, f"{name}'' on {backend} vs torch.autograd")
        _close(d2, j2, f"{name}'' on {backend} vs jax.grad")


@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
def test_derivatives_by_the_parameter_against_jax(name: str) -> None:
    """∂/∂a, ∂²/∂a∂x and ∂²/∂a² of leaky_relu(x, a) and elu(x, a), with a a vector
    (the arguments broadcast), against jax.grad (torch takes a as a Python number)."""
    ref = {"leaky_relu": jax.nn.leaky_relu, "elu": jax.nn.elu}[name]
    build = md.elementwise(name)
    x, a = md.vector("x", "n"), md.vector("a", "n")
    f = md.sum(build(x, a))
    a0 = np.abs(np.random.default_rng(4).standard_normal(POINTS.size)) + 0.05
    vals = {"x": POINTS, "a": a0}
    ga = md.derive(f, a)
    gxa = md.derive(md.derive(f, x), a)
    gaa = md.derive(ga, a)
    da = jax.vmap(jax.grad(ref, argnums=1))
    dxa = jax.vmap(jax.grad(jax.grad(ref, argnums=0), argnums=1))
    daa = jax.vmap(jax.grad(jax.grad(ref, argnums=1), argnums=1))
    xj, aj = jnp.asarray(POINTS), jnp.asarray(a0)
    for backend in BACKENDS:
        got = [_np(o) for o in md.compile([ga, gxa, gaa], backend=backend)(vals)]
        _close(got[0], np.asarray(da(xj, aj)), f"∂{name}/∂a on {backend}")
        _close(np.diag(got[1]), np.asarray(dxa(xj, aj)), f"∂²{name}/∂x∂a on {backend}")
        _close(np.diag(got[2]), np.asarray(daa(xj, aj)), f"∂²{name}/∂a² on {backend}")


def test_log_softmax_jacobian_and_hessian_against_autograd() -> None:
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal(5) * 3
    w0 = rng.standard_normal(5)
    x, w = md.vector("x", "n"), md.vector("w", "n")
    J = md.derive(md.log_softmax(x), x)
    f = w @ md.log_softmax(x)
    H = md.hessian(f, x)

    def ft(t):
        return torch.tensor(w0) @ torch.log_softmax(t, dim=-1)

    def fj(t):
        return jnp.asarray(w0) @ jax.nn.log_softmax(t)

    xt = torch.tensor(x0)
    Jt = _np(torch.autograd.functional.jacobian(lambda t: torch.log_softmax(t, dim=-1), xt))
    Ht = _np(torch.autograd.functional.hessian(ft, xt))
    Jj = np.asarray(jax.jacobian(jax.nn.log_softmax)(jnp.asarray(x0)))
    Hj = np.asarray(jax.hessian(fj)(jnp.asarray(x0)))
    for backend in BACKENDS:
        got_J, got_H = (_np(o) for o in md.compile([J, H], backend=backend)(x=x0, w=w0))
        _close(got_J, Jt, f"log_softmax Jacobian on {backend} vs torch")
        _close(got_J, Jj, f"log_softmax Jacobian on {backend} vs jax")
        _close(got_H, Ht, f"log_softmax Hessian on {backend} vs torch")
        _close(got_H, Hj, f"log_softmax Hessian on {backend} vs jax")
    # a matrix: row by row over the last axis
    X0 = rng.standard_normal((2, 4))
    X = md.matrix("X", "m", "n")
    JX = _np(md.derive(md.log_softmax(X), X).evaluate(X=X0))
    want = _np(torch.autograd.functional.jacobian(lambda t: torch.log_softmax(t, dim=-1),
                                                  torch.tensor(X0)))
    _close(JX, want, "log_softmax Jacobian of a matrix vs torch")


def test_kinks_follow_pytorch_autograd() -> None:
    """leaky_relu'(0) = a (torch; JAX gives 1), elu'(0) = a (torch and JAX) and
    elu''(0) = 0 (torch's double backward), relu'(0) = 0 as documented."""
    zero = np.zeros(1)
    for a in (0.01, 0.3, 2.0):
        cases = {
            "leaky_relu": (lambda x, a=a: md.leaky_relu(x, a), lambda t, a=a: F.leaky_relu(t, a)),
            "elu": (lambda x, a=a: md.elu(x, a), lambda t, a=a: F.elu(t, a)),
        }
        for name, (build, ref) in cases.items():
            t1, t2 = _torch_derivatives(ref, zero)
            for backend in BACKENDS:
                v, d1, d2 = _matdiff(build, zero, backend)
                assert v[0] == 0.0
                assert d1[0] == pytest.approx(t1[0], abs=1e-15) == a, (name, backend, d1)
                assert d2[0] == pytest.approx(t2[0], abs=1e-15) == 0.0, (name, backend, d2)
    _, d1, _ = _matdiff(md.relu, zero)
    assert d1[0] == 0.0


# ====================================================================== stability
@pytest.mark.parametrize("name", sorted(UNARY))
def test_no_overflow_at_large_magnitudes(name: str) -> None:
    """At |x| up to 1e3 the value and both derivatives are finite on every backend
    (NumPy raises on any overflow or invalid operation here) and equal the limits
    the references give."""
    build, ref_torch, _ = UNARY[name]
    want = _np(ref_torch(torch.tensor(EXTREMES, dtype=torch.float64)))
    t1, t2 = _torch_derivatives(ref_torch, EXTREMES)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for backend in BACKENDS:
            v, d1, d2 = _matdiff(build, EXTREMES, backend)
            for arr in (v, d1, d2):
                assert np.isfinite(arr).all(), (name, backend, arr)
            _close(v, want, f"{name} at ±1e3 on {backend}")
            _close(d1, t1, f"{name}' at ±1e3 on {backend}")
            _close(d2, t2, f"{name}'' at ±1e3 on {backend}")


def test_log_softmax_and_log_sigmoid_have_no_overflow() -> None:
    x0 = np.array([1e3, -1e3, 0.0, 999.0])
    x = md.vector("x", "n")
    f = md.log_softmax(x)
    J = md.derive(f, x)
    want = x0 - (1e3 + math.log1p(math.exp(-1.0) + 2 * math.exp(-1e3)))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for backend in BACKENDS:
            v, j = (_np(o) for o in md.compile([f, J], backend=backend)(x=x0))
            assert np.isfinite(v).all() and np.isfinite(j).all(), backend
            _close(v, want, f"log_softmax at 1e3 on {backend}")
    # log σ at ±1e3: −1e3 and 0 (log(1 + e^1000) would overflow), σ'(…) finite
    v, d1, _ = _matdiff(md.log_sigmoid, np.array([-1e3, 1e3]))
    assert v.tolist() == [-1e3, 0.0] and d1.tolist() == [1.0, 0.0]


def test_the_normal_cdf_without_scipy_is_scipy_s() -> None:
    """The vectorised math.erfc fallback (used where SciPy is missing) agrees with
    scipy.special.ndtr, tails included."""
    scipy_special = pytest.importorskip("scipy.special")
    from matdiff.expr.functions import _ndtr_erfc

    t = np.concatenate([np.linspace(-38.0, 8.0, 97), [-1e3, 1e3, 0.0]])
    np.testing.assert_allclose(_ndtr_erfc(t), scipy_special.ndtr(t), rtol=1e-12, atol=1e-300)
    assert _ndtr_erfc(np.float64(0.0)) == 0.5


# ====================================================================== the language
def test_parse_with_and_without_the_parameter() -> None:
    shapes = {"x": ("n",)}
    x = md.vector("x", "n")
    assert md.parse("leaky_relu(x, 0.1)", shapes=shapes) is md.leaky_relu(x, 0.1)
    assert md.parse("elu(x, 1.0)", shapes=shapes) is md.elu(x, 1.0)
    # the defaults of torch and JAX: negative_slope=0.01, alpha=1.0
    assert md.parse("leaky_relu(x)", shapes=shapes) is md.leaky_relu(x, 0.01)
    assert md.parse("elu(x)", shapes=shapes) is md.elu(x, 1.0) is md.elu(x)
    x0 = np.array([-2.0, 3.0])
    np.testing.assert_allclose(md.parse("leaky_relu(x, 0.1)", shapes=shapes).evaluate(x=x0),
                               [-0.2, 3.0])
    np.testing.assert_allclose(md.parse("elu(x, 1.0)", shapes=shapes).evaluate(x=x0),
                               [math.expm1(-2.0), 3.0])
    with pytest.raises(md.ParseError, match="leaky_relu takes 1 or 2 arguments, got 3"):
        md.parse("leaky_relu(x, 0.1, 2)", shapes=shapes)
    with pytest.raises(TypeError, match="elu takes 1 to 2 arguments, got 0"):
        md.elu()
    for name in ("gelu", "silu", "log_sigmoid", "softsign", "normal_cdf", "log_softmax"):
        assert md.parse(f"{name}(x)", shapes=shapes) is getattr(md, name)(x)


def test_erf_is_built_in_and_the_contract_s_restatement_is_accepted() -> None:
    """erf is built in (issue 12's activations), and the public contract's
    ``md.define_function("erf", ...)`` restates it: accepted because it agrees with the
    built-in, returning the built-in's builder; a definition that differs is refused
    with the point where it differs."""
    assert FUNCTIONS["erf"].builtin
    x = md.vector("x", "n")
    assert md.parse("erf(x)", shapes={"x": ("n",)}) is md.erf(x)
    t = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(md.erf(x).evaluate(x=t), [math.erf(v) for v in t],
                               rtol=1e-14, atol=1e-16)
    g = md.derive(md.sum(md.erf(x)), x).evaluate(x=t)
    np.testing.assert_allclose(g, 2 / math.sqrt(math.pi) * np.exp(-t * t), rtol=1e-14)
    restated = md.define_function(
        "erf", derivative=lambda u: 1.1283791670955126 * md.exp(-u**2),
        numpy=np.vectorize(math.erf), latex=r"\operatorname{erf}")
    assert restated(x) is md.erf(x) and FUNCTIONS["erf"].builtin
    with pytest.raises(md.DefinitionError, match=r"derivative by argument 1 at .* differs|"
                       r"differs from it: its derivative by argument 1"):
        md.define_function("erf", derivative=lambda u: md.exp(-u**2),
                           numpy=np.vectorize(math.erf))
    with pytest.raises(md.DefinitionError, match="its value at"):
        md.define_function("erf", derivative=lambda u: 1.1283791670955126 * md.exp(-u**2),
                           numpy=np.tanh)
    with pytest.raises(md.DefinitionError, match="already a name of the language"):
        md.define_function("dot", derivative=lambda u: u, numpy=np.abs)


def test_printing() -> None:
    x = md.vector("x", "n")
    assert str(md.derive(md.sum(md.gelu(x)), x)).startswith("Φ(x) + ")
    assert str(md.derive(md.sum(md.log_sigmoid(x)), x)) == "σ(−x)"
    assert str(md.derive(md.sum(md.softsign(x)), x)) == "(1 + abs(x))⁻²"
    assert md.latex(md.gelu(x)) == r"\operatorname{GELU}(x)"
    assert md.latex(md.normal_cdf(x)) == r"\Phi(x)"
    assert md.latex(md.log_sigmoid(x)) == r"\log\sigma(x)"
    assert md.latex(md.log_softmax(x)) == r"\log\operatorname{softmax}(x)"
    assert str(md.log_softmax(x)) == "log_softmax(x)"
    # Σⱼ ∂ log_softmax(x)ⱼ/∂xᵢ = 1 − n softmax(x)ᵢ
    assert str(md.derive(md.sum(md.log_softmax(x)), x)) == "1 − n softmax(x)"


def test_explain_words_the_kinks() -> None:
    shapes = {"W": ("m", "n"), "x": ("n",), "b": ("m",)}
    d = md.explain("sum(leaky_relu(W @ x + b, 0.1))", "x", shapes=shapes)
    text = str(d)
    assert "v = leaky_relu(u, " in text  # not the paper's max(0, …) of relu
    assert "1 where u > 0, 0.1" in text and "where u ≤ 0" in text
    assert r"\operatorname{LeakyReLU}" in d.to_latex()
    zh = str(md.explain("sum(elu(W @ x))", "x", shapes=shapes, lang="zh"))
    assert "当 u ≤ 0 时为 1·exp(u)" in zh
    assert r"\log\operatorname{softmax}" in md.explain("sum(log_softmax(W @ x))", "x",
                                                       shapes=shapes).to_latex()


# ====================================================================== md.check
NETWORK = {
    "gelu": "sum((gelu(W @ x + b) - y) ** 2)",
    "silu": "sum((silu(W @ x + b) - y) ** 2)",
    "leaky_relu": "sum((leaky_relu(W @ x + b, 0.1) - y) ** 2)",
    "leaky_relu_default": "sum((leaky_relu(W @ x + b) - y) ** 2)",
    "elu": "sum((elu(W @ x + b, 0.5) - y) ** 2)",
    "log_sigmoid": "-sum(y * log_sigmoid(W @ x + b) + (1 - y) * log_sigmoid(-(W @ x + b)))",
    "softsign": "sum((softsign(W @ x + b) - y) ** 2)",
    "normal_cdf": "sum((normal_cdf(W @ x + b) - y) ** 2)",
    "log_softmax": "-sum(y * log_softmax(W @ x + b))",
    "log_softmax_batch": "-sum(Y * log_softmax(X @ W.T + b))",
}
NET_SHAPES = {"W": ("m", "n"), "x": ("n",), "b": ("m",), "y": ("m",), "X": ("N", "n"),
              "Y": ("N", "m")}


@pytest.mark.parametrize("name", sorted(NETWORK))
def test_check_a_small_network(name: str) -> None:
    f = md.parse(NETWORK[name], shapes=NET_SHAPES)
    for wrt in ("W", "b"):
        r = md.check(f, wrt, shapes=NET_SHAPES)
        assert r.ok, (name, wrt, str(r))
        if name.startswith(("leaky_relu", "elu")):
            # the kink is at 0 of the first argument, whatever the slope: both sides seen
            assert r.pieces == (2, 2), (name, str(r))
    # and the Hessian by b (the second derivative through the activation)
    g = md.derive(f, "b", shapes=NET_SHAPES)
    assert md.check(g, "b").ok, name


def test_check_finds_the_kink_at_zero_whatever_the_slope() -> None:
    """md.check reads the definition's kink: leaky_relu(x, 5) and elu(x, 5) change
    piece at x = 0 (not at x = 5, as max(x, 5) would), so points in (−1, 1) see both."""
    for text in ("sum(leaky_relu(x, 5.0))", "sum(elu(x, 5.0))"):
        r = md.check(text, "x", shapes={"x": ("n",)})
        assert r.ok and r.pieces == (2, 2), (text, str(r))


def test_softplus_is_exact_to_rounding_and_keeps_float32() -> None:
    """NumPy's softplus is max(a, 0) + log1p(e^(−|a|)) (NumPy's logaddexp is 5–9x
    slower): equal to log1p(eᵃ), computed by the math module where it does not
    overflow, to 2e-16 relative, across 600 points from −700 to 700; float32 stays
    float32."""
    soft = FUNCTIONS["softplus"].numpy
    a = np.concatenate([np.linspace(-700.0, 700.0, 501), np.linspace(-3.0, 3.0, 99)])
    want = np.array([math.log1p(math.exp(v)) if v < 30 else v + math.log1p(math.exp(-v))
                     for v in a])
    got = soft(a)
    assert np.all(np.abs(got - want) <= 2.5e-16 * np.abs(want) + 1e-300), \
        np.max(np.abs(got - want) / np.abs(want))
    assert soft(a.astype(np.float32)).dtype == np.float32
