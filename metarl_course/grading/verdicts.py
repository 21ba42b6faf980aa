"""Grade one notebook: run the student's code in the sandbox, decide every check in the grader's own process.

1. :func:`make_job` assembles what runs: the instructor's locked cells (setup) as the instructor wrote them, the
   student's answer cells and extra cells, in the instructor's order; test cells never run in the student's
   process. The checks to probe are read, by syntax only, from the instructor's test cells (hidden cases
   included): each is a ``run_check("exNN.what", answer, ..., cases=[...])`` call.
2. :mod:`~metarl_course.grading.sandbox` runs it (``runner.py``) and brings back plain JSON lines.
3. :func:`decide_all` gives each test cell its verdict with the checks' ``verdict`` halves, here, with the course's
   reference code. A malformed, missing or hostile result fails that check and never the grader.
"""

from __future__ import annotations

import ast
import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from metarl_course.grading.checks import CheckFailed, decide, describe_exception, get_check, probe_case, short
from metarl_course.grading.sandbox import Limits, RunOutput, run, sandbox_command, unsandboxed_command

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


class BadTestCell(ValueError):
    """An instructor's test cell that is not a list of ``run_check`` calls (a problem of the course, not a student)."""


@dataclass(frozen=True)
class Request:
    """One case of one check, as a test cell asks for it."""

    grade_id: str
    check: str
    answers: tuple[str, ...]
    case: dict
    hidden: bool
    number: int
    """Its place among the cases of the same call (1-based) ..."""
    of: int
    """... and how many cases that call has."""


@dataclass
class CellVerdict:
    grade_id: str
    passed: bool
    lines: list[str] = field(default_factory=list)
    """What the student sees under the test cell: the checks' OK lines, or the failed check and why."""


@dataclass
class NotebookVerdict:
    cells: dict[str, CellVerdict]
    outputs: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """grade id of an answer or setup cell -> (its output, its error or None), for the feedback."""
    stopped: str = ""
    log: str = ""
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"cells": {k: vars(v) for k, v in self.cells.items()}, "outputs": self.outputs,
                           "stopped": self.stopped, "log": self.log, "seconds": self.seconds})

    @classmethod
    def from_json(cls, text: str) -> "NotebookVerdict":
        d = json.loads(text)
        return cls({k: CellVerdict(**v) for k, v in d["cells"].items()},
                   {k: (o, e) for k, (o, e) in d["outputs"].items()}, d["stopped"], d["log"], d["seconds"])


def _is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _literal(node: ast.AST):
    """A case: a literal, or ``dict(key=literal, ...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {ast.literal_eval(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(v) for v in node.elts]
    return ast.literal_eval(node)


def cell_requests(source: str, grade_id: str) -> list[Request]:
    """The checks a test cell asks for: each top-level statement is ``run_check("name", f, ..., cases=[...])``."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise BadTestCell(f"test cell {grade_id}: {exc}") from None
    hidden_lines, hidden = set(), False
    for number, line in enumerate(source.splitlines(), 1):
        if HIDDEN_BEGIN in line:
            hidden = True
        elif HIDDEN_END in line:
            hidden = False
        elif hidden:
            hidden_lines.add(number)
    out = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "run_check"
                and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
                and all(isinstance(a, ast.Name) for a in call.args[1:])
                and [kw.arg for kw in call.keywords] == ["cases"]):
            raise BadTestCell(f"test cell {grade_id}, line {stmt.lineno}: a test cell holds only calls "
                              "run_check('exNN.what', answer, ..., cases=[dict(...), ...])")
        name = call.args[0].value
        check = get_check(name)
        answers = tuple(a.id for a in call.args[1:])
        if len(answers) != len(check.answers):
            raise BadTestCell(f"test cell {grade_id}: {name} takes {len(check.answers)} answer(s), got {answers}")
        try:
            cases = _literal(call.keywords[0].value)
        except (ValueError, TypeError, SyntaxError) as exc:
            raise BadTestCell(f"test cell {grade_id}, line {stmt.lineno}: cases must be literals ({exc})") from None
        if not isinstance(cases, list) or not cases or not all(isinstance(c, dict) for c in cases):
            raise BadTestCell(f"test cell {grade_id}, line {stmt.lineno}: cases must be a non-empty list of dicts")
        for i, case in enumerate(cases, 1):
            # the same JSON round trip the sandbox's copy takes (tuples become lists on both sides)
            out.append(Request(grade_id, name, answers, json.loads(json.dumps(case)), stmt.lineno in hidden_lines,
                               i, len(cases)))
    if not out:
        raise BadTestCell(f"test cell {grade_id} has no run_check call")
    return out


def notebook_requests(source_nb) -> list[Request]:
    return [r for cell in source_nb.cells if _is_test(cell)
            for r in cell_requests(cell.source, cell.metadata["nbgrader"]["grade_id"])]


def references(requests: list[Request]) -> dict[str, list[str]]:
    """module -> functions the checked exercise asks the student to write (its checks module's ``REFERENCES``)."""
    import importlib

    out: dict[str, list[str]] = {}
    for module in sorted({r.check.split(".", 1)[0] for r in requests}):
        refs = getattr(importlib.import_module(f"metarl_course.grading.checks.{module}"), "REFERENCES", {})
        for name, functions in refs.items():
            out.setdefault(name, [])
            out[name] += [f for f in functions if f not in out[name]]
    return out


def make_job(student_nb, source_nb, cell_seconds: int) -> dict:
    """The cells to run (labelled) and the probes to call, for one student's notebook."""
    student_cells = [c for c in student_nb.cells]
    by_id = {}
    for c in student_cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid is not None and gid not in by_id:
            by_id[gid] = c
    source_ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in source_nb.cells} - {None}
    extra_after: dict[str | None, list[str]] = {}
    last = None
    for c in student_cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in source_ids:
            last = gid
        elif c.cell_type == "code":
            extra_after.setdefault(last, []).append(c.source)
    cells = [{"label": f"extra {i + 1}", "source": s} for i, s in enumerate(extra_after.get(None, []))]
    for c in source_nb.cells:
        meta = c.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if c.cell_type == "code" and not _is_test(c):
            if meta.get("solution"):
                mine = by_id.get(gid)
                cells.append({"label": gid, "source": mine.source if mine is not None else ""})
            else:
                cells.append({"label": gid or "", "source": c.source})
        cells += [{"label": f"extra after {gid}", "source": s} for s in extra_after.get(gid, []) if gid]
    requests = notebook_requests(source_nb)
    return {"cell_timeout": cell_seconds, "cells": cells,
            "requests": [{"check": r.check, "answers": list(r.answers), "case": probe_case(r.case),
                          "cell": r.grade_id} for r in requests]}


def parse_results(raw: bytes) -> tuple[dict[int, dict], dict[int, dict], bool]:
    """The runner's JSON lines: cells by index, probes by index (the first line for each wins), and whether done."""
    cells, probes, done = {}, {}, False
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict):
            continue
        if isinstance(obj.get("cell"), int):
            cells.setdefault(obj["cell"], obj)
        elif isinstance(obj.get("probe"), int):
            probes.setdefault(obj["probe"], obj)
        elif obj.get("done") is True:
            done = True
    return cells, probes, done


_DECIDING = threading.Lock()
"""Verdicts seed torch's global random generator to rebuild a case's inputs: one at a time, across threads."""


def decide_all(requests: list[Request], probes: dict[int, dict], why_missing: str) -> dict[str, CellVerdict]:
    """Each test cell's verdict: passed when every case of every check in it passed."""
    with _DECIDING:
        return _decide_all(requests, probes, why_missing)


def _decide_all(requests: list[Request], probes: dict[int, dict], why_missing: str) -> dict[str, CellVerdict]:
    verdicts: dict[str, CellVerdict] = {}
    for j, r in enumerate(requests):
        v = verdicts.setdefault(r.grade_id, CellVerdict(r.grade_id, True))
        if not v.passed:
            continue
        where = (f"hidden case {r.number} of {r.of}" if r.hidden else
                 f"case {r.number} of {r.of} ({', '.join(f'{k}={x!r}' for k, x in probe_case(r.case).items())})")
        outcome = probes.get(j)
        try:
            if outcome is None:
                raise CheckFailed(why_missing)
            if outcome.get("skipped") is True:
                raise CheckFailed("not run: an earlier case of this test raised an error")
            outcome = {k: outcome[k] for k in ("data", "error", "reference", "missing") if k in outcome}
            decide(get_check(r.check), outcome, r.case)
        except CheckFailed as exc:
            v.passed, v.lines = False, [f"{r.check} failed on {where}: {short(exc)}"]
        except Exception as exc:  # noqa: BLE001 - a malformed result fails this check, never the grader
            v.passed, v.lines = False, [f"{r.check} failed on {where}: the result could not be read "
                                        f"({describe_exception(exc)})"]
    for r in requests:
        v = verdicts[r.grade_id]
        ok = get_check(r.check).ok
        if v.passed and r.number == 1 and ok not in v.lines:
            v.lines.append(ok)
    return verdicts


def grade_notebook(student_path: Path, source_path: Path, view: Path, limits: Limits = Limits(),
                   bwrap: str | None = None) -> NotebookVerdict:
    """Run a student's notebook in the sandbox (``bwrap``; None runs it without one) and decide its checks.

    ``view`` is a grader view of the package (:func:`~metarl_course.grading.sandbox.prepare_grader_view`).
    """
    source_nb = nbformat.read(source_path, as_version=4)
    requests = notebook_requests(source_nb)
    try:
        student_nb = nbformat.read(student_path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - an unreadable notebook fails every check, with the reason
        why = f"the notebook could not be read ({describe_exception(exc)})"
        return NotebookVerdict(decide_all(requests, {}, why), stopped=why)
    job = make_job(student_nb, source_nb, limits.cell_seconds)
    with tempfile.TemporaryDirectory(prefix="metarl-job-") as tmp:
        job_dir = Path(tmp)
        job_dir.chmod(0o755)
        (job_dir / "job.json").write_text(json.dumps(job))
        (job_dir / "job.json").chmod(0o644)
        command = sandbox_command(bwrap, view, job_dir, limits) if bwrap else unsandboxed_command(view, job_dir)
        output: RunOutput = run(command, limits)
    cell_results, probes, done = parse_results(output.results)
    if output.stopped:
        why = f"the run was stopped: {output.stopped}"
    elif not done:
        why = f"your notebook ended the run before this check (exit status {output.returncode})"
    else:
        why = "no result came back for this check"
    verdict = NotebookVerdict(decide_all(requests, probes, why), stopped=output.stopped or
                              ("" if done else why), log=output.log, seconds=output.seconds)
    for i, cell in enumerate(job["cells"]):
        res = cell_results.get(i)
        if res is not None and cell["label"] and not cell["label"].startswith("extra"):
            text, error = res.get("output"), res.get("error")
            verdict.outputs[cell["label"]] = (short(text, 4000) if isinstance(text, str) else "",
                                              short(error) if isinstance(error, str) else None)
    return verdict


# ------------------------------------------------------------------ one verdict per submitted file, kept on disk
def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verdict_path(course_root: Path, assignment: str, student: str, notebook: str) -> Path:
    """``course_root/verdicts/<assignment>/<student>/<notebook>.json``: the grader's record of one run."""
    return Path(course_root) / "verdicts" / assignment / student / f"{notebook}.json"


def grader_view_dir(course_root: Path, assignment: str) -> Path:
    return Path(course_root) / "grader-view" / assignment


def verdict_for(course_root: Path, assignment: str, student: str, notebook: str, limits: Limits = Limits(),
                bwrap: str | None = None, source_directory: str = "source",
                submitted_directory: str = "submitted") -> NotebookVerdict:
    """The verdict of ``submitted/<student>/<assignment>/<notebook>.ipynb``: the stored one when neither that file
    nor the instructor's notebook (``source/<assignment>/<notebook>.ipynb``) changed since, else a fresh sandboxed
    run (stored for next time)."""
    from metarl_course.grading.sandbox import prepare_grader_view

    root = Path(course_root)
    submitted = root / submitted_directory / student / assignment / f"{notebook}.ipynb"
    source = root / source_directory / assignment / f"{notebook}.ipynb"
    key = {"submitted": _sha256(submitted), "source": _sha256(source), "sandboxed": bwrap is not None}
    path = verdict_path(root, assignment, student, notebook)
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                return NotebookVerdict.from_json(stored["verdict"])
        except (ValueError, KeyError, TypeError):
            pass
    view = grader_view_dir(root, assignment)
    if not (view / "metarl_course").is_dir():
        prepare_grader_view(view, references(notebook_requests(nbformat.read(source, as_version=4))))
    verdict = grade_notebook(submitted, source, view, limits, bwrap)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "verdict": verdict.to_json()}))
    tmp.replace(path)
    return verdict
