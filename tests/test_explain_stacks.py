"""md.explain on a stack of element-wise functions of inner functions: the paper's
vector chain rule (section 3.5, paper/SUMMARY.md example 7).

``y = [ln(x²), sin(3x)]`` goes as the paper: the inner stack ``g = [x², 3x]``, then
``y = [ln(g₁), sin(g₂)]`` over its components, ``∂y/∂g = diag(1/g₁, cos g₂)`` (yₖ
depends on gₖ alone), ``∂g/∂x = [2x, 3]ᵀ`` and the product ``[2/x, 3cos(3x)]ᵀ``.
matdiff's vectors are columns, so its ``[2x, 3]`` is the paper's column ``[2x, 3]ᵀ``
(LaTeX prints it as a column).  The expected strings are worked by hand from the
paper.  Every printed formula is also checked in numbers: read back (the unicode
syntax; the components' subscripts spelled ``g_1``) and evaluated, each local
derivative against central differences of its step, the chain's product against
central differences of f; a planted wrong ``∂y/∂g`` fails that check.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import matdiff as md
from helpers import fd_jacobian, max_rel_error
from katex import katex_errors

PAPER = "[log(x**2), sin(3*x)]"
SCALAR = {"x": ()}


def _spelled(text: str) -> str:
    """A printed formula as the unicode syntax reads it: the paper's ⊗ is ⊙, and a
    component's subscript (g₁) is written g_1."""
    subs = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
    return re.sub(r"([A-Za-z])([₀-₉]+)", lambda m: m[1] + "_" + m[2].translate(subs),
                  text).replace("⊗", "⊙")


def _read(text: str, shapes: dict) -> md.Expr:
    shapes = {_spelled(k): v for k, v in shapes.items()}
    return md.parse(_spelled(text), shapes=shapes, syntax="unicode")


def _components(step, g_value: np.ndarray) -> dict[str, np.ndarray]:
    """The values of the components g₁, … that a step reads, from the value of g."""
    return {name: np.asarray(e.evaluate({e.variables().popitem()[0]: g_value}))
            for name, e in step.components.items()}


def _at(values: dict) -> dict:
    return {_spelled(k): v for k, v in values.items()}


# =============================================================== the paper's lines
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_paper_example_step_by_step(lang: str) -> None:
    d = md.explain(PAPER, "x", lang=lang, shapes=SCALAR)
    assert [(s.name, s.definition, s.shape) for s in d.steps] == [
        ("g", "[x², 3x]", "2 × 1"), ("y", "[log(g₁), sin(g₂)]", "2 × 1")]
    locs = {(p.of, p.wrt): (p.text, p.shape) for s in d.steps for p in s.derivatives}
    assert locs == {("g", "x"): ("[2x, 3]", "2 × 1"),
                    ("y", "g"): ("diag([g₁⁻¹, cos(g₂)])", "2 × 2")}
    assert d.paths == [[("y", "g"), ("g", "x")]]
    assert d.chain_text() == ("∂y/∂x = ∂y/∂g ∂g/∂x = diag([g₁⁻¹, cos(g₂)]) [2x, 3] "
                              "= [2/x, 3cos(3x)]")
    assert d.mixed == "[2/x, 3cos(3x)]" and not d.matrix_chain
    assert d.steps[1].components.keys() == {"g₁", "g₂"}
    text = str(d)
    assert "g₁, g₂" in text and "g = [g₁, g₂]" in text
    if lang == "en":
        assert "vector chain rule, ∂y/∂x = ∂y/∂g ∂g/∂x" in text
        assert "∂y/∂g is diagonal" in text
    else:
        assert "向量链式法则" in text and "∂y/∂g 是对角矩阵" in text and "分量" in text
        assert "vector chain rule" not in text and "diagonal" not in text


def test_the_latex_prints_columns_and_the_diagonal() -> None:
    d = md.explain(PAPER, "x", shapes=SCALAR)
    tex = d.to_latex()
    assert r"g &= \begin{bmatrix} x^{2} \\ 3 x \end{bmatrix}" in tex
    assert r"\frac{\partial g}{\partial x} &= \begin{bmatrix} 2 x \\ 3 \end{bmatrix}" in tex
    assert r"\operatorname{diag}" in tex and "g_{1}" in tex and "g_{2}" in tex


# =============================================================== every formula in numbers
CASES = [
    (PAPER, SCALAR),
    ("[exp(2*x), tanh(x**3), sqrt(x + 2)]", SCALAR),        # three parts
    ("[max(0, x - 1), sigmoid(a*x)]", {"x": (), "a": ()}),  # piecewise, a constant
    ("[log(x**2), sin(3*x)]", {"x": ("n",)}),               # vector parts: tensors
    ("[exp(A @ x), cos(x * x)]", {"x": ("n",), "A": ("n", "n")}),
]


def _point(d: md.Derivation, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Values of f's variables off the kinks (|x − 1| > 0.2) and away from 0."""
    vals = md.random_values(d.f, rng=rng)
    return {k: np.where(np.abs(v - 1) < 0.3, v + 0.7, np.where(np.abs(v) < 0.2, 0.6, v))
            for k, v in vals.items()}


def check_derivation(d: md.Derivation, vals: dict) -> None:
    """Each printed step, local derivative and the chain's product against its
    expression and central differences, at ``vals`` (the values of f's variables)."""
    shapes = d.f.variables()
    inner, outer = d.steps
    g_value = np.asarray(inner.expr.evaluate(vals))
    comps = _components(outer, g_value)
    # g = [h₁, …]: the printed definition is the stack of the inner functions
    np.testing.assert_allclose(_read(inner.definition, shapes).evaluate(vals), g_value)
    # y = [f₁(g₁), …] at g(x) is f
    at_g = {**vals, **comps}
    y_shapes = {**shapes, **{k: v.shape for k, v in comps.items()}}
    np.testing.assert_allclose(_read(outer.definition, y_shapes).evaluate(_at(at_g)),
                               d.f.evaluate(vals), rtol=1e-12)

    # ∂g/∂x: printed and held, against central differences of g in x
    (dg,) = inner.derivatives
    want = fd_jacobian(lambda t: inner.expr.evaluate({**vals, d.x: t}), vals[d.x])
    assert max_rel_error(dg.expr.evaluate(vals), want) < 1e-6, dg.text
    if "↦" not in dg.text:  # a matrix form the unicode syntax reads back
        got = _read(dg.text, shapes).evaluate(vals)
        assert max_rel_error(np.reshape(got, want.shape), want) < 1e-6, dg.text

    # ∂y/∂g: against central differences of y as a function of g, through its
    # components (the step reads g₁, …, g_K; gₖ = g[k])
    (dy,) = outer.derivatives

    def y_of_g(t: np.ndarray) -> np.ndarray:
        return outer.expr.evaluate({**vals, **_components(outer, t)})

    want = fd_jacobian(y_of_g, g_value)
    assert max_rel_error(dy.expr.evaluate(at_g), want) < 1e-6, dy.text
    if "↦" not in dy.text:  # a matrix form (index notation is not read back)
        got = _read(dy.text, y_shapes).evaluate(_at(at_g))
        assert max_rel_error(got, want) < 1e-6, dy.text

    # the chain: ∂y/∂g ∂g/∂x, the product contracted over g's axes, is f's derivative
    r = len(g_value.shape)
    Jy = np.asarray(dy.expr.evaluate(at_g))
    Jg = np.asarray(dg.expr.evaluate(vals))
    product = np.tensordot(Jy, Jg, axes=r)
    want = fd_jacobian(lambda t: d.f.evaluate({**vals, d.x: t}), vals[d.x])
    assert max_rel_error(product, want) < 1e-6, d.chain_text()
    assert max_rel_error(d.result.evaluate(vals), want) < 1e-6, d.mixed
    if not d.matrix_chain:  # the printed result reads back
        assert max_rel_error(_read(d.mixed, shapes).evaluate(vals), want) < 1e-6
        assert d.chain_text().endswith(" = " + d.numerator)
        assert max_rel_error(_read(d.numerator, shapes).evaluate(vals), want) < 1e-6


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("expr, shapes", CASES)
def test_every_printed_formula_in_numbers(lang: str, expr: str, shapes: dict) -> None:
    d = md.explain(expr, "x", lang=lang, shapes=shapes)
    assert [s.name for s in d.steps] == ["g", "y"], str(d)
    assert d.paths == [[("y", "g"), ("g", "x")]]
    rng = np.random.default_rng(len(expr))
    for _ in range(3):
        check_derivation(d, _point(d, rng))


def test_a_planted_wrong_jacobian_fails_the_check() -> None:
    """∂y/∂g with the derivative of sin taken as sin (not cos) must fail."""
    d = md.explain(PAPER, "x", shapes=SCALAR)
    outer = d.steps[1]
    g2 = md.var("g₂")
    wrong_part = md.diag(md.stack([md.var("g₁") ** -1, md.sin(g2)]))
    wrong = dataclasses.replace(outer.derivatives[0], expr=wrong_part)
    planted = dataclasses.replace(d, steps=[d.steps[0], dataclasses.replace(
        outer, derivatives=[wrong])])
    with pytest.raises(AssertionError):
        check_derivation(planted, {"x": np.array(0.7)})


def test_the_piecewise_case_is_noted() -> None:
    d = md.explain("[max(0, x - 1), sigmoid(a*x)]", "x", shapes={"x": (), "a": ()})
    notes = d.steps[1].derivatives[0].notes
    assert any("g₁ > 0" in n and "g₁ ≤ 0" in n for n in notes), notes


def test_components_named_apart_from_the_variables() -> None:
    d = md.explain("[log(g**2), sin(3*g)]", "g", shapes={"g": ()})
    inner, outer = d.steps
    assert inner.name != "g" and all(c.startswith(inner.name) for c in outer.components)
    check_derivation(d, {"g": np.array(0.8)})
    d = md.explain(PAPER, "x", shapes=SCALAR, names=["h"])
    assert d.steps[1].definition == "[log(h₁), sin(h₂)]"
    d = md.explain(PAPER, "x", shapes=SCALAR, names=["u₁"])
    assert d.steps[1].definition == "[log(u₁_1), sin(u₁_2)]"
    check_derivation(d, {"x": np.array(1.3)})


@pytest.mark.parametrize("expr", [
    "[x**2, sin(x)]",          # a part is a function of x itself: no inner function
    "[log(x**2), 3*x]",        # a part is not an element-wise function
    "[log(x**2), sin(a)]",     # a part does not depend on x
    "[log(x*x + a*x)]",        # one part: not a stack of several
])
def test_other_stacks_keep_the_total_derivative(expr: str) -> None:
    """Where f is not a stack of element-wise functions of inner functions of x, the
    steps are the nodes and the chain sums over the paths, as before."""
    d = md.explain(expr, "x", shapes={"x": (), "a": ()})
    assert "g" not in [s.name for s in d.steps]
    assert not any(s.components for s in d.steps)
    vals = {"x": np.array(0.9), "a": np.array(1.7)}
    want = fd_jacobian(lambda t: d.f.evaluate({**vals, "x": t}), vals["x"])
    assert max_rel_error(d.result.evaluate(vals), want) < 1e-6


# =============================================================== formats, the command
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex_and_markdown_render_with_katex(lang: str) -> None:
    items = []
    for expr, shapes in CASES:
        d = md.explain(expr, "x", lang=lang, shapes=shapes)
        items.append(d.to_latex())
        mdown = d.to_markdown()
        items += re.findall(r"\$\$(.+?)\$\$", mdown, flags=re.S)
        items += re.findall(r"(?<!\$)\$([^$]+)\$(?!\$)", mdown)
        comps = d.to_dict()["steps"][1]["components"]
        assert list(comps)[:2] == ["g₁", "g₂"]
        assert comps["g₂"] in ("g[1]", "g[1, :]"), comps
    assert katex_errors(items) == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_command(lang: str, capsys) -> None:
    import io

    from matdiff import cli

    out = io.StringIO()
    cli.run(["[ln(x**2), sin(3*x)]", "--wrt", "x", "--shape", "x=", "--explain",
             "--lang", lang], out=out)
    text = out.getvalue()
    assert "g = [x², 3x]" in text and "y = [log(g₁), sin(g₂)]" in text
    assert "∂y/∂g = diag([g₁⁻¹, cos(g₂)])" in text and "∂g/∂x = [2x, 3]" in text
    assert "= diag([g₁⁻¹, cos(g₂)]) [2x, 3] = [2/x, 3cos(3x)]" in text
    assert ("向量链式法则" in text) == (lang == "zh")
