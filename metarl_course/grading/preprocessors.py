"""nbgrader preprocessors the course adds to autograding, between executing a notebook and scoring it.

* :class:`WarningsAreNotFailures`: nbgrader gives a test cell zero points when anything was written to stderr,
  so a correct answer whose library prints a warning (torch, numpy) lost its marks. Here stderr text in a graded
  test cell is kept, labelled, on stdout; an exception (an ``error`` output) still fails the cell.
* :class:`LimitOutputSize`: nbgrader's ``LimitOutput`` counts lines only, so one 50 MB line was kept whole; this
  cuts every text output to ``max_chars`` characters.

Both run after nbgrader's ``Execute`` (see :data:`AUTOGRADE_PREPROCESSORS`).
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


def autograde_preprocessors() -> list[type]:
    """nbgrader's autograde preprocessors with the course's two inserted right after ``Execute``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern, LimitOutput,
                                        SaveAutoGrades)

    return [Execute, WarningsAreNotFailures, LimitOutputSize, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
