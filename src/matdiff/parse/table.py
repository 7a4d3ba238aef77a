"""The functions of the expression language: one table, one row per function.

A row names the builder (from :mod:`matdiff.expr.builders`) that makes the node,
the kind of each argument and the numbers of arguments accepted.  The element-wise
functions are not listed here: their rows are made from their definitions
(:data:`matdiff.expr.functions.FUNCTIONS`), and a function added with
:func:`matdiff.define_function` is in the table from then on.

Argument kinds:

* ``"expr"``: any expression;
* ``"axis"``: an integer literal, possibly negative (``sum(X, -1)``);
* ``"dim"``: a dim, a whole number or a name (``eye(n)``: ``n`` is a dim, not a
  variable);
* ``"number"``: a constant made of numbers only (``vector(1)``, ``vector(-1/2)``);
* ``"blocks"``: a literal list of block rows, ``[[A, B], [C, D]]`` (``block``): its
  cells are the expressions.
* ``"power"``: a whole number ``≥ 0`` written as a literal (``matrix_power(X, 3)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..expr import builders as b
from ..expr.core import Dim, Expr, Shape
from ..expr.functions import FUNCTIONS, Elementwise, version
from ..expr.matrix_functions import MATRIX_FUNCTIONS, MatrixFunction

__all__ = ["FunctionSpec", "FunctionTable", "FUNCTION_TABLE", "FUNCTION_NAMES", "Filled",
           "ELEMENTWISE", "function_names"]

Span = tuple[int, int]


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the language.

    ``params`` gives the kind of each argument in order and ``arities`` the
    numbers of arguments accepted (the first ``k`` of ``params``).  ``fill`` says
    how a ``vector(c)`` / ``matrix(c)`` argument takes its shape from the other
    argument: ``"elementwise"`` (the same shape) or ``"matmul"`` (the dim it is
    multiplied with); ``None``: it cannot.
    """

    name: str
    build: Callable[..., Any]
    params: tuple[str, ...]
    arities: tuple[int, ...]
    doc: str
    fill: str | None = None
    #: other names the function is read by (NumPy's and matrixcalculus.org's
    #: ``norm`` is ``norm2``): entries of the same row
    aliases: tuple[str, ...] = ()

    def arity_text(self) -> str:
        """``"1 argument"``, ``"1 or 2 arguments"``, ...

        >>> FUNCTION_TABLE["sum"].arity_text(), FUNCTION_TABLE["exp"].arity_text()
        ('1 or 2 arguments', '1 argument')
        """
        counts = [str(k) for k in self.arities]
        words = counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " or " + counts[-1]
        return words + (" argument" if self.arities == (1,) else " arguments")


@dataclass(frozen=True)
class Filled:
    """``vector(c)`` or ``matrix(c)`` before its shape is known (not an Expr).

    It becomes ``const(c, shape)`` when it meets an expression of its rank in an
    element-wise operation; where no shape can be found it is an error that asks
    for the dims.
    """

    value: float
    rank: int
    span: Span = (0, 0)
    source: str = ""

    def resolve(self, shape: Shape) -> Expr:
        """The constant of this value and ``shape``.

        >>> Filled(1.0, 1).resolve(("n",)).shape
        ('n',)
        """
        return b.const(self.value, shape)

    @property
    def what(self) -> str:
        """``"vector"`` or ``"matrix"``."""
        return "vector" if self.rank == 1 else "matrix"

    def example(self) -> str:
        """The same call with its dims: ``vector(1, n)``, ``matrix(0, m, n)``.

        >>> Filled(0.0, 2, (0, 9), "matrix(0)").example()
        'matrix(0, m, n)'
        """
        dims = "n" if self.rank == 1 else "m, n"
        src = self.source
        if src.endswith(")"):
            return src[:-1].rstrip() + ", " + dims + ")"
        return f"{self.what}(1, {dims})"


def _vector(c: float, n: Dim | None = None) -> Expr | Filled:
    if n is None:
        return Filled(c, 1)
    return b.const(c, (n,))


def _matrix(c: float, m: Dim | None = None, n: Dim | None = None) -> Expr | Filled:
    if m is None or n is None:
        return Filled(c, 2)
    return b.const(c, (m, n))


_E1 = ("expr",)
_E2 = ("expr", "expr")

#: the most parts ``concat(a, b, …)`` takes in text
MAX_PARTS = 256


@dataclass(frozen=True)
class VariadicSpec(FunctionSpec):
    """A function of one or more expressions (``concat``)."""

    def arity_text(self) -> str:
        """``"1 to 256 arguments"``.

        >>> FUNCTION_TABLE["concat"].arity_text()
        '1 to 256 arguments'
        """
        return f"{min(self.arities)} to {max(self.arities)} arguments"


def _concat(*parts: Expr) -> Expr:
    return b.concat(list(parts))


def block(rows: list[list[Expr]]) -> Expr:
    """NumPy's ``block``: matrices in block rows, ``block([[X, E], [0, X]])``; a
    number among them is a block of it, as tall as its row and as wide as its column.

    >>> X = b.matrix("X", "n", "n")
    >>> block([[X, X], [b.const(0.0), X]]).shape
    (DimPoly('2·n'), DimPoly('2·n'))
    """
    from ..errors import ShapeError
    from ..expr.core import shape_str

    for row in rows:
        for c in row:
            if c.shape and len(c.shape) != 2:
                raise ShapeError(f"block: the blocks are matrices (or numbers), not shape "
                                 f"{shape_str(c.shape)}")
    heights: list[Any] = []
    for row in rows:
        h = next((c.shape[0] for c in row if c.shape), None)
        heights.append(h)
    widths: list[Any] = []
    for j in range(max(len(r) for r in rows)):
        w = next((r[j].shape[1] for r in rows if j < len(r) and r[j].shape), None)
        widths.append(w)
    if None in heights or None in widths:
        raise ShapeError("block: a block row or column made of numbers only has no dims; "
                         "give one of its blocks a shape")
    out = []
    for i, row in enumerate(rows):
        cells = []
        for j, c in enumerate(row):
            if not c.shape:
                c = b.mul(c, b.ones(heights[i], widths[j]))
            cells.append(c)
        out.append(b.concat(cells, axis=1) if len(cells) > 1 else cells[0])
    return b.concat(out, axis=0) if len(out) > 1 else out[0]

class FunctionTable(Mapping[str, FunctionSpec]):
    """The functions of a syntax: its own ``rows``, one row for each element-wise
    definition that ``keep`` selects and one for each matrix function that
    ``spelling`` names in this syntax, made from the definitions (and made again when
    :func:`matdiff.define_function` adds one)."""

    def __init__(self, rows: list[FunctionSpec], keep: Callable[[Elementwise], bool],
                 spelling: Callable[[MatrixFunction], str] = lambda fn: fn.name) -> None:
        self._rows = {r.name: r for r in rows}
        self._rows.update({a: r for r in rows for a in r.aliases})
        self._keep = keep
        self._spelling = spelling
        self._version = -1
        self._all: dict[str, FunctionSpec] = {}

    def _table(self) -> dict[str, FunctionSpec]:
        if self._version != version():
            made = {
                row.name: FunctionSpec(
                    row.name, b.elementwise(row.name), ("expr",) * row.arity,
                    tuple(range(row.arity - len(row.defaults), row.arity + 1)),
                    "element-wise " + (row.doc or row.name), "elementwise" if row.arity > 1
                    else None)
                for row in FUNCTIONS.values() if row.call and self._keep(row)}
            for row in FUNCTIONS.values():  # the paper's ln(x) is log(x)
                for alias in row.aliases:
                    if row.name in made:
                        made[alias] = made[row.name]
            for fn in MATRIX_FUNCTIONS.values():
                name = self._spelling(fn) if fn.public else ""
                if name:
                    made[name] = FunctionSpec(name, b.matrix_function(fn.name),
                                              ("expr",) * fn.arity, (fn.arity,), fn.doc)
            self._all = {**made, **self._rows}
            self._version = version()
        return self._all

    def __getitem__(self, name: str) -> FunctionSpec:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __contains__(self, name: object) -> bool:
        return name in self._table()


class _ElementwiseNames:
    """The names of the element-wise functions of one argument (``name in
    ELEMENTWISE``), as defined now."""

    def __contains__(self, name: object) -> bool:
        row = FUNCTIONS.get(name) if isinstance(name, str) else None
        return row is not None and row.arity == 1

    def __iter__(self) -> Iterator[str]:
        return iter([n for n, row in FUNCTIONS.items() if row.arity == 1])


#: the element-wise functions of one argument
ELEMENTWISE = _ElementwiseNames()

_ROWS: list[FunctionSpec] = [
    FunctionSpec("sum", b.sum, ("expr", "axis"), (1, 2),
                 "sum of all elements, or along an axis: sum(X, 0)"),
    FunctionSpec("mean", b.mean, ("expr", "axis"), (1, 2),
                 "mean of all elements, or along an axis: mean(X, 0)"),
    FunctionSpec("norm1", b.norm1, _E1, (1,), "1-norm: sum of absolute values"),
    FunctionSpec("norm2", b.norm2, _E1, (1,),
                 "Euclidean norm of a vector, Frobenius norm of a matrix; also norm(x)",
                 aliases=("norm",)),
    FunctionSpec("dot", b.dot, _E2, (2,), "dot product of vectors", "matmul"),
    FunctionSpec("outer", b.outer, _E2, (2,), "outer product of vectors"),
    FunctionSpec("tr", b.tr, _E1, (1,), "trace of a square matrix"),
    FunctionSpec("diag", b.diag, _E1, (1,),
                 "diagonal matrix of a vector, or the diagonal of a matrix"),
    FunctionSpec("transpose", b.transpose, _E1, (1,), "transpose, like x.T"),
    FunctionSpec("eye", b.eye, ("dim",), (1,), "identity matrix: eye(n)"),
    FunctionSpec("block", block, ("blocks",), (1,),
                 "a block matrix from block rows: block([[X, E], [0, X]])"),
    FunctionSpec("matrix_power", b.matrix_power, ("expr", "power"), (2,),
                 "matrix_power(X, k) = X·X·…·X (k ≥ 0 a whole number; X⁰ = I)"),
    VariadicSpec("concat", _concat, ("expr",) * MAX_PARTS, tuple(range(1, MAX_PARTS + 1)),
                 "parts joined along their first axis: concat(w, [b]) (dims add: n + 1)"),
    FunctionSpec("vector", _vector, ("number", "dim"), (1, 2),
                 "constant vector: vector(1) takes its shape from where it is used; "
                 "vector(1, n) has dim n"),
    FunctionSpec("matrix", _matrix, ("number", "dim", "dim"), (1, 3),
                 "constant matrix: matrix(1) takes its shape from where it is used; "
                 "matrix(1, m, n) is m x n"),
]

#: every function of the language by name (element-wise ones from their definitions)
FUNCTION_TABLE: Mapping[str, FunctionSpec] = FunctionTable(_ROWS, lambda row: True)


def function_names() -> tuple[str, ...]:
    """The names of the functions of the language, sorted (as defined now)."""
    return tuple(sorted(FUNCTION_TABLE))


#: the names of the built-in functions, sorted
FUNCTION_NAMES: tuple[str, ...] = function_names()
