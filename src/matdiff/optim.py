"""Optimizers updating NumPy parameters in place: SGD (with momentum, Nesterov), Adam,
AdamW.  Their updates equal ``torch.optim``'s for the same gradients (tested).

When the parameters tile one flat buffer (the models of :mod:`matdiff.nn` hold them
so: ``params.flat``), small parameters are updated together, a few whole-buffer
operations however many there are, and each big one on its own; no operation makes a
temporary array (``out=`` into scratch buffers kept between steps).  Other parameters
are updated one by one with the same operations.

>>> import numpy as np, matdiff as md
>>> params = {"w": np.array([1.0, 2.0])}
>>> opt = md.optim.SGD(params, lr=0.1)
>>> opt.step({"w": np.array([1.0, 1.0])})
>>> params["w"].tolist()
[0.9, 1.9]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import DataError, NNError, NonFiniteLossError, UnknownNameError

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer",
           "flat_buffer"]


def _nonneg(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NNError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise NNError(f"{what} must be a finite number >= 0, got {value!r}")
    return v


def _axpy(a: float, x: np.ndarray, y: np.ndarray, tmp: np.ndarray) -> None:
    """``y += a · x`` in place, through the scratch buffer ``tmp`` (one pass for
    ``a = ±1``, else two).  NumPy only: SciPy's BLAS ``daxpy`` would save a pass, but
    it is a second OpenBLAS beside NumPy's, and with more than one thread the two
    thread pools spin against each other (measured: a 784-128-10 step went from 1.6
    to 13 ms on 2 threads)."""
    if a == 1.0:
        y += x
    elif a == -1.0:
        y -= x
    else:
        np.multiply(x, a, out=tmp)
        y += tmp


def flat_buffer(params: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The 1-D array that ``params`` tile, in order and without gaps, or ``None``.

    ``params`` names it as ``params.flat``; the tiling is checked on the addresses,
    so a dict whose arrays are not (or no longer) views of it gives ``None``."""
    flat = getattr(params, "flat", None)
    if not isinstance(flat, np.ndarray) or flat.ndim != 1 or flat.dtype != np.float64 \
            or not flat.flags.c_contiguous or not flat.flags.writeable:
        return None
    addr = flat.__array_interface__["data"][0]
    for p in params.values():
        if not isinstance(p, np.ndarray) or not p.flags.c_contiguous \
                or p.__array_interface__["data"][0] != addr:
            return None
        addr += p.nbytes
    if addr != flat.__array_interface__["data"][0] + flat.nbytes:
        return None
    return flat


#: a parameter of at least this many numbers is updated on its own (its gradient is
#: used where it lies, not copied); smaller neighbours share one update
_BIG = 16384


class _Group:
    """What one update works on: a segment ``p`` of the parameters (one parameter,
    or adjacent ones in a flat buffer), a gradient buffer ``g``, a scratch buffer
    ``tmp`` and the state ``slots`` (all of ``p``'s shape); ``members`` are the
    indices of its parameters."""

    __slots__ = ("p", "g", "tmp", "slots", "members")

    def __init__(self, p: np.ndarray, names: Sequence[str], members: list[int]) -> None:
        self.p = p
        self.g = np.empty_like(p)
        self.tmp = np.empty_like(p)
        self.slots = {n: np.zeros_like(p) for n in names}
        self.members = members

    def gather(self, grads: Sequence[np.ndarray], owned: bool) -> np.ndarray:
        """This group's gradient: copied into ``g``, or the caller's own array where
        ``owned`` allows (a fresh array no other gradient shares)."""
        m = self.members
        if len(m) == 1:
            a = grads[m[0]]
            if owned and a.base is None and a.flags.c_contiguous and a.flags.writeable \
                    and a.dtype == np.float64 and a.size == self.p.size \
                    and sum(x is a for x in grads) == 1 \
                    and not any(x.base is a for x in grads):
                return a.reshape(self.p.shape)
            np.copyto(self.g, a.reshape(self.p.shape))
        else:
            np.concatenate([grads[i].reshape(-1) for i in m], out=self.g)
        return self.g


class Optimizer:
    """Base class: holds ``params`` (name -> float64 array, updated in place).

    ``params`` may be left ``None`` and bound later with :meth:`bind` (``fit`` does).
    ``state[name]`` holds each parameter's buffers (torch's names: ``exp_avg``,
    ``exp_avg_sq``, ``momentum_buffer``) and its ``step`` count."""

    #: names of the state buffers the update keeps per parameter
    slots: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray] | None, lr: float) -> None:
        self.lr = _nonneg(lr, "lr")
        self.params: Mapping[str, np.ndarray] | None = None
        self._state: dict[str, dict[str, Any]] = {}
        self.steps = 0
        self._groups: list[_Group] = []
        self._views: tuple = ()
        self.flat: np.ndarray | None = None
        if params is not None:
            self.bind(params)

    def bind(self, params: Mapping[str, np.ndarray]) -> Optimizer:
        """Take ``params`` (state restarts); a flat buffer they tile is used whole."""
        for k, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype != np.float64:
                raise DataError(f"parameter {k} must be a float64 NumPy array (updated in "
                                f"place), got {type(p).__name__}"
                                + (f" of dtype {p.dtype}" if isinstance(p, np.ndarray) else ""))
            if not p.flags.writeable:
                raise DataError(f"parameter {k} is read-only; it is updated in place")
        self.params = params
        self.steps = 0
        self._views = arrays = tuple(params.values())
        names = list(params)
        self.flat = flat_buffer(params)
        self._state = {}
        if self.flat is not None:
            # segments of the flat buffer: each big parameter alone, runs of small
            # ones together
            segments: list[list[int]] = []
            for i, p in enumerate(arrays):
                if p.size >= _BIG or not segments or arrays[segments[-1][-1]].size >= _BIG:
                    segments.append([i])
                else:
                    segments[-1].append(i)
            self._groups = []
            off = 0
            for seg in segments:
                n = sum(arrays[i].size for i in seg)
                grp = _Group(self.flat[off:off + n], self.slots, seg)
                self._groups.append(grp)
                at = 0
                for i in seg:
                    k = arrays[i].size
                    self._state[names[i]] = {
                        s: buf[at:at + k].reshape(arrays[i].shape)
                        for s, buf in grp.slots.items()}
                    at += k
                off += n
        else:
            self._groups = [_Group(p, self.slots, [i]) for i, p in enumerate(arrays)]
            self._state = {k: dict(grp.slots) for k, grp in zip(names, self._groups)}
        return self

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """``{name: {buffer: array, "step": t}}`` in ``torch.optim``'s terms (the
        buffers are the optimizer's own; ``step`` is :attr:`steps`)."""
        return {k: {**st, "step": self.steps} for k, st in self._state.items()}

    def _grads(self, grads: Mapping[str, Any]) -> list[np.ndarray]:
        if self.params is None:
            raise NNError("the optimizer has no parameters: pass them or call .bind(params)")
        missing = [k for k in self.params if k not in grads]
        extra = [k for k in grads if k not in self.params]
        if missing or extra:
            raise DataError("gradients do not match the parameters: "
                            + (f"missing {missing} " if missing else "")
                            + (f"unknown {extra}" if extra else ""))
        out = []
        for k, p in self.params.items():
            g = grads[k]
            if not isinstance(g, np.ndarray):
                try:
                    g = np.asarray(g, dtype=np.float64)
                except (TypeError, ValueError):
                    raise DataError(f"gradient of {k} is not an array of numbers") from None
            if g.shape != p.shape:
                raise DataError(f"gradient of {k} has shape {g.shape}, the parameter "
                                f"{p.shape}")
            out.append(g)
        return out

    def step(self, grads: Mapping[str, Any], *, check_finite: bool = False) -> None:
        """Update every parameter in place from its gradient (``grads``: name -> array).

        With ``check_finite``, a NaN or infinite gradient raises
        :class:`~matdiff.nn.NonFiniteLossError` and no parameter is changed."""
        self.step_arrays(self._grads(grads), check_finite=check_finite)

    def step_arrays(self, grads: Sequence[np.ndarray], *, check_finite: bool = False,
                    owned: bool = False) -> None:
        """:meth:`step` with the gradients as a sequence in the parameters' order,
        already arrays of their shapes (the training loop's fast path: no name
        checks).  ``owned``: the arrays are the caller's to overwrite (fresh results of
        a compiled function), so a big gradient is used where it lies."""
        params = self.params
        if params is None:
            raise NNError("the optimizer has no parameters: pass them or call .bind(params)")
        views = self._views
        if len(params) != len(views) or any(
                a is not b for a, b in zip(params.values(), views)):
            raise NNError("a parameter array was replaced since the optimizer was bound: "
                          "update parameters in place (p[...] = new) or call .bind again")
        gs = [grp.gather(grads, owned) for grp in self._groups]
        if check_finite:
            # one BLAS pass: a NaN or ±inf anywhere makes Σg² non-finite (so does a
            # gradient norm beyond 1e154, which is no better)
            total = sum(float(np.vdot(g, g)) for g in gs)
            if not math.isfinite(total):
                raise NonFiniteLossError("a gradient is not finite (NaN, infinite, or "
                                         "with a norm that overflows)")
        self.steps += 1
        for grp, g in zip(self._groups, gs):
            self._update(grp, g, self.steps)

    def _update(self, grp: _Group, g: np.ndarray, t: int) -> None:
        """Update ``grp.p`` in place from its gradient ``g`` (which it may overwrite)
        at step ``t``."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``::

        g = grad + weight_decay · p
        buf = g (first step), else momentum · buf + (1 − dampening) · g
        g = g + momentum · buf if nesterov else buf      (when momentum > 0)
        p -= lr · g
    """

    slots = ("momentum_buffer",)

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 0.01,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        self.momentum = _nonneg(momentum, "momentum")
        self.dampening = _nonneg(dampening, "dampening")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise NNError("Nesterov momentum needs momentum > 0 and dampening = 0")
        if not self.momentum:
            self.slots = ()
        super().__init__(params, lr)

    def _update(self, grp: _Group, g: np.ndarray, t: int) -> None:
        p, tmp = grp.p, grp.tmp
        if self.weight_decay:
            _axpy(self.weight_decay, p, g, tmp)
        if self.momentum:
            buf = grp.slots["momentum_buffer"]
            if t == 1:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                _axpy(1.0 - self.dampening, g, buf, tmp)
            if self.nesterov:
                _axpy(self.momentum, buf, g, tmp)
            else:
                g = buf
        _axpy(-self.lr, g, p, tmp)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam``::

        g = grad + weight_decay · p            (L2, torch's weight_decay)
        m = β₁ m + (1 − β₁) g ;  v = β₂ v + (1 − β₂) g²
        p -= lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)
    """

    decoupled = False
    #: the moments, kept scaled: M = m / (1 − β₁), V = v / (1 − β₂) (see _update)
    slots = ("M", "V")

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise NNError(f"betas must be two numbers, got {betas!r}") from None
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise NNError(f"betas must be in [0, 1), got {betas!r}")
        self.betas = (b1, b2)
        self.eps = _nonneg(eps, "eps")
        self.weight_decay = _nonneg(weight_decay, "weight_decay")
        super().__init__(params, lr)

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """``{name: {"exp_avg": m, "exp_avg_sq": v, "step": t}}``, torch's moments
        (copies: the optimizer keeps them scaled)."""
        b1, b2 = self.betas
        return {k: {"exp_avg": (1.0 - b1) * st["M"], "exp_avg_sq": (1.0 - b2) * st["V"],
                    "step": self.steps} for k, st in self._state.items()}

    def _update(self, grp: _Group, g: np.ndarray, t: int) -> None:
        b1, b2 = self.betas
        p, tmp = grp.p, grp.tmp
        M, V = grp.slots["M"], grp.slots["V"]
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                _axpy(self.weight_decay, p, g, tmp)
        # m = β₁m + (1 − β₁)g and v = β₂v + (1 − β₂)g² are kept as M = m/(1 − β₁) and
        # V = v/(1 − β₂): M = β₁M + g, V = β₂V + g², a pass less each
        M *= b1
        M += g
        V *= b2
        np.multiply(g, g, out=tmp)
        V += tmp
        # p −= lr/(1 − β₁ᵗ) · m / (√v / c + eps), c = √(1 − β₂ᵗ); with m = (1 − β₁)M
        # and √v = √(1 − β₂)·√V that is  p −= s · M / (√V + e)  for the numbers
        # s = lr(1 − β₁)c / ((1 − β₁ᵗ)√(1 − β₂)) and e = eps·c / √(1 − β₂)
        c = math.sqrt(1.0 - b2 ** t)
        r = math.sqrt(1.0 - b2)
        np.sqrt(V, out=tmp)
        tmp += self.eps * c / r
        np.divide(M, tmp, out=tmp)
        _axpy(-self.lr * (1.0 - b1) * c / ((1.0 - b1 ** t) * r), tmp, p, tmp)


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
