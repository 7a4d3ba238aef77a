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

from typing import Any

from ..errors import MatdiffError

__all__ = ["LANGUAGES", "PHRASES", "SENTENCES", "HINTS", "UnknownLanguageError", "phrases",
           "layout_note", "sentence", "hint_text"]


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
        # the command's summary lines (matdiff EXPR), around the formulas
        "cli_header": "The paper's loss of one ReLU neuron over N examples (Parr & Howard, §5):",
        "cli_shape": "shape",
        "cli_variables": "variables",
        "cli_inferred": ("inferred: {names} (matrixcalculus.org's letters: capitals "
                         "matrices, a-g and Greek scalars, h-z vectors{against}); declare "
                         "shapes with --shape NAME=DIMS: --shape {ex}= (scalar), {ex}=n "
                         "(vector), {ex}=m,n (matrix)"),
        "cli_against": "; usage made {names} otherwise",
        "cli_as_printed": "{printed} as printed; evaluate returns {shape}",
        "cli_check": "check",
        "cli_check_of": "check of {d}",
        "cli_claim": "claim",
        "cli_verdict_ok": "right",
        "cli_verdict_mismatch": "wrong",
        "cli_verdict_unchecked": "not checked",
        "cli_truth": "matdiff's {d}",
        "cli_note": "note",
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
        "product_rule": ("乘积法则：{x} 出现在 {k} 个因子中；每个因子各得一项，"
                         "即把该因子换成它的微分："),
        "function_rule": "{call} 的微分（由其定义给出）：",
        "read_off": "因此 {d}",
        "read_off_gradient": "因此 {d}，梯度（与变量同形）为 {g}",
        "cli_header": "论文中单个 ReLU 神经元在 N 个样本上的损失（Parr & Howard，§5）：",
        "cli_shape": "形状",
        "cli_scalar": "标量 ()",
        "cli_variables": "变量",
        "cli_inferred": ("推断的形状：{names}（按 matrixcalculus.org 的字母约定：大写字母为"
                         "矩阵，a 至 g 及希腊字母为标量，h 至 z 为向量{against}）；用 "
                         "--shape 变量名=维度 声明形状：--shape {ex}=（标量），{ex}=n（向量），"
                         "{ex}=m,n（矩阵）"),
        "cli_against": "；但按用法 {names} 不是如此",
        "cli_as_printed": "打印出的形状为 {printed}；evaluate 返回的形状为 {shape}",
        "cli_check": "检验",
        "cli_check_of": "{d} 的检验",
        "cli_claim": "所声称的导数",
        "cli_verdict_ok": "正确",
        "cli_verdict_mismatch": "错误",
        "cli_verdict_unchecked": "未能检验",
        "cli_truth": "matdiff 给出的 {d}",
        "cli_note": "注意",
        # a layout note, the layout's name in the language (the English is
        # matdiff.render.layout_note's); a layout without a name here keeps its own
        "layout_note": "（{layout}布局）",
        "layout_numerator": "分子",
        "layout_denominator": "分母",
        "layout_mixed": "混合",
        # a check's outcome (the English is matdiff.check.CheckResult's own text);
        # the reason and hint sentences are check's and stay as it writes them
        "check_what": "导数",
        "check_what_claim": "所声称的导数",
        "check_where": "在 {points} 个点上、每点 {directions} 个随机方向",
        "check_pieces": "；分段函数：{seen}/{total} 个分段已覆盖",
        "check_errors": "最大绝对误差 {abs}，最大相对误差 {rel}（eps {eps}）",
        "check_ok": "通过：{what}与中心差分一致，{where}：{errors}{pieces}",
        "check_mismatch": "不一致：{what}与中心差分不同，{where}：{errors}{pieces}",
        "check_refused": "不一致：{hint}",
        "check_unchecked": "未能检验{what}：{reason}",
        "check_at": "  在 {point} 处",
        "check_along": "  沿方向 {v}：导数给出 {got}，中心差分给出 {expected}",
        "check_hint": "  提示：{hint}",
        "symmetric": "对称矩阵",
        "spd": "对称正定矩阵（SPD）",
        "diagonal": "对角矩阵",
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

#: the sentences other layers write in English (a check's reasons and hints, the
#: parser's notes), as patterns with their words in another language; a sentence
#: no pattern matches stays as written
SENTENCES: dict[str, list[tuple[str, str]]] = {
    "zh": [
        (r"f or its derivative is not finite \(or not defined\) at any of the points "
         r"tried \((?P<k>\d+) draws, several sizes of the dims\): give values where f "
         r"is defined",
         "在所试的所有点上（{k} 次抽样，多种维度大小），f 或其导数都不是有限值（或无定义）："
         "请给出 f 有定义的取值"),
        (r"f is not finite next to a point \(a step of eps leaves its domain\)",
         "f 在某点附近不是有限值（步长 eps 越出了定义域）"),
        (r"in numpy syntax ' transposes and \* is element-wise, so x'\*A\*x is an "
         r"element-wise product; for matrixcalculus.org's input use "
         r"syntax='matrixcalculus' \(matdiff --syntax matrixcalculus\), or write "
         r"x @ A @ x",
         "在 numpy 语法中 ' 表示转置、* 表示逐元素乘积，所以 x'*A*x 是逐元素乘积；"
         "matrixcalculus.org 的输入请用 syntax='matrixcalculus'（matdiff --syntax "
         "matrixcalculus），或写成 x @ A @ x"),
    ],
}
#: a pattern's optional parts, worded (none at present: the check's hints, which had
#: them, are :data:`HINTS`)
_SENTENCE_PARTS: dict[str, dict[str, str]] = {"zh": {}}

#: the check's hints (:attr:`matdiff.check.CheckResult.hint_code`), one entry per code
#: and language: a template over the hint's parameters (``hint_params``).  The check
#: names a code and its parameters; each language writes it from here
#: (:func:`hint_text`), and ``CheckResult.hint`` is the English.
HINTS: dict[str, dict[str, str]] = {
    "en": {
        "transposed_shape": (
            "the claim has the transposed shape: matdiff's layout puts f's axes first "
            "and x's last (mixed layout); a numerator-layout gradient is its transpose"),
        "transpose": (
            "the claim is the transpose of the derivative: a layout mix-up (matdiff's "
            "layout puts f's axes first, x's last)"),
        "constant_factor": "the claim is the derivative times {c:.6g}: a constant factor is off",
        "piecewise_as_one": (
            "the claim is the derivative with the derivative of {names} taken as 1 "
            "everywhere: it misses the piecewise factor (for relu, step(z): 0 where z ≤ 0)"),
        "piecewise_some_points": (
            "the claim agrees at some points and not at others: it may miss a piecewise "
            "factor, such as the ReLU's step(z) (0 where z ≤ 0)"),
        "wrong_shape": (
            "the claim has shape {claim} but the derivative by {x} has shape {shape} "
            "(f's axes, then {x}'s)"),
        "wrong_shape_transposed": (
            "the claim has shape {claim} but the derivative by {x} has shape {shape} "
            "(f's axes, then {x}'s): the claim is in the other layout (a transpose)"),
        "handbook_symmetric": (
            "the claim is G + Gᵀ − G ⊙ I (G the derivative that treats {x} as "
            "unconstrained): that is the derivative by the independent entries of {x} "
            "({x}ᵢⱼ for i ≤ j, each off-diagonal pair counted once), not a gradient: it "
            "fails ⟨∇f, E⟩ = df[E] for symmetric E. The gradient by a symmetric {x} is "
            "sym(G) = (G + Gᵀ)/2"),
        "not_symmetric": (
            "the claim is not symmetric, but {x} is: a gradient in the space of symmetric "
            "matrices is symmetric; if the claim is G, the derivative that treats {x} as "
            "unconstrained, the gradient is sym(G) = (G + Gᵀ)/2"),
        "not_structured": (
            "the derivative is not {structure} in {x}'s axes, but {x} is: a gradient by a "
            "{structure} {x} lies among such matrices"),
    },
    "zh": {
        "transposed_shape": (
            "所声称的导数的形状是转置的：matdiff 的布局先排 f 的轴、后排 x 的轴（混合布局）；"
            "分子布局的梯度是它的转置"),
        "transpose": (
            "所声称的导数是导数的转置：布局弄混了（matdiff 的布局先排 f 的轴、后排 x 的轴）"),
        "constant_factor": "所声称的导数是导数的 {c:.6g} 倍：差一个常数因子",
        "piecewise_as_one": (
            "所声称的导数把 {names} 的导数处处当作 1：漏掉了分段因子（对 relu 而言是 "
            "step(z)：z ≤ 0 时为 0）"),
        "piecewise_some_points": (
            "所声称的导数在部分点上一致、在其他点上不一致：可能漏掉了分段因子，例如 ReLU 的 "
            "step(z)（z ≤ 0 时为 0）"),
        "wrong_shape": (
            "所声称的导数的形状为 {claim}，而对 {x} 的导数的形状为 {shape}（先 f 的轴，后 "
            "{x} 的轴）"),
        "wrong_shape_transposed": (
            "所声称的导数的形状为 {claim}，而对 {x} 的导数的形状为 {shape}（先 f 的轴，后 "
            "{x} 的轴）：所声称的导数是另一种布局（一个转置）"),
        "handbook_symmetric": (
            "所声称的导数是 G + Gᵀ − G ⊙ I（G 为把 {x} 视为无约束时的导数）：这是对 {x} 的"
            "独立元素（i ≤ j 的 {x}ᵢⱼ，每对非对角元素只算一次）的导数，不是梯度：对对称的 "
            "E，它不满足 ⟨∇f, E⟩ = df[E]。对对称矩阵 {x} 的梯度是 sym(G) = (G + Gᵀ)/2"),
        "not_symmetric": (
            "所声称的导数不是对称的，而 {x} 是对称的：对称矩阵空间中的梯度是对称的；若所声称的"
            "导数是 G（把 {x} 视为无约束时的导数），则梯度是 sym(G) = (G + Gᵀ)/2"),
        "not_structured": (
            "导数在 {x} 的轴上不是{structure}，而 {x} 是：对{structure} {x} 的梯度也是这样的矩阵"),
    },
}


def hint_text(code: str, params: dict[str, Any] | None = None, lang: str = "en") -> str:
    """The check's hint ``code`` with its parameters, written in ``lang`` (see
    :data:`HINTS`); a structure among the parameters (``symmetric``) is worded in the
    language too.

    >>> hint_text("constant_factor", {"c": 2.0})
    'the claim is the derivative times 2: a constant factor is off'
    >>> hint_text("constant_factor", {"c": 2.0}, "zh")
    '所声称的导数是导数的 2 倍：差一个常数因子'
    """
    p = phrases(lang)
    table = HINTS.get(lang, HINTS["en"])
    template = table.get(code, HINTS["en"][code])
    params = dict(params or {})
    if lang != "en" and "structure" in params:
        params["structure"] = p.get(params["structure"], params["structure"])
    return template.format(**params)


def _hint_patterns() -> list[tuple[str, str]]:
    """Each English hint as a pattern (``{name}`` a group), with its code: how
    :func:`sentence` reads back a hint that reaches it as text."""
    import re

    out = []
    for code, template in HINTS["en"].items():
        pattern, seen, pos = "", set(), 0
        for m in re.finditer(r"\{(\w+)(?::[^}]*)?\}", template):
            pattern += re.escape(template[pos:m.start()])
            name = m.group(1)
            pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
            seen.add(name)
            pos = m.end()
        out.append((pattern + re.escape(template[pos:]), code))
    return out


def phrases(lang: str) -> dict[str, str]:
    """The phrase table of ``lang``; an unknown language lists the valid ones."""
    if not isinstance(lang, str) or lang not in PHRASES:
        valid = ", ".join(repr(k) for k in LANGUAGES)
        raise UnknownLanguageError(f"unknown language {lang!r}; valid choices: {valid}")
    return PHRASES[lang]


def layout_note(layout: str, lang: str = "en") -> str:
    """What a printout in a non-default layout says, in ``lang``: English is
    :func:`matdiff.render.layout_note`'s ``(numerator layout)``, Chinese ``（分子布局）``.

    >>> layout_note("numerator", "zh"), layout_note("numerator")
    ('（分子布局）', '(numerator layout)')
    """
    from ..render.layout import layout_note as english

    p = phrases(lang)
    if "layout_note" not in p:
        return english(layout)
    english(layout)  # an unknown layout: the same error in every language
    return p["layout_note"].format(layout=p.get("layout_" + layout, layout))


def sentence(text: str, lang: str = "en") -> str:
    """A sentence another layer wrote in English (a check's hint, the parser's note)
    in ``lang``, where :data:`SENTENCES` has its pattern; else as written.

    >>> sentence("the claim is the derivative times 2: a constant factor is off", "zh")
    '所声称的导数是导数的 2 倍：差一个常数因子'
    """
    import re

    phrases(lang)
    if lang != "en" and lang in HINTS:  # a check's hint, written from its code's entry
        for pattern, code in _hint_patterns():
            m = re.fullmatch(pattern, text)
            if m:
                params: dict[str, Any] = dict(m.groupdict())
                if "c" in params:  # the number as the English wrote it
                    params["c"] = float(params["c"])
                return hint_text(code, params, lang)
    for pattern, template in SENTENCES.get(lang, []):
        m = re.fullmatch(pattern, text)
        if m:
            parts = {k: (_SENTENCE_PARTS[lang].get(k, v) if v else "")
                     for k, v in m.groupdict().items()}
            for k, v in m.groupdict().items():
                if v and k not in _SENTENCE_PARTS[lang]:
                    parts[k] = v
            return template.format(**parts)
    return text
