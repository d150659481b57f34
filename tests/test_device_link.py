"""`mcuq validate --device`: the validation link of the generated firmware, end to end.

The boards are the emulators, on pseudo-terminals (mcuq/device/emulated.py): the plain-C firmware
of the ATmega328 (uno) in simavr and of the Cortex-M4 (nucleo_f446re) in qemu, the TFLite Micro
firmware of the Cortex-M4 built against its board's library and run in qemu, and a TFLite Micro
project built for x86-64 against the ESP32's library (the ESP32 stand-in). The same sources as
the flashed firmware run; only main() differs, as in `mcuq validate --emulate`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DIGITS, need
from mcuq.cli import main
from mcuq.common.errors import MCUQError
from mcuq.device.link import DeviceError, SerialLink, crc8, frame, unframe
from mcuq.device.session import NoAnswer, Session

ROOT = Path(__file__).resolve().parent.parent
VAL = str(DIGITS / "val.npz")
TFLM_LIBS = ROOT.parent / "shared" / "tflm-libs"


# ---------------------------------------------------------------- framing and port faults (no emulator)


def test_crc8_is_the_documented_crc():
    assert crc8(b"123456789") == 0xF4  # CRC-8 (poly 0x07, init 0): the standard check value
    line = frame("L 18 00ff7f80")
    assert line.endswith(b"\n") and unframe(line.decode().strip()) == "L 18 00ff7f80"
    assert unframe("=L 00000018 00") is None  # a wrong checksum is caught


def test_a_missing_port_is_one_line():
    with pytest.raises(DeviceError, match="no such serial port") as info:
        Session.open("/dev/mcuq-no-such-port", reset=False)
    assert "\n" not in str(info.value)


def test_a_busy_port_is_one_line():
    master, slave = os.openpty()
    port = os.ttyname(slave)
    first = SerialLink(port)
    try:
        with pytest.raises(DeviceError, match="busy"):
            SerialLink(port)
    finally:
        first.close()
        os.close(master)
        os.close(slave)


def test_a_silent_port_times_out_in_one_line():
    """Nothing answers (wrong baud, another firmware): a bounded wait, then one line."""
    master, slave = os.openpty()
    start = time.monotonic()
    try:
        with pytest.raises(NoAnswer, match="no answer from an mcuq firmware") as info:
            Session.open(os.ttyname(slave), reset=False, boot_wait=0.2)
    finally:
        os.close(master)
        os.close(slave)
    assert "\n" not in str(info.value)
    assert time.monotonic() - start < 60  # bounded: 3 tries of 2 s plus the drains, never a hang


# ---------------------------------------------------------------- emulated boards


def _deploy(tmp: Path, model: str, board: str, *extra: str) -> Path:
    out = tmp / board
    code = main(["deploy", model, "--board", board, "--out", str(out), "--quiet", *extra])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def uno_digits(tmp_path_factory) -> Path:
    need("avr-gcc")
    need("simavr")
    if not Path("/usr/include/simavr/sim_avr.h").is_file():
        pytest.skip("libsimavr-dev is not installed (apt-get install libsimavr-dev)")
    return _deploy(
        tmp_path_factory.mktemp("dev"), str(DIGITS / "model.keras"), "uno", "--calibration", str(DIGITS / "calibration.npy"), "--data", VAL
    )


@pytest.fixture
def uno_board(uno_digits):
    from mcuq.boards import get_board
    from mcuq.device.emulated import start_emulated

    with start_emulated(uno_digits, get_board("uno")) as board:
        yield board


def _validate(project: Path, port: str, *extra: str) -> tuple[int, dict]:
    code = main(["validate", str(project), "--device", port, "--no-reset", "--data", VAL, *extra])
    report = json.loads((project / "report.json").read_text())
    return code, report


@pytest.mark.slow
def test_digits_on_the_uno_in_simavr_is_bit_exact(uno_digits, uno_board, capsys):
    code, report = _validate(uno_digits, uno_board.port, "--samples", "12")
    out = capsys.readouterr().out
    assert code == 0, out
    device = report["metrics"]["device"]
    assert device["golden"]["bit_exact"] == device["golden"]["count"] > 0
    assert device["samples"]["bit_exact"] == device["samples"]["count"] == 12
    assert device["samples"]["max_lsb_diff"] == 0
    assert device["samples"]["float_vs_device"][0]["COS"] > 0.9  # the float model vs the board's outputs
    assert device["identity"]["runtime"] == "c" and device["arena_used_bytes"] > 0
    assert 0 < device["stack_peak_bytes"] < 2048
    # Timer1 counts the AVR's cycles in the link and in the deploy-time self-test alike: the
    # cycles of one inference agree with the emulator's count to within a call's overhead.
    emulated = json.loads((uno_digits / "mcuq.lock.json").read_text())
    ticks = next(v["emulation"]["ticks"] for v in emulated.values() if isinstance(v, dict) and "emulation" in v)
    golden_cycles = device["latency"]["median_cycles"]
    assert abs(golden_cycles - ticks) / ticks < 0.15, (golden_cycles, ticks)
    assert "on the device" in out and "cycles/MAC" in out
    html = (uno_digits / "report.html").read_text()
    assert "On the device" in html and uno_board.port in html


@pytest.mark.slow
def test_the_generated_tests_run_on_the_device_when_given_a_port(uno_digits, uno_board):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MCUQ_DEVICE", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_host.py"]
    skipped = subprocess.run(cmd, cwd=uno_digits, capture_output=True, text=True, env=env, timeout=600)
    assert skipped.returncode == 0, skipped.stdout[-2000:]
    assert "1 skipped" in skipped.stdout and "on-the-device test was SKIPPED" in skipped.stdout
    ran = subprocess.run([*cmd, "--device", uno_board.port], cwd=uno_digits, capture_output=True, text=True, env=env, timeout=600)
    assert ran.returncode == 0, ran.stdout[-2000:]
    assert "2 passed" in ran.stdout


@pytest.mark.slow
def test_another_model_on_the_board_is_refused_by_identity(uno_digits, tmp_path, sine_tflite, capsys):
    from mcuq.boards import get_board
    from mcuq.device.emulated import start_emulated

    sine = _deploy(tmp_path, str(sine_tflite), "uno")
    with start_emulated(sine, get_board("uno")) as board:
        code, report = _validate(uno_digits, board.port, "--samples", "2")
    assert code == 1
    check = next(c for c in report["checks"] if c["name"] == "on the device: identity")
    assert not check["passed"]
    assert "runs another firmware" in check["detail"] and "pio run -t upload" in check["detail"]
    assert "\n" not in check["detail"]
    assert "device" not in report["metrics"]  # nothing was run on the wrong model


@pytest.mark.slow
def test_an_emulator_killed_mid_run_is_one_line(uno_board, uno_digits):
    import numpy as np

    session = Session.open(uno_board.port, reset=False, boot_wait=0.5)
    try:
        session.infer(bytes(64), [64])  # works before
        uno_board.process.kill()
        start = time.monotonic()
        with pytest.raises(DeviceError) as info:
            session.infer(np.arange(64, dtype=np.int8).tobytes(), [64])
    finally:
        session.link.close()
    assert time.monotonic() - start < 60
    text = str(info.value)
    assert "\n" not in text
    assert "closed" in text or "no answer" in text


@pytest.mark.slow
def test_a_reboot_mid_run_is_reported(uno_board):
    session = Session.open(uno_board.port, reset=False, boot_wait=0.5)
    try:
        os.kill(uno_board.process.pid, signal.SIGUSR1)  # the bridge resets the AVR: its boot output follows
        time.sleep(0.5)
        with pytest.raises(DeviceError, match="restarted during"):
            session.infer(bytes(64), [64])
    finally:
        session.link.close()


@pytest.mark.slow
def test_an_interrupted_run_leaves_a_board_the_next_run_recovers(uno_board):
    link = SerialLink(uno_board.port)
    link.write(b"L 0 0102030405")  # Ctrl-C in the middle of a command: no checksum, no newline
    link.close()
    with Session.open(uno_board.port, reset=False, boot_wait=0.5) as session:
        assert session.identity is not None and session.identity.runtime == "c"
        assert len(session.infer(bytes(64), [64]).output) == 10


@pytest.mark.slow
def test_a_link_that_drops_bytes_is_recovered(uno_digits, uno_board):
    from mcuq.device.emulated import LossyProxy

    proxy = LossyProxy(uno_board.port, drop_every=600)
    try:
        code, report = _validate(uno_digits, proxy.port, "--samples", "6")
    finally:
        proxy.close()
    assert proxy.dropped > 0
    assert code == 0, [c for c in report["checks"] if not c["passed"]]
    assert report["metrics"]["device"]["retries"] > 0


@pytest.mark.slow
def test_digits_plain_c_on_a_cortex_m4_in_qemu_is_bit_exact(tmp_path, digits_tflite):
    from mcuq.boards import get_board
    from mcuq.device.emulated import start_emulated

    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    project = _deploy(tmp_path, str(digits_tflite), "nucleo_f446re", "--runtime", "c")
    with start_emulated(project, get_board("nucleo_f446re")) as board:
        code, report = _validate(project, board.port, "--samples", "10")
    assert code == 0, [c for c in report["checks"] if not c["passed"]]
    device = report["metrics"]["device"]
    assert device["samples"]["bit_exact"] == 10
    # qemu: SysTick ticks of 40 instructions, reported as the board's cycles; the deploy-time
    # self-test counted instructions the same way.
    emulator = device["emulator"]
    assert emulator["unit"] == "instructions"
    assert abs(device["latency"]["median_cycles"] - emulator["ticks"]) / emulator["ticks"] < 0.15


@pytest.mark.slow
def test_digits_tflite_micro_on_a_cortex_m4_in_qemu_is_bit_exact(tmp_path, digits_tflite):
    """The generated TFLite Micro project, src/ unmodified, built against the board's pinned
    library (Chirale) for the Cortex-M4 and run in qemu: the framework shim's Serial is the
    UART on a pseudo-terminal, and the link is served from the project's own loop()."""
    from mcuq.boards import get_board
    from mcuq.device.emulated import start_tflm_qemu

    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    if not TFLM_LIBS.is_dir():
        pytest.skip(f"the boards' TFLite Micro sources are not at {TFLM_LIBS}: the firmware is built from them")
    project = _deploy(tmp_path, str(digits_tflite), "nucleo_f446re", "--runtime", "tflm")
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    with start_tflm_qemu(project, get_board("nucleo_f446re"), manifest["model"]["ops"], TFLM_LIBS) as board:
        code, report = _validate(project, board.port, "--samples", "10")
    assert code == 0, [c for c in report["checks"] if not c["passed"]]
    device = report["metrics"]["device"]
    assert device["identity"]["runtime"] == "tflm" and device["identity"]["library"].startswith("chirale-tensorflowlite")
    assert device["golden"]["bit_exact"] == device["golden"]["count"] >= 1
    assert device["samples"]["bit_exact"] == 10
    assert 0 < device["arena_used_bytes"] <= device["arena_bytes"] == manifest["arena"]["target_bytes"]
    assert device["stack_peak_bytes"] > 0
    # qemu has no DWT cycle counter (it reads 0): latency is reported as not measured, never as 0 ms
    assert device["latency"] == {} and "not measured" in device["latency_note"]


@pytest.mark.slow
def test_digits_tflite_micro_esp32_host_stand_in_is_bit_exact(tmp_path, digits_tflite):
    from mcuq.device.emulated import start_tflm_host

    if not TFLM_LIBS.is_dir():
        pytest.skip(f"the boards' TFLite Micro sources are not at {TFLM_LIBS}: the ESP32 stand-in is built from them")
    project = _deploy(tmp_path, str(digits_tflite), "esp32")
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    try:
        board = start_tflm_host(project, "esp-tflite-micro", manifest["model"]["ops"], TFLM_LIBS)
    except MCUQError as exc:
        pytest.skip(f"the ESP32 library does not build here: {exc}")
    with board:
        code, report = _validate(project, board.port, "--samples", "10")
    assert code == 0, [c for c in report["checks"] if not c["passed"]]
    device = report["metrics"]["device"]
    assert device["identity"]["runtime"] == "tflm" and device["identity"]["library"].startswith("esp-tflite-micro")
    assert device["golden"]["bit_exact"] == device["golden"]["count"]
    assert device["samples"]["bit_exact"] == 10
    assert device["arena_used_bytes"] > 0  # of the enlarged x86-64 arena (64-bit structs)


@pytest.mark.slow
def test_monitor_decodes_the_boot_log_and_identity(uno_digits, uno_board, capsys):
    import threading

    code = main(["monitor", str(uno_digits), "--device", uno_board.port, "--no-reset"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "runtime: c (mcuq-c-" in out and f"this is {uno_digits.name}'s firmware" in out
    # Opening a port discards what arrived before (pyserial flushes it), as a real board's boot
    # log is lost unless the port's DTR resets it: here the bridge resets the AVR just after.
    timer = threading.Timer(0.8, os.kill, (uno_board.process.pid, signal.SIGUSR1))
    timer.start()
    try:
        assert main(["monitor", str(uno_digits), "--device", uno_board.port, "--no-reset"]) == 0
    finally:
        timer.cancel()
    assert "mcuq: selftest PASS" in capsys.readouterr().out
