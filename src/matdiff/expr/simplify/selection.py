"""Selections and concatenations in normal form (the nodes of
:mod:`matdiff.expr.selection`).

In index notation, with ``o_k`` the offset of part ``k`` of a concatenation ``C``
along its axis and ``S`` a selection of positions::

    take_of_concat     C[…, o_k + t, …] = part_k[…, t, …]    (a slice spanning parts:
                                                           the concatenation of the pieces)
    take_of_take       x[s₁ + d₁·(s₂ + d₂ t)] = x[s₁ + d₁s₂ + d₁d₂ t]
    take_of_product    (Π opsⱼ)[…, S(c), …] = Π opsⱼ[…, S(c), …]   (every operand
                                                           reading the letter c selects)
    take_of_sum        (Σ tⱼ)[S] = Σ tⱼ[S];  f(a, b)[S] = f(a[S], b[S]) element-wise
    take_of_delta      I[p, :] = e_p (1 placed at p);  I[S, :] = I placed at S
    take_of_constant   c1[S] = c1
    full_slice         x[0 : n : 1] = x
    product_of_concat  Σ … C[…, c, …] …   with c a free letter read by C alone
                       = concat_k (Σ … part_k[…, c, …] …)
    sum_of_concats     concat(a₁, …) + concat(b₁, …) = concat(a₁ + b₁, …)  (the parts
                                                           cut at the union of the offsets)
    flatten            concat(concat(a, b), c) = concat(a, b, c) along one axis
                       (a constant block of length one is a row)
    constant           concat(c1, c1) = c1

:func:`place` is the adjoint of a selection, a scatter into zeros written as a
concatenation with zero blocks, so a selection of a placement is the part again (or
zero) by ``take_of_concat``.  Every rule keeps the value; tests/test_stacking.py checks
each in numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core import Add, Const, Delta, Einsum, Expr, Map
from ..dims import Dim, dim_add, dim_mul, dim_sub
from ..selection import Concat, Key, Take, _le
from .constants import zeros

__all__ = ["take", "concat", "place", "product_of_concat", "sum_of_concats"]


def _zero_block(like: Expr, axis: int, length: Dim, row: bool) -> Expr | None:
    """Zeros shaped as ``like`` (a row lacks the axis) with ``length`` on the axis;
    ``None`` for a length of 0."""
    if length == 0:
        return None
    base = like.shape if row else like.shape[:axis] + like.shape[axis + 1:]
    return zeros(base[:axis] + (length,) + base[axis:])


def place(g: Expr, axis: int, key: Key, n: Dim) -> Expr:
    """``g`` scattered into zeros of length ``n`` along ``axis`` at the positions of
    ``key`` (the adjoint of :class:`Take`): ``place(g)[…, S(t), …] = g[…, t, …]``, 0
    elsewhere."""
    if len(key) == 1:
        p = key[0]
        pieces = [(_zero_block(g, axis, p, True), False), (g, True),
                  (_zero_block(g, axis, dim_sub(dim_sub(n, p), 1), True), False)]
        return _join(pieces, axis)
    start, count, step = key
    if step == 1:
        pieces = [(_zero_block(g, axis, start, False), False), (g, False),
                  (_zero_block(g, axis, dim_sub(dim_sub(n, start), count), False), False)]
        return _join(pieces, axis)
    if step == -1:  # the positions start, start − 1, …: scatter the reversed g
        low = dim_add(dim_sub(start, count), 1)
        rev = take(g, axis, (dim_sub(count, 1), count, -1))
        pieces = [(_zero_block(g, axis, low, False), False), (rev, False),
                  (_zero_block(g, axis, dim_sub(dim_sub(n, start), 1), False), False)]
        return _join(pieces, axis)
    # a strided slice (its count is an int, slice_key sees to it): row by row, the
    # positions in increasing order with zero blocks of |step| − 1 between them
    assert isinstance(count, int)
    ts = range(count) if step > 0 else range(count - 1, -1, -1)
    low = start if step > 0 else dim_add(start, (count - 1) * step)
    high = dim_add(start, (count - 1) * step) if step > 0 else start
    pieces = [(_zero_block(g, axis, low, False), False)]
    for i, t in enumerate(ts):
        if i:
            pieces.append((_zero_block(g, axis, abs(step) - 1, False), False))
        pieces.append((take(g, axis, (t,)), True))
    pieces.append((_zero_block(g, axis, dim_sub(dim_sub(n, high), 1), False), False))
    return _join(pieces, axis)


def _join(pieces: list, axis: int) -> Expr:
    live = [(p, r) for p, r in pieces if p is not None]
    return concat([p for p, _ in live], axis, [r for _, r in live])


# ====================================================================== concat
def concat(parts: Sequence[Expr], axis: int, rows: Sequence[bool]) -> Expr:
    """The concatenation of ``parts`` along ``axis`` (rows lack the axis), in normal
    form: nested concatenations along the axis flattened (``flatten``), a single
    block is itself, parts all one constant are that constant (``constant``)."""
    flat: list[Expr] = []
    kinds: list[bool] = []
    for p, row in zip(parts, rows):
        if not row and isinstance(p, Concat) and p.axis == axis:
            flat.extend(p.children)
            kinds.extend(p.rows)
        elif not row and p.shape[axis] == 0:
            continue
        elif not row and isinstance(p, Const) and p.shape[axis] == 1:
            # a constant of length one is a row: [a, 0] whichever way the 0 came
            flat.append(Const(p.value, p.shape[:axis] + p.shape[axis + 1:]))
            kinds.append(True)
        else:
            flat.append(p)
            kinds.append(bool(row))
    if len(flat) == 1 and not kinds[0]:
        return flat[0]
    node = Concat(flat, axis, kinds)
    if all(isinstance(p, Const) for p in flat) and len({p.value for p in flat}) == 1:
        return Const(flat[0].value, node.shape)
    return node


# ====================================================================== take
def take(x: Expr, axis: int, key: Key) -> Expr:
    """``x`` selected along ``axis`` by ``key``, in normal form (the rules of the
    module's docstring, in that order)."""
    key = tuple(key)
    n = x.shape[axis]
    if len(key) == 3 and key == (0, n, 1):
        return x
    if isinstance(x, Const):
        return Const(x.value, Take(x, axis, key).shape)
    if isinstance(x, Concat):
        hit = _take_of_concat(x, axis, key)
        if hit is not None:
            return hit
    if isinstance(x, Add):
        from .sums import add

        return add([take(t, axis, key) for t in x.children])
    if isinstance(x, Map):
        from .elementwise import apply

        return apply(x.fn, [take(a, axis, key) for a in x.children])
    if isinstance(x, Take) and x.axis == axis and not x.is_index:
        s1, _, d1 = x.key
        inner = x.children[0]
        if len(key) == 1:
            return take(inner, axis, (dim_add(s1, dim_mul(d1, key[0])),))
        s2, c2, d2 = key
        return take(inner, axis, (dim_add(s1, dim_mul(d1, s2)), c2, d1 * d2))
    if isinstance(x, Delta) and (len(key) == 1 or key[2] == 1):
        # I[S, :] = I_c placed at S along the other axis (I[p, :] = e_p); a strided or
        # reversed selection of I stays one (its placement would select I again)
        c = key[1] if len(key) == 3 else None
        core: Expr = Const(1.0) if c is None else Delta(c)
        other = 0 if c is None else 1 - axis
        return place(core, other, key, n)
    if isinstance(x, Einsum):
        return _take_of_product(x, axis, key)
    return Take(x, axis, key)


def _take_of_product(x: Einsum, axis: int, key: Key) -> Expr:
    """Every operand reading the output letter of ``axis`` selects on it."""
    from .products import einsum

    c = x.out[axis]
    ops, specs = [], []
    for e, s in zip(x.children, x.specs):
        for q in reversed([q for q, l in enumerate(s) if l == c]):
            e = take(e, q, key)
            if len(key) == 1:
                s = s[:q] + s[q + 1:]
        ops.append(e)
        specs.append(s)
    out = [l for l in x.out if l != c] if len(key) == 1 else list(x.out)
    return einsum(ops, specs, out)


def _take_of_concat(x: Concat, axis: int, key: Key) -> Expr | None:
    """A selection of a concatenation: along its axis, the parts (or pieces of
    them) the key covers; along another axis, the concatenation of the selected
    parts.  ``None`` where the positions cannot be compared for all sizes."""
    b = x.axis
    if axis != b:
        parts = []
        for p, row in zip(x.children, x.rows):
            ax = axis if (not row or axis < b) else axis - 1
            parts.append(take(p, ax, key))
        nb = b - 1 if (len(key) == 1 and axis < b) else b
        return concat(parts, nb, x.rows)
    offs = x.offsets()
    if len(key) == 1:
        p = key[0]
        for k, (part, row) in enumerate(zip(x.children, x.rows)):
            lo, hi = _le(offs[k], p), _le(dim_add(p, 1), offs[k + 1])
            if lo is None or hi is None:
                return None
            if lo and hi:
                return part if row else take(part, axis, (dim_sub(p, offs[k]),))
        return None
    s, count, step = key
    if step != 1:
        return None
    e = dim_add(s, count)
    pieces: list[Expr] = []
    kinds: list[bool] = []
    for k, (part, row) in enumerate(zip(x.children, x.rows)):
        after, before = _le(e, offs[k]), _le(offs[k + 1], s)
        if after is None or before is None:
            return None
        if after or before:
            continue
        starts_in, ends_in = _le(offs[k], s), _le(e, offs[k + 1])
        if starts_in is None or ends_in is None:
            return None
        lo = s if starts_in else offs[k]
        hi = e if ends_in else offs[k + 1]
        if row:
            pieces.append(part)
            kinds.append(True)
        elif lo == offs[k] and hi == offs[k + 1]:
            pieces.append(part)
            kinds.append(False)
        else:
            pieces.append(take(part, axis, (dim_sub(lo, offs[k]), dim_sub(hi, lo), 1)))
            kinds.append(False)
    if not pieces:
        return None
    return concat(pieces, axis, kinds)


# ============================================================ products and sums
def product_of_concat(x: Einsum) -> Expr | None:
    """``product_of_concat``: a product that reads a concatenation on a letter no
    other operand reads and that stays in the output is the concatenation of the
    products of its parts (``[a, b]·y = [a·y, b·y]``); ``None`` where no operand is
    such a concatenation."""
    from .products import einsum

    count: dict[int, int] = {}
    for s in x.specs:
        for l in s:
            count[l] = count.get(l, 0) + 1
    for j, (e, s) in enumerate(zip(x.children, x.specs)):
        if not isinstance(e, Concat):
            continue
        c = s[e.axis]
        if c not in x.out or count[c] != 1:
            continue
        pieces = []
        for part, row in zip(e.children, e.rows):
            ops = list(x.children)
            specs = list(x.specs)
            ops[j] = part
            specs[j] = s[:e.axis] + s[e.axis + 1:] if row else s
            out = [l for l in x.out if l != c] if row else list(x.out)
            pieces.append(einsum(ops, specs, out))
        return concat(pieces, x.out.index(c), e.rows)
    return None


def sum_of_concats(terms: list[Expr]) -> list[Expr] | None:
    """``sum_of_concats``: concatenations along one axis among ``terms`` added part by
    part, the parts cut at the union of their offsets; ``None`` where there is nothing
    to merge (or the offsets cannot be ordered for all sizes)."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(terms):
        if isinstance(t, Concat):
            groups.setdefault((t.axis,), []).append(i)
    for (axis,), members in groups.items():
        if len(members) < 2:
            continue
        merged = _merge([terms[i] for i in members], axis)  # type: ignore[misc]
        if merged is None:
            continue
        rest = [t for i, t in enumerate(terms) if i not in members]
        return [merged] + rest
    return None


def _merge(cs: list[Concat], axis: int) -> Expr | None:
    from .sums import add

    points: list[Dim] = []
    for c in cs:
        for o in c.offsets():
            if o not in points:
                points.append(o)
    # order the boundaries (insertion sort on ≤, which must be decidable)
    order: list[Dim] = []
    for p in points:
        k = 0
        while k < len(order):
            le = _le(p, order[k])
            if le is None:
                return None
            if le:
                break
            k += 1
        order.insert(k, p)
    pieces: list[Expr] = []
    kinds: list[bool] = []
    for u, v in zip(order, order[1:]):
        contrib: list[tuple[Expr, bool, Dim]] = []
        for c in cs:
            offs = c.offsets()
            for k, (part, row) in enumerate(zip(c.children, c.rows)):
                if _le(offs[k], u) and _le(v, offs[k + 1]):
                    contrib.append((part, row, offs[k]))
                    break
            else:
                return None
        if any(row for _, row, _ in contrib):
            vals = [part if row else take(part, axis, (dim_sub(u, o),))
                    for part, row, o in contrib]
            pieces.append(add(vals))
            kinds.append(True)
        else:
            vals = []
            for part, _, o in contrib:
                ln = part.shape[axis]
                full = u == o and v == dim_add(o, ln)
                vals.append(part if full else take(part, axis, (dim_sub(u, o),
                                                                dim_sub(v, u), 1)))
            pieces.append(add(vals))
            kinds.append(False)
    return concat(pieces, axis, kinds)

