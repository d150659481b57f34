"""Models TFLite Micro runs that mcuq used to refuse (issue 20): each one is deployed and validated."""

from __future__ import annotations

import numpy as np
import pytest
from mutants import _pack, _schema

from conftest import ROOT
from mcuq.deploy import DeployRequest, deploy
from mcuq.model.info import parse_model
from mcuq.validate import validate_project


def _edit(raw: bytes, change) -> bytes:
    model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
    change(model)
    return _pack(model)


def _conv_bias_axis_3(model) -> None:
    """What person_detect.tflite carries: a rank-1 per-channel bias 'quantized along axis 3'."""
    names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
    sg = model.subgraphs[0]
    conv = next(op for op in sg.operators if names[model.operatorCodes[op.opcodeIndex].builtinCode] == "CONV_2D")
    q = sg.tensors[conv.inputs[2]].quantization
    assert len(q.scale) > 1  # per-channel, like the file from the TFLite Micro repository
    q.quantizedDimension = 3


@pytest.fixture(scope="module")
def odd_bias_tflite(tmp_path_factory, digits_int8):
    path = tmp_path_factory.mktemp("bias") / "odd_bias.tflite"
    path.write_bytes(_edit(digits_int8.tflite, _conv_bias_axis_3))
    return path


def test_bias_axis_is_not_read_but_a_filter_axis_is(odd_bias_tflite, digits_int8):
    """TFLite Micro reads a filter's quantized_dimension (kernel_util.cc), never a bias's."""
    from mcuq.common.errors import ModelLoadError

    parse_model(odd_bias_tflite.read_bytes(), "odd_bias.tflite")

    def filter_axis(model) -> None:
        names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
        sg = model.subgraphs[0]
        conv = next(op for op in sg.operators if names[model.operatorCodes[op.opcodeIndex].builtinCode] == "CONV_2D")
        sg.tensors[conv.inputs[1]].quantization.quantizedDimension = 7

    with pytest.raises(ModelLoadError, match=r"per channel along axis 7, but has rank 4"):
        parse_model(_edit(digits_int8.tflite, filter_axis), "bad_filter.tflite")


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["tflm", "c"])
def test_odd_bias_axis_deploys_and_validates(tmp_path, odd_bias_tflite, runtime):
    out = tmp_path / runtime
    result = deploy(DeployRequest(model=str(odd_bias_tflite), board="esp32", runtime=runtime, out=str(out)))
    assert result.ok and result.runtime == runtime
    report = validate_project(out, write_report=False)
    assert report.passed, [c for c in report.checks if not c.passed]
    assert np.asarray([c.passed for c in report.checks]).all()


# --- int16 / int32 model edges ------------------------------------------------------------------


def _convert(model, calibration: np.ndarray, int16: bool) -> bytes:
    from mcuq.frontend.tf import import_tensorflow

    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
    ops = tf.lite.OpsSet
    converter.target_spec.supported_ops = [
        ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if int16 else ops.TFLITE_BUILTINS_INT8
    ]
    converter.inference_input_type = tf.int16 if int16 else tf.int8
    converter.inference_output_type = tf.int16 if int16 else tf.int8
    return bytes(converter.convert())


def _append_int32_quantize(model) -> None:
    """graph output int16 -> QUANTIZE -> int32 output (as TFLite Micro's 16x8 quantize tests end)."""
    schema = _schema()
    sg = model.subgraphs[0]
    old = int(sg.outputs[0])
    src = sg.tensors[old]
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer = b"scores_int32", np.array(src.shape, np.int32), schema.TensorType.INT32, 0
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = np.array([float(src.quantization.scale[0]) / 16], np.float32), np.array([0], np.int64)
    t.quantization = q
    sg.tensors.append(t)
    new = len(sg.tensors) - 1
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = 1
    model.operatorCodes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = len(model.operatorCodes) - 1, np.array([old], np.int32), np.array([new], np.int32)
    sg.operators.append(op)
    sg.outputs = np.array([new], np.int32)
    for sig in model.signatureDefs or []:
        for o in sig.outputs:
            o.tensorIndex = new


def _shape_as_input(model) -> None:
    """TRANSPOSE_CONV's constant output_shape operand becomes a second graph input."""
    names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
    sg = model.subgraphs[0]
    op = next(o for o in sg.operators if names[model.operatorCodes[o.opcodeIndex].builtinCode] == "TRANSPOSE_CONV")
    shape = sg.tensors[op.inputs[0]]
    shape.buffer = 0  # no data: the application feeds it
    sg.inputs = np.array([*sg.inputs, op.inputs[0]], np.int32)
    model.signatureDefs = []


@pytest.fixture(scope="module")
def edge_models(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(5)
    out = tmp_path_factory.mktemp("edges")
    rng = np.random.default_rng(5)
    x = keras.Input((12,), name="features")
    dense = keras.Model(x, keras.layers.Dense(6, activation="tanh", name="scores")(x))
    cal = rng.normal(size=(60, 12)).astype(np.float32)
    img = keras.Input((4, 4, 2), name="image")
    up = keras.Model(img, keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", name="up")(img))
    cal_img = rng.normal(size=(60, 4, 4, 2)).astype(np.float32)
    files = {
        "int16_io": _convert(dense, cal, int16=True),
        "int32_out": _edit(_convert(dense, cal, int16=True), _append_int32_quantize),
        "shape_input": _edit(_convert(up, cal_img, int16=False), _shape_as_input),
    }
    for name, raw in files.items():
        (out / f"{name}.tflite").write_bytes(raw)
    return {name: out / f"{name}.tflite" for name in files}


def test_edges_are_accepted_and_typed(edge_models):
    from mcuq.frontend.fullint8 import check_full_int8, detect_mode

    for path in edge_models.values():
        info = parse_model(path.read_bytes(), path.name)
        activations, io = detect_mode(info)
        check_full_int8(info, activations, io, source=path.name, tflite=True)
    info = parse_model(edge_models["int32_out"].read_bytes())
    assert [t.dtype for t in info.output_tensors] == ["int32"] and info.ops[-1].name == "QUANTIZE"
    info = parse_model(edge_models["shape_input"].read_bytes())
    assert [t.dtype for t in info.input_tensors] == ["int8", "int32"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, helpers",
    [("int16_io", ["_set_input_int16", "_get_output_int16"]), ("int32_out", ["_get_output_int32"]), ("shape_input", ["_set_input_int32"])],
)
def test_edges_deploy_to_esp32_and_validate(tmp_path, edge_models, name, helpers):
    out = tmp_path / name
    result = deploy(DeployRequest(model=str(edge_models[name]), board="esp32", out=str(out), name="m"))
    assert result.ok
    report = validate_project(out, write_report=False)
    assert report.passed, [c for c in report.checks if not c.passed]
    header = (out / "src" / "m_model.h").read_text()
    for helper in helpers:
        assert f"m{helper}(int index" in header
    golden = (out / "src" / "golden_vectors.cpp").read_text()
    if name == "int32_out":
        assert "static const int32_t mcuq_golden_out_0_0[" in golden and "'i'" in golden
    _compile_and_run(out, name, tmp_path)


STUB = """
#include <stdio.h>
#include <string.h>
#include "m_model.h"
static int32_t in_buf[4][512], out_buf[4][512];
void* m_input(int i) { return i >= 0 && i < M_NUM_INPUTS ? (void*)in_buf[i] : (void*)0; }
void* m_output(int i) { return i >= 0 && i < M_NUM_OUTPUTS ? (void*)out_buf[i] : (void*)0; }
mcuq_status m_init(void) { return MCUQ_OK; }
mcuq_status m_invoke(void) { return MCUQ_OK; }
mcuq_status m_selftest(void) { return MCUQ_OK; }
#define CHECK(c) do { if (!(c)) { printf("FAILED %s\\n", #c); return 1; } } while (0)
int main(void) {
@BODY@
  printf("OK\\n");
  return 0;
}
"""


def _typed_helper_program(name: str) -> str:
    """Exercise the typed helpers of each edge model: right type copies, wrong type/index/size refused."""
    if name == "int16_io":
        body = """
  int16_t v[M_INPUT0_SIZE], got[M_OUTPUT0_SIZE];
  for (unsigned i = 0; i < M_INPUT0_SIZE; ++i) v[i] = (int16_t)(1000 * i - 30000);
  CHECK(m_set_input_int16(0, v, M_INPUT0_SIZE) == MCUQ_OK && memcmp(in_buf[0], v, sizeof v) == 0);
  CHECK(m_set_input_int16(0, v, M_INPUT0_SIZE + 1) == MCUQ_ERR_ARGUMENT && m_input_int16(1) == 0);
  CHECK(m_input_int16(0) == (int16_t*)in_buf[0]);
  ((int16_t*)out_buf[0])[2] = -1234;
  CHECK(m_get_output_int16(0, got, M_OUTPUT0_SIZE) == MCUQ_OK && got[2] == -1234 && m_output_int16(0)[2] == -1234);"""
    elif name == "int32_out":
        body = """
  int32_t got[M_OUTPUT0_SIZE]; float f[M_OUTPUT0_SIZE];
  ((int32_t*)out_buf[0])[1] = 2000000000;
  CHECK(m_get_output_int32(0, got, M_OUTPUT0_SIZE) == MCUQ_OK && got[1] == 2000000000);
  CHECK(m_output_int32(0)[1] == 2000000000 && m_output_info(0)->dtype == MCUQ_INT32);
  CHECK(m_get_output_float(0, f, M_OUTPUT0_SIZE) == MCUQ_OK && f[1] > 0.0f);
  CHECK(m_set_input_int16(0, 0, 0) == MCUQ_ERR_ARGUMENT);"""
    else:
        body = """
  int32_t shape[4] = {1, 8, 8, 3};
  int8_t img[M_INPUT0_SIZE];
  float big = 3.0e9f;
  CHECK(m_set_input_int32(1, shape, 4) == MCUQ_OK && memcmp(in_buf[1], shape, sizeof shape) == 0);
  CHECK(m_set_input_int32(0, shape, 4) == MCUQ_ERR_ARGUMENT && m_input_int32(0) == 0 && m_input_int32(1) != 0);
  CHECK(m_set_input_float(1, &big, 1) == MCUQ_OK && in_buf[1][0] == 2147483647);  /* clamped, no overflow */
  (void)img;"""
    return STUB.replace("@BODY@", body)


def _compile_and_run(project, name: str, tmp_path) -> None:
    import shutil
    import subprocess

    for compiler, suffix, std in (("gcc", "c", "-std=c99"), ("g++", "cpp", "-std=c++11")):
        if shutil.which(compiler) is None:
            pytest.skip(f"{compiler} not installed")
        src = tmp_path / f"typed_{name}.{suffix}"
        src.write_text(_typed_helper_program(name))
        exe = tmp_path / f"typed_{name}_{suffix}"
        cmd = [compiler, std, "-Wall", "-Wextra", "-Werror", "-I", str(project / "src"), str(src), "-o", str(exe), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
        run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0 and run.stdout.strip().endswith("OK"), run.stdout


# --- TFLite Micro's signal library --------------------------------------------------------------


def _custom_op_model(code_name: str, n: int = 64, shift: int = 12) -> bytes:
    """int16 audio [1, n] -> <code_name> with a Hann window constant -> int16 [1, n]. The custom
    options are the flexbuffer map signal/micro/kernels/window.cc:WindowInit reads ('shift')."""
    import flatbuffers
    from flatbuffers import flexbuffers

    schema = _schema()
    model = schema.ModelT()
    model.version = 3
    window = (np.hanning(n) * 16384).astype(np.int16)
    model.buffers = [schema.BufferT(), schema.BufferT()]
    model.buffers[1].data = np.frombuffer(window.tobytes(), np.uint8)

    def tensor(name: str, shape: list[int], buffer: int):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, np.array(shape, np.int32), schema.TensorType.INT16, buffer
        return t

    sg = schema.SubGraphT()
    sg.tensors = [tensor("audio", [1, n], 0), tensor("hann", [n], 1), tensor("windowed", [1, n], 0)]
    sg.inputs, sg.outputs = np.array([0], np.int32), np.array([2], np.int32)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1], np.int32), np.array([2], np.int32)
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps({"shift": shift})), np.uint8)
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    sg.operators = [op]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = code_name, 1
    model.operatorCodes, model.subgraphs = [code], [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.slow
def test_signal_window_deploys_to_esp32_and_is_refused_on_chirale(tmp_path):
    from mcuq.common.errors import MCUQError

    path = tmp_path / "window.tflite"
    path.write_bytes(_custom_op_model("SignalWindow"))
    out = tmp_path / "esp32"
    result = deploy(DeployRequest(model=str(path), board="esp32", out=str(out), name="w"))
    assert result.ok
    assert "resolver.AddWindow()" in (out / "src" / "op_resolver.h").read_text()
    report = validate_project(out, write_report=False)
    assert report.passed, [c for c in report.checks if not c.passed]
    # the golden outputs are the window applied as signal/src/window.cc does: (x * w) >> shift, saturated
    from mcuq.checks.golden import golden_from_project

    inputs, outputs = golden_from_project(out, parse_model(path.read_bytes()))
    window = (np.hanning(64) * 16384).astype(np.int16).astype(np.int32)
    want = np.clip((inputs[0][0].astype(np.int32) * window) >> 12, -32768, 32767).astype(np.int16)
    assert np.array_equal(outputs[0][0], want) and np.abs(want).max() > 1000
    esp = ROOT.parent / "shared" / "tflm-libs" / "esp-tflite-micro"
    if esp.is_dir():  # the board's own library compiles signal/ and runs the boot self-test
        built = validate_project(out, write_report=False, backend_options={"build": True, "tflm_source": str(esp)})
        checks = {c.name: c for c in built.checks}
        host = next(c for name, c in checks.items() if name.startswith("library build (x86-64"))
        assert built.passed and host.passed and "4/4 golden vectors bit-exact" in host.detail, host.detail
    with pytest.raises(MCUQError, match=r"does not include TFLite Micro's signal library \(SignalWindow\).*esp32") as err:
        deploy(DeployRequest(model=str(path), board="nano33ble", out=str(tmp_path / "nano")))
    assert "\n" not in str(err.value)


def test_vela_model_is_named_as_such(tmp_path):
    from mcuq.common.errors import MCUQError
    from mcuq.frontend.fullint8 import check_full_int8

    info = parse_model(_custom_op_model("ethos-u"), "vela.tflite")
    with pytest.raises(MCUQError, match=r"Vela-compiled Ethos-U .*deploy the \.tflite you gave Vela"):
        check_full_int8(info, "int16", "int16", source="vela.tflite", tflite=True)


@pytest.mark.slow
def test_missing_kernel_is_named_not_blamed_on_the_arena(tmp_path):
    """A GELU op: neither the board's library nor x86 TFLite Micro has a kernel for it, so every
    arena size would fail; the refusal names the op and the layer, not the arena."""
    import keras

    from mcuq.common.errors import MCUQError

    keras.utils.set_random_seed(0)
    x = keras.Input((8,), name="x")
    model = keras.Model(x, keras.layers.Dense(3, name="head")(keras.layers.Dense(8, activation="gelu", name="mlp")(x)))
    # The standard converter's int8 GELU op (mcuq's own conversion rewrites GELU into ops with
    # kernels, mcuq.frontend.rewrite, so a user's .tflite is where a GELU op still arrives).
    from conftest import _plain_convert

    calibration = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    (tmp_path / "gelu.tflite").write_bytes(_plain_convert(model, calibration, "int8"))
    request = DeployRequest(model=str(tmp_path / "gelu.tflite"), board="esp32", out=str(tmp_path / "p"))
    with pytest.raises(MCUQError, match=r"has no kernel for GELU \(.*'mlp'\)") as err:
        deploy(request)
    assert "arena" not in str(err.value) and "\n" not in str(err.value)
