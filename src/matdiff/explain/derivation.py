"""Step-by-step derivations, the paper's way (MATH.md, "Explaining, the paper's way").

:func:`explain` names the intermediate variables of ``f`` on the paths down to the
variable, gives each its definition and shape, its local derivative (Jacobian) by
each earlier name in numerator layout, multiplies them by the chain rule (summing
over paths where a name feeds several later ones) and ends with the simplified
result, in numerator layout and in the default (mixed) layout that ``evaluate``
returns.

>>> import matdiff as md
>>> d = md.explain("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
>>> [(s.name, s.definition) for s in d.steps]
[('u', 'w ⊗ x'), ('y', 'sum(u)')]
>>> [(p.of, p.wrt, p.text) for s in d.steps for p in s.derivatives]
[('u', 'w', 'diag(x)'), ('y', 'u', '1ᵀ')]
>>> print(d.chain_text())
∂y/∂w = ∂y/∂u ∂u/∂w = 1ᵀ diag(x) = xᵀ
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..derive.reverse import derive, resolve_wrt, to_expr
from ..errors import MatdiffError
from ..expr import builders as B
from ..expr import simplify as S
from ..expr.core import Add, Const, Einsum, Expr, Map, Var, topo_order
from ..expr.functions import FUNCTIONS
from ..expr.matrix_functions import MATRIX_FUNCTIONS
from .lang import phrases

__all__ = ["explain", "Derivation", "Step", "LocalDerivative", "to_latex_math"]

_MAX_PATHS = 12


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

    @property
    def label(self) -> str:
        """``∂of/∂wrt``."""
        return f"∂{self.of}/∂{self.wrt}"

    def to_dict(self) -> dict[str, Any]:
        return {"of": self.of, "wrt": self.wrt, "text": self.text, "shape": self.shape,
                "notes": list(self.notes)}


@dataclass
class Step:
    """One intermediate variable: its name, definition, shape and local derivatives."""

    name: str
    definition: str                 #: Unicode, in terms of earlier names
    shape: str                      #: ``n × 1``, ``m × n``, ``scalar``
    expr: Expr = field(repr=False)   #: the definition, over variables named as earlier steps
    derivatives: list[LocalDerivative] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "definition": self.definition, "shape": self.shape,
                "derivatives": [d.to_dict() for d in self.derivatives],
                "notes": list(self.notes)}


@dataclass
class Derivation:
    """A derivation of ``∂f/∂x`` the paper's way; see :func:`explain`.

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
    #: the product of the local derivatives along each path (Unicode)
    products: list[str]
    result: Expr = field(repr=False)  #: ``derive(f, x)`` (default layout)
    numerator: str                   #: the result in numerator layout
    mixed: str                       #: the result in the default layout
    notes: list[str] = field(default_factory=list)
    matrix_chain: bool = False       #: local derivatives are tensors: no matrix product

    # -------------------------------------------------------------- helpers
    @property
    def x(self) -> str:
        """The variable's name."""
        return self.wrt.name

    def _p(self) -> dict[str, str]:
        return phrases(self.lang)

    def _shape_text(self, e: Expr) -> str:
        return _shape_text(e.shape, self._p())

    def chain_text(self) -> str:
        """The chain-rule line, e.g. ``∂y/∂w = ∂y/∂u ∂u/∂w = 1ᵀ diag(x) = xᵀ``."""
        lhs = f"∂{self.name}/∂{self.x}"
        parts = [lhs]
        symbolic = " + ".join(" ".join(f"∂{a}/∂{b}" for a, b in path)
                              for path in self.paths)
        if symbolic and symbolic != lhs:
            parts.append(symbolic)
        if not self.matrix_chain:
            product = " + ".join(self.products)
            if product and product not in parts:
                parts.append(product)
        if self.numerator not in parts[1:] or len(parts) == 1:
            parts.append(self.numerator)
        return " = ".join(parts)

    # -------------------------------------------------------------- text
    def __str__(self) -> str:
        p = self._p()
        lines = [p["title"].format(f=self.name, expr=_text(self.f), x=self.x), p["method"]]
        lines.append("")
        if self.notes:
            lines.extend(self.notes)
            lines.append("")
        if self.steps:
            lines.append(p["intermediates"] + ":")
            width = max(len(f"{s.name} = {s.definition}") for s in self.steps)
            for s in self.steps:
                left = f"{s.name} = {s.definition}"
                lines.append(f"  {left.ljust(width)}   ({s.shape})")
            lines.append("")
            lines.append(p["locals"] + ":")
            locs = [d for s in self.steps for d in s.derivatives]
            if locs:
                width = max(len(f"{d.label} = {d.text}") for d in locs)
            for d in locs:
                left = f"{d.label} = {d.text}"
                lines.append(f"  {left.ljust(width)}   ({d.shape})")
                for n in d.notes:
                    lines.append(f"    {n}")
            for s in self.steps:
                for n in s.notes:
                    lines.append(f"  {n}")
            lines.append("")
        lines.append(p["chain"] + ":")
        if len(self.paths) > 1:
            lines.append("  " + p["total"].format(x=self.x, f=self.name, k=len(self.paths)))
        if self.matrix_chain:
            lines.append("  " + p["matrix_chain"])
        lines.append("  " + self.chain_text() + f"   ({p['numerator']})")
        lines.append("")
        lines.append(p["result"] + ":")
        lines.append(f"  ∂{self.name}/∂{self.x} = {self.mixed}   ("
                     + p["mixed"].format(shape=_tuple_text(self.result.shape)) + ")")
        return "\n".join(lines)

    # -------------------------------------------------------------- markdown
    def to_markdown(self) -> str:
        """Markdown with inline LaTeX math (``$...$``), for notebooks and READMEs."""
        p = self._p()

        def m(s: str) -> str:
            return f"${to_latex_math(s)}$"

        title = p["title"].replace("{f} = {expr}", "\x00").replace("{x}", "\x01")
        title = _md_escape(title).replace("\x00", m(self.name + " = " + _text(self.f)))
        out = ["**" + title.replace("\x01", m(self.x)) + "**", "",
               _md_escape(p["method"]), ""]
        for n in self.notes:
            out.append(_md_escape(n))
            out.append("")
        if self.steps:
            out.append(f"**{p['intermediates']}**")
            out.append("")
            for s in self.steps:
                out.append(f"- {m(s.name + ' = ' + s.definition)} &nbsp; "
                           f"(${_shape_latex(s.shape)}$)")
            out.append("")
            out.append(f"**{p['locals']}**")
            out.append("")
            for s in self.steps:
                for d in s.derivatives:
                    out.append(f"- {_frac_md(d.of, d.wrt)} $= {to_latex_math(d.text)}$"
                               f" &nbsp; ({m(d.shape)})")
                    for n in d.notes:
                        out.append(f"  - {_md_escape(n)}")
                for n in s.notes:
                    out.append(f"- {_md_escape(n)}")
            out.append("")
        out.append(f"**{p['chain']}** ({_md_escape(p['numerator'])})")
        out.append("")
        if len(self.paths) > 1:
            out.append(_md_escape(p["total"].format(x=self.x, f=self.name,
                                                   k=len(self.paths))))
            out.append("")
        if self.matrix_chain:
            out.append(_md_escape(p["matrix_chain"]))
            out.append("")
        out.append("$$" + self._chain_latex() + "$$")
        out.append("")
        out.append(f"**{p['result']}** ("
                   + _md_escape(p["mixed"].format(shape=_tuple_text(self.result.shape)))
                   + ")")
        out.append("")
        out.append("$$" + _frac_latex(self.name, self.x) + " = "
                   + to_latex_math(self.mixed) + "$$")
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    # -------------------------------------------------------------- latex
    def _chain_latex(self) -> str:
        parts = [_frac_latex(self.name, self.x)]
        symbolic = " + ".join(" ".join(_frac_latex(a, b) for a, b in path)
                              for path in self.paths)
        if symbolic and symbolic != parts[0]:
            parts.append(symbolic)
        texts = [f"∂{self.name}/∂{self.x}"]
        if not self.matrix_chain:
            product = " + ".join(self.products)
            if product and product != self.numerator:
                parts.append(to_latex_math(product))
                texts.append(product)
        parts.append(to_latex_math(self.numerator))
        return " = ".join(parts)

    def to_latex(self) -> str:
        r"""The derivation as one LaTeX math block (``\begin{aligned}``), valid KaTeX."""
        p = self._p()
        rows: list[str] = []
        if self.notes:
            rows.extend(r"&\text{" + _tex_text(n) + "}" for n in self.notes)
        if self.steps:
            rows.append(r"&\text{" + _tex_text(p["intermediates"]) + "}")
            for s in self.steps:
                rows.append(f"{to_latex_math(s.name)} &= {to_latex_math(s.definition)}"
                            rf" &&{_shape_latex(s.shape)}")
            rows.append(r"&\text{" + _tex_text(p["locals"]) + "}")
            for s in self.steps:
                for d in s.derivatives:
                    rows.append(f"{_frac_latex(d.of, d.wrt)} &= {to_latex_math(d.text)}"
                                rf" &&{_shape_latex(d.shape)}")
                    for n in d.notes:
                        rows.append(_note_latex(n))
                for n in s.notes:
                    rows.append(r"&\text{" + _tex_text(n) + "}")
        rows.append(r"&\text{" + _tex_text(p["chain"] + " (" + p["numerator"] + ")") + "}")
        chain = self._chain_latex()
        lhs, _, rhs = chain.partition(" = ")
        rows.append(f"{lhs} &= {rhs}" if rhs else f"&{lhs}")
        rows.append(r"&\text{" + _tex_text(
            p["result"] + " (" + p["mixed"].format(shape=_tuple_text(self.result.shape))
            + ")") + "}")
        rows.append(f"{_frac_latex(self.name, self.x)} &= {to_latex_math(self.mixed)}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return "$$" + self.to_latex() + "$$"

    # -------------------------------------------------------------- dict
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps`` works on it)."""
        return {
            "lang": self.lang,
            "f": _text(self.f),
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


# ====================================================================== text helpers
def _text(e: Expr) -> str:
    """The printer's Unicode, in the paper's style (``⊗`` for the element-wise product)."""
    return str(e).replace("⊙", "⊗")


def _tuple_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _shape_text(shape: Sequence[Any], p: Mapping[str, str]) -> str:
    if len(shape) == 0:
        return p["scalar"]
    if len(shape) == 1:
        return f"{shape[0]} × 1"
    return " × ".join(str(d) for d in shape)


def _jac_shape(fs: Sequence[Any], xs: Sequence[Any]) -> str:
    if not fs and len(xs) == 2:  # numerator layout transposes a scalar-by-matrix one
        return f"{xs[1]} × {xs[0]}"
    if len(fs) + len(xs) > 2:
        return " × ".join(str(d) for d in (*fs, *xs))
    rows = str(fs[0]) if fs else "1"
    cols = str(xs[0]) if xs else "1"
    return f"{rows} × {cols}"


def _top_level(s: str) -> list[str]:
    """The characters of ``s`` outside any parentheses (others as ``_``)."""
    depth, out = 0, []
    for c in s:
        if c in "([{":
            depth += 1
            out.append("_")
        elif c in ")]}":
            depth -= 1
            out.append("_")
        else:
            out.append(c if depth == 0 else "_")
    return out


def _closes_at_end(s: str, start: int) -> bool:
    depth = 0
    for i in range(start, len(s)):
        if s[i] == "(":
            depth += 1
        elif s[i] == ")":
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


_ATOM = re.compile(r"^[^\s+\-−/·⊙⊗⊘()×↦,]+$")


def _is_atom(s: str) -> bool:
    """A symbol (``x``, ``u₁``, ``1``) or a call (``diag(x)``) or a parenthesised group."""
    if _ATOM.match(s):
        return True
    m = re.match(r"^[^\s+\-−/·⊙⊗⊘()]*\(", s)
    return bool(m) and _closes_at_end(s, m.end() - 1)


def _transpose_text(s: str) -> str:
    return s + "ᵀ" if _is_atom(s) else f"({s})ᵀ"


def _factor(s: str) -> str:
    """``s`` as a factor of a product: parenthesised when it is a sum or negative."""
    top = "".join(_top_level(s))
    if s.startswith(("−", "-")) or " + " in top or " − " in top or "/" in top or "↦" in s:
        return f"({s})"
    return s


def _join_factors(texts: Sequence[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    out = ""
    for t in texts:
        t = _factor(t)
        if not out:
            out = t
        elif t[:1].isdigit() or out[-1:].isdigit():
            out += " · " + t
        else:
            out += " " + t
    return out


def _row_text(g: Expr) -> str:
    """A vector ``g`` written as a row (its transpose), e.g. ``xᵀ``, ``1ᵀ``, ``z1ᵀ``,
    ``xᵀ(A + Aᵀ)``."""
    if isinstance(g, (Var, Const)):
        return _transpose_text(_text(g))
    if isinstance(g, Einsum) and len(g.out) == 1:
        k = g.out[0]
        scal = [(c, s) for c, s in zip(g.children, g.specs, strict=True) if not s]
        rest = [(c, s) for c, s in zip(g.children, g.specs, strict=True) if s]
        if len(rest) == 1 and rest[0][1] == (k,) and scal:
            coef = S.einsum([c for c, _ in scal], [()] * len(scal), ())
            return _coef_text(coef) + _row_text(rest[0][0])
        split = _vector_times(g)
        if split is not None:
            coef, v, mt = split
            return _coef_text(coef) + _row_text(v) + _factor_paren(_text(mt))
    if isinstance(g, Add):
        splits = [_vector_times(t) if isinstance(t, Einsum) else None for t in g.children]
        if all(sp is not None for sp in splits) and len({id(sp[1]) for sp in splits}) == 1:
            v = splits[0][1]
            total = S.add([S.einsum([sp[0], sp[2]], [(), (0, 1)], (0, 1)) for sp in splits])
            return _row_text(v) + _factor_paren(_text(total))
    return _transpose_text(_text(g))


def _factor_paren(s: str) -> str:
    return s if _is_atom(s) else f"({s})"


def _coef_text(c: Expr) -> str:
    s = _text(c)
    if s == "1":
        return ""
    if s == "−1":
        return "−"
    m = re.match(r"^(−?)([\d.]*)(\w)⁻¹$", s)  # 2N⁻¹ -> (2/N), the paper's 1/N
    if m:
        return f"({m.group(1)}{m.group(2) or '1'}/{m.group(3)})"
    return s if _is_atom(s) else f"({s})"


def _vector_times(g: Einsum) -> tuple[Expr, Expr, Expr] | None:
    """``g = c M v`` with scalars ``c``, vectors ``v`` (element-wise) and the rest
    ``M``: ``(c, v, Mᵀ)`` so that ``gᵀ = c vᵀ Mᵀ``."""
    if len(g.out) != 1:
        return None
    k = g.out[0]
    ops = list(zip(g.children, g.specs, strict=True))
    for j in sorted({c for _, s in ops for c in s if c != k}, reverse=True):
        vec = [(c, s) for c, s in ops if s == (j,)]
        scal = [(c, s) for c, s in ops if not s]
        rest = [(c, s) for c, s in ops if s and s != (j,)]
        if not vec or not rest:
            continue
        if not any(j in s for _, s in rest) or not any(k in s for _, s in rest):
            continue
        try:
            coef = S.einsum([c for c, _ in scal], [()] * len(scal), ())
            v = S.einsum([c for c, _ in vec], [(0,)] * len(vec), (0,))
            mt = S.einsum([c for c, _ in rest], [s for _, s in rest], (j, k))
        except Exception:  # noqa: BLE001 - a form we cannot factor: print plainly
            continue
        return coef, v, mt
    return None


def _numerator_text(J: Expr, fs: Sequence[Any], xs: Sequence[Any]) -> str:
    """The derivative ``J`` (shape ``fs + xs``) printed in numerator layout."""
    if not fs and len(xs) == 1:
        return _row_text(J)
    if not fs and len(xs) == 2:
        return _text(B.transpose(J))
    return _text(J)


# ====================================================================== LaTeX
_SUP = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7",
        "⁸": "8", "⁹": "9", "⁻": "-", "⁺": "+", "ᵀ": r"\top ", "⁽": "(", "⁾": ")",
        "ⁿ": "n", "ⁱ": "i", "ᵏ": "k"}
_SUB = {"₀": "0", "₁": "1", "₂": "2", "₃": "3", "₄": "4", "₅": "5", "₆": "6", "₇": "7",
        "₈": "8", "₉": "9", "ᵢ": "i", "ⱼ": "j", "ₖ": "k", "ₗ": "l", "ₘ": "m", "ₙ": "n",
        "ₐ": "a", "ₑ": "e", "ₒ": "o", "ₓ": "x", "ₚ": "p", "ₛ": "s", "ₜ": "t", "₋": "-",
        "₊": "+"}
_SYMBOLS = {"⊗": r"\otimes ", "⊙": r"\odot ", "⊘": r"\oslash ", "·": r"\cdot ",
            "−": "-", "×": r"\times ", "≤": r"\le ", "≥": r"\ge ", "∂": r"\partial ",
            "↦": r"\mapsto ", "½": r"\tfrac{1}{2}", "Σ": r"\sum ", "∑": r"\sum ",
            "∞": r"\infty ", "…": r"\dots ", "⋯": r"\cdots ", "≠": r"\ne ",
            "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&",
            "_": r"\_", "^": r"\hat{}", "\\": r"\backslash ", "~": r"\sim "}
# the words of the notation that are not element-wise functions (those are spelled as
# their definitions say: _word_latex)
_FUNCS = {"ln": r"\ln"}
_OPNAMES = {"diag", "sum", "tr", "mean", "norm"}
_GREEK_CAPS = set("ΓΔΘΛΞΠΣΥΦΨΩ")


def _greek(c: str) -> str | None:
    try:
        name = unicodedata.name(c)
    except ValueError:
        return None
    if not name.startswith("GREEK "):
        return None
    letter = name.split()[-1].lower()
    if "SMALL" in name:
        if letter == "final":
            return r"\varsigma "
        if letter in ("omicron",):
            return "o"
        return "\\" + letter + " "
    if c in _GREEK_CAPS:
        return "\\" + letter.capitalize() + " "
    return None


def _matrix_function_latex(word: str) -> str:
    """A matrix function's name in printed Unicode, as its definition spells it in
    LaTeX (``det`` is ``\\det``, ``log_softmax`` is ``\\log\\operatorname{softmax}``);
    ``\\operatorname{name}`` where the spelling is not a command before ``({0})``."""
    head = MATRIX_FUNCTIONS[word].latex.split("({0})")[0].replace("{name}", word)
    if head.startswith("\\") and "{0}" not in head:
        head = head.replace("{{", "{").replace("}}", "}")
        return head + ("" if head.endswith("}") else " ")
    return r"\operatorname{" + word.replace("_", r"\_") + "}"


def to_latex_math(s: str) -> str:
    r"""Unicode matrix notation as LaTeX math (KaTeX): ``ᵀ`` -> ``^{\top}``,
    ``⊗`` -> ``\otimes``, sub- and superscripts, ``√``, function names.

    >>> to_latex_math("1ᵀ diag(x)")
    '1^{\\top} \\operatorname{diag}(x)'
    >>> to_latex_math("u₁ = x² ⊗ √(y)")
    'u_{1} = x^{2} \\otimes \\sqrt{y}'
    """
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in _SUP:
            j = i
            while j < n and s[j] in _SUP:
                j += 1
            body = "".join(_SUP[ch] for ch in s[i:j]).strip()
            out.append("^{" + body + "}")
            i = j
        elif c in _SUB:
            j = i
            while j < n and s[j] in _SUB:
                j += 1
            out.append("_{" + "".join(_SUB[ch] for ch in s[i:j]) + "}")
            i = j
        elif c == "√":
            j = i + 1
            if j < n and s[j] == "(":
                depth, k = 0, j
                while k < n:
                    if s[k] == "(":
                        depth += 1
                    elif s[k] == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    k += 1
                out.append(r"\sqrt{" + to_latex_math(s[j + 1:k]) + "}")
                i = k + 1
            else:
                k = j
                while k < n and (s[k].isalnum() or s[k] in _SUB or s[k] == "."):
                    k += 1
                out.append(r"\sqrt{" + to_latex_math(s[j:k]) + "}")
                i = k
        elif c.isascii() and c.isalpha():
            j = i
            while j < n and s[j].isascii() and (s[j].isalnum() or s[j] == "_"):
                j += 1
            if s[i:j] not in FUNCTIONS and s[i:j] not in MATRIX_FUNCTIONS:
                j = i  # a name of the language may hold "_" (leaky_relu); others end there
                while j < n and s[j].isascii() and s[j].isalnum():
                    j += 1
            word = s[i:j]
            row = FUNCTIONS.get(word)
            if row is not None and row.latex.startswith("\\") and row.call:
                cmd = row.latex
                out.append(cmd + ("" if cmd.startswith(r"\operatorname") else " "))
            elif word in _FUNCS:
                out.append(_FUNCS[word] + " ")
            elif word in MATRIX_FUNCTIONS:
                out.append(_matrix_function_latex(word))
            elif word in _OPNAMES:
                out.append(r"\operatorname{" + word + "}")
            elif len(word) > 1 and not word.isdigit() and j < n and s[j] == "(":
                out.append(r"\operatorname{" + word + "}")
            else:
                out.append(word)
            i = j
        elif c in _SYMBOLS:
            out.append(_SYMBOLS[c])
            i += 1
        elif c.isascii():
            out.append(c)
            i += 1
        else:
            g = _greek(c)
            if g is not None:
                out.append(g)
            elif c.isspace():
                out.append(" ")
            else:
                out.append(r"\text{" + _tex_text(c) + "}")
            i += 1
    text = "".join(out)
    text = re.sub(r" +", " ", text).strip()
    # a command followed by a letter needs its space; elsewhere drop spaces before ^ _ }
    text = re.sub(r" (?=[\^_})(,])", "", text)
    return text


_TEXT_MATH = {"≤": r"\le", "≥": r"\ge", "<": "<", ">": ">", "½": r"\frac{1}{2}",
              "−": "-", "∂": r"\partial", "ᵀ": r"^{\top}", "⊗": r"\otimes",
              "⊙": r"\odot", "⊘": r"\oslash", "×": r"\times", "·": r"\cdot",
              "⁻": "^{-}", "²": "^{2}", "¹": "^{1}", "√": r"\surd"}


def _tex_text(s: str) -> str:
    """Prose for ``\\text{...}``: LaTeX's special characters escaped, math symbols as
    inline math (KaTeX allows ``$...$`` inside ``\\text``)."""
    rep = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$",
           "%": r"\%", "&": r"\&", "_": r"\_", "^": r"\^{}", "~": r"\~{}"}
    out = []
    for c in s:
        if c in _TEXT_MATH:
            out.append("$" + _TEXT_MATH[c] + "$")
        elif c in _SUB:
            out.append("$_{" + _SUB[c] + "}$")
        elif _greek(c) is not None:
            out.append("$" + (_greek(c) or "").strip() + "$")
        else:
            out.append(rep.get(c, c))
    return "".join(out)


def _note_latex(note: str) -> str:
    """A note ``∂u/∂z = diag(step(z)): cases`` as math then prose."""
    for sep in ("：", ": "):
        head, found, tail = note.partition(sep)
        if found and head.startswith("∂"):
            lhs, _, rhs = head.partition(" = ")
            a, _, b = lhs[1:].partition("/∂")
            math = _frac_latex(a, b) + (" = " + to_latex_math(rhs) if rhs else "")
            return "&" + math + r"\text{" + _tex_text(found + tail) + "}"
    return r"&\text{" + _tex_text(note) + "}"


def _shape_latex(shape: str) -> str:
    if any(ord(c) > 0x2fff for c in shape) or shape.isalpha():
        return r"\text{" + _tex_text(shape) + "}"
    return to_latex_math(shape)


def _frac_latex(a: str, b: str) -> str:
    return (r"\frac{\partial " + to_latex_math(a) + r"}{\partial " + to_latex_math(b)
            + "}")


def _frac_md(a: str, b: str) -> str:
    return "$" + _frac_latex(a, b) + "$"


def _md_escape(s: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", s)


# ====================================================================== analysis
def _depends(f: Expr, x: Var) -> set[int]:
    dep: set[int] = set()
    for node in topo_order(f):
        if node is x or any(id(c) in dep for c in node.children):
            dep.add(id(node))
    return dep


def _inlinable(n: Expr, parent: Expr, dep: set[int], x: Var) -> bool:
    """Whether ``n`` (used once, by ``parent``) is written inside its parent's step
    rather than named: keeps derivations the size of the paper's."""
    if isinstance(n, Einsum) and isinstance(parent, Add):
        # a coefficient, a negation, a product linear in one path operand: the
        # parent's step is a linear combination (v = y − u, z = wᵀx + b)
        return sum(1 for c in n.children if id(c) in dep) == 1
    if isinstance(n, Map) and n.fn == "pow" and id(n.children[1]) not in dep:
        # a power summed up: C = sum(v²)/N
        return isinstance(parent, Einsum) and len(parent.shape) < len(n.shape)
    return False


def _split_hadamard(n: Einsum, dep: set[int]) -> list[int] | None:
    """Operand positions of the element-wise product inside a reduction
    (``sum(w ⊗ x)``, which the core stores as the single product ``wᵀx``)."""
    letters = {c for s in n.specs for c in s}
    full = [i for i, s in enumerate(n.specs) if len(s) == len(letters) and set(s) == letters]
    if len(full) < 2 or not set(n.out) < letters:
        return None
    if len({n.specs[i] for i in full}) != 1:
        return None
    if not any(id(n.children[i]) in dep for i in full):
        return None
    return full


@dataclass
class _Unit:
    node: Expr | None
    kind: str  # "node" | "hadamard" | "reduce" | "self"
    ops: list[int] = field(default_factory=list)
    name: str = ""
    placeholder: Var | None = None
    expr: Expr | None = None


def _names(k: int, taken: set[str]) -> list[str]:
    if k <= 2 and not ({"u", "v"} & taken):
        return ["u", "v"][:k]
    for letter in ("u", "t", "g", "h", "q"):
        names = [letter + "".join(chr(0x2080 + int(d)) for d in str(i + 1)) for i in range(k)]
        if not set(names) & taken:
            return names
    return [f"u_tmp{i + 1}" for i in range(k)]  # pragma: no cover - absurd inputs


def explain(f: Expr | str, wrt: Expr | str, lang: str = "en",
            shapes: Mapping[str, Sequence] | None = None, *, name: str | None = None,
            names: Sequence[str] | None = None) -> Derivation:
    """The derivation of ``∂f/∂wrt`` the paper's way: intermediate variables, local
    Jacobians, the chain rule, the result.

    ``f`` is an expression or its text (parsed with ``shapes``).  ``name`` names
    ``f`` in the derivation (default ``y``, else ``f`` when ``y`` is a variable);
    ``names`` gives the intermediate variables' names, inside out (default ``u, v``
    for short chains, ``u₁, u₂, …`` otherwise).  ``lang`` is ``"en"`` or ``"zh"``.

    >>> import matdiff as md
    >>> d = md.explain("max(0, w @ x + b)", "w", shapes={"w": ("n",), "x": ("n",), "b": ()},
    ...                names=["z"])
    >>> [(s.name, s.definition) for s in d.steps]
    [('z', 'b + wᵀx'), ('y', 'max(0, z)')]
    >>> print(d.steps[1].derivatives[0].notes[0])
    ∂y/∂z = step(z): 1 where z > 0, 0 where z ≤ 0
    >>> d.numerator
    'step(b + wᵀx)xᵀ'
    >>> print(md.explain("sum(w * x)", "w", lang="zh",
    ...                  shapes={"w": ("n",), "x": ("n",)}).to_dict()["chain"]["text"])
    ∂y/∂w = ∂y/∂u ∂u/∂w = 1ᵀ diag(x) = xᵀ
    """
    p = phrases(lang)
    f = to_expr(f, shapes)
    x = resolve_wrt(f, wrt, shapes)
    taken = set(f.variables()) | {x.name}
    if name is None:
        name = next(c for c in ("y", "f", "F", "y_out") if c not in taken)
    elif not isinstance(name, str) or not name or name in taken:
        raise MatdiffError(f"cannot name the function {name!r}: it is a variable of f "
                           "or empty")
    result = derive(f, x)
    dep = _depends(f, x)

    # ---- which nodes on the paths get a name (a step), and in which order
    units: list[_Unit] = []
    unit_of: dict[int, _Unit] = {}
    inline: set[int] = set()
    if id(f) in dep and f is not x:
        order = [n for n in topo_order(f) if id(n) in dep]
        uses: dict[int, int] = {}
        parent: dict[int, Expr] = {}
        for n in order:
            for c in n.children:
                if id(c) in dep:
                    uses[id(c)] = uses.get(id(c), 0) + 1
                    parent[id(c)] = n
        for n in order:
            if n is x:
                continue
            if n is not f and uses.get(id(n), 0) == 1 and _inlinable(n, parent[id(n)],
                                                                     dep, x):
                inline.add(id(n))
                continue
            full = _split_hadamard(n, dep) if isinstance(n, Einsum) else None
            if full is not None:
                units.append(_Unit(n, "hadamard", full))
                u = _Unit(n, "reduce", full)
            else:
                u = _Unit(n, "node")
            units.append(u)
            unit_of[id(n)] = u
    elif f is x:
        units.append(_Unit(f, "self"))

    # ---- names and placeholders
    k = len(units) - 1
    if names is not None:
        names = list(names)
        if len(names) != k:
            raise MatdiffError(f"names: the derivation has {k} intermediate variable(s), "
                               f"got {len(names)} name(s)")
        bad = [nm for nm in names if not isinstance(nm, str) or not nm or nm in taken
               or nm == name]
        if bad or len(set(names)) != len(names):
            raise MatdiffError(f"names: {bad or names!r} clash with the variables of f, "
                               "the function's name or each other")
    else:
        names = _names(k, taken | {name})
    for u, nm in zip(units, [*names, name], strict=False):
        u.name = nm
        if u.node is not None and u is not units[-1]:
            shape = u.node.shape
            if u.kind == "hadamard":
                shape = tuple(u.node.letter_dims()[c] for c in u.node.specs[u.ops[0]])
            u.placeholder = Var(nm, shape)

    def sub(c: Expr) -> Expr:
        if c is x:
            return x
        u = unit_of.get(id(c))
        if u is not None:
            return u.placeholder  # type: ignore[return-value]
        if id(c) in inline:
            return c.rebuild([sub(g) for g in c.children])
        return c

    for i, u in enumerate(units):
        n = u.node
        if u.kind == "self":
            u.expr = x
        elif u.kind == "node":
            u.expr = n.rebuild([sub(c) for c in n.children])
        elif u.kind == "hadamard":
            spec = n.specs[u.ops[0]]
            u.expr = S.einsum([sub(n.children[j]) for j in u.ops], [spec] * len(u.ops), spec)
        else:  # reduce: the sum over the product named by the unit before
            h = units[i - 1].placeholder
            rest = [j for j in range(len(n.children)) if j not in u.ops]
            u.expr = S.einsum([h] + [sub(n.children[j]) for j in rest],
                              [n.specs[u.ops[0]]] + [n.specs[j] for j in rest], n.out)

    # ---- steps with their local derivatives
    by_placeholder = {id(u.placeholder): u for u in units if u.placeholder is not None}
    steps: list[Step] = []
    edges: dict[str, list[tuple[str, _Unit | None]]] = {}
    local_text: dict[tuple[str, str], str] = {}
    matrix_chain = False
    for u in units:
        e = u.expr
        assert e is not None
        used: list[Var] = []
        for node in topo_order(e):
            if isinstance(node, Var) and (node is x or id(node) in by_placeholder) \
                    and node not in used:
                used.append(node)
        if u.kind == "self":
            used = [x]
        step = Step(u.name, _definition_text(e), _shape_text(e.shape, p), e)
        edges[u.name] = []
        for v in used:
            J = derive(e, v)
            text = _numerator_text(J, e.shape, v.shape)
            if len(e.shape) + len(v.shape) > 2 and not (not e.shape and len(v.shape) == 2):
                matrix_chain = matrix_chain or len(units) > 1
            loc = LocalDerivative(u.name, v.name, text, _jac_shape(e.shape, v.shape), J)
            if len(e.shape) + len(v.shape) > 2 and not (not e.shape and len(v.shape) == 2):
                loc.notes.append(p["index"].format(d=loc.label, shape=loc.shape,
                                                   order=len(e.shape) + len(v.shape)))
            loc.notes.extend(_piecewise_notes(e, v, loc, lang))
            step.derivatives.append(loc)
            local_text[(u.name, v.name)] = text
            edges[u.name].append((v.name, by_placeholder.get(id(v))))
        steps.append(step)

    # ---- the chain rule: products along the paths, outside in
    paths: list[list[tuple[str, str]]] = []
    notes: list[str] = []
    if not units:
        notes.append(p["no_dependence"].format(f=name, x=x.name))
    else:
        def walk(u: _Unit, prefix: list[tuple[str, str]]) -> None:
            if len(paths) > _MAX_PATHS:
                return
            for vname, src in edges[u.name]:
                edge = prefix + [(u.name, vname)]
                if src is None:
                    paths.append(edge)
                else:
                    walk(src, edge)

        walk(units[-1], [])
        if len(paths) > _MAX_PATHS:  # too many to list: the recursive form instead
            paths = [[(units[-1].name, x.name)]]
            matrix_chain = True
    products = [_join_factors([local_text[e] for e in path]) for path in paths]
    if units and units[-1].kind == "self":
        notes.append(p["identity"])
    numerator = _numerator_text(result, f.shape, x.shape)
    return Derivation(f=f, wrt=x, lang=lang, name=name, steps=steps, paths=paths,
                      products=products, result=result, numerator=numerator,
                      mixed=_text(result), notes=notes, matrix_chain=matrix_chain)


def _definition_text(e: Expr) -> str:
    """A definition in the paper's words: ``max(0, z)`` for ``relu(z)``."""
    if isinstance(e, Map) and e.fn == "relu":
        return f"max(0, {_text(e.children[0])})"
    # relu( as a whole name, not the end of another (leaky_relu)
    return re.sub(r"(?<![\w])relu\(", "max(0, ", _text(e))


def _piecewise_notes(e: Expr, v: Var, loc: LocalDerivative, lang: str) -> list[str]:
    """The cases of a piecewise step (``max(0, z)``, ``abs``, ...), as the paper shows:
    the wording is the function's definition's (``notes``), in ``lang``."""
    notes: list[str] = []
    dv = _depends(e, v)
    for node in topo_order(e):
        if not isinstance(node, Map) or lang not in node.spec.notes:
            continue
        if not any(id(c) in dv for c in node.children):
            continue
        d = f"{loc.label} = {loc.text}"
        args = [_text(c) for c in node.children]
        a, b = (args + [""])[:2]
        notes.append(node.spec.notes[lang].format(d=d, z=args[0], a=a, b=b))
    return notes
