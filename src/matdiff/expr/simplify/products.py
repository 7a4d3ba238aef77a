"""Products in normal form: :func:`einsum` runs the named rules of
:mod:`matdiff.expr.simplify.rules` over a product; :func:`split_coef` and
:func:`scale` read and set a product's coefficient."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from ..core import Const, Dim, Einsum, Expr
from ..selection import Concat
from . import rules
from .rules import Pass, Product


def einsum(operands: Sequence[Expr], specs: Sequence[Sequence[int]],
           out: Sequence[int], dims: dict[int, Dim] | None = None) -> Expr:
    """The product ``out <- Π operands[specs]``, in normal form.

    An output letter that no operand carries is a broadcast (a factor of ones);
    its dim must then be given in ``dims``.
    """
    result = normalise(Product.of(operands, specs, out, dims))
    if isinstance(result, Einsum) and _any_of(list(result.children), Concat):
        # product_of_concat (simplify/selection.py): [a, b]·y = [a·y, b·y]
        from .selection import product_of_concat

        split = product_of_concat(result)
        if split is not None:
            return split
    return result


def normalise(p: Product, passes: Sequence[Pass] | None = None) -> Expr:
    """Run the passes (by default :data:`rules.PASSES`, looked up on each call) over
    ``p``: in each, the first rule that matches rewrites ``p``, until none matches
    (a ``once`` pass tries each rule once); a rule that returns an expression ends it."""
    for ps in rules.PASSES if passes is None else passes:
        if ps.about is not None and not _any_of(p.ops, ps.about):
            continue
        steps, again = ps.steps, not ps.once
        k, n = 0, len(steps)
        while k < n:
            when, then = steps[k]
            m = when(p)
            if m is None:
                k += 1
                continue
            result = then(p, m)
            if result is not None:
                return result
            k = 0 if again else k + 1
    raise AssertionError("internal: the passes left a product unsettled")


def _any_of(ops: list[Expr], kind: type) -> bool:
    for e in ops:
        if isinstance(e, kind):
            return True
    return False


_SPLIT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def split_coef(e: Expr) -> tuple[float, Expr]:
    """``e = c · core`` with ``c`` a number: the coefficient of a product, else 1."""
    if isinstance(e, Einsum):
        hit = _SPLIT.get(e)
        if hit is None:
            hit = _SPLIT[e] = _split_coef(e)
        return hit
    return _split_coef(e)


def _split_coef(e: Expr) -> tuple[float, Expr]:
    if isinstance(e, Einsum):
        ops = e.children
        if ops and isinstance(ops[0], Const) and not ops[0].shape:
            c = ops[0].value
            rest, specs = ops[1:], e.specs[1:]
            if len(rest) == 1 and specs[0] == e.out and len(set(e.out)) == len(e.out):
                return c, rest[0]
            return c, Einsum(rest, specs, e.out)
    if isinstance(e, Const) and e.value != 0.0:
        return e.value, Const(1.0, e.shape)
    return 1.0, e


def scale(e: Expr, c: float) -> Expr:
    """``c · e``."""
    if c == 1.0:
        return e
    s = tuple(range(len(e.shape)))
    return einsum([Const(c), e], [(), s], s)
