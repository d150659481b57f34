"""The fork server (mcuq.common.forkserver): a fresh fenced process per request, answers equal to the
one-shot child's, crashes and time limits named as before, the one-shot child as fallback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_isolation import _alive

from conftest import ROOT
from mcuq.common import forkserver
from mcuq.common.isolation import clean_stale_temp

WORKER = "forkserver_worker"  # tests/forkserver_worker.py
TFLM = "mcuq.reference.tflm_worker"


@pytest.fixture
def worker_env(monkeypatch):
    """The test worker importable by the server and one-shot children; a fresh server per test."""
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    monkeypatch.delenv(forkserver.SWITCH_ENV, raising=False)
    forkserver.stop(WORKER)
    yield
    forkserver.stop(WORKER)


def _ask(action: str, timeout: float = 120, **extra: object):
    return forkserver.run_isolated_ex(WORKER, {"action": action, **extra}, capture_stderr=True, timeout=timeout)


def _served() -> dict:
    """A request that must go through the server: its parent is the server."""
    answer, failure = _ask("whoami")
    assert failure is None and answer["ppid"] == forkserver.server_pid(WORKER) != os.getpid()
    return answer


def _wait_for(path: Path, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [int(n) for n in path.read_text().split()]


def _inputs(model: bytes, count: int) -> list[list[np.ndarray]]:
    from mcuq.model.info import parse_model

    rng = np.random.default_rng(7)
    info = parse_model(model)
    return [[rng.integers(-128, 128, t.shape, dtype=np.int8) for t in info.input_tensors] for _ in range(count)]


def test_real_models_give_the_one_shot_answers(monkeypatch, sine_tflite, digits_tflite):
    from mcuq.reference.host_tflm import measure_min_arena, run_tflm

    monkeypatch.delenv(forkserver.SWITCH_ENV, raising=False)
    for path in (sine_tflite, digits_tflite):
        model = path.read_bytes()
        samples = _inputs(model, 5)
        results = {}
        for switch in ("1", "0"):
            monkeypatch.setenv(forkserver.SWITCH_ENV, switch)
            run = run_tflm(model, samples, 64 * 1024, 1, keep_tensors=[0, 1, 2])
            results[switch] = (run, measure_min_arena(model, samples[0]))
            if switch == "1":
                assert forkserver.server_pid(TFLM) is not None, "the server did not run these requests"
        (served, served_arena), (one_shot, one_shot_arena) = results["1"], results["0"]
        assert served_arena == one_shot_arena > 0
        assert len(served.outputs) == len(one_shot.outputs) == len(served.tensors) == len(one_shot.tensors) == 5
        for a, b in zip(served.outputs + served.tensors, one_shot.outputs + one_shot.tensors):
            items_a = a.items() if isinstance(a, dict) else enumerate(a)
            items_b = b.items() if isinstance(b, dict) else enumerate(b)
            for (ka, va), (kb, vb) in zip(items_a, items_b):
                assert ka == kb and va.dtype == vb.dtype and va.shape == vb.shape and va.tobytes() == vb.tobytes()


@pytest.mark.parametrize(
    "action, detail, code",
    [
        ("segv", "signal 11: about to crash", -11),
        ("exit", "exit code 3: the request was bad", 3),
        ("noisy", "exit code 3: the request was bad", 3),
    ],
)
def test_a_dying_request_is_named_and_the_next_one_works(worker_env, action, detail, code):
    server = _served()["ppid"]
    answer, failure = _ask(action)
    assert answer is None and failure is not None
    assert failure.detail == detail and failure.returncode == code and failure.stage == action and not failure.timed_out
    assert _served()["ppid"] == server, "the server should survive its fork's crash"


def test_a_hanging_request_times_out_and_the_next_one_works(worker_env, tmp_path):
    server = _served()["ppid"]
    start = time.monotonic()
    answer, failure = _ask("hang", timeout=3, pid_file=str(tmp_path / "pid"))
    assert answer is None and failure is not None
    assert failure.detail == "timed out after 3 s" and failure.timed_out and failure.stage == "hang"
    assert time.monotonic() - start < 30
    fork, parent = _wait_for(tmp_path / "pid")
    assert parent == server and not _alive(fork)
    assert _served()["ppid"] == server


def test_each_request_is_a_fresh_process_with_the_callers_env_and_folder(worker_env, tmp_path, monkeypatch):
    first = _served()
    assert _ask("leak")[0]["leaked"]
    monkeypatch.setenv("MCUQ_TEST_VALUE", "set after the server started")
    monkeypatch.chdir(tmp_path)
    second = _served()
    assert second["pid"] != first["pid"] and second["ppid"] == first["ppid"]
    assert not second["leaked"], "state from an earlier request reached a later one"
    assert second["env"] == "set after the server started" and second["cwd"] == str(tmp_path)


def test_switched_off_a_one_shot_child_runs(worker_env, monkeypatch):
    monkeypatch.setenv(forkserver.SWITCH_ENV, "0")
    answer, failure = _ask("whoami")
    assert failure is None and answer["ppid"] == os.getpid() and forkserver.server_pid(WORKER) is None


def test_busy_server_and_other_threads_fall_back_to_a_one_shot_child(worker_env, tmp_path):
    answers: list[object] = []
    thread = threading.Thread(target=lambda: answers.append(_ask("hang", seconds=3, pid_file=str(tmp_path / "pid"))))
    # a thread may not start the server (it would die with the thread): one-shot
    lone = threading.Thread(target=lambda: answers.append(_ask("whoami")))
    lone.start()
    lone.join()
    assert answers.pop()[0]["ppid"] == os.getpid() and forkserver.server_pid(WORKER) is None
    server = _served()["ppid"]
    thread.start()
    _wait_for(tmp_path / "pid")  # the server is busy with the thread's request
    answer, failure = _ask("whoami")
    assert failure is None and answer["ppid"] == os.getpid(), "a busy server should not make a caller wait"
    thread.join()
    assert answers[0][0]["ppid"] == server


def test_a_server_killed_mid_request_falls_back_to_a_one_shot_child(worker_env, tmp_path):
    server = _served()["ppid"]
    pid_file = tmp_path / "pid"
    killer = threading.Thread(target=lambda: (_wait_for(pid_file), os.kill(server, signal.SIGKILL)))
    killer.start()
    answer, failure = _ask("hang_once", pid_file=str(pid_file))
    killer.join()
    fork = _wait_for(pid_file)[0]
    assert failure is None and answer["ppid"] == os.getpid(), "the request should have been rerun in a one-shot child"
    assert not _alive(fork), "the fork outlived its server"
    assert _served()["ppid"] not in (server, os.getpid()), "the next request should start a new server"


def test_ctrl_c_takes_the_fork_down_and_the_next_request_works(worker_env, tmp_path):
    old_server = _served()["ppid"]
    pid_file = tmp_path / "pid"
    interrupter = threading.Thread(target=lambda: (_wait_for(pid_file), os.kill(os.getpid(), signal.SIGINT)))
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        _ask("hang", pid_file=str(pid_file))
    interrupter.join()
    fork = _wait_for(pid_file)[0]
    deadline = time.monotonic() + 10
    while _alive(fork) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(fork), "the interrupted fork kept running"
    assert not _alive(old_server), "a server that still owed an answer was kept"
    assert _served()["ppid"] != old_server


FORKED_MCUQ = textwrap.dedent("""
    import os, sys
    from mcuq.common import forkserver
    first, _ = forkserver.run_isolated_ex("forkserver_worker", {"action": "whoami"}, True)
    assert first["ppid"] == forkserver.server_pid("forkserver_worker"), first
    child = os.fork()
    if child == 0:
        answer, _ = forkserver.run_isolated_ex("forkserver_worker", {"action": "whoami"}, True)
        os._exit(0 if answer["ppid"] == os.getpid() else 1)
    _, status = os.waitpid(child, 0)
    print("one-shot in the fork" if os.waitstatus_to_exitcode(status) == 0 else "the fork used its parent's server")
""")


def test_a_forked_mcuq_leaves_its_parents_server_alone(worker_env):
    out = subprocess.run([sys.executable, "-c", FORKED_MCUQ], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "one-shot in the fork", out.stderr


KILLED_MCUQ = "from mcuq.common import forkserver; forkserver.run_isolated('forkserver_worker', {'action': 'hang', 'pid_file': %r}, True)"


def test_server_and_fork_die_with_a_killed_mcuq(worker_env, tmp_path):
    pid_file = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", KILLED_MCUQ % str(pid_file)])
    fork, server = _wait_for(pid_file)
    assert "mcuq.common.forkserver" in Path(f"/proc/{server}/cmdline").read_text()
    stale = list(Path(tempfile.gettempdir()).glob(f"mcuq-child-{parent.pid}-*"))
    assert stale, "the request folder should exist while the fork runs"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while (_alive(fork) or _alive(server)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server), "the fork server outlived mcuq"
    assert not _alive(fork), "the fork outlived mcuq"
    clean_stale_temp()
    assert not any(p.exists() for p in stale), "the pickled request outlived the run"
