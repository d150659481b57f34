"""Full-int8 quantization: every input format, every calibration format, the int8 contract."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DIGITS, SINE
from mcuq.common.errors import ConversionError, MCUQError
from mcuq.frontend.converter import QuantizeOptions, quantize
from mcuq.frontend.fullint8 import check_full_int8
from mcuq.model.info import dequantize_array, parse_model, quantize_array
from mcuq.reference.host_tflm import run_tflm


def _activation_dtypes(info):
    return {t.dtype for t in info.tensors if not t.is_constant}


def test_digits_is_full_int8_and_static_batch_1(digits_int8):
    info = digits_int8.info
    assert _activation_dtypes(info) == {"int8"}
    assert info.input_tensors[0].shape == (1, 8, 8, 1)
    assert all(t.shape_signature is None or -1 not in t.shape_signature for t in info.tensors)
    # Batch-1 export: no dynamic-batch arithmetic around Flatten.
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(info.op_names)
    weights = [info.tensors[op.inputs[1]] for op in info.ops if op.name in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")]
    assert all(w.dtype == "int8" for w in weights)
    biases = [info.tensors[op.inputs[2]] for op in info.ops if op.name in ("CONV_2D", "FULLY_CONNECTED")]
    assert all(b.dtype == "int32" for b in biases)
    assert any(w.quant.per_channel for w in weights), "per-channel weights by default"
    check_full_int8(info)


def test_int8_digits_agrees_with_keras_on_tflm(digits_int8):
    import keras

    val = np.load(DIGITS / "val.npz")
    x, labels = val["x"][:120], val["labels"][:120]
    float_pred = keras.saving.load_model(DIGITS / "model.keras", compile=False).predict(x, verbose=0).argmax(1)
    inp, out = digits_int8.info.input_tensors[0], digits_int8.info.output_tensors[0]
    samples = [[quantize_array(x[i : i + 1], inp)] for i in range(len(x))]
    run = run_tflm(digits_int8.tflite, samples, 64 * 1024, 1)
    int8_pred = np.array([dequantize_array(o[0], out).argmax() for o in run.outputs])
    assert (int8_pred == float_pred).mean() > 0.95
    assert (int8_pred == labels).mean() > 0.85


def test_sine_converts_and_float_reference_is_kept(sine_int8):
    assert sine_int8.info.op_names == ["FULLY_CONNECTED"]
    assert sine_int8.float_tflite is not None
    float_info = parse_model(sine_int8.float_tflite)
    assert _activation_dtypes(float_info) == {"float32"}


@pytest.mark.slow
def test_keras3_h5_file(tmp_path):
    import keras

    path = tmp_path / "digits.h5"
    keras.saving.load_model(DIGITS / "model.keras", compile=False).save(path)
    result = quantize(path, str(DIGITS / "calibration.npy"))
    assert result.source_kind == "keras3"
    check_full_int8(result.info)


@pytest.mark.slow
def test_legacy_keras2_h5_falls_back_to_tf_keras(tmp_path):
    import tf_keras

    model = tf_keras.Sequential(
        [
            tf_keras.layers.Input((8, 8, 1)),
            tf_keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            tf_keras.layers.Flatten(),
            tf_keras.layers.Dense(4),
        ]
    )
    path = tmp_path / "legacy.h5"
    model.save(path)
    result = quantize(path, str(DIGITS / "calibration.npy"))
    assert result.source_kind == "tf_keras"
    assert any("tf_keras" in n for n in result.notes)
    assert "DEPTHWISE_CONV_2D" in result.info.op_names
    check_full_int8(result.info)


def _dense_saved_model(path, batch=None):
    import tensorflow as tf

    class Dense(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([batch, 8], tf.float32, name="features")])
        def __call__(self, x):
            return {"y": tf.nn.relu(tf.matmul(x, self.w))}

    module = Dense()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


@pytest.mark.slow
def test_saved_model_with_dynamic_batch_gets_batch_1(tmp_path):
    path = _dense_saved_model(tmp_path / "sm")
    np.save(tmp_path / "cal.npy", np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32))
    result = quantize(path, str(tmp_path / "cal.npy"))
    assert result.source_kind == "saved_model"
    assert result.info.input_tensors[0].shape == (1, 8)
    check_full_int8(result.info)


def test_int8_tflite_passes_through_unchanged(digits_tflite):
    result = quantize(digits_tflite, None)
    assert result.tflite == digits_tflite.read_bytes()
    assert result.options.io == "int8"


@pytest.mark.parametrize("io", ["uint8", "float32"])
def test_io_types(io, sine_int8):
    result = quantize(SINE / "model.keras", str(SINE / "calibration.npy"), options=QuantizeOptions(io=io))
    assert result.info.input_tensors[0].dtype == io
    assert result.info.output_tensors[0].dtype == io
    inner = {t.dtype for t in result.info.tensors if not t.is_constant} - {io}
    assert inner == {"int8"}


@pytest.mark.slow
def test_16x8_mode():
    result = quantize(SINE / "model.keras", str(SINE / "calibration.npy"), options=QuantizeOptions(activations="int16"))
    assert _activation_dtypes(result.info) == {"int16"}
    biases = [result.info.tensors[op.inputs[2]].dtype for op in result.info.ops if op.name == "FULLY_CONNECTED"]
    assert set(biases) <= {"int64", "int32"}
    check_full_int8(result.info, activations="int16")


def test_per_tensor_option(digits_per_tensor):
    result = digits_per_tensor  # quantize(digits, per_channel=False), converted once per session
    conv_weights = [result.info.tensors[op.inputs[1]] for op in result.info.ops if op.name == "CONV_2D"]
    assert all(len(w.quant.scale) == 1 for w in conv_weights)


@pytest.mark.slow
def test_output_file_written_atomically(tmp_path):
    out = tmp_path / "sub" / "sine.tflite"
    result = quantize(SINE / "model.keras", str(SINE / "calibration.npy"), output=out)
    assert out.read_bytes() == result.tflite
    assert not list(out.parent.glob(".*mcuq-tmp"))


@pytest.mark.slow
def test_random_calibration_is_recorded(tmp_path):
    import json

    result = quantize(SINE / "model.keras", "random", output=tmp_path / "s.tflite")
    assert result.random_calibration
    assert result.manifest_entry()["accuracy_unverified"] is True
    record = json.loads((tmp_path / "s.tflite.mcuq.json").read_text())
    assert record["accuracy_unverified"] is True and record["calibration"] == "random"


def test_float_tflite_is_refused_with_advice(float_tflite):
    with pytest.raises(ConversionError, match="float .tflite.*Keras"):
        quantize(float_tflite, None)


@pytest.mark.slow
def test_hybrid_tflite_is_refused(tmp_path):
    import keras
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras.saving.load_model(DIGITS / "model.keras", compile=False))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data -> dynamic range
    path = tmp_path / "hybrid.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(ConversionError, match="hybrid"):
        quantize(path, None)


def test_missing_calibration_is_an_error_before_tensorflow():
    with pytest.raises(ConversionError, match="no calibration data"):
        quantize(DIGITS / "model.keras", None)


@pytest.mark.slow
def test_recurrent_layer_without_a_tflite_micro_form_gets_a_clear_message(tmp_path):
    """LSTM/GRU/SimpleRNN are rebuilt (tests/test_recurrent.py); a generic RNN over a cell is not."""
    import keras

    inp = keras.Input((5, 8))
    keras.Model(inp, keras.layers.RNN(keras.layers.LSTMCell(4), name="speech_rnn")(inp)).save(tmp_path / "rnn.keras")
    np.save(tmp_path / "cal.npy", np.zeros((4, 5, 8), np.float32))
    with pytest.raises(ConversionError, match="speech_rnn.*LSTM, GRU or SimpleRNN"):
        quantize(tmp_path / "rnn.keras", str(tmp_path / "cal.npy"))


@pytest.mark.slow
def test_flex_op_names_the_op(tmp_path):
    import tensorflow as tf

    class Cumprod(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.math.cumprod(x, axis=1)}

    module = Cumprod()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    np.save(tmp_path / "cal.npy", np.ones((4, 8), np.float32))
    with pytest.raises(MCUQError, match="Cumprod"):
        quantize(tmp_path / "sm", str(tmp_path / "cal.npy"))


@pytest.mark.slow
def test_control_flow_subgraphs_are_refused(tmp_path):
    import tensorflow as tf

    class Loop(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def __call__(self, x):
            _, y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 0.5 + 1.0), [tf.constant(0), x])
            return {"y": y}

    module = Loop()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    np.save(tmp_path / "cal.npy", np.ones((4, 8), np.float32))
    with pytest.raises(ConversionError, match="subgraphs"):
        quantize(tmp_path / "sm", str(tmp_path / "cal.npy"))


@pytest.mark.slow
def test_saved_model_with_undefined_feature_dim_is_refused(tmp_path):
    import tensorflow as tf

    class Any(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": x * 2.0}

    module = Any()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.__call__})
    np.save(tmp_path / "cal.npy", np.ones((4, 8), np.float32))
    with pytest.raises(MCUQError, match="undefined dimensions"):
        quantize(tmp_path / "sm", str(tmp_path / "cal.npy"))
