"""Plain-C runtime end to end: deploy to 8-bit AVR and to Cortex-M, emulators, fit, validate."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DIGITS, SINE, need
from mcuq.backends.c.backend import BACKEND as C_BACKEND
from mcuq.boards import get_board
from mcuq.common.errors import FitError
from mcuq.deploy import DeployRequest, deploy
from mcuq.validate import validate_project


@pytest.fixture(scope="session")
def mega_digits(tmp_path_factory, digits_tflite) -> Path:
    need("avr-gcc")
    need("simavr")
    out = tmp_path_factory.mktemp("c") / "mega2560-digits"
    result = deploy(DeployRequest(model=str(digits_tflite), board="mega2560", out=str(out), data=str(DIGITS / "val.npz")))
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    return out


def test_digits_runs_bit_exact_on_mega2560_in_simavr(mega_digits):
    manifest = json.loads((mega_digits / "mcuq.lock.json").read_text())
    assert manifest["runtime"] == "c"
    emulation = manifest["c_runtime"]["emulation"]
    assert emulation["passed"] and emulation["target"].startswith("atmega2560")
    assert emulation["unit"] == "cycles" and emulation["ticks"] > 100_000
    assert 0 < emulation["ram_bytes"] < 8192 and emulation["flash_bytes"] > 9000  # weights are in flash
    assert manifest["fit"]["method"].startswith("measured with avr-size")
    c = manifest["c_runtime"]
    assert c["lower_bound_bytes"] <= c["arena_bytes"] <= c["tflm_host_min_bytes"]
    model_c = (mega_digits / "src" / "mcuq_model.c").read_text()
    assert "MCUQ_CONST" in model_c and "mcuq_conv2d(" in model_c
    assert "pgm_read_byte" in (mega_digits / "src" / "mcuq_kernels.h").read_text()


def test_validate_emulate_and_data(mega_digits):
    report = validate_project(mega_digits, data=str(DIGITS / "val.npz"), write_report=False, backend_options={"emulate": True})
    names = {c.name: c for c in report.checks}
    assert report.passed, [c for c in report.checks if not c.passed]
    assert names["emulator"].passed and "cycles per inference" in names["emulator"].detail
    assert names["C vs TFLite Micro on validation data"].detail.startswith("450/450")


def test_sine_runs_on_uno_in_simavr(tmp_path, sine_int8, monkeypatch):
    need("simavr")
    import mcuq.backends.c.backend as c_backend

    built = []  # the template context is built once per deploy: the plan's self-test and render() share it
    real = c_backend.common_context
    monkeypatch.setattr(c_backend, "common_context", lambda *a: built.append(1) or real(*a))
    model = tmp_path / "sine.tflite"
    model.write_bytes(sine_int8.tflite)
    result = deploy(DeployRequest(model=str(model), board="uno", out=str(tmp_path / "p"), data=str(SINE / "val.npz")))
    assert len(built) == 1
    emulation = result.manifest["c_runtime"]["emulation"]
    assert result.ok and emulation["passed"] and emulation["target"].startswith("atmega328p")
    assert result.manifest["fit"]["ram_bytes"] <= 2048


@pytest.mark.slow
def test_model_too_big_for_uno_is_refused_with_numbers(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((64,))
    x = keras.layers.Dense(256, activation="relu")(inp)
    keras.Model(inp, keras.layers.Dense(10)(keras.layers.Dense(128, activation="relu")(x))).save(tmp_path / "big.keras")
    with pytest.raises(FitError, match=r"model needs \d+ B flash, uno has 32256 B .*fits: .*mega2560"):
        deploy(
            DeployRequest(
                model=str(tmp_path / "big.keras"),
                board="uno",
                calibration="random",
                out=str(tmp_path / "p"),
                options={"calibration_samples": 16},
            )
        )
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    "board, core, machine, block",
    [
        ("nucleo_f446re", "cortex-m4", "mps2-an386", 4),
        ("teensy41", "cortex-m7", "mps2-an500", 4),
        ("pico", "cortex-m0plus", "mps2-an385", 1),
    ],
)
def test_runtime_c_runs_on_the_boards_own_cpu_in_qemu(tmp_path, digits_tflite, board, core, machine, block):
    """Each board's -mcpu in its qemu machine; DSP cores get the SIMD weight layout, so the
    ACLE SXTB16/SMLAD path runs on the real instructions and must still pass the golden vectors."""
    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    result = deploy(DeployRequest(model=str(digits_tflite), board=board, runtime="c", out=str(tmp_path / "p")))
    emulation = result.manifest["c_runtime"]["emulation"]
    assert result.ok and emulation["passed"] and emulation["unit"] == "instructions"
    assert emulation["target"] == f"{core} code on qemu {machine}"
    assert emulation["latency_ms"] > 0 and emulation["clock_mhz"] == get_board(board).clock_mhz
    assert result.manifest["fit"]["method"].startswith("measured with arm-none-eabi-size")
    model_c = (tmp_path / "p" / "src" / "mcuq_model.c").read_text()
    assert f".block = {block}," in model_c and "mcuq_conv2d(&op0_params);" in model_c
    assert "ms at" in "\n".join(C_BACKEND.summary_lines(result.lock)) and "(emulator estimate" in "\n".join(
        C_BACKEND.summary_lines(result.lock)
    )


def test_esp32_runtime_c_is_an_esp_idf_project(tmp_path, digits_tflite):
    """--board esp32 --runtime c: CMake project with app_main, no Arduino; no emulator for
    Xtensa, said so. The sources compile against the ESP-IDF declarations they use."""
    need("gcc")
    need("g++")
    project = tmp_path / "p"
    result = deploy(DeployRequest(model=str(digits_tflite), board="esp32", runtime="c", out=str(project)))
    assert result.ok
    assert "project(mcuq_" in (project / "CMakeLists.txt").read_text()
    assert "idf_component_register(" in (project / "src" / "CMakeLists.txt").read_text()
    main = (project / "src" / "main.cpp").read_text()
    assert 'extern "C" void app_main(void)' in main
    assert not any("Arduino.h" in f.read_text() for f in (project / "src").glob("*.*"))
    assert any("no emulator for this CPU" in line for line in C_BACKEND.summary_lines(result.lock))
    assert result.manifest["c_runtime"]["emulation"]["not_emulated"].startswith("esp32 (esp32, xtensa-lx6)")
    shim = tmp_path / "shim"
    (shim / "freertos").mkdir(parents=True)
    (shim / "esp_timer.h").write_text("#include <stdint.h>\nint64_t esp_timer_get_time(void);\n")
    (shim / "freertos" / "FreeRTOS.h").write_text("#define pdMS_TO_TICKS(ms) (ms)\n")
    (shim / "freertos" / "task.h").write_text(
        "void vTaskDelay(unsigned ticks);\ntypedef unsigned UBaseType_t;\nUBaseType_t uxTaskGetStackHighWaterMark(void* task);\n"
    )
    (shim / "esp_cpu.h").write_text("#include <stdint.h>\nuint32_t esp_cpu_get_cycle_count(void);\n")  # the validation link
    for source in sorted((project / "src").glob("*.c*")):
        compiler = ["g++", "-std=gnu++17"] if source.suffix == ".cpp" else ["gcc", "-std=c99"]
        proc = subprocess.run(
            [
                *compiler,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-c",
                "-I",
                str(shim),
                "-I",
                str(project / "src"),
                str(source),
                "-o",
                str(tmp_path / (source.name + ".o")),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{source.name}: {proc.stderr[:400]}"


def test_c_platformio_ini_lints_clean(mega_digits):
    from platformio.project.config import ProjectConfig

    lint = ProjectConfig.lint(str(mega_digits / "platformio.ini"))
    assert lint["errors"] == [] and lint["warnings"] == []
    cfg = ProjectConfig(str(mega_digits / "platformio.ini"))
    assert cfg.get("env:mega2560", "board") == "megaatmega2560" and not cfg.get("env:mega2560", "lib_deps", [])


def test_edited_weight_in_generated_c_is_caught(mega_digits, tmp_path):
    project = tmp_path / "copy"
    shutil.copytree(mega_digits, project)
    src = project / "src" / "mcuq_model.c"
    text = src.read_text()
    match = re.search(r"(static const int8_t conv1_weights\[\d+\] MCUQ_ALIGN4 MCUQ_CONST = \{\s+)(-?\d+)", text)
    value = int(match.group(2))
    src.write_text(text[: match.start(2)] + str(-value if value else 100) + text[match.end(2) :])
    report = validate_project(project, write_report=False)
    assert not report.passed
    assert any(c.name.startswith("golden vector") and not c.passed for c in report.checks)


def test_generated_c_project_host_tests_pass_in_emulator(mega_digits):
    env = {**os.environ, "MCUQ_EMULATE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=mega_digits,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "UserWarning: not checked: validation data: 'val.npz' (sha256 " in line]
    assert len(notes) == 1 and "is outside the project" in notes[0], proc.stdout


def test_report_shows_measured_c_sizes_and_cycles(mega_digits):
    report = validate_project(mega_digits, data=str(DIGITS / "val.npz"))
    html = (mega_digits / "report.html").read_text()
    assert report.passed and "Plain-C runtime: measured sizes and speed" in html
    emulation = json.loads((mega_digits / "mcuq.lock.json").read_text())["c_runtime"]["emulation"]
    assert f"{emulation['ticks']}" in html and "cycles per inference" in html
