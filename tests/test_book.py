"""The built book: every page exists, executed without errors, and shows its math and figures.

Design (to keep ``make test`` fast): building the book executes every chapter, which takes a
while, and ``make book`` already does it, with warnings as errors. So these tests read an
existing ``_build/html`` when it is *up to date*, i.e. built after the last change to any file
the book is built from (the pages, ``_config.yml``, ``_toc.yml``, ``references.bib``, the code
of ``rnn_ref``, the exercise notebooks); then they take well under a second. When there is no
build, or it is older than a source (so it could hide a page that no longer builds), the
fixture builds the book into a temporary directory with the same command as ``make book``
(``-W -n --keep-going``: any warning fails) and checks that build instead (about 30 s on 2
cores); a test never writes into the repository's ``_build/html``. ``RNN_BOOK_REBUILD=1`` forces
that fresh build; ``RNN_BOOK_HTML=_build/html`` checks an existing build as it is. All tests are
marked ``slow`` (``pytest -m "not slow"`` skips them). tests/test_browser.py opens every page of
the same build in headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from grading_course import toc_files

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUILT_HTML = ROOT / "_build" / "html"


# Every page of the table of contents must be built (a new chapter is covered once it is in
# _toc.yml), and a chapter page executed at build must show rendered output and figures.
TOC = list(toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
PAGES = [f"{f}.html" for f in TOC]
EXECUTED_PAGES = [p for p in PAGES if p.startswith("book/ch")]
# Minimum number of figures (<img> of an executed output) per executed page; default 2.
MIN_FIGURES = {
    "book/ch01_sequences.html": 5,
    "book/ch02_rnn.html": 4,
    "book/ch03_bptt.html": 4,
    "book/ch04_gradients.html": 3,
    "book/ch05_lstm.html": 4,
    "book/ch07_variants.html": 1,
    "book/ch08_training.html": 6,
    "book/ch09_seq2seq.html": 2,
    "book/ch10_pytorch.html": 1,
    "book/ch11_timeseries.html": 6,
    "book/ch12_text.html": 4,
    "book/ch13_speech.html": 6,
    "book/ch14_recsys.html": 5,
    "book/ch15_vision.html": 7,
    "book/ch16_multimodal.html": 3,
    "book/ch16_multimodal_captioner.html": 4,
    # The errata pages' evidence is printed: numbers, exceptions, gradient checks, a table.
    **{f"book/{f.split('/')[-1]}.html": 0 for f in TOC if f.startswith("book/ch17_errata")},
}
# Pages executed at build that are not chapters: must show at least one figure too.
EXECUTED_PAGES += ["book/appendix_gpu_bench.html"]
MIN_FIGURES["book/appendix_gpu_bench.html"] = 1

SOURCE_GLOBS = [
    "_config.yml",
    "_toc.yml",
    "references.bib",
    "book/**/*",
    "rnn_ref/**/*.py",
    "exercises/**/*.ipynb",
]


def _newest_source_mtime() -> float:
    newest = 0.0
    for pattern in SOURCE_GLOBS:
        for path in ROOT.glob(pattern):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


def _build_is_fresh() -> bool:
    """True if every page is built and the last build ran after the last edit of a source.

    A build that finds nothing to do rewrites no page, so the time of the last build is that of
    the newest file anywhere under _build/html (Sphinx rewrites _static/pygments.css every run).
    """
    if not all((BUILT_HTML / page).is_file() for page in PAGES):
        return False
    last_build = max(p.stat().st_mtime for p in BUILT_HTML.rglob("*") if p.is_file())
    return last_build >= _newest_source_mtime()


def _jupyter_book() -> str:
    candidate = Path(sys.executable).parent / "jupyter-book"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("jupyter-book")
    if found is None:
        pytest.fail("jupyter-book is not installed in this environment (run `make env`)")
    return found


# A build made by this test session (at most one, shared with tests/test_browser.py).
_SESSION_BUILD: list[Path] = []


def book_html(tmp_path_factory) -> Path:
    """The built book to check: ``_build/html`` if fresh, else a build into a temporary directory.

    ``RNN_BOOK_HTML=<dir>`` checks that build as it is, even if a source changed since (e.g. the
    last ``make book`` while pages are being edited).
    """
    if given := os.environ.get("RNN_BOOK_HTML"):
        path = Path(given).resolve()
        assert (path / "book" / "intro.html").is_file(), f"RNN_BOOK_HTML={given} holds no book"
        return path
    if os.environ.get("RNN_BOOK_REBUILD") != "1" and _build_is_fresh():
        return BUILT_HTML
    if not _SESSION_BUILD:
        out = tmp_path_factory.mktemp("book")
        # The command of `make book`, with the output redirected to the temporary directory.
        cmd = [_jupyter_book(), "build", str(ROOT), "--path-output", str(out)]
        cmd += ["--builder", "html", "-W", "-n", "--keep-going"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        log = (proc.stdout + proc.stderr)[-6000:]
        assert proc.returncode == 0, f"the book does not build (warnings are errors):\n{log}"
        _SESSION_BUILD.append(out / "_build" / "html")
    return _SESSION_BUILD[0]


@pytest.fixture(scope="module")
def html_root(tmp_path_factory) -> Path:
    return book_html(tmp_path_factory)


def _read(html_root: Path, page: str) -> str:
    path = html_root / page
    assert path.is_file(), f"{page} was not built (is it in _toc.yml?)"
    return path.read_text(encoding="utf-8")


def _class_lists(html: str) -> list[set[str]]:
    return [set(m.group(1).split()) for m in re.finditer(r'class="([^"]*)"', html)]


@pytest.mark.parametrize("page", PAGES)
def test_page_exists(html_root, page):
    assert _read(html_root, page).strip()


@pytest.mark.parametrize("page", PAGES)
def test_no_error_or_stderr_output(html_root, page):
    # myst-nb renders an exception as <div class="output traceback ..."> and stderr as
    # "output stderr"; with allow_errors false the build should already have failed.
    html = _read(html_root, page)
    for classes in _class_lists(html):
        assert not {"output", "traceback"} <= classes, f"{page} shows an error output"
        assert not {"output", "stderr"} <= classes, f"{page} shows stderr output (a warning?)"


@pytest.mark.parametrize("page", ["book/intro.html", "book/ch02_rnn.html"])
def test_math_is_rendered(html_root, page):
    html = _read(html_root, page)
    n_math = html.count('class="math notranslate nohighlight"')
    assert n_math >= 10, f"{page}: only {n_math} math containers"
    assert "mathjax" in html.lower(), f"{page} does not load MathJax"
    # No raw dollar math left unparsed (e.g. a missing dollarmath extension).
    assert "$$" not in re.sub(r"<(script|pre)\b.*?</\1>", "", html, flags=re.S)


@pytest.mark.parametrize("page", EXECUTED_PAGES)
def test_figures_are_shown(html_root, page):
    html = _read(html_root, page)
    srcs = re.findall(r'<img[^>]*src="([^"]*_images/[^"]+\.(?:png|svg))"', html)
    assert len(srcs) >= MIN_FIGURES.get(page, 2), f"{page}: {len(srcs)} figures"
    for src in srcs:
        image = (html_root / page).parent / src
        assert image.is_file() and image.stat().st_size > 2000, f"{page}: broken image {src}"


def test_ch02_rnn_learns_the_echo(html_root):
    text = re.sub(r"<[^>]+>", "", _read(html_root, "book/ch02_rnn.html"))
    rnn = re.search(r"RNN\s+(\d+\.\d)%", text)
    memoryless = re.search(r"memoryless\s+(\d+\.\d)%", text)
    assert rnn and memoryless, "the held-out accuracies are not printed"
    assert float(rnn.group(1)) >= 95.0
    assert float(memoryless.group(1)) <= 25.0


def test_references_page_lists_the_bibliography(html_root):
    html = _read(html_root, "book/references.html")
    for doi in ["10.1207/s15516709cog1402_1", "10.1162/neco.1997.9.8.1735"]:
        assert doi in html


def test_exercise_pages_are_rendered_not_executed(html_root):
    # Exercise notebooks are handed out with stubs that raise NotImplementedError: the book shows
    # them (execute.exclude_patterns in _config.yml) but must not run them or show outputs.
    for page in sorted((html_root / "exercises").rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        name = page.relative_to(html_root).as_posix()
        assert 'class="cell_input' in html, f"{name} shows no code cells"
        assert 'class="cell_output' not in html, f"{name} was executed or carries outputs"


def test_solutions_and_tests_are_not_published(html_root):
    published = [p.relative_to(html_root).as_posix() for p in html_root.rglob("*")]
    leaked = [p for p in published if p.split("/")[0] in {"solutions", "tests", "bench"}]
    leaked += [p for p in published if p.startswith("_sources/") and "solutions" in p]
    assert not leaked, f"answers published in the HTML: {leaked[:5]}"
