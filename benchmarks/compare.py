"""matdiff's compiled derivatives side by side with NumPy, JAX, PyTorch and autograd.

    python benchmarks/compare.py            # full sizes (issue 4), a few minutes+
    python benchmarks/compare.py --quick    # small sizes, under 2 minutes
    python benchmarks/compare.py --threads 2 --json out.json --only hess_xAx
    python benchmarks/compare.py --only fused   # fused element-wise chains (issue 16)

Every library runs in this one process, float64, with the same thread count (set
through OMP/MKL/OpenBLAS env variables before numpy is imported, torch.set_num_threads
and XLA's flags).  For each problem and size: each contender's result is checked
against matdiff's before timing; warm-up and compilation are excluded from the timed
calls; the median and min of many repeats are reported, with ratios
``matdiff / peer`` (< 1 means matdiff is faster).  matdiff's derive+compile time
(symbolic derivation, code generation and the first call) and JAX's jit time (trace,
compile and the first call) are reported separately.  matdiff's fused element-wise
kernels (matdiff.compile.fuse) are compiled at the first call here, not after 100
calls, so their compile time is in derive+compile; the ``fused_*`` rows also time the
same code unfused, and time all contenders in interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time


def _set_threads(n: int) -> None:
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[k] = str(n)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                               + ("false" if n == 1 else "true")
                               + f" intra_op_parallelism_threads={n}").strip()
    # XLA sizes its CPU thread pool from the cores it may run on and ignores the flags
    # above (measured: jax.jit GEMMs used two cores under them), so the process is
    # pinned to n cores: every contender then runs on the same n cores.
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(cores[:n]))


def main() -> None:  # noqa: C901 - one table of problems
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write results here (default: "
                    "benchmarks/results[-quick].json)")
    ap.add_argument("--only", default=None, help="comma-separated problem names")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    _set_threads(args.threads)

    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    import matdiff as md
    from matdiff.compile import fuse

    # fused element-wise kernels compiled at the first call (the default waits for a
    # line's 100th call): every row times matdiff's steady state, and the kernels'
    # compile time is in the derive+compile column
    fuse.settings["hot_calls"] = 1

    peers_avail = {}
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        peers_avail["jax"] = jax.__version__
    except ImportError:  # pragma: no cover
        jax = None
    try:
        import torch
        import torch.func as tf

        torch.set_num_threads(args.threads)
        peers_avail["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        torch = None
    try:
        import autograd
        import autograd.numpy as anp

        peers_avail["autograd"] = getattr(autograd, "__version__", "installed")
    except ImportError:  # pragma: no cover
        autograd = None

    quick = args.quick
    reps = args.repeats or (7 if quick else 30)
    rng = np.random.default_rng(0)

    def block(out):
        if jax is not None:
            jax.block_until_ready(out)
        return out

    def timeit(fn, budget=2.0 if not quick else 0.3):
        block(fn())
        block(fn())
        times = []
        start = time.perf_counter()
        for _ in range(reps):
            t = time.perf_counter()
            block(fn())
            times.append(time.perf_counter() - t)
            if time.perf_counter() - start > budget and len(times) >= 3:
                break
        return float(np.median(times)), float(np.min(times)), len(times)

    def to_np(x):
        if isinstance(x, (tuple, list)):
            return [to_np(v) for v in x]
        if isinstance(x, dict):
            return [to_np(v) for v in x.values()]
        if hasattr(x, "toarray"):
            x = x.toarray()
        if torch is not None and isinstance(x, torch.Tensor):
            return x.detach().numpy()
        return np.asarray(x)

    def flat(x):
        out = []
        x = to_np(x)
        if isinstance(x, list):
            for v in x:
                out.extend(flat(v))
        else:
            out.append(np.asarray(x, dtype=np.float64))
        return out

    def close(a, b):
        fa, fb = flat(a), flat(b)
        if len(fa) != len(fb):
            return False
        # float32 results (the _f32 rows) agree to float32's precision
        single = any(np.asarray(v).dtype == np.float32 for v in flat_raw(a) + flat_raw(b))
        rtol, atol = (2e-3, 1e-4) if single else (1e-6, 1e-9)
        return all(x.shape == y.shape and np.allclose(x, y, rtol=rtol, atol=atol)
                   for x, y in zip(fa, fb))

    def flat_raw(x):
        x = to_np(x)
        if isinstance(x, list):
            return [v for item in x for v in flat_raw(item)]
        return [np.asarray(x)]

    rows = []

    def run(problem, size, md_build, peers, note=""):
        """md_build() -> (call, derive_s, first_call_s); peers: name -> (call, compile_s)."""
        t0 = time.perf_counter()
        md_call, derive_s = md_build()
        t1 = time.perf_counter()
        ref = md_call()
        first = time.perf_counter() - t1
        row = {"problem": problem, "size": size, "note": note,
               "matdiff_derive_compile_s": derive_s + first + (t1 - t0 - derive_s)}
        med, mn, k = timeit(md_call)
        row["matdiff"] = {"median_s": med, "min_s": mn, "repeats": k}
        for name, (call, comp) in peers.items():
            try:
                tc = time.perf_counter()
                out = call()
                block(out)
                first_s = time.perf_counter() - tc
                # alloc and the GEMV are floors, not results
                ok = name in ("alloc_only", "gemv_floor") or close(ref, out)
                entry = {"ok": ok}
                if comp:
                    entry["compile_s"] = first_s
                if ok:
                    pm, pn, pk = timeit(call)
                    entry.update(median_s=pm, min_s=pn, repeats=pk, ratio=med / pm)
                else:
                    entry["error"] = "result differs from matdiff's"
            except Exception as exc:  # noqa: BLE001 - report and go on
                entry = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
            row[name] = entry
        rows.append(row)
        _print_row(row)

    only = set(args.only.split(",")) if args.only else None

    def want(p):
        return only is None or p in only

    # ------------------------------------------------------------ Hessian of xᵀAx
    if want("hess_xAx"):
        for n in ([100, 300] if quick else [100, 1000, 2048]):
            A0, x0 = rng.standard_normal((n, n)), rng.standard_normal(n)

            def build(n=n, A0=A0, x0=x0):
                t = time.perf_counter()
                x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
                H = md.hessian(x @ A @ x, x)
                d = time.perf_counter() - t
                c = md.compile(H)
                return (lambda: c(x=x0, A=A0)), d

            peers = {"numpy": (lambda A0=A0: A0 + A0.T, False)}
            if jax:
                Aj, xj = jnp.asarray(A0), jnp.asarray(x0)
                hj = jax.jit(jax.hessian(lambda x, A: x @ A @ x))
                peers["jax"] = (lambda hj=hj, xj=xj, Aj=Aj: hj(xj, Aj), True)
            if torch:
                At, xt = torch.tensor(A0), torch.tensor(x0)
                ht = tf.hessian(lambda x, A: x @ A @ x)
                peers["torch"] = (lambda ht=ht, xt=xt, At=At: ht(xt, At), False)
            if autograd and n <= 1000:
                ha = autograd.hessian(lambda x, A: anp.dot(x, anp.dot(A, x)))
                peers["autograd"] = (lambda ha=ha, x0=x0, A0=A0: ha(x0, A0), False)
            run("hess_xAx", f"n={n}", build, peers)

    # ------------------------------------------------------------ logistic regression
    if want("logreg"):
        sizes = [(100, 10), (1000, 50)] if quick else [(100, 10), (2048, 256), (10000, 100)]
        for N, d in sizes:
            X0 = rng.standard_normal((N, d))
            y0 = np.sign(rng.standard_normal(N))
            w0 = rng.standard_normal(d) * 0.1

            def sig(z):
                return 1 / (1 + np.exp(-z))

            for what in ("grad", "hess"):
                def build(what=what, X0=X0, y0=y0, w0=w0):
                    t = time.perf_counter()
                    X, w, y = md.matrix("X", "N", "d"), md.vector("w", "d"), \
                        md.vector("y", "N")
                    f = md.sum(md.log(1 + md.exp(-y * (X @ w))))
                    D = md.derive(f, w) if what == "grad" else md.hessian(f, w)
                    d_ = time.perf_counter() - t
                    c = md.compile(D)
                    return (lambda: c(X=X0, w=w0, y=y0)), d_

                if what == "grad":
                    def np_fn(X0=X0, y0=y0, w0=w0):
                        return -X0.T @ (y0 * sig(-y0 * (X0 @ w0)))
                else:
                    def np_fn(X0=X0, y0=y0, w0=w0):
                        s = sig(y0 * (X0 @ w0))
                        return X0.T @ ((s * (1 - s))[:, None] * X0)
                peers = {"numpy": (np_fn, False)}
                if jax:
                    def fj(w, X, y):
                        return jnp.sum(jnp.logaddexp(0.0, -y * (X @ w)))
                    dj = jax.jit(jax.grad(fj) if what == "grad" else jax.hessian(fj))
                    Xj, yj, wj = jnp.asarray(X0), jnp.asarray(y0), jnp.asarray(w0)
                    peers["jax"] = (lambda dj=dj, wj=wj, Xj=Xj, yj=yj: dj(wj, Xj, yj), True)
                if torch:
                    def ft(w, X, y):
                        return torch.sum(torch.nn.functional.softplus(-y * (X @ w)))
                    dt = tf.grad(ft) if what == "grad" else tf.hessian(ft)
                    Xt, yt, wt = torch.tensor(X0), torch.tensor(y0), torch.tensor(w0)
                    peers["torch"] = (lambda dt=dt, wt=wt, Xt=Xt, yt=yt: dt(wt, Xt, yt), False)
                if autograd:
                    def fa(w, X, y):
                        return anp.sum(anp.logaddexp(0.0, -y * anp.dot(X, w)))
                    da = autograd.grad(fa) if what == "grad" else autograd.hessian(fa)
                    peers["autograd"] = (lambda da=da, w0=w0, X0=X0, y0=y0: da(w0, X0, y0),
                                         False)
                run(f"logreg_{what}", f"N={N},d={d}", build, peers)

    # ------------------------------------------------------------ logsumexp Hessian
    if want("lse_hess"):
        n = 300 if quick else 1000
        x0 = rng.standard_normal(n)

        def build(x0=x0):
            t = time.perf_counter()
            x = md.vector("x", "n")
            H = md.hessian(md.logsumexp(x), x)
            d = time.perf_counter() - t
            c = md.compile(H)
            return (lambda: c(x=x0)), d

        def np_lse(x0=x0):
            s = np.exp(x0 - x0.max())
            s /= s.sum()
            H = -np.outer(s, s)
            H[np.diag_indices(len(s))] += s
            return H
        peers = {"numpy": (np_lse, False)}
        if jax:
            hj = jax.jit(jax.hessian(jax.scipy.special.logsumexp))
            xj = jnp.asarray(x0)
            peers["jax"] = (lambda: hj(xj), True)
        if torch:
            ht = tf.hessian(lambda x: torch.logsumexp(x, 0))
            xt = torch.tensor(x0)
            peers["torch"] = (lambda: ht(xt), False)
        if autograd:
            from autograd.scipy.special import logsumexp as alse
            ha = autograd.hessian(alse)
            peers["autograd"] = (lambda: ha(x0), False)
        run("lse_hess", f"n={n}", build, peers)

    # ------------------------------------------------------------ matrix factorisation
    if want("matfact"):
        m = 200 if quick else 1000
        r = 10
        T0, U0, V0 = (rng.standard_normal((m, m)), rng.standard_normal((m, r)),
                      rng.standard_normal((m, r)))

        def build(T0=T0, U0=U0, V0=V0):
            t = time.perf_counter()
            T, U, V = md.matrix("T", "m", "k"), md.matrix("U", "m", "r"), \
                md.matrix("V", "k", "r")
            f = md.norm2(T - U @ V.T) ** 2
            gs = (md.derive(f, U), md.derive(f, V))
            d = time.perf_counter() - t
            c = md.compile(gs)
            return (lambda: c(T=T0, U=U0, V=V0)), d

        def np_mf(T0=T0, U0=U0, V0=V0):
            R = U0 @ V0.T - T0
            return 2 * R @ V0, 2 * R.T @ U0
        peers = {"numpy": (np_mf, False)}
        if jax:
            gj = jax.jit(jax.grad(lambda U, V, T: jnp.sum((T - U @ V.T) ** 2), argnums=(0, 1)))
            Tj, Uj, Vj = map(jnp.asarray, (T0, U0, V0))
            peers["jax"] = (lambda: gj(Uj, Vj, Tj), True)
        if torch:
            gt = tf.grad(lambda U, V, T: torch.sum((T - U @ V.T) ** 2), argnums=(0, 1))
            Tt, Ut, Vt = map(torch.tensor, (T0, U0, V0))
            peers["torch"] = (lambda: gt(Ut, Vt, Tt), False)
        if autograd:
            ga = autograd.grad(lambda UV, T: anp.sum((T - anp.dot(UV[0], UV[1].T)) ** 2))
            peers["autograd"] = (lambda: tuple(ga((U0, V0), T0)), False)
        run("matfact_grad", f"{m}x{m},r={r}", build, peers)

    # ------------------------------------------------------------ the paper's neuron
    # in float64 and in float32 (issue 16): every contender gets float32 arrays in the
    # float32 rows; "gemv_floor" is one pass over X (X @ w), the floor of a gradient
    # that must read X
    if want("neuron"):
        N, d = (10_000, 100) if quick else (100_000, 100)
        X64, w64, y64 = rng.standard_normal((N, d)), rng.standard_normal(d), \
            rng.standard_normal(N)
        for dt in (np.float64, np.float32):
            X0, w0, y0 = X64.astype(dt), w64.astype(dt), y64.astype(dt)
            b0 = dt(0.1)
            suffix = "" if dt is np.float64 else "_f32"
            _neuron(md, np, jax, jnp if jax else None, torch, tf if torch else None,
                    autograd, anp if autograd else None, run, N, d, X0, w0, y0, b0, suffix)

    # ------------------------------------------------------------ structured Jacobians
    if want("jacobians"):
        for n in ([1000] if quick else [1000, 10_000]):
            x0 = rng.standard_normal(n)
            for form in ("structured", "dense"):
                def build(form=form, x0=x0):
                    t = time.perf_counter()
                    x = md.vector("x", "n")
                    J = md.derive(md.tanh(x), x)
                    d_ = time.perf_counter() - t
                    c = md.compile(J, structured=form == "structured")
                    return (lambda: c(x=x0)), d_

                peers = {}
                if form == "dense":
                    peers["numpy"] = (lambda x0=x0: np.diag(1 - np.tanh(x0) ** 2), False)
                    peers["alloc_only"] = (lambda n=n: np.zeros((n, n)), False)
                else:
                    peers["numpy"] = (lambda x0=x0: md.Diagonal(1 - np.tanh(x0) ** 2), False)
                if jax:
                    xj = jnp.asarray(x0)
                    if form == "dense":
                        jf = jax.jit(jax.jacfwd(jnp.tanh))
                        peers["jax_jacfwd"] = (lambda jf=jf, xj=xj: jf(xj), True)
                        jr = jax.jit(jax.jacrev(jnp.tanh))
                        peers["jax_jacrev"] = (lambda jr=jr, xj=xj: jr(xj), True)
                    else:
                        vg = jax.jit(jax.vmap(jax.grad(jnp.tanh)))
                        peers["jax_vmap_grad"] = (
                            lambda vg=vg, xj=xj: md.Diagonal(np.asarray(vg(xj))), True)
                if torch:
                    xt = torch.tensor(x0)
                    if form == "dense":
                        tfw = tf.jacfwd(torch.tanh)
                        peers["torch_jacfwd"] = (lambda tfw=tfw, xt=xt: tfw(xt), False)
                        trv = tf.jacrev(torch.tanh)
                        peers["torch_jacrev"] = (lambda trv=trv, xt=xt: trv(xt), False)
                    else:
                        tv = tf.vmap(tf.grad(torch.tanh))
                        peers["torch_vmap_grad"] = (
                            lambda tv=tv, xt=xt: md.Diagonal(tv(xt).numpy()), False)
                if autograd and form == "dense" and n <= 1000:
                    aj = autograd.jacobian(anp.tanh)
                    peers["autograd_jacobian"] = (lambda aj=aj, x0=x0: aj(x0), False)
                if autograd and form == "structured":
                    ae = autograd.elementwise_grad(anp.tanh)
                    peers["autograd_elementwise"] = (
                        lambda ae=ae, x0=x0: md.Diagonal(ae(x0)), False)
                run(f"jac_tanh_{form}", f"n={n}", build, peers)
        # relu(W @ x): the Jacobian diag(step(Wx)) W is dense
        n = 300 if quick else 1000
        W0, x0 = rng.standard_normal((n, n)), rng.standard_normal(n)

        def build_relu(W0=W0, x0=x0):
            t = time.perf_counter()
            W, x = md.matrix("W", "n", "n"), md.vector("x", "n")
            J = md.derive(md.relu(W @ x), x)
            d_ = time.perf_counter() - t
            c = md.compile(J)
            return (lambda: c(W=W0, x=x0)), d_
        peers = {"numpy": (lambda: (W0 @ x0 > 0)[:, None] * W0, False)}
        if jax:
            Wj, xj = jnp.asarray(W0), jnp.asarray(x0)
            jf = jax.jit(jax.jacfwd(lambda x, W: jax.nn.relu(W @ x)))
            jr = jax.jit(jax.jacrev(lambda x, W: jax.nn.relu(W @ x)))
            peers["jax_jacfwd"] = (lambda: jf(xj, Wj), True)
            peers["jax_jacrev"] = (lambda: jr(xj, Wj), True)
        if torch:
            Wt, xt = torch.tensor(W0), torch.tensor(x0)
            tj = tf.jacrev(lambda x, W: torch.relu(W @ x))
            tfw = tf.jacfwd(lambda x, W: torch.relu(W @ x))
            peers["torch_jacrev"] = (lambda: tj(xt, Wt), False)
            peers["torch_jacfwd"] = (lambda: tfw(xt, Wt), False)
        if autograd:
            aj = autograd.jacobian(lambda x, W: anp.maximum(anp.dot(W, x), 0.0))
            peers["autograd_jacobian"] = (lambda: aj(x0, W0), False)
        run("jac_relu_Wx", f"n={n}", build_relu, peers)

    # ------------------------------------------------------------ MLP
    if want("mlp"):
        B, I, H, K = 64, 784, 128, 10
        X0 = rng.standard_normal((B, I))
        Y0 = np.eye(K)[rng.integers(0, K, B)]
        W10, b10 = rng.standard_normal((I, H)) * 0.05, np.zeros(H)
        W20, b20 = rng.standard_normal((H, K)) * 0.1, np.zeros(K)
        vals = dict(X=X0, Y=Y0, W1=W10, b1=b10, W2=W20, b2=b20)

        def build_mlp():
            t = time.perf_counter()
            vg = md.value_and_grad(_mlp_loss(md), ["W1", "b1", "W2", "b2"])
            d_ = time.perf_counter() - t
            return (lambda: vg(vals)), d_

        def np_mlp():
            A = X0 @ W10 + b10
            Hh = np.maximum(A, 0)
            Z = Hh @ W20 + b20
            m = Z.max(1, keepdims=True)
            lse = np.log(np.exp(Z - m).sum(1)) + m[:, 0]
            loss = np.mean(lse - (Y0 * Z).sum(1))
            G = (np.exp(Z - lse[:, None]) - Y0) / B
            gW2, gb2 = Hh.T @ G, G.sum(0)
            GA = (G @ W20.T) * (A > 0)
            return loss, (X0.T @ GA, GA.sum(0), gW2, gb2)
        peers = {"numpy": (np_mlp, False)}
        if jax:
            def fj(W1, b1, W2, b2, X, Y):
                Z = jax.nn.relu(X @ W1 + b1) @ W2 + b2
                return jnp.mean(jax.scipy.special.logsumexp(Z, axis=1) - jnp.sum(Y * Z, 1))
            vj = jax.jit(jax.value_and_grad(fj, argnums=(0, 1, 2, 3)))
            aj = [jnp.asarray(v) for v in (W10, b10, W20, b20, X0, Y0)]
            peers["jax"] = (lambda: vj(*aj), True)
        if torch:
            def ft(W1, b1, W2, b2, X, Y):
                Z = torch.relu(X @ W1 + b1) @ W2 + b2
                return torch.mean(torch.logsumexp(Z, 1) - torch.sum(Y * Z, 1))
            vt = tf.grad_and_value(ft, argnums=(0, 1, 2, 3))
            at = [torch.tensor(v) for v in (W10, b10, W20, b20, X0, Y0)]

            def call_t():
                g, v = vt(*at)
                return v, g
            peers["torch"] = (call_t, False)
        if autograd:
            from autograd.scipy.special import logsumexp as alse

            def fa(p, X, Y):
                W1, b1, W2, b2 = p
                Z = anp.dot(anp.maximum(anp.dot(X, W1) + b1, 0.0), W2) + b2
                return anp.mean(alse(Z, axis=1) - anp.sum(Y * Z, 1))
            va = autograd.value_and_grad(fa)

            def call_a():
                v, g = va((W10, b10, W20, b20), X0, Y0)
                return v, tuple(g)
            peers["autograd"] = (call_a, False)
        run("mlp_value_and_grads", f"B={B},{I}-{H}-{K}", build_mlp, peers)

    # ------------------------------------------------------------ fused element-wise chains
    if want("fused"):
        _fused(md, np, jax, jnp if jax else None, torch, tf if torch else None, rows, quick,
               rng, close)

    # ------------------------------------------------------------ one pass over the data
    if want("rowblock"):
        _rowblock_rows(md, np, jax, jnp if jax else None, torch, tf if torch else None,
                       rows, close, block, quick, args.repeats or (9 if quick else 25))

    info = _machine(args.threads, peers_avail)
    out = {"machine": info, "quick": quick, "rows": rows}
    path = args.json or os.path.join(os.path.dirname(__file__),
                                     "results-quick.json" if quick else "results.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"\nmachine: {info['cpu']}, {info['threads']} thread(s), BLAS: {info['blas']}")
    print(f"wrote {path}")


def _neuron(md, np, jax, jnp, torch, tf, autograd, anp, run, N, d, X0, w0, y0, b0,
            suffix):
    """The paper's neuron loss, value and gradient, in the dtype of the arrays given."""
    text = "mean((y - max(0, X @ w + b))**2)"
    shapes = {"X": ("N", "d"), "w": ("d",), "y": ("N",), "b": ()}

    def build_val():
        t = time.perf_counter()
        f = md.parse(text, shapes=shapes)
        d_ = time.perf_counter() - t
        c = md.compile(f)
        return (lambda: c(X=X0, w=w0, y=y0, b=b0)), d_

    def build():
        t = time.perf_counter()
        f = md.parse(text, shapes=shapes)
        vg = md.value_and_grad(f, ["w", "b"])
        d_ = time.perf_counter() - t
        return (lambda: vg(X=X0, w=w0, y=y0, b=b0)), d_

    def np_neuron():
        z = X0 @ w0 + b0
        r = np.maximum(z, 0) - y0
        g = (2 / N) * r * (z > 0)
        return np.mean(r * r), (X0.T @ g, np.sum(g))
    peers = {"numpy": (np_neuron, False), "gemv_floor": (lambda: X0 @ w0, False)}
    if jax:
        def fj(w, b, X, y):
            return jnp.mean((y - jnp.maximum(0.0, X @ w + b)) ** 2)
        vj = jax.jit(jax.value_and_grad(fj, argnums=(0, 1)))
        Xj, yj, wj = jnp.asarray(X0), jnp.asarray(y0), jnp.asarray(w0)
        bj = jnp.asarray(b0)
        peers["jax"] = (lambda: vj(wj, bj, Xj, yj), True)
    if torch:
        def ft(w, b, X, y):
            return torch.mean((y - torch.relu(X @ w + b)) ** 2)
        vt = tf.grad_and_value(ft, argnums=(0, 1))
        Xt, yt, wt, bt = torch.tensor(X0), torch.tensor(y0), torch.tensor(w0), \
            torch.tensor(b0)

        def call_t():
            g, v = vt(wt, bt, Xt, yt)
            return v, g
        peers["torch"] = (call_t, False)
    if autograd and not suffix:
        def fa(wb, X, y):
            return anp.mean((y - anp.maximum(0.0, anp.dot(X, wb[0]) + wb[1])) ** 2)
        va = autograd.value_and_grad(fa)

        def call_a():
            v, g = va((w0, b0), X0, y0)
            return v, tuple(g)
        peers["autograd"] = (call_a, False)
    run("neuron_value_and_grad" + suffix, f"N={N},d={d}", build, peers)
    run("neuron_value_only" + suffix, f"N={N},d={d}", build_val,
        {"numpy": (lambda: np.mean((y0 - np.maximum(0, X0 @ w0 + b0)) ** 2), False)},
        note="for the cheap-gradient bound")


def _fused_timing(calls: dict, rounds: int, budget: float) -> dict:
    """Per-call median and min (seconds) of each of ``calls``, timed in interleaved
    rounds (each round times every contender once, over a batch of at least 5 calls
    sized to ~2 ms), so that a slow spell of this shared machine hits all of them
    alike."""
    import gc

    import numpy as np

    # the cyclic collector off while timing (as timeit does): after Numba's and
    # XLA's compilers have filled the heap, one full collection inside a batch cost
    # a contender 10x its time in a round
    gc.collect()
    gc.disable()
    try:
        return _fused_rounds(calls, rounds, budget, np)
    finally:
        gc.enable()


def _fused_rounds(calls: dict, rounds: int, budget: float, np) -> dict:
    batch = {}
    for k, fn in calls.items():
        fn()
        t = time.perf_counter()
        fn()
        batch[k] = max(5, min(1000, int(2e-3 / max(time.perf_counter() - t, 1e-7))))
    times: dict = {k: [] for k in calls}
    start = time.perf_counter()
    for r in range(rounds):
        for k, fn in calls.items():
            # a pause, so that the previous contender's pool threads (XLA's, torch's
            # spin after their work) are asleep and do not take this one's core; then
            # one untimed call, so that this one's own pool is awake, as it is in a
            # loop of its own calls (measured: 200-400 µs a wake-up here, and the
            # contender after JAX 4x slower without the pause)
            time.sleep(0.005)
            fn()
            t = time.perf_counter()
            for _ in range(batch[k]):
                fn()
            times[k].append((time.perf_counter() - t) / batch[k])
        if time.perf_counter() - start > budget and r >= 4:
            break
    return {k: (float(np.median(v)), float(np.min(v)), len(v)) for k, v in times.items()}


def _fused(md, np, jax, jnp, torch, tf, rows, quick, rng, close):
    """Issue 16, item 3: element-wise chains fused into one Numba pass
    (matdiff.compile.fuse), against the same code unfused, hand-written NumPy, JAX
    (jit) and torch.func; all timed interleaved (:func:`_fused_timing`)."""
    from matdiff.compile import fuse

    rounds = 9 if quick else 25

    def plain(c, kw):
        """``c`` specialised with fusion off (code is generated at the first call)."""
        fuse.settings["enabled"] = False
        try:
            c(**kw)
        finally:
            fuse.settings["enabled"] = True
        return lambda: c(**kw)

    def core(x):
        """A structured result compared by its core (a dense n = 10⁵ Jacobian is
        75 GiB)."""
        return x.core if isinstance(x, md.Structured) else x

    def same(a, b):
        return close(core(a), core(b))

    def row(problem, size, build, peers):
        t0 = time.perf_counter()
        c, kw = build()
        def fused():
            return c(**kw)
        ref = fused()
        compile_s = time.perf_counter() - t0
        calls = {"matdiff": fused, "matdiff_unfused": plain(build()[0], kw)}
        r = {"problem": problem, "size": size, "note": "interleaved",
             "matdiff_derive_compile_s": compile_s}
        for name, fn in peers.items():
            try:
                ok = same(ref, fn())
            except Exception as exc:  # noqa: BLE001 - report and go on
                r[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
                continue
            if ok:
                calls[name] = fn
            else:
                r[name] = {"ok": False, "error": "result differs from matdiff's"}
        if not same(ref, calls["matdiff_unfused"]()):
            r["matdiff_unfused"] = {"ok": False, "error": "unfused differs from fused"}
            calls.pop("matdiff_unfused")
        res = _fused_timing(calls, rounds, 3.0 if quick else 15.0)
        med = res["matdiff"][0]
        r["matdiff"] = dict(zip(("median_s", "min_s", "repeats"), res["matdiff"]))
        for name, (m, mn, k) in res.items():
            if name != "matdiff":
                r[name] = {"ok": True, "median_s": m, "min_s": mn, "repeats": k,
                           "ratio": med / m}
        rows.append(r)
        _print_row(r)

    def block(out):
        return jax.block_until_ready(out) if jax is not None else out

    # 1 − tanh²(x): the structured Jacobian of tanh (issue 16's target: no slower
    # than JAX's vmap(grad))
    for n in ([1000, 10_000] if quick else [1000, 10_000, 100_000]):
        x0 = rng.standard_normal(n)

        def build(x0=x0):
            x = md.vector("x", "n")
            return md.compile(md.derive(md.tanh(x), x), structured=True), {"x": x0}

        peers = {"numpy": lambda x0=x0: md.Diagonal(1 - np.tanh(x0) ** 2)}
        if jax:
            vg = jax.jit(jax.vmap(jax.grad(jnp.tanh)))
            xj = jnp.asarray(x0)
            peers["jax_vmap_grad"] = lambda vg=vg, xj=xj: md.Diagonal(np.asarray(vg(xj)))
        if torch:
            tv = tf.vmap(tf.grad(torch.tanh))
            xt = torch.tensor(x0)
            peers["torch_vmap_grad"] = lambda tv=tv, xt=xt: md.Diagonal(tv(xt).numpy())
        row("fused_tanh_jac", f"n={n}", build, peers)

    # softmax: ∂/∂x yᵀsoftmax(x) = s ⊙ y − (sᵀy) s
    for n in ([10_000] if quick else [10_000, 100_000]):
        x0, y0 = rng.standard_normal(n), rng.standard_normal(n)

        def build_sm(x0=x0, y0=y0):
            x, y = md.vector("x", "n"), md.vector("y", "n")
            return md.compile(md.derive(md.sum(md.softmax(x) * y), x)), {"x": x0, "y": y0}

        def np_sm(x0=x0, y0=y0):
            s = np.exp(x0 - x0.max())
            s /= s.sum()
            return s * y0 - (s @ y0) * s
        peers = {"numpy": np_sm}
        if jax:
            gj = jax.jit(jax.grad(lambda x, y: jax.nn.softmax(x) @ y))
            xj, yj = jnp.asarray(x0), jnp.asarray(y0)
            peers["jax"] = lambda gj=gj, xj=xj, yj=yj: block(gj(xj, yj))
        if torch:
            gt = tf.grad(lambda x, y: torch.softmax(x, 0) @ y)
            xt, yt = torch.tensor(x0), torch.tensor(y0)
            peers["torch"] = lambda gt=gt, xt=xt, yt=yt: gt(xt, yt)
        row("fused_softmax_grad", f"n={n}", build_sm, peers)

    # the ReLU mask: ∂/∂z mean((y − relu(z))²) = −(2/n)(y − relu(z)) ⊙ step(z)
    for n in ([10_000] if quick else [10_000, 100_000]):
        z0, y0 = rng.standard_normal(n), rng.standard_normal(n)

        def build_relu(z0=z0, y0=y0):
            z, y = md.vector("z", "n"), md.vector("y", "n")
            f = md.mean((y - md.relu(z)) ** 2)
            return md.compile(md.derive(f, z)), {"z": z0, "y": y0}

        peers = {"numpy": lambda z0=z0, y0=y0, n=n: (-2 / n) * (y0 - np.maximum(z0, 0))
                 * (z0 > 0)}
        if jax:
            gj = jax.jit(jax.grad(lambda z, y: jnp.mean((y - jax.nn.relu(z)) ** 2)))
            zj, yj = jnp.asarray(z0), jnp.asarray(y0)
            peers["jax"] = lambda gj=gj, zj=zj, yj=yj: block(gj(zj, yj))
        if torch:
            gt = tf.grad(lambda z, y: torch.mean((y - torch.relu(z)) ** 2))
            zt, yt = torch.tensor(z0), torch.tensor(y0)
            peers["torch"] = lambda gt=gt, zt=zt, yt=yt: gt(zt, yt)
        row("fused_relu_mask_grad", f"n={n}", build_relu, peers)

    # logistic regression's gradient: −Xᵀ(y ⊙ σ(−y ⊙ Xw)), its chains fused
    N, d = (1000, 50) if quick else (10_000, 100)
    X0, y0, w0 = rng.standard_normal((N, d)), np.sign(rng.standard_normal(N)), \
        rng.standard_normal(d) * 0.1

    def build_lr():
        X, w, y = md.matrix("X", "N", "d"), md.vector("w", "d"), md.vector("y", "N")
        f = md.sum(md.log(1 + md.exp(-y * (X @ w))))
        return md.compile(md.derive(f, w)), {"X": X0, "w": w0, "y": y0}

    peers = {"numpy": lambda: -X0.T @ (y0 / (1 + np.exp(y0 * (X0 @ w0))))}
    if jax:
        gj = jax.jit(jax.grad(lambda w, X, y: jnp.sum(jnp.logaddexp(0.0, -y * (X @ w)))))
        Xj, yj, wj = jnp.asarray(X0), jnp.asarray(y0), jnp.asarray(w0)
        peers["jax"] = lambda: block(gj(wj, Xj, yj))
    if torch:
        gt = tf.grad(lambda w, X, y: torch.sum(torch.nn.functional.softplus(-y * (X @ w))))
        Xt, yt, wt = torch.tensor(X0), torch.tensor(y0), torch.tensor(w0)
        peers["torch"] = lambda: gt(wt, Xt, yt)
    row("fused_logreg_grad", f"N={N},d={d}", build_lr, peers)

def _mlp_loss(md):
    """The MLP rows' loss: softmax cross-entropy of relu(XW1 + b1)W2 + b2, averaged over
    the batch."""
    X, Y = md.matrix("X", "B", "I"), md.matrix("Y", "B", "K")
    W1, b1 = md.matrix("W1", "I", "H"), md.vector("b1", "H")
    W2, b2 = md.matrix("W2", "H", "K"), md.vector("b2", "K")
    Z = md.relu(X @ W1 + b1) @ W2 + b2
    return md.mean(md.logsumexp(Z) - md.sum(Y * Z, 1))


def _blocked_and_whole(md, rowblock, f, wrt, vals, t0):
    """The row-blocked value-and-gradient of ``f`` and the whole-array one (blocking
    off), each called once; the first's derive + compile time from ``t0``, and a note
    of how it blocks."""
    blocked = md.value_and_grad(f, wrt)
    blocked(vals)
    compile_s = time.perf_counter() - t0
    with rowblock.disabled():
        whole = md.value_and_grad(f, wrt)
        whole(vals)
    spec = blocked.specialised(vals)
    note = (f"blocked: {spec.rows} rows a block, {spec.nthreads} thread(s), body: "
            + ("row kernel" if getattr(spec.body, "active", False) else "NumPy")
            if isinstance(spec, rowblock.RowBlocked) else "not blocked")
    return blocked, whole, compile_s, note


def _other_policies(md, f, wrt, vals):
    """With two threads: the value-and-gradient of ``f`` compiled under each other
    thread policy (``matdiff.compile.threads``; ``matdiff`` is ``"auto"``), called
    once: ``matdiff_one_blas`` (BLAS held to one thread), ``matdiff_blas2``
    (``"off"``: BLAS on its own two threads, as before the policy) and
    ``matdiff_halves`` (the batch in two halves where the products are bound by
    arithmetic); name -> call.  Nothing with one thread."""
    from matdiff.compile import threads as thr

    if thr.threads() < 2:
        return {}
    calls = {}
    for name, policy in (("matdiff_one_blas", "one_blas"), ("matdiff_blas2", "off"),
                         ("matdiff_halves", "halves")):
        saved, thr._MODE[:] = list(thr._MODE), [policy]
        try:
            c = md.value_and_grad(f, wrt)
            c(vals)
        finally:
            thr._MODE[:] = saved
        calls[name] = lambda c=c, v=vals: c(v)
    return calls


def _gemv_floor(gemv):
    """The one-pass floor ``gemv`` (one GEMV over X), on two threads with BLAS held to
    one: OpenBLAS's 2-thread GEMV took 17–26 ms at 10⁴ x 100 on the loaded machine,
    against 0.24–0.5 ms on one thread, which is no floor."""
    from matdiff.compile import threads as thr

    if thr.threads() < 2:
        return gemv

    def held():
        with thr.one_blas_thread():
            return gemv()
    return held


def _numpy_body(md, blocked, f, wrt, vals):
    """Where ``blocked`` (matdiff's compiled value-and-gradient, called) runs its
    blocks as a row kernel (``matdiff.compile.rowkernel``, on by default), the same
    compiled with the row kernel off (the blocked NumPy body it replaces), called
    once; else ``None``."""
    from matdiff.compile import rowkernel

    spec = blocked.specialised(vals)
    if not getattr(getattr(spec, "body", None), "active", False):
        return None
    with rowkernel.disabled():
        body = md.value_and_grad(f, wrt)
        body(vals)
    return body


def _rowblock_rows(md, np, jax, jnp, torch, tf, rows, close, block, quick, reps):
    """Issue 16, item 2: the row-blocked code (``matdiff.compile.rowblock``) against
    the whole-array code it replaces (``matdiff_whole``: the same expressions
    compiled inside ``rowblock.disabled()``), the same with the NumPy block body
    where matdiff runs a row kernel (``matdiff_numpy_body``: compiled inside
    ``rowkernel.disabled()``), jax.jit, torch.func and one GEMV over X
    (``gemv_floor``: the one-pass floor).
    Every contender is timed in turn, call by call (interleaved), ``reps`` rounds:
    the medians share the machine's noise."""
    from matdiff.compile import rowblock

    rng = np.random.default_rng(16)
    paper = "mean((y - max(0, X @ w + b))**2)"
    logreg = "mean(log(1 + exp(-y * (X @ w))))"
    shapes = {"X": ("N", "d"), "w": ("d",), "y": ("N",), "b": ()}
    n_paper = 20_000 if quick else 100_000
    cases = [("paper_grad_rowblock", paper, n_paper, 100, np.float64),
             ("paper_grad_rowblock_f32", paper, n_paper, 100, np.float32),
             ("logreg_grad_rowblock", logreg, 10_000, 100, np.float64),
             ("logreg_grad_rowblock_f32", logreg, 10_000, 100, np.float32)]
    for problem, text, N, d, dt in cases:
        X0 = rng.standard_normal((N, d)).astype(dt)
        w0 = (rng.standard_normal(d) * 0.1).astype(dt)
        y0 = (np.sign(rng.standard_normal(N)) if "logreg" in problem
              else rng.standard_normal(N)).astype(dt)
        b0 = dt(0.1)
        wrt = ["w", "b"] if "b" in text else ["w"]
        vals = {"X": X0, "w": w0, "y": y0, "b": b0}
        vals = {k: vals[k] for k in ("X", "w", "y") + (("b",) if "b" in text else ())}
        t = time.perf_counter()
        f = md.parse(text, shapes={k: shapes[k] for k in vals})
        blocked, whole, compile_s, note = _blocked_and_whole(md, rowblock, f, wrt, vals, t)
        calls = {"matdiff": lambda c=blocked, v=vals: c(v),
                 "matdiff_whole": lambda c=whole, v=vals: c(v),
                 "gemv_floor": _gemv_floor(lambda X0=X0, w0=w0: X0 @ w0),
                 **_other_policies(md, f, wrt, vals)}
        body = _numpy_body(md, blocked, f, wrt, vals)
        if body is not None:  # the row kernel against the NumPy body it replaces
            calls["matdiff_numpy_body"] = lambda c=body, v=vals: c(v)
        if jax:
            if "logreg" in problem:
                def fj(w, X, y):
                    return jnp.mean(jnp.logaddexp(0.0, -y * (X @ w)))
                vj = jax.jit(jax.value_and_grad(fj))
                aj = [jnp.asarray(v) for v in (w0, X0, y0)]
            else:
                def fj(w, b, X, y):
                    return jnp.mean((y - jnp.maximum(0.0, X @ w + b)) ** 2)
                vj = jax.jit(jax.value_and_grad(fj, argnums=(0, 1)))
                aj = [jnp.asarray(v) for v in (w0, b0, X0, y0)]
            calls["jax"] = lambda vj=vj, aj=aj: vj(*aj)
        if torch:
            if "logreg" in problem:
                def ft(w, X, y):
                    return torch.mean(torch.nn.functional.softplus(-y * (X @ w)))
                vt = tf.grad_and_value(ft)
                at = [torch.from_numpy(np.asarray(v)) for v in (w0, X0, y0)]
            else:
                def ft(w, b, X, y):
                    return torch.mean((y - torch.relu(X @ w + b)) ** 2)
                vt = tf.grad_and_value(ft, argnums=(0, 1))
                at = [torch.from_numpy(np.asarray(v)) for v in (w0, b0, X0, y0)]

            def call_t(vt=vt, at=at):
                g, v = vt(*at)
                return v, g
            calls["torch"] = call_t
        _interleaved(np, problem, f"N={N},d={d}", calls, rows, close, block, reps,
                     compile_s, note)
    # an MLP's value and gradients within one large batch (softmax cross-entropy,
    # as in the "mlp" rows): memory-bound at a small hidden layer, GEMM-bound at a wide one
    for B, I, H, K in ([(4096, 100, 32, 10), (64, 784, 128, 10)] if quick else
                       [(16384, 100, 32, 10), (4096, 784, 128, 10), (64, 784, 128, 10)]):
        vals = {"X": rng.standard_normal((B, I)), "Y": np.eye(K)[rng.integers(0, K, B)],
                "W1": rng.standard_normal((I, H)) * 0.05, "b1": np.zeros(H),
                "W2": rng.standard_normal((H, K)) * 0.1, "b2": np.zeros(K)}
        t = time.perf_counter()
        loss = _mlp_loss(md)
        names = ["W1", "b1", "W2", "b2"]
        blocked, whole, compile_s, note = _blocked_and_whole(md, rowblock, loss, names,
                                                             vals, t)
        calls = {"matdiff": lambda c=blocked, v=vals: c(v),
                 "matdiff_whole": lambda c=whole, v=vals: c(v),
                 "gemv_floor": _gemv_floor(lambda v=vals: v["X"] @ v["W1"][:, 0]),
                 **_other_policies(md, loss, names, vals)}
        order = ("W1", "b1", "W2", "b2", "X", "Y")
        if jax:
            def fj(W1, b1, W2, b2, X, Y):
                Z = jax.nn.relu(X @ W1 + b1) @ W2 + b2
                return jnp.mean(jax.scipy.special.logsumexp(Z, axis=1) - jnp.sum(Y * Z, 1))
            vj = jax.jit(jax.value_and_grad(fj, argnums=(0, 1, 2, 3)))
            aj = [jnp.asarray(vals[k]) for k in order]
            calls["jax"] = lambda vj=vj, aj=aj: vj(*aj)
        if torch:
            def ft(W1, b1, W2, b2, X, Y):
                Z = torch.relu(X @ W1 + b1) @ W2 + b2
                return torch.mean(torch.logsumexp(Z, 1) - torch.sum(Y * Z, 1))
            vt = tf.grad_and_value(ft, argnums=(0, 1, 2, 3))
            at = [torch.from_numpy(vals[k]) for k in order]

            def call_t(vt=vt, at=at):
                g, v = vt(*at)
                return v, g
            calls["torch"] = call_t
        _interleaved(np, "mlp_rowblock", f"B={B},{I}-{H}-{K}", calls, rows, close, block,
                     reps, compile_s, note)


def _interleaved(np, problem, size, calls, rows, close, block, reps, compile_s, note):
    """Time ``calls`` (name -> function; ``matdiff`` first) in turn, one call each per
    round (the order rotating from round to round), after checking each against
    matdiff's result; one row of the table."""
    ref = calls["matdiff"]()
    ok = {}
    for name, call in calls.items():
        try:
            out = block(call())
            ok[name] = name == "gemv_floor" or close(ref, out)
        except Exception as exc:  # noqa: BLE001 - report and go on
            ok[name] = f"{type(exc).__name__}: {exc}"[:200]
    for name, call in calls.items():  # warm-up
        if ok[name] is True:
            block(call())
    times = {name: [] for name in calls if ok[name] is True}
    order = list(times)
    for r in range(reps):
        # each round in another order: no contender always follows the same one
        # (and finds its arrays in cache, or evicted)
        for name in order[r % len(order):] + order[:r % len(order)]:
            t = time.perf_counter()
            block(calls[name]())
            times[name].append(time.perf_counter() - t)
    med = float(np.median(times["matdiff"]))
    row = {"problem": problem, "size": size, "note": note + "; interleaved",
           "matdiff_derive_compile_s": compile_s,
           "matdiff": {"median_s": med, "min_s": float(np.min(times["matdiff"])),
                       "repeats": reps}}
    for name in calls:
        if name == "matdiff":
            continue
        if ok[name] is True:
            m = float(np.median(times[name]))
            row[name] = {"ok": True, "median_s": m, "min_s": float(np.min(times[name])),
                         "repeats": reps, "ratio": med / m}
        else:
            row[name] = {"ok": False, "error": ok[name] if isinstance(ok[name], str)
                         else "result differs from matdiff's"}
    rows.append(row)
    _print_row(row)


def _fmt(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f}µs"
    if s < 1:
        return f"{s * 1e3:.2f}ms"
    return f"{s:.2f}s"


def _print_row(row: dict) -> None:
    md_t = row["matdiff"]["median_s"]
    parts = [f"{row['problem']:<24} {row['size']:<16} matdiff {_fmt(md_t):>9} "
             f"(min {_fmt(row['matdiff']['min_s'])}, derive+compile "
             f"{_fmt(row['matdiff_derive_compile_s'])})"]
    for k, v in row.items():
        if not isinstance(v, dict) or k == "matdiff":
            continue
        if v.get("ok"):
            extra = f", jit {_fmt(v['compile_s'])}" if "compile_s" in v else ""
            parts.append(f"    {k:<22} {_fmt(v['median_s']):>9}  ratio {v['ratio']:.2f}{extra}")
        else:
            parts.append(f"    {k:<22} FAILED: {v.get('error', '')}")
    print("\n".join(parts), flush=True)


def _machine(threads: int, peers: dict) -> dict:
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        blas = "; ".join(f"{p.get('internal_api')} {p.get('version')} "
                         f"({p.get('num_threads')} threads)" for p in threadpool_info())
    except ImportError:
        try:
            cfg = np.show_config(mode="dicts")
            b = cfg.get("Build Dependencies", {}).get("blas", {})
            blas = f"{b.get('name')} {b.get('version')}"
        except Exception:  # noqa: BLE001
            pass
    import opt_einsum

    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "blas": blas,
            "python": platform.python_version(), "numpy": np.__version__,
            "opt_einsum": opt_einsum.__version__, **peers,
            "platform": platform.platform()}


if __name__ == "__main__":
    main()
