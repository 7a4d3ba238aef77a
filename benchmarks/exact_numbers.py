"""What printing numbers exactly costs (issue 13): the closed-form recogniser.

Times ``str(g)`` and ``md.latex(g)`` for a few derivatives with constants (erf, GELU,
the paper's loss, ``log det(XᵀX)``), with the printers' recogniser as it is
(``notation.exact``: fractions and closed forms, ``2/√π``) and with fractions only (the
recogniser before issue 13), interleaved in one process; medians and their ratio.
Also the cost of one :func:`matdiff.expr.numbers.exact_number` call on a float that is
no closed form (the worst case: every form of the table is tried).

    python benchmarks/exact_numbers.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import matdiff as md  # noqa: E402
from matdiff.expr.numbers import Exact, exact_number  # noqa: E402
from matdiff.render import notation  # noqa: E402

CASES = [
    ("sum(erf(A @ x))", "x", {"A": ("n", "n"), "x": ("n",)}, 2),
    ("sum(gelu(A @ x))", "x", {"A": ("n", "n"), "x": ("n",)}, 2),
    ("mean((y - max(0, X @ w + b))**2)", "w", {"X": ("N", "n"), "y": ("N",), "w": ("n",),
                                                "b": ()}, 1),
    ("logdet(X.T @ X)", "X", {"X": ("m", "n")}, 1),
]


def _fractions_only(v: float) -> Exact | None:
    frac = notation.exact_fraction(v)
    return Exact(*frac) if frac is not None else None


#: the printers' modules that read the recogniser (each imported it by name)
_MODULES = [sys.modules[f"matdiff.render.{m}"]
            for m in ("notation", "unicode", "latex", "matrixcalculus", "printer")]


def _use(fn) -> None:
    for mod in _MODULES:
        if hasattr(mod, "exact"):
            mod.exact = fn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    exprs = []
    for text, wrt, shapes, order in CASES:
        f = md.parse(text, shapes=shapes)
        exprs.append((text, md.hessian(f, wrt) if order == 2 else md.derive(f, wrt)))
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh
                        if ln.startswith("model name")), cpu)
    except OSError:
        pass
    print(f"machine: {cpu}, {os.cpu_count()} cpus, python {platform.python_version()} "
          "(the recogniser caches its answers: after the first printout both modes cost "
          "the same)")
    closed = notation.exact
    for text, g in exprs:
        times: dict[str, list[float]] = {"closed forms": [], "fractions only": []}
        for _ in range(args.repeats):
            for name, fn in (("closed forms", closed), ("fractions only", _fractions_only)):
                _use(fn)
                t0 = time.perf_counter()
                str(g)
                md.latex(g)
                times[name].append(time.perf_counter() - t0)
        _use(closed)
        a, b = (statistics.median(times[k]) for k in ("closed forms", "fractions only"))
        print(f"{text:40s} str+latex  closed forms {a * 1e3:7.2f} ms   fractions only "
              f"{b * 1e3:7.2f} ms   ratio {a / b:.2f}")
    n = 20000
    t0 = time.perf_counter()
    for k in range(n):
        exact_number(0.123456789 + k * 1e-7)
    per = (time.perf_counter() - t0) / n
    print(f"exact_number on a float that is no closed form: {per * 1e6:.1f} µs per call")


if __name__ == "__main__":
    main()
