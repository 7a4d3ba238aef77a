"""The planner: in which order the operands of one product are contracted.

The order of every product is chosen here, on the sizes the code is generated at
(the code itself reads its sizes from its inputs, so any order is correct at any
sizes; each choice is recorded, and code is reused at other sizes where every choice
comes out the same: :func:`~.emitter.replay`), for what
:class:`~.products.Products` writes: pairwise
steps, each a direct BLAS call (``@``, ``tensordot``) where one fits.  Products of a
few operands are planned by exhaustive search with the cost model below; longer ones
by opt_einsum.  The planner only reads index sets; it writes no code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import opt_einsum as oe

__all__ = ["CALL", "SEARCH", "SMALL", "plan_pair", "order", "first_step", "transposed_product"]

#: the cost of one NumPy call, in multiply-adds (about a microsecond of small-array
#: work): it makes the planner prefer two BLAS calls to three small einsums
CALL = 5000
#: an einsum with a batch index runs without BLAS: its multiply-adds cost this much more
NO_BLAS = 3
#: products of at most this many operands are planned by exhaustive search
SEARCH = 5
#: an operand this small is scaled as readily as the result (see ``Products.contract``)
SMALL = 16384

#: a product of two matrices C = AB (m × n, summed over k) is computed as (BᵀAᵀ)ᵀ,
#: where the backend asks for it (:func:`transposed_product`), from these sizes on:
#: m ≥ TALL·n, n ≥ TALL_N, m ≥ TALL_M and m·n·k ≥ TALL_WORK multiply-adds
TALL, TALL_N, TALL_M, TALL_WORK = 4, 8, 512, 4 * 10**6

#: a pairwise step: (i, j, the indices it keeps, the index sets after it)
Step = tuple[int, int, frozenset, tuple]


def pairs(sets: Sequence[frozenset], T: frozenset) -> Iterator[Step]:
    """Each pairwise step of a product over index sets ``sets`` with target ``T``:
    ``(i, j, keep, after)``, the indices the step keeps and the sets after it (sorted:
    the planner's memo key)."""
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            rest = [x for k, x in enumerate(sets) if k not in (i, j)]
            keep = (sets[i] | sets[j]) & T.union(*rest)
            yield i, j, keep, tuple(sorted(rest + [keep], key=sorted))


def step_cost(a: frozenset, b: frozenset, keep: frozenset, size_of: Mapping) -> float:
    """Multiply-adds plus calls (:data:`CALL`) of contracting ``a`` with ``b`` to
    ``keep``, as ``Products.pair`` writes it."""
    cost = 0.0
    needed = keep | (a & b)
    for x in (a, b):
        if x - needed:  # an index of one operand alone: summed first
            cost += math.prod(size_of[c] for c in x) + CALL
    a, b = a & needed, b & needed
    flops = math.prod(size_of[c] for c in a | b)
    summed = (a & b) - keep
    if not summed:  # an element-wise or outer product
        return cost + flops + CALL
    if a & b & keep:  # batched and contracted: an einsum, without BLAS
        return cost + NO_BLAS * flops + 2 * CALL
    if len(summed) == 1 and len(a) <= 2 and len(b) <= 2:  # a matrix product
        return cost + flops + CALL
    return cost + flops + 4 * CALL  # tensordot: reshapes and transposes around one


def plan_cost(sets: tuple, T: frozenset, size_of: Mapping, cache: dict) -> float:
    """The least cost of contracting index sets ``sets`` to ``T`` (memoised in
    ``cache``), operands over the same indices merged element-wise after each step as
    ``Products.contract_steps`` does."""
    if sets in cache:
        return cache[sets]
    cost = 0.0
    # operands over the same indices, still needed elsewhere: one multiply each
    merged: list[frozenset] = []
    for k, x in enumerate(sets):
        others = T.union(*(y for m, y in enumerate(sets) if m != k and y != x))
        if x in merged and x <= others:
            cost += math.prod(size_of[c] for c in x) + CALL
        else:
            merged.append(x)
    if len(merged) == 1:
        x = merged[0]
        cost += 0.0 if x == T else math.prod(size_of[c] for c in x) + CALL
    elif all(x <= T for x in merged):
        cost += (len(merged) - 1) * (math.prod(size_of[c] for c in T) + CALL)
    else:
        best = math.inf
        for i, j, keep, after in pairs(merged, T):
            c = step_cost(merged[i], merged[j], keep, size_of)
            if c < best:
                best = min(best, c + plan_cost(after, T, size_of, cache))
        cost += best
    cache[sets] = cost
    return cost


def order(keep: frozenset, natural: str, rest: list[str], tgt: str) -> str:
    """The index order of a pairwise step's result: that of an operand over the
    same indices (they are multiplied next, with no transpose between), else the
    target's where it covers them, else the order of appearance."""
    for x in rest:
        if len(x) == len(keep) and set(x) == keep:
            return x
    if keep <= set(tgt):
        return "".join(c for c in tgt if c in keep)
    return "".join(dict.fromkeys(c for c in natural if c in keep))


def plan_pair(specs: Sequence[str], tgt: str, size_of: Mapping,
              reused: Callable[[int, int, str], bool]) -> tuple[int, int, str]:
    """The pair of operands (index strings ``specs``) to contract first, and the
    indices (in order) its result keeps.

    Exhaustive search over the orders of pairwise steps (a product has few operands
    here), each step costing its multiply-adds plus one call (:data:`CALL`).  A first
    step that ``reused(i, j, res)`` says an earlier line already computed costs
    nothing: the gradient of ``b₁`` reuses the ``(δW₂ᵀ) ⊙ s`` that the gradient of
    ``W₁`` made."""
    T = frozenset(tgt)
    cache: dict = {}
    best = None
    for i, j, keep, after in pairs([frozenset(s) for s in specs], T):
        la, lb = specs[i], specs[j]
        res = order(keep, la + lb, [x for k, x in enumerate(specs) if k not in (i, j)], tgt)
        cost = 0.0 if reused(i, j, res) else \
            step_cost(frozenset(la), frozenset(lb), keep, size_of)
        total = cost + plan_cost(after, T, size_of, cache)
        if best is None or total < best[0]:
            best = (total, i, j, res)
    assert best is not None
    return best[1], best[2], best[3]


def first_step(specs: Sequence[str], tgt: str, size_of: Mapping, optimize: str
               ) -> tuple[tuple[int, ...], list[str], str, bool]:
    """opt_einsum's first step for a long product: the operands it takes, their index
    strings and the result's as it orders them, and whether it is the last step."""
    spec = ",".join(specs) + "->" + tgt
    shapes = [tuple(size_of[c] for c in s) for s in specs]
    opt = optimize if len(specs) <= 6 else "greedy"
    # no intermediate larger than the largest operand (flop ties otherwise pick
    # outer products that are a dimension too large)
    try:
        _, info = oe.contract_path(spec, *shapes, shapes=True, optimize=opt,
                                   memory_limit="max_input")
    except RuntimeError:  # the optimal search finds no order within that limit
        _, info = oe.contract_path(spec, *shapes, shapes=True, optimize=opt)
    inds, einsum_str = info.contraction_list[0][0], info.contraction_list[0][2]
    ins, res = einsum_str.split("->")
    return tuple(inds), ins.split(","), res, len(info.contraction_list) == 1


def transposed_product(m: int, n: int, k: int) -> bool:
    """Whether the product C = AB of an m × k and a k × n matrix is written as
    (BᵀAᵀ)ᵀ (the same numbers: (BᵀAᵀ)ᵀ = AB, each entry the same sum of k products),
    on a backend whose table asks for it (``tall_gemm_transposed``: NumPy float64 on
    OpenBLAS).

    NumPy hands a C-ordered product to BLAS as the column-major Cᵀ = BᵀAᵀ, an n × m
    result; (BᵀAᵀ)ᵀ hands it the m × n one.  OpenBLAS's DGEMM (0.3.31, its SkylakeX
    kernels, one thread) is faster with the long side first.  Measured
    (``benchmarks/README.md``; interleaved medians, time of (BᵀAᵀ)ᵀ over AB, at
    m × k × n): 0.77x at 4096 × 784 × 128 (an MLP's XW₁), 0.81–0.84x at 784 × 4096 ×
    128 (its Xᵀδ), 0.62–0.85x at n = 10 and k ≥ 100, 0.75–0.98x at n = 128; level
    (0.92–1.10x) at n = 32 or 64 with k ≤ 100; mostly slower at m = 391 whatever k
    (1.02–1.68x) and below ~4·10⁶ multiply-adds (up to 1.5x).  A wide result
    (m < n) is the mirror image: AB is the fast form there.  Its SGEMM is the other
    way round (1.02–3.7x slower transposed), so float32 never asks.  The result is
    a transposed (F-ordered) view of a fresh array; element-wise work on it and on
    other products written so keeps that order.

    >>> transposed_product(4096, 128, 784), transposed_product(391, 32, 100)
    (True, False)
    """
    return m >= TALL * n and n >= TALL_N and m >= TALL_M and m * n * k >= TALL_WORK
