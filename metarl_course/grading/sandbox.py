"""Run one student's code in a bubblewrap sandbox, with limits, and bring back its output.

The sandbox (``bwrap``, Debian package ``bubblewrap``) sees, read-only: the system's ``/usr``, the Python
installation and virtual environment the course runs in, and a *grader view* of the course package in which the
functions an exercise asks the student to write are replaced by stubs; read-write: an empty scratch ``/tmp``
of bounded size. Nothing else exists in it: no network (``--unshare-all``), no gradebook, no solutions, no other
submission, no instructor HOME, no host processes (its own PID namespace, so it cannot signal the grader). Its
processes die with it (``--die-with-parent``, and the whole PID namespace goes when its first process does) and
get a new session (``--new-session``). Limits: wall time per student (outside: the sandbox is killed), CPU
seconds, address space and file size per process (``setrlimit``), processes (a pids cgroup where the grader may
make one, else ``RLIMIT_NPROC``), bytes of output kept.
"""

from __future__ import annotations

import ast
import compileall
import functools
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Limits:
    """What one student's run may use."""

    wall_seconds: int = 300
    """The whole notebook and every check, per student."""
    cell_seconds: int = 60
    """One cell or one check's call (inside the run; the wall limit is the hard one)."""
    cpu_seconds: int = 300
    memory_bytes: int = 6 * 2**30
    """Address space per process (torch reserves much more than it uses: 6 GiB leaves room)."""
    processes: int = 64
    output_bytes: int = 1_000_000
    """Standard error (the student's printing) kept; more is dropped."""
    result_bytes: int = 64_000_000
    """The runner's JSON lines: a run writing more is stopped."""
    scratch_bytes: int = 256 * 2**20
    file_bytes: int = 64 * 2**20

    def __post_init__(self):
        for name, value in vars(self).items():
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")


@dataclass
class RunOutput:
    results: bytes
    log: str
    returncode: int | None
    stopped: str = ""
    """Why the run was stopped from outside ("" when it ended by itself)."""
    seconds: float = 0.0


class SandboxUnavailable(RuntimeError):
    pass


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def check_bwrap() -> str:
    """The path of ``bwrap``, after a trial run; :class:`SandboxUnavailable` saying how to get it otherwise."""
    path = bwrap_path()
    if path is None:
        raise SandboxUnavailable("grading runs student code in a bubblewrap sandbox, and `bwrap` is not installed: "
                                 "`sudo apt-get install bubblewrap` (Debian/Ubuntu) or your distribution's "
                                 "package; on macOS or Windows grade inside a Linux container or VM")
    trial = subprocess.run([path, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink",
                            "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                            "/usr/bin/true"], capture_output=True, text=True)
    if trial.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap is installed but cannot make a sandbox here ({trial.stderr.strip()}): "
                                 "it needs user namespaces (sysctl kernel.unprivileged_userns_clone=1 on older "
                                 "Debian/Ubuntu kernels) or root")
    return path


def prepare_grader_view(dest: Path, references: dict[str, list[str]]) -> Path:
    """A copy of the course package at ``dest/metarl_course`` with the ``references`` replaced by stubs.

    Args:
        references: module -> names of its functions (``"name"`` or ``"Class.method"``) that the exercise asks
            the student to write. Each keeps its signature; calling it raises
            :class:`~metarl_course.grading.checks.ReferenceUnavailable`, whatever name it was imported under.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    target = dest / "metarl_course"
    shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for module, names in references.items():
        rel = Path(*module.split(".")[1:]).with_suffix(".py")
        path = target / rel
        if not path.is_file():
            path = target / Path(*module.split(".")[1:]) / "__init__.py"
        path.write_text(_stub_functions(path.read_text(), module, names))
    compileall.compile_dir(str(target), quiet=1)
    return dest


def _stub_functions(source: str, module: str, names: list[str]) -> str:
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{sub.name}"] = sub
    for name in names:
        if name not in found:
            raise ValueError(f"{module} has no function {name!r} to hide while grading")
    for name in sorted(names, key=lambda n: -found[n].lineno):  # bottom-up keeps earlier line numbers valid
        node = found[name]
        first, last = node.body[0].lineno, node.end_lineno
        if first == node.lineno:
            raise ValueError(f"{module}.{name} is written on one line: put its body on its own lines")
        indent = " " * node.body[0].col_offset
        message = (f"{module}.{name} is one of the answers of this exercise, so it is not available while your "
                   "notebook is graded: write it yourself")
        stub = (f"{indent}from metarl_course.grading.checks import ReferenceUnavailable as _Unavailable\n"
                f"{indent}raise _Unavailable({message!r})\n")
        lines[first - 1:last] = [stub]
    return "".join(lines)


def _cgroup_for(limits: Limits) -> Path | None:
    """A fresh pids cgroup (v1, as root) for one run, or None where this process may not make one."""
    base = Path("/sys/fs/cgroup/pids")
    if os.geteuid() != 0 or not os.access(base, os.W_OK):
        return None
    path = base / f"metarl-grading-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(limits.processes))
        return path
    except OSError:
        return None


def sandbox_command(bwrap: str, view: Path, job_dir: Path, limits: Limits) -> list[str]:
    """The ``bwrap`` command line that runs the runner on ``job_dir/job.json`` with ``view`` as the course."""
    prefixes = sorted({str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    cmd = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--uid", "65534", "--gid", "65534",
           "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
           "--symlink", "usr/bin", "/bin"]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        cmd += ["--ro-bind-try", path, path]
    # the scratch /tmp first: a later mount inside it (a venv or course checkout under /tmp) must not be hidden by it
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.scratch_bytes), "--tmpfs", "/tmp"]
    for prefix in prefixes:
        if not prefix.startswith("/usr/"):
            cmd += ["--ro-bind", prefix, prefix]
    venv_python = Path(sys.executable)  # may be a symlink into the base prefix: both are bound above
    cmd += ["--ro-bind", str(Path(view).resolve()), "/grader", "--ro-bind", str(Path(job_dir).resolve()), "/job",
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PYTHONPATH", "/grader",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "MPLBACKEND", "Agg",
            "--setenv", "MPLCONFIGDIR", "/tmp", "--setenv", "IPYTHONDIR", "/tmp/.ipython",
            "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "MKL_NUM_THREADS", "1",
            "--setenv", "METARL_DEVICE", "cpu", "--setenv", "PATH", "/usr/bin:/bin",
            "--chdir", "/tmp", str(venv_python), "/grader/metarl_course/grading/runner.py", "/job/job.json"]
    return cmd


def unsandboxed_command(view: Path, job_dir: Path) -> list[str]:
    """Without bubblewrap (``--no-sandbox``): the same runner and limits, but with the grader's view of the disk."""
    return [sys.executable, str(Path(view) / "metarl_course" / "grading" / "runner.py"), str(Path(job_dir) / "job.json")]


def run(command: list[str], limits: Limits, env: dict | None = None, cwd: Path | None = None) -> RunOutput:
    """Run ``command`` with ``limits``; returns what it wrote, however it ended."""
    cgroup = _cgroup_for(limits)
    # RLIMIT_NPROC counts every process of this user (root is exempt): allow what already runs, plus the limit
    nproc = limits.processes + (0 if cgroup is not None else _own_processes())

    def restrict() -> None:  # in the child, before exec: the limits apply to everything it starts
        if cgroup is not None:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
        for which, value in ((resource.RLIMIT_CPU, limits.cpu_seconds), (resource.RLIMIT_AS, limits.memory_bytes),
                             (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_CORE, 0),
                             (resource.RLIMIT_NPROC, nproc)):
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass

    start = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=restrict, start_new_session=True, env=env, cwd=cwd)
    stopped: list[str] = []
    out, err = bytearray(), bytearray()

    def drain(stream, buffer: bytearray, cap: int, on_overflow: str | None) -> None:
        while chunk := stream.read(65536):
            if len(buffer) < cap:
                buffer.extend(chunk[:cap - len(buffer)])
            elif on_overflow and not stopped:
                stopped.append(on_overflow)
                _kill(proc)

    readers = [threading.Thread(target=drain, args=(proc.stdout, out, limits.result_bytes,
                                                    f"its results passed {limits.result_bytes:,} bytes"), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, err, limits.output_bytes, None), daemon=True)]
    for r in readers:
        r.start()
    try:
        proc.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        stopped.append(f"it ran longer than the {limits.wall_seconds} s allowed per student")
        _kill(proc)
        proc.wait()
    for r in readers:
        r.join(timeout=10)
    if cgroup is not None:
        _remove_cgroup(cgroup)
    log = err.decode("utf-8", "replace")
    if len(err) >= limits.output_bytes:
        log += f"\n... output cut at {limits.output_bytes:,} bytes ..."
    return RunOutput(bytes(out), log, proc.returncode, "; ".join(stopped), time.perf_counter() - start)


def _own_processes() -> int:
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += len(os.listdir(entry / "task"))  # threads count too
        except OSError:
            pass
    return count


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            procs = (path / "cgroup.procs").read_text().split()
            for pid in procs:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, PermissionError):
                    pass
            path.rmdir()
            return
        except OSError:
            time.sleep(0.1)
