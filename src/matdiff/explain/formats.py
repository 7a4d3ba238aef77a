r"""A :class:`~matdiff.explain.derivation.Derivation` written out: plain text,
Markdown with LaTeX math, one LaTeX ``aligned`` block.

Every formula comes from the printer (:mod:`.formulas`), in the format at hand; the
prose comes from the language's phrases (:mod:`.lang`), escaped for Markdown or for
LaTeX's ``\text{…}``.

>>> import matdiff as md
>>> d = md.explain("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
>>> print(chain_line(d, "latex").split(" = ")[-2:])
['\\mathbf{1}^\\top \\operatorname{diag}(x)', 'x^\\top']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import formulas as F

if TYPE_CHECKING:  # pragma: no cover
    from ..expr.core import Dim
    from .derivation import Derivation, LocalDerivative, Step

__all__ = ["to_text", "to_markdown", "to_latex", "chain_line", "tex_text", "tex_prose"]


# ====================================================================== pieces
def _tuple_text(shape: Sequence[Dim]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _chain_pieces(d: Derivation) -> list[str]:
    """Which members the chain-rule line has: the derivative, the product of the
    symbols along the paths, the product of their values (when the local
    derivatives are matrices), the result in numerator layout (unless it is that
    product already)."""
    pieces = ["lhs"]
    lhs = F.partial(d.name, d.x)
    if _symbolic(d, "text") not in ("", lhs):
        pieces.append("symbolic")
    product = " + ".join(d.products)
    if not d.matrix_chain and product:
        pieces.append("product")
    if product != d.numerator or d.matrix_chain or len(pieces) == 1:
        pieces.append("numerator")
    return pieces


def _symbolic(d: Derivation, fmt: str) -> str:
    return " + ".join(" ".join(F.partial(a, b, fmt) for a, b in path) for path in d.paths)


def _product(d: Derivation, fmt: str) -> str:
    if fmt == "text":
        return " + ".join(d.products)
    return " + ".join(F.chain([(d.local(a, b).expr, d.local(a, b).f_ndim) for a, b in path],
                              fmt) for path in d.paths)


def chain_line(d: Derivation, fmt: str) -> str:
    """The chain-rule line, ``∂y/∂w = ∂y/∂u ∂u/∂w = 𝟏ᵀ diag(x) = xᵀ``, in ``fmt``."""
    parts = []
    for piece in _chain_pieces(d):
        if piece == "lhs":
            parts.append(F.partial(d.name, d.x, fmt))
        elif piece == "symbolic":
            parts.append(_symbolic(d, fmt))
        elif piece == "product":
            parts.append(_product(d, fmt))
        else:
            parts.append(d.numerator if fmt == "text"
                         else F.jacobian(d.result, len(d.f.shape), "latex"))
    return " = ".join(parts)


def _result_note(d: Derivation) -> str:
    return d._p()["mixed"].format(shape=_tuple_text(d.result.shape))


# ====================================================================== text
def to_text(d: Derivation) -> str:
    """The derivation as plain text (``str(d)``)."""
    p = d._p()
    lines = [p["title"].format(f=d.name, expr=F.definition(d.f), x=d.x), p["method"], ""]
    if d.notes:
        lines += [*d.notes, ""]
    if d.steps:
        lines += _text_steps(d)
    lines.append(p["chain"] + ":")
    if len(d.paths) > 1:
        lines.append("  " + p["total"].format(x=d.x, f=d.name, k=len(d.paths)))
    if d.matrix_chain:
        lines.append("  " + p["matrix_chain"])
    lines.append("  " + d.chain_text() + f"   ({p['numerator']})")
    lines.append("")
    lines.append(p["result"] + ":")
    lines.append(f"  {F.partial(d.name, d.x)} = {d.mixed}   ({_result_note(d)})")
    return "\n".join(lines)


def _text_steps(d: Derivation) -> list[str]:
    p = d._p()
    lines = [p["intermediates"] + ":"]
    width = max(len(f"{s.name} = {s.definition}") for s in d.steps)
    for s in d.steps:
        left = f"{s.name} = {s.definition}"
        lines.append(f"  {left.ljust(width)}   ({s.shape})")
    lines += ["", p["locals"] + ":"]
    locs = [loc for s in d.steps for loc in s.derivatives]
    if locs:
        width = max(len(f"{loc.label} = {loc.text}") for loc in locs)
    for loc in locs:
        left = f"{loc.label} = {loc.text}"
        lines.append(f"  {left.ljust(width)}   ({loc.shape})")
        lines += [f"    {n}" for n in loc.notes]
        lines += _differential_rows(loc, p, "text")
    lines += [f"  {n}" for s in d.steps for n in s.notes]
    lines.append("")
    return lines


# ====================================================================== differentials
def phrase(template: str, parts: dict[str, Any], fmt: str) -> str:
    """A phrase with its parts in: prose (a str) as prose, math (a dict of its text
    and LaTeX) as math, in ``fmt`` (``text``; ``latex``, the row of an ``aligned``
    block; ``markdown``, with inline ``$…$``)."""
    out = []
    for k, piece in enumerate(re.split(r"\{(\w+)\}", template)):
        value = parts[piece] if k % 2 else piece
        if isinstance(value, dict):
            out.append(value["text"] if fmt == "text" else value["latex"] if fmt == "latex"
                       else "$" + value["latex"] + "$")
        elif value:
            out.append(value if fmt == "text" else tex_prose(value) if fmt == "latex"
                       else _md_escape(value))
    return "".join(out)


def _differential_rows(loc: LocalDerivative, p: dict[str, str], fmt: str) -> list[str]:
    """A local derivative's differential (the product rule, a matrix function's
    rule), as lines of the text, rows of the LaTeX block or Markdown bullets."""
    if loc.differential is None:
        return []
    out = []
    for kind, template, parts in loc.differential.rows(p):
        if fmt == "latex":
            text = phrase(template, parts, "latex")
            if kind == "line":
                lhs, _, rhs = text.partition(" = ")
                out.append(f"{lhs} &= {rhs}")
            else:
                out.append("&" + text)
        elif fmt == "markdown":
            out.append("  - " + phrase(template, parts, "markdown"))
        else:
            out.append(("      " if kind == "line" else "    ") + phrase(template, parts, "text"))
    return out


# ====================================================================== LaTeX
def _step_shape(s: Step, p: dict[str, str]) -> str:
    shape = s.expr.shape
    if not shape:
        return tex_prose(p["scalar"])
    return F.dims([shape[0], 1] if len(shape) == 1 else shape, "latex")


def _definition_row(s: Step, p: dict[str, str]) -> str:
    return (f"{F.name(s.name, 'latex')} &= {F.definition(s.expr, 'latex')}"
            f" &&{_step_shape(s, p)}")


def to_latex(d: Derivation) -> str:
    r"""The derivation as one LaTeX math block (``\begin{aligned}``), valid KaTeX."""
    p = d._p()
    rows: list[str] = ["&" + tex_prose(n) for n in d.notes]
    if d.steps:
        rows.append("&" + tex_prose(p["intermediates"]))
        rows += [_definition_row(s, p) for s in d.steps]
        rows.append("&" + tex_prose(p["locals"]))
        for s in d.steps:
            for loc in s.derivatives:
                rows.append(f"{F.partial(loc.of, loc.wrt, 'latex')} &= {loc.latex()}"
                            f" &&{F.dims(loc.dims, 'latex')}")
                rows += loc.latex_notes
                rows += _differential_rows(loc, p, "latex")
            rows += ["&" + tex_prose(n) for n in s.notes]
    rows.append("&" + tex_prose(p["chain"] + " (" + p["numerator"] + ")"))
    lhs, _, rhs = chain_line(d, "latex").partition(" = ")
    rows.append(f"{lhs} &= {rhs}" if rhs else f"&{lhs}")
    rows.append("&" + tex_prose(p["result"] + " (" + _result_note(d) + ")"))
    rows.append(f"{F.partial(d.name, d.x, 'latex')} &= {F.result(d.result, 'latex')}")
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


# ====================================================================== Markdown
def _md_escape(s: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", s)


def to_markdown(d: Derivation) -> str:
    """Markdown with inline LaTeX math (``$...$``), for notebooks and READMEs."""
    p = d._p()
    f_math = f"${F.name(d.name, 'latex')} = {F.definition(d.f, 'latex')}$"
    title = p["title"].replace("{f} = {expr}", "\x00").replace("{x}", "\x01")
    title = _md_escape(title).replace("\x00", f_math)
    out = ["**" + title.replace("\x01", f"${F.name(d.x, 'latex')}$") + "**", "",
           _md_escape(p["method"]), ""]
    for n in d.notes:
        out += [_md_escape(n), ""]
    if d.steps:
        out += _markdown_steps(d)
    out += [f"**{p['chain']}** ({_md_escape(p['numerator'])})", ""]
    if len(d.paths) > 1:
        out += [_md_escape(p["total"].format(x=d.x, f=d.name, k=len(d.paths))), ""]
    if d.matrix_chain:
        out += [_md_escape(p["matrix_chain"]), ""]
    out += ["$$" + chain_line(d, "latex") + "$$", ""]
    out += [f"**{p['result']}** (" + _md_escape(_result_note(d)) + ")", ""]
    out.append("$$" + F.partial(d.name, d.x, "latex") + " = "
               + F.result(d.result, "latex") + "$$")
    return "\n".join(out)


def _markdown_steps(d: Derivation) -> list[str]:
    p = d._p()
    out = [f"**{p['intermediates']}**", ""]
    for s in d.steps:
        out.append(f"- ${F.name(s.name, 'latex')} = {F.definition(s.expr, 'latex')}$"
                   f" &nbsp; (${_step_shape(s, p)}$)")
    out += ["", f"**{p['locals']}**", ""]
    for s in d.steps:
        for loc in s.derivatives:
            out.append(f"- ${F.partial(loc.of, loc.wrt, 'latex')}$ $= {loc.latex()}$"
                       f" &nbsp; (${F.dims(loc.dims, 'latex')}$)")
            out += [f"  - {_md_escape(n)}" for n in loc.notes]
            out += _differential_rows(loc, p, "markdown")
        out += [f"- {_md_escape(n)}" for n in s.notes]
    out.append("")
    return out


# ====================================================================== prose in LaTeX
#: prose symbols written as inline math inside ``\text{…}`` (KaTeX allows ``$…$`` there)
_TEXT_MATH = {"≤": r"\le", "≥": r"\ge", "<": "<", ">": ">", "½": r"\frac{1}{2}",
              "−": "-", "∂": r"\partial", "ᵀ": r"^{\top}", "⊗": r"\otimes",
              "⊙": r"\odot", "⊘": r"\oslash", "×": r"\times", "·": r"\cdot",
              "⁻": "^{-}", "²": "^{2}", "¹": "^{1}", "√": r"\surd"}
#: LaTeX's special characters, escaped in prose
_TEXT_ESCAPE = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$",
                "%": r"\%", "&": r"\&", "_": r"\_", "^": r"\^{}", "~": r"\~{}"}
#: Unicode subscripts, as the letters and digits they are
SUBSCRIPTS = {"₀": "0", "₁": "1", "₂": "2", "₃": "3", "₄": "4", "₅": "5", "₆": "6",
              "₇": "7", "₈": "8", "₉": "9", "ᵢ": "i", "ⱼ": "j", "ₖ": "k", "ₗ": "l",
              "ₘ": "m", "ₙ": "n", "ₐ": "a", "ₑ": "e", "ₒ": "o", "ₓ": "x", "ₚ": "p",
              "ₛ": "s", "ₜ": "t", "₋": "-", "₊": "+"}
_GREEK_CAPS = set("ΓΔΘΛΞΠΣΥΦΨΩ")


def greek(c: str) -> str | None:
    """A Greek letter's LaTeX command (``\\alpha ``), else ``None``."""
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


def tex_text(s: str) -> str:
    """Prose for ``\\text{...}``: LaTeX's special characters escaped, math symbols as
    inline math."""
    out = []
    for c in s:
        if c in _TEXT_MATH:
            out.append("$" + _TEXT_MATH[c] + "$")
        elif c in SUBSCRIPTS:
            out.append("$_{" + SUBSCRIPTS[c] + "}$")
        elif greek(c) is not None:
            out.append("$" + (greek(c) or "").strip() + "$")
        else:
            out.append(_TEXT_ESCAPE.get(c, c))
    return "".join(out)


def tex_prose(s: str) -> str:
    r"""Prose as LaTeX math: ``\text{…}``."""
    return r"\text{" + tex_text(s) + "}"
