"""How long matdiff takes to build, differentiate and simplify, by expression size.

Prints a table (and writes JSON with --json PATH) of the time to derive the paper's
one-neuron loss by w and b, and to build and derive generated chains and trees of
10 to 10,000 operations; the growth with size should be linear.

    python benchmarks/derive_scaling.py [--repeats 7] [--json benchmarks/results/derive.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import numpy as np  # noqa: E402

import matdiff as md  # noqa: E402
from matdiff.expr import core  # noqa: E402


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "matdiff": md.__version__,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def fresh() -> None:
    """Forget every interned node, so each repeat builds from scratch."""
    core._TABLE.clear()


def paper_loss() -> None:
    fresh()
    X, w = md.matrix("X", "N", "n"), md.vector("w", "n")
    y, b = md.vector("y", "N"), md.scalar("b")
    C = md.mean((y - md.maximum(0, X @ w + b)) ** 2)
    md.derive(C, w)
    md.derive(C, b)


def paper_loss_text() -> None:
    fresh()
    shapes = {"X": ("N", "n"), "w": ("n",), "y": ("N",), "b": ()}
    C = md.parse("mean((y - max(0, X @ w + b))**2)", shapes=shapes)
    md.derive(C, "w")
    md.derive(C, "b")


def chain(n_ops: int):
    """sin, A@, * x, tanh, + y repeated: a deep chain, every step on the path to x."""
    x, y, A = md.vector("x", "n"), md.vector("y", "n"), md.matrix("A", "n", "n")
    e = x
    for i in range(n_ops):
        k = i % 5
        e = (md.sin(e) if k == 0 else A @ e if k == 1 else e * x if k == 2
             else md.tanh(e) if k == 3 else e + y)
    return md.sum(e), x


def tree(n_ops: int):
    """A balanced tree of products and sums of element-wise functions of leaves."""
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    leaves = []
    for i in range(max(1, n_ops // 3)):
        leaves.append(md.sin(x * float(i + 1)) if i % 2 else A @ md.tanh(x + float(i)))
    k = 0
    while len(leaves) > 1:
        nxt = []
        for a, b in zip(leaves[::2], leaves[1::2]):
            nxt.append(a * b if k % 2 else a + b)
            k += 1
        if len(leaves) % 2:
            nxt.append(leaves[-1])
        leaves = nxt
    return md.sum(leaves[0]), x


def timeit(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--max-ops", type=int, default=10_000)
    args = ap.parse_args(argv)

    rows = []
    med, mn = timeit(paper_loss, max(args.repeats, 21))
    rows.append({"problem": "paper loss, derive by w and b (Python API)", "ops": 9,
                 "median_s": med, "min_s": mn})
    med, mn = timeit(paper_loss_text, max(args.repeats, 21))
    rows.append({"problem": "paper loss, parse + derive by w and b", "ops": 9,
                 "median_s": med, "min_s": mn})
    sizes = [s for s in (10, 100, 1000, 10_000) if s <= args.max_ops]
    for kind, gen in (("chain", chain), ("tree", tree)):
        for n in sizes:
            def run(gen=gen, n=n):
                fresh()
                f, x = gen(n)
                g = md.derive(f, x)
                return g
            med, mn = timeit(run, args.repeats if n < 10_000 else max(3, args.repeats // 2))
            fresh()
            f, x = gen(n)
            nodes_f = f.count_nodes()
            nodes_g = md.derive(f, x).count_nodes()
            rows.append({"problem": f"{kind}: build + derive gradient", "ops": n,
                         "median_s": med, "min_s": mn, "nodes_f": nodes_f,
                         "nodes_grad": nodes_g})

    info = machine()
    print(f"matdiff {info['matdiff']} on {info.get('cpu', info['processor'])}, "
          f"{info['cpus']} CPUs, Python {info['python']}, NumPy {info['numpy']}")
    print(f"{'problem':46s} {'ops':>6s} {'median ms':>10s} {'min ms':>9s} "
          f"{'µs/op':>7s} {'nodes f→∂f':>14s}")
    for r in rows:
        per = r["median_s"] / r["ops"] * 1e6
        nodes = f"{r.get('nodes_f', '')}→{r.get('nodes_grad', '')}" if "nodes_f" in r else ""
        print(f"{r['problem']:46s} {r['ops']:6d} {r['median_s'] * 1e3:10.3f} "
              f"{r['min_s'] * 1e3:9.3f} {per:7.1f} {nodes:>14s}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
