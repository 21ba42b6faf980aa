"""Classroom exercises and grading with nbgrader.

``solutions/`` is nbgrader's source folder (solutions between ``### BEGIN
SOLUTION`` / ``### END SOLUTION``, graded test cells, hidden tests between
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``) and ``exercises/`` its
release folder, generated from it. The command line (``python -m
metarl_course.grading --help``):

* ``generate``: rewrite ``exercises/`` from ``solutions/`` (``--check``: only say whether they differ);
* ``check NOTEBOOK``: a student runs the visible tests of a notebook, with a meaningful exit code;
* ``grade --submissions DIR --assignment NAME --out grades.csv``: an instructor grades a whole class.
"""

from metarl_course.grading.course import GradingError, generate_exercises, list_assignments, stale_exercises

__all__ = ["GradingError", "generate_exercises", "list_assignments", "stale_exercises"]
