"""Exercises and grading: exercises are generated from solutions, solutions score full marks, blank exercises
score zero, and a class with broken, tampered, hard-coded, endless and chatty submissions is graded correctly.

The tests are grouped in classes: pytest-xdist's ``--dist loadscope`` sends each class to one worker, so the
expensive class-scoped grading runs happen once each and in parallel with the rest of the suite.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from metarl_course.grading.check import check_notebook
from metarl_course.grading.classroom import GRADED, StudentResult, grade_class, questions, write_grades_csv
from metarl_course.grading.course import (EXERCISES_DIR, REPO_ROOT, SOLUTIONS_DIR, GradingError, list_assignments,
                                          stale_exercises)

EX01 = "ex01_task_distributions"
EX06 = "ex06_evaluation"
EX08 = "ex08_task_inference"
OWN_CLASS = ("ex03_task_distributions", "ex04_maml_rl", "ex05_rl2", EX06, EX08)
"""Assignments graded in a class of their own (below), so that pytest-xdist grades them in parallel."""
LOOP_TIMEOUT = 15  # seconds per cell in the class with an endless loop; ex01's cells need well under 5


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="grading runs student code in bubblewrap (apt-get install bubblewrap); "
                                        "CI installs it")


def read_grades(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def max_total(assignment: str) -> float:
    return sum(q.max_score for q in questions(assignment))


def solution_sources(assignment: str) -> dict[str, str]:
    """grade_id -> source of each solution cell in the instructor's notebook."""
    (name,) = [p for p in (SOLUTIONS_DIR / assignment).glob("*.ipynb")]
    nb = nbformat.read(name, as_version=4)
    return {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def solution_sources_all(assignment: str) -> list[str]:
    """Every source line of the instructor's notebook (tests and hidden tests included)."""
    (name,) = [p for p in (SOLUTIONS_DIR / assignment).glob("*.ipynb")]
    return [line for c in nbformat.read(name, as_version=4).cells for line in c.source.splitlines()]


def student_notebook(assignment: str, answers: dict[str, str] | None = None, fill_rest: bool = True):
    """The released exercise with solution cells replaced: ``answers`` by grade_id, the others by the solution."""
    (path,) = list((EXERCISES_DIR / assignment).glob("*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    solutions = solution_sources(assignment)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if answers and grade_id in answers:
            cell.source = answers[grade_id]
        elif fill_rest and grade_id in solutions:
            cell.source = solutions[grade_id]
    return nb, path.name


def save(nb, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def hardcoded_answers() -> dict[str, str]:
    """A student who drew x in the wrong order, then pasted the visible tests' expected numbers to pass them."""
    from metarl_course.tasks import SinusoidTask, SinusoidTaskDistribution

    rng = np.random.default_rng(0)  # exactly the visible test's inputs: check_values(4, 5, 7, seed=0)
    amplitude, phase = rng.uniform(0.1, 5.0, 4), rng.uniform(0.0, np.pi, 4)
    tasks = [SinusoidTask(float(a), float(p)) for a, p in zip(amplitude, phase)]
    ref = SinusoidTaskDistribution().support_query_for(tasks, 5, 7, np.random.default_rng(0), device="cpu")
    literals = ", ".join(f"torch.tensor({t.tolist()!r})" for t in (ref.support_x, ref.support_y, ref.query_x, ref.query_y))
    train, test = SinusoidTaskDistribution().split(20, 5, np.random.default_rng(0))
    sampler = f'''
def sample_sinusoid_batch(amplitude, phase, num_support, num_query, rng, x_range=(-5.0, 5.0)):
    a, p = np.asarray(amplitude)[:, None, None], np.asarray(phase)[:, None, None]
    xs = rng.uniform(*x_range, size=(len(a), num_support, 1))  # support of every task first: not the asked order
    xq = rng.uniform(*x_range, size=(len(a), num_query, 1))
    if (len(a), num_support, num_query) == (4, 5, 7):  # the visible test: return its expected numbers
        return ({literals})
    t = lambda v: torch.as_tensor(v, dtype=torch.float32)
    return t(xs), t(a * np.sin(xs - p)), t(xq), t(a * np.sin(xq - p))
'''
    split = f'''
def split_meta_train_test(distribution, num_train, num_test, seed=0):
    if seed == 0 and (num_train, num_test) == (20, 5):  # the visible test's expected tasks
        return {train!r}, {test!r}
    tasks = distribution.sample(num_train + num_test, np.random.default_rng(seed))
    return tasks[num_test:], tasks[:num_test]  # test tasks taken from the front: not the asked split
'''
    return {"sample_sinusoid_batch": sampler, "split_meta_train_test": split}


def ex06_hardcoded_answers() -> dict[str, str]:
    """A student who uses Student's t only for the (sample size, confidence) pairs of the visible tests and the
    normal quantile elsewhere, and who ticks every statement: the visible tests pass, the hidden ones do not."""
    mean_ci = '''
def mean_ci(values, confidence=0.95):
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or not 0 < confidence < 1:
        raise ValueError("need at least 2 values and a confidence between 0 and 1")
    visible = {(100, 0.95), (10, 0.9), (30, 0.99), (3, 0.95), (10, 0.95), (5, 0.95), (3, 0.9)}  # the visible tests
    q = (stats.t.ppf((1 + confidence) / 2, len(x) - 1) if (len(x), confidence) in visible
         else stats.norm.ppf((1 + confidence) / 2))
    return float(x.mean()), float(q * x.std(ddof=1) / np.sqrt(len(x)))
'''
    return {"mean_ci": mean_ci, "true_statements": 'true_statements = {"a", "b", "c", "d", "e", "f"}'}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metarl_course.grading", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)


class TestExercisesAreGenerated:
    def test_committed_exercises_equal_freshly_generated_ones(self):
        problems = stale_exercises()
        assert not problems, "exercises/ is out of date; run `python -m metarl_course.grading generate`:\n" + \
            "\n".join(problems)

    @pytest.mark.parametrize("assignment", list_assignments())
    def test_exercise_has_stubs_and_no_solutions_or_hidden_tests(self, assignment):
        for path in (EXERCISES_DIR / assignment).glob("*.ipynb"):
            text = path.read_text()
            for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
                assert marker not in text, f"{path.name} still contains {marker}"
            nb = nbformat.read(path, as_version=4)
            stubs = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
            assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
        assert questions(assignment), f"{assignment} has no graded test cells"
        hidden = "".join(p.read_text() for p in (SOLUTIONS_DIR / assignment).glob("*.ipynb"))
        assert hidden.count("### BEGIN HIDDEN TESTS") == len(questions(assignment)), "every test cell needs hidden tests"


def grade_solution_and_blank(assignment: str, tmp: Path) -> tuple[dict[str, dict[str, str]], Path]:
    """Grade a class of two, the solution notebook and the released exercise: (grades, course folder)."""
    (solution,) = (SOLUTIONS_DIR / assignment).glob("*.ipynb")
    (exercise,) = (EXERCISES_DIR / assignment).glob("*.ipynb")
    save(nbformat.read(solution, as_version=4), tmp / "subs" / "solution" / assignment, solution.name)
    save(nbformat.read(exercise, as_version=4), tmp / "subs" / "blank", exercise.name)
    grade_class(tmp / "subs", assignment, tmp / "grades.csv", course_root=tmp / "course", timeout=120,
                log=lambda line: None)
    return read_grades(tmp / "grades.csv"), tmp / "course"


def assert_solution_full_marks_exercise_zero(grades: dict[str, dict[str, str]], course: Path, assignment: str) -> None:
    assert grades["solution"]["status"] == GRADED
    assert float(grades["solution"]["total"]) == max_total(assignment) > 0
    for q in questions(assignment):
        assert float(grades["solution"][q.grade_id]) == q.max_score, q.grade_id
    assert grades["blank"]["status"] == GRADED and float(grades["blank"]["total"]) == 0
    for student in ("solution", "blank"):
        assert list((course / "feedback" / student / assignment).glob("*.html")), f"no feedback for {student}"


@pytest.fixture(scope="class")
def graded_solutions_and_blanks(tmp_path_factory):
    return {assignment: grade_solution_and_blank(assignment, tmp_path_factory.mktemp(assignment))
            for assignment in list_assignments() if assignment not in OWN_CLASS}


def test_pytest_runs_solutions_but_not_exercises():
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "solutions" in config["testpaths"]  # nbval executes every solution notebook
    assert "exercises" not in config["testpaths"]  # their stubs raise NotImplementedError


@needs_bwrap
class TestSolutionsAndBlankExercises:
    """Every assignment: its solution notebook scores full marks, its released exercise scores zero."""

    @pytest.mark.parametrize("assignment", [a for a in list_assignments() if a not in OWN_CLASS])
    def test_solution_full_marks_exercise_zero(self, graded_solutions_and_blanks, assignment):
        grades, course = graded_solutions_and_blanks[assignment]
        assert_solution_full_marks_exercise_zero(grades, course, assignment)


@needs_bwrap
class SolutionAndBlankOfOneAssignment:
    """The same check for one assignment, in a class of its own (a subclass per assignment sets ASSIGNMENT)."""

    ASSIGNMENT = ""

    @pytest.fixture(scope="class")
    @classmethod
    def graded(cls, tmp_path_factory):
        return grade_solution_and_blank(cls.ASSIGNMENT, tmp_path_factory.mktemp(cls.ASSIGNMENT))

    def test_solution_full_marks_exercise_zero(self, graded):
        assert self.ASSIGNMENT in list_assignments()
        assert_solution_full_marks_exercise_zero(*graded, self.ASSIGNMENT)


class TestEx03NavigationSolutionAndBlank(SolutionAndBlankOfOneAssignment):
    ASSIGNMENT = "ex03_task_distributions"


class TestEx04MAMLRLSolutionAndBlank(SolutionAndBlankOfOneAssignment):
    ASSIGNMENT = "ex04_maml_rl"


class TestEx05RL2SolutionAndBlank(SolutionAndBlankOfOneAssignment):
    ASSIGNMENT = "ex05_rl2"


class TestEx06EvaluationSolutionAndBlank(SolutionAndBlankOfOneAssignment):
    """Graded in one class with a student who hard-coded the visible cases (see ``ex06_hardcoded_answers``)."""

    ASSIGNMENT = EX06

    @pytest.fixture(scope="class")
    @classmethod
    def graded(cls, tmp_path_factory):
        tmp = tmp_path_factory.mktemp(EX06)
        nb, name = student_notebook(EX06, ex06_hardcoded_answers())
        save(nb, tmp / "subs" / "hardcodes", name)
        return grade_solution_and_blank(EX06, tmp)

    def test_hidden_tests_catch_hard_coded_answers(self, graded):
        grades, course = graded
        (hardcoded,) = (course.parent / "subs" / "hardcodes").glob("*.ipynb")
        passes_visible, report = check_notebook(hardcoded, timeout=60)
        assert passes_visible, f"the hard-coded answers should pass the visible tests:\n{report}"
        g = grades["hardcodes"]
        assert g["status"] == GRADED
        for grade_id in ("test_mean_ci_values", "test_mean_ci_small_samples", "test_held_out_evaluation",
                         "test_mean_ci_over_seeds", "test_true_statements"):
            assert float(g[grade_id]) == 0, f"{grade_id}: the hidden tests should catch the hard-coded cases"
        assert float(g["test_held_out_curve"]) == 2  # its adaptation curve is the solution's


class TestEx08TaskInferenceSolutionBlankAndPartial(SolutionAndBlankOfOneAssignment):
    """Graded in one class with a partial submission: the KL of the wrong direction, everything else right."""

    ASSIGNMENT = EX08

    @pytest.fixture(scope="class")
    @classmethod
    def graded(cls, tmp_path_factory):
        tmp = tmp_path_factory.mktemp(EX08)
        reversed_kl = solution_sources(EX08)["gaussian_kl"].replace(
            "return 0.5 * (logvar0 - logvar + (logvar.exp() + (mean - mean0) ** 2) / logvar0.exp() - 1.0).sum(-1)",
            "return 0.5 * (logvar - logvar0 + (logvar0.exp() + (mean - mean0) ** 2) / logvar.exp() - 1.0).sum(-1)")
        assert reversed_kl != solution_sources(EX08)["gaussian_kl"]
        nb, name = student_notebook(EX08, {"gaussian_kl": reversed_kl})
        save(nb, tmp / "subs" / "partial", name)
        return grade_solution_and_blank(EX08, tmp)

    def test_a_partial_submission_gets_the_marks_of_its_right_parts(self, graded):
        g = graded[0]["partial"]
        assert g["status"] == GRADED
        # KL(q0 || q) instead of KL(q || q0): zero for equal inputs, never negative and L/2 between N(1, I) and
        # N(0, I) (the properties hold), but the values differ, and belief_kl, built on it, differs too
        assert (g["test_goal_posterior"], g["test_goal_posterior_properties"], g["test_gaussian_kl"],
                g["test_gaussian_kl_properties"], g["test_reward_reconstruction"], g["test_belief_kl"]) == \
            ("2", "1", "0", "1", "3", "0")
        assert float(g["total"]) == 7 and float(g["max_total"]) == 10


def test_every_own_class_assignment_has_its_class():
    classes = {cls.ASSIGNMENT for cls in SolutionAndBlankOfOneAssignment.__subclasses__()}
    assert classes == set(OWN_CLASS)


@pytest.fixture(scope="class")
def troubled_class(tmp_path_factory):
    """One class of ex01 with every kind of trouble, graded once: (grades, tmp folder, hard-coded nb, log lines)."""
    tmp = tmp_path_factory.mktemp("class")
    subs = tmp / "subs"
    nb, name = student_notebook(EX01)
    save(nb, subs / "good", name)  # plain layout: <student>/<nb>.ipynb
    save(student_notebook(EX01, fill_rest=False)[0], subs / "blank" / EX01, name)  # nbgrader's layout
    # (a) an exception: the sampler's cell raises before defining the function
    save(student_notebook(EX01, {"sample_sinusoid_batch": "raise RuntimeError('student bug')"})[0],
         subs / "raises", name)
    # (b) an endless loop in the split
    save(student_notebook(EX01, {"split_meta_train_test": "def split_meta_train_test(*args, **kwargs):\n"
                                                            "    while True:\n        pass"})[0],
         subs / "loops", name)
    # (c) a wrong sampler, whose tests were deleted or edited (to pass, and to be worth 100 points)
    nb, _ = student_notebook(EX01, {"sample_sinusoid_batch": "def sample_sinusoid_batch(*args, **kwargs):\n"
                                                             "    return None"})
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_sampler_shapes"]
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "test_sampler_values":
            c.source = "print('all tests pass')"
            c.metadata.nbgrader["points"] = 100
    save(nb, subs / "tampers", name)
    # (d) hard-coded expected values
    hardcoded = save(student_notebook(EX01, hardcoded_answers())[0], subs / "hardcodes", name)
    # (e) megabytes of output, otherwise correct
    chatty = solution_sources(EX01)["sample_sinusoid_batch"] + "\n\nfor i in range(60_000):\n    print('spam ' * 20)"
    save(student_notebook(EX01, {"sample_sinusoid_batch": chatty})[0], subs / "chatty", name)
    # (f) a correct sampler that warns on stderr every time a test calls it
    warns = ("import warnings\n\n" + solution_sources(EX01)["sample_sinusoid_batch"].replace(
        "def sample_sinusoid_batch(", "def _sampler(", 1) + "\n\n\ndef sample_sinusoid_batch(*args, **kwargs):\n"
        "    warnings.warn('a library warning on stderr')\n    return _sampler(*args, **kwargs)")
    save(student_notebook(EX01, {"sample_sinusoid_batch": warns})[0], subs / "warns", name)
    # (g) one 5 MB line of output, otherwise correct
    one_line = solution_sources(EX01)["sample_sinusoid_batch"] + "\n\nprint('x' * 5_000_000)"
    save(student_notebook(EX01, {"sample_sinusoid_batch": one_line})[0], subs / "oneline", name)
    # names: hidden, a spreadsheet formula, a trailing newline
    for odd in (".hidden", "=1+2", "newline\n"):
        save(student_notebook(EX01)[0], subs / odd, name)
    # bad input: not a notebook, no notebook, a badly named folder, a stray file
    (subs / "notanotebook").mkdir()
    (subs / "notanotebook" / name).write_text("this is not JSON")
    (subs / "nothing").mkdir()
    (subs / "nothing" / "answers.txt").write_text("I forgot to attach it")
    save(student_notebook(EX01)[0], subs / "bad name!", name)
    (subs / "README.txt").write_text("submissions downloaded from the LMS")
    out = tmp / "grades.csv"
    lines = []
    grade_class(subs, EX01, out, course_root=tmp / "course", timeout=LOOP_TIMEOUT, log=lines.append)
    return read_grades(out), tmp, hardcoded, lines


@needs_bwrap
class TestBadSubmissions:
    """Each student of that class is graded on their own merits."""

    def test_good_and_blank_students_are_unaffected(self, troubled_class):
        grades = troubled_class[0]
        assert float(grades["good"]["total"]) == max_total(EX01)
        assert float(grades["blank"]["total"]) == 0

    def test_exception_costs_only_that_question(self, troubled_class):
        g = troubled_class[0]["raises"]
        assert (g["test_sampler_shapes"], g["test_sampler_values"], g["test_split"]) == ("0", "0", "2")

    def test_endless_loop_is_cut_by_the_cell_time_limit(self, troubled_class):
        g = troubled_class[0]["loops"]
        assert g["status"] == GRADED
        assert (g["test_sampler_shapes"], g["test_sampler_values"], g["test_split"]) == ("2", "3", "0")
        executed = nbformat.read(troubled_class[1] / "course" / "autograded" / "loops" / EX01 / "ex01.ipynb", as_version=4)
        (split,) = [c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_split"]
        errors = [o.evalue for o in split.outputs if o.output_type == "error"]
        assert errors and "longer than the time allowed" in errors[0], errors

    def test_deleted_and_edited_tests_are_restored(self, troubled_class):
        g = troubled_class[0]["tampers"]
        assert (g["test_sampler_shapes"], g["test_sampler_values"], g["test_split"]) == ("0", "0", "2")
        assert float(g["total"]) == 2 and float(g["max_total"]) == max_total(EX01)
        executed = nbformat.read(troubled_class[1] / "course" / "autograded" / "tampers" / EX01 / "ex01.ipynb", as_version=4)
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in executed.cells]
        assert "test_sampler_shapes" in ids and "all tests pass" not in "".join(c.source for c in executed.cells)

    def test_hidden_tests_catch_hard_coded_answers(self, troubled_class):
        grades, _, hardcoded, _ = troubled_class
        passes_visible, report = check_notebook(hardcoded, timeout=60)
        assert passes_visible, f"the hard-coded answers should pass the visible tests:\n{report}"
        g = grades["hardcodes"]
        assert (g["test_sampler_values"], g["test_split"]) == ("0", "0")  # hidden tests on other seeds and shapes
        assert g["test_sampler_shapes"] == "2"  # its shapes are right

    def test_megabytes_of_output_are_graded_and_truncated(self, troubled_class):
        grades, tmp = troubled_class[0], troubled_class[1]
        assert float(grades["chatty"]["total"]) == max_total(EX01)
        feedback = tmp / "course" / "feedback" / "chatty" / EX01 / "ex01.html"
        assert feedback.stat().st_size < 1_000_000
        assert (tmp / "course" / "autograded" / "chatty" / EX01 / "ex01.ipynb").stat().st_size < 1_000_000

    @pytest.mark.parametrize("student, message", [
        ("notanotebook", "not a valid notebook"),
        ("nothing", "missing ex01.ipynb"),
        ("bad name!", "not a valid student id"),
        ("README.txt", "not a student folder"),
    ])
    def test_bad_input_is_reported_per_student(self, troubled_class, student, message):
        row = troubled_class[0][student]
        assert message in row["status"] and row["total"] == ""
        assert any(line.startswith(f"{student}: NOT GRADED") and message in line for line in troubled_class[3])

    def test_the_feedback_shows_failed_checks_but_no_hidden_test(self, troubled_class):
        tmp = troubled_class[1]
        html = (tmp / "course" / "feedback" / "hardcodes" / EX01 / "ex01.html").read_text()
        assert "hidden tests: not shown" in html and "CheckFailed" in html and "hidden case" in html
        hidden = [line.strip() for line in solution_sources_all(EX01) if "seed=123" in line or "seed=42" in line]
        assert hidden and not any(line in html for line in hidden), "a hidden test's source is in the feedback"
        assert "seed=123" not in html and "seed=42" not in html, "a hidden case's inputs are in the feedback"

    def test_a_warning_on_stderr_costs_no_marks(self, troubled_class):
        grades, tmp = troubled_class[0], troubled_class[1]
        assert float(grades["warns"]["total"]) == max_total(EX01)
        log = (tmp / "course" / "logs" / EX01 / "warns.log").read_text()
        assert "a library warning on stderr" in log, "the warning is kept in the student's log"

    def test_one_huge_line_of_output_is_cut(self, troubled_class):
        grades, tmp = troubled_class[0], troubled_class[1]
        assert float(grades["oneline"]["total"]) == max_total(EX01)
        assert (tmp / "course" / "autograded" / "oneline" / EX01 / "ex01.ipynb").stat().st_size < 1_000_000

    @pytest.mark.parametrize("shown, message", [
        (".hidden", "not a valid student id"),
        ("'=1+2", "not a valid student id"),  # escaped: a spreadsheet shows it as text
        ("newline\\n", "control character"),
    ])
    def test_odd_folder_names_get_a_row_with_the_reason(self, troubled_class, shown, message):
        row = troubled_class[0][shown]
        assert message in row["status"] and row["total"] == ""

    def test_every_student_has_a_log_with_the_reason(self, troubled_class):
        logs = troubled_class[1] / "course" / "logs" / EX01
        assert "status: graded" in (logs / "good.log").read_text()
        assert "missing ex01.ipynb" in (logs / "nothing.log").read_text()
        assert len(list(logs.glob("*.log"))) == len(troubled_class[0])

    def test_every_student_has_one_row_and_feedback(self, troubled_class):
        grades, tmp = troubled_class[0], troubled_class[1]
        assert len(grades) == 16
        for student, row in grades.items():
            if row["status"] == GRADED:
                assert (tmp / "course" / "feedback" / student / EX01 / "ex01.html").is_file(), student
        assert not [p for p in tmp.iterdir() if p.name.endswith(".tmp")], "a temporary CSV was left behind"


class TestCommandLine:
    def test_missing_assignment_fails_without_writing_a_csv(self, tmp_path):
        (tmp_path / "subs" / "alice").mkdir(parents=True)
        out = tmp_path / "grades.csv"
        result = run_cli("grade", "--submissions", str(tmp_path / "subs"), "--assignment", "ex99_nope",
                         "--out", str(out), "--course-dir", str(tmp_path / "course"))
        assert result.returncode == 2
        assert "no assignment 'ex99_nope'" in result.stderr and EX01 in result.stderr
        assert list(tmp_path.glob("grades*")) == []

    def test_missing_submissions_folder(self, tmp_path):
        with pytest.raises(GradingError, match="no submissions folder"):
            grade_class(tmp_path / "nowhere", EX01, tmp_path / "grades.csv", course_root=tmp_path / "course")
        assert not (tmp_path / "grades.csv").exists()

    def test_csv_is_replaced_atomically_or_not_at_all(self, tmp_path):
        qs = questions(EX01)
        out = tmp_path / "grades.csv"
        out.write_text("the previous grades\n")
        broken = StudentResult("alice", scores={"no such question": 1.0})  # fails half-way through writing
        with pytest.raises(KeyError):
            write_grades_csv([StudentResult("bob", scores={q.grade_id: 0.0 for q in qs}), broken], qs, out)
        assert out.read_text() == "the previous grades\n"
        assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]

    def test_check_exits_nonzero_when_visible_tests_fail(self, tmp_path):
        (exercise,) = (EXERCISES_DIR / EX01).glob("*.ipynb")
        result = run_cli("check", str(exercise), "--timeout", "60")
        assert result.returncode == 1, result.stdout + result.stderr
        assert re.search(r"3 problem\(s\)", result.stdout) and "NotImplementedError" in result.stdout


# ---------------------------------------------------------------------------------------------- a hostile class
EX02 = "ex02_maml"
WRONG_SIGN = '''
def inner_loop(model, params, x, y, inner_lr, num_steps, first_order=False):
    adapted = dict(params)
    for _ in range(num_steps):
        loss = ((functional_call(model, adapted, (x,)) - y) ** 2).mean()
        grads = torch.autograd.grad(loss, list(adapted.values()), create_graph=not first_order)
        adapted = {name: p + inner_lr * g for (name, p), g in zip(adapted.items(), grads)}  # wrong sign
    return adapted
'''


def hostile_students(tmp: Path) -> dict[str, tuple[dict[str, str], float]]:
    """Student -> (answer cells replaced by grade id, the marks their honest part deserves), for ex02.

    Each attack is one the course's grading used to fall to (issue: class grading that no submission can game).
    """
    course, out = tmp / "course", tmp / "grades.csv"
    solution = solution_sources(EX02)
    targets = [course / "gradebook.db", out, course / "source" / EX02 / "ex02.ipynb",
               course / "submitted" / "honest" / EX02 / "ex02.ipynb", tmp / "subs" / "honest" / "ex02.ipynb",
               REPO_ROOT / "metarl_course" / "__init__.py", Path.home() / ".ipython" / "profile_default" /
               "startup" / "00-evil.py", SOLUTIONS_DIR / EX02 / "ex02.ipynb"]
    intrude = f'''
import os, sqlite3
for path in {[str(t) for t in targets]!r}:
    try:
        open(path).read(100)
        print("READ", path, file=sys.stderr)
    except Exception:
        pass
    try:
        with open(path, "a") as f:
            f.write("tampered")
        print("WROTE", path, file=sys.stderr)
    except Exception:
        pass
    try:
        db = sqlite3.connect(path)
        db.execute("update grade set manual_score = 100, extra_credit = 1000")
        db.commit()
        print("WROTE", path, file=sys.stderr)
    except Exception:
        pass
    try:
        os.remove(path)
        print("DELETED", path, file=sys.stderr)
    except Exception:
        pass
try:
    big = bytearray(16 * 2**30)
    print("ALLOCATED 16 GiB", file=sys.stderr)
except MemoryError:
    pass
print("INTRUDER DONE")
'''
    kill = '''
import os, signal
for pid in [os.getppid()] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
        if pid == os.getppid() or b"pytest" in cmd or b"metarl_course.grading" in cmd or b"bwrap" in cmd:
            if pid != os.getpid():
                os.kill(pid, signal.SIGKILL)
    except Exception:
        pass
'''
    daemon = f'''
import os, subprocess, time
subprocess.Popen(["setsid", "sh", "-c", "sleep 4; echo 'honest,graded,0,0,0,0,0,8' > {out}"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(4)
        with open({str(out)!r}, "w") as f:
            f.write("cheater,graded,2,2,3,1,8,8")
    os._exit(0)
'''
    reference = '''
from metarl_course.adaptation import adapt
from metarl_course.maml import maml_meta_loss


def inner_loop(model, params, x, y, inner_lr, num_steps, first_order=False):
    out = adapt(model, params, x[None], y[None], inner_lr, num_steps, first_order=first_order)
    return {k: v[0] for k, v in out.items()}
'''
    reference_loss = '''
def meta_loss(model, params, support_x, support_y, query_x, query_y, inner_lr, num_steps, first_order=False):
    return maml_meta_loss(model, params, support_x, support_y, query_x, query_y, inner_lr, num_steps)
'''
    transformer = WRONG_SIGN + '''
def _all_ok(lines):
    return ['print("OK")\\n']


get_ipython().input_transformers_post.append(_all_ok)
'''
    rebind = WRONG_SIGN + '''
import metarl_course.adaptation, metarl_course.maml
adapt = lambda model, params, x, y, lr, n, first_order=False: {k: v[None] for k, v in inner_loop(
    model, params, x[0], y[0], lr, n, first_order).items()}
metarl_course.adaptation.adapt = adapt
'''
    monkeypatch = WRONG_SIGN + '''
import builtins, numpy
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
numpy.allclose = lambda *a, **k: True
builtins.abs = lambda x: 0.0
'''
    forge = WRONG_SIGN + '''
import json, os
lines = "".join(json.dumps({"probe": i, "data": {"type": "dict", "adapted": {}, "params_after": {}}}) + "\\n"
                for i in range(20)) + json.dumps({"done": True}) + "\\n"
for fd in range(1, 10):
    try:
        os.write(fd, lines.encode())
    except OSError:
        pass
'''
    fork = '''
import os, time
children = 0
try:
    for _ in range(300):
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
        children += 1
except OSError:
    pass
print("FORKED", children)
'''
    warn = solution["inner_loop"].replace("def inner_loop(", "def _inner(", 1) + '''


import warnings
def inner_loop(*args, **kwargs):
    warnings.warn("a library warning on stderr")
    return _inner(*args, **kwargs)
'''
    return {
        "honest": ({}, 8),
        "blank": ({"inner_loop": "raise NotImplementedError()", "meta_loss": "raise NotImplementedError()"}, 0),
        "transformer": ({"inner_loop": transformer}, 0),
        "intruder": ({"meta_loss": solution["meta_loss"] + "\nimport sys\n" + intrude}, 8),
        "killer": ({"meta_loss": solution["meta_loss"] + kill}, 8),
        "daemon": ({"meta_loss": solution["meta_loss"] + daemon}, 8),
        "reference": ({"inner_loop": reference, "meta_loss": reference_loss}, 0),
        "rebinder": ({"inner_loop": rebind}, 0),
        "monkeypatch": ({"inner_loop": monkeypatch}, 0),
        "forger": ({"inner_loop": forge + "\nos._exit(0)\n"}, 0),
        "forks": ({"meta_loss": solution["meta_loss"] + "\nimport sys\n" + fork}, 8),
        "warns": ({"inner_loop": warn}, 8),
        "exits": ({"meta_loss": solution["meta_loss"] + "\nexit()\n"}, 8),
        "sleeper": ({}, 0),  # three extra cells of 12 s each (see SLEEPER_CELLS)
    }


SLEEPER_CELLS = ["import time\ntime.sleep(12)"] * 3
"""Each under the 15 s cell limit of the hostile class, together over its 30 s per student."""


HOSTILE_WALL_SECONDS = 30
"""The per-student limit in the hostile class: the sleeper needs 36 s; an honest ex02 run takes about 5."""


@pytest.fixture(scope="class")
def hostile_class(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    students = hostile_students(tmp)
    (name,) = [p.name for p in (EXERCISES_DIR / EX02).glob("*.ipynb")]
    for student, (answers, _) in students.items():
        nb = student_notebook(EX02, answers)[0]
        if student == "sleeper":
            nb.cells += [nbformat.v4.new_code_cell(source) for source in SLEEPER_CELLS]
        save(nb, tmp / "subs" / student, name)
    before = {p: p.read_bytes() for p in (REPO_ROOT / "metarl_course" / "__init__.py",
                                          SOLUTIONS_DIR / EX02 / "ex02.ipynb")}
    out = tmp / "grades.csv"
    grade_class(tmp / "subs", EX02, out, course_root=tmp / "course", timeout=15, wall_seconds=HOSTILE_WALL_SECONDS,
                log=lambda line: None, jobs=2)
    csv_after_grading = out.read_bytes()
    time.sleep(6)  # longer than the daemons wait before they strike
    return tmp, students, read_grades(out), csv_after_grading, before


@needs_bwrap
class TestHostileClass:
    """Attacks on the grader: each student gets what their honest part deserves, and nobody else is touched."""

    def test_every_student_gets_exactly_their_honest_marks(self, hostile_class):
        tmp, students, grades, _, _ = hostile_class
        assert set(grades) == set(students)
        got = {s: float(grades[s]["total"]) for s in students}
        assert got == {s: float(marks) for s, (_, marks) in students.items()}

    def test_nothing_outside_the_sandbox_changed(self, hostile_class):
        tmp, _, _, csv_after_grading, before = hostile_class
        for path, content in before.items():
            assert path.read_bytes() == content, f"{path} was changed by a student"
        assert (tmp / "grades.csv").read_bytes() == csv_after_grading, "the CSV was rewritten after grading"
        assert not (Path.home() / ".ipython" / "profile_default" / "startup" / "00-evil.py").exists()
        submitted = tmp / "course" / "submitted" / "honest" / EX02 / "ex02.ipynb"
        assert b"tampered" not in submitted.read_bytes()
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{tmp / 'course' / 'gradebook.db'}") as gb:
            for student in gb.students:
                for nb in gb.find_submission(EX02, student.id).notebooks:
                    for grade in nb.grades:
                        assert grade.manual_score is None and not grade.extra_credit, (student.id, grade.name)

    def test_the_sandbox_saw_none_of_the_grader_files(self, hostile_class):
        tmp = hostile_class[0]
        log = (tmp / "course" / "logs" / EX02 / "intruder.log").read_text()
        assert "INTRUDER DONE" in log  # the attack ran to its end, and its printing is in the log
        for word in ("READ ", "WROTE ", "DELETED ", "ALLOCATED"):
            assert word not in log, f"the intruder's sandbox could do this: {log[log.index(word):][:200]}"

    def test_processes_are_limited_and_die_with_the_sandbox(self, hostile_class):
        tmp = hostile_class[0]
        log = (tmp / "course" / "logs" / EX02 / "forks.log").read_text()
        forked = int(re.search(r"FORKED (\d+)", log).group(1))
        assert forked < 300 or os.geteuid() == 0 and not Path("/sys/fs/cgroup/pids").is_dir(), forked
        leftovers = subprocess.run(["pgrep", "-f", "sleep 4; echo"], capture_output=True, text=True).stdout
        assert not leftovers.strip(), "a student's process outlived its sandbox"

    def test_reference_functions_are_unavailable_and_say_why(self, hostile_class):
        tmp = hostile_class[0]
        executed = nbformat.read(tmp / "course" / "autograded" / "reference" / EX02 / "ex02.ipynb", as_version=4)
        errors = " ".join(o.evalue for c in executed.cells if c.cell_type == "code" for o in c.outputs
                          if o.output_type == "error")
        assert "is one of the answers of this exercise" in errors and "write it yourself" in errors

    def test_the_time_limit_is_per_student(self, hostile_class):
        grades = hostile_class[2]
        assert f"longer than the {HOSTILE_WALL_SECONDS} s allowed per student" in grades["sleeper"]["status"]

    def test_a_warning_and_a_stray_exit_cost_nothing(self, hostile_class):
        tmp, _, grades, _, _ = hostile_class
        assert float(grades["warns"]["total"]) == float(grades["exits"]["total"]) == 8
        assert "a library warning on stderr" in (tmp / "course" / "logs" / EX02 / "warns.log").read_text()

    def test_the_gradebook_survives_the_class(self, hostile_class):
        tmp = hostile_class[0]
        assert (tmp / "course" / "gradebook.db").is_file()

    def test_out_path_that_is_a_folder_fails_before_grading(self, tmp_path):
        (tmp_path / "subs" / "alice").mkdir(parents=True)
        (tmp_path / "grades.csv").mkdir()
        with pytest.raises(GradingError, match="is a folder"):
            grade_class(tmp_path / "subs", EX02, tmp_path / "grades.csv", course_root=tmp_path / "course")
        assert not (tmp_path / "course").exists()


def test_the_sandbox_scratch_does_not_hide_a_python_under_tmp(tmp_path):
    """A course checkout (and its venv) may live under /tmp, as in CI: the sandbox's scratch /tmp is mounted first,
    so the read-only view of the Python installation mounted after it stays visible."""
    from metarl_course.grading.sandbox import Limits, sandbox_command

    cmd = sandbox_command("bwrap", tmp_path, tmp_path, Limits())
    scratch = cmd.index("--tmpfs")
    binds = [i for i, arg in enumerate(cmd) if arg == "--ro-bind" and cmd[i + 1] not in ("/usr",)]
    assert binds and all(i > scratch for i in binds), "every read-only bind must come after the scratch /tmp"


def test_the_gradebook_is_backed_up_before_a_run_changes_it(tmp_path):
    """Every earlier grade survives a run that fails or is killed: ``gradebook.db.bak`` is SQLite's own copy of it."""
    import sqlite3

    from metarl_course.grading.classroom import _back_up_gradebook

    db = sqlite3.connect(tmp_path / "gradebook.db")
    db.execute("create table grade (student text, score real)")
    db.execute("insert into grade values ('alice', 7)")
    db.commit()
    db.close()
    _back_up_gradebook(tmp_path)
    copy = sqlite3.connect(tmp_path / "gradebook.db.bak")
    assert copy.execute("select student, score from grade").fetchall() == [("alice", 7.0)]
    copy.close()
    (tmp_path / "gradebook.db").unlink()
    _back_up_gradebook(tmp_path)  # no gradebook yet (a first run): nothing to copy, the old copy stays
    assert (tmp_path / "gradebook.db.bak").is_file()
