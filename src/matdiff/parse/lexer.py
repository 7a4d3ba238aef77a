"""Tokens of the numpy syntax.

The lexer turns text into a flat list of :class:`Token` with character offsets,
so that every later error can point at the exact place in the text.  It reads
numbers (``2``, ``0.5``, ``.5``, ``1e-3``, ``2E+5``), names (a letter or ``_``,
then letters, digits and ``_``; Greek letters are letters), the operators
``+ - * / @ ** ^ ( ) , '``, the brackets and colons of stacking and indexing
``[ ] :`` and the postfix transpose ``.T``.  Anything else is a
:class:`~matdiff.errors.ParseError` with a caret under the offending character.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import LimitError, ParseError

__all__ = ["Token", "tokenize", "iter_tokens", "check_text", "MAX_LENGTH", "OPERATORS",
           "show"]

#: the longest text :func:`tokenize` accepts, in characters
MAX_LENGTH = 100_000

#: the operator tokens; ``**`` and ``^`` mean the same, ``.T`` and ``'`` too
OPERATORS = ("**", "+", "-", "*", "/", "@", "^", "(", ")", ",", "'", ".T", "[", "]", ":")

_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")
_SINGLE = frozenset("+-*/@^(),'[]:")

#: a hint for characters people type from other languages
_HINTS = {
    "{": "braces are not part of the language; use ( ) to group",
    "}": "braces are not part of the language; use ( ) to group",
    "=": "write one expression, without '=' (arguments are positional: sum(X, 0))",
    ";": "write one expression, without ';'",
    '"': "strings are not part of the language",
    "%": "'%' is not an operator of the language",
    "!": "'!' is not an operator of the language",
    "<": "comparisons are not part of the language; use max, min, step or relu",
    ">": "comparisons are not part of the language; use max, min, step or relu",
    "&": "'&' is not an operator of the language; use '*' for the element-wise product",
    "|": "'|' is not an operator of the language; use abs(...) or norm1/norm2",
    "~": "'~' is not an operator of the language",
    "`": "backticks are not part of the language",
}

_MODULES = ("np", "numpy", "jnp", "jax", "torch", "math", "md", "matdiff", "tf")


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its ``kind`` (``"num"``, ``"name"``, ``"end"`` or the operator
    itself, ``**`` for ``^`` too), its ``text`` and its offsets ``start:end``."""

    kind: str
    text: str
    start: int
    end: int

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)`` offsets in the text.

        >>> tokenize("x ** 2")[1].span
        (2, 4)
        """
        return (self.start, self.end)


def show(tok: Token) -> str:
    """How a token is named in an error message: ``'*'``, ``"'"``, ``end of input``.

    >>> print(", ".join(show(t) for t in tokenize("x'")))
    'x', "'", end of input
    """
    if tok.kind == "end":
        return "end of input"
    t = tok.text if len(tok.text) <= 30 else tok.text[:27] + "..."
    return f'"{t}"' if "'" in t else f"'{t}'"


#: superscript digits: ``x²`` is ``x ** 2`` (as the paper writes a square), never a name
SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"))


def _is_name_char(c: str) -> bool:
    return (c.isalnum() or c == "_") and c not in SUPERSCRIPTS


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with one ``"end"`` token.

    >>> [t.text for t in tokenize("x.T @ A^2 - .5e1")]
    ['x', '.T', '@', 'A', '^', '2', '-', '.5e1', '']
    >>> [t.kind for t in tokenize("x^2")]
    ['name', '**', 'num', 'end']
    """
    return list(iter_tokens(text))


def iter_tokens(text: str) -> Iterator[Token]:
    """The tokens of ``text`` one by one, so that an error in the text is met when the
    parser reaches it (errors come in the order of the text).

    >>> next(iter_tokens("sin(x)"))
    Token(kind='name', text='sin', start=0, end=3)
    """
    return _scan(check_text(text))


def check_text(text: object) -> str:
    """``text`` if it is a string within :data:`MAX_LENGTH` (every syntax's lexer asks),
    else the error that says what is wrong."""
    if not isinstance(text, str):
        raise ParseError(f"an expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise LimitError(
            f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    return text


def _scan(text: str) -> Iterator[Token]:
    n = len(text)
    prev: Token | None = None
    i = 0
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            assert m is not None  # a digit or '.digit' always starts a number
            j = m.end()
            if j < n and _is_name_char(text[j]):
                k = j
                while k < n and _is_name_char(text[k]):
                    k += 1
                bad = text[i:k]
                if text[j] in "eE" and not text[j + 1:k].isalpha():
                    hint = "an exponent needs digits, like 1e-3"
                else:
                    hint = f"to multiply, write {text[i:j]} * {text[j:k]}"
                raise ParseError(f"invalid number {bad!r}: {hint}", text, [(i, k)])
            prev = Token("num", text[i:j], i, j)
            yield prev
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and _is_name_char(text[j]):
                j += 1
            if text.startswith("__", i):  # no dunder names, to be safe
                raise ParseError("names starting with '__' are not allowed", text, [(i, j)])
            prev = Token("name", text[i:j], i, j)
            yield prev
            i = j
            continue
        if c in SUPERSCRIPTS:  # x² is x ** 2: the power, then its digits as a number
            j = i
            while j < n and text[j] in SUPERSCRIPTS:
                j += 1
            yield Token("**", "**", i, j)
            prev = Token("num", "".join(SUPERSCRIPTS[ch] for ch in text[i:j]), i, j)
            yield prev
            i = j
            continue
        if c == "*" and text.startswith("**", i):
            prev = Token("**", "**", i, i + 2)
            yield prev
            i += 2
            continue
        if c in _SINGLE:
            prev = Token("**" if c == "^" else c, c, i, i + 1)
            yield prev
            i += 1
            continue
        if c == ".":
            j = i + 1
            while j < n and _is_name_char(text[j]):
                j += 1
            attr = text[i + 1:j]
            if attr == "T":
                prev = Token(".T", ".T", i, j)
                yield prev
                i = j
                continue
            raise _bad_dot(text, prev, i, j, attr)
        hint = _HINTS.get(c)
        msg = f"unexpected character {c!r}" + (f": {hint}" if hint else "")
        raise ParseError(msg, text, [(i, i + 1)])
    yield Token("end", "", n, n)


def _bad_dot(text: str, prev: Token | None, i: int, j: int, attr: str) -> ParseError:
    if attr and prev is not None and prev.kind == "name" and prev.end == i \
            and prev.text in _MODULES:
        return ParseError(
            f"write {attr}(...) without the '{prev.text}.' prefix", text, [(prev.start, j)]
        )
    if attr:
        return ParseError(
            f"unexpected '.{attr}': only '.T' (transpose) may follow an expression",
            text, [(i, j)],
        )
    return ParseError(
        "unexpected '.': only '.T' (transpose) may follow an expression", text, [(i, i + 1)]
    )
