"""The thread policy of the compiled NumPy code (``matdiff.compile.threads``): every
two-thread path gives the numbers of the one-thread code.

The paths: BLAS held to one thread (:class:`OneBlasThread`), the batch in two halves
on two Python threads (a :class:`RowBlocked` of two blocks), and the row-blocked loop
with its blocks split over two threads.  Each is forced here with the policy's knobs
(the sizes are small), on the paper's loss, logistic regression, an MLP (and its
training step) and random row-local expressions, in float64 and float32, against the
same outputs compiled for one thread with blocking off.  A planted bug (the second
half's sums dropped) shows the comparison fails on a wrong answer.  No timings:
speed is measured in ``benchmarks/`` only."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff.compile import rowblock
from matdiff.compile import threads as thr
from matdiff.compile.rowblock import RowBlocked
from matdiff.compile.threads import OneBlasThread, Tuned
from rowlocal import LOGREG, PAPER, W, X, a, b, v, values, w, y
from rowlocal import mlp as _mlp
from rowlocal import rows as _rows
from rowlocal import same as _same


def _values(N: int, dtype=np.float64, seed: int = 0, d: int = 5, k: int = 3) -> dict:
    return values(N, dtype, seed, d, k)


def _mlp_values(B: int, dtype=np.float64, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    I, H, K = 6, 5, 4
    vals = {"X": rng.standard_normal((B, I)), "Y": np.eye(K)[rng.integers(0, K, B)],
            "W1": rng.standard_normal((I, H)), "b1": rng.standard_normal(H) * 0.1,
            "W2": rng.standard_normal((H, K)), "b2": rng.standard_normal(K) * 0.1}
    return {n: np.asarray(x, dtype=dtype) for n, x in vals.items()}


@pytest.fixture
def seen(monkeypatch):
    """The threads that ran blocks of a :class:`RowBlocked` (their idents)."""
    idents: set[int] = set()
    real = RowBlocked._run

    def recorded(self, *args, **kw):
        idents.add(threading.get_ident())
        return real(self, *args, **kw)

    monkeypatch.setattr(RowBlocked, "_run", recorded)
    return idents


def _one_thread(outputs, vals):
    """The outputs compiled for one thread, blocking off: the reference."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(thr, "_THREADS", [1])
        with rowblock.disabled():
            fn = md.compile(outputs)
            return fn.specialised(vals), fn(vals)


def _two_threads(outputs, vals, mode: str):
    """The outputs compiled for two threads with the policy forced to ``mode``:
    ``"halves"``, ``"one_blas"``, ``"blocks"`` (the row loop, split)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(thr, "_THREADS", [2])
        mp.setattr(thr, "SMALL_MACS", 0)
        mp.setattr(thr, "GEMM_THREADED", 0)
        mp.setattr(thr, "MIN_SPLIT_MACS", 0)
        if mode == "halves":
            mp.setattr(thr, "_MODE", ["halves"])
            mp.setattr(thr, "SPLIT_INTENSITY", -1.0)
            mp.setattr(thr, "MIN_HALF_ROWS", 1)
        elif mode == "one_blas":
            mp.setattr(thr, "_MODE", ["one_blas"])
        elif mode == "auto":
            mp.setattr(thr, "_MODE", ["auto"])
            mp.setattr(thr, "SPLIT_INTENSITY", -1.0)
            mp.setattr(thr, "MIN_HALF_ROWS", 1)
        else:
            mp.setattr(rowblock, "MIN_BYTES", 0)
            mp.setattr(rowblock, "block_rows", lambda n, row_bytes, target: 4)
            mp.setattr(rowblock, "MIN_SPLIT", 4)
        fn = md.compile(outputs)
        if mode != "blocks":
            # the cache-block loop refused (it would be chosen first): its size check
            mp.setattr(rowblock, "MIN_BYTES", 1 << 60)
        spec = fn.specialised(vals)
        return spec, fn(vals)


MODES = ["halves", "one_blas", "blocks", "auto"]
KIND = {"halves": RowBlocked, "one_blas": OneBlasThread, "blocks": RowBlocked,
        "auto": Tuned}


def _check(outputs, vals, mode, dtype, seen=None):
    spec, got = _two_threads(outputs, vals, mode)
    assert isinstance(spec, KIND[mode]), type(spec)
    if mode == "auto":  # every candidate, in turn, then the chosen one
        assert set(spec.candidates) == {"one_blas", "blas", "halves"}
        ran: set[str] = set()
        for k, c in list(spec.candidates.items()):
            spec.candidates[k] = lambda *a, k=k, c=c: (ran.add(k), c(*a))[1]
        names = md.compile(outputs).inputs
        for _ in range(3 * thr.TUNE_CALLS + 2):
            _same(spec(*[vals[n] for n in names]), list(got), dtype)
        assert ran == set(spec.candidates)
    if mode == "halves":
        assert spec.halves and len(spec.starts) == 2 and spec.nthreads == 2
    if mode == "blocks":
        assert not spec.halves and spec.nthreads == 2
    ref_fn, want = _one_thread(outputs, vals)
    assert not isinstance(ref_fn, (RowBlocked, OneBlasThread))
    _same(got, want, dtype)
    if seen is not None and mode != "one_blas":
        assert len(seen) == 2  # the blocks ran on two threads


# ------------------------------------------------------------ the targets
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("N", [40, 41])
def test_paper_loss_on_two_threads(mode, dtype, N, seen):
    """Value, ∇w, ∇b (sums) and ∇X (rows), N even and odd (halves of 21 and 20)."""
    vals = _values(N, dtype)
    outs = [PAPER, md.derive(PAPER, w), md.derive(PAPER, b), md.derive(PAPER, X)]
    _check(outs, vals, mode, dtype, seen)
    # and the numbers themselves, by hand: ∂f/∂z = (2/N)(relu(z) − y) ⊙ step(z)
    _, got = _two_threads(outs, vals, mode)
    X0, y0, w0, b0 = (vals[n].astype(np.float64) for n in "Xywb")
    z = X0 @ w0 + b0
    r = np.maximum(z, 0) - y0
    gz = 2 / N * r * (z > 0)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    for g, e in zip(got, [np.mean(r * r), X0.T @ gz, gz.sum(), np.outer(gz, w0)]):
        np.testing.assert_allclose(np.float64(g), e, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
def test_logistic_regression_on_two_threads(mode, dtype, seen):
    vals = _values(67, dtype)
    vals = {n: vals[n] for n in "Xyw"}
    outs = [LOGREG, md.derive(LOGREG, w), md.hessian(LOGREG, w)]
    _check(outs, vals, mode, dtype, seen)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
def test_mlp_on_two_threads(mode, dtype, seen):
    loss, wrt = _mlp()
    outs = [loss] + [md.derive(loss, p) for p in wrt]
    _check(outs, _mlp_values(33, dtype), mode, dtype, seen)


def test_affine_outputs_keep_their_free_part_once(seen):
    """``Σₙ zₙ + c``: the first half adds ``c``, the second does not."""
    f = md.sum(X @ w) + b * b + md.sum(w)
    outs = [f, md.derive(f, w), md.derive(f, b)]
    _check(outs, {n: x for n, x in _values(30).items() if n in "Xwb"}, "halves",
           np.float64, seen)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_training_step_on_two_threads_takes_the_one_thread_steps(loss):
    """md.nn.TrainStep on two threads (its compiled function in halves, BLAS held
    for the whole step) moves the parameters as on one thread."""
    rng = np.random.default_rng(5)
    X0 = rng.standard_normal((48, 7))
    T0 = rng.integers(0, 3, 48) if loss == "cross_entropy" else \
        rng.standard_normal((48, 3))

    def train(n_threads: int, split: bool) -> tuple[list[float], dict]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(thr, "_THREADS", [n_threads])
            if split:
                mp.setattr(thr, "_MODE", ["halves"])
                mp.setattr(thr, "SMALL_MACS", 0)
                mp.setattr(thr, "GEMM_THREADED", 0)
                mp.setattr(thr, "MIN_SPLIT_MACS", 0)
                mp.setattr(thr, "SPLIT_INTENSITY", -1.0)
                mp.setattr(thr, "MIN_HALF_ROWS", 1)
                mp.setattr(thr, "DOT_THREADED", 0)
            model = md.nn.MLP([7, 6, 3], "relu", seed=0)
            step = md.nn.TrainStep(model, loss, "adam", lr=0.01)
            losses = [step(X0, T0) for _ in range(5)]
            fn = next(iter(step._fns.values()))
            assert isinstance(fn, RowBlocked) == split and step._hold == split
            return losses, {k: p.copy() for k, p in model.state_dict().items()}

    l1, p1 = train(1, False)
    l2, p2 = train(2, True)
    assert l1[-1] < l1[0]  # it trains
    np.testing.assert_allclose(l2, l1, rtol=1e-10)
    for k in p1:
        np.testing.assert_allclose(p2[k], p1[k], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ random row-local trees


@st.composite
def row_losses(draw):
    r1, r2 = _rows(draw, "n", 3), _rows(draw, draw(st.sampled_from(["n", "nk"])), 3)
    s2 = md.mean(r2) if r2.ndim == 1 else md.mean(r2 @ v)
    return draw(st.sampled_from([md.sum(r1) + 0.5 * s2, a * md.sum(r1) - s2]))


@settings(max_examples=30, deadline=None)
@given(row_losses(), st.sampled_from([np.float64, np.float32]), st.sampled_from(MODES),
       st.sampled_from([17, 24]))
def test_random_row_local_expressions_on_two_threads(f, dtype, mode, N):
    note(f"f = {f}")
    wrt = [var for var in (X, y, w, b, a, W, v) if var.name in f.variables()]
    outs = [f] + [md.derive(f, var) for var in wrt]
    vals = _values(N, dtype, seed=N)
    vals = {n: vals[n] for n in f.variables()}
    _check(outs, vals, mode, dtype)


# ------------------------------------------------------------ a planted bug
def test_a_dropped_half_is_caught(monkeypatch):
    """The second half's partial sums dropped: the comparison fails (so it can)."""
    def wrong(self, arrs, pre, starts, acc):
        half = (len(starts) + 1) // 2
        self._run(arrs, pre, starts[:half], acc, self.first)
        self._run(arrs, pre, starts[half:], [None] * len(acc), rows_out=acc)

    monkeypatch.setattr(RowBlocked, "_two_threads", wrong)
    outs = [PAPER, md.derive(PAPER, w)]
    with pytest.raises(AssertionError):
        _check(outs, _values(40), "halves", np.float64)


# ------------------------------------------------------------ the policy's choices
@pytest.mark.parametrize("policy", thr.MODES)
def test_the_policy_chooses(policy, monkeypatch):
    """With the default knobs on two threads: a small problem runs as generated
    (OpenBLAS keeps it on one thread); under ``"one_blas"`` a GEMV-bound gradient
    (logistic regression), a GEMM-bound MLP and a product that is not row-local
    (``AAᵀ``) run with one BLAS thread; under ``"halves"`` the MLP is split in
    halves, the others still hold BLAS; under ``"off"`` nothing changes."""
    monkeypatch.setattr(thr, "_THREADS", [2])
    monkeypatch.setattr(thr, "_MODE", [policy])
    if thr._blas_libs() is None:  # pragma: no cover - threadpoolctl is installed here
        pytest.skip("threadpoolctl cannot see a BLAS")
    held = {"auto": Tuned, "off": type(lambda: 0)}.get(policy, OneBlasThread)
    big = _values(3000, d=50)
    lr = md.compile([LOGREG, md.derive(LOGREG, w)])
    assert type(lr.specialised({n: big[n] for n in "Xyw"})) is held
    loss, wrt = _mlp()
    rng = np.random.default_rng(0)
    mv = {"X": rng.standard_normal((256, 300)), "Y": np.eye(10)[rng.integers(0, 10, 256)],
          "W1": rng.standard_normal((300, 200)), "b1": np.zeros(200),
          "W2": rng.standard_normal((200, 10)), "b2": np.zeros(10)}
    mlp = md.compile([loss] + [md.derive(loss, p) for p in wrt[:4]])
    spec = mlp.specialised(mv)
    if policy == "halves":
        assert isinstance(spec, RowBlocked) and spec.halves
    else:
        assert type(spec) is held
    if policy == "auto":  # the halves are a candidate where the products are GEMMs
        assert set(spec.candidates) == {"one_blas", "blas", "halves"}
        assert set(lr.specialised({n: big[n] for n in "Xyw"}).candidates) == {
            "one_blas", "blas"}
    _same(mlp(mv), _one_thread([loss] + [md.derive(loss, p) for p in wrt[:4]], mv)[1])
    small = md.compile([LOGREG, md.derive(LOGREG, w)])
    sv = _values(20)
    assert not isinstance(small.specialised({n: sv[n] for n in "Xyw"}),
                          (OneBlasThread, RowBlocked))
    A = md.matrix("A", "n", "m")
    gram = md.compile(md.sum(md.tanh(A @ A.T)))
    gv = {"A": rng.standard_normal((300, 300))}
    assert type(gram.specialised(gv)) is held
    np.testing.assert_allclose(gram(gv), np.tanh(gv["A"] @ gv["A"].T).sum(), rtol=1e-12)


def test_policy_from_the_environment(monkeypatch):
    for env, want in (("halves", "halves"), ("OFF", "off"), ("", "auto"),
                      ("nonsense", "auto"), ("one_blas", "one_blas"), ("auto", "auto")):
        monkeypatch.setattr(thr, "_MODE", [])
        monkeypatch.setenv("MATDIFF_THREAD_POLICY", env)
        assert thr.mode() == want
    monkeypatch.setattr(thr, "_THREADS", [2])
    monkeypatch.setattr(thr, "_MODE", ["off"])
    assert not thr.holds()


def test_the_tuner_keeps_the_fastest_and_measures_again(monkeypatch):
    """A fake clock: each candidate advances it by its cost.  The cheapest is
    chosen, one 4x slower than another's median is dropped after one call, and
    SLOW_RUN slow calls in a row of the chosen one (the load changed; one is noise),
    or RETUNE_CALLS calls, start a new measurement."""
    now = [0.0]
    cost = {"a": 2.0, "b": 1.0, "c": 100.0}
    calls: list[str] = []

    def cand(name):
        def run(x):
            calls.append(name)
            now[0] += cost[name]
            return (x,)
        return run

    monkeypatch.setattr(thr, "TUNE_CALLS", 3)
    monkeypatch.setattr(thr, "RETUNE_CALLS", 50)
    monkeypatch.setattr(thr, "RETUNE_S", 1e9)
    t = Tuned({k: cand(k) for k in "abc"}, clock=lambda: now[0])
    for _ in range(7):
        assert t(1) == (1,)
    assert calls.count("c") == 1 and t.chosen == "b"  # c dropped at once
    assert sorted(calls) == ["a"] * 3 + ["b"] * 3 + ["c"]  # in turn, c left out
    calls.clear()
    for _ in range(10):
        t(1)
    assert calls == ["b"] * 10
    cost["b"] = 10.0  # b is now 10x its median: after SLOW_RUN calls, measured again
    t(1)
    assert t.chosen == "b"  # one slow call is noise
    cost["b"] = 1.0
    t(1)
    cost["b"] = 10.0
    for _ in range(thr.SLOW_RUN - 1):
        t(1)
        assert t.chosen == "b"
    t(1)
    assert t.chosen is None
    for _ in range(6):
        t(1)
    assert t.chosen == "a"
    for _ in range(50):
        t(1)
    assert t.chosen is None  # RETUNE_CALLS calls: measured again


def test_a_tuned_function_called_from_several_threads():
    """Calls from four threads at once while it measures, then after: every result
    is right, and the measurement ends with a choice."""
    import concurrent.futures

    t = Tuned({"a": lambda x: (x * 2,), "b": lambda x: (x + x,)})
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda i: t(i), range(400)))
    assert outs == [(2 * i,) for i in range(400)]
    for i in range(4 * thr.TUNE_CALLS):
        assert t(i) == (2 * i,)
    assert t.chosen in ("a", "b") or t.times  # chosen, or measuring again


def test_products_cost_a_gemv_and_a_gemm():
    # X w: N·d multiply-adds over (N·d + d + N)·8 bytes; X W: N·d·k over (N·d + d·k + N·k)·8
    assert thr.products([X @ w], {"N": 100, "d": 10}, 8) == (1000.0, 8.0 * 1110, False)
    assert thr.products([X @ W, X @ W], {"N": 100, "d": 10, "k": 4}, 4) == (
        4000.0, 4.0 * (1000 + 40 + 400), False)
    # OpenBLAS's own thresholds: a GEMV from 9216 entries, a GEMM from 262144 macs
    assert thr.products([X @ w], {"N": 1000, "d": 10}, 8)[2]
    assert not thr.products([X @ W], {"N": 1000, "d": 10, "k": 26}, 8)[2]
    assert thr.products([X @ W], {"N": 1000, "d": 10, "k": 27}, 8)[2]


# ------------------------------------------------------------ BLAS and threadpoolctl
def test_one_blas_thread_holds_and_restores():
    libs = thr._blas_libs()
    if libs is None:  # pragma: no cover
        pytest.skip("threadpoolctl cannot see a BLAS")
    before = [lc.get_num_threads() for lc in libs]
    with thr.one_blas_thread():
        assert all(lc.get_num_threads() == 1 for lc in libs)
        with thr.one_blas_thread():  # nested: left as it is
            assert all(lc.get_num_threads() == 1 for lc in libs)
        assert all(lc.get_num_threads() == 1 for lc in libs)
    assert [lc.get_num_threads() for lc in libs] == before
    with pytest.raises(ZeroDivisionError), thr.one_blas_thread():
        1 / 0  # noqa: B018 - an error inside: restored all the same
    assert [lc.get_num_threads() for lc in libs] == before


def test_without_threadpoolctl_everything_runs_as_generated(monkeypatch):
    """threadpoolctl missing: one thread (it cannot tell BLAS's threads), no hold,
    and a policy forced to two threads still returns the code as it is."""
    monkeypatch.setattr(thr, "_threadpoolctl", lambda: None)
    monkeypatch.setattr(thr, "_BLAS", [])
    monkeypatch.setattr(thr, "_THREADS", [])
    monkeypatch.delenv("MATDIFF_THREADS", raising=False)
    monkeypatch.delenv("MATDIFF_ROWBLOCK_THREADS", raising=False)
    assert thr.threads() == 1
    with thr.one_blas_thread():
        pass
    monkeypatch.setattr(thr, "_THREADS", [2])
    monkeypatch.setattr(thr, "SMALL_MACS", 0)
    monkeypatch.setattr(thr, "GEMM_THREADED", 0)
    vals = _values(3000, d=50)
    vals = {n: vals[n] for n in "Xyw"}
    fn = md.compile([LOGREG, md.derive(LOGREG, w)])
    spec = fn.specialised(vals)
    assert not isinstance(spec, (OneBlasThread, RowBlocked))
    _same(fn(vals), _one_thread([LOGREG, md.derive(LOGREG, w)], vals)[1])


def test_thread_count_from_the_environment(monkeypatch):
    """Two threads only where BLAS was given two and two cores are there (read
    once); MATDIFF_THREADS (or MATDIFF_ROWBLOCK_THREADS) overrides, clamped."""
    monkeypatch.delenv("MATDIFF_ROWBLOCK_THREADS", raising=False)
    for env, want in (("1", 1), ("2", 2), ("7", 2), ("0", 1)):
        monkeypatch.setattr(thr, "_THREADS", [])
        monkeypatch.setenv("MATDIFF_THREADS", env)
        assert thr.threads() == want
    monkeypatch.delenv("MATDIFF_THREADS")
    monkeypatch.setattr(thr, "_THREADS", [])
    monkeypatch.setenv("MATDIFF_ROWBLOCK_THREADS", "2")
    assert thr.threads() == 2
    monkeypatch.delenv("MATDIFF_ROWBLOCK_THREADS")
    monkeypatch.setattr(thr, "_THREADS", [])
    monkeypatch.setattr(thr, "_blas_threads", lambda: 1)
    assert thr.threads() == 1


def test_pair_runs_both_and_raises_either_error():
    assert thr.pair(lambda: threading.get_ident(), lambda: threading.get_ident())[0] \
        == threading.get_ident()
    idents = thr.pair(lambda: threading.get_ident(), lambda: threading.get_ident())
    assert idents[0] != idents[1]
    with pytest.raises(KeyError):
        thr.pair(lambda: 1, lambda: {}["x"])
    with pytest.raises(ZeroDivisionError):
        thr.pair(lambda: 1 / 0, lambda: 2)
    # a pair inside a pair: the inner one runs here, one job after the other
    inner = thr.pair(lambda: thr.pair(lambda: 1, lambda: 2), lambda: 3)
    assert inner == ((1, 2), 3)
    assert thr.pair(lambda: 4, lambda: 5) == (4, 5)  # the worker is free again
