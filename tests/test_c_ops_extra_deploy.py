"""The plain-C runtime's new ops inside generated firmware: two Keras models that use every
one of them (Permute, Cropping2D, LeakyReLU, hard_swish, PReLU, UpSampling2D bilinear,
Resizing nearest, Subtract, Maximum, Minimum, GlobalMaxPooling2D; attention with Dot layers)
deployed with --runtime c to the ATmega2560 (simavr) and the Nucleo-F446RE (qemu), each
self-test bit-exact with the golden vectors of the x86 TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import need
from mcuq.common.console import SILENT
from mcuq.deploy import DeployRequest, deploy
from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process
from mcuq.model.info import parse_model

pytestmark = pytest.mark.slow


def _families_model():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(11)
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(6, 3, padding="same")(inp)
    x = L.Permute((2, 1, 3))(x)
    x = L.Cropping2D(((1, 0), (0, 1)))(x)
    x = L.LeakyReLU(0.1)(x)
    x = L.Activation("hard_swish")(x)
    x = L.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.3))(x)
    x = L.UpSampling2D(2, interpolation="bilinear")(x)
    x = L.Resizing(9, 9, interpolation="nearest")(x)
    a, b = L.Conv2D(5, 1)(x), L.Conv2D(5, 1)(x)
    s = L.Subtract()([a, b])
    x = L.Concatenate()([L.Maximum()([a, s]), L.Minimum()([b, s])])
    x = L.GlobalMaxPooling2D()(x)
    return keras.Model(inp, L.Dense(4)(x)), (8, 8, 3)


def _attention_model():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(12)
    inp = keras.Input((6, 8))
    # Scaled dot-product attention written with Dot layers: BATCH_MATMUL as users' hand-written
    # attention and exported models carry it (mcuq rewrites MultiHeadAttention without it).
    q, k, v = L.Dense(4)(inp), L.Dense(4)(inp), L.Dense(4)(inp)
    scores = L.Softmax()(L.Dot(axes=(2, 2))([q, k]))
    x = L.Dot(axes=(2, 1))([scores, v])
    x = L.Permute((2, 1))(x)
    x = L.Flatten()(x)
    return keras.Model(inp, L.Dense(3)(x)), (6, 8)


MODELS = {"families": _families_model, "attention": _attention_model}
OPS = {
    "families": {"TRANSPOSE", "STRIDED_SLICE", "LEAKY_RELU", "HARD_SWISH", "PRELU", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"}
    | {"SUB", "MAXIMUM", "MINIMUM", "REDUCE_MAX"},
    "attention": {"TRANSPOSE", "BATCH_MATMUL", "SOFTMAX"},
}


@pytest.fixture(scope="session")
def extra_tflites(tmp_path_factory) -> dict[str, Path]:
    import keras

    paths = {}
    for name, build in MODELS.items():
        folder = tmp_path_factory.mktemp(name)
        model, shape = build()
        model.save(folder / "m.keras")
        np.save(folder / "cal.npy", np.random.default_rng(3).normal(size=(64, *shape)).astype(np.float32))
        out = convert_in_this_process(folder / "m.keras", str(folder / "cal.npy"), QuantizeOptions(calibration_samples=64), SILENT)
        keras.backend.clear_session()
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(out["tflite"])
        assert OPS[name] <= set(parse_model(out["tflite"]).op_names), parse_model(out["tflite"]).op_names
    return paths


@pytest.mark.parametrize("board", ["mega2560", "nucleo_f446re"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_new_ops_pass_the_emulator_self_test(tmp_path, extra_tflites, model, board):
    if board == "mega2560":
        need("avr-gcc")
        need("simavr")
    else:
        need("arm-none-eabi-gcc")
        need("qemu-system-arm")
    result = deploy(DeployRequest(model=str(extra_tflites[model]), board=board, runtime="c", out=str(tmp_path / "p")))
    emulation = result.manifest["c_runtime"]["emulation"]
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    assert emulation["passed"], emulation
    model_c = (tmp_path / "p" / "src" / "mcuq_model.c").read_text()
    assert "mcuq_gather(" in model_c  # the data-moving ops ran through the new kernel
    c = result.manifest["c_runtime"]
    assert c["arena_bytes"] == c["lower_bound_bytes"], c  # RAM at the liveness lower bound
