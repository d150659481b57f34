"""16x8 models (int16 activations and I/O, int8 weights) deployed through the Python API with
--runtime c to the Nucleo-F446RE (qemu) and the ATmega2560 (simavr): a classifier (Conv2D,
DepthwiseConv2D, Conv2DTranspose with a bias, Dense, softmax) and a model with every other 16x8 op (pools, tanh, sigmoid,
Add, Multiply, Subtract, Concatenate with its requantize, global average pooling). Each
emulator self-test is bit-exact with the golden vectors of the x86 TFLite Micro, and RAM stays
at the liveness lower bound."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need
from mcuq.deploy import DeployRequest, deploy
from mcuq.frontend.converter import QuantizeOptions, quantize

pytestmark = pytest.mark.slow


def _classifier():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(21)
    inp = keras.Input((10, 10, 1))
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Conv2DTranspose(3, 2, strides=2, bias_initializer=keras.initializers.RandomNormal(0, 0.5, seed=2))(x)
    x = L.Dense(8, activation="relu")(L.Flatten()(x))
    return keras.Model(inp, L.Dense(4, activation="softmax")(x)), (10, 10, 1)


def _families():
    import keras

    L = keras.layers
    keras.utils.set_random_seed(22)
    inp = keras.Input((12, 12, 2))
    x = L.AveragePooling2D(3, strides=1, padding="same")(L.MaxPooling2D(2)(L.Conv2D(6, 3, padding="same")(inp)))
    a, b = L.Conv2D(4, 1, activation="tanh")(x), L.Conv2D(4, 1, activation="sigmoid")(x)
    x = L.Concatenate()([L.Add()([a, b]), L.Multiply()([a, b]), L.Subtract()([a, b])])
    return keras.Model(inp, L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(x))), (12, 12, 2)


MODELS = {"classifier": _classifier, "families": _families}
OPS = {
    "classifier": {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "SOFTMAX"},
    "families": {"MAX_POOL_2D", "AVERAGE_POOL_2D", "TANH", "LOGISTIC", "ADD", "MUL", "SUB", "QUANTIZE", "CONCATENATION", "MEAN"},
}


@pytest.fixture(scope="module")
def models_16x8(tmp_path_factory):
    import keras

    out = {}
    for name, build in MODELS.items():
        folder = tmp_path_factory.mktemp(name)
        model, shape = build()
        model.save(folder / "m.keras")
        np.save(folder / "cal.npy", np.random.default_rng(3).normal(size=(32, *shape)).astype(np.float32))
        keras.backend.clear_session()
        q = quantize(folder / "m.keras", str(folder / "cal.npy"), options=QuantizeOptions(activations="int16"))
        assert {t.dtype for t in q.info.input_tensors + q.info.output_tensors} == {"int16"}
        assert OPS[name] <= set(q.info.op_names), q.info.op_names
        out[name] = (folder / "m.keras", q)
    return out


@pytest.mark.parametrize("board", ["nucleo_f446re", "mega2560"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_16x8_model_passes_the_emulator_self_test(tmp_path, models_16x8, model, board):
    for tool in ("avr-gcc", "simavr") if board == "mega2560" else ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    path, q = models_16x8[model]
    request = DeployRequest(
        model=str(path), board=board, runtime="c", out=str(tmp_path / "p"), options={"activations": "int16"}, quantized=q
    )
    result = deploy(request)
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    emulation = result.manifest["c_runtime"]["emulation"]
    assert emulation["passed"], emulation
    model_c = (tmp_path / "p" / "src" / "mcuq_model.c").read_text()
    assert "_s16(" in model_c and "mcuq_softmax_s16(" in model_c
    golden_c = (tmp_path / "p" / "src" / "mcuq_golden.c").read_text()
    assert "static const int16_t" in golden_c  # the golden vectors are the int16 tensors themselves
    c = result.manifest["c_runtime"]
    assert c["arena_bytes"] == c["lower_bound_bytes"], c
