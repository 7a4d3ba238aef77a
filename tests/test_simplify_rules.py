"""The simplifier's product rules (``matdiff.expr.simplify.rules``), each alone.

A rule rewrites a product in place (or settles it to an expression), so each test
builds a small product, evaluates it as it stands (core constructors, nothing
simplified), fires the one rule, and evaluates again: the two must agree on random
values.  Then: every rule firing inside real derivations keeps the value, the driver
runs the table it is given (a rule left out changes the result), and a planted wrong
rule is caught by the same numeric check.

Index notation in the comments: ``i, j`` output letters, ``a, b`` summed ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

import matdiff as md
from matdiff.check import structured
from matdiff.compile.evaluate import interpret
from matdiff.expr.core import Const, Delta, Einsum, Expr, Size, topo_order, var_nodes
from matdiff.expr.simplify import einsum, products, rules
from matdiff.expr.simplify.rules import PASSES, RULES, Pass, Product, Rule

SIZES = {"n": 3, "m": 2}
x, y = md.vector("x", "n"), md.vector("y", "n")
A, B = md.matrix("A", "n", "n"), md.matrix("B", "n", "n")
C = md.matrix("C", "m", "n")
S = md.matrix("S", "n", "n", symmetric=True)
N, M = "n", "m"


# ====================================================================== checking
def size(d: int | str) -> int:
    return SIZES[d] if isinstance(d, str) else d


def product_value(p: Product, vals: dict[str, np.ndarray]) -> np.ndarray:
    """The product as it stands, ``coef · Σ Π ops``, by ``np.einsum`` over each
    operand's value; a letter no operand reads counts its dim (summed) or broadcasts
    (free), unless a rule has summed it away (``gone``)."""
    dims = {**p.extra, **p.dims}
    letters = [*p.dims, *(c for c in p.out if c not in p.dims)]
    name = {c: i for i, c in enumerate(letters)}
    args: list = []
    for e, s in zip(p.ops, p.sps):
        args += [operand_value(e, vals), [name[c] for c in s]]
    covered = p.covered()
    for c in letters:
        if c not in covered and c not in p.gone:
            args += [np.ones(size(dims[c])), [name[c]]]
    if not args:
        return np.full(tuple(size(dims[c]) for c in p.out), p.coef)
    return p.coef * np.einsum(*args, [name[c] for c in p.out])


def operand_value(e: Expr, vals: dict[str, np.ndarray]) -> np.ndarray:
    if isinstance(e, Const):
        return np.full(tuple(size(d) for d in e.shape), e.value)
    return value(e, vals)


def values_for(exprs: list[Expr], seed: int = 0) -> dict[str, np.ndarray]:
    """Random values in [0.5, 2] (inside every function's domain) for each variable."""
    rng = np.random.default_rng(seed)
    shapes: dict = {}
    structures: dict = {}
    for e in exprs:
        shapes.update(e.variables())
        structures.update({n: v.structure for n, v in var_nodes(e).items()})
    # a symmetric variable's value is symmetric (the rules may use Sᵀ = S)
    return {name: structured(rng.uniform(0.5, 2.0, size=tuple(SIZES.get(d, d) for d in shape)),
                             structures.get(name))
            for name, shape in sorted(shapes.items())}


def value(e: Expr, vals: dict[str, np.ndarray]) -> np.ndarray:
    """``e``'s value (the interpreter; ``e`` in normal form, as every rule leaves it)."""
    mine = {k: v for k, v in vals.items() if k in e.variables()}
    return interpret(e, mine, dims=SIZES)


def fire(r: Rule, p: Product) -> Expr | None:
    """Fire ``r`` once on ``p`` (it must apply) and check it kept the value."""
    m = r.when(p)
    assert m is not None, f"{r.name} does not apply"
    vals = values_for(p.ops)
    before = product_value(p, vals)
    result = r.then(p, m)
    now = value(result, vals) if result is not None else product_value(p, vals)
    np.testing.assert_allclose(now, before, rtol=1e-12, atol=1e-12,
                               err_msg=f"rule {r.name} changed the value")
    return result


def product(ops: list[Expr], specs: list[tuple[int, ...]], out: tuple[int, ...],
            extra: dict | None = None) -> Product:
    return Product.of(ops, specs, out, extra)


def after(p: Product, *names: str) -> Product:
    """``p`` with the named rules applied first, each until it no longer matches."""
    for name in names:
        r = RULES[name]
        while (m := r.when(p)) is not None:
            r.then(p, m)
    return p


def scaled(p: Product, c: float) -> Product:
    p.coef *= c
    return p


def kinds(e: Expr) -> list[str]:
    return [type(n).__name__ for n in topo_order(e)]


# ====================================================================== the cases
#: for each rule, products it applies to (built fresh each time: rules mutate them)
CASES: dict[str, list[Callable[[], Product]]] = {
    # xᵢ read over (i, j) = xᵢ 1ⱼ
    "broadcast": [lambda: product([x], [(0,)], (0, 1), {1: M})],
    # Aᵢₐ (Σ_b Bₐ_b A_bⱼ) = Σ_b Aᵢₐ Bₐ_b A_bⱼ
    "flatten": [lambda: product([A, einsum([B, A], [(0, 1), (1, 2)], (0, 2))],
                                [(0, 1), (1, 2)], (0, 2)),
                # a product too long to merge whole hands its delta to the parent
                lambda: product([A, Einsum([x] * 16 + [Delta(N)], [(0,)] * 16 + [(0, 1)],
                                           (1,))], [(0, 1), (1,)], (0,))],
    # (2)(3 · 1ᵢ) xᵢ = 6 xᵢ;  Σₐ 3 · 1ₐ = 3n (the letter still counts)
    "fold_constant": [lambda: product([Const(2.0), Const(3.0, (N,)), x], [(), (0,), (0,)],
                                      (0,)),
                      lambda: product([Const(3.0, (N,))], [(0,)], ())],
    # 0 · Aᵢⱼ = 0
    "zero_factor": [lambda: after(product([Const(0.0), A], [(), (0, 1)], (0, 1)),
                                  "fold_constant")],
    # Σₐ δₐₐ xₐ = Σₐ xₐ;  Σₐ δₐₐ = n
    "trace_delta": [lambda: product([Delta(N), x], [(0, 0), (0,)], ()),
                    lambda: product([Delta(N)], [(0, 0)], ())],
    # Σₐ Aᵢₐ δₐ_b x_b = (Ax)ᵢ;  Σₐ δᵢₐ δₐⱼ = δᵢⱼ
    "eliminate_delta": [lambda: product([A, Delta(N), x], [(0, 1), (1, 2), (2,)], (0,)),
                        lambda: product([Delta(N), Delta(N)], [(0, 2), (2, 1)], (0, 1))],
    # δᵢⱼ δⱼᵢ = δᵢⱼ
    "duplicate_delta": [lambda: product([Delta(N), Delta(N)], [(0, 1), (1, 0)], (0, 1))],
    # xᵢ (x²)ᵢ = (x³)ᵢ;  Σₐ xₐ⁻¹ xₐ yₐ = Σₐ yₐ;  √xᵢ √xᵢ xᵢ = xᵢ xᵢ (merged once)
    "merge_powers": [lambda: product([x, x ** 2], [(0,), (0,)], (0,)),
                     lambda: product([x ** -1, x, y], [(0,), (0,), (0,)], ()),
                     lambda: product([md.sqrt(x), md.sqrt(x), x], [(0,), (0,), (0,)], (0,))],
    # c read over (i, j) with nothing reading j = c 1ⱼ
    "expand_letter": [lambda: after(product([Const(2.0, (M,)), x], [(1,), (0,)], (0, 1)),
                                    "fold_constant")],
    # Σₐ xᵢ (nothing reads a) = n xᵢ, named dim and numeric
    "count_letter": [lambda: after(product([Const(1.0, (N,)), A], [(2,), (0, 1)], (0, 1)),
                                   "fold_constant"),
                     lambda: after(product([Const(1.0, (4,)), x], [(1,), (0,)], (0,)),
                                   "fold_constant")],
    # 2 · 1ᵢ 1ⱼ = 2 filled to (n, m);  the empty product 5 = 5
    "constant_product": [lambda: scaled(product([Const(1.0, (N,)), Const(1.0, (M,))],
                                                [(0,), (1,)], (0, 1)), 2.0),
                         lambda: after(product([Const(5.0)], [()], ()), "fold_constant")],
    # Sⱼᵢ = Sᵢⱼ for a symmetric S (Sᵀ = S);  Σₐ Aᵢₐ (S⁻¹)ₐⱼ = Σₐ Aᵢₐ (S⁻¹)ⱼₐ
    "orient_symmetric": [lambda: product([S], [(1, 0)], (0, 1)),
                         lambda: product([A, md.inv(S)], [(0, 2), (2, 1)], (0, 1))],
    # Aᵢⱼ read as ij = A
    "single_operand": [lambda: product([A], [(0, 1)], (0, 1))],
    # Σₐ xₐ Cᵢₐ, sorted: Cᵢₐ xₐ
    "canonical": [lambda: product([x, C], [(1,), (0, 1)], (0,)),
                  lambda: product([Const(3.0), Size(N), x, y], [(), (), (0,), (0,)], ())],
}


def test_every_rule_has_a_case_and_an_identity():
    assert set(CASES) == set(RULES)
    for r in RULES.values():
        assert r.identity.strip(), f"rule {r.name} states no identity"
        assert r.name in rules.__doc__, f"the module docstring does not list {r.name}"


@pytest.mark.parametrize("name, k", [(n, k) for n, cs in CASES.items() for k in range(len(cs))])
def test_rule_keeps_the_value(name, k):
    fire(RULES[name], CASES[name][k]())


# ====================================================================== what each does
def test_flatten_merges_the_nested_product():
    p = CASES["flatten"][0]()
    fire(RULES["flatten"], p)
    assert len(p.ops) == 3 and set(p.ops) == {A, B}  # A (B A) is A B A, or A A B


def test_flatten_of_a_long_product_hoists_only_its_structure():
    p = CASES["flatten"][1]()
    fire(RULES["flatten"], p)
    assert [type(e).__name__ for e in p.ops] == ["Var", "Delta", "Einsum"]
    assert RULES["flatten"].when(p) is None  # the bulk stays nested


def test_eliminate_delta_renames_and_forgets_the_letter():
    p = CASES["eliminate_delta"][0]()
    fire(RULES["eliminate_delta"], p)
    assert p.ops == [A, x] and p.sps == [[0, 2], [2]] and p.gone == {1}  # a became b


def test_a_delta_between_output_letters_stays():
    # xᵢ δᵢⱼ is diag(x): no delta rule applies
    p = product([x, Delta(N)], [(0,), (0, 1)], (0, 1))
    for name in ("trace_delta", "eliminate_delta", "duplicate_delta"):
        assert RULES[name].when(p) is None


def test_merge_powers_merges_once():
    p = CASES["merge_powers"][2]()
    fire(RULES["merge_powers"], p)
    assert p.ops == [x, x]  # √x √x = x, not merged again with the other x


def test_merge_powers_folds_a_zeroth_power():
    p = CASES["merge_powers"][1]()
    fire(RULES["merge_powers"], p)
    assert p.ops == [y] and p.coef == 1.0


def test_count_letter_with_a_numeric_dim_scales():
    p = CASES["count_letter"][1]()
    fire(RULES["count_letter"], p)
    assert p.coef == 4.0 and p.ops == [x]


def test_single_operand_needs_the_operand_as_it_is():
    assert RULES["single_operand"].when(product([A], [(1, 0)], (0, 1))) is None  # Aᵀ
    p = after(product([Const(2.0), A], [(), (0, 1)], (0, 1)), "fold_constant")
    assert RULES["single_operand"].when(p) is None  # 2A


def test_settling_rules_wait_for_the_summed_letters():
    # Σₐ 1ᵢ 1ₐ (a of dim 4) is 4 · 1ᵢ: not a constant product until count_letter ran
    p = after(product([Const(1.0, (N,)), Const(1.0, (4,))], [(0,), (1,)], (0,)),
              "fold_constant", "expand_letter")
    assert RULES["constant_product"].when(p) is None
    fire(RULES["count_letter"], p)
    assert fire(RULES["constant_product"], p) is Const(4.0, (N,))


def test_canonical_makes_equal_products_one_node():
    a = RULES["canonical"].then(product([x, C], [(1,), (0, 1)], (0,)), True)
    b = RULES["canonical"].then(product([C, x], [(5, 7), (7,)], (5,)), True)
    assert a is b


# ====================================================================== the driver
def _derivation_products() -> list[tuple]:
    """The products that derivations of a few expressions build (the arguments of
    every ``einsum`` call)."""
    seen: list[tuple] = []
    of = Product.of.__func__  # type: ignore[attr-defined]

    def spy(cls, operands, specs, out, extra=None):
        seen.append((tuple(operands), tuple(map(tuple, specs)), tuple(out), extra))
        return of(cls, operands, specs, out, extra)

    shapes = {"X": (N, M), "y": (N,), "w": (M,), "x": (N,), "A": (N, N), "W": (M, N),
              "a": ()}
    texts = ["sum(log(1 + exp(-y * (X @ w))))", "x @ A @ x",
             "sum((W @ tanh(A @ x + y)) ** 2)", "tr(A @ A.T @ diag(x)) + sum(outer(x, y) * A)",
             "-sum(y * log(softmax(A @ x)))", "mean(sqrt(x * x + 1) / (x @ x))",
             "sum(a + x) ** 2 + tr(A) * tr(A.T) + sum(diag(diag(A)) @ diag(x))",
             "a * sum(A * (x @ y)) - sum(exp(a * W @ x))"]
    Product.of = classmethod(spy)  # type: ignore[method-assign]
    try:
        for text in texts:
            f = md.parse(text, shapes=shapes)
            for v in f.variables():
                md.hessian(f, v)
    finally:
        Product.of = classmethod(of)  # type: ignore[method-assign]
    return seen


def _checked(passes: tuple[Pass, ...], fired: list[str]) -> tuple[Pass, ...]:
    """The passes with every rule's rewrite checked numerically by :func:`fire`."""
    def wrap(r: Rule) -> Rule:
        def then(p: Product, m: object) -> Expr | None:
            fired.append(r.name)
            return fire(Rule(r.name, lambda _p: m, r.then), p)
        return Rule(r.name, r.when, then)
    return tuple(replace(ps, rules=tuple(wrap(r) for r in ps.rules)) for ps in passes)


def test_every_rule_firing_in_derivations_keeps_the_value():
    fired: list[str] = []
    checked = _checked(PASSES, fired)
    calls = _derivation_products()
    assert len(calls) >= 200
    for ops, specs, out, extra in calls:
        expect = einsum(ops, specs, out, extra)
        got = products.normalise(Product.of(ops, specs, out, extra), checked)
        assert got is expect  # the checked table is the same table
    # the derivations exercise most of the table
    assert {"flatten", "fold_constant", "eliminate_delta", "count_letter",
            "canonical", "single_operand", "merge_powers"} <= set(fired)


def _without(name: str) -> tuple[Pass, ...]:
    return tuple(replace(ps, rules=tuple(r for r in ps.rules if r.name != name))
                 for ps in PASSES)


def test_the_driver_runs_the_table_it_is_given():
    # Σₐ Aᵢₐ δₐ_b x_b: without delta elimination the delta stays, with the same value
    case = CASES["eliminate_delta"][0]
    full = products.normalise(case())
    assert "Delta" not in kinds(full)
    partial = products.normalise(case(), _without("eliminate_delta"))
    assert "Delta" in kinds(partial)
    vals = values_for([full])
    np.testing.assert_allclose(value(partial, vals), value(full, vals))
    # without count_letter a summed letter nobody reads would be lost: canonical,
    # the last rule, refuses the product
    with pytest.raises(AssertionError, match="no operand reads"):
        products.normalise(CASES["count_letter"][0](), _without("count_letter"))


def _sign_flipped_fold(p: Product, k: int) -> None:
    """A wrong constant folding: ``c X = −c X``."""
    p.coef *= -p.ops[k].value  # type: ignore[attr-defined]
    p.drop(k)


WRONG_FOLD = Rule("fold_constant", RULES["fold_constant"].when, _sign_flipped_fold)


def test_a_wrong_rule_is_caught():
    for make in CASES["fold_constant"]:
        with pytest.raises(AssertionError, match="changed the value"):
            fire(WRONG_FOLD, make())


def test_einsum_uses_the_module_table(monkeypatch):
    planted = tuple(replace(ps, rules=tuple(WRONG_FOLD if r.name == "fold_constant" else r
                                            for r in ps.rules)) for ps in PASSES)
    monkeypatch.setattr(rules, "PASSES", planted)
    bad = einsum([Const(2.0), x], [(), (0,)], (0,))
    vals = values_for([x])
    np.testing.assert_allclose(value(bad, vals), -2 * vals["x"])
    monkeypatch.undo()
    good = einsum([Const(2.0), x], [(), (0,)], (0,))
    np.testing.assert_allclose(value(good, vals), 2 * vals["x"])
