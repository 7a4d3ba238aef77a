"""The matrix-form tree: what the printers print, and what proves it true.

:func:`matrix_form` turns an expression into a small tree of matrix operations
(:class:`MForm` nodes): ``matmul`` (``AB``, ``Ax``, ``xᵀy``, ``xyᵀ``), ``T`` (``Aᵀ``),
``had`` (``A ⊙ B``), ``diag`` (``diag(x)``, a vector made a diagonal matrix),
``diagof`` (``diag(A)``, the diagonal of a matrix), ``trace``, ``sum``, ``sumaxis``
(and, as a function was written, ``mean``, ``meanaxis`` and ``dot``),
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

The package's modules: :mod:`~.tree` (the node and its precedence and width),
:mod:`~.forms` (the constructors and their identities), :mod:`~.factoring`
(common factors of sums), :mod:`~.reading` (the search for a product's reading),
:mod:`~.evaluate` (the independent evaluation).
"""

from __future__ import annotations

from typing import Any

from ...expr.core import Call, Expr, topo_order
from .evaluate import to_numpy
from .forms import Forms
from .tree import (
    _CALL_PREC,
    ARG_PREC,
    MAX_SEARCH,
    MAX_SMUL,
    MForm,
    _const_exponent,
    _denominator,
    _int,
    _is_neg,
    _is_ones,
    _is_zero,
    call_spec,
    inline,
    transposed_call,
)

__all__ = ["ARG_PREC", "MForm", "Forms", "matrix_form", "index_form", "to_numpy", "MAX_SEARCH",
           "MAX_SMUL", "inline", "call_spec", "transposed_call"]

_: tuple[Any, ...] = (_CALL_PREC, _const_exponent, _denominator, _int, _is_neg, _is_ones, _is_zero)


def _build(e: Expr, index: bool) -> MForm:
    from ...derive.result import Derivative

    # a function prints its sums as written; a derivative its function's sums as
    # written too, the others (reverse mode's) in the natural order
    # (matdiff.expr.written): its sums, products and spellings
    if isinstance(e, Derivative):
        forms = Forms(written=False, kept=frozenset(id(n) for n in topo_order(e.f)))
    else:
        forms = Forms(written=True)
    text: dict[int, MForm] = forms.memo
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
