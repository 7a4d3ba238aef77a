"""The smart constructors of matrix forms, :class:`Forms`, and the form of each
expression node (:meth:`Forms.from_expr`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...expr import written
from ...expr.builders import as_expr
from ...expr.core import Add, Call, Const, Delta, Einsum, Expr, Map, Shape, Size, Var, topo_order
from ...expr.dims import dim_add
from ...expr.matrix_functions import MATRIX_FUNCTIONS
from ...expr.selection import Concat, Take
from ...expr.simplify.structure import is_symmetric
from .factoring import SumFactoring
from .kron import KronForms
from .reading import ProductReading
from .tree import (
    _SERIAL,
    _WMAX,
    MAX_SMUL,
    MForm,
    _canon,
    _denominator,
    _flip,
    _is_ones,
    _is_zero,
    _prec,
    _width,
)


class Forms(SumFactoring, ProductReading, KronForms):
    """Smart constructors of :class:`MForm` nodes (interned, so equal forms are one
    object), each applying the identities of matrix algebra that shorten a form:
    ``(Aᵀ)ᵀ = A``, ``(AB)ᵀ = BᵀAᵀ``, ``IA = A``, ``(cA)B = c(AB)``,
    ``c diag(v) = diag(cv)``, ``diag(u)diag(v) = diag(u ⊙ v)``, ``1ᵀv = sum(v)``,
    ``sum(diag(A)) = tr(A)``, ``1 ⊙ x = x``, ``Ax + Bx = (A + B)x``; the vec layout's
    ``P ⊗ Q``, ``K`` and ``vec(M)`` (:mod:`~matdiff.render.mform.kron`)."""

    def __init__(self, written: bool = False, kept: frozenset[int] = frozenset()) -> None:
        self._table: dict = {}
        self._tcache: dict = {}
        #: whether the sums keep the order their terms were written in (a function,
        #: as the person wrote it), or take the natural order (a derivative; see
        #: :meth:`~matdiff.render.mform.factoring.SumFactoring._settle`); ``kept``:
        #: the ids of the sums that keep it anyway (in a derivative, the sums of its
        #: function: ``step(wᵀx + b)x`` as ``f = max(0, wᵀx + b)`` was written)
        self.written = written
        self.kept = kept
        #: the ids of the forms read from an expression that is symmetric
        #: (:func:`matdiff.expr.simplify.structure.is_symmetric`: ``(XᵀX)⁻¹``,
        #: ``A + Aᵀ``, ``BᵀSB``): ``Mᵀ = M``, so their transposes print as they do
        self._symmetric: set[int] = set()
        #: the forms of the expression's nodes by id (:meth:`form_of`), and the
        #: nodes it built beyond them, kept alive so that their ids stay theirs
        self.memo: dict[int, MForm] = {}
        self._alive: list[Expr] = []
        #: the ids of the nodes whose spelled forms are being made (:meth:`_spelled`)
        self._spelling_now: set[int] = set()

    def make(self, kind: str, args: Sequence[MForm], params: tuple[Any, ...], shape: Shape,
             orient: str) -> MForm:
        args = tuple(args)
        key = (kind, params, tuple(id(a) for a in args), shape, orient)
        node = self._table.get(key)
        if node is not None:
            return node[0]
        node = object.__new__(MForm)
        node.kind, node.args, node.params = kind, args, params
        node.shape, node.orient = tuple(shape), orient
        node.prec = _prec(kind, params, node.shape, args)
        node.width = _width(node)
        node.ntrans = min((kind == "T") + sum(a.ntrans for a in args), _WMAX)
        node.quot = kind == "smul" and (args[-1].quot or any(
            _denominator(a) is not None for a in args[:-1]))
        node.serial = next(_SERIAL)
        self._table[key] = (node, args)  # keep the children alive: ids stay unique
        return node

    # ------------------------------------------------------------- leaves
    def sym(self, name: str, shape: Shape, structure: str | None = None) -> MForm:
        # a structured variable (symmetric, SPD, diagonal) keeps its structure: Sᵀ = S
        params = (name, structure) if structure else (name,)
        return self.make("sym", (), params, shape, _canon(shape))

    def num(self, v: float) -> MForm:
        return self.make("num", (), (float(v),), (), "s")

    def fill(self, v: float, shape: Shape) -> MForm:
        if not shape:
            return self.num(v)
        return self.make("fill", (), (float(v),), shape, _canon(shape))

    def zero(self, shape: Shape, orient: str | None = None) -> MForm:
        z = self.fill(0.0, shape)
        return self.T(z) if orient == "row" else z

    def size(self, dim: Any) -> MForm:
        return self.make("size", (), (dim,), (), "s")

    def eye(self, dim: Any) -> MForm:
        return self.make("eye", (), (dim,), (dim, dim), "m")

    # ------------------------------------------------------------- transpose
    def T(self, a: MForm, depth: int = 3) -> MForm:
        """``aᵀ``, pushed into products, scalings and sums where that is shorter:
        ``(AB)ᵀ = BᵀAᵀ``, ``(A + B)ᵀ = Aᵀ + Bᵀ``; ``Iᵀ = I``, ``diag(v)ᵀ = diag(v)``."""
        o, k = a.orient, a.kind
        if o in ("s", "t"):
            return a
        if k == "T":
            return a.args[0]
        if k in ("eye", "diag") or id(a) in self._symmetric or _symmetric(a):
            return a
        if k == "fill" and o == "m":
            return self.fill(a.params[0], a.shape[::-1])
        if k == "fill" and a.params[0] not in (0.0, 1.0):
            return self.scale(a.params[0], self.T(self.fill(1.0, a.shape)))
        key = (id(a), depth)
        hit = self._tcache.get(key)
        if hit is not None:
            return hit
        shape = a.shape[::-1] if o == "m" else a.shape
        wrap = self.make("T", (a,), (), shape, _flip(o))
        if depth <= 0 or (k in ("add", "had") and len(a.args) > 3):
            self._tcache[key] = wrap
            return wrap
        alt = None
        if k == "matmul":
            alt = self.matmul(self.T(a.args[1], depth - 1), self.T(a.args[0], depth - 1))
        elif k == "scale":
            alt = self.scale(a.params[0], self.T(a.args[0], depth - 1))
        elif k == "smul":
            alt = self.smul(a.args[:-1], self.T(a.args[-1], depth - 1))
        elif k == "had":
            alt = self.had([self.T(c, depth - 1) for c in a.args])
        elif k == "add":
            alt = self.add([self.T(t, depth - 1) for t in a.args], shape)
        best = alt if alt is not None and alt.cost() < wrap.cost() else wrap
        self._tcache[key] = best
        return best

    def col(self, a: MForm) -> MForm:
        """A vector as a column (a row is transposed)."""
        return self.T(a) if a.orient == "row" else a

    # ------------------------------------------------------------- products
    def matmul(self, a: MForm, b: MForm) -> MForm:
        """The matrix product ``ab`` of two forms (matrices, columns, rows)."""
        # scalars commute with matrix products: (cA)B = A(cB) = c(AB)
        if a.kind == "scale":
            return self.scale(a.params[0], self.matmul(a.args[0], b))
        if b.kind == "scale":
            return self.scale(b.params[0], self.matmul(a, b.args[0]))
        if a.kind == "smul" or b.kind == "smul":
            # (sA)B = A(sB) = s(AB) for scalars s; a long product nests its bulk
            # (MAX_SMUL), so the scalars come out in a loop, outermost first
            layers = []
            while a.kind == "smul":
                layers.append(a.args[:-1])
                a = a.args[-1]
            while b.kind == "smul":
                layers.append(b.args[:-1])
                b = b.args[-1]
            out = self.matmul(a, b)
            for sc in reversed(layers):
                out = self.smul(sc, out)
            return out
        if a.kind == "eye" and b.orient in ("m", "col"):
            return b
        if b.kind == "eye" and a.orient in ("m", "row"):
            return a
        for side, f in ((0, a), (1, b)):
            if f.kind == "fill" and f.params[0] not in (0.0, 1.0) and len(f.shape) < 3:
                ones = self.fill(1.0, f.shape)  # (c1)B = c(1B)
                return self.scale(f.params[0], self.matmul(ones, b) if side == 0
                                  else self.matmul(a, ones))
        if a.kind == "diag" and b.kind == "diag":
            return self.diag(self.had([a.args[0], b.args[0]]))
        oa, ob = a.orient, b.orient
        # 1ᵀv = Σᵢ vᵢ
        if oa == "row" and ob == "col":
            if a.kind == "T" and _is_ones(a.args[0]):
                return self.sum(b)
            if _is_ones(b):
                return self.sum(self.T(a))
        shape: tuple  # the product's dims: (rows, cols), (n,) or ()
        if (oa, ob) == ("m", "m"):
            shape, o = (a.shape[0], b.shape[1]), "m"
        elif (oa, ob) == ("m", "col"):
            shape, o = (a.shape[0],), "col"
        elif (oa, ob) == ("row", "m"):
            shape, o = (b.shape[1],), "row"
        elif (oa, ob) == ("row", "col"):
            shape, o = (), "s"
        elif (oa, ob) == ("col", "row"):
            shape, o = (a.shape[0], b.shape[0]), "m"
        else:
            raise ValueError(f"internal: no matrix product of a {oa} and a {ob}")
        return self.make("matmul", (a, b), (), shape, o)

    def had(self, items: Sequence[MForm]) -> MForm:
        """The element-wise product ``a ⊙ b ⊙ …`` of forms of one shape."""
        # (nested products are not flattened: ⊙ is associative, and a long chain
        # stays a chain of small nodes)
        coef = 1.0
        scalars: list[MForm] = []
        flat: list[MForm] = []
        ref = items[0]
        stack = list(reversed(items))
        while stack:
            it = stack.pop()
            if it.kind == "scale":
                coef *= it.params[0]
                stack.append(it.args[0])
            elif it.kind == "smul":
                scalars.extend(it.args[:-1])
                stack.append(it.args[-1])
            elif it.kind == "fill" and it.params[0] == 1.0:
                continue  # 1 ⊙ x = x
            elif it.kind == "fill":
                coef *= it.params[0]
            else:
                flat.append(it)
        if not flat:
            res = self.fill(1.0, ref.shape)
            if ref.orient == "row":
                res = self.T(res)
        elif len(flat) == 1:
            res = flat[0]
        else:
            if flat[0].orient in ("col", "row"):
                o = flat[0].orient
                if any(f.orient != o for f in flat):
                    flat = [self.col(f) for f in flat]
                    o = "col"
            else:
                o = flat[0].orient
            res = self.make("had", flat, (), flat[0].shape, o)
        return self.scale(coef, self.smul(scalars, res))

    def smul(self, scalars: Sequence[MForm], x: MForm) -> MForm:
        """``s₁ s₂ … x``: scalars times a form (``zI``, ``z1``, ``(xᵀy)z``)."""
        coef = 1.0
        sc: list[MForm] = []
        stack = list(reversed(scalars))
        while stack:
            s = stack.pop()
            if s.kind == "num":
                coef *= s.params[0]
            elif s.kind == "scale":
                coef *= s.params[0]
                stack.append(s.args[0])
            elif s.kind == "smul" and len(sc) + len(stack) + len(s.args) <= MAX_SMUL:
                stack.extend(reversed(s.args))
            else:  # a factor (a long product: its bulk, nested)
                sc.append(s)
        while x.kind in ("scale", "smul", "num", "fill") and not _is_zero(x):
            if x.kind == "scale":
                coef *= x.params[0]
                x = x.args[0]
            elif x.kind == "smul":
                if len(sc) + len(x.args) - 1 > MAX_SMUL:
                    break  # x stays a nested product
                sc.extend(x.args[:-1])
                x = x.args[-1]
            elif x.kind == "num" and sc:
                coef *= x.params[0]
                x = sc.pop()
            elif x.kind == "fill" and x.params[0] != 1.0:
                coef *= x.params[0]
                x = self.fill(1.0, x.shape)
            else:
                break
        if coef == 0.0 or _is_zero(x):
            return self.zero(x.shape, x.orient)
        if x.kind == "diag" and sc:  # z diag(v) = diag(zv)
            return self.scale(coef, self.diag(self.smul(sc, x.args[0])))
        if sc:
            x = self.make("smul", tuple(sc) + (x,), (), x.shape, x.orient)
        return self.scale(coef, x)

    def scale(self, c: float, x: MForm) -> MForm:
        """``c x`` for a number ``c`` (``−x``, ``2A``; ``c diag(v) = diag(cv)``)."""
        c = float(c)
        if c == 1.0:
            return x
        if c == 0.0 or _is_zero(x):
            return self.zero(x.shape, x.orient)
        if x.kind == "num":
            return self.num(c * x.params[0])
        if x.kind == "fill":
            return self.fill(c * x.params[0], x.shape)
        if x.kind == "scale":
            return self.scale(c * x.params[0], x.args[0])
        if x.kind == "diag":
            return self.diag(self.scale(c, x.args[0]))
        return self.make("scale", (x,), (c,), x.shape, x.orient)

    # ------------------------------------------------------------- diag, sums
    def diag(self, v: MForm) -> MForm:
        """``diag(v)``, the diagonal matrix of a vector (``diag(1) = I``)."""
        v = self.col(v)
        if _is_ones(v):
            return self.eye(v.shape[0])
        return self.make("diag", (v,), (), (v.shape[0], v.shape[0]), "m")

    def diagof(self, M: MForm) -> MForm:
        """``diag(A)``, the diagonal of a square matrix, as a column."""
        if M.kind == "diag":
            return M.args[0]
        if M.kind == "eye":
            return self.fill(1.0, (M.shape[0],))
        if M.kind == "T":
            return self.diagof(M.args[0])
        return self.make("diagof", (M,), (), (M.shape[0],), "col")

    def trace(self, M: MForm) -> MForm:
        if M.kind == "T":
            M = M.args[0]
        return self.make("trace", (M,), (), (), "s")

    def sum(self, x: MForm) -> MForm:
        """``Σ`` of all elements (``sum(diag(A)) = tr(A)``)."""
        if x.kind == "diagof":
            return self.trace(x.args[0])
        if x.kind == "T":
            return self.sum(x.args[0])
        return self.make("sum", (x,), (), (), "s")

    def sumaxis(self, M: MForm, axis: int) -> MForm:
        """Sum of a matrix along ``axis`` (0: down the columns), as a column."""
        if M.kind == "T":
            return self.sumaxis(M.args[0], 1 - axis)
        return self.make("sumaxis", (M,), (axis,), (M.shape[1 - axis],), "col")

    def meanaxis(self, M: MForm, axis: int) -> MForm:
        """The mean of a matrix along ``axis`` (0: down the columns), as a column
        (``mean(X, axis=1)``, as written)."""
        if M.kind == "T":
            return self.meanaxis(M.args[0], 1 - axis)
        return self.make("meanaxis", (M,), (axis,), (M.shape[1 - axis],), "col")

    # ------------------------------------------------------------- sums
    def add(self, terms: Sequence[MForm], shape: Shape) -> MForm:
        """The sum of forms of one shape; a common factor of products comes out
        (``Ax + Aᵀx = (A + Aᵀ)x``); positive terms first, shorter first (``A + I``)."""
        flat: list[MForm] = []
        stack = list(reversed(terms))
        while stack:
            t = stack.pop()
            if t.kind == "add":
                stack.extend(reversed(t.args))
            elif not _is_zero(t):
                flat.append(t)
        if not flat:
            return self.fill(0.0, tuple(shape))
        o = flat[0].orient
        if any(t.orient != o for t in flat):
            flat = [self.col(t) for t in flat]
            o = flat[0].orient
        flat = self._merge_diags(flat)
        if len(flat) == 1:
            return flat[0]
        return self._settle(self._factor(self._merge_equal(flat)), o)

    def _merge_diags(self, terms: list[MForm]) -> list[MForm]:
        """``diag(u) + diag(v) = diag(u + v)``: the diagonal terms of a sum become one
        ``diag(…)``, where the first of them stood."""
        diags = [t for t in terms if t.kind == "diag"]
        if len(diags) < 2:
            return terms
        merged = self.diag(self.add([t.args[0] for t in diags], diags[0].args[0].shape))
        out: list[MForm] = []
        placed = False  # equal diagonals are one interned form: place the merge once
        for t in terms:
            if t.kind != "diag":
                out.append(t)
            elif not placed:
                out.append(merged)
                placed = True
        return [t for t in out if not _is_zero(t)] or [merged]

    def _merge_equal(self, terms: list[MForm]) -> list[MForm]:
        """``A + A = 2A``: equal terms (one interned form) become one, scaled by their
        count (sums that met by different paths: ``(A + Aᵀ)x + (Aᵀ + A)x``)."""
        count: dict[int, int] = {}
        for t in terms:
            count[id(t)] = count.get(id(t), 0) + 1
        if len(count) == len(terms):
            return terms
        out, seen = [], set()
        for t in terms:
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t if count[id(t)] == 1 else self.scale(float(count[id(t)]), t))
        return out

    # ------------------------------------------------------------- functions
    def func(self, fn: str, args: Sequence[MForm]) -> MForm:
        a = args[0]
        if a.shape and all(t.kind == "fill" for t in args):
            # f(c·1) = f(c)·1: a function of constants is a number (log(2), not log(2·1))
            nums = [self.num(t.params[0]) for t in args]
            ones = self.fill(1.0, a.shape)
            return self.smul([self.make("func", nums, (fn,), (), "s")],
                             self.T(ones) if a.orient == "row" else ones)
        # a constant parameter broadcast over the first argument is its number:
        # elu(z, 1), not elu(z, 𝟏) (an element-wise function's arguments broadcast)
        args = [a, *(self.num(t.params[0]) if t.kind == "fill" else t for t in args[1:])]
        return self.make("func", args, (fn,), a.shape, a.orient)

    def pow(self, base: MForm, exponent: MForm) -> MForm:
        if base.kind == "fill" and exponent.shape == base.shape \
                and exponent.kind != "fill":
            # (c·1)^x = c^x, the number broadcast to the exponent's shape: 2^x
            return self.make("pow", (self.num(base.params[0]), exponent), (),
                             exponent.shape, exponent.orient)
        return self.make("pow", (base, exponent), (), base.shape, base.orient)

    def call(self, fn: str, x: MForm | Sequence[MForm], params: tuple[Any, ...] = ()) -> MForm:
        """Matrix function ``fn`` of ``x`` (or of the arguments ``x``, with the call's
        ``params``): a result of the first argument's shape stands as it does
        (``softmax`` of a column is a column, ``A⁻¹b`` as ``b``), another as its shape
        says."""
        args = (x,) if isinstance(x, MForm) else tuple(x)
        shape = MATRIX_FUNCTIONS[fn].shape_of(*(a.shape for a in args), params=params)
        last = args[-1]
        orient = last.orient if shape == last.shape else _canon(shape)
        return self.make("call", args, (fn, *params), shape, orient)

    def index(self, ops: Sequence[MForm], specs: tuple[tuple[int, ...], ...],
              out: tuple[int, ...], shape: Shape) -> MForm:
        """A product in index notation: ``value[out] = Σ Π ops[k][specs[k]]``."""
        return self.make("index", ops, (specs, out), shape, _canon(shape))

    # ------------------------------------------------------------- stacking
    def stack(self, parts: Sequence[MForm], axis: int, rows: tuple[bool, ...],
              shape: Shape) -> MForm:
        """A concatenation (:class:`~matdiff.expr.selection.Concat`): ``[a, b]``, a
        stack of scalars, is a column; a matrix's columns stacked are the transpose of
        its rows stacked (``[u, v]ᵀ``); matrices side by side (``axis=1``) are a block
        row, and block rows of one partition stacked are a ``block`` matrix
        (``[[X, E], [0, X]]``, params: the number of block rows and columns)."""
        unit = self._unit_scatter(parts, axis, rows, shape)
        if unit is not None:
            return unit
        if axis == 1 and len(shape) == 2:
            if not any(rows):
                return self.make("stack", parts, (1, rows), shape, "m")
            flipped = [p if row else self.T(p) for p, row in zip(parts, rows)]
            inner = self._unit_scatter(flipped, 0, rows, (shape[1], shape[0])) \
                or self.make("stack", flipped, (0, rows), (shape[1], shape[0]), "m")
            return self.T(inner)
        if axis == 0 and len(shape) == 2 and all(rows) and isinstance(shape[1], int):
            # rows of numbers: the matrix [[1, 2], [3, x]] (a row of zeros is [0, 0])
            grid = []
            for p in parts:
                if p.kind == "stack" and p.params[0] == 0 and all(p.params[1]):
                    grid.append(list(p.args))
                elif p.kind == "fill":
                    grid.append([self.num(p.params[0])] * shape[1])
                else:
                    break
            else:
                cells = [c for r in grid for c in r]
                return self.make("block", cells, (len(grid), shape[1]), shape, "m")
        if axis == 0 and len(shape) == 2 and not any(rows) and len(parts) > 1 and all(
                p.kind == "stack" and p.params[0] == 1 for p in parts):
            widths = [tuple(c.shape[1] for c in p.args) for p in parts]
            if len(set(widths)) == 1:
                cells = [c for p in parts for c in p.args]
                return self.make("block", cells, (len(parts), len(widths[0])), shape, "m")
        return self.make("stack", parts, (axis, rows), shape, _canon(shape))

    def unit(self, offset: Any, dim: Any) -> MForm:
        """The unit vector ``eₚ`` of ``dim`` entries: 1 at index ``p`` (counted from 0,
        as ``x[p]`` is), 0 elsewhere; ``params`` are ``(p, dim)``."""
        return self.make("unit", (), (offset, dim), (dim,), "col")

    def _unit_scatter(self, parts: Sequence[MForm], axis: int, rows: tuple,
                      shape: tuple) -> MForm | None:
        """A scatter into zeros (the adjoint of a selection): one row part ``r`` at
        offset ``p`` along the first axis, zeros elsewhere, is ``r eₚ`` for a vector
        (``d x[0]/dx = e₀``) and ``eₚ rᵀ`` for a matrix (``d A[1, 2]/dA = e₁e₂ᵀ``),
        where some zeros are a block (as the scatter makes them); None for any other
        concatenation."""
        if axis != 0 or len(shape) not in (1, 2):
            return None
        live = [k for k, p in enumerate(parts) if not _is_zero(p)]
        if len(live) != 1 or not rows[live[0]]:
            return None
        k = live[0]
        if all(rows):  # a literal of rows ([x, 0], [[y, 1], [0, 0]]) prints as written
            return None
        offset = dim_add(0, *[1 if rows[j] else parts[j].shape[0] for j in range(k)])
        e = self.unit(offset, shape[0])
        r = parts[k]
        if len(shape) == 1:
            if r.kind == "num":
                return self.scale(r.params[0], e)
            return self.smul([r], e)
        if r.orient not in ("col", "row"):
            return None
        return self.matmul(e, self.T(self.col(r)))

    def take(self, x: MForm, axis: int, key: tuple[Any, ...], text: str, shape: Shape) -> MForm:
        """A selection (:class:`~matdiff.expr.selection.Take`), printed as NumPy indexes:
        ``x[0]``, ``x[1:]``, ``X[:, 0]``; ``params`` holds the key's text on each axis of
        the selected form (``None``: all of it), so ``X[1][2]`` is ``X[1, 2]``."""
        if x.kind == "take":
            keys = list(x.params[0])
            free = [k for k, t in enumerate(keys) if t is None or ":" in t]
            if axis < len(free) and keys[free[axis]] is None:
                keys[free[axis]] = text
                return self.make("take", x.args, (tuple(keys),), shape, _canon(shape))
        keys = [None] * len(x.shape)
        keys[axis] = text
        return self.make("take", (x,), (tuple(keys),), shape, _canon(shape))

    # ============================================================= expressions
    def from_expr(self, node: Expr, kids: list[MForm], index: bool = False) -> MForm:
        """The form of one node over its children's forms (``index``: a product stays
        in index notation); the form of a symmetric matrix is its own transpose."""
        form = self._from_expr(node, kids, index)
        if len(node.shape) == 2 and form.orient == "m" and is_symmetric(node):
            self._symmetric.add(id(form))
        return form

    def _from_expr(self, node: Expr, kids: list[MForm], index: bool) -> MForm:
        if isinstance(node, Var):
            return self.sym(node.name, node.shape, node.structure)
        if isinstance(node, Const):
            return self.fill(node.value, node.shape)
        if isinstance(node, Size):
            return self.size(node.dim)
        if isinstance(node, Delta):
            return self.eye(node.dim)
        if isinstance(node, Add):
            if self.written or id(node) in self.kept:
                # the terms as written (Add.written_terms), not in canonical order
                pos = {id(c): k for k, c in enumerate(node.children)}
                kids = [kids[pos[id(t)]] for t in node.written_terms()]
                before, self.written = self.written, True
                try:
                    return self.add(kids, node.shape)
                finally:
                    self.written = before
            return self.add(kids, node.shape)
        if isinstance(node, (Map, Einsum)) and not index and self._as_written(node):
            form = self._spelled(node)
            if form is not None:
                return form
        if isinstance(node, Map):
            if node.fn == "pow":
                return self.pow(kids[0], kids[1])
            return self.func(node.fn, kids)
        if isinstance(node, Call):
            return self.call(node.fn, kids, node.params)
        if isinstance(node, Concat):
            return self.stack(kids, node.axis, node.rows, node.shape)
        if isinstance(node, Take):
            return self.take(kids[0], node.axis, node.key, node.text(), node.shape)
        if isinstance(node, Einsum):
            if not index:
                # a function's operands as written (y ⊙ (Xw), tr(X⁻¹A)); a
                # derivative's in canonical order
                perm = written.recorded_order(node) if self._as_written(node) else None
                form = self.einsum(node, kids, perm)
                if form is not None:
                    return form
            return self.index(kids, node.specs, node.out, node.shape)
        raise TypeError(f"no printed form for a {type(node).__name__}")

    # ------------------------------------------------------------- as written
    def _as_written(self, node: Expr) -> bool:
        """Whether ``node`` prints as it was written (:mod:`matdiff.expr.written`):
        a function's nodes do, a derivative's only where they are its function's."""
        return self.written or id(node) in self.kept

    def form_of(self, e: Expr) -> MForm:
        """The matrix form of any expression, with the forms built so far (a
        spelling's argument need not be a child of the node: ``mean(Xw)`` is the
        product ``Xᵢⱼwⱼ/n``)."""
        for node in topo_order(e):
            if id(node) not in self.memo:
                kids = [self.memo[id(c)] for c in node.children]
                self.memo[id(node)] = self.from_expr(node, kids)
                self._alive.append(node)
        return self.memo[id(e)]

    def _spelled(self, node: Expr) -> MForm | None:
        """The form of a node as the builder it was written with spells it, where
        that spelling still holds: ``w · x`` (``dot`` of two vectors), ``mean(v)``,
        ``mean(X, axis=1)``, ``max(0, z)`` (the ReLU as written), ``2(u · v)`` (a
        product that absorbed a spelled operand, ``mul``); else None."""
        if id(node) in self._spelling_now:
            # a spelling whose arguments' spellings come back to it (mul(2/3, M) on
            # N and mul(1.5, N) on M = 1.5N): the node's own form
            return None
        sp = written.spelling_holds(node)
        if sp is None:
            return None
        name, args = sp
        self._spelling_now.add(id(node))
        try:
            forms = [self.form_of(as_expr(a)) for a in args if not isinstance(a, int)]
        finally:
            self._spelling_now.discard(id(node))
        if name == "dot" and all(len(a.shape) == 1 for a in forms):
            # wᵀx written as the paper's dot product w · x
            return self.make("dot", [self.col(a) for a in forms], (), (), "s")
        if name == "mean" and len(forms) == 1 and (len(args) == 1 or len(forms[0].shape) == 1):
            return self.make("mean", forms, (), (), "s")  # Σ vᵢ / n written mean(v)
        if name == "mean" and len(forms[0].shape) == 2:
            # Σⱼ Xᵢⱼ / n written mean(X, axis=1)
            return self.meanaxis(forms[0], args[1])
        if name == "mul":
            return self._scaling(*forms)
        if name == "neg":
            return self.scale(-1.0, forms[0])
        if name == "sum" and (len(args) == 1 or len(forms[0].shape) == 1):
            return self.sum(forms[0])
        if name == "sum" and len(forms[0].shape) == 2:
            return self.sumaxis(forms[0], args[1])
        if name == "maximum" and isinstance(node, Map):
            # relu(z) written max(0, z) (either side), each side a number or z
            a, b = (self.num(f.params[0]) if f.kind == "fill" else f for f in forms)
            return self.make("func", (a, b), ("max",), node.shape,
                             b.orient if a.orient == "s" else a.orient)
        return None

    def _scaling(self, a: MForm, b: MForm) -> MForm | None:
        """The element-wise product ``a * b`` of two forms as its operands' forms
        (``mul`` as written): a scalar scales the other operand, ``2(u · v)``,
        ``s mean(v)``, ``(u · v)x`` (a number in front, a scalar's inverse as a
        quotient: ``mean(v)/(u · v)``); two operands of one shape are their
        element-wise product; None for a broadcast of a vector over a matrix."""
        if a.orient == "s" and b.orient == "s":
            if _denominator(b) is None or _denominator(a) is not None:
                return self.smul([a], b)
            return self.smul([b], a)
        if a.orient == "s":
            return self.smul([a], b)
        if b.orient == "s":
            return self.smul([b], a)
        if a.shape == b.shape and len(a.shape) in (1, 2):
            return self.had([a, b])
        return None


def _symmetric(a: MForm) -> bool:
    """A form equal to its transpose because of a structured variable: ``S``, ``S⁻¹``
    (a function that keeps symmetry), and sums, scalings and element-wise products of
    them (MATH.md, "Symmetric (and SPD, diagonal) variables")."""
    k = a.kind
    if k == "sym":
        return len(a.params) > 1
    if k == "call":
        return MATRIX_FUNCTIONS[a.params[0]].symmetric and all(
            _symmetric(t) or t.kind in ("eye", "diag") for t in a.args)
    if k in ("add", "had"):
        return all(_symmetric(t) or t.kind in ("eye", "diag") for t in a.args)
    if k == "scale":
        return _symmetric(a.args[0])
    return False
