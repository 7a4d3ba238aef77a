"""The ``matdiff`` command: default run, derivatives, checks, bad input (issue 2)."""

import io
import subprocess
import sys

import pytest

from matdiff import cli


def run(argv, stdin=None, monkeypatch=None):
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.run(argv, out=out)
    return code, out.getvalue()


def test_no_arguments_differentiates_the_paper_loss_by_w_and_b():
    code, out = run([])
    assert code == 0
    assert "∂f/∂w" in out and "∂f/∂b" in out
    assert "shape (n,)" in out and "shape scalar ()" in out


def test_expression_with_shapes_and_hessian():
    code, out = run(["x @ A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n",
                     "--hessian", "--check"])
    assert code == 0
    assert "∂²f/∂x²" in out and "shape (n, n)" in out
    assert "check: OK" in out


def test_all_variables_when_no_wrt():
    code, out = run(["sum(w * x)", "--shape", "w=n", "--shape", "x=n"])
    assert code == 0 and "∂f/∂w" in out and "∂f/∂x" in out


def test_scalar_and_int_dims(monkeypatch):
    code, out = run(["-", "--wrt", "b", "--shape", "b=", "--shape", "x=3"],
                    stdin="sum(x * b)\n", monkeypatch=monkeypatch)
    assert code == 0 and "∂f/∂b" in out


def _main(argv, capsys):
    code = cli.main(argv)
    return code, capsys.readouterr()


def test_parse_error_exit_2_with_caret(capsys):
    code, cap = _main(["x + * y", "--shape", "x=n", "--shape", "y=n"], capsys)
    assert code == 2
    assert "^" in cap.err and "Traceback" not in cap.err and cap.out == ""


def test_shape_error_exit_2(capsys):
    code, cap = _main(["x @ A", "--shape", "x=n", "--shape", "A=m,m"], capsys)
    assert code == 2 and "(m, m)" in cap.err


def test_unknown_wrt_exit_2(capsys):
    code, cap = _main(["sum(x)", "--wrt", "q", "--shape", "x=n"], capsys)
    assert code == 2 and "'q'" in cap.err


def test_bad_shape_option_exit_2(capsys):
    code, cap = _main(["sum(x)", "--shape", "x"], capsys)
    assert code == 2 and "NAME=DIMS" in cap.err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--shape" in out and "x @ A @ x" in out


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "matdiff", "sum(x)", "--shape", "x=n"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "∂f/∂x = 1" in r.stdout
