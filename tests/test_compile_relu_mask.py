"""The ReLU mask from the ReLU's output: step(x) compiled as step(relu(x)) where
relu(x) is a line already (``Generator.map``), so that x is read by relu alone and
its line fuses with relu's.

Checks: the rule fires in an MLP's gradient (the mask reads relu's line, the
pre-activation is no line of its own) and not where no relu was computed; the
values equal the interpreter's (which computes step(x)) where x is exactly 0, −0,
±inf or nan.  No timings here.
"""

from __future__ import annotations

import re

import numpy as np

import matdiff as md
from matdiff.compile.evaluate import interpret


def _lines(src):
    """Each line's target -> (its code, its comment: a fused line's says what it
    computes)."""
    return {m.group(1): (m.group(2), m.group(3) or "")
            for m in re.finditer(r"^\s*(t\d+) = (.*?)(?:  #(.*))?$", src, re.M)}


def _net():
    X = md.matrix("X", "B", "I")
    W, b, v = md.matrix("W", "I", "H"), md.vector("b", "H"), md.vector("v", "H")
    return md.sum(md.relu(X @ W + b) @ v), (W, b, v)


def _values(rng, B=40, I=30, H=50):
    X = rng.standard_normal((B, I))
    X[:4] = 0.0  # rows whose pre-activation is b itself
    b = rng.standard_normal(H)
    b[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300]
    return {"X": X, "W": rng.standard_normal((I, H)), "b": b, "v": rng.standard_normal(H)}


def test_the_mask_reads_relus_output_and_the_bias_fuses_with_relu():
    f, wrt = _net()
    c = md.compile([f, *[md.derive(f, w) for w in wrt]], dims={"B": 4000, "I": 30, "H": 50})
    lines = _lines(c.source)
    relu = [t for t, (v, note) in lines.items() if "relu(" in v + note]
    assert len(relu) == 1, c.source
    # relu's line computes relu(t + b) itself (fused): the pre-activation is no line
    assert re.search(r"relu\(\S+ \+ ", "".join(lines[relu[0]])), c.source
    assert not any(re.fullmatch(r"\S+ \+ \S+", v) for v, _ in lines.values()), c.source
    steps = ["".join(vn) for vn in lines.values() if "step(" in "".join(vn)]
    assert steps and all(re.search(rf"step\({relu[0]}\)", v) for v in steps), c.source


def test_no_relu_line_no_rewrite():
    x = md.vector("x", "n")
    f = md.sum(md.step(x) * x)
    src = md.compile(f, dims={"n": 5000}).source
    assert "step(a0)" in src, src


def test_values_at_zero_signed_zero_infinities_and_nan():
    f, wrt = _net()
    outs = [f, *[md.derive(f, w) for w in wrt]]
    c = md.compile(outs)
    vals = _values(np.random.default_rng(0))
    with np.errstate(all="ignore"):
        got = c(vals)
        want = [interpret(e, vals) for e in outs]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)
    # the mask is 0 at x = 0, −0, −inf and nan, 1 at +inf and 10⁻³⁰⁰
    gb = np.asarray(got[2])
    mask = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    v, X, W = vals["v"], vals["X"], vals["W"]
    with np.errstate(all="ignore"):
        pre = X @ W + vals["b"]
        want_b = ((pre > 0) * v).sum(0)
    np.testing.assert_allclose(gb[:6], want_b[:6], rtol=1e-12, equal_nan=True)
    assert ((pre[:4, :6] > 0) == mask).all()
