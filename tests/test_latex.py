"""md.latex and the printing options (layout, style) of issue 3, items 1 and 4.

Every LaTeX string these tests produce is parsed by KaTeX (tests/katex.py), in one
batch per test.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matdiff as md
from katex import katex_errors
from matdiff.render import LAYOUTS, STYLES, ChoiceError, latex_name, to_index, to_text
from test_render import expressions

n = "n"
x, w, z = md.vector("x", n), md.vector("w", n), md.scalar("z")
A, B, X = md.matrix("A", n, n), md.matrix("B", n, n), md.matrix("X", n, n)


def assert_katex(items):
    bad = katex_errors(list(items))
    assert not bad, bad


# (f, wrt, f_ndim, mixed LaTeX, numerator LaTeX), reasoned from the mathematics:
# the derivative is indexed [f's axes, x's axes]; numerator layout writes a
# gradient as a row and a scalar-by-matrix derivative transposed.
PAPER = [
    # ∂(wᵢxᵢ)/∂wⱼ = xᵢδᵢⱼ
    (lambda: (w * x, w), 1, r"\operatorname{diag}(x)", r"\operatorname{diag}(x)"),
    # ∇ xᵀAx = (A + Aᵀ)x; as a row xᵀ(Aᵀ + A)ᵀ... = xᵀ(A + Aᵀ)
    (lambda: (x @ A @ x, x), 0, r"(A + A^\top) x", r"x^\top (A + A^\top)"),
    # ∂(Ax)/∂x = A (a Jacobian: the same in mixed and numerator layout)
    (lambda: (A @ x, x), 1, "A", "A"),
    # ∂ tr(AXB)/∂Xᵢⱼ = (BA)ⱼᵢ = (AᵀBᵀ)ᵢⱼ; numerator layout transposes it: BA
    (lambda: (md.tr(A @ X @ B), X), 0, r"A^\top B^\top", "B A"),
    # ∂ log det X/∂X = X⁻ᵀ; transposed: X⁻¹
    (lambda: (md.log(md.det(X)), X), 0, r"X^{-\top}", "X^{-1}"),
    # ∇ 1ᵀx = 1; as a row 1ᵀ
    (lambda: (md.sum(x), x), 0, r"\mathbf{1}", r"\mathbf{1}^\top"),
    # ∂(xᵢ + z)/∂z = 1 for every i: a column in both layouts
    (lambda: (x + z, z), 1, r"\mathbf{1}", r"\mathbf{1}"),
    # ∂(xᵢz)/∂xⱼ = zδᵢⱼ
    (lambda: (x * z, x), 1, "z I", "z I"),
]


@pytest.mark.parametrize("case", PAPER, ids=[str(k) for k in range(len(PAPER))])
def test_pinned_latex(case):
    make, f_ndim, mixed, numerator = case
    f, v = make()
    g = md.derive(f, v)
    got = [md.latex(g), md.latex(g, layout="numerator", f_ndim=f_ndim),
           md.latex(g, style="paper"), md.latex(g, index=True)]
    assert got[0] == mixed
    assert got[1] == numerator
    assert got[2] == mixed  # no element-wise operator in these
    assert_katex(got)


def test_sin_3x_is_diag_3cos_3x():
    g = md.derive(md.sin(3 * x), x)
    s = md.latex(g)
    assert s in (r"\operatorname{diag}(3 \cos(3 x))", r"\operatorname{diag}(\cos(3 x) 3)")
    assert_katex([s, md.latex(g, layout="numerator", f_ndim=1)])


def test_elementwise_quotient_by_style():
    g = md.derive(w / x, x)  # ∂(wᵢ/xᵢ)/∂xⱼ = −wᵢ/xᵢ² δᵢⱼ
    items = [md.latex(g), md.latex(g, style="paper"), md.latex(w * x, style="paper"),
             md.latex(w * x)]
    assert items == [r"\operatorname{diag}(-w / x^{2})", r"\operatorname{diag}(-w \oslash x^{2})",
                     r"w \otimes x", r"w \odot x"]
    assert_katex(items)


def test_unicode_layouts_and_styles():
    def t(f, v, f_ndim, **kw):
        return to_text(md.derive(f, v), f_ndim=f_ndim, **kw)

    assert t(x @ A @ x, x, 0, layout="numerator") == "xᵀ(A + Aᵀ)"
    assert t(x @ A @ x, x, 0, layout="denominator") == "(A + Aᵀ)x"
    assert t(md.sum(w * x), w, 0, layout="numerator", style="paper") == "xᵀ"
    assert t(md.sum(x), x, 0, layout="numerator") == "𝟏ᵀ"
    assert t(md.tr(A @ X @ B), X, 0, layout="numerator") == "BA"
    assert t(md.log(md.det(X)), X, 0, layout="numerator") == "X⁻¹"
    assert t(A @ x, x, 1, layout="numerator") == "A"
    assert t(A @ x, x, 1, layout="denominator") == "Aᵀ"
    assert t(x + z, z, 1, layout="denominator") == "𝟏ᵀ"
    assert t(x * z, x, 1, layout="numerator", style="paper") == "zI"
    assert t(w / x, x, 1, layout="numerator", style="paper") == "diag(−w ⊘ x²)"
    assert t(w / x, x, 1, style="standard") == "diag(−w / x²)"
    assert to_text(w * x, style="paper") == "w ⊗ x"
    assert to_text(w * x, style="standard") == "w ⊙ x"
    assert str(md.derive(w / x, x)) == "diag(−w ⊘ x²)"  # str() unchanged
    # index notation: a transposed result swaps its letters
    assert to_index(md.derive(A @ x, x), layout="denominator", f_ndim=1) == "(i, j) ↦ Aⱼᵢ"


def test_higher_order_falls_back_to_index_notation():
    g = md.derive(md.inv(X), X)
    items = [md.latex(g), md.latex(g, layout="numerator", f_ndim=2), md.latex(X @ A),
             md.latex(md.derive(X @ A, X))]
    assert items[0] == r"(i, j, k, l) \mapsto -{(X^{-1})}_{ik} {(X^{-1})}_{lj}"
    assert items[1] == items[0]
    assert items[2] == "X A"
    assert r"\mapsto" in items[3] and r"\delta" in items[3]
    assert_katex(items)


def test_names_and_numbers():
    assert [latex_name(s) for s in ("x", "W1", "x_in", "α", "loss", "my_var")] == \
        ["x", "W_{1}", "x_{in}", r"\alpha", r"\mathit{loss}", r"\mathit{my\_var}"]
    W1, h = md.matrix("W1", 3, 3), md.vector("h_1", 3)
    α = md.scalar("α")
    items = [md.latex(W1 @ h), md.latex(α * h), md.latex(1e-8 * h), md.latex(2 * md.ones(3)),
             md.latex(W1 @ h, index=True), md.latex(md.sqrt(h) + md.abs(h)),
             md.latex(md.sigmoid(h) * md.relu(h) - md.softplus(h) / md.maximum(h, 0))]
    assert items[0] == "W_{1} h_{1}"
    assert items[1] == r"\alpha h_{1}"
    assert items[4] == r"(i) \mapsto \sum_{j} {W_{1}}_{ij} {h_{1}}_{j}"
    assert_katex(items)


def test_jupyter_reprs():
    g = md.derive(x @ A @ x, x)
    assert g._repr_latex_() == r"$$(A + A^\top) x$$"
    assert g._repr_markdown_().startswith(r"$$(A + A^\top) x$$")
    assert_katex([g._repr_latex_()[2:-2]])


def test_bad_choices_list_the_valid_ones():
    g = md.derive(x @ A @ x, x)
    for kw, word in [({"layout": "row"}, "'numerator'"), ({"style": "fancy"}, "'paper'")]:
        for fn in (md.latex, to_text, to_index):
            with pytest.raises(ChoiceError, match=word) as info:
                fn(g, **kw)
            assert isinstance(info.value, ValueError)
            assert isinstance(info.value, md.MatdiffError)
    with pytest.raises(ChoiceError, match="f_ndim"):
        # a plain expression does not know which axes came from f (a derivative
        # result does: tests/test_results.py)
        md.latex(g.body, layout="numerator")
    with pytest.raises(md.MatdiffError):
        md.latex("x")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_expressions_print_in_every_layout_style_and_format(data):
    rank = data.draw(st.integers(0, 2))
    f = data.draw(expressions(rank))
    names = sorted(f.variables())
    items = []
    todo = [(f, 0)]
    if names:
        var = f.variables()
        v = data.draw(st.sampled_from(names))
        todo.append((md.derive(f, md.var(v, *var[v])), len(f.shape)))
    for e, f_ndim in todo:
        for layout in LAYOUTS:
            for style in STYLES:
                kw = {"layout": layout, "style": style, "f_ndim": f_ndim}
                assert isinstance(to_text(e, **kw), str)
                assert isinstance(to_index(e, **kw), str)
                items.append(md.latex(e, **kw))
                items.append(md.latex(e, index=True, **kw))
    assert all("<" not in s for s in items), items  # no fallback printout
    json.dumps(items)
    assert_katex(items)


def test_exact_constants_in_latex():
    """Exact fractions are \\frac, log(2) stays, 2^x has a number for its base."""
    two = md.parse("2**x", shapes={"x": ("n",)})
    got = {
        md.latex(x / 9): r"\frac{1}{9} x",
        md.latex(md.derive(2 * x / 3, x)): r"\frac{2}{3} I",
        md.latex(md.const(-1 / 9)): r"-\frac{1}{9}",
        md.latex(md.derive(two, "x")): r"\operatorname{diag}(\log(2) \cdot 2^{x})",
        md.latex(x ** 0.5): r"x^{1/2}", md.latex(0.5 * x): r"\frac{1}{2} x",
        md.latex(md.derive(md.sum(x ** -0.5), x)): r"-\frac{1}{2} x^{-3/2}",
        md.latex(md.derive(md.sigmoid(x) * (1 - md.sigmoid(x)), x)):
            r"\operatorname{diag}((1 - 2 \sigma(x)) \odot \sigma(x) \odot "
            r"(1 - \sigma(x)))",
    }
    for text, want in got.items():
        assert text == want
    assert_katex(got)
