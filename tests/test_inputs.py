"""Hostile input (issue 23): board files validated per field, only regular files read (a FIFO or
/dev/zero never hangs or fills memory), the project lock between two real processes, a report a
full disk refused is a failure, labels out of range, code from mcuq.toml only on request."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SINE
from mcuq.boards import get_board, list_boards, load_board_file
from mcuq.common.errors import BoardError, CalibrationError, MCUQError, ModelLoadError, UsageError
from mcuq.common.files import read_regular
from mcuq.project.lock import lock_path, project_lock

ESP32 = (ROOT / "boards" / "esp32.toml").read_text()


@pytest.fixture
def no_hang():
    """A regression that blocks on a FIFO fails the test instead of hanging the suite."""

    def alarm(*_):
        raise TimeoutError("blocked reading a special file")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_shipped_boards_still_load():
    assert {b.id for b in list_boards()} >= {"esp32", "esp32s3", "nano33ble", "mega2560", "uno", "pico", "teensy41"}


HOSTILE = [
    ("name", 'name = "Espressif ESP32 DevKit (ESP-IDF)"', 'name = "x\\");\\nevil();//"', "name"),
    ("board newline", 'board = "esp32dev"', 'board = "esp32dev\\nextra_scripts = pre:evil.py"', "platformio.board"),
    ("platform comment", 'platform = "espressif32@6.13.0"', 'platform = "espressif32@6.13.0 ; x"', "platformio.platform"),
    ("framework", 'framework = "espidf"', 'framework = "espidf\\n[env:x]"', "platformio.framework"),
    ("id traversal", 'id = "esp32"', 'id = "../../x"', "id"),
    ("id upper", 'id = "esp32"', 'id = "ESP 32"', "id"),
    ("mcu control", 'mcu = "ESP32"', 'mcu = "ESP32\\u001b[31m"', "mcu"),
    ("notes control", 'notes = "Default board.', 'notes = "\\u0007Default board.', "notes"),
    ("sram negative", "sram_bytes = 327680", "sram_bytes = -1", "sram_bytes"),
    ("sram huge", "sram_bytes = 327680", "sram_bytes = 1099511627776", "sram_bytes"),
    ("sram 10**30", "sram_bytes = 327680", "sram_bytes = 1000000000000000000000000000000", "sram_bytes"),
    ("flash zero", "flash_bytes = 4194304", "flash_bytes = 0", "flash_bytes"),
    ("psram negative", "psram_bytes = 0", "psram_bytes = -4096", "psram_bytes"),
    ("clock", "clock_mhz = 240", "clock_mhz = 0", "clock_mhz"),
    ("monitor negative", "monitor_speed = 115200", "monitor_speed = -9600", "monitor_speed"),
    ("monitor huge", "monitor_speed = 115200", "monitor_speed = 999999999999", "monitor_speed"),
    ("framework flash", "framework_flash_bytes = 307200", "framework_flash_bytes = 5000000", "framework_flash_bytes"),
    ("framework ram negative", "framework_ram_bytes = 61440", "framework_ram_bytes = -1", "framework_ram_bytes"),
    ("lib_deps newline", 'framework = "espidf"', 'framework = "espidf"\nlib_deps = ["a/b@1.0\\n[env:evil]"]', "lib_deps"),
    ("build flag command", 'framework = "espidf"', 'framework = "espidf"\nbuild_flags = ["!python evil.py"]', "build_flags"),
    ("build flag quote", 'framework = "espidf"', 'framework = "espidf"\nbuild_flags = ["-DX=\\"1\\""]', "build_flags"),
    ("build flag $", 'framework = "espidf"', 'framework = "espidf"\nbuild_unflags = ["-D${sysenv.HOME}"]', "build_unflags"),
    ("sdkconfig newline", 'framework = "espidf"', 'framework = "espidf"\nsdkconfig = ["CONFIG_X=y\\nCONFIG_Y=n"]', "sdkconfig"),
    ("lib_compat_mode", 'framework = "espidf"', 'framework = "espidf"\nlib_compat_mode = "off\\nx"', "lib_compat_mode"),
    ("cflags", "cflags = []", 'cflags = ["-O2; rm -rf ~"]', "cpu.cflags"),
    ("cflags type", "cflags = []", "cflags = [3]", "cflags"),
    ("core", 'core = "esp32"', 'core = "esp32\\n"', "cpu.core"),
    ("library traversal", 'library = "esp-tflite-micro"', 'library = "../../../etc/x"', "tflm.library"),
    ("component", 'component = "espressif/esp-tflite-micro"', 'component = "espressif/x\\"\\nevil: 1"', "tflm.component"),
    ("component version", 'component_version = "~1.4.0"', 'component_version = "~1.4.0\\nx: y"', "tflm.component_version"),
]


@pytest.mark.parametrize("what, old, new, field", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_board_file_is_refused_naming_file_and_field(tmp_path, what, old, new, field):
    assert old in ESP32, what
    path = tmp_path / "my_board.toml"
    path.write_text(ESP32.replace(old, new, 1))
    with pytest.raises(BoardError) as err:
        load_board_file(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and field.split(".")[-1] in message, message


def test_default_output_folder_stays_inside_build():
    from mcuq.project.writer import project_dir

    board = get_board("esp32")
    assert project_dir(None, board.id, "digits") == Path("build") / "esp32-digits"
    for bad in ("../../x", "a/b", "..\\x"):
        with pytest.raises(UsageError, match="--out"):
            project_dir(None, replace(board, id=bad).id, "m")
    assert project_dir("/tmp/x", replace(board, id="../../x").id, "m") == Path("/tmp/x")


# ---------------------------------------------------------------- only regular files, size-capped


def _specials(tmp_path: Path, suffix: str) -> list[Path]:
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    zero = tmp_path / f"zero{suffix}"
    zero.symlink_to("/dev/zero")
    return [fifo, zero]


def test_fifo_and_dev_zero_are_refused_by_every_reader(tmp_path, no_hang):
    from mcuq.frontend.calibration import InputSpec, load_samples
    from mcuq.frontend.config import load_config
    from mcuq.frontend.loader import load_model
    from mcuq.project.api import load_labels

    for suffix, call, error in [
        (".tflite", lambda p: load_model(p), ModelLoadError),
        (".keras", lambda p: load_model(p), ModelLoadError),
        (".h5", lambda p: load_model(p), ModelLoadError),
        (".npy", lambda p: load_samples(str(p), [InputSpec("x", (1,))]), CalibrationError),
        (".npz", lambda p: load_samples(str(p), [InputSpec("x", (1,))]), CalibrationError),
        (".csv", lambda p: load_samples(str(p), [InputSpec("x", (1,))]), CalibrationError),
        (".toml", lambda p: load_board_file(p), BoardError),
        (".cfg", lambda p: load_config(p), MCUQError),
        (".txt", lambda p: load_labels(str(p)), MCUQError),
        (".json", lambda p: load_labels(str(p)), MCUQError),
    ]:
        for path in _specials(tmp_path, suffix):
            with pytest.raises(error, match="FIFO|character device") as err:
                call(path)
            assert str(path) in str(err.value) and "\n" not in str(err.value)
    images = tmp_path / "images"
    images.mkdir()
    os.mkfifo(images / "a.png")
    with pytest.raises(CalibrationError, match="FIFO"):
        load_samples(str(images), [InputSpec("x", (8, 8, 1))])
    saved = tmp_path / "saved"
    saved.mkdir()
    os.mkfifo(saved / "saved_model.pb")
    with pytest.raises(ModelLoadError, match="FIFO"):
        load_model(saved)


def test_size_cap_is_checked_before_reading(tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 20)  # sparse: the size is known without reading
    with pytest.raises(MCUQError, match="more than the"):
        read_regular(big, "a test file", 1000)
    assert read_regular(big, "a test file", 1 << 20) == bytes(1 << 20)


def test_calibration_shape_error_names_the_shape_as_given(tmp_path):
    from mcuq.frontend.calibration import InputSpec, load_samples

    np.save(tmp_path / "c.npy", np.zeros((5, 8, 8), np.float32))
    with pytest.raises(CalibrationError, match=r"has shape \(5, 8, 8\), expected \(N, 8, 8, 1\)"):
        load_samples(str(tmp_path / "c.npy"), [InputSpec("x", (8, 8, 1))])


def test_labels_out_of_range_are_refused(tmp_path):
    from mcuq.frontend.calibration import InputSpec, check_label_range, load_samples

    np.savez(tmp_path / "v.npz", x=np.zeros((4, 3), np.float32), labels=np.array([0, 9, 99, 1]))
    data = load_samples(str(tmp_path / "v.npz"), [InputSpec("x", (3,))], max_samples=None)
    check_label_range(data, [])  # no classifier output: labels unused
    check_label_range(data, [100])
    with pytest.raises(CalibrationError, match=r"label 99 of sample 2 is out of range for the model's 10 classes \(0\.\.9\)"):
        check_label_range(data, [10])
    data.labels = np.array([0, -1, 2, 3])
    with pytest.raises(CalibrationError, match="label -1"):
        check_label_range(data, [10])


def test_labels_json_must_be_a_list(tmp_path):
    from mcuq.project.api import load_labels

    for text in ('{"cat": 0}', "3", '[["a"]]', "null"):
        (tmp_path / "l.json").write_text(text)
        with pytest.raises(MCUQError, match="not a list of class names"):
            load_labels(str(tmp_path / "l.json"))
    (tmp_path / "l.json").write_text('["cat", "dog"]')
    assert load_labels(str(tmp_path / "l.json")) == ["cat", "dog"]


def _deploy_args(argv: list[str]) -> argparse.Namespace:
    from mcuq.cli import build_parser

    return build_parser().parse_args(["deploy", *argv])


def test_code_in_mcuq_toml_runs_only_when_asked(tmp_path):
    from mcuq.deploy import DeployRequest

    config = tmp_path / "mcuq.toml"
    config.write_text('model = "m.tflite"\ncalibration = "evil:make"\n')
    (tmp_path / "evil.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(MCUQError, match="--allow-code") as err:
        DeployRequest.from_cli(_deploy_args(["--config", str(config)]))
    assert "evil:make" in str(err.value) and str(tmp_path) in str(err.value)
    assert DeployRequest.from_cli(_deploy_args(["--config", str(config), "--allow-code"])).calibration == "evil:make"
    given = DeployRequest.from_cli(_deploy_args(["--config", str(config), "--calibration", "mine:samples"]))
    assert given.calibration == "mine:samples"
    config.write_text('model = "m.tflite"\ndata = "evil:make"\n')
    with pytest.raises(MCUQError, match="data = 'evil:make'"):
        DeployRequest.from_cli(_deploy_args(["--config", str(config)]))


def test_seed_is_checked_at_parsing(capsys):
    from mcuq.cli import main

    for value in ("-1", "4294967296", "x"):
        with pytest.raises(SystemExit) as exit_:
            main(["deploy", "m.tflite", "--seed", value])
        assert exit_.value.code == 2 and "--seed" in capsys.readouterr().err


def test_non_utf8_file_name_fails_before_any_work(tmp_path):
    from mcuq.deploy import DeployRequest, check_request

    name = os.fsdecode(b"m\xff.tflite")
    with pytest.raises(MCUQError, match="not valid UTF-8"):
        check_request(DeployRequest(model=str(tmp_path / name)))


# ---------------------------------------------------------------- the project lock


HOLD = """
import sys, time
from mcuq.project.lock import project_lock
with project_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(out: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_lock_refuses_a_second_process_and_is_taken_over_after_a_kill(tmp_path):
    out = tmp_path / "new" / "deeper" / "proj"  # neither the folder nor its parents exist yet
    holder = _holder(out, 60)
    with pytest.raises(MCUQError) as err:
        with project_lock(out):
            pass
    message = str(err.value)
    assert f"pid {holder.pid}: python -c" in message and "another mcuq" in message and "\n" not in message, message
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_path(out).exists()  # the killed holder's file: flock was dropped by the kernel
    notes: list[str] = []
    with project_lock(out, notes):
        assert lock_path(out).read_text().startswith(f"{os.getpid()} ")
        with project_lock(out):  # re-entrant in the same process (deploy validates under its lock)
            pass
    assert notes == [f"took over the lock of a killed mcuq run (pid {holder.pid})"]
    assert list((tmp_path / "new" / "deeper").iterdir()) == []  # the lock file is gone (the killed run made the folders)
    with project_lock(tmp_path / "fresh" / "a" / "proj"):
        assert lock_path(tmp_path / "fresh" / "a" / "proj").is_file()
    assert not (tmp_path / "fresh").exists()  # folders made only for the lock are removed with it


def test_lock_file_removed_while_a_waiter_opens_it(tmp_path):
    """The holder removes the file on release; the next one locks a fresh file, never a stale inode."""
    out = tmp_path / "proj"
    for _ in range(3):
        holder = _holder(out, 0.3)
        holder.wait()
        with project_lock(out):
            assert os.stat(lock_path(out)).st_ino == os.fstat(os.open(lock_path(out), os.O_RDONLY)).st_ino
    assert [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.slow
def test_two_concurrent_deploys_into_one_new_out(tmp_path, sine_tflite):
    """Two real `mcuq deploy` processes into one new --out: one wins, the other exits 1 with one
    line naming the winner; the project is complete and no lock file is left."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "mcuq", "deploy", "-q", str(sine_tflite), "--out", str(out), "--data", str(SINE / "val.npz")]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not lock_path(out).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    out1, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 1 and len(lines) == 1, second.stderr
    assert f"pid {first.pid}" in lines[0] and "mcuq deploy" in lines[0] and "another mcuq" in lines[0]
    assert "PASS" in out1
    check = subprocess.run(
        [sys.executable, "-m", "mcuq", "validate", "-q", "--no-report", str(out)], env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------- validate: links, full disk


@pytest.fixture(scope="module")
def sine_project(tmp_path_factory, sine_tflite) -> Path:
    from mcuq.deploy import DeployRequest, deploy

    project = tmp_path_factory.mktemp("inputs") / "project"
    deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(project), data=str(SINE / "val.npz")))
    return project


@pytest.mark.slow
@pytest.mark.parametrize("target", ["/etc/passwd", "/dev/zero", "fifo"])
def test_validate_refuses_a_project_file_linked_out_of_the_project(tmp_path, sine_project, target, no_hang):
    from mcuq.validate import validate_project

    project = tmp_path / "p"
    shutil.copytree(sine_project, project, symlinks=True)
    model = project / "mcuq" / "model_int8.tflite"
    model.unlink()
    if target == "fifo":
        os.mkfifo(model)
    else:
        model.symlink_to(target)
    with pytest.raises(MCUQError) as err:
        validate_project(project, write_report=False)
    assert str(model) in str(err.value) and ("outside the project" in str(err.value) or "FIFO" in str(err.value))


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
from mcuq.cli import main
sys.exit(main(["validate", sys.argv[1]]))
"""


@pytest.mark.slow
def test_report_the_disk_refused_is_a_failure_with_the_cause(tmp_path, sine_project):
    """RLIMIT_FSIZE in a child: every file write beyond the limit fails with EFBIG (no root, no
    tmpfs needed). report.html is larger than the limit, the other files validate writes are not."""
    project = tmp_path / "p"
    shutil.copytree(sine_project, project, symlinks=True)
    limit = (project / "report.html").stat().st_size // 2
    (project / "report.html").unlink()
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(project), str(limit)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout and "could not write report.html: File too large" in proc.stdout, proc.stdout
    assert "did not write them" not in proc.stdout
    assert not (project / "report.html").exists() and not list(project.glob(".report*"))
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY  # only the child was limited


def test_project_of_a_killed_deploy_is_taken_over_and_named(tmp_path):
    """The in-progress marker names the deploy that wrote it; under the lock, only a run whose
    owner is gone can see it, and the next deploy says it takes the project over."""
    from mcuq.project.writer import UNVALIDATED_MARK, check_output_dir, interrupted_note, write_project

    out = tmp_path / "proj"
    write_project(out, {"src/a.c": "int a;\n"}, {}, {}, force=False, mark_unvalidated=True)
    assert (out / UNVALIDATED_MARK).read_text().startswith(f"{os.getpid()} ")
    assert check_output_dir(out, force=False) is not None  # no --force needed: its deploy never finished
    assert interrupted_note(out) == [
        f"{out}: the deploy that wrote it (pid {os.getpid()}) ended before its validation; taking the project over and regenerating it"
    ]
