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
"""

from __future__ import annotations

from ..expr.core import Expr
from ..expr.matrix_functions import MATRIX_FUNCTIONS
from ..parse.mc import MC_FUNCTION_TABLE
from .mform import MForm, matrix_form

__all__ = ["to_matrixcalculus"]

_ATOMS = ("sym", "fill", "func", "call", "trace", "sum", "diag", "diagof")


def to_matrixcalculus(expr: Expr) -> str:
    """``expr`` written in matrixcalculus.org's syntax.

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> to_matrixcalculus(x @ A @ x)
    "x'*(A*x)"
    >>> text = to_matrixcalculus(md.derive(x @ A @ x, x))
    >>> md.parse(text, syntax="matrixcalculus").shape
    ('n',)
    """
    if len(expr.shape) > 2:
        # the syntax has scalars, vectors and matrices only: matrix(0, n, n, n, n)
        # would not parse back
        raise ValueError(f"matrixcalculus syntax has no tensors of order {len(expr.shape)} "
                         f"(shape {expr.shape}): only scalars, vectors and matrices")
    return _Printer().text(matrix_form(expr))


def _num(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e15:
        s = str(int(v))
    else:
        s = repr(float(v))
    return f"({s})" if v < 0 else s


class _Printer:
    def __init__(self) -> None:
        self.memo: dict[int, str] = {}

    def text(self, root: MForm) -> str:
        # post-order without recursion
        stack: list[tuple[MForm, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if id(node) in self.memo:
                continue
            if not ready:
                stack.append((node, True))
                stack.extend((a, False) for a in node.args if isinstance(a, MForm))
                continue
            self.memo[id(node)] = self.node(node)
        return self.memo[id(root)]

    def arg(self, a: MForm) -> str:
        t = self.memo[id(a)]
        if a.kind == "T" and a.args[0].kind in _ATOMS:
            return t
        return t if a.kind in _ATOMS or (a.kind == "num" and a.params[0] >= 0) else f"({t})"

    def node(self, node: MForm) -> str:
        k, p, args = node.kind, node.params, node.args
        if k == "sym":
            return p[0]
        if k == "num":
            return _num(p[0])
        if k == "fill":
            dims = ", ".join(str(d) for d in node.shape)
            what = ("vector" if len(node.shape) == 1 else "matrix") if node.shape else ""
            if not what:
                return _num(p[0])
            return f"{what}({_num(p[0])}, {dims})"
        if k == "T":
            return self.arg(args[0]) + "'"
        if k == "matmul":
            return "*".join(self.arg(a) for a in args)
        if k == "had":
            return ".*".join(self.arg(a) for a in args)
        if k == "scale":
            return f"{_num(p[0])}*{self.arg(args[0])}"
        if k == "smul":
            return "*".join(self.arg(a) for a in args)
        if k == "add":
            return " + ".join(self.arg(a) for a in args)
        if k == "pow":
            op = "^" if node.orient == "s" else ".^"
            e = args[1]
            exponent = _num(e.params[0]) if e.kind == "fill" else self.arg(e)
            return f"{self.arg(args[0])}{op}{exponent}"
        if k == "func":
            name = p[0]
            if name not in MC_FUNCTION_TABLE or len(args) != 1:
                raise ValueError(f"matrixcalculus syntax has no function {name!r}")
            return f"{name}({self.memo[id(args[0])]})"
        if k == "call":
            # a matrix function under matrixcalculus.org's name for it (its definition's)
            name = MATRIX_FUNCTIONS[p[0]].mc
            if not name:
                raise ValueError(f"matrixcalculus syntax has no function {p[0]!r}")
            return f"{name}({self.memo[id(args[0])]})"
        simple = {"trace": "tr", "sum": "sum", "diag": "diag", "diagof": "diag"}
        if k in simple:
            return f"{simple[k]}({self.memo[id(args[0])]})"
        if k == "eye":
            # the syntax has no identity, but a square matrix's power 0 is one (the
            # Unicode reading (I + Aᵀ)x of x + Aᵀx brings it in)
            n = p[0]
            return f"matrix(1, {n}, {n})^0"
        if k == "sumaxis":
            # the syntax has no axis sums: sum(A, axis=1) = A·1, sum(A, axis=0) = Aᵀ·1
            M, axis = args[0], p[0]
            m = self.arg(M)
            return f"{m if axis == 1 else m + chr(39)}*vector(1, {M.shape[axis]})"
        raise ValueError(f"matrixcalculus syntax cannot write this part ({k})")
