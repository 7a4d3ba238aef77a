"""How fast a Numba loop reads X: the shapes of loop behind the row kernel
(``matdiff.compile.rowkernel``), each against one GEMV ``X @ w`` over the same X.

The paper's loss gradient ``mean((y − relu(Xw + b))²)`` by ``w`` and ``b`` reads each
row of X twice, for ``zᵢ = Xᵢ · w`` and for ``g += vᵢ Xᵢ``.  The floor is one pass
over X (one GEMV).  This script times, interleaved in one process on one core:

* ``gemv`` (``X @ w``, the floor) and ``gemv_T`` (``Xᵀy``);
* ``dot_rows`` / ``dot_rows_pf``: a dot product per row (``reassoc``), without and
  with software prefetch of the rows ahead (``matdiff.compile.prefetch``);
* ``dot4`` / ``dot4_pf``: four rows' dot products at once;
* ``three_pass``: the gradient as three passes over chunks of rows (dots, scalars,
  updates), the row kernel's shape before this one, with prefetch;
* ``lagged``: the gradient one row at a time, each row's update 8 rows later;
* ``groups``: the gradient in groups of four rows, each group's updates one group
  later (the generated kernel's shape, written by hand);
* ``kernel``: the generated row kernel, called on all rows;
* ``compiled``: ``md.value_and_grad`` (the kernel on), and ``compiled_numpy_body``
  (``rowkernel.disabled()``: the blocked NumPy body).

Every gradient is checked against NumPy's before it is timed.  Ratios are medians
over the rounds divided by ``gemv``'s median::

    python benchmarks/row_loops.py                 # float64, 10⁵ × 100
    python benchmarks/row_loops.py --dtype float32 --rounds 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from matdiff.compile.prefetch import prefetch  # noqa: E402

FM = {"reassoc", "contract"}


@numba.njit(fastmath=FM, nogil=True)
def _fetch(X, i):  # noqa: ANN001, ANN201 - ask for row i of X, a request a cache line
    for j in range(0, X.shape[1], 64 // X.itemsize):
        prefetch(X, i, j)


@numba.njit(fastmath=FM, nogil=True)
def _dot(X, i, w):  # noqa: ANN001, ANN201 - Xᵢ · w
    s = X.dtype.type(0)
    for j in range(w.shape[0]):
        s += X[i, j] * w[j]
    return s


@numba.njit(fastmath=FM, nogil=True)
def dot_rows(X, w, z, dist):  # noqa: ANN001, ANN201 - Numba functions
    n = X.shape[0]
    for i in range(n):
        if dist > 0 and i + dist < n:
            _fetch(X, i + dist)
        z[i] = _dot(X, i, w)


@numba.njit(fastmath=FM, nogil=True)
def _dot4(X, i, w):  # noqa: ANN001, ANN201 - four rows' dot products at once
    s0 = s1 = s2 = s3 = X.dtype.type(0)
    for j in range(w.shape[0]):
        wj = w[j]
        s0 += X[i, j] * wj
        s1 += X[i + 1, j] * wj
        s2 += X[i + 2, j] * wj
        s3 += X[i + 3, j] * wj
    return s0, s1, s2, s3


@numba.njit(fastmath=FM, nogil=True)
def dot4(X, w, z, dist):  # noqa: ANN001, ANN201
    n = X.shape[0]
    n4 = n - n % 4
    for i in range(0, n4, 4):
        if dist > 0 and i + dist + 4 <= n:
            for r in range(4):
                _fetch(X, i + dist + r)
        z[i], z[i + 1], z[i + 2], z[i + 3] = _dot4(X, i, w)
    for i in range(n4, n):
        z[i] = _dot(X, i, w)


@numba.njit(fastmath=FM, nogil=True)
def _row(zz, yi, c):  # noqa: ANN001, ANN201 - r, r², v of one row
    zero = zz - zz  # of zz's type (zz * 0 would be a float64 for a float32 zz)
    r = yi - (zz if zz > zero else zero)
    return r * r, (c * r if zz > zero else zero)


@numba.njit(fastmath=FM, nogil=True)
def _start(X):  # noqa: ANN001, ANN201 - n, d, the gradient's zeros, a zero, −2/n
    n, d = X.shape
    return n, d, np.zeros(d, X.dtype), X.dtype.type(0), X.dtype.type(-2.0 / n)


@numba.njit(fastmath=FM, nogil=True)
def _axpy(g, X, i, v):  # noqa: ANN001, ANN201 - g += v Xᵢ
    for j in range(g.shape[0]):
        g[j] += v * X[i, j]


@numba.njit(fastmath=FM, nogil=True)
def three_pass(X, y, w, b, m, dist):  # noqa: ANN001, ANN201
    n, d, g, zero, c = _start(X)
    z = np.empty(m, X.dtype)
    val = gb = zero
    for lo in range(0, n, m):
        hi = min(n, lo + m)
        for i in range(lo, hi):
            if i + dist < n:
                _fetch(X, i + dist)
            z[i - lo] = _dot(X, i, w)
        for i in range(lo, hi):
            r2, v = _row(z[i - lo] + b, y[i], c)
            val += r2
            gb += v
            z[i - lo] = v
        for i in range(lo, hi):
            _axpy(g, X, i, z[i - lo])
    return val / n, g, gb


@numba.njit(fastmath=FM, nogil=True)
def lagged(X, y, w, b, lag, dist):  # noqa: ANN001, ANN201
    n, d, g, zero, c = _start(X)
    ring = np.zeros(lag, X.dtype)
    val = gb = zero
    for i in range(n + lag):
        k = i - lag
        if k >= 0:
            _axpy(g, X, k, ring[k % lag])
        if i < n:
            if i + dist < n:
                _fetch(X, i + dist)
            r2, v = _row(_dot(X, i, w) + b, y[i], c)
            val += r2
            gb += v
            ring[i % lag] = v
    return val / n, g, gb


@numba.njit(fastmath=FM, nogil=True)
def groups(X, y, w, b, dist):  # noqa: ANN001, ANN201
    n, d, g, zero, c = _start(X)
    val = gb = zero
    p0 = p1 = p2 = p3 = zero
    n4 = n - n % 4
    for i in range(0, n4 + 4, 4):
        if i < n4 and i + dist + 4 <= n:
            for r in range(4):
                _fetch(X, i + dist + r)
        if i >= 4:
            k = i - 4
            for j in range(d):
                g[j] += p0 * X[k, j] + p1 * X[k + 1, j] + p2 * X[k + 2, j] \
                    + p3 * X[k + 3, j]
        if i < n4:
            s0, s1, s2, s3 = _dot4(X, i, w)
            r2, p0 = _row(s0 + b, y[i], c)
            val += r2
            gb += p0
            r2, p1 = _row(s1 + b, y[i + 1], c)
            val += r2
            gb += p1
            r2, p2 = _row(s2 + b, y[i + 2], c)
            val += r2
            gb += p2
            r2, p3 = _row(s3 + b, y[i + 3], c)
            val += r2
            gb += p3
    for i in range(n4, n):
        r2, p = _row(_dot(X, i, w) + b, y[i], c)
        val += r2
        gb += p
        _axpy(g, X, i, p)
    return val / n, g, gb


def numpy_grad(X, y, w, b):  # noqa: ANN001, ANN201
    z = X @ w + b
    r = y - np.maximum(z, 0)
    v = (-2.0 / len(y)) * (z > 0) * r
    return np.mean(r * r), X.T @ v, v.sum()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", help="write the medians and ratios here")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    import matdiff as md
    from matdiff.compile import fuse, rowkernel

    dt = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    N, d = args.rows, args.cols
    X = rng.standard_normal((N, d)).astype(dt)
    w = (rng.standard_normal(d) * 0.1).astype(dt)
    y = rng.standard_normal(N).astype(dt)
    b = dt(0.1)
    z = np.empty(N, dt)

    fuse.settings["hot_calls"] = 1
    Xv, yv, wv, bv = md.matrix("X", "N", "d"), md.vector("y", "N"), md.vector("w", "d"), \
        md.scalar("b")
    f = md.mean((yv - md.maximum(0, Xv @ wv + bv)) ** 2)
    vals = {"X": X, "y": y, "w": w, "b": b}
    compiled = md.value_and_grad(f, ["w", "b"])
    compiled(vals)
    compiled(vals)
    with rowkernel.disabled():
        numpy_body = md.value_and_grad(f, ["w", "b"])
        numpy_body(vals)
    spec = compiled.specialised(vals)
    body = getattr(spec, "body", None)  # none where the rows are too few to block
    kern = body.state.kernel if getattr(body, "active", False) else None

    ref = numpy_grad(*(a.astype(np.float64) for a in (X, y, w)), float(b))
    tol = 1e-9 if dt == np.float64 else 1e-4
    calls = {
        "gemv": lambda: X @ w,
        "gemv_T": lambda: X.T @ y,
        "dot_rows": lambda: dot_rows(X, w, z, 0),
        "dot_rows_pf": lambda: dot_rows(X, w, z, 16),
        "dot4": lambda: dot4(X, w, z, 0),
        "dot4_pf": lambda: dot4(X, w, z, 16),
        "three_pass": lambda: three_pass(X, y, w, b, 160, 8),
        "lagged": lambda: lagged(X, y, w, b, 8, 12),
        "groups": lambda: groups(X, y, w, b, 16),
        "compiled": lambda: compiled(vals),
        "compiled_numpy_body": lambda: numpy_body(vals),
    }
    if kern is not None:
        kargs = (y, float(b), X, w)
        calls["kernel"] = lambda: kern(*kargs)
    for name in ("three_pass", "lagged", "groups"):
        val, g, gb = calls[name]()
        np.testing.assert_allclose([val, gb], [ref[0], ref[2]], rtol=tol)
        np.testing.assert_allclose(g, ref[1], rtol=tol, atol=tol)
    for name in ("compiled", "compiled_numpy_body"):
        val, (g, gb) = calls[name]()
        np.testing.assert_allclose(g, ref[1], rtol=tol, atol=tol)
    names = list(calls)
    for fn in calls.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            calls[k]()
            times[k].append(time.perf_counter() - t)
    floor = float(np.median(times["gemv"]))
    rows = {k: {"median_s": float(np.median(v)), "ratio_to_gemv": float(np.median(v)) / floor}
            for k, v in times.items()}
    print(f"{args.dtype}, X {N} x {d}, {args.rounds} interleaved rounds, "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.2f}")
    for k, r in rows.items():
        print(f"  {k:20s} {r['median_s'] * 1e3:8.3f} ms   {r['ratio_to_gemv']:5.2f}x one GEMV")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"dtype": args.dtype, "shape": [N, d], "rounds": args.rounds,
                       "load": os.getloadavg()[0], "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
