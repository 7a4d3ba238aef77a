"""Element-wise functions, simplified: constants fold, ``a¹ = a``, ``a⁰ = 1``,
``(aᵖ)ᑫ = aᵖᑫ`` for integer ``q``, ``(√a)² = a``, ``log(exp a) = a``,
``exp(log a) = a`` (on log's domain), and ``relu``, ``abs``, ``step`` and ``sign``
are idempotent."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core import Const, Expr, Map


def apply(fn: str, args: Sequence[Expr]) -> Expr:
    """The element-wise function ``fn`` of ``args`` (one shape), simplified."""
    from ..functions import FUNCTIONS

    spec = FUNCTIONS[fn]
    args = tuple(args)
    consts = [a for a in args if isinstance(a, Const)]
    if len(consts) == len(args):  # every argument a constant: fold
        with np.errstate(all="ignore"):
            v = float(spec.numpy(*[np.float64(a.value) for a in consts]))
        # fold only what a float holds: exp(1000) is a finite number that overflows,
        # and folded to ∞ it would poison every derivative it meets (0·∞ = nan where
        # step' = 0 says 0).  Unfolded it stays exact, and evaluates as float does.
        if math.isfinite(v) and _inexact(v, consts):
            return Map(fn, args)  # log(2) stays log(2), not 0.693147
        if math.isfinite(v) or not all(math.isfinite(a.value) for a in consts):
            return Const(v, args[0].shape)
        return Map(fn, args)
    a = args[0]
    if fn == "pow" and isinstance(args[1], Const):
        p = args[1].value
        if p == 1.0:
            return a
        if p == 0.0:
            return Const(1.0, a.shape)
        if isinstance(a, Map) and a.fn == "pow" and isinstance(a.children[1], Const) \
                and float(p).is_integer():
            return apply("pow", (a.children[0], Const(a.children[1].value * p, a.shape)))
        if isinstance(a, Map) and a.fn == "sqrt" and p == 2.0:
            return a.children[0]  # (√a)² = a on sqrt's domain
    if fn == "log" and isinstance(a, Map) and a.fn == "exp":
        return a.children[0]
    if fn == "exp" and isinstance(a, Map) and a.fn == "log":
        return a.children[0]
    if fn in ("relu", "abs", "step", "sign") and isinstance(a, Map) and a.fn == fn:
        return a  # idempotent
    return Map(fn, args)


def _inexact(v: float, args: Sequence[Const]) -> bool:
    """Whether folding integers into ``v`` loses exactness: ``log(2)``, ``√2`` and
    ``exp(1)`` stay as written; ``2³ = 8`` and ``2⁻¹ = 0.5`` fold."""
    from ..numbers import simple_fraction

    if not all(float(a.value).is_integer() for a in args):
        return False
    return not (float(v).is_integer() or len(repr(float(v))) <= 9
                or simple_fraction(v) is not None)
