"""Keeps what nbval executes: each chapter's outputs and widget state, for the book (tools/build_book.py).

While ``pytest`` runs a chapter of ``notebooks/`` with nbval, every kernel message of a cell is also handed to an
nbclient ``NotebookClient`` (the executor the book uses when it runs a chapter itself), which rebuilds the cell's
outputs and the widgets' state exactly as a headless execution stores them. When every code cell of the chapter
has passed, the executed chapter is written to ``_build/executed/<mode>/<name>.ipynb`` with the key the book's
cache checks (the chapter's cells, the package, the mode), so ``make book`` in that mode does not run it again.
A chapter with a failing or skipped cell is not written. Nothing here changes what nbval checks or reports.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import time
from pathlib import Path

import pytest
from IPython.core.displayhook import DisplayHook

ROOT = Path(__file__).resolve().parent


@functools.cache
def _build_book():
    """tools/build_book.py, loaded by its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ChapterCapture:
    """One chapter's executed copy, filled from the kernel messages nbval reads."""

    def __init__(self, notebook_file, build_book) -> None:
        from nbclient import NotebookClient

        self.book, self.notebook_file = build_book, notebook_file
        self.nb = copy.deepcopy(notebook_file.nb)
        for cell in self.nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        self.client = NotebookClient(self.nb, store_widget_state=True, record_timing=False)
        self.client.kc = notebook_file.kernel.kc  # output widgets answer the kernel, as a front end does
        self.code_cells = [i for i, cell in enumerate(notebook_file.nb.cells) if cell.cell_type == "code"]
        self.passed: set[int] = set()
        self.failed = False
        self.index = -1  # the cell nbval is about to run (set before each cell)
        self.current: tuple[str, int] | None = None  # (the executing request's msg_id, cell index)
        self.start = time.perf_counter()
        kernel = notebook_file.kernel
        execute, read = kernel.execute_cell_input, kernel.get_message

        def execute_cell_input(source, **kwargs):
            msg_id = execute(source, **kwargs)
            self.current = (msg_id, self.index)
            self.client.clear_before_next_output = False  # as nbclient does before each cell
            return msg_id

        def get_message(stream, timeout=None):
            msg = read(stream, timeout=timeout)
            if stream == "iopub" and self.current and msg["parent_header"].get("msg_id") == self.current[0]:
                self.record(msg)
            return msg

        kernel.execute_cell_input, kernel.get_message = execute_cell_input, get_message

    def record(self, msg: dict) -> None:
        from nbclient.exceptions import CellExecutionComplete

        index = self.current[1]
        if msg["msg_type"] == "execute_result" and DisplayHook.semicolon_at_end_of_expression(
                self.nb.cells[index].source):
            return  # nbval runs cells outside the history, where IPython cannot see a closing ';' (it would hide this)
        try:
            self.client.process_message(msg, self.nb.cells[index], index)
        except CellExecutionComplete:
            pass

    def finish_cell(self, index: int, passed: bool) -> None:
        """Note one cell's verdict; after the chapter's last code cell, write the chapter if every cell passed."""
        self.current = None
        if passed:
            self.passed.add(index)
        else:
            self.failed = True
        if index != self.code_cells[-1] or self.failed or len(self.passed) != len(self.code_cells):
            return
        for count, i in enumerate(self.code_cells, start=1):
            self.nb.cells[i].execution_count = count
            for out in self.nb.cells[i].outputs:
                if out.output_type == "execute_result":
                    out.execution_count = count
        self.client.set_widgets_metadata()
        mode = self.book.mode_name(os.environ.get("METARL_QUICK", "0") == "1")
        name = Path(str(self.notebook_file.fspath)).stem
        key = self.book.notebook_key(self.notebook_file.nb, mode)
        self.book.write_executed(self.nb, name, mode, key, time.perf_counter() - self.start)


def _chapter_capture(item) -> ChapterCapture | None:
    """The capture of the chapter this nbval cell belongs to, made at its first cell; None for other tests."""
    parent = getattr(item, "parent", None)
    if not hasattr(item, "cell_num") or getattr(parent, "kernel", None) is None:
        return None
    path = Path(str(parent.fspath))
    if path.parent != ROOT / "notebooks" or not path.name[:2].isdigit():
        return None
    if not hasattr(parent, "_book_capture"):
        parent._book_capture = ChapterCapture(parent, _build_book())
    return parent._book_capture


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    capture = _chapter_capture(item)
    if capture is None:
        yield
        return
    capture.index = next(i for i, cell in enumerate(item.parent.nb.cells) if cell is item.cell)
    outcome = yield
    capture.finish_cell(capture.index, passed=outcome.excinfo is None)
