"""Tokens of the unicode syntax (matdiff's own matrix notation, as ``str(expr)`` prints it).

The lexer reads numbers (``2``, ``0.5``, ``1e-08``, ``∞``), runs of name characters
(letters, Greek letters, digits and ``_``: ``xᵀAx`` has the runs ``x`` and ``Ax``,
which the parser splits into the known names), the superscripts ``ᵀ``, ``⁻ᵀ`` and
the superscript integers (``²``, ``⁻¹``, ``¹⁰``), and the operators ``+ − - ⊙ ⊘ ⊗ ·
/ ^ ^⊙ √ ( ) ,`` and ``𝟏``.  A function whose definition spells it in several words
(``log det``) is one token, and ``axis=`` one token (``sum(X, axis=0)``).
What the syntax does not read is a :class:`~matdiff.errors.ParseError` with a caret
and, where one helps, a hint: index notation (``↦``, ``Σ``, subscripts), a printout
cut with ``…``, and the operators of the other syntaxes (``*``, ``@``, ``'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import ParseError
from ..expr.matrix_functions import MATRIX_FUNCTIONS
from .lexer import check_text

__all__ = ["UToken", "unicode_tokens", "SUPERSCRIPT_DIGITS", "MARKS", "looks_unicode"]

#: the superscript digits, ``⁰`` to ``⁹``
SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_SUP_VALUE = {c: str(k) for k, c in enumerate(SUPERSCRIPT_DIGITS)}
_SUBSCRIPTS = set("ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₀₁₂₃₄₅₆₇₈₉")
#: a unit vector's index as matdiff prints it, eₚ (e₀, eₙ₋₁): subscripts, plain
_UNIT_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉₋₊ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", "0123456789-+aehijklmnoprstuvx"))
#: characters that never belong to a name (superscripts, subscripts, 𝟏)
_NOT_NAME = set(SUPERSCRIPT_DIGITS) | {"⁻", "ᵀ", "𝟏", "Σ"} | _SUBSCRIPTS

#: the characters that mark a text as matdiff's Unicode notation (none of them is
#: numpy syntax): ``md.parse`` in numpy syntax reads such a text in unicode syntax
MARKS = "ᵀ⁻⊙⊘−·𝟏"

_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
def _worded() -> list[tuple[re.Pattern, str]]:
    """The matrix functions whose Unicode spelling is several words (``log det(X)``),
    each a pattern of its words before ``(`` and the function's name."""
    out = []
    for fn in MATRIX_FUNCTIONS.values():
        head = fn.spell("unicode", "\0").split("\0")[0]
        words = head[:-1].split()
        if head.endswith("(") and len(words) > 1:
            out.append((re.compile(r"[ \t]+".join(map(re.escape, words))
                                   + r"(?=[ \t]*\()"), fn.name))
    return out


_WORDED = _worded()
_AXIS = re.compile(r"axis[ \t]*=")

_OPS = {"+": "+", "−": "-", "-": "-", "⊙": "⊙", "⊘": "⊘", "⊗": "⊗", "·": "·",
        "/": "/", "√": "√", "(": "(", ")": ")", ",": ",", "𝟏": "𝟏",
        "[": "[", "]": "]", ":": ":"}

_INDEX = ("index notation ((i, j) ↦ …, Σⱼ, subscripts) is not read by the unicode "
          "syntax: matdiff prints it where a result has no matrix form (three or more "
          "axes); parse the expression it came from instead")

_HINTS = {
    "*": "'*' is not an operator of the unicode syntax: write factors side by side "
         "(Ax) or with '·' for the product, '⊙' for the element-wise product",
    "@": "'@' is numpy syntax: in the unicode syntax factors side by side are the "
         "matrix product (Ax, xᵀy)",
    "'": "\"'\" is not the transpose in the unicode syntax: write ᵀ (xᵀ)",
    "…": "this printout was cut ('…'): print the expression whole "
         "(md.to_text(e, max_chars=...)) and parse that",
    "↦": _INDEX, "Σ": _INDEX,
    "×": "'×' is not an operator of the unicode syntax: write '·' or factors side by side",
    ".": "'.' is not an operator of the unicode syntax (transpose is ᵀ)",
}


def looks_unicode(text: object) -> bool:
    """Whether ``text`` has one of the marks of matdiff's Unicode notation
    (``ᵀ ⁻ ⊙ ⊘ − · 𝟏``), none of which numpy syntax has.

    >>> looks_unicode("(A + Aᵀ)x"), looks_unicode("x - y"), looks_unicode("x − y")
    (True, False, True)
    """
    return isinstance(text, str) and any(c in text for c in MARKS)


@dataclass(frozen=True, slots=True)
class UToken:
    """One token: ``kind`` is ``"num"`` (``value`` its float), ``"run"`` (a run of
    name characters), ``"worded"`` (``value`` the function's name), ``"axis="``,
    ``"T"``, ``"-T"`` (``⁻ᵀ``), ``"sup"`` (``value`` the superscript integer),
    ``"^"``, ``"^⊙"``, ``"end"`` or an operator (``"-"`` for both minus signs);
    ``start:end`` its offsets in the text."""

    kind: str
    text: str
    start: int
    end: int
    value: object = None

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)`` offsets in the text."""
        return (self.start, self.end)


def _name_char(c: str) -> bool:
    return (c.isalnum() or c == "_") and c not in _NOT_NAME


def _decimal_at(text: str, j: int) -> bool:
    """Whether the digits at ``j`` are a number with a decimal point (``1.25``)."""
    k = j
    while k < len(text) and text[k] in "0123456789":
        k += 1
    return k + 1 < len(text) and text[k] == "." and text[k + 1] in "0123456789"


def unicode_tokens(text: str) -> Iterator[UToken]:
    """The tokens of ``text`` in unicode syntax, one by one, ending with ``"end"``.

    >>> [(t.kind, t.text) for t in unicode_tokens("xᵀAx")]
    [('run', 'x'), ('T', 'ᵀ'), ('run', 'Ax'), ('end', '')]
    >>> [t.value for t in unicode_tokens("X⁻¹ x²") if t.kind == "sup"]
    [-1, 2]
    """
    return _scan(check_text(text))


def _scan(text: str) -> Iterator[UToken]:
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "0123456789" or (c == "." and i + 1 < n and text[i + 1] in "0123456789"):
            m = _NUMBER.match(text, i)
            assert m is not None  # a digit always starts a number
            j = m.end()
            yield UToken("num", text[i:j], i, j, float(text[i:j]))
            i = j
            continue
        if c == "∞":
            yield UToken("num", c, i, i + 1, float("inf"))
            i += 1
            continue
        if _name_char(c) and not c.isdigit():
            worded = next(((m, fn) for pat, fn in _WORDED
                           if (m := pat.match(text, i)) is not None), None)
            if worded is not None:  # log det(…): one function of several words
                m, fn = worded
                yield UToken("worded", m.group(), i, m.end(), fn)
                i = m.end()
                continue
            m = _AXIS.match(text, i)
            if m is not None:
                yield UToken("axis=", m.group(), i, m.end())
                i = m.end()
                continue
            j = i + 1
            while j < n and _name_char(text[j]):
                if text[j].isdigit() and _decimal_at(text, j):
                    break  # a1.25 is a times 1.25, as matdiff prints it
                j += 1
            if text.startswith("__", i):
                raise ParseError("names starting with '__' are not allowed", text, [(i, j)])
            if j < n and text[j - 1] == "e" and text[j] in _UNIT_SUB:
                # eₚ, the unit vector (xe₁ᵀ is x, then e₁ transposed)
                k = j
                while k < n and text[k] in _UNIT_SUB:
                    k += 1
                if j - 1 > i:
                    yield UToken("run", text[i:j - 1], i, j - 1)
                yield UToken("unit", text[j - 1:k], j - 1, k,
                             "".join(_UNIT_SUB[c] for c in text[j:k]))
                i = k
                continue
            yield UToken("run", text[i:j], i, j)
            i = j
            continue
        if c == "ᵀ":
            yield UToken("T", c, i, i + 1)
            i += 1
            continue
        if c == "⁻" or c in _SUP_VALUE:
            j = i + 1 if c == "⁻" else i
            if c == "⁻" and j < n and text[j] == "ᵀ":
                yield UToken("-T", text[i:j + 1], i, j + 1)
                i = j + 1
                continue
            k = j
            while k < n and text[k] in _SUP_VALUE:
                k += 1
            if k == j:
                raise ParseError("'⁻' must be followed by superscript digits (x⁻¹) or ᵀ "
                                 "(X⁻ᵀ)", text, [(i, j)])
            digits = "".join(_SUP_VALUE[d] for d in text[j:k])
            if len(digits) > 18:
                raise ParseError("the exponent is too large", text, [(i, k)])
            value = int(digits) * (-1 if c == "⁻" else 1)
            yield UToken("sup", text[i:k], i, k, value)
            i = k
            continue
        if c == "^":
            if i + 1 < n and text[i + 1] == "⊙":
                yield UToken("^⊙", "^⊙", i, i + 2)
                i += 2
            else:
                yield UToken("^", "^", i, i + 1)
                i += 1
            continue
        if c in _OPS:
            yield UToken(_OPS[c], c, i, i + 1)
            i += 1
            continue
        if c in _SUBSCRIPTS:
            raise ParseError(f"unexpected subscript {c!r}: {_INDEX}", text, [(i, i + 1)])
        hint = _HINTS.get(c)
        msg = f"unexpected character {c!r} in unicode syntax" + (f": {hint}" if hint else "")
        raise ParseError(msg, text, [(i, i + 1)])
    yield UToken("end", "", n, n)
