"""The chapters in a real browser: JupyterLab opened in Debian's Chromium, driven by Playwright.

What a learner does, checked end to end: JupyterLab starts from the course's environment, a chapter opens,
*Run All* runs every cell (quick mode) without an error, and each learning-rate slider is on the page with its
label; moving it (arrow keys on the focused slider handle, as a keyboard user would) changes its readout and
redraws its plot. A widget whose callback breaks (say, a renamed argument) shows no error to nbval, which runs
the cells headlessly; here it fails with the chapter and the widget named.

Chapters 00, 01 and 02 (the chapters with sliders and quick notebooks) keep the test within its three-minute
budget; chapter 04 alone needs about 90 s of compute and is left to nbval.

Needs Chromium at /usr/bin/chromium (Debian's ``chromium`` package; ``.ci/run`` installs it) and the pinned
``playwright`` package; Playwright never downloads a browser here. Without Chromium the test is skipped, except
in CI (``CI=true``), where it fails. Screenshots go to ``test-artifacts/browser/`` (git-ignored).

    .venv/bin/python -m pytest tests/test_browser.py -p no:xdist
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("METARL_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

# Bounds, in seconds. Every wait below uses one of them, capped by what is left of the budget.
WARMUP_S = float(os.environ.get("METARL_BROWSER_WARMUP_S", 300))  # cold JupyterLab start, before the budget
BUDGET_S = float(os.environ.get("METARL_BROWSER_BUDGET_S", 180))  # everything after the warm-up
OPEN_S = 90       # a notebook opens and its kernel is idle
RUN_ALL_S = 150   # Run All finishes
REDRAW_S = 60     # a moved slider's readout changes and its plot is redrawn
UI_MS = 30_000    # any single Playwright action


@dataclass(frozen=True)
class Slider:
    label: str        # the slider's description, as shown on the page
    presses: int = 3  # ArrowRight presses on its handle


# The sliders moved in each chapter. In 02 the first "inner lr α" is the test-time adaptation plot; the second
# (in the retraining widget) would retrain for every move and is only checked for errors.
CHAPTERS = {
    "00_start_here": [Slider("amplitude A")],
    "01_what_is_meta_learning": [Slider("fine-tune lr")],
    "02_maml": [Slider("inner lr α")],
}

ERROR_OUTPUTS_JS = r"""
() => {
  // Tracebacks shown anywhere in the notebook: cell outputs and widget (interact) outputs alike. JupyterLab renders
  // error outputs with the stderr mime type, like ordinary stderr, so the text tells an error from a progress bar.
  const pattern = /Traceback \(most recent call last\)|^\s*[A-Za-z_.]*(Error|Exception)\b.*$/m;
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const found = [];
  for (const el of document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
    const text = el.innerText || '';
    if (!pattern.test(text)) continue;
    const cell = el.closest('.jp-Cell');
    const interact = el.closest('.widget-interact');
    const labels = interact ? [...interact.querySelectorAll('.widget-label')].map(l => l.innerText.trim()) : [];
    found.push({cell: cells.indexOf(cell), widgets: labels, text: text.slice(-1500)});
  }
  return found;
}
"""

NOTEBOOK_STATE_JS = r"""
(path) => {
  const app = window.jupyterapp;
  if (!app) return {state: 'no app'};
  const panel = [...app.shell.widgets('main')].find(w => w.context && w.context.path === path);
  if (!panel || !panel.content || !panel.content.model) return {state: 'no notebook'};
  const session = panel.sessionContext;
  const kernel = session.session && session.session.kernel;
  const errors = [];
  let pending = 0, code = 0;
  const cells = panel.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    code++;
    if (c.executionCount === null || c.executionCount === undefined) pending++;
    for (const o of c.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push({cell: i, ename: o.ename, evalue: o.evalue});
    }
  }
  return {state: kernel ? session.kernelDisplayStatus : 'no kernel', pending, code, errors,
          dialog: !!document.querySelector('.jp-Dialog')};
}
"""

RUN_ALL_JS = r"""
(path) => {
  const app = window.jupyterapp;
  const panel = [...app.shell.widgets('main')].find(w => w.context && w.context.path === path);
  app.shell.activateById(panel.id);
  // Not awaited: the command's promise settles only when every cell has run; the test polls, with a bound, instead.
  window.__runAll = 'running';
  app.commands.execute('notebook:run-all-cells').then(() => { window.__runAll = 'done'; },
                                                      e => { window.__runAll = 'failed: ' + e; });
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deadline:
    """The test's time budget: every wait is bounded by its own limit and by what is left of the budget."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self, limit: float) -> float:
        return max(0.0, min(limit, self.end - time.monotonic()))


class WaitTimeout(pytest.fail.Exception):
    """A bounded wait ran out (reported as a test failure)."""


def _poll(what: str, check, timeout: float, interval: float = 0.5):
    """Call check() until it returns something true, at most `timeout` seconds; fail with `what` and the last value."""
    end = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= end:
            raise WaitTimeout(f"timed out after {timeout:.0f} s: {what} (last seen: {last!r})", pytrace=False)
        time.sleep(interval)


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -r requirements.txt)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser_available():
    missing = _browser_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"browser test cannot run in CI: {missing}", pytrace=False)
        pytest.skip(f"browser test skipped: {missing}")


def _write_settings(settings: Path) -> None:
    """User settings for the test's JupyterLab: every cell rendered (no windowing), no autosave, no news pop-up."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    for name, value in files.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(browser_available, tmp_path_factory):
    """JupyterLab from this environment on 127.0.0.1, no token, quick mode, serving copies of the chapters.

    Copies, so that nothing the browser does can write outputs into the committed notebooks. Stopped (its whole
    process group, kernels included) at the end, whatever happens."""
    base = tmp_path_factory.mktemp("lab")
    root, settings, home = base / "notebooks", base / "settings", base / "home"
    for d in (root, settings, home):
        d.mkdir()
    for chapter in CHAPTERS:
        shutil.copy(ROOT / "notebooks" / f"{chapter}.ipynb", root)
    _write_settings(settings)
    port = _free_port()
    env = dict(os.environ, METARL_QUICK="1", METARL_DEVICE="cpu",
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), IPYTHONDIR=str(home / "ipython"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.terminals_enabled=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = base / "jupyterlab.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        def ready():
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}",
                            pytrace=False)
            try:
                # Warm-up: the API, then the page (templates, extension list) answer before the budget starts.
                with urllib.request.urlopen(f"{url}/api/status", timeout=10) as r:
                    if r.status != 200:
                        return False
                with urllib.request.urlopen(f"{url}/lab", timeout=60) as r:
                    return r.status == 200
            except OSError:
                return False

        _poll("JupyterLab to start (cold start warm-up); its log: " + str(log_path), ready, WARMUP_S, 1.0)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser(lab):
    """Debian's Chromium, headless; a fresh profile (Playwright makes a temporary one for each launch)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, timeout=60_000,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            # Warm the browser side too: JupyterLab's scripts load and the application starts once before any
            # chapter is timed.
            page = b.new_page()
            page.set_default_timeout(UI_MS)
            page.goto(f"{lab}/lab", wait_until="domcontentloaded", timeout=WARMUP_S * 1000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=WARMUP_S * 1000)
            page.close()
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def deadline(browser):
    """The three-minute budget starts once JupyterLab and the browser are warm."""
    return Deadline(BUDGET_S)


def _fail(chapter: str, message: str, widget: str | None = None):
    where = f"chapter {chapter}" + (f", widget '{widget}'" if widget else "")
    pytest.fail(f"{where}: {message}", pytrace=False)


def _describe_error(err: dict) -> str:
    if err["widgets"]:
        sliders = ", ".join(f"'{w}'" for w in err["widgets"])
        return f"the interact widget in cell {err['cell']} (sliders {sliders}) shows an error:\n{err['text']}"
    return f"an error is shown in the output of cell {err['cell']}:\n{err['text']}"


def _check_no_error_outputs(page, chapter: str, only_widget: str | None = None):
    for err in page.evaluate(ERROR_OUTPUTS_JS):
        if only_widget and only_widget not in err["widgets"]:
            continue
        _fail(chapter, _describe_error(err), only_widget)


def _slider_labels(page) -> list[str]:
    return [t.strip() for t in page.locator(".widget-slider .widget-label").all_inner_texts()]


def _check_after_run_all(page, chapter: str):
    """Every expected slider is on the page and nothing shows an error; both reported at once when both fail."""
    shown = _slider_labels(page)
    missing = [s.label for s in CHAPTERS[chapter] if s.label not in shown]
    problems = [f"widget '{label}': no slider with this label on the page (sliders shown: {shown})"
                for label in missing]
    problems += [_describe_error(err) for err in page.evaluate(ERROR_OUTPUTS_JS)]
    if problems:
        _fail(chapter, "\n".join(problems))


def _move_slider(page, chapter: str, slider: Slider, shots: Path, deadline: Deadline):
    label = slider.label
    row = page.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=label)).first
    if row.count() == 0:
        _fail(chapter, f"no slider with this label on the page (sliders shown: {_slider_labels(page)})", label)
    row.scroll_into_view_if_needed()
    if not row.locator(".widget-label", has_text=label).is_visible():
        _fail(chapter, "the slider's label is not visible", label)
    interact = page.locator(".widget-interact").filter(has=row).first
    output = interact.locator(".widget-output").first
    readout = row.locator(".widget-readout")
    handle = row.locator(".noUi-handle").first

    def image_src():
        img = output.locator("img")
        return img.first.get_attribute("src") if img.count() else None

    _check_no_error_outputs(page, chapter, label)
    before_src = _poll(f"chapter {chapter}, widget '{label}': its plot to appear", image_src,
                       deadline.left(REDRAW_S), 0.25)
    before_readout = readout.inner_text().strip()
    output.screenshot(path=str(shots / f"{chapter}-{_slug(label)}-before.png"))

    handle.focus()
    for _ in range(slider.presses):
        handle.press("ArrowRight")

    seen = {"src": None, "since": 0.0}

    def changed():
        # The readout moved, the plot differs from the one before, the kernel is idle and the plot has stayed the
        # same for a second: with continuous updates every press redraws, and the last redraw is the one to see.
        _check_no_error_outputs(page, chapter, label)
        now_readout, now_src = readout.inner_text().strip(), image_src()
        idle = page.evaluate(NOTEBOOK_STATE_JS, f"{chapter}.ipynb")["state"] == "idle"
        if now_src != seen["src"] or not idle:
            seen.update(src=now_src, since=time.monotonic())
            return False
        stable = time.monotonic() - seen["since"] >= 1.0
        return (stable and now_readout != before_readout and now_src and now_src != before_src
                and (now_readout, now_src))

    try:
        after_readout, _ = _poll("readout and plot to change", changed, deadline.left(REDRAW_S), 0.25)
    except WaitTimeout:
        now = readout.inner_text().strip()
        what = ("its readout did not change" if now == before_readout
                else f"its readout changed ({before_readout} -> {now}) but the plot was not redrawn")
        _fail(chapter, f"after {slider.presses} ArrowRight presses on the slider, {what} "
                       f"within {REDRAW_S} s", label)
    output.screenshot(path=str(shots / f"{chapter}-{_slug(label)}-after.png"))
    return before_readout, after_readout


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_chapter_in_browser(chapter, lab, browser, deadline):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = f"{chapter}.ipynb"
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    started = time.monotonic()
    passed = False
    try:
        page.goto(f"{lab}/lab/tree/{path}?reset", wait_until="domcontentloaded",
                  timeout=max(1.0, deadline.left(OPEN_S)) * 1000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell",
                               timeout=max(1.0, deadline.left(OPEN_S)) * 1000)
        _poll(f"chapter {chapter}: the notebook to open with an idle kernel",
              lambda: (s := page.evaluate(NOTEBOOK_STATE_JS, path))["state"] == "idle" and s,
              deadline.left(OPEN_S))

        page.evaluate(RUN_ALL_JS, path)

        def finished():
            s = page.evaluate(NOTEBOOK_STATE_JS, path)
            if s.get("errors"):
                e = s["errors"][0]
                _check_after_run_all(page, chapter)  # the traceback's text and missing sliders, when on the page
                _fail(chapter, f"cell {e['cell']} raised {e['ename']}: {e['evalue']}")
            if s["state"] in ("dead", "unknown", "no kernel", "no notebook"):
                _fail(chapter, f"the kernel is {s['state']} while running all cells")
            return s["state"] == "idle" and s["pending"] == 0 and s

        _poll(f"chapter {chapter}: Run All to finish (quick mode)", finished, deadline.left(RUN_ALL_S), 1.0)
        _check_after_run_all(page, chapter)
        page.screenshot(path=str(ARTIFACTS / f"{chapter}-after-run-all.png"))

        moved = [(s.label, *_move_slider(page, chapter, s, ARTIFACTS, deadline)) for s in CHAPTERS[chapter]]
        _check_no_error_outputs(page, chapter)
        page.screenshot(path=str(ARTIFACTS / f"{chapter}.png"))
        print(f"{chapter}: ran all cells and moved {moved} in {time.monotonic() - started:.0f} s")
        passed = True
    finally:
        try:
            if not passed and not page.is_closed():  # what the page showed when the test failed
                page.screenshot(path=str(ARTIFACTS / f"{chapter}-failed.png"))
        except Exception:  # a screenshot for the report must not hide the test's own failure
            pass
        _shutdown_kernels(page)
        context.close()


SHUTDOWN_KERNELS_JS = r"""
async () => {
  const app = window.jupyterapp;
  if (!app) return 'no app';
  const timeout = new Promise(resolve => setTimeout(() => resolve('timed out'), 15000));
  return await Promise.race([app.serviceManager.sessions.shutdownAll().then(() => 'done'), timeout]);
}
"""


def _shutdown_kernels(page):
    """Free the CPU and memory the chapter's kernel holds before the next chapter runs (bounded: 15 s)."""
    try:
        if not page.is_closed():
            page.evaluate(SHUTDOWN_KERNELS_JS)
    except Exception:  # cleaning up must not hide the test's own failure; the server's stop ends kernels anyway
        pass
