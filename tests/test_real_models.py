"""Models as users have them (issue #9): standard-converter .tflite files (batch -1, float
I/O), multi-input / multi-output models, the per-channel choice, readable names."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import _plain_convert
from mcuq.common.errors import CalibrationError, ConversionError
from mcuq.frontend.converter import QuantizeOptions, quantize
from mcuq.frontend.fullint8 import shape_tensors


def _dense_per_channel(info) -> list[bool]:
    return [info.tensors[op.inputs[1]].quant.per_channel for op in info.ops
            if op.name == "FULLY_CONNECTED" and info.tensors[op.inputs[1]].shape[0] > 1]


def test_standard_converter_int8_tflite_is_accepted_with_an_info_line(plain_tflites):
    result = quantize(plain_tflites["digits_int8"], None)
    info = result.info
    assert info.input_tensors[0].shape_signature[0] == -1 and info.input_tensors[0].shape[0] == 1
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(info.op_names)  # the Flatten of a batch-None model
    assert shape_tensors(info), "the int32 shape arithmetic is recognised, not taken for float"
    assert result.options.io == "int8"
    assert any("batch -1" in n for n in result.notes)


def test_float_io_int8_tflite_is_accepted(plain_tflites):
    result = quantize(plain_tflites["digits_float_io"], None)
    assert result.options.io == "float32" and result.options.activations == "int8"
    assert result.info.input_tensors[0].dtype == "float32"
    assert result.info.op_names[0] == "QUANTIZE" and result.info.op_names[-1] == "DEQUANTIZE"
    assert any("float input/output" in n for n in result.notes)


def test_dynamic_dimension_other_than_batch_is_refused_without_keras_words(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((None, 4)), keras.layers.Dense(3)])
    cal = np.random.default_rng(0).normal(size=(20, 5, 4)).astype(np.float32)
    path = tmp_path / "seq.tflite"
    path.write_bytes(_plain_convert(model, cal, "int8"))
    with pytest.raises(ConversionError) as err:
        quantize(path, None)
    message = str(err.value)
    assert "dynamic shape [-1, -1, 4]" in message and "seq.tflite" in message
    assert "Keras layer" not in message and "\n" not in message


def test_two_input_two_output_model_quantizes_with_readable_names(two_io_int8):
    info = two_io_int8.info
    assert set(info.input_names) == {"accel", "gyro"}
    assert set(info.output_names) == {"activity", "energy"}
    assert len(info.inputs) == 2 and len(info.outputs) == 2
    assert "CONCATENATION" in info.op_names
    assert {t.dtype for t in info.tensors if not t.is_constant} == {"int8"}


def test_keras_output_names_replace_statefulpartitionedcall(digits_int8):
    assert digits_int8.info.output_names == ("probs",)
    assert digits_int8.info.input_names == ("image",)


def test_npz_with_a_wrong_key_names_the_expected_inputs(two_io, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, accel=np.zeros((4, 8), np.float32), gyroscope=np.zeros((4, 4), np.float32))
    with pytest.raises(CalibrationError) as err:
        quantize(two_io["model"], str(bad))
    message = str(err.value)
    assert "'gyro'" in message and "accel, gyro" in message and "\n" not in message


@pytest.mark.parametrize("mode", ["auto", "all", "none"])
def test_per_channel_modes(mode, digits_int8, digits_per_channel_all, digits_per_tensor):
    result = {"auto": digits_int8, "all": digits_per_channel_all, "none": digits_per_tensor}[mode]
    assert result.options.per_channel == mode
    info = result.info
    conv = [info.tensors[op.inputs[1]].quant.per_channel for op in info.ops if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    dense = _dense_per_channel(info)
    assert conv and dense
    assert all(conv) == (mode != "none") and not any(conv) == (mode == "none")
    assert all(dense) == (mode == "all") and not any(dense) == (mode != "all")


def test_per_channel_option_is_checked():
    with pytest.raises(ConversionError, match="--per-channel sometimes"):
        QuantizeOptions(per_channel="sometimes").validate()
    assert QuantizeOptions(per_channel=False).per_channel == "none"  # older configs say true/false
    assert QuantizeOptions(per_channel=True).per_channel == "all"
