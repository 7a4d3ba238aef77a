"""pyright's type-completeness score of matdiff's public API, with a threshold.

``pyright --verifytypes matdiff`` counts the symbols matdiff exports (every public
module, class, function, method, attribute and constant) and how many of them have
a type a checker knows without guessing: a parameter or return type that is
``Unknown`` (not annotated, or a bare ``list``/``tuple``/``dict``), or an
attribute whose type is only inferred, lowers the score.  This script runs it on
*this* checkout's ``src`` (never on another copy that an editable install in the
environment may point at: it checks the package root pyright reports), prints the
score and the modules with the most incomplete symbols, and exits 1 below the
threshold (90% by default; ``.ci/run`` runs it).

    python tools/verifytypes.py [--threshold 90] [--pyright .pyright/node_modules/.bin/pyright]

pyright comes from npm, pinned by ``.ci/run``
(``npm install --prefix .pyright pyright@VERSION``); ``--pythonpath`` is this
script's interpreter, so pyright resolves numpy and the rest from the same
environment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
DEFAULT_PYRIGHT = ROOT / ".pyright" / "node_modules" / ".bin" / "pyright"
PACKAGE = "matdiff"


def run_pyright(pyright: Path, python: str) -> dict[str, Any]:
    """pyright's ``--verifytypes`` report (its JSON) for this checkout's package."""
    env = dict(os.environ)
    # this checkout's src first: an editable install may name another checkout
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [str(pyright), "--verifytypes", PACKAGE, "--ignoreexternal", "--outputjson",
         "--pythonpath", python],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    # pyright exits 1 whenever a symbol is incomplete: the JSON decides, not the code
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"pyright gave no JSON report (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}") from None
    return report


def summary(report: dict[str, Any], top: int = 8) -> tuple[float, list[str]]:
    """The score (0..1) and the lines to print: the counts, then the modules with
    the most exported symbols whose type is not fully known."""
    tc = report["typeCompleteness"]
    counts = tc["exportedSymbolCounts"]
    known, ambiguous, unknown = (counts["withKnownType"], counts["withAmbiguousType"],
                                 counts["withUnknownType"])
    score = float(tc["completenessScore"])
    lines = [f"pyright {report.get('version', '?')} --verifytypes {PACKAGE}: "
             f"type completeness {100 * score:.1f}%",
             f"  exported symbols: {known + ambiguous + unknown}  known: {known}  "
             f"ambiguous: {ambiguous}  unknown: {unknown}"]
    by_module: Counter[str] = Counter()
    for sym in tc["symbols"]:
        if sym["isExported"] and not sym["isTypeKnown"]:
            by_module[sym["name"].rsplit(".", 1)[0]] += 1
    if by_module:
        lines.append("  incomplete symbols by module or class (the most first):")
        lines += [f"    {n:4d}  {m}" for m, n in by_module.most_common(top)]
    return score, lines


def checked_root(report: dict[str, Any]) -> Path:
    """The package directory pyright analysed; it must be this checkout's."""
    root = Path(report["typeCompleteness"]["packageRootDirectory"]).resolve()
    if root != (SRC / PACKAGE).resolve():
        raise SystemExit(f"pyright analysed {root}, not this checkout's {SRC / PACKAGE}")
    return root


def main(argv: list[str] | None = None) -> int:
    """Run pyright, print the score; 0 at or above the threshold, 1 below it.

    >>> main(["--threshold", "101"])  # doctest: +SKIP
    1
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threshold", type=float, default=90.0,
                    help="the lowest passing score, in percent (default 90)")
    ap.add_argument("--pyright", type=Path, default=DEFAULT_PYRIGHT,
                    help="the pyright executable (default: .pyright's, from npm)")
    args = ap.parse_args(argv)
    if not args.pyright.exists():
        print(f"no pyright at {args.pyright}: npm install --prefix .pyright "
              "pyright@VERSION (the version .ci/run pins)", file=sys.stderr)
        return 2
    report = run_pyright(args.pyright, sys.executable)
    checked_root(report)
    score, lines = summary(report)
    print("\n".join(lines))
    if 100 * score < args.threshold:
        print(f"type completeness {100 * score:.1f}% is below {args.threshold:g}%: "
              "annotate the symbols listed by pyright --verifytypes matdiff",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
