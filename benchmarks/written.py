"""The cost of printing formulas as written (issue 13, item 3): an A/B in one
process, the machinery of :mod:`matdiff.expr.written` on and off (printing: recorded
orders and spellings ignored; parsing: a product's order not recorded), interleaved
runs, medians and their ratio (on / off).

    python benchmarks/written.py
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import matdiff as md  # noqa: E402
from matdiff.expr import written as W  # noqa: E402
from matdiff.expr.simplify import rules  # noqa: E402
from matdiff.render.mform import forms as F  # noqa: E402

on = (W.recorded_order, W.spelling_holds, rules.note_perm)


def toggle(enabled: bool) -> None:
    W.recorded_order, W.spelling_holds, rules.note_perm = on if enabled else (  # type: ignore[assignment]
        lambda n: None, lambda n: None, lambda n, p: None)
    F.written = W  # forms reads written.recorded_order through the module

sq = {"A": ("n", "n")}
loss_sh = {"X": ("N", "d"), "w": ("d",), "y": ("N",), "b": (), "W": ("h", "d"), "v": ("h",)}
cases = {
    "parse A@…@A (2000)": lambda: md.parse("@".join(["A"] * 2000), shapes=sq),
    "parse x0*…*x999": lambda: md.parse("*".join(f"x{i}" for i in range(1000)),
                                         shapes={f"x{i}": () for i in range(1000)}),
}
f_mm = md.parse("@".join(["A"] * 2000), shapes=sq)
f_loss = [md.parse(t, shapes=loss_sh) for t in (
    "mean((y - max(0, X @ w + b))**2)", "sum(log(1+exp(-y*(X@w))))",
    "mean((y - tanh(X @ W.T) @ v - b)**2)", "tr(inv(W@W.T) @ W @ W.T)")]
g_loss = [md.derive(f, v) for f in f_loss for v in f.variables()]
cases["print A@…@A (2000)"] = lambda: md.to_text(f_mm)
cases["print 4 losses + 16 gradients"] = lambda: [md.to_text(e) for e in f_loss + g_loss]
print(platform.processor() or platform.machine(), platform.python_version())
for name, fn in cases.items():
    t = {True: [], False: []}
    for r in range(15):
        for en in (r % 2 == 0, r % 2 == 1):
            toggle(en)
            t0 = time.perf_counter()
            fn()
            t[en].append(time.perf_counter() - t0)
    toggle(True)
    a, b = statistics.median(t[True]), statistics.median(t[False])
    print(f"{name:34s} on {a*1e3:9.2f} ms  off {b*1e3:9.2f} ms  ratio {a/b:5.2f}")
