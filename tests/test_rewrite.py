"""Layer rewrites (mcuq/frontend/rewrite.py): ELU, GELU, LayerNormalization, nearest UpSampling
and MultiHeadAttention become ops every pinned TFLite Micro library runs in int8, checked in
float against the original before quantization, and named in every output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mcuq.common.errors import ConversionError


def _keras():
    from mcuq.frontend.tf import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    return keras


def _loaded(model, shape):
    from mcuq.frontend.loader import LoadedModel
    from mcuq.frontend.samples import InputSpec

    return LoadedModel(Path("m.keras"), "keras3", [InputSpec("x", shape)], model=model)


def _samples(model, data):
    from mcuq.frontend.samples import SampleSet

    return SampleSet({"x": data}, "test", False)


def _rewrite(model, data):
    from mcuq.frontend.rewrite import rewrite_for_int8

    return rewrite_for_int8(_loaded(model, data.shape[1:]), _samples(model, data))


def test_exact_rewrites_match_the_original_in_float(rng):
    """ELU (both spellings), LayerNormalization, UpSampling1D/2D and attention are identities in float."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((4, 8))
    x = L.Dense(8, activation="elu", name="dense_elu")(inp)
    x = L.ELU(alpha=0.3, name="elu_layer")(x)
    x = L.LayerNormalization(name="norm")(x)
    x = L.MultiHeadAttention(num_heads=2, key_dim=3, name="attention")(x, x)
    x = L.UpSampling1D(2, name="up1")(x)
    x = L.Reshape((8, 4, 2))(x)
    x = L.UpSampling2D((2, 3), name="up2")(x)
    model = keras.Model(inp, x)
    data = rng.normal(size=(16, 4, 8)).astype(np.float32) * 3
    outcome = _rewrite(model, data)
    assert [r.layer for r in outcome.rewrites] == ["dense_elu", "elu_layer", "norm", "attention", "up1", "up2"]
    assert outcome.check is not None and outcome.check.max_abs_diff < 1e-4
    # the original is untouched (it is the model the float check compares with)
    assert any(type(layer).__name__ == "MultiHeadAttention" for layer in model.layers)
    assert not any(type(layer).__name__ in ("MultiHeadAttention", "LayerNormalization", "ELU") for layer in outcome.loaded.model.layers)
    got = np.asarray(outcome.loaded.model(data[:4]))
    np.testing.assert_allclose(got, np.asarray(model(data[:4])), atol=1e-4)


def test_nothing_to_rewrite_keeps_the_model(rng):
    keras = _keras()
    inp = keras.Input((8,))
    model = keras.Model(inp, keras.layers.Dense(4, activation="relu")(inp))
    outcome = _rewrite(model, rng.normal(size=(8, 8)).astype(np.float32))
    assert outcome.rewrites == [] and outcome.loaded.model is model


def test_gelu_rewrite_refused_beyond_half_an_int8_step():
    """The tanh form differs from erf GELU by ~3e-4 near x = -2: on outputs that span only a
    few hundredths, that is more than half an int8 step, and mcuq refuses with the layer named."""
    keras = _keras()
    inp = keras.Input((1,))
    model = keras.Model(inp, keras.layers.Activation("gelu", name="act")(inp))
    data = np.linspace(-2.3, -1.9, 32, dtype=np.float32).reshape(-1, 1)
    with pytest.raises(ConversionError) as err:
        _rewrite(model, data)
    message = str(err.value)
    assert "'act'" in message and "half an int8 step" in message and "x*sigmoid(1.702x)" in message
    # on ordinary data the same rewrite is well inside the tolerance
    wide = np.linspace(-4, 4, 64, dtype=np.float32).reshape(-1, 1)
    assert _rewrite(model, wide).check.max_abs_diff < 1e-3


def test_masked_attention_refused_with_the_layer_named(rng):
    keras = _keras()
    inp = keras.Input((4, 8))
    x = keras.layers.MultiHeadAttention(num_heads=1, key_dim=4, name="causal")(inp, inp, use_causal_mask=True)
    model = keras.Model(inp, x)
    with pytest.raises(ConversionError, match=r"Keras layer 'causal' \(MultiHeadAttention\): called with use_causal_mask.*without masks"):
        _rewrite(model, rng.normal(size=(4, 4, 8)).astype(np.float32))


def test_subclassed_model_refused_with_a_replacement(rng):
    keras = _keras()

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.act = keras.layers.ELU(name="my_elu")

        def call(self, x):
            return self.act(x)

    model = Net()
    model(np.zeros((1, 4), np.float32))
    with pytest.raises(ConversionError, match=r"'my_elu' \(ELU\).*functional API.*ReLU or LeakyReLU"):
        _rewrite(model, rng.normal(size=(4, 4)).astype(np.float32))


@pytest.mark.slow
def test_converter_float_op_message_does_not_ask_for_calibration_again(rng):
    """A layer the converter leaves in float (here ELU, without mcuq's rewrite): the message
    says the converter has no int8 form of the op, not "re-quantize with calibration data"."""
    from conftest import _plain_convert
    from mcuq.frontend.fullint8 import check_full_int8
    from mcuq.model.info import parse_model

    keras = _keras()
    inp = keras.Input((8,))
    model = keras.Model(inp, keras.layers.ELU(name="elu")(keras.layers.Dense(8)(inp)))
    info = parse_model(_plain_convert(model, rng.normal(size=(16, 8)).astype(np.float32), "int8"), "elu")
    with pytest.raises(ConversionError) as err:
        check_full_int8(info, source="m.keras")
    assert "no int8 form of ELU" in str(err.value), str(err.value)
    assert "re-quantize" not in str(err.value)
    with pytest.raises(ConversionError, match="re-quantize from the Keras/SavedModel"):
        check_full_int8(info, source="m.tflite", tflite=True)  # someone else's .tflite: that advice fits


@pytest.mark.slow
def test_transformer_block_deploys_with_the_rewrites_named(tmp_path, rng):
    """From the .keras file through mcuq.deploy to the Arduino boards' library (no BATCH_MATMUL):
    the summary, mcuq.lock.json, validate and report.json name every rewritten layer."""
    from mcuq.deploy import DeployRequest, deploy, format_summary

    keras = _keras()
    L = keras.layers
    inp = keras.Input((4, 8))
    attention = L.MultiHeadAttention(num_heads=2, key_dim=4, name="attention")(inp, inp)
    x = L.LayerNormalization(name="norm1")(L.Add()([inp, attention]))
    h = L.Dense(8, activation="gelu", name="mlp")(x)
    model = keras.Model(inp, L.ELU(name="out_elu")(L.LayerNormalization(name="norm2")(L.Add()([x, h]))))
    model.save(tmp_path / "block.keras")
    np.save(tmp_path / "cal.npy", rng.normal(size=(48, 4, 8)).astype(np.float32))
    np.savez(tmp_path / "val.npz", **{model.inputs[0].name: rng.normal(size=(24, 4, 8)).astype(np.float32)})
    result = deploy(
        DeployRequest(
            model=str(tmp_path / "block.keras"),
            board="nano33ble",
            out=str(tmp_path / "out"),
            calibration=str(tmp_path / "cal.npy"),
            data=str(tmp_path / "val.npz"),
        )
    )
    assert result.ok, result.result_line
    assert "BATCH_MATMUL" not in result.quantized.info.op_names
    names = ["attention", "norm1", "mlp", "norm2", "out_elu"]
    summary = format_summary(result)
    assert "rewrote:" in summary and all(f"'{n}'" in summary for n in names)
    lock = json.loads((tmp_path / "out" / "mcuq.lock.json").read_text())
    rewrites = lock["quantization"]["rewrites"]
    assert sorted(r["layer"] for r in rewrites["layers"]) == sorted(names)
    assert rewrites["float_check"]["max_abs_diff"] <= rewrites["float_check"]["tolerance"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert sorted(r["layer"] for r in report["summary"]["rewrites"]["layers"]) == sorted(names)
    assert any("mcuq rewrote" in n for n in result.validation.notes)
    # the accuracy check that already runs covers the rewritten model (float vs int8 on val.npz)
    snr = result.validation.metrics["outputs"][0]["SNR_dB"]
    assert snr > 15, snr
    assert "Layers mcuq rewrote" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.slow
def test_missing_kernel_named_before_the_arena_is_measured(rng):
    """A GELU .tflite from the standard converter (int8 GELU: no kernel in the x86 wheel nor in
    esp-tflite-micro): weighing Dense scales measures arenas first, and used to say "could not
    allocate the model even with 64 MB of arena"; the missing kernel is named instead."""
    from conftest import _plain_convert
    from mcuq.backends.base import backend_for
    from mcuq.boards import get_board
    from mcuq.common.errors import UnsupportedOpError
    from mcuq.model.info import parse_model

    keras = _keras()
    inp = keras.Input((8,))
    model = keras.Model(inp, keras.layers.Dense(8, activation="gelu", name="ff")(inp))
    info = parse_model(_plain_convert(model, rng.normal(size=(16, 8)).astype(np.float32), "int8"), "gelu")
    assert "GELU" in info.op_names
    board = get_board("esp32")
    sample = [np.zeros(t.shape, np.int8) for t in info.input_tensors]
    with pytest.raises(UnsupportedOpError, match=r"has no kernel for GELU \(AddGelu"):
        backend_for(board).arena_bytes(info, board, sample)
