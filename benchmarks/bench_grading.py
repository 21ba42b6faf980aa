"""How long does a class take to grade? A class of ex02 submissions graded with ``--jobs 1`` and ``--jobs N``.

The class is made of copies of three notebooks, in turn: the solution (full marks), the released exercise (zero)
and a wrong-sign inner loop (partial marks). Each student's notebook runs in its own bubblewrap sandbox; the
sandboxes run side by side (``--jobs``), then nbgrader records the scores and writes the feedback one student at
a time. The script prints, for each setting, the class total, seconds per student, and the two phases::

    .venv/bin/python benchmarks/bench_grading.py [--students 200] [--jobs 2] [--serial-students 20]

The serial run (``--jobs 1``) grades the first ``--serial-students`` students only (its per-student time is what
matters) and the ratio of per-student times is printed. Targets: 200 students of ex02 in at most 15 minutes on
2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from metarl_course.grading.classroom import GRADED, grade_class
from metarl_course.grading.course import EXERCISES_DIR, SOLUTIONS_DIR

ASSIGNMENT = "ex02_maml"


def make_class(folder: Path, students: int) -> None:
    solution = nbformat.read(SOLUTIONS_DIR / ASSIGNMENT / "ex02.ipynb", as_version=4)
    blank = nbformat.read(EXERCISES_DIR / ASSIGNMENT / "ex02.ipynb", as_version=4)
    wrong = nbformat.read(EXERCISES_DIR / ASSIGNMENT / "ex02.ipynb", as_version=4)
    answers = {c.metadata.nbgrader["grade_id"]: c.source for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for c in wrong.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            c.source = answers[gid].replace("p - inner_lr * g", "p + inner_lr * g")
    kinds = [solution, blank, wrong]
    for i in range(students):
        (folder / f"s{i:03d}").mkdir(parents=True)
        nbformat.write(kinds[i % 3], folder / f"s{i:03d}" / "ex02.ipynb")


def grade(folder: Path, jobs: int, work: Path) -> dict:
    course = work / f"course-jobs{jobs}"
    phases = {}
    start = time.perf_counter()
    results = grade_class(folder, ASSIGNMENT, work / f"grades-jobs{jobs}.csv", course_root=course, jobs=jobs,
                          log=lambda line: phases.setdefault("first row", time.perf_counter() - start))
    total = time.perf_counter() - start
    graded = sum(r.status == GRADED for r in results)
    return {"students": len(results), "graded": graded, "total": total, "per_student": total / len(results),
            "sandboxes": phases["first row"], "nbgrader": total - phases["first row"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--serial-students", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        make_class(work / "class", args.students)
        make_class(work / "serial", min(args.serial_students, args.students))
        print(f"ex02, {args.students} students, {os.cpu_count()} cores")
        rows = []
        for label, folder, jobs in (("--jobs 1", work / "serial", 1), (f"--jobs {args.jobs}", work / "class",
                                                                          args.jobs)):
            r = grade(folder, jobs, work)
            rows.append(r)
            print(f"{label:>9}: {r['students']} students ({r['graded']} graded) in {r['total']:.0f} s = "
                  f"{r['per_student']:.2f} s per student (sandboxes side by side {r['sandboxes']:.0f} s, "
                  f"then nbgrader's bookkeeping and feedback {r['nbgrader']:.0f} s)")
        serial, parallel = rows
        print(f"per-student speed-up of --jobs {args.jobs} over --jobs 1: "
              f"{serial['per_student'] / parallel['per_student']:.2f}x")
        print(f"class of {args.students} with --jobs {args.jobs}: {parallel['total'] / 60:.1f} min "
              f"(target: at most 15 min for 200 on 2 cores)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
