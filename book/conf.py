"""Sphinx configuration of the course's book; `make book` (tools/build_book.py) generates the sources it reads.

The pages come from ``_build/src/``: the chapters already executed (myst-nb never runs a notebook here), the
exercises as handed out, the glossary and the two pages of this folder. MathJax is served from the book itself
(copied from the sphinx-mathjax-offline package), so neither the build nor a reader needs the internet.
"""

import importlib
import shutil
from pathlib import Path

project = "Meta-reinforcement learning: an interactive course"
author = "the course's authors"
html_title = "Meta-RL: an interactive course"

extensions = ["myst_nb", "sphinx.ext.githubpages"]  # githubpages: a .nojekyll file, so GitHub Pages serves _static/
myst_enable_extensions = ["dollarmath", "amsmath", "tasklist"]
myst_heading_anchors = 3

nb_execution_mode = "off"                # chapters arrive executed (tools/build_book.py), exercises stay blank
nb_merge_streams = True
nb_render_markdown_format = "myst"       # Markdown printed by a cell (tables, worked answers) gets its $math$
nb_ipywidgets_js = {}                    # widgets arrive as static outputs: no widget library, no CDN
nb_output_stderr = "show"

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": False,           # a reader who wants the notebooks runs the course itself
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
    "footer_content_items": [],
}

# MathJax 3 from the book's own _static/mathjax/: the full TeX input (no extension is fetched later), CommonHTML
# output and its fonts: 1.7 MiB of the package's 24 MB.
mathjax_path = "mathjax/tex-chtml-full.js"
MATHJAX_FILES = ["tex-chtml-full.js", "output/chtml/fonts/woff-v2"]


def copy_mathjax(app, exception):
    """Copy the MathJax files the pages load into ``_static/mathjax`` once the pages are written."""
    if exception is not None or app.builder.format != "html":
        return
    source = Path(importlib.import_module("sphinx-mathjax-offline").__file__).parent / "static" / "mathjax"
    target = Path(app.outdir) / "_static" / "mathjax"
    for name in MATHJAX_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)


def setup(app):
    app.connect("build-finished", copy_mathjax)
