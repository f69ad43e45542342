"""Every page of the built book, opened in headless Chromium, works as a reader sees it.

For each page of ``_toc.yml`` (chapters, their exercise notebooks, the back matter) plus Sphinx's
``genindex.html`` and ``search.html``, served from the build over HTTP on localhost:

- no JavaScript exception and no console error;
- every request to the book's own server succeeds (scripts, styles, fonts, MathJax's parts,
  images), and no resource is fetched from another host (the book works offline);
- MathJax finished: every formula (``.math`` element) holds a typeset ``mjx-container``, none
  shows a TeX error (``mjx-merror``, "Math input error"), and a page with math loads MathJax;
- every ``<img>`` loaded (``naturalWidth > 0``);
- every link to the book itself (``href`` to a local page or file, with or without ``#anchor``)
  names a file of the build, and its anchor is an ``id`` (or ``<a name>``) of the target page.
  Links to other hosts are counted, never followed (no network).

A full-page screenshot of each page is written to ``_build/screenshots/<page>.jpg`` for a person
to look at (``_build`` is git-ignored). One browser and one context open the pages in sequence
(about four minutes for the whole book on 2 cores, half of it taking the screenshots).

The build checked is the one of tests/test_book.py (``_build/html`` when up to date, else a fresh
build; ``RNN_BOOK_HTML=_build/html`` takes the existing one as it is). The browser is the
system's Chromium, driven by Playwright (``playwright install`` is never needed). Without
Chromium the tests are skipped, unless ``RNN_REQUIRE_BROWSER=1`` (set by .ci/run, which
installs Chromium), when they fail.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from test_book import PAGES, ROOT, book_html

pytestmark = pytest.mark.slow

# The root page (not a `file:` entry of _toc.yml) and Sphinx's own pages.
ROOT_PAGE = f"{yaml.safe_load((ROOT / '_toc.yml').read_text())['root']}.html"
EXTRA_PAGES = ["genindex.html", "search.html"]
SCREENSHOTS = ROOT / "_build" / "screenshots"
# Fewest typeset formulas expected on some pages (a page that loses its math fails).
MIN_MATH = {"book/intro.html": 10, "book/ch02_rnn.html": 50, "book/ch05_lstm.html": 50}
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The one console error of the theme's own scripts, not of the book: pydata-sphinx-theme logs the
# empty colour mode of a fresh browser profile (then uses "auto"). Everything else fails the test.
# (sphinx-thebe's configuration script used to be included twice, a `const` declared again on
# every page; _ext/unique_scripts.py removes the repeat.)
THEME_ERRORS = ["Got invalid theme mode"]
# Seconds to wait for a page's load event and for MathJax to finish typesetting.
TIMEOUT_S = 60


def _chromium() -> str | None:
    if given := os.environ.get("RNN_CHROMIUM"):
        return given
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def _no_browser(reason: str):
    if os.environ.get("RNN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RNN_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def html_root(tmp_path_factory) -> Path:
    return book_html(tmp_path_factory)


@pytest.fixture(scope="module")
def served(html_root):
    """The built book on a local HTTP server (MathJax loads its fonts and parts over HTTP)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(html_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_context(served):
    """One headless Chromium and one browsing context for all pages; requests to other hosts are
    aborted and recorded in ``context.external``."""
    executable = _chromium()
    if executable is None:
        _no_browser("no chromium to open the pages (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("playwright is not installed (pip install -e '.[course]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_S * 1000)
        context.external = []

        def route(route):
            if route.request.url.startswith(served + "/"):
                route.continue_()
            else:
                context.external.append(route.request.url)
                route.abort()

        context.route("**/*", route)
        yield context
        context.close()
        browser.close()


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.ids.add(value)


@functools.cache
def _ids_of(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


def _broken_links(html_root: Path, served: str, hrefs: list[str]) -> list[str]:
    """The links among ``hrefs`` (absolute, as the browser resolved them) into the book that name
    no file of the build or no anchor of their page."""
    broken = []
    for href in hrefs:
        if not href.startswith(served + "/"):
            continue  # another host, mailto:, javascript:
        parts = urlsplit(href)
        rel = unquote(parts.path).lstrip("/")
        target = html_root / rel
        if target.is_dir():
            target = target / "index.html"
        shown = href[len(served) + 1 :]
        if not target.is_file():
            broken.append(f"{shown} (no such file)")
            continue
        anchor = unquote(parts.fragment)
        if anchor and target.suffix == ".html" and anchor not in _ids_of(target):
            broken.append(f"{shown} (no id {anchor!r} in {target.relative_to(html_root)})")
    return broken


# Run in the page once it has loaded: wait for MathJax (if the page loads it) and for every image
# (lazy ones made eager), then report what the checks need.
_INSPECT = """async (timeout) => {
  const mathjax = !!document.querySelector('script[src*="mathjax" i]');
  let mathjaxError = null;
  if (mathjax) {
    const t0 = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
      if (Date.now() - t0 > timeout) { mathjaxError = 'MathJax never started'; break; }
      await new Promise(r => setTimeout(r, 50));
    }
    if (!mathjaxError) {
      try { await MathJax.startup.promise; } catch (e) { mathjaxError = String(e); }
    }
  }
  for (const img of document.images) img.loading = 'eager';
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  const formulas = [...document.querySelectorAll('.math')];
  return {
    mathjax, mathjaxError,
    formulas: formulas.length,
    untypeset: formulas.filter(m => !m.querySelector('mjx-container'))
                      .map(m => m.textContent.trim().slice(0, 80)),
    typeset: document.querySelectorAll('mjx-container').length,
    // A TeX error is typeset as <merror>; an undefined macro as red text (noundefined).
    texErrors: (window.MathJax && MathJax.startup && MathJax.startup.document
                ? [...MathJax.startup.document.math]
                    .filter(item =>
                        /<merror|mathcolor="red"/.test(MathJax.startup.toMML(item.root)))
                    .map(item => item.math.trim().slice(0, 80))
                : []),
    errorNodes: document.querySelectorAll('mjx-merror, merror, [data-mjx-error]').length,
    inputError: document.body.innerText.includes('Math input error'),
    brokenImages: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                    .map(i => i.currentSrc || i.src),
    images: document.images.length,
    hrefs: [...document.querySelectorAll('a[href]')].map(a => a.href),
  };
}"""


@pytest.mark.parametrize("page", [ROOT_PAGE, *PAGES, *EXTRA_PAGES])
def test_page_works_in_a_browser(browser_context, served, html_root, page):
    if not (html_root / page).is_file():
        if page in EXTRA_PAGES:
            pytest.skip(f"{page} is not in this build")
        pytest.fail(f"{page} was not built")
    errors: list[str] = []
    pg = browser_context.new_page()
    pg.on("pageerror", lambda exc: errors.append(f"JavaScript exception: {exc}"))

    def console(msg):
        if msg.type == "error":
            errors.append(f"console error: {msg.text} ({msg.location.get('url')})")

    def failed(request):
        if request.url.startswith(served + "/"):
            errors.append(f"request failed: {request.url} ({request.failure})")

    def response(resp):
        if resp.url.startswith(served + "/") and resp.status >= 400:
            errors.append(f"HTTP {resp.status}: {resp.url}")

    pg.on("console", console)
    pg.on("requestfailed", failed)
    pg.on("response", response)
    n_external = len(browser_context.external)
    try:
        pg.goto(f"{served}/{page}", wait_until="load")
        found = pg.evaluate(_INSPECT, TIMEOUT_S * 1000)
        pg.wait_for_load_state("networkidle")
        shot = SCREENSHOTS / Path(page).with_suffix(".jpg")
        shot.parent.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(shot), full_page=True, type="jpeg", quality=60)
    finally:
        pg.close()
    external = browser_context.external[n_external:]
    # Aborted requests to other hosts are reported once, below, not as console errors.
    errors = [e for e in errors if "net::ERR_FAILED" not in e or not external]

    problems = [e for e in errors if not any(known in e for known in THEME_ERRORS)]
    problems += [f"fetches a resource from another host: {url}" for url in external]
    if found["mathjaxError"]:
        problems.append(f"MathJax failed: {found['mathjaxError']}")
    if found["formulas"] and not found["mathjax"]:
        problems.append(f"{found['formulas']} formulas but MathJax is not loaded")
    problems += [f"formula not typeset: {text!r}" for text in found["untypeset"][:10]]
    problems += [f"TeX error in {text!r}" for text in found["texErrors"][:10]]
    if found["errorNodes"] and not found["texErrors"]:
        problems.append(f"{found['errorNodes']} MathJax error elements")
    if found["inputError"]:
        problems.append("the page shows 'Math input error'")
    if found["typeset"] < MIN_MATH.get(page, 0):
        problems.append(f"only {found['typeset']} typeset formulas, expected {MIN_MATH[page]}+")
    problems += [f"image not loaded: {src}" for src in found["brokenImages"]]
    problems += [f"broken link: {x}" for x in _broken_links(html_root, served, found["hrefs"])]
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)
