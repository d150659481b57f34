"""A 16x8 classifier (Conv2D, DepthwiseConv2D, Dense, softmax; int16 activations and I/O)
deployed through the Python API with --runtime c to the Nucleo-F446RE (qemu) and the
ATmega2560 (simavr): the self-test in the emulator is bit-exact with the golden vectors of the
x86 TFLite Micro, RAM stays at the liveness lower bound."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need
from mcuq.deploy import DeployRequest, deploy
from mcuq.frontend.converter import QuantizeOptions, quantize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classifier_16x8(tmp_path_factory):
    import keras

    L = keras.layers
    keras.utils.set_random_seed(21)
    inp = keras.Input((10, 10, 1))
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Dense(8, activation="relu")(L.Flatten()(x))
    model = keras.Model(inp, L.Dense(4, activation="softmax")(x))
    folder = tmp_path_factory.mktemp("c16x8")
    model.save(folder / "m.keras")
    np.save(folder / "cal.npy", np.random.default_rng(3).normal(size=(32, 10, 10, 1)).astype(np.float32))
    keras.backend.clear_session()
    q = quantize(folder / "m.keras", str(folder / "cal.npy"), options=QuantizeOptions(activations="int16"))
    assert {t.dtype for t in q.info.input_tensors + q.info.output_tensors} == {"int16"}
    return folder / "m.keras", q


@pytest.mark.parametrize("board", ["nucleo_f446re", "mega2560"])
def test_16x8_classifier_passes_the_emulator_self_test(tmp_path, classifier_16x8, board):
    for tool in ("avr-gcc", "simavr") if board == "mega2560" else ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    path, q = classifier_16x8
    request = DeployRequest(
        model=str(path), board=board, runtime="c", out=str(tmp_path / "p"), options={"activations": "int16"}, quantized=q
    )
    result = deploy(request)
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    emulation = result.manifest["c_runtime"]["emulation"]
    assert emulation["passed"], emulation
    model_c = (tmp_path / "p" / "src" / "mcuq_model.c").read_text()
    assert "mcuq_conv_s16(" in model_c and "mcuq_softmax_s16(" in model_c
    golden_c = (tmp_path / "p" / "src" / "mcuq_golden.c").read_text()
    assert "static const int16_t" in golden_c  # the golden vectors are the int16 tensors themselves
    c = result.manifest["c_runtime"]
    assert c["arena_bytes"] == c["lower_bound_bytes"], c
