# nbgrader's configuration for running its commands by hand in the repository root, e.g.
#   nbgrader generate_assignment ex01_task_distributions --force
# solutions/ is the source folder (instructor version) and exercises/ the release folder (student version).
# The course's own commands do the same without leaving a database behind:
#   python -m metarl_course.grading generate        (make exercises)
#   python -m metarl_course.grading grade ...       (grade a class in classroom/, see README)
c = get_config()  # noqa: F821
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.Execute.timeout = 60  # seconds per cell
c.OverwriteCells.add_missing_cells = True  # restore test cells a student deleted
# `nbgrader autograde` runs student code in a bubblewrap sandbox and decides the verdicts outside it
from metarl_course.grading.preprocessors import autograde_preprocessors, feedback_preprocessors  # noqa: E402

c.Autograde.autograde_preprocessors = autograde_preprocessors()
c.SandboxedChecks.source_directory = "solutions"
c.GenerateFeedback.preprocessors = feedback_preprocessors()  # the feedback shows no hidden test
