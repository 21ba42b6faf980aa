"""The book's build (tools/build_book.py) without Sphinx: widgets turned into static outputs, the cache key, and
the sections taken from README.md and the start chapter. tests/test_book.py checks the built book in a browser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
build_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_book)

VIEW = "application/vnd.jupyter.widget-view+json"
PNG = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}


def _model(name: str, **state) -> dict:
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
            "state": {"_model_name": name, **state}}


def _chapter(outputs_in_widget: list[dict], cell_outputs: list[dict]) -> nbformat.NotebookNode:
    """A chapter with one interact-like widget: a slider above an output area."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"), nbformat.v4.new_code_cell("interact(show, lr=0.5);")]
    nb.cells[1].outputs = cell_outputs
    nb.metadata.widgets = {build_book.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
        "box": _model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_out"]),
        "slider": _model("FloatSliderModel", description="inner lr α", value=0.5, readout_format=".2f"),
        "out": _model("OutputModel", outputs=outputs_in_widget)}}}
    return nb


def test_a_widget_becomes_its_first_figure_and_a_line_naming_its_control():
    shown = nbformat.v4.new_output("display_data", data={VIEW: {"model_id": "box"}, "text/plain": "interactive(...)"})
    nb = build_book.static_chapter(_chapter([{"output_type": "display_data", "data": PNG, "metadata": {}}], [shown]),
                                   "01_x")
    figure, note = nb.cells[1].outputs
    assert figure.data == PNG
    assert "you can move the slider <b>inner lr α</b> (here 0.50); above is the figure it draws first." in \
        note.data["text/html"]
    assert "widgets" not in nb.metadata  # no widget library is needed to read it


def test_a_widget_that_brings_its_own_static_version_is_shown_by_it():
    own = nbformat.v4.new_output("display_data", data={VIEW: {"model_id": "gone"}, "text/html": "<p>question</p>"})
    nb = build_book.static_chapter(_chapter([], [own]), "01_x")
    assert [o.data for o in nb.cells[1].outputs] == [{"text/html": "<p>question</p>"}]


def test_an_error_inside_a_widget_stops_the_build_naming_chapter_and_cell():
    error = {"output_type": "error", "ename": "ValueError", "evalue": "inner_lr must be > 0", "traceback": []}
    shown = nbformat.v4.new_output("display_data", data={VIEW: {"model_id": "box"}})
    with pytest.raises(build_book.BookError, match=r"01_x, cell 1 \('interact\(show, lr=0.5\);'\).*inner_lr"):
        build_book.static_chapter(_chapter([error], [shown]), "01_x")


def test_the_cache_key_follows_the_cells_and_the_mode_not_the_outputs():
    nb = _chapter([], [])
    key = build_book.notebook_key(nb, "quick", package="p")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="ran")]
    assert build_book.notebook_key(nb, "quick", package="p") == key
    assert build_book.notebook_key(nb, "full", package="p") != key
    assert build_book.notebook_key(nb, "quick", package="q") != key
    nb.cells[1].source += "\nprint(1)"
    assert build_book.notebook_key(nb, "quick", package="p") != key


def test_sections_end_at_the_next_heading_of_their_level_and_links_follow_the_page():
    text = "# Top\n## A\nkeep [ch 01](01_x.ipynb) and [web](https://x.org)\n```bash\n# a comment\n```\n### A.1\n" \
           "kept\n## B\nnot kept\n"
    section = build_book.markdown_section(text, "A", "t.md")
    assert "# a comment" in section and "kept" in section and "not kept" not in section
    assert "[ch 01](notebooks/01_x.ipynb)" in build_book.rebase_links(section, "notebooks")
    assert "(https://x.org)" in build_book.rebase_links(section, "notebooks")
    with pytest.raises(build_book.BookError, match="no section titled 'C'"):
        build_book.markdown_section(text, "C", "t.md")


def test_the_readme_and_the_start_chapter_have_the_sections_the_book_takes():
    for template in (ROOT / "book").glob("*.md"):
        filled = build_book.fill_template(template.read_text(), "full")
        assert "{{" not in filled, f"book/{template.name}: a field was not filled"
    assert "| `maml-sinusoid` |" in build_book.fill_template("{{ readme: Training the experiments }}", "full")


def test_a_progress_bar_is_shown_as_it_ended_without_a_note():
    bar = {"bar": _model("HBoxModel", children=["IPY_MODEL_left", "IPY_MODEL_p", "IPY_MODEL_right"]),
           "left": _model("HTMLModel", value="meta-training:\u2007 93%"),
           "p": _model("FloatProgressModel", value=150.0, max=150.0),
           "right": _model("HTMLModel", value="149/150 [00:09&lt;00:00]")}
    shown = nbformat.v4.new_output("display_data", data={VIEW: {"model_id": "bar"}})
    nb = _chapter([], [shown])
    nb.metadata.widgets[build_book.WIDGET_STATE]["state"].update(bar)
    [line] = build_book.static_chapter(nb, "05_x").cells[1].outputs
    assert line.data["text/html"] == ('<p class="widget-progress">meta-training: <progress value="150.0" max="150.0">'
                                      '</progress> 150/150</p>')


def test_several_controls_are_named_in_one_sentence():
    sliders = [("move the slider", "<b>A</b> (here 2.00)"), ("move the slider", "<b>φ</b> (here 0.50)")]
    arms = [("press", f"<b>arm {i}</b>") for i in range(5)]
    assert "can move the sliders <b>A</b> (here 2.00) and <b>φ</b> (here 0.50)." in \
        build_book.widget_note(sliders, [])["data"]["text/html"]
    assert "can press the buttons (<b>arm 0</b>, <b>arm 1</b>, <b>arm 2</b>, ...)." in \
        build_book.widget_note(arms, [])["data"]["text/html"]
