"""The row kernel (``matdiff.compile.rowkernel``: a row-blocked body as one Numba
loop over its rows; off by default, turned on here in both precisions) gives the
outputs of the blocked NumPy body and of the whole-array code, on the paper's loss,
logistic regression and random row-local expressions, in float64 and float32; it
falls back to the NumPy body, still correct, where a node does not translate, where
Numba is missing or fusion is off, and until the compiled function is hot.

Blocks and chunks are made small here (a few rows) so that the chunk loop, a block
shorter than a chunk and the last shorter block all run on small arrays; planted bugs
(the last row of each block dropped, a wrong sign) show that the comparisons catch a
wrong kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff.compile import fuse, rowblock, rowkernel
from matdiff.compile import threads as thr
from matdiff.compile.rowblock import RowBlocked
from matdiff.compile.rowkernel import RowKernel, Unsupported, translate
from rowlocal import paper_by_hand
from rowlocal import same as _same

pytest.importorskip("numba")

X, y = md.matrix("X", "N", "d"), md.vector("y", "N")
w, b, a = md.vector("w", "d"), md.scalar("b"), md.scalar("a")
W = md.matrix("W", "d", "k")
D = 4

PAPER = md.mean((y - md.maximum(0, X @ w + b)) ** 2)
LOGREG = md.mean(md.log(1 + md.exp(-y * (X @ w))))


@pytest.fixture
def small(monkeypatch):
    """``small(rows, chunk)``: every specialisation made after it is blocked in
    blocks of ``rows`` rows, its kernel in chunks of ``chunk`` rows (at d = 4,
    float64), compiled at the first call."""
    def set_sizes(rows: int, chunk: int = 16, threads: int = 1) -> None:
        _set_sizes(monkeypatch, rows, chunk, threads)
    return set_sizes


def _set_sizes(mp, rows: int, chunk: int, threads: int) -> None:
    """Through the monkeypatch ``mp``: blocks of ``rows`` rows on ``threads``
    threads, kernel chunks of ``chunk`` rows, the kernel compiled at the first call."""
    mp.setitem(fuse.settings, "hot_calls", 1)
    mp.setitem(rowkernel.settings, "precisions", ("float32", "float64"))
    mp.setattr(rowblock, "MIN_BYTES", 0)
    mp.setattr(rowblock, "block_rows", lambda n, row_bytes, target: rows)
    mp.setattr(thr, "_THREADS", [threads])
    mp.setattr(rowblock, "MIN_SPLIT", 4)
    mp.setattr(rowkernel, "CHUNK_BYTES", 8 * D * chunk)


def _values(N: int, dtype=np.float64, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    vals = {"X": rng.standard_normal((N, D)), "y": np.sign(rng.standard_normal(N)),
            "w": rng.standard_normal(D), "b": np.float64(0.1), "a": np.float64(0.7),
            "W": rng.standard_normal((D, 3))}
    return {n: np.asarray(x, dtype=dtype) for n, x in vals.items()}


def _three(outputs, vals, calls: int = 2):
    """(the specialisation, the kernel's outputs, the blocked NumPy body's, the
    whole-array code's), each compiled anew; the first called ``calls`` times."""
    fn = md.compile(outputs)
    for _ in range(calls):
        out = fn(vals)
    with rowkernel.disabled():
        blocked = md.compile(outputs)(vals)
    with rowblock.disabled():
        whole = md.compile(outputs)(vals)
    return fn.specialised(vals), out, blocked, whole


def _active(fn) -> bool:
    return isinstance(fn, RowBlocked) and isinstance(fn.body, RowKernel) \
        and fn.body.active


# ------------------------------------------------------------ the paper's loss
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, rows, chunk", [
    (96, 32, 16),    # blocks and chunks that divide the rows
    (101, 40, 16),   # the last block 21 rows: a chunk and 5 rows
    (45, 10, 16),    # blocks shorter than a chunk
    (23, 20, 1024),  # one chunk a block, the last block 3 rows
])
def test_paper_loss(small, dtype, N, rows, chunk):
    """Value, ∇w, ∇b and ∇y (a row output) of the paper's loss: the kernel equals the
    blocked NumPy body, the whole-array code and the formulas by hand."""
    small(rows, chunk)
    vals = _values(N, dtype, seed=N)
    outs = [PAPER] + [md.derive(PAPER, v) for v in (w, b, y)]
    fn, got, blocked, whole = _three(outs, vals)
    assert _active(fn)
    _same(got, blocked, dtype)
    _same(got, whole, dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for g, e in zip(got, paper_by_hand(vals, last="y")):
        np.testing.assert_allclose(np.asarray(g, np.float64), e, rtol=tol, atol=tol)


def test_float32_sums_are_accurate():
    """The float32 kernel's sums over 2·10⁵ rows (in float32, chunk by chunk) against
    float64 arithmetic on the same float32 inputs: within a few float32 roundings
    (a sum in one running total drifts by ~N·ε in the worst case, 10⁻²)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(fuse.settings, "hot_calls", 1)
        mp.setitem(rowkernel.settings, "precisions", ("float32",))
        mp.setattr(rowblock, "MIN_BYTES", 0)
        rng = np.random.default_rng(7)
        N = 200_000
        vals = {"X": rng.standard_normal((N, D)).astype(np.float32),
                "y": (rng.standard_normal(N) + 1).astype(np.float32),
                "w": rng.standard_normal(D).astype(np.float32), "b": np.float32(0.3)}
        outs = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b)]
        fn = md.compile(outs)
        fn(vals)
        got = fn(vals)
    assert _active(fn.specialised(vals))
    for g, e in zip(got, paper_by_hand(vals, last="y")):
        assert np.asarray(g).dtype == np.float32
        np.testing.assert_allclose(np.asarray(g, np.float64), e, rtol=3e-6, atol=1e-7)


# ------------------------------------------------------------ logistic regression
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logistic_regression(small, monkeypatch, dtype):
    """With its transcendental functions (exp, log(1 + exp) as logaddexp) the kernel
    equals the NumPy code; by default they are not translated (slower than NumPy's
    SIMD), and the NumPy body runs, still equal."""
    small(16, 16)
    vals = {k: v for k, v in _values(61, dtype, seed=3).items() if k in "Xyw"}
    # log(1 + exp(z)) at z up to ~200 (float64), ~50 (float32): no overflow
    vals["X"] = vals["X"] * (40 if dtype == np.float64 else 10)
    outs = [LOGREG, md.derive(LOGREG, w)]
    fn, got, blocked, whole = _three(outs, vals)
    assert isinstance(fn, RowBlocked) and not isinstance(fn.body, RowKernel)
    _same(got, whole, dtype)
    monkeypatch.setitem(rowkernel.settings, "transcendental", True)
    fn, got, blocked, whole = _three(outs, vals)
    assert _active(fn)
    assert "np.logaddexp" in fn.body.source
    _same(got, blocked, dtype)
    _same(got, whole, dtype)


# ------------------------------------------------------------ random row-local trees
ROW_FNS = [md.relu, md.abs, lambda e: e * e, lambda e: md.maximum(e, 0.5 * e),
           md.tanh, md.sin, lambda e: md.exp(md.sin(e))]


def _rows(draw, depth: int):
    """A random expression of shape (N,) local to the rows."""
    if depth == 0 or draw(st.integers(0, 5)) == 0:
        # (a function of a product keeps the simplifier from pairing two of them
        # into one product with X twice, which is not translated)
        return draw(st.sampled_from([X @ w + b, y, a * y, md.relu(X @ w + b),
                                     md.abs(X @ w), md.tanh((a * X) @ w)]))
    c = draw(st.integers(0, 3))
    if c == 0:
        return draw(st.sampled_from(ROW_FNS))(_rows(draw, depth - 1))
    if c == 1:
        return _rows(draw, depth - 1) * _rows(draw, depth - 1)
    if c == 2:
        return _rows(draw, depth - 1) - a * _rows(draw, depth - 1)
    return _rows(draw, depth - 1) / (1 + _rows(draw, depth - 1) ** 2)


@st.composite
def row_losses(draw):
    """A linear combination of sums and means over the rows of random row
    expressions."""
    r1, r2 = _rows(draw, 3), _rows(draw, 3)
    pick = draw(st.integers(0, 2))
    return [md.sum(r1) + 0.5 * md.mean(r2), a * md.sum(r1) - md.mean(r2),
            md.mean(r1 * r2)][pick]


@settings(max_examples=20, deadline=None)
@given(row_losses(), st.sampled_from([(23, 5, 16), (40, 12, 16), (7, 3, 16)]),
       st.sampled_from([np.float64, np.float32]), st.sampled_from([1, 2]))
def test_random_row_local_expressions(f, nr, dtype, threads):
    """Value and gradients by w, b, a and y (a row output) of random row-local
    losses: the kernel (transcendental functions on) equals the blocked NumPy body
    and the whole-array code, on one thread and two (``pytest --hypothesis-show-
    statistics`` shows how many ran the kernel)."""
    N, rows, chunk = nr
    note(f"f = {f}")
    with pytest.MonkeyPatch.context() as mp:
        _set_sizes(mp, rows, chunk, threads)
        mp.setitem(rowkernel.settings, "transcendental", True)
        wrt = [v for v in (w, b, a, y) if v.name in f.variables()]
        outs = [f] + [md.derive(f, v) for v in wrt]
        vals = _values(N, dtype, seed=N)
        vals = {n: vals[n] for n in f.variables()}
        fn, got, blocked, whole = _three(outs, vals)
    # a product with X twice (the simplifier writes Σₙ (Xₙ·w)² as wᵀXᵀXw) is not
    # translated: the NumPy body runs; every body that translates runs the kernel
    kernel = isinstance(fn, RowBlocked) and isinstance(fn.body, RowKernel)
    if kernel:
        assert fn.body.active
    event("kernel" if kernel else "NumPy")
    _same(got, blocked, dtype)
    _same(got, whole, dtype)


def test_affine_outputs(small):
    """An output affine in the sums (Σₙ zₙ + b: its free part is added in the first
    block only, by the NumPy body) beside kernel blocks."""
    small(8)
    vals = _values(30, seed=5)
    f = md.sum(md.relu(X @ w)) + b * b
    outs = [f, md.derive(f, b), md.derive(f, w)]
    fn, got, blocked, whole = _three(outs, vals)
    assert _active(fn) and fn.first is not None
    _same(got, blocked)
    _same(got, whole)


# ------------------------------------------------------------ fallbacks
def test_the_precisions_asked_for(monkeypatch):
    """The kernel runs in the precisions of ``settings["precisions"]`` only; in the
    others the NumPy body runs; all equal the whole-array code."""
    monkeypatch.setitem(fuse.settings, "hot_calls", 1)
    monkeypatch.setattr(rowblock, "MIN_BYTES", 0)
    monkeypatch.setattr(rowblock, "block_rows", lambda n, row_bytes, target: 8)
    outs = [PAPER, md.derive(PAPER, w)]
    for precisions, dtype, kernel in (((), np.float64, False), ((), np.float32, False),
                                      (("float32",), np.float64, False),
                                      (("float32",), np.float32, True),
                                      (("float32", "float64"), np.float64, True)):
        monkeypatch.setitem(rowkernel.settings, "precisions", precisions)
        vals = _values(30, dtype, seed=12)
        fn, got, blocked, whole = _three(outs, vals)
        assert isinstance(fn, RowBlocked) and isinstance(fn.body, RowKernel) == kernel
        _same(got, whole, dtype)


BOTH = ("float32", "float64")


@pytest.mark.parametrize("env, want", [(None, BOTH), ("1", BOTH), ("0", ())])
def test_on_by_default_off_by_environment(env, want):
    """Both precisions by default (and with ``MATDIFF_ROWKERNEL=1``); none with
    ``MATDIFF_ROWKERNEL=0``: read at import, in a new process."""
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "MATDIFF_ROWKERNEL"}
    if env is not None:
        environ["MATDIFF_ROWKERNEL"] = env
    code = "from matdiff.compile import rowkernel; print(rowkernel.settings['precisions'])"
    out = subprocess.run([sys.executable, "-c", code], env=environ, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == repr(want)


def test_one_kernel_call_for_all_blocks(small, monkeypatch):
    """Once compiled, the kernel takes all of a call's rows at once (one call of the
    kernel, not one a block), after the first block's own NumPy function where an
    output is affine; the results equal the whole-array code's either way."""
    small(8)
    vals = _values(30, seed=13)
    for f in (PAPER, md.sum(md.relu(X @ w)) + b * b):
        outs = [f, md.derive(f, w), md.derive(f, b)]
        fn = md.compile(outs)
        fn(vals)
        fn(vals)  # the first block of an affine output is not the kernel's: 2 calls
        spec = fn.specialised(vals)
        assert _active(spec)
        real, sizes = spec.body.state.kernel, []

        def counted(*args, real=real, sizes=sizes):
            sizes.append(args[[k for k, a in enumerate(args)
                               if np.ndim(a) == 2][0]].shape[0])
            return real(*args)

        monkeypatch.setattr(spec.body.state, "kernel", counted)
        got = fn(vals)
        assert sizes == ([22] if spec.first is not None else [30])
        with rowblock.disabled():
            _same(got, md.compile(outs)(vals))


def test_unsupported_bodies_keep_numpy_and_stay_correct(small):
    """Bodies the kernel does not translate: a product with a free matrix (X W),
    a gradient by X (a row matrix output), a function of the last axis; the NumPy
    body runs and the outputs are right."""
    small(8)
    vals = _values(30, seed=6)
    cases = [md.sum(md.relu(X @ W)), md.mean((X @ w) ** 2), md.sum(md.logsumexp(X))]
    for f, var in zip(cases, (W, X, X)):
        outs = [f, md.derive(f, var)]
        fn, got, blocked, whole = _three(outs, vals)
        assert isinstance(fn, RowBlocked) and not isinstance(fn.body, RowKernel)
        _same(got, whole)
    with pytest.raises(Unsupported, match="W"):
        translate([md.sum(X @ W)], ["X", "W"], "N", "float64")
    with pytest.raises(Unsupported, match="precision"):
        translate([md.sum(X @ w)], ["X", "w"], "N", "complex128")


@pytest.mark.parametrize("how", ["numba missing", "fusion off"])
def test_without_numba_the_numpy_body_runs(small, monkeypatch, how):
    """Numba not installed (``fuse.numba_available`` false) or ``MATDIFF_FUSE=0``
    (``fuse.settings["enabled"]`` false): the body stays NumPy, and right."""
    small(8)
    if how == "numba missing":
        monkeypatch.setattr(fuse, "numba_available", lambda: False)
        monkeypatch.setattr(rowkernel, "_COMPILED", {})
    else:
        monkeypatch.setitem(fuse.settings, "enabled", False)
    vals = _values(30, seed=8)
    outs = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b)]
    fn, got, blocked, whole = _three(outs, vals)
    assert isinstance(fn, RowBlocked) and isinstance(fn.body, RowKernel)
    assert not fn.body.active and fn.body.state.kernel is False
    _same(got, whole)


def test_the_kernel_waits_for_hot_calls(small, monkeypatch):
    """The NumPy body for the first ``hot_calls`` calls of the compiled function
    (each of its blocks counted once), then the kernel; results equal throughout."""
    small(8)
    monkeypatch.setitem(fuse.settings, "hot_calls", 3)
    vals = _values(30, seed=9)
    outs = [PAPER, md.derive(PAPER, w)]
    fn = md.compile(outs)
    with rowblock.disabled():
        whole = md.compile(outs)(vals)
    seen = []
    for _ in range(4):
        got = fn(vals)
        _same(got, whole)
        seen.append(fn.specialised(vals).body.active)
    assert seen == [False, False, True, True]


def test_inputs_the_kernel_does_not_take_fall_back(small):
    """A kernel that raises on its inputs (here: a row input passed as a Python
    list) is dropped for the NumPy body, which answers."""
    small(8)
    vals = _values(30, seed=10)
    outs = [PAPER, md.derive(PAPER, w)]
    fn = md.compile(outs)
    fn(vals)
    spec = fn.specialised(vals)
    assert spec.body.active
    body = spec.body
    args = [vals["y"][:8].tolist(), float(vals["b"]), vals["X"][:8], vals["w"]]
    want = body.numpy_fn(*args)
    got = body(*args)
    assert not body.active
    _same(got, want)


# ------------------------------------------------------------ planted bugs
@pytest.mark.parametrize("bug", [
    ("    m = min(C, n - lo)", "    m = min(C, n - lo) - (1 if lo + C >= n else 0)"),
    ("s += X[i, j] * w[j]", "s -= X[i, j] * w[j]"),              # a short group's dot
    ("s2 += X[i + 2, j] * wj", "s2 += X[i + 1, j] * wj"),        # a group's dot
    ("+ v3 * X[i + 3, j]", "+ v3 * X[i + 2, j]"),                # a group's update
    ("for k0 in range(0, m + 4, 4):", "for k0 in range(0, m, 4):"),  # the last update
])
def test_a_planted_bug_is_caught(small, monkeypatch, bug):
    """The last row of each block dropped, or the dot product's sign flipped, in the
    generated source: the comparison with the NumPy body fails, so it can fail."""
    small(8)
    real = rowkernel._module

    def wrong(body, nargs, funcs):
        src = real(body, nargs, funcs)
        assert bug[0] in src
        return src.replace(bug[0], bug[1])

    monkeypatch.setattr(rowkernel, "_module", wrong)
    vals = _values(30, seed=11)
    outs = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b)]
    fn, got, blocked, whole = _three(outs, vals)
    assert _active(fn)
    with pytest.raises(AssertionError):
        _same(got, blocked)
