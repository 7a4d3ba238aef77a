"""Optimizers updating NumPy parameters in place: SGD (with momentum, Nesterov), Adam,
AdamW.  Their updates equal ``torch.optim``'s for the same gradients (tested), and so
do the learning-rate schedules (:class:`StepLR`, :class:`CosineLR`, :class:`WarmupLR`,
:class:`SequentialLR`, as ``torch.optim.lr_scheduler``'s) and gradient-norm clipping
(``clip_norm=``, :func:`clip_grad_norm`, as ``torch.nn.utils.clip_grad_norm_``).
An optimizer's :meth:`~Optimizer.state_dict` holds its hyperparameters, step count and
buffers exactly, so training resumed from it continues bit for bit.

When the parameters tile one flat buffer (the models of :mod:`matdiff.nn` hold them
so: ``params.flat``), small parameters are updated together, a few whole-buffer
operations however many there are, and each big one on its own; no operation makes a
temporary array (``out=`` into scratch buffers kept between steps).  Other parameters
are updated one by one with the same operations.

Where Numba is installed (the extra ``matdiff[fast]``), each segment of SGD's, Adam's
and AdamW's update is one loop instead of a dozen passes (:data:`fused_settings`,
``_KERNELS_SRC``), with the same results bit for bit; it comes once the NumPy update
has taken as long as getting the kernels costs (a run of a few hundred small steps
never starts Numba), and ``MATDIFF_FUSE=0`` keeps the NumPy update.

>>> import numpy as np, matdiff as md
>>> params = {"w": np.array([1.0, 2.0])}
>>> opt = md.optim.SGD(params, lr=0.1)
>>> opt.step({"w": np.array([1.0, 1.0])})
>>> params["w"].tolist()
[0.9, 1.9]
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import DataError, NNError, NonFiniteLossError, UnknownNameError

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer",
           "flat_buffer", "clip_grad_norm", "LRSchedule", "StepLR", "CosineLR", "WarmupLR",
           "SequentialLR"]


def _nonneg(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NNError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise NNError(f"{what} must be a finite number >= 0, got {value!r}")
    return v


def _clip_norm(value: Any) -> float | None:
    if value is None:
        return None
    v = _nonneg(value, "clip_norm")
    if v == 0:
        raise NNError("clip_norm must be > 0 (None for no clipping)")
    return v


def _clip_scale(norm: float, max_norm: float) -> float:
    """The factor ``min(1, max_norm / (‖g‖ + 1e-6))`` that clipping multiplies every
    gradient by (``torch.nn.utils.clip_grad_norm_``'s, with its 1e-6)."""
    return min(1.0, max_norm / (norm + 1e-6))


def clip_grad_norm(grads: Mapping[str, np.ndarray] | Sequence[np.ndarray],
                   max_norm: float) -> float:
    """Scale the gradients in place so that their global L2 norm (over all of them
    together, ``‖[vec g₁; vec g₂; …]‖₂``) is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_``; returns the norm before clipping.

    The factor is ``min(1, max_norm / (‖g‖ + 1e-6))``: one number for all gradients, so
    the direction of the whole gradient is kept.  Optimizers do the same to each
    step's gradients when given ``clip_norm=``.

    >>> import numpy as np
    >>> g = {"w": np.array([3.0, 0.0]), "b": np.array(4.0)}
    >>> clip_grad_norm(g, 1.0)
    5.0
    >>> np.round(g["w"], 6).tolist(), round(float(g["b"]), 6)
    ([0.6, 0.0], 0.8)
    """
    arrays = list(grads.values()) if isinstance(grads, Mapping) else list(grads)
    limit = _clip_norm(max_norm)
    if limit is None:
        raise NNError("max_norm must be a number > 0")
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or not a.flags.writeable:
            raise DataError("clip_grad_norm scales floating-point NumPy arrays in place")
    norm = math.sqrt(sum(float(np.vdot(a, a)) for a in arrays))
    scale = _clip_scale(norm, limit)
    if scale < 1.0:
        for a in arrays:
            a *= scale
    return norm


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
    so a dict whose arrays are not (or no longer) views of it gives ``None``.

    >>> import matdiff as md
    >>> m = md.nn.Neuron(3)
    >>> flat_buffer(m.params) is m.params.flat, flat_buffer({"w": m.params["w"]})
    (True, None)
    """
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


# ====================================================================== fused updates
#: The element-wise updates as one loop each (Numba, the optional extra
#: ``matdiff[fast]``): the NumPy update makes a dozen passes over the buffer (Adam:
#: ``M *= β₁``, ``M += g``, ``V *= β₂``, ``g·g``, ``V += ·``, ``√V``, ``+ e``, ``M / ·``,
#: ``· a``, ``p += ·``), a kernel reads ``p, g, M, V`` once and writes ``p, M, V`` once.
#: Each kernel does the NumPy update's operations in the same order on the same
#: numbers (``y += a·x`` is ``y + x·a``, as :func:`_axpy`; for ``a = ±1`` that is
#: ``y ± x`` exactly), with ``fastmath=False`` (no reassociation, no fused
#: multiply-add), and IEEE ``√`` and ``/`` are correctly rounded in both: the results
#: are bit for bit the NumPy update's (tested with tolerance 0).  The scalars are
#: computed in Python, as the NumPy update computes them, and passed in the arrays'
#: dtype (NumPy casts a Python float to the array's dtype the same way).
_KERNELS_SRC = """\
from numba import njit
import numpy as np


@njit(cache=True, nogil=True, fastmath=False)
def adam(p, g, M, V, l2, wd, decoupled, f, b1, b2, e, a):
    # g <- g + p*wd (L2) ; p <- p*f (decoupled, f = 1 - lr*wd) ;
    # M <- M*b1 + g ; V <- V*b2 + g*g ; p <- p + (M / (sqrt(V) + e))*a
    for i in range(p.shape[0]):
        pi = p[i]
        gi = g[i]
        if l2:
            gi = gi + pi * wd
        if decoupled:
            pi = pi * f
        m = M[i] * b1 + gi
        v = V[i] * b2 + gi * gi
        M[i] = m
        V[i] = v
        p[i] = pi + (m / (np.sqrt(v) + e)) * a


@njit(cache=True, nogil=True, fastmath=False)
def sgd(p, g, buf, l2, wd, momentum, first, mom, damp1, nesterov, a):
    # g <- g + p*wd ; buf <- g (first step) or buf*mom + g*damp1 ;
    # g <- g + buf*mom (Nesterov) or buf ; p <- p + g*a
    for i in range(p.shape[0]):
        pi = p[i]
        gi = g[i]
        if l2:
            gi = gi + pi * wd
        if momentum:
            if first:
                b = gi
            else:
                b = buf[i] * mom + gi * damp1
            buf[i] = b
            if nesterov:
                gi = gi + b * mom
            else:
                gi = b
        p[i] = pi + gi * a
"""

#: when the fused update replaces the NumPy one: ``enabled`` (``MATDIFF_FUSE=0`` in
#: the environment turns it off, as :mod:`matdiff.compile.fuse`); the price of
#: getting the kernels, in seconds of NumPy update time an optimizer spends first
#: (the rule of ski rental, as ``fuse.Kernel``: never more than twice the best cost):
#: ``load_s`` where Numba is already running in the process and the kernels are in
#: the disk cache (~10 ms, their load), else ``start_s`` (``import numba`` and its
#: start-up, ~0.4–0.9 s, plus the compile of a kernel, ~0.4 s, measured: see
#: ``benchmarks/README.md``, "Training step"); ``min_size``: the fewest numbers a
#: segment has for its kernel to be used.  Measured (Adam, one segment, 2-core
#: Xeon under load): the kernel call costs 6.3 µs at 16 numbers against NumPy's
#: 9.4 µs (the call's Python and Numba's dispatch of 12 arguments, against ten NumPy
#: calls), 9.3 against 13.0 µs at 1024, so every segment is fused
fused_settings: dict[str, Any] = {"enabled": os.environ.get("MATDIFF_FUSE", "1") != "0",
                                  "load_s": 0.01, "start_s": 1.0, "min_size": 1}

_KERNELS: Any = None  # the loaded kernel module; False once it could not be had


def _kernels() -> Any:
    """The kernel module (compiled or loaded from the disk cache), or ``None`` where
    Numba is missing or fails."""
    global _KERNELS
    if _KERNELS is None:
        from .compile import fuse
        _KERNELS = False
        if fuse.numba_available():
            try:
                _KERNELS = fuse.load_module(_KERNELS_SRC, "matdiff_optim")
            except Exception:  # noqa: BLE001 - a broken Numba: the NumPy update
                _KERNELS = False
    return _KERNELS or None


def _kernel_price() -> float:
    """What getting the kernels costs now, in seconds (see :data:`fused_settings`)."""
    if _KERNELS is not None:
        return 0.0
    from .compile import fuse
    if "numba" in sys.modules and fuse.is_cached(_KERNELS_SRC, "matdiff_optim"):
        return float(fused_settings["load_s"])
    return float(fused_settings["start_s"])


def _flat1(a: np.ndarray) -> np.ndarray | None:
    """``a`` as a 1-D view (no copy), or ``None`` where it is not C-contiguous."""
    return a.reshape(-1) if a.flags.c_contiguous else None


#: optimizer class name -> class (every subclass of :class:`Optimizer`), for
#: :meth:`Optimizer.from_state_dict`: a saved state names its class, and only classes
#: defined in this process can be built from it (nothing is imported).  This
#: module's classes go by their names (``"Adam"``), others by ``"module.Class"``, so a
#: user's class of the same name replaces none of them.
OPTIMIZER_CLASSES: dict[str, type[Optimizer]] = {}


def _class_key(cls: type) -> str:
    return cls.__name__ if cls.__module__ == __name__ else f"{cls.__module__}.{cls.__qualname__}"


class Optimizer:
    """Base class: holds ``params`` (name -> float64 array, updated in place).

    ``params`` may be left ``None`` and bound later with :meth:`bind` (``fit`` does).
    ``state[name]`` holds each parameter's buffers (torch's names: ``exp_avg``,
    ``exp_avg_sq``, ``momentum_buffer``) and its ``step`` count.

    ``lr`` is the learning rate of the next step (a schedule changes it);
    ``initial_lr`` the one the optimizer was made with, which schedules scale (torch's
    ``initial_lr``).  ``clip_norm``: when set, each step's gradients are first scaled
    so that their global L2 norm is at most ``clip_norm`` (:func:`clip_grad_norm`);
    ``grad_norm`` is then the norm before clipping.

    >>> import numpy as np
    >>> opt = SGD({"w": np.zeros(2)}, lr=0.5, clip_norm=1.0)
    >>> opt.step({"w": np.array([3.0, 4.0])})       # norm 5, clipped to 1
    >>> np.round(opt.params["w"], 6).tolist(), opt.grad_norm
    ([-0.3, -0.4], 5.0)
    """

    #: names of the state buffers the update keeps per parameter
    slots: tuple[str, ...] = ()
    #: the constructor's hyperparameters (besides ``lr`` and ``clip_norm``), which
    #: :meth:`state_dict` records
    hyperparameters: tuple[str, ...] = ()
    #: the class whose :meth:`_fused` does what its :meth:`_update` does (a fused
    #: kernel), set by each class that has one; a subclass that overrides
    #: ``_update`` alone keeps its own NumPy update
    _fused_for: type[Optimizer] | None = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        OPTIMIZER_CLASSES[_class_key(cls)] = cls

    def __init__(self, params: Mapping[str, np.ndarray] | None, lr: float, *,
                 clip_norm: float | None = None) -> None:
        self.lr: float = _nonneg(lr, "lr")
        self.initial_lr: float = self.lr
        self._clip: float | None = None
        self.clip_norm = clip_norm
        self.grad_norm: float | None = None
        self.params: Mapping[str, np.ndarray] | None = None
        self._state: dict[str, dict[str, Any]] = {}
        self.steps: int = 0
        self._groups: list[_Group] = []
        self._views: tuple[np.ndarray, ...] = ()
        self.flat: np.ndarray | None = None
        self._pending: dict[str, Any] | None = None
        #: seconds spent in the NumPy update so far (the rent of ski rental);
        #: whether the update is fused (``None``: not decided yet; a flag, not the
        #: kernel module, so that the optimizer pickles)
        self._spent = 0.0
        self._price: float | None = None
        self._fuse: bool | None = None
        owner = type(self)._fused_for
        self._has_kernel = owner is not None and type(self)._update is owner._update \
            and type(self)._fused is owner._fused
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
                    size = arrays[i].size
                    self._state[names[i]] = {
                        s: buf[at:at + size].reshape(arrays[i].shape)
                        for s, buf in grp.slots.items()}
                    at += size
                off += n
        else:
            self._groups = [_Group(p, self.slots, [i]) for i, p in enumerate(arrays)]
            self._state = {k: dict(grp.slots) for k, grp in zip(names, self._groups)}
        if self._pending is not None:  # a state loaded before there were parameters
            pending, self._pending = self._pending, None
            self.load_state_dict(pending)
        return self

    @property
    def clip_norm(self) -> float | None:
        """The global L2 norm each step's gradients are clipped to (``None``: none)."""
        return self._clip

    @clip_norm.setter
    def clip_norm(self, value: float | None) -> None:
        self._clip = _clip_norm(value)

    # -- saving and resuming
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain data: ``{"optimizer": class name,
        "steps": t, "hyperparameters": {"lr", "initial_lr", "clip_norm", ...},
        "state": {param: {buffer: array}}}``.  The buffers are copies of the
        optimizer's own (Adam's moments as it keeps them, scaled), so loading them
        continues bit for bit.

        >>> import numpy as np
        >>> opt = Adam({"w": np.zeros(2)}, lr=0.1)
        >>> opt.step({"w": np.array([1.0, -1.0])})
        >>> sd = opt.state_dict()
        >>> sd["optimizer"], sd["steps"], sorted(sd["state"]["w"])
        ('Adam', 1, ['M', 'V'])
        >>> again = Adam({"w": opt.params["w"].copy()})
        >>> again.load_state_dict(sd)
        >>> again.lr, again.steps
        (0.1, 1)
        """
        hyper: dict[str, Any] = {"lr": self.lr, "initial_lr": self.initial_lr,
                                 "clip_norm": self.clip_norm}
        for k in self.hyperparameters:
            v = getattr(self, k)
            hyper[k] = list(v) if isinstance(v, tuple) else v
        return {"optimizer": _class_key(type(self)), "steps": self.steps,
                "hyperparameters": hyper,
                "state": {k: {s: np.array(a, copy=True) for s, a in st.items()}
                          for k, st in self._state.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take the hyperparameters, step count and buffers of :meth:`state_dict`'s
        result (of an optimizer of the same class over parameters of the same names
        and shapes).  Before :meth:`bind`, the state waits and is taken on binding."""
        if not isinstance(state, Mapping) or not {"optimizer", "steps", "hyperparameters",
                                                  "state"} <= set(state):
            raise DataError("an optimizer state must be a dict with 'optimizer', 'steps', "
                            "'hyperparameters' and 'state' (Optimizer.state_dict())")
        if state["optimizer"] != _class_key(type(self)):
            raise DataError(f"the state is of a {state['optimizer']} optimizer, not of "
                            f"{_class_key(type(self))}")
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise DataError(f"the state's step count must be an integer >= 0, got {steps!r}")
        kw = _hyper_kwargs(state["hyperparameters"], self.hyperparameters)
        if self.params is None:
            self._pending = dict(state)
            return
        buffers = state["state"]
        if not isinstance(buffers, Mapping) or set(buffers) != set(self._state):
            raise DataError("the state is for the parameters "
                            f"{sorted(buffers) if isinstance(buffers, Mapping) else buffers!r}"
                            f", this optimizer has {sorted(self._state)}")
        # the hyperparameters go through the constructor's checks: a fresh object of
        # the same class validates them (and is dropped)
        check = _construct(type(self), kw)
        if check.slots != self.slots:
            raise DataError(f"the state's hyperparameters need the buffers {check.slots}, "
                            f"this optimizer keeps {self.slots}")
        arrays: list[tuple[np.ndarray, np.ndarray]] = []
        for k, st in self._state.items():
            got = buffers[k]
            if not isinstance(got, Mapping) or set(got) != set(st):
                raise DataError(f"the state of {k} has the buffers "
                                f"{sorted(got) if isinstance(got, Mapping) else got!r}, "
                                f"this optimizer keeps {sorted(st)}")
            for s_, buf in st.items():
                a = got[s_]
                if not isinstance(a, np.ndarray) or a.shape != buf.shape \
                        or a.dtype != np.float64:
                    raise DataError(f"the buffer {s_} of {k} must be a float64 array of "
                                    f"shape {buf.shape}, got "
                                    + (f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray)
                                       else type(a).__name__))
                arrays.append((buf, a))
        for k in kw:
            if k != "initial_lr":
                setattr(self, k, getattr(check, k))
        self.initial_lr = _nonneg(kw.get("initial_lr", self.lr), "initial_lr")
        for buf, a in arrays:
            np.copyto(buf, a)   # into the buffers in place: the flat layout stays
        self.steps = int(steps)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], params: Mapping[str, np.ndarray]
                        ) -> Optimizer:
        """A new optimizer of the class ``state`` names (one defined in this process:
        :data:`OPTIMIZER_CLASSES`; nothing is imported), over ``params``, with that state.

        >>> import numpy as np
        >>> opt = SGD({"w": np.zeros(2)}, lr=0.1, momentum=0.9)
        >>> again = Optimizer.from_state_dict(opt.state_dict(), {"w": np.zeros(2)})
        >>> type(again).__name__, again.momentum
        ('SGD', 0.9)
        """
        name = state.get("optimizer") if isinstance(state, Mapping) else None
        klass = OPTIMIZER_CLASSES.get(name) if isinstance(name, str) else None
        if klass is None or not issubclass(klass, cls):
            raise UnknownNameError("optimizer class", name,
                                   [k for k, c in OPTIMIZER_CLASSES.items()
                                    if issubclass(c, cls)])
        kw = _hyper_kwargs(state.get("hyperparameters"), klass.hyperparameters)
        opt = _construct(klass, kw)
        opt.load_state_dict(state)
        opt.bind(params)
        return opt

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
        if check_finite or self.clip_norm is not None:
            # one BLAS pass: a NaN or ±inf anywhere makes Σg² non-finite (so does a
            # gradient norm beyond 1e154, which is no better)
            total = sum(float(np.vdot(g, g)) for g in gs)
            if check_finite and not math.isfinite(total):
                raise NonFiniteLossError("a gradient is not finite (NaN, infinite, or "
                                         "with a norm that overflows)")
            self.grad_norm = math.sqrt(total)
            if self.clip_norm is not None:
                # global clipping: g ← g · min(1, c / (‖g‖₂ + 1e-6)), ‖g‖₂ over all
                # parameters at once (the gathered buffers are ours to scale)
                scale = _clip_scale(self.grad_norm, self.clip_norm)
                if scale < 1.0:
                    for g in gs:
                        g *= scale
        self.steps += 1
        t = self.steps
        kernels = self._fused_kernels()
        if kernels is None:
            start = time.perf_counter()
            for grp, g in zip(self._groups, gs):
                self._update(grp, g, t)
            self._spent += time.perf_counter() - start
        else:
            for grp, g in zip(self._groups, gs):
                if grp.p.size < fused_settings["min_size"] or not self._fused(kernels, grp, g, t):
                    self._update(grp, g, t)

    def _fused_kernels(self) -> Any:
        """The kernel module when this step's update is fused, else ``None``: once the
        NumPy update has taken as long as getting the kernels costs (see
        :data:`fused_settings`), with fusion enabled and a kernel for this class."""
        if not (self._has_kernel and fused_settings["enabled"]):
            return None
        if self._fuse is None:
            if self._spent < fused_settings["load_s"] and _KERNELS is None:
                return None
            if self._price is None:
                self._price = _kernel_price()
            if self._spent < self._price:
                return None
            self._fuse = True
        if not self._fuse:
            return None
        kernels = _kernels()   # the process's (an unpickled optimizer's may have none)
        if kernels is None:
            self._fuse = False
        return kernels

    def _update(self, grp: _Group, g: np.ndarray, t: int) -> None:
        """Update ``grp.p`` in place from its gradient ``g`` (which it may overwrite)
        at step ``t``."""
        raise NotImplementedError

    def _fused(self, kernels: Any, grp: _Group, g: np.ndarray, t: int) -> bool:
        """:meth:`_update` as one kernel of ``kernels`` (the same numbers); ``False``
        (nothing done) where the arrays are not all C-contiguous."""
        return False


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``::

        g = grad + weight_decay · p
        buf = g (first step), else momentum · buf + (1 − dampening) · g
        g = g + momentum · buf if nesterov else buf      (when momentum > 0)
        p -= lr · g

    >>> import numpy as np
    >>> p = {"w": np.array([1.0])}
    >>> opt = SGD(p, lr=0.1, momentum=0.5)
    >>> for _ in range(2):
    ...     opt.step({"w": np.array([1.0])})     # buf = 1, then 1.5
    >>> round(float(p["w"][0]), 10)
    0.75
    """

    slots: tuple[str, ...] = ("momentum_buffer",)
    hyperparameters: tuple[str, ...] = ("momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 0.01,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, *, clip_norm: float | None = None) -> None:
        self.momentum: float = _nonneg(momentum, "momentum")
        self.dampening: float = _nonneg(dampening, "dampening")
        self.weight_decay: float = _nonneg(weight_decay, "weight_decay")
        self.nesterov: bool = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise NNError("Nesterov momentum needs momentum > 0 and dampening = 0")
        if not self.momentum:
            self.slots = ()
        super().__init__(params, lr, clip_norm=clip_norm)

    def _fused(self, kernels: Any, grp: _Group, g: np.ndarray, t: int) -> bool:
        p, g1 = _flat1(grp.p), _flat1(g)
        buf = _flat1(grp.slots["momentum_buffer"]) if self.momentum else g1
        if p is None or g1 is None or buf is None:
            return False
        d = p.dtype.type
        kernels.sgd(p, g1, buf, bool(self.weight_decay), d(self.weight_decay),
                    bool(self.momentum), t == 1, d(self.momentum), d(1.0 - self.dampening),
                    self.nesterov, d(-self.lr))
        return True

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

    >>> import numpy as np
    >>> p = {"w": np.array([1.0, 1.0])}
    >>> Adam(p, lr=0.1).step({"w": np.array([3.0, -0.01])})   # first step: lr · sign(g)
    >>> np.round(p["w"], 6).tolist()
    [0.9, 1.1]
    """

    decoupled = False
    #: the moments, kept scaled: M = m / (1 − β₁), V = v / (1 − β₂) (see _update)
    slots: tuple[str, ...] = ("M", "V")
    hyperparameters: tuple[str, ...] = ("betas", "eps", "weight_decay")

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, clip_norm: float | None = None) -> None:
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise NNError(f"betas must be two numbers, got {betas!r}") from None
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise NNError(f"betas must be in [0, 1), got {betas!r}")
        self.betas: tuple[float, float] = (b1, b2)
        self.eps: float = _nonneg(eps, "eps")
        self.weight_decay: float = _nonneg(weight_decay, "weight_decay")
        super().__init__(params, lr, clip_norm=clip_norm)

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """``{name: {"exp_avg": m, "exp_avg_sq": v, "step": t}}``, torch's moments
        (copies: the optimizer keeps them scaled)."""
        b1, b2 = self.betas
        return {k: {"exp_avg": (1.0 - b1) * st["M"], "exp_avg_sq": (1.0 - b2) * st["V"],
                    "step": self.steps} for k, st in self._state.items()}

    def _scalars(self, t: int) -> tuple[float, float]:
        """``(e, −s)`` of step ``t`` (see :meth:`_update`), for both updates."""
        b1, b2 = self.betas
        # p −= lr/(1 − β₁ᵗ) · m / (√v / c + eps), c = √(1 − β₂ᵗ); with m = (1 − β₁)M
        # and √v = √(1 − β₂)·√V that is  p −= s · M / (√V + e)  for the numbers
        # s = lr(1 − β₁)c / ((1 − β₁ᵗ)√(1 − β₂)) and e = eps·c / √(1 − β₂)
        c = math.sqrt(1.0 - b2 ** t)
        r = math.sqrt(1.0 - b2)
        return self.eps * c / r, -self.lr * (1.0 - b1) * c / ((1.0 - b1 ** t) * r)

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
        e, a = self._scalars(t)
        np.sqrt(V, out=tmp)
        tmp += e
        np.divide(M, tmp, out=tmp)
        _axpy(a, tmp, p, tmp)

    def _fused(self, kernels: Any, grp: _Group, g: np.ndarray, t: int) -> bool:
        p, g1 = _flat1(grp.p), _flat1(g)
        M, V = _flat1(grp.slots["M"]), _flat1(grp.slots["V"])
        if p is None or g1 is None or M is None or V is None:
            return False
        b1, b2 = self.betas
        e, a = self._scalars(t)
        d = p.dtype.type
        wd = self.weight_decay
        kernels.adam(p, g1, M, V, bool(wd) and not self.decoupled, d(wd),
                     bool(wd) and self.decoupled, d(1.0 - self.lr * wd), d(b1), d(b2),
                     d(e), d(a))
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``
    (default ``weight_decay=0.01``): ``p *= 1 − lr · weight_decay`` before Adam's step.

    >>> import numpy as np
    >>> p = {"w": np.array([1.0])}
    >>> AdamW(p, lr=0.1, weight_decay=0.5).step({"w": np.array([2.0])})
    >>> round(float(p["w"][0]), 6)        # 1 · (1 − 0.05) − 0.1
    0.85
    """

    decoupled = True

    def __init__(self, params: Mapping[str, np.ndarray] | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, *, clip_norm: float | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, clip_norm=clip_norm)


SGD._fused_for = SGD
Adam._fused_for = Adam


def _hyper_kwargs(hyper: Any, names: Sequence[str]) -> dict[str, Any]:
    """The constructor's keyword arguments from a state's ``hyperparameters``."""
    known = {"lr", "initial_lr", "clip_norm", *names}
    if not isinstance(hyper, Mapping) or set(hyper) - known:
        raise DataError("unknown hyperparameters in the optimizer state: "
                        + (repr(sorted(set(hyper) - known)) if isinstance(hyper, Mapping)
                           else repr(hyper)) + f"; known: {sorted(known)}")
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in hyper.items()}


def _construct(klass: type[Optimizer], kw: Mapping[str, Any]) -> Optimizer:
    """``klass(None, **kw)`` (less ``initial_lr``) with a :class:`DataError` for bad
    arguments."""
    try:
        return klass(None, **{k: v for k, v in kw.items() if k != "initial_lr"})
    except (TypeError, NNError) as exc:
        raise DataError(f"bad hyperparameters in the optimizer state: {exc}") from None


#: name -> (class, default keyword arguments)
OPTIMIZERS: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "sgd": (SGD, {"lr": 0.01}),
    "momentum": (SGD, {"lr": 0.01, "momentum": 0.9}),
    "nesterov": (SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {"lr": 1e-3}),
    "adamw": (AdamW, {"lr": 1e-3}),
}


def make_optimizer(name: str, params: Mapping[str, np.ndarray] | None = None,
                   **kwargs: Any) -> Optimizer:
    """An optimizer by name (``sgd``, ``momentum``, ``nesterov``, ``adam``, ``adamw``);
    ``kwargs`` override its defaults (``lr=...``, ``weight_decay=...``).

    >>> opt = make_optimizer("nesterov", lr=0.2, clip_norm=1.0)
    >>> type(opt).__name__, opt.lr, opt.momentum, opt.nesterov, opt.clip_norm
    ('SGD', 0.2, 0.9, True, 1.0)
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise UnknownNameError("optimizer", name, OPTIMIZERS)
    cls, defaults = OPTIMIZERS[key]
    opts = {**defaults, **{k: v for k, v in kwargs.items() if v is not None}}
    try:
        return cls(params, **opts)
    except TypeError as exc:
        raise NNError(f"optimizer {name!r}: {exc}") from None


# ====================================================================== schedules
def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise NNError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class LRSchedule:
    """A learning-rate schedule: :meth:`lr` gives the rate at step ``t`` (0, 1, ...) of
    a run whose initial rate is ``base_lr``, a pure function of ``t`` (so a resumed run
    needs no schedule state: the optimizer's ``initial_lr`` and the step or epoch
    count are enough).  Each one equals the ``torch.optim.lr_scheduler`` class of the
    same rule after ``t`` calls of its ``step()`` (tested).

    ``nn.fit(..., schedule=s)`` sets ``optimizer.lr = s.lr(optimizer.initial_lr, t)``
    before each epoch (``t`` = epochs done); ``nn.LearningRateScheduler(s,
    per="step")`` before each step.  ``a.then(b)`` runs ``b`` after ``a`` (warm-up,
    then cosine).

    >>> s = WarmupLR(3, start_factor=0.25).then(CosineLR(4))
    >>> [round(s.lr(0.1, t), 4) for t in range(8)]
    [0.025, 0.05, 0.075, 0.1, 0.0854, 0.05, 0.0146, 0.0]
    """

    def lr(self, base_lr: float, t: int) -> float:
        """The learning rate at step ``t`` (``t = 0`` for the first)."""
        raise NotImplementedError

    def __call__(self, base_lr: float, t: int) -> float:
        return self.lr(base_lr, t)

    def then(self, other: LRSchedule, at: int | None = None) -> SequentialLR:
        """This schedule for ``at`` steps (by default its own length, e.g. a warm-up's
        ``total_iters``), then ``other``, whose ``t`` starts again from 0."""
        if at is None:
            at = getattr(self, "total_iters", None)
            if at is None:
                raise NNError(f"{self!r}.then(...) needs at= (the step to switch at)")
        return SequentialLR([self, other], [at])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepLR(LRSchedule):
    """``base_lr · gamma^⌊t / step_size⌋``: multiply by ``gamma`` every ``step_size``
    steps (``torch.optim.lr_scheduler.StepLR``).

    >>> [StepLR(2, gamma=0.5).lr(1.0, t) for t in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size: int = _count(step_size, "step_size")
        self.gamma: float = _nonneg(gamma, "gamma")

    def lr(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** (t // self.step_size)


class CosineLR(LRSchedule):
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` steps:
    ``eta_min + (base_lr − eta_min) · (1 + cos(π t / T_max)) / 2``
    (``torch.optim.lr_scheduler.CosineAnnealingLR``; past ``T_max`` it rises again,
    as torch's does, so give ``T_max`` the length of the run).

    >>> [round(CosineLR(4).lr(1.0, t), 4) for t in range(5)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max: int = _count(T_max, "T_max")
        self.eta_min: float = _nonneg(eta_min, "eta_min")

    def lr(self, base_lr: float, t: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (
            1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


class WarmupLR(LRSchedule):
    """Linear warm-up: the factor on ``base_lr`` goes linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps and stays there,
    ``base_lr · (s + (e − s) · min(t, T) / T)`` (``torch.optim.lr_scheduler.LinearLR``,
    with its defaults; ``start_factor=0`` is allowed here).

    >>> [WarmupLR(4, start_factor=0.0).lr(1.0, t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, total_iters: int = 5, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0) -> None:
        self.total_iters: int = _count(total_iters, "total_iters")
        self.start_factor: float = _nonneg(start_factor, "start_factor")
        self.end_factor: float = _nonneg(end_factor, "end_factor")

    def lr(self, base_lr: float, t: int) -> float:
        s, e, T = self.start_factor, self.end_factor, self.total_iters
        return base_lr * (s + (e - s) * min(t, T) / T)


class SequentialLR(LRSchedule):
    """``schedules[0]`` until step ``milestones[0]``, then ``schedules[1]`` counting
    its steps from 0 again, and so on (``torch.optim.lr_scheduler.SequentialLR``).

    >>> s = SequentialLR([WarmupLR(2, 0.5), StepLR(1, 0.5)], milestones=[2])
    >>> [s.lr(1.0, t) for t in range(5)]
    [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    schedules: list[LRSchedule]
    milestones: list[int]

    def __init__(self, schedules: Sequence[LRSchedule], milestones: Sequence[int]) -> None:
        schedules = list(schedules)
        milestones = [_count(m, "each milestone") for m in milestones]
        if not schedules or not all(isinstance(s, LRSchedule) for s in schedules):
            raise NNError("SequentialLR takes a list of schedules (LRSchedule objects)")
        if len(milestones) != len(schedules) - 1 or milestones != sorted(set(milestones)):
            raise NNError(f"SequentialLR needs {len(schedules) - 1} increasing milestones "
                          f"for {len(schedules)} schedules, got {milestones}")
        # a.then(b).then(c) is one flat sequence
        flat_s: list[LRSchedule] = []
        flat_m: list[int] = []
        for i, s in enumerate(schedules):
            start = 0 if i == 0 else milestones[i - 1]
            end = milestones[i] if i < len(milestones) else None
            if isinstance(s, SequentialLR):
                inner = [start + m for m in s.milestones if end is None or start + m < end]
                flat_s.extend(s.schedules[:len(inner) + 1])
                flat_m.extend(inner)
            else:
                flat_s.append(s)
            if end is not None:
                flat_m.append(end)
        self.schedules, self.milestones = flat_s, flat_m

    def lr(self, base_lr: float, t: int) -> float:
        start = 0
        for s, m in zip(self.schedules, self.milestones):
            if t < m:
                return s.lr(base_lr, t - start)
            start = m
        return self.schedules[-1].lr(base_lr, t - start)
