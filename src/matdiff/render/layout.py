"""Printing options shared by every printer: the layout of a derivative and the
style of element-wise operators.

A derivative of ``f`` by ``x`` is stored indexed ``[f's axes..., x's axes...]``
(the ``mixed`` layout, what ``evaluate`` returns).  The other layouts are a
transpose of the printed formula, which needs to know how many leading axes came
from ``f`` (``f_ndim``; a result of :func:`matdiff.derive` knows it,
:mod:`matdiff.derive.result`, and a plain expression is told with ``f_ndim=``):

=============  =====================================  ============================
layout         scalar by vector / by matrix            vector by vector / by scalar
=============  =====================================  ============================
mixed          column ``g`` / the matrix's shape       ``J`` (``m × n``) / column
numerator      row ``gᵀ`` / transposed                 ``J`` / column
denominator    column ``g`` / the matrix's shape       ``Jᵀ`` / row
=============  =====================================  ============================

Results with three or more axes print in index notation, the same in every layout,
except in the ``vec`` layout (:mod:`matdiff.render.mform.kron`): there a derivative
of a matrix by a matrix (four axes), of a vector by a matrix or of a matrix by a
vector (three) prints as the matrix ``∂vec(F)/∂vec(X)ᵀ`` of shape ``(m·n, p·q)``
(``vec`` stacks columns), with ``⊗`` (Kronecker), ``I`` and the commutation matrix
``K`` (``vec(Xᵀ) = K vec(X)``): ``d(AXB)/dX`` is ``Bᵀ ⊗ A``.  A product with no such
reading stays in index notation; derivatives with two axes or fewer print as in the
mixed layout (a Jacobian of a vector by a vector is already ``∂x/∂xᵀ``).
"""

from __future__ import annotations

from ..errors import MatdiffError
from ..expr.core import Expr, Shape
from .mform import Forms, MForm

__all__ = ["LAYOUTS", "STYLES", "FORMATS", "ChoiceError", "check_choice", "apply_layout",
           "layout_note", "f_ndim_of", "layout_shape", "vec_layout", "vec_split",
           "hessian_blocks"]

LAYOUTS = ("mixed", "numerator", "denominator", "vec")
STYLES = ("standard", "paper")
FORMATS = ("text", "latex", "markdown", "json")


class ChoiceError(MatdiffError, ValueError):
    """An option (layout, style, format, language) is not one of its valid choices."""


def check_choice(option: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a :class:`ChoiceError` listing them."""
    if value not in choices:
        raise ChoiceError(f"unknown {option} {value!r}: valid choices are "
                          + ", ".join(repr(c) for c in choices))
    return value



def f_ndim_of(e: object, f_ndim: int | None) -> int | None:
    """The number of leading axes of ``e`` that come from the function differentiated:
    ``f_ndim`` when given, else what a derivative result knows of itself (its
    ``f_ndim`` attribute), else ``None`` (a plain expression)."""
    if f_ndim is not None:
        return f_ndim
    known = getattr(e, "f_ndim", None)
    return known if isinstance(known, int) else None


def transposes(layout: str, rank: int, f_ndim: int | None) -> bool:
    """Whether ``layout`` prints a derivative of ``rank`` axes (``f_ndim`` of them
    from f) transposed with respect to the stored (mixed) layout."""
    check_choice("layout", layout, LAYOUTS)
    if layout == "vec":
        vec_split(rank, f_ndim)  # validates f_ndim
        return False
    if layout == "mixed" or rank == 0 or rank > 2:
        return False
    if f_ndim is None:
        raise ChoiceError(
            f"layout={layout!r} needs f_ndim=, the number of leading axes that come "
            "from the function differentiated (0 for a gradient, 1 for a Jacobian of a "
            "vector); a result of md.derive knows it, a plain expression does not")
    f_ndim = int(f_ndim)
    if not 0 <= f_ndim <= rank:
        raise ChoiceError(f"f_ndim={f_ndim} is not between 0 and the rank {rank}")
    x_ndim = rank - f_ndim
    if layout == "numerator":  # the paper's: a gradient is a row
        return f_ndim == 0
    return f_ndim == 1 and x_ndim <= 1  # denominator: Jacobians transposed


def layout_shape(e: Expr, layout: str, f_ndim: int | None = None) -> Shape:
    """The shape of ``e`` as ``layout`` prints it: the stored shape, reversed where the
    layout prints the derivative transposed (a numerator-layout gradient of a scalar
    by an m × n matrix is n × m); in the vec layout ``(m·n, p·q)`` (products of
    dims) where the derivative has a Kronecker reading.

    >>> import matdiff as md
    >>> A, x = md.matrix("A", "m", "n"), md.vector("x", "n")
    >>> layout_shape(md.derive(md.sum(A @ x), A), "numerator")
    ('n', 'm')
    >>> X, B = md.matrix("X", "n", "p"), md.matrix("B", "p", "q")
    >>> [str(d) for d in layout_shape(md.derive(A @ X @ B, X), "vec")]
    ['m·q', 'n·p']
    """
    shape = tuple(e.shape)
    f_ndim = f_ndim_of(e, f_ndim)
    if transposes(layout, len(shape), f_ndim):
        return shape[::-1]
    if layout == "vec" and vec_split(len(shape), f_ndim):
        from .mform import matrix_form

        tree = vec_layout(matrix_form(e), f_ndim)
        if tree is not None:
            return tuple(tree.shape)
    return shape


def vec_split(rank: int, f_ndim: int | None) -> bool:
    """Whether the vec layout reads a derivative of ``rank`` axes, ``f_ndim`` of
    them from F, as ``∂vec(F)/∂vec(X)ᵀ`` (three or four axes); it needs ``f_ndim``."""
    if rank not in (3, 4):
        return False
    if f_ndim is None:
        raise ChoiceError(
            "layout='vec' needs f_ndim=, the number of leading axes that come from the "
            "function differentiated (2 for a matrix F); a result of md.derive knows "
            "it, a plain expression does not")
    return 1 <= int(f_ndim) <= 2 and 1 <= rank - int(f_ndim) <= 2


def vec_layout(tree: MForm, f_ndim: int | None) -> MForm | None:
    """The matrix-form tree of a derivative in the vec layout, ``∂vec(F)/∂vec(X)ᵀ``
    (:mod:`matdiff.render.mform.kron`), or ``None`` where it has no such reading (it
    prints in index notation) or is not read so (two axes or fewer)."""
    if not vec_split(len(tree.shape), f_ndim):
        return None
    return Forms().vec_reading(tree, int(f_ndim))  # type: ignore[arg-type]


def hessian_blocks(e: Expr) -> MForm | None:
    """The second derivative of a scalar ``f`` by several variables at once
    (``md.hessian(f, ["X", "y"])``, the derivative by ``[vec(X); y]`` twice) as the
    block matrix of its second derivatives by each pair of variables, each derived
    on its own (so simplified on its own) and read as a matrix,

        [[∂²f/∂vec(X)∂vec(X)ᵀ, ∂²f/∂vec(X)∂yᵀ], [∂²f/∂y∂vec(X)ᵀ, ∂²f/∂y∂yᵀ]],

    a matrix variable's rows and columns by ``vec`` (the vec layout,
    :func:`vec_layout`), a vector's as they are, a scalar's one row or column.
    ``None`` for any other expression, or where a block has no matrix reading (then
    the whole prints as before, in index notation)."""
    wrt = getattr(e, "wrt", None)
    f = getattr(e, "f", None)
    if getattr(e, "order", None) != 2 or f is None or f.shape or len(e.shape) != 2 \
            or not all(isinstance(w, tuple) and len(w) > 1 for w in wrt):  # type: ignore[union-attr]
        return None
    from ..derive import derive
    from .mform import matrix_form

    forms = Forms()
    cells: list[MForm] = []
    for a in wrt[0]:  # type: ignore[index]
        ga = derive(f, a)
        for b in wrt[1]:  # type: ignore[index]
            ra, rb = len(a.shape), len(b.shape)
            tree = matrix_form(derive(ga, b))
            if (ra, rb) == (2, 0):  # ∂vec(∇_X f)/∂b: the column vec(·)
                tree = forms.vec(tree)
            elif (ra, rb) == (0, 2):  # ∂²f/∂a∂vec(X)ᵀ: the row vec(·)ᵀ
                tree = forms.T(forms.vec(tree))
            elif ra + rb > 2:
                tree = vec_layout(tree, ra)  # type: ignore[assignment]
                if tree is None or tree.kind == "index":
                    return None
            elif ra == 0 and rb == 1:
                tree = forms.T(tree)  # ∂²f/∂a∂yᵀ of a scalar a: a row
            if tree.kind == "index":
                return None
            cells.append(tree)
    return forms.make("block", cells, (len(wrt[0]), len(wrt[1])), e.shape, "m")  # type: ignore[index]


def apply_layout(tree: MForm, layout: str, f_ndim: int | None) -> MForm:
    """The matrix-form tree of a derivative, transposed as ``layout`` prints it."""
    if transposes(layout, len(tree.shape), f_ndim):
        return Forms().T(tree)
    return tree


#: what a printout in a non-default layout says, per language
_NOTES = {
    "en": {"numerator": "(numerator layout)", "denominator": "(denominator layout)",
           "vec": "(vec layout: the Jacobian of vec(F) by vec(X), vec stacking columns; "
                  "index notation where no Kronecker form exists)"},
    "zh": {"numerator": "（分子布局）", "denominator": "（分母布局）",
           "vec": "（vec 布局：vec(F) 对 vec(X) 的雅可比矩阵，vec 按列堆叠；没有 Kronecker "
                  "积形式时用指标记法）"},
}


def layout_note(layout: str, lang: str = "en") -> str:
    """``"(numerator layout)"``: what a printout in a non-default layout says, in
    English or Chinese (``lang="zh"``); plain text that LaTeX's ``\\text{…}`` takes.

    >>> layout_note("vec", "zh")[:8]
    '（vec 布局：'
    """
    check_choice("layout", layout, LAYOUTS)
    check_choice("language", lang, tuple(_NOTES))
    return _NOTES[lang].get(layout, f"({layout} layout)")
