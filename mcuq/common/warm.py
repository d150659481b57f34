"""A warm child process: the TensorFlow converter's child, kept alive between conversions.

Importing TensorFlow costs ~7 s of a ~12 s conversion; a session that converts several models
(a test run, ``deploy`` of several boards) pays it once per worker instead of once per model.
The worker is fenced in exactly like a one-shot child (``mcuq.common.isolation``): its own
process group, ``PR_SET_PDEATHSIG``, a ``mcuq-child-<pid>-*`` temp folder and stage file per
request, its group killed on timeout. It serves one request at a time: the parent sends the
request's paths (and its own stdout/stderr, so output lands where a fresh child's would) over
a Unix socket; the worker calls ``MODULE.serve_request(request_path, response_path)`` and
answers whether it is still fit for another request.

Why a worker is retired (the next request starts a fresh one):

* **It failed.** A crash, a timeout or a lost socket ends it; the request gets the same
  ``ChildFailure`` a one-shot child gives (same stage, same detail), nothing is retried.
* **Its state may leak into the next answer.** The module says so (``serve_request`` returns
  False: an error answer, or user Python code ran: a ``module:function`` calibration stays in
  ``sys.modules`` and an edited file would be ignored), or the parent's environment or the
  caller's ``key`` (e.g. ``--verbose``, fixed when TensorFlow was imported) changed.
* **It grew.** TensorFlow keeps memory across conversions: after ``MAX_REQUESTS`` requests or
  past ``MAX_RSS_BYTES`` resident (benchmarks/warm_converter.py measured both).

``MCUQ_WARM_WORKER=0`` runs one child per request, as before. A request made while the worker
is busy (another thread), or from a thread other than the main one (the death signal follows
the thread that started the child), also gets a one-shot child.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcuq.common.isolation import (
    DEFAULT_TIMEOUT,
    STAGE_ENV,
    ChildFailure,
    clean_stale_temp,
    crash_detail,
    run_isolated_ex,
)

WARM_ENV = "MCUQ_WARM_WORKER"
MAX_REQUESTS = 50
MAX_RSS_BYTES = 1536 * 1024 * 1024
# Variables that change between calls without changing any answer (pytest names the running
# test in one): a worker is not retired for them.
_ENV_IGNORED = frozenset({WARM_ENV, STAGE_ENV, "PYTEST_CURRENT_TEST"})
_MESSAGE_LIMIT = 1 << 16


@dataclass
class _Worker:
    """One live worker: its process, the parent's end of the socket, what it was started for."""

    proc: subprocess.Popen[bytes]
    sock: socket.socket
    module: str
    fingerprint: str
    owner: int  # the pid that started it: a forked copy of mcuq must not talk to its parent's worker
    served: int = 0


_LOCK = threading.Lock()
_WORKERS: dict[str, _Worker] = {}


def warm_enabled() -> bool:
    """``MCUQ_WARM_WORKER=0`` (or ``false``/``no``/``off``) restores one child per request."""
    return os.environ.get(WARM_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def run_warm_ex(
    module: str,
    request: Mapping[str, object],
    capture_stderr: bool,
    timeout: float | None = DEFAULT_TIMEOUT,
    key: str = "",
) -> tuple[Any, ChildFailure | None]:
    """``run_isolated_ex`` on the module's warm worker: (answer, None) or (None, why no answer).

    ``key``: what the worker's state depends on besides the environment (a worker started for
    another key is retired). Falls back to a one-shot child when warm workers are off, the
    worker is busy, or the caller is not the main thread."""
    if not warm_enabled() or threading.current_thread() is not threading.main_thread():
        return run_isolated_ex(module, request, capture_stderr, timeout)
    if not _LOCK.acquire(blocking=False):
        return run_isolated_ex(module, request, capture_stderr, timeout)
    try:
        return _run_on_worker(module, request, capture_stderr, timeout, key)
    finally:
        _LOCK.release()


def worker_pid(module: str) -> int | None:
    """The pid of the module's live worker, if any (for tests and benchmarks)."""
    worker = _WORKERS.get(module)
    return worker.proc.pid if worker is not None and worker.proc.poll() is None else None


def retire_all() -> None:
    """End every worker (the next request starts a fresh one)."""
    with _LOCK:
        _retire_owned()


def _retire_owned() -> None:
    for module in list(_WORKERS):
        if _WORKERS[module].owner == os.getpid():
            _retire(module)


def _retire_at_exit() -> None:
    """An idle worker is reaped at exit rather than left to the death signal (never blocks:
    a request still holding the lock is taken down by that signal)."""
    if _LOCK.acquire(blocking=False):
        try:
            _retire_owned()
        finally:
            _LOCK.release()


atexit.register(_retire_at_exit)


def _fingerprint(key: str) -> str:
    """What a worker inherited at start: the environment (a fresh child would see today's), the key."""
    env = sorted((k, v) for k, v in os.environ.items() if k not in _ENV_IGNORED)
    return hashlib.sha256(json.dumps([env, key]).encode()).hexdigest()


def _run_on_worker(
    module: str, request: Mapping[str, object], capture_stderr: bool, timeout: float | None, key: str
) -> tuple[Any, ChildFailure | None]:
    try:
        cwd = os.getcwd()
    except OSError:  # the caller's folder was removed: a one-shot child copes as it always did
        return run_isolated_ex(module, request, capture_stderr, timeout)
    clean_stale_temp()
    with tempfile.TemporaryDirectory(prefix=f"mcuq-child-{os.getpid()}-") as tmp:
        req_path, resp_path, stage_path = Path(tmp) / "request.pkl", Path(tmp) / "response.pkl", Path(tmp) / "stage"
        err_path = Path(tmp) / "stderr"
        req_path.write_bytes(pickle.dumps(request))
        message = {"request": str(req_path), "response": str(resp_path), "stage": str(stage_path), "cwd": cwd}
        worker = _send(module, _fingerprint(key), message, capture_stderr, err_path)
        if worker is None:  # the worker could not even be started or reached: as a one-shot child would
            return run_isolated_ex(module, request, capture_stderr, timeout)
        reply, timed_out = _await_reply(worker, timeout)
        stage = stage_path.read_text() if stage_path.is_file() else ""
        if timed_out:
            returncode = _retire(module)
            return None, ChildFailure(f"timed out after {timeout:g} s", stage, True, returncode)
        stderr = err_path.read_text(errors="replace") if capture_stderr and err_path.is_file() else None
        if reply is None or not resp_path.exists():
            returncode = _retire(module)
            return None, ChildFailure(crash_detail(returncode, stderr), stage, False, returncode)
        answer = pickle.loads(resp_path.read_bytes())
        worker.served += 1
        if reply != b"1" or worker.served >= MAX_REQUESTS or _rss_bytes(worker.proc.pid) > MAX_RSS_BYTES:
            _retire(module)
        return answer, None


def _send(module: str, fingerprint: str, message: dict[str, str], capture_stderr: bool, err_path: Path) -> _Worker | None:
    """Hand the request to a live worker (a fresh one if there is none, it died, or it was
    started for another environment/key); None if no worker would take it."""
    for _attempt in range(2):
        worker = _WORKERS.get(module)
        if worker is not None and worker.owner != os.getpid():  # inherited through fork(): not ours to use or kill
            _WORKERS.pop(module).sock.close()
            worker = None
        if worker is not None and (worker.proc.poll() is not None or worker.fingerprint != fingerprint):
            _retire(module)
            worker = None
        if worker is None:
            worker = _start(module, fingerprint)
        fds = _output_fds(capture_stderr, err_path)
        try:
            socket.send_fds(worker.sock, [json.dumps(message).encode()], fds)
            return worker
        except OSError:  # it died before the request reached it: nothing ran, a fresh worker may take it
            _retire(module)
        finally:
            for fd in fds:
                if fd > 2:
                    os.close(fd)
    return None


def _output_fds(capture_stderr: bool, err_path: Path) -> list[int]:
    """The worker's stdout and stderr for this request: where a one-shot child's would go."""
    if not capture_stderr:
        return [1, 2]
    return [os.open(os.devnull, os.O_WRONLY), os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]


def _start(module: str, fingerprint: str) -> _Worker:
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcuq.common.isolation", "--serve", str(os.getpid()), module, str(child_end.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=[child_end.fileno()],
            start_new_session=True,
        )
    except BaseException:
        parent_end.close()
        raise
    finally:
        child_end.close()
    worker = _Worker(proc, parent_end, module, fingerprint, os.getpid())
    _WORKERS[module] = worker
    return worker


def _await_reply(worker: _Worker, timeout: float | None) -> tuple[bytes | None, bool]:
    """(reply, timed out): the reply is None when the worker died or the socket was lost. A
    worker that is dying (``sys.exit`` in the request: its socket may close before Python has
    finished exiting) is waited for, so its exit status is its own, not our kill's."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        worker.sock.settimeout(timeout)
        try:
            reply = worker.sock.recv(_MESSAGE_LIMIT)
        except TimeoutError:
            return None, True
        except OSError:
            reply = b""
        if reply:
            return reply, False
        try:
            worker.proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None, True
        return None, False
    except BaseException:  # KeyboardInterrupt: take the worker (and its children) down too
        _retire(worker.module)
        raise


def _retire(module: str) -> int:
    """Kill the module's worker and its group, reap it; its exit status (0 if there was none)."""
    worker = _WORKERS.pop(module, None)
    if worker is None:
        return 0
    worker.sock.close()
    if worker.proc.poll() is None:
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            worker.proc.kill()
    else:  # it exited on its own: its group may still hold a grandchild
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return worker.proc.wait()


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process (0 where /proc is not there: then only MAX_REQUESTS retires)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def serve(module_name: str, sock_fd: int) -> None:
    """The worker's loop (``python -m mcuq.common.isolation --serve PARENT MODULE FD``, fenced by
    the caller): one request at a time, until the parent closes the socket or kills it.

    A request's exception or ``sys.exit`` is not caught: it ends the worker with the traceback
    on the request's stderr and the exit status a one-shot child would have had."""
    sock = socket.socket(fileno=sock_fd)
    serve_request = None
    cwd_on_path = bool(sys.path) and sys.path[0] == os.getcwd()  # not under -P / PYTHONSAFEPATH
    while True:
        data, fds, _flags, _addr = socket.recv_fds(sock, _MESSAGE_LIMIT, 2)
        if not data:
            return
        message = json.loads(data)
        os.chdir(message["cwd"])
        if cwd_on_path:  # what ``python -m`` started in the caller's folder would have there
            sys.path[0] = message["cwd"]
        os.environ[STAGE_ENV] = message["stage"]
        saved = _redirect_output(fds)
        if serve_request is None:  # imported inside the first request: an import error shows on its stderr
            serve_request = importlib.import_module(module_name).serve_request
        keep = bool(serve_request(message["request"], message["response"]))
        _restore_output(saved)
        os.environ.pop(STAGE_ENV, None)
        sock.sendall(b"1" if keep else b"0")


def _redirect_output(fds: list[int]) -> list[int]:
    """Point fds 1 and 2 at the request's stdout/stderr; the previous ones, for ``_restore_output``."""
    saved = [os.dup(1), os.dup(2)]
    for target, fd in zip((1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    return saved


def _restore_output(saved: list[int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for target, fd in zip((1, 2), saved):
        os.dup2(fd, target)
        os.close(fd)
