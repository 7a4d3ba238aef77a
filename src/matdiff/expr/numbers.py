"""Exact numbers: a float that is a simple fraction of integers (``1/9``, ``2/3``), or
a simple fraction of a closed form (``2/√π``, ``1/√(2π)``, ``√2``, ``π/4``,
``log(2)``).

Constants are floats everywhere in matdiff (the derivative of ``erf`` multiplies by
``1.1283791670955126``, a user's :func:`~matdiff.define_function` may write the same
number); the printers ask :func:`exact_number` how to write one.  It is a small,
deterministic ``mpmath.identify``: ``v`` is recognised as ``(p/q)·c`` or
``(p/q)/c`` for a fraction with ``|p| ≤ 1000``, ``q ≤ 100`` and ``c`` a constant of
:data:`CLOSED_FORMS`, when that product, computed in floating point, is within two
ulps of ``v`` (the rounding of one multiplication and one division).  A decimal of
up to 8 digits (``0.5``, ``3.14159``) is never recognised: it prints as it was typed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["ClosedForm", "Exact", "CLOSED_FORMS", "simple_fraction", "exact_number"]

#: the largest numerator and denominator of the fraction before a closed form
MAX_NUMERATOR, MAX_DENOMINATOR = 1000, 100


@dataclass(frozen=True)
class ClosedForm:
    """A constant matdiff writes by name: its value and its spelling in each format.

    ``unicode`` is what the unicode syntax reads back (``π``, ``√π``, ``√(2π)``,
    ``log(2)``; Euler's number is ``exp(1)``, since ``e`` is a scalar variable by
    matrixcalculus.org's letters); ``latex`` is for KaTeX; ``mc`` is matrixcalculus.org's
    syntax, which has no ``π``: the float's shortest repr, which reads back to the same
    double; ``atom``: whether the Unicode text is an atom (``π``, ``log(2)``) rather
    than a prefix operator's (``√2``)."""

    value: float
    unicode: str
    latex: str
    mc: str
    atom: bool = True


_PI = repr(math.pi)

#: the closed forms, in order of preference where two write one number
CLOSED_FORMS: tuple[ClosedForm, ...] = (
    ClosedForm(math.pi, "π", r"\pi", _PI),
    ClosedForm(math.sqrt(math.pi), "√π", r"\sqrt{\pi}", f"sqrt({_PI})", atom=False),
    ClosedForm(math.sqrt(2 * math.pi), "√(2π)", r"\sqrt{2\pi}", f"sqrt(2*{_PI})",
               atom=False),
    ClosedForm(math.sqrt(2.0), "√2", r"\sqrt{2}", "sqrt(2)", atom=False),
    ClosedForm(math.sqrt(3.0), "√3", r"\sqrt{3}", "sqrt(3)", atom=False),
    ClosedForm(math.log(2.0), "log(2)", r"\log(2)", "log(2)"),
    ClosedForm(math.log(10.0), "log(10)", r"\log(10)", "log(10)"),
    ClosedForm(math.e, "exp(1)", r"\mathrm{e}", "exp(1)"),
)


@dataclass(frozen=True)
class Exact:
    """``v = (p/q)·c`` (``power`` 1) or ``(p/q)/c`` (``power`` −1), ``q ≥ 1``, ``p``
    with the sign; ``form`` None for a plain fraction ``p/q``."""

    p: int
    q: int
    form: ClosedForm | None = None
    power: int = 1

    @property
    def value(self) -> float:
        """The number it writes, computed as the recogniser checks it."""
        if self.form is None:
            return self.p / self.q
        if self.power > 0:
            return self.p * self.form.value / self.q
        return self.p / (self.q * self.form.value)

    def parts(self, spelling: str = "unicode") -> tuple[list[str], list[str]]:
        """The factors above and below the fraction bar, without the sign, in a
        format's spelling (``"unicode"``, ``"latex"``, ``"mc"``): ``2/√π`` is
        ``(["2"], ["√π"])``, ``π/4`` is ``(["π"], ["4"])``, ``1/9`` is
        ``(["1"], ["9"])``.

        >>> exact_number(2 / math.sqrt(math.pi)).parts()
        (['2'], ['√π'])
        """
        top = [str(abs(self.p))] if abs(self.p) != 1 or self.form is None \
            or self.power < 0 else []
        bottom = [str(self.q)] if self.q != 1 else []
        if self.form is not None:
            text = getattr(self.form, spelling)
            (top if self.power > 0 else bottom).append(text)
        return top, bottom

    def __str__(self) -> str:
        """The Unicode text: ``2/√π``, ``−π/4``, ``3/(2√π)``, ``1/9``."""
        top, bottom = self.parts()
        sign = "−" if self.p < 0 else ""
        if not bottom:
            return sign + "".join(top)
        den = bottom[0] if len(bottom) == 1 else "(" + "".join(bottom) + ")"
        return sign + ("".join(top) or "1") + "/" + den


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


@functools.lru_cache(maxsize=4096)
def exact_number(v: float) -> Exact | None:
    """How ``v`` is written exactly: a simple fraction (:func:`simple_fraction`), else
    a fraction of a closed form of :data:`CLOSED_FORMS` (the simplest fraction wins,
    then the table's order, a factor before a divisor); None for integers, short
    decimals and everything else.

    >>> [str(exact_number(v)) for v in (1 / 9, 2 / math.sqrt(math.pi), math.pi / 4)]
    ['1/9', '2/√π', 'π/4']
    >>> exact_number(0.3989422804014327).parts("latex")
    (['1'], ['\\\\sqrt{2\\\\pi}'])
    >>> exact_number(0.5), exact_number(3.14159), exact_number(2.0)
    (None, None, None)
    """
    v = float(v)
    frac = simple_fraction(v)
    if frac is not None:
        return Exact(*frac)
    if not math.isfinite(v) or v == 0.0 or v.is_integer() or len(repr(v)) <= 9:
        return None
    best: tuple[int, int, Exact] | None = None
    tol = 2 * math.ulp(v)
    for rank, form in enumerate(CLOSED_FORMS):
        for power in (1, -1):
            # v = (p/q)·c^power  <=>  v / c^power = p/q
            ratio = v / form.value if power > 0 else v * form.value
            c = form.value
            for p, q in _convergents(ratio):
                if abs(p) > MAX_NUMERATOR:
                    break
                # the value as Exact.value computes it
                if p == 0 or abs((p * c / q if power > 0 else p / (q * c)) - v) > tol:
                    continue
                key = (max(abs(p), q), 2 * rank + (power < 0))
                if best is None or key < best[:2]:
                    best = (*key, Exact(p, q, form, power))
                break
    return best[2] if best is not None else None


def _convergents(r: float) -> Iterator[tuple[int, int]]:
    """The continued fraction's convergents ``p/q`` of ``r`` with ``q ≤ MAX_DENOMINATOR``
    (computed in floats: a few steps).  A fraction within ``1/(2q²)`` of ``r`` is one
    of them (Legendre), so an ``r`` that is ``p/q`` to rounding is found."""
    h0, h1, k0, k1 = 0, 1, 1, 0  # p₋₂, p₋₁, q₋₂, q₋₁
    x = r
    for _ in range(32):
        a = math.floor(x)
        h0, h1 = h1, a * h1 + h0
        k0, k1 = k1, a * k1 + k0
        if k1 > MAX_DENOMINATOR:
            return
        yield h1, k1
        frac = x - a
        if frac < 1e-9:
            return
        x = 1.0 / frac

