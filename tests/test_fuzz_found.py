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
