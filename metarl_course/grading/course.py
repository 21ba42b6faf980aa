"""The course's nbgrader layout: exercises are generated from solutions.

nbgrader wants ``<source>/<assignment>/<notebook>.ipynb`` (the instructor's
version, with solutions and hidden tests) and writes the students' version to
``<release>/<assignment>/``. In this repository ``solutions/`` is the source
folder and ``exercises/`` the release folder (see ``nbgrader_config.py`` at the
root, for running nbgrader by hand). ``exercises/`` is never edited by hand:
:func:`generate_exercises` rewrites it, and a test fails if the committed
exercises differ from freshly generated ones.

Generation runs in a temporary course folder with its own gradebook database,
so it leaves nothing behind in the repository; nbgrader's output is
deterministic, so the result does not depend on where it ran.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS_DIR = REPO_ROOT / "solutions"
EXERCISES_DIR = REPO_ROOT / "exercises"
DEFAULT_TIMEOUT = 60
"""Seconds one notebook cell may run when grading or checking before it is interrupted (and fails)."""
DEFAULT_WALL_SECONDS = 300
"""Seconds one student's whole notebook, checks included, may run when grading before its sandbox is killed."""
IGNORED = (".ipynb_checkpoints", "__pycache__")


class GradingError(RuntimeError):
    """A problem that stops a whole command (a missing assignment, a broken course), not one student."""


def ensure_tools_on_path() -> None:
    """nbgrader runs the ``alembic`` executable of its environment; make sure that environment's bin is on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_config(root: Path, db_path: Path, timeout: int = DEFAULT_TIMEOUT, quiet: bool = True,
                    sandbox: bool = True, wall_seconds: int = DEFAULT_WALL_SECONDS):
    """The nbgrader configuration of a course folder ``root`` with standard sub-folders.

    Args:
        root: the course folder (``source/``, ``release/``, ``submitted/``, ``autograded/``, ``feedback/``).
        db_path: the gradebook's SQLite file.
        timeout: seconds a single cell may run before nbgrader interrupts it and marks it failed.
    """
    from traitlets.config import Config

    if not isinstance(timeout, int) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{Path(db_path).resolve()}"
    c.CourseDirectory.ignore = [*IGNORED, "*.pyc", "feedback"]
    c.Execute.timeout = timeout
    # A submission that deleted a test cell gets it back (nbgrader's default is to leave it out).
    c.OverwriteCells.add_missing_cells = True
    # student code runs in a sandbox and the verdicts are decided outside it; no output is kept whole beyond
    # 20,000 characters, and the feedback shows no hidden test (source or traceback)
    from metarl_course.grading.preprocessors import autograde_preprocessors, feedback_preprocessors

    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    c.SandboxedChecks.course_root = str(Path(root).resolve())
    c.SandboxedChecks.sandbox = sandbox
    c.SandboxedChecks.cell_seconds = timeout
    c.SandboxedChecks.wall_seconds = wall_seconds
    c.GenerateFeedback.preprocessors = feedback_preprocessors()
    if quiet:
        c.NbGraderAPI.log_level = "WARN"
    return c


def list_assignments(solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """The assignments: folders of ``solutions_dir`` that hold at least one notebook."""
    if not Path(solutions_dir).is_dir():
        raise GradingError(f"no solutions folder at {solutions_dir}")
    return sorted(p.name for p in Path(solutions_dir).iterdir()
                  if p.is_dir() and p.name not in IGNORED and any(p.glob("*.ipynb")))


def notebook_names(assignment: str, solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """File names of an assignment's notebooks, e.g. ``["ex01.ipynb"]``."""
    check_assignment(assignment, solutions_dir)
    return sorted(p.name for p in (Path(solutions_dir) / assignment).glob("*.ipynb"))


def check_assignment(assignment: str, solutions_dir: Path = SOLUTIONS_DIR) -> None:
    """Raise :class:`GradingError` with the valid names if ``assignment`` is not in ``solutions_dir``."""
    known = list_assignments(solutions_dir)
    if assignment not in known:
        raise GradingError(f"no assignment {assignment!r} in {solutions_dir}; the assignments are: {', '.join(known)}")


def copy_source(assignment: str, solutions_dir: Path, course_root: Path) -> None:
    """Copy ``solutions_dir/<assignment>`` to ``course_root/source/<assignment>`` (replacing an older copy)."""
    dest = Path(course_root) / "source" / assignment
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(Path(solutions_dir) / assignment, dest, ignore=shutil.ignore_patterns(*IGNORED))


def run_api(api, method: str, *args, **kwargs) -> dict:
    """Call an ``NbGraderAPI`` method; its result dict has ``success``, ``log`` and, on failure, ``error``."""
    ensure_tools_on_path()
    return getattr(api, method)(*args, **kwargs)


def make_api(config):
    from nbgrader.apps import NbGraderAPI

    ensure_tools_on_path()
    return NbGraderAPI(config=config)


def generate_into(assignments: list[str], solutions_dir: Path, release_dir: Path) -> None:
    """Run ``nbgrader generate_assignment`` for each assignment; write the results to ``release_dir/<assignment>``."""
    with tempfile.TemporaryDirectory(prefix="metarl-generate-") as tmp:
        root = Path(tmp)
        for assignment in assignments:
            copy_source(assignment, solutions_dir, root)
        api = make_api(nbgrader_config(root, root / "gradebook.db"))
        for assignment in assignments:
            result = run_api(api, "generate_assignment", assignment, force=True, create=True)
            if not result["success"]:
                raise GradingError(f"nbgrader generate_assignment {assignment} failed:\n{result.get('error')}\n"
                                   f"{result.get('log', '')}")
            dest = Path(release_dir) / assignment
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(root / "release" / assignment, dest)


def generate_exercises(assignments: list[str] | None = None, solutions_dir: Path = SOLUTIONS_DIR,
                       exercises_dir: Path = EXERCISES_DIR) -> list[str]:
    """Regenerate ``exercises/<assignment>/`` from ``solutions/<assignment>/``; returns the assignments written.

    With no ``assignments``, every assignment in ``solutions_dir`` is generated.
    """
    names = list_assignments(solutions_dir) if assignments is None else list(assignments)
    for name in names:
        check_assignment(name, solutions_dir)
    generate_into(names, solutions_dir, exercises_dir)
    return names


def stale_exercises(solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR) -> list[str]:
    """What differs between the committed exercises and freshly generated ones (empty when up to date)."""
    names = list_assignments(solutions_dir)
    problems = []
    committed = {p.name for p in Path(exercises_dir).iterdir() if p.is_dir() and p.name not in IGNORED} \
        if Path(exercises_dir).is_dir() else set()
    problems += [f"exercises/{n}/ has no solution in solutions/{n}/" for n in sorted(committed - set(names))]
    with tempfile.TemporaryDirectory(prefix="metarl-fresh-") as tmp:
        generate_into(names, solutions_dir, Path(tmp))
        for name in names:
            problems += _tree_differences(Path(tmp) / name, Path(exercises_dir) / name, f"exercises/{name}")
    return problems


def _tree_differences(fresh: Path, committed: Path, label: str) -> list[str]:
    if not committed.is_dir():
        return [f"{label}/ is missing"]
    cmp = filecmp.dircmp(fresh, committed, ignore=list(IGNORED))
    out = [f"{label}/{f} is missing" for f in cmp.left_only]
    out += [f"{label}/{f} is not generated from solutions/" for f in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(fresh, committed, cmp.common_files, shallow=False)
    out += [f"{label}/{f} differs from the generated version" for f in mismatch + errors]
    for sub in cmp.common_dirs:
        out += _tree_differences(fresh / sub, committed / sub, f"{label}/{sub}")
    return out
