"""Shared helpers for the derivative tests: finite differences, random values,
node inspection and backends (NumPy, JAX, PyTorch) for independent references.

Everything here is deterministic given a seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import matdiff as md
from matdiff.expr.core import Const, Delta, Expr, Size, Var, topo_order

LEAF_KINDS = (Var, Const, Size, Delta)

DEFAULT_SIZES = {"n": 3, "m": 2, "N": 5}


# ============================================================== finite differences
def fd_jacobian(fun: Callable[[np.ndarray], Any], x0: Any, eps: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of ``fun`` at ``x0``: shape ``fun(x0).shape + x0.shape``
    (numerator layout, matdiff's convention)."""
    x0 = np.asarray(x0, dtype=np.float64)
    f0 = np.asarray(fun(x0.copy()), dtype=np.float64)
    out = np.zeros(f0.shape + x0.shape)
    for idx in np.ndindex(*x0.shape):
        xp = x0.copy()
        xm = x0.copy()
        xp[idx] += eps
        xm[idx] -= eps
        fp = np.asarray(fun(xp), dtype=np.float64)
        fm = np.asarray(fun(xm), dtype=np.float64)
        out[(Ellipsis,) + idx] = (fp - fm) / (2 * eps)
    return out


def fd_directional(fun: Callable[[np.ndarray], Any], x0: Any, v: Any,
                   eps: float = 1e-6) -> np.ndarray:
    """``(fun(x0 + eps v) - fun(x0 - eps v)) / (2 eps)``."""
    x0 = np.asarray(x0, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    fp = np.asarray(fun(x0 + eps * v), dtype=np.float64)
    fm = np.asarray(fun(x0 - eps * v), dtype=np.float64)
    return (fp - fm) / (2 * eps)


def contract_direction(D: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``D · v`` over the trailing ``v.ndim`` axes of ``D`` (a directional derivative)."""
    k = np.ndim(v)
    return np.tensordot(D, v, axes=k) if k else D * v


def expr_fun(expr: Expr, values: Mapping[str, Any], name: str) -> Callable[[np.ndarray], Any]:
    """``t -> expr.evaluate(values with name := t)``."""

    def f(t: np.ndarray) -> np.ndarray:
        return expr.evaluate({**values, name: t})

    return f


def fd_derivative(expr: Expr, values: Mapping[str, Any], name: str,
                  eps: float = 1e-6) -> np.ndarray:
    """The full finite-difference Jacobian of ``expr`` by the variable ``name``."""
    return fd_jacobian(expr_fun(expr, values, name), values[name], eps)


def assert_close(actual: Any, expected: Any, rtol: float = 1e-6, atol: float = 1e-8,
                 what: str = "") -> None:
    """``np.testing.assert_allclose`` with shapes compared first (shape is meaning)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def max_rel_error(actual: np.ndarray, expected: np.ndarray, floor: float = 1.0) -> float:
    """``max |a - e| / max(floor, max |e|)``: an error relative to the array's scale."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.size == 0:
        return 0.0
    scale = max(floor, float(np.max(np.abs(expected))), float(np.max(np.abs(actual))))
    return float(np.max(np.abs(actual - expected))) / scale


# ============================================================== random values
def dims_of(shape: tuple, sizes: Mapping[str, int]) -> tuple[int, ...]:
    # a composite dim (m·n of kron or vec) by its polynomial (tests/test_dims.py checks
    # that arithmetic against plain integers)
    from matdiff.expr.dims import dim_size

    return tuple(dim_size(d, sizes) for d in shape)


def random_values(expr: Expr, rng: np.random.Generator, sizes: Mapping[str, int] | None = None,
                  low: float = -1.0, high: float = 1.0,
                  domains: Mapping[str, tuple[float, float]] | None = None,
                  ) -> dict[str, np.ndarray]:
    """Uniform random float64 values for every variable of ``expr``.

    ``sizes`` binds named dims (default :data:`DEFAULT_SIZES`); ``domains`` gives a
    variable its own interval.
    """
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    out = {}
    for name, shape in expr.variables().items():
        lo, hi = (domains or {}).get(name, (low, high))
        out[name] = rng.uniform(lo, hi, size=dims_of(shape, sizes)).astype(np.float64)
    return out


def nonzero(rng: np.random.Generator, shape: tuple, lo: float = 0.3, hi: float = 2.0
            ) -> np.ndarray:
    """Values with ``lo <= |v| <= hi`` and random signs (away from a kink at 0)."""
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return mag * sign


def well_conditioned(rng: np.random.Generator, n: int, scale: float = 0.3) -> np.ndarray:
    """``I + scale·U``, ``U`` uniform in [-1, 1]: invertible with positive determinant
    for small ``scale·n``."""
    return np.eye(n) + scale * rng.uniform(-1.0, 1.0, size=(n, n))


def spd(rng: np.random.Generator, n: int) -> np.ndarray:
    """A symmetric positive definite matrix."""
    M = rng.standard_normal((n, n))
    return M @ M.T / n + np.eye(n)


# ============================================================== node inspection
def nodes(expr: Expr) -> list[Expr]:
    return topo_order(expr)


def non_leaf_nodes(expr: Expr) -> list[Expr]:
    """Nodes that are not ``Var``, ``Const``, ``Size`` or ``Delta``."""
    return [e for e in topo_order(expr) if not isinstance(e, LEAF_KINDS)]


def kinds(expr: Expr) -> set[str]:
    return {e.kind for e in topo_order(expr)}


# ============================================================== backends
class Backend:
    """The array operations the independent reference implementations use.

    ``NUMPY``, :func:`jax_backend` and :func:`torch_backend` give one namespace each;
    reference functions ``ref(ops, env)`` are written once against it.
    """

    name = "abstract"

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    # element-wise
    def exp(self, a):
        return self.xp.exp(a)

    def log(self, a):
        return self.xp.log(a)

    def sin(self, a):
        return self.xp.sin(a)

    def cos(self, a):
        return self.xp.cos(a)

    def tan(self, a):
        return self.xp.tan(a)

    def arcsin(self, a):
        return self.xp.arcsin(a)

    def arccos(self, a):
        return self.xp.arccos(a)

    def arctan(self, a):
        return self.xp.arctan(a)

    def sinh(self, a):
        return self.xp.sinh(a)

    def cosh(self, a):
        return self.xp.cosh(a)

    def tanh(self, a):
        return self.xp.tanh(a)

    def sqrt(self, a):
        return self.xp.sqrt(a)

    def abs(self, a):
        return self.xp.abs(a)

    def sigmoid(self, a):
        return 1.0 / (1.0 + self.xp.exp(-a))

    def sign(self, a):
        return self.xp.sign(a)

    def step(self, a):
        return (a > 0) * 1.0

    def relu(self, a):
        return self.xp.maximum(a, 0.0 * a)

    def maximum(self, a, b):
        return self.xp.maximum(a, b)

    def minimum(self, a, b):
        return self.xp.minimum(a, b)

    def softplus(self, a):
        return self.xp.logaddexp(0.0 * a, a)

    def power(self, a, b):
        return a ** b

    # the activations, written with the operations above (Φ by erfc, in NumPy)
    def normal_cdf(self, a):
        return _ndtr(a)

    def gelu(self, a):
        return a * self.normal_cdf(a)

    def erf(self, a):
        # erf(a) = 2Φ(a√2) − 1
        return 2.0 * self.normal_cdf(a * float(np.sqrt(2.0))) - 1.0

    def silu(self, a):
        return a * self.sigmoid(a)

    def log_sigmoid(self, a):
        return -self.softplus(-a)

    def softsign(self, a):
        return a / (1.0 + self.abs(a))

    def leaky_relu(self, a, s):
        return self.xp.where(a > 0, a, s * a)

    def elu(self, a, s):
        return self.xp.where(a > 0, a, s * (self.exp(self.minimum(a, 0.0 * a)) - 1.0))

    # linear algebra
    def einsum(self, spec: str, *ops):
        return self.xp.einsum(spec, *ops)

    def matmul(self, a, b):
        return a @ b

    def transpose(self, a):
        return a.T if a.ndim == 2 else a

    def sum(self, a, axis=None):
        return self.xp.sum(a) if axis is None else self.xp.sum(a, axis)

    def mean(self, a, axis=None):
        return self.xp.mean(a) if axis is None else self.xp.mean(a, axis)

    def trace(self, a):
        return self.xp.trace(a)

    def diag(self, a):
        return self.xp.diag(a)

    def outer(self, a, b):
        return self.xp.outer(a, b)

    def dot(self, a, b):
        return self.xp.dot(a, b)

    def inv(self, a):
        return self.xp.linalg.inv(a)

    def det(self, a):
        return self.xp.linalg.det(a)

    def logdet(self, a):
        return self.xp.linalg.slogdet(a)[1]

    def eye(self, n: int):
        return self.xp.eye(n)

    def logsumexp(self, a):
        m = self.xp.max(a, -1, keepdims=True)
        return self.xp.log(self.xp.sum(self.xp.exp(a - m), -1)) + m[..., 0]

    def softmax(self, a):
        e = self.xp.exp(a - self.xp.max(a, -1, keepdims=True))
        return e / self.xp.sum(e, -1, keepdims=True)

    def log_softmax(self, a):
        return a - self.logsumexp(a)[..., None]

    def asarray(self, a):
        return self.xp.asarray(a)

    # stacking and selection (the kinds "concat" and "take"), by position lists, not
    # by matdiff's keys: a strided or reversed slice is a list of positions
    def concatenate(self, parts, axis: int):
        return self.xp.concatenate(parts, axis)

    def expand_dims(self, a, axis: int):
        return self.xp.expand_dims(a, axis)

    def take(self, a, positions, axis: int):
        # positions: an int (the axis goes) or a list of ints (the axis stays)
        return self.xp.take(a, self.xp.asarray(positions), axis=axis)

    # matrix functions and products (issue 12), written with the operations above:
    # logm by the atanh series, log S = log(c) I + 2 atanh(W), W = (S − cI)(S + cI)⁻¹
    # (no square roots, unlike matdiff's), for the SPD matrices of the tests
    # (eigenvalues in [3, 12]), sqrtm as expm(logm(S)/2); expm is the library's
    def solve(self, a, b):
        # A⁻¹b along b's first axis, whatever b's rank (a derivative's b has more axes):
        # its columns, each solved (NumPy's own solve reads a 3-axis b as a batch)
        flat = b.reshape(b.shape[0], -1)
        return self.xp.linalg.solve(a, flat).reshape(b.shape)

    def kron(self, a, b):
        return self.xp.kron(a, b)

    def vec(self, a):
        return self.transpose(a).reshape(-1)

    def expm(self, a):
        import scipy.linalg

        return scipy.linalg.expm(a)

    def logm(self, a, c: float = 7.5):
        n = a.shape[-1]
        eye = self.eye(n)
        W = (a - c * eye) @ self.inv(a + c * eye)
        W2, term, total = W @ W, W, W
        for k in range(1, 40):
            term = term @ W2
            total = total + term / (2 * k + 1)
        return float(np.log(c)) * eye + 2 * total

    def sqrtm(self, a):
        return self.expm(0.5 * self.logm(a))

    def _frechet(self, f, a, e):
        # L_F(X, E): the top-right block of F([[X, E], [0, X]]) (Higham, ch. 3)
        n = a.shape[-1]
        xp = self.xp
        cat = getattr(xp, "concatenate", None) or xp.cat
        if len(e.shape) > len(a.shape):   # a batch of directions: X for each
            a = xp.broadcast_to(a, tuple(e.shape))
        block = cat([cat([a, e], -1), cat([0 * a, a], -1)], -2)
        return f(block)[..., :n, n:]

    def split_axis(self, a, axis, p, q):
        return a.reshape(tuple(a.shape[:axis]) + (p, q) + tuple(a.shape[axis + 1:]))

    def merge_axes(self, a, axis):
        return a.reshape(tuple(a.shape[:axis]) + (-1,) + tuple(a.shape[axis + 2:]))

    def frechet_exp(self, a, e):
        return self._frechet(self.expm, a, e)

    def frechet_log(self, a, e):
        return self._frechet(self.logm, a, e)

    def frechet_sqrt(self, a, e):
        return self._frechet(self.sqrtm, a, e)


def _ndtr(a):
    """The standard normal CDF by math.erfc (NumPy arrays), independent of matdiff's."""
    import math

    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-np.asarray(a) / math.sqrt(2))


class _Numpy(Backend):
    name = "numpy"


NUMPY = _Numpy(np)


def jax_backend() -> Backend:
    """JAX with float64 (``jax_enable_x64``); raises ImportError without jax."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    class _Jax(Backend):
        name = "jax"

        def logsumexp(self, a):
            return jax.scipy.special.logsumexp(a, axis=-1)

        def softmax(self, a):
            return jax.nn.softmax(a, axis=-1)

        def softplus(self, a):
            return jax.nn.softplus(a)

        def sigmoid(self, a):
            return jax.nn.sigmoid(a)

        def normal_cdf(self, a):
            return jax.scipy.special.ndtr(a)

        def expm(self, a):
            return jax.scipy.linalg.expm(a)

    return _Jax(jnp)


def torch_backend() -> Backend:
    """PyTorch in float64; raises ImportError without torch."""
    import torch

    class _Torch(Backend):
        name = "torch"

        def arcsin(self, a):
            return torch.asin(a)

        def arccos(self, a):
            return torch.acos(a)

        def arctan(self, a):
            return torch.atan(a)

        def sigmoid(self, a):
            return torch.sigmoid(a)

        def softplus(self, a):
            return torch.nn.functional.softplus(a)

        def normal_cdf(self, a):
            return torch.special.ndtr(a)

        def power(self, a, b):
            return torch.pow(torch.as_tensor(a, dtype=torch.float64), b)

        def transpose(self, a):
            return a.T if a.dim() == 2 else a

        def sum(self, a, axis=None):
            return torch.sum(a) if axis is None else torch.sum(a, dim=axis)

        def mean(self, a, axis=None):
            return torch.mean(a) if axis is None else torch.mean(a, dim=axis)

        def trace(self, a):
            return torch.trace(a)

        def dot(self, a, b):
            return torch.dot(a, b)

        def outer(self, a, b):
            return torch.outer(a, b)

        def eye(self, n: int):
            return torch.eye(n, dtype=torch.float64)

        def logsumexp(self, a):
            return torch.logsumexp(a, dim=-1)

        def softmax(self, a):
            return torch.softmax(a, dim=-1)

        def asarray(self, a):
            return torch.as_tensor(a, dtype=torch.float64)

        def expm(self, a):
            return torch.linalg.matrix_exp(a)

        def vec(self, a):
            return a.T.reshape(-1)

        def kron(self, a, b):
            # torch.kron views its inputs, which fails on a transposed one (C.T)
            return torch.kron(a.contiguous(), b.contiguous())

        def concatenate(self, parts, axis: int):
            return torch.cat(list(parts), dim=axis)

        def expand_dims(self, a, axis: int):
            return torch.unsqueeze(a, axis)

        def take(self, a, positions, axis: int):
            if isinstance(positions, int):
                return torch.select(a, axis, positions)
            return torch.index_select(a, axis, torch.as_tensor(positions, dtype=torch.long))

    return _Torch(torch)


# ============================================================== Expr -> backend
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _spec(specs, out) -> str:
    return ",".join("".join(_LETTERS[c] for c in s) for s in specs) + "->" + \
        "".join(_LETTERS[c] for c in out)


def to_backend(expr: Expr, ops: Backend, sizes: Mapping[str, int]
               ) -> Callable[[Mapping[str, Any]], Any]:
    """A function ``env -> value`` that computes ``expr`` node by node with ``ops``
    (an independent evaluator of the core nodes, used with JAX's or PyTorch's
    autodiff)."""
    from matdiff.expr.core import Add, Call, Einsum, Map

    order = topo_order(expr)

    def full(shape, value):
        arr = np.full(dims_of(shape, sizes), value, dtype=np.float64)
        return ops.asarray(arr)

    unary = {"exp", "log", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh",
             "cosh", "tanh", "sqrt", "abs", "sigmoid", "softplus", "sign", "step", "relu",
             "normal_cdf", "gelu", "silu", "log_sigmoid", "softsign", "erf"}
    binary = {"pow": "power", "max": "maximum", "min": "minimum", "leaky_relu": "leaky_relu",
              "elu": "elu"}

    def run(env: Mapping[str, Any]):
        cache: dict[int, Any] = {}
        for node in order:
            args = [cache[id(c)] for c in node.children]
            if isinstance(node, Var):
                v = env[node.name]
            elif isinstance(node, Const):
                v = full(node.shape, node.value)
            elif isinstance(node, Size):
                v = ops.asarray(np.float64(sizes[node.dim]))
            elif isinstance(node, Delta):
                v = ops.asarray(np.eye(dims_of(node.shape, sizes)[0]))
            elif isinstance(node, Einsum):
                v = ops.einsum(_spec(node.specs, node.out), *args)
            elif isinstance(node, Add):
                v = args[0]
                for a in args[1:]:
                    v = v + a
            elif isinstance(node, Map):
                if node.fn in unary:
                    v = getattr(ops, node.fn)(args[0])
                elif node.fn in binary:
                    v = getattr(ops, binary[node.fn])(args[0], args[1])
                else:
                    raise NotImplementedError(node.fn)
            elif node.kind == "concat":
                # parts joined along the axis; a row part lacks the axis (one position)
                parts = [ops.expand_dims(a, node.axis) if row else a
                         for a, row in zip(args, node.rows)]
                v = ops.concatenate(parts, node.axis)
            elif node.kind == "take":
                v = ops.take(args[0], _positions(node, sizes), node.axis)
            elif isinstance(node, Call):  # the test backend's own inv, det, ...
                params = [q if isinstance(q, int) else dims_of((q,), sizes)[0]
                          for q in node.params]
                v = getattr(ops, node.fn)(*args, *params)
            else:
                raise NotImplementedError(node.kind)
            cache[id(node)] = v
        return cache[id(expr)]

    return run


def _positions(node: Expr, sizes: Mapping[str, int]) -> int | list[int]:
    """The positions a ``take`` node reads along its axis, in numbers: ``p`` for an
    index ``(p,)``, ``[start + step·t for t < count]`` for a slice
    ``(start, count, step)``; each checked to lie on the axis (the reference never
    wraps a negative position around, as NumPy's take would)."""
    key = node.key
    size = dims_of((node.children[0].shape[node.axis],), sizes)[0]
    if len(key) == 1:
        (p,) = dims_of((key[0],), sizes)
        out: int | list[int] = p
        every = [p]
    else:
        start, count = dims_of((key[0], key[1]), sizes)
        out = every = [start + key[2] * t for t in range(count)]
    if not every or not all(0 <= p < size for p in every):
        raise ValueError(f"take {key} reads {every}, outside an axis of size {size}")
    return out


def derive_eval(f: Expr, wrt: Expr, values: Mapping[str, Any]) -> np.ndarray:
    """``md.derive(f, wrt).evaluate(values)``, checked to have shape
    ``f.shape + wrt.shape`` in numbers as well as in symbols."""
    from matdiff.compile.evaluate import bind_sizes, evaluate

    D = md.derive(f, wrt)
    assert D.shape == f.shape + wrt.shape, (D.shape, f.shape, wrt.shape)
    _, sizes = bind_sizes(f, values)
    for d, k in zip(wrt.shape, np.shape(values[wrt.name]), strict=True):
        if isinstance(d, str):
            sizes.setdefault(d, k)
    out = evaluate(D, values, dims=sizes)
    f_val = np.asarray(f.evaluate(values))
    w_val = np.asarray(values[wrt.name])
    assert out.shape == f_val.shape + w_val.shape, (out.shape, f_val.shape, w_val.shape)
    return out


def evaluate_dims(expr: Expr, values: Mapping[str, Any], sizes: Mapping[str, int]
                  ) -> np.ndarray:
    """Evaluate ``expr`` with dims bound explicitly as well as from the values (a
    derivative that is a constant zero carries no variable to bind its dims)."""
    from matdiff.compile.evaluate import evaluate

    wanted = {k: v for k, v in values.items() if k in expr.variables()}
    return evaluate(expr, wanted, dims=dict(sizes))
