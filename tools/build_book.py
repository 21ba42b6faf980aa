"""Build the course as a static book (Sphinx, myst-nb, sphinx-book-theme) that can be read without running it.

    .venv/bin/python tools/build_book.py                        # full mode (what `make book` runs)
    .venv/bin/python tools/build_book.py --quick                # quick mode (METARL_QUICK=1)
    .venv/bin/python tools/build_book.py --quick --no-execute   # only chapters `make test` already executed (CI)

The book holds a start page (``book/index.md``: the course, its prerequisites and its chapters with their running
times, the last two taken from ``notebooks/00_start_here.ipynb``), every chapter executed, the students' version of
every exercise (rendered, never executed, no solutions), the glossary and the README's results
(``book/results.md`` takes the section "Training the experiments" from README.md at build time).

Execution cache: a chapter runs again only when its cells, the package (``metarl_course/``, its shipped
checkpoints included) or the mode changed. An executed chapter is kept in ``_build/executed/<mode>/`` with the key
it was run under; ``make test`` writes the same files in quick mode (``conftest.py``) while nbval executes the
chapters, so the quick-mode book needs no second execution. Chapters run in ``notebooks/`` (they read relative
paths), ``--jobs`` of them side by side, each in a fresh kernel, like ``tools/run_chapters.py``.

Widgets: what a slider or a button shows lives in the notebook's widget state, not in the cell's outputs. Each
widget is replaced by what it showed first (its figures, text and question), followed by a line that says which
control the notebook offers; a widget that brings its own static version (a quick check) is shown by that.

A failing cell, in the chapter or inside one of its widgets, stops the build with the chapter, the cell's number
(counted from 0 over all cells, as ``tools/run_chapters.py`` counts) and its first line. Sphinx runs with
warnings as errors. ``_build/`` holds ``executed/``, ``src/`` (the generated Sphinx sources), ``doctrees/``,
``html/`` (the site) and ``book.json`` (what was built, read by ``tests/test_book.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_chapters import cell_label, execute  # noqa: E402  (the one way to run a chapter and name a cell)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "metarl_course"
BOOK = ROOT / "book"
BUILD = ROOT / "_build"
SRC, HTML_DIR, DOCTREES = BUILD / "src", BUILD / "html", BUILD / "doctrees"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
STATIC_FALLBACKS = ("text/html", "text/markdown")  # a widget's own static version, when it brings one
TEMPLATE_FIELD = re.compile(r"\{\{\s*(readme|notebook|pages|book)\s*:\s*([^}]*?)\s*\}\}")
MODE_WORDS = {"full": "full mode, as a learner runs them",
              "quick": "quick mode, the tests' smaller budgets: numbers from live training differ from a "
                       "learner's full-mode run"}


class BookError(Exception):
    """Something the book cannot be built with; the message says where."""


# ---------------------------------------------------------------- the execution cache

def chapters() -> list[Path]:
    """The chapter notebooks, in order: ``notebooks/NN_*.ipynb``."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def exercises() -> list[Path]:
    """The students' version of each exercise: ``exercises/*/*.ipynb``."""
    return sorted((ROOT / "exercises").glob("*/*.ipynb"))


def mode_name(quick: bool) -> str:
    return "quick" if quick else "full"


def package_digest() -> str:
    """A hash of every file of the package (code and shipped checkpoints), caches excluded."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def notebook_key(nb: nbformat.NotebookNode, mode: str, package: str | None = None) -> str:
    """What an execution depends on: the cells' sources, types and tags (e.g. remove-input), the package and the
    mode."""
    cells = [[cell.cell_type, cell.source, cell.get("metadata", {}).get("tags", [])] for cell in nb.cells]
    text = json.dumps({"cells": cells, "package": package or package_digest(), "mode": mode}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def executed_path(name: str, mode: str) -> Path:
    return BUILD / "executed" / mode / f"{name}.ipynb"


def write_executed(nb: nbformat.NotebookNode, name: str, mode: str, key: str, seconds: float) -> Path:
    """Store an executed chapter with the key it was run under (written whole, then renamed)."""
    nb.metadata["metarl_book"] = {"key": key, "mode": mode, "seconds": round(seconds, 1)}
    path = executed_path(name, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial{os.getpid()}")
    nbformat.write(nb, partial)
    partial.replace(path)
    return path


def cached(path: Path, mode: str, package: str) -> nbformat.NotebookNode | None:
    """The executed chapter if one was stored for this very chapter, package and mode, else None."""
    stored = executed_path(path.stem, mode)
    if not stored.is_file():
        return None
    nb = nbformat.read(stored, as_version=4)
    wanted = notebook_key(nbformat.read(path, as_version=4), mode, package)
    return nb if nb.metadata.get("metarl_book", {}).get("key") == wanted else None


def execute_chapter(path: Path, mode: str, package: str, timeout: int) -> tuple[str, float, str]:
    """Run one chapter in a fresh kernel in ``notebooks/`` and store it; ``(name, seconds, problem)``, problem
    empty if it passed."""
    os.environ["METARL_QUICK"] = "1" if mode == "quick" else "0"
    os.environ.setdefault("METARL_DEVICE", "cpu")
    key = notebook_key(nbformat.read(path, as_version=4), mode, package)
    nb, seconds, problem = execute(path, timeout)
    if not problem:
        write_executed(nb, path.stem, mode, key, seconds)
    return path.stem, seconds, problem


def execute_changed(paths: list[Path], mode: str, jobs: int, timeout: int, may_execute: bool) -> None:
    """Execute the chapters whose stored execution is missing or stale; raise BookError naming each failure."""
    package = package_digest()
    stale = [p for p in paths if cached(p, mode, package) is None]
    for path in paths:
        if path not in stale:
            print(f"  {path.stem}: unchanged, executed notebook reused", flush=True)
    if stale and not may_execute:
        raise BookError(f"no executed notebook matches the current sources for {', '.join(p.stem for p in stale)} "
                        f"in {mode} mode (--no-execute): run `make test` first (it stores them in "
                        f"{executed_path('NAME', mode).parent.relative_to(ROOT)}/), or drop --no-execute")
    problems = []
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(stale) or 1))) as pool:
        futures = [pool.submit(execute_chapter, path, mode, package, timeout) for path in stale]
        for future in futures:
            name, seconds, problem = future.result()
            print(f"  {name}: {'FAILED, ' + problem if problem else 'executed'} in {seconds:.0f} s", flush=True)
            if problem:
                problems.append(f"{name}, {problem}")
    if problems:
        raise BookError("a chapter failed, the book was not built:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------- widgets to static outputs

def widget_models(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """model id -> the model's state, from the notebook's stored widget state."""
    stored = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return {model_id: entry.get("state", {}) for model_id, entry in stored.items()}


def child_ids(state: dict) -> list[str]:
    return [c.removeprefix("IPY_MODEL_") for c in state.get("children", []) if isinstance(c, str)]


def readout(state: dict) -> str:
    """A slider's value as its readout shows it ("0.50", "0.20 to 0.50", "wide")."""
    if state.get("_options_labels"):  # a selection slider
        return str(state["_options_labels"][state.get("index", 0)])
    values = state.get("value")
    values = values if isinstance(values, list) else [values]
    try:
        shown = [format(v, state.get("readout_format", "")) for v in values]
    except (TypeError, ValueError):  # a format Python does not read (the widgets use d3's)
        shown = [str(v) for v in values]
    return " to ".join(shown)


def control_phrase(state: dict) -> tuple[str, str] | None:
    """What a learner can do with one control, as (verb, object): ("move the slider", "<b>lr</b> (here 0.01)")."""
    name, label = state.get("_model_name", ""), html.escape(str(state.get("description", "")).strip())
    if name.endswith("SliderModel"):
        return "move the slider", f"<b>{label}</b> (here {html.escape(readout(state))})"
    if name in ("DropdownModel", "RadioButtonsModel", "ToggleButtonsModel", "SelectModel"):
        labels, index = state.get("_options_labels", []), state.get("index")
        shown = f" (here {html.escape(str(labels[index]))})" if isinstance(index, int) and index < len(labels) else ""
        return "choose", f"<b>{label or 'an option'}</b>{shown}"
    if name in ("CheckboxModel", "ToggleButtonModel"):
        return "switch", f"<b>{label}</b>"
    if name == "ButtonModel":
        return "press", f"<b>{label or 'the button'}</b>"
    if name in ("TextModel", "TextareaModel", "IntTextModel", "FloatTextModel"):
        return "write in the box", ""
    return None


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def progress_bar(states: list[dict]) -> dict:
    """A progress bar (tqdm's in a notebook: text, bar, text) as a static bar with its label and final count."""
    bar = next(s for s in states if s.get("_model_name", "").endswith("ProgressModel"))
    label = next((s.get("value", "") for s in states if s.get("_model_name") == "HTMLModel"), "")
    label = re.sub(r"[\s\u2007]*\d+%\s*$", "", html.unescape(re.sub(r"<[^>]+>", "", label)))
    value, top = bar.get("value", 0), bar.get("max", 100)
    text = f'{html.escape(label.strip())} <progress value="{value}" max="{top}"></progress> {value:g}/{top:g}'
    return nbformat.v4.new_output("display_data", data={"text/html": f'<p class="widget-progress">{text}</p>'})


def expand_widget(model_id: str, models: dict[str, dict], where: str, phrases: list[tuple]) -> list[dict]:
    """The outputs one widget showed (recursing into boxes and output areas); its controls go into ``phrases``."""
    if model_id not in models:
        raise BookError(f"{where}: the widget {model_id} is displayed but has no stored state")
    state = models[model_id]
    name = state.get("_model_name", "")
    if name == "OutputModel":
        return static_outputs(state.get("outputs", []), models, where)
    if state.get("children") is not None:
        children = child_ids(state)
        if any(models.get(c, {}).get("_model_name", "").endswith("ProgressModel") for c in children):
            return [progress_bar([models[c] for c in children if c in models])]
        return [out for child in children for out in expand_widget(child, models, where, phrases)]
    if name in ("HTMLModel", "HTMLMathModel") and state.get("value", "").strip():
        return [nbformat.v4.new_output("display_data", data={"text/html": state["value"]})]
    phrase = control_phrase(state)
    if phrase and phrase not in phrases:
        phrases.append(phrase)
    return []


def widget_note(phrases: list[tuple[str, str]], shown: list[dict]) -> dict:
    """The line under a widget's static outputs: what its controls do in the notebook ("In the notebook you can
    move the sliders <b>A</b> (here 2.00) and <b>φ</b> (here 0.50); above is the figure it draws first.")."""
    by_verb: dict[str, list[str]] = {}
    for verb, what in phrases:
        by_verb.setdefault(verb, []).append(what)
    actions = []
    for verb, things in by_verb.items():
        if verb == "press" and len(things) > 3:  # a row of buttons (the bandit game's arms)
            actions.append(f"press the buttons ({', '.join(things[:3])}, ...)")
        elif verb == "move the slider" and len(things) > 1:
            actions.append(f"move the sliders {_and(things)}")
        else:
            actions.append(f"{verb} {_and(things)}".strip())
    drawn = any(mime.startswith("image/") for out in shown for mime in out.get("data", {}))
    tail = "; above is the figure it draws first" if drawn else ""
    note = f'<p class="widget-note">In the notebook you can {"; ".join(actions)}{tail}.</p>'
    return nbformat.v4.new_output("display_data", data={"text/html": note})


def static_outputs(outputs: list[dict], models: dict[str, dict], where: str) -> list[dict]:
    """The outputs with every widget replaced by what it showed first and a note; error outputs raise BookError."""
    result = []
    for out in outputs:
        if out.get("output_type") == "error":
            raise BookError(f"{where} shows an error: {out.get('ename')}: {str(out.get('evalue'))[:200]}")
        data = out.get("data", {})
        if WIDGET_VIEW not in data:
            result.append(out)
            continue
        fallback = {mime: data[mime] for mime in STATIC_FALLBACKS if mime in data}
        if fallback:
            result.append(nbformat.v4.new_output("display_data", data=fallback))
            continue
        phrases: list[tuple[str, str]] = []
        shown = expand_widget(data[WIDGET_VIEW]["model_id"], models, where, phrases)
        result.extend(shown + ([widget_note(phrases, shown)] if phrases else []))
    return result


def static_chapter(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """A copy of an executed chapter whose outputs need no kernel and no widget library."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    models = widget_models(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = static_outputs(cell.outputs, models, f"{name}, {cell_label(nb, index)}")
    nb.metadata.pop("widgets", None)
    return nb


# ---------------------------------------------------------------- the Sphinx sources

def markdown_section(text: str, heading: str, source: str) -> str:
    """The body of the section titled ``heading`` (any level), up to the next heading of that level or higher."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        match = re.match(r"(#+)\s+(.*)", line)
        if match and match.group(2).strip() == heading:
            level = len(match.group(1))
            end = next((i for i in range(start + 1, len(lines))
                        if (m := re.match(r"(#+)\s", lines[i])) and len(m.group(1)) <= level
                        and not in_code_block(lines, i)), len(lines))
            return "\n".join(lines[start + 1:end]).strip() + "\n"
    raise BookError(f"{source} has no section titled {heading!r} (a template in book/ names it)")


def in_code_block(lines: list[str], index: int) -> bool:
    """Whether line ``index`` lies inside a fenced code block (a '#' there is a comment, not a heading)."""
    return sum(1 for line in lines[:index] if line.lstrip().startswith("```")) % 2 == 1


def rebase_links(markdown: str, folder: str) -> str:
    """Relative Markdown links, written from ``folder``, rewritten for a page at the book's root."""
    return re.sub(r"\]\((?![a-z]+:|#|/)([^)]+)\)", lambda m: f"]({folder}/{m.group(1)})", markdown)


def fill_template(text: str, mode: str) -> str:
    """Replace ``{{ readme: HEADING }}`` and ``{{ notebook: NAME: HEADING }}`` (that section of README.md or of
    the notebook's first cell), ``{{ pages: chapters }}`` or ``exercises`` (their pages, one a line, for a
    toctree) and ``{{ book: mode }}`` (the mode the chapters ran in, in words)."""
    def field(match: re.Match) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind == "readme":
            return markdown_section((ROOT / "README.md").read_text(), argument, "README.md")
        if kind == "notebook":
            name, heading = (part.strip() for part in argument.split(":", 1))
            first = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells[0].source
            return rebase_links(markdown_section(first, heading, f"notebooks/{name}.ipynb"), "notebooks")
        if kind == "book":
            return MODE_WORDS[mode]
        if argument == "chapters":
            return "\n".join(f"notebooks/{p.stem}" for p in chapters())
        if argument == "exercises":
            return "\n".join(p.relative_to(ROOT).with_suffix("").as_posix() for p in exercises())
        raise BookError(f"unknown list of pages {argument!r} in a template in book/: chapters or exercises")
    return TEMPLATE_FIELD.sub(field, text)


def write_if_changed(path: Path, content: str | bytes, written: set[Path]) -> None:
    """Write only what changed, so that Sphinx rebuilds only the pages whose sources changed."""
    data = content.encode() if isinstance(content, str) else content
    written.add(path)
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_sources(mode: str) -> list[dict]:
    """Fill ``_build/src/`` with the book's pages; returns one entry per chapter for ``book.json``."""
    written: set[Path] = set()
    entries = []
    for path in chapters():
        executed = nbformat.read(executed_path(path.stem, mode), as_version=4)
        page = static_chapter(executed, path.stem)
        write_if_changed(SRC / "notebooks" / path.name, nbformat.writes(page) + "\n", written)
        entries.append({"name": path.stem, "page": f"notebooks/{path.stem}.html",
                        "executed": str(executed_path(path.stem, mode).relative_to(ROOT)),
                        "source": f"{SRC.relative_to(ROOT)}/notebooks/{path.name}",
                        "seconds": executed.metadata["metarl_book"].get("seconds")})
    write_if_changed(SRC / "notebooks" / "glossary.md", (NOTEBOOKS / "glossary.md").read_bytes(), written)
    for exercise in exercises():
        nb = nbformat.read(exercise, as_version=4)
        for cell in nb.cells:  # the students' version as handed out: never executed, no outputs
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        write_if_changed(SRC / exercise.relative_to(ROOT), nbformat.writes(nb) + "\n", written)
    for template in sorted(BOOK.glob("*.md")):
        write_if_changed(SRC / template.name, fill_template(template.read_text(), mode), written)
    for stale in [p for p in SRC.rglob("*") if p.is_file() and p not in written]:
        stale.unlink()
    return entries


def run_sphinx() -> None:
    """Build ``_build/html`` from ``_build/src`` with ``book/conf.py``; warnings are errors."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(BOOK), "-d", str(DOCTREES), "-q",
               "-W", "--keep-going", str(SRC), str(HTML_DIR)]
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise BookError("Sphinx failed (its messages are above); the book in _build/html is incomplete")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick mode (METARL_QUICK=1) instead of full mode")
    parser.add_argument("--no-execute", action="store_true",
                        help="use only chapters already executed (by `make test` or an earlier build); never run one")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="chapters executed side by side")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a single cell may run (default 1800)")
    args = parser.parse_args(argv)
    mode = mode_name(args.quick)
    start = time.perf_counter()
    (BUILD / "book.json").unlink(missing_ok=True)  # written again only when this build succeeds
    try:
        print(f"chapters ({mode} mode):", flush=True)
        execute_changed(chapters(), mode, args.jobs, args.timeout, may_execute=not args.no_execute)
        entries = write_sources(mode)
        print("Sphinx ...", flush=True)
        run_sphinx()
    except BookError as error:
        print(f"build_book: {error}", file=sys.stderr)
        return 1
    (BUILD / "book.json").write_text(json.dumps({"mode": mode, "chapters": entries}, indent=1) + "\n")
    size = sum(p.stat().st_size for p in HTML_DIR.rglob("*") if p.is_file())
    print(f"book built in {time.perf_counter() - start:.0f} s: {HTML_DIR.relative_to(ROOT)}/index.html "
          f"({size / 2**20:.1f} MiB); serve it with `python -m http.server -d {HTML_DIR.relative_to(ROOT)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
