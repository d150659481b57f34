"""Models as users have them (issue #9): standard-converter .tflite files (batch -1, float
I/O), multi-input / multi-output models, the per-channel choice, readable names."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, _plain_convert, need
from mcuq.common.errors import CalibrationError, ConversionError, MCUQError
from mcuq.frontend.converter import QuantizeOptions, quantize
from mcuq.frontend.fullint8 import shape_tensors


def _dense_per_channel(info) -> list[bool]:
    return [
        info.tensors[op.inputs[1]].quant.per_channel
        for op in info.ops
        if op.name == "FULLY_CONNECTED" and info.tensors[op.inputs[1]].shape[0] > 1
    ]


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


@pytest.mark.slow
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


# --- deploy, validate and (plain C) emulate them ---------------------------------------------


def _deploy(tmp_path, folder, **kwargs):
    from mcuq.deploy import DeployRequest, deploy

    result = deploy(DeployRequest(out=str(tmp_path / folder), **kwargs))
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    return result


def test_standard_converter_files_deploy_and_validate_on_tflite_micro(plain_tflites, tmp_path):
    val = str(ROOT / "examples" / "digits" / "val.npz")
    for key in ("digits_int8", "digits_float_io"):
        result = _deploy(tmp_path, key, model=str(plain_tflites[key]), board="esp32", data=val)
        accuracy = result.validation.metrics["outputs"][0]["ACC_int8"]
        assert accuracy > 0.9
        header = (tmp_path / key / "src" / f"{key}_model.h").read_text()
        io_type = "MCUQ_FLOAT32" if key == "digits_float_io" else "MCUQ_INT8"
        assert header.count(io_type) >= 2, "the wrapper's input and output infos carry the model's I/O type"
        assert '"output_0"' in header and "StatefulPartitionedCall" not in header


def test_standard_converter_file_runs_in_the_plain_c_emulator(plain_tflites, tmp_path):
    need("avr-gcc")
    need("simavr")
    result = _deploy(tmp_path, "sine", model=str(plain_tflites["sine_int8"]), board="uno", data=str(ROOT / "examples" / "sine" / "val.npz"))
    emulation = result.manifest["c_runtime"]["emulation"]
    assert emulation["passed"] and emulation["target"]


def test_plain_c_refuses_float_io_naming_io_int8(plain_tflites, tmp_path):
    from mcuq.deploy import DeployRequest, deploy

    with pytest.raises(MCUQError) as err:
        deploy(DeployRequest(model=str(plain_tflites["digits_float_io"]), board="uno", out=str(tmp_path / "p")))
    assert "--io int8" in str(err.value) and "float32 input/output" in str(err.value)
    assert not (tmp_path / "p").exists()


def test_two_input_two_output_model_deploys_on_both_runtimes(two_io, two_io_int8, tmp_path):
    # both runtimes deploy the session's conversion of this model (its calibration, default options)
    common = {"model": str(two_io["model"]), "quantized": two_io_int8, "data": str(two_io["val"])}
    tflm = _deploy(tmp_path, "tflm", board="esp32", **common)
    outputs = {o["name"]: o for o in tflm.validation.metrics["outputs"]}
    assert set(outputs) == {"activity", "energy"}
    assert outputs["activity"]["ACC_int8"] > 0.8 and outputs["energy"]["SNR_dB"] > 10
    assert tflm.manifest["api"]["inputs"] == ["accel", "gyro"] or set(tflm.manifest["api"]["inputs"]) == {"accel", "gyro"}
    header = (tmp_path / "tflm" / "src" / "two_io_model.h").read_text()
    assert "TWO_IO_INPUT_ACCEL" in header and "TWO_IO_OUTPUT_ENERGY" in header
    report = (tmp_path / "tflm" / "report.html").read_text()
    assert "activity" in report and "energy" in report
    need("avr-gcc")
    need("simavr")
    c = _deploy(tmp_path, "c", board="uno", **common)
    assert c.manifest["c_runtime"]["emulation"]["passed"]
    assert any(ch.name.startswith("validation samples") or "bit-exact" in ch.detail for ch in c.validation.checks)


def test_validation_npz_with_a_missing_input_lists_the_names(two_io, tmp_path):
    from mcuq.deploy import DeployRequest, deploy

    bad = tmp_path / "val.npz"
    np.savez(bad, accel=np.zeros((4, 8), np.float32))
    with pytest.raises(CalibrationError) as err:
        deploy(
            DeployRequest(model=str(two_io["model"]), calibration=str(two_io["cal"]), data=str(bad), board="esp32", out=str(tmp_path / "p"))
        )
    assert "'gyro'" in str(err.value) and "accel, gyro" in str(err.value)


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory):
    """A Dense layer with one huge weight that float never uses: per-tensor int8 wrecks it."""
    import keras

    out = tmp_path_factory.mktemp("outlier")
    keras.utils.set_random_seed(1)
    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="fc1")(inp)
    h = keras.layers.Dense(16, activation="relu", name="bad")(h)
    model = keras.Model(inp, keras.layers.Dense(4, name="out")(h))
    w1, b1 = model.get_layer("fc1").get_weights()
    w1[:, 0], b1[0] = 0.0, -1.0
    model.get_layer("fc1").set_weights([w1, b1])
    w2, b2 = model.get_layer("bad").get_weights()
    w2[0, 0] = 400.0
    model.get_layer("bad").set_weights([w2, b2])
    model.save(out / "outlier.keras")
    rng = np.random.default_rng(0)
    np.save(out / "cal.npy", rng.normal(size=(200, 8)).astype(np.float32))
    np.savez(out / "val.npz", x=rng.normal(size=(64, 8)).astype(np.float32))
    return out


@pytest.mark.slow
def test_auto_keeps_per_channel_dense_when_validation_shows_the_loss(outlier_model, tmp_path):
    result = _deploy(
        tmp_path,
        "p",
        model=str(outlier_model / "outlier.keras"),
        board="esp32",
        calibration=str(outlier_model / "cal.npy"),
        data=str(outlier_model / "val.npz"),
    )
    choice = result.manifest["weight_scales"]
    assert choice["kept"] == "per-channel Dense" and "dB SNR" in choice["reason"]
    assert choice["measured"]["per-channel Dense"] > choice["measured"]["per-tensor Dense"] + 1
    assert choice["arena_bytes"]["per-channel Dense"] > choice["arena_bytes"]["per-tensor Dense"]
    assert result.manifest["arena"]["target_bytes"] == choice["arena_bytes"]["per-channel Dense"]
    info = result.quantized.info
    assert any(t.quant.per_channel for op in info.ops if op.name == "FULLY_CONNECTED" for t in [info.tensors[op.inputs[1]]])
    lock = (tmp_path / "p" / "mcuq.lock.json").read_text()
    assert "per-channel Dense" in lock
    report = (tmp_path / "p" / "report.html").read_text()
    assert "Weight scales" in report and "per-channel Dense (kept)" in report


@pytest.mark.slow
def test_auto_keeps_per_tensor_dense_without_validation_data_and_says_so(outlier_model, tmp_path):
    from mcuq.deploy import format_summary

    result = _deploy(tmp_path, "p", model=str(outlier_model / "outlier.keras"), board="esp32", calibration=str(outlier_model / "cal.npy"))
    choice = result.manifest["weight_scales"]
    assert choice["kept"] == "per-tensor Dense" and "no validation data" in choice["reason"]
    summary = format_summary(result)
    assert "per-tensor Dense kept" in summary and "per-channel Dense" in summary


@pytest.mark.slow
def test_per_channel_dense_is_a_rule_on_the_arduino_library(outlier_model, tmp_path):
    result = _deploy(
        tmp_path,
        "p",
        model=str(outlier_model / "outlier.keras"),
        board="nano33ble",
        calibration=str(outlier_model / "cal.npy"),
        data=str(outlier_model / "val.npz"),
    )
    choice = result.manifest["weight_scales"]
    assert choice["kept"] == "per-tensor Dense" and choice["reason"].startswith("rule:")


def test_labels_go_into_the_generated_code_and_the_report(digits_tflite, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]) + "\n")
    result = _deploy(
        tmp_path,
        "p",
        model=str(digits_tflite),
        board="esp32",
        data=str(ROOT / "examples" / "digits" / "val.npz"),
        labels=str(labels),
        name="digits",
    )
    header = (tmp_path / "p" / "src" / "digits_model.h").read_text()
    assert '"zero", "one", "two"' in header and "DIGITS_NUM_LABELS 10" in header and "digits_label(int c)" in header
    assert result.manifest["api"]["labels"][9] == "nine"
    from mcuq.deploy import DeployRequest, deploy

    with pytest.raises(MCUQError, match="3 labels"):
        short = tmp_path / "three.txt"
        short.write_text("a\nb\nc\n")
        deploy(DeployRequest(model=str(digits_tflite), board="esp32", labels=str(short), out=str(tmp_path / "q")))
    with pytest.raises(MCUQError, match="C identifier"):
        deploy(DeployRequest(model=str(digits_tflite), board="esp32", name="2 digits", out=str(tmp_path / "r")))
