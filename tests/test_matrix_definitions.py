"""The meta-test of the matrix functions: every definition of
:data:`matdiff.expr.matrix_functions.MATRIX_FUNCTIONS` (iterated, not listed),
checked through every layer that reads it.

For each definition and each argument shape it takes (a square matrix, or a vector
and a matrix for a function over the last axis): its test domain exists; its value
is its NumPy implementation's, and JAX's and PyTorch's implementations agree with
it (three libraries, one number); its first and second derivatives equal central
differences of the order below; it compiles on every backend it has, to the
interpreter's numbers; it prints in Unicode and in LaTeX (KaTeX parses every
string) by its definition's spelling; the parser reads its name (and
matrixcalculus.org's, where it has one) to the node the builder makes; shape
inference gives its argument the shape its rule asks for; its differential ``dF``
(what ``md.explain`` prints) exists, is linear in ``dX``, equals the central
difference of ``F`` along a random ``dX`` and the derivative contracted with ``dX``,
and prints in Unicode and LaTeX (KaTeX).  A planted wrong adjoint rule, a planted
wrong differential, and a definition without a domain or without a differential fail.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import matdiff as md
from helpers import contract_direction, fd_directional, fd_jacobian, max_rel_error
from katex import katex_errors
from matdiff.compile.backends import get_backend
from matdiff.compile.evaluate import interpret
from matdiff.expr.matrix_functions import _FRECHET, MATRIX_FUNCTIONS, MatrixFunction

BUILTIN = sorted(n for n, d in MATRIX_FUNCTIONS.items() if d.public)
#: the definitions only other definitions' rules build (reshapes of adjoints)
INTERNAL = sorted(n for n, d in MATRIX_FUNCTIONS.items() if not d.public)
N = 3
SIZES = {"n": N, "m": N + 1, "p": 2, "q": 3}
DOMAINS = ("invertible", "positive", "any")
#: the names of a call's arguments in the meta-test
ARGS = ("X", "Y")


def _installed(backend: str) -> bool:
    try:
        __import__(backend)
    except ImportError:  # pragma: no cover - the dev extra installs both
        return False
    return True


def _backends(fn: MatrixFunction) -> list[str]:
    return ["numpy"] + [b for b in ("jax", "torch")
                        if getattr(fn, b) is not None and _installed(b)]


def _shapes(fn: MatrixFunction) -> list[tuple]:
    """The argument shapes to test, one tuple of shapes (one per argument) per try:
    the definition's ``examples``, else a square matrix for a function of one, else a
    vector and a matrix (a function over the last axis)."""
    if fn.examples:
        return [tuple(e) for e in fn.examples]
    if fn.arg_rank == 2:
        return [(("n", "n"),)]
    return [(("n",),), (("m", "n"),)]


def _point(domain: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """A value inside the domain: near the identity (det > 0, eigenvalues near 1) for
    "positive", near a reflection (det < 0, so still invertible) for "invertible",
    any for "any"."""
    assert domain in DOMAINS, "the definition has no test domain"
    dims = tuple(SIZES[d] for d in shape)
    noise = 0.2 * rng.standard_normal(dims)
    if domain == "any":
        return rng.standard_normal(dims)
    base = np.eye(dims[0])
    if domain == "invertible":
        base[0, 0] = -1.0
    return base + noise


def _float64(backend: str):
    """The scope in which a backend's table computes in float64: JAX's x64 mode (which
    compiled code enters by itself), nothing for the others."""
    import contextlib

    if backend != "jax":
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


def _blocks_of_frechet(e: md.Expr) -> bool:
    """Whether ``e`` holds a Fréchet derivative of block matrices (a second derivative of
    expm, logm, sqrtm, or a derivative of frechet_exp/log/sqrt)."""
    from matdiff.expr.core import Call, topo_order
    from matdiff.expr.selection import Concat

    return any(isinstance(n, Call) and n.fn in _FRECHET.values()
               and isinstance(n.children[0], Concat) for n in topo_order(e))


def _jax_compiles(fn: MatrixFunction, e: md.Expr) -> bool:
    """Whether the meta-test compiles ``e`` for JAX: not where it holds a Fréchet
    derivative of block matrices (the second derivatives of expm, logm, sqrtm, and the
    derivatives of frechet_exp/log/sqrt), whose programs are L_F of batches of block
    matrices of 2n × 2n and 4n × 4n.  XLA's CPU runtime deadlocks now and then running
    those (all its threads idle, the caller blocked in BlockUntilReady; seen with the
    Denman–Beavers steps in an XLA loop and unrolled alike, and in a full run of this
    meta-test on the Hessian of a matrix function), so they compile on NumPy and
    PyTorch only; JAX compiles every first derivative."""
    return not _blocks_of_frechet(e)


def _torch_value(out: object) -> np.ndarray:
    return np.asarray(out.detach() if hasattr(out, "detach") else out, dtype=np.float64)


def check_matrix_function(fn: MatrixFunction, latex: list[str]) -> None:
    """Every check of the module docstring on one definition; LaTeX strings are
    appended to ``latex`` for one KaTeX run."""
    assert all(d in DOMAINS for d in fn.domains()), \
        f"{fn.name}: the definition has no test domain"
    rng = np.random.default_rng(sum(map(ord, fn.name)))
    build = md.matrix_function(fn.name)
    names = ARGS[:fn.arity]
    for shape in _shapes(fn):
        assert len(shape) == fn.arity, (fn.name, shape)
        args = [md.var(a, *s) for a, s in zip(names, shape)]
        f = build(*args)
        assert f.shape == fn.shape_of(*shape)
        points = [_point(d, s, rng) for d, s in zip(fn.domains(), shape)]
        vals = dict(zip(names, points))
        # the value: the interpreter is the NumPy implementation; JAX and PyTorch,
        # independent libraries, agree with it
        want = np.asarray(fn.numpy(*points), dtype=np.float64)
        np.testing.assert_allclose(f.evaluate(vals), want, rtol=1e-12)
        for backend in _backends(fn)[1:]:
            table = get_backend(backend)  # float64 on every backend
            with _float64(backend):       # JAX computes in float64 only inside x64
                got = _torch_value(getattr(table, fn.name)(*map(table.asarray, points)))
            assert max_rel_error(got, want) < 1e-10, (fn.name, backend)
        # first and second derivatives by every argument (and mixed), against
        # central differences of the order below
        outs = [f]
        for k, (x, a) in enumerate(zip(names, args)):
            D1 = md.derive(f, a)

            def value_at(t, k=k, points=points):
                return fn.numpy(*(t if j == k else p for j, p in enumerate(points)))

            assert max_rel_error(D1.evaluate(vals), fd_jacobian(value_at, points[k])) \
                < 1e-6, (fn.name, x, str(D1))
            outs.append(D1)
            for y, b in zip(names, args):
                D2 = md.derive(D1, b)
                want2 = fd_jacobian(lambda t, D1=D1, y=y, vals=vals: interpret(D1, {**vals, y: t}),
                                    vals[y])
                assert max_rel_error(D2.evaluate(vals), want2) < 1e-5, (fn.name, x, y, str(D2))
                outs.append(D2)
                latex.append(md.latex(D2))
            latex.append(md.latex(D1))
        # compiled on every backend the definition has, to the interpreter's numbers
        for backend in _backends(fn):
            todo = [e for e in outs if backend != "jax" or _jax_compiles(fn, e)]
            got_all = md.compile(todo, backend=backend)(vals)
            for e, out in zip(todo, got_all):
                assert max_rel_error(_torch_value(out), interpret(e, vals)) < 1e-9, \
                    (fn.name, backend)
        # the differential dF at X along a random dX (a function of one argument that
        # the language names; explanations print it): central differences of F along
        # dX, and the derivative contracted with dX; twice dX gives twice dF
        if fn.arity == 1 and fn.public:
            assert fn.differential is not None, \
                f"{fn.name}: the definition has no differential"
            X, X0 = args[0], points[0]
            D1 = md.derive(f, X)
            dX = md.var("dX", *shape[0])
            dF = fn.differential(X, dX)
            # over X and dX (dX alone for a linear function: d vec(X) = vec(dX))
            assert dF.shape == f.shape and "dX" in dF.variables() \
                and set(dF.variables()) <= {X.name, "dX"}, (fn.name, str(dF))
            V = rng.standard_normal(X0.shape)
            got = dF.evaluate({X.name: X0, "dX": V})
            assert max_rel_error(got, fd_directional(fn.numpy, X0, V)) < 1e-6, \
                (fn.name, str(dF))
            assert max_rel_error(got, contract_direction(D1.evaluate(vals), V)) < 1e-9
            assert max_rel_error(dF.evaluate({X.name: X0, "dX": 2 * V}), 2 * got) < 1e-12
            assert str(dF) and "dX" in str(dF)
            latex.append(md.latex(dF))
        # printers: the definition's spelling, and LaTeX that KaTeX reads
        assert str(f) == fn.spell("unicode", list(names))
        assert md.latex(f) == fn.spell("latex", list(names))
        latex.append(md.latex(f))
        # the parser reads the name to the node the builder makes
        shapes = dict(zip(names, shape))
        text = f"{fn.name}({', '.join(names)})"
        assert md.parse(text, shapes=shapes) is f
        if fn.mc:
            assert md.parse(f"{fn.mc}({', '.join(names)})", shapes=shapes,
                            syntax="matrixcalculus") is f
    # shape inference: the argument of A @ B takes the shape the rule asks for
    rest = ", ".join(ARGS[1:fn.arity])
    g = md.parse(f"{fn.name}(A @ B{', ' + rest if rest else ''})")
    shapes = g.variables()
    AB = md.var("A", *shapes["A"]) @ md.var("B", *shapes["B"])
    assert g is build(AB, *[md.var(a, *shapes[a]) for a in ARGS[1:fn.arity]])
    if fn.arg_rank == 2:  # a variable passed straight to it prefers to be a matrix
        assert md.parse(f"{fn.name}(X)").variables()["X"] == ("n", "n")


@pytest.mark.parametrize("name", BUILTIN)
def test_every_matrix_function_definition(name: str) -> None:
    latex: list[str] = []
    check_matrix_function(MATRIX_FUNCTIONS[name], latex)
    assert katex_errors(latex) == []


def test_a_matrix_function_without_a_domain_fails_the_meta_test() -> None:
    bare = dataclasses.replace(MATRIX_FUNCTIONS["logdet"], domain="")
    with pytest.raises(AssertionError, match="no test domain"):
        check_matrix_function(bare, [])


def test_a_matrix_function_without_a_differential_fails_the_meta_test() -> None:
    bare = dataclasses.replace(MATRIX_FUNCTIONS["logdet"], differential=None)
    with pytest.raises(AssertionError, match="no differential"):
        check_matrix_function(bare, [])


def test_the_meta_test_catches_a_wrong_differential() -> None:
    """Planted: d det X written without its factor det X (tr(X⁻¹ dX), logdet's) must
    fail the check of the differential."""
    wrong = dataclasses.replace(MATRIX_FUNCTIONS["det"],
                                differential=MATRIX_FUNCTIONS["logdet"].differential)
    with pytest.raises(AssertionError, match="det"):
        check_matrix_function(wrong, [])


def test_every_internal_definition_is_met_by_the_meta_test() -> None:
    """The reshapes that only adjoint rules build (no name in the language) are
    checked through the public definitions whose first and second derivatives hold
    them: each appears in one of those."""
    from matdiff.expr.core import Call, topo_order

    met: set[str] = set()
    for name in BUILTIN:
        fn = MATRIX_FUNCTIONS[name]
        if name in _FRECHET or name in _FRECHET.values():
            continue  # the analytic functions' rules build no reshape
        for shape in _shapes(fn):
            args = [md.var(a, *s) for a, s in zip(ARGS, shape)]
            f = md.matrix_function(name)(*args)
            for a in args:
                D1 = md.derive(f, a)
                for e in (D1, md.derive(D1, a)):
                    met |= {n.fn for n in topo_order(e) if isinstance(n, Call)}
    assert "split_axis" in met  # the adjoint of vec and kron
    # merge_axes, split_axis's adjoint, is met by no simplified derivative of those:
    # checked here alone, in value and derivative, against NumPy's reshape
    from matdiff.expr.matrix_functions import call

    T = md.var("T", "m", "n", "p")
    merged = call("merge_axes", (T,), (0,))
    T0 = np.random.default_rng(3).standard_normal((2, 3, 4))
    np.testing.assert_array_equal(merged.evaluate(T=T0), T0.reshape(6, 4))
    D = md.derive(md.sum(merged * merged), T)
    np.testing.assert_allclose(D.evaluate(T=T0), 2 * T0, rtol=1e-12)


def test_the_meta_test_catches_a_wrong_adjoint_rule_of_several_arguments(monkeypatch) -> None:
    """Planted: solve's adjoint of the right-hand side with its sign flipped."""
    good = MATRIX_FUNCTIONS["solve"]
    rule_a, rule_b = good.vjp
    wrong = dataclasses.replace(good, name="solve_wrong", mc="",
                                vjp=(rule_a, lambda node, adj, nf: -rule_b(node, adj, nf)))
    monkeypatch.setitem(MATRIX_FUNCTIONS, "solve_wrong", wrong)
    with pytest.raises(AssertionError):
        check_matrix_function(wrong, [])


def test_the_meta_test_catches_a_wrong_adjoint_rule(monkeypatch) -> None:
    """Planted: the adjoint of logdet with its sign flipped must fail the check."""
    good = MATRIX_FUNCTIONS["logdet"]
    wrong = dataclasses.replace(good, name="logdet_wrong", mc="",
                                vjp=lambda node, adj, nf: -good.vjp(node, adj, nf))
    monkeypatch.setitem(MATRIX_FUNCTIONS, "logdet_wrong", wrong)
    with pytest.raises(AssertionError):
        check_matrix_function(wrong, [])


def test_the_definitions_identities_simplify_when_built() -> None:
    X = md.matrix("X", "n", "n")
    assert md.inv(md.inv(X)) is X
    assert md.inv(md.eye("n")) is md.eye("n")
    # det(X⁻¹) = 1/det X and log det(X⁻¹) = −log det X, in numbers too
    X0 = np.eye(3) + 0.2 * np.random.default_rng(1).standard_normal((3, 3))
    assert np.isclose(md.det(md.inv(X)).evaluate(X=X0), 1 / np.linalg.det(X0))
    assert np.isclose(md.logdet(md.inv(X)).evaluate(X=X0), -np.linalg.slogdet(X0)[1])
    assert str(md.logdet(md.inv(X))) == "−log det(X)"


def test_a_shape_rule_serves_the_builders_and_shape_inference() -> None:
    """One rule, two checkers: the builder's error and the parser's (with a caret
    under the argument) say the same thing."""
    with pytest.raises(md.ShapeError, match="inv needs a square matrix, got shape"):
        md.inv(md.matrix("A", "n", "m"))
    with pytest.raises(md.ShapeError, match="logsumexp needs a vector or a matrix") as e:
        md.parse("logsumexp(x) + 1", shapes={"x": ()})
    with pytest.raises(md.ShapeError, match="logsumexp needs a vector or a matrix"):
        md.logsumexp(md.scalar("x"))
    with pytest.raises(md.ShapeError, match="det needs a square matrix") as e:
        md.parse("det(A)", shapes={"A": ("n", "m")})
    assert "^" in str(e.value)


def test_no_module_outside_the_definitions_names_a_matrix_function() -> None:
    """The issue's rule, checked: outside expr/matrix_functions.py (and nn/, optim.py,
    cli.py, which use the language), a source module names a matrix function only
    in an optimisation about it (compile/matfn.py: an inverse only multiplied is a
    solve; a softmax reuses its logsumexp)."""
    import pathlib
    import re

    from matdiff.expr import gen_types

    src = pathlib.Path(md.__file__).parent
    # (and the typed declarations that gen_types writes from the definitions)
    allowed = {"expr/matrix_functions.py", "expr/analytic.py", "optim.py", "cli.py",
               "compile/matfn.py", "expr/builders_typed.py"}
    # "vec" and "kron" are also words of another meaning there: the vec layout's name
    # and its matrix forms (render/mform/kron.py: Kronecker products of printed forms)
    names = "|".join(n for n in MATRIX_FUNCTIONS if n not in ("vec", "kron"))
    pattern = re.compile(rf'["\'](?:{names})["\']|\b(?:Inv|Det|LogDet|LogSumExp|Softmax)\b')
    offenders = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel in allowed or rel.startswith("nn/"):
            continue
        generated = False  # the block gen_types writes in matdiff/__init__.py
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line in (gen_types.BEGIN, gen_types.END):
                generated = line == gen_types.BEGIN
            if generated:
                continue
            code = line.split("#")[0]
            if pattern.search(code):
                offenders.append(f"{rel}:{k}: {line.strip()}")
    assert offenders == []
