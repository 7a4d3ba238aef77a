"""Neurons and networks trained on matdiff's symbolic derivatives.

The model's loss is a matdiff expression (``model.loss_expr(loss)``), so ``md.derive``,
``md.explain`` and the printers work on it; training computes the loss and its
gradient by every parameter with one compiled function (``md.compile``).

>>> import matdiff as md
>>> m = md.nn.MLP([4, 8, 3], "tanh", seed=0)
>>> sorted(m.params)
['W1', 'W2', 'b1', 'b2']

Training fits the habits of Keras and Lightning: callbacks (:class:`EarlyStopping`
that restores the best weights, :class:`ModelCheckpoint`), learning-rate schedules
and gradient clipping (``fit(schedule=..., clip_norm=...)``), ``model.save`` /
``Model.load`` and resuming bit for bit (``initial_epoch=``), the history as a table
or a DataFrame, :func:`plot_history` returning a Figure, and a progress bar that is
one line per epoch off a terminal.

scikit-learn, tqdm and matplotlib (the ``train`` extra) are imported only by the
demos, the progress bar and :func:`plot_history`; pandas only by
:meth:`History.to_frame`.
"""

from . import demos  # sklearn is imported inside its functions
from .callbacks import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint
from .checkpoint import Checkpoint, load_checkpoint
from .errors import DataError, NNError, NonFiniteLossError, UnknownNameError
from .models import (
    ACTIVATIONS,
    LOSSES,
    MLP,
    Dense,
    Model,
    Neuron,
    ParamDict,
    check_inputs,
    check_targets,
    get_activation,
    loss_expression,
    loss_name,
)
from .train import (
    History,
    TrainStep,
    accuracy,
    evaluate,
    fit,
    plot_history,
    r2_score,
    tune_malloc,
)

__all__ = [
    "Neuron", "Dense", "MLP", "Model", "ParamDict", "ACTIVATIONS", "LOSSES", "loss_expression",
    "loss_name", "get_activation", "check_inputs", "check_targets",
    "fit", "TrainStep", "tune_malloc", "evaluate", "History", "plot_history", "r2_score",
    "accuracy",
    "NNError", "DataError", "UnknownNameError", "NonFiniteLossError", "demos",
    "Callback", "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint",
    "Checkpoint", "load_checkpoint",
]
