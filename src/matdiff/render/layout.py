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

Results with three or more axes print in index notation, the same in every layout.
"""

from __future__ import annotations

from ..errors import MatdiffError
from .mform import Forms, MForm

__all__ = ["LAYOUTS", "STYLES", "FORMATS", "ChoiceError", "check_choice", "apply_layout",
           "layout_note", "f_ndim_of", "layout_shape"]

LAYOUTS = ("mixed", "numerator", "denominator")
STYLES = ("standard", "paper")
FORMATS = ("text", "latex", "markdown", "json")


class ChoiceError(MatdiffError, ValueError):
    """An option (layout, style, format, language) is not one of its valid choices."""


def check_choice(option: str, value: object, choices: tuple) -> str:
    """``value`` if it is one of ``choices``, else a :class:`ChoiceError` listing them."""
    if value not in choices:
        raise ChoiceError(f"unknown {option} {value!r}: valid choices are "
                          + ", ".join(repr(c) for c in choices))
    return value  # type: ignore[return-value]


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


def layout_shape(e: object, layout: str, f_ndim: int | None = None) -> tuple:
    """The shape of ``e`` as ``layout`` prints it: the stored shape, reversed where the
    layout prints the derivative transposed (a numerator-layout gradient of a scalar
    by an m × n matrix is n × m).

    >>> import matdiff as md
    >>> A, x = md.matrix("A", "m", "n"), md.vector("x", "n")
    >>> layout_shape(md.derive(md.sum(A @ x), A), "numerator")
    ('n', 'm')
    """
    shape = tuple(e.shape)
    if transposes(layout, len(shape), f_ndim_of(e, f_ndim)):
        return shape[::-1]
    return shape


def apply_layout(tree: MForm, layout: str, f_ndim: int | None) -> MForm:
    """The matrix-form tree of a derivative, transposed as ``layout`` prints it."""
    if transposes(layout, len(tree.shape), f_ndim):
        return Forms().T(tree)
    return tree


def layout_note(layout: str) -> str:
    """``"(numerator layout)"``: what a printout in a non-default layout says."""
    check_choice("layout", layout, LAYOUTS)
    return f"({layout} layout)"
