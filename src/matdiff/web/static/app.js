// matdiff serve: the page.  It sends the form to POST /api/derive and shows the answer;
// it computes nothing itself.  Permalinks: /?expr=...&wrt=x,y&shapes=x:n;A:n,n;b:&syntax=...
"use strict";

const $ = (id) => document.getElementById(id);
const KINDS = ["scalar", "vector", "matrix", "symmetric"];

// the labels of the page in each language (the derivation's language is the server's)
const LABELS = {
  en: {
    tagline: "Derivatives of matrix expressions in matrix notation, step by step the way " +
      "Parr & Howard's paper does them, checked in numbers.",
    expression: "Expression", run: "Differentiate", syntax: "Syntax", examples: "Examples",
    choose: "choose an example…", order: "Derivative", first: "gradient / Jacobian",
    hessian: "Hessian", layout: "Layout", style: "Style", lang: "Language",
    shapes: "Variables and shapes",
    "shapes-hint": "Shapes not declared are inferred from how the variables are used. " +
      "Change a kind or dims to declare it; tick the variables to differentiate by.",
    wrt: "by", name: "name", kind: "kind", dims: "dims", result: "Result",
    steps: "Step by step (the paper's method)", code: "Code", download: "Download script",
    "copy-code": "Copy code",
    "code-hint": "A standalone script: the value and the derivatives, and a self-check " +
      "against finite differences.",
    permalink: "Permalink to this result", inferred: "inferred", declared: "declared",
    copyLatex: "copy LaTeX", copyText: "copy text", copied: "copied",
    checkOk: "checked: agrees with finite differences", checkBad: "check FAILED",
    points: "points", relerr: "max relative error",
    checkNone: "not checked", shape: "shape", working: "working…",
  },
  zh: {
    tagline: "矩阵表达式的导数：用矩阵记号给出，按 Parr 与 Howard 论文的方法逐步推导，并用数值检验。",
    expression: "表达式", run: "求导", syntax: "语法", examples: "示例", choose: "选择示例…",
    order: "导数", first: "梯度 / 雅可比矩阵", hessian: "黑塞矩阵", layout: "布局", style: "记号风格",
    lang: "语言", shapes: "变量与形状",
    "shapes-hint": "未声明的形状由变量的用法推断。修改类型或维度即声明之；勾选要对其求导的变量。",
    wrt: "求导", name: "名称", kind: "类型", dims: "维度", result: "结果",
    steps: "逐步推导（论文的方法）", code: "代码", download: "下载脚本", "copy-code": "复制代码",
    "code-hint": "独立脚本：函数值与导数，并附有限差分自检。",
    permalink: "本结果的永久链接", inferred: "推断", declared: "已声明",
    copyLatex: "复制 LaTeX", copyText: "复制文本", copied: "已复制",
    checkOk: "已检验：与有限差分一致", checkBad: "检验未通过", checkNone: "未检验", shape: "形状",
    points: "个点", relerr: "最大相对误差",
    working: "计算中…",
  },
};

const state = {
  declared: {},       // name -> dims (a list), the shapes the person declared
  wrt: null,          // names ticked, or null: all
  lastExpr: null,     // the text of the latest answer (its variables fill the table)
  code: "",
  running: false,
  pending: false,
  markers: true,      // whether the server's matdiff reads "symmetric" shapes
};

function t(key) {
  const lang = $("lang").value;
  return (LABELS[lang] && LABELS[lang][key]) || LABELS.en[key] || key;
}

function applyLabels() {
  document.documentElement.lang = $("lang").value === "zh" ? "zh-Hans" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) {
    const text = t(el.dataset.i18n);
    if (text) el.textContent = text;
  }
}

// ------------------------------------------------------------ shapes
function kindOf(dims) {
  if (dims.length === 0) return "scalar";
  if (dims.length === 1) return "vector";
  if (dims.length === 3 && dims[2] === "symmetric") return "symmetric";
  return "matrix";
}

function dimsText(dims) {
  return dims.filter((d) => d !== "symmetric").join(", ");
}

function parseDims(text, kind) {
  const dims = text.split(/[,×]/).map((d) => d.trim()).filter(Boolean)
    .map((d) => (/^[0-9]+$/.test(d) ? parseInt(d, 10) : d));
  if (kind === "scalar") return [];
  if (kind === "vector") return dims.slice(0, 1).length ? dims.slice(0, 1) : ["n"];
  if (kind === "symmetric") {
    const n = dims.length ? dims[0] : "n";
    return [n, n, "symmetric"];
  }
  if (dims.length >= 2) return dims.slice(0, 2);
  return dims.length === 1 ? [dims[0], dims[0]] : ["m", "n"];
}

function shapesToParam(shapes) {
  return Object.entries(shapes).map(([n, d]) => `${n}:${d.join(",")}`).join(";");
}

function shapesFromParam(text) {
  const out = {};
  for (const part of (text || "").split(";")) {
    if (!part.includes(":")) continue;
    const [name, dims] = part.split(":");
    out[name.trim()] = dims.split(",").map((d) => d.trim()).filter(Boolean)
      .map((d) => (/^[0-9]+$/.test(d) ? parseInt(d, 10) : d));
  }
  return out;
}

function fillShapes(fn, wrts) {
  const body = $("shapes").querySelector("tbody");
  body.textContent = "";
  for (const [name, dims] of Object.entries(fn.variables)) {
    const tr = document.createElement("tr");
    tr.dataset.name = name;
    const inferred = fn.inferred.includes(name);
    const id = `shape-${name}`;
    const tick = document.createElement("input");
    tick.type = "checkbox";
    tick.className = "wrt";
    tick.checked = wrts.includes(name);
    tick.setAttribute("aria-label", `${t("wrt")} ${name}`);
    tick.addEventListener("change", () => {
      state.wrt = [...document.querySelectorAll("#shapes .wrt")]
        .filter((c) => c.checked).map((c) => c.closest("tr").dataset.name);
      run();
    });
    const kind = document.createElement("select");
    kind.className = "kind";
    kind.id = `${id}-kind`;
    kind.setAttribute("aria-label", `${t("kind")} ${name}`);
    for (const k of KINDS) {
      const o = document.createElement("option");
      o.value = o.textContent = k;
      if (k === "symmetric" && !state.markers) {
        o.disabled = true;
        o.title = "this matdiff does not read symmetric shapes yet";
      }
      kind.append(o);
    }
    kind.value = kindOf(dims);
    const dimsBox = document.createElement("input");
    dimsBox.className = "dims";
    dimsBox.type = "text";
    dimsBox.spellcheck = false;
    dimsBox.value = dimsText(dims);
    dimsBox.setAttribute("aria-label", `${t("dims")} ${name}`);
    dimsBox.disabled = kind.value === "scalar";
    const declare = () => {
      const d = parseDims(dimsBox.value, kind.value);
      state.declared[name] = d;
      dimsBox.value = dimsText(d);
      dimsBox.disabled = kind.value === "scalar";
      run();
    };
    kind.addEventListener("change", declare);
    dimsBox.addEventListener("change", declare);
    dimsBox.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); declare(); }
    });
    const badge = document.createElement("span");
    badge.className = inferred ? "badge inferred" : "badge declared";
    badge.textContent = inferred ? t("inferred") : t("declared");
    const label = document.createElement("code");
    label.textContent = name;
    for (const el of [tick, label, kind, dimsBox, badge]) {
      const td = document.createElement("td");
      td.append(el);
      tr.append(td);
    }
    body.append(tr);
  }
}

// ------------------------------------------------------------ math
function renderMath(el, latex, text) {
  el.textContent = "";
  if (window.katex) {
    try {
      window.katex.render(latex, el, { displayMode: true, throwOnError: true,
                                       strict: "ignore", output: "htmlAndMathml" });
      return;
    } catch (e) {
      console.warn("KaTeX could not typeset", latex, e);
    }
  }
  el.textContent = text;
  el.classList.add("plain");
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const old = button.textContent;
  button.textContent = t("copied");
  setTimeout(() => { button.textContent = old; }, 1200);
}

function copyButtons(box, latex, text) {
  box.textContent = "";
  for (const [label, value, cls] of [[t("copyLatex"), latex, "copy-latex"],
                                     [t("copyText"), text, "copy-text"]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = `copy ${cls}`;
    b.textContent = label;
    b.dataset.value = value;
    b.addEventListener("click", () => copy(value, b));
    box.append(b);
  }
}

function shapeText(dims) {
  return dims.length ? `(${dims.join(", ")})` : "scalar ()";
}

function verdict(check) {
  const p = document.createElement("p");
  p.className = "check";
  if (!check) {
    p.textContent = t("checkNone");
    p.classList.add("none");
    return p;
  }
  p.classList.add(check.status);
  p.title = check.text;
  if (check.status === "ok") {
    p.textContent = `✓ ${t("checkOk")} (${check.points} ${t("points")}, ${t("relerr")} ` +
      `${Number(check.max_rel_error).toExponential(1)})`;
  } else if (check.status === "mismatch") {
    p.textContent = `✗ ${t("checkBad")}: ${check.hint || check.text.split("\n")[0]}`;
  } else {
    p.textContent = `? ${t("checkNone")}: ${check.reason || check.text.split("\n")[0]}`;
  }
  return p;
}

// ------------------------------------------------------------ the answer
function showAnswer(req, doc) {
  $("results").hidden = false;
  $("katex-note").hidden = Boolean(window.katex);
  const fn = doc.function;
  renderMath($("f-formula"), `f = ${fn.latex}`, `f = ${fn.text}`);
  $("f-shape").textContent = `${t("shape")} ${shapeText(fn.shape)}`;
  copyButtons($("function").querySelector(".copies"), fn.latex, fn.text);
  const list = $("derivatives");
  list.textContent = "";
  for (const d of doc.derivatives) {
    const card = document.createElement("div");
    card.className = "card derivative";
    card.dataset.wrt = d.wrt;
    const head = document.createElement("div");
    head.className = "card-head";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = d.label;
    const shape = document.createElement("span");
    shape.className = "shape";
    shape.textContent = `${t("shape")} ${shapeText(d.printed_shape)}` +
      (doc.layout_note ? ` ${doc.layout_note}` : "");
    const copies = document.createElement("span");
    copies.className = "copies";
    head.append(label, shape, copies);
    const formula = document.createElement("div");
    formula.className = "formula";
    const note = doc.layout_note ? String.raw` \qquad \text{${doc.layout_note}}` : "";
    renderMath(formula, `${d.label_latex} = ${d.latex}${note}`, `${d.label} = ${d.text}`);
    copyButtons(copies, d.latex, d.text);
    card.append(head, formula, verdict(d.check));
    list.append(card);
  }
  $("notes").hidden = !doc.notes.length;
  $("notes").textContent = doc.notes.join(" ");
  const steps = $("steps-body");
  steps.textContent = "";
  if (doc.explanation) {
    $("steps").hidden = false;
    for (const der of doc.explanation.derivations) {
      const h = document.createElement("h3");
      h.textContent = `∂${der.name}/∂${der.wrt}`;
      const m = document.createElement("div");
      m.className = "formula derivation";
      renderMath(m, der.latex, der.plain);
      const pre = document.createElement("details");
      const s = document.createElement("summary");
      s.textContent = t("copyText");
      const text = document.createElement("pre");
      text.textContent = der.plain;
      pre.append(s, text);
      steps.append(h, m, pre);
    }
  } else {
    $("steps").hidden = true;
  }
  state.code = doc.code || "";
  $("code").textContent = state.code;
  $("code-card").hidden = !state.code;
  const url = permalink(req);
  $("permalink").href = url;
  history.replaceState(null, "", url);
}

function codePoints(text) {
  return Array.from(text);
}

function showError(req, doc, status) {
  const box = $("error");
  box.hidden = false;
  $("error-message").textContent = doc.error || `error ${status}`;
  const caret = $("caret");
  caret.textContent = "";
  const spans = doc.spans || (doc.position ? [doc.position] : []);
  $("expr").setAttribute("aria-invalid", "true");
  if (!spans.length) {
    caret.hidden = true;
    return;
  }
  // positions count code points (Python's), not JavaScript's UTF-16 units
  const chars = codePoints(req.expr);
  const marks = Array(chars.length + 1).fill(" ");
  for (const [s, e] of spans) {
    for (let k = s; k < Math.max(e, s + 1) && k < marks.length; k++) marks[k] = "^";
  }
  const line = document.createElement("span");
  line.className = "caret-text";
  for (let k = 0; k < chars.length; k++) {
    if (marks[k] === "^") {
      const m = document.createElement("mark");
      m.textContent = chars[k];
      line.append(m);
    } else {
      line.append(chars[k]);
    }
  }
  const under = document.createElement("span");
  under.className = "caret-line";
  under.textContent = marks.join("").trimEnd();
  caret.append(line, "\n", under);
  caret.hidden = false;
  const [s, e] = spans[0];
  const start = chars.slice(0, s).join("").length;
  const end = chars.slice(0, Math.max(e, s + 1)).join("").length;
  try { $("expr").setSelectionRange(start, end); } catch (err) { /* not focused */ }
}

function clearError() {
  $("error").hidden = true;
  $("expr").removeAttribute("aria-invalid");
}

// ------------------------------------------------------------ requests
function request() {
  const expr = $("expr").value;
  const sameText = state.lastExpr !== null && expr.trim() === state.lastExpr.trim();
  const req = {
    expr, syntax: $("syntax").value, hessian: $("order").value === "2",
    layout: $("layout").value, style: $("style").value || null, lang: $("lang").value,
    explain: $("order").value !== "2", code: $("backend").value, check: true,
    shapes: { ...state.declared },
  };
  if (state.wrt && (sameText || state.lastExpr === null)) req.wrt = state.wrt;
  return req;
}

function permalink(req) {
  const p = new URLSearchParams();
  p.set("expr", req.expr);
  if (req.wrt && req.wrt.length) p.set("wrt", req.wrt.join(","));
  if (Object.keys(req.shapes).length) p.set("shapes", shapesToParam(req.shapes));
  if (req.syntax !== "numpy") p.set("syntax", req.syntax);
  if (req.hessian) p.set("hessian", "1");
  if (req.layout !== "mixed") p.set("layout", req.layout);
  if (req.style) p.set("style", req.style);
  if (req.lang !== "en") p.set("lang", req.lang);
  return `/?${p.toString()}`;
}

async function run() {
  if (state.running) { state.pending = true; return; }
  state.running = true;
  document.body.classList.add("busy");
  $("run").setAttribute("aria-busy", "true");
  const req = request();
  try {
    const r = await fetch("/api/derive", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(req),
    });
    let doc;
    try { doc = await r.json(); } catch (e) { doc = { error: `error ${r.status}` }; }
    if (state.pending) {
      // newer input (an example, a permalink, an edit) waits: this answer is stale
    } else if (r.ok) {
      clearError();
      state.lastExpr = req.expr;
      const wrts = doc.derivatives.map((d) => d.wrt);
      state.wrt = wrts;
      // keep declared only the names this expression has
      for (const n of Object.keys(state.declared)) {
        if (!(n in doc.function.variables)) delete state.declared[n];
      }
      fillShapes(doc.function, wrts);
      showAnswer({ ...req, wrt: wrts }, doc);
      document.body.dataset.state = "done";
    } else {
      showError(req, doc, r.status);
      document.body.dataset.state = "error";
    }
  } catch (e) {
    showError(req, { error: `the server did not answer (${e})` }, 0);
    document.body.dataset.state = "error";
  } finally {
    state.running = false;
    document.body.classList.remove("busy");
    $("run").removeAttribute("aria-busy");
    if (state.pending) { state.pending = false; run(); }
  }
}

// ------------------------------------------------------------ examples
async function loadExamples() {
  const r = await fetch("/api/examples");
  const { examples } = await r.json();
  const select = $("examples");
  const groups = {};
  for (const ex of examples) {
    if (!groups[ex.group]) {
      groups[ex.group] = document.createElement("optgroup");
      groups[ex.group].label = ex.group;
      select.append(groups[ex.group]);
    }
    const o = document.createElement("option");
    o.value = ex.id;
    o.textContent = ex.title;
    groups[ex.group].append(o);
  }
  select.addEventListener("change", () => {
    const ex = examples.find((e) => e.id === select.value);
    if (!ex) return;
    $("expr").value = ex.expr;
    $("syntax").value = ex.syntax || "numpy";
    $("order").value = ex.hessian ? "2" : "1";
    $("layout").value = ex.layout || "mixed";
    $("style").value = ex.style || "";
    state.declared = { ...(ex.shapes || {}) };
    state.wrt = ex.wrt || null;
    state.lastExpr = null;
    run();
  });
}

// ------------------------------------------------------------ start
function fromPermalink() {
  const p = new URLSearchParams(location.search);
  if (!p.has("expr")) return false;
  $("expr").value = p.get("expr");
  const pick = (id, key, ok) => {
    if (p.has(key) && ok(p.get(key))) $(id).value = p.get(key);
  };
  const options = (id) => [...$(id).options].map((o) => o.value);
  pick("syntax", "syntax", (v) => options("syntax").includes(v));
  pick("layout", "layout", (v) => options("layout").includes(v));
  pick("style", "style", (v) => options("style").includes(v));
  pick("lang", "lang", (v) => options("lang").includes(v));
  if (p.get("hessian") === "1") $("order").value = "2";
  state.declared = shapesFromParam(p.get("shapes"));
  state.wrt = p.get("wrt") ? p.get("wrt").split(",").map((s) => s.trim()).filter(Boolean)
    : null;
  return true;
}

function download() {
  const backend = $("backend").value;
  const blob = new Blob([state.code], { type: "text/x-python" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `matdiff_${backend}.py`;
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  for (const id of ["syntax", "order", "layout", "style", "backend"]) {
    $(id).addEventListener("change", run);
  }
  $("lang").addEventListener("change", () => { applyLabels(); run(); });
  $("expr").addEventListener("input", clearError);
  $("download").addEventListener("click", download);
  $("copy-code").addEventListener("click", (e) => copy(state.code, e.target));
  const linked = fromPermalink();
  applyLabels();
  loadExamples();
  fetch("/api/health").then((r) => r.json())
    .then((h) => { state.markers = h.shape_markers !== false; }).catch(() => {});
  if (!linked) $("expr").focus();
  run();
  document.body.dataset.ready = "1";
});
