"""Run a risky native step (TFLite converter, TFLite Micro, LiteRT) in a child process.

A segfault there must become an error message, not a dead mcuq. The child is
``python -m MODULE REQUEST RESPONSE``: it reads a pickled request and writes a pickled answer;
a missing answer or a non-zero exit means it crashed.

Why the child is fenced in as it is:

* **Bounded time.** Every child step has a time limit; on expiry the child's whole process
  group is killed and the caller gets "timed out after N s" instead of a hang.
* **Dies with mcuq.** The child asks the kernel for SIGKILL when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``) and runs in its own process group, so ``kill -9`` of mcuq or a
  Ctrl-C leaves no converter or TFLite Micro process behind.
* **No data left behind.** The request (the model, the calibration data) lives in a
  ``mcuq-child-<pid>-*`` folder that is removed when the step ends; a folder whose mcuq process
  was killed is removed at the next start (``clean_stale_temp``).
* **Named crashes.** The child records which stage it is in (``mark_stage``), so a crash in a
  user's calibration function is reported as that, not as a converter problem.

The TensorFlow converter's child can stay alive between requests, fenced the same way
(``mcuq.common.warm``): TensorFlow is then imported once per worker, not once per model.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAGE_ENV = "MCUQ_CHILD_STAGE"
DEFAULT_TIMEOUT = 1800.0
_TEMP_RE = re.compile(r"^mcuq-child-(?P<pid>\d+)-")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildFailure:
    """Why a child produced no answer: its exit, the stage it was in, whether it timed out."""

    detail: str
    stage: str = ""
    timed_out: bool = False
    returncode: int = 0


def crash_detail(returncode: int, stderr: str | None) -> str:
    """`signal 11` / `exit code 3`, plus the child's last stderr line when it was captured."""
    detail = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    tail = ((stderr or "").strip().splitlines() or [""])[-1][:200]
    return f"{detail}: {tail}" if tail else detail


def _die_with_parent(parent: int) -> None:
    """In the child, first thing: SIGKILL when the parent dies; exit if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the process group still lets the parent kill the child on timeout
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def pid_alive(pid: int) -> bool:
    """Whether a process still runs (stale temp and staging folders are recognised by their owner's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temp(tmpdir: str | None = None) -> int:
    """Remove ``mcuq-child-<pid>-*`` folders whose mcuq process no longer runs; return how many."""
    root = Path(tmpdir or tempfile.gettempdir())
    removed = 0
    try:
        entries = list(root.iterdir())
    except OSError:
        return 0
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m and not pid_alive(int(m.group("pid"))) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def mark_stage(stage: str) -> None:
    """Called in the child: remember what it is doing, for the crash message if it dies."""
    path = os.environ.get(STAGE_ENV)
    if path:
        try:
            Path(path).write_text(stage)
        except OSError:
            pass


def child_temp_dir() -> Path | None:
    """In the child: its parent's private temp folder (removed with it), for scratch files."""
    path = os.environ.get(STAGE_ENV)
    return Path(path).parent if path else None


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_isolated_ex(
    module: str, request: Mapping[str, object], capture_stderr: bool, timeout: float | None = DEFAULT_TIMEOUT
) -> tuple[Any, ChildFailure | None]:
    """(answer, None) or (None, why the child gave no answer)."""
    clean_stale_temp()
    with tempfile.TemporaryDirectory(prefix=f"mcuq-child-{os.getpid()}-") as tmp:
        req_path, resp_path, stage_path = Path(tmp) / "request.pkl", Path(tmp) / "response.pkl", Path(tmp) / "stage"
        req_path.write_bytes(pickle.dumps(request))
        env = {**os.environ, STAGE_ENV: str(stage_path)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcuq.common.isolation", str(os.getpid()), module, str(req_path), str(resp_path)],
            stderr=subprocess.PIPE if capture_stderr else None,
            stdout=subprocess.DEVNULL if capture_stderr else None,
            text=True,
            env=env,
            start_new_session=True,
        )
        timed_out = False
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            _, stderr = proc.communicate()
        except BaseException:  # KeyboardInterrupt: take the child (and its children) down too
            _kill_group(proc)
            proc.wait()
            raise
        stage = stage_path.read_text() if stage_path.is_file() else ""
        if timed_out:
            return None, ChildFailure(f"timed out after {timeout:g} s", stage, True, proc.returncode)
        if proc.returncode != 0 or not resp_path.exists():
            return None, ChildFailure(crash_detail(proc.returncode, stderr), stage, False, proc.returncode)
        return pickle.loads(resp_path.read_bytes()), None


def run_isolated(
    module: str, request: Mapping[str, object], capture_stderr: bool, timeout: float | None = DEFAULT_TIMEOUT
) -> tuple[Any, str]:
    """(answer or None if the child crashed or timed out, crash detail)."""
    answer, failure = run_isolated_ex(module, request, capture_stderr, timeout)
    return answer, failure.detail if failure else ""


def _child_entry(argv: list[str]) -> None:
    """``python -m mcuq.common.isolation PARENT_PID MODULE REQUEST RESPONSE``: fence, then run MODULE;
    ``... --serve PARENT_PID MODULE SOCKET_FD``: fence, then serve MODULE's requests (``mcuq.common.warm``)."""
    import runpy

    if argv[0] == "--serve":
        _die_with_parent(int(argv[1]))
        from mcuq.common.warm import serve

        serve(argv[2], int(argv[3]))
        return
    _die_with_parent(int(argv[0]))
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _child_entry(sys.argv[1:])
