"""The independent evaluation of a matrix-form tree (:func:`to_numpy`): equal values
prove a printed formula."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...expr.core import topo_order
from ...expr.dims import dim_size
from ...expr.functions import FUNCTIONS
from ...expr.matrix_functions import MATRIX_FUNCTIONS
from .kron import commutation
from .tree import MForm

__all__ = ["to_numpy"]

def _letters(specs: tuple, out: tuple) -> str:
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return ",".join("".join(chars[c] for c in s) for s in specs) + "->" + \
        "".join(chars[c] for c in out)


def _key(text: str | None, sizes: Mapping[Any, int]) -> Any:
    """A printed key (``0``, ``-1``, ``1:``, ``::2``, ``n - 1``) as NumPy's index on an
    axis of size ``n``; a position written in dims (``n - 1``) is evaluated."""
    if text is None:
        return slice(None)

    def num(t: str) -> int | None:
        t = t.strip()
        if not t:
            return None
        try:
            return int(t)
        except ValueError:
            from ...expr.dims import parse_dim

            return dim_size(parse_dim(t.replace("−", "-")), sizes)

    if ":" not in text:
        return num(text)
    return slice(*[num(t) for t in text.split(":")])


def to_numpy(tree: MForm, values: Mapping[str, Any],
             dims: Mapping[str, int] | None = None) -> np.ndarray:
    """Evaluate a matrix-form tree by the rules of matrix algebra: a product of a
    column and a row is an outer product, of a row and a column a dot product, and
    any other pairing is an error.  Vector values are 1-D arrays whichever way
    they stand.  Dims are bound from the values (``dims`` may add more).

    >>> import numpy as np, matdiff as md
    >>> from matdiff.render.mform import matrix_form
    >>> x, w = md.vector("x", "n"), md.vector("w", "n")
    >>> to_numpy(matrix_form(md.outer(x, w)), {"x": np.array([1., 2.]), "w": np.array([3., 4.])})
    array([[3., 4.],
           [6., 8.]])
    """
    order: list[MForm] = topo_order(tree, children=lambda n: n.args)

    sizes: dict[Any, int] = dict(dims or {})
    for node in order:
        if node.kind == "sym":
            arr = np.asarray(values[node.params[0]], dtype=np.float64)
            if arr.ndim != len(node.shape):
                raise ValueError(f"value of {node.params[0]} has {arr.ndim} axes")
            for d, k in zip(node.shape, arr.shape, strict=True):
                sizes.setdefault(d, k)

    def size(d: Any) -> int:
        return dim_size(d, sizes)  # the vec layout's m·n too

    def matrix(node: MForm, v: Any) -> Any:
        # a form as a matrix: a column is n × 1, a row 1 × n, a scalar 1 × 1
        return {"col": lambda: v[:, None], "row": lambda: v[None, :],
                "s": lambda: np.reshape(v, (1, 1))}.get(node.orient, lambda: v)()

    val: dict[int, Any] = {}
    for node in order:
        k = node.kind
        a = [val[id(c)] for c in node.args]
        if k == "sym":
            v = np.asarray(values[node.params[0]], dtype=np.float64)
        elif k == "num":
            v = np.float64(node.params[0])
        elif k == "fill":
            v = np.full(tuple(size(d) for d in node.shape), node.params[0])
        elif k == "size":
            v = np.float64(size(node.params[0]))
        elif k == "eye":
            v = np.eye(size(node.params[0]))
        elif k == "unit":  # eₚ: row p of the identity
            v = np.eye(size(node.params[1]))[size(node.params[0])]
        elif k == "T":
            v = a[0].T if node.orient == "m" else a[0]
        elif k == "matmul":
            oa, ob = node.args[0].orient, node.args[1].orient
            if (oa, ob) == ("col", "row"):
                v = np.outer(a[0], a[1])
            elif oa in ("m", "row") and ob in ("m", "col"):
                v = a[0] @ a[1]
            else:
                raise ValueError(f"no matrix product of a {oa} and a {ob}")
        elif k == "had":
            if len({c.orient for c in node.args}) != 1:
                raise ValueError("⊙ of forms that stand differently")
            v = a[0]
            for b in a[1:]:
                v = v * b
        elif k == "smul":
            if any(c.orient != "s" for c in node.args[:-1]):
                raise ValueError("a scalar factor that is not a scalar")
            v = a[-1]
            for b in a[:-1]:
                v = b * v
        elif k == "scale":
            v = node.params[0] * a[0]
        elif k == "diag":
            if node.args[0].orient not in ("col", "row"):
                raise ValueError("diag of a non-vector")
            v = np.diag(a[0])
        elif k == "diagof":
            v = np.diagonal(a[0]).copy()
        elif k == "trace":
            v = np.trace(a[0])
        elif k == "sum":
            v = np.sum(a[0])
        elif k == "mean":
            v = np.mean(a[0])
        elif k == "dot":  # w · x of two columns
            if any(c.orient != "col" for c in node.args):
                raise ValueError("a dot product of forms that are not columns")
            v = np.dot(a[0], a[1])
        elif k == "sumaxis":
            v = np.sum(a[0], axis=node.params[0])
        elif k == "meanaxis":
            v = np.mean(a[0], axis=node.params[0])
        elif k == "add":
            if len({c.orient for c in node.args}) != 1:
                raise ValueError("a sum of forms that stand differently")
            v = a[0]
            for b in a[1:]:
                v = v + b
        elif k == "func":
            with np.errstate(all="ignore"):
                v = FUNCTIONS[node.params[0]].numpy(*a)
        elif k == "pow":
            with np.errstate(all="ignore"):
                v = np.power(np.asarray(a[0], dtype=np.float64), a[1])
        elif k == "call":  # the arguments, then the parameters (a dim as its size)
            fn, *params = node.params
            v = MATRIX_FUNCTIONS[fn].numpy(
                *[np.asarray(x, dtype=np.float64) for x in a],
                *[p if isinstance(p, int) else size(p) for p in params])
        elif k == "kron":  # Kronecker: (P ⊗ Q)[(i, j), (k, l)] = Pⱼₗ Qᵢₖ
            v = np.kron(matrix(node.args[0], a[0]), matrix(node.args[1], a[1]))
        elif k == "comm":  # vec(Xᵀ) = K vec(X)
            v = commutation(size(node.params[0]), size(node.params[1]))
        elif k == "vecof":  # the columns stacked: vec(F)[i + m·j] = F[i, j]
            v = np.reshape(a[0], -1, order="F")
        elif k == "stack":
            axis, rows = node.params
            v = np.concatenate([np.expand_dims(x, axis) if row else x
                                for x, row in zip(a, rows, strict=True)], axis=axis)
        elif k == "block":
            nr, nc = node.params
            # cells of a block matrix are matrices: a column n × 1, a row 1 × n
            cells = [matrix(c, x) if any(m.shape for m in node.args) else x
                     for c, x in zip(node.args, a, strict=True)]
            v = np.block([[cells[i * nc + j] for j in range(nc)] for i in range(nr)])
        elif k == "take":
            # NumPy reads the key as it is printed: that is the proof of the printout
            sel = tuple(_key(t, sizes) for t in node.params[0])
            v = a[0][sel]
        elif k == "index":
            specs, out = node.params
            v = np.einsum(_letters(specs, out), *[np.asarray(x) for x in a])
        else:  # pragma: no cover
            raise ValueError(f"unknown form {k}")
        val[id(node)] = np.asarray(v, dtype=np.float64)
    return val[id(tree)]
