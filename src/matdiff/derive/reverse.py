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
from ..expr.core import Const, Delta, Expr, Shape, Var, shape_str, topo_order, var_nodes
from ..expr.simplify import add, einsum
from .result import Derivative, derivative, node_of

__all__ = ["derive", "hessian", "resolve_wrt", "to_expr", "function_of", "Derivative"]


def to_expr(f: Expr | str, shapes: Mapping[str, Sequence] | None = None,
            syntax: str = "numpy") -> Expr:
    """``f`` as an expression, parsing text with ``shapes`` in ``syntax``; a derivative
    result as the shared node it stands for."""
    return function_of(f, shapes, syntax)[0]


def function_of(f: Expr | str, shapes: Mapping[str, Sequence] | None = None,
                syntax: str = "numpy") -> tuple[Expr, dict[str, Shape]]:
    """``f`` as an expression, and the variables known besides its own: for text,
    every variable it names (simplification may have cancelled some: ``p / p``), for
    :func:`resolve_wrt` to find a variable by name.

    >>> function_of("p / p", {"p": ("n",)})
    (<Expr 1  shape=(n,)>, {'p': ('n',)})
    """
    if isinstance(f, Expr):
        return node_of(f), {}
    if isinstance(f, str):
        from ..parse import parse_with_variables

        return parse_with_variables(f, shapes=shapes, syntax=syntax)
    raise TypeError(f"expected an expression or its text, not {type(f).__name__}")


def resolve_wrt(f: Expr, wrt: Expr | str, shapes: Mapping[str, Sequence] | None = None,
                known: Mapping[str, Shape] | None = None) -> Var:
    """The variable named (or given) by ``wrt``.

    A name is looked up in ``f``'s variables, then in ``known`` (the variables of the
    text ``f`` was parsed from, or those a derivative result was taken from), then in
    ``shapes``; a name none of them has is an unknown variable (the derivative by a
    variable ``f`` lacks is zero, but its shape must come from somewhere).
    """
    if isinstance(wrt, Derivative):
        wrt = wrt.body
    if isinstance(wrt, Var):
        # the variable of f by that name and shape, with its structure (a plain S
        # given for f's symmetric S means f's S: the derivative is by the variable
        # f has, never a silent zero)
        node = var_nodes(f).get(wrt.name)
        return node if node is not None and node.shape == wrt.shape else wrt
    if isinstance(wrt, Expr):
        raise TypeError("differentiate by a variable, not by an expression")
    if not isinstance(wrt, str):
        raise TypeError(f"wrt must be a variable or its name, not {type(wrt).__name__}")
    found = f.variables()
    if wrt in found:
        return var_nodes(f)[wrt]
    if isinstance(f, Derivative):
        known = {**f.context(), **(known or {})}
    if known and wrt in known:
        return Var(wrt, known[wrt])
    if shapes is not None:
        # the parser's checks and messages
        from ..parse.build import declared_shapes, declared_structures

        declared = declared_shapes(shapes)
        if wrt in declared:
            return Var(wrt, declared[wrt], declared_structures(shapes).get(wrt))
    import difflib

    names = sorted(found)
    near = difflib.get_close_matches(wrt, names, n=3)
    hint = (f"; did you mean {', '.join(near)}?" if near else
            f". If simplification cancelled it (p / p is 1, x - x is 0), the expression "
            f"cannot know its shape: pass the variable itself (md.var({wrt!r}, ...)), or "
            f"its shape with shapes={{{wrt!r}: ...}}, or the text (md.derive(text, "
            f"{wrt!r}))")
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
    gives zeros of the right shape; by name, it is found in the text (``p / p`` names
    ``p`` though the expression is 1) or in ``shapes``.

    The result is a :class:`~matdiff.derive.result.Derivative`: an expression standing
    for a shared node (its ``body``) that knows ``f``, ``wrt`` (the variables, one per
    order) and ``order``, so it prints in any layout and evaluates binding dims from
    the values of ``f``'s variables; a derivative of a derivative knows the first
    ``f`` and both variables.

    >>> import matdiff as md
    >>> g = md.derive("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
    >>> print(g)
    x
    >>> md.derive("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")}).shape
    ('n',)
    >>> g.order, [v.name for v in g.wrt], md.to_text(g, layout="numerator")
    (1, ['w'], 'xᵀ')
    """
    given = f
    f, known = function_of(f, shapes, syntax)
    x = resolve_wrt(given if isinstance(given, Derivative) else f, wrt, shapes, known)
    if isinstance(given, Derivative):
        known = given.context()
    if x.name in known and x.name not in f.variables() and known[x.name] != x.shape:
        raise ShapeError(
            f"'{x.name}' has shape {shape_str(known[x.name])} in the function but "
            f"{shape_str(x.shape)} was asked for")
    body = _derive(f, x)
    if isinstance(given, Derivative):  # a derivative of a derivative
        return derivative(body, given.f, given.wrt + (x,), len(f.shape))
    return derivative(body, f, (x,), len(f.shape))


def _derive(f: Expr, x: Var) -> Expr:
    """The derivative of the shared node ``f`` by ``x``, a shared node."""
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
    if id(f) not in depends:
        return Const(0.0, f.shape + x.shape)
    adjs: dict[int, list[Expr]] = {id(f): [_seed(f.shape)]}
    for node in reversed(order):
        terms = adjs.pop(id(node), None)
        if terms is None:
            continue
        adj = terms[0] if len(terms) == 1 else add(terms)
        if node is x:
            return project(adj, x, nf)
        for k, child in enumerate(node.children):
            if id(child) in depends:
                adjs.setdefault(id(child), []).append(node.vjp(k, adj, nf))
    raise AssertionError("the variable was not reached")  # pragma: no cover


def project(adj: Expr, x: Var, nf: int) -> Expr:
    """The derivative by a structured variable, projected onto its space (MATH.md,
    "Symmetric (and SPD, diagonal) variables"): with ``G = adj`` the derivative that
    treats ``x`` as unconstrained, the gradient in the space of symmetric matrices
    (Frobenius inner product) is ``sym(G) = (G + Gᵀ)/2``, the one symmetric ``D``
    with ``⟨D, E⟩ = df[E]`` for every symmetric ``E``; for a diagonal ``x`` it is
    ``diag(G) = G ⊙ I``.  Only ``x``'s two axes (the last two) are projected, so
    Jacobians and Hessians follow.  (``G + Gᵀ − G ⊙ I``, in some handbooks, is the
    derivative by the independent entries ``Sᵢⱼ, i ≤ j``: not a gradient.)

    >>> import matdiff as md
    >>> print(md.derive("tr(A @ S)", "S", shapes={"A": ("n", "n"),
    ...                                           "S": ("n", "n", "symmetric")}))
    0.5(A + Aᵀ)
    """
    if not x.structure:
        return adj
    phi = tuple(range(2, 2 + nf))
    if x.structure == "diagonal":
        return einsum([adj, Delta(x.shape[0])], [phi + (0, 1), (0, 1)], phi + (0, 1))
    transposed = einsum([adj], [phi + (0, 1)], phi + (1, 0))
    return einsum([Const(0.5), add([adj, transposed])], [(), phi + (0, 1)], phi + (0, 1))


def hessian(f: Expr | str, wrt: Expr | str | None = None,
            shapes: Mapping[str, Sequence] | None = None,
            syntax: str = "numpy") -> Expr:
    """``derive(derive(f, wrt), wrt)``: shape ``f.shape + wrt.shape + wrt.shape``.

    >>> import matdiff as md
    >>> H = md.hessian("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")})
    >>> H.shape
    ('n', 'n')
    """
    given = f
    f, known = function_of(f, shapes, syntax)
    x = resolve_wrt(given if isinstance(given, Derivative) else f, wrt, shapes, known)
    return derive(derive(given if isinstance(given, Derivative) else f, x), x)
