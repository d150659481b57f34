"""Plain-C runtime, SVDF (int8 input and feature weights; int8 or int16 time weights and activation
state, int32 bias): the op of Google's keyword-spotting models. The TFLite converter does not emit
SVDF from Keras, so the models are built here as flatbuffers, with the shapes and quantization of
TFLite Micro's svdf_test.cc int8 cases (input scale 1/32, int16 state at 2^-15 scale) and a table of
edge cases: rank 1 and 2, several batch rows (a RESHAPE before the SVDF: the model's input has
batch 1), memory 1, zero points away from 0, a feature product that saturates the state (and wraps
through the int8 state's zero point, as TFLite Micro's conversion does), time sums that overflow
int32 and outputs that saturate. Required bit-exact with the x86 TFLite Micro over streams of
invokes with a reset in the middle, and without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
import pytest
from test_c_lstm import _assert_equal, _samples

from conftest import need
from mcuq.backends.c.codegen import render_c_model, run_host
from mcuq.backends.c.program import compile_model
from mcuq.common.errors import ModelLoadError, UnsupportedOpError
from mcuq.deploy import DeployRequest, deploy
from mcuq.frontend.fullint8 import check_full_int8
from mcuq.model.info import ModelInfo, parse_model
from mcuq.model.state import has_state, reset_points
from mcuq.reference.host_tflm import measure_min_arena, run_tflm


def _schema() -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


@dataclass(frozen=True)
class Case:
    """One SVDF model: shapes, state type, quantization and the weights' range."""

    batch: int = 1
    in_dim: int = 6
    units: int = 4
    rank: int = 1
    memory: int = 5
    state16: bool = False
    in_zp: int = 3
    state_zp: int = 0  # int8 state only: TFLite Micro's int16 state keeps zero point 0
    out_zp: int = -2
    feature_scale: float = 0.00784  # svdf_test.cc weights_feature scale
    state_scale: float = 0.0078125  # 2^-7 (int8), 2^-15 (int16) in svdf_test.cc
    time_scale: float = 0.00784
    out_scale: float = 0.0078125
    time_range: int = 127  # |time weights| drawn up to this
    extreme_time: bool = False  # every other time weight at +-32767 (int16)
    bias: bool = True
    layers: int = 1  # SVDFs in a chain, each with its own state


CASES = {
    "rank1_int8": Case(state_zp=-4),
    "rank2_int8": Case(units=3, rank=2, memory=4, state_zp=5, in_zp=-7),
    "memory1_one_unit": Case(in_dim=3, units=1, memory=1, state_zp=1),
    "rank2_int16_kws": Case(
        units=4, rank=2, memory=8, state16=True, feature_scale=1e-4, state_scale=2.0**-15, time_scale=3.0e-5, time_range=20000
    ),
    "stacked_int8": Case(in_dim=5, units=4, rank=1, memory=3, state_zp=2, layers=2),
    "batches_int8": Case(batch=2, in_dim=4, units=3, rank=2, memory=3, state_zp=-9),
    "batches_int16": Case(
        batch=3,
        in_dim=5,
        units=2,
        rank=1,
        memory=4,
        state16=True,
        feature_scale=1e-4,
        state_scale=2.0**-15,
        time_scale=3.0e-5,
        time_range=20000,
    ),
    # the feature product saturates the int8 state; zero point 100 then wraps it (int8_t conversion)
    "saturating_int8": Case(units=3, rank=2, memory=3, state_zp=100, feature_scale=0.5, out_scale=0.0005),
    # extreme int16 time weights over a saturated state: the int32 time sums wrap around
    "saturating_int16": Case(
        in_dim=16,
        units=2,
        rank=2,
        memory=24,
        state16=True,
        state_scale=2.0**-15,
        feature_scale=0.5,
        time_scale=1.0,
        out_scale=30.0,
        time_range=32767,
        extreme_time=True,
    ),
}


def _tensor(model: Any, name: str, shape: list[int], dtype: int, scale: float, zp: int, data: np.ndarray | None = None) -> int:
    s = _schema()
    t = s.TensorT()
    t.name, t.shape, t.type = name.encode(), shape, dtype
    q = s.QuantizationParametersT()
    q.scale, q.zeroPoint = [float(scale)], [int(zp)]
    t.quantization = q
    buf = s.BufferT()
    if data is not None:
        buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    model.buffers.append(buf)
    t.buffer = len(model.buffers) - 1
    model.subgraphs[0].tensors.append(t)
    return len(model.subgraphs[0].tensors) - 1


def _opcode(model: Any, code: int) -> int:
    for k, known in enumerate(model.operatorCodes):
        if known.builtinCode == code:
            return k
    oc = _schema().OperatorCodeT()
    oc.builtinCode = oc.deprecatedBuiltinCode = code
    oc.version = 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _svdf_op(model: Any, inputs: list[int], output: int, rank: int) -> Any:
    s = _schema()
    op = s.OperatorT()
    op.opcodeIndex = _opcode(model, s.BuiltinOperator.SVDF)
    op.inputs, op.outputs = inputs, [output]
    op.builtinOptionsType = s.BuiltinOptions.SVDFOptions
    op.builtinOptions = s.SVDFOptionsT()
    op.builtinOptions.rank = rank
    return op


def _add_svdf(model: Any, case: Case, rng: np.random.Generator, x: int, in_dim: int, tag: str) -> int:
    """One SVDF layer of `case` reading tensor `x`; returns its output tensor."""
    T = _schema().TensorType
    filters = case.units * case.rank
    state_type, wt_dtype = (T.INT16, np.int16) if case.state16 else (T.INT8, np.int8)
    wf_values = rng.integers(-127, 128, (filters, in_dim)).astype(np.int8)
    wf = _tensor(model, f"{tag}feature", [filters, in_dim], T.INT8, case.feature_scale, 0, wf_values)
    wt_values = rng.integers(-case.time_range, case.time_range + 1, (filters, case.memory)).astype(wt_dtype)
    if case.extreme_time:  # extremes: a saturated state times these reaches past int32
        wt_values[:, ::2] = np.where(wt_values[:, ::2] < 0, -32767, 32767)
    wt = _tensor(model, f"{tag}time", [filters, case.memory], state_type, case.time_scale, 0, wt_values)
    bias_scale = float(np.float32(case.state_scale) * np.float32(case.time_scale))
    inputs = [x, wf, wt]
    if case.bias:
        bias_values = rng.integers(-5000, 5000, case.units).astype(np.int32)
        inputs.append(_tensor(model, f"{tag}bias", [case.units], T.INT32, bias_scale, 0, bias_values))
    state = _tensor(model, f"{tag}state", [case.batch, case.memory * filters], state_type, case.state_scale, case.state_zp)
    model.subgraphs[0].tensors[state].isVariable = True
    y = _tensor(model, f"{tag}output", [case.batch, case.units], T.INT8, case.out_scale, case.out_zp)
    model.subgraphs[0].operators.append(_svdf_op(model, [*inputs, state], y, case.rank))
    return y


def build_svdf(case: Case, seed: int = 0) -> bytes:
    """An SVDF .tflite: `case.layers` SVDFs in a chain (RESHAPE [1, batch * in] -> [batch, in]
    first when batch > 1)."""
    s, T = _schema(), _schema().TensorType
    rng = np.random.default_rng(seed)
    model = s.ModelT()
    model.version, model.buffers, model.operatorCodes = 3, [s.BufferT()], []
    sg = s.SubGraphT()
    sg.tensors, sg.operators = [], []
    model.subgraphs = [sg]
    in_scale = 0.03125  # svdf_test.cc input scale
    x = _tensor(model, "input", [1, case.batch * case.in_dim], T.INT8, in_scale, case.in_zp)
    y = x
    if case.batch > 1:
        y = _tensor(model, "rows", [case.batch, case.in_dim], T.INT8, in_scale, case.in_zp)
        reshape = s.OperatorT()
        reshape.opcodeIndex, reshape.inputs, reshape.outputs = _opcode(model, s.BuiltinOperator.RESHAPE), [x], [y]
        sg.operators.append(reshape)
    y = _add_svdf(model, case, rng, y, case.in_dim, "")
    for layer in range(1, case.layers):  # the next layer reads the previous one's output
        y = _add_svdf(model, case, rng, y, case.units, f"l{layer}_")
    sg.inputs, sg.outputs = [x], [y]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def svdf_models() -> dict[str, ModelInfo]:
    return {name: parse_model(build_svdf(case, seed=len(name))) for name, case in CASES.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_svdf_bit_exact_over_streams(svdf_models, case: str) -> None:
    need("gcc")
    info = svdf_models[case]
    check_full_int8(info, tflite=True)  # mcuq's front end takes it as a full-int8 model with state
    assert has_state(info) and [op.name for op in info.ops].count("SVDF") == CASES[case].layers
    samples = _samples(info, 8, seed=len(case))
    program = compile_model(info, state_mode="streaming")
    files = render_c_model(program, "t")
    assert "mcuq_svdf.c" in files and "mcuq_lstm.c" not in files and '#include "mcuq_svdf.h"' in files["mcuq_model.c"]
    # Streams: the state carries from invoke to invoke, with a reset before invoke 0 and 4.
    resets = reset_points(len(samples), "streaming")
    stream = run_tflm(info.raw, samples, 1 << 16, 1, resets=resets).outputs
    _assert_equal(run_host(program, files, samples, resets), stream, "streaming")
    # Without the middle reset TFLite Micro's outputs change after it, and C's the same way.
    no_reset = [True] + [False] * (len(samples) - 1)
    carried = run_tflm(info.raw, samples, 1 << 16, 1, resets=no_reset).outputs
    differs = any(not np.array_equal(a[0], b[0]) for a, b in zip(stream[4:], carried[4:]))
    assert differs == (CASES[case].memory > 1), "memory > 1 carries state across invokes; memory 1 overwrites all of it"
    _assert_equal(run_host(program, files, samples, no_reset), carried, "streaming without the middle reset")
    # The state is a static array outside the activation buffer, which stays within TFLite Micro's arena.
    state = {op.inputs[4] for op in info.ops if op.name == "SVDF"}
    assert {a.tensor for a in program.state} == state and state.isdisjoint(program.plan.tensor_offset)
    assert program.plan.arena_bytes <= measure_min_arena(info.raw, samples[0])


def _unbounded_sums(case: Case, info: ModelInfo, samples: list[list[np.ndarray]]) -> tuple[int, int, int]:
    """(feature values past the state type, int8 states wrapped through the zero point, largest
    |time sum|) of one stream from reset, in int64 numpy: what the case makes the kernel handle."""
    wf, wt = (info.tensors[info.ops[-1].inputs[p]].data.astype(np.int64) for p in (1, 2))
    filters = case.units * case.rank
    lo, hi = (-32768, 32767) if case.state16 else (-128, 127)
    scale = float(np.float32(np.float32(0.03125) * np.float32(case.feature_scale) / np.float32(case.state_scale)))
    state, past, wrapped, largest = np.full((case.batch, filters, case.memory), case.state_zp, np.int64), 0, 0, 0
    for sample in samples:
        x = sample[0].astype(np.int64).reshape(case.batch, case.in_dim) - case.in_zp
        v = np.round((x @ wf.T) * scale)
        past += int(((v < lo) | (v > hi)).sum())
        new = np.clip(v, lo, hi) + case.state_zp
        wrapped += int(((new < lo) | (new > hi)).sum())
        state = np.roll(state, -1, axis=2)
        state[:, :, -1] = (new - lo) % (hi - lo + 1) + lo
        sums = (wt * (state - case.state_zp)).sum(axis=2).reshape(case.batch, case.units, case.rank).sum(axis=2)
        largest = max(largest, int(np.abs(sums).max()))
    return past, wrapped, largest


def test_cases_reach_what_they_claim(svdf_models) -> None:
    """The saturating int8 case saturates the state and wraps it through its zero point; the
    int16 one sums past int32; the KWS-like int16 case stays in range."""
    names = ("saturating_int8", "saturating_int16", "rank2_int16_kws")
    stats = {name: _unbounded_sums(CASES[name], svdf_models[name], _samples(svdf_models[name], 8, len(name))) for name in names}
    past, wrapped, _ = stats["saturating_int8"]
    assert past > 0 and wrapped > 0, stats["saturating_int8"]
    assert stats["saturating_int16"][0] > 0 and stats["saturating_int16"][2] >= 1 << 31, stats["saturating_int16"]
    assert stats["rank2_int16_kws"][0] == 0 and stats["rank2_int16_kws"][2] < 1 << 31, stats["rank2_int16_kws"]


@pytest.mark.slow
def test_saturating_cases_saturate(svdf_models) -> None:
    """The saturating cases reach what they claim: outputs at both int8 bounds (x86 TFLite Micro)."""
    for case in ("saturating_int8", "saturating_int16"):
        info = svdf_models[case]
        out = np.concatenate([o[0].ravel() for o in run_tflm(info.raw, _samples(info, 8, 1), 1 << 16, 1).outputs])
        assert out.min() == -128 and out.max() == 127, (case, out)


def test_svdf_without_bias_is_refused_in_one_line() -> None:
    """TFLite Micro's SVDF reads the bias's scale in Prepare whatever the op has (x86 TFLite Micro
    fails to allocate it): mcuq refuses the file when it reads it, naming the op."""
    with pytest.raises(ModelLoadError, match=r"op 0 \(SVDF\) has no bias \(input 3\)") as err:
        parse_model(build_svdf(Case(bias=False)))
    assert "\n" not in str(err.value)
    assert "malformed" not in str(err.value)  # a valid file TFLite Micro cannot run, not a broken one


def test_svdf_state_stays_in_its_own_file(svdf_models, sine_int8) -> None:
    """Only a model with an SVDF carries mcuq_svdf.c; its state resets to its zero point."""
    program = compile_model(svdf_models["rank1_int8"], state_mode="streaming")
    assert [(a.ctype, a.reset) for a in program.state] == [("int8_t", -4)]
    plain = render_c_model(compile_model(sine_int8.info), "t")
    assert "mcuq_svdf.c" not in plain and "mcuq_svdf.h" not in plain["mcuq_model.c"]


@pytest.mark.slow
def test_svdf_deploys_and_passes_the_emulator_self_test(tmp_path) -> None:
    """A KWS-like int16-state SVDF .tflite deploys with the plain-C runtime (golden vectors are
    streams, the Cortex-M4 self-test runs in qemu) and with TFLite Micro on the same board."""
    for tool in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    path = tmp_path / "kws.tflite"
    path.write_bytes(build_svdf(CASES["rank2_int16_kws"], seed=3))
    result = deploy(DeployRequest(model=str(path), board="nucleo_f446re", runtime="c", out=str(tmp_path / "c")))
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    emulation = result.manifest["c_runtime"]["emulation"]
    assert emulation["passed"] and "qemu" in emulation["target"], emulation
    assert "mcuq_svdf(" in (tmp_path / "c" / "src" / "mcuq_model.c").read_text()
    assert "kws_reset(void)" in (tmp_path / "c" / "src" / "mcuq_api.c").read_text()
    tflm = deploy(DeployRequest(model=str(path), board="nucleo_f446re", runtime="tflm", out=str(tmp_path / "tflm")))
    assert tflm.ok and any("state carried" in c.detail for c in tflm.validation.checks), tflm.validation.checks


@pytest.mark.slow
def test_int8_state_svdf_on_cmsis_nn_needs_the_library_sources(tmp_path) -> None:
    """Chirale's CMSIS-NN SVDF ignores the state's zero point and keeps an int8 state as clamped
    int16: golden vectors from x86 TFLite Micro would fail the board's self-test, so a TFLite
    Micro deploy to a Chirale board without the library sources is refused in one line naming
    the op, and nothing is written; esp32 (the reference kernel, as the wheel) deploys it."""
    path = tmp_path / "svdf8.tflite"
    path.write_bytes(build_svdf(CASES["rank1_int8"], seed=1))
    with pytest.raises(UnsupportedOpError, match=r"nucleo_f446re: .*CMSIS-NN SVDF computes op 0 SVDF .*int8 state.*--tflm-source") as err:
        deploy(DeployRequest(model=str(path), board="nucleo_f446re", runtime="tflm", out=str(tmp_path / "m4")))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "m4").exists()
    esp = deploy(DeployRequest(model=str(path), board="esp32", runtime="tflm", out=str(tmp_path / "esp")))
    assert esp.ok, esp.validation.checks
