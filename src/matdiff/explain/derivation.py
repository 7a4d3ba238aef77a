"""A derivation of ``∂f/∂x`` the paper's way: the data :func:`matdiff.explain` returns.

A :class:`Derivation` holds the expressions of its steps, local derivatives and
result, and their texts in Unicode; :meth:`Derivation.to_latex`,
:meth:`Derivation.to_markdown` and ``str()`` print them (:mod:`.formats`) through
matdiff's one printer (:mod:`.formulas`).

>>> import matdiff as md
>>> d = md.explain("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
>>> [(s.name, s.definition) for s in d.steps]
[('u', 'w ⊗ x'), ('y', 'sum(u)')]
>>> [(p.of, p.wrt, p.text) for s in d.steps for p in s.derivatives]
[('u', 'w', 'diag(x)'), ('y', 'u', '𝟏ᵀ')]
>>> print(d.chain_text())
∂y/∂w = ∂y/∂u ∂u/∂w = 𝟏ᵀ diag(x) = xᵀ
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..expr.core import Dim, Expr, Var
from . import formats
from . import formulas as F
from .differentials import Differential
from .lang import phrases

__all__ = ["Derivation", "Step", "LocalDerivative"]


# ====================================================================== data
@dataclass
class LocalDerivative:
    """The local derivative ``∂of/∂wrt`` of one step, in numerator layout."""

    of: str
    wrt: str
    text: str                      #: Unicode matrix notation, numerator layout
    shape: str                     #: ``m × n`` (numerator layout)
    expr: Expr = field(repr=False)  #: the derivative, shape ``of.shape + wrt.shape``
    notes: list[str] = field(default_factory=list)
    #: the notes in LaTeX, rows of an ``aligned`` block (``&`` then math and prose)
    latex_notes: list[str] = field(default_factory=list, repr=False)
    #: how many leading axes of ``expr`` come from ``of`` (for the numerator layout)
    f_ndim: int = field(default=0, repr=False)
    #: the dims of :attr:`shape`
    dims: list[Dim] = field(default_factory=list, repr=False)
    #: the step's differential (product rule, matrix function), where it has one
    differential: Differential | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """``∂of/∂wrt``."""
        return F.partial(self.of, self.wrt)

    def latex(self) -> str:
        """The local derivative in LaTeX, printed from :attr:`expr`."""
        return F.jacobian(self.expr, self.f_ndim, "latex")

    def add_note(self, template: str, args: dict[str, Any], with_value: bool) -> None:
        """A note from a phrase whose ``{d}`` stands for ``∂of/∂wrt`` (with its value
        when ``with_value``): in text, and in LaTeX with ``{d}`` as math."""
        d, d_tex = self.label, F.partial(self.of, self.wrt, "latex")
        if with_value:
            d, d_tex = f"{d} = {self.text}", f"{d_tex} = {self.latex()}"
        self.notes.append(template.format(d=d, **args))
        if template.startswith("{d}"):
            prose = template[len("{d}"):].format(d=d, **args)
            self.latex_notes.append("&" + d_tex + formats.tex_prose(prose))
        else:
            self.latex_notes.append("&" + formats.tex_prose(self.notes[-1]))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"of": self.of, "wrt": self.wrt, "text": self.text,
                               "shape": self.shape, "notes": list(self.notes)}
        if self.differential is not None:
            out["differential"] = self.differential.to_dict()
        return out


@dataclass
class Step:
    """One intermediate variable: its name, definition, shape and local derivatives."""

    name: str
    definition: str                 #: Unicode, in terms of earlier names
    shape: str                      #: ``n × 1``, ``m × n``, ``scalar``
    expr: Expr = field(repr=False)   #: the definition, over variables named as earlier steps
    derivatives: list[LocalDerivative] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the components ``g₁, …`` the step reads (the vector chain rule), each as an
    #: expression in the stack ``g`` they come from: ``g₁ = g[0]``
    components: dict[str, Expr] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "definition": self.definition,
                               "shape": self.shape,
                               "derivatives": [d.to_dict() for d in self.derivatives],
                               "notes": list(self.notes)}
        if self.components:
            out["components"] = {k: F.definition(v) for k, v in self.components.items()}
        return out


@dataclass(repr=False)
class Derivation:
    """A derivation of ``∂f/∂x`` the paper's way; see :func:`matdiff.explain`.

    ``str(d)`` is plain text; :meth:`to_markdown`, :meth:`to_latex` and
    :meth:`to_dict` give the same content for notebooks, papers and programs.
    """

    f: Expr = field(repr=False)
    wrt: Var = field(repr=False)
    lang: str
    name: str                        #: the name of ``f`` in the derivation
    steps: list[Step]
    #: the chain rule: each path, outside in, as (of, wrt) pairs
    paths: list[list[tuple[str, str]]]
    #: the product of the local derivatives along each path (Unicode, the paper's style)
    products: list[str]
    result: Expr = field(repr=False)  #: ``derive(f, x)`` (default layout)
    numerator: str                   #: the result in numerator layout, the paper's style
    mixed: str                       #: the result as ``md.to_text`` prints it
    notes: list[str] = field(default_factory=list)
    matrix_chain: bool = False       #: local derivatives are tensors: no matrix product

    # -------------------------------------------------------------- helpers
    @property
    def x(self) -> str:
        """The variable's name."""
        return self.wrt.name

    def _p(self) -> dict[str, str]:
        return phrases(self.lang)

    def local(self, of: str, wrt: str) -> LocalDerivative:
        """The local derivative ``∂of/∂wrt`` of the steps."""
        return next(d for s in self.steps for d in s.derivatives
                    if (d.of, d.wrt) == (of, wrt))

    def chain_text(self) -> str:
        """The chain-rule line, e.g. ``∂y/∂w = ∂y/∂u ∂u/∂w = 𝟏ᵀ diag(x) = xᵀ``."""
        return formats.chain_line(self, "text")

    # -------------------------------------------------------------- formats
    def __str__(self) -> str:
        return formats.to_text(self)

    def __repr__(self) -> str:
        # at the REPL a derivation shows as itself, not as a record of its fields
        return formats.to_text(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's display: the derivation's text."""
        p.text(formats.to_text(self))

    def to_markdown(self) -> str:
        """Markdown with inline LaTeX math (``$...$``), for notebooks and READMEs."""
        return formats.to_markdown(self)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_latex(self) -> str:
        r"""The derivation as one LaTeX math block (``\begin{aligned}``), valid KaTeX."""
        return formats.to_latex(self)

    def _repr_latex_(self) -> str:
        return "$$" + self.to_latex() + "$$"

    # -------------------------------------------------------------- dict
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps`` works on it)."""
        return {
            "lang": self.lang,
            "f": F.definition(self.f),
            "name": self.name,
            "wrt": self.x,
            "wrt_shape": list(self.wrt.shape),
            "steps": [s.to_dict() for s in self.steps],
            "chain": {
                "paths": [[list(e) for e in path] for path in self.paths],
                "products": list(self.products),
                "text": self.chain_text(),
                "matrix_chain": self.matrix_chain,
            },
            "result": {"numerator": self.numerator, "mixed": self.mixed,
                       "shape": list(self.result.shape)},
            "notes": list(self.notes),
        }

    def to_json(self, **kw: Any) -> str:
        """``json.dumps(self.to_dict())``."""
        kw.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), **kw)
