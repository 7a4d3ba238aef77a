"""Sums in normal form: nested sums flatten, equal terms merge (``T + T = 2T``), zeros
drop, a coefficient every term shares comes out (``2x − 2y = 2(x − y)``), and a small
sum of small products takes out a factor its terms share on the same axes
(``Xᵀdiag(a)X + Xᵀdiag(b)X = Xᵀdiag(a + b)X``, ``Y/N − S/N = (Y − S)/N``)."""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import ShapeError
from ..core import Add, Const, Einsum, Expr, shape_str
from ..selection import Concat
from .constants import zeros
from .products import einsum, scale, split_coef

#: common factors are taken out of sums of at most this many terms, each a product
#: of at most _FACTOR_OPS operands (see _factor)
_FACTOR_TERMS = 8
_FACTOR_OPS = 8
#: a sum of more terms is kept as one term of its parent (so that building a sum
#: term by term stays linear; equal terms are merged within each group)
MAX_FLAT_SUM = 64


def add(terms: Sequence[Expr]) -> Expr:
    """The sum of terms of one shape, with equal terms merged and zeros dropped."""
    terms = list(terms)
    if not terms:
        raise ShapeError("internal: an empty sum")
    shape = terms[0].shape
    flat: list[Expr] = []
    stack = list(reversed(terms))
    while stack:
        t = stack.pop()
        if t.shape != shape:
            raise ShapeError(
                f"cannot add shapes {shape_str(shape)} and {shape_str(t.shape)}"
            )
        if isinstance(t, Add) and len(t.children) <= MAX_FLAT_SUM:
            stack.extend(reversed(t.written_terms()))  # a + (b + c): in written order
        else:
            flat.append(t)
    coefs: dict = {}
    first: dict = {}  # a core met once keeps its term as it was
    order: list = []
    for t in flat:
        c, core = split_coef(t)
        if isinstance(t, Const) and t.value == 0.0:
            continue
        if core not in coefs:
            coefs[core] = 0.0
            first[core] = t
            order.append(core)
        else:
            first[core] = None
        coefs[core] += c
    out = []
    for core in order:
        c = coefs[core]
        if c == 0.0:
            continue
        if first[core] is not None:
            out.append(first[core])
        elif isinstance(core, Const):
            out.append(Const(c * core.value, shape))
        else:
            out.append(scale(core, c))
    if sum(isinstance(t, Concat) for t in out) > 1:
        # sum_of_concats (simplify/selection.py): [a, b] + [c, d] = [a + c, b + d]
        from .selection import sum_of_concats

        merged = sum_of_concats(out)
        if merged is not None:
            return add(merged)
    if not out:
        return zeros(shape)
    if len(out) > 1:
        out = _factor(out, len(shape))
    if len(out) == 1:
        return out[0]
    # a coefficient every term shares comes out: c·a − c·b = c(a − b)
    cs = [split_coef(t)[0] for t in out]
    c = abs(cs[0])
    if c != 1.0 and all(abs(ci) == c for ci in cs) \
            and not any(isinstance(t, Const) for t in out):
        return scale(add([scale(split_coef(t)[1], ci / c) for t, ci in zip(out, cs)]), c)
    # canonical order for the node (a + b and b + a are one), the written order beside
    written = list(out)
    out.sort(key=lambda t: split_coef(t)[1].sort_key())
    return Add(out, written)


def _factor(terms: list[Expr], rank: int) -> list[Expr]:
    """Common factors out of a sum: ``Σᵢ F rᵢ = F (Σᵢ rᵢ)``.

    ``F`` is an operand that several product terms share with the same output axes and
    no summed letter (so it can leave the sums inside each term); the rests ``rᵢ``
    must read the same output axes, so their sum is a plain tensor over them.  This is
    what turns the logistic Hessian ``Xᵀdiag(a)X + Xᵀdiag(b)X`` into
    ``Xᵀdiag(a + b)X`` (one weight vector, one product), and ``diag(a) + diag(b)`` into
    ``diag(a + b)``.

    Only small sums of small products take part, and never a product that already
    holds a sum: factoring the sums that reverse mode builds term by term would nest
    them Horner-fashion, one level per term, and cost quadratic time."""
    if len(terms) > _FACTOR_TERMS:
        return terms
    for _ in range(len(terms)):
        groups: dict = {}
        for t in terms:
            if not isinstance(t, Einsum) or len(t.children) > _FACTOR_OPS \
                    or any(isinstance(c, Add) for c in t.children):
                continue
            seen = set()
            for k, (e, sp) in enumerate(zip(t.children, t.specs)):
                if isinstance(e, Const) or len(set(sp)) != len(sp) \
                        or not all(c in t.out for c in sp):
                    continue
                fpos = tuple(t.out.index(c) for c in sp)
                rest = [c for i, s2 in enumerate(t.specs) if i != k for c in s2
                        if c in t.out]
                rpos = tuple(sorted({t.out.index(c) for c in rest}))
                key = (e, fpos, rpos)
                if key not in seen:
                    seen.add(key)
                    groups.setdefault(key, []).append((t, k))
        best = max(groups.items(), key=lambda kv: len(kv[1]), default=None)
        if best is None or len(best[1]) < 2:
            return terms
        (F, fpos, rpos), members = best
        rests = []
        for t, k in members:
            ops = [e for i, e in enumerate(t.children) if i != k]
            sps = [s2 for i, s2 in enumerate(t.specs) if i != k]
            by_pos = {t.out.index(c): c for s2 in sps for c in s2 if c in t.out}
            rests.append(einsum(ops, sps, [by_pos[q] for q in rpos]))
        factored = einsum([F, add(rests)], [fpos, rpos], range(rank))
        used = {id(t) for t, _ in members}
        terms = [factored] + [t for t in terms if id(t) not in used]
        if len(terms) == 1:
            return terms
    return terms
