"""How the generator holds a value: an array (or a number) seen through its axes.

Every value is held as a *view* (:class:`View`): an array (or a number) indexed by
*classes* plus each axis's class.  Axes of one class are a diagonal (``x_i δ_ij`` is
the vector ``x`` with axes ``(0, 0)``), and a class the array lacks is a broadcast
(the constant ``1``, a filled tensor, is the number ``1.0`` over any axes).  Deltas
and constants therefore never become arrays: a product absorbs them by renaming its
letters, a sum adds a diagonal into a dense accumulator through a strided view, and
only an output (or an argument of a function that needs a true array, such as
``inv``) is made dense.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .lines import Code, fmt

__all__ = ["View", "canon", "expand", "UnionFind"]


@dataclass(frozen=True)
class View:
    """A value: ``code`` (a local name or a number), each axis's class (``axes``,
    numbered by first appearance) and the classes the array has (``core``, in
    increasing order; the array's axes follow them)."""

    code: Code
    axes: tuple
    core: tuple
    lit: float | None = None  # the number, when the value is one number over its axes

    @property
    def nclass(self) -> int:
        return max(self.axes) + 1 if self.axes else 0

    @property
    def repeats(self) -> bool:
        """Whether two axes share a class (the value is a diagonal)."""
        return len(set(self.axes)) != len(self.axes)

    @property
    def dense(self) -> bool:
        """Whether the code is already a true array of the value's shape."""
        return not self.repeats and self.core == self.axes and self.lit is None


def canon(reps: Sequence) -> tuple[tuple, dict]:
    """Classes numbered by first appearance: ``(the numbers, representative -> number)``."""
    m: dict = {}
    for r in reps:
        m.setdefault(r, len(m))
    return tuple(m[r] for r in reps), m


def expand(code: Code, have: Sequence, want: Sequence) -> Code:
    """``code`` has axes ``have`` (a subsequence of ``want``, same order): index it so
    that it broadcasts over ``want``."""
    if list(have) == list(want) or not have:
        return code
    idx = ", ".join(":" if c in have else "None" for c in want)
    return fmt("{}[{}]", code, idx)


class UnionFind:
    """Disjoint sets of letters; the representative of a set is its least member."""

    def __init__(self) -> None:
        self.p: dict = {}

    def find(self, a: Hashable) -> Hashable:
        p = self.p
        p.setdefault(a, a)
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:  # type: ignore[operator]
                ra, rb = rb, ra
            self.p[rb] = ra
