"""Unicode printers: matrix notation (:func:`to_text`) and index notation
(:func:`to_index`).

Matrix notation prints the tree of :func:`matdiff.render.mform.matrix_form`.
Vectors are columns and a row is a transposed column (``xᵀ``); ``⊙`` is the
element-wise product and ``⊘`` the element-wise quotient; ``1`` is the vector of
ones, ``I`` the identity, ``diag(x)`` the diagonal matrix of a vector and
``diag(A)`` the diagonal of a matrix (a column); ``sum(X, axis=0)`` sums down the
columns of ``X``.  Element-wise powers of vectors and scalars print as
superscripts (``x²``, ``x⁻¹``), of matrices as ``A^⊙2`` (``A²`` would read as
``AA`` and ``A⁻¹`` as the inverse).  Functions apply element-wise (``exp(A)`` is
not the matrix exponential).

Index notation names each axis of the result with a letter, ``i j k l m p r s t
…``, and writes the tensor as a function of them: ``(i, j, k, l) ↦ −(X⁻¹)ᵢₖ
(X⁻¹)ₗⱼ``.  A summed letter is written out, ``Σⱼ Aᵢⱼ xⱼ``; a sum runs to the end
of its term, so a term with a ``Σ`` inside a longer sum is put in parentheses.
Inside a matrix formula, a product that has no matrix form appears as a bracket,
``[(i, j) ↦ Σₖₗ Tᵢⱼₖₗ Aₖₗ]`` (for a scalar, ``(Σᵢⱼₖ …)``).

Both are :class:`~matdiff.render.printer.Printer` with the Unicode table
(:mod:`matdiff.render.unicode`): iterative (no recursion on the depth of the
expression), a shared subexpression printed once per use, any text longer than
``max_chars`` cut to its head and tail around ``…``.
"""

from __future__ import annotations

from ..expr.core import Expr
from .layout import f_ndim_of
from .mform import MForm
from .printer import MAX_CHARS, STYLE, Printer, Style, check_options, printout, style_of
from .unicode import UNICODE

__all__ = ["to_text", "to_index", "render", "STYLE_SIGNS", "MAX_CHARS"]


# ===================================================================== entry points
def render(tree: MForm, *, index: bool = False, hadamard: str = "⊙",
           max_chars: int = MAX_CHARS, divide: str = "⊘") -> str:
    """Print a matrix-form tree (see :mod:`matdiff.render.mform`); ``index=True``
    prints it in index notation.

    >>> import matdiff as md
    >>> from matdiff.render import matrix_form
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> render(matrix_form(A.T @ x)), render(matrix_form(A.T @ x), index=True)
    ('Aᵀx', '(i) ↦ (Aᵀx)ᵢ')
    """
    return Printer(UNICODE, Style(hadamard, divide), max_chars).top(tree, index)


#: the element-wise product and quotient of each style
STYLE_SIGNS = {name: (UNICODE.SIGNS[st.product], UNICODE.SIGNS[st.quotient])
               for name, st in STYLE.items()}


def _options(layout: str, style: str | None, hadamard: str, f_ndim: int | None,
             rank: int) -> Style:
    check_options(layout, f_ndim, rank)
    return style_of(style, hadamard, "⊘")


def to_text(e: Expr, *, hadamard: str = "⊙", max_chars: int = MAX_CHARS,
            layout: str = "mixed", style: str | None = None,
            f_ndim: int | None = None) -> str:
    """An expression in matrix notation (Unicode), as ``str(e)`` prints it.

    Vectors are columns; products without a matrix form (tensors of three or more
    axes) print in index notation.  ``hadamard`` is the element-wise product's sign
    (the paper writes ``⊗``).  ``style`` picks the notation: ``standard`` (``⊙``,
    ``/``) or ``paper``, the paper's (``⊗``, ``⊘``, ``max(0, z)`` for ``relu(z)``, a
    row's coefficient in front as a quotient, ``(2/N)vᵀ``; what ``md.explain``
    prints); left out, ``hadamard`` and ``⊘``.
    ``layout`` (``mixed``, ``numerator``, ``denominator``, ``vec``; see
    :mod:`matdiff.render.layout`) prints a derivative transposed as that layout
    writes it, given ``f_ndim``, the number of leading axes that come from the
    function differentiated; ``vec`` prints a derivative of a matrix by a matrix as
    ``∂vec(F)/∂vec(X)ᵀ``, with ``⊗``, ``I`` and the commutation matrix ``K``.
    Never raises on an expression (bad options raise
    :class:`~matdiff.render.layout.ChoiceError`); texts longer than ``max_chars``
    keep their head and tail around ``…``.

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> to_text(x @ A @ x), to_text(md.derive(x @ A @ x, x))
    ('xᵀAx', '(A + Aᵀ)x')
    >>> to_text(md.derive(x @ A @ x, x), layout="numerator", f_ndim=0)
    'xᵀ(A + Aᵀ)'
    >>> to_text(md.derive(md.sin(3 * x), x))
    'diag(3cos(3x))'
    >>> to_text(md.derive(md.inv(A), A))
    '(i, j, k, l) ↦ −(A⁻¹)ᵢₖ (A⁻¹)ₗⱼ'
    >>> to_text(md.derive(md.inv(A), A), layout="vec")
    '−A⁻ᵀ ⊗ A⁻¹'
    >>> y = md.vector("y", "n")
    >>> to_text(md.relu(x * y), style="paper"), to_text(md.relu(x * y), style="standard")
    ('max(0, x ⊗ y)', 'relu(x ⊙ y)')
    """
    _check_expr(e, "to_text")
    f_ndim = f_ndim_of(e, f_ndim)
    st = _options(layout, style, hadamard, f_ndim, len(e.shape))
    return printout(e, UNICODE, style=st, layout=layout, f_ndim=f_ndim, max_chars=max_chars)


def _check_expr(e: object, what: str) -> None:
    if not isinstance(e, Expr):
        raise TypeError(f"md.{what} wants an expression (md.parse makes one from text), "
                        f"not {type(e).__name__}")


def to_index(e: Expr, *, max_chars: int = MAX_CHARS, layout: str = "mixed",
             style: str | None = None, f_ndim: int | None = None) -> str:
    """An expression in index notation: ``(i, j) ↦ …`` names the result's axes
    (nothing for a scalar), ``Σⱼ`` writes each summed letter out.  ``layout`` and
    ``f_ndim`` as for :func:`to_text` (a transposed result swaps its letters).

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> to_index(x @ A @ x)
    'Σᵢⱼ Aᵢⱼ xᵢ xⱼ'
    >>> to_index(A @ x)
    '(i) ↦ Σⱼ Aᵢⱼ xⱼ'
    """
    _check_expr(e, "to_index")
    f_ndim = f_ndim_of(e, f_ndim)
    st = _options(layout, style, "⊙", f_ndim, len(e.shape))
    return printout(e, UNICODE, index=True, style=st, layout=layout, f_ndim=f_ndim,
                    max_chars=max_chars)
