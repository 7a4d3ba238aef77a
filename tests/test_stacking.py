"""Stacking and selection (issue 12, item 1): ``md.stack``, ``md.concat``, ``x[i]``,
``x[i:j:k]``, ``X[:, j]`` (MATH.md, "Stacking, indexing and dims arithmetic").

Every construct is evaluated against NumPy (the oracle of indexing); its first and
second derivatives against central differences, against JAX (``jax.jacobian`` /
``jax.hessian`` of the same function written in ``jax.numpy``) and against PyTorch's
autograd; compiled code on every backend against the interpreter.  Each
simplification rule is checked in numbers, and a planted wrong adjoint must fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import matdiff as md
from helpers import assert_close, fd_jacobian
from matdiff.compile.evaluate import interpret
from matdiff.errors import EvaluationError, ShapeError
from matdiff.expr.core import Delta, topo_order
from matdiff.expr.selection import Concat, Take

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
torch = pytest.importorskip("torch")

SIZES = {"n": 4, "m": 3}


# ============================================================== the reference arrays
class NP:
    """The operations the reference functions use, for NumPy and JAX (whose indexing
    is NumPy's, negative steps included)."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def stack(self, parts: list, axis: int = 0) -> Any:
        return self.xp.stack([self.xp.asarray(p) for p in parts], axis=axis)

    def concat(self, parts: list, axis: int = 0) -> Any:
        return self.xp.concatenate([self.xp.asarray(p) for p in parts], axis=axis)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.xp, name)


class TorchOps:
    """The same for PyTorch (no negative steps: the cases that use them say so)."""

    xp = torch

    def stack(self, parts: list, axis: int = 0) -> Any:
        return torch.stack([torch.as_tensor(p, dtype=torch.float64) for p in parts],
                           dim=axis)

    def concat(self, parts: list, axis: int = 0) -> Any:
        return torch.cat([torch.as_tensor(p, dtype=torch.float64) for p in parts], dim=axis)

    def maximum(self, a: Any, b: Any) -> Any:
        return torch.maximum(torch.as_tensor(a, dtype=torch.float64),
                             torch.as_tensor(b, dtype=torch.float64))

    def dot(self, a: Any, b: Any) -> Any:
        return torch.dot(a, b)

    def sum(self, a: Any) -> Any:
        return torch.sum(a)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


@dataclass
class Case:
    """One construct: the variables' shapes, the matdiff expression, the same
    function in array operations, the variables to differentiate by."""

    name: str
    shapes: dict
    build: Callable[[dict], md.Expr]
    ref: Callable[[Any, dict], Any]
    wrt: tuple
    torch: bool = True  # PyTorch has no negative steps
    positive: tuple = ()  # variables drawn positive (log)
    sizes: dict = field(default_factory=lambda: dict(SIZES))


def _v(shapes: dict) -> dict:
    return {k: md.var(k, *s) for k, s in shapes.items()}


CASES = [
    Case("paper 3.5: [log(x²), sin(3x)]", {"x": ()},
         lambda v: md.stack([md.log(v["x"] ** 2), md.sin(3 * v["x"])]),
         lambda o, a: o.stack([o.log(a["x"] ** 2), o.sin(3 * a["x"])]), ("x",)),
    Case("paper example 2: [3x²y, 2x + y⁸]", {"x": (), "y": ()},
         lambda v: md.stack([3 * v["x"] ** 2 * v["y"], 2 * v["x"] + v["y"] ** 8]),
         lambda o, a: o.stack([3 * a["x"] ** 2 * a["y"], 2 * a["x"] + a["y"] ** 8]),
         ("x", "y")),
    Case("stack of vectors, axis 0", {"u": ("n",), "w": ("n",)},
         lambda v: md.stack([md.sin(v["u"]), v["u"] * v["w"]]),
         lambda o, a: o.stack([o.sin(a["u"]), a["u"] * a["w"]]), ("u", "w")),
    Case("stack of vectors, axis 1", {"u": ("n",), "w": ("n",)},
         lambda v: md.stack([v["u"] ** 2, md.exp(v["w"]), v["u"]], axis=1),
         lambda o, a: o.stack([a["u"] ** 2, o.exp(a["w"]), a["u"]], axis=1), ("u",)),
    Case("paper section 5: max(0, ŵ·x̂), the bias folded in",
         {"w": ("n",), "b": (), "x": ("n",)},
         lambda v: md.maximum(0, md.dot(md.concat([v["w"], [v["b"]]]),
                                        md.concat([v["x"], [1]]))),
         lambda o, a: o.maximum(0.0, o.dot(o.concat([a["w"], o.stack([a["b"]])]),
                                          o.concat([a["x"], o.stack([1.0])]))),
         ("w", "b", "x")),
    Case("the contract's indexing line", {"x": ("n",), "A": ("n", "n")},
         lambda v: (v["x"][0] * md.sum(v["x"][1:]) + v["A"][1, 2] * v["x"][2]
                    + v["A"][:, 0] @ v["x"]),
         lambda o, a: (a["x"][0] * o.sum(a["x"][1:]) + a["A"][1, 2] * a["x"][2]
                       + a["A"][:, 0] @ a["x"]), ("x", "A")),
    Case("negative index and slice on a named dim", {"x": ("n",)},
         lambda v: md.sin(v["x"][-1]) * md.sum(v["x"][:-1] ** 2),
         lambda o, a: o.sin(a["x"][-1]) * o.sum(a["x"][:-1] ** 2), ("x",)),
    Case("reversed and strided slices of a matrix", {"A": (4, 5)},
         lambda v: md.sum(md.sin(v["A"][::-2, 1::2]) * md.sum(v["A"][1:3, :2])),
         lambda o, a: o.sum(o.sin(a["A"][::-2, 1::2]) * o.sum(a["A"][1:3, :2])), ("A",),
         torch=False),
    Case("rows and columns", {"A": ("m", "n"), "x": ("n",)},
         lambda v: md.tanh(v["A"][1, :] * v["x"]) @ v["A"][-1] + v["A"][:, 1] @ v["A"][:, 0],
         lambda o, a: o.tanh(a["A"][1, :] * a["x"]) @ a["A"][-1]
         + a["A"][:, 1] @ a["A"][:, 0], ("A", "x")),
    Case("a selection of a product", {"A": ("n", "n"), "x": ("n",)},
         lambda v: md.exp((v["A"] @ v["x"])[1:]),
         lambda o, a: o.exp((a["A"] @ a["x"])[1:]), ("x", "A")),
    Case("block matrix [[X, E], [0, X]]", {"X": (3, 3), "E": (3, 3), "B": (6, 6)},
         lambda v: md.sum(v["B"] * md.sin(md.concat([
             md.concat([v["X"], v["E"]], axis=1),
             md.concat([0 * v["X"], v["X"] @ v["X"]], axis=1)]))),
         lambda o, a: o.sum(a["B"] * o.sin(o.concat([
             o.concat([a["X"], a["E"]], axis=1),
             o.concat([0 * a["X"], a["X"] @ a["X"]], axis=1)]))), ("X", "E")),
    Case("a matrix of stacked rows, and its product", {"u": ("n",), "w": ("n",)},
         lambda v: md.stack([v["u"], md.cos(v["w"]), v["u"] * v["w"]]) @ v["w"],
         lambda o, a: o.stack([a["u"], o.cos(a["w"]), a["u"] * a["w"]]) @ a["w"],
         ("u", "w")),
    Case("a selection of a stack, and of a concatenation",
         {"x": ("n",), "b": ()},
         lambda v: md.stack([v["b"] ** 2, md.sum(v["x"]), v["b"]])[::2] * md.concat(
             [v["x"], [v["b"]]])[-2],
         lambda o, a: o.stack([a["b"] ** 2, o.sum(a["x"]), a["b"]])[::2] * o.concat(
             [a["x"], o.stack([a["b"]])])[-2], ("x", "b")),
    Case("log of a stack (positive)", {"x": ("n",), "y": ()},
         lambda v: md.log(md.concat([v["x"] ** 2 + 1, [v["y"]]])),
         lambda o, a: o.log(o.concat([a["x"] ** 2 + 1, o.stack([a["y"]])])), ("x", "y"),
         positive=("y",)),
]


def _values(case: Case, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for k, s in case.shapes.items():
        shape = tuple(case.sizes.get(d, d) if isinstance(d, str) else d for d in s)
        a = rng.uniform(-1.2, 1.2, shape) if shape else np.float64(rng.uniform(-1.2, 1.2))
        if k in case.positive:
            a = np.abs(a) + 0.5
        out[k] = np.asarray(a, dtype=np.float64)
    return out


def _ref_fn(case: Case, ops: Any, values: dict, name: str) -> Callable:
    def f(t: Any) -> Any:
        args = {k: ops.xp.asarray(v) for k, v in values.items()}
        args[name] = t
        return case.ref(ops, args)
    return f


IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_against_numpy(case: Case) -> None:
    f = case.build(_v(case.shapes))
    vals = _values(case)
    assert_close(f.evaluate(vals), case.ref(NP(np), vals), what=case.name)
    assert_close(interpret(f, vals), case.ref(NP(np), vals), what=case.name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_first_derivative(case: Case) -> None:
    """Against central differences, JAX and PyTorch."""
    f = case.build(_v(case.shapes))
    vals = _values(case, 1)
    for name in case.wrt:
        g = md.derive(f, name).evaluate(vals)
        fd = fd_jacobian(lambda t, name=name: f.evaluate({**vals, name: t}), vals[name])
        assert_close(g, fd, rtol=1e-5, atol=1e-6, what=f"{case.name} d/d{name} vs fd")
        jx = jax.jacobian(_ref_fn(case, NP(jnp), vals, name))(jnp.asarray(vals[name]))
        assert_close(g, np.asarray(jx), what=f"{case.name} d/d{name} vs jax")
        if case.torch:
            tj = torch.autograd.functional.jacobian(
                _ref_fn(case, TorchOps(), vals, name),
                torch.as_tensor(vals[name], dtype=torch.float64))
            assert_close(g, tj.numpy(), what=f"{case.name} d/d{name} vs torch")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_second_derivative(case: Case) -> None:
    """The derivative of the derivative, against JAX's (``jax.hessian`` for a scalar
    function, ``jacfwd(jacrev)`` else) and against differences of the first."""
    f = case.build(_v(case.shapes))
    vals = _values(case, 2)
    for name in case.wrt[:2]:
        g = md.derive(f, name)
        h = md.derive(g, name).evaluate(vals)
        ref = _ref_fn(case, NP(jnp), vals, name)
        second = jax.hessian(ref) if not f.shape else jax.jacfwd(jax.jacrev(ref))
        assert_close(h, np.asarray(second(jnp.asarray(vals[name]))), rtol=1e-6, atol=1e-7,
                     what=f"{case.name} d²/d{name}² vs jax")
        fd = fd_jacobian(lambda t, g=g, name=name: g.evaluate({**vals, name: t}),
                         vals[name])
        assert_close(h, fd, rtol=1e-5, atol=1e-5, what=f"{case.name} d²/d{name}² vs fd")


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_on_every_backend(case: Case, backend: str) -> None:
    f = case.build(_v(case.shapes))
    vals = _values(case, 3)
    outs = {"f": f, **{f"d{n}": md.derive(f, n) for n in case.wrt}}
    fn = md.compile(outs, backend=backend)
    got = fn(**vals)
    for k, e in outs.items():
        assert_close(np.asarray(got[k]), interpret(e, vals), rtol=1e-9, atol=1e-12,
                     what=f"{case.name} {k} on {backend}")


# ============================================================== the contract lines
def test_paper_35_derivative_is_the_stack_of_the_derivatives() -> None:
    # y = [ln(x²), sin(3x)]: dy/dx = [2/x, 3cos(3x)] (the paper, section 3.5)
    g = md.derive("[log(x**2), sin(3*x)]", "x", shapes={"x": ()}) \
        if _text_parses() else md.derive(CASES[0].build({"x": md.scalar("x")}), "x")
    assert g.shape == (2,)
    body = g.body
    assert isinstance(body, Concat) and body.rows == (True, True)
    x = 0.7
    assert_close(g.evaluate(x=x), [2 / x, 3 * np.cos(3 * x)])
    # each part is the derivative of its own function, nothing of the other
    assert_close(body.children[0].evaluate(x=x), 2 / x)


def _text_parses() -> bool:
    try:
        md.parse("[x, x]", shapes={"x": ()})
    except md.ParseError:
        return False
    return True


def test_bias_folded_into_the_weights() -> None:
    # ∂ max(0, ŵ·x̂)/∂w = x where ŵ·x̂ > 0, 0 else; ∂/∂b = step(ŵ·x̂)
    w, b, x = md.vector("w", "n"), md.scalar("b"), md.vector("x", "n")
    f = md.maximum(0, md.dot(md.concat([w, [b]]), md.concat([x, [1]])))
    assert md.concat([w, [b]]).shape == (md.expr.dims.dim_add("n", 1),)
    vals = {"w": np.array([1.0, -2.0, 0.5]), "b": 0.25, "x": np.array([0.4, -0.3, 2.0])}
    z = vals["w"] @ vals["x"] + vals["b"]
    assert z > 0
    assert_close(md.derive(f, "w").evaluate(vals), vals["x"])
    assert_close(md.derive(f, "b").evaluate(vals), 1.0)
    neg = {**vals, "b": -10.0}
    assert_close(md.derive(f, "w").evaluate(neg), np.zeros(3))
    # the gradient by w selects x from x̂: no selection is left in it
    assert not any(isinstance(e, Take) for e in topo_order(md.derive(f, "w").body))


# ============================================================== structure: no dense selection
def test_adjoints_are_selections_and_scatters_never_dense_matrices() -> None:
    x = md.vector("x", "n")
    g = md.derive(md.sum(md.sin(x[1:]) * x[:-1]), "x").body
    # no node of the gradient is a matrix (no 0/1 selection matrix, no identity)
    assert all(len(e.shape) <= 1 for e in topo_order(g)), [e.kind for e in topo_order(g)]
    assert not any(isinstance(e, Delta) for e in topo_order(g))
    src = md.compile(g).source
    assert "embed" not in src and "eye" not in src
    vals = {"x": np.array([0.3, -1.0, 2.0, 0.5])}
    xv = vals["x"]
    want = np.zeros(4)
    want[1:] += np.cos(xv[1:]) * xv[:-1]
    want[:-1] += np.sin(xv[1:])
    assert_close(g.evaluate(vals), want)


def test_jacobian_of_a_stack_is_the_stack_of_jacobians() -> None:
    # d[u, v]/du = [I, 0] (rows: part by part), kept as a concatenation of I and 0
    u, v = md.vector("u", "n"), md.vector("v", "n")
    g = md.derive(md.stack([u, v]), "u")
    J = g.body
    assert isinstance(J, Concat) and J.rows == (True, True)
    assert isinstance(J.children[0], Delta)
    assert isinstance(J.children[1], md.Const) and J.children[1].value == 0.0
    want = np.stack([np.eye(3), np.zeros((3, 3))])
    assert_close(g.evaluate(u=np.ones(3), v=np.ones(3)), want)


# ============================================================== the rules, one by one
def test_take_of_concat_is_the_part() -> None:
    w, b = md.vector("w", "n"), md.scalar("b")
    wh = md.concat([w, [b]])
    assert wh[-1] is b            # position n of (n + 1,)
    assert wh[:-1] is w           # positions 0 … n − 1
    assert md.stack([b, b ** 2])[1] is b ** 2
    u = md.vector("u", 3)
    c = md.concat([u, md.vector("v", 2)])
    piece = c[1:4]                # pieces of both parts
    assert isinstance(piece, Concat)
    vals = {"u": np.array([1.0, 2, 3]), "v": np.array([4.0, 5])}
    assert_close(piece.evaluate(vals), np.array([1.0, 2, 3, 4, 5])[1:4])


def test_take_of_a_placement_is_the_part_or_zero() -> None:
    from matdiff.expr.simplify.selection import place, take

    g = md.vector("g", 2)
    p = place(g, 0, (1, 2, 1), 5)      # [0, g₀, g₁, 0, 0]
    assert take(p, 0, (1, 2, 1)) is g
    z = take(p, 0, (3,))
    assert isinstance(z, md.Const) and z.value == 0.0
    assert_close(p.evaluate(g=np.array([7.0, 8])), [0, 7, 8, 0, 0])
    for key in [(4, 2, -2), (0, 2, 3), (3, 2, -1)]:  # strided and reversed scatters
        q = place(g, 0, key, 5)
        want = np.zeros(5)
        start, count, step = key
        want[start:(start + count * step) if start + count * step >= 0 else None:step] = [7, 8]
        assert_close(q.evaluate(g=np.array([7.0, 8])), want, what=str(key))
        assert take(q, 0, key).evaluate(g=np.array([7.0, 8])).tolist() == [7, 8]


def test_take_of_product_selects_the_operands() -> None:
    A, x = md.matrix("A", "n", "n"), md.vector("x", "n")
    e = (A @ x)[1]
    assert not isinstance(e, Take)     # A[1] @ x, a product of selections
    vals = {"A": np.arange(9.0).reshape(3, 3), "x": np.array([1.0, -1, 2])}
    assert_close(e.evaluate(vals), (vals["A"] @ vals["x"])[1])


def test_product_of_concat_and_sum_of_concats() -> None:
    a, b, y = md.scalar("a"), md.scalar("b"), md.scalar("y")
    s = md.stack([a, b]) * y
    assert isinstance(s, Concat) and s.children == (a * y, b * y)
    t = md.stack([a, 0]) + md.stack([0, b])
    assert t is md.stack([a, b])
    u = md.vector("u", 3)
    m = md.concat([u, [a]]) + md.concat([[b], u])   # offsets 0,3 and 0,1: cut at 0,1,3
    assert isinstance(m, Concat)
    vals = {"u": np.array([1.0, 2, 3]), "a": 5.0, "b": 7.0}
    assert_close(m.evaluate(vals), np.array([1.0, 2, 3, 5]) + np.array([7.0, 1, 2, 3]))


def test_delta_rows_are_unit_vectors() -> None:
    from matdiff.expr.simplify.selection import take

    e = take(md.eye("n"), 1, (1,))
    assert isinstance(e, Concat)
    assert_close(interpret(e, {}, {"n": 4}), np.eye(4)[:, 1])
    f = take(md.eye(5), 0, (1, 3, 1))
    assert_close(interpret(f, {}), np.eye(5)[1:4])


# ============================================================== NumPy is the oracle
_KEY = st.one_of(
    st.integers(-4, 3),
    st.builds(slice, st.none() | st.integers(-6, 6), st.none() | st.integers(-6, 6),
              st.none() | st.sampled_from([1, 2, 3, -1, -2, -3])))


def _nonempty(shape: tuple, key: tuple) -> bool:
    try:
        return np.zeros(shape)[key].size > 0
    except IndexError:
        return False


@given(st.tuples(_KEY) | st.tuples(_KEY, _KEY))
def test_random_keys_against_numpy(key: tuple) -> None:
    """x[key] for random ints and slices: NumPy's value; the gradient of
    Σ c ⊙ x[key] is c scattered back (np.add.at)."""
    shape = (4, 5)
    if not _nonempty(shape, key):
        with pytest.raises(ShapeError):
            md.matrix("X", *shape)[key]
        return
    rng = np.random.default_rng(abs(hash(repr(key))) % 2**32)
    X0 = rng.normal(size=shape)
    X = md.matrix("X", *shape)
    sel = X[key]
    want = X0[key]
    assert_close(sel.evaluate(X=X0), want, what=repr(key))
    assert sel.shape == want.shape
    C0 = rng.normal(size=want.shape)
    c = md.var("C", *want.shape)
    g = md.derive(md.sum(c * sel), "X").evaluate(X=X0, C=C0)
    ref = np.zeros(shape)
    np.add.at(ref, key, C0)
    assert_close(g, ref, what=repr(key))


@given(st.integers(-7, 6), st.builds(slice, st.none() | st.integers(-7, 7),
                                      st.none() | st.integers(-7, 7),
                                      st.none() | st.sampled_from([1, -1])))
def test_random_keys_on_a_named_dim(i: int, s: slice) -> None:
    """On a named dim the key is kept in dims and resolved at evaluation: the value
    is NumPy's where the key fits, else an EvaluationError (never a wrong value)."""
    x = md.vector("x", "n")
    x0 = np.arange(5.0) + 1
    for key in (i, s):
        try:
            e = x[key]
        except ShapeError:
            assert isinstance(key, slice)
            continue
        try:
            want = x0[key]
        except IndexError:
            with pytest.raises(EvaluationError):
                e.evaluate(x=x0)
            continue
        try:
            got = e.evaluate(x=x0)
        except EvaluationError:
            # only where NumPy clamps a bound beyond the axis, or the slice is empty
            assert isinstance(key, slice) and _named_dim_differs(key, len(x0)), key
            continue
        assert_close(got, want, what=repr(key))


def _named_dim_differs(s: slice, n: int) -> bool:
    """Whether a slice on a named dim cannot be NumPy's: NumPy clamps bounds beyond
    the axis (and may give an empty slice), a symbolic slice does not clamp."""
    step = s.step or 1

    def inside(v: int | None) -> bool:
        return v is None or -n <= v < n or (v == n and step > 0 and v is s.stop)

    return not (inside(s.start) and inside(s.stop)) or np.zeros(n)[s].size == 0


# ============================================================== bad input
def test_stack_of_different_shapes_names_both() -> None:
    with pytest.raises(ShapeError, match=r"\(n,\).*part 1.*\(m,\).*part 2"):
        md.stack([md.vector("a", "n"), md.vector("b", "m")])
    with pytest.raises(ShapeError, match=r"\(n, n\).*\(n, m\).*axis 0"):
        md.concat([md.matrix("A", "n", "n"), md.matrix("B", "n", "m")])
    with pytest.raises(ShapeError, match="scalar"):
        md.concat([md.vector("a", "n"), md.scalar("b")])


def test_index_out_of_range() -> None:
    A = md.matrix("A", 3, 4)
    with pytest.raises(ShapeError, match=r"index 4 is out of range for an axis of size 4"):
        A[0, 4]
    with pytest.raises(ShapeError, match=r"index -4"):
        A[-4]
    x = md.vector("x", "n")
    e = x[5]                                   # named dim: known when evaluating
    with pytest.raises(EvaluationError, match=r"index 5.*size n = 3"):
        e.evaluate(x=np.ones(3))
    with pytest.raises(EvaluationError, match=r"index -4.*size n = 3"):
        x[-4].evaluate(x=np.ones(3))
    with pytest.raises(EvaluationError, match=r"does not fit an axis of size n = 2"):
        x[0:3].evaluate(x=np.ones(2))
    with pytest.raises(EvaluationError, match=r"index 5"):
        md.compile(md.derive(md.sin(x[5]), "x"), backend="torch")(x=np.ones(4))


def test_float_index_too_many_indices_empty_and_step_zero() -> None:
    A = md.matrix("A", 3, 4)
    with pytest.raises(ShapeError, match="an index must be an int or a slice, not float"):
        A[1.5]
    with pytest.raises(ShapeError, match="too many indices: 3"):
        A[0, 1, 2]
    with pytest.raises(ShapeError, match="empty"):
        A[2:1]
    with pytest.raises(ShapeError, match="step must not be zero"):
        A[::0]
    with pytest.raises(ShapeError, match="no length in dims"):
        md.vector("x", "n")[::2]
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(md.vector("x", "n"))


# ============================================================== a wrong adjoint is caught
def test_a_planted_wrong_adjoint_fails_the_numeric_check(monkeypatch) -> None:
    from matdiff.expr.simplify import selection as sel

    case = CASES[6]  # x[-1] and x[:-1]: the adjoint of a selection
    f = case.build(_v(case.shapes))
    vals = _values(case, 5)
    fd = fd_jacobian(lambda t: f.evaluate({**vals, "x": t}), vals["x"])
    assert_close(md.derive(f, "x").evaluate(vals), fd, rtol=1e-5, atol=1e-6)

    def shifted(self, k, adj, nf):
        # scatters to the wrong positions: x[-1]'s adjoint to x[0], x[:-1]'s to x[1:]
        n = self.children[0].shape[self.axis]
        key = (0,) if self.is_index else (1, self.key[1], self.key[2])
        return sel.place(adj, nf + self.axis, key, n)

    monkeypatch.setattr(Take, "vjp", shifted)
    wrong = md.derive(case.build(_v(case.shapes)), "x").evaluate(vals)
    assert not np.allclose(wrong, fd, rtol=1e-5, atol=1e-6)


# ============================================================== printing
def _printed_cases() -> list[tuple[md.Expr, str, str]]:
    x, b = md.scalar("x"), md.scalar("b")
    w, v = md.vector("w", "n"), md.vector("v", "n")
    A = md.matrix("A", "n", "n")
    X, E = md.matrix("X", 3, 3), md.matrix("E", 3, 3)
    y = md.stack([md.log(x ** 2), md.sin(3 * x)])
    return [
        (y, "[log(x²), sin(3x)]", r"\begin{bmatrix} \log(x^{2}) \\ \sin(3 x) \end{bmatrix}"),
        (md.concat([w, [b]]), "concat(w, [b])", r"\begin{bmatrix} w \\ b \end{bmatrix}"),
        (md.stack([w, v]), "[w, v]", r"\begin{bmatrix} w^\top \\ v^\top \end{bmatrix}"),
        (md.stack([w, v], axis=1), "[w, v]ᵀ",
         r"\begin{bmatrix} w^\top \\ v^\top \end{bmatrix}^\top"),
        (w[0], "w[0]", "w_{0}"),
        (w[-1], "w[−1]", "w_{-1}"),
        (w[1:], "w[1:]", "w[1{:}]"),
        (A[1, 2], "A[1, 2]", "A_{1,2}"),
        (A[:, 0], "A[:, 0]", "A[{:}, 0]"),
        (A[::-1, 1:], "A[::−1, 1:]", "A[{:}{:}-1, 1{:}]"),
        (md.concat([md.concat([X, E], axis=1), md.concat([0 * X, X], axis=1)]),
         "block([[X, E], [0, X]])", r"\begin{bmatrix} X & E \\ 0 & X \end{bmatrix}"),
        # a zero part of a stack prints with its dims (issue 13: the unicode syntax
        # reads it back)
        (md.derive(md.stack([w, v]), "w"), "[I, zeros(n, n)]",
         r"\begin{bmatrix} I \\ \mathbf{0}_{n \times n} \end{bmatrix}"),
    ]


@pytest.mark.parametrize("k", range(12))
def test_printed_as_the_parts(k: int) -> None:
    e, text, tex = _printed_cases()[k]
    assert str(e) == text
    assert md.latex(e) == tex


def test_latex_renders_in_katex() -> None:
    from katex import katex_errors

    items = [md.latex(e) for e, _, _ in _printed_cases()]
    items += [md.latex(md.derive(e, v)) for e, _, _ in _printed_cases()[:4]
              for v in e.variables()]
    assert katex_errors(items) == []


@pytest.mark.parametrize("k", range(12))
def test_printed_form_evaluates_to_the_value(k: int) -> None:
    """The printed formula's own evaluation (by the rules of matrix algebra, of the
    printed keys) equals the expression's value: the printout is proved in numbers."""
    from matdiff.render.mform import matrix_form, to_numpy

    e, _, _ = _printed_cases()[k]
    rng = np.random.default_rng(k)
    sizes = {"n": 4}
    vals = {name: rng.normal(size=tuple(sizes.get(d, d) for d in s))
            for name, s in e.variables().items()}
    from matdiff.derive.result import Derivative

    if isinstance(e, Derivative):
        vals = {name: rng.normal(size=tuple(sizes.get(d, d) for d in s))
                for name, s in {**e.f.variables(), "w": ("n",)}.items()}
    assert_close(to_numpy(matrix_form(e), vals, sizes), e.evaluate(vals), what=str(e))


# ============================================================== the text: numpy syntax
def test_contract_line_paper_35() -> None:
    g = md.derive("[log(x**2), sin(3*x)]", "x", shapes={"x": ()})
    assert g.shape == (2,)
    assert str(g) == "[2/x, 3cos(3x)]"
    assert md.latex(g) == r"\begin{bmatrix} \frac{2}{x} \\ 3 \cos(3 x) \end{bmatrix}"
    assert_close(g.evaluate(x=0.7), [2 / 0.7, 3 * np.cos(2.1)])


def test_contract_line_bias_folded() -> None:
    shapes = {"w": ("n",), "b": (), "x": ("n",)}
    text = "max(0, dot(concat(w, [b]), concat(x, [1])))"
    f = md.parse(text, shapes=shapes)
    g = md.derive(text, "w", shapes=shapes)
    assert g.shape == ("n",)
    # as written: the dot of the two concatenations, in their order
    assert md.to_text(f, style="paper") == "max(0, concat(w, [b]) · concat(x, [1]))"
    assert str(g) == "step(concat(w, [b]) · concat(x, [1]))x"
    vals = {"w": np.array([0.5, -1.0, 2.0]), "b": 0.3, "x": np.array([1.0, 0.2, 0.4])}
    assert_close(g.evaluate(vals), vals["x"])     # wᵀx + b = 1.4 > 0
    # without shapes, inference makes x as long as w (n + 1 = n' + 1)
    assert md.parse(text).variables() == {"x": ("n",), "w": ("n",), "b": ()}


def test_contract_line_indexing() -> None:
    shapes = {"x": ("n",), "A": ("n", "n")}
    text = "x[0] * sum(x[1:]) + A[1, 2] * x[2] + A[:, 0] @ x"
    f = md.parse(text, shapes=shapes)
    assert f.shape == ()
    assert str(f) == "x[0]sum(x[1:]) + A[1, 2]x[2] + xᵀA[:, 0]"  # as written
    rng = np.random.default_rng(7)
    x0, A0 = rng.normal(size=4), rng.normal(size=(4, 4))
    want = x0[0] * x0[1:].sum() + A0[1, 2] * x0[2] + A0[:, 0] @ x0
    assert_close(f.evaluate(x=x0, A=A0), want)
    for name, v0 in (("x", x0), ("A", A0)):
        vals = {"x": x0, "A": A0}
        fd = fd_jacobian(lambda t, name=name, vals=vals: f.evaluate({**vals, name: t}), v0)
        assert_close(md.derive(f, name).evaluate(vals), fd, rtol=1e-6, atol=1e-7)
    # without shapes: x a vector, A a matrix whose rows are x's dim
    assert md.parse(text).variables() == {"x": ("n",), "A": ("n", "m")}


def test_paper_example_2_jacobian_by_each_variable() -> None:
    # J = [[6xy, 3x²], [2, 8y⁷]]: each column is the derivative by one variable
    shapes = {"x": (), "y": ()}
    jx = md.derive("[3*x**2*y, 2*x + y**8]", "x", shapes=shapes)
    jy = md.derive("[3*x**2*y, 2*x + y**8]", "y", shapes=shapes)
    assert_close(jx.evaluate(x=1.5, y=0.5), [6 * 1.5 * 0.5, 2])
    assert_close(jy.evaluate(x=1.5, y=0.5), [3 * 1.5 ** 2, 8 * 0.5 ** 7])
    assert str(jx) == "[6xy, 2]"


def test_nested_literals_and_inference() -> None:
    e = md.parse("[[1, 2], [3, x]]", shapes={"x": ()})
    assert e.shape == (2, 2)
    assert_close(e.evaluate(x=4.0), [[1, 2], [3, 4]])
    # a slice's dim is inferred both ways: y has x[1:]'s dim, n - 1
    assert md.parse("sum(x[1:] * y)").variables() == {"y": (md.expr.dims.dim_sub("n", 1),),
                                                      "x": ("n",)}
    assert md.parse("sum(concat(x, y) * z)", shapes={"z": (5,), "x": (2,)}).variables() == \
        {"z": (5,), "x": (2,), "y": (3,)}
    assert md.parse("x[::-1] @ x").shape == ()


@pytest.mark.parametrize("text, shapes, message, caret", [
    ("[x, y]", {"x": ("n",), "y": ("m",)}, "parts of shapes (n,) (part 1) and (m,) (part 2)",
     "   ^  ^"),
    ("x[5]", {"x": (3,)}, "index 5 is out of range for an axis of size 3", "  ^ ^"),
    ("x[1.5]", {"x": ("n",)}, "an index must be a whole number, not 1.5", "    ^^^"),
    ("x[y]", {"x": ("n",), "y": ()}, "an index must be a whole number", "    ^"),
    ("x[1, 2]", {"x": ("n",)}, "too many indices: 2", None),
    ("x[]", {"x": ("n",)}, "an empty index", None),
    ("[]", {}, "an empty '[ ]'", None),
    ("[x, y", {"x": (), "y": ()}, "'[' is never closed", None),
    ("x[2:1]", {"x": (4,)}, "is empty", None),
    ("concat(x, b)", {"x": ("n",), "b": ()}, "part 2 is a scalar", None),
    ("concat(A, B)", {"A": ("n", "n"), "B": ("n", "m")}, "their other dims differ", None),
    ("x[::2]", {"x": ("n",)}, "no length in dims", None),
])
def test_bad_text_gives_a_clear_error_with_a_caret(text, shapes, message, caret) -> None:
    with pytest.raises((md.ParseError, ShapeError)) as info:
        md.parse(text, shapes=shapes)
    msg = str(info.value)
    assert message in msg, msg
    assert text in msg and "^" in msg, msg
    if caret is not None:
        assert caret in msg.splitlines(), msg


def test_bad_text_without_shapes_too() -> None:
    with pytest.raises(ShapeError, match=r"\[…\] stacks parts of one shape"):
        md.parse("[A @ x, B @ x]", shapes={"A": (2, 3), "B": (4, 3)})
    with pytest.raises(ShapeError, match="index 3 is out of range"):
        md.parse("x[3] + sum(A @ x)", shapes={"A": (2, 3)})


def test_index_out_of_range_on_a_named_dim_from_text() -> None:
    f = md.parse("x[4] * 2", shapes={"x": ("n",)})
    with pytest.raises(EvaluationError, match=r"index 4 .*size n = 3"):
        f.evaluate(x=np.ones(3))


def test_matrixcalculus_syntax_says_it_has_no_stacking() -> None:
    for text in ("[x, y]", "x[0]", "x(1:2)"):
        with pytest.raises(md.ParseError) as info:
            md.parse(text, syntax="matrixcalculus")
        if "[" in text:
            assert "no stacking or indexing" in str(info.value)


# ============================================================== the text: unicode syntax
@pytest.mark.parametrize("text, shapes", [
    ("[log(x**2), sin(3*x)]", {"x": ()}),
    ("concat(w, [b])", {"w": ("n",), "b": ()}),
    ("x[0] * sum(x[1:]) + A[1, 2] * x[2] + A[:, 0] @ x", {"x": ("n",), "A": ("n", "n")}),
    ("[w, v] @ w", {"w": ("n",), "v": ("n",)}),
    ("A[::-1, 1:] @ x[1:]", {"x": ("n",), "A": ("n", "n")}),
    ("max(0, dot(concat(w, [b]), concat(x, [1])))", {"w": ("n",), "b": (), "x": ("n",)}),
    ("x[-1] * sum(x[:-1])", {"x": ("n",)}),
])
def test_unicode_syntax_reads_what_is_printed(text: str, shapes: dict) -> None:
    f = md.parse(text, shapes=shapes)
    rng = np.random.default_rng(3)
    vals = {k: rng.normal(size=tuple(4 if isinstance(d, str) else d for d in s))
            for k, s in shapes.items()}
    printed = [f, md.derive(f, next(iter(f.variables())))]
    for e in printed:
        if any(isinstance(n, md.Const) and n.shape for n in topo_order(e.body
               if hasattr(e, "body") else e)):
            continue  # a constant block prints without its dims (0, 1): not read back
        back = md.parse(str(e), shapes=shapes, syntax="unicode")
        assert back.shape == e.shape, str(e)
        assert_close(back.evaluate(vals), e.evaluate(vals), what=str(e))


# ============================================================== random expressions
@st.composite
def _vector_expr(draw, depth: int = 0) -> tuple:
    """A random vector expression of stacks, concatenations and selections, with
    the same function on NumPy arrays (NumPy is the oracle)."""
    x, y, s = md.vector("x", 4), md.vector("y", 3), md.scalar("s")
    leaves = [
        (x, lambda a: a["x"]), (y, lambda a: a["y"]),
        (md.sin(x) * s, lambda a: np.sin(a["x"]) * a["s"]),
    ]
    if depth >= 3:
        return draw(st.sampled_from(leaves))
    kind = draw(st.sampled_from(["leaf", "slice", "concat", "stack", "map", "index"]))
    if kind == "leaf":
        return draw(st.sampled_from(leaves))
    e, f = draw(_vector_expr(depth + 1))
    n = e.shape[0]
    if kind == "slice":
        start = draw(st.integers(-n, n - 1))
        step = draw(st.sampled_from([1, 2, -1, -2]))
        key = slice(start, None, step)
        if np.zeros(n)[key].size == 0:
            return e, f
        return e[key], (lambda a, f=f, key=key: f(a)[key])
    if kind == "concat":
        e2, f2 = draw(_vector_expr(depth + 1))
        return md.concat([e, e2]), (lambda a, f=f, f2=f2: np.concatenate([f(a), f2(a)]))
    if kind == "stack":
        e2, f2 = draw(_vector_expr(depth + 1))
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, e2.shape[0] - 1))
        return md.stack([e[i], e2[j] ** 2, e[-1]]), (
            lambda a, f=f, f2=f2, i=i, j=j: np.stack([f(a)[i], f2(a)[j] ** 2, f(a)[-1]]))
    if kind == "map":
        return md.tanh(e) * e, (lambda a, f=f: np.tanh(f(a)) * f(a))
    i = draw(st.integers(0, n - 1))
    return e * e[i], (lambda a, f=f, i=i: f(a) * f(a)[i])


@given(_vector_expr())
def test_random_stacking_expressions(pair: tuple) -> None:
    """Value against NumPy, gradient (by x and by s) against central differences,
    compiled code against the interpreter."""
    e, ref = pair
    f = md.sum(md.sin(e) * md.cos(e))
    rng = np.random.default_rng(len(str(e)))
    vals = {"x": rng.normal(size=4), "y": rng.normal(size=3), "s": np.float64(0.7)}
    assert_close(e.evaluate(vals), ref(vals), what=str(e))
    for name in f.variables():
        g = md.derive(f, name).evaluate(vals)
        fd = fd_jacobian(lambda t, name=name: f.evaluate({**vals, name: t}), vals[name])
        assert_close(g, fd, rtol=1e-5, atol=1e-6, what=f"{e} d/d{name}")
    used = {k: v for k, v in vals.items() if k in e.variables()}
    assert_close(md.compile({"e": e})(**used)["e"], interpret(e, vals), what=str(e))


def test_a_planted_wrong_concat_adjoint_fails_too(monkeypatch) -> None:
    from matdiff.expr.simplify import selection as sel

    case = CASES[4]  # the folded bias: concat(w, [b]) and concat(x, [1])
    f = case.build(_v(case.shapes))
    vals = _values(case, 6)
    vals["b"] = np.float64(2.0)  # on the linear piece of max(0, ·)
    fd = fd_jacobian(lambda t: f.evaluate({**vals, "b": t}), vals["b"])
    assert_close(md.derive(f, "b").evaluate(vals), fd, rtol=1e-5, atol=1e-6)

    def off_by_one(self, k, adj, nf):  # reads each part one position early
        from matdiff.expr.dims import dim_sub

        offs = self.offsets()
        start = dim_sub(offs[k], 1) if offs[k] != 0 else 0
        key = (start,) if self.rows[k] else (start, self.children[k].shape[self.axis], 1)
        return sel.take(adj, nf + self.axis, key)

    monkeypatch.setattr(Concat, "vjp", off_by_one)
    wrong = md.derive(case.build(_v(case.shapes)), "b").evaluate(vals)
    assert not np.allclose(wrong, fd, rtol=1e-5, atol=1e-6)


def test_matrixcalculus_printer_says_it_has_no_stacking() -> None:
    from matdiff.render.matrixcalculus import to_matrixcalculus

    x = md.vector("x", "n")
    for e in (md.stack([x[0], x[1]]), x[1:], md.concat([x, [md.scalar("b")]])):
        with pytest.raises(ValueError, match="no stacking, indexing or slicing"):
            to_matrixcalculus(e)


# ============================================================== block matrices in text
def test_block_reads_back_in_both_syntaxes() -> None:
    # the Fréchet derivative's block matrix [[X, E], [0, X]] (MATH.md)
    X, E = md.matrix("X", 3, 3), md.matrix("E", 3, 3)
    bm = md.concat([md.concat([X, E], axis=1), md.concat([0 * X, X], axis=1)])
    shapes = {"X": (3, 3), "E": (3, 3)}
    rng = np.random.default_rng(11)
    vals = {"X": rng.normal(size=(3, 3)), "E": rng.normal(size=(3, 3))}
    want = np.block([[vals["X"], vals["E"]], [np.zeros((3, 3)), vals["X"]]])
    assert_close(bm.evaluate(vals), want)
    for syntax in ("numpy", "unicode"):
        back = md.parse(str(bm), shapes=shapes, syntax=syntax)
        assert_close(back.evaluate(vals), want, what=syntax)


def test_block_shapes_are_inferred_and_checked() -> None:
    assert md.parse("sum(block([[X, E], [0, X @ X]]) * B)", shapes={"B": (4, 4)}
                    ).variables() == {"B": (4, 4), "X": (2, 2), "E": (2, 2)}
    e = md.parse("block([[X, E], [0, X]])")
    two_n = md.expr.dims.dim_mul(2, "n")
    assert e.variables() == {"X": ("n", "m"), "E": ("n", "m")} and e.shape[0] == two_n
    for text, message in [("block(X)", "takes a list of block rows"),
                          ("block([[X, E], [E]])", "the same number of blocks"),
                          ("block([[1, 2]])", "made of numbers only")]:
        with pytest.raises((md.ParseError, ShapeError), match=message):
            md.parse(text)


def test_rows_of_numbers_print_as_a_matrix() -> None:
    # the paper's Jacobian of [xy, x] and [y, 3] by x: [[y, 1], [0, 0]]
    shapes = {"x": (), "y": ()}
    e = md.parse("[[x*y, x], [y, 3]]", shapes=shapes)
    g = md.derive(e, "x")
    assert str(e) == "[[xy, x], [y, 3]]"
    assert md.latex(e) == r"\begin{bmatrix} x y & x \\ y & 3 \end{bmatrix}"
    assert str(g) == "[[y, 1], [0, 0]]"
    assert md.latex(g) == r"\begin{bmatrix} y & 1 \\ 0 & 0 \end{bmatrix}"
    from katex import katex_errors
    from matdiff.render.mform import matrix_form, to_numpy

    assert katex_errors([md.latex(e), md.latex(g)]) == []
    vals = {"x": 0.3, "y": 2.0}
    assert_close(to_numpy(matrix_form(g), vals), [[2.0, 1.0], [0.0, 0.0]])
    assert_close(md.parse(str(e), shapes=shapes, syntax="unicode").evaluate(vals),
                 e.evaluate(vals))


def test_fit_sizes_makes_every_selection_fit() -> None:
    from matdiff.expr.selection import fit_sizes

    x, A = md.vector("x", "n"), md.matrix("A", "m", "n")
    e = x[5] * md.sum(x[:-2]) + A[-3, 0] + md.sum(A[1:, 2:4])
    sizes = fit_sizes(e, {"n": 3, "m": 2})
    assert sizes == {"n": 6, "m": 3}
    rng = np.random.default_rng(0)
    x0, A0 = rng.normal(size=sizes["n"]), rng.normal(size=(sizes["m"], sizes["n"]))
    want = x0[5] * x0[:-2].sum() + A0[-3, 0] + A0[1:, 2:4].sum()
    assert_close(e.evaluate(x=x0, A=A0), want)   # it evaluates at those sizes
    with pytest.raises(EvaluationError):           # and not one smaller
        e.evaluate(x=x0[:-1], A=A0[:, :-1])


def test_check_draws_sizes_that_fit_the_selections():
    # x[5] on a named dim: the check's sizes are raised until n ≥ 6 (it was 'could not
    # check' at the usual 3 or 4)
    r = md.check("x[5] * sum(x)", "x", shapes={"x": ("n",)})
    assert r.ok and r.status == "ok"
    bad = md.check("x[5] * sum(x)", "x", shapes={"x": ("n",)}, derivative="sum(x) + 0 * x")
    assert not bad.ok
