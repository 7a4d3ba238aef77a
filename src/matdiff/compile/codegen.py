"""Code generation: expressions -> the source of one straight-line Python function.

The generator walks the nodes of all outputs once, children first, so a node shared
by several outputs (the forward pass that a value and its gradient share) is
computed once: one line of source per node.  The pieces, in the order they run:

* :mod:`.generator` visits the nodes (element-wise functions, sums) and holds each
  value as a :mod:`.views` view, so that deltas and constants never become arrays;
  :mod:`.products` writes the products, in the order :mod:`.plan` chooses (sizes are
  known: the code is specialised per input-shape signature); :mod:`.matfn` is the one
  place that names the matrix functions;
* every line is a record (:mod:`.lines`), never text to be parsed again;
* :mod:`.passes` removes dead lines and copies that the aliasing rule allows;
* :func:`.lines.function_source` writes the source once, and :func:`generate`
  compiles it with the backend table as ``xp``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..expr.core import Expr
from .fuse import element_counts, fuse
from .generator import Generator
from .lines import Code, check_name, function_source, num
from .matfn import solvable_inverses
from .passes import finish
from .views import View

__all__ = ["View", "Generated", "generate", "num", "check_name"]


@dataclass
class Generated:
    """One specialisation: its source and the function made from it."""

    source: str
    fn: Callable[..., Any]
    sizes: dict
    nodes: int
    #: per output, ``(pattern, shape)`` of a structured result (wrapped after the call)
    post: list | None = None


def _returns(gen: Generator, outputs: Sequence[Expr], structured: bool
             ) -> tuple[list[Code], list]:
    """The code of each output (dense, or a structured output's core) and, per
    output, ``(pattern, shape)`` of a structured one, else ``None``."""
    rets: list[Code] = []
    post: list = []
    for out in outputs:
        v = gen.views[id(out)]
        if structured and v.repeats:
            rets.append(gen.structured(out, v))
            post.append((v.axes, gen.shape(out)))
        else:
            rets.append(gen.dense(out, v, fresh=True))
            post.append(None)
    return rets, post


def generate(outputs: Sequence[Expr], inputs: Sequence[str], sizes: Mapping,
             table: object, structured: bool = False, fname: str = "compiled") -> Generated:
    """Generate, compile and return the function ``f(a0, a1, ...) -> tuple`` computing
    ``outputs`` from the variables ``inputs`` (in that order) at dims ``sizes``."""
    var_code = {var: f"a{i}" for i, var in enumerate(inputs)}
    gen = Generator(sizes, list(var_code.values()))
    gen.solvable = solvable_inverses(outputs)
    count = gen.visit_all(outputs, var_code)
    rets, post = _returns(gen, outputs, structured)
    body, fx = fuse(finish(gen.lines, rets), rets, table, element_counts(gen, outputs))
    src = function_source(fname, var_code, sizes, body, rets)
    glb: dict[str, Any] = {"xp": table, "fx": fx, "__builtins__": {}}  # exec fills in fname
    exec(compile(src, f"<matdiff {fname}>", "exec"), glb)  # noqa: S102 - our own code
    return Generated(src, glb[fname], dict(sizes), count,
                     post if any(p is not None for p in post) else None)
