"""Symmetric, SPD and diagonal variables (issue 12, item 4; MATH.md, "Symmetric (and SPD,
diagonal) variables").

The gradient of a scalar ``f`` by a symmetric ``S`` is the one symmetric ``D`` with
``⟨D, E⟩ = df(S)[E]`` for every symmetric ``E``: ``sym(G) = (G + Gᵀ)/2``, ``G`` the
derivative that treats ``S`` as unconstrained (Srinivasan & Panda 2023).  By a diagonal
``S`` it is ``diag(G) = G ⊙ I``.  Every test here checks that in numbers, by central
differences along structured directions computed here (not by ``md.check``), and
against JAX and PyTorch: the gradient of ``f(P(S))`` with ``P`` the projection onto the
structure, at a structured ``S``, is ``P(G)`` (``P`` is self-adjoint and idempotent).
"""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md
from katex import katex_errors
from matdiff import cli
from matdiff.errors import EvaluationError, ShapeError
from matdiff.expr.core import shape_str

N = 4
STRUCTURES = ("symmetric", "spd", "diagonal")


def project(M: np.ndarray, structure: str) -> np.ndarray:
    """The projection onto the structure's matrices, over the last two axes."""
    if structure == "diagonal":
        return M * np.eye(M.shape[-1])
    return (M + np.swapaxes(M, -1, -2)) / 2


def point(rng: np.random.Generator, structure: str, n: int = N) -> np.ndarray:
    """A structured point where logdet, inv and det are defined (det > 0)."""
    B = rng.standard_normal((n, n))
    if structure == "diagonal":
        return np.diag(rng.uniform(0.5, 2.0, n))
    if structure == "spd":
        return B @ B.T / n + np.eye(n)
    return np.eye(n) + 0.2 * (B + B.T) / 2


def shapes(structure: str) -> dict:
    return {"S": ("n", "n", structure), "A": ("n", "n"), "B": ("n", "n"), "x": ("n",)}


# each case: the text, the same function in NumPy / JAX / PyTorch (xp is the module;
# S and the other values as keyword arguments), and G, its unconstrained gradient
# (textbook formulas: Matrix Cookbook eqs. 100, 81, 57, 61, 49)
CASES = {
    "tr(A @ S)": (lambda xp, S, A, **_: xp.trace(A @ S),
                  lambda S, A, **_: A.T),
    "x @ S @ x": (lambda xp, S, x, **_: x @ S @ x,
                  lambda S, x, **_: np.outer(x, x)),
    "logdet(S)": (lambda xp, S, **_: xp.log(xp.linalg.det(S)),
                  lambda S, **_: np.linalg.inv(S).T),
    "tr(B @ inv(S))": (lambda xp, S, B, **_: xp.trace(B @ xp.linalg.inv(S)),
                       lambda S, B, **_: -(np.linalg.inv(S) @ B @ np.linalg.inv(S)).T),
    "det(S)": (lambda xp, S, **_: xp.linalg.det(S),
               lambda S, **_: np.linalg.det(S) * np.linalg.inv(S).T),
    "sum(A * (S @ S))": (lambda xp, S, A, **_: (A * (S @ S)).sum(),
                         lambda S, A, **_: A @ S.T + S.T @ A),
}


def values(rng: np.random.Generator, structure: str) -> dict[str, np.ndarray]:
    return {"S": point(rng, structure), "A": rng.standard_normal((N, N)),
            "B": rng.standard_normal((N, N)), "x": rng.standard_normal(N)}


def central_difference(f, S: np.ndarray, E: np.ndarray, eps: float = 1e-6) -> float:
    return float((f(S + eps * E) - f(S - eps * E)) / (2 * eps))


def directional_error(D: np.ndarray, f, S: np.ndarray, structure: str,
                      rng: np.random.Generator, k: int = 4) -> float:
    """The worst ``|⟨D, E⟩ − df[E]|`` over ``k`` random structured directions ``E``."""
    worst = 0.0
    for _ in range(k):
        E = project(rng.standard_normal(S.shape), structure)
        worst = max(worst, abs(float(np.sum(D * E)) - central_difference(f, S, E)))
    return worst


@pytest.fixture
def rng():
    return np.random.default_rng(12)


# ====================================================================== the contract
def test_contract_logdet_of_a_symmetric_matrix_is_its_inverse():
    g = md.derive("logdet(S)", "S", shapes={"S": ("n", "n", "symmetric")})
    assert str(g) == "S⁻¹"
    assert md.latex(g) == "S^{-1}"


def test_the_builder_and_the_shape_tag_make_one_variable():
    S = md.matrix("S", "n", "n", symmetric=True)
    assert md.parse("S", shapes={"S": ("n", "n", "symmetric")}) is S
    assert md.var("S", "n", "n", structure="symmetric") is S
    plain = md.matrix("S", "n", "n")
    assert plain is not S and plain.digest != S.digest  # the structure is identity
    assert S.structure == "symmetric" and plain.structure is None
    assert S.shape == ("n", "n") and S.shape_spec == ("n", "n", "symmetric")
    for tag, kw in (("spd", {"spd": True}), ("diagonal", {"diagonal": True})):
        assert md.matrix("S", "n", "n", **kw).structure == tag


def test_transpose_of_a_structured_variable_is_itself():
    A = md.matrix("A", "n", "n")
    for tag in STRUCTURES:
        S = md.var("S", "n", "n", structure=tag)
        assert S.T is S
        assert md.inv(S).T is md.inv(S)             # S⁻ᵀ = S⁻¹ through Sᵀ = S
        assert (S - S.T) is md.zeros_like(S)
        assert md.tr(A @ S) is md.tr(A @ S.T)
    A_plain = md.matrix("S", "n", "n")
    assert A_plain.T is not A_plain                 # no structure, no identity


def test_how_structured_formulas_print():
    sh = shapes("symmetric")
    assert str(md.parse("tr(A @ S)", shapes=sh)) == "tr(AS)"
    assert str(md.parse("A @ S.T", shapes=sh)) == "AS"
    assert str(md.parse("inv(S).T @ A", shapes=sh)) == "S⁻¹A"
    assert str(md.derive("tr(A @ S)", "S", shapes=sh)) == "(A + Aᵀ)/2"
    assert str(md.derive("x @ S @ x", "x", shapes=sh)) == "2Sx"
    assert str(md.derive("x @ S @ x", "S", shapes=sh)) == "xxᵀ"
    assert str(md.derive("logdet(S)", "S", shapes=shapes("diagonal"))) == "diag(diag(S⁻¹))"


def test_printed_gradient_reads_back_as_the_same_expression():
    sh = shapes("symmetric")
    for text in ("logdet(S)", "tr(A @ S)", "x @ S @ x"):
        g = md.derive(text, "S", shapes=sh)
        back = md.parse(str(g), shapes=sh, syntax="unicode")
        assert back is g.body, text


# ====================================================================== in numbers
@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("text", list(CASES))
def test_gradient_is_the_projection_and_matches_central_differences(text, structure, rng):
    fn, G = CASES[text]
    vals = values(rng, structure)
    g = md.derive(text, "S", shapes=shapes(structure))
    D = g.evaluate(vals)
    rest = {k: v for k, v in vals.items() if k != "S"}
    # the projection of the textbook G, and nothing else
    np.testing.assert_allclose(D, project(G(**vals), structure), rtol=1e-9, atol=1e-10)
    # ⟨D, E⟩ = df[E] along structured E
    assert directional_error(D, lambda S: fn(np, S=S, **rest), vals["S"], structure,
                             rng) < 1e-6
    # D lies in the structure's space
    np.testing.assert_allclose(D, project(D, structure), atol=1e-12)


def test_the_unprojected_derivative_would_not_be_in_the_space(rng):
    # a planted wrong answer: G itself is right along symmetric directions (⟨G, E⟩ =
    # ⟨sym G, E⟩) but not symmetric; the handbooks' G + Gᵀ − G ⊙ I is symmetric but
    # wrong along them.  The checks above tell both from sym(G).
    fn, G = CASES["tr(A @ S)"]
    vals = values(rng, "symmetric")
    G0 = G(**vals)
    assert not np.allclose(G0, project(G0, "symmetric"))
    handbook = G0 + G0.T - G0 * np.eye(N)
    rest = {k: v for k, v in vals.items() if k != "S"}
    assert directional_error(handbook, lambda S: fn(np, S=S, **rest), vals["S"],
                             "symmetric", rng) > 1e-2


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("text", list(CASES))
def test_against_jax(text, structure, rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    fn, _ = CASES[text]
    vals = values(rng, structure)
    rest = {k: jnp.asarray(v) for k, v in vals.items() if k != "S"}

    def h(S):  # f(P(S)): its gradient at a structured S is P(G)
        P = S * jnp.eye(N) if structure == "diagonal" else (S + S.T) / 2
        return fn(jnp, S=P, **rest)

    want = np.asarray(jax.grad(h)(jnp.asarray(vals["S"])))
    got = md.derive(text, "S", shapes=shapes(structure)).evaluate(vals)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("text", list(CASES))
def test_against_torch(text, structure, rng):
    torch = pytest.importorskip("torch")
    fn, _ = CASES[text]
    vals = values(rng, structure)
    rest = {k: torch.tensor(v) for k, v in vals.items() if k != "S"}
    S = torch.tensor(vals["S"], requires_grad=True)
    P = S * torch.eye(N, dtype=S.dtype) if structure == "diagonal" else (S + S.T) / 2
    fn(torch, S=P, **rest).backward()
    got = md.derive(text, "S", shapes=shapes(structure)).evaluate(vals)
    np.testing.assert_allclose(got, S.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_compiled_code_gives_the_projected_gradient(backend, structure, rng):
    if backend != "numpy":
        pytest.importorskip(backend)
    sh = shapes(structure)
    f = md.parse("tr(A @ S) + logdet(S) + x @ S @ x", shapes=sh)
    c = md.compile({"f": f, "g": md.derive(f, "S")}, backend=backend)
    vals = values(rng, structure)
    out = c(vals)
    S, A, x = vals["S"], vals["A"], vals["x"]
    G = A.T + np.linalg.inv(S).T + np.outer(x, x)
    np.testing.assert_allclose(np.asarray(out["g"]), project(G, structure), rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(float(out["f"]), np.trace(A @ S) + np.log(np.linalg.det(S))
                               + x @ S @ x, rtol=1e-10)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_jacobian_by_a_structured_variable(structure, rng):
    # ∂(Sx)ᵢ/∂Sₖₗ = δᵢₖ xₗ unconstrained; projected over (k, l)
    sh = {"S": ("n", "n", structure), "x": ("n",)}
    J = md.derive("S @ x", "S", shapes=sh)
    S0, x0 = point(rng, structure), rng.standard_normal(N)
    Jv = J.evaluate(S=S0, x=x0)
    full = np.einsum("ik,l->ikl", np.eye(N), x0)
    np.testing.assert_allclose(Jv, project(full, structure), atol=1e-12)
    for _ in range(3):
        E = project(rng.standard_normal((N, N)), structure)
        np.testing.assert_allclose(np.tensordot(Jv, E, axes=2), E @ x0, atol=1e-12)
    assert md.check("S @ x", "S", shapes=sh).ok


@pytest.mark.parametrize("structure", STRUCTURES)
def test_hessian_by_a_structured_variable(structure, rng):
    sh = {"S": ("n", "n", structure)}
    H = md.hessian("logdet(S)", "S", shapes=sh)
    g = md.derive("logdet(S)", "S", shapes=sh)
    S0 = point(rng, structure)
    Hv = H.evaluate(S=S0)
    assert Hv.shape == (N, N, N, N)
    # H[E] = dg[E] along structured E, and both pairs of axes lie in the space
    for _ in range(3):
        E = project(rng.standard_normal((N, N)), structure)
        eps = 1e-6
        fd = (g.evaluate(S=S0 + eps * E) - g.evaluate(S=S0 - eps * E)) / (2 * eps)
        np.testing.assert_allclose(np.tensordot(Hv, E, axes=2), fd, atol=1e-7)
    np.testing.assert_allclose(Hv, project(Hv, structure), atol=1e-12)
    np.testing.assert_allclose(Hv, project(Hv.transpose(2, 3, 0, 1), structure)
                               .transpose(2, 3, 0, 1), atol=1e-12)
    # the textbook Hessian of log det, d(S⁻¹) = −S⁻¹ dS S⁻¹, projected on both sides
    U = np.linalg.inv(S0)
    full = -np.einsum("ik,lj->ijkl", U, U)  # ∂(S⁻¹)ᵢⱼ/∂Sₖₗ, and ∇ log det = S⁻ᵀ
    full = full.transpose(1, 0, 2, 3)
    both = project(project(full, structure).transpose(2, 3, 0, 1), structure)
    np.testing.assert_allclose(Hv, both.transpose(2, 3, 0, 1), rtol=1e-9, atol=1e-12)


def test_hessian_against_jax(rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    S0 = point(rng, "symmetric")
    A0 = rng.standard_normal((N, N))
    H = md.hessian("tr(A @ inv(S)) + logdet(S)", "S",
                   shapes={"S": ("n", "n", "symmetric"), "A": ("n", "n")})

    def h(S):
        P = (S + S.T) / 2
        return jnp.trace(A0 @ jnp.linalg.inv(P)) + jnp.linalg.slogdet(P)[1]

    want = np.asarray(jax.hessian(h)(jnp.asarray(S0)))
    np.testing.assert_allclose(H.evaluate(S=S0, A=A0), want, rtol=1e-8, atol=1e-10)


# ====================================================================== md.check
def test_check_passes_the_projected_gradient():
    for tag in STRUCTURES:
        assert md.check("logdet(S) + tr(A @ S)", "S", shapes=shapes(tag)).ok


def test_the_handbook_formula_fails_the_check_with_a_hint():
    sh = {"S": ("n", "n", "symmetric")}
    r = md.check("logdet(S)", "S", shapes=sh,
                 derivative="inv(S) + inv(S).T - inv(S) * eye(n)")
    assert not r.ok and r.status == "mismatch"
    assert r.counterexample is not None and r.direction is not None
    np.testing.assert_allclose(r.direction, r.direction.T)  # a symmetric direction
    assert "independent entries" in r.hint and "not a gradient" in r.hint
    assert "sym(G) = (G + Gᵀ)/2" in r.hint
    assert "hint: the claim is G + Gᵀ − G ⊙ I" in str(r)


def test_an_unsymmetric_claim_fails_the_check():
    sh = shapes("symmetric")
    right = md.check("tr(A @ S)", "S", shapes=sh, derivative="(A + A.T)/2")
    assert right.ok
    r = md.check("tr(A @ S)", "S", shapes=sh, derivative="A.T")  # G, not sym(G)
    assert not r.ok and "not symmetric" in r.hint and "sym(G)" in r.hint
    assert "does not have the variable's structure" in str(r)
    r = md.check("x @ S @ x", "S", shapes=shapes("diagonal"), derivative="outer(x, x)")
    assert not r.ok and "diagonal" in r.hint
    assert md.check("x @ S @ x", "S", shapes=shapes("diagonal"),
                    derivative="diag(x * x)").ok


def test_random_points_honour_the_structure():
    for tag in STRUCTURES:
        f = md.parse("logdet(S) + tr(A @ S)", shapes=shapes(tag))
        for seed in range(5):
            S = md.random_values(f, seed)["S"]
            np.testing.assert_allclose(S, project(S, tag), atol=1e-15)
            if tag == "spd":
                assert np.linalg.eigvalsh(S).min() > 0
        r = md.check(f, "S")
        assert r.ok
        for p in r.points:
            np.testing.assert_allclose(p["S"], project(p["S"], tag), atol=1e-15)


def test_check_refuses_a_value_without_the_structure():
    sh = {"S": ("n", "n", "symmetric")}
    with pytest.raises(EvaluationError, match="declared symmetric, but its value is not"):
        md.check("logdet(S)", "S", {"S": np.array([[1.0, 0.5], [0.0, 1.0]])}, shapes=sh)
    with pytest.raises(EvaluationError, match="eigenvalue"):
        md.check("logdet(S)", "S", {"S": -np.eye(2)}, shapes={"S": ("n", "n", "spd")})
    assert md.check("logdet(S)", "S", {"S": np.eye(2)}, shapes=sh).ok


# ====================================================================== printing
def test_shapes_print_the_structure():
    assert shape_str(("n", "n"), "symmetric") == "(n, n) symmetric"
    assert shape_str(("n",)) == "(n,)"


def run_cli(argv):
    import io

    out = io.StringIO()
    return cli.run(argv, out=out), out.getvalue()


def test_cli_shape_tag_end_to_end():
    code, out = run_cli(["logdet(S) + tr(A @ S)", "--wrt", "S", "--shape", "S=n,n,symmetric",
                         "--shape", "A=n,n", "--check"])
    assert code == 0, out
    assert "variables: S (n, n) symmetric, A (n, n)" in out
    assert "∂f/∂S = (A + Aᵀ + 2S⁻¹)/2" in out
    assert "check: OK" in out
    code, out = run_cli(["logdet(S)", "--wrt", "S", "--shape", "S=n,n,spd", "--hessian",
                         "--check"])
    assert code == 0 and "check: OK" in out
    code, out = run_cli(["logdet(S)", "--wrt", "S", "--shape", "S=n,n,symmetric",
                         "--claim", "2*inv(S) - inv(S)*eye(n)"])
    assert code == 1 and "independent entries" in out
    code, out = run_cli(["logdet(S)", "--shape", "S=n,n,diagonal", "--format", "json"])
    assert code == 0 and '"spd"' not in out and '"diagonal"' in out


@pytest.mark.parametrize("shape, words", [
    ("S=m,n,symmetric", "needs a square matrix"),
    ("S=n,symmetric", "needs a square matrix"),
    ("S=n,n,symetric", "did you mean 'symmetric'"),
    ("S=n,n,sym", "did you mean 'symmetric'"),
])
def test_cli_bad_structure_is_a_usage_error(shape, words, capsys):
    code = cli.main(["logdet(S)", "--wrt", "S", "--shape", shape])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err and "S" in err and "Traceback" not in err


# ====================================================================== errors
@pytest.mark.parametrize("spec, words", [
    (("m", "n", "symmetric"), "needs a square matrix, like (n, n), but the shape is (m, n)"),
    (("n", "symmetric"), "but the shape is (n,)"),
    (("n", "n", "symetric"), "unknown structure 'symetric'; did you mean 'symmetric'?"),
    (("n", "n", "diag"), "did you mean 'diagonal'?"),
    (("n", "n", "spd", "spd"), "needs a square matrix"),
])
def test_bad_structure_tags(spec, words):
    with pytest.raises(ShapeError) as err:
        md.parse("sum(S)", shapes={"S": spec})
    assert words in str(err.value) and "'S'" in str(err.value)
    with pytest.raises(ShapeError):
        md.derive("sum(S)", "S", shapes={"S": spec})


def test_bad_structure_in_the_builders():
    with pytest.raises(ShapeError, match="S: the structure 'symmetric' needs a square"):
        md.matrix("S", "m", "n", symmetric=True)
    with pytest.raises(ShapeError, match="one structure, not symmetric and diagonal"):
        md.matrix("S", "n", "n", symmetric=True, diagonal=True)
    with pytest.raises(ShapeError, match="unknown structure 'hermitian'"):
        md.var("S", "n", "n", structure="hermitian")


def test_a_plain_variable_of_the_same_name_means_the_structured_one():
    S = md.matrix("S", "n", "n", symmetric=True)
    A = md.matrix("A", "n", "n")
    f = md.tr(A @ S)
    g = md.derive(f, md.matrix("S", "n", "n"))  # by f's S: never a silent zero
    assert g.body is md.derive(f, S).body and str(g) == "(A + Aᵀ)/2"


# ====================================================================== explain
def test_explain_says_why_the_gradient_is_sym_g():
    sh = shapes("symmetric")
    d = md.explain("logdet(S)", "S", shapes=sh)
    text = str(d)
    assert "sym(G) = (G + Gᵀ)/2" in text
    assert "G + Gᵀ − G ⊙ I" in text and "not a gradient" in text
    assert "independent entries" in text
    assert d.mixed == "S⁻¹"
    zh = str(md.explain("logdet(S)", "S", shapes=sh, lang="zh"))
    assert "sym(G) = (G + Gᵀ)/2" in zh and "不是梯度" in zh and "对称矩阵" in zh
    diag = str(md.explain("logdet(S)", "S", shapes=shapes("diagonal")))
    assert "diag(G) = G ⊙ I" in diag
    spd = str(md.explain("logdet(S)", "S", shapes=shapes("spd")))
    assert "symmetric positive definite" in spd and "SPD changes only the domain" in spd
    plain = str(md.explain("logdet(S)", "S", shapes={"S": ("n", "n")}))
    assert "sym(G)" not in plain


def test_explain_latex_is_valid_katex():
    items = [md.explain("logdet(S) + tr(A @ S)", "S", shapes=shapes(tag), lang=lang)
             .to_latex() for tag in STRUCTURES for lang in ("en", "zh")]
    assert katex_errors(items) == []
