"""Printers: Unicode matrix notation, LaTeX and index notation, all one
:class:`~matdiff.render.printer.Printer` with a symbol table per format
(:data:`~matdiff.render.unicode.UNICODE`, :data:`~matdiff.render.latex.LATEX`).

>>> import matdiff as md
>>> from matdiff.render import to_text, to_index
>>> x, w = md.vector("x", "n"), md.vector("w", "n")
>>> to_text(md.derive(w * x, w)), to_index(md.derive(w * x, w))
('diag(x)', '(i, j) ↦ δᵢⱼ xⱼ')
"""

from ..expr import core as _core
from .latex import LATEX, latex, latex_name, render_latex, to_latex
from .layout import FORMATS, LAYOUTS, STYLES, ChoiceError, apply_layout, layout_note
from .matrixcalculus import to_matrixcalculus
from .mform import MForm, index_form, matrix_form, to_numpy
from .printer import STYLE, Printer, Style, printout
from .text import STYLE_SIGNS, render, to_index, to_text
from .unicode import UNICODE

__all__ = ["to_text", "to_index", "to_latex", "latex", "render", "render_latex", "latex_name",
           "MForm", "matrix_form", "index_form", "to_numpy", "LAYOUTS", "STYLES",
           "FORMATS", "ChoiceError", "apply_layout", "layout_note", "to_matrixcalculus",
           "Printer", "Style", "STYLE", "STYLE_SIGNS", "printout", "UNICODE", "LATEX"]

# the printers, for str(e) and Jupyter's display of every expression
_core.provide("text", to_text)
_core.provide("latex", to_latex)
