"""Every chapter in a real browser: JupyterLab opened in Debian's Chromium, driven by Playwright.

What a learner does, checked end to end: JupyterLab starts from the course's environment, each chapter opens,
*Run All* runs every cell (quick mode) without an error, and each chapter's controls work as a learner uses them:

* every slider listed below is on the page with its label; moving it (arrow keys on the focused slider handle, as
  a keyboard user would) changes its readout and redraws its plot; a listed dropdown does the same when an
  option is chosen;
* chapter 05's bandit game plays to the end when its arm buttons are clicked, and then shows how RL² and
  Thompson sampling play the same game;
* chapter 07's self-test answers appear only after the learner has written five words and clicked the button (the
  worked answer renders as Markdown), and each quick check gives a verdict when an option is clicked, "Right."
  for exactly one option.

A widget whose callback breaks (say, a renamed argument) shows no error to nbval, which runs the cells headlessly;
here it fails with the chapter and the widget named.

Time: the chapters run at the same time, each in its own tab and kernel, so that the kernels' computing overlaps
(and the waiting for the browser with it); the whole test is bounded by one budget (400 s after a bounded
warm-up of a cold JupyterLab), and every wait inside it by its own limit as well. Each chapter prints how long its
*Run All* took and its slowest cells (JupyterLab records each cell's timing).

Coverage: every notebook in ``notebooks/`` must have an entry in ``CHAPTERS`` (a new chapter fails
``test_every_chapter_is_listed`` until it is added, with one line naming its widgets), and every entry must have
its notebook.

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
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("METARL_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

# Bounds, in seconds. Every wait below uses one of them, capped by what is left of the budget.
WARMUP_S = float(os.environ.get("METARL_BROWSER_WARMUP_S", 300))  # cold JupyterLab start, before the budget
BUDGET_S = float(os.environ.get("METARL_BROWSER_BUDGET_S", 400))  # everything after the warm-up: a hang guard,
# over twice the slowest time measured (144 to 180 s on 2-core machines; each run writes its figures to timings.txt)
# Chapters running at once (0: all of them). Each runs in its own kernel, one thread each.
PARALLEL = int(os.environ.get("METARL_BROWSER_PARALLEL", 0))
OPEN_S = 90       # a notebook opens and its kernel is idle
RUN_ALL_S = BUDGET_S  # Run All finishes, counted from when it started (the chapters run side by side)
REDRAW_S = 60     # a moved slider's readout changes and its plot is redrawn
REPLY_S = 20      # the kernel answers a click or a keystroke in a widget
UI_MS = 30_000    # any single Playwright action


@dataclass(frozen=True)
class Slider:
    """A slider whose plot redraws: moved with `presses` presses of `key` on its (first) handle."""
    label: str                 # the slider's description, as shown on the page
    presses: int = 3
    key: str = "ArrowRight"    # ArrowLeft for a slider that starts at its maximum


@dataclass(frozen=True)
class Dropdown:
    """A dropdown whose plot redraws when `option` (its text, as shown) is chosen."""
    label: str
    option: str


@dataclass(frozen=True)
class BanditGame:
    """Chapter 05's game: one button per arm ("arm 0", ...); after `pulls` clicks RL² and Thompson sampling play."""
    pulls: int = 10
    label: str = "bandit game"


@dataclass(frozen=True)
class SelfTests:
    """`count` self-test questions: the worked answer is shown only after `min_words` words and a click."""
    count: int
    min_words: int = 5
    label: str = "self-test"


@dataclass(frozen=True)
class QuickChecks:
    """`count` multiple-choice quick checks: a verdict for every option clicked, "Right." for exactly one."""
    count: int
    label: str = "quick check"


@dataclass(frozen=True)
class Chapter:
    name: str
    widgets: tuple = ()
    quick_s: int = 0       # its Run All in quick mode, roughly (seconds, in this test): the costliest start first


# One entry per chapter; a new chapter is one more line. In 02 the first "inner lr α" is the test-time adaptation
# plot; the second (in the retraining widget) would retrain for every move and is only checked for errors. In 03
# a move of "train goals" or "train tasks" meta-trains again, and in 04 every move recomputes the adaptation curves
# of two policies on ten goals, so those sliders move by one step.
CHAPTERS = [
    Chapter("00_start_here", (Slider("amplitude A"),), quick_s=15),
    Chapter("01_what_is_meta_learning", (Slider("fine-tune lr"), QuickChecks(5)), quick_s=40),
    Chapter("02_maml", (Slider("inner lr α"), QuickChecks(4)), quick_s=90),
    Chapter("03_task_distributions", (Slider("train goals", presses=1), Slider("train tasks", presses=1),
                                      Slider("adapt steps", presses=1), QuickChecks(4)), quick_s=70),
    Chapter("04_maml_rl_promp", (Slider("step size α", presses=1), Slider("trajectories", presses=1), QuickChecks(5)),
            quick_s=200),
    Chapter("05_rl2", (BanditGame(), QuickChecks(4)), quick_s=110),
    Chapter("06_training_and_evaluation", (Slider("held-out tasks", key="ArrowLeft"), Dropdown("confidence", "0.8"),
                                           QuickChecks(4)), quick_s=60),
    Chapter("07_summary", (SelfTests(3), QuickChecks(5)), quick_s=25),
    Chapter("08_task_inference", (Slider("exact: step"), Slider("VariBAD: step"), QuickChecks(3)), quick_s=60),
]
BY_NAME = {c.name: c for c in CHAPTERS}


def _present(chapter: Chapter) -> bool:
    return (NOTEBOOKS / f"{chapter.name}.ipynb").is_file()


ERROR_OUTPUTS_JS = r"""
() => {
  // Tracebacks shown anywhere in the notebook: cell outputs and widget outputs alike. JupyterLab renders error
  // outputs with the stderr mime type, like ordinary stderr, so the text tells an error from a progress bar.
  const pattern = /Traceback \(most recent call last\)|^\s*[A-Za-z_.]*(Error|Exception)\b.*$/m;
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const found = [];
  for (const el of document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
    const text = el.innerText || '';
    if (!pattern.test(text)) continue;
    const cell = el.closest('.jp-Cell');
    // The widget whose output shows the error: an interact, or a box holding the controls and their output.
    const box = el.closest('.widget-interact') || el.closest('.widget-vbox');
    const labels = box ? [...box.querySelectorAll('.widget-label, .widget-button')]
                           .map(l => l.innerText.trim()).filter(t => t) : [];
    found.push({cell: cells.indexOf(cell), widgets: labels, text: text.slice(-1500)});
  }
  return found;
}
"""

NOTEBOOK_STATE_JS = r"""
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return {state: 'no app'};
  const panel = [...app.shell.widgets('main')].find(w => w.context && w.context.path === path);
  if (!panel || !panel.content || !panel.content.model) return {state: 'no notebook'};
  const session = panel.sessionContext;
  const kernel = session.session && session.session.kernel;
  if (kernel && window.__replies === undefined) {
    // Counts the kernel's returns to idle: each click or keystroke a widget sends to the kernel ends with one.
    window.__replies = 0;
    session.statusChanged.connect((_, status) => { if (status === 'idle') window.__replies++; });
  }
  const errors = [], timing = [];
  let pending = 0, code = 0, first = null;
  const cells = panel.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    code++;
    if (c.executionCount === null || c.executionCount === undefined) { if (!pending) first = i; pending++; }
    for (const o of c.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push({cell: i, ename: o.ename, evalue: o.evalue});
    }
    const t = c.getMetadata('execution');
    if (t && t['iopub.execute_input'] && t['shell.execute_reply']) {
      timing.push([i, (Date.parse(t['shell.execute_reply']) - Date.parse(t['iopub.execute_input'])) / 1000]);
    }
  }
  return {state: kernel ? session.kernelDisplayStatus : 'no kernel', pending, code, first, errors, timing,
          replies: window.__replies || 0, dialog: !!document.querySelector('.jp-Dialog')};
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

SHUTDOWN_KERNEL_JS = r"""
async (path) => {
  // This chapter's kernel only: the other chapters' kernels are still running.
  const app = window.jupyterapp;
  if (!app || !app.shell) return 'no app';
  const panel = [...app.shell.widgets('main')].find(w => w.context && w.context.path === path);
  if (!panel) return 'no notebook';
  const timeout = new Promise(resolve => setTimeout(() => resolve('timed out'), 15000));
  return await Promise.race([panel.sessionContext.shutdown().then(() => 'done'), timeout]);
}
"""


def _log_timing(line: str) -> None:
    """Keep the timings in the test's report folder too (pytest-xdist does not show what passing tests print)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "timings.txt", "a", encoding="utf-8") as f:
        f.write(line + "\n")


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


# While one chapter's test waits, the other chapters advance (their notebooks open, their Run All starts): set by
# the `chapters` fixture.
_background = None


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
        if _background is not None:
            _background()
        time.sleep(interval)


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -r requirements.txt)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium chromium-driver)"
    return None


def test_every_chapter_is_listed():
    """Coverage cannot drop silently: each notebook has an entry, and each entry its notebook."""
    on_disk = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    unlisted = sorted(on_disk - set(BY_NAME))
    missing = sorted(c.name for c in CHAPTERS if c.name not in on_disk)
    problems = [f"notebooks/{name}.ipynb has no entry in CHAPTERS (tests/test_browser.py): add one naming its "
                f"widgets, e.g. Chapter({name!r}, (Slider('its slider label'),))" for name in unlisted]
    problems += [f"CHAPTERS lists {name!r} but notebooks/{name}.ipynb does not exist: fix the name, or remove the "
                 f"entry if the chapter was removed" for name in missing]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def browser_available():
    missing = _browser_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"browser test cannot run in CI: {missing}", pytrace=False)
        pytest.skip(f"browser test skipped: {missing}")


def _write_settings(settings: Path) -> None:
    """User settings for the test's JupyterLab: every cell rendered (no windowing), each cell's timing recorded,
    no autosave, no news pop-up."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                       "recordTiming": True},
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
    (ARTIFACTS / "timings.txt").unlink(missing_ok=True)  # this run's timings only
    root, settings, home = base / "notebooks", base / "settings", base / "home"
    for d in (root, settings, home):
        d.mkdir()
    for chapter in CHAPTERS:
        if _present(chapter):
            shutil.copy(NOTEBOOKS / f"{chapter.name}.ipynb", root)
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
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # every chapter's tab keeps running while another is in front
                  "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                  "--disable-backgrounding-occluded-windows"])
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


class ChapterRun:
    """One chapter in its own browser context (tab), JupyterLab workspace and kernel: opened, then Run All."""

    def __init__(self, chapter: Chapter, browser, lab: str):
        self.chapter, self.browser, self.lab = chapter, browser, lab
        self.path = f"{chapter.name}.ipynb"
        self.state = "queued"  # -> opening -> running -> done | failed
        self.failure: str | None = None
        self.context = self.page = None
        self.opened_at = self.run_at = self.run_s = None
        self.timing: list = []
        self.last: dict = {}

    def start(self):
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 1400})
        self.page = self.context.new_page()
        self.page.set_default_timeout(UI_MS)
        self.opened_at = time.monotonic()
        # A workspace of its own: JupyterLab would otherwise share one workspace between the open tabs.
        self.page.goto(f"{self.lab}/lab/workspaces/{_slug(self.chapter.name)}/tree/{self.path}?reset",
                       wait_until="commit", timeout=OPEN_S * 1000)
        self.state = "opening"

    def _fail(self, message: str):
        self.state, self.failure = "failed", message

    def step(self):
        """Advance without blocking: start Run All once the kernel is idle; notice when it has finished."""
        from playwright.sync_api import Error as PlaywrightError

        if self.state not in ("opening", "running"):
            return
        try:
            s = self.page.evaluate(NOTEBOOK_STATE_JS, self.path)
        except PlaywrightError:  # the page is still loading (its script context is being replaced)
            s = {"state": "loading"}
        self.last = s
        now = time.monotonic()
        if self.state == "opening":
            if s["state"] == "idle":
                self.page.evaluate(RUN_ALL_JS, self.path)
                self.state, self.run_at = "running", now
            elif now - self.opened_at > OPEN_S:
                self._fail(f"the notebook did not open with an idle kernel within {OPEN_S} s (last seen: {s!r})")
            return
        if s.get("errors"):
            e = s["errors"][0]
            problems = _problems_after_run_all(self.page, self.chapter)  # tracebacks' text, missing sliders
            self._fail(f"cell {e['cell']} raised {e['ename']}: {e['evalue']}" + "".join("\n" + p for p in problems))
        elif s["state"] in ("dead", "unknown", "no kernel", "no notebook"):
            self._fail(f"the kernel is {s['state']} while running all cells")
        elif s["state"] == "idle" and s["pending"] == 0:
            self.state, self.run_s, self.timing = "done", now - self.run_at, s.get("timing", [])
        elif now - self.run_at > RUN_ALL_S:
            self._fail(f"Run All did not finish within {RUN_ALL_S} s (quick mode; {s.get('pending')} of "
                       f"{s.get('code')} code cells not run yet)")

    def slowest(self, n: int = 3) -> str:
        return ", ".join(f"cell {i} {t:.0f} s" for i, t in sorted(self.timing, key=lambda x: -x[1])[:n])

    def close(self, passed: bool):
        if self.page is None:
            return
        try:
            if not passed and not self.page.is_closed():  # what the page showed when the test failed
                self.page.screenshot(path=str(ARTIFACTS / f"{self.chapter.name}-failed.png"))
        except Exception:  # a screenshot for the report must not hide the test's own failure
            pass
        try:
            if not self.page.is_closed():  # free the kernel's CPU and memory for the chapters still running
                self.page.evaluate(SHUTDOWN_KERNEL_JS, self.path)
        except Exception:  # cleaning up must not hide the test's own failure; the server's stop ends kernels anyway
            pass
        self.context.close()
        self.page = None
        self.state = "closed"


class Chapters:
    """All chapters at once (or `PARALLEL` at a time), the costliest started first."""

    def __init__(self, browser, lab: str, deadline: Deadline, selected: set[str]):
        self.deadline = deadline
        present = [c for c in CHAPTERS if _present(c) and c.name in selected]
        order = sorted(present, key=lambda c: -c.quick_s)
        self.runs = {c.name: ChapterRun(c, browser, lab) for c in order}

    def pump(self):
        """Advance every chapter a little; a chapter's browser error fails that chapter, not the one waiting."""
        for run in self.runs.values():
            busy = len([r for r in self.runs.values() if r.state in ("opening", "running")])
            if run.state == "queued" and (PARALLEL and busy >= PARALLEL or self.deadline.left(1) <= 0):
                continue
            try:
                run.start() if run.state == "queued" else run.step()
            except Exception as err:  # Playwright's errors: a page that crashed, a navigation that timed out
                run._fail(f"the browser failed while the chapter was {run.state}: {type(err).__name__}: {err}")

    def wait(self, name: str) -> ChapterRun:
        run = self.runs[name]
        try:
            _poll(f"chapter {name}: Run All to finish (quick mode)",
                  lambda: (self.pump() or run.state in ("done", "failed", "closed")),
                  self.deadline.left(BUDGET_S), 1.0)
        except WaitTimeout:
            s = run.last
            where = (f"{s.get('pending')} of {s.get('code')} code cells not run yet (cell {s.get('first')} "
                     f"running)"
                     if "pending" in s else f"the notebook was {run.state} ({s.get('state', 'not opened')})")
            run.timing = s.get("timing", [])
            run.close(passed=False)
            _fail(name, f"Run All did not finish within the test's budget ({self.deadline.seconds:.0f} s after "
                        f"the warm-up, shared by all chapters): {where}; slowest cells so far: {run.slowest()}")
        return run

    def close(self):
        for run in self.runs.values():
            run.close(passed=True)


@pytest.fixture(scope="module")
def deadline(browser):
    """The three-minute budget starts once JupyterLab and the browser are warm."""
    return Deadline(BUDGET_S)


@pytest.fixture(scope="module")
def chapters(lab, browser, deadline, request):
    """The chapters this session tests (all, or those chosen with -k), started as soon as the budget starts."""
    global _background
    selected = {item.callspec.params["name"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_chapter_in_browser"}
    runs = Chapters(browser, lab, deadline, selected)
    runs.pump()
    _background = runs.pump
    try:
        yield runs
    finally:
        _background = None
        runs.close()
        summary = (f"browser test: {deadline.seconds - deadline.left(deadline.seconds):.0f} s of its "
                   f"{deadline.seconds:.0f} s budget used after the warm-up")
        print("\n" + summary)
        _log_timing(summary)


def _fail(chapter: str, message: str, widget: str | None = None):
    where = f"chapter {chapter}" + (f", widget '{widget}'" if widget else "")
    failure = pytest.fail.Exception(f"{where}: {message}", pytrace=False)
    failure.__suppress_context__ = True  # the message says it all; no "during handling of WaitTimeout" chain
    raise failure


def _describe_error(err: dict) -> str:
    if err["widgets"]:
        named = ", ".join(f"'{w}'" for w in err["widgets"])
        return f"the widget in cell {err['cell']} (controls {named}) shows an error:\n{err['text']}"
    return f"an error is shown in the output of cell {err['cell']}:\n{err['text']}"


def _check_no_error_outputs(page, chapter: str, only_widget: str | None = None):
    for err in page.evaluate(ERROR_OUTPUTS_JS):
        if only_widget and only_widget not in err["widgets"]:
            continue
        _fail(chapter, _describe_error(err), only_widget)


def _labels(page, kind: str) -> list[str]:
    return [t.strip() for t in page.locator(f"{kind} .widget-label").all_inner_texts()]


def _problems_after_run_all(page, chapter: Chapter) -> list[str]:
    """Every listed slider and dropdown is on the page, and nothing shows an error."""
    problems = []
    for kind, cls in ((Slider, ".widget-slider"), (Dropdown, ".widget-dropdown")):
        shown = _labels(page, cls)
        problems += [f"widget '{w.label}': no {kind.__name__.lower()} with this label on the page "
                     f"(shown: {shown})" for w in chapter.widgets if isinstance(w, kind) and w.label not in shown]
    problems += [_describe_error(err) for err in page.evaluate(ERROR_OUTPUTS_JS)]
    return problems


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


def _replies(page, path: str) -> int:
    return page.evaluate(NOTEBOOK_STATE_JS, path)["replies"]


# Nearest enclosing element that also holds a widget output: an interact, or a box of controls and their output.
_WITH_OUTPUT = ("xpath=ancestor::div[.//div[contains(concat(' ', normalize-space(@class), ' '), "
                "' widget-output ')]][1]")


def _check_redraw(page, chapter: str, control, row, action, readout, path: str, deadline: Deadline):
    """Do `action` on a control in `row`; its readout must change and the plot of its output be redrawn."""
    label = control.label
    if row.count() == 0:
        _fail(chapter, f"no control with this label on the page (sliders: {_labels(page, '.widget-slider')}, "
                       f"dropdowns: {_labels(page, '.widget-dropdown')})", label)
    row = row.first
    row.scroll_into_view_if_needed()
    if not row.locator(".widget-label", has_text=label).is_visible():
        _fail(chapter, "its label is not visible", label)
    output = row.locator(_WITH_OUTPUT).locator(".widget-output").first

    def image_src():
        img = output.locator("img")
        return img.first.get_attribute("src") if img.count() else None

    _check_no_error_outputs(page, chapter, label)
    before_src = _poll(f"chapter {chapter}, widget '{label}': its plot to appear", image_src,
                       deadline.left(REDRAW_S), 0.25)
    before_readout = readout()
    output.screenshot(path=str(ARTIFACTS / f"{chapter}-{_slug(label)}-before.png"))
    what = action()

    seen = {"src": None, "since": 0.0}

    def changed():
        # The readout moved, the plot differs from the one before, the kernel is idle and the plot has stayed the
        # same for a second: with continuous updates every press redraws, and the last redraw is the one to see.
        _check_no_error_outputs(page, chapter, label)
        now_readout, now_src = readout(), image_src()
        idle = page.evaluate(NOTEBOOK_STATE_JS, path)["state"] == "idle"
        if now_src != seen["src"] or not idle:
            seen.update(src=now_src, since=time.monotonic())
            return False
        stable = time.monotonic() - seen["since"] >= 1.0
        return (stable and now_readout != before_readout and now_src and now_src != before_src
                and (now_readout, now_src))

    limit = deadline.left(REDRAW_S)
    try:
        after_readout, _ = _poll("readout and plot to change", changed, limit, 0.25)
    except WaitTimeout:
        now = readout()
        result = ("its readout did not change" if now == before_readout
                  else f"its readout changed ({before_readout} -> {now}) but the plot was not redrawn")
        _fail(chapter, f"after {what}, {result} within {limit:.0f} s", label)
    output.screenshot(path=str(ARTIFACTS / f"{chapter}-{_slug(label)}-after.png"))
    return f"{label}: {before_readout} -> {after_readout}"


def _move_slider(page, chapter: str, slider: Slider, path: str, deadline: Deadline):
    row = page.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=slider.label))
    handle = row.first.locator(".noUi-handle").first
    readout = row.first.locator(".widget-readout")

    def press():
        handle.focus()
        for _ in range(slider.presses):
            handle.press(slider.key)
        return f"{slider.presses} {slider.key} presses on the slider"

    return _check_redraw(page, chapter, slider, row, press, lambda: readout.first.inner_text().strip(), path,
                         deadline)


def _choose(page, chapter: str, dropdown: Dropdown, path: str, deadline: Deadline):
    row = page.locator(".widget-dropdown").filter(has=page.locator(".widget-label", has_text=dropdown.label))
    select = row.first.locator("select")

    def choose():
        select.select_option(label=dropdown.option)
        return f"choosing {dropdown.option!r}"

    return _check_redraw(page, chapter, dropdown, row, choose, lambda: select.input_value(), path, deadline)


def _play_bandit(page, chapter: str, game: BanditGame, path: str, deadline: Deadline):
    label = game.label
    buttons = page.locator(".widget-button").filter(has_text="arm ")
    if buttons.count() < 2:
        _fail(chapter, f"no arm buttons ('arm 0', 'arm 1', ...) on the page", label)
    box = buttons.first.locator(_WITH_OUTPUT)
    output = box.locator(".widget-output").first
    box.scroll_into_view_if_needed()
    for pull in range(1, game.pulls + 1):
        buttons.nth((pull - 1) % buttons.count()).click()
        try:
            _poll(f"pull {pull}", lambda: f"pull {pull}/{game.pulls}:" in output.inner_text(),
                  deadline.left(REPLY_S), 0.1)
        except WaitTimeout:
            _check_no_error_outputs(page, chapter)
            _fail(chapter, f"after click {pull} on an arm button, the game did not report pull {pull} within "
                           f"{REPLY_S} s; it shows: {output.inner_text()[-500:]!r}", label)
    try:
        _poll("the end of the game", lambda: "Thompson:" in output.inner_text(), deadline.left(REPLY_S), 0.2)
    except WaitTimeout:
        _check_no_error_outputs(page, chapter)
        _fail(chapter, f"after {game.pulls} pulls the game did not show how RL² and Thompson sampling play it; it "
                       f"shows: {output.inner_text()[-500:]!r}", label)
    text = output.inner_text()
    if "RL²:" not in text or not all(b.is_disabled() for b in buttons.all()):
        _fail(chapter, f"after {game.pulls} pulls: RL²'s game shown: {'RL²:' in text}, arm buttons disabled: "
                       f"{[b.is_disabled() for b in buttons.all()]}", label)
    box.screenshot(path=str(ARTIFACTS / f"{chapter}-bandit-game.png"))
    return f"{label}: {game.pulls} pulls played, " + text.strip().splitlines()[-3].strip()


def _self_tests(page, chapter: str, tests: SelfTests, path: str, deadline: Deadline):
    label = tests.label
    areas = page.locator(".widget-textarea textarea")
    if areas.count() != tests.count:
        _fail(chapter, f"{areas.count()} answer boxes on the page, expected {tests.count}", label)
    words = [f"word{i}" for i in range(tests.min_words)]
    for i in range(tests.count):
        what = f"{label} {i + 1}"
        box = areas.nth(i).locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
        button = box.locator(".widget-button")
        output = box.locator(".widget-output")
        box.scroll_into_view_if_needed()
        if not button.is_disabled():
            _fail(chapter, "the 'Show the worked answer' button is enabled before anything is written", what)
        areas.nth(i).click()
        areas.nth(i).press_sequentially(" ".join(words[:-1]))  # one word short: the status says what is missing
        try:
            _poll("the status to ask for one more word", lambda: "1 more word" in box.inner_text(),
                  deadline.left(REPLY_S), 0.1)
        except WaitTimeout:
            _fail(chapter, f"after typing {tests.min_words - 1} words the status does not ask for 1 more word; the "
                           f"widget shows: {box.inner_text()[-300:]!r}", what)
        if not button.is_disabled():
            _fail(chapter, f"the button is enabled after {tests.min_words - 1} words", what)
        areas.nth(i).press_sequentially(" " + words[-1])
        try:
            _poll("the button to be enabled", lambda: not button.is_disabled(), deadline.left(REPLY_S), 0.1)
        except WaitTimeout:
            _fail(chapter, f"the button is still disabled after {tests.min_words} words", what)
        button.click()
        try:
            rendered = _poll("the worked answer to render as Markdown",
                             lambda: output.locator(".jp-RenderedMarkdown").count()
                             and output.locator(".jp-RenderedMarkdown").first.inner_text().strip(),
                             deadline.left(REPLY_S), 0.1)
        except WaitTimeout:
            _check_no_error_outputs(page, chapter)
            _fail(chapter, f"after {tests.min_words} words and a click, no worked answer is shown; the widget "
                           f"shows: {box.inner_text()[-300:]!r}", what)
        if len(rendered) < 100:
            _fail(chapter, f"the worked answer shown is too short to be one: {rendered!r}", what)
        if i == 0:
            box.screenshot(path=str(ARTIFACTS / f"{chapter}-self-test.png"))
    return f"{label}: {tests.count} worked answers shown after {tests.min_words} words"


def _quick_checks(page, chapter: str, checks: QuickChecks, path: str, deadline: Deadline):
    label = checks.label
    groups = page.locator(".widget-radio-box")
    if groups.count() != checks.count:
        _fail(chapter, f"{groups.count()} multiple-choice questions on the page, expected {checks.count}", label)
    for i in range(checks.count):
        what = f"{label} {i + 1}"
        group = groups.nth(i)
        box = group.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
        feedback = box.locator(".widget-html").last
        box.scroll_into_view_if_needed()
        options = group.locator("label")
        verdicts = []
        for j in range(options.count()):
            replies = _replies(page, path)
            options.nth(j).click()
            # The kernel has answered this click (it went back to idle), and the feedback shows a verdict.
            try:
                text = _poll(f"a verdict for option {j + 1}",
                             lambda: _replies(page, path) > replies and feedback.inner_text().strip(),
                             deadline.left(REPLY_S), 0.1)
            except WaitTimeout:
                _check_no_error_outputs(page, chapter)
                _fail(chapter, f"clicking option {j + 1} shows no verdict within {REPLY_S} s", what)
            if not text.startswith(("Right.", "Not quite.")):
                _fail(chapter, f"option {j + 1}: the feedback is not a verdict: {text[:200]!r}", what)
            verdicts.append(text.split(".")[0])
        if verdicts.count("Right") != 1:
            _fail(chapter, f"exactly one option should be right; verdicts per option: {verdicts}", what)
        if i == 0:
            box.screenshot(path=str(ARTIFACTS / f"{chapter}-quick-check.png"))
    return f"{label}: {checks.count} questions, a verdict for every option, one right each"


CHECKS = {Slider: _move_slider, Dropdown: _choose, BanditGame: _play_bandit, SelfTests: _self_tests,
          QuickChecks: _quick_checks}


# Checked in the order the chapters finish (the quickest first), so that a chapter still computing does not hold
# up the checks of those already done; all of them started together.
@pytest.mark.parametrize("name", [c.name for c in sorted(CHAPTERS, key=lambda c: c.quick_s)])
def test_chapter_in_browser(name, request):
    chapter = BY_NAME[name]
    if not _present(chapter):
        pytest.fail(f"chapter {name}: notebooks/{name}.ipynb does not exist (see test_every_chapter_is_listed)",
                    pytrace=False)
    chapters = request.getfixturevalue("chapters")
    deadline = chapters.deadline
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = chapters.wait(name)
    passed = False
    try:
        _check_chapter(chapter, run, deadline)
        passed = True
    except pytest.fail.Exception as failure:
        if deadline.left(1) > 0:
            raise
        # A wait cut short because the budget is spent: say so, rather than blame the widget alone.
        _fail(name, f"the browser test's budget ({deadline.seconds:.0f} s after the warm-up, shared by all "
                    f"chapters) ran out while it was checked; then: {failure.msg}")
    finally:
        run.close(passed)


def _check_chapter(chapter: Chapter, run: ChapterRun, deadline: Deadline):
    name = chapter.name
    if run.state == "failed":
        _fail(name, run.failure)
    page = run.page
    problems = _problems_after_run_all(page, chapter)
    if problems:
        _fail(name, "\n".join(problems))
    page.screenshot(path=str(ARTIFACTS / f"{name}-after-run-all.png"), full_page=True)
    done = []
    for widget in chapter.widgets:
        started = time.monotonic()
        done.append(f"{CHECKS[type(widget)](page, name, widget, run.path, deadline)} "
                    f"({time.monotonic() - started:.0f} s)")
    _check_no_error_outputs(page, name)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    line = f"{name}: Run All {run.run_s:.0f} s (slowest: {run.slowest()}); {'; '.join(done)}"
    print(line)
    _log_timing(line)
