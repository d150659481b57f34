"""Library kernel features (boards/libraries/*.toml [features]) and the quantization rules
they impose. The struct sizes are re-checked by compiling the library's own headers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mcuq.backends.tflm.ops import check_library_rules, library_rule_violations
from mcuq.common.errors import UnsupportedOpError
from mcuq.libraries import load_library

ROOT = Path(__file__).resolve().parent.parent
LIBS = ROOT.parent / "shared" / "tflm-libs"
HEADER_ROOTS = {"chirale-tensorflowlite": LIBS / "Chirale_TensorFLowLite" / "src", "esp-tflite-micro": LIBS / "esp-tflite-micro"}


def test_feature_values_match_what_the_sources_say() -> None:
    chirale, esp = load_library("chirale-tensorflowlite"), load_library("esp-tflite-micro")
    assert chirale.features.per_channel_fully_connected is False
    assert esp.features.per_channel_fully_connected is True
    assert "MAX_POOL_2D" not in chirale.features.int16x8_ops and "MAX_POOL_2D" in esp.features.int16x8_ops
    assert chirale.features.static_memory is False and esp.features.static_memory is True


def test_per_channel_dense_is_refused_for_chirale_only(digits_per_channel_all) -> None:
    info = digits_per_channel_all.info
    assert any(t.quant is not None and t.quant.per_channel for t in info.tensors)
    problems = library_rule_violations(info, load_library("chirale-tensorflowlite"))
    assert problems and "FULLY_CONNECTED" in problems[0] and "per tensor" in problems[0]
    assert library_rule_violations(info, load_library("esp-tflite-micro")) == []
    with pytest.raises(UnsupportedOpError, match="one scale to all channels"):
        check_library_rules(info, load_library("chirale-tensorflowlite"), "board nano33ble")


def test_per_tensor_dense_passes_the_chirale_rules(sine_per_tensor, digits_per_tensor) -> None:
    for q in (sine_per_tensor, digits_per_tensor):
        assert library_rule_violations(q.info, load_library("chirale-tensorflowlite")) == []


@pytest.mark.slow
def test_int16_pooling_is_refused_for_chirale() -> None:
    from mcuq.frontend.converter import QuantizeOptions, quantize

    q = quantize(
        ROOT / "examples" / "digits" / "model.keras",
        str(ROOT / "examples" / "digits" / "calibration.npy"),
        options=QuantizeOptions(activations="int16"),
    )
    problems = library_rule_violations(q.info, load_library("chirale-tensorflowlite"))
    assert any("MAX_POOL_2D" in p and "--activations int8" in p for p in problems)
    assert library_rule_violations(q.info, load_library("esp-tflite-micro")) == []


@pytest.mark.slow
@pytest.mark.parametrize("library_id", sorted(HEADER_ROOTS))
def test_struct_sizes_are_those_of_a_32_bit_build(library_id: str, tmp_path: Path) -> None:
    """sizeof() of the library's own structs with arm-none-eabi-g++ equals the data file."""
    root = HEADER_ROOTS[library_id]
    if not root.is_dir():
        pytest.skip(f"library sources not found at {root} (../shared/tflm-libs)")
    if shutil.which("arm-none-eabi-g++") is None:
        pytest.skip("arm-none-eabi-g++ not installed")
    features = load_library(library_id).features
    checks = "\n".join(f'static_assert(sizeof({name}) == {size}, "{name}");' for name, size in features.struct_bytes_32bit.items())
    src = tmp_path / "sizes.cpp"
    src.write_text(f'#include "tensorflow/lite/c/common.h"\n{checks}\n')
    flags = ["-DTF_LITE_STATIC_MEMORY"] if features.static_memory else []
    proc = subprocess.run(
        ["arm-none-eabi-g++", "-mcpu=cortex-m4", "-mthumb", "-std=gnu++17", "-fsyntax-only", *flags, "-I", str(root), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_boards_marks_cores_the_library_does_not_list(capsys) -> None:
    from mcuq.cli import main

    assert main(["boards"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln and not ln.startswith(("id ", "(*)"))}
    for board in ("pico", "teensy41", "nucleo_f446re", "nucleo_l4r5zi"):
        assert "(*)" in lines[board], lines[board]
    assert "(*)" not in lines["nano33ble"] and "(*)" not in lines["esp32"]
    library = load_library("chirale-tensorflowlite")
    assert library.lists_architecture("mbed_nano") and not library.lists_architecture("stm32")


@pytest.mark.slow
def test_deploy_refuses_per_channel_dense_for_chirale_before_writing(tmp_path: Path) -> None:
    from mcuq.deploy import DeployRequest, deploy

    out = tmp_path / "p"
    with pytest.raises(UnsupportedOpError, match=r"board nano33ble: .*FULLY_CONNECTED.*one scale to all channels") as err:
        deploy(
            DeployRequest(
                model=str(ROOT / "examples" / "sine" / "model.keras"),
                board="nano33ble",
                out=str(out),
                calibration=str(ROOT / "examples" / "sine" / "calibration.npy"),
                options={"per_channel": "all"},
            )
        )
    assert "\n" not in str(err.value)
    assert not (out / "src").exists()
