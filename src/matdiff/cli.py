"""The ``matdiff`` command.

``matdiff`` alone differentiates the paper's one-neuron loss by ``w`` and ``b``;
``matdiff EXPR --wrt x --shape x=n`` differentiates any expression.  Run
``matdiff --help`` for examples.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .check import check
from .derive import derive, hessian
from .errors import MatdiffError
from .expr.core import shape_str
from .parse import parse

PAPER_LOSS = "mean((y - max(0, X @ w + b))**2)"
PAPER_SHAPES = {"X": ("N", "n"), "w": ("n",), "y": ("N",), "b": ()}

EXAMPLES = f"""\
examples:
  matdiff
      the paper's one-neuron loss  {PAPER_LOSS}
      (X: N x n, w: n, y: N, b: scalar), differentiated by w and by b
  matdiff "x @ A @ x" --wrt x --shape x=n --shape A=n,n
      gradient of a quadratic form: (A + Aᵀ)x
  matdiff "x @ A @ x" --wrt x --shape x=n --shape A=n,n --hessian
      its Hessian: A + Aᵀ
  matdiff "w * x" --wrt w --shape w=n --shape x=n
      a diagonal Jacobian: diag(x)
  matdiff "log(det(X))" --wrt X --shape X=n,n --check
      X⁻ᵀ, and a finite-difference check of it
  echo "sum(sin(3 * x))" | matdiff - --wrt x --shape x=n
      read the expression from standard input
  matdiff "x'*A*x" --syntax matrixcalculus
      matrixcalculus.org's input as typed there; shapes are inferred

shapes: NAME=DIMS with DIMS a comma-separated list of dim names or sizes;
  x=n vector, A=n,n matrix, X=N,3 matrix with 3 columns, b= or b=() scalar.
  Shapes not declared are inferred from usage (capital letter: matrix, small
  letter: vector, where usage leaves it open) and printed as "variables".
derivatives have shape f.shape + wrt.shape (numerator layout for Jacobians; a
gradient has the variable's own shape).
"""


def _parse_shape(item: str) -> tuple[str, tuple]:
    if "=" not in item:
        raise MatdiffError(f"--shape wants NAME=DIMS (like x=n or A=n,n), got {item!r}")
    name, dims = item.split("=", 1)
    name, dims = name.strip(), dims.strip()
    if dims in ("", "()", "scalar"):
        return name, ()
    out: list = []
    for d in dims.strip("()").split(","):
        d = d.strip()
        if not d:
            continue
        out.append(int(d) if d.isdigit() else d)
    return name, tuple(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="matdiff",
        description="Symbolic derivatives (gradient, Jacobian, Hessian) of expressions over "
                    "scalars, vectors and matrices, checked in numbers.",
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
    p.add_argument("--version", action="version", version=f"matdiff {__version__}")
    return p


def run(argv: Sequence[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    if args.expr is None:
        text, shapes = PAPER_LOSS, dict(PAPER_SHAPES)
        wrts = args.wrt or ["w", "b"]
        print("The paper's loss of one ReLU neuron over N examples (Parr & Howard, §5):",
              file=out)
    else:
        text = sys.stdin.read().strip() if args.expr == "-" else args.expr
        shapes = dict(_parse_shape(s) for s in args.shape)
        wrts = args.wrt
    f = parse(text, shapes=shapes, syntax=getattr(args, "syntax", "numpy"))
    if not wrts:
        wrts = list(f.variables())
    print(f"  f = {f}    shape {shape_str(f.shape)}", file=out)
    print("  variables: " + ", ".join(f"{n} {shape_str(s)}" for n, s in
                                       f.variables().items()), file=out)
    for w in wrts:
        if args.hessian:
            d = hessian(f, w, shapes=shapes)
            label = f"∂²f/∂{w}²"
        else:
            d = derive(f, w, shapes=shapes)
            label = f"∂f/∂{w}"
        print(f"  {label} = {d}    shape {shape_str(d.shape)}", file=out)
        if args.check:
            g = derive(f, w, shapes=shapes) if args.hessian else f
            r = check(g, w, shapes=shapes)
            print(f"    check: {r}", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``matdiff`` command: exit 0, or 2 with a message on bad input."""
    try:
        return run(argv)
    except MatdiffError as exc:
        print(f"matdiff: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
