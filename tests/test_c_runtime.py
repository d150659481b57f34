"""Plain-C int8 runtime: every op bit-exact against the x86 TFLite Micro, over many shapes,
strides, paddings, dilations, channel multipliers and quantization parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import DIGITS, need
from mcuq.backends.c.codegen import render_c_model, run_host
from mcuq.backends.c.program import SUPPORTED_OPS, compile_model
from mcuq.common.console import SILENT
from mcuq.common.errors import UnsupportedOpError
from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process
from mcuq.model.info import parse_model
from mcuq.reference.host_tflm import measure_min_arena, run_tflm


def _convert(tmp_path: Path, model, shape, seed: int = 0, scale: float = 1.0):
    import keras

    path = tmp_path / "m.keras"
    model.save(path)
    rng = np.random.default_rng(seed)
    np.save(tmp_path / "cal.npy", (rng.normal(size=(64, *shape)) * scale).astype(np.float32))
    out = convert_in_this_process(path, str(tmp_path / "cal.npy"), QuantizeOptions(calibration_samples=64), SILENT)
    keras.backend.clear_session()
    return parse_model(out["tflite"])


def _assert_bit_exact(info, seed: int = 1, n: int = 48, samples: list[list[np.ndarray]] | None = None) -> None:
    """C == x86 TFLite Micro on `samples` (default: n random int8 samples)."""
    need("gcc")
    rng = np.random.default_rng(seed)
    if samples is None:
        samples = [[rng.integers(-128, 128, t.shape).astype(np.int8) for t in info.input_tensors] for _ in range(n)]
    tflm_out = run_tflm(info.raw, samples, 1 << 22, len(info.outputs)).outputs
    # Both weight layouts and code paths: portable (AVR, M0+, host) and SIMD (intrinsics emulated).
    for simd in (False, True):
        program = compile_model(info, simd=simd)
        c_out = run_host(program, render_c_model(program, "t"), samples)
        for k, (got, want) in enumerate(zip(c_out, tflm_out)):
            for g, w in zip(got, want):
                assert np.array_equal(g, w), f"simd={simd} sample {k}: C {g.ravel()[:12]} vs TFLM {w.ravel()[:12]}"
    # The static buffer never exceeds TFLite Micro's arena for the same model.
    assert program.plan.arena_bytes <= measure_min_arena(info.raw, samples[0])
    assert program.plan.lower_bound <= program.plan.arena_bytes


def _seq(shape, *layers):
    import keras

    keras.utils.set_random_seed(3)
    inp = keras.Input(shape)
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def _layers():
    import keras

    L = keras.layers
    return {
        "conv3x3_same": ((8, 8, 3), [L.Conv2D(6, 3, padding="same", activation="relu")], "CONV_2D"),
        "conv3x3_s2_valid": ((9, 9, 4), [L.Conv2D(5, 3, strides=2, padding="valid")], "CONV_2D"),
        "conv5x3_s21_same_relu6": ((10, 7, 2), [L.Conv2D(4, (5, 3), strides=(2, 1), padding="same", activation="relu6")], "CONV_2D"),
        "conv_dilated": ((11, 11, 3), [L.Conv2D(4, 3, dilation_rate=2, padding="same")], "CONV_2D"),
        "conv1x1_nobias": ((5, 5, 8), [L.Conv2D(7, 1, use_bias=False)], "CONV_2D"),
        "dw_mult1": ((8, 8, 6), [L.DepthwiseConv2D(3, padding="same", activation="relu")], "DEPTHWISE_CONV_2D"),
        "dw_mult2_s2": ((9, 9, 3), [L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="valid")], "DEPTHWISE_CONV_2D"),
        "dw_dilated": ((12, 12, 4), [L.DepthwiseConv2D(3, dilation_rate=2, padding="same")], "DEPTHWISE_CONV_2D"),
        # one input channel (micro_speech's layer: 8x10, stride 2, multiplier 8): run as a CONV_2D
        "dw_one_channel_mult8": (
            (15, 12, 1),
            [L.DepthwiseConv2D((8, 10), strides=2, depth_multiplier=8, padding="same")],
            "DEPTHWISE_CONV_2D",
        ),
        "dense": ((20,), [L.Dense(9, activation="relu"), L.Dense(3)], "FULLY_CONNECTED"),
        "dense_nobias_batched": ((4, 6), [L.Dense(5, use_bias=False)], "FULLY_CONNECTED"),
        "maxpool_2": ((8, 8, 3), [L.MaxPooling2D(2)], "MAX_POOL_2D"),
        "maxpool_3s2_same": ((9, 9, 2), [L.MaxPooling2D(3, strides=2, padding="same")], "MAX_POOL_2D"),
        "avgpool_2": ((8, 8, 3), [L.AveragePooling2D(2)], "AVERAGE_POOL_2D"),
        "avgpool_3s1_same": ((7, 7, 2), [L.AveragePooling2D(3, strides=1, padding="same")], "AVERAGE_POOL_2D"),
        "softmax_wide": ((40,), [L.Dense(33), L.Softmax()], "SOFTMAX"),
        "logistic": ((12,), [L.Dense(12), L.Activation("sigmoid")], "LOGISTIC"),
        "tanh": ((12,), [L.Dense(12), L.Activation("tanh")], "TANH"),
        "reshape_flatten": ((4, 4, 3), [L.Conv2D(2, 1), L.Flatten(), L.Dense(3)], "RESHAPE"),
        "conv1d": ((16, 3), [L.Conv1D(4, 3, padding="same"), L.Conv1D(2, 3)], "CONV_2D"),
        "mean_gap": ((6, 6, 5), [L.Conv2D(4, 3), L.GlobalAveragePooling2D()], "MEAN"),
        "pad": ((5, 5, 2), [L.Conv2D(3, 1), L.ZeroPadding2D(((1, 2), (0, 1)))], "PAD"),
        "transpose_conv_same": ((4, 4, 3), [L.Conv2DTranspose(5, 3, strides=2, padding="same")], "TRANSPOSE_CONV"),
        "transpose_conv_valid": ((3, 5, 2), [L.Conv2DTranspose(3, (3, 2), strides=(2, 1), padding="valid")], "TRANSPOSE_CONV"),
    }


CASES = sorted(
    [
        "conv3x3_same",
        "conv3x3_s2_valid",
        "conv5x3_s21_same_relu6",
        "conv_dilated",
        "conv1x1_nobias",
        "dw_mult1",
        "dw_mult2_s2",
        "dw_dilated",
        "dw_one_channel_mult8",
        "dense",
        "dense_nobias_batched",
        "maxpool_2",
        "maxpool_3s2_same",
        "avgpool_2",
        "avgpool_3s1_same",
        "softmax_wide",
        "logistic",
        "tanh",
        "reshape_flatten",
        "conv1d",
        "mean_gap",
        "pad",
        "transpose_conv_same",
        "transpose_conv_valid",
    ]
)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_op_bit_exact(tmp_path, case):
    shape, layers, op = _layers()[case]
    info = _convert(tmp_path, _seq(shape, *layers), shape)
    assert op in info.op_names, info.op_names
    _assert_bit_exact(info)


def _two_branch(kind: str):
    import keras

    keras.utils.set_random_seed(5)
    inp = keras.Input((6, 6, 3))
    a = keras.layers.Conv2D(4, 3, padding="same")(inp)
    b = keras.layers.Conv2D(4, 1)(inp)
    if kind == "add":
        x = keras.layers.Add()([a, b])
    elif kind == "mul":
        x = keras.layers.Multiply()([a, b])
    elif kind == "add_broadcast":
        g = keras.layers.GlobalAveragePooling2D(keepdims=True)(b)
        x = keras.layers.Add()([a, g])
    elif kind == "mul_broadcast":
        g = keras.layers.GlobalAveragePooling2D(keepdims=True)(b)
        x = keras.layers.Multiply()([a, keras.layers.Activation("sigmoid")(g)])
    elif kind == "concat":
        x = keras.layers.Concatenate()([a, keras.layers.Conv2D(2, 1)(inp)])
    elif kind == "concat_relu":
        x = keras.layers.ReLU()(keras.layers.Concatenate()([a, b]))
    else:
        x = keras.layers.ReLU(max_value=6.0)(keras.layers.Concatenate()([a, b]))
    return keras.Model(inp, x)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, op",
    [
        ("add", "ADD"),
        ("mul", "MUL"),
        ("add_broadcast", "ADD"),
        ("mul_broadcast", "MUL"),
        ("concat", "CONCATENATION"),
        ("concat_relu", "RELU"),
        ("concat_relu6", "RELU6"),
    ],
)
def test_multi_input_ops_bit_exact(tmp_path, kind, op):
    info = _convert(tmp_path, _two_branch(kind), (6, 6, 3))
    assert op in info.op_names, info.op_names
    _assert_bit_exact(info)


@pytest.mark.slow
def test_requantize_quantize_op_bit_exact(tmp_path):
    """Tensors with incompatible fixed scales make the converter insert an int8 QUANTIZE."""
    import keras

    keras.utils.set_random_seed(2)
    inp = keras.Input((10,))
    a = keras.layers.Dense(6)(inp)
    b = keras.layers.Rescaling(40.0)(keras.layers.Dense(6)(inp))
    # A sigmoid output has a fixed int8 scale (1/256), so joining it to a wide-range tensor
    # needs a requantizing QUANTIZE op.
    c = keras.layers.Concatenate()([keras.layers.Activation("sigmoid")(a), b])
    info = _convert(tmp_path, keras.Model(inp, c), (10,))
    if "QUANTIZE" not in info.op_names:
        pytest.fail(f"expected a QUANTIZE op, got {info.op_names}")
    _assert_bit_exact(info)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [0.01, 1.0, 50.0])
def test_quantization_parameters_range(tmp_path, scale):
    """Tiny and huge input ranges change every multiplier and shift."""
    import keras

    L = keras.layers
    model = _seq((6, 6, 2), L.Conv2D(3, 3, padding="same", activation="relu"), L.DepthwiseConv2D(3), L.Flatten(), L.Dense(4), L.Softmax())
    info = _convert(tmp_path, model, (6, 6, 2), seed=4, scale=scale)
    _assert_bit_exact(info, seed=7)


def test_digits_model_bit_exact_on_validation_data(digits_int8):
    need("gcc")
    from mcuq.model.info import quantize_array

    info = digits_int8.info
    x = np.load(DIGITS / "val.npz")["x"]
    samples = [[quantize_array(x[i : i + 1], info.input_tensors[0])] for i in range(len(x))]
    tflm_out = run_tflm(info.raw, samples, 1 << 20, 1).outputs
    for simd in (False, True):
        program = compile_model(info, simd=simd)
        c_out = run_host(program, render_c_model(program, "digits"), samples)
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(c_out, tflm_out)), f"simd={simd}"


def test_every_supported_op_has_a_case():
    from test_c_moves import ARITH, MOVES
    from test_c_ops_extra import _cases

    covered = {spec[2] for spec in _layers().values()} | {"ADD", "MUL", "CONCATENATION", "RELU", "RELU6", "QUANTIZE"}
    covered |= {spec[3] for spec in _cases().values()}
    covered |= {"RSQRT"}  # test_c_ops_extra.py: test_rsqrt_bit_exact_over_every_valid_input (every input value)
    covered |= {"UNIDIRECTIONAL_SEQUENCE_LSTM"}  # tests/test_c_lstm.py (its own table of converted LSTMs)
    covered |= MOVES | ARITH  # tests/test_c_moves.py (a few models each using every one, int8 and 16x8)
    covered |= {"SVDF"}  # tests/test_c_svdf.py (flatbuffer-built SVDFs over streams with resets)
    # EXPAND_DIMS/SQUEEZE come from Conv1D in older converters, RESHAPE in this one; PADV2 shares PAD's kernel.
    assert SUPPORTED_OPS - covered <= {"EXPAND_DIMS", "SQUEEZE", "PADV2"}


@pytest.mark.slow
def test_unsupported_op_is_named(tmp_path):
    import keras

    inp = keras.Input((8,))
    x = keras.layers.Dense(4)(inp)
    info = _convert(tmp_path, keras.Model(inp, keras.layers.Activation("log_softmax", name="logp")(keras.layers.Dense(4)(x))), (8,))
    with pytest.raises(UnsupportedOpError, match="LOG_SOFTMAX"):
        compile_model(info)


def test_float_helpers_quantize_like_tflite(tmp_path, sine_int8):
    """The one quantize helper of a project (mcuq_api.h's mcuq_quantize, what
    <prefix>_set_input_float calls) rounds and clamps exactly like TFLite's QUANTIZE."""
    need("gcc")
    import subprocess

    from mcuq.model.info import quantize_array
    from mcuq.project.render import BANNER, environment, tensor_context

    t = tensor_context(sine_int8.info.input_tensors[0])
    (tmp_path / "mcuq_api.h").write_text(environment().get_template("api/mcuq_api.h.j2").render(banner=BANNER))
    values = np.array([-7.3, -0.01, 0.0, 0.013, 1.5, 3.14159, 6.2, 99.0], np.float32)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "mcuq_api.h"\nint main(void){ const float v[8] = {'
        + ", ".join(f"{float(x)!r}f" for x in values)
        + f'}}; const mcuq_tensor_info t = {{ "x", 8u, MCUQ_INT8, {t["scale_literal"]}, {t["zero_point"]} }};'
        + " int8_t q[8]; int i; if (mcuq_quantize(&t, v, q, 8) != MCUQ_OK) return 1;"
        + ' for (i = 0; i < 8; ++i) printf("%d ", q[i]); return 0; }\n'
    )
    exe = tmp_path / "t"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), str(tmp_path / "main.c"), "-o", str(exe), "-lm"]
    subprocess.run(cmd, check=True)
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    want = [int(quantize_array(np.array([x]), sine_int8.info.input_tensors[0])[0]) for x in values]
    assert got == want


@pytest.mark.slow
def test_property_random_conv_stacks_bit_exact(tmp_path_factory):
    """Hypothesis draws conv/depthwise/pool geometry; every drawn model must be bit-exact."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(
        size=st.integers(4, 11),
        cin=st.integers(1, 5),
        cout=st.integers(1, 6),
        kernel=st.integers(1, 4),
        stride=st.integers(1, 3),
        same=st.booleans(),
        mult=st.integers(1, 3),
        pool=st.sampled_from(["max", "avg"]),
        act=st.sampled_from([None, "relu", "relu6"]),
        seed=st.integers(0, 1000),
    )
    def check(size, cin, cout, kernel, stride, same, mult, pool, act, seed):
        import keras

        L = keras.layers
        padding = "same" if same else "valid"
        if not same and kernel > size:
            return
        keras.utils.set_random_seed(seed)
        layers = [
            L.Conv2D(cout, kernel, strides=stride, padding=padding, activation=act),
            L.DepthwiseConv2D(min(kernel, 3), depth_multiplier=mult, padding="same"),
            (L.MaxPooling2D if pool == "max" else L.AveragePooling2D)(2, padding="same"),
        ]
        tmp = tmp_path_factory.mktemp("prop")
        info = _convert(tmp, _seq((size, size, cin), *layers), (size, size, cin), seed=seed)
        _assert_bit_exact(info, seed=seed, n=16)

    check()


def _named_model():
    """Two Dense layers whose names clash once made C identifiers, a hostile one, and the model
    output written by a softmax whose tensor has only the converter's name."""
    from mcuq.model.info import ModelInfo, OpInfo, TensorInfo

    def tensor(index: int, name: str) -> TensorInfo:
        return TensorInfo(index, name, (1, 4), None, "int8", None, False, False)

    names = [
        "serving_default_x:0",
        "model/dense-1/MatMul",
        "model/dense.1/MatMul",
        "model/a*b int main(){}/BiasAdd",
        "StatefulPartitionedCall:0",
    ]
    ops = tuple(OpInfo(k, "FULLY_CONNECTED" if k < 3 else "SOFTMAX", 1, (k,), (k + 1,), 0) for k in range(4))
    return ModelInfo(b"", 1, tuple(tensor(k, n) for k, n in enumerate(names)), ops, (0,), (4,), (), ("x",), ("probs",))


def test_constant_arrays_are_named_after_their_layer_once_for_every_op():
    """The emitter names every constant array from the Keras layer of the op being lowered and
    the role of the tag the lowering gave (any lowering, old or new, gets this): C identifiers
    derived through escape.c_identifier, unique in the file, never the user's text itself."""
    from mcuq.backends.c.emitter import Emitter, op_label
    from mcuq.backends.c.ir import KernelCall

    info = _named_model()
    e = Emitter(info, simd=False)

    def lowering(e: Emitter, op) -> KernelCall:
        return KernelCall(op.index, "f", [(tag, e.const(f"{tag}{op.index}", "int8_t", np.zeros(2, np.int8))) for tag in ("w", "b", "lw")])

    calls = [e.lower(op, lowering) for op in info.ops]
    names = [[value for _, value in call.args] for call in calls]
    assert names[0] == ["dense_1_weights", "dense_1_bias", "dense_1_lw"]
    assert names[1] == ["dense_1_weights_2", "dense_1_bias_2", "dense_1_lw_2"]  # "dense.1" is dense_1 too: made unique
    assert names[2] == ["a_b_int_main_weights", "a_b_int_main_bias", "a_b_int_main_lw"]  # the layer's text, made an identifier
    assert names[3] == ["probs_weights", "probs_bias", "probs_lw"]  # the output's readable name, not StatefulPartitionedCall
    assert op_label(info, info.ops[3]) == "probs"
    assert [c.name for c in e.program.constants] == [n for row in names for n in row]
    assert e.const("mcuq_dims", "int8_t", np.zeros(1, np.int8)) == "mcuq_dims"  # outside a lowering: the tag itself


def test_a_layer_named_like_mcuq_s_own_arrays_cannot_pose_as_one():
    """mcuq_* and op<N>_* are the runtime's names: a layer called so gets a layer_ prefix, and the
    golden-array contract (checks.golden.GOLDEN_RE) matches whole identifiers only."""
    from dataclasses import replace

    from mcuq.backends.c.emitter import Emitter
    from mcuq.checks.golden import GOLDEN_RE

    info = _named_model()
    tensors = list(info.tensors)
    tensors[1] = replace(tensors[1], name="model/mcuq_golden_in_0_0/MatMul")
    tensors[2] = replace(tensors[2], name="model/op0_params/MatMul")
    e = Emitter(replace(info, tensors=tuple(tensors)), simd=False)
    names = [e.lower(op, lambda e, op: e.const(f"w{op.index}", "int8_t", np.zeros(1, np.int8))) for op in info.ops[:2]]
    assert names == ["layer_mcuq_golden_in_0_weights", "layer_op0_params_weights"]  # (Keras export suffix _0 dropped)
    assert not GOLDEN_RE.search("static const int8_t layer_mcuq_golden_in_0_0[1] = { 1 };")
    assert GOLDEN_RE.search("static const int8_t mcuq_golden_in_0_0[1] = { 1 };")


def test_c_initializer_wraps_long_arrays_to_readable_lines():
    from mcuq.project.render import c_initializer

    assert c_initializer(np.array([1, -2, 3], np.int8)) == "{ 1, -2, 3 }"
    assert c_initializer(np.zeros(0, np.int8)) == "{ 0 }"
    text = c_initializer(np.arange(-128, 128, dtype=np.int32).astype(np.int8))
    rows = text.splitlines()
    assert rows[0] == "{" and rows[-1] == "}" and len(rows) == 2 + 256 // 16
    assert all(len(r) <= 100 for r in rows)
    assert [int(v) for v in text.strip("{}").replace(",", " ").split()] == list(range(-128, 128))
    wide = c_initializer(np.full(20, 2_000_000_000, np.int32)).splitlines()
    assert len(wide) == 2 + 3 and all(len(r) <= 100 for r in wide)  # 8 int32 multipliers a line
