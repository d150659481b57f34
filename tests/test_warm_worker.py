"""The warm converter worker (mcuq.common.warm): same answers as a one-shot child, same failures,
fenced the same way, and retired whenever its state could change the next answer."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import DIGITS, ROOT, SINE
from mcuq.common import warm
from mcuq.common.errors import NativeCrashError
from mcuq.common.isolation import run_isolated_ex

CONVERTER = "mcuq.frontend.converter"

# A module both ways: ``python -m`` (one-shot child) and ``serve_request`` (warm worker).
ECHO = textwrap.dedent("""
    import os, pickle, signal, sys, time
    from pathlib import Path
    from mcuq.common.isolation import mark_stage

    def serve_request(request_path, response_path):
        request = pickle.loads(Path(request_path).read_bytes())
        mark_stage(request.get("stage", "echoing"))
        act = request.get("act")
        if act == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if act == "exit":
            print("dying on purpose", file=sys.stderr, flush=True)
            os._exit(3)
        if act == "sys.exit":
            print("leaving on purpose", file=sys.stderr, flush=True)
            sys.exit(3)
        if act == "sleep":
            time.sleep(120)
        Path(response_path).write_bytes(pickle.dumps({"pid": os.getpid(), "cwd": os.getcwd()}))
        return request.get("keep", True)

    if __name__ == "__main__":
        serve_request(sys.argv[1], sys.argv[2])
""")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def echo(tmp_path, monkeypatch):
    (tmp_path / "mcuq_test_echo.py").write_text(ECHO)
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{tmp_path}")
    monkeypatch.delenv(warm.WARM_ENV, raising=False)
    yield "mcuq_test_echo"
    warm.retire_all()


def test_worker_serves_requests_in_one_process_in_the_callers_folder(echo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, failure = warm.run_warm_ex(echo, {}, capture_stderr=True)
    assert failure is None and first["cwd"] == str(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    second, failure = warm.run_warm_ex(echo, {}, capture_stderr=True)
    assert failure is None and second["pid"] == first["pid"] == warm.worker_pid(echo)
    assert second["cwd"] == str(tmp_path / "sub"), "a relative path must mean what it means to the caller"


@pytest.mark.parametrize(
    "request_, stage",
    [({"act": "segv", "stage": "in C"}, "in C"), ({"act": "exit"}, "echoing"), ({"act": "sys.exit"}, "echoing")],
    ids=["segv", "os._exit", "sys.exit"],
)
def test_crash_ends_the_worker_with_the_one_shot_failure_and_the_next_request_works(echo, request_, stage):
    warm.retire_all()
    cold = run_isolated_ex(echo, request_, capture_stderr=True)
    live, _ = warm.run_warm_ex(echo, {}, capture_stderr=True)
    answer, failure = warm.run_warm_ex(echo, request_, capture_stderr=True)
    assert answer is None and failure == cold[1] and failure.stage == stage
    assert not _alive(live["pid"]) and warm.worker_pid(echo) is None
    after, failure = warm.run_warm_ex(echo, {}, capture_stderr=True)
    assert failure is None and after["pid"] != live["pid"]


def test_timeout_kills_the_worker_and_the_next_request_gets_a_fresh_one(echo):
    live, _ = warm.run_warm_ex(echo, {}, capture_stderr=True)
    start = time.monotonic()
    answer, failure = warm.run_warm_ex(echo, {"act": "sleep"}, capture_stderr=True, timeout=3)
    assert answer is None and failure is not None and failure.timed_out and failure.detail == "timed out after 3 s"
    assert time.monotonic() - start < 30 and not _alive(live["pid"])
    after, failure = warm.run_warm_ex(echo, {}, capture_stderr=True)
    assert failure is None and after["pid"] != live["pid"]


def test_worker_is_retired_when_the_module_says_so_or_the_environment_changes(echo, monkeypatch):
    first, _ = warm.run_warm_ex(echo, {"keep": False}, capture_stderr=True)
    assert warm.worker_pid(echo) is None and not _alive(first["pid"])
    second, _ = warm.run_warm_ex(echo, {}, capture_stderr=True)
    monkeypatch.setenv("MCUQ_TEST_SOMETHING", "changed")  # a fresh child would see it: so must the worker
    third, _ = warm.run_warm_ex(echo, {}, capture_stderr=True)
    assert third["pid"] != second["pid"] and not _alive(second["pid"])


def test_busy_worker_or_switch_off_means_a_one_shot_child(echo, monkeypatch):
    live, _ = warm.run_warm_ex(echo, {}, capture_stderr=True)
    with warm._LOCK:  # another thread's request is running on the worker
        other, failure = warm.run_warm_ex(echo, {}, capture_stderr=True)
    assert failure is None and other["pid"] != live["pid"] and warm.worker_pid(echo) == live["pid"]
    monkeypatch.setenv(warm.WARM_ENV, "0")
    off, failure = warm.run_warm_ex(echo, {}, capture_stderr=True)
    assert failure is None and off["pid"] not in (live["pid"], other["pid"]) and not _alive(off["pid"])


def test_idle_worker_dies_with_a_killed_parent_and_leaves_no_temp_data(echo, tmp_path):
    code = textwrap.dedent(f"""
        import time
        from mcuq.common.warm import run_warm_ex
        answer, _ = run_warm_ex({echo!r}, {{"model": b"x" * 1000}}, True)
        print(answer["pid"], flush=True)
        run_warm_ex({echo!r}, {{"act": "sleep"}}, True)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    folders: list[Path] = []
    while not folders and time.monotonic() < deadline:  # the second (sleeping) request's folder
        folders = list(Path(tempfile.gettempdir()).glob(f"mcuq-child-{parent.pid}-*"))
        time.sleep(0.1)
    assert folders and _alive(worker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the warm worker outlived mcuq"
    from mcuq.common.isolation import clean_stale_temp

    clean_stale_temp()
    assert not any(p.exists() for p in folders), "the request folder outlived the run"


def _quantize(model_dir: Path, calibration: str | None = None):
    from mcuq.frontend.converter import quantize

    return quantize(model_dir / "model.keras", calibration or str(model_dir / "calibration.npy"))


@pytest.mark.slow
def test_warm_conversion_gives_the_bytes_of_a_cold_one(monkeypatch, digits_int8):
    monkeypatch.setenv(warm.WARM_ENV, "0")
    cold = _quantize(SINE)
    monkeypatch.delenv(warm.WARM_ENV)
    warm.retire_all()
    first = _quantize(SINE)
    pid = warm.worker_pid(CONVERTER)
    digits = _quantize(DIGITS)  # a different model in between: its layers, names, graph
    again = _quantize(SINE)
    assert pid is not None and warm.worker_pid(CONVERTER) == pid, "the three conversions should share one worker"
    for q in (first, again):
        assert q.tflite == cold.tflite and q.float_tflite == cold.float_tflite and q.info == cold.info
        assert q.notes == cold.notes and q.manifest_entry() == cold.manifest_entry()
    assert digits.tflite == digits_int8.tflite and digits.info == digits_int8.info


@pytest.mark.slow
def test_calibration_crash_in_the_worker_is_named_as_before_and_the_next_conversion_works(tmp_path, monkeypatch):
    (tmp_path / "segv.py").write_text("import os, signal\ndef samples():\n    os.kill(os.getpid(), signal.SIGSEGV)\n")
    (tmp_path / "leave.py").write_text("import os\ndef samples():\n    os._exit(3)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(warm.WARM_ENV, "0")
    with pytest.raises(NativeCrashError) as cold:
        _quantize(SINE, "segv:samples")
    monkeypatch.delenv(warm.WARM_ENV)
    _quantize(SINE)
    for spec, how in (("segv:samples", "crashed (signal 11)"), ("leave:samples", "exited (exit code 3)")):
        pid = warm.worker_pid(CONVERTER)
        assert pid is not None
        with pytest.raises(NativeCrashError) as err:
            _quantize(SINE, spec)
        assert f"the calibration function {how} before returning its samples" in str(err.value)
        assert not _alive(pid) and warm.worker_pid(CONVERTER) is None
        _quantize(SINE)  # a fresh worker takes the next conversion
    assert str(err.value).replace("leave:samples", "segv:samples").replace("exited (exit code 3)", "crashed (signal 11)") == str(
        cold.value
    ), "the worker's crash message must be the one-shot child's"


@pytest.mark.slow
def test_edited_calibration_module_is_picked_up_by_the_next_conversion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = "import numpy as np\ndef samples():\n    return np.linspace(0, {top}, 64, dtype=np.float32).reshape(64, 1)\n"
    (tmp_path / "mycal.py").write_text(body.format(top="1.0"))
    narrow = _quantize(SINE, "mycal:samples")
    (tmp_path / "mycal.py").write_text(body.format(top="6.25"))  # another size too: no stale .pyc either way
    wide = _quantize(SINE, "mycal:samples")
    scale = [q.info.input_tensors[0].quant.scale[0] for q in (narrow, wide)]  # type: ignore[union-attr]
    assert scale[1] > 3 * scale[0], f"the edited calibration function was ignored: input scales {scale}"
    assert np.isclose(wide.calibration.arrays["x"].max(), 6.25)  # type: ignore[union-attr]
