"""Stacking and selection (:mod:`matdiff.expr.selection`) in generated code.

A concatenation is ``xp.concat([...], axis)``, a row part given its axis by indexing
with ``None`` (``a[:, None]``); a selection is NumPy's basic indexing with ints
(``a[1:]``, ``a[:, 2]``), a negative step through ``xp.flip`` (PyTorch has no negative
steps).  Positions are dims (``x[-1]`` of an axis of ``N`` is ``x[N - 1]``), written
as code that reads the sizes from the inputs' shapes; they are checked against the
sizes when code is generated or reused for new sizes: an index outside its axis is
an ``EvaluationError`` then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..expr.dims import dim_add, dim_mul, dim_sub
from ..expr.selection import Concat, Take
from .lines import Code, fmt, join
from .products import shape_comment
from .views import View

if TYPE_CHECKING:  # pragma: no cover - types only
    from .generator import Generator

__all__ = ["concat_code", "take_code"]


def concat_code(gen: Generator, e: Concat, kids: list[View]) -> View:
    """``xp.concat`` of the parts, each a true array (a row with its new axis)."""
    full = tuple(range(len(e.shape)))
    parts: list[Code] = []
    for c, v, row in zip(e.children, kids, e.rows):
        code = gen.dense(c, v)
        if row:
            code = fmt("{}[{}]", code, ", ".join([":"] * e.axis + ["None"]))
        parts.append(code)
    code = fmt("xp.concat([{}], {})", join(parts, ", "), str(e.axis))
    return View(gen.emit(code, shape_comment(e)), full, full)


def take_code(gen: Generator, e: Take, kids: list[View]) -> View:
    """The selection as basic indexing of the child's true array."""
    full = tuple(range(len(e.shape)))
    x = e.children[0]
    code = gen.dense(x, kids[0])
    e.resolved(gen.sizes)  # the positions fit the axis here (else EvaluationError)
    n = x.shape[e.axis]
    if e.is_index:
        sel = gen.size_code(e.key[0])
    else:
        start, count, step = e.key
        if step < 0:  # x[s::-d] = flip(x)[N - 1 - s::d]
            code = fmt("xp.flip({}, {})", code, str(e.axis))
            start = dim_sub(dim_sub(n, 1), start)
            step = -step
        stop = dim_add(start, dim_mul(count, step))
        # positions as dims: read from the inputs' shapes at run time where they
        # depend on a size (x[-1] of x over N is x[N - 1]); the ends are left open
        sel = fmt("{}:{}" + ("" if step == 1 else f":{step}"),
                  "" if start == 0 else gen.size_code(start),
                  "" if stop == n else gen.size_code(stop))
    idx = fmt(", ".join([":"] * e.axis + ["{}"]), sel)
    return View(gen.emit(fmt("{}[{}]", code, idx), shape_comment(e)), full, full)
