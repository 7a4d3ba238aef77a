"""Parsing and printing up to the input limits (issue 10, part 6): time against size.

Each family of texts is timed at 1/8, 1/4, 1/2 and all of its limit (the parser's
``MAX_LENGTH`` characters, or ``MAX_DEPTH`` levels of nesting for the power tower);
for each step (parse, print, derive, print the derivative) the table shows the
median time at each size and ``growth``: time per unit of size at the largest size
over the same at the smallest.  Linear time keeps ``growth`` near 1 (n log n a
little above); quadratic time makes it about 8.

    python benchmarks/limits.py [--repeats 3] [--only tower,minus] [--json PATH]

Every repeat forgets the interned expression nodes first, so it builds from scratch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from derive_scaling import fresh, machine  # noqa: E402

import matdiff as md  # noqa: E402
from matdiff.parse import MAX_DEPTH, MAX_LENGTH  # noqa: E402

Step = tuple[str, Callable[[Any], Any]]  # (name, function of the previous result)


def _fit(term: Callable[[int], str], sep: str, limit: int) -> int:
    """The largest count of terms whose text ``term(0) sep term(1) …`` fits ``limit``."""
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(sep.join(term(i) for i in range(mid))) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _mc_error(text: str) -> str:
    try:
        md.parse(text, syntax="matrixcalculus")
    except md.ShapeError as err:
        return type(err).__name__
    raise AssertionError("expected a ShapeError")  # pragma: no cover


class Family:
    """Texts of one shape, by size, and the steps timed on each."""

    def __init__(self, key: str, title: str, unit: str, limit: int,
                 text: Callable[[int], str], steps: list[Step]) -> None:
        self.key, self.title, self.unit, self.limit = key, title, unit, limit
        self.text, self.steps = text, steps

    def sizes(self) -> list[int]:
        return [max(1, self.limit // d) for d in (8, 4, 2, 1)]


def _tower_levels() -> int:
    """The most levels of ``x**x**…**x`` the parser takes (each exponent nests)."""
    n = MAX_DEPTH + 2
    while n > 1:
        try:
            md.parse("**".join(["x"] * n), shapes={"x": ()})
            return n
        except md.LimitError:
            n -= 1
    return n  # pragma: no cover


def families() -> list[Family]:
    scalar_x = {"x": ()}
    square = {"A": ("n", "n")}
    n_sums = _fit(lambda i: f"(x+{i + 1})", "*", MAX_LENGTH)
    n_scalars = _fit(lambda i: f"x{i}", "*", MAX_LENGTH)
    n_mc = _fit(lambda i: f"x{i}", "+", MAX_LENGTH - 4)
    return [
        Family("tower", "x**x**…**x, scalar x: Hessian", "levels", _tower_levels(),
               lambda n: "**".join(["x"] * n),
               [("parse", lambda t: md.parse(t, shapes=scalar_x)),
                ("print", lambda f: (str(f), f)[1]),
                ("Hessian", lambda f: md.hessian(f, "x")),
                ("print Hessian", str)]),
        Family("minus", "x-x-…-x, scalar x", "chars", MAX_LENGTH - 1,
               lambda n: "-".join(["x"] * ((n + 1) // 2)),
               [("parse", lambda t: md.parse(t, shapes=scalar_x)),
                ("print", str)]),
        Family("mc", "x0+x1+…+xk+x0' (matrixcalculus syntax): ShapeError", "terms", n_mc,
               lambda n: "+".join(f"x{i}" for i in range(n)) + "+x0'",
               [("parse (raises)", _mc_error)]),
        Family("matmul", "A@A@…@A, A n×n: derivative by A", "factors",
               (MAX_LENGTH + 1) // 2,
               lambda n: "@".join(["A"] * n),
               [("parse", lambda t: md.parse(t, shapes=square)),
                ("print", lambda f: (str(f), f)[1]),
                ("derive", lambda f: md.derive(f, "A")),
                ("print derivative", str)]),
        Family("scalars", "x0*x1*…*xk, scalars: derivative by x0", "factors", n_scalars,
               lambda n: "*".join(f"x{i}" for i in range(n)),
               [("parse", lambda t: md.parse(t, shapes={f"x{i}": () for i in
                                                       range(t.count("*") + 1)})),
                ("print", lambda f: (str(f), f)[1]),
                ("derive", lambda f: md.derive(f, "x0")),
                ("print derivative", str)]),
        Family("sums", "(x+1)*(x+2)*…, scalar x: derivative", "factors", n_sums,
               lambda n: "*".join(f"(x+{i + 1})" for i in range(n)),
               [("parse", lambda t: md.parse(t, shapes=scalar_x)),
                ("print", lambda f: (str(f), f)[1]),
                ("derive", lambda f: md.derive(f, "x")),
                ("print derivative", str)]),
    ]


def run_family(fam: Family, repeats: int) -> list[dict]:
    """Median and min time of each step at each size."""
    rows = []
    for n in fam.sizes():
        text = fam.text(n)
        times: dict[str, list[float]] = {name: [] for name, _ in fam.steps}
        for _ in range(repeats):
            fresh()
            value: Any = text
            for name, step in fam.steps:
                t = time.perf_counter()
                value = step(value)
                times[name].append(time.perf_counter() - t)
        for name, _ in fam.steps:
            rows.append({"family": fam.key, "step": name, "size": n, "chars": len(text),
                         "median_s": statistics.median(times[name]),
                         "min_s": min(times[name])})
    return rows


def _fmt(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def table(fams: list[Family], rows: list[dict]) -> str:
    lines = []
    for fam in fams:
        sizes = fam.sizes()
        lines.append(f"\n{fam.title} (limit {fam.limit} {fam.unit})")
        head = f"  {'step':18s}" + "".join(f"{n:>11,d}" for n in sizes) + f"{'growth':>9s}"
        lines.append(head)
        for name, _ in fam.steps:
            med = {r["size"]: r["median_s"] for r in rows
                   if r["family"] == fam.key and r["step"] == name}
            small, big = sizes[0], sizes[-1]
            growth = (med[big] / big) / (med[small] / small) if med[small] > 0 else float("nan")
            lines.append(f"  {name:18s}" + "".join(f"{_fmt(med[n]):>11s}" for n in sizes)
                         + f"{growth:9.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", help="comma-separated families: "
                    "tower,minus,mc,matmul,scalars,sums")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)

    fams = families()
    if args.only:
        keep = set(args.only.split(","))
        fams = [f for f in fams if f.key in keep]
    rows = []
    for fam in fams:
        rows += run_family(fam, args.repeats)
    info = machine()
    print(f"matdiff {info['matdiff']} on {info.get('cpu', info['processor'])}, "
          f"{info['cpus']} CPUs, Python {info['python']}; medians of {args.repeats}")
    print(table(fams, rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "repeats": args.repeats, "rows": rows}, fh,
                      indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
