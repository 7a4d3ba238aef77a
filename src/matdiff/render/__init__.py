"""Printers: Unicode matrix notation and index notation.

>>> import matdiff as md
>>> from matdiff.render import to_text, to_index
>>> x, w = md.vector("x", "n"), md.vector("w", "n")
>>> to_text(md.derive(w * x, w)), to_index(md.derive(w * x, w))
('diag(x)', '(i, j) ↦ δᵢⱼ xⱼ')
"""

from .mform import MForm, index_form, matrix_form, to_numpy
from .text import render, to_index, to_text

__all__ = ["to_text", "to_index", "render", "MForm", "matrix_form", "index_form", "to_numpy"]
