"""Dims arithmetic: a dim is a polynomial over named dims with integer coefficients.

A dim is an ``int`` (a fixed size), a ``str`` (a named dim such as ``"n"``) or, when
a shape needs it, a :class:`DimPoly`: ``concat(w, [b])`` has dim ``n + 1``,
``kron(A, B)`` has ``m·p``, ``x[1:]`` has ``n - 1`` (MATH.md, "Stacking, indexing
and dims arithmetic").  Every dim is kept in a normal form, so equal polynomials
are equal objects and shapes compare with ``==``: a constant polynomial is its
``int``, a single name with coefficient one is its ``str``.

>>> from matdiff.expr.dims import dim_add, dim_mul, dim_size, parse_dim
>>> d = dim_add("n", 1)
>>> str(d), dim_size(d, {"n": 3})
('n + 1', 4)
>>> dim_add(d, -1)
'n'
>>> str(dim_mul("m", "n")), parse_dim("n*m") == dim_mul("m", "n")
('m·n', True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ShapeError

__all__ = ["DimPoly", "Dim", "normal", "dim_add", "dim_sub", "dim_mul", "dim_size",
           "dim_names", "dim_text", "parse_dim", "solve_dim", "is_name"]

#: a monomial: the sorted names of its factors (a name twice is its square)
Monomial = tuple[str, ...]


class DimPoly:
    """A polynomial dim ``Σ c_k Π names`` (integer ``c_k``, no zero terms).

    Built only through :func:`normal` (and the arithmetic below), which turns
    constants into ``int`` and a lone name into ``str``; a ``DimPoly`` therefore
    always has at least two terms or a coefficient or a product.
    """

    __slots__ = ("terms",)
    terms: tuple[tuple[Monomial, int], ...]

    def __init__(self, terms: Iterable[tuple[Monomial, int]]) -> None:
        object.__setattr__(self, "terms", tuple(sorted(terms, key=_term_order)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a DimPoly is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DimPoly) and other.terms == self.terms

    def __hash__(self) -> int:
        return hash(("DimPoly", self.terms))

    def __repr__(self) -> str:
        return f"DimPoly({dim_text(self)!r})"

    def __str__(self) -> str:
        return dim_text(self)

    def __reduce__(self) -> tuple[type[DimPoly], tuple[tuple[tuple[Monomial, int], ...]]]:
        return (DimPoly, (self.terms,))


Dim = int | str | DimPoly


def _term_order(t: tuple[Monomial, int]) -> tuple[int, Monomial]:
    # highest degree first, names in order, the constant last: m·n + 2·n + 1
    return (-len(t[0]), t[0])


def is_name(d: object) -> bool:
    """Whether ``d`` is a plain named dim (an identifier-like ``str``)."""
    return isinstance(d, str) and bool(d) and (d[0].isalpha() or d[0] == "_") and all(
        c.isalnum() or c == "_" for c in d)


def _poly(d: Dim) -> dict[Monomial, int]:
    if isinstance(d, DimPoly):
        return dict(d.terms)
    if isinstance(d, bool):
        raise ShapeError(f"a dim must be a name or an int, not {d!r}")
    if isinstance(d, int):
        return {(): d} if d else {}
    if isinstance(d, str):
        return {(d,): 1}
    raise ShapeError(f"a dim must be a name (like 'n'), an int or a sum or product of "
                     f"dims, not {d!r}")


def normal(terms: Mapping[Monomial, int]) -> Dim:
    """The normal form of a polynomial given as ``{monomial: coefficient}``."""
    live = {m: c for m, c in terms.items() if c}
    if not live:
        return 0
    if list(live) == [()]:
        return live[()]
    if len(live) == 1:
        ((m, c),) = live.items()
        if c == 1 and len(m) == 1:
            return m[0]
    return DimPoly(live.items())


def dim_add(*ds: Dim) -> Dim:
    """The sum of dims: ``dim_add("n", 1)`` is ``n + 1``."""
    out: dict[Monomial, int] = {}
    for d in ds:
        for m, c in _poly(d).items():
            out[m] = out.get(m, 0) + c
    return normal(out)


def dim_sub(a: Dim, b: Dim) -> Dim:
    """The difference ``a - b`` of two dims."""
    return dim_add(a, normal({m: -c for m, c in _poly(b).items()}))


def dim_mul(*ds: Dim) -> Dim:
    """The product of dims: ``dim_mul("m", "n")`` is ``m·n``."""
    out: dict[Monomial, int] = {(): 1}
    for d in ds:
        nxt: dict[Monomial, int] = {}
        for m1, c1 in out.items():
            for m2, c2 in _poly(d).items():
                m = tuple(sorted(m1 + m2))
                nxt[m] = nxt.get(m, 0) + c1 * c2
        out = nxt
    return normal(out)


def dim_names(d: Dim) -> set[str]:
    """The named dims a dim is made of."""
    return {n for m in _poly(d) for n in m}


def dim_size(d: Dim, sizes: Mapping[str, int]) -> int:
    """The size of a dim once its names are bound (``KeyError`` for an unbound one)."""
    if isinstance(d, int):
        return d
    if isinstance(d, str):
        return sizes[d]
    total = 0
    for m, c in d.terms:
        p = c
        for n in m:
            p *= sizes[n]
        total += p
    return total


def solve_dim(d: Dim, size: int, sizes: Mapping[str, int]) -> tuple[str, int] | None:
    """The one unbound name of ``d`` and its value such that ``d`` has ``size``, where
    ``d`` is linear in that name (``n + 1`` of size 4 gives ``("n", 3)``); ``None``
    when ``d`` has no unbound name or cannot be solved so (then the caller reports)."""
    free = sorted(dim_names(d) - set(sizes))
    if len(free) != 1:
        return None
    name = free[0]
    rest = 0
    slope = 0
    for m, c in _poly(d).items():
        k = m.count(name)
        if k > 1:
            return None
        p = c
        for n in m:
            if n != name:
                p *= sizes[n]
        if k:
            slope += p
        else:
            rest += p
    if slope == 0 or (size - rest) % slope:
        return None
    value = (size - rest) // slope
    return (name, value) if value >= 0 else None


def dim_text(d: Dim, *, times: str = "·", minus: str = " - ") -> str:
    """A dim as text: ``n + 1``, ``m·n``, ``2·n - 1`` (``times="*"`` for ASCII)."""
    if not isinstance(d, DimPoly):
        return str(d)
    parts: list[str] = []
    for i, (m, c) in enumerate(d.terms):
        body = times.join(m)
        mag = abs(c)
        word = (str(mag) if not m else body if mag == 1 else f"{mag}{times}{body}")
        if i == 0:
            parts.append((minus.strip() if c < 0 else "") + word)
        else:
            parts.append((minus if c < 0 else " + ") + word)
    return "".join(parts)


_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def parse_dim(text: str) -> Dim:
    """Read a dim written as text: ``n``, ``3``, ``n+1``, ``m*n``, ``m·n``, ``2n - 1``.

    Only sums, differences and products of names and integers, with parentheses.
    """
    toks: list[tuple[str, Any]] = []
    for num, name, other in _TOKEN.findall(text):
        if num:
            toks.append(("int", int(num)))
        elif name:
            toks.append(("name", name))
        elif other.strip():
            toks.append(("op", "*" if other in "·×" else other))
    pos = 0

    def fail(what: str) -> ShapeError:
        return ShapeError(f"cannot read the dim {text!r}: {what} (a dim is a name like "
                          "'n', an int, or sums and products of them such as 'n+1', "
                          "'m*n')")

    def peek() -> tuple[str, Any] | None:
        return toks[pos] if pos < len(toks) else None

    def atom() -> Dim:
        nonlocal pos
        t = peek()
        if t is None:
            raise fail("it ends too early")
        pos += 1
        if t[0] == "int":
            nt = peek()
            if nt is not None and nt[0] in ("name",) or nt == ("op", "("):
                return dim_mul(t[1], atom())          # 2n, 2(n + 1)
            return t[1]
        if t[0] == "name":
            return t[1]
        if t == ("op", "("):
            v = expr()
            if peek() != ("op", ")"):
                raise fail("a '(' is not closed")
            pos += 1
            return v
        if t == ("op", "-"):
            return dim_sub(0, atom())
        raise fail(f"unexpected {t[1]!r}")

    def term() -> Dim:
        nonlocal pos
        v = atom()
        while peek() == ("op", "*"):
            pos += 1
            v = dim_mul(v, atom())
        return v

    def expr() -> Dim:
        nonlocal pos
        v = term()
        while peek() in (("op", "+"), ("op", "-")):
            op = toks[pos][1]
            pos += 1
            v = dim_add(v, term()) if op == "+" else dim_sub(v, term())
        return v

    if not toks:
        raise fail("it is empty")
    value = expr()
    if pos != len(toks):
        raise fail(f"unexpected {toks[pos][1]!r}")
    return value
