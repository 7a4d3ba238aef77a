"""Optimizers updating NumPy parameters in place: SGD (with momentum, Nesterov), Adam,
AdamW.  Their updates equal ``torch.optim``'s for the same gradients (tested).

>>> import numpy as np, matdiff as md
>>> params = {"w": np.array([1.0, 2.0])}
>>> opt = md.optim.SGD(params, lr=0.1)
>>> opt.step({"w": np.array([1.0, 1.0])})
>>> params["w"].tolist()
[0.9, 1.9]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .nn.errors import DataError, NNError, UnknownNameError

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer"]


def _nonneg(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NNError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise NNError(f"{what} must be a finite number >= 0, got {value!r}")
    return v


class Optimizer:
    """Base class: holds ``params`` (name -> float64 array, updated in place).

    ``params`` may be left ``None`` and bound later with :meth:`bind` (``fit`` does)."""

    def __init__(self, params: Mapping[str, np.ndarray] | None, lr: float) -> None:
        self.lr = _nonneg(lr, "lr")
        self.params: Mapping[str, np.ndarray] | None = None
        self.state: dict[str, dict[str, Any]] = {}
        self.steps = 0
        if params is not None:
            self.bind(params)

    def bind(self, params: Mapping[str, np.ndarray]) -> Optimizer:
        for k, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype != np.float64:
                raise DataError(f"parameter {k} must be a float64 NumPy array (updated in "
                                f"place), got {type(p).__name__}"
                                + (f" of dtype {p.dtype}" if isinstance(p, np.ndarray) else ""))
        self.params = params
        self.state = {}
        self.steps = 0
        return self

    def _grads(self, grads: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if self.params is None:
            raise NNError("the optimizer has no parameters: pass them or call .bind(params)")
        missing = [k for k in self.params if k not in grads]
        extra = [k for k in grads if k not in self.params]
        if missing or extra:
            raise DataError("gradients do not match the parameters: "
                            + (f"missing {missing} " if missing else "")
                            + (f"unknown {extra}" if extra else ""))
        out = {}
        for k, p in self.params.items():
            g = np.asarray(grads[k], dtype=np.float64)
            if g.shape != p.shape:
                raise DataError(f"gradient of {k} has shape {g.shape}, the parameter "
                                f"{p.shape}")
            out[k] = g
        return out

    def step(self, grads: Mapping[str, Any]) -> None:
        """Update every parameter in place from its gradient."""
        gs = self._grads(grads)
        self.steps += 1
        for k, p in self.params.items():  # type: ignore[union-attr]
            self._update(k, p, gs[k], self.state.setdefault(k, {}))

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, st: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``::

        g = grad + weight_decay · p
        buf = g (first step), else momentum · buf + (1 − dampening) · g
        g = g + momentum · buf if nesterov else buf      (when momentum > 0)
        p -= lr · g
    """

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 0.01,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = _nonneg(momentum, "momentum")
        self.dampening = _nonneg(dampening, "dampening")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise NNError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, st: dict) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam``::

        g = grad + weight_decay · p            (L2, torch's weight_decay)
        m = β₁ m + (1 − β₁) g ;  v = β₂ v + (1 − β₂) g²
        p -= lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)
    """

    decoupled = False

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise NNError(f"betas must be two numbers, got {betas!r}") from None
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise NNError(f"betas must be in [0, 1), got {betas!r}")
        self.betas = (b1, b2)
        self.eps = _nonneg(eps, "eps")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, st: dict) -> None:
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        if not st:
            st["exp_avg"] = np.zeros_like(p)
            st["exp_avg_sq"] = np.zeros_like(p)
            st["step"] = 0
        st["step"] += 1
        t = st["step"]
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * g * g
        bc1 = 1.0 - b1 ** t
        bc2 = 1.0 - b2 ** t
        denom = np.sqrt(v) / np.sqrt(bc2) + self.eps
        p -= (self.lr / bc1) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``
    (default ``weight_decay=0.01``): ``p *= 1 − lr · weight_decay`` before Adam's step."""

    decoupled = True

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


#: name -> (class, default keyword arguments)
OPTIMIZERS: dict[str, tuple[type, dict]] = {
    "sgd": (SGD, {"lr": 0.01}),
    "momentum": (SGD, {"lr": 0.01, "momentum": 0.9}),
    "nesterov": (SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {"lr": 1e-3}),
    "adamw": (AdamW, {"lr": 1e-3}),
}


def make_optimizer(name: Any, params: Mapping[str, np.ndarray] | None = None,
                   **kwargs: Any) -> Optimizer:
    """An optimizer by name (``sgd``, ``momentum``, ``nesterov``, ``adam``, ``adamw``);
    ``kwargs`` override its defaults (``lr=...``, ``weight_decay=...``)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise UnknownNameError("optimizer", name, OPTIMIZERS)
    cls, defaults = OPTIMIZERS[key]
    opts = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    try:
        return cls(params, **opts)
    except TypeError as exc:
        raise NNError(f"optimizer {name!r}: {exc}") from None
