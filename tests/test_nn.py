"""matdiff.nn and matdiff.optim: gradients and updates against PyTorch, training."""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from matdiff.errors import MatdiffError
from matdiff.nn import (
    MLP,
    DataError,
    Dense,
    Neuron,
    NNError,
    NonFiniteLossError,
    UnknownNameError,
    fit,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional
ACTS = ["relu", "tanh", "sigmoid", "identity"]
T_ACT = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
         "identity": lambda z: z}


def _t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _torch_loss(out, y, loss):
    if loss == "mse":
        return F.mse_loss(out, torch.tensor(y))
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(out, torch.tensor(y))
    return F.cross_entropy(out, torch.tensor(y, dtype=torch.long))


def _targets(rng, loss, n, k):
    if loss == "mse":
        return rng.normal(size=(n,) if k is None else (n, k))
    if loss == "bce":
        return rng.integers(0, 2, size=(n,) if k is None else (n, k)).astype(float)
    return rng.integers(0, k, size=n)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_neuron_gradients_match_torch(loss):
    rng = np.random.default_rng(1)
    X, m = rng.normal(size=(16, 5)), Neuron(5, seed=3)
    m.params["b"][...] = 0.3
    y = _targets(rng, loss, 16, None)
    value, grads = m.value_and_grad(X, y, loss)
    w, b = _t(m.params["w"]), _t(m.params["b"])
    L = _torch_loss(torch.relu(torch.tensor(X) @ w + b), y, loss)
    L.backward()
    assert value == pytest.approx(L.item(), rel=1e-12)
    np.testing.assert_allclose(grads["w"], w.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["b"], b.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
def test_mlp_gradients_match_torch(act, loss):
    rng = np.random.default_rng(2)
    m = MLP([6, 7, 4], act, seed=5)
    for k in ("b1", "b2"):
        m.params[k][...] = rng.normal(size=m.params[k].shape) * 0.1
    X = rng.normal(size=(12, 6))
    y = _targets(rng, loss, 12, 4)
    value, grads = m.value_and_grad(X, y, loss)
    tp = {k: _t(v) for k, v in m.params.items()}
    h = T_ACT[act](torch.tensor(X) @ tp["W1"] + tp["b1"])
    L = _torch_loss(h @ tp["W2"] + tp["b2"], y, loss)
    L.backward()
    assert value == pytest.approx(L.item(), rel=1e-12)
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    for k, p in tp.items():
        np.testing.assert_allclose(grads[k], p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_dense_and_single_output_mlp():
    rng = np.random.default_rng(0)
    d = Dense(3, 2, "tanh", seed=0)
    X = rng.normal(size=(5, 3))
    np.testing.assert_allclose(d.predict(X), np.tanh(X @ d.params["W"] + d.params["b"]))
    m = MLP([3, 4, 1], "relu")
    v1, _ = m.value_and_grad(X, np.ones(5), "mse")      # (N,) targets for one output
    v2, _ = m.value_and_grad(X, np.ones((5, 1)), "mse")
    assert v1 == v2


def test_loss_is_an_expression():
    m = MLP([4, 8, 3], "tanh")
    L = m.loss_expr("cross_entropy")
    assert isinstance(L, md.Expr) and L.shape == ()
    g = md.derive(L, "W1")
    assert g.shape == ("d0", "d1")
    assert "W1" in str(g) and "softmax" in str(g)
    assert str(md.explain(Neuron(3).loss_expr("mse"), "w"))
    assert md.latex(g)


def test_init_is_seeded_he_glorot():
    a, b, c = MLP([50, 40, 3], seed=7), MLP([50, 40, 3], seed=7), MLP([50, 40, 3], seed=8)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert abs(a.params["W1"].std() - np.sqrt(2 / 50)) < 0.03   # He (relu)
    g = Dense(50, 40, "tanh").params["W"]
    assert np.abs(g).max() <= np.sqrt(6 / 90)                   # Glorot uniform


# ---------------------------------------------------------------- optimizers
def _run_both(make_md, make_torch, steps=5):
    rng = np.random.default_rng(4)
    p0 = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    grads = [{k: rng.normal(size=v.shape) for k, v in p0.items()} for _ in range(steps)]
    mine = {k: v.copy() for k, v in p0.items()}
    opt = make_md(mine)
    tps = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in p0.items()}
    topt = make_torch(list(tps.values()))
    for g in grads:
        opt.step(g)
        for k, p in tps.items():
            p.grad = torch.tensor(g[k])
        topt.step()
        for k in p0:
            np.testing.assert_allclose(mine[k], tps[k].detach().numpy(), rtol=1e-12,
                                       atol=1e-14)


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("kw", [{}, {"momentum": 0.9}, {"momentum": 0.8, "dampening": 0.3},
                                {"momentum": 0.9, "nesterov": True}])
def test_sgd_matches_torch(kw, wd):
    _run_both(lambda p: md.optim.SGD(p, lr=0.05, weight_decay=wd, **kw),
              lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=wd, **kw))


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_matches_torch(wd):
    _run_both(lambda p: md.optim.Adam(p, lr=0.01, betas=(0.8, 0.95), weight_decay=wd),
              lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.95), weight_decay=wd),
              steps=8)


def test_adamw_matches_torch():
    _run_both(lambda p: md.optim.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), steps=6)


def test_optimizer_errors():
    with pytest.raises(UnknownNameError, match="adam, adamw, momentum, nesterov, sgd"):
        md.optim.make_optimizer("rmsprop", {})
    p = {"w": np.zeros(3)}
    with pytest.raises(DataError, match="shape"):
        md.optim.SGD(p).step({"w": np.zeros(4)})
    with pytest.raises(DataError, match="missing"):
        md.optim.SGD(p).step({})
    with pytest.raises(DataError, match="float64"):
        md.optim.SGD({"w": np.zeros(3, dtype=np.float32)})
    with pytest.raises(NNError):
        md.optim.SGD(p, lr=-1)


# ---------------------------------------------------------------- training
def _toy(seed=0, n=200):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=n) > 0).astype(float)
    return X, y


def test_fit_is_deterministic_and_decreases_loss():
    X, y = _toy()
    runs = []
    for _ in range(2):
        m = MLP([4, 8, 1], "tanh", seed=1)
        h = fit(m, X, y, loss="bce", optimizer="adam", lr=0.05, epochs=8, batch_size=16,
                validation=(X[:50], y[:50]), seed=3, progress=False)
        runs.append((h, m.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert h1 == h2 and all(np.array_equal(s1[k], s2[k]) for k in s1)
    assert h1["loss"][-1] < 0.5 * h1["loss"][0]
    assert h1["accuracy"][-1] > 0.9 and len(h1["val_loss"]) == 8
    m3 = MLP([4, 8, 1], "tanh", seed=1)
    h3 = fit(m3, X, y, loss="bce", lr=0.05, epochs=8, batch_size=16, seed=4, progress=False)
    assert h3["loss"] != h1["loss"]


def test_fit_neuron_sgd_and_progress_bar(capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = np.maximum(0, X @ np.array([1.0, 2.0, -1.0]) + 1.0)
    m = Neuron(3, seed=0)
    m.params["b"][...] = 1.0
    h = fit(m, X, y, loss="mse", optimizer=md.optim.SGD(lr=0.05, momentum=0.9), epochs=20,
            batch_size=10, progress=True)
    assert h["loss"][-1] < 1e-3 and h["r2"][-1] > 0.99
    # captured stderr is no terminal: one line per epoch, no bar
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 20 and err[-1].startswith("fit: epoch 20, step 200/200, loss ")
    pytest.importorskip("tqdm")
    fit(Neuron(3, seed=0), X, y, loss="mse", epochs=2, batch_size=10, progress="bar")
    assert "loss=" in capsys.readouterr().err      # tqdm's postfix, when asked for


def test_nan_stops_with_epoch_and_step():
    X, y = _toy()
    m = MLP([4, 8, 1], "identity", seed=0)
    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, step \d+") as ei:
        fit(m, X * 1e3, y * 1e6, loss="mse", optimizer="sgd", lr=10.0, epochs=50,
            progress=False)
    assert ei.value.epoch >= 1 and ei.value.step >= 1


def test_plot_history(tmp_path):
    X, y = _toy(n=60)
    h = fit(MLP([4, 3, 1]), X, y, loss="bce", epochs=2, validation=(X, y), progress=False)
    path = tmp_path / "h.png"
    fig = md.nn.plot_history(h, str(path))     # a Figure now, saved when given a path
    assert type(fig).__name__ == "Figure" and len(fig.axes) == 2
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- bad input
def test_bad_input_errors():
    m = MLP([4, 5, 3])
    X = np.zeros((6, 4))
    with pytest.raises(UnknownNameError, match="identity, relu, sigmoid, tanh"):
        MLP([4, 3], "gelu")
    with pytest.raises(UnknownNameError, match="bce, .*cross_entropy.*mse"):
        m.loss_expr("hinge")
    with pytest.raises(DataError, match="takes 4"):
        m.value_and_grad(np.zeros((6, 5)), np.zeros(6, int), "cross_entropy")
    with pytest.raises(DataError, match="2-D"):
        m.predict(np.zeros(4))
    with pytest.raises(DataError, match="dtype"):
        m.predict(np.array([["a"] * 4]))
    with pytest.raises(DataError, match="out of range.*0..2"):
        m.value_and_grad(X, np.array([0, 1, 2, 3, 0, 1]), "cross_entropy")
    with pytest.raises(DataError, match="integer class labels"):
        m.value_and_grad(X, np.full(6, 0.5), "cross_entropy")
    with pytest.raises(DataError, match=r"shape \(6,\)"):
        m.value_and_grad(X, np.zeros(5, int), "cross_entropy")
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        MLP([4, 1]).value_and_grad(X, np.full(6, 2.0), "bce")
    with pytest.raises(DataError, match="NaN"):
        m.predict(np.full((2, 4), np.nan))
    with pytest.raises(NNError, match="cross_entropy"):
        Neuron(4).value_and_grad(X, np.zeros(6, int), "cross_entropy")
    with pytest.raises(NNError):
        MLP([4])
    with pytest.raises(NNError, match="epochs"):
        fit(m, X, np.zeros(6, int), loss="cross_entropy", epochs=0, progress=False)
    with pytest.raises(UnknownNameError, match="sgd"):
        fit(m, X, np.zeros(6, int), loss="cross_entropy", optimizer="lbfgs", progress=False)
    assert issubclass(UnknownNameError, MatdiffError) and issubclass(DataError, MatdiffError)


# ---------------------------------------------------------------- demos, cli
def test_digits_quick():
    pytest.importorskip("sklearn")
    r = md.nn.demos.train_mlp(epochs=5, subset=600, seed=0)
    assert r["accuracy"] > 0.85


def test_cli_neuron(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from matdiff.nn.cli import main

    png = tmp_path / "n.png"
    assert main(["neuron", "--epochs", "30", "--plot", str(png), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "R²" in out and png.exists()
    r2 = float(out.split("test R² = ")[1].split()[0])
    assert r2 > 0.3
    assert main(["--help"]) == 0 and "examples" in capsys.readouterr().out
    assert main(["mlp", "--epochs", "0"]) == 2
