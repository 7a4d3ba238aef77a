"""Which square matrices are symmetric because of a structured variable (MATH.md,
"Symmetric (and SPD, diagonal) variables"): the fact behind the product rule
``orient_symmetric`` (``Sᵀ = S``, :mod:`.rules`).

:func:`symmetry` grades an expression: 0 not known symmetric; 1 symmetric whatever
its variables (``I``, a constant, ``AAᵀ``); 2 symmetric because a variable is (a
symmetric, SPD or diagonal ``S``, and what keeps that: ``S⁻¹``, ``S + I``,
``exp(S)`` element-wise, ``c S``, ``S ⊙ T``, ``S²``, ``AᵀSA``).  A sum whose terms
transposing permutes (``A + Aᵀ``) is symmetric too.  Every symmetric operand of a
product reads its letters in one order (``orient_symmetric``), so ``(XᵀX)⁻ᵀ`` is
``(XᵀX)⁻¹`` and ``X(XᵀX)⁻¹ + X(XᵀX)⁻ᵀ`` merges to ``2X(XᵀX)⁻¹``.

>>> import matdiff as md
>>> S = md.matrix("S", "n", "n", symmetric=True)
>>> A = md.matrix("A", "n", "n")
>>> symmetry(md.inv(S)), symmetry(A.T @ S @ A), symmetry(A @ S), symmetry(A @ A.T)
(2, 2, 0, 1)
"""

from __future__ import annotations

import itertools
import weakref
from collections import Counter

from ..core import Add, Call, Const, Delta, Einsum, Expr, Map, Var

__all__ = ["symmetry", "is_symmetric"]

_GRADE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: a product with more summed letters than this is not searched for a symmetry
_MAX_SUMMED = 6


def is_symmetric(e: Expr) -> bool:
    """``e`` is a square matrix equal to its transpose (as far as matdiff knows)."""
    return symmetry(e) > 0


def symmetry(e: Expr) -> int:
    """0: not known symmetric; 1: symmetric, no structured variable needed; 2:
    symmetric because of a structured variable (see the module docstring)."""
    if len(e.shape) != 2 or e.shape[0] != e.shape[1]:
        return 0
    hit = _GRADE.get(e)
    if hit is None:
        hit = _GRADE[e] = _grade(e)
    return hit


def _grade(e: Expr) -> int:
    if isinstance(e, Var):
        return 2 if e.structure else 0
    if isinstance(e, (Delta, Const)):
        return 1
    if isinstance(e, Call):
        # f(S) of a function that keeps symmetry (S⁻¹ of a symmetric S is symmetric,
        # expm(XᵀX) too); L_F(S, E) of symmetric S and E, as L_F(Xᵀ, Eᵀ) = L_F(X, E)ᵀ
        if not getattr(e.spec, "symmetric", False):
            return 0
        grades = [symmetry(c) for c in e.children]
        return min(grades) and max(grades)
    if isinstance(e, Add):
        return _sum_grade(e)
    if isinstance(e, Map):
        # element-wise functions of symmetric matrices are symmetric: f(S)ᵢⱼ = f(Sⱼᵢ)
        grades = [symmetry(c) if c.shape else 1 for c in e.children]
        return min(grades) and max(grades)
    if isinstance(e, Einsum):
        return _product_grade(e)
    return 0


def _sum_grade(e: Add) -> int:
    """A sum ``Σₖ Tₖ`` is symmetric when transposing permutes its terms: each term is
    symmetric (``Tₖᵀ = Tₖ``: ``S + I``) or its transpose is another term, as often as
    it is one itself (``A + Aᵀ``, ``XᵀA + AᵀX``), since ``(Σₖ Tₖ)ᵀ = Σₖ Tₖᵀ``."""
    from .products import einsum  # a transpose in normal form (products import rules)

    grades = [symmetry(c) for c in e.children]
    terms = Counter(c.digest for c in e.children)
    flipped = Counter(c.digest if g else einsum([c], [(0, 1)], (1, 0)).digest
                      for c, g in zip(e.children, grades))
    if flipped != terms:
        return 0
    return 2 if any(g == 2 for g in grades) else 1


def _product_grade(e: Einsum) -> int:
    """A product ``P[i, j]`` is symmetric when swapping ``i`` and ``j`` gives the same
    product up to a renaming of its summed letters, a symmetric operand's two letters
    read in either order (``S ⊙ T``, ``S²``, ``AᵀSA``); or when a delta ties ``i`` to
    ``j`` (it is diagonal)."""
    i, j = e.out
    grades = []
    for op, s in zip(e.children, e.specs):
        if isinstance(op, Delta) and set(s) == {i, j}:
            return 1
        grades.append(symmetry(op) if len(s) == 2 else 0)
    summed = sorted({c for s in e.specs for c in s} - {i, j})
    structured = any(g == 2 for g in grades)
    if len(summed) > _MAX_SUMMED:
        # too many letters to search: the transpose in normal form is the product
        # itself (a sound test, as equal normal forms are equal products: (XᵀX)³)
        from .products import einsum

        same = einsum([e], [(0, 1)], (1, 0)).digest == e.digest
        return (2 if structured else 1) if same else 0
    want = _signature(e, {})
    for perm in itertools.permutations(summed):
        rename = {i: j, j: i, **dict(zip(summed, perm))}
        if _signature(e, rename) == want:
            return 2 if structured else 1
    return 0


def _signature(e: Einsum, rename: dict[int, int]) -> list:
    """The product's operands with their (renamed) index strings, a symmetric
    operand's letters unordered, as a sorted list (equal lists: equal products)."""
    items = []
    for op, s in zip(e.children, e.specs):
        r = tuple(rename.get(c, c) for c in s)
        if len(r) == 2 and symmetry(op):
            r = tuple(sorted(r))
        items.append((op.digest, r))
    return sorted(items)
