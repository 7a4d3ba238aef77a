"""Expressions printed in matrixcalculus.org's syntax (:func:`to_matrixcalculus`).

The printer reads the expression's matrix form (:func:`matdiff.render.mform.matrix_form`,
the reading the Unicode printer uses: vectors are columns, a row is a transposed
column) and writes it with matrixcalculus syntax's operators: ``*`` for matrix
products, ``'`` for transposes, ``.*`` for element-wise products, ``.^`` for
element-wise powers.  Every compound operand is put in parentheses, so the text
parses back (``md.parse(text, syntax="matrixcalculus")``) to an expression of the
same value.  Constants are written with their dims (``vector(1, n)``).

Parts that the syntax has no word for are written with what it has: a sum along one
axis as a product with ``vector(1, n)``, the identity as ``matrix(1, n, n)^0`` (a
square matrix's power 0).  The rest (``logsumexp``, ``softmax``, a dim's size,
products with no matrix form, tensors of order 3 and more) raise :class:`ValueError`.

It is :class:`~matdiff.render.printer.Printer` with this syntax's table
(:data:`MATRIXCALCULUS`), which writes each form whole: the syntax has no precedence
to lean on.
"""

from __future__ import annotations

from typing import Any

from ..expr.core import Expr
from ..expr.matrix_functions import MATRIX_FUNCTIONS
from ..parse.mc import MC_FUNCTION_TABLE
from .layout import LAYOUTS, ChoiceError, apply_layout, check_choice, f_ndim_of
from .mform import MForm, matrix_form
from .notation import ATOM, exact
from .printer import Printer

__all__ = ["to_matrixcalculus", "MATRIXCALCULUS", "MatrixCalculusFormat"]

Result = tuple[str, int]
#: forms written without parentheses as an operand (names, constants, calls)
_ATOMS = ("sym", "fill", "func", "call", "trace", "sum", "diag", "diagof")
#: a compound form, always in parentheses as an operand
_COMPOUND = -1


def to_matrixcalculus(expr: Expr, layout: str = "mixed") -> str:
    """``expr`` written in matrixcalculus.org's syntax; ``layout`` as for
    :func:`~matdiff.render.to_text`, except ``vec``: the syntax has no Kronecker
    product, ``vec`` or commutation matrix, so that is a
    :class:`~matdiff.render.layout.ChoiceError`.

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> to_matrixcalculus(x @ A @ x)
    "x'*(A*x)"
    >>> text = to_matrixcalculus(md.derive(x @ A @ x, x))
    >>> md.parse(text, syntax="matrixcalculus").shape
    ('n',)
    """
    check_choice("layout", layout, LAYOUTS)
    if layout == "vec":
        raise ChoiceError("layout='vec' has no matrixcalculus.org spelling (the syntax has "
                          "no Kronecker product, vec or commutation matrix): print it with "
                          "md.to_text or md.latex")
    if len(expr.shape) > 2:
        # the syntax has scalars, vectors and matrices only: matrix(0, n, n, n, n)
        # would not parse back
        raise ValueError(f"matrixcalculus syntax has no tensors of order {len(expr.shape)} "
                         f"(shape {expr.shape}): only scalars, vectors and matrices")
    tree = apply_layout(matrix_form(expr), layout, f_ndim_of(expr, None))
    return Printer(MATRIXCALCULUS).run(("m", tree))[0]


def _num(v: float) -> str:
    ex = exact(v)
    if ex is not None:  # an exact number stays one: (1/9), (-1/2), (2/sqrt(3.14…))
        top, bottom = ex.parts("mc")
        text = "*".join(top or ["1"])
        if bottom:
            text += "/" + (bottom[0] if len(bottom) == 1 else "(" + "*".join(bottom) + ")")
        return f"({'-' if ex.p < 0 else ''}{text})"
    if float(v).is_integer() and abs(v) < 1e15:
        s = str(int(v))
    else:
        s = repr(float(v))
    return f"({s})" if v < 0 else s


class MatrixCalculusFormat:
    """matrixcalculus.org's syntax: ``*`` matrix products, ``'`` transposes, ``.*``
    element-wise products, ``^`` and ``.^`` powers, every compound operand in
    parentheses.  The printer hands each form whole to :meth:`whole`."""

    WHOLE = True
    SIGNS: dict[str, str] = {}
    MIN_CAP = 16
    ELLIPSIS = "..."
    #: the products and the sum: the sign between operands
    OPS = {"matmul": "*", "had": ".*", "smul": "*", "add": " + "}
    #: the calls, one entry per kind (the element-wise functions are the syntax's own)
    CALLS = {"trace": "tr", "sum": "sum", "diag": "diag", "diagof": "diag"}

    def bound(self, pr: Any, text: str, prec: int) -> Result:
        return text, prec

    def whole(self, node: MForm, r: list[Result]) -> Result:
        """A form written from its operands' texts (the precedence slot says whether
        it needs parentheses as an operand)."""
        text = self._write(node, r)
        atom = node.kind in _ATOMS or (node.kind == "num" and node.params[0] >= 0) or (
            node.kind == "T" and node.args[0].kind in _ATOMS)
        return text, (ATOM if atom else _COMPOUND)

    @staticmethod
    def _arg(res: Result) -> str:
        return res[0] if res[1] == ATOM else f"({res[0]})"

    def _write(self, node: MForm, r: list[Result]) -> str:
        k, p, args = node.kind, node.params, node.args
        if k in self.OPS:
            return self.OPS[k].join(self._arg(a) for a in r)
        if k in self.CALLS:
            return f"{self.CALLS[k]}({r[0][0]})"
        if k == "dot":  # w · x is w'*x
            return f"{self._arg(r[0])}'*{self._arg(r[1])}"
        if k == "func" and p[0] == "max" and any(a.kind == "num" and a.params[0] == 0
                                                 for a in args):
            # max(0, z) as written has the syntax's word relu(z)
            other = [res for a, res in zip(args, r, strict=True)
                     if not (a.kind == "num" and a.params[0] == 0)]
            return f"relu({other[0][0] if other else '0'})"
        if k == "call":  # a matrix function, by matrixcalculus.org's name for it
            name = MATRIX_FUNCTIONS[p[0]].mc
            if not name:
                raise ValueError(f"matrixcalculus syntax has no function {p[0]!r}")
            return f"{name}({', '.join(a[0] for a in r)})"
        if k == "sym":
            return p[0]
        if k == "num":
            return _num(p[0])
        if k == "fill":
            return self._fill(node)
        if k == "T":
            return self._arg(r[0]) + "'"
        if k == "scale":
            return f"{_num(p[0])}*{self._arg(r[0])}"
        if k == "pow":
            op = "^" if node.orient == "s" else ".^"
            e = args[1]
            exponent = _num(e.params[0]) if e.kind == "fill" else self._arg(r[1])
            return f"{self._arg(r[0])}{op}{exponent}"
        if k == "func":
            if p[0] not in MC_FUNCTION_TABLE or len(args) != 1:
                raise ValueError(f"matrixcalculus syntax has no function {p[0]!r}")
            return f"{p[0]}({r[0][0]})"
        if k == "eye":
            # the syntax has no identity, but a square matrix's power 0 is one (the
            # Unicode reading (I + Aᵀ)x of x + Aᵀx brings it in)
            return f"matrix(1, {p[0]}, {p[0]})^0"
        if k == "sumaxis":
            # the syntax has no axis sums: sum(A, axis=1) = A·1, sum(A, axis=0) = Aᵀ·1
            m = self._arg(r[0])
            return f"{m if p[0] == 1 else m + chr(39)}*vector(1, {args[0].shape[p[0]]})"
        if k in ("stack", "block", "take"):
            raise ValueError("matrixcalculus.org's syntax has no stacking, indexing or "
                             "slicing ([a, b], concat(w, [b]), x[0], x[1:]): it cannot write "
                             "this expression")
        raise ValueError(f"matrixcalculus syntax cannot write this part ({k})")

    @staticmethod
    def _fill(node: MForm) -> str:
        v = node.params[0]
        if not node.shape:
            return _num(v)
        dims = ", ".join(str(d) for d in node.shape)
        kind = "vector" if len(node.shape) == 1 else "matrix"
        ex = exact(v)
        if ex is not None and ex.form is not None:
            # the fill value must be a number: a closed form scales the ones,
            # (sqrt(2))*vector(1, n)
            return f"{_num(v)}*{kind}(1, {dims})"
        return f"{kind}({_num(v)}, {dims})"


#: the matrixcalculus.org syntax's table
MATRIXCALCULUS = MatrixCalculusFormat()
