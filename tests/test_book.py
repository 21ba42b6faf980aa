"""The course's book (``make book``, ``tools/build_book.py``) read in a real browser: Debian's Chromium, driven by
Playwright, on the built site served from this machine.

What a reader gets, checked page by page (the start page, every chapter, every exercise, the glossary, the results):

* every image loads (``naturalWidth > 0``), and a chapter shows at least as many figures as its executed
  notebook holds, in its cells and in its widgets;
* no output shows an error: no traceback, no error output, no widget's text in place of the widget
  ("interactive(children=...");
* every widget left its first output and a line saying what the notebook's controls do; every quick check shows
  its options and a folded answer; chapter 07's self-test questions show their folded worked answers;
* the equations are there and typeset by the book's own MathJax: every ``$...$`` of the notebooks became math
  that MathJax rendered without an error;
* nothing is fetched from outside the book (it must read offline), and no page raises a script error;
* the "next" link leads from the start page through every chapter in order, then to the rest of the book.

Needs a built book: without ``_build/html`` the tests are skipped, except in CI (``CI=true``), where the book
is built first (``make test-book``) and a missing book fails. Needs Chromium at /usr/bin/chromium (another binary
with ``METARL_CHROMIUM``); without it the browser tests are skipped, except in CI. Screenshots go to
``test-artifacts/book/`` (git-ignored).

    make test-book                                       # the quick-mode book from `make test`, then this test
    .venv/bin/python -m pytest tests/test_book.py -n 0   # on whatever book _build/ holds
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
MANIFEST = BUILD / "book.json"
ARTIFACTS = ROOT / "test-artifacts" / "book"
CHROMIUM = os.environ.get("METARL_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
PAGE_MS = 30_000  # a page loads and its equations are typeset (a hang guard: pages take about a second)
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
DOLLAR_MATH = re.compile(r"\$[^$\s][^$]*\$")

PAGE_JS = r"""
() => {
  const main = document.querySelector('main') || document.body;
  const outputs = [...main.querySelectorAll('.cell_output')];
  const text = outputs.map(o => o.innerText).join('\n');
  const imgs = [...document.querySelectorAll('img')];
  return {
    title: document.title,
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    figures: outputs.reduce((n, o) => n + o.querySelectorAll('img').length, 0),
    // Error outputs, and stderr that reads as an error. A chapter may print a caught error on purpose
    // ("ValueError: inner_lr must be > 0"): on stdout that is a lesson, not a failure.
    errorOutputs: main.querySelectorAll('.output.traceback, .output.error').length,
    stderrErrors: [...main.querySelectorAll('.output.stderr')].map(o => o.innerText)
        .filter(t => /^\s*[A-Za-z_.]*(Error|Exception)\b/m.test(t)).map(t => t.slice(-300)),
    traceback: /Traceback \(most recent call last\)/.test(text),
    widgetText: /(interactive|VBox|HBox|Output)\(children=|\w+Slider\(value=/.test(text),
    widgetNotes: main.querySelectorAll('p.widget-note').length,
    progressBars: main.querySelectorAll('p.widget-progress progress').length,
    quickChecks: main.querySelectorAll('div.quick-check').length,
    foldedAnswers: main.querySelectorAll('div.quick-check details').length,
    workedAnswers: [...main.querySelectorAll('details > summary')]
        .filter(s => s.innerText.startsWith('Worked answer')).length,
    math: main.querySelectorAll('.math').length,
    typeset: main.querySelectorAll('.math mjx-container').length,
    mathErrors: main.querySelectorAll('mjx-merror').length,
    next: (document.querySelector('a.right-next') || {}).href || null,
  };
}
"""


# ---------------------------------------------------------------- what the book should hold

def _images(outputs: list[dict]) -> int:
    return sum(1 for out in outputs if any(mime in out.get("data", {}) for mime in IMAGE_TYPES))


def expected_figures(executed: Path) -> int:
    """Figures an executed chapter holds: in its cells' outputs and in its widgets' output areas."""
    nb = nbformat.read(executed, as_version=4)
    in_cells = sum(_images(cell.get("outputs", [])) for cell in nb.cells if cell.cell_type == "code")
    models = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}).values()
    return in_cells + sum(_images(m["state"].get("outputs", [])) for m in models if m["model_name"] == "OutputModel")


CONTROLS = re.compile(r"(Slider|Button|Dropdown|RadioButtons|Select|Checkbox|Text|Textarea)Model$")


def expected_widgets(executed: Path) -> dict[str, int]:
    """What an executed chapter's widgets should become: widgets with controls (each gets a line naming them),
    progress bars (each drawn as it ended) and quick checks (each shown by its own static version)."""
    nb = nbformat.read(executed, as_version=4)
    models = {k: m["state"] for k, m in nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}).items()}

    def names(model_id: str) -> list[str]:
        state = models.get(model_id, {})
        children = [c.removeprefix("IPY_MODEL_") for c in state.get("children", [])]
        return [state.get("_model_name", "")] + [n for c in children for n in names(c)]

    counts = {"controls": 0, "progress": 0, "quick checks": 0}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" not in data:
                continue
            inside = names(data["application/vnd.jupyter.widget-view+json"]["model_id"])
            if 'class="quick-check"' in data.get("text/html", ""):
                counts["quick checks"] += 1
            elif any(n.endswith("ProgressModel") for n in inside):
                counts["progress"] += 1
            elif any(CONTROLS.search(n) for n in inside):
                counts["controls"] += 1
    return counts


def has_math(source: Path) -> bool:
    """Whether a page's source (a notebook's Markdown cells, or a Markdown page) writes an equation."""
    if source.suffix == ".md":
        return bool(DOLLAR_MATH.search(source.read_text()))
    cells = nbformat.read(source, as_version=4).cells
    return any(DOLLAR_MATH.search(cell.source) for cell in cells if cell.cell_type == "markdown")


# ---------------------------------------------------------------- fixtures

def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"book test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"book test skipped: {reason}")


@pytest.fixture(scope="module")
def book() -> dict:
    """The manifest of the built book; skipped (failed in CI) when no book was built."""
    if not (HTML / "index.html").is_file() or not MANIFEST.is_file():
        _unavailable("no book in _build/html: build it with `make book` (full mode) or `make test-book`")
    manifest = json.loads(MANIFEST.read_text())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return manifest


@pytest.fixture(scope="module")
def site(book):
    """The built book served over HTTP on a free port of 127.0.0.1, as `python -m http.server` would."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(site):
    """Debian's Chromium, headless (never a browser downloaded by Playwright)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install -r requirements.txt)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium chromium-driver)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=60_000,
                              args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                    "--disable-background-networking", "--disable-component-update"])
        try:
            yield b
        finally:
            b.close()


class Reader:
    """One browser tab that records what a page fetched from outside the book and any script error."""

    def __init__(self, browser, site: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(PAGE_MS)
        self.outside: list[str] = []
        self.script_errors: list[str] = []
        self.page.route("**/*", functools.partial(self._route, urlparse(site).netloc))
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))

    def _route(self, host: str, route, request) -> None:
        if urlparse(request.url).netloc == host or request.url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(request.url)
            route.abort()

    def open(self, url: str) -> dict:
        """Load a page, wait for its images and for MathJax to finish, and read what it shows."""
        self.page.goto(url, wait_until="load")
        # MathJax typesets the page once it has started; its startup promise settles when that is done.
        self.page.evaluate("() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise"
                           " ? window.MathJax.startup.promise.then(() => true) : true")
        return self.page.evaluate(PAGE_JS)


@pytest.fixture(scope="module")
def reader(browser, site):
    r = Reader(browser, site)
    try:
        yield r
    finally:
        r.page.close()


def _pages(book: dict) -> list[tuple[str, str, Path]]:
    """(name, page path, source) of every page: the start page, chapters, exercises, glossary, results."""
    src = BUILD / "src"
    pages = [("index", "index.html", src / "index.md")]
    pages += [(c["name"], c["page"], ROOT / c["source"]) for c in book["chapters"]]
    pages += [(p.stem, p.relative_to(src).with_suffix(".html").as_posix(), p)
              for p in sorted((src / "exercises").glob("*/*.ipynb"))]
    pages += [("glossary", "notebooks/glossary.html", src / "notebooks" / "glossary.md"),
              ("results", "results.html", src / "results.md")]
    return pages


# ---------------------------------------------------------------- tests

def test_the_book_has_every_chapter_and_exercise(book):
    """A chapter or exercise added to the course appears in the book (and in book.json, which this test reads)."""
    on_disk = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [c["name"] for c in book["chapters"]] == on_disk, "rebuild the book: its chapters differ from notebooks/"
    for name, page, source in _pages(book):
        assert (HTML / page).is_file(), f"{name}: {page} is missing from the book"
    for exercise in (ROOT / "exercises").glob("*/*.ipynb"):
        assert (HTML / exercise.relative_to(ROOT).with_suffix(".html")).is_file(), f"{exercise.name} is not in the book"


def test_every_page_shows_its_figures_answers_and_equations(book, site, reader):
    problems = []
    for name, page, source in _pages(book):
        start = time.perf_counter()
        seen = reader.open(f"{site}/{page}")
        reader.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=name == "index")
        where = f"{name} ({page})"
        if seen["brokenImages"]:
            problems.append(f"{where}: images that do not load: {seen['brokenImages'][:5]}")
        if seen["errorOutputs"] or seen["traceback"] or seen["stderrErrors"]:
            problems.append(f"{where}: an output shows an error ({seen['errorOutputs']} error outputs, "
                            f"traceback: {seen['traceback']}, on stderr: {seen['stderrErrors'][:2]})")
        if seen["widgetText"]:
            problems.append(f"{where}: a widget's text representation is shown instead of its output")
        if has_math(source):
            if not seen["math"] or seen["typeset"] < seen["math"] or seen["mathErrors"]:
                problems.append(f"{where}: equations: {seen['math']} in the page, {seen['typeset']} typeset, "
                                f"{seen['mathErrors']} MathJax errors")
        chapter = next((c for c in book["chapters"] if c["name"] == name), None)
        if chapter:
            executed = ROOT / chapter["executed"]
            figures = expected_figures(executed)
            widgets = expected_widgets(executed)
            if seen["figures"] < max(figures, 1 if figures else 0):
                problems.append(f"{where}: {seen['figures']} figures shown, its executed notebook has {figures}")
            if seen["widgetNotes"] != widgets["controls"] or seen["progressBars"] != widgets["progress"]:
                problems.append(f"{where}: {widgets['controls']} widgets with controls, {seen['widgetNotes']} lines "
                                f"naming them; {widgets['progress']} progress bars, {seen['progressBars']} shown")
            quick = widgets["quick checks"]
            if seen["quickChecks"] != quick or seen["foldedAnswers"] != quick:
                problems.append(f"{where}: {quick} quick checks, {seen['quickChecks']} shown with "
                                f"{seen['foldedAnswers']} folded answers")
        if name == "07_summary" and seen["workedAnswers"] != 3:
            problems.append(f"{where}: {seen['workedAnswers']} worked answers of the 3 self-test questions")
        print(f"{name:<28} {time.perf_counter() - start:5.1f} s  {seen['figures']:3d} figures  "
              f"{seen['typeset']:4d} equations  {seen['widgetNotes']:2d} widget notes  {seen['quickChecks']} checks")
    if reader.outside:
        problems.append(f"the book fetched from outside itself (it must read offline): "
                        f"{sorted(set(reader.outside))[:5]}")
    if reader.script_errors:
        problems.append(f"script errors: {reader.script_errors[:3]}")
    assert not problems, "\n".join(problems)


def test_next_leads_from_the_start_page_through_every_chapter_in_order(book, site, reader):
    chapters = [c["page"] for c in book["chapters"]]
    reader.open(f"{site}/index.html")
    visited = []
    for _ in range(len(_pages(book)) + 1):  # bounded: one click per page at most
        link = reader.page.locator("a.right-next")
        if link.count() == 0:
            break
        link.first.click()
        reader.page.wait_for_load_state("load")
        visited.append(urlparse(reader.page.url).path.lstrip("/"))
    assert visited[:len(chapters)] == chapters, f"after the start page, 'next' visits {visited[:len(chapters)]}"
    assert set(_page for _, _page, _ in _pages(book)) - {"index.html"} <= set(visited), \
        f"pages 'next' never reaches: {sorted(set(p for _, p, _ in _pages(book)) - set(visited) - {'index.html'})}"
    reader.page.screenshot(path=str(ARTIFACTS / "last-page.png"))
