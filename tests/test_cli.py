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
    assert "∂f/∂x = 𝟏" in r.stdout


# ------------------------------------------------------------ issue 3: new flags
import json  # noqa: E402

from katex import katex_errors  # noqa: E402

QUAD = ["x @ A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n"]


def test_no_arguments_explains_the_paper_loss():
    code, out = run([])
    assert code == 0
    assert "∂f/∂w =" in out and "∂f/∂b =" in out  # the derivatives, then the steps
    assert "Intermediate variables" in out and "Chain rule" in out
    assert out.count("Derivative of f") == 2


def test_layouts_say_which_layout():
    assert "(A + Aᵀ)x" in run(QUAD)[1] and "layout" not in run(QUAD)[1]
    code, out = run(QUAD + ["--layout", "numerator"])
    assert code == 0 and "xᵀ(A + Aᵀ)" in out and "(numerator layout)" in out
    code, out = run(["A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=m,n",
                     "--layout", "denominator"])
    assert code == 0 and "Aᵀ" in out and "(denominator layout)" in out


def test_style_paper_and_standard():
    args = ["w / x", "--wrt", "x", "--shape", "w=n", "--shape", "x=n"]
    assert "diag(−w ⊘ x²)" in run(args + ["--style", "paper"])[1]
    assert "diag(−w / x²)" in run(args + ["--style", "standard"])[1]
    assert "w ⊗ x" in run(["w * x", "--shape", "w=n", "--shape", "x=n", "--style",
                           "paper"])[1]


def test_format_latex_parses_in_katex():
    outs = []
    for extra in ([], ["--layout", "numerator"], ["--hessian"], ["--style", "paper"]):
        code, out = run(QUAD + ["--format", "latex"] + extra)
        assert code == 0
        outs.append(out.strip())
    assert r"(A + A^\top) x" in outs[0]
    assert r"x^\top (A + A^\top)" in outs[1] and r"\text{(numerator layout)}" in outs[1]
    assert r"\frac{\partial^2 f}{\partial x^2} &= A + A^\top" in outs[2]
    code, out = run(["sum(w * x)", "--wrt", "w", "--shape", "w=n", "--shape", "x=n",
                     "--format", "latex", "--explain"])
    assert code == 0
    blocks = [b for b in out.strip().split("\n\n") if b.strip()]
    bad = katex_errors(outs + blocks)
    assert not bad, bad


def test_format_markdown():
    code, out = run(QUAD + ["--format", "markdown", "--check"])
    assert code == 0
    assert r"$$\frac{\partial f}{\partial x} = (A + A^\top) x$$" in out
    assert "check of ∂f/∂x: `OK" in out


def test_format_json_parses():
    code, out = run(QUAD + ["--format", "json", "--check", "--explain", "--layout",
                            "numerator"])
    assert code == 0
    doc = json.loads(out)
    assert doc["layout"] == "numerator"
    (d,) = doc["derivatives"]
    assert d["wrt"] == "x" and d["shape"] == ["n"] and d["text"] == "xᵀ(A + Aᵀ)"
    assert d["latex"] == r"x^\top (A + A^\top)"
    assert d["check"]["ok"] is True and d["check"]["text"].startswith("OK")
    assert d["explanation"]["wrt"] == "x"
    code, out = run(["--format", "json"])
    assert code == 0 and [d["wrt"] for d in json.loads(out)["derivatives"]] == ["w", "b"]


def test_explain_in_chinese():
    code, out = run(["sum(w * x)", "--wrt", "w", "--shape", "w=n", "--shape", "x=n",
                     "--explain", "--lang", "zh"])
    assert code == 0 and "中间变量" in out and "xᵀ" in out


def test_stdin_with_new_flags(monkeypatch):
    code, out = run(["-", "--wrt", "x", "--shape", "x=n", "--format", "latex"],
                    stdin="sum(sin(3 * x))\n", monkeypatch=monkeypatch)
    assert code == 0 and r"\cos" in out


@pytest.mark.parametrize("flag,bad,choices", [
    ("--layout", "row", "'mixed', 'numerator', 'denominator'"),
    ("--style", "fancy", "'standard', 'paper'"),
    ("--format", "pdf", "'text', 'latex', 'markdown', 'json'"),
    ("--lang", "fr", "'en', 'zh'"),
    ("--syntax", "maple", "'numpy', 'matrixcalculus'"),
])
def test_bad_choice_exit_2_lists_choices(flag, bad, choices, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["sum(x)", flag, bad])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert choices in err and "Traceback" not in err


def test_explain_with_hessian_is_a_user_error(capsys):
    code, cap = _main(QUAD + ["--explain", "--hessian"], capsys)
    assert code == 2 and "--hessian" in cap.err


def test_errors_never_traceback_in_a_subprocess():
    for args in (["x +* y"], ["sum(x)", "--layout", "row"], ["sum(x)", "--wrt", "q"]):
        r = subprocess.run([sys.executable, "-m", "matdiff", *args], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr


def test_train_hook(capsys, monkeypatch):
    import types

    calls = []
    fake = types.ModuleType("matdiff.nn.cli")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "matdiff.nn.cli", fake)
    assert cli.main(["train", "neuron", "--epochs", "3"]) == 0
    assert calls == [["neuron", "--epochs", "3"]]


def test_train_hook_without_nn(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matdiff.nn.cli", None)  # import fails
    code, cap = _main(["train"], capsys)
    assert code == 2 and "matdiff.nn" in cap.err


def test_help_mentions_new_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for word in ("--layout", "--style", "--format", "--explain", "--lang", "train",
                 "numerator"):
        assert word in out
