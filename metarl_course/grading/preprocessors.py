"""nbgrader preprocessors the course adds to autograding, between executing a notebook and scoring it.

* :class:`WarningsAreNotFailures`: nbgrader gives a test cell zero points when anything was written to stderr,
  so a correct answer whose library prints a warning (torch, numpy) lost its marks. Here stderr text in a graded
  test cell is kept, labelled, on stdout; an exception (an ``error`` output) still fails the cell.
* :class:`LimitOutputSize`: nbgrader's ``LimitOutput`` counts lines only, so one 50 MB line was kept whole; this
  cuts every text output to ``max_chars`` characters.

Both run after nbgrader's ``Execute`` (see :func:`autograde_preprocessors`). For the feedback students get:

* :class:`HiddenTestsOutOfFeedback`: nbgrader's feedback showed every hidden test (their inputs, and the failing
  line in a traceback); here the hidden-test region of a test cell is replaced by a comment and an error shows
  only its name and message (see :func:`feedback_preprocessors`).
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

STDERR_LABEL = "[stderr, not counted as a failure] "


def _is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


class WarningsAreNotFailures(NbGraderPreprocessor):
    """In graded test cells, move stderr stream outputs to stdout (labelled), so that only exceptions fail."""

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        if _is_test_cell(cell):
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
                    output.text = STDERR_LABEL + output.text
        return cell, resources


class LimitOutputSize(NbGraderPreprocessor):
    """Cut every stream, text and traceback output to ``max_chars`` characters."""

    max_chars = Integer(20_000, help="the most characters kept of one output (-1: no limit)").tag(config=True)

    def _cut(self, text: str) -> str:
        if self.max_chars < 0 or len(text) <= self.max_chars:
            return text
        return text[: self.max_chars] + f"\n... output truncated ({len(text):,} characters in all) ..."

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for kind in ("text/plain", "text/html", "text/markdown"):
                    if isinstance(output.data.get(kind), str):
                        output.data[kind] = self._cut(output.data[kind])
            elif output.output_type == "error":
                output.evalue = self._cut(output.evalue)
                output.traceback = [self._cut(line) for line in output.traceback[:200]]
        return cell, resources


HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_NOTE = "# (hidden tests: not shown in the feedback)"


class HiddenTestsOutOfFeedback(NbGraderPreprocessor):
    """In graded test cells: hidden-test lines replaced by one comment, tracebacks cut to ``Name: message``."""

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        if not _is_test_cell(cell):
            return cell, resources
        kept, hidden = [], False
        for line in cell.source.splitlines():
            if HIDDEN_BEGIN in line:
                hidden = True
                kept.append(HIDDEN_NOTE)
            elif HIDDEN_END in line:
                hidden = False
            elif not hidden:
                kept.append(line)
        cell.source = "\n".join(kept)
        for output in cell.outputs:
            if output.output_type == "error":  # a traceback would show the failing (maybe hidden) line
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


def feedback_preprocessors() -> list[type]:
    """nbgrader's feedback preprocessors with :class:`HiddenTestsOutOfFeedback` before the HTML is made."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    return [GetGrades, HiddenTestsOutOfFeedback, CSSHTMLHeaderPreprocessor]


def autograde_preprocessors() -> list[type]:
    """nbgrader's autograde preprocessors with the course's two inserted right after ``Execute``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)

    return [Execute, WarningsAreNotFailures, LimitOutputSize, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
