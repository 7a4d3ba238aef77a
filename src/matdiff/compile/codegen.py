"""Code generation: expressions -> the source of one straight-line Python function.

The generator walks the nodes of all outputs once, children first, so a node shared
by several outputs (the forward pass that a value and its gradient share) is
computed once: one line of source per node.  The pieces, in the order they run:

* :mod:`.generator` visits the nodes (element-wise functions, sums) and holds each
  value as a :mod:`.views` view, so that deltas and constants never become arrays;
  :mod:`.products` writes the products, in the order :mod:`.plan` chooses for the
  sizes it is generated at; :mod:`.matfn` is the one place that names the matrix
  functions;
* sizes are not constants of the code: a dim that an input carries is read from
  that input's shape at run time (``a2.shape[0]``, see
  :meth:`.emitter.Emitter.size_code`), so one function is correct at every size
  (and ``jax.export`` / ``torch.export`` trace it with symbolic sizes); only a dim
  that no input carries (given by ``dims=``, or by a variable the function does not
  take) is a number.  The few choices made on sizes (contraction orders, where a
  scalar goes) are recorded (:meth:`.emitter.Emitter.decide`), so that the caller
  can tell whether other sizes would generate the same code;
* every line is a record (:mod:`.lines`), never text to be parsed again;
* :mod:`.passes` removes dead lines and copies that the aliasing rule allows;
* :func:`.lines.function_source` writes the source once, and :func:`generate`
  compiles it with the backend table as ``xp``.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..expr.core import Expr
from .fuse import element_counts, fuse, size_decision
from .generator import Generator
from .lines import Code, check_name, function_source, num
from .matfn import solvable_inverses
from .passes import finish
from .views import View

__all__ = ["View", "Generated", "generate", "num", "check_name"]

#: the builtins generated code sees: none that it names (it names only ``xp`` and its
#: own locals), but ``__import__``: torch.export, tracing arithmetic on a symbolic
#: size (``t1 * t6`` with ``t1 = 1.0 / N``), imports through the globals of the
#: generated code's frame (a ``KeyError: '__import__'`` without it)
_BUILTINS = {"__import__": builtins.__import__}


@dataclass
class Generated:
    """One specialisation: its source and the function made from it."""

    source: str
    fn: Callable[..., Any]
    #: the sizes it was generated at (the planner's; see :func:`generate`)
    sizes: dict
    nodes: int
    #: per output, the index pattern of a structured result (wrapped after the call,
    #: its shape read from its core), else ``None``
    post: list | None = None
    #: the dims whose sizes the code reads from its inputs at run time
    read: frozenset = frozenset()
    #: the choices made on sizes (:func:`.emitter.replay` tells whether other sizes
    #: make the same, and so would generate this very code)
    decisions: list = field(default_factory=list)


def _returns(gen: Generator, outputs: Sequence[Expr], structured: bool
             ) -> tuple[list[Code], list]:
    """The code of each output (dense, or a structured output's core) and, per
    output, the index pattern of a structured one, else ``None``."""
    rets: list[Code] = []
    post: list = []
    for out in outputs:
        v = gen.views[id(out)]
        if structured and v.repeats:
            rets.append(gen.structured(out, v))
            post.append(v.axes)
        else:
            rets.append(gen.dense(out, v, fresh=True))
            post.append(None)
    return rets, post


def size_sources(var_code: Mapping[str, str], shapes: Mapping[str, tuple]
                 ) -> dict[Any, Code]:
    """Each dim that an input carries -> the code reading its size from the first
    input that does (``{"N": a2.shape[0], "d": a2.shape[1]}``)."""
    out: dict[Any, Code] = {}
    for var, code in var_code.items():
        for k, d in enumerate(shapes.get(var, ())):
            if not isinstance(d, int) and d not in out:
                out[d] = Code(f"{code}.shape[{k}]", (code,))
    return out


def generate(outputs: Sequence[Expr], inputs: Sequence[str], sizes: Mapping,
             table: object, structured: bool = False, fname: str = "compiled",
             shapes: Mapping[str, tuple] | None = None) -> Generated:
    """Generate, compile and return the function ``f(a0, a1, ...) -> tuple`` computing
    ``outputs`` from the variables ``inputs`` (in that order), planned for dims
    ``sizes``.  ``shapes`` (variable -> its declared shape) lets the code read every
    dim an input carries from that input at run time: the function is then correct
    for any sizes of those dims (and fastest near ``sizes``); without it, every size
    is a constant of the code."""
    var_code = {var: f"a{i}" for i, var in enumerate(inputs)}
    src_of = size_sources(var_code, shapes or {})
    gen = Generator(sizes, list(var_code.values()), dim_src=src_of,
                    tall_transposed=bool(getattr(table, "tall_gemm_transposed", False)))
    gen.solvable = solvable_inverses(outputs)
    count = gen.visit_all(outputs, var_code)
    rets, post = _returns(gen, outputs, structured)
    read = {d: c.text for d, c in src_of.items() if isinstance(d, str)}
    # fused element-wise chains (fuse.py); a fused line checks its arguments' real
    # size before it compiles, so code reused at other sizes stays right
    body, fx = fuse(finish(gen.lines, rets), rets, table, element_counts(gen, outputs))
    fused_sizes = size_decision(gen, outputs, table)
    if fused_sizes is not None:  # which chains are big enough to fuse is a choice on sizes
        gen.decisions.append(fused_sizes)
    src = function_source(fname, var_code, sizes, body, rets, read)
    glb: dict[str, Any] = {"xp": table, "fx": fx, "__builtins__": _BUILTINS}  # exec fills in fname
    exec(compile(src, f"<matdiff {fname}>", "exec"), glb)  # noqa: S102 - our own code
    return Generated(src, glb[fname], dict(sizes), count,
                     post if any(p is not None for p in post) else None, frozenset(read),
                     gen.decisions)
