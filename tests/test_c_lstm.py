"""Plain-C runtime, UNIDIRECTIONAL_SEQUENCE_LSTM (int8 x int8 -> int16 cell): converted by the
TFLite converter from tf_keras LSTMs (the mnist_lstm recipe, batch 1) over a table of cases (1 /
odd / larger unit counts, one and several time steps, time major, stacked, zero points away
from 0, saturating inputs, a cell clip that bites) and required bit-exact
with the x86 TFLite Micro: as streams of invokes with a reset in the middle, and with the state
cleared every invoke. One conversion per case, shared by the tests (a session fixture)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import need
from mcuq.backends.c.codegen import render_c_model, run_host
from mcuq.backends.c.lower_lstm import cell_tanh_scaling
from mcuq.backends.c.program import compile_model
from mcuq.model.info import ModelInfo, parse_model
from mcuq.model.state import reset_points
from mcuq.reference.host_tflm import measure_min_arena, run_tflm

pytestmark = pytest.mark.slow

# name -> (steps, features, layer configs, calibration loc / scale, time major, cell clip to patch in)
CASES: dict[str, tuple[int, int, list[dict[str, Any]], tuple[float, float], bool, float | None]] = {
    "one_unit_one_step": (1, 3, [{"units": 1}], (2.0, 1.0), False, None),
    "odd_units_zero_points": (5, 3, [{"units": 7, "return_sequences": True}], (1.5, 0.5), False, None),
    "larger_saturating": (4, 8, [{"units": 16, "return_sequences": True}], (0.0, 0.05), False, None),
    "time_major": (4, 3, [{"units": 5, "return_sequences": True, "time_major": True}], (-1.0, 1.0), True, None),
    "stacked": (6, 2, [{"units": 6, "return_sequences": True}, {"units": 3}], (0.5, 2.0), False, None),
    "cell_clip": (6, 3, [{"units": 4, "return_sequences": True}], (0.0, 3.0), False, 0.05),
}


def _set_cell_clip(raw: bytes, clip: float) -> bytes:
    """The same model with every LSTM's cellClip set to `clip` (tf_keras has no cell clip)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(raw, 0))
    for op in model.subgraphs[0].operators:
        if hasattr(op.builtinOptions, "cellClip"):
            op.builtinOptions.cellClip = clip
    builder = flatbuffers.Builder(len(raw) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _convert(steps: int, features: int, layers: list[dict[str, Any]], calib: tuple[float, float], time_major: bool) -> bytes:
    from mcuq.frontend.tf import import_tensorflow

    tf = import_tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(4)
    shape = (1, features) if time_major else (steps, features)
    x = inp = tf_keras.Input(shape=shape, batch_size=steps if time_major else 1)
    for config in layers:
        x = tf_keras.layers.LSTM(**config)(x)
    model = tf_keras.Model(inp, x)
    rng = np.random.default_rng(5)
    full = (steps, 1, features) if time_major else (1, steps, features)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(calib[0], calib[1], full).astype(np.float32)] for _ in range(40))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@pytest.fixture(scope="session")
def lstm_models() -> dict[str, ModelInfo]:
    made = {}
    for name, (steps, features, layers, calib, time_major, clip) in CASES.items():
        raw = _convert(steps, features, layers, calib, time_major)
        if clip is not None:
            raw = _set_cell_clip(raw, clip)
        made[name] = parse_model(raw, f"{name}.tflite")
    return made


def _samples(info: ModelInfo, n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.integers(-128, 128, t.shape).astype(np.int8) for t in info.input_tensors] for _ in range(n)]


def _assert_equal(c_out: list, tflm_out: list, what: str) -> None:
    for k, (got, want) in enumerate(zip(c_out, tflm_out)):
        for g, w in zip(got, want):
            assert np.array_equal(g, w), f"{what}, invoke {k}: C {g.ravel()[:12]} vs TFLM {w.ravel()[:12]}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_lstm_bit_exact_streaming_and_per_invoke(lstm_models, case: str) -> None:
    need("gcc")
    info = lstm_models[case]
    lstms = [op for op in info.ops if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstms) == len(CASES[case][2]), f"the converter made {info.op_names}: the case does not test what it says"
    assert all(bool(op.options.get("timeMajor")) == CASES[case][4] for op in lstms)
    samples = _samples(info, 8, seed=len(case))
    streaming = compile_model(info, state_mode="streaming")
    files = render_c_model(streaming, "t")
    assert "mcuq_lstm.c" in files and "mcuq_reset" in files["mcuq_model.c"]
    # Streams: the state carries from invoke to invoke, with a reset before invoke 0 and 4.
    resets = reset_points(len(samples), "streaming")
    tflm_stream = run_tflm(info.raw, samples, 1 << 20, len(info.outputs), resets=resets).outputs
    _assert_equal(run_host(streaming, files, samples, resets), tflm_stream, "streaming")
    # The same stream without the middle reset differs in TFLite Micro and in C alike: the reset matters.
    no_reset = [True] + [False] * (len(samples) - 1)
    carried = run_tflm(info.raw, samples, 1 << 20, len(info.outputs), resets=no_reset).outputs
    _assert_equal(run_host(streaming, files, samples, no_reset), carried, "streaming without the middle reset")
    # per_invoke: mcuq_invoke() clears the state itself, whatever the caller does.
    per_invoke = compile_model(info, state_mode="per_invoke")
    fresh = run_tflm(info.raw, samples, 1 << 20, len(info.outputs)).outputs
    _assert_equal(run_host(per_invoke, render_c_model(per_invoke, "t"), samples, [False] * len(samples)), fresh, "per_invoke")
    # The state lives outside the activation buffer, which stays within TFLite Micro's arena.
    state = {t for op in lstms for t in (op.inputs[18], op.inputs[19])}
    assert state.isdisjoint(streaming.plan.tensor_offset) and {a.tensor for a in streaming.state} == state
    assert streaming.plan.arena_bytes <= measure_min_arena(info.raw, samples[0])


def test_lstm_cases_reach_what_they_claim(lstm_models) -> None:
    """The table really has state that carries, a cell clip, saturating gates' inputs and zero
    points away from 0 (else the bit-exact test above proves less than it says)."""
    from mcuq.backends.c.ir import KernelCall

    def params(name: str) -> dict[str, Any]:
        program = compile_model(lstm_models[name], state_mode="streaming")
        call: KernelCall = next(c for c in program.calls if c.function == "mcuq_lstm")
        return dict(call.args)

    assert 0 < params("cell_clip")["cell_clip"] < 32767
    assert params("odd_units_zero_points")["hidden_zp"] != 0
    assert params("one_unit_one_step")["units"] == 1 and params("one_unit_one_step")["steps"] == 1
    # the inter-gate products take mcuq_lstm.c's 2^30 shortcut (the power-of-two cell scale) and,
    # for the hidden value, the general mcuq_mbqm: both paths run in every case
    assert all(params(name)["cf_mult"] == params(name)["ig_mult"] == 1 << 30 != params(name)["hid_mult"] for name in CASES)
    info = lstm_models["odd_units_zero_points"]
    samples = _samples(info, 4, seed=1)
    carried = run_tflm(info.raw, samples, 1 << 20, len(info.outputs), resets=[True, False, False, False]).outputs
    fresh = run_tflm(info.raw, samples, 1 << 20, len(info.outputs)).outputs
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(carried[1:], fresh[1:]))


def test_16x8_lstm_is_refused_naming_the_layer(lstm_models) -> None:
    """No converter makes a 16x8 LSTM (TF 2.21: "Quantization to 16x8-bit not yet supported for
    op: 'UNIDIRECTIONAL_SEQUENCE_LSTM'"); one made otherwise (here: an int8 LSTM with its
    activation tensors retyped int16) is refused in one line, not run by the int8 kernel."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from mcuq.common.errors import UnsupportedOpError

    raw = lstm_models["one_unit_one_step"].raw
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(raw, 0))
    graph = model.subgraphs[0]
    lstm = next(op for op in graph.operators if len(op.inputs) == 24)
    for t in (lstm.inputs[0], lstm.inputs[18], lstm.outputs[0]):
        graph.tensors[t].type = schema.TensorType.INT16
    builder = flatbuffers.Builder(len(raw) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(UnsupportedOpError, match=r"op \d+ UNIDIRECTIONAL_SEQUENCE_LSTM .*16x8 LSTM .*--runtime tflm$"):
        compile_model(parse_model(bytes(builder.Output()), "lstm16.tflite"), state_mode="streaming")


def test_cell_tanh_scaling_follows_the_cell_scale() -> None:
    """lstm_eval.cc Tanh: left shift 15 + log2(cell scale) - 3; a negative one becomes a right
    shift with multiplier 3."""
    assert cell_tanh_scaling(2.0**-12) == (0, 0)
    assert cell_tanh_scaling(2.0**-11) == (0, 1)
    assert cell_tanh_scaling(2.0**-15) == (3, 3)


def test_models_without_lstm_do_not_carry_its_kernel(sine_int8) -> None:
    program = compile_model(sine_int8.info)
    files = render_c_model(program, "t")
    assert "mcuq_lstm.c" not in files and "mcuq_lstm.h" not in files["mcuq_model.c"] and not program.state
