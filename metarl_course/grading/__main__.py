"""Command line: ``python -m metarl_course.grading {generate,check,grade} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metarl_course.grading.course import DEFAULT_TIMEOUT, DEFAULT_WALL_SECONDS, SOLUTIONS_DIR, GradingError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metarl_course.grading",
                                     description="Generate exercises, check a notebook, grade a class (nbgrader).")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="regenerate exercises/ from solutions/")
    g.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    g.add_argument("--check", action="store_true", help="only report whether exercises/ is up to date (exit 1 if not)")
    c = sub.add_parser("check", help="run a notebook's visible tests (exit 1 if any fails)")
    c.add_argument("notebook", type=Path)
    c.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds per cell (default %(default)s)")
    r = sub.add_parser("grade", help="autograde a class, write feedback and a CSV of per-question scores")
    r.add_argument("--submissions", type=Path, required=True,
                   help="one folder per student: STUDENT/ASSIGNMENT/NB.ipynb or STUDENT/NB.ipynb")
    r.add_argument("--assignment", required=True, help="e.g. ex01_task_distributions")
    r.add_argument("--out", type=Path, required=True, help="the grades CSV to write")
    r.add_argument("--course-dir", type=Path, default=Path("classroom"),
                   help="nbgrader course folder for this class (default: %(default)s)")
    r.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR, help="the solutions folder (default: the course's)")
    r.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds per cell (default %(default)s)")
    r.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    r.add_argument("--jobs", type=int, default=None, help="students graded side by side (default: every core)")
    r.add_argument("--time-limit", type=int, default=DEFAULT_WALL_SECONDS,
                   help="seconds one student's whole notebook may run (default %(default)s)")
    r.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap (trusted code only: it sees the grader's files)")
    args = parser.parse_args(argv)
    if getattr(args, "timeout", 1) < 1:
        parser.error("--timeout must be a positive number of seconds")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1 (the number of students graded side by side)")
    if getattr(args, "time_limit", 1) < 1:
        parser.error("--time-limit must be a positive number of seconds")
    try:
        return _run(args)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "generate":
        from metarl_course.grading.course import generate_exercises, stale_exercises

        if args.check:
            problems = stale_exercises()
            for p in problems:
                print(p)
            print("exercises/ is up to date" if not problems else
                  "exercises/ is out of date: run `python -m metarl_course.grading generate`")
            return 1 if problems else 0
        for name in generate_exercises(args.assignments or None):
            print(f"exercises/{name}/ generated from solutions/{name}/")
        return 0
    if args.command == "check":
        from metarl_course.grading.check import check_notebook

        ok, report = check_notebook(args.notebook, args.timeout)
        print(report)
        return 0 if ok else 1
    from metarl_course.grading.classroom import GRADED, grade_class

    results = grade_class(args.submissions, args.assignment, args.out, course_root=args.course_dir,
                          solutions_dir=args.solutions, timeout=args.timeout, feedback=not args.no_feedback,
                          jobs=args.jobs, sandbox=not args.no_sandbox, wall_seconds=args.time_limit)
    problems = [r for r in results if r.status != GRADED]
    print(f"{len(results) - len(problems)} of {len(results)} submissions graded -> {args.out}"
          + (f"; feedback in {args.course_dir / 'feedback'}" if not args.no_feedback else ""))
    if problems:
        print(f"{len(problems)} could not be graded (see the status column):", file=sys.stderr)
        for r in problems:
            print(f"  {r.student}: {r.status}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
