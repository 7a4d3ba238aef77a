"""The symbols of the Unicode printers: one precedence table, numbers, superscripts,
subscripts and the rule for writing two factors side by side.

Precedence, loosest first (a child binds at least as tightly as its slot needs,
otherwise it gets parentheses):

======== ===================================================  ==========================
level    forms                                                operands need
======== ===================================================  ==========================
SIGMA    ``Σⱼ Aᵢⱼ xⱼ`` (index notation: the sum runs right)   --
ADD      ``a + b``, ``a − b``                                 > ADD (HADAMARD)
KRON     ``B ⊗ A`` (Kronecker, the vec layout)                PRODUCT
HADAMARD ``x ⊙ y``, ``x ⊘ y``                                 POSTFIX
NEG      ``−x``, ``−2x``                                      PRODUCT
PRODUCT  ``Ax``, ``xᵀy``, ``2x``, ``zI``, ``x/z``             PRODUCT (scalars: POSTFIX)
POSTFIX  ``Aᵀ``, ``X⁻¹``, ``x²``, ``x^0.5``, ``√x``           ATOM
ATOM     names, numbers, ``I``, ``1``, calls ``f(…)``, ``(…)``  --
======== ===================================================  ==========================
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..expr.dims import DimPoly

if TYPE_CHECKING:
    from ..expr.numbers import Exact

__all__ = [
    "SIGMA", "ADD", "KRON", "HADAMARD", "NEG", "PRODUCT", "POSTFIX", "ATOM", "MINUS",
    "fmt_number", "superscript_int", "subscript", "letter_names", "juxtapose", "separator",
    "first_word", "last_word", "is_digit", "paren", "abbreviate", "join_capped", "dim_prec",
    "exact_fraction", "exact",
]

SIGMA, ADD, KRON, HADAMARD, NEG, PRODUCT, POSTFIX, ATOM = range(8)

MINUS = "−"  # U+2212, the minus sign (not the hyphen)


def dim_prec(d: Any) -> int:
    """The precedence of a dim printed as a size: ``n + 1`` is a sum, ``m·n`` and
    ``2·n`` products, a name or a number an atom (so ``1/(n + 1)`` keeps its
    parentheses)."""
    if not isinstance(d, DimPoly):
        return ATOM
    if len(d.terms) > 1 or d.terms[0][1] < 0:
        return ADD
    return PRODUCT

_SUPER = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SUB = {"a": "ₐ", "e": "ₑ", "h": "ₕ", "i": "ᵢ", "j": "ⱼ", "k": "ₖ", "l": "ₗ", "m": "ₘ",
        "n": "ₙ", "o": "ₒ", "p": "ₚ", "r": "ᵣ", "s": "ₛ", "t": "ₜ", "u": "ᵤ", "v": "ᵥ",
        "x": "ₓ"}
#: index letters in the order they are handed out (all have Unicode subscripts)
LETTERS = "ijklmprstuvaehonx"
#: characters that are never part of a name or number: superscripts, subscripts, and
#: the ones vector ``𝟏`` (a bold digit to Unicode: ``b𝟏`` is b times 𝟏, ``𝟏xᵀ`` 𝟏
#: times xᵀ, each side by side without a space)
_NOT_NAME = set("⁰¹²³⁴⁵⁶⁷⁸⁹⁻ᵀ𝟏") | set(_SUB.values())


def fmt_number(v: float) -> str:
    """A number, short: integers without ``.0``, at most 6 significant digits,
    a leading minus as ``−``.

    >>> [fmt_number(v) for v in (2.0, 0.5, -1.0, 1e-08, 1 / 3)]
    ['2', '0.5', '−1', '1e-08', '0.333333']
    """
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "∞" if v > 0 else MINUS + "∞"
    if v.is_integer() and abs(v) < 1e15:
        s = str(int(v))
    else:
        s = repr(v)
        if len(s) > 9:
            s = f"{v:.6g}"
    return MINUS + s[1:] if s.startswith("-") else s


def exact_fraction(v: float) -> tuple[int, int] | None:
    """``(p, q)`` when ``v`` prints as the exact fraction ``p/q``: a simple fraction of
    integers (:func:`~matdiff.expr.numbers.simple_fraction`: ``1/9``, ``−2/3``), or a
    half-integer ``p/2`` (``0.5`` is ``1/2``: the ½ of ``d√x = dx/(2√x)`` and of
    ``x^(−1/2)`` comes from integers and prints as they write it, never as a decimal);
    None for integers and other decimals (``0.1``, ``1e-08``).

    >>> exact_fraction(0.5), exact_fraction(-1.5), exact_fraction(1 / 9), exact_fraction(0.1)
    ((1, 2), (-3, 2), (1, 9), None)
    """
    from ..expr.numbers import simple_fraction

    v = float(v)
    frac = simple_fraction(v)
    if frac is not None:
        return frac
    if math.isfinite(v) and not v.is_integer() and (2 * v).is_integer() and abs(v) < 100:
        return int(2 * v), 2
    return None


def exact(v: float) -> Exact | None:
    """How a number prints exactly, or None: an exact fraction (:func:`exact_fraction`:
    ``1/9``, ``1/2``) or a fraction of a closed form
    (:func:`~matdiff.expr.numbers.exact_number`: ``2/√π``, ``1/√(2π)``, ``√2``, ``π``,
    ``log(2)``); each format spells its :meth:`~matdiff.expr.numbers.Exact.parts`.

    >>> str(exact(1.1283791670955126)), str(exact(-0.5)), exact(0.1)
    ('2/√π', '−1/2', None)
    """
    from ..expr.numbers import Exact, exact_number

    frac = exact_fraction(v)
    if frac is not None:
        return Exact(*frac)
    return exact_number(v)


def superscript_int(p: int) -> str:
    """``2 -> '²'``, ``-1 -> '⁻¹'``."""
    return str(int(p)).translate(_SUPER)


def letter_names(count: int, avoid: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """``count`` index letters not in ``avoid``: ``i j k l m p r s t …``, then
    ``i1 i2 …`` when the subscriptable letters run out."""
    out: list[str] = []
    for c in LETTERS:
        if len(out) == count:
            return out
        if c not in avoid:
            out.append(c)
    k = 1
    while len(out) < count:
        name = f"i{k}"
        if name not in avoid:
            out.append(name)
        k += 1
    return out


def subscript(letters: tuple[str, ...] | list[str]) -> str:
    """Index letters as Unicode subscripts (``ᵢⱼ``), or ``[i1,j]`` when a letter
    has no subscript form."""
    if not letters:
        return ""
    if all(c in _SUB for c in letters):
        return "".join(_SUB[c] for c in letters)
    return "[" + ",".join(letters) + "]"


def _is_name_char(c: str) -> bool:
    return (c.isalnum() or c == "_") and c not in _NOT_NAME


def _trail(text: str) -> str:
    k = len(text)
    while k and _is_name_char(text[k - 1]):
        k -= 1
    return text[k:]


def _lead(text: str) -> str:
    k = 0
    while k < len(text) and _is_name_char(text[k]):
        k += 1
    return text[:k]


def is_digit(c: str) -> bool:
    """Whether ``c`` starts with a decimal digit 0-9 as numbers are written: the ones
    vector ``𝟏`` (a bold digit to Unicode) is not one."""
    return "0" <= c[:1] <= "9"


def separator(lt: str, rt: str) -> str:
    """What goes between two factors written side by side, given the last word of
    the left one and the first word of the right one (``""`` for a bracket, a
    superscript or a sign): nothing (``zI``, ``Ax``, ``2x``, ``3cos(3x)``), a space
    where two words would run together (``z cos(x)``, ``A diag(x)``, ``W1 x``) or
    ``·`` between two numbers (``2·3``) and before a number that follows a bracket
    or a superscript (``log(2)·2^x``, not ``log(2)2^x``: ``lt`` is ``""``, ``rt`` a
    number).  The ones vector ``𝟏`` is neither a word nor a number (its side reads
    ``""``): ``2𝟏``, ``(1/9)𝟏``, ``b𝟏``, ``b1𝟏``, ``𝟏𝟏ᵀ``, ``𝟏softmax(x)ᵀ``."""
    if not rt:
        return ""
    if not lt:
        return "·" if is_digit(rt) else ""
    if is_digit(lt):
        return "·" if is_digit(rt) else ""
    if len(lt) == 1 and len(rt) == 1:
        return ""
    return " "


def last_word(text: str) -> str:
    """The name or number a text ends with (``""`` after a bracket or superscript)."""
    return _trail(text)


def first_word(text: str) -> str:
    """The name or number a text starts with."""
    return _lead(text)


def juxtapose(left: str, right: str) -> str:
    """Write two factors of a product side by side (see :func:`separator`); the
    words at the edges are read from the texts.

    >>> [juxtapose(*p) for p in [("z", "I"), ("2", "3"), ("A", "diag(x)"), ("x", "𝟏ᵀ")]]
    ['zI', '2·3', 'A diag(x)', 'x𝟏ᵀ']
    >>> [juxtapose(*p) for p in [("b", "𝟏"), ("2", "𝟏"), ("(1/9)", "𝟏"), ("𝟏", "𝟏ᵀ")]]
    ['b𝟏', '2𝟏', '(1/9)𝟏', '𝟏𝟏ᵀ']
    >>> [juxtapose(*p) for p in [("b1", "𝟏"), ("𝟏", "softmax(x)ᵀ"), ("𝟏", "2")]]
    ['b1𝟏', '𝟏softmax(x)ᵀ', '𝟏·2']
    """
    if left and right.startswith("["):  # A·[0, 1]: A[0, 1] would read as an entry
        return left + "·" + right
    return left + separator(_trail(left), _lead(right)) + right


def paren(text: str, prec: int, need: int) -> str:
    """``text`` in parentheses when its precedence is looser than the slot needs."""
    return f"({text})" if prec < need else text


def join_capped(parts: list[str], cap: int) -> str:
    """``"".join(parts)`` abbreviated like :func:`abbreviate`, without building the
    whole text when it is long (a sum of many long terms)."""
    total = sum(map(len, parts))
    if total <= cap:
        return "".join(parts)
    half = max(cap // 2, 1)
    head: list[str] = []
    n = 0
    for p in parts:
        head.append(p)
        n += len(p)
        if n >= half:
            break
    tail: list[str] = []
    n = 0
    for p in reversed(parts):
        tail.append(p)
        n += len(p)
        if n >= half:
            break
    return "".join(head)[:half] + " … " + "".join(reversed(tail))[-half:]


def abbreviate(text: str, cap: int) -> str:
    """Keep the head and the tail of a text longer than ``cap``, with ``…`` between."""
    if len(text) <= cap:
        return text
    half = max(cap // 2, 1)
    return text[:half] + " … " + text[-half:]
