"""The training loop (:func:`fit`), its history (:class:`History`) and its plot
(:func:`plot_history`)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..compile import threads as _threads
from ..optim import LRSchedule, Optimizer, make_optimizer
from .callbacks import Callback, LearningRateScheduler
from .errors import DataError, NNError, NonFiniteLossError
from .models import Model, check_inputs, check_targets, loss_name

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["fit", "TrainStep", "tune_malloc", "evaluate", "History", "plot_history",
           "r2_score", "accuracy"]


class History(dict[str, list[float]]):
    """``{"loss": [...], "val_loss": [...], metric: [...], ...}``, one entry per epoch
    (and ``"lr"`` when a schedule sets the rate), with ``.epochs`` (the epochs' numbers:
    1, 2, ..., or from ``initial_epoch + 1`` on for a resumed run), ``.steps``
    (optimizer steps done) and ``.stopped_epoch`` (the epoch a callback stopped the
    training after, else 0).  ``str(history)`` is a table; :meth:`to_frame` a pandas
    DataFrame.

    >>> h = History(loss=[0.5, 0.25], r2=[0.1, 0.6])
    >>> print(h)
    epoch  loss   r2
        1   0.5  0.1
        2  0.25  0.6
    """

    initial_epoch: int = 0
    steps: int = 0
    stopped_epoch: int = 0

    @property
    def epochs(self) -> list[int]:
        first = self.initial_epoch + 1
        return list(range(first, first + len(self.get("loss", []))))

    def table(self, digits: int = 4) -> str:
        """The history as a text table, a row per epoch, numbers to ``digits``
        significant digits."""
        cols = [("epoch", [str(e) for e in self.epochs])]
        cols += [(k, [f"{v:.{digits}g}" for v in vals]) for k, vals in self.items()]
        widths = [max(len(name), *(len(c) for c in cells)) if cells else len(name)
                  for name, cells in cols]
        lines = ["  ".join(name.rjust(w) for (name, _), w in zip(cols, widths)).rstrip()]
        for i in range(len(cols[0][1])):
            lines.append("  ".join(cells[i].rjust(w) if i < len(cells) else " " * w
                                   for (_, cells), w in zip(cols, widths)).rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_frame(self) -> pd.DataFrame:
        """The history as a ``pandas.DataFrame``, a row per epoch, indexed by ``epoch``
        (pandas must be installed; :meth:`table` needs nothing)."""
        try:
            import pandas as pd
        except ImportError:
            raise NNError("History.to_frame() needs pandas, which is not installed here: "
                          "pip install pandas (str(history) or history.table() prints "
                          "the same table without it)") from None
        return pd.DataFrame({k: list(v) for k, v in self.items()},
                            index=pd.Index(self.epochs, name="epoch"))


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination: 1 − SS_res / SS_tot (1 is perfect, 0 the mean).

    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), r2_score([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    (1.0, 0.0)
    """
    y, pred = np.asarray(y, float).reshape(len(y), -1), np.asarray(pred, float).reshape(
        len(y), -1)
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def accuracy(labels: np.ndarray, logits: np.ndarray, loss: str) -> float:
    """The fraction of samples classified right: the largest logit against one-hot
    ``labels`` (``cross_entropy``), or logit > 0 against 0/1 labels (``bce``).

    >>> import numpy as np
    >>> accuracy(np.eye(3)[[0, 2]], np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]]),
    ...          "cross_entropy")
    0.5
    """
    logits = np.asarray(logits)
    if loss == "cross_entropy":
        pred = logits.argmax(axis=1)
        return float(np.mean(pred == np.asarray(labels).argmax(axis=1)))
    return float(np.mean((logits > 0) == (np.asarray(labels) > 0.5)))


def _metric_name(loss: str) -> str:
    return "r2" if loss == "mse" else "accuracy"


def evaluate(model: Model, X: ArrayLike, y: ArrayLike, loss: str = "mse") -> dict[str, float]:
    """``{"loss": ..., "r2" or "accuracy": ...}`` of ``model`` on ``(X, y)``.

    >>> import numpy as np, matdiff as md
    >>> m = md.nn.Neuron(2, "identity")
    >>> m.params["w"][...] = [1.0, 1.0]
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> evaluate(m, X, X.sum(axis=1))
    {'loss': 0.0, 'r2': 1.0}
    """
    loss = loss_name(loss)
    X = check_inputs(X, model.n_in)
    T = check_targets(y, loss, X.shape[0], model.n_out)
    value, _ = model.value_and_grad(X, T, loss, _checked=True)
    pred = model.predict(X)
    m = r2_score(T, pred) if loss == "mse" else accuracy(T, pred, loss)
    return {"loss": value, _metric_name(loss): m}


def _bind_optimizer(model: Model, optimizer: Any, lr: float | None,
                    weight_decay: float | None, clip_norm: float | None = None
                    ) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if optimizer.params is None:
            optimizer.bind(model.params)
        elif optimizer.params is not model.params:
            raise NNError("the optimizer holds other parameters than the model's")
        if clip_norm is not None:
            optimizer.clip_norm = clip_norm
        return optimizer
    return make_optimizer(optimizer, model.params, lr=lr, weight_decay=weight_decay,
                          clip_norm=clip_norm)


#: whether :func:`tune_malloc` has run in this process (its result)
_MALLOC_TUNED: bool | None = None


def tune_malloc() -> bool:
    """Ask glibc's malloc, once per process, to serve arrays under 32 MB from its heap
    and to keep up to 128 MB of freed heap for reuse (``M_MMAP_THRESHOLD``,
    ``M_TRIM_THRESHOLD``).  Returns whether it did.

    A training step allocates and frees the same big temporaries (activations, the
    gradient of a big weight matrix) every step.  Under glibc's defaults they keep
    coming back as fresh pages from the kernel, and the page faults cost about a
    quarter of a 784-512-10 step (measured: 19 ms → 14 ms a step).  It changes the
    whole process's allocator, so it runs only on request: call it, or pass
    ``TrainStep(..., tune_malloc=True)`` (``fit`` passes it on); the environment
    variable ``MATDIFF_MALLOC=default`` refuses it everywhere (other platforms and C
    libraries are left alone anyway).

    >>> isinstance(tune_malloc(), bool)
    True
    """
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
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1)
        ok = bool(libc.mallopt(M_TRIM_THRESHOLD, 128 << 20) == 1) and ok
    except (OSError, AttributeError):  # pragma: no cover - not glibc after all
        return False
    _MALLOC_TUNED = ok
    return ok


_tune_malloc = tune_malloc   # the function, under a name TrainStep's keyword leaves free


#: the shapes of a batch ``(X, y)``: a key of the generated functions
_Shapes = tuple[tuple[int, ...], tuple[int, ...]]


class TrainStep:
    """One training step: the loss of ``model`` on a batch, its gradient by every
    parameter (one compiled call) and ``optimizer``'s in-place update.

    ``optimizer`` is a name (with ``lr=``, ``weight_decay=``) or an
    :class:`~matdiff.optim.Optimizer` over ``model.params``; ``clip_norm`` clips each
    step's gradients to that global L2 norm (the optimizer's ``clip_norm``).  Calling
    the step with a batch returns the batch's loss (before the update).  A NaN or infinite loss or
    gradient raises :class:`NonFiniteLossError` before any parameter changes.  This
    is :func:`fit`'s inner loop; it is also the one to time or to drive by hand.  With
    ``tune_malloc=True`` it first tunes glibc's malloc for reused big temporaries
    (:func:`tune_malloc`: process-wide, so only on request).

    >>> import numpy as np, matdiff as md
    >>> model = md.nn.Neuron(2, "tanh", seed=0)
    >>> step = md.nn.TrainStep(model, "mse", "sgd", lr=0.02)
    >>> X, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])
    >>> losses = [step(X, y) for _ in range(40)]
    >>> bool(losses[-1] < 0.5 * losses[0])
    True
    """

    def __init__(self, model: Model, loss: str = "mse", optimizer: str | Optimizer = "adam", *,
                 lr: float | None = None, weight_decay: float | None = None,
                 clip_norm: float | None = None, tune_malloc: bool = False) -> None:
        if tune_malloc:
            _tune_malloc()
        self.model = model
        self.loss: str = loss_name(loss)
        self.optimizer: Optimizer = _bind_optimizer(model, optimizer, lr, weight_decay, clip_norm)
        self._compiled = model._compiled(self.loss)
        self._target = model.target_var().name
        self._fns: dict[_Shapes, Callable[..., Any]] = {}
        self._args: list[np.ndarray] = []
        self._ix = self._iy = -1
        # on two threads the optimizer's update holds BLAS to one thread where it
        # would split its Σg² (a dot product: memory-bound; compile/threads.py)
        self._hold = _threads.holds() and sum(
            p.size for p in model.params.values()) > _threads.DOT_THREADED

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
        if self._hold:
            with _threads.one_blas_thread():
                self.optimizer.step_arrays(out[1:], check_finite=True, owned=True)
        else:
            self.optimizer.step_arrays(out[1:], check_finite=True, owned=True)
        return value

    def _prepare(self, X: np.ndarray, y: np.ndarray, key: _Shapes) -> Callable[..., Any]:
        values = self.model._values(X, y)
        fn: Callable[..., Any] = self._compiled.specialised(values)
        names = self._compiled.inputs
        # the parameter arrays are fixed (updated in place); X and y change per batch
        self._args = [values[n] for n in names]
        self._ix, self._iy = names.index("X"), names.index(self._target)
        self._fns[key] = fn
        return fn


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (float, int, np.floating)) else str(v)


class _EpochLines:
    """The progress of :func:`fit` off a terminal (a log file, a CI job, a pipe) or
    without tqdm: one line per epoch on stderr with the epoch's numbers, training and
    validation, instead of a bar's redraws."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def batch(self, epoch: int, loss: float) -> None:
        self.done += 1

    def epoch_end(self, epoch: int, row: dict[str, Any]) -> None:
        nums = ", ".join(f"{k} {_num(v)}" for k, v in row.items())
        print(f"fit: epoch {epoch}, step {self.done}/{self.total}, {nums}", file=sys.stderr,
              flush=True)

    def close(self) -> None:
        pass


class _Bar:
    """tqdm's bar (on a terminal or in a notebook): the batch's loss while an epoch
    runs, the epoch's numbers (with the validation ones) at its end."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def batch(self, epoch: int, loss: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(epoch=epoch, loss=_num(loss), refresh=False)

    def epoch_end(self, epoch: int, row: dict[str, Any]) -> None:
        self.bar.set_postfix(epoch=epoch, **{k: _num(v) for k, v in row.items()})

    def close(self) -> None:
        self.bar.close()


def _interactive() -> bool:
    """Whether a redrawn bar has somewhere to redraw: stderr is a terminal, or this is
    a Jupyter kernel (whose stderr is not a tty, but tqdm draws a widget there)."""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # a closed or unusual stream
        pass
    ipython = sys.modules.get("IPython") if "ipykernel" in sys.modules else None
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # noqa: BLE001 - whatever IPython does, it is not a terminal
        return False
    return shell is not None and hasattr(shell, "kernel")


#: fit's ``progress=`` values
_PROGRESS = (True, False, None, "auto", "bar", "lines")


def _progress(progress: Any, total: int) -> _EpochLines | _Bar | None:
    """The progress display ``progress`` asks for: ``True``/``"auto"`` a tqdm bar on a
    terminal or in a notebook and lines elsewhere, ``"bar"`` the bar, ``"lines"`` the
    lines, ``False``/``None`` nothing."""
    if not any(progress is p or (isinstance(progress, str) and progress == p)
               for p in _PROGRESS):
        raise NNError(f"progress must be True, False, 'auto', 'bar' or 'lines', got "
                      f"{progress!r}")
    if progress is False or progress is None:
        return None
    if progress == "lines" or (progress in (True, "auto") and not _interactive()):
        return _EpochLines(total)
    try:
        from tqdm.auto import tqdm
    except ImportError:   # tqdm is the 'train' extra's; a plain install prints lines
        return _EpochLines(total)
    return _Bar(tqdm(total=total, desc="fit", unit="step", leave=True))


def _positive(what: str, v: Any, zero: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if zero else 1):
        raise NNError(f"{what} must be {'an integer >= 0' if zero else 'a positive integer'}"
                      f", got {v!r}")
    return int(v)


def fit(model: Model, X: ArrayLike, y: ArrayLike, loss: str = "mse",
        optimizer: str | Optimizer = "adam", *,
        lr: float | None = None, epochs: int = 10, batch_size: int = 32,
        validation: tuple[ArrayLike, ArrayLike] | None = None, seed: int | None = 0,
        shuffle: bool = True, progress: bool | str = True,
        weight_decay: float | None = None, callbacks: list[Callback] | None = None,
        schedule: LRSchedule | None = None, clip_norm: float | None = None,
        initial_epoch: int = 0, tune_malloc: bool = False) -> History:
    """Train ``model`` on ``(X, y)`` by minibatch gradient descent.

    ``loss``: ``"mse"``, ``"bce"`` or ``"cross_entropy"`` (integer labels).
    ``optimizer``: a name (``sgd``, ``momentum``, ``nesterov``, ``adam``, ``adamw``; with
    ``lr=`` and ``weight_decay=``) or an :class:`~matdiff.optim.Optimizer` (bound to the
    model's parameters if it has none).  Each epoch shuffles the samples with a
    generator seeded by ``seed`` (deterministic for a seed), takes a step per batch of
    ``batch_size`` and records ``loss`` (mean over the epoch's batches), ``r2`` or
    ``accuracy`` on the training data, and ``val_loss``/``val_...`` on ``validation``.

    - ``callbacks``: :class:`~matdiff.nn.Callback` objects (:class:`EarlyStopping
      <matdiff.nn.EarlyStopping>`, :class:`ModelCheckpoint <matdiff.nn.ModelCheckpoint>`,
      your own), called at the start and end of training, of each epoch and of each
      step; one can stop the training.
    - ``schedule``: an :class:`~matdiff.optim.LRSchedule`, setting the rate before each
      epoch (``LearningRateScheduler(schedule)``); the history records ``lr`` then.
    - ``clip_norm``: clip each step's gradients to this global L2 norm.
    - ``initial_epoch``: resume after that many epochs (Keras's meaning: ``epochs`` is
      the last epoch's number, so ``epochs - initial_epoch`` epochs run).  Epoch ``e``'s
      order is the ``e``-th permutation drawn from ``default_rng(seed)``, so a resumed
      run draws the first ``initial_epoch`` again and discards them; with the model and
      optimizer saved after epoch ``initial_epoch`` (:meth:`Model.save
      <matdiff.nn.Model.save>`), it continues bit for bit (``seed=None`` shuffles
      differently each run, resumed or not).
    - ``progress``: ``True`` shows a tqdm bar on a terminal or in a notebook and one
      line per epoch (with the validation numbers) elsewhere, e.g. in a log file or
      without tqdm; ``"bar"`` or ``"lines"`` choose; ``False`` shows nothing.

    A NaN or infinite loss stops training with :class:`NonFiniteLossError` naming the
    epoch and step.

    >>> import numpy as np, matdiff as md
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3)); y = X @ np.array([1.0, -2.0, 0.5])
    >>> h = md.nn.fit(md.nn.Neuron(3, "identity"), X, y, "mse", "sgd", lr=0.1, epochs=30,
    ...               batch_size=16, schedule=md.optim.CosineLR(30), clip_norm=5.0,
    ...               progress=False)
    >>> h.epochs[-1], h["loss"][-1] < 1e-3 * h["loss"][0], h["lr"][:2]
    (30, True, [0.1, 0.09972609476841367])
    """
    loss = loss_name(loss)
    X = check_inputs(X, model.n_in)
    T = check_targets(y, loss, X.shape[0], model.n_out)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise DataError("validation must be a pair (X_val, y_val)")
        Xv = check_inputs(validation[0], model.n_in, "X_val")
        Tv = check_targets(validation[1], loss, Xv.shape[0], model.n_out, "y_val")
    epochs, batch_size = _positive("epochs", epochs), _positive("batch_size", batch_size)
    initial_epoch = _positive("initial_epoch", initial_epoch, zero=True)
    if initial_epoch > epochs:
        raise NNError(f"initial_epoch ({initial_epoch}) is past epochs ({epochs}), the "
                      "number of the last epoch to train")
    cbs = list(callbacks or [])
    if not all(isinstance(cb, Callback) for cb in cbs):
        raise NNError("callbacks must be a list of matdiff.nn.Callback objects")
    if schedule is not None:
        cbs.append(LearningRateScheduler(schedule))
    train_step = TrainStep(model, loss, optimizer, lr=lr, weight_decay=weight_decay,
                           clip_norm=clip_norm, tune_malloc=tune_malloc)
    opt = train_step.optimizer

    n = X.shape[0]
    steps_per_epoch = -(-n // batch_size)
    rng = np.random.default_rng(seed)
    if shuffle:
        for _ in range(initial_epoch):  # the orders of the epochs already done
            rng.permutation(n)
    metric = _metric_name(loss)
    hist = History(loss=[], **{metric: []})
    hist.initial_epoch = initial_epoch
    if validation is not None:
        hist["val_loss"], hist["val_" + metric] = [], []
    if any(isinstance(cb, LearningRateScheduler) for cb in cbs):
        hist["lr"] = []
    for cb in cbs:
        cb.model, cb.optimizer, cb.stop_training = model, opt, False
        cb.epochs, cb.steps_per_epoch = epochs, steps_per_epoch
    bar = _progress(progress, (epochs - initial_epoch) * steps_per_epoch)
    logs: dict[str, Any] = {}
    step = 0
    try:
        for cb in cbs:
            cb.on_train_begin(logs)
        # overflow inside a step shows as a non-finite loss or gradient, reported
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(initial_epoch + 1, epochs + 1):
                for cb in cbs:
                    cb.on_epoch_begin(epoch, {})
                order = rng.permutation(n) if shuffle else np.arange(n)
                total, seen = 0.0, 0
                stop = False
                for k in range(steps_per_epoch):
                    idx = order[k * batch_size:(k + 1) * batch_size]
                    step += 1
                    for cb in cbs:
                        cb.on_batch_begin(opt.steps + 1, {})
                    try:
                        value = train_step(X[idx], T[idx], checked=True)
                    except NonFiniteLossError as exc:
                        raise NonFiniteLossError(
                            f"{exc} at epoch {epoch}, step {k + 1} (of {steps_per_epoch}; "
                            f"step {step} overall); try a smaller learning rate or scaled "
                            "inputs", epoch=epoch, step=k + 1) from None
                    total += value * len(idx)
                    seen += len(idx)
                    if bar is not None:
                        bar.batch(epoch, value)
                    if cbs:
                        for cb in cbs:
                            cb.on_batch_end(opt.steps, {"loss": value})
                        if any(cb.stop_training for cb in cbs):
                            stop = True
                            break
                hist["loss"].append(total / seen)
                pred = model.predict(X)
                hist[metric].append(r2_score(T, pred) if loss == "mse"
                                    else accuracy(T, pred, loss))
                if validation is not None:
                    ev = evaluate(model, Xv, Tv if loss != "cross_entropy" else
                                  Tv.argmax(axis=1), loss)
                    hist["val_loss"].append(ev["loss"])
                    hist["val_" + metric].append(ev[metric])
                lr_used = opt.lr  # the last step's (a per-epoch schedule's for all)
                if "lr" in hist:
                    hist["lr"].append(lr_used)
                row = {k: v[-1] for k, v in hist.items()}
                if bar is not None:
                    bar.epoch_end(epoch, row)
                logs = {**row, "lr": lr_used}
                for cb in cbs:
                    cb.on_epoch_end(epoch, dict(logs))
                if stop or any(cb.stop_training for cb in cbs):
                    hist.stopped_epoch = epoch
                    break
        for cb in cbs:
            cb.on_train_end(dict(logs))
    finally:
        if bar is not None:
            bar.close()
    hist.steps = step
    return hist


def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike[str] | None = None,
                 title: str | None = None) -> Figure:
    """The training curves of ``history`` as a matplotlib ``Figure``: a panel per
    quantity (loss, log scale; r2 or accuracy; lr when scheduled), training and
    validation together.  Saved at ``path`` when given (PNG, PDF, SVG by its
    suffix).  Made with matplotlib's ``Figure`` and the Agg canvas: no display is
    needed and pyplot's global state is left alone.

    >>> import matdiff as md
    >>> h = md.nn.History(loss=[1.0, 0.5], val_loss=[1.2, 0.7], r2=[0.2, 0.6])
    >>> fig = md.nn.plot_history(h, title="toy")
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['loss', 'r2']
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [k for k in history if not k.startswith("val_")]
    if not keys or not history.get(keys[0]):
        raise NNError("the history is empty: nothing to plot")
    fig = Figure(figsize=(5 * len(keys), 4))
    FigureCanvasAgg(fig)
    first = getattr(history, "initial_epoch", 0) + 1
    for i, k in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        ep = list(range(first, first + len(history[k])))
        ax.plot(ep, history[k], label="train" if k != "lr" else "lr")
        if "val_" + k in history:
            ax.plot(ep, history["val_" + k], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(k)
        if k == "loss" and min(history[k]) > 0:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
