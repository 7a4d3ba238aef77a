"""The numbers of the analytic matrix functions ``expm``, ``logm``, ``sqrtm`` and of
their Fréchet derivatives, written once over an array library (NumPy, JAX, PyTorch).

matdiff's core needs NumPy only, so nothing here needs SciPy:

* ``expm`` on NumPy is scaling and squaring of the Taylor series (Higham, *Functions
  of Matrices*, 2008, ch. 10): ``e^X = (e^{X/2^s})^{2^s}`` with ``‖X/2^s‖₁ ≤ 1/2``,
  where 18 terms of the series are exact to rounding; JAX and PyTorch use their own
  (``jax.scipy.linalg.expm``, ``torch.linalg.matrix_exp``);
* ``sqrtm`` is the Denman–Beavers iteration (Higham, eq. 6.15): ``Y₀ = X, Z₀ = I``,
  ``Y ← (Y + Z⁻¹)/2, Z ← (Z + Y⁻¹)/2`` converges to ``X^{1/2}`` (and ``X^{-1/2}``) for
  every matrix without eigenvalues on the closed negative real axis, defective ones
  included (the block matrices below are defective);
* ``logm`` is inverse scaling and squaring (Higham, ch. 11): ``log X = 2^k log R``
  with ``R = X^{1/2^k}`` close to ``I``, and ``log R = 2 atanh(W)``,
  ``W = (R − I)(R + I)⁻¹``, summed as ``2 Σ W^{2j+1}/(2j+1)``;
* the Fréchet derivative of each, ``L_F(X, E)``, is the top-right block of ``F`` of the
  block matrix ``[[X, E], [0, X]]`` (MATH.md, "Matrix functions"); it is linear in
  ``E``, which is scaled to norm one first (the block's norm then stays ``X``'s).

A real matrix with an eigenvalue on the closed negative real axis has no real
principal logarithm (nor square root, for a negative one; at zero the square root has
no derivative): the eager backends raise an
:class:`~matdiff.errors.EvaluationError` naming the function and the eigenvalue; JAX's
compiled code cannot raise, and returns nan there.

Every function takes arrays of shape ``(..., n, n)`` (a batch of matrices); a Fréchet
derivative's ``X`` broadcasts against ``E`` over the leading axes.

>>> import numpy as np
>>> X = np.array([[1.0, 2.0], [0.0, 1.0]])
>>> np.round(expm(X), 6).tolist()         # e^X = e (I + N) for X = I + N, N² = 0
[[2.718282, 5.436564], [0.0, 2.718282]]
>>> np.allclose(sqrtm(X) @ sqrtm(X), X), np.allclose(expm(logm(X)), X)
(True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EvaluationError

__all__ = ["expm", "logm", "sqrtm", "frechet", "check_spectrum", "Ops", "ops_of"]


class Ops:
    """The few operations the algorithms need, from one array library: matrix
    inverse, identity, block assembly, the 1-norm of each matrix, and whether the
    library runs eagerly (NumPy, PyTorch: a check may raise) or traced (JAX)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.eager: bool = name != "jax"
        self.xp: Any   # the array module: numpy, jax.numpy or torch
        if name == "numpy":
            self.xp = np
        elif name == "jax":
            import jax.numpy as jnp

            self.xp = jnp
        else:
            import torch

            self.xp = torch

    def inv(self, a: Any) -> Any:
        return self.xp.linalg.inv(a)

    def eye_like(self, a: Any) -> Any:
        n = a.shape[-1]
        if self.name == "torch":
            return self.xp.eye(n, dtype=a.dtype, device=a.device)
        return self.xp.eye(n, dtype=a.dtype)

    def cat(self, parts: list[Any], axis: int) -> Any:
        if self.name == "torch":
            return self.xp.cat(parts, dim=axis)
        return self.xp.concatenate(parts, axis=axis)

    def broadcast(self, a: Any, shape: tuple[int, ...]) -> Any:
        return self.xp.broadcast_to(a, tuple(shape))

    def norm1(self, a: Any) -> Any:
        """The largest 1-norm (column sum) over the batch, as a Python float when
        eager."""
        x = abs(a).sum(-2).max()
        return float(x) if self.eager else x

    def norms(self, a: Any) -> Any:
        """Each matrix's 1-norm, shaped ``(..., 1, 1)``."""
        s = abs(a).sum(-2)
        if self.name == "torch":
            return s.amax(-1)[..., None, None]
        return s.max(-1)[..., None, None]

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.xp.where(cond, a, b)

    def eigvals(self, a: Any) -> np.ndarray:
        """Every eigenvalue of the batch, as a NumPy array (eager backends only)."""
        if self.name == "torch":
            return self.xp.linalg.eigvals(a.detach()).cpu().numpy()
        return np.linalg.eigvals(np.asarray(a))


_OPS: dict[str, Ops] = {}


def ops_of(name: str) -> Ops:
    """The :class:`Ops` of backend ``name`` (made once)."""
    if name not in _OPS:
        _OPS[name] = Ops(name)
    return _OPS[name]


def check_spectrum(fn: str, X: Any, ops: Ops) -> None:
    """Raise an :class:`EvaluationError` naming ``fn`` when ``X`` has a real
    eigenvalue ``≤ 0`` (eager backends only): the principal logarithm of a real matrix
    is not defined there, nor the square root at a negative one; at a zero eigenvalue
    the square root exists but has no derivative (its Sylvester equation is singular),
    so matdiff takes both on the matrices with no eigenvalue on the closed negative
    real axis."""
    if not ops.eager or np.prod(X.shape) == 0:
        return
    lam = ops.eigvals(X)
    if not np.all(np.isfinite(lam)):
        raise EvaluationError(f"{fn}(X) is not defined: X has entries that are not finite")
    scale = max(1.0, float(np.max(np.abs(lam))))
    real = np.abs(lam.imag) <= 1e-12 * scale
    bad = real & (lam.real <= 1e-14 * scale)
    if np.any(bad):
        worst = float(np.min(lam.real[bad]))
        worst = 0.0 if abs(worst) <= 1e-14 * scale else worst
        what = {"logm": "logarithm", "sqrtm": "square root"}.get(fn, "function")
        why = ("" if worst < 0 or fn == "logm" else
               " (at a zero eigenvalue the square root has no derivative)")
        raise EvaluationError(
            f"{fn}(X) is not defined: X has the eigenvalue {worst:.6g} ≤ 0, and the "
            f"principal matrix {what} of a real matrix needs every real eigenvalue > 0"
            f"{why}")


# ------------------------------------------------------------------ expm
def _expm_taylor(X: np.ndarray) -> np.ndarray:
    # e^X = (e^{X/2^s})^{2^s}, ‖X/2^s‖₁ ≤ 1/2: 18 Taylor terms leave 2⁻¹⁹/19! ≈ 1e-23
    X = np.asarray(X, dtype=np.float64)
    if X.size == 0:
        return X.copy()
    norm = float(np.abs(X).sum(-2).max())
    if not np.isfinite(norm):
        return np.full_like(X, np.nan)
    s = max(0, int(np.ceil(np.log2(norm / 0.5)))) if norm > 0.5 else 0
    A = X / 2.0 ** s
    eye = np.broadcast_to(np.eye(X.shape[-1]), X.shape)
    term, total = eye, eye.copy()
    for k in range(1, 19):
        term = term @ A / k
        total = total + term
    for _ in range(s):
        total = total @ total
    return total


def expm(X: Any, backend: str = "numpy") -> Any:
    """``e^X`` of each matrix of ``X`` (``(..., n, n)``)."""
    if backend == "numpy":
        return _expm_taylor(X)
    if backend == "jax":
        import jax.scipy.linalg as jsl

        return jsl.expm(X)
    import torch

    return torch.linalg.matrix_exp(X)


# ------------------------------------------------------------------ sqrtm
def _denman_beavers(X: Any, ops: Ops, steps: int = 14) -> Any:
    # Y → X^{1/2}, Z → X^{-1/2}, quadratically once close (Higham, eq. 6.15); eager
    # backends stop when Y no longer moves, JAX runs a fixed number of steps
    def step(_: Any, YZ: tuple) -> tuple:
        Y, Z = YZ
        return (Y + ops.inv(Z)) / 2, (Z + ops.inv(Y)) / 2

    YZ = (X, ops.eye_like(X) + 0 * X)
    if not ops.eager:
        for _ in range(steps):  # unrolled: XLA's while loop around LAPACK calls hung here
            YZ = step(0, YZ)
        return YZ[0]
    for _ in range(100):
        Y = YZ[0]
        YZ = step(0, YZ)
        if ops.norm1(YZ[0] - Y) <= 1e-15 * max(ops.norm1(Y), 1e-300):
            break
    return YZ[0]


def _converged(fn: str, X: Any, R: Any, ops: Ops) -> Any:
    # a square root that does not square back: X had eigenvalues on the negative axis
    err = ops.norms(R @ R - X)
    ok = err <= 1e-8 * (ops.norms(X) + 1e-300)
    if ops.eager:
        if not bool(ok.all()):
            raise EvaluationError(f"{fn}(X) is not defined here: X has eigenvalues on the "
                                  "negative real axis (its square root does not converge)")
        return R
    return ops.where(ok, R, ops.xp.nan * R)


def sqrtm(X: Any, backend: str = "numpy") -> Any:
    """The principal square root ``X^{1/2}`` of each matrix of ``X``."""
    ops = ops_of(backend)
    check_spectrum("sqrtm", X, ops)
    return _converged("sqrtm", X, _denman_beavers(X, ops), ops)


# ------------------------------------------------------------------ logm
def _log_near_identity(R: Any, ops: Ops, terms: int = 14) -> Any:
    # log R = 2 atanh(W) = 2 Σⱼ W^{2j+1}/(2j+1), W = (R − I)(R + I)⁻¹, ‖W‖ small
    eye = ops.eye_like(R)
    W = (R - eye) @ ops.inv(R + eye)
    W2 = W @ W
    total, power = W, W
    for j in range(1, terms):
        power = power @ W2
        total = total + power / (2 * j + 1)
    return 2 * total


def logm(X: Any, backend: str = "numpy") -> Any:
    """The principal logarithm ``log X`` of each matrix of ``X``."""
    ops = ops_of(backend)
    check_spectrum("logm", X, ops)
    R, k = X, 0
    eye = ops.eye_like(X)
    # take square roots until R is within 1/4 of I (eager), or 8 of them (JAX)
    while k < (40 if ops.eager else 8):
        if ops.eager and ops.norm1(R - eye) <= 0.25:
            break
        R = _converged("logm", R, _denman_beavers(R, ops), ops)
        k += 1
    return _log_near_identity(R, ops) * (2.0 ** k)


_FUNCTIONS = {"expm": expm, "logm": logm, "sqrtm": sqrtm}


def frechet(fn: str, X: Any, E: Any, backend: str = "numpy") -> Any:
    """``L_F(X, E)``, the Fréchet derivative of ``F`` (``fn``: "expm", "logm",
    "sqrtm") at ``X`` in the direction ``E``: the top-right block of
    ``F([[X, E], [0, X]])``, each of ``E``'s matrices scaled to norm one first."""
    ops = ops_of(backend)
    n = X.shape[-1]
    batch = tuple(np.broadcast_shapes(tuple(X.shape[:-2]), tuple(E.shape[:-2])))
    X = ops.broadcast(X, batch + (n, n))
    E = ops.broadcast(E, batch + (n, n))
    if fn != "expm":
        check_spectrum(fn, X, ops)
    scale = ops.norms(E)
    scale = ops.where(scale > 0, scale, 1.0 + 0 * scale)
    zero = 0 * X
    block = ops.cat([ops.cat([X, E / scale], -1), ops.cat([zero, X], -1)], -2)
    out = _FUNCTIONS[fn](block, backend)[..., :n, n:] * scale
    return out
