"""Shape-polymorphic generated code: sizes read from the inputs at run time.

``md.compile`` generates code that reads every dim an input carries from that
input's shape (``a2.shape[0]``), so one generated function is right at every size:
a new batch size reuses it (unless the planner would order a product differently
there), and ``jax.export`` / ``torch.export`` trace it with a symbolic batch dim.

Every expected value here comes from outside the code under test: hand-written NumPy
losses and their central differences, the node-by-node interpreter, and the
independent evaluator of ``tests/helpers.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import matdiff as md
from helpers import NUMPY, fd_jacobian, max_rel_error, to_backend
from matdiff.compile import api
from matdiff.compile.codegen import generate
from matdiff.compile.evaluate import interpret

# ============================================================== three problems
# Each: the expression, the variables whose gradients are wanted, the declared
# shapes (batch dim "N"), and the same loss in plain NumPy (the reference).


def _paper() -> tuple[md.Expr, list[str], Callable[..., float]]:
    """The paper's neuron loss mean((y − max(0, Xw + b))²)."""
    X, w, b, y = md.matrix("X", "N", "d"), md.vector("w", "d"), md.scalar("b"), \
        md.vector("y", "N")
    loss = md.mean((y - md.maximum(0, X @ w + b)) ** 2)

    def ref(X, w, b, y):
        return np.mean((y - np.maximum(0.0, X @ w + b)) ** 2)

    return loss, ["w", "b"], ref


def _logreg() -> tuple[md.Expr, list[str], Callable[..., float]]:
    """Logistic regression: the mean of log(1 + exp(−y ⊙ Xw))."""
    X, w, y = md.matrix("X", "N", "d"), md.vector("w", "d"), md.vector("y", "N")
    loss = md.mean(md.softplus(-y * (X @ w)))

    def ref(X, w, y):
        return np.mean(np.log1p(np.exp(-y * (X @ w))))

    return loss, ["w"], ref


def _mlp() -> tuple[md.Expr, list[str], Callable[..., float]]:
    """An MLP layer under a softmax cross-entropy: relu(XW₁ + b₁)W₂ + b₂."""
    X, Y = md.matrix("X", "N", "i"), md.matrix("Y", "N", "k")
    W1, b1 = md.matrix("W1", "i", "h"), md.vector("b1", "h")
    W2, b2 = md.matrix("W2", "h", "k"), md.vector("b2", "k")
    Z = md.relu(X @ W1 + b1) @ W2 + b2
    loss = md.mean(md.logsumexp(Z) - md.sum(Y * Z, 1))

    def ref(X, Y, W1, b1, W2, b2):
        Z = np.maximum(X @ W1 + b1, 0.0) @ W2 + b2
        m = Z.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0]
        return np.mean(lse - np.sum(Y * Z, axis=1))

    return loss, ["W1", "b1", "W2", "b2"], ref


PROBLEMS = {"paper": _paper, "logreg": _logreg, "mlp": _mlp}
#: the sizes of the dims other than the batch
OTHER = {"d": 3, "i": 4, "h": 5, "k": 3}


def _values(f: md.Expr, N: int, seed: int, dtype: Any = np.float64) -> dict[str, Any]:
    """Random values of ``f``'s variables at batch size ``N`` (labels: one-hot rows
    for ``Y``, signs for ``y``; relu arguments kept away from their kink by the
    random draw's continuity, checked in :func:`_fd_grads`)."""
    rng = np.random.default_rng(seed)
    sizes = {**OTHER, "N": N}
    out: dict[str, Any] = {}
    for name, shape in f.variables().items():
        dims = tuple(sizes[d] for d in shape)
        if name == "Y":
            out[name] = np.eye(dims[1])[rng.integers(0, dims[1], dims[0])]
        elif name == "y":
            out[name] = rng.choice([-1.0, 1.0], dims) * rng.uniform(0.5, 1.5, dims)
        else:
            out[name] = rng.standard_normal(dims)
    return {k: np.asarray(v, dtype=dtype) for k, v in out.items()}


def _fd_grads(ref: Callable[..., float], vals: dict[str, Any], wrt: list[str]
              ) -> dict[str, np.ndarray]:
    """Central differences of the NumPy reference loss, in float64."""
    vals64 = {k: np.asarray(v, dtype=np.float64) for k, v in vals.items()}
    out = {}
    for name in wrt:
        def fun(t: np.ndarray, name: str = name) -> float:
            return ref(**{**vals64, name: t})
        out[name] = fd_jacobian(fun, vals64[name])
    return out


def _compiled(problem: str, backend: str = "numpy") -> tuple[md.Compiled, list[str], Any]:
    f, wrt, ref = PROBLEMS[problem]()
    grads = {w: md.derive(f, w) for w in wrt}
    return md.compile({"f": f, **grads}, backend=backend), wrt, ref


# ============================================================== the generated code
def test_the_paper_loss_reads_its_sizes_from_the_inputs():
    """The 1/N of mean is the batch size read from an input, not a constant: no
    0.2 (1/5) and no -0.4 (-2/5) in the code generated at N = 5."""
    c, _, _ = _compiled("paper")
    c(_values(c._exprs()[0], 5, 0))
    src = c.source
    assert ".shape[0]" in src and "xp.dim(" in src
    assert "0.2" not in src and "0.4" not in src
    assert "# read at run time: N = " in src


def test_a_dim_no_input_carries_stays_a_constant():
    """``sum(eye(n))`` has no input: n comes from dims= and is a number in the code,
    so each n generates its own (and each is right)."""
    c = md.compile(md.sum(md.eye("n")))
    assert float(c.call({}, dims={"n": 3})) == 3.0
    assert float(c.call({}, dims={"n": 4})) == 4.0
    assert c.cache_info() == {"specialisations": 2, "generated": 2}
    assert "read at run time" not in c.source


def test_code_with_sizes_as_constants_is_wrong_at_other_sizes():
    """A planted wrong answer: the same expressions generated with every size a
    constant (what md.compile did before) give a wrong gradient at another batch
    size, and the finite-difference check below catches it; the polymorphic code
    does not."""
    f, wrt, ref = _paper()
    c = md.compile([md.derive(f, "w")])
    v9 = _values(f, 9, 2)
    table = c._table
    const = generate(c._exprs(), c.inputs, {"N": 5, "d": 3}, table)        # constants
    poly = generate(c._exprs(), c.inputs, {"N": 5, "d": 3}, table, shapes=c._wanted)
    want = _fd_grads(ref, v9, ["w"])["w"]
    args = [v9[n] for n in c.inputs]
    assert max_rel_error(const.fn(*args)[0], want) > 0.1                   # caught
    assert max_rel_error(poly.fn(*args)[0], want) < 1e-6
    assert "0.4" in const.source and "0.4" not in poly.source


# ============================================================== reuse
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_a_new_batch_size_reuses_the_code(problem, monkeypatch):
    """New batch sizes run the code generated for the first one while the planner
    orders the products the same (here: while the batch is at least the feature
    sizes), and every result equals central differences of the NumPy loss.  Below,
    at N = 1 and 2, where a scalar goes on another operand, code is generated
    again, once per different plan, not once per size.  (Fusing element-wise chains
    is a choice on sizes too, a chain of 1000 elements or more: it is off here, and
    tests/test_fuse.py shows that crossing its threshold generates again.)"""
    from matdiff.compile import fuse

    monkeypatch.setitem(fuse.settings, "enabled", False)
    c, wrt, ref = _compiled(problem)
    f = c._exprs()[0]
    before = api.STATS["generated"]

    def run(N: int, seed: int) -> None:
        vals = _values(f, N, seed)
        out = c(vals)
        assert max_rel_error(out["f"], ref(**vals)) < 1e-12
        fd = _fd_grads(ref, vals, wrt) if N <= 64 else None
        for w in wrt:
            assert out[w].shape == vals[w].shape
            if fd is not None:
                assert max_rel_error(out[w], fd[w]) < 1e-6, (problem, N, w)

    for k, N in enumerate([7, 5, 64, 40, 200, 33]):
        run(N, k)
    assert c.cache_info() == {"specialisations": 6, "generated": 1}
    assert api.STATS["generated"] - before == 1
    for k, N in enumerate([1, 2, 3, 4, 9, 1, 2]):
        run(N, 10 + k)
    info = c.cache_info()
    assert info["specialisations"] == 11 and 2 <= info["generated"] <= 3, info


def test_sizes_where_the_planner_orders_differently_generate_again():
    """A chain ABC is planned per size, (AB)C or A(BC): where the order changes, the
    code is generated again, and where it is reused it is the very code a fresh
    compile at those sizes writes (but for the comment naming the sizes)."""
    A, B, C = md.matrix("A", "p", "q"), md.matrix("B", "q", "r"), md.matrix("C", "r", "s")
    outs = [A @ B @ C]
    c = md.compile(outs)
    rng = np.random.default_rng(0)
    counts = []
    shapes = [(2, 40, 40, 40), (3, 40, 40, 40), (40, 40, 40, 2), (40, 41, 40, 2)]
    for p, q, r, s in shapes:
        vals = {"A": rng.standard_normal((p, q)), "B": rng.standard_normal((q, r)),
                "C": rng.standard_normal((r, s))}
        got = c(vals)[0]
        assert max_rel_error(got, vals["A"] @ vals["B"] @ vals["C"]) < 1e-12
        counts.append(c.cache_info()["generated"])
        fresh = md.compile(outs)
        fresh(vals)
        assert _body(c.source) == _body(fresh.source)
    assert counts == [1, 1, 2, 2]
    assert c.cache_info()["specialisations"] == 4


def test_reuse_without_replay_would_keep_a_stale_order(monkeypatch):
    """A planted fault: with the replay of the planner's choices switched off (any
    code reused at any sizes), the chain above keeps (AB)C where a fresh compile
    writes A(BC), and the source comparison of the test above catches it; the
    values stay right (any order is correct, only slower)."""
    monkeypatch.setattr(api, "replay", lambda decisions, sizes: True)
    A, B, C = md.matrix("A", "p", "q"), md.matrix("B", "q", "r"), md.matrix("C", "r", "s")
    c = md.compile([A @ B @ C])
    rng = np.random.default_rng(1)
    for p, q, r, s in [(2, 40, 40, 40), (40, 40, 40, 2)]:
        vals = {"A": rng.standard_normal((p, q)), "B": rng.standard_normal((q, r)),
                "C": rng.standard_normal((r, s))}
        assert max_rel_error(c(vals)[0], vals["A"] @ vals["B"] @ vals["C"]) < 1e-12
    assert c.cache_info()["generated"] == 1
    monkeypatch.undo()
    fresh = md.compile([A @ B @ C])
    fresh(vals)
    assert _body(c.source) != _body(fresh.source)


def _body(src: str) -> str:
    """The source without its comment of the sizes it was planned for."""
    return "\n".join(ln for ln in src.splitlines() if not ln.startswith("    # dims: "))


def test_reused_code_refuses_outputs_past_the_memory_limit(monkeypatch):
    """The memory check runs for the sizes of each call, reused code or not (fusion,
    a choice on sizes that would generate again at n = 1000, is off here)."""
    from matdiff.compile import fuse

    monkeypatch.setitem(fuse.settings, "enabled", False)
    x = md.vector("x", "n")
    c = md.compile(md.derive(md.exp(x), x))
    assert c(x=np.zeros(4)).shape == (4, 4)
    monkeypatch.setenv("MATDIFF_MAX_BYTES", "10000")
    with pytest.raises(md.LimitError, match="more than the limit"):
        c(x=np.zeros(1000))
    assert c.cache_info()["generated"] == 1


def test_selections_follow_the_size():
    """x[-1], x[1:], x[::-1] and x[:-1] are positions in terms of n: code generated
    at n = 4 is right at n = 7; an index past a smaller axis is an EvaluationError
    when the code is reused, as when it is generated."""
    x = md.vector("x", "n")
    c = md.compile([x[-1], md.sum(x[1:] * x[:-1]), x[::-1], x[2]])
    for n in (4, 7):
        v = np.arange(1.0, n + 1)
        last, dot, rev, third = c(x=v)
        assert float(last) == n
        assert float(dot) == float(np.sum(v[1:] * v[:-1]))
        assert rev.tolist() == v[::-1].tolist()
        assert float(third) == 3.0
    assert c.cache_info()["generated"] == 1
    with pytest.raises(md.EvaluationError, match="out of range"):
        c(x=np.ones(2))


def test_structured_outputs_take_their_shape_from_the_values():
    x = md.vector("x", "n")
    c = md.compile(md.derive(md.tanh(x), x), structured=True)
    for n in (3, 6):
        J = c(x=np.zeros(n))
        assert isinstance(J, md.Diagonal) and J.shape == (n, n)
        assert np.asarray(J).tolist() == np.eye(n).tolist()
    assert c.cache_info()["generated"] == 1


def test_an_empty_batch():
    """N = 0 after N = 5: the code runs (a mean over no rows is 0 · (1/0), which
    NumPy and the interpreter leave as they come; only the shapes are meant)."""
    c, _, _ = _compiled("paper")
    f = c._exprs()[0]
    c(_values(f, 5, 0))
    with np.errstate(all="ignore"):
        out = c(_values(f, 0, 0))
    assert np.shape(out["f"]) == () and out["w"].shape == (3,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_precision_is_kept_at_every_size(dtype):
    c, wrt, _ = _compiled("logreg")
    f = c._exprs()[0]
    for N in (5, 17):
        out = c(_values(f, N, N, dtype))
        assert out["f"].dtype == dtype and out["w"].dtype == dtype


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_functions_of_a_size_on_every_backend(backend):
    """log n, √n, σ(log n) and n itself, n read from x at run time: right at two
    sizes, in the inputs' precision, on each backend (a size is a number the code
    computes with; a backend function gets it as the backend's scalar)."""
    from matdiff.expr.core import Size

    pytest.importorskip(backend)
    x, n = md.vector("x", "n"), Size("n")
    e = md.log(n) * md.sum(x) + md.sqrt(n) + md.sigmoid(md.log(n))
    c = md.compile([e, n * 1.0], backend=backend)
    for size in (3, 7):
        for dtype in (np.float32, np.float64):
            v: Any = np.ones(size, dtype)
            if backend == "torch":
                import torch

                v = torch.from_numpy(v)
            value, count = c(x=v)
            want = np.log(size) * size + np.sqrt(size) + 1 / (1 + 1 / size)
            assert str(value.dtype).endswith(dtype.__name__)
            assert str(count.dtype).endswith(dtype.__name__)
            tol = 1e-6 if dtype == np.float32 else 1e-13
            assert abs(float(value) - want) < tol * want and float(count) == size
    assert c.cache_info() == {"specialisations": 4, "generated": 2}  # one per dtype


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_a_size_broadcast_to_a_matrix_is_still_a_number(backend):
    """``(n² + 1)^tanh(cos A)``: the size's number is broadcast to A's shape before
    ``log`` and ``pow`` take it (d/dA of c^t(A) is c^t·log(c)·t'(A)); torch's log
    takes no Python number (found by the hunt profile: a TypeError on torch)."""
    pytest.importorskip(backend)
    A = md.matrix("A", "n", "n")
    c = (md.tr(md.eye("n")) * md.tr(md.eye("n")) + 1) ** md.tanh(md.cos(A))
    fn = md.compile(md.derive(md.sum(c), A), backend=backend)
    for size in (2, 3):
        a = np.random.default_rng(size).standard_normal((size, size))
        t = np.tanh(np.cos(a))
        base = size * size + 1.0
        want = base ** t * np.log(base) * (1 - t * t) * (-np.sin(a))
        if backend == "torch":
            import torch

            got = fn(A=torch.from_numpy(a)).numpy()
        else:
            got = np.asarray(fn(A=a))
        assert max_rel_error(got, want) < 1e-12


# ============================================================== Compiled.function
def test_function_takes_arrays_positionally_or_by_name():
    c, wrt, ref = _compiled("paper")
    f = c._exprs()[0]
    fn = c.function(_values(f, 5, 0))
    vals = _values(f, 8, 3)
    a = fn(*[vals[n] for n in c.inputs])
    b = fn(**vals)
    assert sorted(a) == ["b", "f", "w"]
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert max_rel_error(a["f"], ref(**vals)) < 1e-12
    with pytest.raises(TypeError, match="unexpected input"):
        fn(**vals, z=1.0)
    with pytest.raises(TypeError, match="missing b"):
        fn(**{k: v for k, v in vals.items() if k != "b"})
    with pytest.raises(TypeError, match="takes"):
        fn(*[vals[n] for n in c.inputs], 1.0)


def test_function_without_values_is_planned_for_dims_and_runs_at_any_size():
    c, _, ref = _compiled("logreg")
    fn = c.function(dims={"N": 1000, "d": 3})
    f = c._exprs()[0]
    for N in (2, 50):
        vals = _values(f, N, N)
        assert max_rel_error(fn(**vals)["f"], ref(**vals)) < 1e-12
    assert "# dims: N=1000, d=3" in c._plans[next(iter(c._plans))][0][0].source


def test_function_chooses_its_precision():
    c, _, _ = _compiled("logreg")
    f = c._exprs()[0]
    v32 = _values(f, 6, 0, np.float32)
    assert c.function(v32)(**v32)["w"].dtype == np.float32
    assert c.function(dtype="float32")(**v32)["w"].dtype == np.float32
    with pytest.raises(md.EvaluationError, match="missing value"):
        c.function({"X": v32["X"]})


# ============================================================== JAX export
def _jax_export(problem: str):
    """The problem's compiled function exported with the batch dim symbolic."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from jax import export

    c, wrt, ref = _compiled(problem, "jax")
    f = c._exprs()[0]
    fn = c.function(_values(f, 5, 0, np.float32))
    shapes = f.variables()
    syms = export.symbolic_shape("N, " + ", ".join(sorted(OTHER)))
    sym = dict(zip(["N"] + sorted(OTHER), syms))
    specs = [jax.ShapeDtypeStruct(tuple(sym[d] for d in shapes[n]), jnp.float32)
             for n in c.inputs]
    return export.export(jax.jit(fn))(*specs), c, wrt, ref


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_jax_export_with_a_symbolic_batch(problem):
    """jax.export of the gradient with N symbolic; the exported function at two
    batch sizes equals matdiff's NumPy result and central differences, in float32,
    and no global JAX setting changed."""
    jax = pytest.importorskip("jax")
    x64 = jax.config.jax_enable_x64
    exported, c, wrt, ref = _jax_export(problem)
    assert "N" in str(exported.in_avals[0].shape) or any(
        "N" in str(a.shape) for a in exported.in_avals)
    numpy_c, _, _ = _compiled(problem)
    f = c._exprs()[0]
    for N in (3, 11):
        vals = _values(f, N, N, np.float32)
        out = exported.call(*[vals[n] for n in c.inputs])
        want = numpy_c({k: v.astype(np.float64) for k, v in vals.items()})
        fd = _fd_grads(ref, vals, wrt)
        for w in wrt:
            got = np.asarray(out[w])
            assert got.dtype == np.float32 and got.shape == vals[w].shape
            assert max_rel_error(got, want[w]) < 1e-5, (problem, N, w)
            assert max_rel_error(got, fd[w]) < 1e-4, (problem, N, w)
        assert max_rel_error(np.asarray(out["f"]), want["f"]) < 1e-5
    assert jax.config.jax_enable_x64 == x64


# ============================================================== torch.export
def _module(fn: Callable[..., Any]) -> Any:
    """A generated function as a module (torch.export takes modules)."""
    import torch

    class Generated(torch.nn.Module):
        def forward(self, *args: Any) -> Any:
            return fn(*args)

    return Generated()


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_torch_export_with_a_dynamic_batch(problem):
    """torch.export with Dim("N") on the batch axis; the exported program at two
    batch sizes equals matdiff's NumPy result and central differences, in float32."""
    torch = pytest.importorskip("torch")
    c, wrt, ref = _compiled(problem, "torch")
    f = c._exprs()[0]
    example = {k: torch.from_numpy(v) for k, v in _values(f, 5, 0, np.float32).items()}
    fn = c.function(example)
    batch = torch.export.Dim("N")
    shapes = f.variables()
    dynamic = tuple({k: batch for k, d in enumerate(shapes[n]) if d == "N"} or None
                    for n in c.inputs)
    program = torch.export.export(_module(fn), tuple(example[n] for n in c.inputs),
                                  dynamic_shapes=(dynamic,))
    run = program.module()
    numpy_c, _, _ = _compiled(problem)
    for N in (3, 11):
        vals = _values(f, N, N, np.float32)
        out = run(*[torch.from_numpy(vals[n]) for n in c.inputs])
        want = numpy_c({k: v.astype(np.float64) for k, v in vals.items()})
        fd = _fd_grads(ref, vals, wrt)
        for w in wrt:
            got = out[w].detach().numpy()
            assert got.dtype == np.float32 and got.shape == vals[w].shape
            assert max_rel_error(got, want[w]) < 1e-5, (problem, N, w)
            assert max_rel_error(got, fd[w]) < 1e-4, (problem, N, w)


# ============================================================== random expressions
from test_random import POOL, G, trees  # noqa: E402  (the random-tree generator)

_SIZES_A = {"n": 3, "m": 2}
_SIZES_B = {"n": 5, "m": 4}


def _random_values(sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, e in POOL.items():
        dims = tuple(sizes[d] for d in e.shape)
        out[name] = rng.uniform(-1, 1, dims) if dims else np.float64(rng.uniform(-1, 1))
    return out


@settings(max_examples=max(5, settings.default.max_examples // 3))
@given(g=trees(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_expressions_compiled_once_run_at_two_sizes(g: G, seed: int):
    """A random expression and its derivatives compiled once and run at n = 3,
    m = 2 and at n = 5, m = 4 agree with the node-by-node interpreter and the
    independent evaluator at both; where the second run reused the code, that code
    is what a fresh compile at the second sizes writes."""
    f = g.expr
    outs = [f] + [md.derive(f, POOL[name]) for name in sorted(f.variables())]
    c = md.compile(outs)
    for k, sizes in enumerate([_SIZES_A, _SIZES_B]):
        vals = _random_values(sizes, seed + k)
        wanted = {n: v for n, v in vals.items() if n in c.inputs}
        before = c.cache_info()["generated"]
        with np.errstate(all="ignore"):
            got = c.call(wanted, dims=sizes)
            refs = [interpret(outs[0], wanted, dims=dict(sizes))] + [
                np.asarray(to_backend(D, NUMPY, sizes)(vals), dtype=np.float64)
                for D in outs[1:]]
        assume(all(np.all(np.isfinite(r)) and np.max(np.abs(r), initial=0) < 1e6
                   for r in refs))
        for e, mine, ref in zip(outs, got, refs):
            mine = np.asarray(mine, dtype=np.float64)
            assert mine.shape == ref.shape
            assert max_rel_error(mine, ref) < 1e-9, (str(e), sizes)
        if k and c.cache_info()["generated"] == before:   # reused
            fresh = md.compile(outs)
            fresh.call(wanted, dims=sizes)
            assert _body(c.source) == _body(fresh.source)
