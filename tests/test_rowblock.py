"""The row-blocked code (``matdiff.compile.rowblock``: one pass over the data) gives
the outputs of the whole-array code, on the issue's three targets (the paper's loss,
logistic regression, an MLP's gradients), on random row-local expressions, and falls
back to the whole-array code, still correct, where the outputs are not row-local.

Block sizes are made small here (a few rows) so that the loop, its last shorter block
and the two-thread split all run on small arrays; a planted bug (mean's ``1/N`` taken
as the block's size) shows that the comparison catches a wrong blocked answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff.compile import rowblock
from matdiff.compile import threads as thr
from matdiff.compile.rowblock import Refused, RowBlocked, analyse
from rowlocal import LOGREG, PAPER, ROW_FNS, W, X, a, b, v, w, y  # noqa: F401
from rowlocal import mlp as _mlp
from rowlocal import paper_by_hand as _paper_by_hand
from rowlocal import rows as _rows
from rowlocal import same as _same
from rowlocal import values as _values

SIZES = {"d": 4, "k": 3}


@pytest.fixture
def blocks(monkeypatch):
    """``blocks(rows)``: every specialisation made after it is blocked (no size
    threshold) in blocks of ``rows`` rows, on ``threads`` threads."""
    def set_rows(rows: int, threads: int = 1) -> None:
        monkeypatch.setattr(rowblock, "MIN_BYTES", 0)
        monkeypatch.setattr(rowblock, "block_rows", lambda n, row_bytes, target: rows)
        monkeypatch.setattr(thr, "_THREADS", [threads])
        monkeypatch.setattr(rowblock, "MIN_SPLIT", 4)
    return set_rows


def _run(outputs, vals):
    """(blocked function, its outputs, the whole-array outputs) for ``vals``."""
    fn = md.compile(outputs)
    out = fn(vals)
    with rowblock.disabled():
        plain = md.compile(outputs)(vals)
    return fn.specialised(vals), out, plain


# ------------------------------------------------------------ the three targets
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N,rows", [(1000, 64), (37, 8), (40, 8), (9, 8)])
def test_paper_loss_blocked_equals_whole_array_and_hand(blocks, dtype, N, rows):
    """Value, gradients by w and b (sums) and by X (per row), N a multiple of the
    block or not, one full block and a short one."""
    blocks(rows)
    vals = _values(N, dtype)
    outs = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b), md.derive(PAPER, X)]
    fn, got, plain = _run(outs, vals)
    assert isinstance(fn, RowBlocked) and fn.rows == rows
    _same(got, plain, dtype)
    hand = _paper_by_hand({k: np.float64(x) if x.ndim == 0 else x.astype(np.float64)
                           for k, x in vals.items()})
    tol = 1e-12 if dtype == np.float64 else 1e-4
    for g, e in zip(got, hand):
        np.testing.assert_allclose(np.float64(g), e, rtol=tol, atol=tol)


def test_paper_loss_at_a_large_N_is_blocked_with_the_default_sizes():
    """No test knob: 3·10⁴ x 100 float64 (24 MB of X) takes the blocked path with
    blocks of about BLOCK_BYTES, and agrees with the code written by hand."""
    rng = np.random.default_rng(1)
    vals = {"X": rng.standard_normal((30_000, 100)), "y": rng.standard_normal(30_000),
            "w": rng.standard_normal(100), "b": np.float64(-0.2)}
    outs = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b)]
    fn, got, plain = _run(outs, vals)
    assert isinstance(fn, RowBlocked)
    assert 64 <= fn.rows < 30_000 and fn.rows * 100 * 8 <= 2 * rowblock.BLOCK_BYTES
    _same(got, plain)
    for g, e in zip(got, _paper_by_hand(vals)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logistic_regression_blocked(blocks, dtype):
    blocks(16)
    vals = _values(203, dtype)
    outs = [LOGREG, md.derive(LOGREG, w), md.hessian(LOGREG, w), md.derive(LOGREG, y)]
    fn, got, plain = _run(outs, vals)
    assert isinstance(fn, RowBlocked)
    _same(got, plain, dtype)
    # ∂/∂w mean(softplus(−y ⊙ Xw)) = −(1/N) Xᵀ (y ⊙ σ(−y ⊙ Xw))
    Xv, yv, wv = (vals[n].astype(np.float64) for n in "Xyw")
    s = 1 / (1 + np.exp(yv * (Xv @ wv)))
    np.testing.assert_allclose(np.float64(got[1]), -Xv.T @ (yv * s) / len(yv),
                               rtol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_mlp_gradients_within_a_batch(blocks, threads):
    """The softmax-cross-entropy MLP of benchmarks/compare.py: logsumexp over the
    classes is row-local (the row axis is a leading one)."""
    blocks(10, threads)
    loss, params = _mlp()
    rng = np.random.default_rng(3)
    B, I, H, K = 57, 6, 5, 4
    vals = {"X": rng.standard_normal((B, I)), "Y": np.eye(K)[rng.integers(0, K, B)],
            "W1": rng.standard_normal((I, H)), "b1": rng.standard_normal(H),
            "W2": rng.standard_normal((H, K)), "b2": rng.standard_normal(K)}
    outs = [loss] + [md.derive(loss, p) for p in params]
    fn, got, plain = _run(outs, vals)
    assert isinstance(fn, RowBlocked) and fn.dim == "B" and fn.nthreads == threads
    _same(got, plain)
    # the loss by hand
    A = vals["X"] @ vals["W1"] + vals["b1"]
    Z = np.maximum(A, 0) @ vals["W2"] + vals["b2"]
    lse = np.log(np.exp(Z).sum(1))
    np.testing.assert_allclose(got[0], np.mean(lse - (vals["Y"] * Z).sum(1)), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_threads_split_the_blocks(blocks, dtype, monkeypatch):
    blocks(7, threads=2)
    split = []
    real = RowBlocked._two_threads

    def counted(self, arrs, pre, starts, acc):
        split.append(len(starts))
        return real(self, arrs, pre, starts, acc)

    monkeypatch.setattr(RowBlocked, "_two_threads", counted)
    vals = _values(100, dtype)
    outs = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b), md.derive(PAPER, X),
            md.derive(PAPER, y)]
    fn, got, plain = _run(outs, vals)
    assert isinstance(fn, RowBlocked) and fn.nthreads == 2
    assert split == [15]  # 15 blocks of 7 rows: 8 here (the first too), 7 on the other
    _same(got, plain, dtype)
    monkeypatch.setattr(rowblock, "MIN_SPLIT", 32)  # too few blocks to split
    split.clear()
    _same(fn(*[vals[n] for n in md.compile(outs).inputs]), plain, dtype)
    assert split == []


def test_free_outputs_and_shared_outputs(blocks):
    """An output free of the rows (w·w) comes from the prologue; one output twice
    (a sum) is not added into itself."""
    blocks(5)
    vals = _values(23)
    g = md.derive(PAPER, w)
    fn, got, plain = _run([g, w @ w, g, PAPER], vals)
    assert isinstance(fn, RowBlocked)
    _same(got, plain)
    np.testing.assert_array_equal(got[0], got[2])


# ------------------------------------------------------------ what must fall back
REFUSED = {
    "square of a sum": md.sum(X @ w) ** 2,
    "X Xᵀ": md.tr(X @ md.outer(w, w) @ X.T @ md.matrix("A", "N", "N")),
    "yᵀXXᵀ relu(Xw)": y @ X @ X.T @ md.relu(X @ w),
    "softmax over N": md.softmax(X @ w) @ y,
    "centred rows": md.sum((X @ w - md.mean(X @ w)) ** 2),
    "log of a mean": md.log(md.mean(md.exp(X @ w))),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_not_row_local_falls_back_and_stays_correct(blocks, name):
    blocks(4)
    f = REFUSED[name]
    vals = _values(19)
    vals["A"] = np.random.default_rng(5).standard_normal((19, 19))
    vals = {n: vals[n] for n in f.variables()}
    with pytest.raises(Refused):
        analyse([f, md.derive(f, w)], "N")
    fn, got, plain = _run([f, md.derive(f, w)], vals)
    assert not isinstance(fn, RowBlocked)
    _same(got, plain)
    # and the fallback is the right answer (finite differences along w)
    e = np.random.default_rng(6).standard_normal(len(vals["w"]))
    h = 1e-6
    up = md.compile(f)({**vals, "w": vals["w"] + h * e})
    dn = md.compile(f)({**vals, "w": vals["w"] - h * e})
    np.testing.assert_allclose(got[1] @ e, (up - dn) / (2 * h), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_affine_in_the_sums(blocks, threads):
    """Σₙ zₙ + a·(w·w) and N·c beside a sum: the free part is added in the first
    block only (and N·c is Σₙ c, counted per block)."""
    blocks(6, threads)
    vals = _values(50)
    f = md.sum(X @ w) + a * (w @ w) + 3.0
    g = md.mean((md.tanh(X @ W) + v) @ v)   # ∂g/∂v = (Σₙ tanh(XW)ₙ + N v)/N + v
    outs = [f, md.derive(f, w), g, md.derive(g, v), md.derive(g, W)]
    fn, got, plain = _run(outs, {n: vals[n] for n in "XwaWv"})
    assert isinstance(fn, RowBlocked) and fn.first is not None
    _same(got, plain)
    Xv, wv = vals["X"], vals["w"]
    np.testing.assert_allclose(got[0], np.sum(Xv @ wv) + vals["a"] * wv @ wv + 3.0,
                               rtol=1e-12)
    T = np.tanh(Xv @ vals["W"])
    np.testing.assert_allclose(got[3], T.mean(0) + 2 * vals["v"], rtol=1e-12)
    # planted: the free part added in every block
    fn.body = fn.first
    with pytest.raises(AssertionError):
        _same(fn(*[vals[n] for n in md.compile(outs).inputs]), plain)


def test_a_sum_of_outer_products_is_row_local(blocks):
    """XᵀX = Σₙ xₙxₙᵀ is a sum over the rows: tr(A XᵀX) and its gradients block."""
    blocks(6)
    A = md.matrix("A", "d", "d")
    f = md.tr(A @ X.T @ X)
    vals = _values(31)
    vals["A"] = np.random.default_rng(2).standard_normal((4, 4))
    vals = {n: vals[n] for n in f.variables()}
    fn, got, plain = _run([f, md.derive(f, A), md.derive(f, X)], vals)
    assert isinstance(fn, RowBlocked)
    _same(got, plain)
    Xv = vals["X"]
    np.testing.assert_allclose(got[1], Xv.T @ Xv, rtol=1e-12)  # ∂ tr(A XᵀX)/∂A = XᵀX


def test_row_axis_not_first_is_not_blocked_over_it(blocks):
    """X stored as (d, N): the rows would be strided columns; the analysis looks
    only at first axes, and the code stays right."""
    blocks(4)
    Xt = md.matrix("X", "d", "N")
    f = md.sum(md.relu(Xt.T @ w))
    vals = {"X": np.random.default_rng(0).standard_normal((4, 30)),
            "w": np.arange(4.0)}
    fn, got, plain = _run([f, md.derive(f, w)], vals)
    assert not (isinstance(fn, RowBlocked) and fn.dim == "N")
    _same(got, plain)


def test_small_data_keeps_the_whole_array_code():
    """Below MIN_BYTES of row data blocking does not pay: no loop (logistic
    regression at 10⁴ x 100, 8 MB of X)."""
    rng = np.random.default_rng(4)
    vals = {"X": rng.standard_normal((10_000, 100)), "y": rng.standard_normal(10_000),
            "w": rng.standard_normal(100)}
    fn, got, plain = _run([LOGREG, md.derive(LOGREG, w)], vals)
    assert not isinstance(fn, RowBlocked)
    _same(got, plain)
    vals = _values(200)
    fn, got, plain = _run([PAPER, md.derive(PAPER, w)], vals)
    assert not isinstance(fn, RowBlocked)
    _same(got, plain)


def test_blocking_only_where_memory_bound():
    """The choice at the default thresholds, from the sizes alone (no data): the
    paper's loss at 10⁵ x 100 and an MLP 100-32-10 at a batch of 16384 are blocked;
    the same MLP at 200 rows (too little data), an MLP 784-128-10 at 4096 (GEMMs
    bound by arithmetic) and the logistic Hessian Xᵀdiag(s)X are not."""
    from matdiff.compile.backends import get_backend

    table = get_backend("numpy")

    def choice(outs, sizes):
        return rowblock.row_blocked(outs, md.compile(outs).inputs, sizes, table)

    paper = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b)]
    assert isinstance(choice(paper, {"N": 100_000, "d": 100}), RowBlocked)
    loss, params = _mlp()
    mlp = [loss] + [md.derive(loss, p) for p in params[:4]]
    assert isinstance(choice(mlp, {"B": 16384, "I": 100, "H": 32, "K": 10}), RowBlocked)
    assert choice(mlp, {"B": 200, "I": 100, "H": 32, "K": 10}) is None
    assert choice(mlp, {"B": 4096, "I": 784, "H": 128, "K": 10}) is None
    assert choice([md.hessian(LOGREG, w)], {"N": 100_000, "d": 100}) is None
    assert isinstance(choice([md.derive(LOGREG, w)], {"N": 100_000, "d": 100}),
                      RowBlocked)


def test_other_backends_keep_their_code(blocks):
    pytest.importorskip("jax")
    blocks(4)
    vals = _values(21)
    fn = md.compile([PAPER, md.derive(PAPER, w)], backend="jax")
    fn(vals)
    assert not isinstance(fn.specialised(vals), RowBlocked)


# ------------------------------------------------------------ a planted bug
def test_a_planted_bug_is_caught(blocks, monkeypatch):
    """mean's 1/N taken as 1/(block size): the comparison fails, so it can fail."""
    blocks(8)
    real = rowblock._rewrite

    def wrong(outputs, kinds, dim, sizes, taken):
        return real(outputs, kinds, dim, {**sizes, dim: 8}, taken)

    monkeypatch.setattr(rowblock, "_rewrite", wrong)
    vals = _values(40)
    fn, got, plain = _run([PAPER, md.derive(PAPER, w)], vals)
    assert isinstance(fn, RowBlocked)
    with pytest.raises(AssertionError):
        _same(got, plain)


# ------------------------------------------------------------ random row-local trees


@st.composite
def row_exprs(draw, depth: int = 3):
    """A random expression of shape (N,) or (N, k), local to the rows."""
    kind = draw(st.sampled_from(["n", "nk"]))
    return _rows(draw, kind, depth)


@st.composite
def row_losses(draw):
    """A linear combination of sums over the rows (row-local), or, one time in four,
    a function that is not (it must fall back)."""
    r1, r2 = draw(row_exprs()), draw(row_exprs())
    s1 = md.sum(r1) if r1.ndim == 1 else md.sum(r1 @ v)
    s2 = md.mean(r2) if r2.ndim == 1 else md.mean(r2 @ v)
    pick = draw(st.integers(0, 3))
    f = [s1 + 0.5 * s2, a * s1 - s2, md.sum(r1) if r1.ndim == 1 else s1 * a,
         md.tanh(s1) + s2][pick]
    return f, pick != 3


@settings(max_examples=40)
@given(row_losses(), st.sampled_from([(23, 5), (24, 6), (6, 4)]),
       st.sampled_from([np.float64, np.float32]), st.sampled_from([1, 2]))
def test_random_row_local_expressions(fl, nr, dtype, threads):
    f, local = fl
    N, rows = nr
    note(f"f = {f}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rowblock, "MIN_BYTES", 0)
        mp.setattr(rowblock, "block_rows", lambda n, row_bytes, target: rows)
        mp.setattr(thr, "_THREADS", [threads])
        mp.setattr(rowblock, "MIN_SPLIT", 4)
        wrt = [var for var in (X, y, w, b, a, W, v) if var.name in f.variables()]
        outs = [f] + [md.derive(f, var) for var in wrt]
        vals = _values(N, dtype, seed=N)
        vals = {n: vals[n] for n in f.variables()}
        fn, got, plain = _run(outs, vals)
    assert isinstance(fn, RowBlocked) == local
    _same(got, plain, dtype)


def test_thread_count_from_the_environment(monkeypatch):
    """Two threads only where BLAS was given two and two cores are there (read
    once); MATDIFF_ROWBLOCK_THREADS overrides, clamped to 1..2 (the count is the
    thread policy's, ``compile/threads.py``)."""
    monkeypatch.delenv("MATDIFF_THREADS", raising=False)
    for env, want in (("1", 1), ("2", 2), ("7", 2), ("0", 1)):
        monkeypatch.setattr(thr, "_THREADS", [])
        monkeypatch.setenv("MATDIFF_ROWBLOCK_THREADS", env)
        assert rowblock.threads() == want
    monkeypatch.delenv("MATDIFF_ROWBLOCK_THREADS")
    monkeypatch.setattr(thr, "_THREADS", [])
    monkeypatch.setattr(thr, "_blas_threads", lambda: 1)
    assert rowblock.threads() == 1


def test_a_product_no_order_keeps_within_the_largest_operand(blocks):
    """Σ_k (XW)³ ⊙ (XW diag(v)) over 5-row blocks: opt_einsum's exhaustive search
    found no contraction order whose intermediates stay within the largest operand
    (``memory_limit="max_input"``) and raised; the planner then searches without the
    limit (found by the hunt profile).  Blocked equals whole-array."""
    blocks(5)
    XW = X @ W
    f = md.sum(md.sum(X, 0) * w) + md.mean(md.sum(XW * XW * XW * (XW @ md.diag(v)), 1)) / 2
    vals = _values(23)
    outs = [f] + [md.derive(f, x) for x in (W, w, v)]
    fn, got, plain = _run(outs, vals)
    assert isinstance(fn, RowBlocked)
    _same(got, plain)
