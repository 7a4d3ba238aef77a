"""md.explain: the paper's worked examples 1-10 (paper/SUMMARY.md), step by step.

The expected strings are the paper's intermediate variables, local Jacobians (numerator
layout) and results, reasoned from the paper; the printer may order commutative
factors its own way, which the few ``in`` alternatives allow.
"""

from __future__ import annotations

import io
import json
import re
import warnings

import numpy as np
import pytest

import matdiff as md
from katex import katex_errors
from matdiff.explain import UnknownLanguageError, to_latex_math
from matdiff.render import latex_name

VEC = {"w": ("n",), "x": ("n",), "z": ()}
NEURON = {"w": ("n",), "x": ("n",), "b": ()}
LOSS = {"y": ("N",), "X": ("N", "n"), "w": ("n",), "b": ()}
SCAL = {"x": (), "y": ()}


def steps(d: md.Derivation) -> list[tuple[str, str]]:
    return [(s.name, s.definition) for s in d.steps]


def locs(d: md.Derivation) -> dict[str, str]:
    return {p.label: p.text for s in d.steps for p in s.derivatives}


def shapes_of(d: md.Derivation) -> dict[str, str]:
    return {p.label: p.shape for s in d.steps for p in s.derivatives}


# =============================================================== the worked examples
@pytest.mark.parametrize("lang", ["en", "zh"])
class TestPaperExamples:
    def test_ex1_3x2y(self, lang: str) -> None:
        d = md.explain("3 * x**2 * y", "x", lang=lang, shapes=SCAL, name="f")
        assert steps(d) == [("u", "x²"), ("f", "3uy")]
        assert locs(d) == {"∂u/∂x": "2x", "∂f/∂u": "3y"}
        assert d.numerator in ("6xy", "6yx")
        d = md.explain("3 * x**2 * y", "y", lang=lang, shapes=SCAL, name="f")
        assert locs(d) == {"∂f/∂y": "3x²"}
        assert d.chain_text() == "∂f/∂y = 3x²"

    def test_ex2_2x_plus_y8(self, lang: str) -> None:
        d = md.explain("2*x + y**8", "x", lang=lang, shapes=SCAL, name="g")
        assert d.chain_text() == "∂g/∂x = 2"
        d = md.explain("2*x + y**8", "y", lang=lang, shapes=SCAL, name="g")
        assert locs(d)["∂u/∂y"] == "8y⁷"
        assert d.numerator == "8y⁷"

    def test_ex3_identity(self, lang: str) -> None:
        d = md.explain("x", "x", lang=lang, shapes={"x": ("n",)})
        assert d.numerator == "I" and d.mixed == "I"
        assert locs(d) == {"∂y/∂x": "I"}
        assert shapes_of(d) == {"∂y/∂x": "n × n"}

    @pytest.mark.parametrize("expr, wrt, jac", [
        ("w + x", "w", "I"), ("w + x", "x", "I"),
        ("w - x", "w", "I"), ("w - x", "x", "−I"),
        ("w * x", "w", "diag(x)"), ("w * x", "x", "diag(w)"),
        ("w / x", "x", "diag(−w ⊘ x²)"),
    ])
    def test_ex4_elementwise(self, lang: str, expr: str, wrt: str, jac: str) -> None:
        d = md.explain(expr, wrt, lang=lang, shapes=VEC)
        assert d.numerator == jac
        assert d.mixed == jac  # a Jacobian is the same in both layouts

    def test_ex4_division_by_w(self, lang: str) -> None:
        d = md.explain("w / x", "w", lang=lang, shapes=VEC)
        assert d.numerator in ("diag(1 ⊘ x)", "diag(x⁻¹)")

    def test_ex4_product_steps(self, lang: str) -> None:
        d = md.explain("w * x", "w", lang=lang, shapes=VEC)
        assert steps(d) == [("y", "w ⊗ x")]
        assert shapes_of(d) == {"∂y/∂w": "n × n"}

    @pytest.mark.parametrize("expr, wrt, jac, shape", [
        ("x + z", "x", "I", "n × n"), ("x + z", "z", "𝟏", "n × 1"),
        ("x - z", "x", "I", "n × n"), ("x - z", "z", "−𝟏", "n × 1"),
        ("x * z", "x", "zI", "n × n"), ("x * z", "z", "x", "n × 1"),
    ])
    def test_ex5_scalar_expansion(self, lang: str, expr: str, wrt: str, jac: str,
                                  shape: str) -> None:
        d = md.explain(expr, wrt, lang=lang, shapes=VEC)
        assert d.numerator == jac
        assert [p.shape for s in d.steps for p in s.derivatives][-1] == shape

    def test_ex5_division(self, lang: str) -> None:
        assert md.explain("x / z", "x", lang=lang, shapes=VEC).numerator == "I/z"
        d = md.explain("x / z", "z", lang=lang, shapes=VEC)
        assert d.numerator == "−x/z²"

    def test_ex6_sum(self, lang: str) -> None:
        d = md.explain("sum(x)", "x", lang=lang, shapes=VEC)
        assert steps(d) == [("y", "sum(x)")]
        assert locs(d) == {"∂y/∂x": "𝟏ᵀ"}
        assert shapes_of(d) == {"∂y/∂x": "1 × n"}
        assert (d.numerator, d.mixed) == ("𝟏ᵀ", "𝟏")
        d = md.explain("sum(x * z)", "z", lang=lang, shapes=VEC)
        assert d.numerator == "sum(x)"
        d = md.explain("sum(x * z)", "x", lang=lang, shapes=VEC)
        assert d.numerator == "z𝟏ᵀ" and d.mixed == "z𝟏"

    def test_ex7_vector_chain(self, lang: str) -> None:
        # y = [ln(x²), sin(3x)] through g = [x², 3x]: one component at a time
        d = md.explain("log(x**2)", "x", lang=lang, shapes={"x": ()})
        assert steps(d) == [("u", "x²"), ("y", "log(u)")]
        assert locs(d)["∂u/∂x"] == "2x"
        assert d.numerator in ("2/x", "2x⁻¹")
        d = md.explain("sin(3*x)", "x", lang=lang, shapes={"x": ()})
        assert steps(d) == [("u", "3x"), ("y", "sin(u)")]
        assert locs(d) == {"∂u/∂x": "3", "∂y/∂u": "cos(u)"}
        assert d.numerator == "3cos(3x)"
        # the element-wise case collapses to a diagonal
        d = md.explain("sin(3*x)", "x", lang=lang, shapes={"x": ("n",)})
        assert locs(d) == {"∂u/∂x": "3I", "∂y/∂u": "diag(cos(u))"}
        assert d.chain_text() == ("∂y/∂x = ∂y/∂u ∂u/∂x = diag(cos(u)) · 3I "
                                  "= diag(3cos(3x))")

    def test_ex7_total_derivative(self, lang: str) -> None:
        d = md.explain("x + x**2", "x", lang=lang, shapes={"x": ()})
        assert steps(d) == [("u", "x²"), ("y", "x + u")]
        assert locs(d) == {"∂u/∂x": "2x", "∂y/∂u": "1", "∂y/∂x": "1"}
        assert len(d.paths) == 2
        assert d.numerator == "1 + 2x"
        assert "∂y/∂u ∂u/∂x + ∂y/∂x" in d.chain_text()

    def test_ex8_dot_product(self, lang: str) -> None:
        d = md.explain("sum(w * x)", "w", lang=lang, shapes=VEC)
        assert steps(d) == [("u", "w ⊗ x"), ("y", "sum(u)")]
        assert locs(d) == {"∂u/∂w": "diag(x)", "∂y/∂u": "𝟏ᵀ"}
        assert shapes_of(d) == {"∂u/∂w": "n × n", "∂y/∂u": "1 × n"}
        assert d.chain_text() == "∂y/∂w = ∂y/∂u ∂u/∂w = 𝟏ᵀ diag(x) = xᵀ"
        assert d.mixed == "x"
        d = md.explain("w @ x", "x", lang=lang, shapes=VEC)
        assert d.chain_text() == "∂y/∂x = ∂y/∂u ∂u/∂x = 𝟏ᵀ diag(w) = wᵀ"

    def test_ex9_neuron(self, lang: str) -> None:
        d = md.explain("max(0, w @ x + b)", "w", lang=lang, shapes=NEURON, names=["z"],
                       name="a")
        assert steps(d) == [("z", "wᵀx + b"), ("a", "max(0, z)")]
        assert locs(d) == {"∂z/∂w": "xᵀ", "∂a/∂z": "step(z)"}
        note = d.steps[1].derivatives[0].notes[0]
        assert "z > 0" in note and "z ≤ 0" in note
        assert d.numerator == "step(wᵀx + b)xᵀ"
        d = md.explain("max(0, w @ x + b)", "b", lang=lang, shapes=NEURON, names=["z"],
                       name="a")
        assert locs(d) == {"∂z/∂b": "1", "∂a/∂z": "step(z)"}
        assert d.numerator == "step(wᵀx + b)"

    def test_ex9_elementwise_relu(self, lang: str) -> None:
        d = md.explain("max(0, x)", "x", lang=lang, shapes={"x": ("n",)})
        assert d.numerator == "diag(step(x))"
        note = d.steps[0].derivatives[0].notes[0]
        assert note.startswith("∂y/∂x = diag(step(x))")

    def test_ex10_loss(self, lang: str) -> None:
        d = md.explain("mean((y - max(0, X @ w + b))**2)", "w", lang=lang, shapes=LOSS,
                       names=["z", "u", "v"], name="C")
        assert steps(d) == [("z", "Xw + b"), ("u", "max(0, z)"), ("v", "y − u"),
                            ("C", "sum(v²)/N")]
        assert locs(d) == {"∂z/∂w": "X", "∂u/∂z": "diag(step(z))", "∂v/∂u": "−I",
                           "∂C/∂v": "(2/N)vᵀ"}
        assert shapes_of(d) == {"∂z/∂w": "N × n", "∂u/∂z": "N × N", "∂v/∂u": "N × N",
                                "∂C/∂v": "1 × N"}
        assert d.products == ["(2/N)vᵀ (−I) diag(step(z)) X"]
        d = md.explain("mean((y - max(0, X @ w + b))**2)", "b", lang=lang, shapes=LOSS,
                       names=["z", "u", "v"], name="C")
        assert locs(d)["∂z/∂b"] == "𝟏"
        assert shapes_of(d)["∂z/∂b"] == "N × 1"


# =============================================================== the issue's results
@pytest.mark.parametrize("expr, wrt, shapes, numerator, mixed", [
    ("x @ A @ x", "x", {"x": ("n",), "A": ("n", "n")}, "xᵀ(A + Aᵀ)", "(A + Aᵀ)x"),
    ("A @ x", "x", {"x": ("n",), "A": ("n", "n")}, "A", "A"),
    ("tr(A @ X @ B)", "X", {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")}, "BA",
     "AᵀBᵀ"),
    ("log(det(X))", "X", {"X": ("n", "n")}, "X⁻¹", "X⁻ᵀ"),
])
def test_layouts(expr: str, wrt: str, shapes: dict, numerator: str, mixed: str) -> None:
    d = md.explain(expr, wrt, shapes=shapes)
    assert d.numerator == numerator
    assert d.mixed == mixed


def test_matrix_variable_index_notation() -> None:
    d = md.explain("sum(exp(X @ w))", "X", shapes={"X": ("m", "n"), "w": ("n",)})
    assert d.matrix_chain
    loc = d.steps[0].derivatives[0]
    assert loc.shape == "m × m × n"
    assert loc.notes and "m × m × n" in loc.notes[0]
    assert str(d)  # prints


def test_chinese_terms() -> None:
    text = str(md.explain("sum(w * x)", "w", lang="zh", shapes=VEC))
    for term in ("中间变量", "链式法则", "雅可比矩阵", "分子布局"):
        assert term in text
    en = str(md.explain("sum(w * x)", "w", shapes=VEC))
    assert "Chain rule" in en and "链式法则" not in en


# =============================================================== numbers agree
EXAMPLES = [
    ("3 * x**2 * y", "x", SCAL), ("2*x + y**8", "y", SCAL),
    ("w / x", "x", VEC), ("x / z", "z", VEC), ("sum(x * z)", "x", VEC),
    ("sin(3*x)", "x", {"x": ("n",)}), ("x + x**2", "x", {"x": ()}),
    ("sum(w * x)", "w", VEC), ("max(0, w @ x + b)", "w", NEURON),
    ("mean((y - max(0, X @ w + b))**2)", "w", LOSS),
    ("mean((y - max(0, X @ w + b))**2)", "b", LOSS),
    ("log(det(X))", "X", {"X": ("n", "n")}),
]


def _fd(f: md.Expr, name: str, vals: dict, eps: float = 1e-6) -> np.ndarray:
    base = np.asarray(vals[name], dtype=float)
    cols = []
    for i in np.ndindex(base.shape or ()):
        hi, lo = dict(vals), dict(vals)
        a, b = base.copy(), base.copy()
        a[i] += eps
        b[i] -= eps
        hi[name], lo[name] = a, b
        cols.append((np.asarray(f.evaluate(hi)) - np.asarray(f.evaluate(lo))) / (2 * eps))
    out = np.stack(cols, axis=-1)
    return out.reshape(np.shape(f.evaluate(vals)) + base.shape)


@pytest.mark.parametrize("expr, wrt, shapes", EXAMPLES)
def test_local_derivatives_match_finite_differences(expr: str, wrt: str,
                                                    shapes: dict) -> None:
    d = md.explain(expr, wrt, shapes=shapes)
    rng = np.random.default_rng(0)
    for s in d.steps:
        for loc in s.derivatives:
            # values of f's variables too: they carry the dims a derivative may lose
            vals = {**md.random_values(d.f, rng=rng), **md.random_values(s.expr, rng=rng)}
            for k, v in vals.items():  # stay off the kinks of max(0, ·) and 0 of log
                if np.ndim(v) < 2:
                    vals[k] = np.where(np.abs(v) < 0.1, 0.5, v)
            got = np.asarray(loc.expr.evaluate(vals))
            want = _fd(s.expr, loc.wrt, vals)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{loc.label} = {loc.text}")


#: each example's result as the paper writes it (worked by hand)
RESULTS = {
    ("3 * x**2 * y", "x"): "6xy", ("2*x + y**8", "y"): "8y⁷",
    ("w / x", "x"): "diag(−w ⊘ x²)", ("x / z", "z"): "−x/z²", ("sum(x * z)", "x"): "z𝟏",
    ("sin(3*x)", "x"): "diag(3cos(3x))", ("x + x**2", "x"): "1 + 2x",
    ("sum(w * x)", "w"): "x", ("max(0, w @ x + b)", "w"): "step(wᵀx + b)x",
    ("mean((y - max(0, X @ w + b))**2)", "w"):
        "−2Xᵀ(step(Xw + b) ⊙ (y − max(0, Xw + b)))/N",
    ("mean((y - max(0, X @ w + b))**2)", "b"): "−2step(Xw + b)ᵀ(y − max(0, Xw + b))/N",
    ("log(det(X))", "X"): "X⁻ᵀ",
}


@pytest.mark.parametrize("expr, wrt, shapes", EXAMPLES)
def test_result_is_the_derivative(expr: str, wrt: str, shapes: dict) -> None:
    """The derivation ends with the derivative: the formula worked by hand, and in
    numbers the central differences of f (at a point off the kinks of max(0, ·),
    where det(X) > 0)."""
    d = md.explain(expr, wrt, shapes=shapes)
    assert str(d.result) == RESULTS[(expr, wrt)]
    rng = np.random.default_rng(1)
    vals = md.random_values(d.f, rng=rng)
    for k, v in vals.items():
        if np.ndim(v) == 2 and np.shape(v)[0] == np.shape(v)[1]:
            vals[k] = np.eye(np.shape(v)[0]) + 0.1 * np.asarray(v)
        else:
            vals[k] = np.where(np.abs(v) < 0.1, 0.5, v)
    np.testing.assert_allclose(np.asarray(d.result.evaluate(vals)), _fd(d.f, wrt, vals),
                               rtol=1e-5, atol=1e-7)


# =============================================================== formats
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("expr, wrt, shapes", EXAMPLES)
def test_formats(lang: str, expr: str, wrt: str, shapes: dict) -> None:
    d = md.explain(expr, wrt, lang=lang, shapes=shapes)
    text = str(d)
    md_text = d.to_markdown()
    tex = d.to_latex()
    data = json.loads(json.dumps(d.to_dict()))
    # Jupyter's displays: markdown ending with the result as display math, and one
    # display-math block of LaTeX (KaTeX parses both: test_latex_parses_with_katex)
    shown = d._repr_markdown_()
    assert shown.startswith("**") and shown.count("$$") % 2 == 0
    assert shown.rstrip().endswith("$$") and f"\\partial {wrt}}}" in shown.split("$$")[-2]
    shown_tex = d._repr_latex_()
    assert shown_tex.startswith("$$\\begin{aligned}") and shown_tex.endswith("\\end{aligned}$$")
    assert shown_tex.count("$$") == 2
    assert data["lang"] == lang and data["wrt"] == wrt
    assert data["chain"]["text"] == d.chain_text()
    for s in d.steps:
        assert s.name in text
        assert to_latex_math(s.name) in tex and to_latex_math(s.name) in md_text
    assert tex.count("{") == tex.count("}")
    assert "\\begin{aligned}" in tex and "\\end{aligned}" in tex


def test_to_latex_math() -> None:
    assert to_latex_math("1ᵀ diag(x)") == r"1^{\top} \operatorname{diag}(x)"
    assert to_latex_math("X⁻ᵀ") == r"X^{-\top}"
    assert to_latex_math("w ⊗ x") == r"w \otimes x"
    assert to_latex_math("u₁₂") == "u_{12}"
    assert to_latex_math("√(x + 1)") == r"\sqrt{x + 1}"
    assert to_latex_math("σ(x)") == r"\sigma(x)"


def test_latex_parses_with_katex() -> None:
    items = []
    for lang in ("en", "zh"):
        for expr, wrt, shapes in EXAMPLES:
            d = md.explain(expr, wrt, lang=lang, shapes=shapes)
            items.append(d.to_latex())
            items.append(d._repr_latex_().removeprefix("$$").removesuffix("$$"))
            items.extend(re.findall(r"\$\$(.+?)\$\$", d.to_markdown(), flags=re.S))
    assert katex_errors(items) == []


# =============================================================== bad input
def test_bad_language() -> None:
    with pytest.raises(UnknownLanguageError) as e:
        md.explain("sum(x)", "x", lang="fr", shapes={"x": ("n",)})
    assert isinstance(e.value, md.MatdiffError) and isinstance(e.value, ValueError)
    assert "'en'" in str(e.value) and "'zh'" in str(e.value)


def test_bad_names() -> None:
    with pytest.raises(md.MatdiffError):
        md.explain("sum(w * x)", "w", shapes=VEC, names=["a", "b", "c"])
    with pytest.raises(md.MatdiffError):
        md.explain("sum(w * x)", "w", shapes=VEC, names=["x"])
    with pytest.raises(md.MatdiffError):
        md.explain("sum(w * x)", "w", shapes=VEC, name="x")


def test_names_avoid_variables() -> None:
    d = md.explain("sum(u * v)", "u", shapes={"u": ("n",), "v": ("n",)})
    assert d.steps[0].name not in ("u", "v")
    d = md.explain("mean((y - max(0, X @ w + b))**2)", "w", shapes=LOSS)
    assert d.name == "f" and [s.name for s in d.steps] == ["u₁", "u₂", "u₃", "f"]


def test_no_dependence() -> None:
    d = md.explain("sum(x)", "w", shapes={"x": ("n",), "w": ("n",)})
    assert d.steps == [] and d.notes
    assert d.mixed == "0" or "0" in d.mixed
    json.dumps(d.to_dict())
    assert str(d) and d.to_latex() and d.to_markdown()


# =============================================================== one printer
MLP = {"x": ("n",), "W1": ("h", "n"), "b1": ("h",), "w2": ("h",), "y": ()}
SAME_PRINT = [
    ("max(0, w @ x + b)", "w", NEURON),
    ("x @ A @ x", "x", {"x": ("n",), "A": ("n", "n")}),
    ("tr(A @ X @ B)", "X", {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")}),
    ("log(det(X))", "X", {"X": ("n", "n")}),
    ("logdet(X)", "X", {"X": ("n", "n")}),
    ("mean((y - max(0, X @ w + b))**2)", "w", LOSS),
    ("mean((y - max(0, X @ w + b))**2)", "b", LOSS),
    ("(w2 @ max(0, W1 @ x + b1) - y)**2", "b1", MLP),
    ("(w2 @ max(0, W1 @ x + b1) - y)**2", "w2", MLP),
    ("sum(w * x)", "w", VEC), ("w / x", "x", VEC),
]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("expr, wrt, shapes", SAME_PRINT)
def test_result_line_is_what_derive_prints(lang: str, expr: str, wrt: str,
                                           shapes: dict) -> None:
    """The same derivative prints the same in md.derive + md.to_text / md.latex and
    in the result line of md.explain (text, LaTeX, Markdown); the chain rule's last
    member is md.to_text / md.latex of it in numerator layout, the paper's style."""
    d = md.explain(expr, wrt, lang=lang, shapes=shapes)
    f = md.parse(expr, shapes=shapes)
    g = md.derive(f, wrt)
    text, tex = md.to_text(g), md.latex(g)
    assert d.mixed == text
    assert f"\n  ∂{d.name}/∂{wrt} = {text}   (" in str(d)
    frac = rf"\frac{{\partial {latex_name(d.name)}}}{{\partial {latex_name(wrt)}}}"
    assert d.to_latex().endswith(f"\n{frac} &= {tex}\n\\end{{aligned}}")
    assert d.to_markdown().endswith(f"$${frac} = {tex}$$")
    k = len(f.shape)
    paper = md.to_text(g, layout="numerator", f_ndim=k, style="paper")
    assert d.numerator == paper and d.chain_text().endswith(" = " + paper)
    paper_tex = md.latex(g, layout="numerator", f_ndim=k, style="paper")
    assert rf"{frac} &= " in d.to_latex()
    assert f" = {paper_tex} \\\\\n" in d.to_latex() or f"&= {paper_tex} \\\\\n" in d.to_latex()


def test_steps_print_from_their_expressions() -> None:
    """Each step and local derivative is the printer's output for the expression the
    derivation holds: the paper's style (⊗, max(0, z), (2/N)vᵀ), numerator layout."""
    d = md.explain("mean((y - max(0, X @ w + b))**2)", "w", shapes=LOSS,
                   names=["z", "u", "v"], name="C")
    tex = d.to_latex()
    for s in d.steps:
        assert s.definition == md.to_text(s.expr, style="paper")
        assert md.latex(s.expr, style="paper") in tex
        for loc in s.derivatives:
            k = len(s.expr.shape)
            assert loc.text == md.to_text(loc.expr, layout="numerator", f_ndim=k,
                                          style="paper")
            assert loc.latex() == md.latex(loc.expr, layout="numerator", f_ndim=k,
                                           style="paper")
            assert f"&= {loc.latex()} &&" in tex
    assert r"\frac{2}{N} v^\top (-I) \operatorname{diag}(\operatorname{step}(z)) X" in tex
    assert "X w + b" in tex and "b1" not in tex  # scalar expansion, as md.latex
    assert r"u &= \max(0, z)" in tex


# =============================================================== every line in Chinese
#: command lines that print every kind of summary line: the paper's loss, shapes
#: given and inferred, checks (right, wrong with each hint, could not check), claims,
#: Hessians, layouts, the formats, the parser's note, explanations with differentials
ZH_RUNS = [
    [],
    ["x @ A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n", "--explain", "--check"],
    ["x @ A @ x", "--hessian", "--check"],
    ["x @ A @ x", "--layout", "numerator"],
    ["X @ A", "--wrt", "X", "--shape", "X=n,n", "--shape", "A=n,n", "--layout", "denominator"],
    ["tr(X @ A @ X.T)", "--wrt", "X", "--explain", "--layout", "numerator"],
    ["inv(X)", "--wrt", "X", "--explain", "--format", "latex"],
    ["logdet(X)", "--wrt", "X", "--explain", "--check", "--format", "markdown"],
    ["max(0, w @ x + b)", "--wrt", "w", "--check", "--explain"],
    ["sin(x)", "--wrt", "x", "--shape", "x=", "--claim", "cos(x)*2"],
    ["sin(x)", "--wrt", "x", "--shape", "x=", "--claim", "cos(x)"],
    ["A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=m,n", "--claim", "A.T"],
    ["max(0, w @ x)", "--wrt", "w", "--shape", "x=n", "--shape", "w=n", "--claim", "x"],
    ["log(-exp(x))", "--wrt", "x", "--shape", "x=n", "--check"],
    ["x'*A*x"],
    ["X.T @ X", "--wrt", "X", "--explain"],
    ["sum(softmax(x) * y)", "--wrt", "x", "--explain", "--format", "markdown"],
    ["mean((y - max(0, X @ w + b))**2)", "--wrt", "b", "--explain", "--format", "latex"],
    # the vector chain rule (paper, section 3.5): x a scalar, and x inferred a vector
    ["[ln(x**2), sin(3*x)]", "--wrt", "x", "--shape", "x=", "--explain"],
    ["[ln(x**2), sin(3*x)]", "--wrt", "x", "--explain", "--format", "markdown"],
]


def _command(argv: list[str], capsys) -> str:
    from matdiff import cli

    out = io.StringIO()
    cli.run(argv, out=out)
    return out.getvalue() + capsys.readouterr().err


def _names() -> set[str]:
    """The words that are names, not English: functions (element-wise, matrix, the
    printer's calls), the code a line quotes, and the people and sites cited."""
    from matdiff.expr.functions import FUNCTIONS
    from matdiff.expr.matrix_functions import MATRIX_FUNCTIONS
    from matdiff.render.unicode import UNICODE

    calls = {re.sub(r"[^A-Za-z]", " ", v[0]).split()[0] for v in UNICODE.CALLS.values()
             if re.search(r"[A-Za-z]", v[0])}
    code = {"evaluate", "matdiff", "eps", "numpy", "syntax", "matrixcalculus", "org",
            "axis", "vector", "ReLU", "Parr", "Howard"}
    return set(FUNCTIONS) | set(MATRIX_FUNCTIONS) | calls | code


#: the letters a formula's words are made of besides the variables: the derivation's
#: names (y, f, u, v, u₁, t₁, …), the differential's d, index letters, dims
_FORMULA_LETTERS = set("yfuvtghqz") | {"d"} | set("ijkl") | set("mnN")


def _formula_word(w: str, variables: set[str]) -> bool:
    """Whether ``w`` is names written side by side (``Xw``, ``dy``, ``xxᵀ``'s ``xx``,
    the indices ``ik``): it splits into variables and formula letters."""
    if not w:
        return True
    return any(w.startswith(t) and _formula_word(w[len(t):], variables)
               for t in variables | _FORMULA_LETTERS)


def english_words(text: str, variables: set[str]) -> set[str]:
    """The ASCII words of ``text`` that are not names: not a function, code, or
    variables and formula letters side by side; command options (``--shape``),
    LaTeX commands and environments and HTML entities are code too."""
    text = re.sub(r"--[a-z]+|\\(?:begin|end)\{\w+\}|\\[A-Za-z]+|&[a-z]+;", " ", text)
    allowed = _names()
    return {w for w in re.findall(r"[A-Za-z]{2,}", text)
            if w not in allowed and not _formula_word(w, variables)}


@pytest.mark.parametrize("argv", ZH_RUNS, ids=lambda a: " ".join(a)[:40] or "paper")
def test_every_line_of_the_command_is_in_chinese(argv: list[str], capsys) -> None:
    """``--lang zh``: no English word in any line the command prints (summary
    lines, checks and their hints, claims, layout notes, the parser's note, the
    explanation); in English the same scan finds words, so it can fail."""
    zh = _command(argv + ["--lang", "zh"], capsys)
    en = _command(argv, capsys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", md.NotationWarning)
        f = md.parse(argv[0] if argv else "mean((y - max(0, X @ w + b))**2)")
    variables = set(f.variables())
    assert english_words(zh, variables) == set(), zh
    assert english_words(en, variables), en
    assert re.search(r"[\u4e00-\u9fff]", zh)


def test_chinese_summary_lines() -> None:
    from matdiff import cli

    out = io.StringIO()
    cli.run(["x @ A @ x", "--check", "--layout", "numerator", "--lang", "zh"], out=out)
    text = out.getvalue()
    assert "  f = xᵀAx    形状 标量 ()" in text
    assert "  变量: A (n, n), x (n,)" in text
    assert "推断的形状：A, x" in text and "--shape 变量名=维度" in text
    assert "∂f/∂x = xᵀ(A + Aᵀ)    形状 (n,)" in text and "（分子布局）" in text
    assert "检验: 通过：导数与中心差分一致" in text


def test_the_sentence_table_leaves_unknown_sentences_alone() -> None:
    from matdiff.explain.lang import SENTENCES, sentence

    assert sentence("no such sentence", "zh") == "no such sentence"
    assert sentence("the claim is the derivative times 2: a constant factor is off") \
        == "the claim is the derivative times 2: a constant factor is off"
    assert all(re.compile(p) for p, _ in SENTENCES["zh"])


def test_an_untranslated_line_fails_the_scan(monkeypatch, capsys) -> None:
    """Planted: the summary's word for variables left in English is found."""
    from matdiff.explain.lang import PHRASES

    monkeypatch.setitem(PHRASES["zh"], "cli_variables", "variables")
    zh = _command(["x @ A @ x", "--lang", "zh"], capsys)
    assert english_words(zh, {"x", "A"}) == {"variables"}


def test_a_derivation_and_a_formula_display_as_themselves():
    # issue 14, item 8: the REPL shows the derivation, not a dataclass record
    d = md.explain("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
    assert repr(d) == str(d) and "Chain rule" in repr(d) and "Derivation(" not in repr(d)

    class Pretty:   # IPython's printer, as _repr_pretty_ is called by it
        def __init__(self):
            self.out = ""

        def text(self, s):
            self.out += s

    p = Pretty()
    d._repr_pretty_(p, False)
    assert p.out == str(d)
    fm = md.formula(lambda x: md.sum(x * x), np.ones(3))
    assert repr(fm) == "f = sum(x²)\ndf/dx = 2x"
    tex = fm._repr_latex_()
    assert tex.startswith("$$") and r"\frac{\partial f}{\partial x} &= 2 x" in tex
    assert katex_errors([tex.strip("$")]) == []
