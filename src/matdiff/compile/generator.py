"""The generator: one node at a time, children first, to a :class:`~.views.View`.

Leaves become views without a line (an input's name, a number, a delta's diagonal),
products go to :class:`~.products.Products`, matrix functions to :mod:`.matfn`, and
element-wise functions and sums are written here.  A sum adds a structured term
(a diagonal) into a dense accumulator in place, never building it as an array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..expr.core import Add, Const, Delta, Einsum, Expr, Map, Size, Var, topo_order
from ..expr.selection import Concat, Take
from .lines import Code, difference, fmt, join, name, number
from .matfn import matrix_function
from .products import Products, shape_comment
from .selection import concat_code, take_code
from .views import View, expand

__all__ = ["Generator", "ACC"]

#: the comment on the copy a sum makes of a dense term before adding into it
ACC = "copied: a structured term is added into it"



def softplus_argument(node: Map) -> Expr | None:
    """``z`` where ``node`` is ``log(1 + exp(z))`` (which the NumPy code computes as
    ``softplus(z)``, without overflow: log(1 + eᶻ) = max(z, 0) + log1p(e^(−|z|))),
    else ``None``."""
    if node.fn != "log" or not isinstance(node.children[0], Add) \
            or len(node.children[0].children) != 2:
        return None
    a, b = node.children[0].children
    if isinstance(b, Const):
        a, b = b, a
    if isinstance(a, Const) and a.value == 1.0 and isinstance(b, Map) and b.fn == "exp":
        return b.children[0]
    return None

class Generator(Products):
    """Builds the body of one function; see :func:`~.codegen.generate`."""

    def __init__(self, sizes: Mapping, inputs: Sequence[str] = (),
                 optimize: str = "dp", dim_src: Mapping | None = None,
                 tall_transposed: bool = False) -> None:
        super().__init__(sizes, inputs, optimize, dim_src, tall_transposed)
        self.views: dict[int, View] = {}
        #: ids of Inv nodes whose value is only multiplied (see :mod:`.matfn`)
        self.solvable: set[int] = set()
        #: id of a LogSumExp's argument -> the code of its value (softmax reuses it)
        self.lse: dict[int, Code] = {}

    def visit_all(self, outputs: Sequence[Expr], var_code: Mapping[str, str]) -> int:
        """Visit every node of ``outputs`` once, children first; the number of nodes."""
        count = 0
        for out in outputs:
            for node in topo_order(out):
                if id(node) not in self.views:
                    count += 1
                    self.views[id(node)] = self.visit(node, var_code)
        return count

    def visit(self, e: Expr, var_code: Mapping[str, str]) -> View:
        """The view of node ``e``, its children's views known."""
        r = len(e.shape)
        full = tuple(range(r))
        if isinstance(e, Var):
            return View(name(var_code[e.name]), full, full)
        if isinstance(e, Const):
            return View(number(e.value), full, (), e.value)
        if isinstance(e, Size):
            code = self.size_scalar(e.dim)
            if code is not None:  # read from an input's shape at run time
                return View(code, (), ())
            n = float(self.size(e.dim))
            return View(number(n), (), (), n)
        if isinstance(e, Delta):
            return View(number(1.0), (0, 0), (), 1.0)
        kids = [self.views[id(c)] for c in e.children]
        if isinstance(e, Einsum):
            return self.einsum(e, kids)
        if isinstance(e, Add):
            return self.add(e, kids)
        if isinstance(e, Map):
            return self.map(e, kids)
        if isinstance(e, Concat):
            return concat_code(self, e, kids)
        if isinstance(e, Take):
            return take_code(self, e, kids)
        return matrix_function(self, e, [self.dense(c, v) for c, v in zip(e.children, kids)])

    # ------------------------------------------------------------ dense arrays
    def class_sizes(self, e: Expr, v: View) -> Code:
        """The size of each of ``v``'s classes, as a tuple of size codes."""
        sz: list[Code] = [Code("0")] * v.nclass
        for d, c in zip(e.shape, v.axes):
            sz[c] = self.size_code(d)
        return self.dims_code(sz)

    def dense(self, e: Expr, v: View, fresh: bool = False) -> Code:
        """Code of ``v`` as a true array of ``e``'s shape (outputs, matrix functions).
        With ``fresh``, the array must not be an input (the caller returns it)."""
        shape = self.shape_code(e)
        if v.dense:
            if not e.shape and v.code.text in self.host:
                return self.emit(fmt("xp.scalar({})", v.code))  # a size's number
            return fmt("xp.copy({})", v.code) if fresh and v.code.text in self.inputs \
                else v.code
        if not v.repeats:
            if v.lit is not None:
                if not e.shape:
                    return self.emit(fmt("xp.scalar({})", v.code))
                return self.emit(fmt("xp.full({}, {})", shape, v.code))
            return self.emit(fmt("xp.dense({}, {})", expand(v.code, v.core, v.axes),
                                 shape))
        core = expand(v.code, v.core, tuple(range(v.nclass)))
        return self.emit(fmt("xp.embed({}, {}, {})", core, shape, repr(v.axes)),
                         "a structured tensor made dense")

    def structured(self, e: Expr, v: View) -> Code:
        """Code of the core of a structured output ``v`` (a diagonal is stored as
        its vector; it is wrapped after the call)."""
        every = tuple(range(v.nclass))
        if v.core == every and v.lit is None and v.code.text not in self.inputs:
            return v.code
        return self.emit(fmt("xp.dense({}, {})", expand(v.code, v.core, every),
                             self.class_sizes(e, v)),
                         "structured output: only the core is stored")

    # -------------------------------------------------------------- element-wise
    def _broadcast_args(self, e: Expr, kids: Sequence[View]) -> tuple[list[View], tuple]:
        """Arguments of one shape (a diagonal made dense first) and the union of their
        classes, which is the result's core."""
        views = []
        for c, v in zip(e.children, kids):
            if v.repeats:
                full = tuple(range(len(c.shape)))
                v = View(self.dense(c, v), full, full)
            views.append(v)
        core = tuple(sorted({k for v in views for k in v.core}))
        return views, core

    def map(self, e: Map, kids: Sequence[View]) -> View:
        """An element-wise function: folded where every argument is a number."""
        full = tuple(range(len(e.shape)))
        soft = self.softplus(e)
        if soft is not None:
            return soft
        views, core = self._broadcast_args(e, kids)
        if all(v.lit is not None for v in views):
            with np.errstate(all="ignore"):
                value = float(e.spec.numpy(*[np.float64(v.lit) for v in views]))
            return View(number(value), full, (), value)
        args = [v.code if v.lit is not None or not v.core else expand(v.code, v.core, core)
                for v in views]
        if e.fn != "pow" or views[1].lit is None:
            # a size's host number as an argument of a backend function: its scalar
            args = [fmt("xp.scalar({})", a) if a.text in self.host else a for a in args]
        if e.fn == "step" and len(args) == 1:
            # step(x) = step(relu(x)): relu(x) > 0 exactly where x > 0 (and a nan
            # gives 0 either way).  Where relu(x) is a line already, the mask reads it
            # (as torch's ReLU backward reads the ReLU's output): x is then read by
            # relu alone, and its line fuses with relu's (fuse.py), one pass fewer
            relu = self.memo.get(map_code("relu", args, [None]).text)
            if relu is not None:
                args = [relu]
        code = map_code(e.fn, args, [v.lit for v in views])
        return View(self.emit(code, shape_comment(e)), full, core)

    def softplus(self, e: Map) -> View | None:
        """``log(1 + exp(z))`` as ``softplus(z)``, computed without overflow (else
        ``None``)."""
        z = softplus_argument(e)
        if z is None:
            return None
        full = tuple(range(len(e.shape)))
        zv = self.views[id(z)]
        if zv.repeats:
            zv = View(self.dense(z, zv), full, full)
        if zv.lit is not None:
            return None
        code = self.emit(fmt("xp.softplus({})", expand(zv.code, zv.core, zv.core)),
                         "log(1 + exp(.)) computed stably")
        return View(code, full, zv.core)

    # -------------------------------------------------------------------- sums
    def _negand(self, v: View) -> View | None:
        """The view of ``x`` when ``v`` is a line ``−x`` (so a sum subtracts ``x``
        instead of adding a negated copy), else ``None``."""
        if v.code.text in self.neg and v.lit is None:
            return View(self.neg[v.code.text], v.axes, v.core)
        return None

    def add(self, e: Add, kids: Sequence[View]) -> View:
        """A sum: terms over the same axes summed together (a line each group), a
        structured group added into the dense one in place."""
        groups: dict[tuple, list[tuple[View, View | None]]] = {}
        for v in kids:
            groups.setdefault(v.axes, []).append((v, self._negand(v)))
        sums = {axes: self.sum_group(e, axes, terms) for axes, terms in groups.items()}
        if len(sums) == 1:
            return next(iter(sums.values()))
        return self.add_structured(e, sums)

    def sum_group(self, e: Add, axes: tuple, group: list[tuple[View, View | None]]) -> View:
        """The sum of terms over the same ``axes``: numbers added up, ``a − b``
        rather than ``a + (−1)·b`` (one operation less)."""
        lit = sum(v.lit for v, _ in group if v.lit is not None)
        arrs = [(v, n) for v, n in group if v.lit is None]
        if not arrs:
            return View(number(lit), axes, (), lit)
        core = tuple(sorted({k for v, n in arrs for k in v.core + (n.core if n else ())}))

        def term(v: View) -> Code:
            return expand(v.code, v.core, core) if v.core else v.code

        terms = [term(v) for v, _ in arrs]
        if lit != 0.0:
            terms.append(number(lit))
        if len(terms) == 1:
            return arrs[0][0]
        pos = [term(v) for v, n in arrs if n is None]
        neg = [term(n) for _, n in arrs if n is not None]
        if lit != 0.0:
            pos.append(number(lit))
        if pos and neg and len(terms) <= 32:
            code = difference(pos, neg)
        else:
            code = self.chain(terms, " + ")
        return View(self.emit(code, shape_comment(e)), axes, core)

    def add_structured(self, e: Add, sums: dict[tuple, View]) -> View:
        """A diagonal (or other structured) term plus a dense one: the structured
        part added into a dense accumulator, never built as an array."""
        full = tuple(range(len(e.shape)))
        shape = self.shape_code(e)
        base = sums.pop(full, None)
        if base is None:
            acc = self.emit(fmt("xp.full({}, 0.0)", shape), pure=False)
        elif base.core == full and not base.repeats:
            # The aliasing rule: an array is written in place only where no other
            # line reads it.  Here that is not known yet (a later node may reuse
            # this very line through the memo of pure code, or a transpose may be a
            # view of an input), so the dense term is copied; passes.steal_copies
            # drops the copy once the whole body shows the array has no other reader.
            acc = self.emit(fmt("xp.dense({}, {})", base.code, shape), ACC,
                            pure=False, copy_of=base.code.text)
        else:  # a broadcast is always copied out
            acc = self.emit(fmt("xp.dense({}, {})", expand(base.code, base.core, full),
                                shape),
                            "broadcast out: a structured term is added into it", pure=False)
        for axes, v in sums.items():
            core = expand(v.code, v.core, tuple(range(v.nclass))) if v.core else v.code
            acc = self.emit(fmt("xp.add_embed({}, {}, {})", acc, core, repr(axes)),
                            "add a structured term in place", pure=False)
        return View(acc, full, full)


def _power(a: Code, p: float) -> Code | None:
    """``a ** p`` written out for a constant ``p`` (x², 1/x, √x: fewer passes than
    ``xp.pow``), else ``None``."""
    if p == 1.0:
        return a
    if p == 2.0:
        return fmt("{} * {}", a, a, fresh=True)
    if p == 3.0:
        return fmt("{} * {} * {}", a, a, a, fresh=True)
    if p == -1.0:
        return fmt("1.0 / {}", a, fresh=True)
    if p == -2.0:
        return fmt("1.0 / ({} * {})", a, a, fresh=True)
    if p == 0.5:
        return fmt("xp.sqrt({})", a)
    if p == -0.5:
        return fmt("1.0 / xp.sqrt({})", a, fresh=True)
    # an inf or nan exponent (x ** float('inf')) has no int value: xp.power
    if math.isfinite(p) and p == int(p) and abs(p) < 64:
        if p > 0:
            return fmt("xp.pow({}, {})", a, str(int(p)))
        return fmt("1.0 / xp.pow({}, {})", a, str(-int(p)), fresh=True)
    return None


def map_code(fn: str, args: list[Code], lits: list) -> Code:
    """The code of element-wise function ``fn`` of ``args`` (``lits``: each
    argument's number, or ``None``)."""
    if fn == "pow" and lits[1] is not None and lits[0] is None:
        code = _power(args[0], lits[1])
        if code is not None:
            return code
    # every element-wise function is the backend table's entry of its name
    return fmt("xp.{}({})", fn, join(args, ", ", fresh=False))
