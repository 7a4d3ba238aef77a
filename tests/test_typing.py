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
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import matdiff as md
from matdiff.compile.api import value_and_grad as compiled_value_and_grad
from matdiff.derive.reverse import hessian as symbolic_hessian
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
H: md.Expr = md.hessian(f, "x")
vg: md.Compiled = md.value_and_grad(f, "x")
hess_fn: md.transforms.Transformed = md.hessian(lambda w: md.sum(w * w))

# mistakes: each must be reported, with this code
n: int = md.vector("y", "n")  # E: assignment
md.derive(1.5, "x")  # E: arg-type
md.relu("x")  # E: arg-type
md.exp(x, x)  # E: call-arg
nn.fit(model)  # E: call-arg
optim.Adam(model.params, lr="fast")  # E: arg-type
md.nn.MLP([3, 1]).save(3)  # E: arg-type
md.hessian(f, "x").source  # E: attr-defined
nn.fit(model, np.ones((8, 3)), np.ones(8), optimizer=3)  # E: arg-type
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


# ====================================================================== precise public signatures
#: an annotation that tells a checker nothing: ``Any``, ``object``, or a container
#: without its parameters (``tuple``, ``dict``, ``Sequence``, ...)
_VAGUE = re.compile(r"\b(Any|object)\b|\b(tuple|list|dict|set|frozenset|Sequence|Mapping|"
                    r"Iterable|Callable)\b(?!\[)")


def _vague_annotations(fn: Any, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The parameters (and ``return``) of ``fn`` whose annotation is vague, except
    those in ``allowed`` (arrays of any backend are ``Any`` by design)."""
    sig = inspect.signature(fn)
    out = [f"{name}: {p.annotation}" for name, p in sig.parameters.items()
           if name not in allowed and _VAGUE.search(str(p.annotation))]
    if "return" not in allowed and _VAGUE.search(str(sig.return_annotation)):
        out.append(f"return: {sig.return_annotation}")
    return out


def test_the_vagueness_check_can_fail() -> None:
    def planted(x: Any, shape: tuple, names: Sequence[str], n: int) -> dict:
        return {}

    assert _vague_annotations(planted) == ["x: Any", "shape: tuple", "return: dict"]
    assert _vague_annotations(planted, frozenset({"x", "shape", "return"})) == []


#: the public functions of the contract (shared/DESIGN.md) and of nn and optim, with
#: the parameters that hold arrays or values of any backend (``Any`` on purpose)
PRECISE = [
    (md.parse, ()), (md.derive, ()), (md.explain, ()), (md.to_text, ()),
    (md.var, ()), (md.vector, ()), (md.matrix, ()), (md.scalar, ()),
    (md.check, ("values",)), (md.random_values, ()), (md.grad, ()), (md.jacobian, ()),
    (symbolic_hessian, ()), (md.Expr.evaluate, ("values", "kw")), (md.Expr.variables, ()),
    (md.Derivation.to_latex, ()), (md.Derivation.to_markdown, ()),
    (md.nn.fit, ()), (md.nn.evaluate, ()), (md.nn.MLP, ()), (md.nn.Dense, ()),
    (md.nn.Neuron, ()), (md.nn.TrainStep, ()), (md.nn.EarlyStopping, ()),
    (md.nn.ModelCheckpoint, ()), (md.nn.LearningRateScheduler, ()),
    (md.nn.MLP.predict, ()), (md.nn.MLP.loss, ()),
    (md.optim.SGD, ()), (md.optim.Adam, ()), (md.optim.AdamW, ()), (md.optim.StepLR, ()),
    (md.optim.CosineLR, ()), (md.optim.clip_grad_norm, ()),
    (compiled_value_and_grad, ()),
]


@pytest.mark.parametrize("fn, allowed", PRECISE,
                         ids=[getattr(f, "__qualname__", str(f)) for f, _ in PRECISE])
def test_public_signatures_are_precise(fn: Any, allowed: tuple[str, ...]) -> None:
    assert _vague_annotations(fn, frozenset(allowed)) == []


def test_shapes_is_typed_alike_everywhere() -> None:
    """``shapes=`` is one type in every public function that takes it."""
    want = "Mapping[str, Sequence[Dim]] | None"
    for fn in (md.parse, md.derive, md.check, md.explain, symbolic_hessian,
               compiled_value_and_grad):
        assert str(inspect.signature(fn).parameters["shapes"].annotation) == want, fn


def test_hessian_and_value_and_grad_are_overloaded() -> None:
    """``md.hessian`` and ``md.value_and_grad`` take an expression or a function of
    arrays: a checker sees one precise overload for each (no ``Any``), while the
    implementation behind them dispatches at run time."""
    tree = ast.parse((SRC / "matdiff" / "__init__.py").read_text("utf-8"))
    for name, results in (("hessian", {"Expr", "Transformed"}),
                          ("value_and_grad", {"Compiled", "Transformed"})):
        overloads = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == name
                     and any(isinstance(d, ast.Name) and d.id == "overload"
                             for d in f.decorator_list)]
        assert len(overloads) == 2, name
        assert {ast.unparse(f.returns) for f in overloads if f.returns} == results
        for f in overloads:
            for a in [*f.args.args, *f.args.kwonlyargs]:
                assert a.annotation is not None and not _VAGUE.search(
                    ast.unparse(a.annotation)), (name, a.arg)


# ====================================================================== pyright --verifytypes
TOOL = SRC.parent / "tools" / "verifytypes.py"


def _tool() -> Any:
    """tools/verifytypes.py as a module (not in the sdist, which ships no tools)."""
    if not TOOL.exists():
        pytest.skip("tools/verifytypes.py is not in this copy (an sdist)")
    import importlib.util

    spec = importlib.util.spec_from_file_location("verifytypes", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_pyright(tmp_path: Path, score: float, root: Path | None = None) -> Path:
    """An executable that prints a ``--verifytypes`` JSON report as pyright does (with
    its exit status 1 for an incomplete package), with the given score."""
    report = {"version": "0.0.0-fake", "typeCompleteness": {
        "packageRootDirectory": str(root or SRC / "matdiff"), "completenessScore": score,
        "exportedSymbolCounts": {"withKnownType": round(100 * score), "withAmbiguousType": 0,
                                 "withUnknownType": 100 - round(100 * score)},
        "symbols": [{"name": "matdiff.compile.plan.step_cost", "isExported": True,
                     "isTypeKnown": False}] * (100 - round(100 * score))}}
    exe = tmp_path / "pyright"
    exe.write_text(f"#!{sys.executable}\nimport sys\n"
                   f"sys.stdout.write({json.dumps(report)!r})\nsys.exit(1)\n", "utf-8")
    exe.chmod(0o755)
    return exe


@pytest.mark.parametrize("score, status", [(0.95, 0), (0.90, 0), (0.89, 1), (0.5, 1)])
def test_verifytypes_fails_below_the_threshold(tmp_path: Path, score: float, status: int,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    tool = _tool()
    assert tool.main(["--pyright", str(_fake_pyright(tmp_path, score))]) == status
    out = capsys.readouterr()
    assert f"type completeness {100 * score:.1f}%" in out.out
    assert ("is below 90%" in out.err) == (status == 1)
    if score < 1:
        assert "matdiff.compile.plan" in out.out  # where the incomplete symbols are


def test_verifytypes_refuses_a_report_on_another_checkout(tmp_path: Path) -> None:
    """An editable install may point pyright at another copy of matdiff: the report
    must be on this checkout's ``src``."""
    tool = _tool()
    other = tmp_path / "elsewhere" / "matdiff"
    with pytest.raises(SystemExit, match="not this checkout"):
        tool.main(["--pyright", str(_fake_pyright(tmp_path, 0.99, other))])


def test_verifytypes_without_pyright_says_how_to_get_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = _tool()
    assert tool.main(["--pyright", str(tmp_path / "none")]) == 2
    assert "npm install --prefix .pyright" in capsys.readouterr().err


def _real_pyright() -> Path | None:
    """pyright as .ci/run installs it (``.pyright``), or ``$MATDIFF_PYRIGHT``."""
    for p in (os.environ.get("MATDIFF_PYRIGHT"),
              SRC.parent / ".pyright" / "node_modules" / ".bin" / "pyright"):
        if p and Path(p).exists():
            return Path(p)
    return None


def test_pyright_scores_the_public_api_at_least_90_percent() -> None:
    """The real run (``.ci/run`` runs the script itself after installing pyright;
    here it runs where pyright is installed)."""
    tool = _tool()
    pyright = _real_pyright()
    if pyright is None:
        pytest.skip("pyright is not installed (npm install --prefix .pyright pyright@...)")
    report = tool.run_pyright(pyright, sys.executable)
    assert tool.checked_root(report) == (SRC / "matdiff").resolve()
    score, lines = tool.summary(report)
    assert score >= 0.90, "\n".join(lines)
