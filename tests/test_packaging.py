"""Packaging (issue 14, item 5): the metadata, the extras, the messages for a missing
optional dependency, training without tqdm."""

import builtins
import sys
from pathlib import Path

import numpy as np
import pytest

import matdiff as md

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the metadata is the same on 3.10
ROOT = Path(__file__).resolve().parents[1]


def test_metadata_is_complete():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT"             # an SPDX expression, not a table
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert {"jax", "torch", "train", "all"} <= set(meta["optional-dependencies"])
    assert meta["keywords"] and meta["urls"]
    assert "Typing :: Typed" in meta["classifiers"]
    assert (ROOT / "src" / "matdiff" / "py.typed").exists()


def _without(monkeypatch, *names):
    real = builtins.__import__

    def fake(name, *args, **kw):
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kw)

    for mod in list(sys.modules):
        if mod.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake)


def test_a_missing_backend_names_its_extra(monkeypatch):
    from matdiff.compile import backends

    monkeypatch.setattr(backends, "_TABLES", {})
    _without(monkeypatch, "torch")
    with pytest.raises(md.MatdiffError, match=r"pip install 'matdiff\[torch\]'"):
        md.compile(md.vector("x", "n"), backend="torch")


def test_fit_reports_progress_without_tqdm(monkeypatch, capsys):
    from matdiff import nn

    _without(monkeypatch, "tqdm")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    model = nn.Neuron(3, activation="identity", seed=0)
    hist = nn.fit(model, x, y.reshape(-1, 1), epochs=3, loss="mse", batch_size=10)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(hist["loss"]) == 3
    assert len(err) == 3 and err[-1].startswith("fit: epoch 3, step 6/6, loss ")
