"""Formulas as written, simplified (issue 13, item 3): exact values stay exact, and
symmetric matrices equal their transposes.

- A constant that is a simple fraction of a closed form prints by name: erf's
  derivative is ``2exp(−x²)/√π``, the normal density's constant ``1/√(2π)``, and ``√2``,
  ``π``, ``log(2)``, ``exp(1)`` (Euler's number: ``e`` is a scalar variable by
  matrixcalculus.org's letters), in Unicode, LaTeX, ASCII and matrixcalculus.org's
  syntax.  Nothing that came from integers prints as a decimal.
- A matrix that is symmetric by its structure (``XᵀX``, ``A + Aᵀ``, ``BᵀSB``, their
  inverses and matrix functions) is its own transpose: ``∂ log det(XᵀX)/∂X`` is
  ``2X(XᵀX)⁻¹``, as matrixcalculus.org prints it, not ``X((XᵀX)⁻¹ + (XᵀX)⁻ᵀ)``.

Every printout here is read back in the unicode syntax and compared in numbers with
the expression it prints, and every derivative with central differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import matdiff as md
from helpers import assert_close, evaluate_dims, fd_derivative, spd
from katex import katex_errors
from matdiff.expr.numbers import CLOSED_FORMS, exact_number
from matdiff.expr.simplify.structure import is_symmetric
from matdiff.render import to_matrixcalculus
from matdiff.render.ascii import to_ascii

SIZES = {"n": 3, "m": 4}
RNG = np.random.default_rng(13)


def read_back(text: str, expr: md.Expr, shapes: dict, values: dict,
              syntax: str = "unicode") -> None:
    """``text`` (a printout of ``expr``) read in ``syntax`` has ``expr``'s values, to
    rounding: the check every printout of this file passes."""
    back = md.parse(text, shapes=shapes, syntax=syntax)
    got = np.asarray(evaluate_dims(back, values, SIZES))
    want = np.asarray(evaluate_dims(expr, values, SIZES))
    assert got.shape == want.shape or got.shape == (), (text, got.shape, want.shape)
    np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-12,
                               atol=1e-14, err_msg=f"{text!r} read back as {back}")


# ====================================================================== the recogniser
@pytest.mark.parametrize("value, text", [
    (2 / math.sqrt(math.pi), "2/√π"),             # erf'(0)
    (1 / math.sqrt(2 * math.pi), "1/√(2π)"),      # the normal density at 0
    (math.sqrt(2), "√2"),
    (1 / math.sqrt(2), "1/√2"),
    (math.sqrt(3) / 2, "√3/2"),
    (math.pi, "π"),
    (-math.pi / 4, "−π/4"),
    (2 * math.pi / 3, "2π/3"),
    (1 / math.pi, "1/π"),
    (math.e, "exp(1)"),
    (math.log(2), "log(2)"),
    (1 / math.log(2), "1/log(2)"),
    (math.log(10), "log(10)"),
    (-4 / math.sqrt(math.pi), "−4/√π"),           # erf'' has −2u·2/√π
    (0.5 / math.sqrt(2 * math.pi), "1/(2√(2π))"),
    (1 / 9, "1/9"),                                # a plain fraction, as before
])
def test_a_closed_form_is_recognised(value, text):
    ex = exact_number(value)
    assert ex is not None and str(ex) == text
    # the text read back is the number (read independently of the recogniser)
    back = md.parse(text, shapes={"x": ("n",)}, syntax="unicode")
    assert abs(back.evaluate({}) - value) <= 2 * math.ulp(value), (text, value)


@pytest.mark.parametrize("value", [0.5, 3.14159, 0.398942, 1.12838, 2.0, -1.0, 0.1,
                                   1e-8, 0.6931, 1.2345678912345, 0.0])
def test_typed_decimals_and_integers_are_not_closed_forms(value):
    # a decimal of up to 8 digits prints as it was typed; so do integers
    assert exact_number(value) is None or exact_number(value).form is None


def test_random_floats_are_almost_never_closed_forms():
    # a float near no simple fraction of the table is left alone (2 ulps is ~4e-16)
    values = RNG.uniform(0.01, 100.0, size=2000)
    hits = [v for v in values if exact_number(float(v)) is not None]
    assert hits == []


@given(p=st.integers(-60, 60).filter(bool), q=st.integers(1, 12),
       k=st.sampled_from(range(len(CLOSED_FORMS))), power=st.sampled_from([1, -1]))
def test_every_simple_fraction_of_a_closed_form_prints_exactly(p, q, k, power):
    c = CLOSED_FORMS[k].value
    v = p * c / q if power > 0 else p / (q * c)
    ex = exact_number(v)
    assert ex is not None, v
    # whichever form is chosen, the printed text reads back as v
    back = md.parse(str(ex), shapes={"x": ("n",)}, syntax="unicode").evaluate({})
    assert abs(back - v) <= 4 * math.ulp(v), (v, str(ex), back)


# ====================================================================== printouts
X_SHAPES = {"x": ("n",)}


@pytest.mark.parametrize("text, printed, latex, ascii_text", [
    # ∂ sum(erf(x))/∂x = (2/√π) exp(−x²)
    ("sum(erf(x))", "2exp(−x²)/√π", r"\frac{2}{\sqrt{\pi}} \exp(-x^{2})",
     "2exp(-x^2)/sqrt(pi)"),
    # ∂ sum(Φ(x))/∂x = φ(x) = exp(−x²/2)/√(2π)
    ("sum(normal_cdf(x))", "exp(−x²/2)/√(2π)",
     r"\frac{1}{\sqrt{2\pi}} \exp(-\frac{1}{2} x^{2})", "exp(-x^2/2)/sqrt(2*pi)"),
    # ∂ sum(x Φ(x))/∂x = Φ(x) + x φ(x)
    ("sum(gelu(x))", "Φ(x) + (x ⊙ exp(−x²/2))/√(2π)", r"\frac{1}{\sqrt{2\pi}}",
     "Phi(x) + (x .* exp(-x^2/2))/sqrt(2*pi)"),
    ("sum(x) / 3.141592653589793", "(1/π)𝟏", r"\frac{1}{\pi}", "(1/pi)*1"),
    ("1.4142135623730951 * sum(x)", "√2𝟏", r"\sqrt{2}", "sqrt(2)*1"),
    ("2.718281828459045 * sum(x)", "exp(1)𝟏", r"\mathrm{e}", "exp(1)*1"),
    ("0.6931471805599453 * sum(x**2)", "2log(2)x", r"2 \log(2) x", "2log(2)x"),
    ("sum(2**x)", "log(2)·2^x", r"\log(2)", "log(2)*2^x"),
])
def test_derivatives_print_their_constants_exactly(text, printed, latex, ascii_text):
    f = md.parse(text, shapes=X_SHAPES)
    g = md.derive(f, "x")
    x0 = RNG.normal(size=3)
    assert_close(g.evaluate(x=x0), fd_derivative(f, {"x": x0}, "x"), rtol=1e-6,
                 what="derivative vs central differences")
    assert str(g) == printed
    assert latex in md.latex(g)
    assert to_ascii(str(g)) == ascii_text
    assert not katex_errors([md.latex(g)])
    read_back(str(g), g, X_SHAPES, {"x": x0})
    read_back(to_matrixcalculus(g), g, X_SHAPES, {"x": x0}, syntax="matrixcalculus")


def test_no_decimal_in_the_printouts_of_the_activations():
    # erf, Φ, GELU and log_softmax to the second order: every constant is exact
    shapes = {"x": ("n",)}
    x0 = RNG.normal(size=3)
    for text in ("sum(erf(x))", "sum(normal_cdf(x))", "sum(gelu(x))",
                 "sum(log_softmax(x))", "sum(erf(x) * gelu(x))"):
        f = md.parse(text, shapes=shapes)
        for e in (f, md.derive(f, "x"), md.hessian(f, "x")):
            printed = str(e)
            assert "." not in printed, printed  # no 1.12838, no 0.398942
            read_back(printed, e, shapes, {"x": x0})
            assert not katex_errors([md.latex(e)])


def test_the_public_contract_s_erf_prints_two_over_root_pi():
    # the user's erf of DESIGN.md: its derivative's float 1.1283791670955126 is 2/√π
    import scipy.special

    erf = md.define_function("erf", derivative=lambda u: 1.1283791670955126
                             * md.exp(-u**2), numpy=scipy.special.erf)
    g = md.derive(md.sum(erf(md.vector("x", "n"))), "x")
    assert str(g) == "2exp(−x²)/√π"


def test_a_wrong_constant_is_caught():
    # the plant: √π printed where 2/√π is meant (and π for 1/π); the read-back fails
    f = md.parse("sum(erf(x))", shapes=X_SHAPES)
    g = md.derive(f, "x")
    x0 = RNG.normal(size=3)
    for wrong in ("exp(−x²)/√π", "2exp(−x²)√π", "2exp(−x²)/π"):
        with pytest.raises(AssertionError):
            read_back(wrong, g, X_SHAPES, {"x": x0})
    with pytest.raises(AssertionError):
        read_back("π·1", md.derive(md.parse("sum(x)/3.141592653589793",
                                            shapes=X_SHAPES), "x"), X_SHAPES, {"x": x0})


def test_pi_reads_as_the_constant_unless_it_is_a_name():
    assert md.parse("2/√π", shapes={"x": ("n",)}, syntax="unicode").evaluate({}) == \
        pytest.approx(2 / math.sqrt(math.pi), rel=1e-15)
    # a variable named π is that variable
    e = md.parse("2π", shapes={"π": ()}, syntax="unicode")
    assert e.evaluate(π=5.0) == 10.0
    # e is a name (a scalar by matrixcalculus.org's letters); Euler's number is exp(1)
    assert md.parse("exp(1)e", shapes={"e": ()}, syntax="unicode").evaluate(e=2.0) == \
        pytest.approx(2 * math.e, rel=1e-15)


# ====================================================================== symmetric
MATS = {"X": ("m", "n"), "A": ("n", "n"), "B": ("n", "n"), "C": ("n", "n"),
        "S": ("n", "n", "symmetric"), "x": ("n",), "v": ("n",), "W": ("n", "m")}


def _values() -> dict:
    S = spd(RNG, 3)
    return {"X": RNG.normal(size=(4, 3)), "A": RNG.normal(size=(3, 3)),
            "B": RNG.normal(size=(3, 3)) + 2 * np.eye(3), "C": RNG.normal(size=(3, 3)),
            "S": S, "x": RNG.normal(size=3), "v": RNG.normal(size=3),
            "W": RNG.normal(size=(3, 4))}


@pytest.mark.parametrize("text", [
    "X.T @ X", "X @ X.T", "A + A.T", "S", "eye(n)", "diag(v)", "3 * S", "inv(X.T @ X)",
    "expm(X.T @ X)", "sqrtm(X.T @ X)", "logm(X.T @ X)", "matrix_power(X.T @ X, 3)",
    "B.T @ S @ B", "X.T @ X + eye(n)", "inv(A + A.T)", "A.T @ B + B.T @ A",
    "exp(A + A.T)",
])
def test_symmetric_by_structure(text):
    e = md.parse(text, shapes=MATS)
    assert is_symmetric(e)
    M = evaluate_dims(e, _values(), SIZES)
    np.testing.assert_allclose(M, M.T, rtol=1e-10, atol=1e-12)  # independently
    # and the simplifier knows it: eᵀ is e, the same node
    assert md.parse(f"({text}).T", shapes=MATS) is e or str(md.transpose(e)) == str(e)


@pytest.mark.parametrize("text", ["A", "A @ B", "A + B", "X.T @ X @ A", "A @ S",
                                  "inv(A)", "expm(A)", "A + 2 * A.T"])
def test_not_symmetric(text):
    e = md.parse(text, shapes=MATS)
    assert not is_symmetric(e)
    M = evaluate_dims(e, _values(), SIZES)
    assert not np.allclose(M, M.T)


@pytest.mark.parametrize("text, wrt, printed", [
    # ∂ log det(XᵀX)/∂X = 2X(XᵀX)⁻¹  (matrixcalculus.org; Cookbook eq. 55 with XᵀX)
    ("logdet(X.T @ X)", "X", "2X(XᵀX)⁻¹"),
    ("logdet(W @ W.T)", "W", "2(WWᵀ)⁻¹W"),
    # ∂ tr((XᵀX)⁻¹)/∂X = −2X(XᵀX)⁻²
    ("tr(inv(X.T @ X))", "X", "−2X(XᵀX)⁻¹(XᵀX)⁻¹"),
    ("x @ (A + A.T) @ x", "x", "2(A + Aᵀ)x"),
    ("tr(S @ S)", "S", "2S"),
    # ∂ log det(BᵀSB)/∂B = 2SB(BᵀSB)⁻¹ for a symmetric S
    ("logdet(B.T @ S @ B)", "B", "2SB(BᵀSB)⁻¹"),
    ("tr(inv(A + A.T) @ C)", "C", "(A + Aᵀ)⁻¹"),
    # ∂ tr(expm(XᵀX)(C + Cᵀ))/∂X = 2X L_exp(XᵀX, C + Cᵀ): L_exp(S, E) of symmetric
    # S and E is symmetric
    ("tr(expm(X.T @ X) @ (C + C.T))", "X", "2X L_exp(XᵀX, C + Cᵀ)"),
])
def test_symmetric_transposes_merge(text, wrt, printed):
    f = md.parse(text, shapes=MATS)
    g = md.derive(f, wrt)
    vals = _values()
    vals = {k: v for k, v in vals.items() if k in f.variables()}
    assert str(g) == printed
    assert "⁻ᵀ" not in str(g)
    assert_close(g.evaluate(vals), fd_derivative(f, vals, wrt), rtol=1e-5, atol=1e-7,
                 what=f"∂{text}/∂{wrt} vs central differences")
    read_back(str(g), g, {k: MATS[k] for k in f.variables()}, vals)
    assert not katex_errors([md.latex(g)])


def test_the_inverse_s_derivative_uses_the_symmetric_inverse():
    # ∂(XᵀX)⁻¹/∂X in index notation: no transposed inverse is left in it
    f = md.parse("inv(X.T @ X)", shapes=MATS)
    g = md.derive(f, "X")
    vals = {"X": _values()["X"]}
    assert "⁻ᵀ" not in str(g)
    assert_close(g.evaluate(vals), fd_derivative(f, vals, "X"), rtol=1e-5, atol=1e-7)


# ====================================================================== zero blocks
STACK_SHAPES = {"x": ("n",), "y": ("m",), "A": ("n", "n"), "s": ()}


@pytest.mark.parametrize("text, wrt, printed, latex", [
    # ∂[x; sum(y)]/∂x = [I; 0ᵀ]: the zero row has n entries
    ("concat(x, [sum(y)])", "x", "concat(I, [zeros(n)])",
     r"\begin{bmatrix} I \\ \mathbf{0}_{n}^\top \end{bmatrix}"),
    # ∂[x; y]/∂y = [0; I]: an n × m block of zeros over I
    ("concat(x, y)", "y", "concat(zeros(n, m), I)",
     r"\begin{bmatrix} \mathbf{0}_{n \times m} \\ I \end{bmatrix}"),
    ("concat(2*x, y)", "x", "concat(2I, zeros(m, n))", r"\mathbf{0}_{m \times n}"),
    ("concat(A @ x, y)", "x", "concat(A, zeros(m, n))", r"\mathbf{0}_{m \times n}"),
    ("concat(x*s, y)", "s", "concat(x, zeros(m))", r"\mathbf{0}_{m}"),
    ("[sum(x), sum(y)]", "x", "[𝟏, zeros(n)]", r"\mathbf{0}_{n}^\top"),
    ("concat(x**2, y)", "x", "concat(diag(2x), zeros(m, n))", r"\mathbf{0}_{m \times n}"),
])
def test_a_zero_block_prints_with_its_dims_and_reads_back(text, wrt, printed, latex):
    f = md.parse(text, shapes=STACK_SHAPES)
    g = md.derive(f, wrt)
    vals = {"x": RNG.normal(size=3), "y": RNG.normal(size=4), "A": RNG.normal(size=(3, 3)),
            "s": 0.7}
    vals = {k: v for k, v in vals.items() if k in f.variables()}
    assert_close(evaluate_dims(g, vals, SIZES), fd_derivative(f, vals, wrt), rtol=1e-6,
                 atol=1e-8, what="derivative vs central differences")
    assert str(g) == printed
    assert latex in md.latex(g)
    assert not katex_errors([md.latex(g)])
    shapes = {k: STACK_SHAPES[k] for k in vals}
    read_back(str(g), g, shapes, vals)


def test_zeros_reads_dims_and_refuses_anything_else():
    shapes = {"x": ("n",), "y": ("m",)}
    assert md.parse("zeros(n)", shapes=shapes, syntax="unicode").shape == ("n",)
    assert md.parse("zeros(m, n)", shapes=shapes, syntax="unicode").shape == ("m", "n")
    assert str(md.parse("concat(x, zeros(n + 1))", shapes=shapes,
                        syntax="unicode").shape[0]) == "2·n + 1"
    for bad, word in (("zeros(x)", "takes dims"), ("zeros(n, m, n)", "one dim"),
                      ("zeros(0)", "at least 1")):
        with pytest.raises(md.ParseError) as info:
            md.parse(bad, shapes=shapes, syntax="unicode")
        assert word in info.value.message and "^" in str(info.value)


def test_a_planted_wrong_zero_block_is_caught():
    # the plant: the zero row printed as x; the read-back fails
    f = md.parse("concat(x, [sum(y)])", shapes=STACK_SHAPES)
    g = md.derive(f, "x")
    vals = {"x": RNG.normal(size=3), "y": RNG.normal(size=4)}
    with pytest.raises(AssertionError):
        read_back("concat(I, [x])", g, {"x": ("n",), "y": ("m",)}, vals)


# ====================================================================== Hessian blocks
HESS_SHAPES = {"X": ("m", "n"), "y": ("n",), "A": ("n", "m"), "w": ("n",), "b": (),
               "x": ("n",)}


def _hess_values() -> dict:
    return {"X": RNG.normal(size=(4, 3)), "y": RNG.normal(size=3),
            "A": RNG.normal(size=(3, 4)), "w": RNG.normal(size=3), "b": 0.3,
            "x": RNG.normal(size=3)}


def _fd_hessian(f: md.Expr, names: list[str], vals: dict) -> np.ndarray:
    """Central differences of the gradient by [vec(X); y; …] (vec stacks columns)."""
    g = md.derive(f, names)
    sizes = [np.size(vals[n]) for n in names]

    def at(flat: np.ndarray) -> np.ndarray:
        parts, k = {}, 0
        for n, s in zip(names, sizes, strict=True):
            shape = np.shape(vals[n])
            parts[n] = np.reshape(flat[k:k + s], shape, order="F") if shape else flat[k]
            k += s
        return np.asarray(g.evaluate({**vals, **parts}))

    flat0 = np.concatenate([np.ravel(vals[n], order="F") for n in names])
    eps = 1e-6
    cols = []
    for k in range(flat0.size):
        e = np.zeros_like(flat0)
        e[k] = eps
        cols.append((at(flat0 + e) - at(flat0 - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("text, wrt, printed", [
    # the case: a matrix and a vector; blocks ∂²f/∂vec(X)², ∂²f/∂vec(X)∂yᵀ, …
    ("sum(exp(X @ y)) + tr(A @ X) * (y @ y)", ["X", "y"],
     "block([[yyᵀ ⊗ diag(exp(Xy)), 2vec(Aᵀ)yᵀ + (I ⊗ exp(Xy)) + (y ⊗ diag(exp(Xy))X)], "
     "[2y vec(Aᵀ)ᵀ + (exp(Xy)ᵀ ⊗ I)K + (yᵀ ⊗ Xᵀdiag(exp(Xy))), "
     "2tr(AX)I + Xᵀdiag(exp(Xy))X]])"),
    # a neuron's weights and bias: blocks of a vector and a scalar
    ("sin(b) * sum(exp(w))", ["b", "w"],
     "block([[−sin(b)sum(exp(w)), cos(b)exp(w)ᵀ], [cos(b)exp(w), diag(sin(b)exp(w))]])"),
    ("(w @ x + b)**2", ["w", "b"],
     "block([[2xxᵀ, 2x], [2xᵀ, 2]])"),
    # a matrix and a scalar: vec(·) columns and rows
    ("sum(X @ y) * b**2", ["X", "b"], "block([[0, vec(2b𝟏yᵀ)], [vec(2b𝟏yᵀ)ᵀ, 2sum(X, axis=0)ᵀy]])"),
])
def test_the_hessian_by_several_variables_prints_as_blocks(text, wrt, printed):
    from matdiff.render.layout import hessian_blocks
    from matdiff.render.mform import to_numpy

    f = md.parse(text, shapes=HESS_SHAPES)
    H = md.hessian(f, wrt)
    vals = {k: v for k, v in _hess_values().items() if k in f.variables()}
    assert str(H) == printed
    assert "split(" not in str(H) and "↦" not in str(H)
    want = np.asarray(H.evaluate(vals))
    assert_close(want, _fd_hessian(f, wrt, vals), rtol=1e-5, atol=1e-6,
                 what="the Hessian vs central differences of the gradient")
    # the printed block matrix, evaluated by the rules of matrix algebra, is H
    assert_close(to_numpy(hessian_blocks(H), vals), want, rtol=1e-12, atol=1e-12,
                 what="the printed blocks")
    if "K" not in printed and "vec(" not in printed:  # what the unicode syntax reads
        read_back(printed, H, {k: HESS_SHAPES[k] for k in vals}, vals)
    assert md.latex(H).startswith(r"\begin{bmatrix}")
    assert not katex_errors([md.latex(H)])


def test_each_block_is_the_second_derivative_by_its_pair():
    # block (a, b) of the printout is ∂/∂b of ∂f/∂a, derived on its own
    from matdiff.render.layout import hessian_blocks
    from matdiff.render.mform import Forms, to_numpy

    f = md.parse("sum(exp(X @ y)) + tr(A @ X) * (y @ y)", shapes=HESS_SHAPES)
    H = md.hessian(f, ["X", "y"])
    cells = hessian_blocks(H).args
    assert len(cells) == 4
    assert str(md.derive(md.derive(f, "y"), "y")) == "2tr(AX)I + Xᵀdiag(exp(Xy))X"
    # a plant: the X-X block doubled; the comparison in numbers fails
    vals = {k: v for k, v in _hess_values().items() if k in f.variables()}
    forms = Forms()
    wrong = forms.make("block", [forms.scale(2.0, cells[0]), *cells[1:]], (2, 2),
                       H.shape, "m")
    with pytest.raises(AssertionError):
        assert_close(to_numpy(wrong, vals), np.asarray(H.evaluate(vals)))


def test_other_second_derivatives_print_as_before():
    # by one variable, or a Jacobian by several: no blocks
    f = md.parse("sum(exp(X @ y))", shapes=HESS_SHAPES)
    assert not str(md.hessian(f, "y")).startswith("block(")
    assert str(md.derive(f, ["X", "y"])).startswith("concat(vec(")
