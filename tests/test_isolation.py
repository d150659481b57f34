"""Child processes are bounded: time limit, die with mcuq, leave no temp data, crashes named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT, SINE
from mcuq.common.errors import CalibrationError, NativeCrashError
from mcuq.common.isolation import clean_stale_temp, run_isolated
from mcuq.frontend.calibration import InputSpec, load_samples

SLEEPER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    Path(os.environ["SLEEPER_PID"]).write_text(str(os.getpid()))
    time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purpose
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def sleeper_env(tmp_path, monkeypatch):
    (tmp_path / "mcuq_test_sleeper.py").write_text(SLEEPER)
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{tmp_path}")
    monkeypatch.setenv("SLEEPER_PID", str(tmp_path / "sleeper.pid"))
    return tmp_path


def test_child_step_has_a_time_limit(sleeper_env):
    start = time.monotonic()
    answer, detail = run_isolated("mcuq_test_sleeper", {}, capture_stderr=True, timeout=3)
    assert answer is None and "timed out after 3 s" in detail
    assert time.monotonic() - start < 30
    assert not _alive(int((sleeper_env / "sleeper.pid").read_text()))


def test_child_dies_with_a_killed_parent_and_its_temp_data_is_cleaned(sleeper_env):
    parent_code = "from mcuq.common.isolation import run_isolated; run_isolated('mcuq_test_sleeper', {'model': b'x' * 1000}, True)"
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=os.environ.copy())
    pid_file = sleeper_env / "sleeper.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    stale = [p for p in Path(tempfile.gettempdir()).glob(f"mcuq-child-{parent.pid}-*")]
    assert stale, "the request folder should exist while the child runs"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the child outlived mcuq"
    clean_stale_temp()  # another mcuq process on this machine may have cleaned it first: either way it must be gone
    assert not any(p.exists() for p in stale), "the pickled request outlived the run"


def test_endless_calibration_generator_is_capped(tmp_path, monkeypatch):
    (tmp_path / "endless.py").write_text(
        textwrap.dedent("""
        import numpy as np
        def samples():
            while True:
                yield np.zeros((1,), np.float32)
    """)
    )
    monkeypatch.chdir(tmp_path)
    data = load_samples("endless:samples", [InputSpec("x", (1,))], max_samples=7)
    assert data.count == 7


def test_empty_csv_is_one_line(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CalibrationError, match="no data rows"):
        load_samples(str(tmp_path / "empty.csv"), [InputSpec("x", (1,))])
    (tmp_path / "header.csv").write_text("a\n")
    with pytest.raises(CalibrationError, match="no data rows"):
        load_samples(str(tmp_path / "header.csv"), [InputSpec("x", (1,))])


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, how", [("os.kill(os.getpid(), signal.SIGSEGV)", "crashed (signal 11"), ("sys.exit(3)", "exited (exit code 3")]
)
def test_dying_calibration_function_is_named(tmp_path, monkeypatch, body, how):
    from mcuq.frontend.converter import quantize

    (tmp_path / "badcal.py").write_text(f"import os, signal, sys\ndef samples():\n    {body}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NativeCrashError) as err:
        quantize(SINE / "model.keras", "badcal:samples")
    message = str(err.value)
    assert "calibration function" in message and how in message and "LSTM" not in message
    assert "\n" not in message
