"""The user-facing operations, each lowered onto the core nodes.

Semantics are NumPy's: ``*`` and ``/`` are element-wise with broadcasting (the
paper's scalar expansion), ``@`` is the matrix product, vectors are 1-D.

>>> import matdiff as md
>>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
>>> (A @ x).shape, (x @ A @ x).shape, md.outer(x, x).shape
(('n',), (), ('n', 'n'))
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError
from .core import (
    Const,
    Delta,
    Dim,
    Expr,
    Size,
    Var,
    check_dim,
    shape_str,
)
from .core import Einsum as Einsum  # re-exported for users of this module
from .core import Map as Map  # re-exported for users of this module
from .simplify import add as _add
from .simplify import apply, einsum, scale
from .written import note_absorbed, note_plain, note_spelling

__all__ = [
    "var", "scalar", "vector", "matrix", "const", "as_expr", "zeros_like", "ones",
    "add", "sub", "mul", "div", "power", "neg", "matmul", "transpose",
    "sum", "mean", "dot", "outer", "tr", "diag", "eye",
    "norm1", "norm2", "maximum", "minimum",
    "broadcast_to", "size_of", "elementwise", "matrix_function", "with_structures",
    "matrix_power",
    "stack", "concat", "getitem",
]  # and a builder per element-wise function of one argument (md.exp, ...) and per
#    matrix function (md.inv, ...), made below


# ====================================================================== leaves
def var(name: str, *dims: Dim, structure: str | None = None) -> Var:
    """A variable of any shape: ``var("x")`` scalar, ``var("X", "N", "n")`` matrix;
    ``structure`` marks a square matrix ``"symmetric"``, ``"spd"`` or ``"diagonal"``.

    >>> import matdiff as md
    >>> md.var("X", "N", 3).shape
    ('N', 3)
    >>> md.var("S", "n", "n", structure="spd").structure
    'spd'
    """
    if not isinstance(name, str) or not name or not (name[0].isalpha() or name[0] == "_") \
            or not all(c.isalnum() or c == "_" for c in name):
        raise ShapeError(f"a variable name must be an identifier, not {name!r}")
    return Var(name, tuple(check_dim(d) for d in dims), structure)


def scalar(name: str) -> Var:
    """A scalar variable.

    >>> import matdiff as md
    >>> md.scalar("b").shape
    ()
    """
    return var(name)


def vector(name: str, n: Dim = "n") -> Var:
    """A (column) vector variable of length ``n``.

    >>> import matdiff as md
    >>> md.vector("x", "n").shape
    ('n',)
    """
    return var(name, n)


def matrix(name: str, m: Dim = "m", n: Dim = "n", *, symmetric: bool = False,
           spd: bool = False, diagonal: bool = False) -> Var:
    """An ``m x n`` matrix variable; ``symmetric=True`` (``Sᵀ = S``), ``spd=True``
    (symmetric positive definite) or ``diagonal=True`` mark a square one (its
    gradients are then ``sym(G)`` or ``diag(G)``, MATH.md).

    >>> import matdiff as md
    >>> md.matrix("A", "m", "n").shape
    ('m', 'n')
    >>> S = md.matrix("S", "n", "n", symmetric=True)
    >>> S.T is S
    True
    """
    tags = [t for t, on in (("symmetric", symmetric), ("spd", spd),
                            ("diagonal", diagonal)) if on]
    if len(tags) > 1:
        raise ShapeError(f"{name}: give one structure, not {' and '.join(tags)}")
    return var(name, m, n, structure=tags[0] if tags else None)


def with_structures(e: Expr, structures: Mapping[str, str]) -> Expr:
    """``e`` with each variable named in ``structures`` given that structure, rebuilt
    bottom up through the simplifying constructors (so ``Sᵀ`` becomes ``S``): how the
    parser applies the structure tags of ``shapes=``."""
    if not structures:
        return e
    from .core import topo_order

    out: dict[int, Expr] = {}
    for node in topo_order(e):
        if isinstance(node, Var) and node.name in structures:
            out[id(node)] = Var(node.name, node.shape, structures[node.name])
            continue
        kids = [out[id(c)] for c in node.children]
        out[id(node)] = node if all(k is c for k, c in zip(kids, node.children)) \
            else node.rebuild(kids)
    return out[id(e)]


def const(value: float, shape: Sequence[Dim] = ()) -> Const:
    """A constant filled with ``value`` (``const(1, ("n",))`` is the vector of ones)."""
    # float("1.5") and True would pass, and a string shape "nm" would be the dims n, m
    if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(
            value, (numbers.Real, np.ndarray)) or np.ndim(value) != 0:
        raise TypeError(f"const takes a number, not {type(value).__name__}")
    if isinstance(shape, str):
        raise TypeError(f"const's shape is a tuple of dims, like ({shape!r},), "
                        "not a string")
    v = float(value)
    return Const(v, tuple(check_dim(d) for d in shape))


def ones(*dims: Dim) -> Const:
    """The tensor of ones of the given dims (the paper's ``1``)."""
    return const(1.0, dims)


def eye(n: Dim) -> Expr:
    """The ``n x n`` identity ``I``."""
    return Delta(check_dim(n))


#: the classes of results that stand for a shared node (their ``body``): the derive
#: layer registers its derivative results here (:mod:`matdiff.derive.result`), so
#: that no builder puts one inside an expression and the node set stays closed
RESULT_TYPES: set[type] = set()


def as_expr(x: Any) -> Expr:
    """An :class:`Expr` as is (a derivative result as the shared node it stands for,
    its ``body``); a Python or NumPy number as a scalar constant."""
    if isinstance(x, Expr):
        return x.body if type(x) in RESULT_TYPES else x  # type: ignore[attr-defined]
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("booleans are not expressions; use 0 or 1")
    if isinstance(x, numbers.Real):
        return Const(float(x))
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return Const(float(x))
    raise TypeError(
        f"cannot use {type(x).__name__} in an expression: use numbers or matdiff "
        "variables (values for variables are given when evaluating)"
    )


def zeros_like(e: Expr) -> Const:
    return Const(0.0, e.shape)


def size_of(dims: Sequence[Dim]) -> Expr:
    """The number of elements of a shape, as a (symbolic) scalar."""
    total: Expr = Const(1.0)
    for d in dims:
        total = mul(total, Const(float(d)) if isinstance(d, int) else Size(d))
    return total


# ====================================================================== broadcasting
def _broadcast_shape(a: Expr, b: Expr, op: str) -> tuple:
    sa, sb = a.shape, b.shape
    n = max(len(sa), len(sb))
    out = []
    for k in range(1, n + 1):
        da = sa[-k] if k <= len(sa) else None
        db = sb[-k] if k <= len(sb) else None
        if da is None:
            out.append(db)
        elif db is None or da == db:
            out.append(da)
        else:
            raise ShapeError(
                f"shapes {shape_str(sa)} and {shape_str(sb)} do not broadcast for '{op}': "
                f"dim {da} (left) against dim {db} (right)"
            )
    return tuple(reversed(out))


def broadcast_to(a: Expr, shape: Sequence[Dim]) -> Expr:
    """``a`` expanded along leading axes to ``shape`` (NumPy's trailing alignment)."""
    shape = tuple(shape)
    if a.shape == shape:
        return a
    r, ra = len(shape), len(a.shape)
    if ra > r or tuple(shape[r - ra:]) != a.shape:
        raise ShapeError(f"cannot broadcast shape {shape_str(a.shape)} to {shape_str(shape)}")
    if isinstance(a, Const):
        return Const(a.value, shape)
    # scalar expansion: a product with ones over the new axes
    return einsum([a, Const(1.0, shape[: r - ra])],
                  [tuple(range(r - ra, r)), tuple(range(r - ra))], tuple(range(r)))


# ====================================================================== arithmetic
def add(a: Any, b: Any) -> Expr:
    """``a + b`` with broadcasting."""
    a, b = as_expr(a), as_expr(b)
    shape = _broadcast_shape(a, b, "+")
    return _add([broadcast_to(a, shape), broadcast_to(b, shape)])


def neg(a: Any) -> Expr:
    """``-a``."""
    a = as_expr(a)
    # −(u · v) is the product −uᵀv, which absorbs the dot: written neg(dot(u, v))
    # (matdiff.expr.written), it prints as the negation of the dot, y − u · v
    return note_absorbed(scale(a, -1.0), "neg", (a,))


def sub(a: Any, b: Any) -> Expr:
    """``a - b`` with broadcasting."""
    a, b = as_expr(a), as_expr(b)
    shape = _broadcast_shape(a, b, "-")
    return _add([broadcast_to(a, shape), neg(broadcast_to(b, shape))])


def mul(a: Any, b: Any) -> Expr:
    """Element-wise ``a * b`` with broadcasting (``⊗`` in the paper)."""
    a, b = as_expr(a), as_expr(b)
    shape = _broadcast_shape(a, b, "*")
    r = len(shape)
    sa = tuple(range(r - len(a.shape), r))
    sb = tuple(range(r - len(b.shape), r))
    # 2·(u · v) is the product 2uᵀv, which absorbs the dot: written mul(2, dot(u, v))
    # (matdiff.expr.written), it prints as the scaling of the dot, 2(u · v)
    return note_absorbed(einsum([a, b], [sa, sb], tuple(range(r))), "mul", (a, b))


def div(a: Any, b: Any) -> Expr:
    """Element-wise ``a / b`` (``⊘`` in the paper), as ``a * b**-1``."""
    a, b = as_expr(a), as_expr(b)
    _broadcast_shape(a, b, "/")
    return mul(a, power(b, -1.0))


def power(a: Any, b: Any) -> Expr:
    """Element-wise ``a ** b``; a constant exponent keeps ``p aᵖ⁻¹`` as derivative."""
    a, b = as_expr(a), as_expr(b)
    shape = _broadcast_shape(a, b, "**")
    return apply("pow", (broadcast_to(a, shape), broadcast_to(b, shape)))


def _builder(fn: str, arity: int, doc: str = "",
             defaults: tuple[float, ...] = ()) -> Callable[..., Expr]:
    """The builder of an element-wise function: its arguments broadcast to one shape
    (NumPy's rule), then the node, simplified; trailing arguments left out take the
    definition's ``defaults`` (``leaky_relu(x)`` is ``leaky_relu(x, 0.01)``)."""
    f: Callable[..., Expr]
    if arity == 1:
        def unary(a: Any) -> Expr:
            # written by its own name: relu(z) stays relu(z) (matdiff.expr.written)
            return note_plain(apply(fn, (as_expr(a),)))

        f = unary
    else:
        least = arity - len(defaults)

        def f(*args: Any) -> Expr:
            if not least <= len(args) <= arity:
                counts = f"{arity}" if least == arity else f"{least} to {arity}"
                raise TypeError(f"{fn} takes {counts} arguments, got {len(args)}")
            args = args + defaults[len(args) - least:]
            es = [as_expr(a) for a in args]
            shape = es[0].shape
            for e in es[1:]:
                shape = _broadcast_shape(Const(0.0, shape), e, fn)
            return note_plain(apply(fn, tuple(broadcast_to(e, shape) for e in es)))

    f.__name__ = fn
    f.__qualname__ = fn
    f.__doc__ = (f"Element-wise ``{fn}``" + (f": {doc}" if doc else "")
                 + "; see :mod:`matdiff.expr.functions` for its rule.")
    return f


def elementwise(fn: str) -> Callable[..., Expr]:
    """The builder of the element-wise function ``fn``, from its definition: the
    builder it names (``max`` is :func:`maximum`, which knows ``max(0, z)`` is the
    ReLU), else one made from its arity.

    >>> import matdiff as md
    >>> md.elementwise("tanh")(md.vector("x", "n")).shape
    ('n',)
    """
    from .functions import FUNCTIONS

    row = FUNCTIONS[fn]
    if row.build:
        return globals()[row.build]
    return _builder(fn, row.arity, row.doc, row.defaults)




def _is_zero(e: Expr) -> bool:
    return isinstance(e, Const) and e.value == 0.0


def maximum(a: Any, b: Any) -> Expr:
    """Element-wise ``max(a, b)``; ``max(0, z)`` is the paper's ReLU (``relu'(0) = 0``).
    Elsewhere a tie splits the derivative evenly."""
    a, b = as_expr(a), as_expr(b)
    shape = _broadcast_shape(a, b, "max")
    if _is_zero(a) or _is_zero(b):
        # the ReLU's node, written max(0, z) (matdiff.expr.written): it prints so
        z = b if _is_zero(a) else a
        return note_spelling(apply("relu", (broadcast_to(z, shape),)), "maximum", (a, b))
    return apply("max", (broadcast_to(a, shape), broadcast_to(b, shape)))


def minimum(a: Any, b: Any) -> Expr:
    """Element-wise ``min(a, b)``; ``min(0, z) = -relu(-z)``."""
    a, b = as_expr(a), as_expr(b)
    shape = _broadcast_shape(a, b, "min")
    if _is_zero(a):
        return neg(apply("relu", (neg(broadcast_to(b, shape)),)))
    if _is_zero(b):
        return neg(apply("relu", (neg(broadcast_to(a, shape)),)))
    return apply("min", (broadcast_to(a, shape), broadcast_to(b, shape)))


# ====================================================================== linear algebra
def matmul(a: Any, b: Any) -> Expr:
    """``a @ b``: matrix-matrix, matrix-vector, vector-matrix or vector-vector (dot)."""
    a, b = as_expr(a), as_expr(b)
    ra, rb = len(a.shape), len(b.shape)
    if ra == 0 or rb == 0:
        side = "left" if ra == 0 else "right"
        raise ShapeError(
            f"'@' needs vectors or matrices, but the {side} operand is a scalar "
            f"(shapes {shape_str(a.shape)} and {shape_str(b.shape)}); use '*' to scale"
        )
    if ra > 2 or rb > 2:
        raise ShapeError(
            f"'@' takes vectors and matrices, got shapes {shape_str(a.shape)} and "
            f"{shape_str(b.shape)}"
        )
    if a.shape[-1] != b.shape[0]:
        raise ShapeError(
            f"'@' of shapes {shape_str(a.shape)} and {shape_str(b.shape)}: the left "
            f"operand's last dim {a.shape[-1]} differs from the right operand's first "
            f"dim {b.shape[0]}"
        )
    # letters: 0 = the contracted one
    sa: tuple[int, ...] = (1, 0) if ra == 2 else (0,)
    sb: tuple[int, ...] = (0, 2) if rb == 2 else (0,)
    outl = tuple(c for c in (sa[0] if ra == 2 else None, sb[1] if rb == 2 else None)
                 if c is not None)
    return einsum([a, b], [sa, sb], outl)


def transpose(a: Any) -> Expr:
    """Reverse the axes (``Aᵀ``); a scalar's or a vector's transpose is itself."""
    a = as_expr(a)
    r = len(a.shape)
    if r < 2:
        return a
    return einsum([a], [tuple(range(r))], tuple(reversed(range(r))))


def _axis(a: Expr, axis: Any, fn: str) -> int:
    if isinstance(axis, Expr):
        if isinstance(axis, Const) and not axis.shape and float(axis.value).is_integer():
            axis = int(axis.value)
        else:
            raise ShapeError(f"{fn}: the axis must be an integer constant")
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ShapeError(f"{fn}: the axis must be an integer, not {axis!r}")
    r = len(a.shape)
    if not -r <= axis < r:
        raise ShapeError(f"{fn}: axis {axis} is out of range for shape {shape_str(a.shape)}")
    return int(axis) % r


def sum(a: Any, axis: Any = None) -> Expr:  # noqa: A001 - the language's name
    """Sum of all elements, or along one ``axis``.

    >>> import matdiff as md
    >>> md.sum(md.matrix("X", "N", "n"), axis=0).shape
    ('n',)
    """
    a = as_expr(a)
    r = len(a.shape)
    # sum(mean(X, 1) * z) is one product, which absorbs the spelled operand: written
    # sum(a) (matdiff.expr.written), it prints as the sum of a's form
    if axis is None:
        return note_absorbed(einsum([a], [tuple(range(r))], ()), "sum", (a,))
    ax = _axis(a, axis, "sum")
    return note_absorbed(einsum([a], [tuple(range(r))], tuple(c for c in range(r) if c != ax)),
                         "sum", (a, ax))


def mean(a: Any, axis: Any = None) -> Expr:
    """Mean of all elements, or along one ``axis`` (divides by the symbolic size)."""
    a = as_expr(a)
    if axis is None:
        # the node of sum(a)/n, written mean(a) (matdiff.expr.written): it prints so
        return note_spelling(mul(sum(a), power(size_of(a.shape), -1.0)), "mean", (a,))
    ax = _axis(a, axis, "mean")
    # the node of sum(a, axis)/n, written mean(a, axis): it prints so
    return note_spelling(mul(sum(a, ax), power(size_of((a.shape[ax],)), -1.0)), "mean",
                         (a, ax))


def dot(a: Any, b: Any) -> Expr:
    """``a · b``: the dot product of vectors (the matrix product otherwise, as NumPy)."""
    a, b = as_expr(a), as_expr(b)
    if len(a.shape) == 0 or len(b.shape) == 0:
        return mul(a, b)
    if len(a.shape) == 1 and len(b.shape) == 1:
        # the node of aᵀb, written a · b (matdiff.expr.written): it prints so
        return note_spelling(matmul(a, b), "dot", (a, b))
    return matmul(a, b)


def outer(a: Any, b: Any) -> Expr:
    """``a bᵀ`` for vectors ``a`` and ``b``."""
    a, b = as_expr(a), as_expr(b)
    if len(a.shape) != 1 or len(b.shape) != 1:
        raise ShapeError(
            f"outer needs two vectors, got shapes {shape_str(a.shape)} and {shape_str(b.shape)}"
        )
    return einsum([a, b], [(0,), (1,)], (0, 1))


def _square(fn: str, a: Expr) -> None:
    if len(a.shape) != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"{fn} needs a square matrix, got shape {shape_str(a.shape)}")


def tr(a: Any) -> Expr:
    """The trace ``tr(A) = Σᵢ Aᵢᵢ`` of a square matrix."""
    a = as_expr(a)
    _square("tr", a)
    return einsum([a], [(0, 0)], ())


def diag(a: Any) -> Expr:
    """``diag(v)``: the diagonal matrix of a vector; of a square matrix, its diagonal."""
    a = as_expr(a)
    if len(a.shape) == 1:
        return einsum([a, Delta(a.shape[0])], [(0,), (0, 1)], (0, 1))
    if len(a.shape) == 2:
        _square("diag", a)
        return einsum([a], [(0, 0)], (0,))
    raise ShapeError(f"diag needs a vector or a square matrix, got shape {shape_str(a.shape)}")


def norm1(a: Any) -> Expr:
    """``Σ |aᵢ|``, the 1-norm of a vector (entry-wise for a matrix)."""
    return sum(apply("abs", (as_expr(a),)))


def norm2(a: Any) -> Expr:
    """``√(Σ aᵢ²)``, the Euclidean norm (Frobenius for a matrix)."""
    a = as_expr(a)
    return apply("sqrt", (sum(mul(a, a)),))




def matrix_power(a: Any, k: Any) -> Expr:
    """``Xᵏ`` for a square matrix ``X`` and a whole number ``k ≥ 0``: no node of its
    own, the product ``X·X·…·X`` built by repeated squaring (``X⁴ = (X²)²``; ``X⁰ = I``),
    so that ``d(Xᵏ) = Σ_{i<k} Xⁱ dX X^{k−1−i}`` comes from the product rule.

    >>> import matdiff as md
    >>> X = md.matrix("X", "n", "n")
    >>> print(md.matrix_power(X, 3))
    X³
    """
    a = as_expr(a)
    _square("matrix_power", a)
    if isinstance(k, Expr):
        if not (isinstance(k, Const) and not k.shape):
            raise ShapeError("matrix_power: the power must be a whole number ≥ 0 (a "
                             "number, not an expression), like matrix_power(X, 3)")
        k = k.value
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, float, np.integer,
                                                             np.floating)) \
            or not float(k).is_integer() or k < 0:
        raise ShapeError(f"matrix_power: the power must be a whole number ≥ 0, like "
                         f"matrix_power(X, 3), not {k!r}" + (
                             " (a negative power is a power of the inverse: "
                             "matrix_power(inv(X), k))" if isinstance(k, (int, float))
                             and float(k).is_integer() and k < 0 else ""))
    k = int(k)
    if k > 4096:
        raise ShapeError(f"matrix_power: the power {k} is too large (at most 4096)")
    result: Expr | None = None
    square = a
    while k:  # binary powering: X^k = Π over the bits of k of X^(2^bit)
        if k & 1:
            result = square if result is None else matmul(result, square)
        k >>= 1
        if k:
            square = matmul(square, square)
    return result if result is not None else Delta(a.shape[0])


def matrix_function(fn: str) -> Callable[[Any], Expr]:
    """The builder of the matrix function ``fn`` (``md.inv``, ``md.logdet``), from its
    definition: the shape rule checks the argument, the definition's identities
    simplify the call (``inv(inv X) = X``).

    >>> import matdiff as md
    >>> X = md.matrix("X", "n", "n")
    >>> md.inv(md.inv(X)) is X
    True
    """
    from .matrix_functions import MATRIX_FUNCTIONS, call

    spec = MATRIX_FUNCTIONS[fn]

    def f(*args: Any) -> Expr:
        return call(fn, tuple(as_expr(a) for a in args))

    f.__name__ = f.__qualname__ = fn
    f.__doc__ = (f"``{fn}``: {spec.doc}; see :mod:`matdiff.expr.matrix_functions` for "
                 "its rules.")
    return f


# ====================================================================== stacking
# The mathematics and the node kinds are in matdiff.expr.selection; the normal
# form in matdiff.expr.simplify.selection.
def _part(p: Any) -> Expr:
    """A part of a stack or a concatenation: a list or tuple is a stack itself."""
    if isinstance(p, (list, tuple)):
        return stack(p)
    return as_expr(p)


def _parts(parts: Any, fn: str) -> list[Expr]:
    if isinstance(parts, Expr) or not isinstance(parts, (list, tuple)):
        raise TypeError(f"{fn} takes a list of parts, like md.{fn}([a, b])")
    if not parts:
        raise ShapeError(f"{fn} needs at least one part")
    return [_part(p) for p in parts]


def _new_axis(axis: Any, rank: int, fn: str) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ShapeError(f"{fn}: the axis must be an integer, not {axis!r}")
    if not -rank <= axis < rank:
        raise ShapeError(f"{fn}: axis {axis} is out of range for a result of rank {rank}")
    return int(axis) % rank


def stack(parts: Sequence[Any], axis: int = 0) -> Expr:
    """``k`` parts of one shape along a new axis: ``stack([a, b])`` is the paper's
    vector ``[a, b]`` (text ``[a, b]``), of shape ``(k,) + a.shape``.

    >>> import matdiff as md
    >>> x, y = md.scalar("x"), md.scalar("y")
    >>> md.stack([3 * x**2 * y, 2 * x + y**8]).shape
    (2,)
    >>> md.stack([md.vector("u", "n"), md.vector("v", "n")], axis=1).shape
    ('n', 2)
    """
    from .simplify.selection import concat as _concat

    ps = _parts(parts, "stack")
    for k, p in enumerate(ps[1:], 2):
        if p.shape != ps[0].shape:
            raise ShapeError(f"stack: parts of shapes {shape_str(ps[0].shape)} (part 1) "
                             f"and {shape_str(p.shape)} (part {k}); stacked parts must "
                             f"have one shape")
    ax = _new_axis(axis, len(ps[0].shape) + 1, "stack")
    return _concat(ps, ax, [True] * len(ps))


def concat(parts: Sequence[Any], axis: int = 0) -> Expr:
    """Parts joined along an existing ``axis``; their dims there add (``concat([w,
    [b]])`` of ``w: (n,)`` is ``(n + 1,)``, the paper's ``ŵ = [wᵀ, b]``).  A list
    among the parts is a stack: ``[b]`` is the vector of the one entry ``b``.

    >>> import matdiff as md
    >>> w, b = md.vector("w", "n"), md.scalar("b")
    >>> print(md.concat([w, [b]]).shape[0])
    n + 1
    >>> X, E = md.matrix("X", "n", "n"), md.matrix("E", "n", "n")
    >>> md.concat([md.concat([X, E], axis=1), md.concat([0 * X, X], axis=1)]).shape
    (DimPoly('2·n'), DimPoly('2·n'))
    """
    from .simplify.selection import concat as _concat

    ps = _parts(parts, "concat")
    for k, p in enumerate(ps, 1):
        if not p.shape:
            raise ShapeError(f"concat: part {k} is a scalar, which has no axis to join "
                             f"along; write it as [b] (a vector of one entry) or use stack")
    ax = _new_axis(axis, len(ps[0].shape), "concat")
    first = ps[0]
    for k, p in enumerate(ps[1:], 2):
        if len(p.shape) != len(first.shape) or \
                p.shape[:ax] + p.shape[ax + 1:] != first.shape[:ax] + first.shape[ax + 1:]:
            raise ShapeError(f"concat: parts of shapes {shape_str(first.shape)} (part 1) "
                             f"and {shape_str(p.shape)} (part {k}) cannot be joined along "
                             f"axis {ax}: their other dims differ")
    return _concat(ps, ax, [False] * len(ps))


def getitem(x: Any, key: Any) -> Expr:
    """NumPy's basic indexing: ``x[i]``, ``x[-1]``, ``x[i:j:k]``, ``X[i, :]``,
    ``X[:, j]``, ``X[1, 2]``.  An index removes its axis, a slice keeps it with the
    slice's length in dims (``x[1:]`` of ``(n,)`` is ``(n - 1,)``).  An index beyond an
    int dim is a ShapeError at once; beyond a named dim, an EvaluationError when
    evaluating (with the index and the size).

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", 3, 4)
    >>> x[0].shape, str(x[1:].shape[0]), A[:, 2].shape, A[1, 2].shape
    ((), 'n - 1', (3,), ())
    """
    from .selection import index_key, slice_key
    from .simplify.selection import take

    x = as_expr(x)
    keys = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis or k is None for k in keys):
        raise ShapeError("indexing takes ints and slices, one per axis (no ... or None)")
    if len(keys) > len(x.shape):
        raise ShapeError(f"too many indices: {len(keys)} for an expression of shape "
                         f"{shape_str(x.shape)}")
    resolved = []
    for ax, k in enumerate(keys):
        where = f" (axis {ax} of shape {shape_str(x.shape)})"
        if isinstance(k, slice):
            resolved.append(slice_key(k, x.shape[ax], where))
        else:
            resolved.append(index_key(k, x.shape[ax], where))
    out = x
    for ax in reversed(range(len(resolved))):
        out = take(out, ax, resolved[ax])
    return out


def _define_builders() -> None:
    """One builder per built-in element-wise function (that names no builder of its
    own, as ``max`` names :func:`maximum`) and per matrix function, named as the
    function (``md.exp``, ``md.relu``, ``md.leaky_relu``, ``md.inv``), made from the
    definitions."""
    from .functions import FUNCTIONS
    from .matrix_functions import MATRIX_FUNCTIONS

    for name, row in FUNCTIONS.items():
        if row.builtin and not row.build:
            globals()[name] = _builder(name, row.arity, row.doc, row.defaults)
            __all__.append(name)
    for name, spec in MATRIX_FUNCTIONS.items():
        if spec.public:
            globals()[name] = matrix_function(name)
            __all__.append(name)


_define_builders()

if TYPE_CHECKING:
    # a type checker reads no function made at run time: the builders made above from
    # the tables (exp, relu, inv, …) are declared, generated from the same tables, in
    # builders_typed (tests/test_typing.py checks that it is current)
    from .builders_typed import *  # noqa: F403
