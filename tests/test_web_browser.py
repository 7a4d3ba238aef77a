"""``matdiff serve``'s page in a real browser: Playwright drives Debian's Chromium
(``/usr/bin/chromium``, or ``$MATDIFF_CHROMIUM``; Playwright cannot download its own
browsers here) against a server started on a free port.

It types an expression and presses Enter, reads the typeset KaTeX, switches layout and
language, downloads the code and runs it, makes an error and sees the caret, follows a
permalink, edits a shape, picks an example, and checks the page at phone width.
Screenshots go to ``$MATDIFF_ARTIFACTS`` (default ``build/artifacts/web``).

Skipped, with the reason, only where Playwright or Chromium is absent
(``MATDIFF_REQUIRE_BROWSER=1`` makes that a failure instead).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
CHROMIUM = os.environ.get("MATDIFF_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MATDIFF_ARTIFACTS", ROOT / "build" / "artifacts" / "web"))
#: Chromium's flags on this kind of machine (root, no network): see the machine notes
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]


def _absent() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    return None


_WHY = _absent()
if _WHY and os.environ.get("MATDIFF_REQUIRE_BROWSER"):
    raise RuntimeError(f"the browser tests are required here: {_WHY}")
pytestmark = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")

TIMEOUT = 60_000  # ms: the first answer waits for the workers to import matdiff


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    import httpx

    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "matdiff", "serve", "--port",
                                 str(port), "--workers", "2"], stdout=err, stderr=err,
                                env={**os.environ, "PYTHONPATH": str(SRC)})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1100, "height": 900},
                                  accept_downloads=True, base_url=base_url)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url)
          if not r.url.startswith((base_url, "data:", "blob:")) else None)
    yield pg
    context.close()
    assert errors == [], errors          # no script error on the page
    assert outside == [], outside        # offline: nothing fetched from another site


def shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def run_and_wait(pg, action) -> str:
    """Do ``action`` (a submit), wait for its answer; the page's state, done or error."""
    with pg.expect_response(lambda r: r.url.endswith("/api/derive")):
        action()
    pg.wait_for_function("!document.body.classList.contains('busy')")
    return pg.evaluate("document.body.dataset.state")


def tex(pg, selector: str) -> str:
    """The LaTeX source that KaTeX typeset in the element (its MathML annotation)."""
    return pg.locator(f"{selector} annotation[encoding='application/x-tex']").first \
        .text_content().strip()


def type_expression(pg, text: str) -> str:
    pg.fill("#expr", "")
    pg.type("#expr", text)
    return run_and_wait(pg, lambda: pg.press("#expr", "Enter"))


def test_type_press_enter_and_read_the_katex(page) -> None:
    page.goto("/")
    page.wait_for_function("document.body.dataset.state")
    assert type_expression(page, "x @ A @ x") == "done"
    # ∂(xᵀAx)/∂x = (A + Aᵀ)x, typeset by KaTeX (its HTML, and the source it kept)
    x = page.locator(".derivative[data-wrt=x]")
    assert x.locator(".katex-html").count() == 1
    assert tex(page, ".derivative[data-wrt=x]") == \
        r"\frac{\partial f}{\partial x} = (A + A^\top) x"
    assert tex(page, ".derivative[data-wrt=A]") == r"\frac{\partial f}{\partial A} = x x^\top"
    assert tex(page, "#f-formula") == r"f = x^\top A x"
    assert "✓" in x.locator(".check").text_content()
    # the shapes table shows what was inferred
    assert page.locator("#shapes tr[data-name=A] .kind").input_value() == "matrix"
    assert page.locator("#shapes tr[data-name=x] .badge").text_content() == "inferred"
    # copy LaTeX / copy text carry the formulas
    assert x.locator(".copy-latex").get_attribute("data-value") == r"(A + A^\top) x"
    assert x.locator(".copy-text").get_attribute("data-value") == "(A + Aᵀ)x"
    shot(page, "01-typed")


def test_switch_layout_and_language(page) -> None:
    page.goto("/?" + urlencode({"expr": "sum(w * x)", "wrt": "w",
                                "shapes": "w:n;x:n"}))
    page.wait_for_function("document.body.dataset.state === 'done'")
    # the paper's example 8: ∂(w·x)/∂w = x (mixed), xᵀ (numerator layout)
    assert tex(page, ".derivative[data-wrt=w]") == r"\frac{\partial f}{\partial w} = x"
    run_and_wait(page, lambda: page.select_option("#layout", "numerator"))
    assert tex(page, ".derivative[data-wrt=w]") == \
        r"\frac{\partial f}{\partial w} = x^\top \qquad \text{(numerator layout)}"
    assert "layout=numerator" in page.url
    page.click("#steps summary")
    steps = page.locator("#steps-body")
    assert "Intermediate variables" in steps.text_content()
    run_and_wait(page, lambda: page.select_option("#lang", "zh"))
    assert re.search(r"[\u4e00-\u9fff]", steps.text_content())
    assert page.locator("#run").text_content() == "求导"
    assert page.evaluate("document.documentElement.lang") == "zh-Hans"
    shot(page, "02-numerator-zh")


def test_download_the_code_and_run_it(page, tmp_path) -> None:
    page.goto("/?" + urlencode({"expr": "sum(log(1 + exp(-y * (X @ w))))", "wrt": "w",
                                "shapes": "X:N,n;w:n;y:N"}))
    page.wait_for_function("document.body.dataset.state === 'done'")
    assert "def compiled(" in page.locator("#code").text_content()
    with page.expect_download() as info:
        page.click("#download")
    d = info.value
    assert d.suggested_filename == "matdiff_numpy.py"
    path = tmp_path / d.suggested_filename
    d.save_as(str(path))
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "self-check: OK" in out.stdout
    shot(page, "03-code")


def test_an_error_shows_the_caret(page) -> None:
    page.goto("/")
    page.wait_for_function("document.body.dataset.state")
    assert type_expression(page, "x @ A @ y") == "done"
    assert type_expression(page, "x +* y") == "error"
    assert page.locator("#error").is_visible()
    assert "unexpected '*'" in page.locator("#error-message").text_content()
    caret = page.locator("#caret .caret-line").text_content()
    assert caret == "   ^"                                  # under the '*' of "x +* y"
    assert page.locator("#caret mark").text_content() == "*"
    assert page.get_attribute("#expr", "aria-invalid") == "true"
    # a shape error puts a caret under both sides
    page.goto("/?" + urlencode({"expr": "x @ A @ y", "shapes": "x:n;A:m,m;y:m"}))
    page.wait_for_function("document.body.dataset.state === 'error'")
    assert page.locator("#caret .caret-line").text_content() == "^   ^"
    shot(page, "04-error")
    # typing again clears it
    page.type("#expr", " ")
    assert not page.locator("#error").is_visible()


def test_a_permalink_fills_the_form(page) -> None:
    q = {"expr": "mean((y - max(0, X @ w + b))**2)", "wrt": "w",
         "shapes": "X:N,n;w:n;y:N;b:", "syntax": "numpy", "style": "paper"}
    page.goto("/?" + urlencode(q))
    page.wait_for_function("document.body.dataset.state === 'done'")
    assert page.input_value("#expr") == q["expr"]
    assert page.input_value("#style") == "paper"
    assert page.locator(".derivative").count() == 1
    assert page.locator("#shapes tr[data-name=b] .kind").input_value() == "scalar"
    assert page.locator("#shapes tr[data-name=w] .wrt").is_checked()
    assert not page.locator("#shapes tr[data-name=b] .wrt").is_checked()
    # ticking b differentiates by it too, and the permalink says so
    run_and_wait(page, lambda: page.check("#shapes tr[data-name=b] .wrt"))
    assert page.locator(".derivative").count() == 2
    assert "wrt=w%2Cb" in page.get_attribute("#permalink", "href")


def test_editing_a_shape_declares_it(page) -> None:
    page.goto("/")
    page.wait_for_function("document.body.dataset.state")
    assert type_expression(page, "sum(x * y)") == "done"
    # y inferred a vector; declared a scalar, ∂ sum(x y)/∂y = sum(x) (paper, example 6)
    run_and_wait(page, lambda: page.select_option("#shapes tr[data-name=y] .kind",
                                                  "scalar"))
    assert page.locator("#shapes tr[data-name=y] .badge").text_content() == "declared"
    assert "scalar" in page.locator(".derivative[data-wrt=y] .shape").text_content()
    assert tex(page, ".derivative[data-wrt=y]") == \
        r"\frac{\partial f}{\partial y} = \sum(x)"
    # declaring dims by hand: x of 3 elements
    box = page.locator("#shapes tr[data-name=x] .dims")
    box.fill("3")
    run_and_wait(page, lambda: box.press("Enter"))
    assert "(3)" in page.locator(".derivative[data-wrt=x] .shape").text_content()


def test_a_symmetric_shape(page) -> None:
    from matdiff.web.api import markers_supported

    if not markers_supported():
        pytest.skip("this matdiff does not read shape markers")
    page.goto("/")
    page.wait_for_function("document.body.dataset.state")
    assert type_expression(page, "a @ S @ b") == "done"
    # by a general S: abᵀ; by a symmetric S: sym(abᵀ) = (abᵀ + baᵀ)/2 (MATH.md)
    assert page.locator(".derivative[data-wrt=S] .copy-text").get_attribute(
        "data-value") == "abᵀ"
    run_and_wait(page, lambda: page.select_option("#shapes tr[data-name=S] .kind",
                                                  "symmetric"))
    assert page.locator(".derivative[data-wrt=S] .copy-text").get_attribute(
        "data-value") == "(abᵀ + baᵀ)/2"
    assert "shapes=S%3An%2Cn%2Csymmetric" in page.url
    assert "✓" in page.locator(".derivative[data-wrt=S] .check").text_content()


def test_the_examples_menu(page) -> None:
    page.goto("/")
    page.wait_for_function("document.querySelectorAll('#examples option').length > 10")
    # chosen at once, while the page's first answer may still be on its way: the
    # example's answer is the one shown
    with page.expect_response(lambda r: r.url.endswith("/api/derive")
                              and "mean((y" in (r.request.post_data or "")):
        page.select_option("#examples", "paper-10")
    page.wait_for_function("!document.body.classList.contains('busy')")
    assert [page.locator(".derivative").nth(k).get_attribute("data-wrt")
            for k in range(2)] == ["w", "b"]
    assert page.locator("#steps-body h3").count() == 2
    run_and_wait(page, lambda: page.select_option("#examples", "logistic-hessian"))
    assert page.input_value("#order") == "2"
    assert "∂²f/∂w²" in page.locator(".derivative .label").text_content()


def test_phone_width_and_labels(browser, base_url) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800},
                                  base_url=base_url, device_scale_factor=2)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    try:
        pg.goto("/?" + urlencode({"expr": "mean((y - max(0, X @ w + b))**2)",
                                  "shapes": "X:N,n;w:n;y:N;b:", "wrt": "w"}))
        pg.wait_for_function("document.body.dataset.state === 'done'")
        # nothing wider than the phone but the formulas, which scroll in their boxes
        assert pg.evaluate("document.documentElement.scrollWidth") <= 376
        unlabeled = pg.evaluate("""[...document.querySelectorAll('input, select, button')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.textContent.trim()).map(e => e.outerHTML)""")
        assert unlabeled == []
        shot(pg, "05-phone")
    finally:
        context.close()
