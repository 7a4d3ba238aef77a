"""Fused element-wise chains (matdiff.compile.fuse): fused code computes exactly what
the unfused NumPy code computes, in float64 and float32, with and without Numba.

Each test compiles the same expression twice, fusion on (kernels compiled at the first
call: ``hot_calls = 1``) and off, and compares the numbers; the unfused code is the
reference (it is itself checked against finite differences, JAX and PyTorch by
tests/test_random.py).  No test is timed: speed is in benchmarks/compare.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff.compile import fuse
from matdiff.compile.fuse import MIN_SIZE, Kernel

#: the tests that need the kernels compiled (the [fast] extra); without Numba the
#: others still run, on the NumPy form that fused lines fall back to
needs_numba = pytest.mark.skipif(not fuse.numba_available(), reason="needs numba ([fast])")

N = 2 * MIN_SIZE  # a size where chains fuse


@pytest.fixture(autouse=True)
def _eager(monkeypatch):
    """Kernels compiled at their first call (the default waits for hot lines)."""
    monkeypatch.setitem(fuse.settings, "hot_calls", 1)
    monkeypatch.setitem(fuse.settings, "enabled", True)


def _unfused(run):
    """``run()`` with fusion off (the plain NumPy code is generated and run)."""
    old = fuse.settings["enabled"]
    fuse.settings["enabled"] = False
    try:
        return run()
    finally:
        fuse.settings["enabled"] = old


def _kernels(c) -> dict:
    """The ``fx`` namespace of the last specialisation ``c`` ran."""
    return vars(c._last.fn.__globals__["fx"])


def _arrays(x):
    if isinstance(x, dict):
        return [a for k in sorted(x) for a in _arrays(x[k])]
    if isinstance(x, (tuple, list)):
        return [a for v in x for a in _arrays(v)]
    if hasattr(x, "toarray"):
        return [np.asarray(x.toarray())]
    return [np.asarray(x)]


def assert_same(got, want, dtype) -> None:
    """Equal values, and the dtype kept; float64 to 1e-13 (a fused kernel runs the same
    operations in the same order, so in practice bit for bit), float32 to its
    precision (the kernel computes its constants in float64)."""
    g, w = _arrays(got), _arrays(want)
    assert len(g) == len(w)
    rtol, atol = (1e-13, 1e-14) if dtype == np.float64 else (2e-6, 1e-6)
    for a, b in zip(g, w):
        assert a.shape == b.shape
        assert a.dtype == b.dtype == dtype or a.ndim == 0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _run_both(build, values, dtype):
    """(fused result, unfused result, the fused function) for ``build() -> callable``."""
    vals = {k: (np.asarray(v, dtype=dtype) if np.ndim(v) else dtype(v))
            for k, v in values.items()}
    f = build()
    got = f(**vals)
    plain = build()
    ref = _unfused(lambda: plain(**vals))
    assert "fx." not in plain.source  # the reference is the unfused code
    return got, ref, f


rng = np.random.default_rng(16)
x0 = rng.standard_normal(N)
y0 = rng.standard_normal(N)


# ------------------------------------------------------------ the chains of issue 16
@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_jacobian_one_minus_tanh_squared(dtype):
    # d tanh(x)/dx = diag(1 − tanh²(x)): 1 − t·t is one kernel, tanh stays NumPy's
    x = md.vector("x", "n")
    J = md.derive(md.tanh(x), x)
    got, ref, f = _run_both(lambda: md.compile(J, structured=True), {"x": x0}, dtype)
    assert "fx.k0(t0)" in f.source and "fused: 1.0 - t0 * t0" in f.source
    assert "xp.tanh(a0)" in f.source
    assert isinstance(_kernels(f)["k0"], np.ufunc), "the Numba kernel took over"
    assert_same(got, ref, dtype)
    # and the numbers are 1 − tanh², independently
    np.testing.assert_allclose(_arrays(got)[0], np.diag(1 - np.tanh(x0.astype(dtype)) ** 2),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_mask_neuron_gradient(dtype):
    # the paper's neuron: ∂/∂w mean((y − max(0, Xw + b))²) = −(2/N) Xᵀ((y − relu(z)) ⊙ step(z))
    shapes = {"X": ("N", "d"), "w": ("d",), "y": ("N",), "b": ()}
    f = md.parse("mean((y - max(0, X @ w + b))**2)", shapes=shapes)
    X0, w0 = rng.standard_normal((N, 5)), rng.standard_normal(5)
    vals = {"X": X0, "w": w0, "y": y0, "b": 0.1}
    got, ref, vg = _run_both(lambda: md.value_and_grad(f, ["w", "b"]), vals, dtype)
    assert "xp.step" in vg.source and "fused:" in vg.source
    assert_same(got, ref, dtype)
    # independent: the gradient by hand
    X, w, y, b = (np.asarray(v, dtype=np.float64) for v in (X0, w0, y0, 0.1))
    z = X @ w + b
    g = -(2 / N) * X.T @ ((y - np.maximum(z, 0)) * (z > 0))
    np.testing.assert_allclose(_arrays(got)[1], g, rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_mask_times_vector(dtype):
    # (z > 0) * v as the generator writes it: step(z) ⊙ v, with another operator
    z, v = md.vector("z", "n"), md.vector("v", "n")
    e = md.step(z) * v * 2.0 - v
    got, ref, f = _run_both(lambda: md.compile(e), {"z": x0, "v": y0}, dtype)
    assert "fx.k0(" in f.source and "xp.step" in f.source
    assert_same(got, ref, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_gradient_and_logistic_regression(dtype):
    x, y = md.vector("x", "n"), md.vector("y", "n")
    g = md.derive(md.sum(md.softmax(x) * y * y), x)   # s ⊙ (y²) − (s·y²) s
    got, ref, f = _run_both(lambda: md.compile(g), {"x": x0, "y": y0}, dtype)
    assert_same(got, ref, dtype)
    X, w, t = md.matrix("X", "N", "d"), md.vector("w", "d"), md.vector("t", "N")
    loss = md.sum(md.log(1 + md.exp(-t * (X @ w))))
    vals = {"X": rng.standard_normal((N, 4)), "w": rng.standard_normal(4),
            "t": np.sign(y0)}
    got, ref, f = _run_both(lambda: md.compile(md.derive(loss, w)), vals, dtype)
    assert f.source.count("fx.k") == 2  # −(t ⊙ Xw) and t ⊙ e ⊙ 1/(e + 1)
    assert_same(got, ref, dtype)


# ------------------------------------------------------------ random element-wise trees
def _tree(draw, depth):
    x, y = md.vector("x", "n"), md.vector("y", "n")
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([x, y, md.tanh(x), md.exp(y * 0.3)]))
    op = draw(st.sampled_from(["+", "-", "*", "/", "neg", "relu", "step", "max", "abs",
                               "const", "pow"]))
    a = _tree(draw, depth - 1)
    if op in ("+", "-", "*", "max"):
        b = _tree(draw, depth - 1)
        return {"+": a + b, "-": a - b, "*": a * b, "max": md.maximum(a, b)}[op]
    if op == "/":
        return a / (1.5 + md.abs(_tree(draw, depth - 1)))
    return {"neg": -a, "relu": md.relu(a), "step": md.step(a) * a, "abs": md.abs(a),
            "const": 0.7 * a + 0.2, "pow": a ** 2}[op]


@st.composite
def elementwise(draw):
    return _tree(draw, 4)


@settings(max_examples=12, deadline=None)
@given(e=elementwise(), dtype=st.sampled_from([np.float64, np.float32]))
def test_random_elementwise_expressions(e, dtype):
    # value and gradient (the gradient's chains are where most fusion happens)
    x = md.vector("x", "n")
    s = md.sum(e * e)
    outs = {"f": e, "g": md.derive(s, x)}
    got, ref, _ = _run_both(lambda: md.compile(outs), {"x": x0, "y": y0}, dtype)
    assert_same(got, ref, dtype)


# ------------------------------------------------------------ when fusion does not happen
def test_small_sizes_stay_numpy():
    x = md.vector("x", "n")
    f = md.compile(md.derive(md.tanh(x), x), structured=True)
    f(x=x0[: MIN_SIZE - 1])
    assert "fx." not in f.source and "1.0 - t0 * t0" in f.source
    f(x=x0[:MIN_SIZE])
    assert "fx.k0" in f.source


def test_one_operator_is_not_a_kernel_and_comparisons_stay_bool():
    x, y = md.vector("x", "n"), md.vector("y", "n")
    f = md.compile(x * y)
    f(x=x0, y=y0)
    assert "fx." not in f.source


def test_disabled_and_other_backends_are_not_fused():
    x = md.vector("x", "n")
    J = md.derive(md.tanh(x), x)
    off = md.compile(J)
    _unfused(lambda: off(x=x0))
    assert "fx." not in off.source
    pytest.importorskip("jax")
    j = md.compile(J, backend="jax")
    j(x=x0)
    assert "fx." not in j.source


def test_fallback_without_numba(monkeypatch):
    # Numba "not installed": the fused line keeps its NumPy form, same numbers
    monkeypatch.setattr(fuse, "numba_available", lambda: False)
    monkeypatch.setattr(fuse, "_CACHE", {})
    x = md.vector("x", "n")
    J = md.derive(md.tanh(x), x)
    f = md.compile(J)
    got = f(x=x0)
    k = _kernels(f)["k0"]
    assert not isinstance(k, Kernel) and k.__name__ == "numpy_form"
    plain = md.compile(J)
    np.testing.assert_array_equal(got, _unfused(lambda: plain(x=x0)))


@needs_numba
def test_kernel_waits_until_hot(monkeypatch):
    monkeypatch.setitem(fuse.settings, "hot_calls", 3)
    x = md.vector("x", "n")
    f = md.compile(md.derive(md.tanh(x), x), structured=True)
    f(x=x0)
    f(x=x0)
    assert isinstance(_kernels(f)["k0"], Kernel)  # still the NumPy form, counting
    f(x=x0)
    assert not isinstance(_kernels(f)["k0"], Kernel)


@needs_numba
def test_a_wrong_kernel_is_caught(monkeypatch):
    # plant a wrong fused expression (− becomes +): the comparison must fail
    real = fuse._kernel_source

    def wrong(tree):
        body, leaves, funcs = real(tree)
        return body.replace(" - ", " + "), leaves, funcs

    monkeypatch.setattr(fuse, "_kernel_source", wrong)
    monkeypatch.setattr(fuse, "_CACHE", {})
    x = md.vector("x", "n")
    J = md.derive(md.tanh(x), x)
    got, ref, f = _run_both(lambda: md.compile(J), {"x": x0}, np.float64)
    with pytest.raises(AssertionError):
        assert_same(got, ref, np.float64)


def test_kernel_source():
    import ast

    tree = ast.parse("(-0.5) * xp.step(t2) * t5 + xp.max(t5, t1[:, None]) ** 2",
                     mode="eval").body
    body, leaves, funcs = fuse._kernel_source(tree)
    assert leaves == ["t2", "t5", "t1[:, None]"] and funcs == ["step"]
    assert body == "((((-0.5) * _s_step(p0)) * p1) + (np.maximum(p1, p2) ** (2.0)))"


def test_joined_lines_read_what_they_compute():
    # a chain joined into a line that does not become a kernel (fusion of small
    # arrays is off) still lists the names it reads, for any later pass
    from matdiff.compile.fuse import fuse as fuse_pass
    from matdiff.compile.lines import Code, Line

    lines = [Line("t0", Code("xp.tanh(a0)", ("a0",))),
             Line("t1", Code("t0 * t0", ("t0", "t0"), True)),
             Line("t2", Code("1.0 - t1", ("t1",), True))]
    rets = [Code("t2", ("t2",))]
    from matdiff.compile.backends import get_backend

    table = get_backend("numpy")
    small, _ = fuse_pass(lines, rets, table, {"t0": 10, "t1": 10, "t2": 10})
    assert [ln.target for ln in small] == ["t0", "t2"]
    assert small[1].value.text == "1.0 - t0 * t0" and small[1].value.reads == ("t0", "t0")
    big, fx = fuse_pass(lines, rets, table, {"t0": N, "t1": N, "t2": N})
    assert big[1].value.text == "fx.k0(t0)" and big[1].value.reads == ("t0",)
    np.testing.assert_array_equal(fx.k0(x0), 1.0 - x0 * x0)


def test_a_long_chain_is_cut_into_kernels_of_at_most_max_ops():
    """A chain of 400 operators (x·1.001 + 0.5, two hundred times) becomes kernels of
    at most MAX_OPS operators, each reading the one before by name: bounded kernels
    (Numba's compile time) and bounded trees (the recursion limit; a power tower of
    201 floors raised RecursionError before the cut), and the value is the chain's."""
    from matdiff.compile.fuse import MAX_OPS

    x = md.vector("x", "n")
    e = x
    for _ in range(200):
        e = e * 1.001 + 0.5
    f = md.compile(e)
    v = np.linspace(-1.0, 1.0, 2000)
    got = f(x=v)
    want = v.copy()
    for _ in range(200):
        want = want * 1.001 + 0.5
    np.testing.assert_allclose(got, want, rtol=1e-13)
    kernels = f.source.count("fx.k")
    assert kernels >= 400 // MAX_OPS, f.source
    for line in f.source.splitlines():
        if "fused: " in line:
            text = line.split("fused: ", 1)[1]
            assert text.count("*") + text.count("+") <= MAX_OPS, line
