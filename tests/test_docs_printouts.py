"""Every printout that README.md and docs/*.md claim matdiff makes is what it makes now.

Printing changes (exact constants, ``𝟏``, ``w · x``, ``mean(…)``), and a page that
shows yesterday's printout misleads its reader.  This test finds the claims that a
machine can check and compares each with what matdiff prints today.  The pages mark
them by these conventions:

1. **A command's output.** A fenced block whose first line is ``$ matdiff ARGS`` holds
   that command's output in its other lines; a fenced block right after the comment
   ``<!-- printout: matdiff ARGS -->`` holds it whole.  (Blocks tagged ```` ```matdiff
   ```` or ```` ```python run ```` are not claims: the docs build runs them and shows
   their real output, see docs/hooks.py.)
2. **A Python line's value.** In a fenced ```` ```python ```` block, run statement by
   statement (``md`` and ``np`` imported), a top-level expression statement (not a
   ``print(…)``) whose last line ends in a comment
   ``# TEXT``, and whose value is an expression (``md.derive(…)``) or a string
   (``md.to_text(…)``, ``str(…)``), claims that the expression prints as ``TEXT`` (a
   string's comment quotes it, ``# 'xxᵀ'``, or not).  Other values (numbers, dicts)
   are not checked; their comments are prose.  Only blocks with such a claim are run.
3. **The table of docs/matrixcalculus.md.** A row ``| `INPUT` | SHAPES | DERIVATIVES |``
   of its published examples claims that INPUT, parsed with ``syntax="matrixcalculus"``,
   infers SHAPES (``A: (n, n), x: (n,)``; ``v, x, y: (n,)`` for several) and that its
   derivative by each variable prints as shown (``∂/∂A = `xxᵀ`<br>…``).

Each claim is a test case named by its page and line, so a stale one says where it
is.  The whole file runs in seconds (the CLI runs in process).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
import tokenize
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import matdiff as md
from matdiff import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
_MARK = re.compile(r"<!--\s*printout:\s*matdiff(.*?)-->\s*\Z", re.S)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _blocks(text: str) -> list[tuple[str, str, int, str]]:
    """The fenced blocks of a page: (info string, body, line of the body, the text
    before the block)."""
    return [(m.group(1).strip(), m.group(2), _line(text, m.start(2)), text[:m.start()])
            for m in _FENCE.finditer(text)]


def run_cli(args: str) -> str:
    """What ``matdiff ARGS`` prints (stdout and stderr), run in process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        cli.main(shlex.split(args))
    return out.getvalue()


# ============================================================== 1. commands
def command_claims(page: Path, text: str) -> list[tuple[str, str, str]]:
    """(where, args, claimed output) of every command block of a page."""
    out = []
    for info, body, line, before in _blocks(text):
        if info in ("matdiff", "python run"):
            continue
        first, _, rest = body.partition("\n")
        if first.startswith("$ matdiff"):
            out.append((f"{page.name}:{line}", first[len("$ matdiff"):].strip(), rest))
            continue
        mark = _MARK.search(before.rstrip() + "\n")
        if mark:
            out.append((f"{page.name}:{line}", mark.group(1).strip(), body))
    return out


COMMANDS = [c for p in PAGES for c in command_claims(p, p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("where, args, claimed", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_shown_command_prints_what_the_page_shows(where: str, args: str,
                                                    claimed: str) -> None:
    got = run_cli(args)
    assert got.rstrip("\n") == claimed.rstrip("\n"), f"{where}: `matdiff {args}` now prints:\n{got}"


# ============================================================== 2. python lines
def _trailing_comment(source: str, lineno: int) -> str | None:
    """The comment that ends line ``lineno`` (1-based) of ``source``, if any."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError):
        return None
    for tok in tokens:
        if tok.type == tokenize.COMMENT and tok.start[0] == lineno:
            return tok.string[1:].strip()
    return None


def _claimed(comment: str) -> str:
    """A comment's claimed printout: the text, unquoted when it is one quoted string
    (``'xxᵀ'``)."""
    if len(comment) >= 2 and comment[0] == comment[-1] and comment[0] in "'\"":
        return ast.literal_eval(comment)  # type: ignore[no-any-return]
    return comment


def _claim_statement(stmt: ast.stmt) -> bool:
    """An expression statement other than a ``print(…)`` (whose comment is prose)."""
    return isinstance(stmt, ast.Expr) and not (
        isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
        and stmt.value.func.id == "print")


def python_claims(page: Path, text: str) -> list[tuple[str, str, int]]:
    """(where, block source, line of the block) of every ``python`` block that has a
    claim of convention 2 (an expression statement with a trailing comment)."""
    out = []
    for info, body, line, _ in _blocks(text):
        if info != "python":
            continue
        try:
            tree = ast.parse(body)
        except SyntaxError:
            continue
        if any(_claim_statement(s) and _trailing_comment(body, s.end_lineno or 0)
               for s in tree.body):
            out.append((f"{page.name}:{line}", body, line))
    return out


PYTHON = [c for p in PAGES for c in python_claims(p, p.read_text(encoding="utf-8"))]


def check_python_block(where: str, body: str, line: int) -> int:
    """Run ``body`` statement by statement; every claim of convention 2 must hold.
    Returns the number of claims checked."""
    tree = ast.parse(body)
    ns: dict[str, Any] = {"__name__": "__docs__", "md": md, "np": np}
    checked = 0
    for stmt in tree.body:
        code = ast.Module(body=[stmt], type_ignores=[])
        if not _claim_statement(stmt):
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, where, "exec"), ns)  # our own docs
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            value = eval(compile(ast.Expression(stmt.value), where, "eval"), ns)
        comment = _trailing_comment(body, stmt.end_lineno or 0)
        if comment is None or not isinstance(value, (md.Expr, str)):
            continue
        at = f"{where.split(':')[0]}:{line + (stmt.end_lineno or 1) - 1}"
        assert str(value) == _claimed(comment), \
            f"{at}: {ast.get_source_segment(body, stmt)} now prints {str(value)!r}"
        checked += 1
    return checked


@pytest.mark.parametrize("where, body, line", PYTHON, ids=[c[0] for c in PYTHON])
def test_a_python_line_prints_what_its_comment_says(where: str, body: str,
                                                    line: int) -> None:
    check_python_block(where, body, line)


# ============================================================== 3. the table
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| (.+) \|$", re.M)
_DERIV = re.compile(r"∂/∂(\w+) = `([^`]+)`")


def _shapes(cell: str) -> dict[str, tuple[str, ...]]:
    """``A: (n, n), x: (n,)`` or ``v, x, y: (n,)`` as a dict of shapes."""
    out: dict[str, tuple[str, ...]] = {}
    for names, dims in re.findall(r"([\w, ]+?): \(([^)]*)\)", cell):
        shape = tuple(d.strip() for d in dims.split(",") if d.strip())
        for name in names.split(","):
            if name.strip():
                out[name.strip()] = shape
    return out


def table_claims(text: str) -> list[tuple[str, str, str, str]]:
    return [(f"matrixcalculus.md:{_line(text, m.start())}", m.group(1), m.group(2),
             m.group(3)) for m in _ROW.finditer(text)]


TABLE = table_claims((ROOT / "docs" / "matrixcalculus.md").read_text(encoding="utf-8"))


def check_row(where: str, source: str, shapes: str, derivatives: str) -> None:
    f = md.parse(source, syntax="matrixcalculus")
    assert f.variables() == _shapes(shapes), f"{where}: `{source}` infers {f.variables()}"
    claims = _DERIV.findall(derivatives)
    assert claims, f"{where}: no derivative in the row"
    assert sorted(v for v, _ in claims) == sorted(f.variables()), \
        f"{where}: the row lists the derivatives by {[v for v, _ in claims]}"
    for v, text in claims:
        got = str(md.derive(f, v))
        assert got == text, f"{where}: ∂/∂{v} of `{source}` now prints `{got}`"


@pytest.mark.parametrize("where, source, shapes, derivatives", TABLE,
                         ids=[c[0] for c in TABLE])
def test_a_table_row_prints_what_the_table_says(where: str, source: str, shapes: str,
                                                derivatives: str) -> None:
    check_row(where, source, shapes, derivatives)


# ============================================================== the finder finds
def test_the_conventions_find_the_claims_of_the_pages() -> None:
    """The pages' claims are found (a change of the conventions, or of the pages,
    that made them invisible would make the test vacuous)."""
    assert any(c[0].startswith("README.md") and c[1] == "" for c in COMMANDS)  # main job
    assert any(c[0].startswith("matrixcalculus.md") for c in COMMANDS)
    assert len(TABLE) >= 9
    checked = {c[0]: check_python_block(*c) for c in PYTHON}
    assert sum(n for w, n in checked.items() if w.startswith("README.md")) >= 5, checked
    assert sum(n for w, n in checked.items() if w.startswith("matrixcalculus.md")) >= 2


def test_a_stale_claim_of_each_kind_fails() -> None:
    """A planted stale printout of each convention is caught."""
    page = Path("stale.md")
    text = ("<!-- printout: matdiff \"sum(x)\" --shape x=n -->\n```text\n"
            "  f = sum(x)    shape scalar ()\n  variables: x (n,)\n"
            "  ∂f/∂x = 1    shape (n,)\n```\n")
    [(where, args, claimed)] = command_claims(page, text)
    assert args == '"sum(x)" --shape x=n'
    with pytest.raises(AssertionError, match="now prints"):
        test_a_shown_command_prints_what_the_page_shows(where, args, claimed)
    fixed = claimed.replace("= 1 ", "= 𝟏 ")
    test_a_shown_command_prints_what_the_page_shows(where, args, fixed)

    text = ("```python\nimport matdiff as md\n"
            "md.derive(\"sum(x/9)\", \"x\", shapes={\"x\": (\"n\",)})   # 0.111111·1\n```\n")
    [(where, body, line)] = python_claims(page, text)
    with pytest.raises(AssertionError, match=r"stale.md:3: .* now prints '\(1/9\)𝟏'"):
        check_python_block(where, body, line)
    assert check_python_block(where, body.replace("0.111111·1", "(1/9)𝟏"), line) == 1

    [row] = table_claims("| `x'*A*x` | A: (n, n), x: (n,) | ∂/∂A = `xxᵀ`<br>∂/∂x = `2Ax` |\n")
    with pytest.raises(AssertionError, match="now prints `\\(A \\+ Aᵀ\\)x`"):
        check_row(*row)
    [row] = table_claims("| `x'*A*x` | A: (n, n) | ∂/∂A = `xxᵀ`<br>∂/∂x = `(A + Aᵀ)x` |\n")
    with pytest.raises(AssertionError, match="infers"):
        check_row(*row)
