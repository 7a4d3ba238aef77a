"""Symbolic differentiation in reverse mode, seeded with a delta (MATH.md).

The derivative of ``f`` (shape ``F``) by ``x`` (shape ``X``) is the tensor
``D[φ, χ] = ∂f[φ]/∂x[χ]`` of shape ``F + X``: numerator layout for Jacobians, the
variable's own shape for the gradient of a scalar.  Every node's adjoint
``adj(v)[φ, σ] = ∂f[φ]/∂v[σ]`` starts from ``adj(f) = Π δ(φ, φ')`` and flows to the
children through each node's rule (``Expr.vjp``), summed where paths meet (the
paper's total-derivative rule).  The rules build ordinary nodes, so a derivative
can be differentiated again: the Hessian is the derivative of the derivative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ShapeError, UnknownVariableError
from ..expr.core import (
    Const,
    Delta,
    Expr,
    Var,
    context_of,
    remember_context,
    shape_str,
    topo_order,
)
from ..expr.simplify import add, einsum

__all__ = ["derive", "hessian", "resolve_wrt", "to_expr"]


def to_expr(f: Expr | str, shapes: Mapping[str, Sequence] | None = None,
            syntax: str = "numpy") -> Expr:
    """``f`` as an expression, parsing text with ``shapes`` in ``syntax``."""
    if isinstance(f, Expr):
        return f
    if isinstance(f, str):
        from ..parse import parse

        return parse(f, shapes=shapes, syntax=syntax)
    raise TypeError(f"expected an expression or its text, not {type(f).__name__}")


def resolve_wrt(f: Expr, wrt: Expr | str, shapes: Mapping[str, Sequence] | None = None
                ) -> Var:
    """The variable named (or given) by ``wrt``.

    A name that ``f`` does not contain is accepted only when ``shapes`` declares
    it (the derivative is then zero); otherwise it is an unknown variable.
    """
    if isinstance(wrt, Var):
        return wrt
    if isinstance(wrt, Expr):
        raise TypeError("differentiate by a variable, not by an expression")
    if not isinstance(wrt, str):
        raise TypeError(f"wrt must be a variable or its name, not {type(wrt).__name__}")
    found = f.variables()
    if wrt in found:
        return Var(wrt, found[wrt])
    if shapes is not None:
        from ..parse.build import declared_shapes  # the parser's checks and messages

        declared = declared_shapes(shapes)
        if wrt in declared:
            return Var(wrt, declared[wrt])
    # a variable of the text that simplification cancelled (p / p is 1): the
    # derivative by it is zero of its shape, if the texts agree on one
    from ..parse import cancelled_variables

    seen = cancelled_variables(f).get(wrt)
    if seen is not None and len(seen) == 1:
        return Var(wrt, next(iter(seen)))
    if seen is not None:
        raise UnknownVariableError(
            f"cannot tell the shape of '{wrt}': the expression (a shared node) was "
            f"parsed from texts where it has the shapes "
            f"{', '.join(sorted(shape_str(s) for s in seen))}; give it with "
            f"shapes={{{wrt!r}: ...}} or differentiate by the variable itself")
    import difflib

    names = sorted(found)
    near = difflib.get_close_matches(wrt, names, n=3)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise UnknownVariableError(
        f"cannot differentiate by '{wrt}': the expression has no variable of that name "
        f"(its variables: {', '.join(names) or 'none'}){hint}"
    )


def _seed(shape: tuple) -> Expr:
    """``adj(f) = Π_a δ(φ_a, φ'_a)``: the identity on f's own indices."""
    r = len(shape)
    if r == 0:
        return Const(1.0)
    return einsum([Delta(d) for d in shape], [(a, r + a) for a in range(r)],
                  tuple(range(2 * r)))


def derive(f: Expr | str, wrt: Expr | str, shapes: Mapping[str, Sequence] | None = None,
           syntax: str = "numpy") -> Expr:
    """The derivative of ``f`` by the variable ``wrt``: shape ``f.shape + wrt.shape``.

    ``f`` may be an expression or its text (parsed with ``shapes`` in ``syntax``,
    ``"numpy"`` or ``"matrixcalculus"``).  A variable that ``f`` does not contain
    gives zeros of the right shape.

    >>> import matdiff as md
    >>> g = md.derive("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
    >>> print(g)
    x
    >>> md.derive("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")}).shape
    ('n',)
    """
    f = to_expr(f, shapes, syntax)
    x = resolve_wrt(f, wrt, shapes)
    found = f.variables()
    if x.name in found and found[x.name] != x.shape:
        raise ShapeError(
            f"'{x.name}' has shape {shape_str(found[x.name])} in the expression but "
            f"{shape_str(x.shape)} was asked for"
        )
    nf = len(f.shape)
    order = topo_order(f)
    depends: set[int] = set()
    for node in order:
        if node is x or any(id(c) in depends for c in node.children):
            depends.add(id(node))
    context = {**context_of(f), **f.variables(), x.name: x.shape}
    if id(f) not in depends:
        zero = Const(0.0, f.shape + x.shape)
        remember_context(zero, context)
        return zero
    adjs: dict[int, list[Expr]] = {id(f): [_seed(f.shape)]}
    for node in reversed(order):
        terms = adjs.pop(id(node), None)
        if terms is None:
            continue
        adj = terms[0] if len(terms) == 1 else add(terms)
        if node is x:
            remember_context(adj, context)
            return adj
        for k, child in enumerate(node.children):
            if id(child) in depends:
                adjs.setdefault(id(child), []).append(node.vjp(k, adj, nf))
    raise AssertionError("the variable was not reached")  # pragma: no cover


def hessian(f: Expr | str, wrt: Expr | str | None = None,
            shapes: Mapping[str, Sequence] | None = None,
            syntax: str = "numpy") -> Expr:
    """``derive(derive(f, wrt), wrt)``: shape ``f.shape + wrt.shape + wrt.shape``.

    >>> import matdiff as md
    >>> H = md.hessian("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")})
    >>> H.shape
    ('n', 'n')
    """
    f = to_expr(f, shapes, syntax)
    x = resolve_wrt(f, wrt, shapes)
    return derive(derive(f, x), x)


