"""A fork server for the x86 TFLite Micro children: one fresh process per request, in milliseconds.

``isolation.run_isolated_ex`` starts ``python -m ...`` for every request; for the TFLite Micro worker
almost all of its 0.6 s is Python's start-up and ``import numpy, tflite_micro``. Here one long-lived
server (``python -m mcuq.common.forkserver PARENT_PID MODULE REQ_FD ANS_FD``) imports the worker
module's dependencies once (its ``FORK_SERVER_PRELOAD``; no model) and **forks** a fresh child per
request that runs exactly that request, with the same request/response/stage files and the same
``mcuq-child-<pid>-*`` folder as the one-shot path, and exits. A crash or leaked native state still
dies with its own process. A captured stderr goes through a pipe to the server, which sends its tail
back with the exit status (a file in a full temp folder would lose the worker's last words).

The fences are the one-shot child's: the server asks for SIGKILL when mcuq dies and runs in its own
session; each fork asks for SIGKILL when the server dies and leads its own process group, whose pid
the server sends before it waits, so mcuq's time limit kills the fork's whole group.

The one-shot child is used instead when ``MCUQ_FORK_SERVER=0``, when the server cannot start or dies,
when another thread is using it (a non-blocking lock: no deadlock), when a non-main thread would have
to start it (``PR_SET_PDEATHSIG`` fires when the *thread* that started it ends), and in a forked mcuq
(its pid is not the one that started the server). Never use it for a module that imports TensorFlow:
forking after TensorFlow's threads exist is unsafe.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcuq.common import isolation
from mcuq.common.isolation import STAGE_ENV, ChildFailure, _die_with_parent, clean_stale_temp, crash_detail

SWITCH_ENV = "MCUQ_FORK_SERVER"
START_TIMEOUT = 120.0  # the server's imports; a loaded 2-core machine can be slow
_REAP_TIMEOUT = 30.0  # after killing a timed-out fork, how long the server may take to report it
_MAX_FAILURES = 3  # per module and mcuq process: a server that keeps dying is not worth restarting
_STDERR_TAIL = 4096
_INT = struct.Struct("<q")


@dataclass
class _Server:
    """mcuq's handle on one running server: its process and the two pipe ends mcuq holds."""

    proc: subprocess.Popen[bytes]
    to_server: int
    from_server: int
    owner: int  # the mcuq pid that started it; a forked mcuq must not talk to it
    in_flight: bool = False  # an order was sent and its end not yet read


_servers: dict[str, _Server] = {}
_failures: dict[str, int] = {}
_lock = threading.Lock()


class _ServerGone(Exception):
    """The server closed its pipe or stopped answering: the request falls back to a one-shot child."""


def enabled() -> bool:
    """``MCUQ_FORK_SERVER=0`` (or ``no``/``false``/``off``) turns the server off."""
    return os.environ.get(SWITCH_ENV, "1").strip().lower() not in {"0", "no", "false", "off"}


def run_isolated_ex(
    module: str, request: Mapping[str, object], capture_stderr: bool, timeout: float | None = isolation.DEFAULT_TIMEOUT
) -> tuple[Any, ChildFailure | None]:
    """What ``isolation.run_isolated_ex`` returns, from a fork of the module's server when one can be used."""
    if enabled() and _lock.acquire(blocking=False):
        try:
            server = _server_for(module)
            if server is not None:
                try:
                    return _run_on(server, request, capture_stderr, timeout)
                except _ServerGone:
                    _failures[module] = _failures.get(module, 0) + 1
                    stop(module)
                finally:
                    if server.in_flight:  # interrupted (Ctrl-C) while a fork ran: the server still owes its answer
                        stop(module)
        finally:
            _lock.release()
    return isolation.run_isolated_ex(module, request, capture_stderr, timeout)


def run_isolated(
    module: str, request: Mapping[str, object], capture_stderr: bool, timeout: float | None = isolation.DEFAULT_TIMEOUT
) -> tuple[Any, str]:
    """(answer or None if the child crashed or timed out, crash detail), as ``isolation.run_isolated``."""
    answer, failure = run_isolated_ex(module, request, capture_stderr, timeout)
    return answer, failure.detail if failure else ""


def server_pid(module: str) -> int | None:
    """The running server's pid for ``module`` in this mcuq process (tests and benchmarks ask)."""
    server = _servers.get(module)
    if server is None or server.owner != os.getpid() or server.proc.poll() is not None:
        return None
    return server.proc.pid


def stop(module: str) -> None:
    """Kill ``module``'s server (and a fork it still runs); the next request starts a new one."""
    server = _servers.pop(module, None)
    if server is not None and server.owner == os.getpid():
        _discard(server)


def _discard(server: _Server) -> None:
    for fd in (server.to_server, server.from_server):
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()


def stop_all() -> None:
    """At exit: no server outlives mcuq even without PR_SET_PDEATHSIG (not Linux)."""
    for module in list(_servers):
        stop(module)


atexit.register(stop_all)


def _server_for(module: str) -> _Server | None:
    """This process's live server for ``module``, started if this is the main thread; else None."""
    server = _servers.get(module)
    if server is not None and server.owner != os.getpid():
        return None  # a forked mcuq: the server and its pipes belong to the parent; one-shot children here
    if server is not None and server.proc.poll() is not None:
        _failures[module] = _failures.get(module, 0) + 1
        stop(module)
        server = None
    if server is None and threading.current_thread() is threading.main_thread() and _failures.get(module, 0) < _MAX_FAILURES:
        server = _start(module)
        if server is None:
            _failures[module] = _failures.get(module, 0) + 1
        else:
            _servers[module] = server
    return server


def _start(module: str) -> _Server | None:
    """Start a server and wait until it has imported ``module``'s dependencies; None if it could not."""
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcuq.common.forkserver", str(os.getpid()), module, str(req_r), str(ans_w)],
            stdin=subprocess.DEVNULL,
            pass_fds=(req_r, ans_w),
            start_new_session=True,
        )
    except OSError:
        for fd in (req_r, req_w, ans_r, ans_w):
            os.close(fd)
        return None
    os.close(req_r)
    os.close(ans_w)
    server = _Server(proc, req_w, ans_r, os.getpid())
    try:
        ready = _read_int(server, START_TIMEOUT) == 0
    except (_ServerGone, TimeoutError):
        ready = False
    if not ready:
        _discard(server)
        return None
    return server


def _run_on(server: _Server, request: Mapping[str, object], capture_stderr: bool, timeout: float | None) -> tuple[Any, ChildFailure | None]:
    """One request in a fork, with the one-shot path's files, folder and answers."""
    clean_stale_temp()
    with tempfile.TemporaryDirectory(prefix=f"mcuq-child-{os.getpid()}-") as tmp:
        req_path, resp_path, stage_path = Path(tmp) / "request.pkl", Path(tmp) / "response.pkl", Path(tmp) / "stage"
        req_path.write_bytes(pickle.dumps(request))
        order = {
            "argv": [str(req_path), str(resp_path)],
            "env": {**os.environ, STAGE_ENV: str(stage_path)},
            "cwd": os.getcwd(),
            "capture_stderr": capture_stderr,
        }
        returncode, stderr, timed_out = _fork_and_wait(server, pickle.dumps(order), timeout)
        stage = stage_path.read_text() if stage_path.is_file() else ""
        if timed_out:
            return None, ChildFailure(f"timed out after {timeout:g} s", stage, True, returncode)
        if returncode != 0 or not resp_path.exists():
            return None, ChildFailure(crash_detail(returncode, stderr if capture_stderr else None), stage, False, returncode)
        return pickle.loads(resp_path.read_bytes()), None


def _fork_and_wait(server: _Server, order: bytes, timeout: float | None) -> tuple[int, str, bool]:
    """Send the order, learn the fork's pid, wait for its end: (returncode, stderr tail, timed out)."""
    data = memoryview(_INT.pack(len(order)) + order)
    try:
        while data:
            data = data[os.write(server.to_server, data) :]
    except OSError:
        raise _ServerGone from None
    server.in_flight = True
    try:
        pid = _read_int(server, START_TIMEOUT)
    except TimeoutError:
        raise _ServerGone from None
    try:
        end = (*_read_end(server, timeout), False)
    except TimeoutError:
        _kill_group(pid)
        try:
            end = (*_read_end(server, _REAP_TIMEOUT), True)
        except TimeoutError:
            raise _ServerGone from None
    except BaseException:  # KeyboardInterrupt: take the fork (and its children) down; the caller stops the server
        _kill_group(pid)
        raise
    server.in_flight = False
    return end


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _read_end(server: _Server, timeout: float | None) -> tuple[int, str]:
    """The fork's exit status and the tail of its stderr, as the server sends them when it has ended."""
    returncode = _read_int(server, timeout)
    tail = _read_bytes(server, _read_int(server, _REAP_TIMEOUT), _REAP_TIMEOUT)
    return returncode, tail.decode("utf-8", "replace")


def _read_int(server: _Server, timeout: float | None) -> int:
    """One number from the server; TimeoutError after ``timeout`` s, _ServerGone if its pipe closed."""
    value: int = _INT.unpack(_read_bytes(server, _INT.size, timeout))[0]
    return value


def _read_bytes(server: _Server, size: int, timeout: float | None) -> bytes:
    deadline = None if timeout is None else time.monotonic() + timeout
    data = b""
    while len(data) < size:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([server.from_server], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(server.from_server, size - len(data))
        if not chunk:
            raise _ServerGone
        data += chunk
    return data


# --- the server process --------------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _preload(module: str) -> None:
    """Import the worker module and what it names in ``FORK_SERVER_PRELOAD`` (a missing one is the fork's problem)."""
    mod = importlib.import_module(module)
    for name in getattr(mod, "FORK_SERVER_PRELOAD", ()):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def serve(parent: int, module: str, req_fd: int, ans_fd: int) -> None:
    """The server's loop: one order at a time, forked, its pid and then its exit status sent back."""
    _die_with_parent(parent)
    _preload(module)
    os.write(ans_fd, _INT.pack(0))
    while True:
        head = _read_exact(req_fd, _INT.size)
        body = _read_exact(req_fd, _INT.unpack(head)[0]) if head else None
        if body is None:
            return  # mcuq closed its end
        order = pickle.loads(body)
        sys.stdout.flush()
        sys.stderr.flush()
        server = os.getpid()
        err_r, err_w = os.pipe() if order["capture_stderr"] else (-1, -1)
        pid = os.fork()
        if pid == 0:  # the fork never returns into this loop, whatever happens
            code = 1
            try:
                for fd in (req_fd, ans_fd, err_r):
                    if fd >= 0:
                        os.close(fd)
                code = _run_order(module, order, server, err_w)
            finally:
                os._exit(code)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done in the fork: whichever runs first, mcuq can kill the group
        os.write(ans_fd, _INT.pack(pid))
        tail = _drain(err_r, err_w)
        _, status = os.waitpid(pid, 0)
        os.write(ans_fd, _INT.pack(os.waitstatus_to_exitcode(status)) + _INT.pack(len(tail)) + tail)


def _drain(err_r: int, err_w: int) -> bytes:
    """The last few KB the fork wrote to stderr, read until it (and its children) closed the pipe.
    A pipe, not a file in the request's folder: a full temp folder must not swallow the fork's last words."""
    if err_r < 0:
        return b""
    os.close(err_w)
    tail = b""
    while chunk := os.read(err_r, 65536):
        tail = (tail + chunk)[-_STDERR_TAIL:]
    os.close(err_r)
    return tail


def _run_order(module: str, order: dict[str, Any], server: int, err_w: int) -> int:
    """In the fork: fence, take the request's environment and stderr, run MODULE as ``__main__``."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _die_with_parent(server)  # a killed server takes the fork with it
    os.chdir(order["cwd"])
    os.environ.clear()
    os.environ.update(order["env"])
    if err_w >= 0:  # captured: stdout to /dev/null, stderr to the server, as the one-shot child's pipes
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(err_w, 2)
        os.close(err_w)
    return _run_main(module, order["argv"])


def _run_main(module: str, argv: list[str]) -> int:
    """Run the module as ``python -m`` would and return the exit status Python would give."""
    import runpy
    import traceback

    sys.argv = [module, *argv]
    sys.modules.pop(module, None)  # imported by the server; runpy would warn, and __main__ runs fresh anyway
    code: object = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 - what Python does with an uncaught exception
        traceback.print_exc()
        code = 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    return int(code or 0)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
