"""Demos on datasets scikit-learn ships in its package (nothing is downloaded):
the paper's ReLU neuron on the diabetes data, an MLP on the handwritten digits."""

from __future__ import annotations

from typing import Any

import numpy as np

from .models import MLP, Neuron
from .train import accuracy, fit, plot_history, r2_score

__all__ = ["split", "train_neuron", "train_mlp"]


def split(X: np.ndarray, y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded random train/test split."""
    idx = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(len(X) * test_fraction))
    te, tr = idx[:n_test], idx[n_test:]
    return X[tr], X[te], y[tr], y[te]


def train_neuron(epochs: int = 200, seed: int = 0, lr: float = 0.05, batch_size: int = 32,
                 plot: str | None = None, progress: bool = False) -> dict[str, Any]:
    """The paper's neuron ``max(0, w·x + b)`` on ``load_diabetes``, trained with Adam on
    the paper's mean squared error.  Inputs are standardised with the training
    statistics; targets divided by their training standard deviation (they stay
    positive, which a ReLU output needs).  Returns the test R² (``r2``; predicting
    the training mean gives ``r2_mean`` ≈ 0), the model and the history."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    Xtr, Xte, ytr, yte = split(data.data, data.target.astype(float), 0.2, seed)
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    scale = ytr.std()
    model = Neuron(Xtr.shape[1], "relu", seed=seed)
    model.params["b"][...] = ytr.mean() / scale  # start at the mean, in the active region
    hist = fit(model, Xtr, ytr / scale, loss="mse", optimizer="adam", lr=lr, epochs=epochs,
               batch_size=batch_size, validation=(Xte, yte / scale), seed=seed,
               progress=progress)
    pred = model.predict(Xte) * scale
    out = {"r2": r2_score(yte, pred),
           "r2_mean": r2_score(yte, np.full_like(yte, ytr.mean())),
           "rmse": float(np.sqrt(np.mean((pred - yte) ** 2))),
           "n_train": len(Xtr), "n_test": len(Xte), "model": model, "history": hist}
    if plot:
        plot_history(hist, plot, "ReLU neuron on diabetes (targets / std)")
        out["plot"] = plot
    return out


def train_mlp(epochs: int = 30, seed: int = 0, hidden: int = 64, activation: str = "relu",
              lr: float = 3e-3, batch_size: int = 32, plot: str | None = None,
              progress: bool = False, subset: int | None = None) -> dict[str, Any]:
    """An MLP ``64-hidden-10`` on ``load_digits`` (8×8 images, pixels / 16), softmax
    cross-entropy, Adam.  Returns the test accuracy (``accuracy``), the model and the
    history.  ``subset`` keeps only that many samples (quick checks)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    X, y = data.data / 16.0, data.target.astype(np.int64)
    if subset is not None:
        keep = np.random.default_rng(seed).permutation(len(X))[:subset]
        X, y = X[keep], y[keep]
    Xtr, Xte, ytr, yte = split(X, y, 0.2, seed)
    model = MLP([X.shape[1], hidden, 10], activation, seed=seed)
    hist = fit(model, Xtr, ytr, loss="cross_entropy", optimizer="adam", lr=lr,
               epochs=epochs, batch_size=batch_size, validation=(Xte, yte), seed=seed,
               progress=progress)
    logits = model.predict(Xte)
    out = {"accuracy": accuracy(np.eye(10)[yte], logits, "cross_entropy"),
           "n_train": len(Xtr), "n_test": len(Xte), "model": model, "history": hist}
    if plot:
        plot_history(hist, plot, f"MLP 64-{hidden}-10 on digits")
        out["plot"] = plot
    return out
