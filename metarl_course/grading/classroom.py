"""Grade a whole class with nbgrader: arrange submissions, autograde, feedback, one CSV of per-question scores.

The grading happens in a *course folder* (default ``classroom/``, kept out of
git) with nbgrader's standard layout::

    classroom/
      nbgrader_config.py      so that nbgrader's own commands (formgrader, export, ...) work there too
      gradebook.db            nbgrader's database: every cell's source, checksum and points, every score
      source/<assignment>/    a copy of solutions/<assignment>/ (tests and hidden tests live here)
      submitted/<student>/<assignment>/<notebook>.ipynb
      autograded/...          the executed submissions
      feedback/<student>/<assignment>/<notebook>.html

      verdicts/<assignment>/<student>/<notebook>.json   the sandboxed run's verdicts and log, per submitted file
      grader-view/<assignment>/   the package as the sandbox sees it (the exercise's answers removed)
      logs/<assignment>/<student>.log   one line of status, the scores, the student's output, nbgrader's log

Each student's notebook runs in its own bubblewrap sandbox (see
:mod:`~metarl_course.grading.sandbox`), several side by side (``jobs``); the
sandbox sees no gradebook, no solutions, no other submission and no network,
and is killed when it passes its limits. Test cells never run with the
student's code: the grader reads the checks they ask for from the instructor's
notebook, the sandbox sends back plain data, and the verdicts are decided in
the grader's own process (:mod:`~metarl_course.grading.verdicts`). Then
nbgrader's ``autograde`` (with :class:`~metarl_course.grading.preprocessors.SandboxedChecks`
in place of its ``Execute``) records the scores in the gradebook, one student
at a time. A submission that cannot be graded at all (not a notebook, missing,
a badly named folder) is reported in the CSV's ``status`` column and the rest
of the class is graded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import unicodedata
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from metarl_course.grading.course import (DEFAULT_TIMEOUT, DEFAULT_WALL_SECONDS, IGNORED, SOLUTIONS_DIR, GradingError,
                                          check_assignment, copy_source, make_api, nbgrader_config, notebook_names,
                                          run_api)

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")
"""Valid student ids (folder names, matched whole): letters, digits and ``_ . @ -``, starting with a letter or digit."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell starting with one of these is run as a formula by spreadsheets: such cells get a leading ``'``."""


def valid_student_id(name: str) -> bool:
    """Whether a folder name is a valid student id (the whole name; a trailing newline is not allowed)."""
    return STUDENT_ID.fullmatch(name) is not None


def shown_name(name: str) -> str:
    """A folder name as the grades show it: Unicode NFC (one spelling for one name), control characters escaped."""
    name = unicodedata.normalize("NFC", name)
    return "".join(ch if unicodedata.category(ch)[0] != "C" else ascii(ch)[1:-1] for ch in name)


def csv_safe(text: str) -> str:
    """``text`` for a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text
GRADED = "graded"


@dataclass
class StudentResult:
    """One row of the grades CSV."""

    student: str
    status: str = GRADED
    """``graded``, or what went wrong (then ``scores`` is empty)."""
    scores: dict[str, float] = field(default_factory=dict)
    """grade cell id -> points scored."""
    notes: list[str] = field(default_factory=list)
    """Things worth knowing that did not stop grading (a renamed notebook, feedback that failed)."""
    log: str = ""
    """nbgrader's log of this student's autograding, kept in the per-student log file."""


@dataclass(frozen=True)
class Question:
    """One autograded test cell of an assignment."""

    notebook: str
    """The notebook's name without ``.ipynb``."""
    grade_id: str
    max_score: float


def questions(assignment: str, solutions_dir: Path = SOLUTIONS_DIR) -> list[Question]:
    """The graded cells of an assignment, in notebook order."""
    out = []
    for name in notebook_names(assignment, solutions_dir):
        nb = nbformat.read(Path(solutions_dir) / assignment / name, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                out.append(Question(Path(name).stem, meta["grade_id"], float(meta.get("points", 0))))
    return out


def _find_notebook(folder: Path, name: str, expected: list[str], assignment: str) -> tuple[Path | None, str]:
    """The student's copy of notebook ``name`` in ``folder``, or None and the reason."""
    path = folder / name
    if path.is_file():
        return path, ""
    found = sorted(p.name for p in folder.glob("*.ipynb"))
    if len(expected) == 1 and len(found) == 1:
        return folder / found[0], f"graded {found[0]} as {name}"
    dirs = sorted(p.name + "/" for p in folder.iterdir() if p.is_dir() and p.name not in IGNORED)
    seen = ", ".join(found + dirs) or "nothing"
    hint = f"; the assignment's folder must be named {folder.name}/{assignment}/ or left out" if dirs else ""
    return None, f"missing {name} (found: {seen}{hint})"


def _check_notebook(path: Path) -> str:
    """Empty if ``path`` is a readable, valid notebook; otherwise why not."""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - any failure to read means "not a notebook", reported per student
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        return f"{path.name} is not a valid notebook ({type(exc).__name__}: {first_line})"
    return ""


def arrange_submission(entry: Path, assignment: str, expected: list[str], course_root: Path) -> StudentResult:
    """Check one student's folder and copy it to ``course_root/submitted/<student>/<assignment>/``.

    ``entry`` is either nbgrader's layout (``<student>/<assignment>/<nb>.ipynb``)
    or a plain folder (``<student>/<nb>.ipynb``).
    """
    result = StudentResult(shown_name(entry.name))
    dest = course_root / "submitted" / entry.name / assignment
    if not entry.is_dir():
        result.status = f"not a student folder: {result.student} is a file; put each student's notebooks in a folder"
        return result
    if not valid_student_id(entry.name):
        control = " (it contains a control character, e.g. a newline)" if shown_name(entry.name) != \
            unicodedata.normalize("NFC", entry.name) else ""
        result.status = (f"folder name {result.student!r} is not a valid student id{control}: rename the folder "
                         "(letters, digits and _ . @ -, starting with a letter or digit)")
        return result
    folder = entry / assignment if (entry / assignment).is_dir() else entry
    files = {}
    for name in expected:
        path, note = _find_notebook(folder, name, expected, assignment)
        if path is None:
            result.status = note
            return result
        if note:
            result.notes.append(note)
        problem = _check_notebook(path)
        if problem:
            result.status = problem
            return result
        files[name] = path
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name, path in files.items():
        shutil.copyfile(path, dest / name)
    if (folder / "timestamp.txt").is_file():  # nbgrader's submission time, used for late penalties
        shutil.copyfile(folder / "timestamp.txt", dest / "timestamp.txt")
    return result


def _last_error_line(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "").strip().splitlines()
    return text[-1][:300] if text else "unknown error"


def _read_scores(course_root: Path, config, assignment: str, student: str, qs: list[Question]) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(config.CourseDirectory.db_url) as gb:
        grades = {q.grade_id: gb.find_grade(q.grade_id, q.notebook, assignment, student).score for q in qs}
    # a score is None only for a cell that needs manual grading; the autograded test cells always have one
    return {k: float(v or 0.0) for k, v in grades.items()}


def grade_class(submissions: Path, assignment: str, out_csv: Path, course_root: Path = Path("classroom"),
                solutions_dir: Path = SOLUTIONS_DIR, timeout: int = DEFAULT_TIMEOUT, feedback: bool = True,
                log=print, jobs: int | None = None, sandbox: bool = True,
                wall_seconds: int = DEFAULT_WALL_SECONDS) -> list[StudentResult]:
    """Autograde every student in ``submissions``, write feedback and a CSV of per-question scores.

    Args:
        submissions: one folder per student, ``<student>/<assignment>/<nb>.ipynb`` (nbgrader's
            ``submitted/`` layout) or ``<student>/<nb>.ipynb``.
        assignment: e.g. ``"ex01_task_distributions"`` (a folder of ``solutions_dir``).
        out_csv: the grades, one row per student: ``student, status, <grade id>..., total, max_total``;
            written at the end in one step (a temporary file renamed), so it is never partial.
        course_root: nbgrader's course folder for this class (created if needed, reused across runs).
        timeout: seconds a single cell (or one check's call) may run.
        feedback: also write ``course_root/feedback/<student>/<assignment>/<nb>.html``.
        jobs: sandboxes run side by side (default: every core).
        sandbox: run student code in bubblewrap (``False`` only for trusted code: the verdicts are still decided
            outside the student's process, but the student's code sees the grader's files).
        wall_seconds: seconds one student's whole run may take.

    Returns:
        One :class:`StudentResult` per entry of ``submissions``, sorted by name.
    """
    from metarl_course.grading.sandbox import SandboxUnavailable, check_bwrap, prepare_grader_view
    from metarl_course.grading.verdicts import BadTestCell, grader_view_dir, notebook_requests, references

    submissions, course_root, out_csv = Path(submissions), Path(course_root).resolve(), Path(out_csv)
    check_assignment(assignment, solutions_dir)
    if not submissions.is_dir():
        raise GradingError(f"no submissions folder at {submissions}")
    if out_csv.is_dir():
        raise GradingError(f"--out {out_csv} is a folder: give the path of the CSV file to write")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise GradingError(f"jobs must be a positive number of parallel sandboxes, got {jobs!r}")
    jobs = jobs or os.cpu_count() or 1
    try:
        bwrap = check_bwrap() if sandbox else None
    except SandboxUnavailable as exc:
        raise GradingError(str(exc)) from None
    expected = notebook_names(assignment, solutions_dir)
    qs = questions(assignment, solutions_dir)
    try:
        refs = references([r for name in expected for r in notebook_requests(
            nbformat.read(Path(solutions_dir) / assignment / name, as_version=4))])
    except BadTestCell as exc:
        raise GradingError(f"{assignment} cannot be graded: {exc}") from None
    course_root.mkdir(parents=True, exist_ok=True)
    _back_up_gradebook(course_root)
    config = nbgrader_config(course_root, course_root / "gradebook.db", timeout=timeout, sandbox=sandbox,
                             wall_seconds=wall_seconds)
    (course_root / "nbgrader_config.py").write_text(_config_file_text(timeout, sandbox, wall_seconds))
    copy_source(assignment, solutions_dir, course_root)
    prepare_grader_view(grader_view_dir(course_root, assignment), refs)
    api = make_api(config)
    generated = run_api(api, "generate_assignment", assignment, force=True, create=True)
    if not generated["success"]:
        raise GradingError(f"nbgrader could not load {assignment} from {solutions_dir}: {_last_error_line(generated)}")

    # every entry gets a row (a hidden folder too: a student named ".x" is told why they were not graded)
    entries = sorted(p for p in submissions.iterdir() if p.name not in IGNORED)
    results = []
    for entry in entries:
        result = arrange_submission(entry, assignment, expected, course_root)
        if result.status != GRADED:
            _forget(course_root, assignment, entry.name)
        results.append(result)
    # the sandboxes, side by side; each verdict is stored for nbgrader's autograde, which runs next
    ready = [(entry, r) for entry, r in zip(entries, results) if r.status == GRADED]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        seconds = dict(zip([e.name for e, _ in ready],
                           pool.map(lambda er: _run_sandboxes(course_root, assignment, er[0].name, expected,
                                                              timeout, wall_seconds, bwrap), ready)))
    for entry, result in zip(entries, results):
        start = time.perf_counter()
        if result.status == GRADED:
            _grade_one(api, config, course_root, assignment, result, qs, feedback)
        took = time.perf_counter() - start + seconds.get(entry.name, 0.0)
        log(_summary_line(result, qs, took))
        _write_student_log(course_root, assignment, entry.name, result, qs, took)
    write_grades_csv(results, qs, out_csv)
    return results


def _run_sandboxes(course_root: Path, assignment: str, student: str, notebooks: list[str], timeout: int,
                   wall_seconds: int, bwrap: str | None) -> float:
    """Run (or find stored) each notebook's sandboxed verdict; returns the seconds spent."""
    from metarl_course.grading.sandbox import Limits
    from metarl_course.grading.verdicts import verdict_for

    start = time.perf_counter()
    limits = Limits(wall_seconds=wall_seconds, cpu_seconds=wall_seconds, cell_seconds=timeout)
    for name in notebooks:
        verdict_for(course_root, assignment, student, Path(name).stem, limits, bwrap)
    return time.perf_counter() - start


def _back_up_gradebook(course_root: Path) -> None:
    """Copy ``gradebook.db`` to ``gradebook.db.bak`` (SQLite's online backup) before a run changes it."""
    import sqlite3

    db = course_root / "gradebook.db"
    if not db.is_file():
        return
    src, dst = sqlite3.connect(db), sqlite3.connect(course_root / "gradebook.db.bak")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _grade_one(api, config, course_root: Path, assignment: str, result: StudentResult, qs: list[Question],
               feedback: bool) -> None:
    from metarl_course.grading.verdicts import NotebookVerdict

    with warnings.catch_warnings():
        # nbgrader 0.9.6 with SQLAlchemy 2 warns "Object ... not in session" while creating a submission: harmless
        warnings.filterwarnings("ignore", message=".*not in session.*")
        # a test cell that nbgrader puts back into a submission has no cell id; nbformat 5.11 adds one
        warnings.filterwarnings("ignore", message="Cell is missing an id field")
        graded = run_api(api, "autograde", assignment, result.student, force=True, create=True)
    result.log = "\n".join(str(graded.get(key) or "") for key in ("log", "error")).strip()
    for name in sorted((course_root / "verdicts" / assignment / result.student).glob("*.json")):
        try:
            verdict = NotebookVerdict.from_json(json.loads(name.read_text())["verdict"])
        except (ValueError, KeyError, TypeError, OSError):
            continue
        if verdict.stopped:
            result.notes.append(f"{name.stem}: {verdict.stopped}")
        result.log += f"\n\n{name.stem}: the sandboxed run ({verdict.seconds:.1f} s)"
        for label, (text, error) in verdict.outputs.items():
            result.log += f"\n--- cell {label}" + (f" (error: {error})" if error else "") + f" ---\n{text}"
        result.log += f"\n--- standard error ---\n{verdict.log}"
    if not graded["success"]:
        result.status = f"autograding failed: {_last_error_line(graded)}"
        return
    try:
        result.scores = _read_scores(course_root, config, assignment, result.student, qs)
    except Exception as exc:  # noqa: BLE001 - reported in this student's row; the rest of the class goes on
        result.status = f"could not read the scores from the gradebook: {type(exc).__name__}: {exc}"
        return
    if feedback:
        fb = run_api(api, "generate_feedback", assignment, result.student, force=True)
        if not fb["success"]:
            result.notes.append(f"feedback failed: {_last_error_line(fb)}")


def _forget(course_root: Path, assignment: str, student: str) -> None:
    """Remove an earlier run's copies of a submission that cannot be graded now, so no stale result survives."""
    for step in ("submitted", "autograded", "feedback", "verdicts"):
        path = course_root / step / student / assignment
        if path.is_dir() and valid_student_id(student):
            shutil.rmtree(path)


def _summary_line(result: StudentResult, qs: list[Question], seconds: float) -> str:
    if result.status != GRADED:
        return f"{result.student}: NOT GRADED: {result.status}"
    total = sum(min(max(result.scores[q.grade_id], 0.0), q.max_score) for q in qs)
    max_total = sum(q.max_score for q in qs)
    notes = f" ({'; '.join(result.notes)})" if result.notes else ""
    return f"{result.student}: {total:g}/{max_total:g} in {seconds:.1f} s{notes}"


def _log_name(folder_name: str) -> str:
    """A safe file name for a student's log: the id itself, or a hash for a folder name that is not a valid id."""
    if valid_student_id(folder_name):
        return f"{folder_name}.log"
    return f"invalid-name-{hashlib.sha256(folder_name.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}.log"


def _write_student_log(course_root: Path, assignment: str, folder_name: str, result: StudentResult,
                       qs: list[Question], seconds: float) -> None:
    """``course_root/logs/<assignment>/<student>.log``: the row, the reason, the notes and nbgrader's log."""
    folder = course_root / "logs" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"student: {result.student}", f"status: {result.status}", f"seconds: {seconds:.1f}"]
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"{q.grade_id}: {result.scores[q.grade_id]:g} of {q.max_score:g}" for q in qs if q.grade_id in result.scores]
    if result.log:
        lines += ["", "nbgrader's log:", result.log]
    (folder / _log_name(folder_name)).write_text("\n".join(lines) + "\n")


def write_grades_csv(results: list[StudentResult], qs: list[Question], path: Path) -> None:
    """Write the grades in one step: a temporary file in the same folder, then an atomic rename."""
    multi = len({q.notebook for q in qs}) > 1
    columns = [f"{q.notebook}/{q.grade_id}" if multi else q.grade_id for q in qs]
    max_total = sum(q.max_score for q in qs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["student", "status", *columns, "total", "max_total"])
            for r in results:
                status = r.status if not r.notes else f"{r.status} ({'; '.join(r.notes)})"
                if r.status == GRADED:
                    # no question is worth more than its points, whatever the gradebook says
                    capped = [min(max(r.scores[q.grade_id], 0.0), q.max_score) for q in qs]
                    writer.writerow([csv_safe(r.student), csv_safe(status), *[f"{v:g}" for v in capped],
                                     f"{sum(capped):g}", f"{max_total:g}"])
                else:
                    writer.writerow([csv_safe(r.student), csv_safe(status), *[""] * len(qs), "", f"{max_total:g}"])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _config_file_text(timeout: int, sandbox: bool, wall_seconds: int) -> str:
    return f'''# Written by `python -m metarl_course.grading grade`: nbgrader's own commands work in this folder too,
# e.g. `nbgrader export` or `nbgrader formgrader` (run them from this folder). source/ is a copy of the
# course's solutions/; gradebook.db is nbgrader's default database file here.
c = get_config()  # noqa: F821
c.Execute.timeout = {timeout}
c.OverwriteCells.add_missing_cells = True
from metarl_course.grading.preprocessors import autograde_preprocessors, feedback_preprocessors
# student code runs in a sandbox and the verdicts are decided outside it (see metarl_course/grading/verdicts.py)
c.Autograde.autograde_preprocessors = autograde_preprocessors()
c.SandboxedChecks.sandbox = {sandbox!r}
c.SandboxedChecks.cell_seconds = {timeout}
c.SandboxedChecks.wall_seconds = {wall_seconds}
c.GenerateFeedback.preprocessors = feedback_preprocessors()  # the feedback shows no hidden test
'''
