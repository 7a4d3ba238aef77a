"""Compile latency and call cost of the fused element-wise kernels (issue 16, item 3).

    python benchmarks/fuse_cache.py                  # ~2 min on 2 cores
    python benchmarks/fuse_cache.py --repeats 5 --json benchmarks/results-fuse-cache.json

Two ways to make a kernel (``matdiff.compile.fuse``), each in fresh Python processes:

* ``cfunc`` (what fuse.py does): a NumPy ufunc whose inner loops are Numba
  ``cfunc``s with ``cache=True``, built with ``numba.np.ufunc._internal.fromfunc``;
* ``vectorize`` (what it did before): ``@numba.vectorize([...], cache=True)``, whose
  scalar function Numba caches but whose loop wrapper it compiles again in each
  process.

For each, a process imports matdiff, then makes K = 1, 5, 20 distinct kernels through
``fuse._compiled`` (each its own constant, so each its own file), once with an empty
``MATDIFF_CACHE_DIR`` (cold) and once more with the same directory (warm); the runs
are interleaved (cfunc cold, vectorize cold, cfunc warm, vectorize warm), repeated,
and the medians and ranges reported.  Also: ``import numba`` alone in a fresh process
(after NumPy and matdiff), and the call cost of one kernel, ``1 − a·b`` and
``1 − a·s`` (s a scalar), against the NumPy form, in interleaved rounds in one
process, float64 and float32.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def _vectorize_source(body: str, nparams: int, funcs, invariant=()) -> str:
    """The kernel module as fuse.py wrote it before (``numba.vectorize``)."""
    params = ", ".join(f"p{i}" for i in range(nparams))
    sigs = [f"{t}({', '.join([t] * nparams)})" for t in ("float32", "float64")]
    return "\n".join(["import numba", "", f"@numba.vectorize({sigs!r}, cache=True)",
                      f"def kernel({params}):", f"    return {body}", ""])


def _body(k: int) -> str:
    return f"((((1.0) - (p0 * p1)) * ({k + 1}.0)) + p1)"


def child(method: str, k: int) -> None:
    """In a fresh process: make ``k`` kernels, print the seconds as JSON."""
    t0 = time.perf_counter()
    sys.path.insert(0, SRC)
    import numpy as np

    from matdiff.compile import fuse

    t1 = time.perf_counter()
    if method == "vectorize":
        fuse._module_source = _vectorize_source  # type: ignore[assignment]
    x = np.linspace(-1.0, 1.0, 10_000)
    times = []
    for i in range(k):
        t = time.perf_counter()
        fn = fuse._compiled(_body(i), 2, ())
        assert fn is not None, "Numba failed"
        r = fn(x, x)
        times.append(time.perf_counter() - t)
        assert np.allclose(r, (1.0 - x * x) * (i + 1) + x)
    print(json.dumps({"import_matdiff": t1 - t0, "first": times[0], "all": sum(times),
                      "rest_each": (sum(times[1:]) / (k - 1)) if k > 1 else None}))


def child_numba() -> None:
    t0 = time.perf_counter()
    sys.path.insert(0, SRC)
    import numpy  # noqa: F401

    import matdiff  # noqa: F401

    t1 = time.perf_counter()
    import numba  # noqa: F401

    print(json.dumps({"import_matdiff": t1 - t0, "import_numba": time.perf_counter() - t1}))


def _run(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def latency(repeats: int) -> dict:
    res: dict = {}
    for _ in range(repeats):
        res.setdefault("import_numba", []).append(
            _run(["--child-numba"], dict(os.environ))["import_numba"])
        for k in (1, 5, 20):
            dirs = {m: tempfile.mkdtemp(prefix=f"mdfc-{m}-") for m in ("cfunc", "vectorize")}
            for state in ("cold", "warm"):
                for m in ("cfunc", "vectorize"):
                    env = dict(os.environ, MATDIFF_CACHE_DIR=dirs[m])
                    r = _run(["--child", m, str(k)], env)
                    res.setdefault(f"{m} {state} K={k}", []).append(r)
    return res


def call_cost(rounds: int) -> dict:
    """Seconds a call, medians of interleaved rounds: the cfunc ufunc, the vectorize
    ufunc and the NumPy form, at n = 10 (the call itself) and 10⁴."""
    sys.path.insert(0, SRC)
    import numpy as np

    from matdiff.compile import fuse

    with tempfile.TemporaryDirectory() as d:
        os.environ["MATDIFF_CACHE_DIR"] = d
        body = "((1.0) - (p0 * p1))"
        new = fuse.load_module(fuse._module_source(body, 2, ()), "bench_cf").kernel
        new_s = fuse.load_module(fuse._module_source(body, 2, (), (1,)), "bench_cfs").kernel
        old = fuse.load_module(_vectorize_source(body, 2, ()), "bench_vec").kernel.ufunc

        def numpy_form(p0, p1):
            return 1.0 - p0 * p1

        out: dict = {}
        for n in (10, 10_000):
            for dt in (np.float64, np.float32):
                a = np.linspace(-1, 1, n).astype(dt)
                b = (a * 0.5).astype(dt)
                s = dt(0.3)
                cases = {"cfunc": (new, (a, b)), "vectorize": (old, (a, b)),
                         "numpy": (numpy_form, (a, b)),
                         "cfunc scalar": (new_s, (a, s)), "vectorize scalar": (old, (a, s)),
                         "numpy scalar": (numpy_form, (a, s))}
                for f, xs in cases.values():
                    assert f(*xs).dtype == numpy_form(*xs).dtype
                    np.testing.assert_array_equal(f(*xs), numpy_form(*xs))
                reps = 2000 if n == 10 else 300
                times: dict = {k: [] for k in cases}
                for r in range(rounds):
                    names = list(cases)
                    names = names[r % len(names):] + names[:r % len(names)]
                    for name in names:
                        f, xs = cases[name]
                        t = time.perf_counter()
                        for _ in range(reps):
                            f(*xs)
                        times[name].append((time.perf_counter() - t) / reps)
                for name, ts in times.items():
                    out[f"n={n} {np.dtype(dt).name} {name}"] = statistics.median(ts)
    return out


def _cpu() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's word for it."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-numba", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]))
    if args.child_numba:
        return child_numba()
    if hasattr(os, "sched_setaffinity"):  # one core, as compare.py
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    lat = latency(args.repeats)
    print("seconds (median [min–max] of", args.repeats, "fresh processes each)")
    for key, runs in lat.items():
        if key == "import_numba":
            v = runs
            print(f"  import numba: {statistics.median(v):.3f} [{min(v):.3f}–{max(v):.3f}]")
            continue
        for part in ("first", "all", "rest_each"):
            v = [r[part] for r in runs if r[part] is not None]
            if v:
                print(f"  {key:24s} {part:9s} {statistics.median(v):.4f} "
                      f"[{min(v):.4f}–{max(v):.4f}]")
    print("machine:", _cpu(), f"{os.cpu_count()} cores, load average", os.getloadavg())
    cost = call_cost(args.rounds)
    print("µs a call (median of", args.rounds, "interleaved rounds)")
    for key, v in cost.items():
        print(f"  {key:34s} {v * 1e6:8.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            import numba

            json.dump({"machine": {"cpu": _cpu(), "python": platform.python_version(),
                                   "cores": os.cpu_count(), "numba": numba.__version__,
                                   "load_average": os.getloadavg()},
                       "latency": lat, "call_s": cost}, fh, indent=1)


if __name__ == "__main__":
    main()
