"""The phrases of a derivation, in English and in Chinese.

The Chinese terms are those of the Chinese translation of the paper
(``paper/matrix-calculus-zh.md``): 中间变量 (intermediate variable), 链式法则 (chain
rule), 雅可比矩阵 (Jacobian), 逐元素 (element-wise), 梯度 (gradient), 导数
(derivative), 偏导数 (partial derivative), 对角矩阵 (diagonal matrix), 标量 (scalar).

>>> from matdiff.explain.lang import phrases
>>> phrases("zh")["chain"]
'链式法则'
>>> phrases("fr")
Traceback (most recent call last):
...
matdiff.explain.lang.UnknownLanguageError: unknown language 'fr'; valid choices: 'en', 'zh'
"""

from __future__ import annotations

from ..errors import MatdiffError

__all__ = ["LANGUAGES", "PHRASES", "UnknownLanguageError", "phrases"]


class UnknownLanguageError(MatdiffError, ValueError):
    """A language that :func:`matdiff.explain` does not speak."""


PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "title": "Derivative of {f} = {expr} with respect to {x}",
        "method": ("The paper's method: name the intermediate variables, take the local "
                   "derivative (Jacobian) of each, multiply them by the chain rule; "
                   "numerator layout, as in the paper."),
        "intermediates": "Intermediate variables",
        "locals": "Local derivatives (Jacobians, numerator layout)",
        "chain": "Chain rule",
        "total": ("{x} reaches {f} along {k} paths: sum the products over the paths "
                  "(the total-derivative rule)."),
        "result": "Result",
        "numerator": "numerator layout, as in the paper",
        "mixed": "default (mixed) layout: the array that evaluate returns, shape {shape}",
        "scalar": "scalar",
        "shape": "shape",
        "no_dependence": "{f} does not depend on {x}: the derivative is zero.",
        "identity": "The derivative of a variable by itself is the identity.",
        "elementwise": "element-wise: the Jacobian is a diagonal matrix",
        "index": ("{d} has shape {shape}: a tensor of order {order}, with no matrix "
                  "form; shown in index notation"),
        "matrix_chain": ("The local derivatives involve a matrix, so the chain rule "
                         "contracts them over the intermediates' indices; the result:"),
        "step": "step",
        "definition": "definition",
        "derivative": "derivative",
        # a structured variable (MATH.md, "Symmetric (and SPD, diagonal) variables")
        "symmetric": "symmetric",
        "spd": "symmetric positive definite (SPD)",
        "sym_gradient": (
            "{x} is {structure}: {x}ᵀ = {x}, so only its entries {x}ᵢⱼ with i ≤ j are free. "
            "With G the derivative that treats {x} as unconstrained, the gradient in the "
            "space of symmetric matrices (inner product ⟨A, B⟩ = tr(AᵀB)) is "
            "sym(G) = (G + Gᵀ)/2: the one symmetric D with ⟨D, E⟩ = df[E] for every "
            "symmetric direction E; each derivative by {x} below is projected so. "
            "G + Gᵀ − G ⊙ I, found in some handbooks, is the derivative by the "
            "independent entries {x}ᵢⱼ (i ≤ j), not a gradient: it fails "
            "⟨∇f, E⟩ = df[E] for symmetric E."),
        "spd_domain": "SPD changes only the domain: checks draw SPD matrices.",
        "diag_gradient": (
            "{x} is diagonal: only its diagonal entries are free. With G the derivative "
            "that treats {x} as unconstrained, the gradient in the space of diagonal "
            "matrices is diag(G) = G ⊙ I, the one diagonal D with ⟨D, E⟩ = df[E] for "
            "every diagonal direction E; each derivative by {x} below is projected so."),
    },
    "zh": {
        "title": "{f} = {expr} 对 {x} 的导数",
        "method": ("论文的方法：引入中间变量，求每个中间变量的局部导数（雅可比矩阵），"
                   "再用链式法则把它们相乘；采用分子布局，与论文一致。"),
        "intermediates": "中间变量",
        "locals": "局部导数（雅可比矩阵，分子布局）",
        "chain": "链式法则",
        "total": "{x} 沿 {k} 条路径影响 {f}：对各路径上的乘积求和（全导数链式法则）。",
        "result": "结果",
        "numerator": "分子布局，与论文一致",
        "mixed": "默认（混合）布局：即 evaluate 返回的数组，形状 {shape}",
        "scalar": "标量",
        "shape": "形状",
        "no_dependence": "{f} 与 {x} 无关：导数为零。",
        "identity": "变量对自身的导数是单位矩阵。",
        "elementwise": "逐元素运算：雅可比矩阵是对角矩阵",
        "index": "{d} 的形状为 {shape}：{order} 阶张量，没有矩阵形式，用指标记法表示",
        "matrix_chain": "局部导数涉及矩阵，链式法则对中间变量的指标求和（缩并）；结果：",
        "step": "步骤",
        "definition": "定义",
        "derivative": "导数",
        "symmetric": "对称矩阵",
        "spd": "对称正定矩阵（SPD）",
        "sym_gradient": (
            "{x} 是{structure}：{x}ᵀ = {x}，只有 i ≤ j 的元素 {x}ᵢⱼ 是自由的。记 G 为把 {x} "
            "视为无约束时的导数，则在对称矩阵空间（内积 ⟨A, B⟩ = tr(AᵀB)）中的梯度是 "
            "sym(G) = (G + Gᵀ)/2：对每个对称方向 E 都满足 ⟨D, E⟩ = df[E] 的唯一对称矩阵 D；"
            "下面每个对 {x} 的导数都这样投影。有些手册给出的 G + Gᵀ − G ⊙ I 是对独立元素 "
            "{x}ᵢⱼ（i ≤ j）的导数，不是梯度：对对称的 E，它不满足 ⟨∇f, E⟩ = df[E]。"),
        "spd_domain": "SPD 只改变定义域：检验时取对称正定矩阵。",
        "diag_gradient": (
            "{x} 是对角矩阵：只有对角元素是自由的。记 G 为把 {x} 视为无约束时的导数，"
            "则在对角矩阵空间中的梯度是 diag(G) = G ⊙ I：对每个对角方向 E 都满足 "
            "⟨D, E⟩ = df[E] 的唯一对角矩阵 D；下面每个对 {x} 的导数都这样投影。"),
    },
}

LANGUAGES: tuple[str, ...] = tuple(PHRASES)


def phrases(lang: str) -> dict[str, str]:
    """The phrase table of ``lang``; an unknown language lists the valid ones."""
    if not isinstance(lang, str) or lang not in PHRASES:
        valid = ", ".join(repr(k) for k in LANGUAGES)
        raise UnknownLanguageError(f"unknown language {lang!r}; valid choices: {valid}")
    return PHRASES[lang]
