"""The ``matdiff`` command.

``matdiff`` alone differentiates the paper's one-neuron loss by ``w`` and ``b`` and
explains each derivative step by step; ``matdiff EXPR --wrt x --shape x=n``
differentiates any expression (``--explain``, ``--format``, ``--layout``,
``--style``, ``--lang``); ``matdiff train ...`` runs :mod:`matdiff.nn`'s command.
Run ``matdiff --help`` for examples.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__
from .check import check
from .derive import derive
from .errors import MatdiffError
from .explain import LANGUAGES, explain
from .expr.core import Expr, shape_str
from .parse import parse_with_variables
from .render import FORMATS, LAYOUTS, STYLES, latex_name, layout_note, to_index, to_text
from .render import latex as md_latex

PAPER_LOSS = "mean((y - max(0, X @ w + b))**2)"
PAPER_SHAPES = {"X": ("N", "n"), "w": ("n",), "y": ("N",), "b": ()}

EXAMPLES = f"""\
examples:
  matdiff
      the paper's one-neuron loss  {PAPER_LOSS}
      (X: N x n, w: n, y: N, b: scalar), differentiated by w and by b, with the
      derivation step by step (intermediate variables, Jacobians, chain rule)
  matdiff "x @ A @ x" --wrt x --shape x=n --shape A=n,n
      gradient of a quadratic form: (A + Aᵀ)x
  matdiff "x @ A @ x" --wrt x --shape x=n --shape A=n,n --layout numerator
      the same in the paper's numerator layout, a row: xᵀ(A + Aᵀ)
  matdiff "x @ A @ x" --wrt x --shape x=n --shape A=n,n --hessian
      its Hessian: A + Aᵀ
  matdiff "w * x" --wrt w --shape w=n --shape x=n
      a diagonal Jacobian: diag(x)
  matdiff "sum(w * x)" --wrt w --shape w=n --shape x=n --explain --lang zh
      the paper's derivation, step by step, in Chinese
  matdiff "w / x" --wrt x --shape w=n --shape x=n --style paper --format latex
      LaTeX, with the paper's element-wise signs: \\operatorname{{diag}}(-w \\oslash x^{{2}})
  matdiff "log(det(X))" --wrt X --shape X=n,n --check --format json
      X⁻ᵀ and a finite-difference check of it, as JSON
  echo "sum(sin(3 * x))" | matdiff - --wrt x --shape x=n
      read the expression from standard input
  matdiff "x'*A*x" --syntax matrixcalculus
      matrixcalculus.org's input as typed there; shapes are inferred
  matdiff train --help
      train a small network (the subcommand of matdiff.nn, where installed)

shapes: NAME=DIMS with DIMS a comma-separated list of dim names or sizes;
  x=n vector, A=n,n matrix, X=N,3 matrix with 3 columns, b= or b=() scalar.
  Shapes not declared are inferred from usage (capital letter: matrix, small
  letter: vector, where usage leaves it open) and printed as "variables".
layouts: derivatives have shape f.shape + wrt.shape (--layout mixed, the default:
  numerator layout for Jacobians; a gradient has the variable's own shape).
  --layout numerator prints a gradient as a row and a scalar-by-matrix derivative
  transposed (the paper's); --layout denominator prints Jacobians transposed (the
  Matrix Cookbook's).  Every printout in a non-default layout says so.
exit status: 0 on success, 2 for a mistake in the input (the message, with a
  caret under the offending part, goes to standard error), 3 for an internal
  error (a bug in matdiff: please report it with the command line).
"""


def _parse_shape(item: str) -> tuple[str, tuple]:
    """``NAME=DIMS`` as ``(name, dims)``; a dim of ASCII digits is a size, any other a
    name (``x=²`` is a bad name, not a size: ``isdigit`` takes ``²``, ``int`` not)."""
    if "=" not in item:
        raise MatdiffError(f"--shape wants NAME=DIMS (like x=n or A=n,n), got {item!r}")
    name, dims = item.split("=", 1)
    name, dims = name.strip(), dims.strip()
    if not name.isidentifier():
        raise MatdiffError(f"--shape {item!r}: {name!r} is not a variable name (like x "
                           "or A)")
    if dims in ("", "()", "scalar"):
        return name, ()
    out: list = []
    parts = dims.strip("()").split(",")
    for k, d in enumerate(parts):
        d = d.strip()
        if not d:
            if k == len(parts) - 1 and k > 0:
                continue  # a trailing comma, as in x=(n,)
            raise MatdiffError(f"--shape {item!r}: an empty dim (write DIMS like n or "
                               "n,m)")
        out.append(int(d) if d.isascii() and d.isdigit() else d)
    return name, tuple(out)


def _parse_shapes(items: Sequence[str]) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for item in items:
        name, dims = _parse_shape(item)
        if name in shapes and shapes[name] != dims:
            raise MatdiffError(f"--shape declares {name} twice: as {shape_str(shapes[name])} "
                               f"and as {shape_str(dims)}")
        shapes[name] = dims
    return shapes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="matdiff",
        description="Symbolic derivatives (gradient, Jacobian, Hessian) of expressions over "
                    "scalars, vectors and matrices in matrix notation, step by step the "
                    "paper's way, checked in numbers.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("expr", nargs="?", help="the expression (numpy syntax); '-' reads stdin")
    p.add_argument("--wrt", action="append", default=[], metavar="VAR",
                   help="variable to differentiate by (repeatable; default: all)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                   help="declare a variable's shape, e.g. x=n, A=n,n, b= (repeatable)")
    p.add_argument("--syntax", choices=("numpy", "matrixcalculus"), default="numpy",
                   help="input language: numpy (default; * element-wise, @ matrix "
                        "product) or matrixcalculus (as typed on matrixcalculus.org: "
                        "x'*A*x)")
    p.add_argument("--hessian", action="store_true", help="second derivative instead")
    p.add_argument("--check", action="store_true",
                   help="also compare each derivative with finite differences")
    p.add_argument("--explain", action="store_true",
                   help="show the derivation step by step, the paper's way (the default "
                        "when no expression is given)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="output: text (Unicode, default), latex, markdown or json")
    p.add_argument("--layout", choices=LAYOUTS, default="mixed",
                   help="how derivatives are printed: mixed (default: the array evaluate "
                        "returns), numerator (the paper's) or denominator")
    p.add_argument("--style", choices=STYLES, default=None,
                   help="element-wise signs: standard (⊙ and /) or paper (⊗ and ⊘); "
                        "default: ⊙ and ⊘")
    p.add_argument("--lang", choices=LANGUAGES, default="en",
                   help="language of --explain: en (default) or zh (中文)")
    p.add_argument("--version", action="version", version=f"matdiff {__version__}")
    return p


def _train(argv: Sequence[str]) -> int:
    """``matdiff train ...``: the training subcommand of :mod:`matdiff.nn`."""
    import importlib

    try:
        mod = importlib.import_module("matdiff.nn.cli")
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == "matdiff.nn" or exc.name.startswith("matdiff.nn.")):
            raise MatdiffError("'matdiff train' needs matdiff.nn, which this installation "
                               "does not have") from None
        raise
    return int(mod.main(list(argv)) or 0)


@dataclass
class _Result:
    """One derivative the command prints."""

    wrt: str
    order: int
    expr: Expr  #: the derivative result (it knows its f_ndim for the layouts)
    check: str | None = None
    derivation: Any = None


def _label(wrt: str, order: int) -> str:
    return f"∂²f/∂{wrt}²" if order == 2 else f"∂f/∂{wrt}"


def _latex_label(wrt: str, order: int) -> str:
    v = latex_name(wrt)
    if order == 2:
        return r"\frac{\partial^2 f}{\partial " + (f"{{{v}}}" if "_" in v else v) + "^2}"
    return r"\frac{\partial f}{\partial " + v + "}"


def _read_stdin() -> str:
    try:
        return sys.stdin.read().strip()
    except UnicodeDecodeError as exc:
        raise MatdiffError(f"standard input is not text in the locale's encoding ({exc})"
                           ) from None


def run(argv: Sequence[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return _train(argv[1:])
    args = build_parser().parse_args(argv)
    explain_too = args.explain or args.expr is None
    if args.expr is None:
        text, shapes = PAPER_LOSS, dict(PAPER_SHAPES)
        wrts = args.wrt or ["w", "b"]
        header = "The paper's loss of one ReLU neuron over N examples (Parr & Howard, §5):"
    else:
        text = _read_stdin() if args.expr == "-" else args.expr
        shapes = _parse_shapes(args.shape)
        wrts = args.wrt
        header = None
    if explain_too and args.hessian:
        raise MatdiffError("--explain shows first derivatives; leave out --hessian")
    f, named = parse_with_variables(text, shapes=shapes, syntax=getattr(args, "syntax",
                                                                         "numpy"))
    # every name of the text with its shape, for a --wrt that simplification
    # cancelled (p / p is 1: the derivative by p is 0 of p's shape)
    shapes = {**named, **(shapes or {})}
    if not wrts:
        wrts = list(f.variables())
    results = []
    for w in wrts:
        if args.hessian:
            g = derive(f, w, shapes=shapes)
            r = _Result(w, 2, derive(g, w))
            if args.check:
                r.check = str(check(g, w, shapes=shapes))
        else:
            r = _Result(w, 1, derive(f, w, shapes=shapes))
            if args.check:
                r.check = str(check(f, w, shapes=shapes))
        if explain_too:
            r.derivation = explain(f, w, lang=args.lang, shapes=shapes)
        results.append(r)
    emit = {"text": _emit_text, "latex": _emit_latex, "markdown": _emit_markdown,
            "json": _emit_json}[args.format]
    emit(out, args, header, f, results)
    return 0


def _opts(args, r: _Result) -> dict:
    return {"layout": args.layout, "style": args.style}


def _note(args) -> str:
    return "" if args.layout == "mixed" else "    " + layout_note(args.layout)


def _emit_text(out, args, header, f, results) -> None:
    if header:
        print(header, file=out)
    print(f"  f = {to_text(f, style=args.style)}    shape {shape_str(f.shape)}", file=out)
    print("  variables: " + ", ".join(f"{n} {shape_str(s)}" for n, s in
                                       f.variables().items()), file=out)
    for r in results:
        d = to_text(r.expr, **_opts(args, r))
        print(f"  {_label(r.wrt, r.order)} = {d}    shape {shape_str(r.expr.shape)}"
              + _note(args), file=out)
        if r.check is not None:
            print(f"    check: {r.check}", file=out)
    for r in results:
        if r.derivation is not None:
            print("", file=out)
            print(str(r.derivation), file=out)


def _latex_lines(args, f, results) -> list[str]:
    style = args.style or "standard"
    lines = [f"f = {md_latex(f, style=style)}"]
    note = "" if args.layout == "mixed" else \
        r" \qquad \text{" + layout_note(args.layout) + "}"
    for r in results:
        lines.append(_latex_label(r.wrt, r.order) + " = "
                     + md_latex(r.expr, layout=args.layout, style=style)
                     + note)
    return lines


def _emit_latex(out, args, header, f, results) -> None:
    lines = _latex_lines(args, f, results)
    print("\\begin{aligned}", file=out)
    print(" \\\\\n".join("  " + ln.replace(" = ", " &= ", 1) for ln in lines), file=out)
    print("\\end{aligned}", file=out)
    for r in results:
        if r.derivation is not None:
            print("", file=out)
            print(r.derivation.to_latex(), file=out)


def _emit_markdown(out, args, header, f, results) -> None:
    if header:
        print(header, file=out)
        print("", file=out)
    for ln in _latex_lines(args, f, results):
        print(f"$${ln}$$", file=out)
        print("", file=out)
    for r in results:
        if r.check is not None:
            print(f"- check of ∂f/∂{r.wrt}: `{r.check}`", file=out)
    for r in results:
        if r.derivation is not None:
            print("", file=out)
            print(r.derivation.to_markdown(), file=out)


def _emit_json(out, args, header, f, results) -> None:
    style = args.style or "standard"
    doc: dict[str, Any] = {
        "f": {"text": to_text(f, style=args.style), "latex": md_latex(f, style=style),
              "shape": list(f.shape)},
        "variables": {n: list(s) for n, s in f.variables().items()},
        "layout": args.layout,
        "style": style if args.style else None,
        "derivatives": [],
    }
    for r in results:
        item: dict[str, Any] = {
            "wrt": r.wrt, "order": r.order, "shape": list(r.expr.shape),
            "text": to_text(r.expr, **_opts(args, r)),
            "latex": md_latex(r.expr, layout=args.layout, style=style),
            "index": to_index(r.expr, **_opts(args, r)),
        }
        if r.check is not None:
            item["check"] = r.check
        if r.derivation is not None:
            item["explanation"] = r.derivation.to_dict()
        doc["derivatives"].append(item)
    print(json.dumps(doc, ensure_ascii=False, indent=2, default=str), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``matdiff`` command: exit 0; 2 with a message on bad input;
    3 with a one-line message for an internal error (a bug), never a traceback
    (``MATDIFF_DEBUG=1`` shows it)."""
    try:
        return run(argv)
    except MatdiffError as exc:
        print(f"matdiff: error: {exc}", file=sys.stderr)
        return 2
    except RecursionError:  # pragma: no cover
        print("matdiff: error: the expression is nested too deeply", file=sys.stderr)
        return 2
    except BrokenPipeError:  # pragma: no cover - the reader (head, less) went away
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # pragma: no cover
        return 130
    except Exception as exc:  # a bug: say so in one line, not in a traceback
        import os

        if os.environ.get("MATDIFF_DEBUG"):
            raise
        print(f"matdiff: internal error (a bug in matdiff; please report it with the "
              f"command line): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
