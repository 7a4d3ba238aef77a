"""Callbacks for :func:`~matdiff.nn.fit`, as Keras and Lightning users know them.

:func:`fit` calls, on each callback of its ``callbacks=[...]`` in order:
``on_train_begin(logs)``, then per epoch ``on_epoch_begin(epoch, logs)``,
per step ``on_batch_begin(step, logs)`` / ``on_batch_end(step, logs)`` and
``on_epoch_end(epoch, logs)``, and last ``on_train_end(logs)``.  ``epoch`` counts from
1 (as the history and the progress lines do); ``step`` is the optimizer's step count
(1 for the first).  ``logs`` at an epoch's end holds that epoch's numbers:
``loss``, ``r2`` or ``accuracy``, ``val_loss`` and ``val_...`` with validation data,
and ``lr``.  Before training, :func:`fit` sets each callback's ``model``,
``optimizer``, ``epochs`` and ``steps_per_epoch``; a callback stops the training by
setting ``self.stop_training = True`` (after the current step; the epoch is still
recorded).

>>> import numpy as np, matdiff as md
>>> class Stop(md.nn.Callback):
...     def on_epoch_end(self, epoch, logs):
...         if logs["loss"] < 0.5:
...             self.stop_training = True
>>> X = np.random.default_rng(0).normal(size=(40, 2)); y = X @ np.array([1.0, -1.0])
>>> h = md.nn.fit(md.nn.Neuron(2, "identity"), X, y, lr=0.1, epochs=50,
...               callbacks=[Stop()], progress=False)
>>> len(h["loss"]) < 50, h["loss"][-1] < 0.5
(True, True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..optim import LRSchedule, Optimizer
from .errors import NNError

__all__ = ["Callback", "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint"]


class Callback:
    """The base class: every hook does nothing; override those you need.

    >>> import numpy as np, matdiff as md
    >>> class Print(md.nn.Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         print(epoch, sorted(logs))
    >>> _ = md.nn.fit(md.nn.Neuron(1), np.ones((4, 1)), np.ones(4), epochs=2,
    ...               callbacks=[Print()], progress=False)
    1 ['loss', 'lr', 'r2']
    2 ['loss', 'lr', 'r2']
    """

    model: Any = None
    optimizer: Optimizer | None = None
    epochs: int = 0
    steps_per_epoch: int = 0
    #: set it to True to end the training after the current step
    stop_training: bool = False

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Before epoch ``epoch`` (1, 2, ...)."""

    def on_batch_begin(self, step: int, logs: dict[str, Any]) -> None:
        """Before the optimizer's step number ``step`` (1, 2, ...)."""

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        """After step ``step``; ``logs["loss"]`` is the batch's loss (before the step)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After epoch ``epoch``; ``logs`` holds its numbers (see the module)."""

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """After the last epoch (``logs``: the last epoch's numbers)."""


def _mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise NNError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        # what grows when the model gets better: accuracy and R²; the rest shrink
        return "max" if monitor.endswith(("accuracy", "acc", "r2")) else "min"
    return mode


def _monitored(logs: dict[str, Any], monitor: str, who: str) -> float:
    if monitor not in logs:
        raise NNError(f"{who} monitors {monitor!r}, which the training does not "
                      f"record; it records: {', '.join(sorted(logs))}"
                      + ("; pass validation=(X_val, y_val) to fit"
                         if monitor.startswith("val_") else ""))
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs in a row.

    An epoch improves on the best so far when its value is lower by more than
    ``min_delta`` (higher, for ``mode="max"``; ``"auto"`` picks max for accuracy and
    R², min otherwise).  As Keras's ``EarlyStopping`` (and Lightning's), training stops
    after the ``patience``-th epoch in a row without improvement (after the first for
    ``patience`` 0 or 1).  With ``restore_best`` the model's parameters
    are set back, at the end of training, to exactly those after the best epoch
    (``best_epoch``, ``best``; the optimizer's state stays the last epoch's);
    ``stopped_epoch`` is the epoch it stopped after (0 if it did not stop).

    >>> import numpy as np, matdiff as md
    >>> rng = np.random.default_rng(0)
    >>> X, Xv = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    >>> y, yv = rng.normal(size=20), rng.normal(size=20)   # nothing to learn
    >>> stop = md.nn.EarlyStopping(patience=2)
    >>> h = md.nn.fit(md.nn.Neuron(3, "identity"), X, y, lr=0.05, epochs=100,
    ...               validation=(Xv, yv), callbacks=[stop], progress=False)
    >>> stop.stopped_epoch == len(h["loss"]) == stop.best_epoch + 2
    True
    """

    monitor: str
    patience: int
    min_delta: float
    mode: str
    restore_best: bool
    best: float
    best_epoch: int
    stopped_epoch: int
    wait: int

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) \
                or patience < 0:
            raise NNError(f"patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta) \
                or min_delta < 0:
            raise NNError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode = _mode(monitor, mode)
        self.restore_best = bool(restore_best)
        self.best = math.inf
        self.best_epoch = 0
        self.stopped_epoch = 0
        self.wait = 0
        self._best_params: dict[str, np.ndarray] | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return -value < self.best - self.min_delta

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.stopped_epoch, self.wait = math.inf, 0, 0, 0
        self._best_params = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self._improved(value):
            # the best is kept as the number to beat; for "max" it is stored negated
            self.best = value if self.mode == "min" else -value
            self.best_epoch, self.wait = epoch, 0
            if self.restore_best:
                self._best_params = self.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.stop_training = True

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self.mode == "max" and self.best_epoch:
            self.best = -self.best
        if self.restore_best and self._best_params is not None:
            self.model.load_state_dict(self._best_params)


class LearningRateScheduler(Callback):
    """Set the optimizer's rate from a schedule (:class:`~matdiff.optim.LRSchedule`):
    ``optimizer.lr = schedule.lr(optimizer.initial_lr, t)`` before each epoch
    (``per="epoch"``, ``t`` = epochs done, torch's usual ``scheduler.step()`` per epoch)
    or before each step (``per="step"``, ``t`` = steps done).  ``fit(schedule=s)``
    adds ``LearningRateScheduler(s)``.

    >>> import numpy as np, matdiff as md
    >>> X = np.ones((4, 1)); y = np.ones(4)
    >>> h = md.nn.fit(md.nn.Neuron(1, "identity"), X, y, "mse", "sgd", lr=0.1, epochs=3,
    ...               schedule=md.optim.StepLR(1, gamma=0.5), progress=False)
    >>> h["lr"]
    [0.1, 0.05, 0.025]
    """

    schedule: LRSchedule
    per: str

    def __init__(self, schedule: LRSchedule, per: str = "epoch") -> None:
        if not isinstance(schedule, LRSchedule):
            raise NNError("a schedule must be an LRSchedule (matdiff.optim.StepLR, "
                          f"CosineLR, WarmupLR, SequentialLR), got {schedule!r}")
        if per not in ("epoch", "step"):
            raise NNError(f"per must be 'epoch' or 'step', got {per!r}")
        self.schedule, self.per = schedule, per

    def _set(self, t: int) -> None:
        opt = self.optimizer
        assert opt is not None, "fit sets the optimizer"
        lr = self.schedule.lr(opt.initial_lr, t)
        if not math.isfinite(lr) or lr < 0:
            raise NNError(f"the schedule gave the learning rate {lr} at t = {t}")
        opt.lr = lr

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.per == "epoch":
            self._set(epoch - 1)

    def on_batch_begin(self, step: int, logs: dict[str, Any]) -> None:
        if self.per == "step":
            self._set(step - 1)


class ModelCheckpoint(Callback):
    """Save the model and the optimizer state (:meth:`Model.save
    <matdiff.nn.Model.save>`, with the epoch) to ``path`` after each epoch, or only
    when ``monitor`` improved with ``save_best_only``.  ``path`` may contain
    ``{epoch}`` (``"ckpt-{epoch}.npz"``).  :func:`~matdiff.nn.load_checkpoint` reads it
    back; ``fit(..., initial_epoch=ck.epoch)`` resumes.

    >>> import numpy as np, matdiff as md, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ck.npz")
    >>> X = np.ones((4, 1)); y = np.ones(4)
    >>> _ = md.nn.fit(md.nn.Neuron(1), X, y, epochs=3, progress=False,
    ...               callbacks=[md.nn.ModelCheckpoint(path)])
    >>> md.nn.load_checkpoint(path).epoch
    3
    """

    path: str
    monitor: str
    save_best_only: bool
    mode: str
    best: float

    def __init__(self, path: str, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto") -> None:
        self.path, self.monitor, self.save_best_only = str(path), monitor, save_best_only
        self.mode = _mode(monitor, mode)
        self.best = math.inf
        self.saved: list[str] = []

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.best = math.inf

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.save_best_only:
            v = _monitored(logs, self.monitor, "ModelCheckpoint")
            v = v if self.mode == "min" else -v
            if not v < self.best:
                return
            self.best = v
        path = self.path.format(epoch=epoch)
        self.model.save(path, optimizer=self.optimizer, epoch=epoch)
        self.saved.append(path)
