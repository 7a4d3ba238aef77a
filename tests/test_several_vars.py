"""Derivatives by several variables at once (issue 12, item 2).

``md.derive(f, [x, y])`` is the derivative by the concatenation ``z = [vec(x);
vec(y)]`` (MATH.md, "Stacking, indexing and dims arithmetic"; the paper's
``∇f(x, y) = [∂f/∂x, ∂f/∂y]``, section 3): shape ``f.shape + (size(x) + size(y),)``.
Every value here is compared with references that do not come from matdiff: the
derivative written by hand, central differences of a NumPy function, and
``jax.jacobian``/``jax.hessian`` and ``torch.autograd.functional`` of the same function
written in JAX and PyTorch, their parts concatenated along the last axis.  Each
check that should fail is shown to fail on a planted wrong answer.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import matdiff as md
from helpers import assert_close, fd_jacobian
from katex import katex_errors
from matdiff import cli
from matdiff.errors import MatdiffError, UnknownVariableError
from matdiff.expr.core import shape_str

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

SCALARS = {"x": (), "y": ()}
#: the paper's stacked functions (section 3): f(x, y) = 3x²y, g(x, y) = 2x + y⁸
PAPER_J = "[3*x**2*y, 2*x + y**8]"
X, Y = md.scalar("x"), md.scalar("y")
PAPER_J_EXPR = md.stack([3 * X**2 * Y, 2 * X + Y**8])
#: a 2 × 2 Jacobian by [x; y] written without brackets: a, b are constant 2-vectors
J_NO_BRACKETS = "x**2 * y * a + y**3 * b"
J_SHAPES = ["--shape", "x=", "--shape", "y=", "--shape", "a=2", "--shape", "b=2"]


def _paper_jacobian(x: float, y: float) -> np.ndarray:
    """The paper's J = [∇f; ∇g] = [[6yx, 3x²], [2, 8y⁷]], written from the paper."""
    return np.array([[6 * y * x, 3 * x ** 2], [2.0, 8 * y ** 7]])


def _cat(parts, nf: int) -> np.ndarray:
    """Parts ∂f/∂xᵢ (shape F + Xᵢ) joined along the last axis, each flattened: the
    derivative by the concatenation, built from a reference's separate parts."""
    parts = [np.asarray(p, dtype=np.float64) for p in parts]
    return np.concatenate([p.reshape(p.shape[:nf] + (-1,)) for p in parts], axis=nf)


def _fd_by_concatenation(fun, values: list[np.ndarray]) -> np.ndarray:
    """Central differences of ``fun(*values)`` by z = [vec(x); vec(y); …]."""
    shapes = [np.shape(v) for v in values]
    z0 = np.concatenate([np.ravel(v) for v in values])

    def split(z):
        out, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(z[k:k + n].reshape(s))
            k += n
        return out

    return fd_jacobian(lambda z: fun(*split(z)), z0)


# ------------------------------------------------------------------ the contract
def test_the_contract_line_as_written():
    J = md.derive(PAPER_J, ["x", "y"], shapes=SCALARS)
    assert J.shape == (2, 2)
    assert J.body is md.derive(PAPER_J_EXPR, [X, Y]).body
    assert_close(J.evaluate(x=1.5, y=-0.7), _paper_jacobian(1.5, -0.7))


def test_the_contract_example_is_the_papers_two_by_two_jacobian():
    J = md.derive(PAPER_J_EXPR, ["x", "y"])
    assert J.shape == (2, 2)
    for x0, y0 in [(1.5, -0.7), (-0.3, 1.1), (2.0, 0.5)]:
        got = J.evaluate(x=x0, y=y0)
        assert_close(got, _paper_jacobian(x0, y0), what="by hand")
        fd = _fd_by_concatenation(lambda x, y: np.array([3 * x**2 * y, 2 * x + y**8]),
                                  [np.array(x0), np.array(y0)])
        assert_close(got, fd, rtol=1e-6, atol=1e-6, what="central differences")


def test_the_contract_example_against_jax_and_torch():
    J = md.derive(PAPER_J_EXPR, [X, Y])

    def jf(x, y):
        return jnp.stack([3 * x**2 * y, 2 * x + y**8])

    def tf(x, y):
        return torch.stack([3 * x**2 * y, 2 * x + y**8])

    for x0, y0 in [(1.5, -0.7), (0.4, 0.9)]:
        got = J.evaluate(x=x0, y=y0)
        jx, jy = jax.jacobian(jf, argnums=(0, 1))(jnp.float64(x0), jnp.float64(y0))
        assert_close(got, np.stack([np.asarray(jx), np.asarray(jy)], axis=-1), what="jax")
        tx, ty = torch.autograd.functional.jacobian(
            tf, (torch.tensor(x0, dtype=torch.float64), torch.tensor(y0, dtype=torch.float64)))
        assert_close(got, np.stack([tx.numpy(), ty.numpy()], axis=-1), what="torch")


def test_a_planted_wrong_jacobian_differs_from_the_references():
    """The comparison above can fail: the paper's J with ∂g/∂y off by one power."""
    J = md.derive(PAPER_J_EXPR, ["x", "y"])
    wrong = _paper_jacobian(1.5, -0.7)
    wrong[1, 1] = 8 * (-0.7) ** 6
    assert not np.allclose(J.evaluate(x=1.5, y=-0.7), wrong)


def test_the_papers_gradient_of_f_x_y():
    """∇f(x, y) = [∂f/∂x, ∂f/∂y] = [6yx, 3x²] for f = 3x²y (the paper, section 3)."""
    g = md.derive("3*x**2*y", ["x", "y"], shapes=SCALARS)
    assert g.shape == (2,)
    assert_close(g.evaluate(x=2.0, y=-1.5), [6 * -1.5 * 2.0, 3 * 2.0 ** 2])
    assert str(g) == "[6xy, 3x²]"
    assert md.latex(g).replace(" ", "") in (r"\begin{bmatrix}6xy\\3x^{2}\end{bmatrix}",
                                            r"\begin{pmatrix}6xy\\3x^{2}\end{pmatrix}")


def test_the_jacobian_prints_as_a_matrix():
    """J = [∇f; ∇g]: the rows are the gradients of the stacked functions (section 3)."""
    J = md.derive(PAPER_J_EXPR, ["x", "y"])
    assert str(J) == "[[6xy, 3x²], [2, 8y⁷]]"
    tex = md.latex(J)
    assert "bmatrix" in tex or "pmatrix" in tex
    # the rows as printed are the gradients, each by [x; y]
    for row, fk in zip(J.body.children, PAPER_J_EXPR.children):
        assert row is md.derive(fk, [X, Y]).body


def test_the_hessian_of_vectors_prints_its_blocks():
    shapes = {"x": ("n",), "y": ("m",), "B": ("n", "m")}
    H = md.hessian("sum(x * x) * sum(exp(y)) + x @ B @ y", ["x", "y"], shapes=shapes)
    # [[∂²f/∂x², ∂²f/∂x∂y], [∂²f/∂y∂x, ∂²f/∂y²]]
    assert str(H) == ("block([[2sum(exp(y))I, B + 2x exp(y)ᵀ], "
                      "[Bᵀ + 2exp(y)xᵀ, diag(sum(x²)exp(y))]])")


# ------------------------------------------------------------------ the record
def test_the_result_records_the_variables_of_one_order():
    x, y = md.scalar("x"), md.scalar("y")
    f = 3 * x**2 * y
    g = md.derive(f, [x, y])
    assert isinstance(g, md.Derivative)
    assert g.wrt == ((x, y),) and g.order == 1 and g.f_ndim == 0
    assert g.f is md.derive(f, x).f
    H = md.hessian(f, ["x", "y"])
    assert H.wrt == ((x, y), (x, y)) and H.order == 2 and H.shape == (2, 2)
    # names and variables are the same request; a single variable is unchanged
    assert md.derive(f, ["x", y]).body is g.body
    assert md.derive(f, x).wrt == (x,) and md.derive(f, x).shape == ()


def test_the_parts_are_the_separate_derivatives():
    shapes = {"x": ("n",), "y": ("m",), "A": ("n", "n"), "B": ("n", "m")}
    f = "x @ A @ x + x @ B @ sin(y)"
    g = md.derive(f, ["x", "y"], shapes=shapes)
    rng = np.random.default_rng(0)
    vals = {"x": rng.standard_normal(3), "y": rng.standard_normal(2),
            "A": rng.standard_normal((3, 3)), "B": rng.standard_normal((3, 2))}
    parts = [md.derive(f, n, shapes=shapes).evaluate(vals) for n in ("x", "y")]
    assert_close(g.evaluate(vals), np.concatenate(parts))


def test_a_list_of_one_and_a_variable_f_lacks():
    shapes = {"x": ("n",), "y": ()}
    f = "sum(x**2) * y"
    # by [vec(x)]: a vector's part is its derivative; a scalar's is one column
    assert md.derive(f, ["x"], shapes=shapes).body is md.derive(f, "x", shapes=shapes).body
    g = md.derive(f, ["y"], shapes=shapes)
    assert g.shape == (1,) and g.wrt == ((md.scalar("y"),),)
    assert_close(g.evaluate(x=np.array([1.0, 2.0]), y=3.0), [5.0])
    # a variable f does not contain has a zero part of its size
    g = md.derive("sum(x**2)", ["x", "y"], shapes=shapes)
    assert shape_str(g.shape) == "(n + 1,)"
    assert_close(g.evaluate(x=np.array([1.0, 2.0]), y=3.0), [2.0, 4.0, 0.0])


# ------------------------------------------------------------------ vectors
def test_vectors_of_different_dims_give_the_sum_of_the_dims():
    shapes = {"x": ("n",), "y": ("m",), "A": ("k", "n"), "B": ("k", "m")}
    f = "tanh(A @ x) * exp(B @ y)"
    J = md.derive(f, ["x", "y"], shapes=shapes)
    assert shape_str(J.shape) == "(k, m + n)"
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    x0, y0 = rng.standard_normal(3), rng.standard_normal(2)
    got = J.evaluate(x=x0, y=y0, A=A, B=B)
    assert got.shape == (4, 5)
    fd = _fd_by_concatenation(lambda x, y: np.tanh(A @ x) * np.exp(B @ y), [x0, y0])
    assert_close(got, fd, rtol=1e-6, atol=1e-7, what="central differences")
    jx, jy = jax.jacobian(lambda x, y: jnp.tanh(A @ x) * jnp.exp(B @ y),
                          argnums=(0, 1))(x0, y0)
    assert_close(got, _cat([jx, jy], 1), what="jax")


def test_a_scalar_and_a_vector_fold_into_one_gradient():
    """The paper's section 5 folds b into w: the gradient by [w; b] has n + 1 entries."""
    shapes = {"w": ("n",), "x": ("n",), "b": ()}
    g = md.derive("max(0, dot(w, x) + b)", ["w", "b"], shapes=shapes)
    assert shape_str(g.shape) == "(n + 1,)"
    x0, w0 = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.3, 0.2])
    for b0 in (0.7, -3.0):  # the neuron on, then off
        got = g.evaluate(w=w0, x=x0, b=b0)
        on = float(w0 @ x0 + b0 > 0)
        assert_close(got, np.concatenate([on * x0, [on]]), what=f"b = {b0}")


def test_torch_agrees_on_vectors():
    shapes = {"x": ("n",), "y": ("m",)}
    g = md.derive("sum(x**2) * sum(sin(y)) + dot(x, x) ", ["y", "x"], shapes=shapes)
    x0, y0 = np.array([0.3, -1.2, 0.8]), np.array([0.5, 2.0])
    t = [torch.tensor(v, dtype=torch.float64) for v in (y0, x0)]
    gy, gx = torch.autograd.functional.jacobian(
        lambda y, x: (x**2).sum() * torch.sin(y).sum() + x @ x, tuple(t))
    assert shape_str(g.shape) == "(m + n,)"
    # the order of the list is the order of the concatenation: [y; x]
    assert_close(g.evaluate(x=x0, y=y0), np.concatenate([gy.numpy(), gx.numpy()]))


# ------------------------------------------------------------------ Hessians
def test_the_hessian_has_the_cross_terms():
    f = "x**2 * y**3 + sin(x * y)"
    H = md.hessian(f, ["x", "y"], shapes=SCALARS)
    assert H.shape == (2, 2)

    def jf(x, y):
        return x**2 * y**3 + jnp.sin(x * y)

    grad = md.derive(f, ["x", "y"], shapes=SCALARS)
    for x0, y0 in [(0.7, -1.3), (1.1, 0.4)]:
        got = H.evaluate(x=x0, y=y0)
        s, c = np.sin(x0 * y0), np.cos(x0 * y0)
        by_hand = np.array([[2 * y0**3 - y0**2 * s, 6 * x0 * y0**2 + c - x0 * y0 * s],
                            [6 * x0 * y0**2 + c - x0 * y0 * s, 6 * x0**2 * y0 - x0**2 * s]])
        assert_close(got, by_hand, what="by hand")
        hs = jax.hessian(jf, argnums=(0, 1))(jnp.float64(x0), jnp.float64(y0))
        assert_close(got, np.array([[hs[0][0], hs[0][1]], [hs[1][0], hs[1][1]]]),
                     what="jax")
        fd = _fd_by_concatenation(lambda x, y: grad.evaluate(x=x, y=y),
                                  [np.array(x0), np.array(y0)])
        assert_close(got, fd, rtol=1e-6, atol=1e-6, what="central differences")
    # the blocks are the Hessians by each and the mixed derivative
    assert_close(H.evaluate(x=0.7, y=-1.3)[0, 0],
                 md.hessian(f, "x", shapes=SCALARS).evaluate(x=0.7, y=-1.3))


def test_the_hessian_of_stacked_functions_against_jax():
    H = md.hessian(PAPER_J_EXPR, [X, Y])
    assert H.shape == (2, 2, 2)

    def jf(x, y):
        return jnp.stack([3 * x**2 * y, 2 * x + y**8])

    hs = jax.hessian(jf, argnums=(0, 1))(jnp.float64(0.8), jnp.float64(-1.2))
    ref = np.stack([np.stack([np.asarray(hs[i][j]) for j in range(2)], axis=-1)
                    for i in range(2)], axis=-2)
    assert_close(H.evaluate(x=0.8, y=-1.2), ref, what="jax")


def test_the_hessian_of_vectors_against_jax():
    shapes = {"x": ("n",), "y": ("m",), "B": ("n", "m")}
    f = "sum(x * x) * sum(exp(y)) + x @ B @ y"
    H = md.hessian(f, ["x", "y"], shapes=shapes)
    assert shape_str(H.shape) == "(m + n, m + n)"
    rng = np.random.default_rng(2)
    B, x0, y0 = rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal(2)
    got = H.evaluate(x=x0, y=y0, B=B)
    hs = jax.hessian(lambda x, y: jnp.sum(x * x) * jnp.sum(jnp.exp(y)) + x @ B @ y,
                     argnums=(0, 1))(x0, y0)
    ref = np.block([[np.asarray(hs[0][0]), np.asarray(hs[0][1])],
                    [np.asarray(hs[1][0]), np.asarray(hs[1][1])]])
    assert_close(got, ref, what="jax")
    assert_close(got, got.T, what="symmetric")


# ------------------------------------------------------------------ check
def test_check_moves_every_variable_at_once():
    r = md.check("x**2 * y**3 + sin(x * y)", ["x", "y"], shapes=SCALARS)
    assert r.ok and r.status == "ok"
    assert r.direction is None and len(r.points) >= 3
    shapes = {"x": ("n",), "y": ("m",), "B": ("n", "m")}
    r = md.check("sum(x * x) * sum(exp(y)) + x @ B @ y", ["x", "y"], shapes=shapes)
    assert r.ok


def test_a_planted_wrong_cross_term_fails_the_check():
    """The Hessian of x²y³ by [x; y], its mixed entry 6xy² planted as 3xy²: the check
    along directions of z = [x; y] (both variables moving) finds it."""
    g = md.derive("x**2 * y**3", ["x", "y"], shapes=SCALARS)
    x, y = md.scalar("x"), md.scalar("y")
    right = md.stack([md.stack([2 * y**3, 6 * x * y**2]),
                      md.stack([6 * x * y**2, 6 * x**2 * y])])
    wrong = md.stack([md.stack([2 * y**3, 3 * x * y**2]),
                      md.stack([3 * x * y**2, 6 * x**2 * y])])
    assert md.check(g, ["x", "y"], derivative=right).ok
    r = md.check(g, ["x", "y"], derivative=wrong)
    assert not r.ok and r.status == "mismatch"
    assert r.direction is not None and r.direction.shape == (2,)


def test_a_claim_in_text_by_several_variables():
    """The paper's ∇f(x, y) = [6yx, 3x²] for f = 3x²y as a person types it; planted:
    the factor 3 of ∂f/∂y left out."""
    assert md.check("3*x**2*y", ["x", "y"], shapes=SCALARS, derivative="[6*y*x, 3*x**2]").ok
    r = md.check("3*x**2*y", ["x", "y"], shapes=SCALARS, derivative="[6*y*x, x**2]")
    assert not r.ok and r.status == "mismatch"


def test_a_claim_of_the_wrong_shape_names_the_variables():
    r = md.check("x * y", ["x", "y"], shapes=SCALARS, derivative="y")
    assert not r.ok and "[x, y]" in r.hint and "(2,)" in r.hint


# ------------------------------------------------------------------ compile
@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_compiled_on_every_backend(backend):
    shapes = {"x": ("n",), "y": ("m",), "B": ("n", "m")}
    f = "sum(x * x) * sum(exp(y)) + x @ B @ y"
    g = md.derive(f, ["x", "y"], shapes=shapes)
    H = md.hessian(f, ["x", "y"], shapes=shapes)
    fn = md.compile({"g": g, "H": H}, backend=backend)
    rng = np.random.default_rng(3)
    vals = {"x": rng.standard_normal(3), "y": rng.standard_normal(2),
            "B": rng.standard_normal((3, 2))}
    out = fn(**vals)
    assert_close(np.asarray(out["g"]), g.evaluate(vals), what=backend)
    assert_close(np.asarray(out["H"]), H.evaluate(vals), what=backend)


# ------------------------------------------------------------------ bad input
def test_an_unknown_variable_in_the_list_names_the_near_one():
    with pytest.raises(UnknownVariableError, match="did you mean y"):
        md.derive("x * yy + y", ["x", "yz"], shapes={"x": (), "y": (), "yy": ()})


def test_a_variable_twice_in_the_list():
    with pytest.raises(MatdiffError, match="'x' appears twice"):
        md.derive("x * y", ["x", "y", "x"], shapes=SCALARS)


def test_an_empty_or_nested_list():
    with pytest.raises(MatdiffError, match="empty"):
        md.derive("x * y", [], shapes=SCALARS)
    with pytest.raises(MatdiffError, match="flat list"):
        md.derive("x * y", ["x", ["y"]], shapes=SCALARS)




def test_explain_takes_one_variable_and_says_so():
    with pytest.raises(MatdiffError, match="one variable"):
        md.explain("x * y", ["x", "y"], shapes=SCALARS)
    g = md.derive("x * y", ["x", "y"], shapes=SCALARS)
    with pytest.raises(MatdiffError, match="x, y at once"):
        g.explain()


# ------------------------------------------------------------------ the command
def _run(argv):
    out = io.StringIO()
    code = cli.run(argv, out=out)
    return code, out.getvalue()


def test_the_command_derives_by_several_at_once():
    code, out = _run([J_NO_BRACKETS, "--wrt", "x,y", *J_SHAPES, "--check"])
    assert code == 0
    assert "∂f/∂(x, y) = " in out and "shape (2, 2)" in out
    assert "check: OK" in out
    code, out = _run(["3*x**2*y", "--wrt", "x,y", "--shape", "x=", "--shape", "y="])
    assert code == 0 and "∂f/∂(x, y) = [6xy, 3x²]    shape (2,)" in out


def test_the_command_as_json():
    code, out = _run([J_NO_BRACKETS, "--wrt", "x, y", *J_SHAPES, "--format", "json"])
    assert code == 0
    doc = json.loads(out)
    (d,) = doc["derivatives"]
    assert d["wrt"] == "x,y" and d["order"] == 1 and d["shape"] == [2, 2]
    assert [p["wrt"] for p in d["parts"]] == ["x", "y"]
    assert [p["shape"] for p in d["parts"]] == [[], []]


def test_the_command_on_the_papers_jacobian():
    code, out = _run([PAPER_J, "--wrt", "x,y", "--shape", "x=", "--shape", "y=",
                      "--format", "json"])
    assert code == 0
    (d,) = json.loads(out)["derivatives"]
    assert d["shape"] == [2, 2] and "matrix" in d["latex"]


def test_the_command_in_latex_and_markdown():
    argv = ["3*x**2*y", "--wrt", "x,y", "--shape", "x=", "--shape", "y="]
    code, out = _run(argv + ["--format", "latex"])
    assert code == 0
    assert (r"\frac{\partial f}{\partial \left(x, y\right)} &= "
            r"\begin{bmatrix} 6 x y \\ 3 x^{2} \end{bmatrix}") in out
    code, out = _run(argv + ["--format", "markdown", "--check"])
    assert code == 0 and "- check of ∂f/∂(x, y): `OK" in out


def test_the_latex_renders_in_katex():
    shapes = {"x": ("n",), "y": ("m",), "B": ("n", "m")}
    f = "sum(x * x) * sum(exp(y)) + x @ B @ y"
    items = [md.latex(md.derive(PAPER_J_EXPR, [X, Y])),
             md.latex(md.derive(3 * X**2 * Y, [X, Y]), layout="numerator"),
             md.latex(md.hessian("x**2 * y**3 + sin(x * y)", ["x", "y"], shapes=SCALARS)),
             md.latex(md.derive(f, ["x", "y"], shapes=shapes)),
             md.latex(md.hessian(f, ["x", "y"], shapes=shapes))]
    code, out = _run([PAPER_J, "--wrt", "x,y", "--shape", "x=", "--shape", "y=",
                      "--hessian", "--format", "latex"])
    assert code == 0
    items.append(out)
    assert katex_errors(items) == []


def test_the_command_gives_the_whole_hessian():
    argv = ["x**2 * y**3 + sin(x * y)", "--wrt", "x,y", "--shape", "x=", "--shape", "y=",
            "--hessian"]
    code, out = _run(argv + ["--check"])
    assert code == 0
    assert "∂²f/∂(x, y)² = " in out and "shape (2, 2)" in out and "check: OK" in out
    code, out = _run(argv + ["--format", "json"])
    (d,) = json.loads(out)["derivatives"]
    assert d["order"] == 2 and d["shape"] == [2, 2] and d["wrt"] == "x,y"
    code, out = _run(["sum(x * x) * sum(exp(y))", "--wrt", "x,y", "--shape", "x=n",
                      "--shape", "y=m", "--hessian", "--format", "json"])
    (d,) = json.loads(out)["derivatives"]
    assert d["shape"] == ["m + n", "m + n"]


def test_a_repeated_wrt_stays_one_derivative_each():
    argv = [J_NO_BRACKETS, "--wrt", "x", "--wrt", "y", *J_SHAPES, "--format", "json"]
    code, out = _run(argv)
    assert code == 0
    ds = json.loads(out)["derivatives"]
    assert [(d["wrt"], d["shape"]) for d in ds] == [("x", [2]), ("y", [2])]
    assert all("parts" not in d for d in ds)


def test_the_command_explains_each_part():
    code, out = _run(["3*x**2*y", "--wrt", "x,y", "--shape", "x=", "--shape", "y=",
                      "--explain"])
    assert code == 0
    assert "with respect to x" in out and "with respect to y" in out


def test_the_command_refuses_bad_lists(capsys):
    for wrt, words in [("x,x", "appears twice"), ("x,", "an empty name"),
                       ("x,yz", "did you mean y")]:
        code = cli.main(["x * y + yy", "--wrt", wrt, "--shape", "x=", "--shape", "y=",
                         "--shape", "yy="])
        err = capsys.readouterr().err
        assert code == 2 and words in err and "Traceback" not in err, (wrt, err)
    code = cli.main(["x * y", "--wrt", "x,y", "--claim", "y"])
    assert code == 2 and "one variable" in capsys.readouterr().err


# ------------------------------------------------------------------ matrices, by vec
#: a scalar of a matrix and a vector, and a vector-valued one (Jacobian by [X, y])
MAT = {"X": ("m", "n"), "y": ("n",), "A": ("n", "m")}
MAT_F = "sum(exp(X @ y)) + tr(A @ X) * (y @ y)"
MAT_J = "exp(X @ y) * sum(y)"


def _jf_scalar(A):
    return lambda X, y: jnp.sum(jnp.exp(X @ y)) + jnp.trace(A @ X) * (y @ y)


def _jf_vector(X, y):
    return jnp.exp(X @ y) * jnp.sum(y)


def _mat_values(seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"X": 0.5 * rng.standard_normal((2, 3)), "y": rng.standard_normal(3),
            "A": rng.standard_normal((3, 2))}


def _vec(a: np.ndarray, nf: int = 0) -> np.ndarray:
    """vec over the last two axes (the columns stacked): a[..., i, j] at i + m·j."""
    a = np.asarray(a, dtype=np.float64)
    return np.swapaxes(a, -1, -2).reshape(a.shape[:-2] + (-1,))


def _fd_by_vec(fun, values: list[np.ndarray]) -> np.ndarray:
    """Central differences of ``fun(*values)`` by z = [vec(X); y] (column-major for a
    matrix, written here apart from matdiff)."""
    shapes = [np.shape(v) for v in values]
    z0 = np.concatenate([np.ravel(v, order="F") for v in values])

    def split(z):
        out, k = [], 0
        for sh in shapes:
            n = int(np.prod(sh))
            out.append(z[k:k + n].reshape(sh, order="F"))
            k += n
        return out

    return fd_jacobian(lambda z: fun(*split(z)), z0)


def _jax_hessian_by_vec(fun, X0, y0) -> np.ndarray:
    """jax.hessian over (X, y), each block's X axes flattened column-major, in the
    order [vec(X); y] on both sides."""
    h = jax.hessian(fun, argnums=(0, 1))(jnp.asarray(X0), jnp.asarray(y0))
    m, n = X0.shape
    XX = np.asarray(h[0][0]).transpose(1, 0, 3, 2).reshape(m * n, m * n)
    Xy = np.asarray(h[0][1]).transpose(1, 0, 2).reshape(m * n, -1)
    yX = np.asarray(h[1][0]).transpose(0, 2, 1).reshape(-1, m * n)
    return np.block([[XX, Xy], [yX, np.asarray(h[1][1])]])


def test_a_matrix_and_a_vector_by_vec():
    """∇f by [X, y] is [vec(∇_X f); ∇_y f]: the shape m·n + n, the parts the separate
    derivatives (vec of the matrix one), central differences by [vec(X); y] and
    jax.grad over (X, y) flattened in that order."""
    g = md.derive(MAT_F, ["X", "y"], shapes=MAT)
    assert shape_str(g.shape) in ("(m·n + n,)", "(n + m·n,)")
    v = _mat_values()
    got = g.evaluate(v)
    assert got.shape == (2 * 3 + 3,)
    gX = md.derive(MAT_F, "X", shapes=MAT).evaluate(v)
    gy = md.derive(MAT_F, "y", shapes=MAT).evaluate(v)
    assert_close(got, np.concatenate([_vec(gX), gy]), what="the parts")
    jf = _jf_scalar(v["A"])
    fd = _fd_by_vec(lambda X, y: float(jf(X, y)), [v["X"], v["y"]])
    assert_close(got, fd, rtol=1e-6, atol=1e-6, what="central differences")
    jX, jy = jax.grad(jf, argnums=(0, 1))(jnp.asarray(v["X"]), jnp.asarray(v["y"]))
    assert_close(got, np.concatenate([np.ravel(np.asarray(jX), order="F"),
                                      np.asarray(jy)]), what="jax")
    # printed as the concatenation of vec(∇_X f) and ∇_y f
    assert str(g).startswith("concat(vec(") and "vec" in md.latex(g)


def test_a_row_major_flattening_is_a_different_vector():
    """Planted: the matrix part flattened row by row (not vec) fails the comparison
    above, so the order of the coordinates is tested."""
    g = md.derive(MAT_F, ["X", "y"], shapes=MAT)
    v = _mat_values()
    gX = md.derive(MAT_F, "X", shapes=MAT).evaluate(v)
    wrong = np.concatenate([np.ravel(gX), v["y"] * 0 + g.evaluate(v)[6:]])
    with pytest.raises(AssertionError):
        assert_close(g.evaluate(v), wrong)


def test_the_jacobian_of_a_vector_by_a_matrix_and_a_vector():
    J = md.derive(MAT_J, ["X", "y"], shapes=MAT)
    assert J.shape[0] == "m"
    v = _mat_values(6)
    got = J.evaluate(v)
    assert got.shape == (2, 9)
    jX, jy = jax.jacobian(_jf_vector, argnums=(0, 1))(jnp.asarray(v["X"]),
                                                      jnp.asarray(v["y"]))
    assert_close(got, np.concatenate([_vec(np.asarray(jX)), np.asarray(jy)], axis=-1),
                 what="jax")
    fd = _fd_by_vec(lambda X, y: np.exp(X @ y) * np.sum(y), [v["X"], v["y"]])
    assert_close(got, fd, rtol=1e-6, atol=1e-6, what="central differences")


def test_the_hessian_by_a_matrix_and_a_vector_has_the_cross_terms():
    H = md.hessian(MAT_F, ["X", "y"], shapes=MAT)
    v = _mat_values(7)
    got = H.evaluate(v)
    assert got.shape == (9, 9)
    ref = _jax_hessian_by_vec(_jf_scalar(v["A"]), v["X"], v["y"])
    assert_close(got, ref, what="jax")
    assert_close(got, got.T, what="symmetric")
    g = md.derive(MAT_F, ["X", "y"], shapes=MAT)
    fd = _fd_by_vec(lambda X, y: g.evaluate({**v, "X": X, "y": y}), [v["X"], v["y"]])
    assert_close(got, fd, rtol=1e-6, atol=1e-6, what="central differences")
    # the X-X block is the Hessian by X alone, vec'd on both sides
    HX = md.hessian(MAT_F, "X", shapes=MAT).evaluate(v)
    assert_close(got[:6, :6], HX.transpose(1, 0, 3, 2).reshape(6, 6))


def test_a_planted_wrong_cross_term_by_a_matrix_fails():
    """The JAX reference with its X-y block flattened row-major differs, so the
    comparison of the cross terms can fail."""
    H = md.hessian(MAT_F, ["X", "y"], shapes=MAT)
    v = _mat_values(7)
    ref = _jax_hessian_by_vec(_jf_scalar(v["A"]), v["X"], v["y"])
    h = jax.hessian(_jf_scalar(v["A"]), argnums=(0, 1))(jnp.asarray(v["X"]),
                                                      jnp.asarray(v["y"]))
    ref[:6, 6:] = np.asarray(h[0][1]).reshape(6, 3)
    with pytest.raises(AssertionError):
        assert_close(H.evaluate(v), ref)


def test_a_symmetric_matrix_in_the_list_keeps_its_projection():
    shapes = {"S": ("n", "n", "symmetric"), "A": ("n", "n"), "y": ("n",)}
    f = "tr(A @ S) + y @ S @ y"
    g = md.derive(f, ["S", "y"], shapes=shapes)
    rng = np.random.default_rng(8)
    S0 = rng.standard_normal((3, 3))
    v = {"S": S0 + S0.T, "A": rng.standard_normal((3, 3)), "y": rng.standard_normal(3)}
    gS = md.derive(f, "S", shapes=shapes).evaluate(v)
    assert_close(gS, gS.T, what="sym(G)")
    assert_close(g.evaluate(v)[:9], _vec(gS))


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_matrices_by_vec_compile_on_every_backend(backend):
    g = md.derive(MAT_F, ["X", "y"], shapes=MAT)
    H = md.hessian(MAT_F, ["X", "y"], shapes=MAT)
    J = md.derive(MAT_J, ["X", "y"], shapes=MAT)
    fn = md.compile({"g": g, "H": H, "J": J}, backend=backend)
    v = _mat_values(9)
    out = fn(**v)
    for k, e in (("g", g), ("H", H), ("J", J)):
        got = out[k].detach().numpy() if hasattr(out[k], "detach") else np.asarray(out[k])
        assert_close(got, e.evaluate(v), what=f"{backend} {k}")


def test_check_by_a_matrix_and_a_vector():
    assert md.check(MAT_F, ["X", "y"], shapes=MAT).ok
    g = md.derive(MAT_F, ["X", "y"], shapes=MAT)
    assert md.check(g, ["X", "y"]).ok


def test_the_command_by_a_matrix_and_a_vector():
    shapes = ["--shape", "X=m,n", "--shape", "y=n", "--shape", "A=n,m"]
    code, out = _run([MAT_F, "--wrt", "X,y", *shapes, "--check"])
    assert code == 0, out
    assert "∂f/∂(X, y) = concat(vec(" in out and "check: OK" in out
    code, out = _run([MAT_F, "--hessian", "--wrt", "X,y", *shapes, "--check",
                      "--format", "json"])
    assert code == 0, out
    (d,) = json.loads(out)["derivatives"]
    assert d["order"] == 2 and d["wrt"] == "X,y" and len(d["shape"]) == 2
    assert d["shape"][0] == d["shape"][1] and "m·n" in d["shape"][0]
    assert [p["wrt"] for p in d.get("parts", [])] in ([], ["X", "y"])
