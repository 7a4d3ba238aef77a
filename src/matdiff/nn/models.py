"""Models whose loss is a matdiff expression: the paper's neuron, dense layers, MLPs.

>>> import numpy as np, matdiff as md
>>> m = md.nn.Neuron(3, seed=0)
>>> L = m.loss_expr("mse")
>>> str(L)
'mean((relu(Xw + b) − y)²)'
>>> loss, grads = m.value_and_grad(np.ones((4, 3)), np.ones(4), "mse")
>>> sorted(grads)
['b', 'w']

Every gradient comes from ``md.derive`` of the loss expression; all of them (and
the loss) are computed by one compiled function per loss (``md.compile``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .. import expr as E
from ..compile import compile as md_compile
from ..derive import derive
from ..expr.builders_typed import logsumexp, relu, sigmoid, softplus, tanh
from ..expr.core import Expr, Var
from .errors import DataError, NNError, UnknownNameError

if TYPE_CHECKING:
    from ..optim import Optimizer

__all__ = ["ACTIVATIONS", "LOSSES", "Model", "Neuron", "Dense", "MLP", "loss_expression",
           "check_inputs", "check_targets", "get_activation", "loss_name", "MODEL_CLASSES"]

#: activation name -> builder on expressions
ACTIVATIONS: dict[str, Callable[[Expr], Expr]] = {
    "relu": relu,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "identity": lambda z: z,
}

#: loss name -> description; aliases map to these
LOSSES = {
    "mse": "mean squared error, mean((ŷ − y)²) (the paper's loss)",
    "bce": "binary cross-entropy on logits, mean(softplus(z) − y z) (stable)",
    "cross_entropy": "softmax cross-entropy on logits, mean(logsumexp(z) − z_y) (stable)",
}
_ALIASES = {"mean_squared_error": "mse", "binary_cross_entropy": "bce",
            "softmax_cross_entropy": "cross_entropy", "ce": "cross_entropy"}


def loss_name(loss: Any) -> str:
    """The canonical name of a loss (``UnknownNameError`` listing the valid ones).

    >>> loss_name("binary_cross_entropy"), loss_name("CE")
    ('bce', 'cross_entropy')
    """
    if isinstance(loss, str):
        key = loss.lower()
        key = _ALIASES.get(key, key)
        if key in LOSSES:
            return key
    raise UnknownNameError("loss", loss, [*LOSSES, *_ALIASES])


def get_activation(name: str) -> Callable[[Expr], Expr]:
    """The expression builder of an activation (``UnknownNameError`` lists the valid ones).

    >>> import matdiff as md
    >>> str(get_activation("tanh")(md.vector("z", "n")))
    'tanh(z)'
    """
    if isinstance(name, str) and name.lower() in ACTIVATIONS:
        return ACTIVATIONS[name.lower()]
    raise UnknownNameError("activation", name, ACTIVATIONS)


def loss_expression(out: Expr, target: Expr, loss: str) -> Expr:
    """The loss of predictions ``out`` (logits for the cross-entropies) against
    ``target`` (same shape; one-hot rows for ``cross_entropy``), averaged over the batch.

    >>> import matdiff as md
    >>> str(loss_expression(md.vector("z", "N"), md.vector("y", "N"), "bce"))
    'mean(softplus(z) − y ⊙ z)'
    """
    loss = loss_name(loss)
    if loss == "mse":
        return E.mean((out - target) ** 2)
    if loss == "bce":
        return E.mean(softplus(out) - target * out)
    if len(out.shape) != 2:
        raise NNError("cross_entropy needs a model with a vector of logits per sample "
                      "(a Dense layer or an MLP), not a single output")
    return E.mean(logsumexp(out) - E.sum(target * out, axis=1))


# ====================================================================== input checks
def _as_real(a: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - ragged lists etc.
        raise DataError(f"{name} is not an array of numbers: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinite values")
    return arr


def check_inputs(X: Any, n_in: int, name: str = "X") -> np.ndarray:
    """``X`` as a float64 ``(N, n_in)`` array, or a :class:`DataError` saying why not.

    >>> check_inputs([[1, 2], [3, 4]], 2).dtype
    dtype('float64')
    >>> check_inputs([1, 2], 2)
    Traceback (most recent call last):
    ...
    matdiff.errors.DataError: X must be a 2-D array (samples × 2 features), got shape (2,)...
    """
    arr = _as_real(X, name)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (samples × {n_in} features), got shape "
                        f"{arr.shape}" + ("; use X.reshape(1, -1) for one sample"
                                          if arr.ndim == 1 else ""))
    if arr.shape[1] != n_in:
        raise DataError(f"{name} has {arr.shape[1]} features per sample, the model takes "
                        f"{n_in} (shape {arr.shape})")
    if arr.shape[0] == 0:
        raise DataError(f"{name} has no samples")
    return arr


def check_targets(y: Any, loss: str, n: int, n_out: int | None, name: str = "y"
                  ) -> np.ndarray:
    """Targets as the array the loss expression takes: ``(N,)`` for a single-output
    model, ``(N, n_out)`` otherwise (class labels become one-hot rows).

    >>> check_targets([2, 0], "cross_entropy", 2, 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    loss = loss_name(loss)
    if loss == "cross_entropy":
        if n_out is None:
            raise NNError("cross_entropy needs a model with several outputs (logits)")
        arr = np.asarray(y)
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) \
                and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise DataError(f"{name} for cross_entropy must be integer class labels, got "
                            f"dtype {arr.dtype}")
        if arr.shape != (n,):
            raise DataError(f"{name} must have shape ({n},) (one label per sample), got "
                            f"{arr.shape}")
        bad = (arr < 0) | (arr >= n_out)
        if bad.any():
            raise DataError(f"{name} has labels out of range: {sorted(set(arr[bad].tolist()))[:5]}"
                            f"; the model has {n_out} classes, labels 0..{n_out - 1}")
        onehot: np.ndarray = np.eye(n_out)[arr]
        return onehot
    arr = _as_real(y, name)
    want = (n,) if n_out is None else (n, n_out)
    if arr.shape != want:
        if n_out == 1 and arr.shape == (n,):
            arr = arr.reshape(n, 1)
        elif n_out is None and arr.shape == (n, 1):
            arr = arr.reshape(n)
        else:
            raise DataError(f"{name} must have shape {want}, got {arr.shape}")
    if loss == "bce" and ((arr < 0) | (arr > 1)).any():
        raise DataError(f"{name} for bce must be in [0, 1] (labels 0/1 or probabilities)")
    return arr


# ====================================================================== models
class ParamDict(dict[str, np.ndarray]):
    """name -> parameter array, every array a view into one flat buffer, ``.flat``
    (so an optimizer updates all of them with one operation per step).  Update the
    arrays in place (``p[...] = new``); an entry replaced by another array is no longer
    part of ``.flat`` (optimizers then fall back to one parameter at a time).

    >>> import numpy as np
    >>> p = ParamDict.tile({"W": np.ones((2, 2)), "b": np.zeros(2)})
    >>> p.flat.tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    >>> p["b"][...] = 5.0
    >>> p.flat.tolist()
    [1.0, 1.0, 1.0, 1.0, 5.0, 5.0]
    """

    flat: np.ndarray

    @classmethod
    def tile(cls, params: Mapping[str, np.ndarray]) -> ParamDict:
        """Copy ``params`` into one new flat buffer and return its views."""
        flat = np.empty(sum(int(np.size(p)) for p in params.values()))
        out = cls()
        off = 0
        for k, p in params.items():
            n = int(np.size(p))
            view = flat[off:off + n].reshape(np.shape(p))
            view[...] = p
            out[k] = view
            off += n
        out.flat = flat
        return out

    def subset(self, names: Sequence[str]) -> ParamDict:
        """The entries ``names`` (adjacent in ``.flat``, in its order), sharing it."""
        out = type(self)((k, self[k]) for k in names)
        start = self.flat.__array_interface__["data"][0]
        first = out[names[0]].__array_interface__["data"][0]
        off = (first - start) // self.flat.itemsize
        out.flat = self.flat[off:off + sum(p.size for p in out.values())]
        return out


#: "module.Class" -> every subclass of :class:`Model` defined in this process; a saved
#: model names its class, and loading builds only these (nothing is imported)
MODEL_CLASSES: dict[str, type[Model]] = {}


class Model:
    """A model: named float64 parameters and an output expression of the inputs ``X``.

    Subclasses define :meth:`output` (an expression of ``X``), ``n_in``, ``n_out``
    (``None`` for one output per sample), ``params`` (name -> array, updated in place
    by the optimizers) and, to be saved, :meth:`config` (their constructor's
    arguments).

    >>> import matdiff as md
    >>> m = md.nn.Dense(3, 2, "sigmoid")
    >>> isinstance(m, md.nn.Model), m.num_params(), m.config()["activation"]
    (True, 8, 'sigmoid')
    """

    n_in: int
    n_out: int | None
    params: dict[str, np.ndarray]
    #: the names of the input's and the output's dims in the expressions
    _in_dim: str
    _out_dim: str

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        MODEL_CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def __init__(self) -> None:
        self._fns: dict[str, Any] = {}
        self._predict_fn: Any = None

    # -- expressions
    def param_vars(self) -> dict[str, Expr]:
        raise NotImplementedError

    def input_var(self) -> Var:
        return E.matrix("X", "N", self._in_dim)

    def output(self, X: Expr | None = None) -> Expr:
        """The model's output as an expression of ``X`` (``N × n_in``)."""
        raise NotImplementedError

    def target_var(self) -> Var:
        if self.n_out is None:
            return E.vector("y", "N")
        return E.matrix("Y", "N", self._out_dim)

    def loss_expr(self, loss: str = "mse") -> Expr:
        """The loss over a batch as a matdiff expression (print it, derive it, explain it).

        Its variables: ``X`` (inputs), ``y`` or ``Y`` (targets; one-hot for
        ``cross_entropy``) and the parameters (:attr:`params`)."""
        return loss_expression(self.output(), self.target_var(), loss)

    def gradient_exprs(self, loss: str = "mse") -> dict[str, Expr]:
        """``{name: d loss / d param}`` as expressions."""
        L = self.loss_expr(loss)
        return {name: derive(L, name) for name in self.params}

    # -- numbers
    def _compiled(self, loss: str) -> Any:
        loss = loss_name(loss)
        fn = self._fns.get(loss)
        if fn is None:
            L = self.loss_expr(loss)
            fn = md_compile({"loss": L, "grads": {n: derive(L, n) for n in self.params}})
            self._fns[loss] = fn
        return fn

    def _values(self, X: np.ndarray, T: np.ndarray) -> dict[str, np.ndarray]:
        vals = dict(self.params)
        vals["X"] = X
        vals["y" if self.n_out is None else "Y"] = T
        return vals

    def value_and_grad(self, X: Any, y: Any, loss: str = "mse", *, _checked: bool = False
                       ) -> tuple[float, dict[str, np.ndarray]]:
        """The loss on a batch and its gradient by every parameter (one compiled call)."""
        if not _checked:
            X = check_inputs(X, self.n_in)
            y = check_targets(y, loss, X.shape[0], self.n_out)
        out = self._compiled(loss)(self._values(X, y))
        return float(out["loss"]), out["grads"]

    def loss(self, X: ArrayLike, y: ArrayLike, loss: str = "mse") -> float:
        """The loss on a batch."""
        return self.value_and_grad(X, y, loss)[0]

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The model's output (logits for classifiers) on ``X``."""
        X = check_inputs(X, self.n_in)
        if self._predict_fn is None:
            self._predict_fn = md_compile(self.output())
        vals = dict(self.params)
        vals["X"] = X
        return np.asarray(self._predict_fn(vals))

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, v in state.items():
            if k not in self.params:
                raise UnknownNameError("parameter", k, self.params)
            arr = np.asarray(v, dtype=np.float64)
            if arr.shape != self.params[k].shape:
                raise DataError(f"parameter {k} has shape {self.params[k].shape}, got "
                                f"{arr.shape}")
            self.params[k][...] = arr

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.params.items())
        return f"<{type(self).__name__} {shapes}>"

    # -- saving and loading
    def config(self) -> dict[str, Any]:
        """The keyword arguments that build this model again (JSON data: numbers,
        strings, lists), without the seed: :meth:`load` sets the parameters."""
        raise NNError(f"{type(self).__name__} cannot be saved: define its config() (the "
                      "constructor's keyword arguments)")

    def save(self, path: str | os.PathLike[str], optimizer: Optimizer | None = None,
             epoch: int | None = None) -> str:
        """Save the model (its class, :meth:`config` and parameters, exactly) to
        ``path`` as an ``.npz`` file (NumPy's zip of arrays, the name as given), with
        ``optimizer``'s :meth:`~matdiff.optim.Optimizer.state_dict` and the ``epoch``
        done when given, to resume.  Returns ``path``.  :meth:`load` and
        :func:`~matdiff.nn.load_checkpoint` read it back; the format is described in
        :mod:`matdiff.nn.checkpoint`.

        >>> import numpy as np, matdiff as md, os, tempfile
        >>> m = md.nn.MLP([3, 4, 2], "tanh", seed=1)
        >>> path = m.save(os.path.join(tempfile.mkdtemp(), "mlp.npz"))
        >>> again = md.nn.Model.load(path)
        >>> again, np.array_equal(again.params["W1"], m.params["W1"])
        (<MLP W1(3, 4), b1(4,), W2(4, 2), b2(2,)>, True)
        """
        from .checkpoint import save

        return save(self, path, optimizer=optimizer, epoch=epoch)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """The model saved at ``path`` by :meth:`save` (of this class or a subclass).
        The file is read as data only (``np.load(allow_pickle=False)``, JSON): nothing
        in it is run or imported; a file that is not such a model gives a
        :class:`~matdiff.nn.DataError` saying why."""
        from .checkpoint import load_checkpoint

        model = load_checkpoint(path, optimizer=False).model
        if not isinstance(model, cls):
            raise DataError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def _check_size(n: Any, what: str) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise NNError(f"{what} must be a positive integer, got {n!r}")
    return int(n)


def _init(rng: np.random.Generator, n_in: int, n_out: int, act: str) -> np.ndarray:
    if act == "relu":  # He et al. 2015
        return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
    a = np.sqrt(6.0 / (n_in + n_out))  # Glorot & Bengio 2010, uniform
    return rng.uniform(-a, a, size=(n_in, n_out))


class Neuron(Model):
    """The paper's neuron ``activation(w·x + b)`` (default ``max(0, w·x + b)``), applied
    to each row of ``X``: one output per sample.  ``w`` is He-initialised from ``seed``
    (Glorot for other activations), ``b = 0``.

    >>> import numpy as np, matdiff as md
    >>> m = md.nn.Neuron(2, seed=0)
    >>> m.params["w"][...] = [1.0, -1.0]
    >>> m.predict(np.array([[3.0, 1.0], [1.0, 3.0]])).tolist()   # max(0, w·x + b)
    [2.0, 0.0]
    """

    n_in: int
    n_out: None
    activation: str
    params: ParamDict

    def __init__(self, n_in: int, activation: str = "relu", seed: int | None = 0) -> None:
        super().__init__()
        self.n_in = _check_size(n_in, "n_in")
        self.n_out = None
        get_activation(activation)
        self.activation = activation.lower()
        self._in_dim = "d"
        rng = np.random.default_rng(seed)
        w = _init(rng, self.n_in, 1, self.activation)[:, 0]
        self.params = ParamDict.tile({"w": w, "b": np.zeros(())})

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "activation": self.activation}

    def param_vars(self) -> dict[str, Expr]:
        return {"w": E.vector("w", "d"), "b": E.scalar("b")}

    def output(self, X: Expr | None = None) -> Expr:
        X = self.input_var() if X is None else X
        p = self.param_vars()
        return get_activation(self.activation)(X @ p["w"] + p["b"])


class Dense(Model):
    """One layer ``activation(X W + b)``: ``W`` is ``n_in × n_out`` (He for relu, Glorot
    otherwise, from ``seed``), ``b = 0``.  ``prefix``/``index`` name the parameters
    (``W``/``b`` alone; ``W1``/``b1`` in an MLP).

    >>> import matdiff as md
    >>> d = md.nn.Dense(4, 3, "tanh")
    >>> sorted(d.params), d.params["W"].shape
    (['W', 'b'], (4, 3))
    >>> str(d.output())
    'tanh(XW + 𝟏bᵀ)'
    """

    n_in: int
    n_out: int
    activation: str
    params: ParamDict

    def __init__(self, n_in: int, n_out: int, activation: str = "identity",
                 seed: int | None = 0, index: int | None = None) -> None:
        super().__init__()
        self.n_in = _check_size(n_in, "n_in")
        self.n_out = _check_size(n_out, "n_out")
        get_activation(activation)
        self.activation = activation.lower()
        sfx = "" if index is None else str(index)
        self._w, self._b = "W" + sfx, "b" + sfx
        self._in_dim = "d0" if index is None else f"d{index - 1}"
        self._out_dim = "d1" if index is None else f"d{index}"
        rng = np.random.default_rng(seed)
        self.index = index
        self.params = ParamDict.tile({
            self._w: _init(rng, self.n_in, self.n_out, self.activation),
            self._b: np.zeros(self.n_out)})

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation,
                "index": self.index}

    def param_vars(self) -> dict[str, Expr]:
        return {self._w: E.matrix(self._w, self._in_dim, self._out_dim),
                self._b: E.vector(self._b, self._out_dim)}

    def output(self, X: Expr | None = None) -> Expr:
        X = self.input_var() if X is None else X
        p = self.param_vars()
        return get_activation(self.activation)(X @ p[self._w] + p[self._b])


class MLP(Model):
    """A multi-layer perceptron: ``sizes = [n_in, h1, ..., n_out]``; ``activation`` on
    the hidden layers, none on the last (its outputs are the logits or the regression
    outputs).  Parameters ``W1, b1, W2, b2, ...``, initialised from ``seed``.

    >>> import numpy as np, matdiff as md
    >>> m = md.nn.MLP([4, 8, 3], "relu", seed=0)
    >>> m
    <MLP W1(4, 8), b1(8,), W2(8, 3), b2(3,)>
    >>> m.predict(np.zeros((5, 4))).shape
    (5, 3)
    """

    n_in: int
    n_out: int
    activation: str
    output_activation: str
    params: ParamDict

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 seed: int | None = 0, output_activation: str = "identity") -> None:
        super().__init__()
        sizes = list(sizes) if isinstance(sizes, (list, tuple)) else sizes
        if not isinstance(sizes, list) or len(sizes) < 2:
            raise NNError(f"MLP sizes must be a list [n_in, ..., n_out] of at least two "
                          f"positive integers, got {sizes!r}")
        sizes = [_check_size(s, "each MLP size") for s in sizes]
        get_activation(activation)
        get_activation(output_activation)
        self.sizes = sizes
        self.activation = activation.lower()
        self.output_activation = output_activation.lower()
        rng = np.random.default_rng(seed)
        self.layers: list[Dense] = []
        for i in range(1, len(sizes)):
            act = self.activation if i < len(sizes) - 1 else output_activation.lower()
            seed_i = int(rng.integers(2**31))
            self.layers.append(Dense(sizes[i - 1], sizes[i], act, seed=seed_i, index=i))
        # one flat buffer for all layers; each layer's params are views into it (the
        # same arrays: an update through either is seen by both)
        self.params = ParamDict.tile({k: v for layer in self.layers
                                      for k, v in layer.params.items()})
        for layer in self.layers:
            layer.params = self.params.subset(list(layer.params))
        self.n_in, self.n_out = sizes[0], sizes[-1]
        self._in_dim, self._out_dim = "d0", f"d{len(sizes) - 1}"

    def config(self) -> dict[str, Any]:
        return {"sizes": list(self.sizes), "activation": self.activation,
                "output_activation": self.output_activation}

    def param_vars(self) -> dict[str, Expr]:
        out: dict[str, Expr] = {}
        for layer in self.layers:
            out.update(layer.param_vars())
        return out

    def output(self, X: Expr | None = None) -> Expr:
        h = self.input_var() if X is None else X
        for layer in self.layers:
            h = layer.output(h)
        return h
