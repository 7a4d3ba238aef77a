"""Products written for the BLAS's layout: a tall product of two matrices as (BᵀAᵀ)ᵀ.

``matdiff.compile.plan.transposed_product`` says when (NumPy float64 on OpenBLAS, the
table's ``tall_gemm_transposed``); ``Products.matmul`` writes it.  Checks: the rule
fires where it should and nowhere else (wide, small, float32, other backends), the
numbers equal the plain code (the rule off) for every operand layout and in a sum
written into in place, an MLP's gradient included, and code reused at other sizes
is generated again where the rule decides differently.  No timings here.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import matdiff as md
from matdiff.compile import plan
from matdiff.compile.backends import get_backend


def transposed(src: str) -> list[str]:
    """The lines of generated code that are a product written ``(… @ …).T``: the
    parenthesis opened first closes just before the ``.T`` that ends the line."""
    out = []
    for ln in src.splitlines():
        m = re.match(r"\s*t\d+ = (.*?)(  #.*)?$", ln)
        if not m or not (v := m.group(1)).startswith("(") or not v.endswith(").T"):
            continue
        depth, close = 0, -1
        for j, ch in enumerate(v):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                close = j
                break
        if close == len(v) - 3 and " @ " in v:
            out.append(v)
    return out


@pytest.fixture
def rule_on(monkeypatch):
    """The rule on in the float64 NumPy table whatever this NumPy's BLAS is (it asks
    only on OpenBLAS), so that the code it writes is tested everywhere."""
    monkeypatch.setattr(get_backend("numpy", "float64"), "tall_gemm_transposed", True)


class rule_off:  # noqa: N801 - a context, used as ``with rule_off():``
    """The rule off in the float64 NumPy table: the plain code."""

    def __enter__(self):
        self.table = get_backend("numpy", "float64")
        self.saved, self.table.tall_gemm_transposed = self.table.tall_gemm_transposed, False

    def __exit__(self, *exc):
        self.table.tall_gemm_transposed = self.saved


def test_the_size_rule():
    assert plan.transposed_product(4096, 128, 784)      # an MLP's XW₁
    assert plan.transposed_product(784, 128, 4096)      # its Xᵀδ
    assert plan.transposed_product(4096, 10, 128)       # δ·W₂ᵀ's mirror
    assert not plan.transposed_product(128, 4096, 784)  # wide: AB is the fast form
    assert not plan.transposed_product(391, 32, 100)    # a row block: small
    assert not plan.transposed_product(400, 32, 10**5)  # few rows, whatever k
    assert not plan.transposed_product(10**5, 4, 100)   # a thin result: a GEMV's kind
    assert not plan.transposed_product(2048, 600, 784)  # not tall enough


def test_the_tables_ask_only_for_numpy_float64():
    assert get_backend("numpy", "float32").tall_gemm_transposed is False
    want = "openblas" in str(np.__config__.CONFIG["Build Dependencies"]["blas"]["name"])
    assert get_backend("numpy", "float64").tall_gemm_transposed is want
    for backend in ("jax", "torch"):
        pytest.importorskip(backend)
        assert get_backend(backend, "float64").tall_gemm_transposed is False


def _cases(rng, m, k, n):
    """Products of two matrices in each operand layout: (expression, values, the
    product in NumPy, whether it is written transposed: (AB)ᵀ is wide, BᵀAᵀ's plain
    form is the fast one)."""
    A, B = md.matrix("A", "m", "k"), md.matrix("B", "k", "n")
    At, Bt = md.matrix("A", "k", "m"), md.matrix("B", "n", "k")
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    C = md.matrix("C", "m", "n")
    c = rng.standard_normal((m, n))
    return [(A @ B, {"A": a, "B": b}, a @ b, True),
            (At.T @ B, {"A": a.T.copy(), "B": b}, a @ b, True),
            (A @ Bt.T, {"A": a, "B": b.T.copy()}, a @ b, True),
            (At.T @ Bt.T, {"A": a.T.copy(), "B": b.T.copy()}, a @ b, True),
            ((A @ B).T, {"A": a, "B": b}, (a @ b).T, False),
            # a sum: its accumulator may be the product's own array, added into
            (C + A @ B + 2.0 * C, {"A": a, "B": b, "C": c}, 3.0 * c + a @ b, True)]


@pytest.mark.parametrize("case", range(6))
def test_every_layout_equals_the_plain_product(case, rule_on):
    rng = np.random.default_rng(5 + case)
    m, k, n = 1024, 64, 64
    assert plan.transposed_product(m, n, k)
    e, vals, want, flipped = _cases(rng, m, k, n)[case]
    inputs = {name: v.copy() for name, v in vals.items()}
    on = md.compile(e)
    got = on(vals)
    assert bool(transposed(on.source)) is flipped, on.source
    with rule_off():
        off = md.compile(e)
        plain = off(vals)
        assert not transposed(off.source)
    np.testing.assert_allclose(got, plain, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(on(vals), want, rtol=1e-12, atol=1e-12)  # called again
    for name, v in vals.items():  # an input is never written into
        np.testing.assert_array_equal(v, inputs[name])


def test_wide_small_and_float32_products_stay_plain(rule_on):
    rng = np.random.default_rng(4)
    A, B = md.matrix("A", "m", "k"), md.matrix("B", "k", "n")
    for (m, k, n), dt in [((64, 64, 1024), np.float64),     # wide
                          ((391, 100, 32), np.float64),     # small
                          ((1024, 64, 64), np.float32)]:    # SGEMM: not faster
        a, b = rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)
        c = md.compile(A @ B)
        np.testing.assert_allclose(c({"A": a, "B": b}), a @ b, rtol=1e-5)
        assert not transposed(c.source), c.source


def _mlp():
    X, Y = md.matrix("X", "B", "I"), md.matrix("Y", "B", "K")
    W1, b1 = md.matrix("W1", "I", "H"), md.vector("b1", "H")
    W2, b2 = md.matrix("W2", "H", "K"), md.vector("b2", "K")
    Z = md.relu(X @ W1 + b1) @ W2 + b2
    return md.mean(md.logsumexp(Z) - md.sum(Y * Z, 1))


def test_an_mlp_gradient_equals_the_plain_code(rule_on):
    # the products XW₁, relu(·)W₂, δW₂ᵀ and Xᵀ(…) are tall: each written transposed,
    # the element-wise work between them on F-ordered arrays
    from matdiff.compile import rowblock

    rng = np.random.default_rng(6)
    B, I, H, K = 4096, 784, 128, 10
    vals = {"X": rng.standard_normal((B, I)), "Y": np.eye(K)[rng.integers(0, K, B)],
            "W1": rng.standard_normal((I, H)) * 0.05, "b1": rng.standard_normal(H) * 0.1,
            "W2": rng.standard_normal((H, K)) * 0.1, "b2": rng.standard_normal(K) * 0.1}
    wrt = ["W1", "b1", "W2", "b2"]
    with rowblock.disabled():
        on = md.value_and_grad(_mlp(), wrt)
        got = on(vals)
        assert len(transposed(on.source)) == 4, on.source
        with rule_off():
            off = md.value_and_grad(_mlp(), wrt)
            plain = off(vals)
            assert not transposed(off.source)
    (v, grads), (v0, grads0) = got, plain
    np.testing.assert_allclose(v, v0, rtol=1e-13)
    for g, p in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(g, p, rtol=1e-11, atol=1e-14)
    # against NumPy written out by hand
    X, Y, W1, b1, W2, b2 = (vals[k] for k in ("X", "Y", "W1", "b1", "W2", "b2"))
    A = X @ W1 + b1
    Z = np.maximum(A, 0) @ W2 + b2
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    D = (P - Y) / B
    dA = (D @ W2.T) * (A > 0)
    for g, w in zip(grads, [X.T @ dA, dA.sum(0), np.maximum(A, 0).T @ D, D.sum(0)],
                    strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-14)


def test_other_sizes_generate_again_where_the_rule_decides_otherwise(rule_on):
    rng = np.random.default_rng(8)
    A, B = md.matrix("A", "m", "k"), md.matrix("B", "k", "n")
    c = md.compile(A @ B)
    for m in (1024, 2048, 100):  # tall, tall again (reused), then small
        a, b = rng.standard_normal((m, 64)), rng.standard_normal((64, 64))
        np.testing.assert_allclose(c({"A": a, "B": b}), a @ b, rtol=1e-12, atol=1e-12)
    assert c.cache_info() == {"specialisations": 3, "generated": 2}
    assert not transposed(c.source)
