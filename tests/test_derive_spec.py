"""The derivative specification: one table, one row per function of the language.

Each row names the function it covers, builds the expression from its arguments
(Python API, no parser), gives the arguments' shapes, how to draw values inside
the function's smooth domain (away from kinks and ties), a NumPy reference for the
value and a tolerance. Parametrised tests then check, for every row:

* the value against the NumPy reference (same shape, same numbers);
* the derivative by EACH argument against the full central-difference Jacobian
  (shape ``f.shape + arg.shape``, float64, step 1e-6);
* the second derivatives (``md.hessian`` for each argument, and mixed ones for each
  pair) against central differences of the first derivative.

A meta-test fails when a function of the language has no row. The conventions at
non-differentiable points (relu'(0) = 0, abs'(0) = 0, step' = 0, ties of max/min
split evenly) are tested on their own, with exact values.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import matdiff as md
from helpers import evaluate_dims, fd_jacobian, max_rel_error, nonzero, well_conditioned
from matdiff.expr.functions import FUNCTIONS

SIZES = {"n": 3, "m": 4}

# The language's function names (DESIGN.md, "The expression language").
LANGUAGE = (
    "exp log sin cos tan arcsin arccos arctan sinh cosh tanh sqrt abs sign relu sigmoid "
    "softplus step max min sum mean norm1 norm2 logsumexp softmax dot outer tr det logdet "
    "inv diag transpose gelu silu leaky_relu elu log_sigmoid softsign log_softmax"
).split()
# Operators and other required rows (issue 2): arithmetic with broadcasting, matmul.
OPERATORS = "add sub mul div pow neg matmul eye".split()

Sampler = Callable[[np.random.Generator, dict], dict]


def uniform(lo: float, hi: float) -> Callable[[np.random.Generator, tuple], np.ndarray]:
    return lambda rng, shape: rng.uniform(lo, hi, size=shape)


FREE = uniform(-2.0, 2.0)
UNIT = uniform(-1.0, 1.0)
POS = uniform(0.2, 3.0)


def NONZERO(rng, shape):  # noqa: N802 - a constant-like sampler
    return nonzero(rng, shape)


def WELL(rng, shape):  # noqa: N802
    assert len(shape) == 2 and shape[0] == shape[1]
    return well_conditioned(rng, shape[0], 0.3)


@dataclass(frozen=True)
class Row:
    """One function of the language in one configuration of argument shapes."""

    id: str
    fn: str                                   # the language name it covers
    build: Callable[..., md.Expr]             # builder taking the argument Exprs
    args: tuple[tuple[str, tuple], ...]       # (name, shape) of each argument
    ref: Callable[..., np.ndarray]            # NumPy reference of the value
    domain: tuple = ()                        # one sampler per argument (default FREE)
    tol: float = 1e-6                         # relative (to max(1, scale)) tolerance
    joint: Sampler | None = field(default=None)  # draws all arguments together

    def variables(self) -> list[md.Expr]:
        return [md.var(name, *shape) for name, shape in self.args]

    def expr(self) -> md.Expr:
        return self.build(*self.variables())

    def values(self, salt: str = "") -> dict[str, np.ndarray]:
        rng = np.random.default_rng(zlib.crc32((self.id + salt).encode()))
        shapes = {name: tuple(SIZES.get(d, d) for d in shape) for name, shape in self.args}
        if self.joint is not None:
            return self.joint(rng, shapes)
        out = {}
        for k, (name, _) in enumerate(self.args):
            sampler = self.domain[k] if k < len(self.domain) else FREE
            out[name] = np.asarray(sampler(rng, shapes[name]), dtype=np.float64)
        return out


def gap_pair(rng: np.random.Generator, shapes: dict) -> dict:
    """Two arguments (broadcastable) whose element-wise difference is at least 0.3
    away from a tie."""
    (na, sa), (nb, sb) = shapes.items()
    a = rng.uniform(-2, 2, size=sa)
    big = sb if len(sb) >= len(sa) else sa
    offs = nonzero(rng, big, 0.3, 1.5)
    b = np.broadcast_to(a, big) + offs
    if len(sb) < len(sa):  # b is the smaller one: draw it, then move a away from it
        b = rng.uniform(-2, 2, size=sb)
        a = np.broadcast_to(b, big) + offs
    return {na: np.asarray(a, dtype=np.float64), nb: np.asarray(b, dtype=np.float64)}


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_logsumexp(a):
    m = np.max(a, axis=-1, keepdims=True)
    return np.log(np.sum(np.exp(a - m), axis=-1)) + m[..., 0]


def np_softmax(a):
    e = np.exp(a - np.max(a, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def np_Phi(a):  # noqa: N802 - the standard normal CDF, by math.erf
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(a) / math.sqrt(2.0)))


def np_leaky_relu(a, s=0.01):
    return np.where(a > 0, a, s * a)


def np_elu(a, s=1.0):
    return np.where(a > 0, a, s * (np.exp(np.minimum(a, 0.0)) - 1.0))


V = ("n",)       # a vector
W = ("m",)       # a vector of another length
S = ()           # a scalar
SQ = ("n", "n")  # a square matrix
R = ("m", "n")   # a rectangular matrix

_UNARY = {
    # name: (numpy reference, domain)
    "exp": (np.exp, FREE),
    "log": (np.log, POS),
    "sin": (np.sin, FREE),
    "cos": (np.cos, FREE),
    "tan": (np.tan, uniform(-1.2, 1.2)),
    "arcsin": (np.arcsin, uniform(-0.9, 0.9)),
    "arccos": (np.arccos, uniform(-0.9, 0.9)),
    "arctan": (np.arctan, FREE),
    "sinh": (np.sinh, FREE),
    "cosh": (np.cosh, FREE),
    "tanh": (np.tanh, FREE),
    "sqrt": (np.sqrt, POS),
    "abs": (np.abs, NONZERO),
    "sign": (np.sign, NONZERO),
    "relu": (lambda a: np.maximum(a, 0.0), NONZERO),
    "step": (lambda a: (a > 0).astype(float), NONZERO),
    "sigmoid": (sig, uniform(-4, 4)),
    "softplus": (lambda a: np.log1p(np.exp(a)), uniform(-4, 4)),
    "normal_cdf": (np_Phi, uniform(-3, 3)),
    "erf": (lambda a: np.vectorize(math.erf)(np.asarray(a, dtype=float)), uniform(-2, 2)),
    "gelu": (lambda a: a * np_Phi(a), uniform(-3, 3)),
    "silu": (lambda a: a * sig(a), uniform(-4, 4)),
    "log_sigmoid": (lambda a: -np.log1p(np.exp(-a)), uniform(-4, 4)),
    "softsign": (lambda a: a / (1 + np.abs(a)), NONZERO),  # softsign'' jumps at 0
    "leaky_relu": (np_leaky_relu, NONZERO),  # the default slope 0.01
    "elu": (np_elu, NONZERO),                # the default alpha 1.0
}


def _unary_rows() -> list[Row]:
    rows = []
    for name, (ref, dom) in _UNARY.items():
        fn = getattr(md, name)
        rows.append(Row(f"{name}_vec", name, fn, (("x", V),), ref, (dom,)))
        rows.append(Row(f"{name}_mat", name, fn, (("X", R),), ref, (dom,)))
        rows.append(Row(f"{name}_scalar", name, fn, (("a", S),), ref, (dom,)))
    return rows


ROWS: list[Row] = _unary_rows() + [
    # ---- pow: a ** b, constant and variable exponents, broadcasting
    Row("pow_vv", "pow", md.power, (("x", V), ("y", V)), np.power, (POS, FREE)),
    Row("pow_op_vv", "pow", lambda x, y: x ** y, (("x", V), ("y", V)), np.power, (POS, FREE)),
    Row("pow_const3", "pow", lambda x: x ** 3, (("x", V),), lambda x: x ** 3),
    Row("pow_const_neg", "pow", lambda x: x ** -1.5, (("x", V),), lambda x: x ** -1.5, (POS,)),
    Row("pow_const_half", "pow", lambda x: md.power(x, 0.5), (("x", V),), np.sqrt, (POS,)),
    Row("pow_scalar_base", "pow", lambda a, x: a ** x, (("a", S), ("x", V)),
        lambda a, x: a ** x, (POS, FREE)),
    Row("pow_scalar_exp", "pow", lambda x, a: x ** a, (("x", V), ("a", S)),
        lambda x, a: x ** a, (POS, FREE)),
    Row("pow_const_base", "pow", lambda x: 2.0 ** x, (("x", V),), lambda x: 2.0 ** x),
    Row("pow_mat", "pow", lambda X: X ** 2, (("X", R),), lambda X: X ** 2),
    # ---- max / min: element-wise, with broadcasting, and max(0, z) (ReLU)
    Row("max_vv", "max", md.maximum, (("x", V), ("y", V)), np.maximum, joint=gap_pair),
    Row("max_sv", "max", md.maximum, (("a", S), ("x", V)), np.maximum, joint=gap_pair),
    Row("max_vm", "max", md.maximum, (("x", V), ("X", R)), np.maximum, joint=gap_pair),
    Row("max_zero", "max", lambda x: md.maximum(0, x), (("x", V),),
        lambda x: np.maximum(0, x), (NONZERO,)),
    Row("max_zero_right", "max", lambda x: md.maximum(x, 0.0), (("x", V),),
        lambda x: np.maximum(x, 0), (NONZERO,)),
    Row("min_vv", "min", md.minimum, (("x", V), ("y", V)), np.minimum, joint=gap_pair),
    Row("min_sv", "min", md.minimum, (("a", S), ("x", V)), np.minimum, joint=gap_pair),
    Row("min_zero", "min", lambda x: md.minimum(0, x), (("x", V),),
        lambda x: np.minimum(0, x), (NONZERO,)),
    # ---- arithmetic with broadcasting (scalar-vector, vector-matrix)
    Row("add_vv", "add", lambda x, y: x + y, (("x", V), ("y", V)), np.add),
    Row("add_sv", "add", lambda a, x: a + x, (("a", S), ("x", V)), np.add),
    Row("add_vs", "add", lambda x, a: x + a, (("x", V), ("a", S)), np.add),
    Row("add_vm", "add", lambda x, X: x + X, (("x", V), ("X", R)), np.add),
    Row("add_sm", "add", lambda a, X: X + a, (("a", S), ("X", R)), lambda a, X: X + a),
    Row("add_mm", "add", md.add, (("X", R), ("Y", R)), np.add),
    Row("add_const", "add", lambda x: 2.5 + x, (("x", V),), lambda x: 2.5 + x),
    Row("sub_vv", "sub", lambda x, y: x - y, (("x", V), ("y", V)), np.subtract),
    Row("sub_sv", "sub", lambda a, x: a - x, (("a", S), ("x", V)), np.subtract),
    Row("sub_vs", "sub", lambda x, a: x - a, (("x", V), ("a", S)), np.subtract),
    Row("sub_mv", "sub", md.sub, (("X", R), ("x", V)), np.subtract),
    Row("sub_const", "sub", lambda x: 1.0 - x, (("x", V),), lambda x: 1.0 - x),
    Row("mul_vv", "mul", lambda x, y: x * y, (("x", V), ("y", V)), np.multiply),
    Row("mul_sv", "mul", lambda a, x: a * x, (("a", S), ("x", V)), np.multiply),
    Row("mul_vm", "mul", lambda x, X: x * X, (("x", V), ("X", R)), np.multiply),
    Row("mul_mm", "mul", md.mul, (("X", R), ("Y", R)), np.multiply),
    Row("mul_self", "mul", lambda x: x * x, (("x", V),), lambda x: x * x),
    Row("mul_ss", "mul", lambda a, b: a * b, (("a", S), ("b", S)), np.multiply),
    Row("div_vv", "div", lambda x, y: x / y, (("x", V), ("y", V)), np.divide,
        (FREE, NONZERO)),
    Row("div_sv", "div", lambda a, x: a / x, (("a", S), ("x", V)), np.divide,
        (FREE, NONZERO)),
    Row("div_vs", "div", lambda x, a: x / a, (("x", V), ("a", S)), np.divide,
        (FREE, NONZERO)),
    Row("div_mv", "div", md.div, (("X", R), ("x", V)), np.divide, (FREE, NONZERO)),
    Row("div_const", "div", lambda x: 3.0 / x, (("x", V),), lambda x: 3.0 / x, (NONZERO,)),
    Row("neg_vec", "neg", lambda x: -x, (("x", V),), np.negative),
    Row("neg_mat", "neg", md.neg, (("X", R),), np.negative),
    # ---- matrix product, transpose
    Row("matmul_mm", "matmul", lambda X, A: X @ A, (("X", R), ("A", SQ)), np.matmul),
    Row("matmul_mv", "matmul", lambda X, x: X @ x, (("X", R), ("x", V)), np.matmul),
    Row("matmul_vm", "matmul", lambda z, X: z @ X, (("z", W), ("X", R)), np.matmul),
    Row("matmul_vv", "matmul", lambda x, y: x @ y, (("x", V), ("y", V)), np.matmul),
    Row("matmul_fn", "matmul", md.matmul, (("A", SQ), ("B", SQ)), np.matmul),
    Row("transpose_mat", "transpose", md.transpose, (("X", R),), np.transpose),
    Row("transpose_attr", "transpose", lambda X: X.T, (("X", R),), lambda X: X.T),
    Row("transpose_vec", "transpose", md.transpose, (("x", V),), lambda x: x),
    Row("transpose_sq", "transpose", lambda A: A.T @ A, (("A", SQ),), lambda A: A.T @ A),
    # ---- reductions
    Row("sum_vec", "sum", md.sum, (("x", V),), np.sum),
    Row("sum_mat", "sum", md.sum, (("X", R),), np.sum),
    Row("sum_axis0", "sum", lambda X: md.sum(X, axis=0), (("X", R),),
        lambda X: np.sum(X, axis=0)),
    Row("sum_axis1", "sum", lambda X: md.sum(X, axis=1), (("X", R),),
        lambda X: np.sum(X, axis=1)),
    Row("sum_axis_neg", "sum", lambda X: md.sum(X, axis=-1), (("X", R),),
        lambda X: np.sum(X, axis=-1)),
    Row("mean_vec", "mean", md.mean, (("x", V),), np.mean),
    Row("mean_mat", "mean", md.mean, (("X", R),), np.mean),
    Row("mean_axis0", "mean", lambda X: md.mean(X, axis=0), (("X", R),),
        lambda X: np.mean(X, axis=0)),
    Row("mean_axis1", "mean", lambda X: md.mean(X, axis=1), (("X", R),),
        lambda X: np.mean(X, axis=1)),
    Row("norm1_vec", "norm1", md.norm1, (("x", V),), lambda x: np.sum(np.abs(x)), (NONZERO,)),
    Row("norm1_mat", "norm1", md.norm1, (("X", R),), lambda X: np.sum(np.abs(X)), (NONZERO,)),
    Row("norm2_vec", "norm2", md.norm2, (("x", V),), np.linalg.norm, (NONZERO,)),
    Row("norm2_mat", "norm2", md.norm2, (("X", R),), np.linalg.norm, (NONZERO,)),
    Row("logsumexp_vec", "logsumexp", md.logsumexp, (("x", V),), np_logsumexp),
    Row("logsumexp_mat", "logsumexp", md.logsumexp, (("X", R),), np_logsumexp),
    Row("softmax_vec", "softmax", md.softmax, (("x", V),), np_softmax),
    Row("softmax_mat", "softmax", md.softmax, (("X", R),), np_softmax),
    Row("log_softmax_vec", "log_softmax", md.log_softmax, (("x", V),),
        lambda a: a - np_logsumexp(a)[..., None]),
    Row("log_softmax_mat", "log_softmax", md.log_softmax, (("X", R),),
        lambda a: a - np_logsumexp(a)[..., None]),
    # ---- the activations of two arguments: x and the slope (alpha), broadcasting
    Row("leaky_relu_vv", "leaky_relu", md.leaky_relu, (("x", V), ("y", V)), np_leaky_relu,
        (NONZERO, FREE)),
    Row("leaky_relu_vs", "leaky_relu", md.leaky_relu, (("x", V), ("a", S)), np_leaky_relu,
        (NONZERO, FREE)),
    Row("elu_vv", "elu", md.elu, (("x", V), ("y", V)), np_elu, (NONZERO, FREE)),
    Row("elu_mv", "elu", md.elu, (("X", R), ("y", V)), np_elu, (NONZERO, FREE)),
    # ---- products of vectors
    Row("dot_vv", "dot", md.dot, (("x", V), ("y", V)), np.dot),
    Row("dot_sv", "dot", md.dot, (("a", S), ("x", V)), np.dot),
    Row("dot_mv", "dot", md.dot, (("X", R), ("x", V)), np.dot),
    Row("outer", "outer", md.outer, (("x", V), ("z", W)), np.outer),
    Row("outer_self", "outer", lambda x: md.outer(x, x), (("x", V),), lambda x: np.outer(x, x)),
    # ---- linear algebra
    Row("tr", "tr", md.tr, (("A", SQ),), np.trace),
    Row("tr_product", "tr", lambda A, B: md.tr(A @ B), (("A", SQ), ("B", SQ)),
        lambda A, B: np.trace(A @ B)),
    Row("det", "det", md.det, (("A", SQ),), np.linalg.det, (WELL,)),
    Row("det_free", "det", md.det, (("A", SQ),), np.linalg.det, (UNIT,), tol=1e-5),
    Row("logdet", "logdet", md.logdet, (("A", SQ),), lambda A: np.linalg.slogdet(A)[1],
        (WELL,)),
    Row("inv", "inv", md.inv, (("A", SQ),), np.linalg.inv, (WELL,)),
    Row("inv_quadratic", "inv", lambda A, x: x @ md.inv(A) @ x, (("A", SQ), ("x", V)),
        lambda A, x: x @ np.linalg.inv(A) @ x, (WELL, FREE)),
    Row("diag_vec", "diag", md.diag, (("x", V),), np.diag),
    Row("diag_mat", "diag", md.diag, (("A", SQ),), np.diag),
    Row("eye", "eye", lambda a, A: a * md.eye("n") + A, (("a", S), ("A", SQ)),
        lambda a, A: a * np.eye(A.shape[0]) + A),
]

ROW_BY_ID = {r.id: r for r in ROWS}
ARG_CASES = [pytest.param(r, k, id=f"{r.id}-d{name}")
             for r in ROWS for k, (name, _) in enumerate(r.args)]
PAIR_CASES = [pytest.param(r, j, k, id=f"{r.id}-d{r.args[j][0]}d{r.args[k][0]}")
              for r in ROWS for j in range(len(r.args)) for k in range(len(r.args))]


# ============================================================== meta
def test_every_function_of_the_language_has_a_row():
    covered = {r.fn for r in ROWS}
    missing = sorted(set(FUNCTIONS) - covered)
    assert not missing, f"element-wise functions without a spec row: {missing}"
    missing = sorted(set(LANGUAGE) - covered)
    assert not missing, f"language functions without a spec row: {missing}"
    missing = sorted(set(OPERATORS) - covered)
    assert not missing, f"operators without a spec row: {missing}"
    # both directions of diag and broadcasting in each arithmetic operator
    ids = set(ROW_BY_ID)
    assert {"diag_vec", "diag_mat"} <= ids
    for op in ("add", "sub", "mul", "div"):
        shapes = {tuple(len(s) for _, s in r.args) for r in ROWS if r.fn == op}
        assert any(0 in s and 1 in s for s in shapes), f"{op}: no scalar-vector row"


def test_row_ids_are_unique_and_functions_are_real():
    assert len(ROW_BY_ID) == len(ROWS)
    for r in ROWS:
        assert r.fn in FUNCTIONS or r.fn in LANGUAGE or r.fn in OPERATORS, r.id


def test_function_table_domains_are_smooth_intervals():
    # The table's own domains (used by md.check) are open intervals where the
    # function is finite.
    for name, spec in FUNCTIONS.items():
        lo, hi = spec.domain
        assert lo < hi, name
        pts = np.linspace(lo, hi, 7)[1:-1]
        args = [pts] * spec.arity
        with np.errstate(all="raise"):
            assert np.all(np.isfinite(spec.numpy(*args))), name


# ============================================================== value
@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in ROWS])
def test_value_matches_numpy(row: Row):
    f = row.expr()
    vals = row.values()
    got = f.evaluate(vals)
    want = np.asarray(row.ref(*[vals[name] for name, _ in row.args]), dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert max_rel_error(got, want) <= 1e-12, (got, want)
    # the symbolic shape, with dims bound, is the value's shape
    assert tuple(SIZES.get(d, d) for d in f.shape) == want.shape


# ============================================================== first derivative
@pytest.mark.parametrize("row,k", ARG_CASES)
def test_derivative_matches_finite_differences(row: Row, k: int):
    xs = row.variables()
    f = row.build(*xs)
    x = xs[k]
    vals = row.values()
    D = md.derive(f, x)
    assert D.shape == f.shape + x.shape, (D.shape, f.shape, x.shape)
    got = evaluate_dims(D, vals, SIZES)

    def fun(t):
        return f.evaluate({**vals, x.name: t})

    want = fd_jacobian(fun, vals[x.name], eps=1e-6)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = max_rel_error(got, want)
    assert err <= row.tol, f"{row.id} d/d{x.name}: error {err:.3g}\n{got}\n{want}"


# ============================================================== second derivatives
@pytest.mark.parametrize("row,j,k", PAIR_CASES)
def test_second_derivative_matches_finite_differences(row: Row, j: int, k: int):
    """``d/dx_k (d f/dx_j)`` (``md.hessian`` when j == k) against central differences
    of the first derivative ``d f/dx_j`` along ``x_k``."""
    xs = row.variables()
    f = row.build(*xs)
    xj, xk = xs[j], xs[k]
    vals = row.values("hessian")
    G = md.derive(f, xj)
    H = md.hessian(f, xj) if j == k else md.derive(G, xk)
    assert H.shape == f.shape + xj.shape + xk.shape

    def grad(t):
        return evaluate_dims(G, {**vals, xk.name: t}, SIZES)

    got = evaluate_dims(H, vals, SIZES)
    want = fd_jacobian(grad, vals[xk.name], eps=1e-6)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = max_rel_error(got, want)
    assert err <= max(row.tol, 1e-5) * 10, (
        f"{row.id} d²/d{xj.name}d{xk.name}: error {err:.3g}")


def test_hessian_of_a_logsumexp_in_numbers():
    """The Hessian of lse(Ax) + Σ sin(x)x, against its closed form written here:
    Aᵀ(diag(p) − ppᵀ)A with p = softmax(Ax), plus diag(2cos(x) − x sin(x))."""
    x = md.vector("x", "n")
    A = md.matrix("A", "n", "n")
    f = md.logsumexp(A @ x) + md.sum(md.sin(x) * x)
    rng = np.random.default_rng(4)
    x0, A0 = rng.standard_normal(3), rng.standard_normal((3, 3))
    z = A0 @ x0
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    want = A0.T @ (np.diag(p) - np.outer(p, p)) @ A0 + np.diag(2 * np.cos(x0)
                                                             - x0 * np.sin(x0))
    for H in (md.hessian(f, x), md.hessian(f, "x")):
        np.testing.assert_allclose(H.evaluate(x=x0, A=A0), want, rtol=1e-12, atol=1e-12)


# ============================================================== conventions
def _grad_of_sum(fn, v):
    x = md.vector("x", "n")
    return md.derive(md.sum(fn(x)), x).evaluate(x=np.asarray(v, dtype=float))


def test_relu_derivative_at_zero_is_zero():
    np.testing.assert_array_equal(_grad_of_sum(md.relu, [-1.5, 0.0, 2.0]), [0.0, 0.0, 1.0])
    # the paper's ReLU, max(0, z), on both sides
    np.testing.assert_array_equal(_grad_of_sum(lambda x: md.maximum(0, x), [-1.5, 0.0, 2.0]),
                                  [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(_grad_of_sum(lambda x: md.maximum(x, 0), [-1.5, 0.0, 2.0]),
                                  [0.0, 0.0, 1.0])


def test_relu_jacobian_is_diag_of_step():
    x = md.vector("x", "n")
    J = md.derive(md.relu(x), x).evaluate(x=np.array([-1.0, 0.0, 3.0]))
    np.testing.assert_array_equal(J, np.diag([0.0, 0.0, 1.0]))


def test_abs_derivative_at_zero_is_zero():
    np.testing.assert_array_equal(_grad_of_sum(md.abs, [-1.5, 0.0, 2.0]), [-1.0, 0.0, 1.0])
    x = md.vector("x", "n")
    np.testing.assert_array_equal(
        md.derive(md.norm1(x), x).evaluate(x=np.array([0.0, -2.0, 0.5])), [0.0, -1.0, 1.0])


def test_step_and_sign_derivatives_are_zero_everywhere():
    pts = [-1.0, 0.0, 1e-300, 2.0]
    x = md.vector("x", "n")
    for fn in (md.step, md.sign):
        J = evaluate_dims(md.derive(fn(x), x), {"x": np.array(pts)}, {"n": 4})
        np.testing.assert_array_equal(J, np.zeros((4, 4)))
        g = md.derive(md.sum(fn(x)), x)
        np.testing.assert_array_equal(evaluate_dims(g, {"x": np.array(pts)}, {"n": 4}),
                                      np.zeros(4))


def test_step_value_convention():
    x = md.vector("x", "n")
    np.testing.assert_array_equal(md.step(x).evaluate(x=np.array([-1.0, 0.0, 2.0])),
                                  [0.0, 0.0, 1.0])


def test_max_tie_splits_derivative_evenly():
    x, y = md.vector("x", "n"), md.vector("y", "n")
    v = {"x": np.array([1.0, 2.0, -3.0]), "y": np.array([1.0, 0.0, -1.0])}
    f = md.maximum(x, y)
    np.testing.assert_array_equal(md.derive(f, x).evaluate(v), np.diag([0.5, 1.0, 0.0]))
    np.testing.assert_array_equal(md.derive(f, y).evaluate(v), np.diag([0.5, 0.0, 1.0]))
    g = md.minimum(x, y)
    np.testing.assert_array_equal(md.derive(g, x).evaluate(v), np.diag([0.5, 0.0, 1.0]))
    np.testing.assert_array_equal(md.derive(g, y).evaluate(v), np.diag([0.5, 1.0, 0.0]))


def test_max_tie_of_scalars_and_broadcast():
    a, b = md.scalar("a"), md.scalar("b")
    f = md.maximum(a, b)
    assert float(md.derive(f, a).evaluate(a=2.0, b=2.0)) == 0.5
    assert float(md.derive(f, b).evaluate(a=2.0, b=2.0)) == 0.5
    # a scalar against a vector: the scalar's gradient sums its halves and wholes
    x = md.vector("x", "n")
    g = md.sum(md.maximum(a, x))
    assert float(md.derive(g, a).evaluate(a=1.0, x=np.array([1.0, 0.0, 2.0]))) == 1.5
    np.testing.assert_array_equal(md.derive(g, x).evaluate(a=1.0, x=np.array([1.0, 0.0, 2.0])),
                                  [0.5, 0.0, 1.0])
