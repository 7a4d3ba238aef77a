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


# ------------------------------------------------------------ the kernels' loops, cached
#: a chain over three leaves with every kind of operator a kernel computes
_CHAIN = [("t1", "a0 * a1", ("a0", "a1")), ("t2", "t1 - a2", ("t1", "a2")),
          ("t3", "t2 / (1.5 + xp.abs(a1))", ("t2", "a1")),
          ("t4", "(a0 > 0.25) * t3 + xp.relu(a2) ** 2", ("a0", "t3", "a2")),
          ("t5", "-t4 + xp.max(a0, a2)", ("t4", "a0", "a2"))]


def _chain_kernel():
    """The one kernel ``fuse`` makes of :data:`_CHAIN`, and its NumPy form."""
    from matdiff.compile.backends import get_backend
    from matdiff.compile.fuse import fuse as fuse_pass
    from matdiff.compile.lines import Code, Line

    lines = [Line(t, Code(text, reads, True)) for t, text, reads in _CHAIN]
    out, fx = fuse_pass(lines, [Code("t5", ("t5",))], get_backend("numpy"), {})
    assert [ln.value.text for ln in out] == ["fx.k0(a0, a1, a2)"]
    return fx.k0


def _by_hand(a0, a1, a2):
    """:data:`_CHAIN` written out in NumPy (an independent reference)."""
    t3 = (a0 * a1 - a2) / (1.5 + np.abs(a1))
    return -((a0 > 0.25) * t3 + np.maximum(a2, 0) ** 2) + np.maximum(a0, a2)


#: operand layouts: how each leaf arrives (shape (n, m) for the result); a leaf is an
#: array or a NumPy scalar of the code's dtype (the compiled function converts its
#: inputs), never a Python float, whose weak type NumPy's functions would not keep
#: (``np.abs(0.5)`` is float64) where the kernel's loop does
_LAYOUTS = {
    "full": lambda r, n, m, dt: r.standard_normal((n, m)).astype(dt),
    "numpy scalar": lambda r, n, m, dt: dt(r.standard_normal()),
    "0-d array": lambda r, n, m, dt: np.asarray(r.standard_normal(), dtype=dt),
    "column (n, 1)": lambda r, n, m, dt: r.standard_normal((n, 1)).astype(dt),
    "row (m,)": lambda r, n, m, dt: r.standard_normal(m).astype(dt),
    "strided view": lambda r, n, m, dt: r.standard_normal((n, 2 * m)).astype(dt)[:, ::2],
    "transposed": lambda r, n, m, dt: np.ascontiguousarray(
        r.standard_normal((m, n)).astype(dt)).T,
    "reversed": lambda r, n, m, dt: r.standard_normal((n, m)).astype(dt)[::-1, ::-1],
}


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layouts", [("full", "full", "full"),
                                     ("full", "numpy scalar", "0-d array"),
                                     ("column (n, 1)", "full", "row (m,)"),
                                     ("strided view", "transposed", "reversed"),
                                     ("numpy scalar", "column (n, 1)", "strided view")])
def test_kernel_loops_equal_the_numpy_form(dtype, layouts):
    """The cached loops take every layout NumPy's broadcasting hands them (scalars
    with step 0, broadcast operands, strided and reversed views) and give the NumPy
    form's numbers and dtype: float64 exactly, float32 to its rounding."""
    k = _chain_kernel()
    r = np.random.default_rng(1)
    args = [_LAYOUTS[lay](r, 100, 120, dtype) for lay in layouts]  # ≥ NEST_SIZE
    want = k.numpy_form(*args)
    got = k(*args)  # hot_calls = 1: this call compiled (or loaded) the kernel
    # a column operand: the loop nest (fuse.Nest), else the ufunc
    assert isinstance(_slot(k), fuse.Nest if "column (n, 1)" in layouts else np.ufunc)
    again = _slot(k)(*args)
    assert got.dtype == again.dtype == want.dtype == dtype
    assert got.shape == want.shape == (100, 120)
    assert_same(again, want, dtype)
    if dtype == np.float64:
        np.testing.assert_array_equal(again, want)  # same operations, same order
    np.testing.assert_allclose(again, _by_hand(*args), rtol=1e-5, atol=1e-5)
    # a float32 array with a float64 0-d operand: float64, as NumPy promotes
    if dtype == np.float32:
        mixed = [args[0], args[1], np.asarray(0.3)]
        assert _slot(k)(*mixed).dtype == k.numpy_form(*mixed).dtype == np.float64
        # to float32's precision: the NumPy form multiplies the float32 operands in
        # float32 before the float64 one promotes, a ufunc casts every input first
        np.testing.assert_allclose(_slot(k)(*mixed), k.numpy_form(*mixed), rtol=2e-6,
                                   atol=1e-6)


def _slot(k):
    return getattr(k.ns, k.slot)


@needs_numba
@settings(max_examples=15, deadline=None)
@given(layouts=st.lists(st.sampled_from(sorted(_LAYOUTS)), min_size=3, max_size=3),
       dtype=st.sampled_from([np.float64, np.float32]), seed=st.integers(0, 2**16))
def test_random_layouts(layouts, dtype, seed):
    k = _chain_kernel()
    r = np.random.default_rng(seed)
    n, m = (33, 47) if seed % 2 else (101, 103)  # below and above NEST_SIZE
    args = [_LAYOUTS[lay](r, n, m, dtype) for lay in layouts]
    if all(np.ndim(a) == 0 for a in args):
        args[0] = np.full((n, m), args[0], dtype=dtype)
    want = k.numpy_form(*args)
    k(*args)
    got = _slot(k)(*args)
    assert got.dtype == want.dtype
    assert_same(got, want, want.dtype)


@needs_numba
@pytest.mark.parametrize("plant", ["general path reads with step 0",
                                   "fast path reads the wrong scalar",
                                   "the nest reads the column's first row only"])
def test_a_wrong_loop_is_caught(monkeypatch, plant):
    """Plant a wrong loop (an operand read at the wrong stride; a scalar operand
    read from its neighbour's pointer; a column operand read at its first row in the
    loop nest): the layout checks above must fail."""
    import re

    real = fuse._module_source

    def wrong(body, nparams, funcs, invariant=()):
        src = real(body, nparams, funcs, invariant)
        if plant == "general path reads with step 0":
            return re.sub(r"a(\d)\[i \* s\d\]", r"a\1[0]", src)
        return re.sub(r"(p\d) = a(\d)\[0\]",
                      lambda m: f"{m[1]} = a{(int(m[2]) + 1) % nparams}[0]", src)

    real_nest = fuse._nest_source

    def wrong_nest(body, nparams, funcs, roles):
        return re.sub(r"= a(\d)\[i, 0\]", r"= a\1[0, 0]", real_nest(body, nparams, funcs, roles))

    if plant.startswith("the nest"):
        monkeypatch.setattr(fuse, "_nest_source", wrong_nest)
    else:
        monkeypatch.setattr(fuse, "_module_source", wrong)
    monkeypatch.setattr(fuse, "_CACHE", {})
    layouts = {"g": ("strided view", "transposed", "reversed"),
               "f": ("full", "numpy scalar", "0-d array"),
               "t": ("column (n, 1)", "full", "row (m,)")}[plant[0]]
    k = _chain_kernel()
    r = np.random.default_rng(2)
    args = [_LAYOUTS[lay](r, 100, 120, np.float64) for lay in layouts]
    k(*args)
    assert isinstance(_slot(k), fuse.Nest if plant.startswith("the nest") else np.ufunc)
    with pytest.raises(AssertionError):
        assert_same(_slot(k)(*args), k.numpy_form(*args), np.float64)


def test_module_source_paths():
    # the fast path of a kernel whose second operand is a scalar reads it once
    src = fuse._module_source("((1.0) - (p0 * p1))", 2, (), (1,))
    assert "    if s0 == 1 and s1 == 0 and s2 == 1:\n        p1 = a1[0]\n" in src
    assert "            p0 = a0[i * s0]\n            p1 = a1[i * s1]\n" in src
    assert "o[i] = (np.float32(1.0) - (p0 * p1))" in src  # float32 constants in float32
    assert "o[i] = ((1.0) - (p0 * p1))" in src
    assert src.count("cache=True") == 2
    # without such operands, one loop for any steps (LLVM versions it for unit steps)
    plain = fuse._module_source("((1.0) - (p0 * p1))", 2, ())
    assert " if " not in plain and "    for i in range(n):\n        p0 = a0[i * s0]\n" in plain
    assert fuse._invariant((np.ones((3, 4)), 2.0, np.ones((3, 1)), np.ones(4))) == (1, 2)
    assert fuse._invariant((np.ones((3, 1)), np.ones(1))) == ()


_CHILD = """
import json, sys
import numpy as np
import matdiff as md
from matdiff.compile import fuse
fuse.settings["hot_calls"] = 1
x = md.vector("x", "n")
f = md.compile(md.derive(md.tanh(x), x), structured=True)
x0 = np.linspace(-2.0, 2.0, 3000).astype(sys.argv[1])
d = np.asarray(f(x=x0).diagonal)  # the structured Jacobian's diagonal: 1 − tanh²
mods = [m for n, m in sys.modules.items() if n.startswith("matdiff_fused_")]
loop = getattr(mods[0], "loop_" + sys.argv[1])
np.save(sys.argv[2], d)
print(json.dumps({"modules": len(mods), "file": mods[0].__file__,
                  "hits": loop.cache_hits, "ufunc": isinstance(vars(
                      f._last.fn.__globals__["fx"])["k0"], np.ufunc)}))
"""


@needs_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_second_process_loads_the_kernel_from_the_disk_cache(tmp_path, dtype):
    """Process 1 compiles the kernel into MATDIFF_CACHE_DIR (the module's file and
    Numba's index and machine code beside it); process 2 loads it from there (Numba
    counts a cache hit) and computes the same numbers."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, MATDIFF_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([os.path.abspath("src"),
                                           os.environ.get("PYTHONPATH", "")]))
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("NUMBA_DISABLE_JIT", None)
    runs = []
    for i in (1, 2):
        out = subprocess.run([sys.executable, "-c", _CHILD, dtype, str(tmp_path / f"r{i}.npy")],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["ufunc"] and second["ufunc"] and first["modules"] == second["modules"] == 1
    assert first["file"] == second["file"]
    assert first["file"].startswith(str(tmp_path / "cache" / "fused"))
    cached = os.listdir(os.path.join(os.path.dirname(first["file"]), "__pycache__"))
    assert any(f.endswith(".nbi") for f in cached) and any(f.endswith(".nbc") for f in cached)
    assert first["hits"] == 0 and second["hits"] == 1
    r1, r2 = np.load(tmp_path / "r1.npy"), np.load(tmp_path / "r2.npy")
    np.testing.assert_array_equal(r1, r2)
    x0 = np.linspace(-2.0, 2.0, 3000).astype(dtype)
    assert r1.dtype == np.dtype(dtype)
    np.testing.assert_allclose(r1, 1 - np.tanh(x0) ** 2, rtol=1e-5, atol=1e-6)


@needs_numba
def test_a_kernel_on_disk_is_loaded_before_hot_calls(monkeypatch, tmp_path):
    """With Numba running and the kernel on disk, the kernel replaces the NumPy form
    once the NumPy form has spent ``load_s``; without it on disk, hot_calls waits."""
    monkeypatch.setenv("MATDIFF_CACHE_DIR", str(tmp_path))
    x = md.vector("x", "n")
    J = md.derive(md.tanh(x), x)
    f = md.compile(J, structured=True)
    f(x=x0)  # hot_calls = 1: compiled, now on disk, Numba started
    assert isinstance(_kernels(f)["k0"], np.ufunc)
    monkeypatch.setitem(fuse.settings, "hot_calls", 10**6)
    monkeypatch.setattr(fuse, "_CACHE", {})  # as in a new process: only the disk knows
    monkeypatch.setitem(fuse.settings, "load_s", 10.0)  # rent not yet paid
    g = md.compile(J, structured=True)
    g(x=x0)
    assert isinstance(_kernels(g)["k0"], Kernel)
    monkeypatch.setitem(fuse.settings, "load_s", 0.0)
    g(x=x0)
    assert isinstance(_kernels(g)["k0"], np.ufunc)
    # a kernel not on disk waits for hot_calls
    h = md.compile(md.derive(md.sum(md.relu(x) * x * 3.0), x))
    h(x=x0)
    h(x=x0)
    assert isinstance(_kernels(h)["k0"], Kernel)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_outer_product_of_small_operands_is_fused(dtype):
    """The logsumexp Hessian diag(s) − s sᵀ at n = 100: the kernel −s_i s_j reads two
    operands of 100 elements and writes 10⁴; the size that decides is the result's
    (it was the operands', so this kernel never compiled below n = 1000)."""
    x = md.vector("x", "n")
    H = md.hessian(md.logsumexp(x), x)
    v = rng.standard_normal(100)
    got, ref, f = _run_both(lambda: md.compile(H), {"x": v}, dtype)
    assert "fx.k0(t0[:, None], t0[None, :])" in f.source
    nest = _kernels(f)["k0"]
    assert isinstance(nest, fuse.Nest) and nest.roles == ("C", "R"), "the loop nest took over"
    assert_same(got, ref, dtype)
    s = np.exp(v - v.max())
    s /= s.sum()
    np.testing.assert_allclose(_arrays(got)[0], np.diag(s) - np.outer(s, s),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
    assert fuse._result_size((np.ones(100)[:, None], np.ones(100)[None, :])) == 10_000
    assert fuse._result_size((np.ones((3, 1, 4)), np.ones((5, 1)), 2.0)) == 60


def test_a_module_that_fails_to_load_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("MATDIFF_CACHE_DIR", str(tmp_path))
    src = "x = 1\nraise ImportError('this numba has no such API')\n"
    for _ in range(2):  # the second call tries again, and fails the same way
        with pytest.raises(ImportError, match="no such API"):
            fuse.load_module(src, "matdiff_failing")
    import sys

    assert not any(m.startswith("matdiff_failing_") for m in sys.modules)


def test_a_nest_that_fails_gives_way_to_the_ufunc():
    calls = []

    def failing(out, *args):
        calls.append(1)
        raise RuntimeError("Numba could not type this")

    ufunc = np.multiply
    nest = fuse.Nest(ufunc, {np.dtype(np.float64): failing}, ("C", "R"))
    s = np.arange(4.0)
    for _ in range(2):  # the second call goes straight to the ufunc
        np.testing.assert_array_equal(nest(s[:, None], s[None, :]), np.outer(s, s))
    assert calls == [1]
    # another role pattern: the ufunc, the nest untouched
    np.testing.assert_array_equal(nest(s, s), s * s)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_chain_with_a_scalar_line_is_fused(dtype):
    """∂ mean((y − relu(z))²)/∂z = −2·(1/n)·step(z)·(y − relu(z)), with n read from
    the input at run time: the chain holds the scalar line 1/n, and is still one
    kernel (a chain was refused when any of its lines was small)."""
    z, y = md.vector("z", "n"), md.vector("y", "n")
    g = md.derive(md.mean((y - md.relu(z)) ** 2), z)
    got, ref, f = _run_both(lambda: md.compile(g), {"z": x0, "y": y0}, dtype)
    assert "fx.k0(" in f.source, f.source
    assert_same(got, ref, dtype)
    z64, y64 = x0.astype(dtype).astype(np.float64), y0.astype(dtype).astype(np.float64)
    np.testing.assert_allclose(_arrays(got)[0], (-2 / N) * (y64 - np.maximum(z64, 0)) * (z64 > 0),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-9)


@needs_numba
def test_a_small_matrix_with_a_column_keeps_the_ufunc():
    # 40 × 50 < NEST_SIZE: the nest's ~5 µs more a call would not pay
    k = _chain_kernel()
    r = np.random.default_rng(3)
    args = [_LAYOUTS[lay](r, 40, 50, np.float64) for lay in ("column (n, 1)", "full", "row (m,)")]
    k(*args)
    assert isinstance(_slot(k), np.ufunc) and 40 * 50 < fuse.NEST_SIZE
    np.testing.assert_array_equal(_slot(k)(*args), k.numpy_form(*args))
