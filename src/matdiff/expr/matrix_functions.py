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
from typing import Any, Protocol

import numpy as np

from ..errors import ShapeError
from .core import Const, Delta, Expr, shape_str
from .functions import as_float, implementation

__all__ = ["MatrixFunction", "MATRIX_FUNCTIONS", "ShapeCheck", "ConcreteCheck", "call",
           "stable_logsumexp"]

#: an implementation: a callable, or the dotted path of one ("torch.linalg.inv"),
#: imported on first use so that the definition costs nothing where it is missing
Impl = Callable[..., Any] | str | None


class ShapeCheck(Protocol):
    """What a shape rule may ask of its argument's dims (a tuple of dims).

    ``square``: the argument is a square matrix (its two dims are one);
    ``at_least``: the argument has at least ``rank`` axes.  A failed check raises
    (a :class:`~matdiff.errors.ShapeError` with the function's name and the shape).
    """

    def square(self, dims: tuple) -> None: ...

    def at_least(self, dims: tuple, rank: int) -> None: ...


class ConcreteCheck:
    """:class:`ShapeCheck` on the dims of built expressions (names and ints, equal or
    not), as the builders use it."""

    def __init__(self, fn: str) -> None:
        self.fn = fn

    def square(self, dims: tuple) -> None:
        if len(dims) != 2 or dims[0] != dims[1]:
            raise ShapeError(f"{self.fn} needs a square matrix, got shape {shape_str(dims)}")

    def at_least(self, dims: tuple, rank: int) -> None:
        if len(dims) < rank:
            raise ShapeError(f"{self.fn} needs a vector or a matrix, got a scalar")


@dataclass(frozen=True)
class MatrixFunction:
    """One matrix function of the language (a function of one argument)."""

    name: str
    #: ``shape(check, dims) -> dims``: the result's dims from the argument's
    shape: Callable[[ShapeCheck, tuple], tuple]
    #: ``vjp(node, adj, nf) -> Expr``: the adjoint of the argument, from the adjoint
    #: ``adj`` of ``node`` (shape ``F + node.shape``, ``F`` of ``nf`` axes)
    vjp: Callable[[Expr, Expr, int], Expr]
    numpy: Callable[..., Any]
    jax: Impl = None
    torch: Impl = None
    #: an identity that makes the call something else when built (``inv(inv X) = X``),
    #: or ``None`` to build the node
    simplify: Callable[[Expr], Expr | None] | None = None
    #: the Unicode and LaTeX spellings, ``{0}`` the argument; ``postfix`` prints the
    #: argument as the base of a superscript (``X⁻¹``), ``product`` as a product
    #: (``log det X`` binds like a product)
    unicode: str = "{name}({0})"
    latex: str = r"\operatorname{{{name}}}({0})"
    prec: str = "atom"
    #: the spellings of the transposed result, where they are shorter (``X⁻ᵀ``)
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
    domain: str = ""
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
    #: it maps a symmetric matrix to a symmetric one (``S⁻¹``): ``(f(S))ᵀ = f(S)``
    #: for a symmetric variable ``S`` (the simplifier's ``orient_symmetric``)
    symmetric: bool = False

    def shape_of(self, dims: tuple) -> tuple:
        """The result's dims for an argument of ``dims`` (a ShapeError if it has none)."""
        return tuple(self.shape(ConcreteCheck(self.name), tuple(dims)))

    def impl(self, backend: str) -> Callable[..., Any] | None:
        """The implementation for ``backend``, imported if given by path."""
        return implementation(self, backend)

    def spell(self, fmt: str, arg: str, transposed: bool = False) -> str:
        """The call printed in format ``fmt`` ("unicode", "latex") around the printed
        argument ``arg``; ``transposed``: the transposed result's spelling, or "" where
        the function has none of its own (``X⁻ᵀ``).

        >>> print(MATRIX_FUNCTIONS["inv"].spell("latex", "X", transposed=True))
        X^{-\\top}
        """
        template = getattr(self, fmt + ("_T" if transposed else ""))
        return template.format(arg, name=self.name) if template else ""


def _b():
    from . import builders

    return builders


def _s():
    from . import simplify

    return simplify


def _is(e: Expr, name: str) -> bool:
    return getattr(e, "kind", "") == "call" and e.fn == name  # type: ignore[attr-defined]


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


def _shift(a: np.ndarray) -> np.ndarray:
    # the row's largest entry, 0 where that is not finite (an empty row's is -inf)
    m = np.maximum.reduce(a, axis=-1, keepdims=True, initial=-np.inf)
    return m if np.isfinite(m).all() else np.where(np.isfinite(m), m, 0.0)


def stable_logsumexp(a: np.ndarray) -> np.ndarray:
    """``log Σⱼ exp(aⱼ)`` over the last axis as ``m + log Σⱼ exp(aⱼ − m)``, ``m`` the
    row's largest entry, so that no exp overflows; an empty row gives ``-inf``."""
    a = np.asarray(a)
    m = _shift(a)
    return np.log(np.add.reduce(np.exp(a - m), axis=-1)) + m[..., 0]


def _np_softmax(a: np.ndarray) -> np.ndarray:
    # softmax(a) = exp(a − m) / Σ exp(a − m): the same shift, no overflow
    a = np.asarray(a)
    e = np.exp(a - _shift(a))
    e /= np.add.reduce(e, axis=-1, keepdims=True)
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
def _inv_vjp(node: Expr, adj: Expr, nf: int) -> Expr:
    # d(X⁻¹) = −X⁻¹ dX X⁻¹  (Matrix Cookbook eq. 59):  ∂Uᵢⱼ/∂Xₖₗ = −Uᵢₖ Uₗⱼ, U = X⁻¹.
    phi = tuple(range(4, 4 + nf))
    i, j, k, l_ = 0, 1, 2, 3
    return _s().einsum([Const(-1.0), adj, node, node],
                       [(), phi + (i, j), (i, k), (l_, j)], phi + (k, l_))


def _det_vjp(node: Expr, adj: Expr, nf: int) -> Expr:
    # d det X = det X · tr(X⁻¹ dX)  (Matrix Cookbook eq. 49):  ∂det/∂X = det(X) X⁻ᵀ.
    phi = tuple(range(2, 2 + nf))
    X = node.children[0]
    return _s().einsum([adj, node, _b().inv(X)], [phi, (), (1, 0)], phi + (0, 1))


def _logdet_vjp(node: Expr, adj: Expr, nf: int) -> Expr:
    # d log det X = tr(X⁻¹ dX)  (Matrix Cookbook eq. 51):  ∂/∂X = X⁻ᵀ.
    phi = tuple(range(2, 2 + nf))
    X = node.children[0]
    return _s().einsum([adj, _b().inv(X)], [phi, (1, 0)], phi + (0, 1))


def _logsumexp_vjp(node: Expr, adj: Expr, nf: int) -> Expr:
    # ∂ logsumexp(x)/∂xⱼ = softmax(x)ⱼ (row by row over the leading axes β).
    x = node.children[0]
    r = len(x.shape)
    beta, j = tuple(range(r - 1)), r - 1
    phi = tuple(range(r, r + nf))
    return _s().einsum([adj, _b().softmax(x)], [phi + beta, beta + (j,)], phi + beta + (j,))


def _softmax_vjp(node: Expr, adj: Expr, nf: int) -> Expr:
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


def _log_softmax_vjp(node: Expr, adj: Expr, nf: int) -> Expr:
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
    ]


#: name -> :class:`MatrixFunction`, every matrix function of the language
MATRIX_FUNCTIONS: dict[str, MatrixFunction] = {d.name: d for d in _definitions()}


def call(name: str, args: Sequence[Expr]) -> Expr:
    """The call of matrix function ``name`` on ``args``, simplified by its identities
    (what the builders make)."""
    from .core import Call

    spec = MATRIX_FUNCTIONS[name]
    (X,) = args
    spec.shape_of(X.shape)
    if spec.simplify is not None:
        out = spec.simplify(X)
        if out is not None:
            return out
    return Call(name, (X,))
