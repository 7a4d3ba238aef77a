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
from typing import TYPE_CHECKING, Any

from ..errors import MatdiffError, ShapeError, UnknownVariableError
from ..expr.core import Const, Delta, Dim, Expr, Shape, Var, shape_str, topo_order, var_nodes
from ..expr.simplify import add, einsum
from ..expr.written import unrecorded
from .result import Derivative, derivative, node_of

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13

    from ..expr.selection import Concat

__all__ = ["derive", "hessian", "resolve_wrt", "resolve_several", "is_several",
           "to_expr", "function_of", "Derivative"]


def to_expr(f: Expr | str, shapes: Mapping[str, Sequence[Dim]] | None = None,
            syntax: str = "numpy") -> Expr:
    """``f`` as an expression, parsing text with ``shapes`` in ``syntax``; a derivative
    result as the shared node it stands for."""
    return function_of(f, shapes, syntax)[0]


def function_of(f: Expr | str, shapes: Mapping[str, Sequence[Dim]] | None = None,
                syntax: str = "numpy") -> tuple[Expr, dict[str, Shape]]:
    """``f`` as an expression, and the variables known besides its own: for text,
    every variable it names (simplification may have cancelled some: ``p / p``), for
    :func:`resolve_wrt` to find a variable by name.

    >>> function_of("p / p", {"p": ("n",)})
    (<Expr 𝟏  shape=(n,)>, {'p': ('n',)})
    """
    if isinstance(f, Expr):
        return node_of(f), {}
    if isinstance(f, str):
        from ..parse import parse_with_variables

        return parse_with_variables(f, shapes=shapes, syntax=syntax)
    raise TypeError(f"expected an expression or its text, not {type(f).__name__}")


def resolve_wrt(f: Expr, wrt: Expr | str | Sequence[Expr | str] | None,
                shapes: Mapping[str, Sequence[Dim]] | None = None,
                known: Mapping[str, Shape] | None = None) -> Var:
    """The variable named (or given) by ``wrt``.

    ``wrt`` is what the user passed: a list of variables, an expression that is not a
    variable, or anything else is refused with an error that says so.

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
    if is_several(wrt):
        raise MatdiffError(
            f"this takes one variable, not the list {_names(wrt)}: the derivative by "
            f"several variables at once is md.derive(f, {_names(wrt)}) (md.hessian too); "
            "its parts are the derivatives by each one, taken one at a time")
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


def is_several(wrt: object) -> TypeIs[list[Any] | tuple[Any, ...]]:
    """Whether ``wrt`` asks for the derivative by several variables at once: a list
    or tuple of variables or names (a name or a variable alone is one)."""
    return isinstance(wrt, (list, tuple))


def _names(wrt: Sequence) -> str:
    return "[" + ", ".join(w if isinstance(w, str) else str(getattr(w, "name", None)
                                                            or type(w).__name__)
                           for w in wrt) + "]"


def resolve_several(f: Expr, wrt: Sequence[Any], shapes: Mapping[str, Sequence[Dim]] | None = None,
                    known: Mapping[str, Shape] | None = None) -> tuple[Var, ...]:
    """The variables named (or given) by the list ``wrt``, in its order, each found as
    :func:`resolve_wrt` finds one.  An empty list, a list in the list, or a variable
    given twice (the concatenation ``[x; x]`` is no set of coordinates) is an error.

    >>> import matdiff as md
    >>> [v.name for v in resolve_several(md.parse("x * y"), ["y", "x"])]
    ['y', 'x']
    """
    if not wrt:
        raise MatdiffError("differentiate by at least one variable: the list of "
                           "variables is empty")
    xs: list[Var] = []
    for w in wrt:
        if is_several(w):
            raise MatdiffError(f"the list of variables {_names(wrt)} holds a list: give "
                               "the variables (or their names) in one flat list")
        x = resolve_wrt(f, w, shapes, known)
        if any(y.name == x.name for y in xs):
            raise MatdiffError(
                f"'{x.name}' appears twice in the variables {_names(wrt)}: the "
                "derivative by several variables is by their concatenation, which "
                "holds each once; give each variable once")
        xs.append(x)
    return tuple(xs)


def derive(f: Expr | str, wrt: Expr | str | Sequence[Expr | str],
           shapes: Mapping[str, Sequence[Dim]] | None = None,
           syntax: str = "numpy") -> Expr:
    """The derivative of ``f`` by the variable ``wrt``: shape ``f.shape + wrt.shape``.

    ``f`` may be an expression or its text (parsed with ``shapes`` in ``syntax``,
    ``"numpy"`` or ``"matrixcalculus"``).  A variable that ``f`` does not contain
    gives zeros of the right shape; by name, it is found in the text (``p / p`` names
    ``p`` though the expression is 1) or in ``shapes``.

    ``wrt`` may also be a list of variables (or names), ``[x, y, …]``: the derivative
    by their concatenation ``z = [vec(x); vec(y); …]``, the paper's ``∇f(x, y) =
    [∂f/∂x, ∂f/∂y]``, of shape ``f.shape + (size(x) + size(y) + …,)`` (a scalar counts
    1, a vector ``(n,)`` counts ``n``, a matrix ``(m, n)`` counts ``m·n``: dims add,
    ``m·n + k``).  Its parts are the separate derivatives, joined along the last
    axis, a matrix's by ``vec`` (its columns stacked): the gradient of a scalar by
    ``[X, y]`` is ``[vec(∇_X f); ∇_y f]``.  A list of one is the derivative by
    ``[vec(x)]`` (a scalar ``x`` gives a last axis of length 1).

    The result is a :class:`~matdiff.derive.result.Derivative`: an expression standing
    for a shared node (its ``body``) that knows ``f``, ``wrt`` (the variables, one per
    order; a tuple of them for an order by several at once) and ``order``, so it
    prints in any layout and evaluates binding dims from the values of ``f``'s
    variables; a derivative of a derivative knows the first ``f`` and both variables.

    >>> import matdiff as md
    >>> g = md.derive("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
    >>> print(g)
    x
    >>> md.derive("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")}).shape
    ('n',)
    >>> g.order, [v.name for v in g.wrt], md.to_text(g, layout="numerator")
    (1, ['w'], 'xᵀ')
    >>> J = md.derive("[3*x**2*y, 2*x + y**8]", ["x", "y"], shapes={"x": (), "y": ()})
    >>> J.shape, J.order, [v.name for v in J.wrt[0]]
    ((2, 2), 1, ['x', 'y'])
    >>> g = md.derive("tr(A @ X) + y @ y", ["X", "y"],
    ...               shapes={"A": ("n", "n"), "X": ("n", "n"), "y": ("k",)})
    >>> print(g, g.shape[0])
    concat(vec(Aᵀ), 2y) n·n + k
    """
    given = f
    f, known = function_of(f, shapes, syntax)
    target = given if isinstance(given, Derivative) else f
    several = is_several(wrt)
    xs = (resolve_several(target, wrt, shapes, known) if is_several(wrt)
          else (resolve_wrt(target, wrt, shapes, known),))
    if isinstance(given, Derivative):
        known = given.context()
    for x in xs:
        if x.name in known and x.name not in f.variables() and known[x.name] != x.shape:
            raise ShapeError(
                f"'{x.name}' has shape {shape_str(known[x.name])} in the function but "
                f"{shape_str(x.shape)} was asked for")
    if several:
        _joinable(xs)
        body = _join([_derive(f, x) for x in xs], len(f.shape), xs)
    else:
        body = _derive(f, xs[0])
    step = xs if several else xs[0]
    if isinstance(given, Derivative):  # a derivative of a derivative
        return derivative(body, given.f, given.wrt + (step,), len(f.shape))
    return derivative(body, f, (step,), len(f.shape))


def _joinable(xs: Sequence[Var]) -> None:
    """Refuse the variables whose part of the concatenation has no meaning: a
    variable's coordinates are ``vec(x)``, defined for scalars, vectors and
    matrices."""
    for x in xs:
        if len(x.shape) > 2:  # pragma: no cover - variables have rank ≤ 2
            raise ShapeError(
                f"the derivative by several variables at once takes scalars, vectors "
                f"and matrices; '{x.name}' has shape {shape_str(x.shape)}")


def _vec_part(part: Expr, nf: int, x: Var) -> Expr:
    """The part ``∂f/∂vec(x)`` of a matrix ``x`` (``m × n``) from ``∂f/∂x`` (shape
    ``F + (m, n)``): ``vec`` stacks the columns (MATH.md, "Kronecker and vec"), so
    coordinate ``i + m·j`` of ``vec(x)`` is ``x[i, j]`` and the part is
    ``P[φ, i + m·j] = D[φ, i, j]``: ``vec(∇ₓf)`` for a scalar ``f``; else ``D``'s last
    two axes swapped and merged row-major, ``(j, i) ↦ j·m + i``.  A scalar's or a
    vector's part is its derivative."""
    if len(x.shape) < 2:
        return part
    from ..expr.matrix_functions import vec_trailing

    return vec_trailing(part, nf)


def _join(parts: Sequence[Expr], nf: int, xs: Sequence[Var]) -> Expr:
    """The derivative by the concatenation ``z = [vec(x₁); …; vec(x_k)]`` from its parts
    ``∂f/∂xᵢ`` (shape ``F + Xᵢ``, ``F`` of rank ``nf``): ``∂f[φ]/∂z[a]`` is the part
    of the variable that holds coordinate ``a``, so the parts are joined along the
    last axis (``Concat``, :mod:`matdiff.expr.selection`): a vector's part as a block
    of its length, a scalar's as one row.  Scalars only is the paper's
    ``[∂f/∂x, ∂f/∂y]``, a stack along a new last axis.

    Where every part is itself joined along one of ``f``'s axes, in one layout (the
    derivative of stacked functions ``f = [f₁, f₂]``), the two joins are exchanged
    (a join along axis ``a`` of joins along the last axis is the join along the last
    axis of joins along ``a``, ``a`` < ``nf``): the paper's ``J = [∇f₁; ∇f₂]``, a
    stack of gradients, which prints as the matrix it is, row by row."""
    from ..expr.selection import Concat
    from ..expr.simplify.selection import concat

    first = parts[0]
    if isinstance(first, Concat) and first.axis < nf and all(
            _same_layout(p, first) for p in parts[1:]):
        a, rows = first.axis, first.rows
        pieces = [_join([p.children[i] for p in parts], nf - rows[i], xs)
                  for i in range(len(rows))]
        return concat(pieces, a, rows)
    return concat([_vec_part(p, nf, x) for p, x in zip(parts, xs, strict=True)], nf,
                  [len(x.shape) == 0 for x in xs])


def _same_layout(p: Expr, first: Concat) -> bool:
    """Whether ``p`` is joined along the axis of ``first``, from pieces of its sizes."""
    from ..expr.selection import Concat

    return (isinstance(p, Concat) and p.axis == first.axis and p.rows == first.rows
            and all(row or c.shape[p.axis] == d.shape[p.axis]
                    for c, d, row in zip(p.children, first.children, p.rows)))


def _derive(f: Expr, x: Var) -> Expr:
    """The derivative of the shared node ``f`` by ``x``, a shared node."""
    # reverse mode does not write: the nodes of f keep how the person wrote them
    # (matdiff.expr.written)
    with unrecorded():
        return _reverse(f, x)


def _reverse(f: Expr, x: Var) -> Expr:
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
    (A + Aᵀ)/2
    """
    if not x.structure:
        return adj
    phi = tuple(range(2, 2 + nf))
    if x.structure == "diagonal":
        return einsum([adj, Delta(x.shape[0])], [phi + (0, 1), (0, 1)], phi + (0, 1))
    transposed = einsum([adj], [phi + (0, 1)], phi + (1, 0))
    return einsum([Const(0.5), add([adj, transposed])], [(), phi + (0, 1)], phi + (0, 1))


def hessian(f: Expr | str, wrt: Expr | str | Sequence[Expr | str] | None = None,
            shapes: Mapping[str, Sequence[Dim]] | None = None,
            syntax: str = "numpy") -> Expr:
    """``derive(derive(f, wrt), wrt)``: shape ``f.shape + wrt.shape + wrt.shape``.

    By a list of variables it is the Hessian by their concatenation ``z`` (shape
    ``f.shape + (k, k)`` for ``k`` coordinates in all), cross terms included: its
    blocks are ``∂²f/∂x²``, ``∂²f/∂x∂y``, ….

    >>> import matdiff as md
    >>> H = md.hessian("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")})
    >>> H.shape
    ('n', 'n')
    >>> md.hessian("x**2 * y", ["x", "y"], shapes={"x": (), "y": ()}).shape
    (2, 2)
    """
    given = f
    f, known = function_of(f, shapes, syntax)
    target = given if isinstance(given, Derivative) else f
    if is_several(wrt):
        xs = list(resolve_several(target, wrt, shapes, known))
        return derive(derive(target, xs), xs)
    x = resolve_wrt(target, wrt, shapes, known)
    return derive(derive(target, x), x)
