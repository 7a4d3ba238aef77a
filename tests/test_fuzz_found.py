"""Regressions found by the differential fuzz of issue 10: each case as it was
reported, with the value the mathematics gives (not the value the code gave)."""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from matdiff.render import to_matrixcalculus

P = {"p": ()}


# ====================================================================== overflow
def test_a_constant_that_overflows_does_not_poison_a_zero_derivative():
    """step' = 0, so d step(p·e¹⁰⁰⁰)/dp = 0 (JAX gives 0); e¹⁰⁰⁰ folded to ∞ gave
    0·∞ = nan."""
    d = md.derive("step(p * exp(1000))", "p", shapes=P)
    assert float(d.evaluate(p=0.5)) == 0.0
    assert str(d) == "0"
    # the overflowing constant stays a formula in the printout, not ∞
    f = md.parse("step(p * exp(1000))", shapes=P)
    assert "∞" not in str(f) and "exp(1000)" in str(f)


def test_an_unfolded_overflowing_constant_still_evaluates_as_floats_do():
    """exp(1000) is ∞ in float64: sin(p·e¹⁰⁰⁰) is nan there, as in NumPy and JAX, and
    a derivative that does not meet the overflow is exact."""
    f = md.parse("exp(1000) * 0 + p * 2 + exp(800 - 900)", shapes=P)
    np.testing.assert_allclose(md.derive(f, "p").evaluate(p=1.0), 2.0)
    g = md.parse("exp(1000) + p", shapes=P)
    assert np.isinf(g.evaluate(p=1.0))
    assert float(md.derive(g, "p").evaluate(p=1.0)) == 1.0


def test_finite_constants_still_fold():
    assert str(md.parse("exp(0) + log(1) * p", shapes=P)) == "1"
    # a decimal folds; a constant from integers stays exact (issue 13, item 3)
    assert str(md.parse("p * exp(0.5)", shapes=P)) == "1.64872p"
    assert str(md.parse("p * exp(2)", shapes=P)) == "p exp(2)"


# ====================================================================== matrixcalculus printer
def test_matrixcalculus_printer_refuses_tensors_of_order_three():
    """The syntax has scalars, vectors and matrices: matrix(0, n, n, n, n) for a zero
    third derivative does not parse back, so the printer says so."""
    x = md.vector("x", "n")
    T = md.derive(md.derive(md.derive(md.sum(x), x), x), x)  # zero, shape (n, n, n)
    assert T.shape == ("n", "n", "n")
    with pytest.raises(ValueError, match="no tensors of order 3"):
        to_matrixcalculus(T)
    A = md.matrix("A", "n", "n")
    with pytest.raises(ValueError, match="order 4"):
        to_matrixcalculus(md.derive(A @ A, A))
    # a matrix still prints, and parses back
    text = to_matrixcalculus(md.derive(md.derive(md.sum(x), x), x))
    assert md.parse(text, shapes={"x": ("n",)}, syntax="matrixcalculus").shape == ("n", "n")


# ====================================================================== the reference's coverage
def _reference_backends():
    """The independent reference on each array library that is installed."""
    import helpers

    out = [helpers.NUMPY]
    for make in (helpers.jax_backend, helpers.torch_backend):
        try:
            out.append(make())
        except ImportError:  # pragma: no cover - the dev extra has both
            pass
    return out


def _numbers(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().numpy()
    return np.asarray(a, dtype=np.float64)


def _agree(expr: md.Expr, vals: dict, sizes: dict) -> None:
    """The tests' reference (tests/helpers.py ``to_backend``, on NumPy, JAX, PyTorch)
    gives the value matdiff's interpreter gives: two evaluators written apart."""
    from helpers import evaluate_dims, to_backend

    want = evaluate_dims(expr, vals, sizes)
    for ops in _reference_backends():
        env = {k: ops.asarray(v) for k, v in vals.items()}
        got = _numbers(to_backend(expr, ops, sizes)(env))
        assert got.shape == np.shape(want), (ops.name, str(expr))
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11,
                                   err_msg=f"{ops.name}: {expr}")


_SIZES = {"n": 3, "m": 2, "p": 2, "q": 3}


def _point(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    from helpers import dims_of, spd

    dims = dims_of(shape, _SIZES)
    if domain in ("invertible", "positive") and len(dims) == 2:
        return spd(rng, dims[0]) + 2 * np.eye(dims[0])  # eigenvalues in the logm series'
    return rng.uniform(-0.8, 0.8, size=dims)


def test_the_reference_evaluates_every_element_wise_function():
    """Every built-in row of the element-wise table (a missing one raised
    NotImplementedError in the reference, under the hunt profile)."""
    from matdiff.expr.core import Map
    from matdiff.expr.functions import FUNCTIONS

    rng = np.random.default_rng(0)
    for name, row in FUNCTIONS.items():
        lo, hi = row.domain
        args = [md.vector(f"u{k}", "n") for k in range(row.arity)]
        vals = {a.name: rng.uniform(max(lo, -3), min(hi, 3), size=3) for a in args}
        _agree(Map(name, args), vals, _SIZES)


def test_the_reference_evaluates_every_matrix_function_and_node_kind():
    """Every definition of MATRIX_FUNCTIONS (the reshapes that only rules build too),
    and the stacking and selection kinds, on their own and inside the second
    derivative of a Fréchet derivative (the case the hunt profile met:
    frechet_exp(tanh(A), tanh(A)) by A, twice, holds concat and take)."""
    from helpers import kinds
    from matdiff.expr.core import Call
    from matdiff.expr.matrix_functions import MATRIX_FUNCTIONS

    rng = np.random.default_rng(1)
    from matdiff.expr.dims import dim_mul

    # the reshapes: (p·q,) read as (p, q), and (m, n) read as (m·n,)
    special = {"split_axis": ([(dim_mul("p", "q"),)], (0, "p", "q")),
               "merge_axes": ([("m", "n")], (0,))}
    for name, spec in MATRIX_FUNCTIONS.items():
        if name in special:
            shapes, params = special[name]
        else:
            shapes = list(spec.examples[0]) if spec.examples else (
                [("n", "n")] if spec.arg_rank == 2 else [("n",)])
            params = ()
        args = [md.Var(f"u{k}", s) for k, s in enumerate(shapes)]
        doms = spec.domains()
        vals = {a.name: _point(d, a.shape, rng) for a, d in zip(args, doms)}
        _agree(Call(name, args, params), vals, _SIZES)
    x, A, b = md.vector("x", "n"), md.matrix("A", "n", "n"), md.scalar("b")
    vals = {"x": np.array([0.3, -0.7, 1.1]), "A": rng.uniform(-0.6, 0.6, (3, 3)),
            "b": np.array(0.4)}
    stacked = md.concat([x[::-1] * x[0], md.stack([b, x[-1]])])
    _agree(stacked, vals, _SIZES)
    _agree(md.derive(md.derive(md.sum(stacked * stacked), x), x), vals, _SIZES)
    F = md.matrix_function("frechet_exp")(md.tanh(A), md.tanh(A))
    H = md.derive(md.derive(F, A), A)
    assert {"concat", "take"} <= kinds(H)
    _agree(H, {"A": vals["A"]}, _SIZES)
    m = md.mean(x * x) + md.sum(md.eye("n") @ x)   # Size (the 1/n of a mean), Delta
    _agree(m, vals, _SIZES)
    # every node kind of the core has met the reference above: a new kind fails here
    # until the reference evaluates it
    from matdiff.expr.core import Expr

    def subclasses(c):
        for k in c.__subclasses__():
            yield k
            yield from subclasses(k)

    every = {k.kind for k in subclasses(Expr)} - {Expr.kind}  # not the base class
    met = kinds(H) | kinds(m) | kinds(stacked) | {"call", "map"}
    assert every <= met, every - met


def test_the_torch_reference_takes_the_kronecker_product_of_a_transpose():
    """sum(kron(A, C.T)**2) (the hunt profile's test_derivative_matches_torch): the
    reference's torch.kron refused the transposed view C.T ("view size is not
    compatible"); its derivative by C, by torch.func.jacrev of the reference, is
    matdiff's, and the identity Σ (A ⊗ B)² = ‖A‖²_F ‖B‖²_F gives it in closed form:
    ∂/∂C of ‖A‖²_F ‖Cᵀ‖²_F = 2‖A‖²_F C."""
    torch = pytest.importorskip("torch")
    from torch.func import jacrev

    from helpers import to_backend, torch_backend

    A, C = md.matrix("A", "n", "n"), md.matrix("C", "m", "n")
    K = md.kron(A, C.T)
    f = md.sum(K * K)
    rng = np.random.default_rng(3)
    vals = {"A": rng.uniform(-1, 1, (3, 3)), "C": rng.uniform(-1, 1, (2, 3))}
    ops = torch_backend()
    run = to_backend(f, ops, {"n": 3, "m": 2})
    env = {k: torch.as_tensor(v) for k, v in vals.items()}
    want = jacrev(lambda C_: run({**env, "C": C_}))(env["C"]).numpy()
    np.testing.assert_allclose(want, 2 * np.sum(vals["A"] ** 2) * vals["C"], rtol=1e-12)
    np.testing.assert_allclose(md.derive(f, C).evaluate(vals), want, rtol=1e-10)


# ====================================================================== printouts read back
def test_a_matrix_times_a_stacked_vector_does_not_print_as_an_index():
    """Aᵀ @ [0, 1] is the second row of A as a vector ([3, 4] for A = [[1, 2], [3,
    4]]); its printout read back by the unicode syntax gave the scalar Aᵀ[0, 1] = 3."""
    A = md.matrix("A", 2, 2)
    e = A.T @ md.stack([md.const(0.0), md.const(1.0)])
    vals = {"A": np.array([[1.0, 2.0], [3.0, 4.0]])}
    np.testing.assert_allclose(e.evaluate(vals), [3.0, 4.0])
    assert str(e) == "Aᵀ·[0, 1]"   # side by side, Aᵀ[0, 1] would be an entry
    back = md.parse(str(e), shapes={"A": (2, 2)}, syntax="unicode")
    assert back.shape == (2,), (str(e), back.shape)
    np.testing.assert_allclose(back.evaluate(vals), [3.0, 4.0])


# ====================================================================== slices as printed
def _numpy_slices():
    """Every slice with bounds in [-8, 8) (or left out) and steps ±1, ±2, ±3."""
    bounds = [None, *range(-8, 8)]
    for start in bounds:
        for stop in bounds:
            for step in (None, 1, 2, 3, -1, -2, -3):
                yield slice(start, stop, step)


def test_a_printed_slice_selects_what_the_slice_selects():
    """x[::-2] of x: (3,) is (x₂, x₀); it printed as x[:−2:−2], which is x₂ alone in
    NumPy (a stop of −2 counts back from the end), so the printout of a derivative
    read back with the wrong shape (found by a fuzz of selections).  The text of every
    key, on int and on named dims, selects in NumPy what the slice selects."""
    from matdiff.expr.selection import key_text, resolve, slice_key

    checked = 0
    for s in _numpy_slices():
        for n in range(1, 7):
            a = np.arange(n)
            try:
                key = slice_key(s, n)
            except md.ShapeError:
                assert a[s].size == 0  # refused only when it is empty
                continue
            text = key_text(key, n)
            assert np.array_equal(eval(f"a[{text}]", {"a": a}), a[s]), (n, s, text)
            checked += 1
        try:
            key = slice_key(s, "n")
        except md.ShapeError:
            continue
        text = key_text(key, "n")
        for n in range(1, 9):
            a = np.arange(n)
            try:
                resolve(key, "n", {"n": n})
            except md.MatdiffError:
                continue  # positions outside an axis of that size
            # the text, with n bound to the size, as NumPy reads it
            assert np.array_equal(eval(f"a[{text}]", {"a": a, "n": n}), a[s]), (n, s, text)
            checked += 1
    assert checked > 3000
    x = md.vector("x", 3)
    assert str(x[::-2]) == "x[::−2]" and str(x[0:3:2]) == "x[::2]"
    back = md.parse(str(md.softmax(x[::-2])), shapes={"x": (3,)}, syntax="unicode")
    v = np.array([0.1, 0.5, -0.3])
    np.testing.assert_allclose(back.evaluate(x=v), md.softmax(x[::-2]).evaluate(x=v))


# ====================================================================== printed coefficients
def test_the_gradient_by_a_symmetric_matrix_of_a_diagonal_prints_its_value():
    """∂ yᵀdiag(S)/∂S for a symmetric S is sym(diag(y)) = diag(y) (MATH.md: the
    gradient is sym(G)); the value is diag(y), the printout said diag(2y) (found by a
    fuzz of structured variables, the printout read back).  The sum inside is
    ½(δᵢⱼyⱼ + δᵢⱼyᵢ), two nodes that both print diag(y)."""
    shapes = {"y": ("n",), "S": ("n", "n", "symmetric")}
    D = md.derive("dot(y, diag(S))", "S", shapes=shapes)
    y = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(D.evaluate(y=y, S=np.eye(3)), np.diag(y))
    assert str(D) == "diag(y)", str(D)
    back = md.parse(str(D), shapes=shapes, syntax="unicode")
    np.testing.assert_allclose(back.evaluate(y=y), np.diag(y))


def test_a_sum_of_two_equal_diagonals_prints_twice_not_four_times():
    from matdiff.expr.core import Add, Delta, Einsum

    y = md.vector("y", 3)
    d = Delta(3)
    # δᵢⱼ yⱼ and δᵢⱼ yᵢ: equal tensors, two nodes, each printed diag(y)
    s = Add([Einsum([d, y], [(0, 1), (0,)], (0, 1)), Einsum([d, y], [(0, 1), (1,)], (0, 1))])
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(s.evaluate(y=v), 2 * np.diag(v))
    assert str(s) == "diag(2y)", str(s)


# ====================================================================== error messages
@pytest.mark.parametrize("text", [
    "L_exp(block([[S, S], [0, S]]), block([[I, 0], [0, I]]))",
    "S + block([[I, 0], [0, I]])[:3, 3:]",
])
def test_unprinted_dims_of_a_block_of_identities_are_named_as_such(text):
    """A printed second derivative of a Fréchet derivative holds block([[I, 0], [0,
    I]]) (its I's dims add, 3 + 3 or 2 + 4: the reader cannot split them); the error
    named the reader's own dims: 'dims differ (6 and _ones_dim_39_0 +
    _ones_dim_50_0)'."""
    shapes = {"S": (3, 3, "symmetric")}
    with pytest.raises(md.ParseError) as err:
        md.parse(text, shapes=shapes, syntax="unicode")
    assert "_ones_dim" not in str(err.value)
    assert "cannot tell the dims of a constant" in str(err.value)
    assert err.value.spans  # it points into the text


# ====================================================================== sizes too small
def test_a_derivative_at_sizes_too_small_for_its_selections_is_an_evaluation_error():
    """d x[2]/dx is the unit vector e₂ = [0, 0, 1, 0, …]: concat(0, [1], 0), its last
    block of dim n − 3.  At n = 2 the function itself is an EvaluationError (index 2
    is out of range); its derivative raised ValueError from NumPy (found by the text
    fuzz: 'x[0] * sum(x[1:]) + A[1, 2] * x[2] + A[:, 0] @ x' at n = 2)."""
    f = md.parse("b * x[2] + sum(x)", shapes={"x": ("n",), "b": ()})
    with pytest.raises(md.EvaluationError, match="out of range"):
        f.evaluate(x=np.ones(2), b=2.0)
    D = md.derive(f, "x")   # b e₂ + 1: no selection of x left in it
    np.testing.assert_allclose(D.evaluate(x=np.array([1.0, 2.0, 3.0]), b=2.0), [1, 1, 3])
    with pytest.raises(md.EvaluationError,
                       match=r"too small for this expression: its dim n - 3 is -1 at n = 2"):
        D.evaluate(x=np.ones(2), b=2.0)
    with pytest.raises(md.EvaluationError, match=r"dim n - 3 is -1 at n = 2"):
        md.compile(D, backend="torch")(x=np.ones(2), b=2.0)


def test_a_constant_read_with_a_guessed_rank_is_named_when_shapes_then_disagree():
    """The printout of d/dA of sin(sin(A))@sin(sin(x))@A@sin(logsumexp(C.T - C.T))
    holds logsumexp(0): of a zero (n, m) matrix, a vector.  The reader takes a bare 0
    in a call for a vector (softmax(0) + x), which makes logsumexp(0) a scalar, and
    the product after it failed as a ShapeError about A and a row vector (the hunt
    profile's printout round trip); it is the reader's guess, and the error says so."""
    shapes = {"A": ("n", "n"), "x": ("n",)}
    with pytest.raises(md.ParseError, match="cannot tell the dims of a constant") as err:
        md.parse("A sin(logsumexp(0))sin(sin(x))ᵀ", shapes=shapes, syntax="unicode")
    assert err.value.spans[0] == (16, 17)   # the 0
    # where the guess fits, it still reads: softmax(0) of a vector is 1/n
    e = md.parse("softmax(0) + x", shapes=shapes, syntax="unicode")
    np.testing.assert_allclose(e.evaluate(x=np.zeros(4)), np.full(4, 0.25))
    with pytest.raises(md.ParseError, match=r"'0' \(a constant array\)"):
        md.parse("logsumexp(0)", shapes={"A": ("n", "n"), "C": ("m", "n")},
                 syntax="unicode")


def test_the_gradient_through_vec_prints_without_its_internal_reshape():
    """∂ sin(vec(A)·vec(A))/∂A = 2cos(‖A‖²)A: vec's adjoint is an internal reshape
    (split), which a scalar factor kept in the printout as split(2cos(…)vec(A))ᵀ, a
    text the unicode syntax cannot read (found by the ci profile's round trip).  A
    reshape is linear, so it passes the scalars: split(s·vec(A)) = s·Aᵀ."""
    shapes = {"a": (), "A": ("m", "n")}
    g = md.derive("sin(sin(a)) + sin(vec(A) @ vec(A))", "A", shapes=shapes)
    assert "split" not in str(g), str(g)
    A = np.random.default_rng(3).standard_normal((2, 3))
    want = 2 * np.cos(np.sum(A * A)) * A
    np.testing.assert_allclose(g.evaluate(A=A, a=0.3), want, rtol=1e-12)
    back = md.parse(str(g), shapes=shapes, syntax="unicode")
    np.testing.assert_allclose(back.evaluate(A=A), want, rtol=1e-12)


# ====================================================================== zero arguments
@pytest.mark.parametrize("fn", ["frechet_exp", "frechet_log", "frechet_sqrt"])
def test_a_frechet_derivative_in_a_zero_direction_is_zero(fn):
    """L_F(X, 0) = 0 (linear in the direction): it had printed ``L_exp(X, 0)``, whose
    ``0`` reads back as a scalar, an error (found by the hunt profile's round trip)."""
    A, B = md.matrix("A", "n", "n"), md.matrix("B", "n", "n")
    z = getattr(md, fn)(md.tanh(A), md.tanh(B - B))
    assert isinstance(z, md.Expr) and z.shape == ("n", "n") and str(z) == "0"
    f = md.det(z @ z.T + 3 * md.eye("n"))
    assert abs(float(md.evaluate(f, {"A": np.eye(3)}, dims={"n": 3})) - 27.0) < 1e-12
    # a direction that is not zero is kept
    assert str(getattr(md, fn)(A, 2 * B)).startswith("L_")
