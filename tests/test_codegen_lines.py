"""The code generator's records (matdiff.compile.lines) and its passes on them
(matdiff.compile.passes): what each pass does by the records' fields, and the
aliasing rule that decides when a sum may add into an array in place."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import matdiff as md
from matdiff.compile import passes
from matdiff.compile.lines import Code, Line, difference, fmt, function_source, join, name

#: the code generator's modules
CODEGEN = [pathlib.Path(md.__file__).parent / "compile" / f"{m}.py" for m in
           ("codegen", "lines", "passes", "views", "plan", "emitter", "products",
            "generator", "matfn")]


# ================================================================ records
def test_code_keeps_the_names_it_reads():
    a, b = name("a0"), name("t1")
    prod = fmt("{} @ {}.T", a, b, fresh=True)
    assert prod.text == "a0 @ t1.T" and prod.reads == ("a0", "t1") and prod.fresh
    call = fmt("xp.sum({}, {})", prod, repr((0,)))  # a str argument names nothing
    assert call.text == "xp.sum(a0 @ t1.T, (0,))" and call.reads == ("a0", "t1")
    assert not call.fresh and not call.is_name and a.is_name
    sq = fmt("{} * {}", b, b, fresh=True)
    assert sq.reads == ("t1", "t1")  # repeats count: the dead-line and copy passes
    assert join([a], " + ") is a
    s = join([a, b, Code("2.0")], " + ")
    assert s.text == "a0 + t1 + 2.0" and s.reads == ("a0", "t1") and s.fresh
    args = join([a, b], ", ", fresh=False)
    assert args.text == "a0, t1" and not args.fresh
    d = difference([a], [b])
    assert d.text == "a0 - t1" and d.reads == ("a0", "t1") and d.fresh


def test_a_code_marked_fresh_is_an_operator_at_the_top():
    # ``fresh`` must agree with the text it describes: the value of a binary
    # operator (a new array), never a call, an attribute or an index (maybe a view)
    a, b = name("t0"), name("t1")
    cases = [fmt("{} * {}", a, b, fresh=True), fmt("({} * {})", Code("2.0"), a, fresh=True),
             fmt("1.0 / {}", a, fresh=True), join([a, b], " @ "), difference([a], [b]),
             fmt("{}.T", a), fmt("{}[:, None]", a), fmt("xp.exp({})", a), a]
    for c in cases:
        assert c.fresh == isinstance(ast.parse(c.text, mode="eval").body, ast.BinOp), c


def test_function_source_is_written_from_the_records():
    lines = [Line("t0", fmt("{} @ {}", name("a0"), name("a1"), fresh=True), "(n,)")]
    src = function_source("f", {"A": "a0", "x": "a1"}, {"n": 3}, lines, [name("t0")])
    assert src == ("def f(a0, a1):\n    # a0: A\n    # a1: x\n    # dims: n=3\n"
                   "    t0 = a0 @ a1  # (n,)\n    return (t0,)\n")
    with pytest.raises(md.MatdiffError):
        function_source("f", {"x y": "a0"}, {}, [], [])


# ================================================================ dead lines
def _line(target: str, template: str, *reads: str, fresh: bool = False,
          copy_of: str | None = None) -> Line:
    return Line(target, fmt(template, *map(name, reads), fresh=fresh), "", copy_of)


def test_drop_dead_keeps_what_an_output_needs():
    lines = [_line("t0", "xp.exp({})", "a0"),
             _line("t1", "(-1.0) * {}", "t0", fresh=True),   # a sum subtracted t0 instead
             _line("t2", "{} - {}", "a1", "t0", fresh=True),
             _line("t3", "xp.sum({}, (0,))", "t2")]          # a step taken another way
    kept = passes.drop_dead(lines, [name("t2")])
    assert [ln.target for ln in kept] == ["t0", "t2"]
    assert passes.drop_dead(lines, [Code("1.0")]) == []


# ============================================================ the aliasing rule
def _acc(src: str) -> list[Line]:
    """``t8 = copy of src``, ``t9 = a structured term added into t8 in place``."""
    return [_line("t8", "xp.dense({}, (3, 3))", src, copy_of=src),
            _line("t9", "xp.add_embed({}, 1.0, (0, 0))", "t8")]


def _stolen(lines: list[Line], rets: list[Code]) -> bool:
    """Whether steal_copies dropped the copy ``t8`` and made the copied array as
    ``t8`` (checked to be all it did)."""
    out = passes.steal_copies(lines, rets)
    src = next(ln for ln in lines if ln.target == "t8").copy_of
    if out == lines:
        return False
    made = next(ln for ln in lines if ln.target == src)
    assert out == [Line("t8", made.value, made.comment) if ln is made else ln
                   for ln in lines if ln.target != "t8"]
    return True


def test_a_fresh_array_read_only_by_the_copy_is_added_into_in_place():
    lines = [_line("t0", "{}[:, None] * {}[None, :]", "a0", "a0", fresh=True),
             _line("t1", "xp.exp({})", "a0"), *_acc("t0")]
    assert _stolen(lines, [name("t9")])
    assert [ln.text for ln in passes.steal_copies(lines, [name("t9")])] == [
        "t8 = a0[:, None] * a0[None, :]", "t1 = xp.exp(a0)",
        "t9 = xp.add_embed(t8, 1.0, (0, 0))"]


@pytest.mark.parametrize("case", ["another line reads it", "an output is it",
                                  "an input", "a view of an input", "a call's value"])
def test_the_copy_stays_where_the_array_may_be_read_or_is_not_ours(case):
    outer = _line("t0", "{}[:, None] * {}[None, :]", "a0", "a0", fresh=True)
    rets = [name("t9")]
    if case == "another line reads it":
        lines = [outer, *_acc("t0"), _line("t5", "xp.sum({}, (0, 1))", "t0")]
        rets.append(name("t5"))
    elif case == "an output is it":
        lines = [outer, *_acc("t0")]
        rets.append(name("t0"))
    elif case == "an input":
        lines = _acc("a0")
    elif case == "a view of an input":
        lines = [_line("t0", "{}.T", "a0"), *_acc("t0")]
    else:  # xp.* may return its argument (xp.dense of a dense array does)
        lines = [_line("t0", "xp.tanh({})", "a0"), *_acc("t0")]
    assert not _stolen(lines, rets)


# ====================================================== the rule, end to end
def test_adding_into_a_transpose_never_writes_into_the_input():
    # Aᵀ + I: the transpose is a view of A's memory; without the rule's "made fresh
    # by its own line", the identity would be added into the caller's A
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    J = md.derive(x @ A + x, x)
    A0 = np.arange(9.0).reshape(3, 3)
    keep = A0.copy()
    for backend in ("numpy", "torch"):
        pytest.importorskip(backend)
        c = md.compile(J, backend=backend)
        np.testing.assert_allclose(np.asarray(c(A=A0, x=np.ones(3))), keep.T + np.eye(3))
        np.testing.assert_array_equal(A0, keep)
        assert "xp.dense(" in c.source  # the copy


def test_adding_into_a_product_that_another_output_returns_copies_it():
    # Aᵀ diag(1 − tanh²x) + I and the other output reads the same product: the sum
    # adds into a copy, the product stays as it is
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    J = md.derive(A @ md.tanh(x) + x, x)
    alone = md.compile(J)
    assert "xp.dense(" not in alone.source  # its only use: no n × n copy
    prod = md.derive(A @ md.tanh(x), x)
    both = md.compile([J, prod])
    A0, x0 = np.random.default_rng(1).standard_normal((2, 3, 3))[0], np.array([.1, -.5, .7])
    j, p = both(A=A0, x=x0)
    want = A0 * (1 - np.tanh(x0) ** 2)[None, :]
    np.testing.assert_allclose(p, want, rtol=1e-12)
    np.testing.assert_allclose(j, want + np.eye(3), rtol=1e-12)
    np.testing.assert_allclose(alone(A=A0, x=x0), want + np.eye(3), rtol=1e-12)


# ========================================================== the design's seams
def test_the_code_generator_reads_no_generated_text_back():
    # generated code is built as records; nothing matches patterns on it
    for path in CODEGEN:
        tree = ast.parse(path.read_text())
        imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for a in node.names}
        imported |= {node.module for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {"re", "ast", "regex"}, path.name


def test_only_matfn_names_the_matrix_functions():
    """Outside matfn.py (the optimisations about inv and softmax) no codegen module
    names a matrix function: no string constant is one's name."""
    from matdiff.expr.matrix_functions import MATRIX_FUNCTIONS

    names = set(MATRIX_FUNCTIONS)
    for path in CODEGEN:
        if path.name == "matfn.py":
            continue
        tree = ast.parse(path.read_text())
        used = {node.value for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert not used & names, (path.name, used & names)
