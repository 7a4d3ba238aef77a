"""The matrix-form tree's node, :class:`MForm`, and what each node knows of itself:
its orientation, precedence in the printout and printed width (the reading's cost).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ...expr.core import Shape
from ...expr.matrix_functions import MATRIX_FUNCTIONS, MatrixFunction
from ..notation import ADD, ATOM, HADAMARD, KRON, NEG, POSTFIX, PRODUCT, fmt_number

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
    args: tuple[MForm, ...]
    params: tuple[Any, ...]
    shape: Shape
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
            return PRODUCT  # 𝟏𝟏ᵀ, 2𝟏
        return ATOM
    if kind == "take":
        return POSTFIX  # x[1:], like a transpose
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
        if args[0].prec in (HADAMARD, KRON) and args[0].kind != "dot":
            return args[0].prec  # −w ⊘ x², −X⁻ᵀ ⊗ X⁻¹: the number needs no parentheses
        return NEG if params[0] < 0 else PRODUCT
    if kind in ("had", "dot"):
        return HADAMARD
    if kind == "kron":
        return KRON
    if kind == "add":
        return ADD
    return ATOM


# diag(v) counts 8, not 6: Aᵀ(u ⊙ v) reads better than Aᵀdiag(u)v
_EXTRA = {"eye": 1, "comm": 1, "vecof": 5, "diag": 8, "diagof": 6, "trace": 4, "sum": 5,
          "sumaxis": 13, "mean": 6, "meanaxis": 14, "dot": 3}

#: a matrix function's precedence, from the ``prec`` of its definition
_CALL_PREC = {"atom": ATOM, "postfix": POSTFIX, "product": PRODUCT, "apply": PRODUCT,
              "infix": HADAMARD}
#: the precedence each argument needs (none: the spelling has its parentheses): the
#: base of ``X⁻¹``; ``A⁻¹b``'s matrix and right-hand side; ``A ⊗ B``'s operands
ARG_PREC: dict[str, tuple[int, ...]] = {"postfix": (ATOM,), "apply": (ATOM, PRODUCT),
                                        "infix": (POSTFIX, POSTFIX)}


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
            + (2 if args[0].prec < HADAMARD or args[0].kind == "dot" else 0)
    elif k == "add":
        w = ws + 3 * (len(args) - 1)
    elif k == "kron":
        w = ws + 3 + sum(2 for a in args if a.prec < PRODUCT)
    elif k == "func":
        w = ws + len(node.params[0]) + 2 + 2 * (len(args) - 1)
    elif k == "pow":
        w = ws + (2 if args[0].prec < ATOM else 0)
    elif k == "call":
        w = ws + MATRIX_FUNCTIONS[node.params[0]].width
    elif k == "index":
        w = ws + 3 * len(args) + 10
    elif k in ("stack", "block"):
        w = ws + 2 * len(args)
    elif k == "take":
        w = ws + 2 + sum(len(t or ":") + 2 for t in node.params[0])
    else:
        w = ws + _EXTRA.get(k, 2)
    return min(w, _WMAX)


def call_spec(node: MForm) -> MatrixFunction:
    """The definition of the matrix function a ``call`` form applies."""
    return MATRIX_FUNCTIONS[node.params[0]]


def transposed_call(node: MForm) -> bool:
    """A transposed matrix function whose transpose has a spelling of its own
    (``(X⁻¹)ᵀ = X⁻ᵀ``)."""
    return node.kind == "T" and node.args[0].kind == "call" \
        and bool(call_spec(node.args[0]).unicode_T) and call_spec(node.args[0]).arity == 1


class FormsAPI(Protocol):
    """The smart constructors of :class:`~matdiff.render.mform.forms.Forms` that its
    mixins (:class:`~matdiff.render.mform.reading.ProductReading`,
    :class:`~matdiff.render.mform.factoring.SumFactoring`,
    :class:`~matdiff.render.mform.kron.KronForms`) call on ``self``, with the product
    search that the vec layout reuses.  Only their signatures are here: ``Forms``
    defines each once, and the type checker verifies it against these."""

    def make(self, kind: str, args: Sequence[MForm], params: tuple[Any, ...], shape: Shape,
             orient: str) -> MForm: ...
    def num(self, v: float) -> MForm: ...
    def fill(self, v: float, shape: Shape) -> MForm: ...
    def eye(self, dim: Any) -> MForm: ...
    def T(self, a: MForm, depth: int = 3) -> MForm: ...
    def col(self, a: MForm) -> MForm: ...
    def matmul(self, a: MForm, b: MForm) -> MForm: ...
    def had(self, items: Sequence[MForm]) -> MForm: ...
    def smul(self, scalars: Sequence[MForm], x: MForm) -> MForm: ...
    def scale(self, c: float, x: MForm) -> MForm: ...
    def diag(self, v: MForm) -> MForm: ...
    def diagof(self, M: MForm) -> MForm: ...
    def trace(self, M: MForm) -> MForm: ...
    def sum(self, x: MForm) -> MForm: ...
    def sumaxis(self, M: MForm, axis: int) -> MForm: ...
    def add(self, terms: Sequence[MForm], shape: Shape) -> MForm: ...
    def _solve(self, items: list[Any], out: tuple[int, ...]) -> MForm | None: ...
    def _solve_tied(self, items: list[Any], out: tuple[int, ...]) -> MForm | None: ...


# The base of the mixins: to the type checker ``FormsAPI`` (so ``self.matmul`` in a
# mixin has its signature), at run time nothing (``Forms`` itself defines them all).
if TYPE_CHECKING:
    FormsMixin = FormsAPI
else:
    FormsMixin = object
