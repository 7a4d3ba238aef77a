"""The ``matdiff`` command.

``matdiff`` alone differentiates the paper's one-neuron loss by ``w`` and ``b`` and
explains each derivative step by step; ``matdiff EXPR --wrt x --shape x=n``
differentiates any expression (``--explain``, ``--format``, ``--layout``,
``--style``, ``--lang``); ``matdiff train ...`` runs :mod:`matdiff.nn`'s command,
``matdiff serve`` the web page (:mod:`matdiff.web`).
Run ``matdiff --help`` for examples.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

import numpy as np

from . import __version__
from .check import CheckResult, check
from .derive import derive
from .errors import MatdiffError, NotationWarning, ShapeError
from .explain import LANGUAGES, explain
from .explain.lang import layout_note as lang_layout_note
from .explain.lang import phrases, sentence
from .expr.core import Dim, Expr, Shape, shape_str, split_shape, var_nodes
from .parse import SYNTAXES, parse_with_variables
from .parse.infer import rank_preferences
from .render import FORMATS, LAYOUTS, STYLES, latex_name, to_index, to_text
from .render import latex as md_latex
from .render.ascii import ascii_stream
from .render.layout import layout_shape

PAPER_LOSS: Final = "mean((y - max(0, X @ w + b))**2)"
PAPER_SHAPES: Final[dict[str, Shape]] = {"X": ("N", "n"), "w": ("n",), "y": ("N",), "b": ()}

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
  matdiff "[3*x**2*y, 2*x + y**8]" --wrt x,y --shape x= --shape y=
      the paper's Jacobian by x and y at once (2 × 2); --hessian --wrt x,y gives the
      whole Hessian by [x; y], cross terms included
  matdiff "sum(w * x)" --wrt w --shape w=n --shape x=n --explain --lang zh
      the paper's derivation, step by step, in Chinese
  matdiff "w / x" --wrt x --shape w=n --shape x=n --style paper --format latex
      LaTeX, with the paper's element-wise signs: \\operatorname{{diag}}(-w \\oslash x^{{2}})
  matdiff "log(det(X))" --wrt X --shape X=n,n --check --format json
      X⁻ᵀ and a finite-difference check of it, as JSON
  matdiff "max(0, dot(w, x) + b)" --wrt w --shape w=n --shape x=n --shape b= \\
          --claim "step(dot(w, x) + b) * x"
      check your own derivative: right or wrong, with a point where it is wrong
  matdiff --expr "-sum(x)" --wrt x
      an expression that starts with '-' (matdiff "-sum(x)" --wrt x works too)
  echo "sum(sin(3 * x))" | matdiff - --wrt x --shape x=n
      read the expression from standard input
  matdiff "x'*A*x" --syntax matrixcalculus
      matrixcalculus.org's input as typed there; shapes are inferred
  matdiff "xᵀ(A + Aᵀ)x" --wrt x --shape x=n --shape A=n,n
      matdiff reads the notation it prints (--syntax unicode, found by itself)
  matdiff train --help
      train a small network (the subcommand of matdiff.nn, where installed)
  matdiff serve
      the web page and JSON API on http://127.0.0.1:8765/ (pip install "matdiff[web]")

shapes: NAME=DIMS with DIMS a comma-separated list of dim names or sizes;
  x=n vector, A=n,n matrix, X=N,3 matrix with 3 columns, b= or b=() scalar.
  Shapes not declared are inferred from usage, with matrixcalculus.org's letters
  where usage leaves them open (capital: matrix; a-g and Greek: scalar; h-z:
  vector), and printed as "variables (inferred ...)".
layouts: derivatives have shape f.shape + wrt.shape (--layout mixed, the default:
  numerator layout for Jacobians; a gradient has the variable's own shape).
  --layout numerator prints a gradient as a row and a scalar-by-matrix derivative
  transposed (the paper's); --layout denominator prints Jacobians transposed (the
  Matrix Cookbook's).  Every printout in a non-default layout says so.
output: Unicode; where the terminal cannot encode it (an ASCII locale, a Windows
  code page) or with --ascii, ASCII (x^T, d, .*, ./).
exit status: 0 on success; 1 when --check finds a mismatch or --claim is wrong;
  2 for a mistake in the input (the message, with a caret under the offending
  part, goes to standard error); 3 when --check could not check (no point where
  the function is finite), or for an internal error (a bug in matdiff: please
  report it with the command line).
"""

#: the subcommands (a mistyped one is not taken for an expression)
SUBCOMMANDS = ("train", "serve")


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
    try:  # a trailing structure tag (S=n,n,symmetric): known, on a square matrix
        split_shape(out, name)
    except ShapeError as err:
        raise MatdiffError(f"--shape {item!r}: {err.message}") from None
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
    p.add_argument("-e", "--expr", dest="expr_option", metavar="EXPR", default=None,
                   help="the expression, where it starts with '-' (-sum(x))")
    p.add_argument("--wrt", action="append", default=[], metavar="VAR",
                   help="variable to differentiate by (repeatable: one derivative each; "
                        "default: all); x,y is the derivative by x and y at once (by "
                        "their concatenation, the paper's ∇f(x, y))")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                   help="declare a variable's shape, e.g. x=n, A=n,n, b= (repeatable)")
    p.add_argument("--syntax", choices=SYNTAXES, default="numpy",
                   help="input language: numpy (default; * element-wise, @ matrix "
                        "product), matrixcalculus (as typed on matrixcalculus.org: "
                        "x'*A*x) or unicode (matdiff's own printed notation: xᵀAx, "
                        "needs --shape; read automatically when the text has ᵀ ⁻ ⊙ ⊘ − · 𝟏)")
    p.add_argument("--hessian", action="store_true", help="second derivative instead")
    p.add_argument("--check", action="store_true",
                   help="also compare each derivative with finite differences, at points "
                        "that exercise every piece of a piecewise function (exit 1 on a "
                        "mismatch, 3 when it could not check)")
    p.add_argument("--claim", metavar="TEXT", default=None,
                   help="check your own derivative by --wrt (in matdiff's layout: f's axes, "
                        "then the variable's; a dim's name such as N stands for its size): "
                        "exit 0 when right, 1 when wrong, with a point where it is wrong")
    p.add_argument("--explain", action="store_true",
                   help="show the derivation step by step, the paper's way (the default "
                        "when no expression is given)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="output: text (Unicode, default), latex, markdown or json")
    p.add_argument("--layout", choices=LAYOUTS, default="mixed",
                   help="how derivatives are printed: mixed (default: the array evaluate "
                        "returns), numerator (the paper's), denominator, or vec "
                        "(a matrix by a matrix as d vec(F)/d vec(X)ᵀ: Bᵀ ⊗ A for AXB)")
    p.add_argument("--style", choices=STYLES, default=None,
                   help="element-wise signs: standard (⊙ and /) or paper (⊗ and ⊘); "
                        "default: ⊙ and ⊘")
    p.add_argument("--lang", choices=LANGUAGES, default="en",
                   help="language of the output, --explain's steps and the summary "
                        "lines: en (default) or zh (中文)")
    p.add_argument("--ascii", action="store_true",
                   help="ASCII output (x^T, d, .*): the default where the terminal cannot "
                        "encode Unicode")
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


def _serve(argv: Sequence[str]) -> int:
    """``matdiff serve ...``: the web page and JSON API (:mod:`matdiff.web`, the layer
    above this one, found by name like ``train``'s command)."""
    import importlib

    return int(importlib.import_module("matdiff.web.server").main(list(argv)) or 0)


@dataclass
class _Result:
    """One derivative the command prints."""

    wrt: str  #: the variable, or several as typed (x,y: by their concatenation)
    order: int
    expr: Expr  #: the derivative result (it knows its f_ndim for the layouts)
    check: CheckResult | None = None
    derivation: Any = None
    #: by several variables: their names, and the derivation of each part
    names: tuple[str, ...] = ()
    parts: list = field(default_factory=list)


def _parse_wrt(items: Sequence[str]) -> list[str | list[str]]:
    """The ``--wrt`` options: a name is a derivative by it; ``x,y`` (a list of names)
    is the derivative by several variables at once."""
    out: list[str | list[str]] = []
    for item in items:
        if "," not in item:
            out.append(item)
            continue
        names = [n.strip() for n in item.split(",")]
        if not all(names):
            raise MatdiffError(f"--wrt {item!r}: an empty name (--wrt x,y is the derivative "
                               "by x and y at once; --wrt x --wrt y gives one by each)")
        out.append(names)
    return out


def _label(wrt: str, order: int) -> str:
    if "," in wrt:  # by the concatenation of several: the paper's ∂f/∂(x, y)
        v = "(" + wrt.replace(",", ", ") + ")"
        return f"∂²f/∂{v}²" if order == 2 else f"∂f/∂{v}"
    return f"∂²f/∂{wrt}²" if order == 2 else f"∂f/∂{wrt}"


def _latex_label(wrt: str, order: int) -> str:
    if "," in wrt:
        v = r"\left(" + ", ".join(latex_name(n) for n in wrt.split(",")) + r"\right)"
    else:
        v = latex_name(wrt)
    if order == 2:
        return r"\frac{\partial^2 f}{\partial " + (f"{{{v}}}" if "_" in v or "," in wrt
                                                   else v) + "^2}"
    return r"\frac{\partial f}{\partial " + v + "}"


def _read_stdin() -> str:
    try:
        return sys.stdin.read().strip()
    except UnicodeDecodeError as exc:
        raise MatdiffError(f"standard input is not text in the locale's encoding ({exc})"
                           ) from None


def _subcommand_typo(word: str) -> None:
    """A word where a subcommand is expected that is close to one (``trian``) is a
    typo, not an expression to differentiate."""
    import difflib

    if word in SUBCOMMANDS or not word.isidentifier():
        return
    near = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.75)
    if near:
        raise MatdiffError(f"unknown command {word!r}: did you mean {near[0]}? (to "
                           f"differentiate the expression {word}, write matdiff -e {word})")


def _expression_first(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``matdiff "-sum(x)" --wrt x``: a first argument that starts with '-' but is no
    option of the command is the expression, and so is the value of ``-e``/``--expr``
    (argparse would take either for an option)."""
    out = list(argv)
    if out and out[0] not in ("-", "--") and out[0].startswith("-") \
            and out[0].split("=", 1)[0] not in parser._option_string_actions:
        out[0] = f"--expr={out[0]}"
    k = 0
    while k < len(out) - 1:
        if out[k] in ("-e", "--expr"):
            out[k:k + 2] = [f"--expr={out[k + 1]}"]
        k += 1
    return out


def run(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return _train(argv[1:])
    if argv and argv[0] == "serve":
        return _serve(argv[1:])
    if argv:
        _subcommand_typo(argv[0])
    parser = build_parser()
    args = parser.parse_args(_expression_first(parser, argv))
    if args.expr_option is not None:
        if args.expr is not None:
            raise MatdiffError(f"two expressions: {args.expr!r} and --expr "
                               f"{args.expr_option!r}")
        args.expr = args.expr_option
    out = ascii_stream(out or sys.stdout, force=args.ascii)
    explain_too = args.explain or args.expr is None
    if args.expr is None:
        text, shapes = PAPER_LOSS, dict(PAPER_SHAPES)
        wrts = args.wrt or ["w", "b"]
        header = phrases(args.lang)["cli_header"]
    else:
        text = _read_stdin() if args.expr == "-" else args.expr
        shapes = _parse_shapes(args.shape)
        wrts = args.wrt
        header = None
    if explain_too and args.hessian:
        raise MatdiffError("--explain shows first derivatives; leave out --hessian")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotationWarning)
        f, named = parse_with_variables(text, shapes=shapes,
                                        syntax=getattr(args, "syntax", "numpy"))
    for note in caught:  # the text parses, but probably not as meant: say so
        print(f"matdiff: {phrases(args.lang)['cli_note']}: "
              f"{sentence(str(note.message), args.lang)}",
              file=ascii_stream(sys.stderr))
    args.inferred = [n for n in f.variables() if n not in (shapes or {})]
    # every name of the text with its shape, for a --wrt that simplification
    # cancelled (p / p is 1: the derivative by p is 0 of p's shape)
    shapes = {**named, **(shapes or {})}
    wrts = _parse_wrt(wrts) if wrts else list(f.variables())
    if args.claim is not None:
        names = [w for w in wrts if isinstance(w, str)]
        if len(names) < len(wrts):  # a --wrt that is a list
            raise MatdiffError("--claim checks a derivative by one variable: give one "
                               "--wrt NAME (not a list; md.check(f, [x, y], "
                               "derivative=...) checks one by several at once)")
        return _claim(out, args, f, names, shapes)
    results = []
    for w in wrts:
        label = ",".join(w) if isinstance(w, list) else w
        if args.hessian:
            g = derive(f, w, shapes=shapes)
            r = _Result(label, 2, derive(g, w))
            if args.check:
                r.check = check(g, w, shapes=shapes)
        else:
            r = _Result(label, 1, derive(f, w, shapes=shapes))
            if args.check:
                r.check = check(f, w, shapes=shapes)
        if isinstance(w, list):
            # by several at once: its parts are the derivatives by each, explained so
            r.names = tuple(w)
            if explain_too:
                r.parts = [explain(f, n, lang=args.lang, shapes=shapes) for n in w]
        elif explain_too:
            r.derivation = explain(f, w, lang=args.lang, shapes=shapes)
        results.append(r)
    emit = {"text": _emit_text, "latex": _emit_latex, "markdown": _emit_markdown,
            "json": _emit_json}[args.format]
    emit(out, args, header, f, results)
    return _check_status([r.check for r in results if r.check is not None])


def inferred_note(f: Expr, inferred: Sequence[str], lang: str = "en") -> str:
    """What a printout says of the shapes it inferred: which, where usage went against
    the letter convention, and how to declare them otherwise (in ``lang``)."""
    if not inferred:
        return ""
    p = phrases(lang)
    variables = f.variables()
    against = [n for n in inferred
               if len(variables[n]) != next(iter(rank_preferences(n, set())))]
    return p["cli_inferred"].format(
        names=", ".join(inferred), ex=inferred[0],
        against=p["cli_against"].format(names=", ".join(against)) if against else "")


def shape_text(shape: Sequence[Dim], lang: str = "en", structure: str | None = None) -> str:
    """A shape as the summary lines print it: ``(n,)``, ``scalar ()``, ``(n, n)
    symmetric`` (in ``lang``)."""
    p = phrases(lang)
    scalar = p.get("cli_scalar")  # English: shape_str's own word
    if scalar and len(shape) == 0:
        return scalar
    # the tag as given (symmetric, spd, diagonal); in another language, its word
    word = structure if lang == "en" or not structure else p.get(structure, structure)
    return shape_str(tuple(shape), word)


def _array(a: Any) -> str:
    # as matdiff.check prints a point or a direction
    return np.array2string(np.asarray(a), precision=4, suppress_small=True,
                           max_line_width=10 ** 6, threshold=12)


def check_text(r: CheckResult, lang: str = "en") -> str:
    """A check's outcome in ``lang``: English is the result's own text; other
    languages word the same fields by their phrases (the reason and the hint are the
    check's sentences)."""
    p = phrases(lang)
    if "check_ok" not in p:
        return str(r)
    what = p["check_what_claim" if r.claim else "check_what"]
    hint = r.hint_in(lang)  # written from its code in the language
    if r.status == "unchecked":
        return p["check_unchecked"].format(what=what, reason=sentence(r.reason, lang))
    if not r.points:
        return p["check_refused"].format(hint=hint)
    where = p["check_where"].format(points=len(r.points), directions=r.directions)
    pieces = p["check_pieces"].format(seen=r.pieces[0], total=r.pieces[1]) \
        if r.pieces[1] else ""
    errors = p["check_errors"].format(abs=f"{r.max_abs_error:.3g}",
                                      rel=f"{r.max_rel_error:.3g}", eps=f"{r.eps:g}")
    parts = dict(what=what, where=where, errors=errors, pieces=pieces)
    if r.ok:
        return p["check_ok"].format(**parts)
    lines = [p["check_mismatch"].format(**parts)]
    if r.counterexample is not None:
        point = ", ".join(f"{k} = {_array(v)}" for k, v in r.counterexample.items())
        lines.append(p["check_at"].format(point=point))
        lines.append(p["check_along"].format(v=_array(r.direction), got=_array(r.got),
                                             expected=_array(r.expected)))
    if r.hint:
        lines.append(p["check_hint"].format(hint=hint))
    return "\n".join(lines)


def _check_status(checks: Sequence[CheckResult]) -> int:
    """The exit status the checks give: 1 if one found a mismatch, else 3 if one could
    not check, else 0."""
    if any(c.status == "mismatch" for c in checks):
        return 1
    if any(c.status == "unchecked" for c in checks):
        return 3
    return 0


def _number(v: float) -> float | None:
    return v if v == v else None  # NaN (nothing compared) is JSON's null


def check_dict(r: CheckResult) -> dict[str, Any]:
    """A check's outcome as JSON: ``ok`` is a boolean, ``status`` one of ``ok``,
    ``mismatch``, ``unchecked``."""
    doc: dict[str, Any] = {
        "ok": r.ok, "status": r.status, "points": len(r.points),
        "directions": r.directions, "pieces": list(r.pieces),
        "max_abs_error": _number(r.max_abs_error),
        "max_rel_error": _number(r.max_rel_error), "text": str(r),
    }
    if r.reason:
        doc["reason"] = r.reason
    if r.hint:
        doc["hint"] = r.hint
    if r.counterexample is not None:
        doc["counterexample"] = {k: np.asarray(v).tolist()
                                 for k, v in r.counterexample.items()}
        doc["direction"] = np.asarray(r.direction).tolist()
        doc["got"] = np.asarray(r.got).tolist()
        doc["expected"] = np.asarray(r.expected).tolist()
    return doc


def _claim(out, args, f: Expr, wrts: Sequence[str], shapes: dict) -> int:
    """``--claim``: a person's derivative of f by the one --wrt, right or wrong."""
    if len(wrts) != 1:
        raise MatdiffError("--claim checks a derivative by one variable: give one --wrt "
                           f"(f has {', '.join(wrts) or 'no variables'})")
    if args.hessian:
        raise MatdiffError("--claim checks a first derivative; leave out --hessian")
    r = check(f, wrts[0], shapes=shapes, derivative=args.claim)
    if args.format == "json":
        doc = {"f": to_text(f), "wrt": wrts[0], "claim": args.claim,
               "check": check_dict(r)}
        print(json.dumps(doc, ensure_ascii=False, indent=2), file=out)
    else:
        p = phrases(args.lang)
        verdict = p["cli_verdict_" + r.status]
        print(f"  f = {to_text(f, style=args.style)}    {p['cli_shape']} "
              f"{shape_text(f.shape, args.lang)}", file=out)
        print(f"  {p['cli_claim']}: ∂f/∂{wrts[0]} = {args.claim}: {verdict}", file=out)
        print("  " + check_text(r, args.lang).replace("\n", "\n  "), file=out)
        if r.status != "ok":
            truth = derive(f, wrts[0], shapes=shapes)
            d = f"∂f/∂{wrts[0]}"
            print(f"  {p['cli_truth'].format(d=d)} = {to_text(truth, style=args.style)}",
                  file=out)
    return _check_status([r])


def _derivations(r: _Result) -> list:
    """The derivations to print for a result: its own, or those of its parts."""
    return [r.derivation] if r.derivation is not None else list(r.parts)


def _opts(args, r: _Result) -> dict:
    return {"layout": args.layout, "style": args.style}


def _note(args) -> str:
    return "" if args.layout == "mixed" else "    " + lang_layout_note(args.layout, args.lang)


def _emit_text(out, args, header, f, results) -> None:
    p, lang = phrases(args.lang), args.lang
    if header:
        print(header, file=out)
    print(f"  f = {to_text(f, style=args.style)}    {p['cli_shape']} "
          f"{shape_text(f.shape, lang)}", file=out)
    print(f"  {p['cli_variables']}: " + ", ".join(
        f"{n} {shape_text(v.shape, lang, v.structure)}" for n, v in var_nodes(f).items()),
        file=out)
    note = inferred_note(f, args.inferred, lang)
    if note:
        print(f"    {note}", file=out)
    for r in results:
        d = to_text(r.expr, **_opts(args, r))
        printed = layout_shape(r.expr, args.layout)
        shape = shape_text(printed, lang) if printed == r.expr.shape else \
            p["cli_as_printed"].format(printed=shape_text(printed, lang),
                                       shape=shape_text(r.expr.shape, lang))
        print(f"  {_label(r.wrt, r.order)} = {d}    {p['cli_shape']} {shape}"
              + _note(args), file=out)
        if r.check is not None:
            print(f"    {p['cli_check']}: "
                  + check_text(r.check, lang).replace("\n", "\n    "), file=out)
    for r in results:
        for d in _derivations(r):
            print("", file=out)
            print(str(d), file=out)


def _latex_lines(args, f, results) -> list[str]:
    style = args.style or "standard"
    lines = [f"f = {md_latex(f, style=style)}"]
    note = "" if args.layout == "mixed" else \
        r" \qquad \text{" + lang_layout_note(args.layout, args.lang) + "}"
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
        for d in _derivations(r):
            print("", file=out)
            print(d.to_latex(), file=out)


def _emit_markdown(out, args, header, f, results) -> None:
    if header:
        print(header, file=out)
        print("", file=out)
    for ln in _latex_lines(args, f, results):
        print(f"$${ln}$$", file=out)
        print("", file=out)
    for r in results:
        if r.check is not None:
            lines = check_text(r.check, args.lang).splitlines()
            d = _label(r.wrt, 1) if r.names else f"∂f/∂{r.wrt}"
            what = phrases(args.lang)["cli_check_of"].format(d=d)
            print(f"- {what}: `{lines[0]}`", file=out)
            for ln in lines[1:]:
                print(f"  - `{ln.strip()}`", file=out)
    for r in results:
        for d in _derivations(r):
            print("", file=out)
            print(d.to_markdown(), file=out)


def _emit_json(out, args, header, f, results) -> None:
    style = args.style or "standard"
    doc: dict[str, Any] = {
        "f": {"text": to_text(f, style=args.style), "latex": md_latex(f, style=style),
              "shape": list(f.shape)},
        "variables": {n: list(v.shape_spec) for n, v in var_nodes(f).items()},
        "inferred": args.inferred,
        "layout": args.layout,
        "style": style if args.style else None,
        "derivatives": [],
    }
    for r in results:
        item: dict[str, Any] = {
            "wrt": r.wrt, "order": r.order, "shape": list(r.expr.shape),
            "printed_shape": list(layout_shape(r.expr, args.layout)),
            "text": to_text(r.expr, **_opts(args, r)),
            "latex": md_latex(r.expr, layout=args.layout, style=style),
            "index": to_index(r.expr, **_opts(args, r)),
        }
        if r.check is not None:
            item["check"] = check_dict(r.check)
        if r.derivation is not None:
            item["explanation"] = r.derivation.to_dict()
        if r.names:  # by several at once: the variables along the last axis, in order
            item["parts"] = [{"wrt": v.name, "shape": list(v.shape)}
                             for v in r.expr.wrt[-1]]
            for part, d in zip(item["parts"], r.parts):
                part["explanation"] = d.to_dict()
        doc["derivatives"].append(item)
    print(json.dumps(doc, ensure_ascii=False, indent=2, default=str), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``matdiff`` command: exit 0; 2 with a message on bad input;
    3 with a one-line message for an internal error (a bug), never a traceback
    (``MATDIFF_DEBUG=1`` shows it)."""
    err = ascii_stream(sys.stderr)
    try:
        return run(argv)
    except MatdiffError as exc:
        print(f"matdiff: error: {exc}", file=err)
        return 2
    except RecursionError:  # pragma: no cover
        print("matdiff: error: the expression is nested too deeply", file=err)
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
              f"command line): {type(exc).__name__}: {exc}", file=err)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
