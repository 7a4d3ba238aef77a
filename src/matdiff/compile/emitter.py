"""Writing lines: fresh temporaries, the memo of pure code, and index alignment.

:class:`Emitter` holds the body being built, a list of :class:`~.lines.Line`.  A
pure expression written twice is one line (products that share a pairwise step,
such as ``xᵀA`` in ``xᵀAx`` and its gradient): the memo maps an expression's text to
the temporary holding it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..expr.core import Expr
from ..expr.dims import Dim, dim_size
from .lines import Code, Line, fmt, join, name
from .views import expand

__all__ = ["Emitter", "WouldEmit"]


class WouldEmit(Exception):
    """A dry run (see ``Products.dry_pair``) would write a new line."""


class Emitter:
    """The lines of one function body, and how to add to them."""

    def __init__(self, sizes: Mapping, inputs: Sequence[str] = ()) -> None:
        self.sizes = dict(sizes)
        self.lines: list[Line] = []
        self.ntmp = 0
        #: an expression's text -> the temporary that holds it (pure code only)
        self.memo: dict[str, Code] = {}
        #: while planning: no line may be written (see ``Products.dry_pair``)
        self.dry = False
        #: the names of the function's arguments (arrays the caller owns)
        self.inputs = set(inputs)

    def size(self, d: Dim) -> int:
        """A dim's size (an int is its own)."""
        return dim_size(d, self.sizes)

    def shape(self, e: Expr) -> tuple:
        """``e``'s shape in sizes."""
        return tuple(self.size(d) for d in e.shape)

    def fresh_name(self) -> str:
        """A temporary's name not used before."""
        n = f"t{self.ntmp}"
        self.ntmp += 1
        return n

    def emit(self, code: Code, comment: str = "", pure: bool = True,
             copy_of: str | None = None) -> Code:
        """One line ``tK = code``, and the name ``tK``; the same pure code twice is
        one line.  ``copy_of``: see :class:`~.lines.Line`."""
        if pure and code.text in self.memo:
            return self.memo[code.text]
        if self.dry:
            raise WouldEmit
        target = self.fresh_name()
        self.lines.append(Line(target, code, comment, copy_of))
        out = name(target)
        if pure:
            self.memo[code.text] = out
        return out

    def define(self, target: str, code: Code, comment: str = "") -> None:
        """A line for a name reserved by :meth:`fresh_name`, outside the memo."""
        self.lines.append(Line(target, code, comment))

    def chain(self, terms: list[Code], op: str, width: int = 32) -> Code:
        """``t1 op t2 op ...`` as one expression of at most ``width`` terms, earlier
        terms summed (or multiplied) on lines of their own (a deep expression would
        exhaust Python's compiler)."""
        while len(terms) > width:
            head = self.emit(join(terms[:width], op))
            terms = [head] + terms[width:]
        return join(terms, op)

    @staticmethod
    def align(code: Code, s: str, tgt: str) -> Code:
        """``code`` (indices ``s``, all in ``tgt``) transposed and indexed to
        broadcast over ``tgt``."""
        order = sorted(s, key=tgt.index)
        if list(s) != order:
            perm = tuple(s.index(c) for c in order)
            code = fmt("{}.T", code) if len(s) == 2 else \
                fmt("xp.transpose({}, {})", code, repr(perm))
            s = "".join(order)
        if s != tgt and s:
            code = expand(code, list(s), list(tgt))
        return code
