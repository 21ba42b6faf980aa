"""Students: check a notebook against its visible tests before handing it in.

This is ``nbgrader validate`` with an exit code that says whether the tests
passed (nbgrader's own command exits 0 even when they fail, nbgrader issue
#1908) and a short report. Passing here is necessary, not sufficient: the
grader also runs hidden tests on other inputs.
"""

from __future__ import annotations

from pathlib import Path

from metarl_course.grading.course import DEFAULT_TIMEOUT, ensure_tools_on_path


def check_notebook(path: Path, timeout: int = DEFAULT_TIMEOUT) -> tuple[bool, str]:
    """Run a notebook's visible tests; returns ``(all passed, report)``."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    path = Path(path)
    if not path.is_file():
        return False, f"no notebook at {path}"
    ensure_tools_on_path()
    config = Config()
    config.Execute.timeout = timeout
    results = Validator(config=config).validate(str(path.resolve()))
    if not results:
        return True, f"{path.name}: all visible tests pass. The grader also runs hidden tests on other inputs."
    lines = []
    for cell in results.get("type_changed", []):
        lines.append(f"a cell changed type from {cell['new_type']} to {cell['old_type']}; undo that:\n"
                     f"{_first_lines(cell['source'])}")
    for cell in results.get("changed", []):
        lines.append(f"a read-only cell was edited (the grader will restore it; undo your change):\n"
                     f"{_first_lines(cell['source'])}")
    for cell in results.get("failed", []):
        lines.append(f"FAILED:\n{_first_lines(cell['source'])}\n{_last_lines(cell['raw_error'])}")
    return False, f"{path.name}: {len(lines)} problem(s)\n\n" + "\n\n".join(lines)


def _first_lines(text: str, n: int = 3) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[:n]) + "\n    ..."


def _last_lines(text: str, n: int = 4) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-n:])
