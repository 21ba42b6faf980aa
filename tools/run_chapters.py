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
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_chapter(path: Path, out_dir: Path, timeout: int) -> tuple[float, str]:
    """Execute one chapter; ``(seconds, problem)``, problem empty when every cell passed."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    problem = ""
    try:
        client.execute()
    except CellExecutionError as error:
        index = next((i for i, cell in enumerate(nb.cells) if any(o.get("output_type") == "error"
                                                                   for o in cell.get("outputs", []))), None)
        first = nb.cells[index].source.strip().splitlines()[0][:80] if index is not None else "?"
        last = str(error).strip().splitlines()[-1][:200]
        problem = f"cell {index} ({first!r}): {last}"
    seconds = time.perf_counter() - start
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
