"""Writing lines: fresh temporaries, the memo of pure code, and index alignment.

:class:`Emitter` holds the body being built, a list of :class:`~.lines.Line`.  A
pure expression written twice is one line (products that share a pairwise step,
such as ``xᵀA`` in ``xᵀAx`` and its gradient): the memo maps an expression's text to
the temporary holding it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ..expr.core import Expr
from ..expr.dims import Dim, DimPoly, dim_size
from .lines import Code, Line, fmt, join, name
from .views import expand

__all__ = ["Emitter", "WouldEmit", "Decision", "replay"]

T = TypeVar("T")

#: a choice made on sizes: the index letters' dims, how to make it from their sizes,
#: and what it was
Decision = tuple[dict, Callable[[Mapping[str, int]], Any], Any]


def replay(decisions: Sequence[Decision], sizes: Mapping[str, int]) -> bool:
    """Whether every choice made on sizes comes out the same at ``sizes``: then the
    generator would write the very same code for them (its other steps do not look
    at sizes), and that code may be reused."""
    for dims, decide, made in decisions:
        if decide({c: dim_size(d, sizes) for c, d in dims.items()}) != made:
            return False
    return True


class WouldEmit(Exception):
    """A dry run (see ``Products.dry_pair``) would write a new line."""


class Emitter:
    """The lines of one function body, and how to add to them."""

    def __init__(self, sizes: Mapping, inputs: Sequence[str] = (),
                 dim_src: Mapping[Dim, Code] | None = None) -> None:
        self.sizes = dict(sizes)
        #: a dim some input carries -> the code reading its size (``a2.shape[0]``);
        #: the code computes with those at run time (see :meth:`size_code`)
        self.dim_src: dict[Dim, Code] = dict(dim_src or {})
        #: temporaries holding a host number computed from sizes (``xp.dim`` of a
        #: size, and operators on those; a backend function's value is the
        #: backend's): an output or a function's argument of one is made a backend
        #: scalar
        self.host: set[str] = set()
        self.lines: list[Line] = []
        self.ntmp = 0
        #: an expression's text -> the temporary that holds it (pure code only)
        self.memo: dict[str, Code] = {}
        #: while planning: no line may be written (see ``Products.dry_pair``)
        self.dry = False
        #: every choice made on sizes, in order (see :meth:`decide`)
        self.decisions: list[Decision] = []
        #: the current product's index letters -> their dims
        self.dims_of: dict[str, Dim] = {}
        #: the names of the function's arguments (arrays the caller owns)
        self.inputs = set(inputs)

    def size(self, d: Dim) -> int:
        """A dim's size (an int is its own)."""
        return dim_size(d, self.sizes)

    def shape(self, e: Expr) -> tuple:
        """``e``'s shape in sizes (what the planner weighs)."""
        return tuple(self.size(d) for d in e.shape)

    def size_code(self, d: Dim) -> Code:
        """The code of a dim's size as the generated function knows it at run time:
        read from an input's shape where an input carries the dim (``a2.shape[0]``),
        a polynomial of such reads for a composite dim (``m·n`` is
        ``a0.shape[0] * a1.shape[0]``), else the number it has here (a dim that only
        ``dims=`` or a variable the function does not take gives: the generated code
        is specialised to it)."""
        src = self.dim_src.get(d)
        if src is not None:
            return src
        if isinstance(d, DimPoly) and all(n in self.dim_src for m, _ in d.terms for n in m):
            terms = []
            for m, c in d.terms:  # d = Σ c · Π names
                parts = ([Code(str(c))] if c != 1 or not m else []) \
                    + [self.dim_src[n] for n in m]
                terms.append(join(parts, " * "))
            return fmt("({})", join(terms, " + "))
        return Code(str(self.size(d)))

    def decide(self, choose: Callable[[Mapping[str, int]], T],
               first: Callable[[Mapping[str, int]], T] | None = None) -> T:
        """``choose`` (a choice on the sizes of the current product's letters: a
        contraction order, which operand takes a scalar) made at these sizes, and
        recorded so that :func:`replay` can tell whether other sizes choose the
        same.  ``first``, where given, makes it now (it may look at the lines
        written; ``choose`` must then give the same from what ``first`` found)."""
        dims = dict(self.dims_of)
        made = (first or choose)({c: self.size(d) for c, d in dims.items()})
        self.decisions.append((dims, choose, made))
        return made

    def size_scalar(self, d: Dim) -> Code | None:
        """The size of ``d`` as a number the code computes with (``t4 =
        xp.dim(a2.shape[0])``: mean's 1/N divides by it), where it is read at run
        time; ``None`` where it is a constant here (the caller folds the number)."""
        code = self.size_code(d)
        if not code.reads:
            return None
        out = self.emit(fmt("xp.dim({})", code), f"the size {d}")
        self.host.add(out.text)
        return out

    def shape_code(self, e: Expr) -> Code:
        """``e``'s shape as a tuple of :meth:`size_code` (``(a2.shape[0], 3)``)."""
        return self.dims_code([self.size_code(d) for d in e.shape])

    @staticmethod
    def dims_code(dims: Sequence[int | Code]) -> Code:
        """A tuple of sizes, each a number or a :meth:`size_code`, as code."""
        parts = [d if isinstance(d, Code) else Code(str(d)) for d in dims]
        return fmt("(" + ", ".join(["{}"] * len(parts)) + ("," if len(parts) == 1 else "")
                   + ")", *parts)

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
        if (code.fresh or code.text in self.host) and code.reads \
                and all(r in self.host for r in code.reads):
            # arithmetic (an operator) of sizes only, or another name for one (a
            # size's number broadcast to a shape: the code keeps the number)
            self.host.add(target)
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
