"""Simplifying constructors: every node a builder or a derivative rule makes goes
through :func:`einsum`, :func:`add` or :func:`apply`, so expressions are always
in a small normal form (MATH.md, "Simplification"):

* **products** (:mod:`.products`, by the named rules of :mod:`.rules`): flat (an
  operand that is itself a product merges into its parent, letters renamed apart; a
  very long product keeps its bulk nested but still hands its structural factors to
  the parent); constants fold into one coefficient and a zero factor makes the
  product zero; deltas are eliminated (``Σₐ δₐ_b gₐ = g_b``; a delta between two
  output letters stays, it is the structure: ``xᵢ δᵢⱼ`` is ``diag(x)``); ones over
  a letter some other operand reads are 1 and a letter summed over nothing counts
  its dim (``Σₐ c = n c``); equal factors become powers (``xᵢ xᵢ = (x²)ᵢ``,
  ``aᵖ aᑫ = aᵖ⁺ᑫ``);
* **sums** (:mod:`.sums`) merge equal terms (``T + T = 2T``) and drop zeros; a
  coefficient every term shares comes out (``2x − 2y = 2(x − y)``), and a small sum
  of small products takes out a factor its terms share on the same axes
  (``Xᵀdiag(a)X + Xᵀdiag(b)X = Xᵀdiag(a + b)X``, ``Y/N − S/N = (Y − S)/N``);
* **element-wise functions** (:mod:`.elementwise`): constants fold, ``a¹ = a``,
  ``a⁰ = 1``, ``(aᵖ)ᑫ = aᵖᑫ`` for integer ``q``, ``log(exp a) = a``,
  ``exp(log a) = a`` (on log's domain), ``relu(relu a) = relu a``.

Every rule here keeps the value; the tests check that on random expressions, and
each product rule alone (tests/test_simplify_rules.py).
"""

from .constants import zeros
from .elementwise import apply
from .products import einsum, scale, split_coef
from .rules import MAX_FLAT
from .sums import MAX_FLAT_SUM, add

__all__ = ["einsum", "add", "apply", "scale", "split_coef", "zeros", "MAX_FLAT",
           "MAX_FLAT_SUM"]
