"""Recurrent models (issue 20): LSTM .tflite files from the standard converter, Keras 3 LSTM /
GRU / SimpleRNN / Bidirectional / stacked LSTMs rebuilt for TFLite Micro, and state that lives
across invokes (``<prefix>_reset()``, golden sequences with reset points).

Each Keras model is converted once per session (mcuq.quantize) and deployed to esp32 and to
nano33ble through ``DeployRequest.quantized``; deploy validates on x86 TFLite Micro.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import need
from mcuq.common.errors import UnsupportedOpError
from mcuq.deploy import DeployRequest, deploy
from mcuq.frontend.converter import QuantizeOptions, quantize
from mcuq.frontend.fullint8 import detect_mode
from mcuq.model.info import parse_model
from mcuq.model.state import reset_points, state_mode

ROOT = Path(__file__).resolve().parent.parent
LIBS = ROOT.parent / "shared" / "tflm-libs"
STEPS, FEATURES = 6, 3
FAMILIES = ("lstm", "lstm_sequences", "stacked_lstm", "gru", "simple_rnn", "bidirectional_lstm")
BOARDS = ("esp32", "nano33ble")

pytestmark = pytest.mark.slow


def _keras_family(name: str):
    import keras

    layers = keras.layers
    body = {
        "lstm": [layers.LSTM(5)],
        "lstm_sequences": [layers.LSTM(4, return_sequences=True), layers.Flatten()],
        "stacked_lstm": [layers.LSTM(5, return_sequences=True), layers.LSTM(4)],
        "gru": [layers.GRU(4)],
        "simple_rnn": [layers.SimpleRNN(4)],
        "bidirectional_lstm": [layers.Bidirectional(layers.LSTM(4, return_sequences=True)), layers.Flatten()],
    }[name]
    return keras.Sequential([keras.Input((STEPS, FEATURES), name="series"), *body, layers.Dense(3, name="scores")], name=name)


@pytest.fixture(scope="session")
def calibration(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rnn-data") / "calibration.npy"
    np.save(path, np.random.default_rng(0).normal(size=(40, STEPS, FEATURES)).astype(np.float32))
    return path


@pytest.fixture(scope="session")
def rnn_models(tmp_path_factory, calibration):
    """family -> (model path, QuantizedModel): one conversion per family for every board."""
    import keras

    keras.utils.set_random_seed(1)
    folder = tmp_path_factory.mktemp("rnn-models")
    made = {}
    for name in FAMILIES:
        path = folder / f"{name}.keras"
        _keras_family(name).save(path)
        made[name] = (path, quantize(path, str(calibration), options=QuantizeOptions(per_channel="none")))
    return made


@pytest.mark.parametrize("family", FAMILIES)
def test_keras_family_is_rebuilt_into_its_smallest_form(rnn_models, family: str) -> None:
    _, q = rnn_models[family]
    ops = set(q.info.op_names)
    assert q.rebuilt_layers, "the summary must say what mcuq rebuilt"
    if "lstm" in family:
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "fused UNIDIRECTIONAL_SEQUENCE_LSTM" in q.rebuilt_layers[0]
        assert "WHILE" not in ops and "UNPACK" not in ops  # not unrolled
        assert len(q.tflite) < 12_000  # the fused op: a few KB, where the unrolled form is tens of KB
        assert "REVERSE_V2" not in ops  # the Arduino boards' library has none
    else:
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops and f"unrolled over {STEPS} steps" in q.rebuilt_layers[0]
    assert q.state == ("per_invoke" if "lstm" in family else "none")
    assert q.manifest_entry()["rebuilt_layers"] == q.rebuilt_layers


def test_unrolled_forms_store_every_weight_buffer_once(rnn_models) -> None:
    """Identical constant buffers are stored once: the unrolled steps share one tensor per weight."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    for family in ("gru", "simple_rnn"):
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(rnn_models[family][1].tflite, 0))
        payloads = [bytes(bytearray(b.data)) for b in model.buffers if b.data is not None and len(b.data) > 0]
        assert len(payloads) == len(set(payloads)), family


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_keras_family_deploys_and_validates_bit_exact(rnn_models, tmp_path, family: str, board: str) -> None:
    path, q = rnn_models[family]
    # The Arduino library's 2022 LSTM kernel: arena and golden vectors come from the library itself.
    legacy_lstm = board == "nano33ble" and "UNIDIRECTIONAL_SEQUENCE_LSTM" in q.info.op_names
    if legacy_lstm and not LIBS.is_dir():
        pytest.skip(f"TFLite Micro library sources not found at {LIBS}")
    source = str(LIBS) if legacy_lstm else None
    result = deploy(
        DeployRequest(
            model=str(path),
            board=board,
            out=str(tmp_path / "p"),
            options={"per_channel": "none"},
            quantized=q,
            backend_options={"tflm_source": source} if source else {},
        )
    )
    assert result.validation is not None and result.validation.passed, result.validation
    golden = [c for c in result.validation.checks if c.name.startswith("golden vector")]
    assert len(golden) == 4
    if not legacy_lstm:
        assert all("bit-exact" in c.detail for c in golden)
    lock = json.loads((tmp_path / "p" / "mcuq.lock.json").read_text())
    assert lock["quantization"]["rebuilt_layers"] == q.rebuilt_layers
    header = (tmp_path / "p" / "src" / f"{family}_model.h").read_text()
    source = (tmp_path / "p" / "src" / "mcuq_model.cpp").read_text()
    if q.state == "per_invoke":  # a whole sequence per invoke: invoke() starts from cleared state
        assert f"{family}_reset(void)" in header and "interpreter->Reset()" in source.split("_invoke(void)")[1].split("}")[0]


@pytest.mark.parametrize("family", ["stacked_lstm", "bidirectional_lstm", "gru", "simple_rnn"])
def test_keras_lstm_family_on_the_plain_c_runtime_in_qemu(rnn_models, tmp_path, family: str) -> None:
    """Stacked and Bidirectional LSTMs, and the unrolled GRU (SPLIT) and SimpleRNN (UNPACK), with
    --runtime c (issue 21): self-test PASS in qemu, an activation buffer a fraction of TFLite
    Micro's arena; an LSTM runs a whole sequence per invoke (mcuq_invoke() clears the state first)."""
    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    path, q = rnn_models[family]
    out = tmp_path / "p"
    result = deploy(
        DeployRequest(model=str(path), board="nucleo_f446re", runtime="c", out=str(out), options={"per_channel": "none"}, quantized=q)
    )
    assert result.validation is not None and result.validation.passed, result.validation
    c = json.loads((out / "mcuq.lock.json").read_text())["c_runtime"]
    assert c["emulation"]["passed"] and c["arena_bytes"] < c["tflm_host_min_bytes"]
    invoke = (out / "src" / "mcuq_model.c").read_text().split("void mcuq_invoke(void) {")[1]
    assert invoke.lstrip().startswith("mcuq_reset();") == ("lstm" in family)


def test_rebuild_refuses_a_model_that_is_no_plain_stack(tmp_path, calibration) -> None:
    import keras

    inp = keras.Input((STEPS, FEATURES))
    out = keras.layers.Add()([keras.layers.LSTM(3)(inp), keras.layers.Dense(3)(keras.layers.Flatten()(inp))])
    keras.Model(inp, out).save(tmp_path / "branch.keras")
    with pytest.raises(Exception) as err:
        quantize(tmp_path / "branch.keras", str(calibration))
    text = str(err.value)
    assert "branch.keras" in text and "unroll=True" in text and "\n" not in text


@pytest.fixture(scope="session")
def converter_lstm(tmp_path_factory) -> Path:
    """An int8 LSTM written by the standard converter, the mnist_lstm recipe (tf_keras, batch 1)."""
    from mcuq.frontend.tf import import_tensorflow

    tf = import_tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(2)
    x = tf_keras.Input(shape=(STEPS, FEATURES), batch_size=1)
    y = tf_keras.layers.Dense(4)(tf_keras.layers.Flatten()(tf_keras.layers.LSTM(5, return_sequences=True)(x)))
    model = tf_keras.Model(x, y)
    rng = np.random.default_rng(3)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(size=(1, STEPS, FEATURES)).astype(np.float32)] for _ in range(30))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # per-tensor Dense, as tflite-micro's testing/generate_test_models.py converts (the Arduino
    # library computes per-channel Dense wrongly)
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    path = tmp_path_factory.mktemp("converter-lstm") / "lstm_int8.tflite"
    path.write_bytes(converter.convert())
    return path


def test_converter_lstm_is_accepted_as_int8_with_its_empty_intermediates(converter_lstm) -> None:
    info = parse_model(converter_lstm.read_bytes(), str(converter_lstm))  # verify_model: no "malformed"
    lstm = next(op for op in info.ops if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(converter_lstm.read_bytes(), 0))
    intermediates = list(model.subgraphs[0].operators[lstm.index].intermediates)
    assert len(intermediates) == 5 and all(list(model.subgraphs[0].tensors[i].shape) == [0] for i in intermediates)
    assert any(t.is_variable and t.dtype == "int16" for t in info.tensors)  # the int16 cell state
    assert detect_mode(info) == ("int8", "int8")
    assert state_mode(info, streaming=True) == "streaming"


def test_arduino_library_lstm_needs_its_sources_for_the_arena(converter_lstm, tmp_path) -> None:
    with pytest.raises(UnsupportedOpError) as err:
        deploy(DeployRequest(model=str(converter_lstm), board="nano33ble", out=str(tmp_path / "p")))
    assert "2022 kernel" in str(err.value) and "--tflm-source" in str(err.value)
    assert not (tmp_path / "p" / "src").exists()


@pytest.mark.parametrize("board", ["nucleo_f446re", "mega2560"])
def test_streaming_lstm_on_the_plain_c_runtime_in_the_emulator(converter_lstm, tmp_path, board: str) -> None:
    """The plain-C runtime runs the streaming LSTM (issue 21): the state in its own static arrays,
    <prefix>_reset(), the golden vectors as two sequences whose reset points the firmware's
    self-test follows, bit-exact with x86 TFLite Micro on the host and in qemu / simavr."""
    need("gcc")
    need("arm-none-eabi-gcc" if board == "nucleo_f446re" else "avr-gcc")
    need("qemu-system-arm" if board == "nucleo_f446re" else "simavr")
    out = tmp_path / "p"
    result = deploy(DeployRequest(model=str(converter_lstm), board=board, runtime="c", out=str(out), golden=6))
    assert result.validation is not None and result.validation.passed, result.validation
    assert result.quantized.state == "streaming"
    lock = json.loads((out / "mcuq.lock.json").read_text())
    emulation = lock["c_runtime"]["emulation"]
    assert emulation["passed"] and emulation["target"], emulation
    from mcuq.checks.golden import golden_resets

    assert golden_resets(out, 6) == [True, False, False, True, False, False]  # read back from mcuq/golden.json
    src = out / "src"
    assert "mcuq_status lstm_int8_reset(void)" in (src / "mcuq_api.c").read_text()
    assert "{ 1, 0, 0, 1, 0, 0 }" in (src / "mcuq_golden.c").read_text()
    model_c = (src / "mcuq_model.c").read_text()
    assert "static int8_t state_h0[5]" in model_c and "static int16_t state_c0[5]" in model_c
    assert (src / "mcuq_lstm.c").is_file()


def test_streaming_lstm_validated_on_the_device_follows_the_reset_points(converter_lstm, tmp_path) -> None:
    """`mcuq validate --device` on a streaming model sends the link's reset where the golden
    sequences reset (golden.json), as x86 TFLite Micro computed them: without it the second
    sequence would start from the first one's state and compare with the wrong reference."""
    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    from mcuq.boards import get_board
    from mcuq.cli import main
    from mcuq.device.emulated import start_emulated

    out = tmp_path / "p"
    deploy(DeployRequest(model=str(converter_lstm), board="nucleo_f446re", runtime="c", out=str(out), golden=6))
    with start_emulated(out, get_board("nucleo_f446re")) as board:
        code = main(["validate", str(out), "--device", board.port, "--no-reset"])
    report = json.loads((out / "report.json").read_text())
    golden = report["metrics"]["device"]["golden"]
    assert code == 0 and golden["bit_exact"] == golden["count"] == 6, golden


def test_streaming_lstm_sequences_across_reset(converter_lstm, tmp_path) -> None:
    """A .tflite with variable tensors streams (TFLite Micro's semantics): reset() in the API, golden
    vectors as two sequences, and x86 TFLite Micro without the reset computes something else."""
    from mcuq.checks.golden import golden_from_project, golden_resets
    from mcuq.reference.host_tflm import run_tflm

    out = tmp_path / "p"
    result = deploy(DeployRequest(model=str(converter_lstm), board="esp32", out=str(out), golden=6))
    assert result.validation is not None and result.validation.passed
    assert result.quantized.state == "streaming"
    info = result.quantized.info
    golden_in, golden_out = golden_from_project(out, info)
    resets = golden_resets(out, len(golden_in))
    assert resets == reset_points(6, "streaming") == [True, False, False, True, False, False]
    assert "lstm_int8_reset(void)" in (out / "src" / "lstm_int8_model.h").read_text()
    selftest = (out / "src" / "mcuq_selftest.cpp").read_text()
    assert "kGoldenReset[v] && lstm_int8_reset()" in selftest
    assert "{ true, false, false, true, false, false }" in (out / "src" / "golden_vectors.cpp").read_text()
    # Without the reset before vector 3, the state of vectors 0..2 leaks into 3..5: a check that can fail.
    arena = 1 << 20
    carried = run_tflm(info.raw, golden_in, arena, len(info.outputs), resets=[True] + [False] * 5).outputs
    assert any(not np.array_equal(carried[v][0], golden_out[v][0]) for v in (3, 4, 5))
    # Every vector from cleared state differs from the stream too (the state is really carried).
    fresh = run_tflm(info.raw, golden_in, arena, len(info.outputs)).outputs
    assert any(not np.array_equal(fresh[v][0], golden_out[v][0]) for v in (1, 2, 4, 5))
    assert all(np.array_equal(fresh[v][0], golden_out[v][0]) for v in (0, 3))


@pytest.mark.skipif(not LIBS.is_dir(), reason=f"TFLite Micro library sources not found at {LIBS}")
def test_streaming_lstm_on_the_arduino_library_in_qemu(converter_lstm, tmp_path) -> None:
    """Chirale 2.0.0 (nano33ble) runs the 2023 reference LSTM kernel (no CMSIS-NN LSTM in
    kernels/cmsis_nn/, so no per-invoke state clearing): the firmware's self-test runs the golden
    sequences with their resets, built against that library, on the host and on the M4 in qemu."""
    need("g++")
    need("arm-none-eabi-g++")
    need("qemu-system-arm")
    from mcuq.backends.tflm.build_check import build_and_check
    from mcuq.validate import read_manifest

    out = tmp_path / "p"
    deploy(DeployRequest(model=str(converter_lstm), board="nano33ble", out=str(out), backend_options={"tflm_source": str(LIBS)}))
    raw = (out / "mcuq" / "model_int8.tflite").read_bytes()
    outcome = build_and_check(out, read_manifest(out), raw, str(LIBS), emulate=True)
    assert outcome.passed, [r.detail for r in outcome.runs]
    assert {r.cpu for r in outcome.runs} == {"x86-64", "cortex-m4"}


def test_duplicated_weight_buffers_are_stored_once(converter_lstm) -> None:
    """A model whose converter wrote one weight twice: dedupe_buffers stores it once, and x86
    TFLite Micro computes the same outputs from the smaller file."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from mcuq.model.dedupe import dedupe_buffers, duplicate_buffer_bytes
    from mcuq.reference.host_tflm import run_tflm

    raw = converter_lstm.read_bytes()
    assert dedupe_buffers(raw) == (raw, 0)  # nothing duplicated: byte for byte
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(raw, 0))
    tensors = model.subgraphs[0].tensors
    weight = max((t for t in tensors if model.buffers[t.buffer].data is not None), key=lambda t: len(model.buffers[t.buffer].data))
    copy = schema.BufferT()
    copy.data = list(model.buffers[weight.buffer].data)
    model.buffers.append(copy)
    weight.buffer = len(model.buffers) - 1
    builder = flatbuffers.Builder(len(raw) * 2)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    doubled = bytes(builder.Output())
    assert duplicate_buffer_bytes(schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(doubled, 0))) == len(copy.data)
    deduped, saved = dedupe_buffers(doubled)
    assert saved >= len(copy.data) and len(deduped) < len(doubled)
    info = parse_model(deduped, "deduped")
    samples = [[np.random.default_rng(v).integers(-128, 128, size=info.input_tensors[0].shape, dtype=np.int8)] for v in range(3)]
    want = run_tflm(raw, samples, 1 << 20, 1).outputs
    got = run_tflm(deduped, samples, 1 << 20, 1).outputs
    assert all(np.array_equal(w[0], g[0]) for w, g in zip(want, got))
