"""Exercises and grading: exercises are generated from solutions, solutions score full marks, blank exercises
score zero, and a class with broken, tampered, hard-coded, endless and chatty submissions is graded correctly.

The tests are grouped in classes: pytest-xdist's ``--dist loadscope`` sends each class to one worker, so the
expensive class-scoped grading runs happen once each and in parallel with the rest of the suite.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
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
OWN_CLASS = ("ex03_task_distributions", "ex04_maml_rl", "ex05_rl2", EX06)
"""Assignments graded in a class of their own (below), so that pytest-xdist grades them in parallel."""
LOOP_TIMEOUT = 15  # seconds per cell in the class with an endless loop; ex01's cells need well under 5


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


class TestSolutionsAndBlankExercises:
    """Every assignment: its solution notebook scores full marks, its released exercise scores zero."""

    @pytest.mark.parametrize("assignment", [a for a in list_assignments() if a not in OWN_CLASS])
    def test_solution_full_marks_exercise_zero(self, graded_solutions_and_blanks, assignment):
        grades, course = graded_solutions_and_blanks[assignment]
        assert_solution_full_marks_exercise_zero(grades, course, assignment)


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
        errors = [o.ename for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert "CellTimeoutError" in errors or "KeyboardInterrupt" in errors, errors

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
        assert "hidden tests: not shown" in html and "AssertionError" in html
        hidden = [line.strip() for line in solution_sources_all(EX01) if "seed=123" in line or "seed=42" in line]
        assert hidden and not any(line in html for line in hidden), "a hidden test's source is in the feedback"

    def test_a_warning_on_stderr_costs_no_marks(self, troubled_class):
        grades, tmp = troubled_class[0], troubled_class[1]
        assert float(grades["warns"]["total"]) == max_total(EX01)
        executed = nbformat.read(tmp / "course" / "autograded" / "warns" / EX01 / "ex01.ipynb", as_version=4)
        texts = [o.text for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"]
        assert any("a library warning on stderr" in t for t in texts), "the warning is still shown"

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
