"""What the tests of the one-pass code share (``test_rowblock``, ``test_rowkernel``,
``test_threads``): the variables, the paper's loss and logistic regression, an MLP,
values, the comparison to rounding, the paper's gradients by hand and random
row-local expressions."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import matdiff as md

X, y = md.matrix("X", "N", "d"), md.vector("y", "N")
w, b, a = md.vector("w", "d"), md.scalar("b"), md.scalar("a")
W, v = md.matrix("W", "d", "k"), md.vector("v", "k")

PAPER = md.mean((y - md.maximum(0, X @ w + b)) ** 2)
LOGREG = md.mean(md.log(1 + md.exp(-y * (X @ w))))


def mlp():
    """Softmax cross-entropy of a 1-hidden-layer ReLU network over a batch B, and
    its parameters and input."""
    Xm, Y = md.matrix("X", "B", "I"), md.matrix("Y", "B", "K")
    W1, b1 = md.matrix("W1", "I", "H"), md.vector("b1", "H")
    W2, b2 = md.matrix("W2", "H", "K"), md.vector("b2", "K")
    Z = md.relu(Xm @ W1 + b1) @ W2 + b2
    loss = md.mean(md.logsumexp(Z) - md.sum(Y * Z, 1))
    return loss, [W1, b1, W2, b2, Xm]


def values(N: int, dtype=np.float64, seed: int = 0, d: int = 4, k: int = 3) -> dict:
    """Random values of X, y (±1), w, b, a, W and v for N rows, in ``dtype``."""
    rng = np.random.default_rng(seed)
    vals = {"X": rng.standard_normal((N, d)), "y": np.sign(rng.standard_normal(N)),
            "w": rng.standard_normal(d), "b": np.float64(0.1), "a": np.float64(0.7),
            "W": rng.standard_normal((d, k)), "v": rng.standard_normal(k)}
    return {n: np.asarray(x, dtype=dtype) for n, x in vals.items()}


def same(got, want, dtype=np.float64) -> None:
    """Equal to rounding (blocks, halves and kernels add the same terms in another
    order), in the same dtype and shape."""
    rtol, atol = (1e-12, 1e-12) if dtype == np.float64 else (2e-5, 2e-6)
    assert len(got) == len(want)
    for g, e in zip(got, want):
        g, e = np.asarray(g), np.asarray(e)
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def paper_by_hand(vals, last: str = "X") -> list:
    """[f, ∂f/∂w, ∂f/∂b, ∂f/∂``last``] of the paper's loss, in float64 by NumPy.

    f = mean((y − relu(Xw + b))²):  r = relu(z) − y,  ∂f/∂z = (2/N) r ⊙ step(z),
    ∂f/∂w = Xᵀ ∂f/∂z,  ∂f/∂b = 1ᵀ ∂f/∂z,  ∂f/∂X = (∂f/∂z) wᵀ,  ∂f/∂y = −(2/N) r."""
    Xv, yv, wv, bv = (np.asarray(vals[k], np.float64) for k in "Xywb")
    N = len(yv)
    z = Xv @ wv + bv
    r = np.maximum(z, 0) - yv
    gz = (2 / N) * r * (z > 0)
    return [np.mean(r * r), Xv.T @ gz, np.sum(gz),
            np.outer(gz, wv) if last == "X" else -(2 / N) * r]


ROW_FNS = [md.tanh, md.sin, md.sigmoid, md.softplus, md.relu,
           lambda e: md.exp(md.sin(e)), lambda e: e * e]


def rows(draw, kind: str, depth: int):
    """A random expression of shape (N,) (``kind`` "n") or (N, k), local to the
    rows; ``draw`` is a Hypothesis ``st.composite``'s."""
    if depth == 0 or draw(st.integers(0, 5)) == 0:
        if kind == "n":
            return draw(st.sampled_from([X @ w, y, X @ w + b, a * y]))
        return draw(st.sampled_from([X @ W, md.tanh(X @ W) + v]))
    c = draw(st.integers(0, 4))
    if c == 0:
        return draw(st.sampled_from(ROW_FNS))(rows(draw, kind, depth - 1))
    if c == 1:
        return rows(draw, kind, depth - 1) * rows(draw, kind, depth - 1)
    if c == 2:
        return rows(draw, kind, depth - 1) - a * rows(draw, kind, depth - 1)
    if kind == "n" and c == 3:  # a function of the last axis of row vectors
        return md.logsumexp(rows(draw, "nk", depth - 1))
    if kind == "n":
        return rows(draw, "nk", depth - 1) @ v
    if c == 3:
        return md.outer(rows(draw, "n", depth - 1), v)
    return rows(draw, "nk", depth - 1) + v
