"""The command as a person can trust it (issue 13): --check's exit status and JSON,
--claim, expressions that start with '-', mistyped subcommands, ASCII terminals,
and a bad --plot path before any training."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np

import matdiff as md
from matdiff import cli
from matdiff.render.ascii import to_ascii

NEURON = ["max(0, dot(w, x) + b)", "--wrt", "w", "--shape", "w=n", "--shape", "x=n",
          "--shape", "b="]


def run(argv, out=None):
    out = out or io.StringIO()
    code = cli.run(argv, out=out)
    return code, out.getvalue() if isinstance(out, io.StringIO) else ""


def test_check_exercises_both_relu_pieces_and_exits_0():
    code, out = run(NEURON + ["--check"])
    assert code == 0
    assert "check: OK" in out and "2 of 2 pieces exercised" in out


def test_check_of_a_wrong_rule_exits_1():
    """Planted: a function whose derivative rule is wrong."""
    md.define_function("tanh_bad", derivative=lambda u: 1 + md.tanh(u) ** 2,
                       numpy=np.tanh, domain=(-2.0, 2.0))
    code, out = run(["sum(tanh_bad(x))", "--wrt", "x", "--shape", "x=n", "--check"])
    assert code == 1
    assert "check: MISMATCH" in out and "central differences give" in out


def test_check_that_cannot_check_exits_3_and_json_has_a_boolean():
    code, out = run(["log(-1 - x*x)", "--wrt", "x", "--shape", "x=", "--check",
                     "--format", "json"])
    assert code == 3
    check = json.loads(out)["derivatives"][0]["check"]
    assert check["ok"] is False and check["status"] == "unchecked"
    assert "not finite" in check["reason"] and check["max_abs_error"] is None
    code, out = run(NEURON + ["--check", "--format", "json"])
    check = json.loads(out)["derivatives"][0]["check"]
    assert code == 0 and check["ok"] is True and check["pieces"] == [2, 2]


def test_claim_right_and_wrong():
    code, out = run(NEURON + ["--claim", "step(dot(w, x) + b) * x"])
    assert code == 0 and "right" in out
    code, out = run(NEURON + ["--claim", "x"])
    assert code == 1 and "wrong" in out
    assert "misses the piecewise factor" in out
    assert "matdiff's ∂f/∂w = step(w · x + b)x" in out
    code, out = run(NEURON + ["--claim", "x", "--format", "json"])
    doc = json.loads(out)
    assert code == 1 and doc["check"]["ok"] is False
    assert set(doc["check"]["counterexample"]) == {"w", "x", "b"}


def test_claim_of_the_papers_loss_gradient():
    code, out = run(["mean((y - max(0, X @ w + b))**2)", "--wrt", "w", "--shape", "X=N,n",
                     "--shape", "y=N", "--shape", "w=n", "--shape", "b=", "--claim",
                     "-2/N * X.T @ ((y - max(0, X@w + b)) * step(X@w + b))"])
    assert code == 0, out


def test_claim_needs_one_variable():
    code = cli.main(["x @ A @ x", "--claim", "A @ x"])
    assert code == 2


def test_an_expression_that_starts_with_minus():
    for argv in (["-sum(x)", "--wrt", "x"], ["-e", "-sum(x)", "--wrt", "x"],
                 ["--expr=-sum(x)", "--wrt", "x"]):
        code, out = run(argv)
        assert code == 0 and "f = −sum(x)" in out, argv


def test_a_mistyped_subcommand(capsys):
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "did you mean train?" in err and "matdiff -e trian" in err
    code, out = run(["-e", "trian", "--wrt", "trian"])  # the variable, on purpose
    assert code == 0


def test_ascii_output_where_the_terminal_cannot_encode_unicode():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    code = cli.run(["x @ A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n",
                    "--explain"], out=stream)
    stream.flush()
    text = raw.getvalue().decode("ascii")
    assert code == 0 and "df/dx = (A + A^T)x" in text
    code, out = run(["x @ A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n",
                     "--ascii"])
    assert out.isascii() and "(A + A^T)x" in out


def test_ascii_in_a_real_ascii_terminal_and_chinese():
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    p = subprocess.run([sys.executable, "-m", "matdiff", "sum(w * x)", "--wrt", "w",
                        "--shape", "w=n", "--shape", "x=n", "--explain", "--lang", "zh"],
                       capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr.decode("ascii", "replace")
    assert p.stdout.isascii() and b"Traceback" not in p.stderr
    assert b"df/dw" in p.stdout


def test_to_ascii_spellings():
    assert to_ascii("xᵀ(A + Aᵀ)x") == "x^T(A + A^T)x"
    assert to_ascii("X⁻ᵀ ⊘ y²") == "X^-T ./ y^2"
    assert to_ascii("σ(x) · δᵢⱼ") == "sigma(x) * delta_ij"
    assert to_ascii("中").startswith("\\u")


def test_bad_plot_path_is_refused_before_training(capsys):
    from matdiff.nn import cli as nn_cli

    assert nn_cli.main(["neuron", "--plot", "/nonexistent/dir/x.png"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert nn_cli.main(["neuron", "--plot", "curves.txt"]) == 2


def test_the_printout_says_which_shapes_it_inferred():
    code, out = run(["max(0, w @ x + b)", "--wrt", "w"])
    assert code == 0 and "b scalar ()" in out  # a–g: a scalar bias, as the paper's
    assert "inferred: b, w, x" in out and "--shape b=" in out
    code, out = run(["max(0, w @ x + b)", "--wrt", "w", "--shape", "b=", "--format",
                     "json"])
    assert json.loads(out)["inferred"] == ["w", "x"]
    code, out = run(NEURON)
    assert "inferred" not in out
    # usage against the letters is said: here every name had to be a scalar
    code, out = run(["sum(log(1+exp(-y.*(X*w))))", "--syntax", "matrixcalculus",
                     "--wrt", "w"])
    assert "usage made X, w, y otherwise" in out


def test_the_command_reads_its_own_notation():
    code, out = run(["xᵀ(A + Aᵀ)x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n"])
    assert code == 0 and "∂f/∂x = 2(A + Aᵀ)x" in out
    code, out = run(["2N⁻¹Xᵀ(y − Xw)", "--wrt", "w", "--shape", "X=N,n", "--shape", "y=N",
                     "--shape", "w=n", "--syntax", "unicode"])
    assert code == 0 and "∂f/∂w = −2XᵀX/N" in out


def test_the_printed_shape_matches_the_printed_formula_in_every_layout():
    code, out = run(["A @ x", "--wrt", "x", "--shape", "A=m,n", "--shape", "x=n",
                     "--layout", "denominator"])
    assert "∂f/∂x = Aᵀ    shape (n, m) as printed; evaluate returns (m, n)" in out
    code, out = run(["A @ x", "--wrt", "x", "--shape", "A=m,n", "--shape", "x=n"])
    assert "∂f/∂x = A    shape (m, n)\n" in out
    code, out = run(["sum(A @ x)", "--wrt", "A", "--shape", "A=m,n", "--shape", "x=n",
                     "--layout", "numerator", "--format", "json"])
    d = json.loads(out)["derivatives"][0]
    assert d["shape"] == ["m", "n"] and d["printed_shape"] == ["n", "m"]
