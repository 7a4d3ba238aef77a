"""``matdiff train neuron`` / ``matdiff train mlp``: the demos from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXAMPLES = """\
examples:
  matdiff train neuron                       the paper's ReLU neuron on diabetes (R²)
  matdiff train neuron --epochs 300 --plot neuron.png
  matdiff train mlp                          MLP 64-64-10 on the digits (accuracy)
  matdiff train mlp --hidden 128 --activation tanh --seed 1 --plot digits.png
  matdiff train mlp --save digits.npz        then: md.nn.Model.load("digits.npz")
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="matdiff train",
        description="Train on scikit-learn's bundled datasets with matdiff's symbolic "
                    "derivatives (needs the 'train' extra: scikit-learn, tqdm, matplotlib).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", metavar="{neuron,mlp}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--epochs", type=int, default=None, help="training epochs")
    common.add_argument("--seed", type=int, default=0, help="seed (init, split, shuffling)")
    common.add_argument("--lr", type=float, default=None, help="Adam's learning rate")
    common.add_argument("--batch-size", type=int, default=32, help="minibatch size")
    common.add_argument("--plot", metavar="PATH", default=None,
                        help="save the training curves as a PNG")
    common.add_argument("--save", metavar="PATH", default=None,
                        help="save the trained model to PATH (.npz: its class, config and "
                             "parameters, no code; load it with md.nn.Model.load(PATH)). "
                             "The neuron predicts the target divided by its training std, "
                             "from standardised inputs; the MLP takes pixels / 16")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("neuron", parents=[common],
                   help="the paper's neuron max(0, w·x + b) on load_diabetes (R²)",
                   description="The paper's neuron max(0, w·x + b) on load_diabetes, mean "
                               "squared error, Adam; prints the test R².",
                   epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    m = sub.add_parser("mlp", parents=[common], help="an MLP on load_digits (accuracy)",
                       description="An MLP 64-H-10 on load_digits, softmax cross-entropy, "
                                   "Adam; prints the test accuracy.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    m.add_argument("--activation", default="relu",
                   help="hidden activation: relu, tanh, sigmoid, identity")
    return p


#: the suffixes of the plot files matplotlib writes
_PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff",
                  ".webp")


def _unwritable(path: str, suffixes: tuple[str, ...] | None = _PLOT_SUFFIXES) -> str:
    """Why a file could not be saved at ``path`` (checked before training, so that a
    typo does not cost the run), or "" where it can; ``suffixes``: the names allowed
    (``None``: any)."""
    import os
    from pathlib import Path

    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"the directory {parent} is not writable"
    if Path(path).is_dir():
        return "it is a directory"
    if suffixes is not None and Path(path).suffix.lower() not in suffixes:
        return "give a file name ending in " + (".png, .pdf or .svg" if suffixes ==
                                                 _PLOT_SUFFIXES else " or ".join(suffixes))
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``train neuron`` / ``train mlp`` (``argv`` without ``train``; a leading
    ``train`` is accepted too).  Returns the exit status."""
    from ..errors import MatdiffError
    from . import demos

    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["train"]:
        args_in = args_in[1:]
    parser = _parser()
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.what is None:
        parser.print_help()
        return 2
    for name in ("epochs", "batch_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            print(f"matdiff train: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    for flag, path, suffixes in (("--plot", args.plot, _PLOT_SUFFIXES),
                                 ("--save", args.save, (".npz",))):
        problem = _unwritable(path, suffixes) if path else ""
        if problem:
            print(f"matdiff train: cannot write {flag} {path}: {problem}", file=sys.stderr)
            return 2
    kw = {"seed": args.seed, "batch_size": args.batch_size, "plot": args.plot,
          "progress": not args.no_progress}
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    if args.lr is not None:
        kw["lr"] = args.lr
    try:
        if args.what == "neuron":
            r = demos.train_neuron(**kw)
            h = r["history"]
            print(f"ReLU neuron on diabetes: {r['n_train']} train / {r['n_test']} test, "
                  f"{len(h['loss'])} epochs")
            print(f"test R² = {r['r2']:.4f}   (predicting the mean: {r['r2_mean']:.4f}); "
                  f"RMSE = {r['rmse']:.2f}")
        else:
            r = demos.train_mlp(hidden=args.hidden, activation=args.activation, **kw)
            h = r["history"]
            print(f"MLP 64-{args.hidden}-10 ({args.activation}) on digits: "
                  f"{r['n_train']} train / {r['n_test']} test, {len(h['loss'])} epochs")
            print(f"final train loss = {h['loss'][-1]:.4f}, test accuracy = "
                  f"{100 * r['accuracy']:.2f}%")
    except ImportError as exc:
        print(f"matdiff train: {exc}; install the extra: pip install 'matdiff[train]'",
              file=sys.stderr)
        return 1
    except MatdiffError as exc:
        print(f"matdiff train: {exc}", file=sys.stderr)
        return 1
    if args.plot:
        print(f"saved the training curves to {args.plot}")
    if args.save:
        try:
            r["model"].save(args.save)
        except OSError as exc:
            print(f"matdiff train: cannot write --save {args.save}: {exc}", file=sys.stderr)
            return 1
        print(f"saved the model to {args.save} (load it with md.nn.Model.load)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
