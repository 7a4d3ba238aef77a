"""Exact numbers: a float that is a simple fraction of integers (``1/9``, ``2/3``)."""

from __future__ import annotations

import math
from fractions import Fraction


def simple_fraction(v: float) -> tuple[int, int] | None:
    """``(p, q)`` with ``q > 1`` when ``v`` is ``p/q`` for a denominator up to 1000 (to
    one ulp) and no short decimal writes it exactly; None otherwise (integers, ``0.5``,
    ``1e-08``, ``π``).

    >>> simple_fraction(1 / 9), simple_fraction(-2 / 3), simple_fraction(0.5)
    ((1, 9), (-2, 3), None)
    """
    v = float(v)
    if not math.isfinite(v) or v.is_integer() or len(repr(v)) <= 9:
        return None
    fr = Fraction(v).limit_denominator(1000)
    if fr.denominator == 1 or abs(float(fr) - v) > math.ulp(v):
        return None
    return fr.numerator, fr.denominator
