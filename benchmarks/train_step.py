"""One full training step (loss, gradients, Adam update): matdiff vs PyTorch vs jax.jit.

    python benchmarks/train_step.py              # issue 5's four problems
    python benchmarks/train_step.py --quick      # fewer repeats
    python benchmarks/train_step.py --threads 2 --json out.json --only neuron,mlp_small
    python benchmarks/train_step.py --profile mlp_small   # cProfile of matdiff's step

Same rules as ``compare.py``: everything in one process, float64, one thread count
for all (set before numpy/torch/jax are imported); the same model, initial
parameters, batch, loss and Adam hyperparameters (lr 1e-3, betas (0.9, 0.999), eps
1e-8) for every contender.  Before timing, one step from the same initial
parameters is taken by each contender and the updated parameters (and the loss) are
checked equal to matdiff's.  The first step (matdiff: model build, derive, compile
and first step; PyTorch: building the tensors and optimizer and the first step; JAX:
trace + XLA compile + first call) is reported separately; timed steps come after
warm-up.  The contenders are timed in interleaved rounds (to share the machine's
drift), with the garbage collector off during the timed calls; median and min of
all timed steps, ``ratio`` = matdiff median / peer median (< 1: matdiff faster).

* matdiff: exactly the step of ``matdiff.nn.fit``, ``md.nn.TrainStep``: one compiled
  function for the loss and every gradient, the check that the loss and gradients are
  finite, and ``matdiff.optim.Adam``'s update, in place on the parameters (which
  tile one flat buffer).  The update is fused (one Numba loop per segment of the
  buffer, issue 16 item 3) from the first step: a run of training pays the kernels'
  start-up once its NumPy updates have taken as long (``optim.fused_settings``), a
  cost the first-step column does not show; ``matdiff_numpy_adam`` is the same
  step with the NumPy update (a dozen whole-buffer NumPy operations), and
  ``--no-fused-optim`` makes that the ``matdiff`` row.
* PyTorch eager: plain tensors with ``requires_grad``, ``zero_grad``, forward,
  ``backward``, ``torch.optim.Adam`` (its default CPU implementation).
* JAX: one ``jax.jit`` step function: ``value_and_grad`` of the loss and Adam (with
  bias correction) written by hand; parameters and state passed in and returned.

With ``--threads 2`` matdiff's step runs as ``matdiff.compile.threads`` decides
(``matdiff``: ``"auto"``, each compiled function measuring its candidates where it
runs), and three more rows time the same step with one policy forced (issue 16,
item 4): ``matdiff_one_blas`` (BLAS held to one thread), ``matdiff_blas2``
(``"off"``: BLAS on its two threads, as before the policy) and ``matdiff_halves``
(the batch in two halves on two Python threads where its products are bound by
arithmetic).
Each contender's batch of timed steps follows a 5 ms pause and one untimed step, so
that the previous contender's pool threads (XLA's, torch's, OpenBLAS's), which
busy-wait after their work, have gone to sleep and its own are awake.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8

#: name -> (label, sizes or None for the neuron, batch, loss)
PROBLEMS = {
    "neuron": ("neuron relu(Xw+b), mse", [10], 32, "mse"),
    "mlp_small": ("MLP 10-32-1 relu, mse", [10, 32, 1], 32, "mse"),
    "mlp_784_128": ("MLP 784-128-10 relu, softmax CE", [784, 128, 10], 64, "cross_entropy"),
    "mlp_784_512": ("MLP 784-512-10 relu, softmax CE", [784, 512, 10], 256, "cross_entropy"),
}


def main() -> None:  # noqa: C901 - one benchmark, three contenders
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (~15 s)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-fused-optim", action="store_true",
                    help="matdiff's row with the NumPy optimizer update (no Numba)")
    ap.add_argument("--json", default=None, help="write results here (default: "
                    "benchmarks/results-train[-quick].json)")
    ap.add_argument("--only", default=None, help="comma-separated problem names: "
                    + ", ".join(PROBLEMS))
    ap.add_argument("--profile", default=None, metavar="PROBLEM",
                    help="only cProfile matdiff's step on PROBLEM and print the top")
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from compare import _fmt, _machine, _set_threads  # stdlib-only module top

    _set_threads(args.threads)

    import numpy as np

    sys.path.insert(0, os.path.join(here, "..", "src"))
    import jax

    import matdiff as md

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)

    quick = args.quick
    rounds = 5
    per_round = 40 if quick else 400       # timed steps per contender per round
    budget = 0.1 if quick else 0.6         # s per contender per round

    # -- one-time library warm-up (imports, backend init), outside every measurement
    md.compile(md.sum(md.vector("v", "n") ** 2))({"v": np.ones(3)})
    jax.block_until_ready(jax.jit(lambda a: a * 2)(jnp.ones(3)))
    _t = torch.ones(3, dtype=torch.float64, requires_grad=True)
    (_t * _t).sum().backward()
    torch.optim.Adam([_t], lr=LR).step()

    # ------------------------------------------------------------------ matdiff
    fused_opt = md.optim.fused_settings
    if args.no_fused_optim:
        fused_opt["enabled"] = False
    else:  # the fused update from the first step (the kernels loaded here, untimed)
        fused_opt.update(start_s=0.0, load_s=0.0)
        _m = md.nn.MLP([8, 600, 1], "relu", seed=0)
        _o = md.optim.Adam(_m.params, lr=LR)
        _o.step({k: np.ones(v.shape) for k, v in _m.params.items()})
        assert _o._fuse, "the fused optimizer update is not available (Numba)"

    def numpy_update(step):
        """``step`` with the optimizer's NumPy update (fusion off for the call)."""
        def call():
            on = fused_opt["enabled"]
            fused_opt["enabled"] = False
            try:
                return step()
            finally:
                fused_opt["enabled"] = on
        return call

    def md_model(sizes):
        if len(sizes) == 1:
            return md.nn.Neuron(sizes[0], seed=0)
        return md.nn.MLP(sizes, "relu", seed=0)

    def md_step_fn(model, opt, X, T, loss):
        # matdiff.nn.fit's step: md.nn.TrainStep on a checked batch (one-hot T for CE)
        train_step = md.nn.TrainStep(model, loss, opt, tune_malloc=True)

        def step():
            return train_step(X, T, checked=True)
        return step

    from matdiff.compile import threads as md_threads

    #: with two threads: the thread policy forced one way (name -> its knobs)
    forced = {"matdiff_one_blas": {"_MODE": ["one_blas"]},
              "matdiff_blas2": {"_MODE": ["off"]},
              "matdiff_halves": {"_MODE": ["halves"]}} if args.threads >= 2 else {}

    def md_forced(knobs, sizes, X, T, loss):
        """matdiff's step built (and its first step taken) with the policy's knobs
        set: the step and its updated parameters."""
        saved = {k: getattr(md_threads, k) for k in knobs}
        try:
            for k, v in knobs.items():
                setattr(md_threads, k, v)
            model = md_model(sizes)
            step = md_step_fn(model, md.optim.Adam(model.params, lr=LR, betas=BETAS,
                                                   eps=EPS), X, T, loss)
            L = step()
        finally:
            for k, v in saved.items():
                setattr(md_threads, k, v)
        return step, L, {n: model.params[n].copy() for n in model.params}

    # ------------------------------------------------------------------ torch
    def torch_setup(init, names, X, T, labels, loss, neuron):
        ps = [torch.tensor(init[n]).requires_grad_() for n in names]
        Xt = torch.tensor(X)
        tgt = torch.tensor(labels) if loss == "cross_entropy" else torch.tensor(T)
        opt = torch.optim.Adam(ps, lr=LR, betas=BETAS, eps=EPS)

        def forward():
            if neuron:
                w, b = ps
                return torch.relu(Xt @ w + b)
            h = Xt
            for i in range(0, len(ps), 2):
                h = h @ ps[i] + ps[i + 1]
                if i + 2 < len(ps):
                    h = torch.relu(h)
            return h

        def step():
            opt.zero_grad(set_to_none=True)
            out = forward()
            if loss == "mse":
                L = F.mse_loss(out, tgt)
            else:
                L = F.cross_entropy(out, tgt)
            L.backward()
            opt.step()
            return L.detach()
        return step, ps

    # ------------------------------------------------------------------ jax
    def jax_setup(init, names, X, T, loss, neuron):
        b1, b2 = BETAS

        def loss_fn(ps, X, T):
            if neuron:
                w, b = ps
                out = jax.nn.relu(X @ w + b)
            else:
                h = X
                for i in range(0, len(ps), 2):
                    h = h @ ps[i] + ps[i + 1]
                    if i + 2 < len(ps):
                        h = jax.nn.relu(h)
                out = h
            if loss == "mse":
                return jnp.mean((out - T) ** 2)
            return jnp.mean(jax.nn.logsumexp(out, axis=1) - jnp.sum(T * out, axis=1))

        def step(ps, ms, vs, t, X, T):
            L, gs = jax.value_and_grad(loss_fn)(ps, X, T)
            t = t + 1.0
            bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
            ms = tuple(b1 * m + (1.0 - b1) * g for m, g in zip(ms, gs))
            vs = tuple(b2 * v + (1.0 - b2) * g * g for v, g in zip(vs, gs))
            ps = tuple(p - (LR / bc1) * (m / (jnp.sqrt(v) / jnp.sqrt(bc2) + EPS))
                       for p, m, v in zip(ps, ms, vs))
            return ps, ms, vs, t, L

        jstep = jax.jit(step)
        state = {}

        def call():
            st = state
            st["ps"], st["ms"], st["vs"], st["t"], L = jstep(
                st["ps"], st["ms"], st["vs"], st["t"], st["X"], st["T"])
            return jax.block_until_ready(L)

        def reset():
            state["ps"] = tuple(jnp.asarray(init[n]) for n in names)
            state["ms"] = tuple(jnp.zeros_like(p) for p in state["ps"])
            state["vs"] = tuple(jnp.zeros_like(p) for p in state["ps"])
            state["t"] = jnp.asarray(0.0)
            state["X"], state["T"] = jnp.asarray(X), jnp.asarray(T)
        return call, reset, state

    def close(a, b):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-6, atol=1e-9)

    def make_batch(sizes, B, loss):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((B, sizes[0]))
        labels = None
        if loss == "cross_entropy":
            labels = rng.integers(0, sizes[-1], B)
            T = np.eye(sizes[-1])[labels]
        elif len(sizes) == 1:
            T = rng.standard_normal(B)
        else:
            T = rng.standard_normal((B, sizes[-1]))
        return X, T, labels

    only = set(args.only.split(",")) if args.only else None

    if args.profile:
        import cProfile
        import pstats

        _, sizes, B, loss = PROBLEMS[args.profile]
        X, T, _ = make_batch(sizes, B, loss)
        model = md_model(sizes)
        step = md_step_fn(model, md.optim.Adam(model.params, lr=LR), X, T, loss)
        for _ in range(50):
            step()
        n = 20000 if len(sizes) < 3 or sizes[0] < 100 else 2000
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(n):
            step()
        prof.disable()
        print(f"cProfile of {n} matdiff steps on {args.profile}:")
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
        return

    rows = []
    for key, (label, sizes, B, loss) in PROBLEMS.items():
        if only is not None and key not in only:
            continue
        neuron = len(sizes) == 1
        X, T, labels = make_batch(sizes, B, loss)
        init = md_model(sizes).state_dict()
        names = list(init)
        row = {"problem": key, "label": label, "batch": B, "loss": loss,
               "params": int(sum(v.size for v in init.values()))}

        # first steps (and the results compared)
        t0 = time.perf_counter()
        model = md_model(sizes)
        opt = md.optim.Adam(model.params, lr=LR, betas=BETAS, eps=EPS)
        md_step = md_step_fn(model, opt, X, T, loss)
        md_L = md_step()
        first = {"matdiff": time.perf_counter() - t0}
        md_p = {n: model.params[n].copy() for n in names}

        t0 = time.perf_counter()
        t_step, t_ps = torch_setup(init, names, X, T, labels, loss, neuron)
        t_L = t_step()
        first["torch"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        j_call, j_reset, j_state = jax_setup(init, names, X, T, loss, neuron)
        j_reset()
        j_L = j_call()
        first["jax"] = time.perf_counter() - t0

        ok = {
            "torch": close(md_L, t_L.numpy()) and all(
                close(md_p[n], p.detach().numpy()) for n, p in zip(names, t_ps)),
            "jax": close(md_L, j_L) and all(
                close(md_p[n], p) for n, p in zip(names, j_state["ps"])),
        }
        calls = {"matdiff": md_step, "torch": t_step, "jax": j_call}
        if fused_opt["enabled"]:
            u_model = md_model(sizes)
            u_step = numpy_update(md_step_fn(
                u_model, md.optim.Adam(u_model.params, lr=LR, betas=BETAS, eps=EPS),
                X, T, loss))
            u_L = u_step()
            ok["matdiff_numpy_adam"] = close(md_L, u_L) and all(
                close(md_p[n], u_model.params[n]) for n in names)
            calls["matdiff_numpy_adam"] = u_step
            first["matdiff_numpy_adam"] = None
        for name, knobs in forced.items():
            f_step, f_L, f_p = md_forced(knobs, sizes, X, T, loss)
            ok[name] = close(md_L, f_L) and all(close(md_p[n], f_p[n]) for n in names)
            calls[name] = f_step
            first[name] = None
        if not all(ok.values()):
            bad = [k for k, v in ok.items() if not v]
            raise SystemExit(f"{key}: the step of {bad} differs from matdiff's")

        # warm-up, then interleaved timed rounds
        times: dict[str, list[float]] = {k: [] for k in calls}
        for c in calls.values():
            for _ in range(5):
                c()
        pc = time.perf_counter
        order = list(calls)
        for r in range(rounds):
            # each round in another order; a pause and an untimed step before each
            # batch (the previous contender's pool threads asleep, this one's awake)
            for name in order[r % len(order):] + order[:r % len(order)]:
                c = calls[name]
                time.sleep(0.005)
                c()
                gc.collect()
                gc.disable()
                try:
                    start = pc()
                    ts = times[name]
                    for _ in range(per_round):
                        t = pc()
                        c()
                        ts.append(pc() - t)
                        if pc() - start > budget and len(ts) >= 3:
                            break
                finally:
                    gc.enable()
        for name in calls:
            ts = np.array(times[name])
            row[name] = {"median_s": float(np.median(ts)), "min_s": float(ts.min()),
                         "repeats": int(ts.size), "first_step_s": first[name]}
        for peer in ("torch", "jax"):
            row[peer]["ok"] = True
            row[peer]["ratio"] = row["matdiff"]["median_s"] / row[peer]["median_s"]
            row[peer]["ratio_min"] = row["matdiff"]["min_s"] / row[peer]["min_s"]
        variants = [n for n in calls if n.startswith("matdiff_")]
        for name in variants:  # each forced policy, the NumPy update, against jax.jit
            row[name]["ratio_vs_jax"] = row[name]["median_s"] / row["jax"]["median_s"]
        best = min(("torch", "jax"), key=lambda p: row[p]["median_s"])
        row["faster_peer"] = best
        row["ratio_vs_faster_peer"] = row[best]["ratio"]
        rows.append(row)
        print(f"{label:<34} B={B:<4} matdiff {_fmt(row['matdiff']['median_s']):>8} "
              f"(min {_fmt(row['matdiff']['min_s'])})  torch "
              f"{_fmt(row['torch']['median_s']):>8} ({row['torch']['ratio']:.2f})  jax "
              f"{_fmt(row['jax']['median_s']):>8} ({row['jax']['ratio']:.2f})   first step: "
              f"md {_fmt(first['matdiff'])}, torch {_fmt(first['torch'])}, "
              f"jax {_fmt(first['jax'])}", flush=True)
        for name in variants:
            print(f"    {name:<18} {_fmt(row[name]['median_s']):>8} "
                  f"(min {_fmt(row[name]['min_s'])}), "
                  f"{row[name]['ratio_vs_jax']:.2f} of jax", flush=True)

    info = _machine(args.threads, {"jax": jax.__version__, "torch": torch.__version__})
    _print_table(rows, _fmt)
    variants = [n for n in rows[0] if n.startswith("matdiff_")] if rows else []
    if variants:
        _print_forced(rows, variants, _fmt)
    out = {"machine": info, "quick": quick, "optimizer": {"name": "Adam", "lr": LR,
           "betas": BETAS, "eps": EPS, "fused": bool(fused_opt["enabled"])}, "rows": rows}
    path = args.json or os.path.join(here, "results-train-quick.json" if quick
                                     else "results-train.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, {info['threads']} thread(s), "
          f"BLAS: {info['blas']}")
    print(f"wrote {path}")


def _print_table(rows: list[dict], fmt) -> None:
    print("\n| problem | batch | matdiff | torch eager (ratio) | jax.jit (ratio) | "
          "md first step | torch first step | jax first step |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['batch']} | {fmt(r['matdiff']['median_s'])} | "
              f"{fmt(r['torch']['median_s'])} ({r['torch']['ratio']:.2f}) | "
              f"{fmt(r['jax']['median_s'])} ({r['jax']['ratio']:.2f}) | "
              f"{fmt(r['matdiff']['first_step_s'])} | {fmt(r['torch']['first_step_s'])} | "
              f"{fmt(r['jax']['first_step_s'])} |")


def _print_forced(rows: list[dict], names: list[str], fmt) -> None:
    """The variants' table: the step with each forced policy (two threads) and with the
    NumPy update, against jax.jit."""
    print("\n| problem | batch | matdiff (policy) | " + " | ".join(names)
          + " | jax.jit |")
    print("|---|---|---|" + "---|" * len(names) + "---|")
    for r in rows:
        jax_t = r["jax"]["median_s"]
        cells = [f"{fmt(r[n]['median_s'])} ({r[n]['median_s'] / jax_t:.2f})" for n in names]
        print(f"| {r['label']} | {r['batch']} | {fmt(r['matdiff']['median_s'])} "
              f"({r['jax']['ratio']:.2f}) | " + " | ".join(cells) + f" | {fmt(jax_t)} |")


if __name__ == "__main__":
    main()
