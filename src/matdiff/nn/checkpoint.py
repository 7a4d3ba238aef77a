"""Saving and loading models and optimizer states (:meth:`Model.save
<matdiff.nn.Model.save>`, :meth:`Model.load <matdiff.nn.Model.load>`,
:func:`load_checkpoint`), to use a trained model later or to resume training.

The file is NumPy's ``.npz`` (a zip of ``.npy`` arrays, ``np.savez``), read with
``np.load(allow_pickle=False)``: it holds data only, never code, and loading runs and
imports nothing from it.  Its entries:

- ``format``: the string ``"matdiff.nn/1"``;
- ``meta``: a JSON string ``{"model": {"class": "matdiff.nn.models.MLP", "config":
  {...}, "params": [names]}, "optimizer": null or {"optimizer": "Adam", "steps": t,
  "hyperparameters": {...}, "buffers": {param: [buffer names]}}, "epoch": null or k}``;
- ``param/NAME``: each parameter, float64, exactly as trained;
- ``optimizer/PARAM/BUFFER``: the optimizer's buffers (Adam's moments, momentum).

The model's class must be defined in the loading process (:data:`MODEL_CLASSES
<matdiff.nn.models.MODEL_CLASSES>`; matdiff's own always are), and the optimizer's
(:data:`~matdiff.optim.OPTIMIZER_CLASSES`).  Resuming from a checkpoint continues bit
for bit as if training had not stopped: ``fit(ck.model, ..., optimizer=ck.optimizer,
initial_epoch=ck.epoch, epochs=total)`` with the same data, seed and batch size.

>>> import numpy as np, matdiff as md, os, tempfile
>>> X = np.random.default_rng(0).normal(size=(30, 2)); y = X @ np.array([1.0, 2.0])
>>> m, opt = md.nn.Neuron(2, "identity"), md.optim.Adam(lr=0.1)
>>> _ = md.nn.fit(m, X, y, optimizer=opt, epochs=2, batch_size=10, progress=False)
>>> path = m.save(os.path.join(tempfile.mkdtemp(), "ck.npz"), optimizer=opt, epoch=2)
>>> ck = md.nn.load_checkpoint(path)
>>> ck.epoch, type(ck.optimizer).__name__, ck.optimizer.steps
(2, 'Adam', 6)
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, NamedTuple

import numpy as np

from ..optim import Optimizer
from .errors import DataError, NNError
from .models import MODEL_CLASSES, Model

__all__ = ["FORMAT", "Checkpoint", "save", "load_checkpoint"]

#: the ``format`` entry of the files this version writes and reads
FORMAT = "matdiff.nn/1"
#: the longest ``meta`` JSON read (a model's description is a few hundred bytes)
_MAX_META = 1 << 20


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` read: the model, the optimizer (``None`` when none
    was saved) and the epoch done (``None`` when not given).

    >>> import matdiff as md, os, tempfile
    >>> path = md.nn.Neuron(2).save(os.path.join(tempfile.mkdtemp(), "n.npz"))
    >>> md.nn.load_checkpoint(path)
    Checkpoint(model=<Neuron w(2,), b()>, optimizer=None, epoch=None)
    """

    model: Model
    optimizer: Optimizer | None
    epoch: int | None


def save(model: Model, path: str | os.PathLike[str], optimizer: Optimizer | None = None,
         epoch: int | None = None) -> str:
    """Write ``model`` (and ``optimizer``'s state, and ``epoch``) to ``path``; see the
    module for the format.  Returns ``path`` as a string."""
    cls = type(model)
    key = f"{cls.__module__}.{cls.__qualname__}"
    config = model.config()
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise NNError(f"{cls.__name__}.config() must be JSON data: {exc}") from None
    if MODEL_CLASSES.get(key) is not cls or "<locals>" in key:
        raise NNError(f"{cls.__qualname__} is not a class that loading can find "
                      "(define it at a module's top level)")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer))
                              or epoch < 0):
        raise NNError(f"epoch must be an integer >= 0, got {epoch!r}")
    arrays: dict[str, np.ndarray] = {f"param/{k}": np.asarray(v) for k, v in
                                     model.params.items()}
    opt_meta = None
    if optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise NNError(f"optimizer must be a matdiff.optim.Optimizer, got "
                          f"{type(optimizer).__name__}")
        if optimizer.params is not None and optimizer.params is not model.params:
            raise NNError("the optimizer holds other parameters than the model's")
        sd = optimizer.state_dict()
        opt_meta = {"optimizer": sd["optimizer"], "steps": int(sd["steps"]),
                    "hyperparameters": sd["hyperparameters"],
                    "buffers": {k: list(st) for k, st in sd["state"].items()}}
        for k, st in sd["state"].items():
            for b, a in st.items():
                arrays[f"optimizer/{k}/{b}"] = a
    meta = {"model": {"class": key, "config": config, "params": list(model.params)},
            "optimizer": opt_meta, "epoch": None if epoch is None else int(epoch)}
    path = os.fspath(path)
    # through a file object: np.savez would add ".npz" to a name without it
    with open(path, "wb") as f:
        arrays.update(format=np.array(FORMAT), meta=np.array(json.dumps(meta)))
        np.savez(f, allow_pickle=False, **arrays)  # numbers and strings only
    return path


def _read(path: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, or a :class:`DataError` saying why not."""
    if not os.path.exists(path):
        raise DataError(f"cannot load {path}: no such file")
    what = f"{path} is not a matdiff model file"
    try:
        z = np.load(path, allow_pickle=False)  # data only: no pickle, no code
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{what} (it is a single .npy array, not an .npz)")
        with z:
            return {k: z[k] for k in z.files}
    except DataError:
        raise
    except ValueError as exc:
        # what np.load says of a pickle, or of an object array inside the zip
        raise DataError(f"{what}: {exc} (matdiff never unpickles)") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{what}: {type(exc).__name__}: {exc}") from None


def _string(arrays: dict[str, np.ndarray], key: str, path: str) -> str:
    a = arrays.get(key)
    if a is None or a.shape != () or a.dtype.kind != "U":
        raise DataError(f"{path} is not a matdiff model file (no '{key}' string)")
    return str(a[()])


def _ints_in(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [i for v in value for i in _ints_in(v)]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ints_in(v)]
    return []


def _float_array(arrays: dict[str, np.ndarray], key: str, path: str) -> np.ndarray:
    a = arrays.get(key)
    if a is None:
        raise DataError(f"{path} lacks the array {key}")
    if a.dtype != np.float64:
        raise DataError(f"{path}: {key} must be float64, it is {a.dtype}")
    return a


def load_checkpoint(path: str | os.PathLike[str], optimizer: bool = True) -> Checkpoint:
    """The model, optimizer and epoch saved at ``path`` by :meth:`Model.save
    <matdiff.nn.Model.save>` (``optimizer=False`` skips the optimizer).  Data only:
    nothing in the file is run or imported; a file that is not a matdiff model file,
    or is damaged, gives a :class:`~matdiff.nn.DataError` saying why.

    >>> import matdiff as md, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "junk.npz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a model")
    >>> try:
    ...     md.nn.load_checkpoint(path)
    ... except md.nn.DataError as exc:
    ...     print(str(exc).split(": ")[0].endswith("is not a matdiff model file"))
    True
    """
    path = os.fspath(path)
    arrays = _read(path)
    fmt = _string(arrays, "format", path)
    if fmt != FORMAT:
        raise DataError(f"{path} has the format {fmt[:40]!r}; this matdiff reads {FORMAT!r}")
    text = _string(arrays, "meta", path)
    if len(text) > _MAX_META:
        raise DataError(f"{path}: its description is over {_MAX_META} characters")
    try:
        meta = json.loads(text)
        mmeta = meta["model"]
        key, config, names = mmeta["class"], mmeta["config"], mmeta["params"]
        if not (isinstance(key, str) and isinstance(config, dict)
                and isinstance(names, list)):
            raise TypeError("class, config and params")
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: its description is damaged ({exc})") from None
    klass = MODEL_CLASSES.get(key)
    if klass is None:
        raise DataError(f"{path} holds a model of class {key[:80]!r}, which is not defined "
                        f"here (defined: {', '.join(sorted(MODEL_CLASSES))}); import the "
                        "module that defines it first")
    params = {}
    for name in names:
        params[name] = _float_array(arrays, f"param/{name}", path)
    stored = sum(a.size for a in params.values())
    # matdiff's models take at most a size or two per parameter array; a config with
    # more numbers than that (an MLP of a million layers) is refused before it is built
    if len(_ints_in(config)) > len(names) + 2:
        raise DataError(f"{path}: the config has more sizes than the {len(names)} "
                        "parameters stored")
    # a size in the config cannot exceed the numbers stored (each is some parameter's
    # dimension), so a forged config cannot make the constructor allocate more
    if any(i > max(stored, 1) or i < 0 for i in _ints_in(config)):
        raise DataError(f"{path}: the config {json.dumps(config)[:200]} does not fit the "
                        f"{stored} numbers stored")
    try:
        model = klass(**config)
    except (TypeError, NNError) as exc:
        raise DataError(f"{path}: cannot build {klass.__name__} from its config: {exc}"
                        ) from None
    if list(model.params) != names:
        raise DataError(f"{path}: the parameters {names} are not those of the "
                        f"{klass.__name__} its config builds ({list(model.params)})")
    try:
        model.load_state_dict(params)
    except NNError as exc:
        raise DataError(f"{path}: {exc}") from None
    opt = None
    ometa = meta.get("optimizer")
    if optimizer and ometa is not None:
        try:
            buffers = {k: {b: _float_array(arrays, f"optimizer/{k}/{b}", path) for b in bs}
                       for k, bs in ometa["buffers"].items()}
            state = {"optimizer": ometa["optimizer"], "steps": ometa["steps"],
                     "hyperparameters": ometa["hyperparameters"], "state": buffers}
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: its optimizer state is damaged ({exc})") from None
        try:
            opt = Optimizer.from_state_dict(state, model.params)
        except NNError as exc:
            raise DataError(f"{path}: cannot restore the optimizer: {exc}") from None
    epoch = meta.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int)
                              or epoch < 0):
        raise DataError(f"{path}: its epoch {epoch!r} is not an integer >= 0")
    return Checkpoint(model, opt, epoch)
