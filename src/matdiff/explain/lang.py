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
        "product_rule": ("product rule: {x} is in {k} factors; one term for each, that "
                         "factor replaced by its differential:"),
        "function_rule": "the differential of {call}, from its definition:",
        "read_off": "hence {d}",
        "read_off_gradient": "hence {d}, and the gradient (the variable's shape) is {g}",
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
        "product_rule": ("乘积法则：{x} 出现在 {k} 个因子中；每个因子各得一项，"
                         "即把该因子换成它的微分："),
        "function_rule": "{call} 的微分（由其定义给出）：",
        "read_off": "因此 {d}",
        "read_off_gradient": "因此 {d}，梯度（与变量同形）为 {g}",
    },
}

LANGUAGES: tuple[str, ...] = tuple(PHRASES)


def phrases(lang: str) -> dict[str, str]:
    """The phrase table of ``lang``; an unknown language lists the valid ones."""
    if not isinstance(lang, str) or lang not in PHRASES:
        valid = ", ".join(repr(k) for k in LANGUAGES)
        raise UnknownLanguageError(f"unknown language {lang!r}; valid choices: {valid}")
    return PHRASES[lang]
