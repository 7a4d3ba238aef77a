"""The matrix functions: one definition per function, of the one node :class:`Call`.

A :class:`MatrixFunction` is everything matdiff knows of a function of a whole
matrix or vector (``inv``, ``det``, ``logdet``) or of a vector's entries together
(``logsumexp``, ``softmax``, ``log_softmax`` over the last axis): its shape rule, its adjoint rule
(the vector-Jacobian product of reverse mode), its NumPy, JAX and PyTorch
implementations, the identities it simplifies by when built (``inv(inv X) = X``),
its Unicode, LaTeX and matrixcalculus.org spellings, the matrices it is defined on
(for random test points) and the wording of its rule in an explanation.  The node
:class:`Call`, the builders (``md.inv``), the parser's tables, shape inference, the
backends, the printers and the meta-test read the definitions; none of them names a
function (an optimisation about one function, such as compiling ``A⁻¹b`` as a solve,
is the exception).

A shape rule is written once for both of its users: it takes a :class:`ShapeCheck`
and the argument's dims and returns the result's dims.  The builders check concrete
dims (:class:`ConcreteCheck`, equality); shape inference checks unification classes
with the positions of the text (its own ``ShapeCheck``).

>>> import matdiff as md
>>> X = md.matrix("X", "n", "n")
>>> md.inv(X).fn, md.inv(X).shape
('inv', ('n', 'n'))
>>> MATRIX_FUNCTIONS["logdet"].shape_of(X.shape)
()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import TypeIs

    from .core import Call

import numpy as np

from ..errors import ShapeError
from . import analytic
from .core import Const, Delta, Dim, Expr, Shape, shape_str
from .dims import dim_mul
from .functions import as_float, implementation

__all__ = ["MatrixFunction", "MATRIX_FUNCTIONS", "ShapeCheck", "ConcreteCheck", "call",
           "stable_logsumexp", "row_max", "row_sum", "short_rows", "rows_by_gemv",
           "vec_trailing"]

#: an implementation: a callable, or the dotted path of one ("torch.linalg.inv"),
#: imported on first use so that the definition costs nothing where it is missing
Impl = Callable[..., Any] | str | None


class ShapeCheck(Protocol):
    """What a shape rule may ask of its argument's dims (a tuple of dims).

    ``square``: the argument is a square matrix (its two dims are one);
    ``at_least``: the argument has at least ``rank`` axes; ``rank``: argument ``arg``
    has exactly ``rank`` axes; ``equal``: two dims (of the arguments ``args``) are one,
    ``what`` saying which; ``product``: the dim ``a·b`` (``kron``'s ``m·p``).  A failed
    check raises (a :class:`~matdiff.errors.ShapeError` with the function's name and
    the shape).
    """

    def square(self, dims: tuple[Any, ...]) -> None: ...

    def at_least(self, dims: tuple[Any, ...], rank: int) -> None: ...

    def rank(self, dims: tuple[Any, ...], rank: int, arg: int = 0) -> None: ...

    def equal(self, a: Any, b: Any, what: str, args: tuple[int, int] = (0, 1)) -> None: ...

    def product(self, a: Any, b: Any) -> Any: ...


class ConcreteCheck:
    """:class:`ShapeCheck` on the dims of built expressions (names and ints, equal or
    not), as the builders use it."""

    def __init__(self, fn: str) -> None:
        self.fn = fn

    def square(self, dims: Shape) -> None:
        if len(dims) != 2 or dims[0] != dims[1]:
            raise ShapeError(f"{self.fn} needs a square matrix, got shape {shape_str(dims)}")

    def at_least(self, dims: Shape, rank: int) -> None:
        if len(dims) < rank:
            raise ShapeError(f"{self.fn} needs a vector or a matrix, got a scalar")

    def rank(self, dims: Shape, rank: int, arg: int = 0) -> None:
        if len(dims) != rank:
            raise ShapeError(f"{self.fn} needs {_RANKS[rank]}, got shape {shape_str(dims)}")

    def equal(self, a: Any, b: Any, what: str, args: tuple[int, int] = (0, 1)) -> None:
        if a != b:
            raise ShapeError(f"{self.fn}: {what} differ ({a} and {b})")

    def product(self, a: Any, b: Any) -> Any:
        return dim_mul(a, b)


_RANKS = {0: "a scalar", 1: "a vector", 2: "a matrix"}


@dataclass(frozen=True)
class MatrixFunction:
    """One matrix function of the language, of ``arity`` arguments (and the
    parameters ``params`` names, fixed when the call is built: an axis, a dim)."""

    name: str
    #: ``shape(check, dims, ..., *params) -> dims``: the result's dims from the
    #: arguments' (one tuple of dims each), then the call's parameters
    shape: Callable[..., Sequence[Any]]
    #: ``vjp(node, adj, nf) -> Expr``: the adjoint of the argument, from the adjoint
    #: ``adj`` of ``node`` (shape ``F + node.shape``, ``F`` of ``nf`` axes); for
    #: several arguments, one such rule per argument (a tuple)
    vjp: Callable[[Call, Expr, int], Expr] | tuple[Callable[[Call, Expr, int], Expr], ...]
    #: the implementations take the arrays, then the parameters (a dim as its size)
    numpy: Callable[..., Any]
    jax: Impl = None
    torch: Impl = None
    #: an identity that makes the call something else when built (``inv(inv X) = X``),
    #: or ``None`` to build the node
    simplify: Callable[..., Expr | None] | None = None
    #: the Unicode and LaTeX spellings, ``{0}`` the argument (``{1}`` the second);
    #: ``postfix`` prints the argument as the base of a superscript (``X⁻¹``),
    #: ``product`` as a product (``log det X`` binds like a product), ``infix`` as an
    #: operator between its arguments (``A ⊗ B``, binding as ``⊙`` does), ``apply``
    #: as an operator applied to the second argument (``A⁻¹b``, binding as a product)
    unicode: str = "{name}({0})"
    latex: str = r"\operatorname{{{name}}}({0})"
    prec: str = "atom"
    #: the spellings of the transposed result, where they are shorter (``X⁻ᵀ``); of a
    #: function of several arguments, its spelling with the first one transposed
    #: (``A⁻ᵀb``)
    unicode_T: str = ""
    latex_T: str = ""
    #: the extra characters the spelling adds (the matrix-form search's cost)
    width: int = 0
    #: matrixcalculus.org's name for it, or "" where that language lacks it
    mc: str = ""
    #: a variable passed to it prefers this rank in shape inference (0: no preference)
    arg_rank: int = 0
    #: where its value and derivatives are defined, for random test points:
    #: "invertible" (near the identity), "positive" (det > 0, near the identity), "any"
    domain: str | tuple[str, ...] = ""
    #: the rank of the node among the kinds when operands are sorted
    sort: int = 6
    #: a line for the parser's list of functions
    doc: str = ""
    #: the rule as an explanation words it, per language
    rule: Mapping[str, str] = field(default_factory=dict)
    #: ``differential(X, dX) -> Expr``: the differential ``dF`` of the call at ``X``
    #: along ``dX``, an expression linear in ``dX`` (``d(X⁻¹) = −X⁻¹ dX X⁻¹``); the
    #: explanations print it (Unicode and LaTeX, by the printer) and the meta-test
    #: checks it against central differences along ``dX``
    differential: Callable[[Expr, Expr], Expr] | None = None
    #: it maps symmetric matrices to a symmetric one (``S⁻¹``, ``expm(S)``,
    #: ``L_exp(S, E)`` of symmetric ``S`` and ``E``): ``(f(S))ᵀ = f(S)`` for a
    #: symmetric ``S`` (the simplifier's ``orient_symmetric``)
    symmetric: bool = False
    #: the number of arguments (each an expression)
    arity: int = 1
    #: the names of the call's parameters (not expressions: an axis, a dim)
    params: tuple[str, ...] = ()
    #: the argument shapes the meta-test tries, one tuple of shapes per try (empty:
    #: from ``arg_rank``, a square matrix or a vector and a matrix)
    examples: tuple[tuple[Shape, ...], ...] = ()
    #: the infix operator the unicode syntax reads as this function (``⊗``: kron)
    operator: str = ""
    #: False for the definitions that only the rules of others build (the reshapes
    #: of ``vec`` and ``kron``'s adjoints): no builder, no name in the parser
    public: bool = True

    def shape_of(self, *dims: Sequence[Dim], params: tuple[Any, ...] = ()) -> Shape:
        """The result's dims for arguments of ``dims`` (a ShapeError if it has none)."""
        return tuple(self.shape(ConcreteCheck(self.name), *map(tuple, dims), *params))

    def rules(self) -> tuple[Callable[[Call, Expr, int], Expr], ...]:
        """One adjoint rule per argument."""
        return self.vjp if isinstance(self.vjp, tuple) else (self.vjp,)

    def domains(self) -> tuple[str, ...]:
        """One test domain per argument (``domain`` is one for all, or a tuple)."""
        d = self.domain
        return tuple(d) if isinstance(d, tuple) else (d,) * self.arity

    def impl(self, backend: str) -> Callable[..., Any] | None:
        """The implementation for ``backend``, imported if given by path."""
        return implementation(self, backend)

    def spell(self, fmt: str, arg: str | Sequence[str], transposed: bool = False) -> str:
        """The call printed in format ``fmt`` ("unicode", "latex") around the printed
        argument ``arg`` (or arguments, a sequence); ``transposed``: the transposed
        result's spelling, or "" where the function has none of its own (``X⁻ᵀ``).

        >>> print(MATRIX_FUNCTIONS["inv"].spell("latex", "X", transposed=True))
        X^{-\\top}
        """
        template = getattr(self, fmt + ("_T" if transposed else ""))
        args = (arg,) if isinstance(arg, str) else tuple(arg)
        args += args[-1:] * (self.arity - len(args))  # one text for all: a head's search
        return template.format(*args, name=self.name) if template else ""


def _b():
    from . import builders

    return builders


def _s():
    from . import simplify

    return simplify


def _is(e: Expr, name: str) -> TypeIs[Call]:
    return getattr(e, "kind", "") == "call" and getattr(e, "fn", None) == name


# ------------------------------------------------------------------ shape rules
def _square_same(check: ShapeCheck, dims: tuple) -> tuple:
    check.square(dims)
    return dims


def _square_scalar(check: ShapeCheck, dims: tuple) -> tuple:
    check.square(dims)
    return ()


def _last_axis_reduced(check: ShapeCheck, dims: tuple) -> tuple:
    check.at_least(dims, 1)
    return dims[:-1]


def _last_axis_kept(check: ShapeCheck, dims: tuple) -> tuple:
    check.at_least(dims, 1)
    return dims


# ------------------------------------------------------------------ NumPy values
def _np_det(a: np.ndarray) -> np.floating:
    return np.linalg.det(as_float(a))[()]     # in the input's precision


def _np_logdet(a: np.ndarray) -> np.floating:
    # log det X = log |det X| where det X > 0 (slogdet: no overflow); nan elsewhere
    sign, logabs = np.linalg.slogdet(as_float(a))
    return logabs if sign > 0 else logabs.dtype.type(np.nan)


#: a last axis at most this long is short: its row maxima are taken down the columns
SHORT_ROW = 32
#: arrays of fewer entries than this reduce the plain way (the other costs two calls)
SMALL_REDUCE = 1024


def row_max(a: np.ndarray) -> np.ndarray:
    """The largest entry of each row (over the last axis, kept as an axis of one);
    ``-inf`` for an empty row.

    NumPy runs a reduction over the last axis as one inner loop a row: over short
    rows of a C-ordered array that loop costs more than the arithmetic (measured,
    one thread: 19.6 µs at 391 × 10, 202 µs at 4096 × 10).  There the maxima are
    taken down the columns of the transposed copy, each a vectorised pass over
    all rows (5.8 µs and 46 µs, the copy included); the result is the same."""
    if short_rows(a):
        cols = np.ascontiguousarray(a.reshape(-1, a.shape[-1]).T)
        return np.maximum.reduce(cols, axis=0).reshape(a.shape[:-1] + (1,))
    return np.maximum.reduce(a, axis=-1, keepdims=True, initial=-np.inf)


def short_rows(a: np.ndarray) -> bool:
    """Whether :func:`row_max` takes ``a``'s maxima down its columns: a C-ordered
    array of two axes or more, of :data:`SMALL_REDUCE` entries or more, whose rows
    are short (1 to :data:`SHORT_ROW` entries)."""
    return a.ndim >= 2 and 1 <= a.shape[-1] <= SHORT_ROW and a.size >= SMALL_REDUCE \
        and a.flags.c_contiguous


def row_sum(a: np.ndarray) -> np.ndarray:
    """Σⱼ aᵢⱼ over the last axis, as the product with a vector of ones (a GEMV) where
    :func:`rows_by_gemv` says: NumPy's reduction runs one loop a row (11 µs at
    391 × 10, 100 µs at 4096 × 10, 251 µs at 4096 × 128, against 3.6, 22 and 179 µs
    for the product; measured, one thread)."""
    if rows_by_gemv(a):
        return a @ np.ones(a.shape[-1], a.dtype)
    return np.add.reduce(a, axis=-1)


#: NumPy sums a contiguous row longer than this pairwise (its error grows as log n, a
#: GEMV's as n): such rows keep NumPy's sum; up to it NumPy's is eight running sums
PAIRWISE = 128


def rows_by_gemv(a: np.ndarray) -> bool:
    """Whether :func:`row_sum` sums ``a``'s rows as a product with ones: a float array
    of two axes or more and :data:`SMALL_REDUCE` entries or more, unless its rows are
    contiguous and longer than :data:`PAIRWISE`."""
    return a.ndim >= 2 and a.dtype.kind == "f" and a.size >= SMALL_REDUCE and (
        a.strides[-1] != a.itemsize or a.shape[-1] <= PAIRWISE)


def _shift(a: np.ndarray) -> np.ndarray:
    # the row's largest entry, 0 where that is not finite (an empty row's is -inf)
    m = row_max(a)
    return m if np.isfinite(m).all() else np.where(np.isfinite(m), m, 0.0)


def stable_logsumexp(a: np.ndarray) -> np.ndarray:
    """``log Σⱼ exp(aⱼ)`` over the last axis as ``m + log Σⱼ exp(aⱼ − m)``, ``m`` the
    row's largest entry, so that no exp overflows; an empty row gives ``-inf``."""
    a = np.asarray(a)
    m = _shift(a)
    return np.log(row_sum(np.exp(a - m))) + m[..., 0]


def _np_softmax(a: np.ndarray) -> np.ndarray:
    # softmax(a) = exp(a − m) / Σ exp(a − m): the same shift, no overflow
    a = np.asarray(a)
    e = np.exp(a - _shift(a))
    e /= row_sum(e)[..., None]
    return e


def _np_log_softmax(a: np.ndarray) -> np.ndarray:
    # log softmax(a) = a − logsumexp(a), the stable logsumexp: no exp overflows and,
    # unlike log(softmax(a)), no tiny probability underflows to log 0
    a = as_float(a)
    return a - stable_logsumexp(a)[..., None]


def _jax_log_softmax(a: Any) -> Any:
    import jax

    return jax.nn.log_softmax(a, axis=-1)


def _torch_log_softmax(a: Any) -> Any:
    import torch

    return torch.log_softmax(a, dim=-1)


def _jax_logdet(a: Any) -> Any:
    import jax.numpy as jnp

    sign, logabs = jnp.linalg.slogdet(a)
    return jnp.where(sign > 0, logabs, jnp.nan)


def _torch_logdet(a: Any) -> Any:
    import torch

    sign, logabs = torch.linalg.slogdet(a)
    return torch.where(sign > 0, logabs, torch.full_like(logabs, float("nan")))


def _jax_logsumexp(a: Any) -> Any:
    import jax.scipy.special as jsp

    return jsp.logsumexp(a, axis=-1)


def _jax_softmax(a: Any) -> Any:
    import jax

    return jax.nn.softmax(a, axis=-1)


def _torch_logsumexp(a: Any) -> Any:
    import torch

    return torch.logsumexp(a, dim=-1)


def _torch_softmax(a: Any) -> Any:
    import torch

    return torch.softmax(a, dim=-1)


# ------------------------------------------------------------------ adjoint rules
def _inv_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # d(X⁻¹) = −X⁻¹ dX X⁻¹  (Matrix Cookbook eq. 59):  ∂Uᵢⱼ/∂Xₖₗ = −Uᵢₖ Uₗⱼ, U = X⁻¹.
    phi = tuple(range(4, 4 + nf))
    i, j, k, l_ = 0, 1, 2, 3
    return _s().einsum([Const(-1.0), adj, node, node],
                       [(), phi + (i, j), (i, k), (l_, j)], phi + (k, l_))


def _det_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # d det X = det X · tr(X⁻¹ dX)  (Matrix Cookbook eq. 49):  ∂det/∂X = det(X) X⁻ᵀ.
    phi = tuple(range(2, 2 + nf))
    X = node.children[0]
    return _s().einsum([adj, node, _b().inv(X)], [phi, (), (1, 0)], phi + (0, 1))


def _logdet_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # d log det X = tr(X⁻¹ dX)  (Matrix Cookbook eq. 51):  ∂/∂X = X⁻ᵀ.
    phi = tuple(range(2, 2 + nf))
    X = node.children[0]
    return _s().einsum([adj, _b().inv(X)], [phi, (1, 0)], phi + (0, 1))


def _logsumexp_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # ∂ logsumexp(x)/∂xⱼ = softmax(x)ⱼ (row by row over the leading axes β).
    x = node.children[0]
    r = len(x.shape)
    beta, j = tuple(range(r - 1)), r - 1
    phi = tuple(range(r, r + nf))
    return _s().einsum([adj, _b().softmax(x)], [phi + beta, beta + (j,)], phi + beta + (j,))


def _softmax_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # ∂sᵢ/∂xⱼ = sᵢ(δᵢⱼ − sⱼ):  adj(x)ⱼ = adjⱼ sⱼ − (Σᵢ adjᵢ sᵢ) sⱼ.
    r = len(node.shape)
    beta, i, j = tuple(range(r - 1)), r - 1, r
    phi = tuple(range(r + 1, r + 1 + nf))
    s = node
    first = _s().einsum([adj, s], [phi + beta + (j,), beta + (j,)], phi + beta + (j,))
    second = _s().einsum([Const(-1.0), adj, s, s],
                         [(), phi + beta + (i,), beta + (i,), beta + (j,)],
                         phi + beta + (j,))
    return _s().add([first, second])


def _log_softmax_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # log_softmax(x)ᵢ = xᵢ − logsumexp(x):  ∂/∂xⱼ = δᵢⱼ − sⱼ (s = softmax(x)), so
    # adj(x)ⱼ = adjⱼ − (Σᵢ adjᵢ) sⱼ (row by row over the leading axes β).
    x = node.children[0]
    r = len(x.shape)
    beta, i, j = tuple(range(r - 1)), r - 1, r
    phi = tuple(range(r + 1, r + 1 + nf))
    second = _s().einsum([Const(-1.0), adj, _b().softmax(x)],
                         [(), phi + beta + (i,), beta + (j,)], phi + beta + (j,))
    return _s().add([adj, second])


# ------------------------------------------------------------------ differentials
# Each is dF at X along dX, over the leading (batch) axes β of a function of the last
# axis; reverse mode's adjoint above is its transpose.
def _inv_differential(X: Expr, dX: Expr) -> Expr:
    # d(X⁻¹) = −X⁻¹ dX X⁻¹  (Matrix Cookbook eq. 59)
    U = _b().inv(X)
    return _s().einsum([Const(-1.0), U, dX, U], [(), (0, 1), (1, 2), (2, 3)], (0, 3))


def _det_differential(X: Expr, dX: Expr) -> Expr:
    # d det X = det X · tr(X⁻¹ dX)  (Jacobi's formula, Matrix Cookbook eq. 46)
    return _s().einsum([_b().det(X), _b().inv(X), dX], [(), (0, 1), (1, 0)], ())


def _logdet_differential(X: Expr, dX: Expr) -> Expr:
    # d log det X = tr(X⁻¹ dX)  (Matrix Cookbook eq. 51)
    return _s().einsum([_b().inv(X), dX], [(0, 1), (1, 0)], ())


def _logsumexp_differential(x: Expr, dx: Expr) -> Expr:
    # d logsumexp(x) = softmax(x)ᵀ dx, row by row
    r = len(x.shape)
    beta, j = tuple(range(r - 1)), r - 1
    return _s().einsum([_b().softmax(x), dx], [beta + (j,), beta + (j,)], beta)


def _softmax_differential(x: Expr, dx: Expr) -> Expr:
    # s = softmax(x):  ds = s ⊙ dx − s (sᵀdx)  (ds = (diag(s) − ssᵀ) dx), row by row
    r = len(x.shape)
    beta, i, j = tuple(range(r - 1)), r - 1, r
    s = _b().softmax(x)
    first = _s().einsum([s, dx], [beta + (i,), beta + (i,)], beta + (i,))
    second = _s().einsum([Const(-1.0), s, s, dx],
                         [(), beta + (i,), beta + (j,), beta + (j,)], beta + (i,))
    return _s().add([first, second])


def _log_softmax_differential(x: Expr, dx: Expr) -> Expr:
    # d log_softmax(x) = dx − 1 (softmax(x)ᵀdx), row by row
    r = len(x.shape)
    beta, i, j = tuple(range(r - 1)), r - 1, r
    ones = _b().ones(x.shape[-1])
    second = _s().einsum([Const(-1.0), ones, _b().softmax(x), dx],
                         [(), (i,), beta + (j,), beta + (j,)], beta + (i,))
    return _s().add([dx, second])


# ------------------------------------------------------------------ identities
def _inv_simplify(X: Expr) -> Expr | None:
    if _is(X, "inv"):  # (X⁻¹)⁻¹ = X
        return X.children[0]
    if isinstance(X, Delta):  # I⁻¹ = I
        return X
    return None


def _det_simplify(X: Expr) -> Expr | None:
    if _is(X, "inv"):  # det(X⁻¹) = 1/det X
        return _b().power(_b().det(X.children[0]), -1.0)
    return None


def _logdet_simplify(X: Expr) -> Expr | None:
    if _is(X, "inv"):  # log det(X⁻¹) = −log det X
        return _b().neg(_b().logdet(X.children[0]))
    return None


# ================================================================== products, reshapes
# solve(A, b) = A⁻¹b, kron(A, B) = A ⊗ B, vec(X) (column-major, Magnus & Neudecker),
# and the two reshapes their adjoints need (split_axis, merge_axes: never public).
def _solve_shape(check: ShapeCheck, a: tuple, b: tuple) -> tuple:
    check.square(a)
    check.at_least(b, 1)
    check.equal(a[1], b[0], "the matrix's columns and the right-hand side's rows",
                (0, 1))
    return b


def _kron_shape(check: ShapeCheck, a: tuple, b: tuple) -> tuple:
    check.rank(a, 2, 0)
    check.rank(b, 2, 1)
    return (check.product(a[0], b[0]), check.product(a[1], b[1]))


def _vec_shape(check: ShapeCheck, x: tuple) -> tuple:
    check.rank(x, 2)
    return (check.product(x[0], x[1]),)


def _split_shape(check: ShapeCheck, x: tuple, axis: int, a: Any, b: Any) -> tuple:
    check.equal(x[axis], dim_mul(a, b), "the split axis and its parts", (0, 0))
    return x[:axis] + (a, b) + x[axis + 1:]


def _merge_shape(check: ShapeCheck, x: tuple, axis: int) -> tuple:
    return x[:axis] + (dim_mul(x[axis], x[axis + 1]),) + x[axis + 2:]


def _np_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # a solve (LU), never an inverse; b of any rank ≥ 1 is solved column by column
    b = as_float(b)
    return np.linalg.solve(a, b.reshape(b.shape[0], -1)).reshape(b.shape)


def _jax_solve(a: Any, b: Any) -> Any:
    import jax.numpy as jnp

    return jnp.linalg.solve(a, b.reshape(b.shape[0], -1)).reshape(b.shape)


def _torch_solve(a: Any, b: Any) -> Any:
    import torch

    return torch.linalg.solve(a, b.reshape(b.shape[0], -1)).reshape(b.shape)


def _vec_of(x: Any) -> Any:
    # vec(X)[i + m·j] = X[i, j]: the columns stacked (the transpose, read row-major)
    t = x.swapaxes(-1, -2) if hasattr(x, "swapaxes") else x.transpose(-1, -2)
    return t.reshape(tuple(t.shape[:-2]) + (-1,))


def _split_of(x: Any, axis: int, a: int, b: int) -> Any:
    # axis ``axis`` of size a·b read row-major as (a, b)
    return x.reshape(tuple(x.shape[:axis]) + (a, b) + tuple(x.shape[axis + 1:]))


def _merge_of(x: Any, axis: int) -> Any:
    return x.reshape(tuple(x.shape[:axis]) + (-1,) + tuple(x.shape[axis + 2:]))


def _np_kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.kron(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def _torch_kron(a: Any, b: Any) -> Any:
    import torch

    # torch.kron views its inputs: a transposed (non-contiguous) one is copied first
    return torch.kron(a.contiguous(), b.contiguous())


def _solve_adjoint_rhs(node: Expr, adj: Expr, nf: int) -> Expr:
    # Z = A⁻ᵀ G, as a solve with Aᵀ: the right-hand side's first axis leads, the
    # function's axes φ go last, then back in front (adj(b) = Z).
    A = node.children[0]
    r = len(node.shape)
    phi, rest = tuple(range(nf)), tuple(range(nf, nf + r))
    moved = _s().einsum([adj], [phi + rest], rest + phi)
    Z = call("solve", (_b().transpose(A), moved))
    return _s().einsum([Z], [rest + phi], phi + rest)


def _solve_vjp_a(node: Call, adj: Expr, nf: int) -> Expr:
    # x = A⁻¹b, dx = A⁻¹(db − dA x): adj(A)[φ, i, j] = −Σ Z[φ, i, ρ] x[j, ρ], Z = A⁻ᵀG
    r = len(node.shape)
    i, j = 0, 1
    rho = tuple(range(2, 1 + r))
    phi = tuple(range(1 + r, 1 + r + nf))
    Z = _solve_adjoint_rhs(node, adj, nf)
    return _s().einsum([Const(-1.0), Z, node], [(), phi + (i,) + rho, (j,) + rho],
                       phi + (i, j))


def _solve_vjp_b(node: Call, adj: Expr, nf: int) -> Expr:
    # dx = A⁻¹ db: adj(b) = A⁻ᵀ G
    return _solve_adjoint_rhs(node, adj, nf)


def _kron_parts(node: Expr, adj: Expr, nf: int) -> Expr:
    # (A ⊗ B)[i·p + k, j·q + l] = A[i, j] B[k, l]: the adjoint's two last axes split
    # into (i, k) and (j, l), shape F + (m, p, n, q)
    (m, n), (p, q) = node.children[0].shape, node.children[1].shape
    cols = call("split_axis", (adj,), (nf + 1, n, q))
    return call("split_axis", (cols,), (nf, m, p))


def _kron_vjp_a(node: Call, adj: Expr, nf: int) -> Expr:
    # adj(A)[φ, i, j] = Σ_kl G[φ, (i,k), (j,l)] B[k, l]
    phi = tuple(range(4, 4 + nf))
    i, k, j, l_ = 0, 1, 2, 3
    return _s().einsum([_kron_parts(node, adj, nf), node.children[1]],
                       [phi + (i, k, j, l_), (k, l_)], phi + (i, j))


def _kron_vjp_b(node: Call, adj: Expr, nf: int) -> Expr:
    # adj(B)[φ, k, l] = Σ_ij G[φ, (i,k), (j,l)] A[i, j]
    phi = tuple(range(4, 4 + nf))
    i, k, j, l_ = 0, 1, 2, 3
    return _s().einsum([_kron_parts(node, adj, nf), node.children[0]],
                       [phi + (i, k, j, l_), (i, j)], phi + (k, l_))


def _vec_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # vec is linear, vec(X)[i + m·j] = X[i, j]: its adjoint splits the last axis into
    # (j, i) (column-major) and transposes: adj(X)[φ, i, j] = G[φ, i + m·j]
    m, n = node.children[0].shape
    parts = call("split_axis", (adj,), (nf, n, m))
    phi = tuple(range(2, 2 + nf))
    return _s().einsum([parts], [phi + (1, 0)], phi + (0, 1))


def _split_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # a reshape's adjoint is the inverse reshape
    return call("merge_axes", (adj,), (nf + node.params[0],))


def _merge_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    x = node.children[0]
    axis = node.params[0]
    return call("split_axis", (adj,), (nf + axis, x.shape[axis], x.shape[axis + 1]))


def _scaled(x: Expr) -> tuple[float, Expr] | None:
    """``(c, y)`` where ``x`` is ``c·y`` for a number ``c`` (a reshape is linear)."""
    if getattr(x, "kind", "") != "einsum" or len(x.children) != 2:
        return None
    (c, y), (_, sy) = x.children, x.specs  # type: ignore[attr-defined]
    if isinstance(c, Const) and not c.shape and sy == x.out:  # type: ignore[attr-defined]
        return c.value, y
    return None


def _scalar_factors(x: Expr) -> tuple[list[Expr], list[tuple], Expr] | None:
    """``(factors, their index strings, y)`` where ``x`` is one tensor ``y`` (indexed
    as the product's output) times factors that carry none of the output's indices,
    read as it is: scalars (``2cos(s)·vec(A)``) and contracted factors
    (``sum(v²)·vec(A)``, the Σⱼ vⱼ² of ``vⱼ vⱼ yᵢ``).  Those factors make one scalar,
    and a reshape is linear, so it passes them."""
    if getattr(x, "kind", "") != "einsum" or len(x.children) < 2:
        return None
    out = x.out  # type: ignore[attr-defined]
    factors: list[Expr] = []
    specs: list[tuple] = []
    tensor: Expr | None = None
    for c, sc in zip(x.children, x.specs):  # type: ignore[attr-defined]
        if tensor is None and c.shape and tuple(sc) == tuple(out):
            tensor = c
        elif not set(sc) & set(out):
            factors.append(c)
            specs.append(tuple(sc))
        else:
            return None
    return (factors, specs, tensor) if tensor is not None and factors else None


def _reshape_scaled(x: Expr, fn: str, params: tuple[Any, ...]) -> Expr | None:
    """``fn(s·y) = s·fn(y)`` for a scalar ``s`` (:func:`_scalar_factors`) and a reshape
    ``fn`` (split, merge)."""
    sc = _scalar_factors(x)
    if sc is None:
        return None
    factors, specs, y = sc
    inner = call(fn, (y,), params)
    # the reshaped tensor's indices: new ones, after those the factors contract
    first = 1 + max((i for sp in specs for i in sp), default=-1)
    full = tuple(range(first, first + len(inner.shape)))
    return _s().einsum([*factors, inner], [*specs, full], full)


def _solve_simplify(A: Expr, b: Expr) -> Expr | None:
    # A⁻¹0 = 0: a zero right-hand side (a zero matrix of the result's shape; the
    # printed A⁻¹0 read back as A⁻¹ times the number 0, a matrix)
    if isinstance(b, Const) and b.value == 0.0:
        return Const(0.0, _solve_shape(ConcreteCheck("solve"), A.shape, b.shape))
    return None


def _kron_simplify(a: Expr, b: Expr) -> Expr | None:
    # a zero factor makes the product zero; c·1 ⊗ d·1 = cd·1
    if (isinstance(a, Const) and a.value == 0.0) or (isinstance(b, Const) and b.value == 0.0) \
            or (isinstance(a, Const) and isinstance(b, Const)):
        value = a.value * b.value if isinstance(a, Const) and isinstance(b, Const) else 0.0
        return Const(value, _kron_shape(ConcreteCheck("kron"), a.shape, b.shape))
    return None


def _vec_simplify(x: Expr) -> Expr | None:
    if isinstance(x, Const):  # a filled matrix's columns stacked are filled
        return Const(x.value, _vec_shape(ConcreteCheck("vec"), x.shape))
    return None


def _split_simplify(x: Expr, axis: int, a: Any, b: Any) -> Expr | None:
    scaled = _scaled(x)
    if scaled is not None:  # split(c·y) = c·split(y)
        return _s().scale(call("split_axis", (scaled[1],), (axis, a, b)), scaled[0])
    if _is(x, "merge_axes") and x.params[0] == axis \
            and x.children[0].shape[axis:axis + 2] == (a, b):  # split(merge(y)) = y
        return x.children[0]
    if isinstance(x, Const):  # a filled tensor reshaped is filled
        return Const(x.value, x.shape[:axis] + (a, b) + x.shape[axis + 1:])
    pushed = _reshape_scaled(x, "split_axis", (axis, a, b))
    if pushed is not None:  # split(s·y) = s·split(y), s a product of scalars
        return pushed
    if getattr(x, "kind", "") == "add":  # split(y + z) = split(y) + split(z): linear
        return _s().add([call("split_axis", (t,), (axis, a, b)) for t in x.children])
    if axis == 0 and _is(x, "split_axis") and x.params[0] == 1 and _is(x.children[0], "kron"):
        A, B = x.children[0].children  # (A ⊗ B) split to (i, k, j, l) is Aᵢⱼ Bₖₗ
        if (A.shape[0], B.shape[0]) == (a, b) and (A.shape[1], B.shape[1]) == x.params[1:]:
            return _s().einsum([A, B], [(0, 2), (1, 3)], (0, 1, 2, 3))
    if _is(x, "vec") and axis == 0 and x.children[0].shape == (b, a):
        return _b().transpose(x.children[0])  # vec(X) split column-major is Xᵀ
    return None


def _merge_simplify(x: Expr, axis: int) -> Expr | None:
    scaled = _scaled(x)
    if scaled is not None:  # merge(c·y) = c·merge(y)
        return _s().scale(call("merge_axes", (scaled[1],), (axis,)), scaled[0])
    if _is(x, "split_axis") and x.params[0] == axis:  # merge(split(y)) = y
        return x.children[0]
    if isinstance(x, Const):
        return Const(x.value, _merge_shape(ConcreteCheck("merge_axes"), x.shape, axis))
    pushed = _reshape_scaled(x, "merge_axes", (axis,))
    if pushed is not None:  # merge(s·y) = s·merge(y), s a product of scalars
        return pushed
    if getattr(x, "kind", "") == "add":  # merge(y + z) = merge(y) + merge(z): linear
        return _s().add([call("merge_axes", (t,), (axis,)) for t in x.children])
    return None


# ================================================================== analytic functions
# expm, logm, sqrtm: adj(X) += L_F(Xᵀ, G) (Higham, Functions of Matrices, ch. 3), the
# Fréchet derivative at Xᵀ, its own definition (frechet_exp, ...) so that it prints as
# L_exp(Xᵀ, G); the numbers of both are in matdiff.expr.analytic.
_FRECHET = {"expm": "frechet_exp", "logm": "frechet_log", "sqrtm": "frechet_sqrt"}


def _frechet_shape(check: ShapeCheck, x: tuple, e: tuple) -> tuple:
    # X (α…, n, n) and E (β…, α…, n, n): a batch of directions, E's the result's shape
    check.at_least(x, 2)
    check.square(x[-2:])
    check.at_least(e, len(x))
    check.equal(x[-1], e[-1], "the matrix's and the direction's dims", (0, 1))
    check.equal(x[-1], e[-2], "the matrix's and the direction's dims", (0, 1))
    for k in range(3, len(x) + 1):
        check.equal(x[-k], e[-k], "the batch axes", (0, 1))
    return e


def _frechet_simplify(x: Expr, e: Expr) -> Expr | None:
    # L_F(X, E) is linear in E: L_F(X, 0) = 0 (a zero direction printed L_exp(X, 0),
    # which reads back with 0 a scalar)
    if isinstance(e, Const) and e.value == 0.0:
        return Const(0.0, e.shape)
    return None


def _swap_last(e: Expr) -> Expr:
    r = len(e.shape)
    return _s().einsum([e], [tuple(range(r))], tuple(range(r - 2)) + (r - 1, r - 2))


def _analytic_vjp(node: Call, adj: Expr, nf: int) -> Expr:
    # dF = L_F(X, dX), ⟨G, L_F(X, E)⟩ = ⟨L_F(Xᵀ, G), E⟩:  adj(X) = L_F(Xᵀ, G)
    X = node.children[0]
    return call(_FRECHET[node.fn], (_b().transpose(X), adj))


def _frechet_vjp_e(node: Call, adj: Expr, nf: int) -> Expr:
    # L_F(X, E) is linear in E, its adjoint L_F(Xᵀ, ·):  adj(E) = L_F(Xᵀ, G)
    X = node.children[0]
    return call(node.fn, (_swap_last(X), adj))


def _frechet_vjp_x(node: Call, adj: Expr, nf: int) -> Expr:
    # d/dX L(X, E)[D] = L²(X; E, D), and ⟨G, L²(X; E, D)⟩ = ⟨L²(Xᵀ; Eᵀ, G), D⟩; L²(Y; P, Q)
    # is the top-right block of L(B, C), B = [[Y, P], [0, Y]], C = [[Q, 0], [0, Q]]
    # (F of the 4n × 4n block matrix): the same definition, on blocks, so that every
    # order comes from this rule.  Summed over E's batch axes that X has not.
    from .simplify.selection import take

    X, E = node.children
    n = X.shape[-1]
    extra = len(E.shape) - len(X.shape)
    Y = _b().broadcast_to(_swap_last(X), E.shape) if extra else _swap_last(X)
    zero = Const(0.0, E.shape)
    B = _blocks([[Y, _swap_last(E)], [zero, Y]])
    zq = Const(0.0, adj.shape)
    C = _blocks([[adj, zq], [zq, adj]])
    L = call(node.fn, (B, C))
    r = len(L.shape)
    top_right = take(take(L, r - 2, (0, n, 1)), r - 1, (n, n, 1))
    if not extra:
        return top_right
    # the leading ``extra`` axes of E's batch are summed (X's own batch stays)
    keep = tuple(range(nf)) + tuple(range(nf + extra, r))
    return _s().einsum([top_right], [tuple(range(r))], keep)


def _blocks(rows: list[list[Expr]]) -> Expr:
    """The block matrix of ``rows``, each block a batch of matrices, joined along the
    last two axes (a Concat of Concats: its adjoints are selections)."""
    b = _b()
    r = len(rows[0][0].shape)
    return b.concat([b.concat(row, axis=r - 1) for row in rows], axis=r - 2)


def _analytic_np(fn: str) -> Callable[..., Any]:
    def value(x: Any) -> Any:
        return getattr(analytic, fn)(np.asarray(x, dtype=np.float64), "numpy")

    value.__name__ = fn
    return value


def _analytic_on(fn: str, backend: str) -> Callable[..., Any]:
    def value(x: Any) -> Any:
        return getattr(analytic, fn)(x, backend)

    value.__name__ = fn
    return value


def _frechet_on(fn: str, backend: str) -> Callable[..., Any]:
    def value(x: Any, e: Any) -> Any:
        if backend == "numpy":
            x, e = np.asarray(x, dtype=np.float64), np.asarray(e, dtype=np.float64)
        return analytic.frechet(fn, x, e, backend)

    value.__name__ = _FRECHET[fn]
    return value


def _frechet_differential(fn: str) -> Callable[[Expr, Expr], Expr]:
    """``d F(X) = L_F(X, dX)``: the Fréchet derivative is the differential (MATH.md)."""
    def differential(X: Expr, dX: Expr) -> Expr:
        return call(_FRECHET[fn], (X, dX))

    return differential


def _vec_differential(X: Expr, dX: Expr) -> Expr:
    # vec is linear: d vec(X) = vec(dX)
    return call("vec", (dX,))


def _analytic_definitions() -> list[MatrixFunction]:
    M = MatrixFunction
    words = {"expm": ("exp", r"\exp", "the matrix exponential e^X",
                      "∫₀¹ e^{sX} dX e^{(1−s)X} ds", "any"),
             "logm": ("log", r"\log", "the principal matrix logarithm (no eigenvalue ≤ 0)",
                      "∫₀¹ (s(X − I) + I)⁻¹ dX (s(X − I) + I)⁻¹ ds", "positive"),
             "sqrtm": ("sqrt", r"\mathrm{{sqrt}}",
                       "the principal matrix square root (no eigenvalue < 0)",
                       "S dS + dS S = dX, S = X^{1/2}", "positive")}
    out = []
    for fn, (short, tex, doc, integral, domain) in words.items():
        rule = {"en": f"d {fn}(X) = L_{short}(X, dX) = {integral}",
                "zh": f"d {fn}(X) = L_{short}(X, dX) = {integral}"}
        out.append(M(fn, _square_same, _analytic_vjp, _analytic_np(fn),
                     jax=_analytic_on(fn, "jax"), torch=_analytic_on(fn, "torch"),
                     unicode=fn + "({0})", latex=r"\operatorname{{" + fn + "}}({0})",
                     width=len(fn) + 2, arg_rank=2, domain=domain, sort=6,
                     doc=doc, rule=rule, differential=_frechet_differential(fn),
                     # a primary matrix function commutes with transposition,
                     # F(Xᵀ) = F(X)ᵀ (Higham 2008, thm. 1.13): F(S) of a symmetric S
                     # is symmetric
                     symmetric=True))
        out.append(M(_FRECHET[fn], _frechet_shape, (_frechet_vjp_x, _frechet_vjp_e),
                     _frechet_on(fn, "numpy"), jax=_frechet_on(fn, "jax"),
                     torch=_frechet_on(fn, "torch"), simplify=_frechet_simplify,
                     unicode=f"L_{short}({{0}}, {{1}})",
                     latex="L_{{" + tex + "}}({0}, {1})", width=len(short) + 6,
                     domain=(domain, "any"), sort=6, arity=2, symmetric=True,
                     examples=((("n", "n"), ("n", "n")),),
                     doc=f"the Fréchet derivative L_{short}(X, E) of {fn} at X in the "
                         "direction E",
                     rule={"en": f"L_{short}(X, E) = the top-right block of "
                                 f"{fn}([[X, E], [0, X]])",
                           "zh": f"L_{short}(X, E) = {fn}([[X, E], [0, X]]) 的右上块"}))
    return out


def _product_definitions() -> list[MatrixFunction]:
    M = MatrixFunction
    return [
        M("solve", _solve_shape, (_solve_vjp_a, _solve_vjp_b), _np_solve, jax=_jax_solve,
          torch=_torch_solve, simplify=_solve_simplify, unicode="{0}⁻¹{1}",
          latex="{0}^{{-1}} {1}", prec="apply",
          unicode_T="{0}⁻ᵀ{1}", latex_T=r"{0}^{{-\top}} {1}",
          width=3, arity=2, domain=("invertible", "any"), sort=6,
          examples=((("n", "n"), ("n",)), (("n", "n"), ("n", "m"))),
          doc="solve(A, b) = A⁻¹b, by a solve (never an inverse)",
          rule={"en": "d(A⁻¹b) = A⁻¹(db − dA A⁻¹b)", "zh": "d(A⁻¹b) = A⁻¹(db − dA A⁻¹b)"}),
        M("kron", _kron_shape, (_kron_vjp_a, _kron_vjp_b), _np_kron, jax="jax.numpy.kron",
          torch=_torch_kron, simplify=_kron_simplify, unicode="{0} ⊗ {1}",
          latex=r"{0} \otimes {1}", prec="infix", operator="⊗",
          width=3, arity=2, domain=("any", "any"), sort=6,
          examples=((("m", "n"), ("p", "q")),),
          doc="the Kronecker product A ⊗ B, of shape (m·p, n·q)",
          rule={"en": "d(A ⊗ B) = dA ⊗ B + A ⊗ dB", "zh": "d(A ⊗ B) = dA ⊗ B + A ⊗ dB"}),
        M("vec", _vec_shape, _vec_vjp, _vec_of, jax=_vec_of, torch=_vec_of, width=5,
          simplify=_vec_simplify, differential=_vec_differential,
          domain="any", sort=6, examples=((("m", "n"),),),
          doc="vec(X): the columns of X stacked (column-major), of shape (m·n,)",
          rule={"en": "d vec(X) = vec(dX)", "zh": "d vec(X) = vec(dX)"}),
        M("split_axis", _split_shape, _split_vjp, _split_of, jax=_split_of, torch=_split_of,
          simplify=_split_simplify, unicode="split({0})", latex=r"\operatorname{{split}}({0})",
          width=7, params=("axis", "a", "b"), domain="any", public=False,
          doc="axis `axis` of size a·b read as (a, b), row-major"),
        M("merge_axes", _merge_shape, _merge_vjp, _merge_of, jax=_merge_of, torch=_merge_of,
          simplify=_merge_simplify, unicode="merge({0})", latex=r"\operatorname{{merge}}({0})",
          width=7, params=("axis",), domain="any", public=False,
          doc="axes `axis` and `axis + 1` read as one, row-major"),
    ]


def _definitions() -> list[MatrixFunction]:
    M = MatrixFunction
    return [
        M("inv", _square_same, _inv_vjp, np.linalg.inv, jax="jax.numpy.linalg.inv",
          torch="torch.linalg.inv", simplify=_inv_simplify,
          unicode="{0}⁻¹", latex="{0}^{{-1}}", prec="postfix",
          unicode_T="{0}⁻ᵀ", latex_T=r"{0}^{{-\top}}", width=2, mc="inv", arg_rank=2,
          domain="invertible", sort=6, doc="inverse of a square matrix", symmetric=True,
          differential=_inv_differential,
          rule={"en": "d(X⁻¹) = −X⁻¹ dX X⁻¹", "zh": "d(X⁻¹) = −X⁻¹ dX X⁻¹"}),
        M("det", _square_scalar, _det_vjp, _np_det, jax="jax.numpy.linalg.det",
          torch="torch.linalg.det", simplify=_det_simplify,
          unicode="det({0})", latex=r"\det({0})", width=5, mc="det", arg_rank=2,
          domain="invertible", sort=7, doc="determinant of a square matrix",
          differential=_det_differential,
          rule={"en": "d det X = det X · tr(X⁻¹ dX)", "zh": "d det X = det X · tr(X⁻¹ dX)"}),
        M("logdet", _square_scalar, _logdet_vjp, _np_logdet, jax=_jax_logdet,
          torch=_torch_logdet, simplify=_logdet_simplify,
          unicode="log det({0})", latex=r"\log\det({0})", prec="product", width=9,
          mc="logdet", arg_rank=2, domain="positive", sort=7,
          doc="log of the determinant",
          differential=_logdet_differential,
          rule={"en": "d log det X = tr(X⁻¹ dX)", "zh": "d log det X = tr(X⁻¹ dX)"}),
        M("logsumexp", _last_axis_reduced, _logsumexp_vjp, stable_logsumexp,
          jax=_jax_logsumexp, torch=_torch_logsumexp, width=11, domain="any", sort=8,
          doc="log(sum(exp(x))) over the last axis",
          differential=_logsumexp_differential,
          rule={"en": "∂ logsumexp(x)/∂x = softmax(x)",
                "zh": "∂ logsumexp(x)/∂x = softmax(x)"}),
        M("softmax", _last_axis_kept, _softmax_vjp, _np_softmax, jax=_jax_softmax,
          torch=_torch_softmax, width=9, domain="any", sort=8,
          doc="softmax over the last axis",
          differential=_softmax_differential,
          rule={"en": "∂sᵢ/∂xⱼ = sᵢ(δᵢⱼ − sⱼ)", "zh": "∂sᵢ/∂xⱼ = sᵢ(δᵢⱼ − sⱼ)"}),
        # as torch.log_softmax(x, dim=-1) and jax.nn.log_softmax(x): the last axis
        M("log_softmax", _last_axis_kept, _log_softmax_vjp, _np_log_softmax,
          jax=_jax_log_softmax, torch=_torch_log_softmax,
          latex=r"\log\operatorname{{softmax}}({0})", width=13, domain="any", sort=8,
          doc="log(softmax(x)) over the last axis, as x − logsumexp(x) (stable)",
          differential=_log_softmax_differential,
          rule={"en": "∂ log_softmax(x)ᵢ/∂xⱼ = δᵢⱼ − softmax(x)ⱼ",
                "zh": "∂ log_softmax(x)ᵢ/∂xⱼ = δᵢⱼ − softmax(x)ⱼ"}),
        # issue 12: matrix functions and products (new definitions go after these)
        *_product_definitions(),
        *_analytic_definitions(),
    ]


#: name -> :class:`MatrixFunction`, every matrix function of the language
MATRIX_FUNCTIONS: dict[str, MatrixFunction] = {d.name: d for d in _definitions()}


def call(name: str, args: Sequence[Expr], params: tuple[Any, ...] = ()) -> Expr:
    """The call of matrix function ``name`` on ``args`` (and its ``params``),
    simplified by its identities (what the builders make)."""
    from .core import Call

    spec = MATRIX_FUNCTIONS[name]
    args = tuple(args)
    if len(args) != spec.arity:
        raise ShapeError(f"{name} takes {spec.arity} argument{'s' * (spec.arity > 1)}, "
                         f"got {len(args)}")
    spec.shape_of(*(a.shape for a in args), params=params)
    if spec.simplify is not None:
        out = spec.simplify(*args, *params)
        if out is not None:
            return out
    return Call(name, args, params)


def vec_trailing(e: Expr, nf: int) -> Expr:
    """``vec`` of the last two axes of ``e`` (shape ``F + (m, n)``, ``F`` of rank
    ``nf``), the columns stacked: ``P[φ, i + m·j] = e[φ, i, j]``, shape
    ``F + (m·n,)``; ``vec(e)`` itself where ``nf`` is 0, else the two axes swapped
    and merged row-major (``(j, i) ↦ j·m + i``).  The derivative by a matrix within
    several variables is by ``vec`` of it (``md.derive(f, [X, y])``).

    >>> from matdiff.expr.core import Var
    >>> vec_trailing(Var("G", ("m", "n")), 0).shape, vec_trailing(Var("J", (2, 3, 4)), 1).shape
    ((DimPoly('m·n'),), (2, 12))
    """
    if nf == 0:
        return call("vec", (e,))
    phi = tuple(range(2, 2 + nf))
    return call("merge_axes", (_s().einsum([e], [phi + (0, 1)], phi + (1, 0)),), (nf,))
