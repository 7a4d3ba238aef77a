"""md.check: a check that exercises the derivative (several points, both sides of every
kink, finite values only), and the check of a person's own derivative (a claim).

Every test that expects a failure plants a wrong derivative on purpose: a check that
could not fail would pass them.
"""

from __future__ import annotations

import numpy as np
import pytest

import matdiff as md

NEURON = "max(0, dot(w, x) + b)"
NEURON_SHAPES = {"w": ("n",), "x": ("n",), "b": ()}
LOSS = "mean((y - max(0, X @ w + b))**2)"
LOSS_SHAPES = {"X": ("N", "n"), "y": ("N",), "w": ("n",), "b": ()}
#: the paper's gradient of the loss (section 6), in matdiff's layout
LOSS_GRAD = "-2/N * X.T @ ((y - max(0, X@w + b)) * step(X@w + b))"


@pytest.mark.parametrize("seed", range(12))
def test_every_relu_piece_is_exercised(seed: int) -> None:
    """Whatever the seed, the neuron's check sees the ReLU on and off."""
    r = md.check(NEURON, "w", shapes=NEURON_SHAPES, seed=seed)
    assert r.ok and r.status == "ok"
    assert r.pieces == (2, 2)
    assert len(r.points) >= 3
    zs = [float(p["w"] @ p["x"] + p["b"]) for p in r.points]
    assert min(zs) < 0 < max(zs)


@pytest.mark.parametrize("seed", range(6))
def test_a_derivative_that_is_zero_where_the_relu_is_off_fails(seed: int) -> None:
    """Planted: the claim 0 agrees with the true derivative step(z)x wherever the
    ReLU is off; one point there (the old check) passed it."""
    r = md.check(NEURON, "w", shapes=NEURON_SHAPES, derivative="0 * w", seed=seed)
    assert not r.ok and r.status == "mismatch"


def test_a_two_layer_network_exercises_both_layers() -> None:
    f = "sum(max(0, W2 @ max(0, W1 @ x + b1) + b2))"
    shapes = {"W1": ("h", "n"), "b1": ("h",), "W2": ("m", "h"), "b2": ("m",), "x": ("n",)}
    r = md.check(f, "W1", shapes=shapes)
    assert r.ok and r.pieces == (4, 4)


def test_the_papers_gradient_is_right_and_its_mistakes_are_caught() -> None:
    right = md.check(LOSS, "w", shapes=LOSS_SHAPES, derivative=LOSS_GRAD)
    assert right.ok and right.claim and right.pieces == (2, 2)
    assert "OK: the claimed derivative agrees" in str(right)
    # planted: the step(z) factor left out
    wrong = md.check(LOSS, "w", shapes=LOSS_SHAPES,
                     derivative="-2/N * X.T @ (y - max(0, X@w + b))")
    assert not wrong.ok and wrong.status == "mismatch"
    assert "misses the piecewise factor" in wrong.hint
    # the counterexample is a point with both values, and they differ
    assert wrong.counterexample is not None and set(wrong.counterexample) >= {"X", "w"}
    assert not np.allclose(wrong.got, wrong.expected)
    assert "MISMATCH" in str(wrong) and "central differences give" in str(wrong)


def test_claims_off_by_a_factor_or_transposed_get_a_hint() -> None:
    r = md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="4*x")
    assert not r.ok and "times 2" in r.hint
    sq = {"X": ("n", "n"), "A": ("n", "n")}
    r = md.check("tr(X @ A)", "X", shapes=sq, derivative="A")  # the answer is Aᵀ
    assert not r.ok and "transpose" in r.hint
    assert md.check("tr(X @ A)", "X", shapes=sq, derivative="A.T").ok
    r = md.check("A @ x", "x", shapes={"A": ("m", "n"), "x": ("n",)}, derivative="A.T")
    assert not r.ok and "shape (n, m)" in r.hint and "other layout" in r.hint


def test_a_claim_reads_a_dim_as_its_size() -> None:
    """In a claim, the N of 2/N is the dim's size (f has no variable N)."""
    f = "mean(x**2)"
    assert md.check(f, "x", shapes={"x": ("N",)}, derivative="2/N * x").ok
    assert not md.check(f, "x", shapes={"x": ("N",)}, derivative="2 * x").ok


def test_a_wrong_rule_of_matdiff_is_caught() -> None:
    """Planted: a function whose derivative rule is wrong (tanh' = 1 + tanh²)."""
    md.define_function("tanh_bad", derivative=lambda u: 1 + md.tanh(u) ** 2,
                       numpy=np.tanh, domain=(-2.0, 2.0))
    r = md.check("sum(tanh_bad(x))", "x", shapes={"x": ("n",)})
    assert not r.ok and r.status == "mismatch"


def test_nan_is_never_agreement() -> None:
    # f is not defined at the given point: nothing is checked
    r = md.check("log(x)", "x", shapes={"x": ()}, values={"x": -1.0})
    assert not r.ok and r.status == "unchecked" and "not finite" in r.reason
    assert "COULD NOT CHECK" in str(r)
    # a claim that is nan everywhere is not right
    r = md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="log(-1 - x*x)")
    assert not r.ok


def test_singular_sizes_are_avoided() -> None:
    """logdet(XᵀX) is -inf where X has fewer rows than columns; the check tries
    other sizes of the dims and checks where XᵀX is invertible."""
    r = md.check("logdet(X.T @ X)", "X", shapes={"X": ("m", "n")})
    assert r.ok, str(r)
    X = r.points[0]["X"]
    assert X.shape[0] >= X.shape[1]


def test_given_values_are_the_one_point() -> None:
    vals = {"x": np.array([1.0, 2.0]), "A": np.eye(2)}
    r = md.check("x @ A @ x", "x", vals)
    assert r.ok and len(r.points) == 1
    np.testing.assert_array_equal(r.points[0]["x"], vals["x"])


def test_check_options_are_validated() -> None:
    with pytest.raises(md.MatdiffError, match="points must be at least 1"):
        md.check("sum(x)", "x", shapes={"x": ("n",)}, points=0)
    with pytest.raises(TypeError, match="derivative must be an expression or its text"):
        md.check("sum(x)", "x", shapes={"x": ("n",)}, derivative=3)


def test_text_whose_variable_simplification_cancelled() -> None:
    """p / p is 1, but the text names p: check, explain and value_and_grad find its
    shape in the text, as derive does (zero derivative)."""
    r = md.check("p / p", "p", shapes={"p": ("n",)})
    assert r.ok
    assert md.check("p / p", "p").ok
    assert "∂y/∂p = 0" in str(md.explain("p / p", "p"))
    v, g = md.value_and_grad("sum(p / p)", "p", shapes={"p": ("n",)})(p=np.ones(3))
    assert float(v) == 3.0 and np.all(np.asarray(g) == 0)


# ----------------------------------------------------- hints as codes (issue 13, item 2)
def _claims() -> list[tuple[str, object, dict, str, str]]:
    """(f, wrt, shapes, a wrong claim planted, the code its hint must have)."""
    sq = {"X": ("n", "n"), "A": ("n", "n")}
    return [
        ("sum(x**2)", "x", {"x": ("n",)}, "4*x", "constant_factor"),
        ("tr(X @ A)", "X", sq, "A", "transpose"),
        ("A @ x", "x", {"A": ("m", "n"), "x": ("n",)}, "A.T", "wrong_shape_transposed"),
        ("A @ x", "x", {"A": ("m", "n"), "x": ("n",)}, "x", "wrong_shape"),
        (LOSS, "w", LOSS_SHAPES, "-2/N * X.T @ (y - max(0, X@w + b))", "piecewise_as_one"),
        ("logdet(S)", "S", {"S": ("n", "n", "symmetric")},
         "inv(S) + inv(S).T - inv(S) * eye(n)", "handbook_symmetric"),
    ]


@pytest.mark.parametrize("f, wrt, shapes, claim, code", _claims())
def test_a_hint_is_a_code_with_its_parameters(f, wrt, shapes, claim, code) -> None:
    from matdiff.explain.lang import HINTS, hint_text, sentence

    r = md.check(f, wrt, shapes=shapes, derivative=claim)
    assert not r.ok and r.hint_code == code
    # the English is written from the code; the Chinese too, never by reading English
    assert r.hint == hint_text(code, r.hint_params) == r.hint_in("en")
    zh = r.hint_in("zh")
    assert zh == hint_text(code, r.hint_params, "zh") and zh != r.hint
    assert not any(c.isascii() and c.isalpha() for c in zh.split("：")[0][:4])
    # what the command prints for --lang zh (it reads the hint's text) is the same
    assert sentence(r.hint, "zh") == zh
    assert set(HINTS["en"]) == set(HINTS["zh"])


def test_every_hint_has_both_languages_with_the_same_parameters() -> None:
    import string

    from matdiff.explain.lang import HINTS

    fields = {lang: {code: {f for _, f, _, _ in string.Formatter().parse(t) if f}
                     for code, t in table.items()} for lang, table in HINTS.items()}
    assert fields["en"] == fields["zh"]


def test_a_right_claim_has_no_hint_and_the_english_output_is_unchanged() -> None:
    r = md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="2*x")
    assert r.ok and r.hint == "" and r.hint_code == "" and r.hint_in("zh") == ""
    wrong = md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="4*x")
    assert "  hint: the claim is the derivative times 2: a constant factor is off" \
        in str(wrong)
