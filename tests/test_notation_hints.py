"""The numpy parser and the notation people type from elsewhere (issue 13, item 5):
the paper's ln and x², and matrixcalculus.org's x'*A*x, which numpy syntax reads
differently and says so."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import matdiff as md
from matdiff import cli

X0 = np.array([0.5, 1.5, 2.0])


def test_ln_is_log():
    assert md.parse("ln(x)", shapes={"x": ("n",)}) is md.parse("log(x)", shapes={"x": ("n",)})
    assert str(md.derive("ln(x**2)", "x", shapes={"x": ()})) == "2/x"


def test_superscript_digits_are_powers_not_names():
    f = md.parse("x² + x³", shapes={"x": ("n",)})
    assert set(f.variables()) == {"x"}
    np.testing.assert_allclose(f.evaluate(x=X0), X0 ** 2 + X0 ** 3)
    assert md.parse("sum(x²)").variables() == {"x": ("n",)}
    np.testing.assert_allclose(md.derive("sum(x²)", "x").evaluate(x=X0), 2 * X0)
    with pytest.raises(md.ParseError):
        md.parse("²")


def test_matrixcalculus_input_in_numpy_syntax_gets_a_note():
    with pytest.warns(md.NotationWarning, match="syntax='matrixcalculus'"):
        md.parse("x'*A*x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md.parse("x'*A*x", syntax="matrixcalculus")  # as meant: no note
        md.parse("x.T @ A @ x")
        md.parse("x ** 2")


def test_the_command_prints_the_note(capsys):
    assert cli.main(["x'*A*x", "--wrt", "x"]) == 0
    assert "note: in numpy syntax ' transposes" in capsys.readouterr().err
