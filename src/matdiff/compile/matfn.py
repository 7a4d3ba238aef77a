"""The matrix functions (definitions of :mod:`matdiff.expr.matrix_functions`) in
generated code.

A call is ``xp.<name>(arg)``, the backend table's entry that the definition gives.
The one place the code generator names particular functions is here, in the two
optimisations that are about them: an inverse that is only multiplied is used through
``solve`` (:func:`solvable_inverses`), and a softmax next to the logsumexp of the same
argument is ``exp(z − logsumexp(z))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..expr.core import Call, Einsum, Expr, topo_order
from .lines import Code, fmt, name
from .products import shape_comment
from .views import View

if TYPE_CHECKING:  # pragma: no cover - types only
    from .generator import Generator

__all__ = ["matrix_function", "solvable_inverses"]


def _is_call(e: Expr, fn: str) -> bool:
    """Whether ``e`` is a call of the matrix function ``fn``."""
    return isinstance(e, Call) and e.fn == fn


def solvable_inverses(outputs: Sequence[Expr]) -> set[int]:
    """Ids of the inverses whose value is only an operand of products (not an
    output, not an argument of anything else): those may be used through ``solve``."""
    only_mult: dict[int, bool] = {}
    for out in outputs:
        for node in topo_order(out):
            for c in node.children:
                if _is_call(c, "inv"):
                    only_mult[id(c)] = only_mult.get(id(c), True) and isinstance(node, Einsum)
    outs = {id(o) for o in outputs}
    return {i for i, ok in only_mult.items() if ok and i not in outs}


def _params(gen: Generator, e: Call) -> list[str | Code]:
    """A call's parameters as code: ints as they are, a dim as its size (read from
    an input's shape where one carries it)."""
    return [repr(p) if isinstance(p, int) else gen.size_code(p) for p in e.params]


def matrix_function(gen: Generator, e: Expr, args: Sequence[Code]) -> View:
    """The node ``e`` of a matrix function of the dense arrays ``args``."""
    full = tuple(range(len(e.shape)))
    arg = args[0]
    if _is_call(e, "inv") and id(e) in gen.solvable:
        # only multiplied: products use ``solve`` with the matrix; the inverse's own
        # line is written here, and dropped as dead if every product solved
        inv = gen.fresh_name()
        gen.lazy_inv[inv] = (arg, gen.size_code(e.shape[0]))
        gen.define(inv, fmt("xp.inv({})", arg))
        return View(name(inv), full, full)
    lse = gen.lse.get(id(e.children[0]))
    if _is_call(e, "softmax") and lse is not None:
        # softmax(z) = exp(z − logsumexp(z)), from the logsumexp already computed
        # (the value of a cross-entropy loss, whose gradient is the softmax)
        return View(gen.emit(fmt("xp.exp({} - {}[..., None])", arg, lse), shape_comment(e)),
                    full, full)
    assert isinstance(e, Call)
    parts = list(args) + _params(gen, e)
    code = gen.emit(fmt("xp.{}(" + ", ".join(["{}"] * len(parts)) + ")", e.fn, *parts),
                    shape_comment(e))
    if _is_call(e, "logsumexp"):
        gen.lse[id(e.children[0])] = code
    return View(code, full, full)
