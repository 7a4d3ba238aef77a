"""The matrix-form tree: what the Unicode printer prints, and what proves it true.

:func:`matrix_form` turns an expression into a small tree of matrix operations
(:class:`MForm` nodes): ``matmul`` (``AB``, ``Ax``, ``xᵀy``, ``xyᵀ``), ``T`` (``Aᵀ``),
``had`` (``A ⊙ B``), ``diag`` (``diag(x)``, a vector made a diagonal matrix),
``diagof`` (``diag(A)``, the diagonal of a matrix), ``trace``, ``sum``, ``sumaxis``,
``scale`` (``2x``), ``smul`` (a product with scalars, ``zI``), ``add``, ``func``
(element-wise), ``pow``, ``call`` (a matrix function: ``X⁻¹``, ``det(X)``), the leaves ``sym``,
``num``, ``fill`` (``1``, ``0``), ``size`` (``n``), ``eye`` (``I``) and ``index``,
a product left in index notation.  :func:`matdiff.render.text.to_text` prints this
tree; :func:`to_numpy` evaluates it with NumPy, by the rules of matrix algebra
(vectors are columns, a row is a transposed column), independently of
:meth:`Expr.evaluate <matdiff.expr.core.Expr.evaluate>`.  Equal values prove the
printed formula.

Every node knows its orientation: ``'s'`` scalar, ``'col'`` column vector,
``'row'`` row vector, ``'m'`` matrix, ``'t'`` tensor of three or more axes; the
tree of an expression of shape ``(n,)`` is always a column.

How a product (:class:`~matdiff.expr.core.Einsum`) finds its matrix form (MATH.md,
"Printing in matrix notation"): a product of operands with at most two letters each
and at most two free letters is built by binary steps, each a matrix operation on
two partial products with at most two letters (``uᵢvᵢ`` summed is ``uᵀv``, kept is
``u ⊙ v``; ``Aᵢⱼvⱼ`` summed is ``Av``, kept is ``A diag(v)``; ``uᵢvⱼ`` is ``uvᵀ``;
``AᵢₖBₖⱼ`` is ``AB``; a letter in one operand only is a sum).  A dynamic program
over the subsets of operands keeps, for each subset and each order of its free
letters, the cheapest reading (fewest characters, then fewest transposes).  A
delta over the two free letters ties them, ``xᵢ δᵢⱼ = diag(x)``.  What has no
reading becomes an ``index`` node.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..expr.core import (
    Add,
    Call,
    Const,
    Delta,
    Einsum,
    Expr,
    Map,
    Size,
    Var,
    topo_order,
)
from ..expr.matrix_functions import MATRIX_FUNCTIONS
from .notation import ADD, ATOM, HADAMARD, NEG, POSTFIX, PRODUCT, fmt_number

__all__ = ["MForm", "matrix_form", "index_form", "to_numpy"]

#: products of more operands than this are read greedily, not by the full search
MAX_SEARCH = 7
#: a product of scalars keeps at most this many factors flat: a longer one keeps the
#: bulk of a nested product as one factor (printed without parentheses), as the
#: simplifier's ``MAX_FLAT`` does for expressions.  Flattening every level of a long
#: nested product copied its factors once per level: quadratic time and memory.
MAX_SMUL = 32
_WMAX = 10 ** 9
#: the order in which forms are made (a tie between factors goes to the older one)
_SERIAL = itertools.count()


class MForm:
    """A node of the matrix-form tree (see the module docstring for the kinds).

    ``args`` are the child nodes, ``params`` the kind's parameters, ``shape`` the dims
    (a row vector keeps its ``(n,)``), ``orient`` one of ``'s' 'col' 'row' 'm' 't'``,
    ``prec`` its precedence in the printout, ``width`` an estimate of its printed
    length and ``ntrans`` its number of transposes (the search's costs); ``quot``
    tells a product that prints as a quotient (``x/z``: inside another product it
    needs parentheses) and ``serial`` the order in which forms were made.
    """

    __slots__ = ("kind", "args", "params", "shape", "orient", "prec", "width", "ntrans",
                 "quot", "serial")

    kind: str
    args: tuple
    params: tuple
    shape: tuple
    orient: str
    prec: int
    width: int
    ntrans: int
    quot: bool
    serial: int

    def cost(self) -> tuple[int, int]:
        return (self.width, self.ntrans)

    def __repr__(self) -> str:
        return f"MForm({self.kind}, {self.orient}, {self.shape})"


def _canon(shape: tuple) -> str:
    return ("s", "col", "m")[len(shape)] if len(shape) < 3 else "t"


def _flip(orient: str) -> str:
    return {"col": "row", "row": "col"}.get(orient, orient)


def _is_ones(a: MForm) -> bool:
    return a.kind == "fill" and a.params[0] == 1.0 and len(a.shape) == 1


def _is_zero(a: MForm) -> bool:
    return a.kind in ("fill", "num") and a.params[0] == 0.0


def _is_neg(a: MForm) -> bool:
    return (a.kind in ("scale", "num", "fill") and a.params[0] < 0)


def _const_exponent(e: MForm) -> float | None:
    if e.kind in ("num", "fill"):
        return e.params[0]
    return None


def _int(p: float) -> bool:
    return float(p).is_integer() and abs(p) < 1000


def _denominator(node: MForm) -> tuple[MForm, float] | None:
    """``b⁻ᵖ`` with ``p`` a positive integer: ``(b, p)``, printed as a quotient."""
    if node.kind != "pow":
        return None
    p = _const_exponent(node.args[1])
    if p is not None and p < 0 and _int(p):
        return node.args[0], -p
    return None


def inline(node: MForm) -> bool:
    """A product of scalars nested in another (see :data:`MAX_SMUL`) that prints
    without parentheses among its factors: ``a (b c) d`` is ``a b c d``, but
    ``a (b/c) d`` is not ``a b/c d``."""
    return node.kind == "smul" and node.orient == "s" and not node.quot


# ----------------------------------------------------------------- precedence, width
def _prec(kind: str, params: tuple, shape: tuple, args: tuple) -> int:
    if kind in ("sym", "size", "eye"):
        return ATOM
    if kind in ("num", "fill"):
        v = params[0]
        if v < 0:
            return NEG
        if kind == "fill" and v != 0.0 and (len(shape) == 2 or (len(shape) == 1 and v != 1.0)):
            return PRODUCT  # 1·1ᵀ, 2·1
        return ATOM
    if len(shape) >= 3:
        return ATOM  # printed as a bracket in index notation
    if kind == "call":
        return _CALL_PREC[MATRIX_FUNCTIONS[params[0]].prec]
    if kind in ("T", "pow"):
        return POSTFIX
    if kind == "func":
        return POSTFIX if params[0] == "sqrt" else ATOM
    if kind in ("matmul", "smul"):
        return PRODUCT
    if kind == "scale":
        if args[0].prec == HADAMARD:
            return HADAMARD  # −w ⊘ x²: the number needs no parentheses
        return NEG if params[0] < 0 else PRODUCT
    if kind == "had":
        return HADAMARD
    if kind == "add":
        return ADD
    return ATOM


# diag(v) counts 8, not 6: Aᵀ(u ⊙ v) reads better than Aᵀdiag(u)v
_EXTRA = {"eye": 1, "diag": 8, "diagof": 6, "trace": 4, "sum": 5, "sumaxis": 13}

#: a matrix function's precedence, from the ``prec`` of its definition
_CALL_PREC = {"atom": ATOM, "postfix": POSTFIX, "product": PRODUCT}


def _width(node: MForm) -> int:
    k, args = node.kind, node.args
    if k == "sym":
        return len(node.params[0])
    if k in ("num", "fill"):
        return len(fmt_number(node.params[0])) + (2 if node.prec == PRODUCT else 0)
    if k == "size":
        return len(str(node.params[0]))
    ws = sum(a.width for a in args)
    if k == "T":
        w = ws + 1 + (2 if args[0].prec < ATOM else 0)
    elif k in ("matmul", "smul"):
        w = ws + sum(2 for a in args if a.prec < PRODUCT)
    elif k == "had":
        w = ws + 3 * (len(args) - 1) + sum(2 for a in args
                                           if a.prec < POSTFIX and a.kind != "had")
    elif k == "scale":
        c = abs(node.params[0])
        w = ws + (0 if c == 1 else len(fmt_number(c))) + (node.params[0] < 0) \
            + (2 if args[0].prec < HADAMARD else 0)
    elif k == "add":
        w = ws + 3 * (len(args) - 1)
    elif k == "func":
        w = ws + len(node.params[0]) + 2 + 2 * (len(args) - 1)
    elif k == "pow":
        w = ws + (2 if args[0].prec < ATOM else 0)
    elif k == "call":
        w = ws + MATRIX_FUNCTIONS[node.params[0]].width
    elif k == "index":
        w = ws + 3 * len(args) + 10
    else:
        w = ws + _EXTRA.get(k, 2)
    return min(w, _WMAX)


# ===================================================================== the builder
class _Term:
    """A term of a sum read as ``c · s₁ s₂ … sₖ · x`` (a number, scalar factors, a
    core) while :meth:`Forms._factor_scalar` takes shared factors out: ``mult``
    counts the factors left by id, ``taken`` those taken out (always the first
    occurrences), ``form`` is the term as a form (made when it is needed)."""

    __slots__ = ("c", "sc", "x", "form", "keys", "mult", "taken", "left")

    def __init__(self, c: float, sc: tuple, x: MForm, form: MForm | None) -> None:
        self.c, self.sc, self.x, self.form = c, sc, x, form
        self.keys = {id(s): s for s in sc}
        self.mult = Counter(map(id, sc))
        self.taken: dict[int, int] = {}
        self.left = len(sc)

    def factors(self) -> list[MForm]:
        """The factors left, in their order."""
        if not self.taken:
            return list(self.sc)
        skip = dict(self.taken)
        out = []
        for s in self.sc:
            key = id(s)
            if skip.get(key):
                skip[key] -= 1
            else:
                out.append(s)
        return out


class Forms:
    """Smart constructors of :class:`MForm` nodes (interned, so equal forms are one
    object), each applying the identities of matrix algebra that shorten a form:
    ``(Aᵀ)ᵀ = A``, ``(AB)ᵀ = BᵀAᵀ``, ``IA = A``, ``(cA)B = c(AB)``,
    ``c diag(v) = diag(cv)``, ``diag(u)diag(v) = diag(u ⊙ v)``, ``1ᵀv = sum(v)``,
    ``sum(diag(A)) = tr(A)``, ``1 ⊙ x = x``, ``Ax + Bx = (A + B)x``."""

    def __init__(self) -> None:
        self._table: dict = {}
        self._tcache: dict = {}

    def make(self, kind: str, args: Sequence[MForm], params: tuple, shape: tuple,
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
    def sym(self, name: str, shape: tuple) -> MForm:
        return self.make("sym", (), (name,), shape, _canon(shape))

    def num(self, v: float) -> MForm:
        return self.make("num", (), (float(v),), (), "s")

    def fill(self, v: float, shape: tuple) -> MForm:
        if not shape:
            return self.num(v)
        return self.make("fill", (), (float(v),), shape, _canon(shape))

    def zero(self, shape: tuple, orient: str | None = None) -> MForm:
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
        if k in ("eye", "diag"):
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
        coef, scalars, flat = 1.0, [], []
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
        coef, sc = 1.0, []
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

    # ------------------------------------------------------------- sums
    def add(self, terms: Sequence[MForm], shape: tuple) -> MForm:
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
        return self._settle(self._factor(flat), o)

    def _settle(self, terms: list[MForm], orient: str) -> MForm:
        """The sum of terms already factored: positive terms first, shorter first."""
        if len(terms) == 1:
            return terms[0]
        terms = sorted(terms, key=lambda t: (_is_neg(t), t.width,
                                             t.kind in ("eye", "fill", "num")))
        return self.make("add", terms, (), terms[0].shape, orient)

    def _chain(self, t: MForm) -> tuple[float, list[MForm]]:
        """``t = c · F₁ F₂ … Fₖ``."""
        c = 1.0
        if t.kind == "scale":
            c, t = t.params[0], t.args[0]
        factors: list[MForm] = []
        stack = [t]
        while stack:
            f = stack.pop()
            if f.kind == "matmul":
                stack.append(f.args[1])
                stack.append(f.args[0])
            else:
                factors.append(f)
        return c, factors

    def _product(self, factors: list[MForm]) -> MForm:
        out = factors[0]
        for f in factors[1:]:
            out = self.matmul(out, f)
        return out

    def _factor(self, terms: list[MForm]) -> list[MForm]:
        if len(terms) < 2:
            return terms
        return self._factor_chains(self._factor_scalar(terms))

    def _factor_chains(self, terms: list[MForm]) -> list[MForm]:
        # Σₖ cₖ Pₖ F = (Σₖ cₖ Pₖ) F  and  Σₖ cₖ F Pₖ = F (Σₖ cₖ Pₖ)
        if len(terms) < 2 or terms[0].orient not in ("col", "m"):
            return terms
        chains = [self._chain(t) for t in terms]
        for side in (-1, 0):
            groups: dict[int, list[int]] = {}
            for k, (_, fs) in enumerate(chains):
                f = fs[side]
                if side == 0 and f.orient != "m":
                    continue  # a left factor is a matrix
                if len(fs) == 1 and f.orient not in ("col", "m"):
                    continue  # F alone is I F only for a column or a matrix F
                groups.setdefault(id(f), []).append(k)
            best = None
            for idx in groups.values():
                if len(idx) >= 2 and any(len(chains[k][1]) >= 2 for k in idx):
                    if best is None or len(idx) > len(best):
                        best = idx
            if best is None:
                continue
            F = chains[best[0]][1][side]
            rems = []
            for k in best:
                c, fs = chains[k]
                rest = fs[:-1] if side == -1 else fs[1:]
                if rest:
                    r = self._product(rest)
                else:  # the term is F itself: F = I F = F I
                    r = self.eye(F.shape[0] if side == -1 else F.shape[1])
                rems.append(self.scale(c, r))
            o = rems[0].orient
            if any(r.orient != o for r in rems):
                continue
            inner = self.add(rems, rems[0].shape)
            new = self.matmul(inner, F) if side == -1 else self.matmul(F, inner)
            inside = set(best)
            return [new] + [terms[k] for k in range(len(terms)) if k not in inside]
        return terms

    def _factor_scalar(self, terms: list[MForm]) -> list[MForm]:
        """Scalar factors out of a sum of terms of one orientation.

        Two rules, tried in this order (then again on the terms that came out):

        * ``Σₖ sₖ X = (Σₖ sₖ) X`` for scalars ``sₖ`` and a non-scalar core ``X`` that
          most terms share: ``a1 − b1 = (a − b)1``;
        * ``Σₖ cₖ s Xₖ = s Σₖ cₖ Xₖ`` for the scalar ``s`` (not a number) in the most
          terms (on a tie, the form made first): ``zA + zAᵀ = z(A + Aᵀ)``; the terms
          that had ``s`` are factored again without it, the others stay as they are.

        The nested sums are levels of one loop, and each level costs only what
        changes: the count of terms that have each factor is kept (a heap finds the
        largest), a term that leaves takes its factors' counts with it, and a factor
        taken out is removed from the terms' lists once, when they are made.
        Recomputing every level from its terms cost time quadratic in the terms'
        lengths and cubic overall (the Hessian of ``x^x^…^x``, the derivative of a
        product of sums).  Levels where every term has ``s`` make one product
        ``s₁ s₂ … (Σ …)`` rather than one per level."""
        orient = terms[0].orient
        count: Counter = Counter()  # factor id -> number of live terms that have it
        factor: dict[int, MForm] = {}
        heap: list[tuple[int, int, int]] = []  # (-count, serial, id), stale ones skipped

        def enter(ts: list[_Term]) -> list[_Term]:
            for t in ts:
                for key, s in t.keys.items():
                    count[key] += 1
                    factor[key] = s
                    heapq.heappush(heap, (-count[key], s.serial, key))
            return ts

        def leave(t: _Term) -> None:
            for key, k in t.mult.items():
                if k:
                    count[key] -= 1
                    heapq.heappush(heap, (-count[key], factor[key].serial, key))

        def take(t: _Term, key: int) -> list[_Term]:
            # t without (the first occurrence of) the factor ``key``; with no factor
            # left it is c x, read again (a sum x is its terms).  A core x that is the
            # nested bulk of a long product stays one factor: spreading its factors
            # into the term would bring every level of the nesting back (quadratic)
            t.mult[key] -= 1
            t.taken[key] = t.taken.get(key, 0) + 1
            t.left -= 1
            t.form = None
            if not t.mult[key]:
                count[key] -= 1
                heapq.heappush(heap, (-count[key], factor[key].serial, key))
            if t.left:
                return [t]
            return enter(self._terms(self.scale(t.c, t.x)))

        # each level: (the factors all its terms shared, the factor s or None, the
        # terms without s; for the innermost level, its result)
        frames: list[tuple[list[MForm], MForm | None, list[MForm]]] = []
        items = enter([t for form in terms for t in self._terms(form)])
        run: list[MForm] = []
        while True:
            done = self._common_core(items)
            s = None
            if done is None:
                while heap and -heap[0][0] != count[heap[0][2]]:
                    heapq.heappop(heap)
                if heap and -heap[0][0] >= 2:
                    s = factor[heap[0][2]]
                else:
                    done = [self._form(t) for t in items]
            if done is not None:
                frames.append((run, None, done))
                break
            key = id(s)
            members = [t for t in items if t.mult.get(key)]
            if len(members) < len(items):
                others = []
                for t in items:
                    if not t.mult.get(key):
                        leave(t)
                        others.append(self._form(t))
                frames.append((run, s, others))
                run = []
            else:  # every term has s: this level and the next make one product
                run.append(s)
            items = []
            for t in members:
                items += take(t, key)
        # the levels' results, from the innermost out: s·(Σ inner) + the others, and
        # a level's shared factors s₁ s₂ … (Σ …) around it
        out: list[MForm] = []
        for shared, s, rest in reversed(frames):
            res = rest if s is None else \
                [self.smul([s], self._settle(self._factor_chains(out), orient))] + rest
            out = [self.smul(shared, self._settle(self._factor_chains(res), orient))] \
                if shared else res
        return out

    def _terms(self, form: MForm) -> list[_Term]:
        """A term (a sum: each of its terms) read as ``c · s₁ … sₖ · x``."""
        out = []
        for t in (form.args if form.kind == "add" else (form,)):
            c, u = (t.params[0], t.args[0]) if t.kind == "scale" else (1.0, t)
            if u.kind == "smul":
                out.append(_Term(c, u.args[:-1], u.args[-1], t))
            else:
                out.append(_Term(c, (), u, t))
        return out

    def _form(self, t: _Term) -> MForm:
        if t.form is None:
            t.form = self.scale(t.c, self.smul(t.factors(), t.x))
        return t.form

    def _common_core(self, items: list[_Term]) -> list[MForm] | None:
        # Σₖ sₖ X = (Σₖ sₖ) X for scalars sₖ: a1 − b1 = (a − b)1
        if items[0].x.orient == "s":
            return None
        byx: dict[int, list[int]] = {}
        for k, t in enumerate(items):
            byx.setdefault(id(t.x), []).append(k)
        group = max(byx.values(), key=len)
        if len(group) < 2 or not any(items[k].left for k in group):
            return None
        coefs = []
        for k in group:
            sc = items[k].factors()
            s = self.smul(sc[:-1], sc[-1]) if sc else self.num(1.0)
            coefs.append(self.scale(items[k].c, s))
        new = self.smul([self.add(coefs, ())], items[group[0]].x)
        inside = set(group)
        return [new] + [self._form(t) for k, t in enumerate(items) if k not in inside]

    # ------------------------------------------------------------- functions
    def func(self, fn: str, args: Sequence[MForm]) -> MForm:
        a = args[0]
        return self.make("func", args, (fn,), a.shape, a.orient)

    def pow(self, base: MForm, exponent: MForm) -> MForm:
        return self.make("pow", (base, exponent), (), base.shape, base.orient)

    def call(self, fn: str, x: MForm) -> MForm:
        """Matrix function ``fn`` of ``x``: a result of ``x``'s shape stands as ``x``
        does (``softmax`` of a column is a column), another as its shape says."""
        shape = MATRIX_FUNCTIONS[fn].shape_of(x.shape)
        orient = x.orient if shape == x.shape else _canon(shape)
        return self.make("call", (x,), (fn,), shape, orient)

    def index(self, ops: Sequence[MForm], specs: tuple, out: tuple, shape: tuple) -> MForm:
        """A product in index notation: ``value[out] = Σ Π ops[k][specs[k]]``."""
        return self.make("index", ops, (specs, out), shape, _canon(shape))

    # ============================================================= expressions
    def from_expr(self, node: Expr, kids: list[MForm], index: bool = False) -> MForm:
        """The form of one node over its children's forms (``index``: a product stays
        in index notation)."""
        if isinstance(node, Var):
            return self.sym(node.name, node.shape)
        if isinstance(node, Const):
            return self.fill(node.value, node.shape)
        if isinstance(node, Size):
            return self.size(node.dim)
        if isinstance(node, Delta):
            return self.eye(node.dim)
        if isinstance(node, Add):
            return self.add(kids, node.shape)
        if isinstance(node, Map):
            if node.fn == "pow":
                return self.pow(kids[0], kids[1])
            return self.func(node.fn, kids)
        if isinstance(node, Call):
            return self.call(node.fn, kids[0])
        if isinstance(node, Einsum):
            if not index:
                form = self.einsum(node, kids)
                if form is not None:
                    return form
            return self.index(kids, node.specs, node.out, node.shape)
        raise TypeError(f"no printed form for a {type(node).__name__}")

    # ============================================================= products
    def einsum(self, node: Einsum, kids: list[MForm]) -> MForm | None:
        """The matrix form of a product, or ``None`` where it has none."""
        coef, scalars, items = 1.0, [], []
        for e, form, s in zip(node.children, kids, node.specs, strict=True):
            if len(s) != len(form.shape):
                return None
            if isinstance(e, Const) and not s:
                coef *= e.value
            elif not s:
                scalars.append(form)
            else:
                items.append((form, tuple(s)))
        out = tuple(node.out)
        if items:
            core = self._solve_tied(items, out)
            if core is None:
                return None
        elif scalars:
            core = scalars.pop()
        else:
            return self.num(coef)
        return self.scale(coef, self.smul(scalars, core))

    def _diagonals(self, items: list) -> list | None:
        # Aᵢᵢ is the vector diag(A); a letter three times in one operand has no form
        fixed = []
        for form, s in items:
            if len(set(s)) == len(s):
                fixed.append((form, s))
            elif len(s) == 2:
                fixed.append((self.diagof(form), (s[0],)))
            else:
                return None
        return fixed

    def _solve_tied(self, items: list, out: tuple) -> MForm | None:
        items = self._diagonals(items)
        if items is None or len(out) > 2 or any(len(s) > 2 for _, s in items):
            return None
        if len(out) == 2:
            a, b = out
            for k, (form, s) in enumerate(items):
                if form.kind == "eye" and set(s) == {a, b}:
                    # Π(…) δₐᵦ: the delta makes b equal to a in every other factor,
                    # so the product is diag(v) with v the rest over a (or s·I)
                    rest = [(f, tuple(a if c == b else c for c in t))
                            for j, (f, t) in enumerate(items) if j != k]
                    rest = self._diagonals(rest)
                    if rest is None:
                        return None
                    if not rest:
                        return form
                    has_a = any(a in t for _, t in rest)
                    v = self._solve(rest, (a,) if has_a else ())
                    if v is None:
                        return None
                    return self.diag(v) if has_a else self.smul([v], form)
        return self._solve(items, out)

    def _reduce_single(self, form: MForm, s: tuple, keep: set) -> dict:
        summed = [c for c in s if c not in keep]
        if len(s) == 1:
            return {(): self.sum(form)} if summed else {s: form}
        a, b = s
        if not summed:
            return {(a, b): form, (b, a): self.T(form)}
        if len(summed) == 2:
            return {(): self.sum(form)}
        if summed[0] == a:
            return {(b,): self.sumaxis(form, 0)}
        return {(a,): self.sumaxis(form, 1)}

    def _combine(self, P: MForm, p: tuple, Q: MForm, q: tuple, keep: set) -> list:
        """The matrix operations that multiply partial products ``P[p]`` and
        ``Q[q]``, summing the shared letters not in ``keep``."""
        if not p:
            return [(self.smul([P], Q), q)]
        if not q:
            return []
        if len(p) == 1 and len(q) == 1:
            a, c = p[0], q[0]
            if a != c:
                return [(self.matmul(P, self.T(Q)), (a, c))]  # uᵢvⱼ = (uvᵀ)ᵢⱼ
            if a in keep:
                return [(self.had([P, Q]), p)]  # uᵢvᵢ = (u ⊙ v)ᵢ
            return [(self.matmul(self.T(P), Q), ())]  # Σᵢ uᵢvᵢ = uᵀv
        if len(p) == 2 and len(q) == 1:
            a, b = p
            c = q[0]
            res = []
            if c == b:
                if b in keep:
                    res.append((self.matmul(P, self.diag(Q)), p))  # Aᵢⱼvⱼ = (A diag(v))ᵢⱼ
                else:
                    res.append((self.matmul(P, Q), (a,)))  # Σⱼ Aᵢⱼvⱼ = (Av)ᵢ
            if c == a and a in keep:
                res.append((self.matmul(self.diag(Q), P), p))  # vᵢAᵢⱼ = (diag(v)A)ᵢⱼ
            return res
        if len(p) == 2 and len(q) == 2:
            a, b = p
            c, d = q
            if b == c and a not in q and d not in p and b not in keep:
                return [(self.matmul(P, Q), (a, d))]  # Σₖ AᵢₖBₖⱼ = (AB)ᵢⱼ
            if p == q:
                H = self.had([P, Q])  # AᵢⱼBᵢⱼ = (A ⊙ B)ᵢⱼ, then sums
                if a in keep and b in keep:
                    return [(H, p)]
                if a in keep:
                    return [(self.sumaxis(H, 1), (a,))]
                if b in keep:
                    return [(self.sumaxis(H, 0), (b,))]
                return [(self.sum(H), ())]
        return []

    def _offer(self, table: dict, form: MForm, letters: tuple) -> None:
        if len(letters) == 1:
            form = self.col(form)
        cands = [(form, letters)]
        if len(letters) == 2:
            cands.append((self.T(form), letters[::-1]))
        for f, lt in cands:
            old = table.get(lt)
            if old is None or f.cost() < old.cost():
                table[lt] = f

    def _solve(self, items: list, out: tuple) -> MForm | None:
        n = len(items)
        if n > 2 and len({frozenset(s) for _, s in items}) == 1:
            # one index string for all (up to a transpose): u ⊙ v ⊙ w, then sums
            s0 = items[0][1]
            H = self.had([f if s == s0 else self.T(f) for f, s in items])
            return self._reduce_single(H, s0, set(out)).get(tuple(out))
        # the operands that read each letter, as a bit mask; the output reads its
        # letters too (a bit past the operands)
        full = (1 << n) - 1
        readers: dict[int, int] = {}
        for i, (_, s) in enumerate(items):
            for c in s:
                readers[c] = readers.get(c, 0) | 1 << i
        for c in out:
            readers[c] = readers.get(c, 0) | 1 << n

        def keep_of(mask: int) -> set:
            # the letters a partial product over ``mask`` must keep: read both inside
            # and outside it (or by the output)
            return {c for c, r in readers.items() if r & mask and r & ~mask}

        best: dict[int, dict] = {}
        for i, (form, s) in enumerate(items):
            best[1 << i] = self._reduce_single(form, s, keep_of(1 << i))
        if n <= MAX_SEARCH:
            for mask in sorted(range(1, full + 1), key=lambda m: bin(m).count("1")):
                if mask in best:
                    continue
                keep = keep_of(mask)
                if len(keep) > 2:
                    continue
                low = mask & -mask
                table: dict = {}
                sub = (mask - 1) & mask
                while sub:
                    other = mask ^ sub
                    if sub & low and sub in best and other in best:
                        self._merge(best[sub], best[other], keep, table)
                    sub = (sub - 1) & mask
                if table:
                    best[mask] = table
            return best.get(full, {}).get(out)
        # a long product: merge the cheapest valid pair, greedily (on a tie, the pair
        # met first).  A pair's readings do not change when two other parts merge, so
        # each pair is read once and waits in a heap (every round reading every pair
        # cost time cubic in the operands); the letters a union keeps are among those
        # its two parts keep, so they are found from those (at most four)
        parts = dict(best)
        opens = {m: keep_of(m) for m in parts}
        order = {m: k for k, m in enumerate(parts)}
        heap: list = []

        def offer(mx: int, my: int) -> None:
            m = mx | my
            keep = {c for c in opens[mx] | opens[my] if readers[c] & ~m}
            if len(keep) > 2:
                return
            table: dict = {}
            self._merge(parts[mx], parts[my], keep, table)
            if table:
                cost = min(f.cost() for f in table.values())
                heapq.heappush(heap, (cost, order[mx], order[my], mx, my, keep, table))

        masks = list(parts)
        for x in range(len(masks)):
            for y in range(x + 1, len(masks)):
                offer(masks[x], masks[y])
        while len(parts) > 1:
            while heap and (heap[0][3] not in parts or heap[0][4] not in parts):
                heapq.heappop(heap)  # a pair with a part merged since
            if not heap:
                return None
            *_, mx, my, keep, table = heapq.heappop(heap)
            del parts[mx], parts[my]
            m = mx | my
            others = list(parts)
            parts[m], opens[m], order[m] = table, keep, len(order)
            for other in others:
                offer(other, m)
        return parts[full].get(out)

    def _merge(self, t1: dict, t2: dict, keep: set, table: dict) -> None:
        for p, P in t1.items():
            for q, Q in t2.items():
                for f, lt in self._combine(P, p, Q, q, keep) + self._combine(Q, q, P, p, keep):
                    if set(lt) == keep:
                        self._offer(table, f, lt)


# ===================================================================== entry points
def _build(e: Expr, index: bool) -> MForm:
    forms = Forms()
    text: dict[int, MForm] = {}
    idx: dict[int, MForm] = {}
    opaque = (Call,)  # a matrix function's argument prints in matrix form
    for node in topo_order(e):
        kids = [text[id(c)] for c in node.children]
        text[id(node)] = forms.from_expr(node, kids)
        if index:
            if not isinstance(node, opaque):
                kids = [idx[id(c)] for c in node.children]
            idx[id(node)] = forms.from_expr(node, kids, index=True)
    return (idx if index else text)[id(e)]


def matrix_form(e: Expr) -> MForm:
    """The matrix-form tree of an expression: what :func:`~matdiff.render.text.to_text`
    prints.  Products without a matrix form stay ``index`` nodes.

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> t = matrix_form(md.derive(x @ A @ x, x))
    >>> t.kind, t.orient, [a.kind for a in t.args]
    ('matmul', 'col', ['add', 'sym'])
    """
    return _build(e, index=False)


def index_form(e: Expr) -> MForm:
    """The tree that :func:`~matdiff.render.text.to_index` prints: every product in
    index notation (arguments of matrix functions in matrix form).

    >>> import matdiff as md
    >>> index_form(md.matrix("A", "n", "n") @ md.vector("x", "n")).kind
    'index'
    """
    return _build(e, index=True)


# ===================================================================== evaluation
def _letters(specs: tuple, out: tuple) -> str:
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return ",".join("".join(chars[c] for c in s) for s in specs) + "->" + \
        "".join(chars[c] for c in out)


def to_numpy(tree: MForm, values: Mapping[str, Any],
             dims: Mapping[str, int] | None = None) -> np.ndarray:
    """Evaluate a matrix-form tree by the rules of matrix algebra: a product of a
    column and a row is an outer product, of a row and a column a dot product, and
    any other pairing is an error.  Vector values are 1-D arrays whichever way
    they stand.  Dims are bound from the values (``dims`` may add more).

    >>> import numpy as np, matdiff as md
    >>> x, w = md.vector("x", "n"), md.vector("w", "n")
    >>> to_numpy(matrix_form(md.outer(x, w)), {"x": np.array([1., 2.]), "w": np.array([3., 4.])})
    array([[3., 4.],
           [6., 8.]])
    """
    from ..expr.core import topo_order
    from ..expr.functions import FUNCTIONS

    order: list[MForm] = topo_order(tree, children=lambda n: n.args)

    sizes: dict[Any, int] = dict(dims or {})
    for node in order:
        if node.kind == "sym":
            arr = np.asarray(values[node.params[0]], dtype=np.float64)
            if arr.ndim != len(node.shape):
                raise ValueError(f"value of {node.params[0]} has {arr.ndim} axes")
            for d, k in zip(node.shape, arr.shape, strict=True):
                sizes.setdefault(d, k)

    def size(d: Any) -> int:
        return d if isinstance(d, int) else sizes[d]

    val: dict[int, Any] = {}
    for node in order:
        k = node.kind
        a = [val[id(c)] for c in node.args]
        if k == "sym":
            v = np.asarray(values[node.params[0]], dtype=np.float64)
        elif k == "num":
            v = np.float64(node.params[0])
        elif k == "fill":
            v = np.full(tuple(size(d) for d in node.shape), node.params[0])
        elif k == "size":
            v = np.float64(size(node.params[0]))
        elif k == "eye":
            v = np.eye(size(node.params[0]))
        elif k == "T":
            v = a[0].T if node.orient == "m" else a[0]
        elif k == "matmul":
            oa, ob = node.args[0].orient, node.args[1].orient
            if (oa, ob) == ("col", "row"):
                v = np.outer(a[0], a[1])
            elif oa in ("m", "row") and ob in ("m", "col"):
                v = a[0] @ a[1]
            else:
                raise ValueError(f"no matrix product of a {oa} and a {ob}")
        elif k == "had":
            if len({c.orient for c in node.args}) != 1:
                raise ValueError("⊙ of forms that stand differently")
            v = a[0]
            for b in a[1:]:
                v = v * b
        elif k == "smul":
            if any(c.orient != "s" for c in node.args[:-1]):
                raise ValueError("a scalar factor that is not a scalar")
            v = a[-1]
            for b in a[:-1]:
                v = b * v
        elif k == "scale":
            v = node.params[0] * a[0]
        elif k == "diag":
            if node.args[0].orient not in ("col", "row"):
                raise ValueError("diag of a non-vector")
            v = np.diag(a[0])
        elif k == "diagof":
            v = np.diagonal(a[0]).copy()
        elif k == "trace":
            v = np.trace(a[0])
        elif k == "sum":
            v = np.sum(a[0])
        elif k == "sumaxis":
            v = np.sum(a[0], axis=node.params[0])
        elif k == "add":
            if len({c.orient for c in node.args}) != 1:
                raise ValueError("a sum of forms that stand differently")
            v = a[0]
            for b in a[1:]:
                v = v + b
        elif k == "func":
            with np.errstate(all="ignore"):
                v = FUNCTIONS[node.params[0]].numpy(*a)
        elif k == "pow":
            with np.errstate(all="ignore"):
                v = np.power(np.asarray(a[0], dtype=np.float64), a[1])
        elif k == "call":
            v = MATRIX_FUNCTIONS[node.params[0]].numpy(np.asarray(a[0], dtype=np.float64))
        elif k == "index":
            specs, out = node.params
            v = np.einsum(_letters(specs, out), *[np.asarray(x) for x in a])
        else:  # pragma: no cover
            raise ValueError(f"unknown form {k}")
        val[id(node)] = np.asarray(v, dtype=np.float64)
    return val[id(tree)]
