"""Numeric evaluation of expressions on NumPy arrays (float64).

:func:`evaluate` (and ``Expr.evaluate``) runs the compiled NumPy code of the
expression (:mod:`matdiff.compile.codegen`), generated once per expression and input
shapes and cached; :func:`interpret` is the plain node-by-node interpreter, kept as
an independent reference for the tests.

Named dims are bound to sizes from the arrays given for the variables (for a
derivative result, also for the variables of the function it is the derivative of,
which it knows: :mod:`matdiff.derive.result`; nothing else is consulted); a value
missing, of the wrong rank, or contradicting another's dims is an
:class:`~matdiff.errors.EvaluationError` naming the variable.  Values are real:
complex arrays, None, text and dates are refused (NumPy would drop an imaginary
part, or read None as nan, without a word); booleans count as 0 and 1, as in NumPy.
Values for names the expression does not use are ignored.  Non-finite values
propagate as NumPy propagates them; a singular matrix where an inverse is needed
(``inv``, the derivatives of ``det`` and ``logdet``) is an ``EvaluationError`` on the
NumPy and PyTorch backends (JAX's compiled code returns inf and nan, it cannot
raise).  A result larger than the machine's memory is refused before anything is
allocated (:func:`~matdiff.compile.api.memory_limit`).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import opt_einsum as oe

from ..derive.result import binding_variables
from ..errors import EvaluationError, LimitError
from ..expr.core import Const, Einsum, Expr, Var, topo_order
from ..expr.dims import dim_names, dim_size

__all__ = ["evaluate", "interpret", "bind_sizes", "contract", "cache_info", "merge_values"]


def _to_float64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def merge_values(values: Any, kw: Mapping[str, Any]) -> dict[str, Any]:
    """``Expr.evaluate``'s values: the dict given and the keyword arguments; a value
    that is not a dict (``f.evaluate(5)``) is a TypeError saying how to give them."""
    from .api import check_values

    out = dict(check_values(values, "evaluate", keywords=True))
    out.update(kw)
    return out


def bind_sizes(expr: Expr, values: Mapping[str, Any], given_dims: Mapping[str, int] | None = None
               ) -> tuple[dict[str, np.ndarray], dict]:
    """Check ``values`` against the variables of ``expr``; return arrays and dim sizes.

    For a derivative result (:mod:`matdiff.derive.result`), values of the variables
    it was taken from (its ``f``'s and its wrt) are checked and bind dims too, though
    the derivative may no longer contain them (``dx/dx = I`` still needs ``n``); a
    plain expression binds from its own variables alone.
    """
    # the compiled path's binding and conversion, with the same messages
    from .api import as_real_array, bind_shapes, check_values

    values = check_values(values)
    body, context = binding_variables(expr)
    wanted = body.variables()
    arrays: dict[str, np.ndarray] = {}
    for name in wanted:
        if name not in values:
            continue  # bind_shapes reports every missing value at once
        arrays[name] = as_real_array(name, values[name], _to_float64)
    sizes = bind_shapes(wanted, context, values,
                        {n: a.shape for n, a in arrays.items()}, given_dims)
    return arrays, sizes


def _unbound_dims(expr: Expr, sizes: dict) -> list[str]:
    from ..expr.core import Size

    out: list[str] = []
    for node in topo_order(expr):
        dims = list(node.shape)
        if isinstance(node, Size):
            dims.append(node.dim)
        for d in dims:
            out.extend(k for k in sorted(dim_names(d)) if k not in sizes and k not in out)
    return out


_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def evaluate(expr: Expr, values: Mapping[str, Any] | None = None,
             dims: Mapping[str, int] | None = None
             ) -> np.ndarray:
    """Evaluate ``expr`` with ``values`` (name -> array); ``dims`` may bind dims that no
    variable carries (as in a derivative by a variable the expression lacks).

    Runs compiled NumPy code, cached per expression and per input shapes: evaluating
    again on arrays of the same shapes only runs the code."""
    from .api import Compiled, check_values

    if not isinstance(expr, Expr):
        hint = "; parse text first with md.parse" if isinstance(expr, str) else ""
        raise TypeError(f"evaluate takes an expression, not {type(expr).__name__}{hint}")
    values = check_values(values)
    body, context = binding_variables(expr)
    # per shared node, one program per set of binding variables (a derivative result
    # binds dims from its f's variables too; what it binds from is in the key, so
    # the same node evaluates the same whatever was derived before)
    progs = _PROGRAMS.get(body)
    if progs is None:
        progs = _PROGRAMS[body] = {}
    key = tuple(sorted(context.items()))
    prog = progs.get(key)
    if prog is None:
        prog = progs[key] = Compiled(expr, _weak=True)
    out = prog.call_flat(values, dims)[0]
    return np.asarray(out, dtype=np.float64)


def cache_info() -> dict:
    """``{"expressions": ..., "generated": ...}``: expressions with cached code and the
    code generations done so far (by evaluate and md.compile together)."""
    from .api import STATS

    return {"expressions": len(_PROGRAMS), "generated": STATS["generated"]}


def interpret(expr: Expr, values: Mapping[str, Any], dims: Mapping[str, int] | None = None
              ) -> np.ndarray:
    """Evaluate ``expr`` node by node (no code generation): the reference that
    compiled code is tested against."""
    from .api import MAX_AXES, check_dims, too_big, unbound_message
    from .backends import SINGULAR

    arrays, sizes = bind_sizes(expr, values, check_dims(dims))
    expr = binding_variables(expr)[0]
    for d, n in check_dims(dims).items():
        if d in sizes and sizes[d] != n:
            raise EvaluationError(f"dim {d} is {sizes[d]} from the values but {n} was given")
        sizes[d] = n
    unbound = _unbound_dims(expr, sizes)
    if unbound:
        raise EvaluationError(unbound_message(unbound, compiled=False))
    order = topo_order(expr)
    for node in order:
        if len(node.shape) > MAX_AXES:
            raise LimitError(f"cannot evaluate a tensor of {len(node.shape)} axes: "
                             f"arrays have at most {MAX_AXES}")
    cache: dict[int, Any] = {}
    for node in order:
        if isinstance(node, Var):
            v = arrays[node.name]
        else:
            try:
                v = node._eval([cache[id(c)] for c in node.children], sizes)
            except np.linalg.LinAlgError as exc:  # inv of a singular matrix
                raise EvaluationError(SINGULAR) from exc
            except (MemoryError, ValueError, OverflowError) as exc:  # all dense here
                if not too_big(exc):
                    raise
                raise LimitError(f"not enough memory for this evaluation: {exc}") from exc
        cache[id(node)] = v
    out = cache[id(expr)]
    return np.asarray(out, dtype=np.float64)


def contract(node: Einsum, args: list, sizes: Mapping[str, int]) -> Any:
    """Evaluate one product; ones tensors become broadcasting, not arrays."""
    ops: list = []
    coef = 1.0
    bcast: list[int] = []  # output letters covered only by ones
    covered: set[int] = set()  # the letters some non-constant operand reads
    for e, s in zip(node.children, node.specs):
        if not isinstance(e, Const):
            covered.update(s)
    for e, s, v in zip(node.children, node.specs, args):
        if isinstance(e, Const):
            coef *= e.value
            for c in s:
                if c not in covered and c in node.out and c not in bcast:
                    bcast.append(c)
            continue
        ops.append(np.asarray(v))
        ops.append(list(s))
    out_core = [c for c in node.out if c not in bcast]
    if not ops:
        res = np.float64(1.0)
    elif all(s == out_core for s in ops[1::2]):
        # an element-wise product (the paper's ⊗): multiply, no contraction needed
        res = ops[0]
        for a in ops[2::2]:
            res = res * a
    else:
        # greedy ordering: near-optimal for our products and cheap to find
        res = oe.contract(*ops, out_core, optimize="greedy")
    if coef != 1.0:
        res = res * coef
    if bcast:
        dims = node.letter_dims()
        full = [dim_size(dims[c], sizes) for c in node.out]
        # place core axes, then broadcast over the ones-only axes
        res = np.asarray(res)
        shape = [full[i] if c in out_core else 1 for i, c in enumerate(node.out)]
        res = np.broadcast_to(res.reshape(shape), full).copy()
    return res
