"""nbgrader preprocessors the course puts into autograding and feedback.

* :class:`SandboxedChecks` replaces nbgrader's ``Execute``: the student's notebook runs in a sandbox
  (:mod:`~metarl_course.grading.sandbox`) and every test cell's verdict is decided in the grader's process
  (:mod:`~metarl_course.grading.verdicts`); the test cells never run with the student's code. A warning the
  student's code prints costs nothing: only the checks' verdicts reach the test cells.
* :class:`LimitOutputSize`: nbgrader's ``LimitOutput`` counts lines only, so one 50 MB line was kept whole; this
  cuts every text output to ``max_chars`` characters.

For the feedback students get:

* :class:`HiddenTestsOutOfFeedback`: nbgrader's feedback showed every hidden test (their inputs, and the failing
  line in a traceback); here the hidden-test region of a test cell is replaced by a comment and an error shows
  only its name and message (see :func:`feedback_preprocessors`).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode


def _is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


class SandboxedChecks(NbGraderPreprocessor):
    """In place of nbgrader's ``Execute``: the student's code runs in the sandbox, the verdicts are decided here.

    Each test cell gets one output: the checks' OK lines, or an error naming the failed check and why (nbgrader's
    ``SaveAutoGrades`` then scores it as usual). Answer and setup cells get the output they printed in the sandbox.
    The verdict comes from :func:`~metarl_course.grading.verdicts.verdict_for` (stored per submitted file, so the
    classroom command can run the sandboxes side by side beforehand).
    """

    course_root = Unicode("", help="the nbgrader course folder (default: the current folder)").tag(config=True)
    sandbox = Bool(True, help="run student code in bubblewrap (False: no isolation; verdicts still decided outside)"
                   ).tag(config=True)
    wall_seconds = Integer(300, help="seconds one student's whole notebook may run").tag(config=True)
    cell_seconds = Integer(60, help="seconds one cell or one check may run").tag(config=True)
    source_directory = Unicode("source", help="the instructor's notebooks, in the course folder").tag(config=True)
    submitted_directory = Unicode("submitted", help="the students' notebooks, in the course folder").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        from metarl_course.grading.sandbox import Limits, check_bwrap
        from metarl_course.grading.verdicts import verdict_for

        info = resources["nbgrader"]
        root = Path(self.course_root or ".").resolve()
        limits = Limits(wall_seconds=self.wall_seconds, cpu_seconds=self.wall_seconds, cell_seconds=self.cell_seconds)
        bwrap = check_bwrap() if self.sandbox else None
        verdict = verdict_for(root, info["assignment"], info["student"], info["notebook"], limits, bwrap,
                              self.source_directory, self.submitted_directory)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if _is_test_cell(cell):
                v = verdict.cells.get(gid)
                if v is None:
                    cell.outputs.append(_error("NotGraded", "this test cell is not in the instructor's notebook"))
                elif v.passed:
                    cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text="\n".join(v.lines) + "\n"))
                else:
                    cell.outputs.append(_error("CheckFailed", "\n".join(v.lines)))
            elif gid in verdict.outputs:
                text, error = verdict.outputs[gid]
                if text:
                    cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
                if error:
                    cell.outputs.append(_error(error.split(":", 1)[0], error.split(":", 1)[-1].strip()))
        return nb, resources


def _error(name: str, message: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


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
    """nbgrader's autograde preprocessors, with :class:`SandboxedChecks` in place of ``Execute``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades

    return [SandboxedChecks, LimitOutputSize, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
