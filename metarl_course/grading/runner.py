"""The grader's runner: executes one student's notebook code and the checks' probes, inside the sandbox.

Run as ``python runner.py JOB.json``: it executes the job's cells in order in one IPython shell (magics work as
in a notebook; an error in a cell is recorded and the next cell still runs), then calls each requested probe on
the student's functions, and writes one JSON line per cell and per probe to its standard output. The student's
own printing goes to standard error. Nothing here decides a verdict: the grader does, outside the sandbox, on
the plain data written here (see :mod:`metarl_course.grading.verdicts`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys

CELL_OUTPUT_CHARS = 4000


class CellTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CellTimeout("this cell ran longer than the time allowed for one cell")


def main(job_path: str) -> None:
    result = os.fdopen(os.dup(1), "w")  # the results go here; the student's own output goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(obj: dict) -> None:
        result.write(json.dumps(obj, allow_nan=True) + "\n")
        result.flush()

    with open(job_path) as f:
        job = json.load(f)
    timeout = int(job.get("cell_timeout", 60))
    # the checks are imported before any student code runs
    from metarl_course.grading.checks import call_probe, describe_exception, get_check

    checks = {r["check"]: get_check(r["check"]) for r in job["requests"]}
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="NoColor")
    signal.signal(signal.SIGALRM, _alarm)
    for i, cell in enumerate(job["cells"]):
        buffer = io.StringIO()
        signal.alarm(timeout)
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                run = shell.run_cell(cell["source"], store_history=False)
            error = run.error_before_exec or run.error_in_exec
        except BaseException as exc:  # noqa: BLE001 - whatever a cell does, the next cell still runs
            error = exc
        finally:
            signal.alarm(0)
        text = buffer.getvalue()
        if len(text) > CELL_OUTPUT_CHARS:
            text = text[:CELL_OUTPUT_CHARS] + f"\n... output truncated ({len(text):,} characters in all) ..."
        emit({"cell": i, "output": text, "error": describe_exception(error) if error is not None else None})
    namespace = shell.user_ns
    failed_cells = set()  # a test cell whose probe raised has failed: its other cases are not run
    for j, request in enumerate(job["requests"]):
        if request.get("cell") in failed_cells:
            emit({"probe": j, "skipped": True})
            continue
        missing = [name for name in request["answers"] if name not in namespace]
        if missing:
            emit({"probe": j, "error": f"{', '.join(missing)} is not defined when the notebook has run: keep its "
                                       "name and run the cell that defines it", "missing": True})
            failed_cells.add(request.get("cell"))
            continue
        answers = tuple(namespace[name] for name in request["answers"])
        signal.alarm(timeout)
        try:
            outcome = call_probe(checks[request["check"]], answers, request["case"])
        except BaseException as exc:  # noqa: BLE001 - e.g. the time limit arriving outside the student's call
            outcome = {"error": describe_exception(exc)}
        finally:
            signal.alarm(0)
        if "error" in outcome:
            failed_cells.add(request.get("cell"))
        emit({"probe": j, **outcome})
    emit({"done": True})


if __name__ == "__main__":
    main(sys.argv[1])
