"""Run every chapter in full mode (what a learner runs), with its assertions, and print each chapter's time.

    .venv/bin/python tools/run_chapters.py                 # every chapter, full mode, on the CPU
    .venv/bin/python tools/run_chapters.py 04 05           # only these chapters
    .venv/bin/python tools/run_chapters.py --quick         # quick mode (what the tests run)

Each chapter runs top to bottom in a fresh kernel, as JupyterLab's "Run All" would; a failing cell (an error
or an assertion that a sentence of the chapter relies on) stops that chapter and is reported with its number
and first line, and the run goes on with the next chapter. The executed notebooks are written to
``--out`` (default ``runs/chapters/``) for reading. Exit status 1 if any chapter failed. About 20 minutes on
one laptop core (the chapters' own times are printed at the end); not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # tracebacks come coloured from the kernel


def execute(path: Path, timeout: int) -> tuple[nbformat.NotebookNode, float, str]:
    """Run a notebook top to bottom in a fresh kernel in its own folder, widgets' state stored (as the book needs);
    ``(executed notebook, seconds, problem)``, problem empty when every cell passed, else the failing cell's number,
    first line and error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        index = next((i for i, cell in enumerate(nb.cells)
                      if any(o.get("output_type") == "error" for o in cell.get("outputs", []))), None)
        where = cell_label(nb, index) if index is not None else "a cell (timed out, or the kernel died)"
        last = ANSI_COLOUR.sub("", str(error)).strip().splitlines()[-1][:200]
        return nb, time.perf_counter() - start, f"{where}: {last}"
    return nb, time.perf_counter() - start, ""


def cell_label(nb: nbformat.NotebookNode, index: int) -> str:
    """'cell 12 ("train(learner, ...")': the cell's number over all cells and its first line."""
    lines = nb.cells[index].source.strip().splitlines()
    return f"cell {index} ({(lines[0][:80] if lines else '')!r})"


def run_chapter(path: Path, out_dir: Path, timeout: int) -> tuple[float, str]:
    """Execute one chapter and keep it in ``out_dir``; ``(seconds, problem)``, problem empty when every cell passed."""
    nb, seconds, problem = execute(path, timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    return seconds, problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers or names (default: all)")
    parser.add_argument("--quick", action="store_true", help="quick mode instead of full mode")
    parser.add_argument("--out", type=Path, default=Path("runs/chapters"), help="where the executed chapters go")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a single cell may run (default 1800)")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if any(p.name.startswith(c) for c in args.chapters)]
        if not paths:
            parser.error(f"no chapter matches {args.chapters}; chapters: {', '.join(p.stem for p in sorted(NOTEBOOKS.glob('[0-9][0-9]_*.ipynb')))}")
    os.environ["METARL_QUICK"] = "1" if args.quick else "0"
    os.environ.setdefault("METARL_DEVICE", "cpu")
    mode = "quick" if args.quick else "full"
    results = {}
    for path in paths:
        print(f"{path.stem} ({mode} mode) ...", flush=True)
        results[path.stem] = run_chapter(path, args.out, args.timeout)
        seconds, problem = results[path.stem]
        print(f"  {'FAILED: ' + problem if problem else 'passed'} in {seconds:.0f} s", flush=True)
    total = sum(s for s, _ in results.values())
    failed = [name for name, (_, problem) in results.items() if problem]
    print(f"\n{len(paths) - len(failed)} of {len(paths)} chapters passed in {mode} mode; {total / 60:.1f} min in all "
          f"(executed notebooks in {args.out})")
    for name, (seconds, problem) in results.items():
        print(f"  {name:<32} {seconds:6.0f} s  {'FAILED' if problem else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
