"""tools/run_chapters.py: a failing cell is reported with its number and first line, and the run goes on."""

import importlib.util
from pathlib import Path

import nbformat

spec = importlib.util.spec_from_file_location("run_chapters", Path(__file__).parent.parent / "tools" / "run_chapters.py")
run_chapters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_chapters)


def test_a_failing_assertion_is_reported_by_cell_and_the_executed_notebook_is_kept(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("# the claim\nassert x == 2, 'x is not 2'"),
                                         nbformat.v4.new_code_cell("y = 3")])
    path = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, path)
    seconds, problem = run_chapters.run_chapter(path, tmp_path / "out", timeout=60)
    assert "cell 1" in problem and "# the claim" in problem and "x is not 2" in problem
    assert (tmp_path / "out" / "99_broken.ipynb").exists() and seconds >= 0
    nb.cells[1].source = "assert x == 1"
    nbformat.write(nb, path)
    assert run_chapters.run_chapter(path, tmp_path / "out", timeout=60)[1] == ""
