"""Reductions written for speed in the NumPy backend: sums over one axis of a float
matrix as a product with ones (``backends.sum_by_gemv``), and logsumexp's and
softmax's row maxima and row sums (``matrix_functions.row_max``, ``row_sum``): the
maxima of short C-ordered rows down the columns, the sums as a GEMV.

Checks: each fires where it says and nowhere else, and gives the plain reduction's
numbers (the same maxima exactly, sums to rounding) on C- and F-ordered arrays,
several axes, empty and non-finite rows, float32; the compiled code that uses them
equals the interpreter.  No timings here.
"""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from matdiff.compile.backends import get_backend, sum_by_gemv
from matdiff.compile.evaluate import interpret
from matdiff.expr import matrix_functions as mf

SHAPES = [(391, 10), (391, 32), (391, 33), (4096, 10), (5, 3), (2, 391, 10), (0, 4),
          (4, 0), (1500, 1), (7,)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("order", "CF")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_max_and_row_sum_equal_numpy(shape, order, dtype):
    rng = np.random.default_rng(len(shape) + sum(shape))
    a = np.asarray(rng.standard_normal(shape) * 3, dtype=dtype, order=order)
    want_max = np.maximum.reduce(a, axis=-1, keepdims=True, initial=-np.inf)
    got = mf.row_max(a)
    assert got.shape == want_max.shape and got.dtype == a.dtype
    np.testing.assert_array_equal(got, want_max)  # a maximum has no rounding
    got = mf.row_sum(a)
    assert got.dtype == a.dtype
    np.testing.assert_allclose(got, np.add.reduce(a, axis=-1, dtype=np.float64),
                               rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-5)


def test_where_the_row_rules_fire():
    c = np.zeros((391, 10))
    assert mf.short_rows(c) and mf.rows_by_gemv(c)
    assert mf.short_rows(np.zeros((2, 391, 10)))
    assert not mf.short_rows(np.asfortranarray(c))     # F-ordered: NumPy's is fast
    assert not mf.short_rows(np.zeros((391, 33)))      # long rows
    assert not mf.short_rows(np.zeros((5, 10)))        # small
    assert not mf.short_rows(np.zeros((4096, 0)))      # empty rows: -inf, NumPy's way
    assert not mf.short_rows(np.zeros(4096))           # one row
    assert mf.rows_by_gemv(np.zeros((100, 128)))
    assert not mf.rows_by_gemv(np.zeros((100, 129)))   # NumPy's pairwise sum is kept
    assert mf.rows_by_gemv(np.zeros((1000, 100)).T)    # strided rows: not pairwise
    assert not mf.rows_by_gemv(np.zeros(4096))
    assert not mf.rows_by_gemv(np.zeros((5, 10)))
    assert not mf.rows_by_gemv(np.zeros((391, 10), dtype=np.int64))


def test_non_finite_rows():
    a = np.random.default_rng(1).standard_normal((391, 10))
    a[3, 4], a[5, :], a[6, 2], a[7, :] = np.nan, -np.inf, np.inf, np.inf
    assert mf.short_rows(a)
    want = np.maximum.reduce(a, axis=-1, keepdims=True, initial=-np.inf)
    np.testing.assert_array_equal(mf.row_max(a), want)
    with np.errstate(all="ignore"):
        lse = mf.stable_logsumexp(a)
        sm = mf._np_softmax(a)
    assert np.isnan(lse[3]) and lse[5] == -np.inf and lse[6] == np.inf
    ok = np.isfinite(a).all(axis=1)
    m = a[ok].max(1, keepdims=True)
    np.testing.assert_allclose(lse[ok], np.log(np.exp(a[ok] - m).sum(1)) + m[:, 0],
                               rtol=1e-14)
    e = np.exp(a[ok] - m)
    np.testing.assert_allclose(sm[ok], e / e.sum(1, keepdims=True), rtol=1e-14)


@pytest.mark.parametrize("shape,axes", [((391, 32), (0,)), ((391, 32), (1,)),
                                        ((64, 1000), (1,)), ((1000, 64), (0,)),
                                        ((4096, 10), (0,)), ((4096, 10), (-1,)),
                                        ((10, 4096), (-2,)), ((391, 32), (0, 1)),
                                        ((5, 3), (0,)), ((3, 391, 10), (0,)),
                                        ((4096,), (0,))])
@pytest.mark.parametrize("order", "CF")
def test_the_tables_sum_equals_numpy(shape, axes, order):
    t = get_backend("numpy", "float64")
    a = np.asarray(np.random.default_rng(2).standard_normal(shape), order=order)
    # a contiguous run longer than 128 keeps NumPy's pairwise sum
    fires = len(shape) == 2 and len(axes) == 1 and a.size >= 1024 and not (
        a.strides[axes[0]] == 8 and shape[axes[0]] > 128)
    assert sum_by_gemv(a, axes) is fires
    np.testing.assert_allclose(t.sum(a, axes), np.add.reduce(a, axes), rtol=1e-13,
                               atol=1e-12)
    assert not sum_by_gemv(a.astype(np.int64), axes)
    t32 = get_backend("numpy", "float32")
    a32 = a.astype(np.float32)
    assert t32.sum(a32, axes).dtype == np.float32
    np.testing.assert_allclose(t32.sum(a32, axes), np.add.reduce(a, axes), rtol=1e-5,
                               atol=1e-4)


def test_compiled_softmax_cross_entropy_gradient_equals_the_interpreter():
    # column sums (the biases' gradients), logsumexp over short rows, a softmax
    rng = np.random.default_rng(3)
    X, Y = md.matrix("X", "B", "I"), md.matrix("Y", "B", "K")
    W, b = md.matrix("W", "I", "K"), md.vector("b", "K")
    Z = X @ W + b
    f = md.mean(md.logsumexp(Z) - md.sum(Y * Z, 1))
    vals = {"X": rng.standard_normal((600, 20)), "Y": np.eye(10)[rng.integers(0, 10, 600)],
            "W": rng.standard_normal((20, 10)), "b": rng.standard_normal(10)}
    outs = [f, md.derive(f, W), md.derive(f, b), md.softmax(Z)]
    c = md.compile(outs)
    assert "xp.sum(" in c.source and "xp.logsumexp(" in c.source
    for got, e in zip(c(vals), outs, strict=True):
        np.testing.assert_allclose(got, interpret(e, vals), rtol=1e-12, atol=1e-15)
