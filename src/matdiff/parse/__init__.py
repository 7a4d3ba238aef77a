"""Text -> Expr: the expression language (numpy syntax).

The text is tokenized (:mod:`.lexer`), parsed by hand-written recursive descent
into a syntax tree (:mod:`.grammar`, :mod:`.tree`) and built into an expression
through the builders (:mod:`.build`); it is never ``eval``-ed.  The functions of
the language are one table (:mod:`.table`).

>>> import matdiff as md
>>> f = md.parse("mean((y - max(0, X @ w + b))**2)",
...              shapes={"X": ("N", "n"), "w": ("n",), "y": ("N",), "b": ()})
>>> f.shape
()
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

from ..errors import LimitError, NotationWarning, ParseError
from ..expr.builders import with_structures
from ..expr.core import Dim, Expr, Shape
from .build import build_expr, declared_shapes, declared_structures, variable_shapes
from .grammar import MAX_DEPTH, parse_tree
from .infer import infer_shapes
from .lexer import MAX_LENGTH, Token, tokenize
from .mc import build_mc
from .table import FUNCTION_NAMES, FUNCTION_TABLE, FunctionSpec
from .tree import Node, walk
from .unicode import looks_unicode, parse_unicode

__all__ = [
    "parse", "parse_tree", "infer_shapes", "tokenize", "Token", "Node", "walk",
    "FUNCTION_NAMES", "FUNCTION_TABLE", "FunctionSpec", "MAX_DEPTH", "MAX_LENGTH",
    "parse_with_variables", "SYNTAXES",
]

#: a transpose multiplied element-wise (``x'*A``): matrixcalculus.org's notation
_MC_LIKE = re.compile(r"'\s*\*(?!\*)")

#: the syntaxes :func:`parse` reads
SYNTAXES = ("numpy", "matrixcalculus", "unicode")


def parse(text: str, shapes: Mapping[str, Sequence[Dim]] | None = None,
          syntax: str = "numpy") -> Expr:
    """Parse ``text`` into an :class:`~matdiff.expr.Expr`.

    ``syntax`` is ``"numpy"`` (the default: ``*`` element-wise, ``@`` the matrix
    product, vectors 1-D) or ``"matrixcalculus"`` (matrixcalculus.org's input:
    ``*`` the matrix product, ``.*`` element-wise, ``'`` transposes column vectors;
    see :mod:`matdiff.parse.mc`) or ``"unicode"`` (matdiff's own matrix notation, as
    ``str(expr)`` prints it: ``(A + Aᵀ)x``, ``xᵀAx``, ``σ(x) ⊙ (1 − σ(x))``; names
    are split by the variables of ``shapes=``; see :mod:`matdiff.parse.unicode`).
    In numpy syntax (the default, and ``syntax="numpy"`` given explicitly alike) a
    text with one of ``ᵀ ⁻ ⊙ ⊘ − · 𝟏`` is read in unicode syntax: numpy syntax has
    none of these characters, so no text it reads changes meaning.
    ``syntax="matrixcalculus"`` never switches.

    ``shapes`` maps a variable's name to its tuple of dims (``()`` scalar,
    ``("n",)`` vector, ``("m", "n")`` matrix; a dim is a name or an int; a square
    matrix may end in ``"symmetric"``, ``"spd"`` or ``"diagonal"``, and then
    ``Sᵀ = S`` and its gradients are ``sym(G)`` or ``diag(G)``); names
    declared but not used are ignored.  Variables not declared get the shapes their
    use implies (:mod:`matdiff.parse.infer`; where usage leaves the rank open, a
    capital letter is a matrix, a–g or a Greek letter a scalar, h–z a vector, as on
    matrixcalculus.org); ``expr.variables()``
    shows them.  Errors are :class:`~matdiff.ParseError`
    (syntax; :class:`~matdiff.UnknownFunctionError` for an unknown function),
    :class:`~matdiff.ShapeError` (shapes that do not fit, or uses that conflict) and
    :class:`~matdiff.LimitError` (more than
    :data:`MAX_LENGTH` characters, or nesting deeper than :data:`MAX_DEPTH`); each
    prints the text with a caret under the offending part.

    >>> import numpy as np
    >>> f = parse("x.T @ A @ x + 1", shapes={"x": ("n",), "A": ("n", "n")})
    >>> f.shape
    ()
    >>> float(f.evaluate(x=np.array([1.0, 2.0]), A=np.eye(2)))
    6.0
    >>> parse("sum(log(exp(-y * (X @ w)) + vector(1)))",
    ...       shapes={"X": ("N", "n"), "w": ("n",), "y": ("N",)}).shape
    ()
    >>> parse("X @ w + b").variables() == {"X": ("m", "n"), "w": ("n",), "b": ()}
    True
    >>> parse("x'*A*x", syntax="matrixcalculus").variables() == {"x": ("n",),
    ...                                                           "A": ("n", "n")}
    True
    >>> parse("xᵀAx", shapes={"x": ("n",), "A": ("n", "n")}).shape  # unicode syntax
    ()
    >>> parse("x @ A", shapes={"x": ("n",), "A": ("m", "m")})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    matdiff.errors.ShapeError: '@' of shapes (n,) and (m, m): ... first dim m
      x @ A
      ^   ^
    """
    return parse_with_variables(text, shapes, syntax)[0]


def parse_with_variables(text: str, shapes: Mapping[str, Sequence[Dim]] | None = None,
                         syntax: str = "numpy") -> tuple[Expr, dict[str, Shape]]:
    """:func:`parse`, and every variable the text names with its shape, also those
    that simplification cancelled (``p / p`` is the constant 1, a node shared by every
    text that makes it, so the expression cannot know them): what
    ``md.derive(text, "p")`` needs to give 0 of p's shape.

    >>> parse_with_variables("x_doc - x_doc", shapes={"x_doc": ("n",)})[1]
    {'x_doc': ('n',)}
    """
    declared = declared_shapes(shapes)
    if syntax == "numpy" and looks_unicode(text):
        syntax = "unicode"
    if syntax == "numpy" and isinstance(text, str) and _MC_LIKE.search(text):
        warnings.warn(NotationWarning(
            "in numpy syntax ' transposes and * is element-wise, so x'*A*x is an "
            "element-wise product; for matrixcalculus.org's input use "
            "syntax='matrixcalculus' (matdiff --syntax matrixcalculus), or write "
            "x @ A @ x"), stacklevel=3)
    if syntax not in SYNTAXES:
        raise ParseError(f"unknown syntax {syntax!r}: use one of "
                         + ", ".join(repr(s) for s in SYNTAXES))
    if syntax != "unicode":
        tree = parse_tree(text, declared, syntax)
    try:
        if syntax == "unicode":
            out, var_shapes = parse_unicode(text, declared)
        elif syntax == "matrixcalculus":
            inferred = infer_shapes(tree, text, declared, syntax)
            var_shapes = inferred.variables
            out = build_mc(tree, text, var_shapes, inferred.fills)
        else:
            var_shapes = variable_shapes(tree, text, declared)
            out = build_expr(tree, text, var_shapes)
    except RecursionError:  # pragma: no cover - building is iterative
        raise LimitError(
            f"the expression is nested too deeply (the limit is {MAX_DEPTH} levels)"
        ) from None
    # the structure tags of shapes= (S: ("n", "n", "symmetric")) go on the variables,
    # and the expression is simplified by them (Sᵀ = S)
    out = with_structures(out, declared_structures(shapes))
    return out, {name: tuple(shape) for name, shape in var_shapes.items()}
