"""Typing: the generated declarations of the builders made from the function tables
are current and agree with the builders, and mypy checks a user's program against
matdiff's public API (its right calls pass, its wrong ones are reported).

The mypy test takes about half a minute (a cold cache); it runs wherever mypy is
installed (the ``dev`` extra, so in CI).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import matdiff as md
from matdiff.expr import builders, builders_typed, gen_types
from matdiff.expr.functions import FUNCTIONS
from matdiff.expr.matrix_functions import MATRIX_FUNCTIONS

SRC = Path(md.__file__).resolve().parent.parent


# ====================================================================== generated files
def test_the_generated_module_is_current() -> None:
    """Fails when a function was added to a table (or removed) and
    ``python -m matdiff.expr.gen_types`` was not run."""
    assert gen_types.MODULE.read_text("utf-8") == gen_types.render_module(), (
        "src/matdiff/expr/builders_typed.py is out of date: run "
        "python -m matdiff.expr.gen_types")


def test_the_generated_block_of_the_package_is_current() -> None:
    init = gen_types.package_init()
    text = init.read_text("utf-8")
    assert gen_types.render_exports() in text, (
        "the generated block of src/matdiff/__init__.py is out of date: run "
        "python -m matdiff.expr.gen_types")


def test_a_new_row_changes_what_is_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a built-in row added to the table is declared (and so the
    committed file no longer matches)."""
    row = dataclasses.replace(FUNCTIONS["tanh"], name="tanh_twin")
    monkeypatch.setitem(FUNCTIONS, "tanh_twin", row)
    text = gen_types.render_module()
    assert "    def tanh_twin(a: ExprLike, /) -> Expr:" in text
    assert '    "tanh_twin",' in text
    assert text != gen_types.MODULE.read_text("utf-8")


def test_a_new_matrix_function_is_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(MATRIX_FUNCTIONS["inv"], name="inv_twin")
    monkeypatch.setitem(MATRIX_FUNCTIONS, "inv_twin", spec)
    assert "    def inv_twin(a: ExprLike, /) -> Expr:" in gen_types.render_module()


def test_a_users_function_is_not_declared() -> None:
    """``md.define_function`` adds a row at run time: no static declaration can know
    it, and it must not make the committed file look stale."""
    md.define_function("cube_fn", derivative=lambda u: 3 * u**2, numpy=lambda a: a**3,
                       domain=(-2.0, 2.0))
    assert "cube_fn" not in gen_types.builder_names()
    assert gen_types.MODULE.read_text("utf-8") == gen_types.render_module()


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "builders_typed.py"
    stale.write_text(gen_types.render_module().replace('    "relu",\n', ""), "utf-8")
    init = tmp_path / "__init__.py"
    init.write_text(gen_types.package_init().read_text("utf-8"), "utf-8")
    monkeypatch.setattr(gen_types, "MODULE", stale)
    monkeypatch.setattr(gen_types, "package_init", lambda: init)
    assert gen_types.main(["--check"]) == 1
    assert "builders_typed.py is out of date" in capsys.readouterr().err
    assert gen_types.main([]) == 0  # rewrites it
    assert stale.read_text("utf-8") == gen_types.render_module()
    assert gen_types.main(["--check"]) == 0


def test_the_markers_must_be_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init = tmp_path / "__init__.py"
    init.write_text('"""no markers"""\n', "utf-8")
    monkeypatch.setattr(gen_types, "package_init", lambda: init)
    with pytest.raises(SystemExit, match="markers"):
        gen_types.main(["--check"])


# ====================================================================== declarations vs builders
def test_the_generator_declares_what_the_builders_made() -> None:
    """The generator's list is the builders' own: the names ``builders.py`` adds to
    its ``__all__`` at import (beyond its literal list) are the declared ones."""
    tree = ast.parse(Path(builders.__file__).read_text("utf-8"))
    literal = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets))
    assert isinstance(literal, ast.List)
    static = {e.value for e in literal.elts if isinstance(e, ast.Constant)}
    made = [n for n in builders.__all__ if n not in static]
    assert made == gen_types.builder_names()


def _declarations() -> dict[str, Any]:
    """The functions declared under ``if TYPE_CHECKING:`` in the generated module,
    compiled (their bodies are docstrings), by name."""
    tree = ast.parse(gen_types.MODULE.read_text("utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    module = ast.Module(body=[n for n in block.body if isinstance(n, ast.FunctionDef)],
                        type_ignores=[])
    namespace: dict[str, Any] = {"ExprLike": builders_typed.ExprLike, "Expr": md.Expr}
    exec(compile(module, "builders_typed", "exec"), namespace)
    return {n: f for n, f in namespace.items() if inspect.isfunction(f)}


def test_every_builder_is_declared_and_is_the_builder_at_run_time() -> None:
    decls = _declarations()
    names = gen_types.builder_names()
    assert set(decls) == set(names) == set(builders_typed.__all__) - {"ExprLike"}
    assert {"relu", "tanh", "sigmoid", "softplus", "leaky_relu", "inv", "logdet",
            "logsumexp", "softmax"} <= set(names)
    for n in names:
        assert getattr(builders_typed, n) is getattr(md, n) is getattr(builders, n), n
        assert n in md.__all__


@pytest.mark.parametrize("name", gen_types.builder_names())
def test_a_declaration_takes_what_the_builder_takes(name: str) -> None:
    """The declared arity and defaults are the builder's: a call with as many
    arguments as declared builds, one more is refused, and a declared default is the
    value the builder uses when the argument is left out."""
    sig = inspect.signature(_declarations()[name])
    params = list(sig.parameters.values())
    assert all(p.kind is p.POSITIONAL_ONLY for p in params)
    assert sig.return_annotation == "Expr"
    fn = getattr(md, name)
    # a matrix function's arguments are square matrices (solve(A, B), kron(A, B)); an
    # element-wise function's first is a vector, the others (leaky_relu's slope) numbers
    if name in MATRIX_FUNCTIONS:
        X = md.matrix("X", "n", "n")
        first, rest = X, X
    else:
        first, rest = md.vector("x", "n"), 0.3

    def args(k: int) -> list[Any]:
        return [first] + [rest] * (k - 1)

    assert isinstance(fn(*args(len(params))), md.Expr)
    with pytest.raises((TypeError, md.ShapeError)):
        fn(*args(len(params) + 1))
    required = [p for p in params if p.default is inspect.Parameter.empty]
    if len(required) < len(params):
        defaults = [p.default for p in params[len(required):]]
        assert fn(*args(len(required))) is fn(*args(len(required)), *defaults)


def test_the_declared_argument_type_admits_what_builders_take() -> None:
    """``ExprLike`` names what ``as_expr`` accepts: expressions, Python and NumPy
    numbers and 0-d arrays."""
    for value in (md.scalar("b"), 2, 2.5, np.float32(2.5), np.int64(2), np.array(2.5)):
        assert isinstance(md.exp(value), md.Expr)
    with pytest.raises(TypeError):
        md.exp("x")  # a string is not an ExprLike, and the builder refuses it too


# ====================================================================== mypy on a user's program
USER_PROGRAM = '''
import numpy as np

import matdiff as md
from matdiff import nn, optim

x = md.vector("x", "n")
A = md.matrix("A", "n", "n")
f: md.Expr = md.sum(md.relu(A @ x)) + md.logsumexp(x) + md.leaky_relu(x, 0.2) @ x
g = md.derive(f, "x")
shape: tuple[object, ...] = g.shape
fn = md.compile({"f": f, "g": g}, backend="numpy")
source: str = fn.source
d = md.explain(f, "x", lang="zh")
text: str = d.to_markdown()
ok: bool = md.check(f, "x").ok
logdet_A: md.Expr = md.logdet(md.inv(A) + md.softmax(x) @ md.tanh(x))
loss = md.grad(lambda w: md.sum(w * w))
model = nn.MLP([3, 4, 1], "tanh", seed=0)
history = nn.fit(model, np.ones((8, 3)), np.ones(8), "mse", epochs=1, progress=False)
losses: list[float] = history["loss"]
opt = optim.Adam(model.params, lr=1e-3)
schedule = optim.StepLR(5).then(optim.CosineLR(10), at=5)

# mistakes: each must be reported, with this code
n: int = md.vector("y", "n")  # E: assignment
md.derive(1.5, "x")  # E: arg-type
md.relu("x")  # E: arg-type
md.exp(x, x)  # E: call-arg
nn.fit(model)  # E: call-arg
optim.Adam(model.params, lr="fast")  # E: arg-type
md.nn.MLP([3, 1]).save(3)  # E: arg-type
'''


def _mypy(program: str, tmp_path: Path) -> tuple[int, str]:
    pytest.importorskip("mypy")
    path = tmp_path / "user_program.py"
    path.write_text(program, "utf-8")
    env = {**os.environ, "MYPYPATH": str(SRC)}
    # --follow-imports=silent: matdiff is read, not reported on (as for an installed
    # package); --strict as a careful user runs it
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--python-version", "3.10", "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", "--hide-error-context", "--show-error-codes", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_mypy_checks_a_users_program(tmp_path: Path) -> None:
    """mypy --strict on a program using the public API: no error on its right
    lines, and exactly the expected error on each wrong one (``# E: code``)."""
    status, out = _mypy(USER_PROGRAM, tmp_path)
    expected = {i: m.group(1) for i, line in enumerate(USER_PROGRAM.splitlines(), 1)
                if (m := re.search(r"# E: ([a-z-]+)$", line))}
    got: dict[int, set[str]] = {}
    for m in re.finditer(r"user_program\.py:(\d+): error: .*\[([a-z-]+)\]$", out, re.M):
        got.setdefault(int(m.group(1)), set()).add(m.group(2))
    assert status == 1, out
    assert set(got) == set(expected), out
    for line, code in expected.items():
        assert code in got[line], (line, out)


def test_mypy_passes_the_right_part_alone(tmp_path: Path) -> None:
    """Without the mistakes the program is clean (so the errors above are the
    mistakes', not the API's)."""
    right = USER_PROGRAM.split("# mistakes")[0]
    status, out = _mypy(textwrap.dedent(right), tmp_path)
    assert status == 0, out
