"""The vec layout (issue 12, item 6; MATH.md "Kronecker and vec"): a derivative of a
matrix by a matrix (or of a vector by a matrix, a matrix by a vector) printed as
``∂vec(F)/∂vec(X)ᵀ`` with ``⊗``, ``I`` and the commutation matrix ``K``.

Every printed formula is checked in numbers three ways: the formula as printed,
written here by hand in NumPy (``np.kron``, a commutation matrix built here); the
matrix-form tree the printer printed, evaluated by the rules of matrix algebra
(:func:`matdiff.render.mform.to_numpy`); and JAX's jacobian of the function, all
against the derivative reshaped column-major, ``D[i, j, k, l] → M[i + m·j, k + p·l]``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matdiff as md
from helpers import jax_backend, to_backend, well_conditioned
from katex import katex_errors
from matdiff import cli
from matdiff.expr.dims import dim_mul
from matdiff.render import layout_note, matrix_form, to_latex
from matdiff.render.layout import ChoiceError, layout_shape, vec_layout
from matdiff.render.matrixcalculus import to_matrixcalculus
from matdiff.render.mform import to_numpy
from matdiff.render.mform.kron import KronForms

SIZES = {"m": 2, "n": 3, "p": 4, "q": 5}


def vec_matrix(D: np.ndarray, f_ndim: int) -> np.ndarray:
    """``D`` (F's axes, then X's) as ``∂vec(F)/∂vec(X)ᵀ``: vec is column-major, so
    the row of ``F[i, j]`` is ``i + m·j`` and the column of ``X[k, l]`` is
    ``k + p·l`` (Fortran order), written out index by index."""
    fs, xs = D.shape[:f_ndim], D.shape[f_ndim:]
    rows, cols = int(np.prod(fs)), int(np.prod(xs))
    M = np.zeros((rows, cols))
    for idx in np.ndindex(*D.shape):
        f_idx, x_idx = idx[:f_ndim], idx[f_ndim:]
        r = f_idx[0] + (fs[0] * f_idx[1] if f_ndim == 2 else 0)
        c = x_idx[0] + (xs[0] * x_idx[1] if len(xs) == 2 else 0)
        M[r, c] = D[idx]
    return M


def commutation(p: int, q: int) -> np.ndarray:
    """``K`` with ``vec(Xᵀ) = K vec(X)`` for ``X`` of shape ``(p, q)``, by its
    definition: column ``i + p·j`` (``X[i, j]`` in vec(X)) is row ``j + q·i``
    (``Xᵀ[j, i]`` in vec(Xᵀ))."""
    K = np.zeros((p * q, p * q))
    for i in range(p):
        for j in range(q):
            K[j + q * i, i + p * j] = 1.0
    return K


def values_for(f: md.Expr, rng: np.random.Generator) -> dict:
    vals = {}
    for name, shape in f.variables().items():
        dims = [SIZES[d] if isinstance(d, str) else d for d in shape]
        if len(dims) == 2 and dims[0] == dims[1]:
            vals[name] = well_conditioned(rng, dims[0], 0.4)
        else:
            vals[name] = rng.standard_normal(dims)
    return vals


def jax_vec(f: md.Expr, wrt: str, vals: dict, f_ndim: int) -> np.ndarray:
    """JAX's jacobian of ``f`` by ``wrt`` (an evaluator of the core nodes written in
    the tests, differentiated by JAX), reshaped as the vec layout reads it."""
    import jax

    fun = to_backend(f, jax_backend(), SIZES)
    J = jax.jacobian(lambda v: fun({**vals, wrt: v}))(vals[wrt])
    return vec_matrix(np.asarray(J), f_ndim)


def I(n):  # noqa: E743 - the identity, as the formulas write it
    return np.eye(n)


inv = np.linalg.inv
M_, N_, P_, Q_ = (SIZES[d] for d in "mnpq")
RECT = {"A": ("m", "p"), "X": ("p", "q"), "B": ("q", "n"), "a": ("q",), "x": ("p",),
        "C": ("q", "p"), "b": ("n",)}
SQUARE = {"X": ("p", "p"), "A": ("p", "p")}

#: (expression, variable, shapes, the printout, the printout written by hand in NumPy)
EXAMPLES = [
    ("A @ X @ B", "X", RECT, "Bᵀ ⊗ A", lambda v: np.kron(v["B"].T, v["A"])),
    ("inv(X)", "X", SQUARE, "−X⁻ᵀ ⊗ X⁻¹", lambda v: -np.kron(inv(v["X"]).T, inv(v["X"]))),
    ("X.T @ X", "X", SQUARE, "(I ⊗ Xᵀ) + (Xᵀ ⊗ I)K",
     lambda v: np.kron(I(P_), v["X"].T) + np.kron(v["X"].T, I(P_)) @ commutation(P_, P_)),
    ("X", "X", RECT, "I", lambda v: I(P_ * Q_)),
    ("X.T", "X", RECT, "K", lambda v: commutation(P_, Q_)),
    ("X @ a", "X", RECT, "aᵀ ⊗ I", lambda v: np.kron(v["a"][None, :], I(P_))),
    ("A @ X", "X", RECT, "I ⊗ A", lambda v: np.kron(I(Q_), v["A"])),
    ("X @ B", "X", RECT, "Bᵀ ⊗ I", lambda v: np.kron(v["B"].T, I(P_))),
    ("X.T @ C.T", "X", RECT, "(C ⊗ I)K",
     lambda v: np.kron(v["C"], I(Q_)) @ commutation(P_, Q_)),
    ("X @ X", "X", SQUARE, "(I ⊗ X) + (Xᵀ ⊗ I)",
     lambda v: np.kron(I(P_), v["X"]) + np.kron(v["X"].T, I(P_))),
    ("exp(X)", "X", RECT, "diag(vec(exp(X)))",
     lambda v: np.diag(np.exp(v["X"]).reshape(-1, order="F"))),
    ("sum(X) * X", "X", RECT, "sum(X)I + vec(X)𝟏ᵀ",
     lambda v: v["X"].sum() * I(P_ * Q_)
     + np.outer(v["X"].reshape(-1, order="F"), np.ones(P_ * Q_))),
    # vec(A)vec(I)ᵀ: d(tr(X)A) = A tr(dX) = A vec(I)ᵀvec(dX)
    ("tr(X) * A", "X", {"X": ("p", "p"), "A": ("m", "n")}, "vec(A)vec(I)ᵀ",
     lambda v: np.outer(v["A"].reshape(-1, order="F"), I(P_).reshape(-1, order="F"))),
    # d(X exp(X)) = dX exp(X) + X (exp(X) ⊙ dX): a Kronecker product, then a diagonal
    ("X @ exp(X)", "X", SQUARE, "(exp(X)ᵀ ⊗ I) + (I ⊗ X)diag(vec(exp(X)))",
     lambda v: np.kron(np.exp(v["X"]).T, I(P_))
     + np.kron(I(P_), v["X"]) @ np.diag(np.exp(v["X"]).reshape(-1, order="F"))),
    # d(X ⊙ AX) = dX ⊙ AX + X ⊙ A dX: δᵢₖ Xᵢⱼ … is read with Xₖⱼ for Xᵢⱼ
    ("X * (A @ X)", "X", SQUARE, "diag(vec(AX)) + diag(vec(X))(I ⊗ A)",
     lambda v: np.diag((v["A"] @ v["X"]).reshape(-1, order="F"))
     + np.diag(v["X"].reshape(-1, order="F")) @ np.kron(I(P_), v["A"])),
    # a product with a sum of tensors inside, expanded: d(XaaᵀXᵀ) = dX aaᵀXᵀ + Xaaᵀ dXᵀ
    ("outer(X @ a, X @ a)", "X", RECT, "(Xaaᵀ ⊗ I) + (I ⊗ Xaaᵀ)K",
     lambda v: np.kron(v["X"] @ np.outer(v["a"], v["a"]), I(P_))
     + np.kron(I(P_), v["X"] @ np.outer(v["a"], v["a"])) @ commutation(P_, Q_)),
    # a vector by a matrix, scaled by an element-wise derivative: m × (p·q)
    ("(X * X) @ a", "X", RECT, "2(aᵀ ⊗ I)diag(vec(X))",
     lambda v: 2 * np.kron(v["a"][None, :], I(P_)) @ np.diag(v["X"].reshape(-1, order="F"))),
    ("exp(X) @ a", "X", RECT, "(aᵀ ⊗ I)diag(vec(exp(X)))",
     lambda v: np.kron(v["a"][None, :], I(P_))
     @ np.diag(np.exp(v["X"]).reshape(-1, order="F"))),
    # a matrix by a vector: (m·n) × p
    ("exp(outer(x, b))", "x", RECT, "diag(vec(exp(xbᵀ)))(b ⊗ I)",
     lambda v: np.diag(np.exp(np.outer(v["x"], v["b"])).reshape(-1, order="F"))
     @ np.kron(v["b"][:, None], I(P_))),
    ("outer(A @ x, b)", "x", RECT, "b ⊗ A", lambda v: np.kron(v["b"][:, None], v["A"])),
]
IDS = [e[0] for e in EXAMPLES]


def check_example(expr, wrt, shapes, hand, seed=0):
    """The derivative in the vec layout: its tree and the hand-written formula,
    against the stored derivative reshaped column-major; returns the three."""
    rng = np.random.default_rng(seed)
    g = md.derive(expr, wrt, shapes=shapes)
    vals = values_for(g.f, rng)
    want = vec_matrix(np.asarray(g.evaluate(vals)), g.f_ndim)
    tree = vec_layout(matrix_form(g), g.f_ndim)
    assert tree is not None, f"{expr}: no vec reading"
    got = to_numpy(tree, vals, SIZES)
    return g, vals, want, got, hand(vals)


@pytest.mark.parametrize(("expr", "wrt", "shapes", "text", "hand"), EXAMPLES, ids=IDS)
def test_each_example_prints_as_written_and_is_right_in_numbers(expr, wrt, shapes, text,
                                                                hand):
    g, vals, want, got, by_hand = check_example(expr, wrt, shapes, hand)
    assert md.to_text(g, layout="vec") == text
    assert want.shape == got.shape == by_hand.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(by_hand, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("expr", "wrt", "shapes", "text", "hand"), EXAMPLES, ids=IDS)
def test_each_example_agrees_with_jax(expr, wrt, shapes, text, hand):
    pytest.importorskip("jax")
    g, vals, want, got, by_hand = check_example(expr, wrt, shapes, hand, seed=1)
    np.testing.assert_allclose(got, jax_vec(g.f, wrt, vals, g.f_ndim), rtol=1e-9,
                               atol=1e-12)


def test_the_printed_shape_is_the_vec_matrix():
    g = md.derive("A @ X @ B", "X", shapes=RECT)
    assert layout_shape(g, "vec") == (dim_mul("m", "n"), dim_mul("p", "q"))
    assert layout_shape(md.derive("X @ a", "X", shapes=RECT), "vec") == ("p", dim_mul("p", "q"))
    assert layout_shape(md.derive("outer(A @ x, b)", "x", shapes=RECT), "vec") == (
        dim_mul("m", "n"), "p")
    assert [str(d) for d in layout_shape(md.derive("inv(X)", "X", shapes=SQUARE), "vec")] \
        == ["p·p", "p·p"]
    # ordinary derivatives keep their shape
    assert layout_shape(md.derive("A @ x", "x", shapes=RECT), "vec") == ("m", "p")


def test_ordinary_derivatives_print_as_in_the_mixed_layout():
    g = md.derive("A @ x", "x", shapes=RECT)
    assert md.to_text(g, layout="vec") == "A"
    g = md.derive("tr(C @ X)", "X", shapes=RECT)
    assert md.to_text(g, layout="vec") == md.to_text(g) == "Cᵀ"


def test_the_hessian_of_a_scalar_by_a_matrix():
    # ∂²tr(XᵀAX)/∂X² = I ⊗ (A + Aᵀ): vec(∇) = vec((A + Aᵀ)X) = (I ⊗ (A + Aᵀ)) vec(X)
    shapes = {"X": ("p", "q"), "A": ("p", "p")}
    h = md.hessian("tr(X.T @ A @ X)", "X", shapes=shapes)
    assert md.to_text(h, layout="vec") == "I ⊗ (A + Aᵀ)"
    rng = np.random.default_rng(3)
    vals = values_for(h.f, rng)
    want = vec_matrix(np.asarray(h.evaluate(vals)), h.f_ndim)
    np.testing.assert_allclose(np.kron(I(Q_), vals["A"] + vals["A"].T), want, atol=1e-12)


def test_latex_prints_otimes_and_katex_renders_it():
    items = []
    for expr, wrt, shapes, _, _ in EXAMPLES:
        s = md.latex(md.derive(expr, wrt, shapes=shapes), layout="vec")
        items.append(s)
    assert items[0] == r"B^\top \otimes A"
    assert items[2] == r"(I \otimes X^\top) + (X^\top \otimes I) K"
    assert items[10] == r"\operatorname{diag}(\operatorname{vec}(\exp(X)))"
    items.append(r"\text{" + layout_note("vec") + "}")
    bad = katex_errors(items)
    assert not bad, bad


def test_the_paper_style_keeps_otimes_for_kronecker_only():
    # σ'(X) is σ(X) ⊙ (1 − σ(X)): element-wise, so ⊙ in a vec-layout printout
    g = md.derive("sigmoid(X) @ B", "X", shapes={"X": ("p", "q"), "B": ("q", "n")})
    text = md.to_text(g, layout="vec", style="paper")
    assert text.count("⊗") == 1 and "⊙" in text, text
    assert text.startswith("(Bᵀ ⊗ I)diag(vec(")
    latex = md.latex(g, layout="vec", style="paper")
    assert latex.count(r"\otimes") == 1 and r"\odot" in latex
    # outside the vec layout the paper's ⊗ is the element-wise product, as before
    assert "⊗" in md.to_text(md.derive("sum(sigmoid(X))", "X", shapes=RECT), style="paper")
    rng = np.random.default_rng(4)
    vals = values_for(g.f, rng)
    tree = vec_layout(matrix_form(g), g.f_ndim)
    np.testing.assert_allclose(to_numpy(tree, vals),
                               vec_matrix(np.asarray(g.evaluate(vals)), 2), atol=1e-12)


def test_a_product_without_a_kronecker_reading_stays_in_index_notation():
    # X ⊙ (tanh(X)A): its second term δᵢₖ Aₗⱼ Xₖⱼ tanh'(Xₖₗ) is diag(vec(X))(Aᵀ ⊗ I)
    # diag(vec(tanh'(X))), a δ renaming one factor to F's letters and the other to
    # X's: this reading renames one way at a time, and finds no Kronecker form
    g = md.derive("X * (tanh(X) @ A)", "X", shapes=SQUARE)
    assert vec_layout(matrix_form(g), g.f_ndim) is None
    assert md.to_text(g, layout="vec") == md.to_text(g)
    assert md.to_text(g, layout="vec").startswith("(i, j, k, l) ↦ ")
    assert layout_shape(g, "vec") == g.shape
    # a letter of F and one of X tied in a factor that reaches both sides
    g = md.derive("A @ tanh(X @ B)", "X", shapes=SQUARE | {"B": ("p", "p")})
    assert vec_layout(matrix_form(g), g.f_ndim) is None
    assert md.latex(g, layout="vec") == md.latex(g)


def test_index_notation_is_the_same_in_the_vec_layout():
    g = md.derive("A @ X @ B", "X", shapes=RECT)
    assert md.to_index(g, layout="vec") == md.to_index(g) == "(i, j, k, l) ↦ Aᵢₖ Bₗⱼ"


def test_a_plain_expression_needs_f_ndim():
    body = md.derive("inv(X)", "X", shapes=SQUARE).body
    with pytest.raises(ChoiceError, match="f_ndim"):
        md.to_text(body, layout="vec")
    assert md.to_text(body, layout="vec", f_ndim=2) == "−X⁻ᵀ ⊗ X⁻¹"
    assert to_latex(body, layout="vec", f_ndim=2) == r"-X^{-\top} \otimes X^{-1}"


def test_matrixcalculus_syntax_refuses_the_vec_layout():
    g = md.derive("A @ X @ B", "X", shapes=RECT)
    with pytest.raises(ChoiceError, match="no matrixcalculus.org spelling"):
        to_matrixcalculus(g, layout="vec")
    with pytest.raises(ChoiceError, match="valid choices"):
        md.to_text(g, layout="vecc")


def test_the_notes_say_the_layout_in_english_and_chinese():
    assert "vec(F)" in layout_note("vec") and "vec stacking columns" in layout_note("vec")
    zh = layout_note("vec", "zh")
    assert "vec 布局" in zh and "按列堆叠" in zh
    assert layout_note("numerator", "zh") == "（分子布局）"
    with pytest.raises(ChoiceError):
        layout_note("vec", "fr")


# ------------------------------------------------------------------ a planted error
def _vec_error(expr, wrt, shapes) -> float:
    rng = np.random.default_rng(5)
    g = md.derive(expr, wrt, shapes=shapes)
    vals = values_for(g.f, rng)
    want = vec_matrix(np.asarray(g.evaluate(vals)), g.f_ndim)
    got = to_numpy(vec_layout(matrix_form(g), g.f_ndim), vals, SIZES)
    return float(np.max(np.abs(got - want)))


def test_a_planted_wrong_reading_fails_the_numeric_check(monkeypatch):
    assert _vec_error("A @ X @ B", "X", RECT) < 1e-12
    assert _vec_error("X.T @ X", "X", SQUARE) < 1e-12
    real = KronForms.kron
    # A ⊗ Bᵀ for Bᵀ ⊗ A: the factors swapped (same shape where m·n, p·q allow)
    monkeypatch.setattr(KronForms, "kron", lambda self, P, Q: real(self, Q, P))
    shapes = {"A": ("p", "p"), "X": ("p", "p"), "B": ("p", "p")}
    assert _vec_error("A @ X @ B", "X", shapes) > 1e-3
    monkeypatch.undo()
    # K left out: (Xᵀ ⊗ I) for (Xᵀ ⊗ I)K
    monkeypatch.setattr(KronForms, "comm", lambda self, p, q: self.eye(dim_mul(p, q)))
    assert _vec_error("X.T @ X", "X", SQUARE) > 1e-3


# ------------------------------------------------------------------ the command
def run(argv):
    import io

    out = io.StringIO()
    code = cli.run(argv, out=out)
    return code, out.getvalue()


AXB = ["A @ X @ B", "--wrt", "X", "--shape", "A=m,p", "--shape", "X=p,q", "--shape",
       "B=q,n", "--layout", "vec"]


def test_the_command_prints_the_vec_layout():
    code, out = run(AXB)
    assert code == 0
    assert ("∂f/∂X = Bᵀ ⊗ A    shape (m·n, p·q) as printed; evaluate returns "
            "(m, n, p, q)    " + layout_note("vec")) in out
    code, out = run(AXB + ["--format", "json"])
    d = json.loads(out)
    assert d["layout"] == "vec"
    item = d["derivatives"][0]
    assert item["text"] == "Bᵀ ⊗ A" and item["latex"] == r"B^\top \otimes A"
    assert item["printed_shape"] == ["m·n", "p·q"] and item["shape"] == ["m", "n", "p", "q"]
    assert item["index"] == "(i, j, k, l) ↦ Aᵢₖ Bₗⱼ"
    code, out = run(AXB + ["--format", "latex"])
    assert r"B^\top \otimes A" in out and "vec layout" in out
    code, out = run(["inv(X)", "--wrt", "X", "--shape", "X=n,n", "--layout", "vec",
                     "--check"])
    assert code == 0 and "∂f/∂X = −X⁻ᵀ ⊗ X⁻¹    shape (n·n, n·n)" in out


def test_the_command_falls_back_to_index_notation_and_says_so():
    code, out = run(["X * (tanh(X) @ A)", "--wrt", "X", "--shape", "X=p,p", "--shape",
                     "A=p,p", "--layout", "vec"])
    assert code == 0
    assert "∂f/∂X = (i, j, k, l) ↦ " in out and "shape (p, p, p, p)    (vec layout" in out
    assert "index notation where no Kronecker form exists" in out


# ------------------------------------------------------------------ random products
_FACTORS = ["A", "A.T", "B", "X", "X.T", "inv(X)", "inv(X).T", "X.T @ X"]


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.sampled_from(_FACTORS), min_size=1, max_size=4), seed=st.integers(0, 99))
def test_random_products_with_x_print_a_vec_form_that_is_right(parts, seed):
    if not any("X" in p for p in parts):
        parts = parts + ["X"]
    expr = " @ ".join(f"({p})" for p in parts)
    shapes = {"A": ("n", "n"), "B": ("n", "n"), "X": ("n", "n")}
    g = md.derive(expr, "X", shapes=shapes)
    rng = np.random.default_rng(seed)
    n = 3
    vals = {"A": rng.standard_normal((n, n)), "B": rng.standard_normal((n, n)),
            "X": well_conditioned(rng, n, 0.4)}
    tree = vec_layout(matrix_form(g), g.f_ndim)
    # a product of matrices is linear in each occurrence of X: each term of its
    # derivative is L dX R (or L dXᵀ R), a Kronecker product (times K)
    assert tree is not None, (expr, md.to_text(g))
    text = md.to_text(g, layout="vec")
    assert "↦" not in text and ("⊗" in text or text in ("I", "K")), text
    want = vec_matrix(np.asarray(g.evaluate({k: vals[k] for k in g.f.variables()})), 2)
    got = to_numpy(tree, vals, {"n": n})
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=f"{expr}: {text}")


_MATRICES = ["X", "X.T", "A @ X", "X @ B", "exp(X)", "X * A", "inv(X)", "X.T @ X",
             "tanh(X) @ A", "2 * X", "sum(X) * A"]


@settings(max_examples=60, deadline=None)
@given(left=st.sampled_from(_MATRICES), right=st.sampled_from(_MATRICES),
       op=st.sampled_from(["", " + ", " @ ", " * ", " - "]),
       vector=st.sampled_from(["", " @ a", "outer"]), seed=st.integers(0, 99))
def test_random_derivatives_print_right_in_the_vec_layout_or_in_index_notation(
        left, right, op, vector, seed):
    # matrices, vectors by matrices (F a, a vector) and matrices by vectors (X = x aᵀ
    # inside, differentiated by x): whatever prints is right in numbers
    expr = f"({left})" + (f"{op}({right})" if op else "")
    if vector == " @ a":
        expr = f"({expr}) @ a"
    shapes = {"A": ("n", "n"), "B": ("n", "n"), "X": ("n", "n"), "a": ("n",), "x": ("n",)}
    wrt = "X"
    if vector == "outer":  # a matrix by a vector: X is the outer product x aᵀ + A
        expr = expr.replace("X", "(outer(x, a) + B)")
        wrt = "x"
    g = md.derive(expr, wrt, shapes=shapes)
    rng = np.random.default_rng(seed)
    n = 3
    vals = {"A": rng.standard_normal((n, n)), "B": well_conditioned(rng, n, 0.3),
            "X": well_conditioned(rng, n, 0.3), "a": 0.3 * rng.standard_normal(n),
            "x": 0.3 * rng.standard_normal(n)}
    vals = {k: vals[k] for k in g.f.variables()}
    text = md.to_text(g, layout="vec")
    if len(g.shape) <= 2:
        assert text == md.to_text(g)
        return
    tree = vec_layout(matrix_form(g), g.f_ndim)
    if tree is None:
        assert text == md.to_text(g) and "↦" in text
        return
    assert "↦" not in text, text
    want = vec_matrix(np.asarray(md.evaluate(g, vals, dims={"n": n})), g.f_ndim)
    np.testing.assert_allclose(to_numpy(tree, vals, {"n": n}), want, rtol=1e-8, atol=1e-10,
                               err_msg=f"{expr}: {text}")
