"""The training loop (:func:`fit`) and its plot (:func:`plot_history`)."""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

from ..optim import Optimizer, make_optimizer
from .errors import DataError, NNError, NonFiniteLossError
from .models import Model, check_inputs, check_targets, loss_name

__all__ = ["fit", "TrainStep", "tune_malloc", "evaluate", "History", "plot_history",
           "r2_score", "accuracy"]


class History(dict):
    """``{"loss": [...], "val_loss": [...], metric: [...], ...}``, one entry per epoch,
    with ``.epochs`` (1, 2, ...) and ``.steps`` (optimizer steps done)."""

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.get("loss", [])) + 1))


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination: 1 − SS_res / SS_tot (1 is perfect, 0 the mean)."""
    y, pred = np.asarray(y, float).reshape(len(y), -1), np.asarray(pred, float).reshape(
        len(y), -1)
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def accuracy(labels: np.ndarray, logits: np.ndarray, loss: str) -> float:
    logits = np.asarray(logits)
    if loss == "cross_entropy":
        pred = logits.argmax(axis=1)
        return float(np.mean(pred == np.asarray(labels).argmax(axis=1)))
    return float(np.mean((logits > 0) == (np.asarray(labels) > 0.5)))


def _metric_name(loss: str) -> str:
    return "r2" if loss == "mse" else "accuracy"


def evaluate(model: Model, X: Any, y: Any, loss: str = "mse") -> dict[str, float]:
    """``{"loss": ..., "r2" or "accuracy": ...}`` of ``model`` on ``(X, y)``."""
    loss = loss_name(loss)
    X = check_inputs(X, model.n_in)
    T = check_targets(y, loss, X.shape[0], model.n_out)
    value, _ = model.value_and_grad(X, T, loss, _checked=True)
    pred = model.predict(X)
    m = r2_score(T, pred) if loss == "mse" else accuracy(T, pred, loss)
    return {"loss": value, _metric_name(loss): m}


def _bind_optimizer(model: Model, optimizer: Any, lr: float | None,
                    weight_decay: float | None) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if optimizer.params is None:
            optimizer.bind(model.params)
        elif optimizer.params is not model.params:
            raise NNError("the optimizer holds other parameters than the model's")
        return optimizer
    return make_optimizer(optimizer, model.params, lr=lr, weight_decay=weight_decay)


#: whether :func:`tune_malloc` has run in this process (its result)
_MALLOC_TUNED: bool | None = None


def tune_malloc() -> bool:
    """Ask glibc's malloc, once per process, to serve arrays under 32 MB from its heap
    and to keep up to 128 MB of freed heap for reuse (``M_MMAP_THRESHOLD``,
    ``M_TRIM_THRESHOLD``).  Returns whether it did.

    A training step allocates and frees the same big temporaries (activations, the
    gradient of a big weight matrix) every step.  Under glibc's defaults they keep
    coming back as fresh pages from the kernel, and the page faults cost about a
    quarter of a 784-512-10 step (measured: 19 ms → 14 ms a step).  :class:`TrainStep`
    calls this; set the environment variable ``MATDIFF_MALLOC=default`` to leave
    malloc alone (other platforms and C libraries are left alone anyway)."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED is not None:
        return _MALLOC_TUNED
    _MALLOC_TUNED = False
    if os.environ.get("MATDIFF_MALLOC", "").lower() == "default" \
            or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
        ok = libc.mallopt(M_TRIM_THRESHOLD, 128 << 20) == 1 and ok
    except (OSError, AttributeError):  # pragma: no cover - not glibc after all
        return False
    _MALLOC_TUNED = ok
    return ok


class TrainStep:
    """One training step: the loss of ``model`` on a batch, its gradient by every
    parameter (one compiled call) and ``optimizer``'s in-place update.

    ``optimizer`` is a name (with ``lr=``, ``weight_decay=``) or an
    :class:`~matdiff.optim.Optimizer` over ``model.params``.  Calling the step with a
    batch returns the batch's loss (before the update).  A NaN or infinite loss or
    gradient raises :class:`NonFiniteLossError` before any parameter changes.  This
    is :func:`fit`'s inner loop; it is also the one to time or to drive by hand.  On
    Linux it tunes malloc for reused big temporaries first (:func:`tune_malloc`).

    >>> import numpy as np, matdiff as md
    >>> model = md.nn.Neuron(2, "tanh", seed=0)
    >>> step = md.nn.TrainStep(model, "mse", "sgd", lr=0.02)
    >>> X, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])
    >>> losses = [step(X, y) for _ in range(40)]
    >>> bool(losses[-1] < 0.5 * losses[0])
    True
    """

    def __init__(self, model: Model, loss: str = "mse", optimizer: Any = "adam", *,
                 lr: float | None = None, weight_decay: float | None = None) -> None:
        tune_malloc()
        self.model = model
        self.loss = loss_name(loss)
        self.optimizer = _bind_optimizer(model, optimizer, lr, weight_decay)
        self._compiled = model._compiled(self.loss)
        self._target = model.target_var().name
        self._fns: dict[tuple, Any] = {}
        self._args: list = []
        self._ix = self._iy = -1

    def __call__(self, X: Any, y: Any, *, checked: bool = False) -> float:
        """Take one step on the batch ``(X, y)`` and return its loss.  ``checked``
        skips the checks of ``X`` and ``y`` (``fit`` checks the whole data once)."""
        model = self.model
        if not checked:
            X = check_inputs(X, model.n_in)
            y = check_targets(y, self.loss, X.shape[0], model.n_out)
        key = (X.shape, y.shape)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._prepare(X, y, key)
        args = self._args
        args[self._ix], args[self._iy] = X, y
        out = fn(*args)
        value = float(out[0])
        if not math.isfinite(value):
            raise NonFiniteLossError(f"the loss became {value}")
        self.optimizer.step_arrays(out[1:], check_finite=True, owned=True)
        return value

    def _prepare(self, X: np.ndarray, y: np.ndarray, key: tuple) -> Any:
        values = self.model._values(X, y)
        fn = self._compiled.specialised(values)
        names = self._compiled.inputs
        # the parameter arrays are fixed (updated in place); X and y change per batch
        self._args = [values[n] for n in names]
        self._ix, self._iy = names.index("X"), names.index(self._target)
        self._fns[key] = fn
        return fn


class _EpochLines:
    """The progress of :func:`fit` where tqdm is not installed: one line per epoch on
    stderr (the epoch's last loss), with the same ``update`` / ``set_postfix`` /
    ``close`` calls as a bar."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.epoch: int | None = None
        self.line = ""

    def update(self, n: int) -> None:
        self.done += n

    def set_postfix(self, epoch: int, loss: str, refresh: bool = True, **kw: Any) -> None:
        if self.epoch is not None and epoch != self.epoch:
            print(self.line, file=sys.stderr)
        self.epoch = epoch
        extra = "".join(f", {k} {v}" for k, v in kw.items())
        self.line = f"fit: epoch {epoch}, step {self.done}/{self.total}, loss {loss}{extra}"

    def close(self) -> None:
        if self.epoch is not None:
            print(self.line, file=sys.stderr)
            self.epoch = None


def _progress_bar(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:   # tqdm is the 'train' extra's; a plain install prints lines
        return _EpochLines(total)
    return tqdm(total=total, desc="fit", unit="step", leave=True)


def fit(model: Model, X: Any, y: Any, loss: str = "mse", optimizer: Any = "adam", *,
        lr: float | None = None, epochs: int = 10, batch_size: int = 32,
        validation: tuple[Any, Any] | None = None, seed: int | None = 0,
        shuffle: bool = True, progress: bool = True, weight_decay: float | None = None
        ) -> History:
    """Train ``model`` on ``(X, y)`` by minibatch gradient descent.

    ``loss``: ``"mse"``, ``"bce"`` or ``"cross_entropy"`` (integer labels).
    ``optimizer``: a name (``sgd``, ``momentum``, ``nesterov``, ``adam``, ``adamw``; with
    ``lr=`` and ``weight_decay=``) or an :class:`~matdiff.optim.Optimizer` (bound to the
    model's parameters if it has none).  Each epoch shuffles the samples with a
    generator seeded by ``seed`` (deterministic for a seed), takes a step per batch of
    ``batch_size`` and records ``loss`` (mean over the epoch's batches), ``r2`` or
    ``accuracy`` on the training data, and ``val_loss``/``val_...`` on ``validation``.
    A tqdm bar shows the loss unless ``progress=False`` (without tqdm, one line per
    epoch on stderr).  A NaN or infinite loss stops
    training with :class:`NonFiniteLossError` naming the epoch and step.
    """
    loss = loss_name(loss)
    X = check_inputs(X, model.n_in)
    T = check_targets(y, loss, X.shape[0], model.n_out)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise DataError("validation must be a pair (X_val, y_val)")
        Xv = check_inputs(validation[0], model.n_in, "X_val")
        Tv = check_targets(validation[1], loss, Xv.shape[0], model.n_out, "y_val")
    for what, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise NNError(f"{what} must be a positive integer, got {v!r}")
    train_step = TrainStep(model, loss, optimizer, lr=lr, weight_decay=weight_decay)

    n = X.shape[0]
    steps_per_epoch = -(-n // batch_size)
    rng = np.random.default_rng(seed)
    metric = _metric_name(loss)
    hist = History(loss=[], **{metric: []})
    if validation is not None:
        hist["val_loss"], hist["val_" + metric] = [], []
    bar = None
    if progress:
        bar = _progress_bar(epochs * steps_per_epoch)
    step = 0
    try:
        # overflow inside a step shows as a non-finite loss or gradient, reported
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(1, epochs + 1):
                order = rng.permutation(n) if shuffle else np.arange(n)
                total = 0.0
                for k in range(steps_per_epoch):
                    idx = order[k * batch_size:(k + 1) * batch_size]
                    step += 1
                    try:
                        value = train_step(X[idx], T[idx], checked=True)
                    except NonFiniteLossError as exc:
                        raise NonFiniteLossError(
                            f"{exc} at epoch {epoch}, step {k + 1} (of {steps_per_epoch}; "
                            f"step {step} overall); try a smaller learning rate or scaled "
                            "inputs", epoch=epoch, step=k + 1) from None
                    total += value * len(idx)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=epoch, loss=f"{value:.4g}", refresh=False)
                hist["loss"].append(total / n)
                pred = model.predict(X)
                hist[metric].append(r2_score(T, pred) if loss == "mse"
                                    else accuracy(T, pred, loss))
                if validation is not None:
                    ev = evaluate(model, Xv, Tv if loss != "cross_entropy" else
                                  Tv.argmax(axis=1), loss)
                    hist["val_loss"].append(ev["loss"])
                    hist["val_" + metric].append(ev[metric])
                    if bar is not None:
                        bar.set_postfix(epoch=epoch, loss=f"{hist['loss'][-1]:.4g}",
                                        val_loss=f"{ev['loss']:.4g}")
    finally:
        if bar is not None:
            bar.close()
    hist.steps = step  # type: ignore[attr-defined]
    return hist


def plot_history(history: dict, path: str, title: str | None = None) -> str:
    """Save the training curves (loss; r2 or accuracy) of ``history`` as a PNG at
    ``path`` (matplotlib, Agg, no display needed); returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [k for k in history if not k.startswith("val_")]
    if not keys or not history.get(keys[0]):
        raise NNError("the history is empty: nothing to plot")
    fig = Figure(figsize=(5 * len(keys), 4))
    FigureCanvasAgg(fig)
    for i, k in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        ep = list(range(1, len(history[k]) + 1))
        ax.plot(ep, history[k], label="train")
        if "val_" + k in history:
            ax.plot(ep, history["val_" + k], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(k)
        if k == "loss":
            ax.set_yscale("log") if min(history[k]) > 0 else None
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
