"""Plain-C runtime, 16x8 models (int16 activations, int8 weights, int64/int32 biases): each op
converted by the TFLite converter in 16x8 mode over a table of edge cases (strides, padding,
dilation, depth multipliers, missing biases, int32 biases, broadcast shapes, saturation from
full-range int16 inputs, odd sizes) and required bit-exact with the x86 TFLite Micro."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_c_runtime import _seq

from conftest import need
from mcuq.backends.c.codegen import render_c_model, run_host
from mcuq.backends.c.program import compile_model
from mcuq.common.console import SILENT
from mcuq.common.errors import UnsupportedOpError
from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process
from mcuq.model.info import ModelInfo, parse_model
from mcuq.reference.host_tflm import measure_min_arena, run_tflm

pytestmark = pytest.mark.slow


def convert_keras_16x8(tmp_path: Path, model, shape: tuple[int, ...], scale: float = 1.0) -> ModelInfo:
    """A Keras model through mcuq's own converter with --activations int16 (int16 I/O)."""
    import keras

    path = tmp_path / "m.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", (rng.normal(size=(48, *shape)) * scale).astype(np.float32))
    out = convert_in_this_process(path, str(tmp_path / "cal.npy"), QuantizeOptions(calibration_samples=48, activations="int16"), SILENT)
    keras.backend.clear_session()
    return parse_model(out["tflite"])


def convert_fn_16x8(
    fn: Callable,
    shapes: list[tuple[int, ...]],
    scale: float = 1.0,
    bias_int32: bool = False,
    peak: float | None = None,
    nonnegative: bool = False,
) -> ModelInfo:
    """A tf.function over `shapes` (batch 1) -> 16x8 TFLite with int16 I/O. `bias_int32` asks
    the converter for int32 biases (TFLite Micro then accumulates in int32); `peak` clips the
    calibration data to +-peak and reaches it (input scale peak / 32767: a power of two when
    peak is 32767 * 2^-k); `nonnegative` calibrates on |samples| (RSQRT's domain)."""
    import tensorflow as tf

    concrete = tf.function(fn).get_concrete_function(*[tf.TensorSpec(s, tf.float32) for s in shapes])
    rng = np.random.default_rng(0)

    def representative():
        for k in range(48):
            sample = [(rng.normal(0, scale, s)).astype(np.float32) for s in shapes]
            if nonnegative:
                sample = [np.abs(x) for x in sample]
            if peak is not None:
                sample = [np.clip(x, -peak, peak) for x in sample]
                sample[0].reshape(-1)[0] = peak if k % 2 else -peak
            yield sample

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    converter.inference_input_type = tf.int16
    converter.inference_output_type = tf.int16
    if bias_int32:
        converter._experimental_full_integer_quantization_bias_type = tf.int32
    return parse_model(bytes(converter.convert()))


def assert_bit_exact_16x8(info: ModelInfo, seed: int = 1, n: int = 24, nonnegative: bool = False) -> None:
    """Full-range int16 inputs (saturating every layer somewhere) and calibrated-range ones;
    `nonnegative`: from 0 up (TFLite Micro's RSQRT fails its invoke on a negative input)."""
    need("gcc")
    rng = np.random.default_rng(seed)

    def sample(k: int) -> list[np.ndarray]:
        span = 32768 if k % 2 else 4096
        return [rng.integers(0 if nonnegative else -span, span, t.shape).astype(t.dtype) for t in info.input_tensors]

    samples = [sample(k) for k in range(n)]
    want = run_tflm(info.raw, samples, 1 << 22, len(info.outputs)).outputs
    program = compile_model(info)
    got = run_host(program, render_c_model(program, "t"), samples)
    for k, (g_out, w_out) in enumerate(zip(got, want)):
        for g, w in zip(g_out, w_out):
            assert g.dtype == w.dtype and np.array_equal(g, w), f"sample {k}: C {g.ravel()[:10]} vs TFLM {w.ravel()[:10]}"
    assert program.plan is not None
    assert program.plan.arena_bytes <= measure_min_arena(info.raw, samples[0])
    assert program.plan.lower_bound <= program.plan.arena_bytes


def _keras_cases():
    import keras

    L = keras.layers
    return {
        "conv3x3_same_relu": ((8, 8, 3), [L.Conv2D(6, 3, padding="same", activation="relu")], "CONV_2D"),
        "conv3x3_s2_valid_odd": ((9, 7, 5), [L.Conv2D(5, 3, strides=2, padding="valid")], "CONV_2D"),
        "conv5x3_s21_relu6": ((10, 7, 2), [L.Conv2D(4, (5, 3), strides=(2, 1), padding="same", activation="relu6")], "CONV_2D"),
        "conv_dilated": ((11, 11, 3), [L.Conv2D(4, 3, dilation_rate=2, padding="same")], "CONV_2D"),
        "conv1x1_nobias": ((5, 5, 8), [L.Conv2D(7, 1, use_bias=False)], "CONV_2D"),
        "dw_mult1_relu": ((8, 8, 6), [L.DepthwiseConv2D(3, padding="same", activation="relu")], "DEPTHWISE_CONV_2D"),
        "dw_mult2_s2": ((9, 9, 3), [L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="valid")], "DEPTHWISE_CONV_2D"),
        "dw_dilated_one_channel": (
            (12, 12, 1),
            [L.DepthwiseConv2D(3, dilation_rate=2, depth_multiplier=3, padding="same")],
            "DEPTHWISE_CONV_2D",
        ),
        "dense": ((13,), [L.Dense(7)], "FULLY_CONNECTED"),
        "max_pool_same_odd": ((7, 9, 3), [L.MaxPooling2D(3, strides=2, padding="same")], "MAX_POOL_2D"),
        "max_pool_valid": ((8, 8, 2), [L.MaxPooling2D(2)], "MAX_POOL_2D"),
        "avg_pool_same_odd": ((7, 9, 3), [L.AveragePooling2D(3, strides=2, padding="same")], "AVERAGE_POOL_2D"),
        "avg_pool_valid_wide": ((6, 10, 4), [L.AveragePooling2D((2, 5), strides=(2, 3))], "AVERAGE_POOL_2D"),
        "dense_relu_flatten": ((3, 4, 5), [L.Flatten(), L.Dense(9, activation="relu")], "FULLY_CONNECTED"),
        "dense_nobias_wide_input": ((40,), [L.Dense(3, use_bias=False)], "FULLY_CONNECTED"),
        "transpose_conv_s2_same_bias": (
            (4, 5, 3),
            [L.Conv2DTranspose(4, 3, strides=2, padding="same", bias_initializer=keras.initializers.RandomNormal(0, 2, seed=5))],
            "TRANSPOSE_CONV",
        ),
        "transpose_conv_valid_odd_relu": (
            (3, 3, 2),
            [L.Conv2DTranspose(5, (3, 2), strides=(2, 3), padding="valid", activation="relu")],
            "TRANSPOSE_CONV",
        ),
        "transpose_conv_nobias_k4": ((5, 4, 6), [L.Conv2DTranspose(3, 4, strides=2, padding="same", use_bias=False)], "TRANSPOSE_CONV"),
        "layer_norm_rsqrt": ((6, 8), [L.LayerNormalization()], "RSQRT"),
    }


@pytest.mark.parametrize("case", sorted(_keras_cases()))
def test_weighted_op_bit_exact(tmp_path, case):
    shape, layers, op = _keras_cases()[case]
    info = convert_keras_16x8(tmp_path, _seq(shape, *layers), shape, scale=3.0 if "relu6" in case else 1.0)
    assert op in info.op_names and {t.dtype for t in info.input_tensors} == {"int16"}, info.op_names
    assert_bit_exact_16x8(info)


def test_int32_bias_accumulates_in_int32():
    """The converter's int32-bias option: TFLite Micro sums in int32 and requantizes with the
    32-bit multiplier; the C kernel follows it (acc64 = 0)."""
    w = np.random.default_rng(4).normal(size=(3, 3, 4, 5)).astype(np.float32)
    dense_w = np.random.default_rng(5).normal(size=(80, 6)).astype(np.float32)

    def fn(x):
        import tensorflow as tf

        y = tf.nn.conv2d(x, w, 1, "SAME") + 0.5
        return tf.matmul(tf.reshape(y, (1, 80)), dense_w) + 0.25

    info = convert_fn_16x8(fn, [(1, 4, 4, 4)], bias_int32=True)
    biases = {info.tensors[op.inputs[2]].dtype for op in info.ops if op.name in ("CONV_2D", "FULLY_CONNECTED") and len(op.inputs) > 2}
    assert "int32" in biases, biases
    calls = compile_model(info).calls
    assert any(dict(c.args).get("acc64") == 0 for c in calls if c.function == "mcuq_conv_s16")
    assert_bit_exact_16x8(info)


def test_int32_bias_transpose_conv_is_refused():
    """TFLite Micro's 16x8 TRANSPOSE_CONV reads its bias as int64 whatever its type: the C
    runtime refuses the converter's int32-bias form instead of guessing."""
    import tensorflow as tf

    w = np.random.default_rng(6).normal(size=(3, 3, 5, 4)).astype(np.float32)
    bias = np.arange(5, dtype=np.float32) * 0.3
    info = convert_fn_16x8(lambda x: tf.nn.conv2d_transpose(x, w, (1, 8, 8, 5), 2, "SAME") + bias, [(1, 4, 4, 4)], bias_int32=True)
    assert info.op_names == ["TRANSPOSE_CONV"] and info.tensors[info.ops[0].inputs[3]].dtype == "int32"
    with pytest.raises(UnsupportedOpError, match=r"op 0 TRANSPOSE_CONV .*int32 bias.*int64"):
        compile_model(info)


def _fn_cases() -> dict[str, tuple[Callable, list[tuple[int, ...]], str]]:
    """name -> (function, input shapes, op); names ending in `_pot` calibrate to a power-of-two
    input scale (2^-12, 2^-11: TFLite Micro's shift-only LOGISTIC/TANH path)."""
    import tensorflow as tf

    k = np.random.default_rng(9).normal(size=(1, 1, 5, 3)).astype(np.float32)
    k_deep = np.random.default_rng(10).normal(size=(1, 33, 5)).astype(np.float32)
    return {
        "add_same_shape": (lambda x, y: x + 3.0 * y, [(1, 4, 5, 3), (1, 4, 5, 3)], "ADD"),
        "add_broadcast_relu": (lambda x, y: tf.nn.relu(x + y), [(1, 4, 5, 3), (1, 1, 5, 1)], "ADD"),
        "add_constant": (lambda x: x + k, [(1, 2, 5, 3)], "ADD"),
        "sub_broadcast": (lambda x, y: x - 5.0 * y, [(1, 4, 5, 3), (1, 1, 1, 3)], "SUB"),
        "mul_same_shape": (lambda x, y: x * y, [(1, 7, 3), (1, 7, 3)], "MUL"),
        "mul_broadcast": (lambda x, y: x * y * 0.5, [(1, 3, 5, 2), (1, 3, 1, 2)], "MUL"),
        "relu_requantized": (lambda x: tf.nn.relu(tf.reshape(x, (1, 30))), [(1, 5, 6)], "RELU"),
        "relu6": (lambda x: tf.nn.relu6(tf.reshape(x, (1, 30)) * 1.0), [(1, 5, 6)], "RELU6"),
        "leaky_relu": (lambda x: tf.nn.leaky_relu(x, 0.2), [(1, 300)], "LEAKY_RELU"),
        "leaky_relu_alpha_above_one": (lambda x: tf.nn.leaky_relu(x * 3.0, 1.7), [(1, 4, 9)], "LEAKY_RELU"),
        "maximum_broadcast": (lambda x, y: tf.maximum(x, y), [(1, 4, 5, 3), (1, 1, 5, 1)], "MAXIMUM"),
        "minimum_same_shape": (lambda x, y: tf.minimum(x, 0.5 * y), [(1, 7, 3), (1, 7, 3)], "MINIMUM"),
        "concat_channels": (lambda x, y: tf.concat([x, y], axis=-1), [(1, 3, 4, 2), (1, 3, 4, 5)], "CONCATENATION"),
        "concat_rows_three": (lambda x, y: tf.concat([x, y, x], axis=1), [(1, 2, 5), (1, 3, 5)], "CONCATENATION"),
        "quantize_int16_requantize_before_concat": (lambda x, y: tf.concat([x * 7.0, y], axis=-1), [(1, 3, 4), (1, 3, 2)], "QUANTIZE"),
        "mean_hw_keepdims": (lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True), [(1, 5, 7, 3)], "MEAN"),
        "mean_last_axis": (lambda x: tf.reduce_mean(x * 4.0, axis=-1), [(1, 3, 9)], "MEAN"),
        "logistic": (lambda x: tf.sigmoid(x), [(1, 300)], "LOGISTIC"),
        "logistic_wide_scale": (lambda x: tf.sigmoid(x * 9.0), [(1, 5, 7)], "LOGISTIC"),
        "logistic_pot": (lambda x: tf.sigmoid(x), [(1, 40)], "LOGISTIC"),
        "tanh": (lambda x: tf.tanh(x), [(1, 300)], "TANH"),
        "tanh_pot": (lambda x: tf.tanh(x), [(1, 40)], "TANH"),
        "tanh_narrow_scale": (lambda x: tf.tanh(x * 0.05), [(1, 3, 11)], "TANH"),
        "softmax_10": (lambda x: tf.nn.softmax(x), [(1, 10)], "SOFTMAX"),
        "softmax_rows_wide_inputs": (lambda x: tf.nn.softmax(x * 5.0), [(1, 3, 7)], "SOFTMAX"),
        "softmax_long_row_beta": (lambda x: tf.nn.softmax(0.3 * x), [(1, 300)], "SOFTMAX"),
        # data moved as pairs of bytes
        "split_channels": (lambda x: tuple(tf.split(x, 2, axis=-1)), [(1, 3, 4, 6)], "SPLIT"),
        "unpack_steps": (lambda x: tuple(tf.unstack(x, axis=1)), [(1, 3, 5)], "UNPACK"),
        "transpose_chw": (lambda x: tf.transpose(x, [0, 3, 1, 2]), [(1, 3, 4, 5)], "TRANSPOSE"),
        "strided_slice_step": (lambda x: x[:, ::2, 1:, ::-1], [(1, 5, 4, 3)], "STRIDED_SLICE"),
        "pad_hw": (lambda x: tf.pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]]), [(1, 3, 4, 2)], "PAD"),
        "pad_channels": (lambda x: tf.pad(x, [[0, 0], [0, 0], [2, 1]]), [(1, 3, 5)], "PAD"),
        "resize_nearest": (lambda x: tf.image.resize(x, (6, 4), method="nearest"), [(1, 3, 2, 2)], "RESIZE_NEAREST_NEIGHBOR"),
        # RSQRT: inputs from 0 up (0 gives 32767), a wide and a narrow input scale
        "rsqrt": (lambda x: tf.math.rsqrt(x), [(1, 300)], "RSQRT"),
        "rsqrt_wide_scale": (lambda x: tf.math.rsqrt(x * 50.0), [(1, 3, 7)], "RSQRT"),
        "batch_matmul_broadcast_batch": (lambda x, y: tf.matmul(x, y), [(1, 2, 3, 4), (1, 1, 4, 5)], "BATCH_MATMUL"),
        "batch_matmul_adjoint_both": (
            lambda x, y: tf.matmul(x, y, transpose_a=True, transpose_b=True),
            [(1, 2, 5, 3), (1, 2, 7, 5)],
            "BATCH_MATMUL",
        ),
        "batch_matmul_constant_rhs_deep": (lambda x: tf.matmul(x * 3.0, k_deep), [(1, 3, 33)], "BATCH_MATMUL"),
    }


@pytest.mark.parametrize("case", sorted(_fn_cases()))
def test_elementwise_op_bit_exact(case):
    fn, shapes, op = _fn_cases()[case]
    peak = (32767 / 4096 if op == "LOGISTIC" else 32767 / 2048) if case.endswith("_pot") else None
    info = convert_fn_16x8(fn, shapes, peak=peak, nonnegative=op == "RSQRT")
    assert op in info.op_names, info.op_names
    if peak is not None:  # the shift-only path is the one under test
        assert all(dict(c.args)["mult"] == 0 for c in compile_model(info).calls if c.function.endswith(("logistic_s16", "tanh_s16")))
    assert_bit_exact_16x8(info, nonnegative=op == "RSQRT")


def test_softmax_tables_are_tflite_micros():
    """Spot values of the two 513-entry tables: exp(0) and 1 / (1 + 0) at the top/bottom end
    (Q0.15, with the table's half-error bias), both decreasing."""
    from mcuq.backends.c.lower_int16 import softmax_luts

    exp_lut, recip_lut = softmax_luts()
    assert exp_lut.shape == recip_lut.shape == (513,)
    assert exp_lut[512] == 32767 and 0 <= exp_lut[0] <= 2
    assert recip_lut[0] == 32767 and abs(int(recip_lut[512]) - 16384) <= 1
    assert np.all(np.diff(exp_lut.astype(int)) >= 0) and np.all(np.diff(recip_lut.astype(int)) <= 0)


def test_int16_op_without_kernel_is_refused_naming_the_layer():
    import tensorflow as tf

    # RESIZE_BILINEAR: the converter makes a 16x8 one; the C runtime has no 16x8 kernel for it
    info = convert_fn_16x8(lambda x: tf.image.resize(x, (6, 8), method="bilinear"), [(1, 3, 4, 2)])
    with pytest.raises(UnsupportedOpError, match=r"op \d+ \w+ .*(int16|not supported)"):
        compile_model(info)


def test_every_16x8_op_has_a_case():
    from test_c_moves import ARITH, MOVES

    from mcuq.backends.c.program import INT16_OPS

    covered = {spec[2] for spec in _keras_cases().values()} | {spec[2] for spec in _fn_cases().values()}
    covered |= MOVES | ARITH  # tests/test_c_moves.py: test_moves_int16_bit_exact, test_abs_squared_difference_sum_int16_bit_exact
    covered |= {"PRELU"} if PRELU_CASES else set()  # the converter makes no 16x8 PRELU: test_prelu_16x8_bit_exact
    # RESHAPE comes with Flatten (dense_relu_flatten); EXPAND_DIMS/SQUEEZE share its lowering.
    assert set(INT16_OPS) - covered <= {"RESHAPE", "EXPAND_DIMS", "SQUEEZE", "PADV2"}  # PADV2 shares PAD's lowering


def test_float_helpers_quantize_into_int16(tmp_path):
    """The project's one quantize helper (mcuq_api.h, what <prefix>_set_input_float calls) on a
    16x8 model's int16 input and output: TFLite's rounding, clamped to the int16 range (not
    int8's); dequantizing the C runtime's int16 output gives x86 TFLite Micro's floats."""
    import subprocess

    from mcuq.backends.c.codegen import write_sources
    from mcuq.model.info import dequantize_array, quantize_array
    from mcuq.project.render import BANNER, environment, tensor_context

    need("gcc")
    info = convert_fn_16x8(lambda x: x * 0.5 + 0.0, [(1, 8)], scale=2.0)
    program = compile_model(info)
    write_sources(render_c_model(program, "t"), tmp_path)
    (tmp_path / "mcuq_api.h").write_text(environment().get_template("api/mcuq_api.h.j2").render(banner=BANNER))
    ti, to = (tensor_context(t) for t in (info.input_tensors[0], info.output_tensors[0]))
    scale = info.input_tensors[0].quant.scale[0]
    values = np.array([-1e6, -7.3, -0.01, 0.0, 0.013, 1.5, 30000 * scale, 1e6], np.float32)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "mcuq_api.h"\n#include "mcuq_model.h"\nint main(void){ const float v[8] = {'
        + ", ".join(f"{float(x)!r}f" for x in values)
        + f'}}; const mcuq_tensor_info ti = {{ "x", 8u, MCUQ_INT16, {ti["scale_literal"]}, {ti["zero_point"]} }};'
        + f' const mcuq_tensor_info to = {{ "y", 8u, MCUQ_INT16, {to["scale_literal"]}, {to["zero_point"]} }};'
        + " float o[8]; int i; if (mcuq_quantize(&ti, v, mcuq_input(0), 8) != MCUQ_OK) return 1;"
        + ' for (i = 0; i < 8; ++i) printf("%d ", ((const int16_t*)mcuq_input(0))[i]);'
        + " mcuq_invoke(); if (mcuq_dequantize(&to, mcuq_output(0), o, 8) != MCUQ_OK) return 1;"
        + ' for (i = 0; i < 8; ++i) printf("%.9g ", o[i]); return 0; }\n'
    )
    sources = [str(tmp_path / n) for n in ("mcuq_model.c", "mcuq_kernels.c", "mcuq_kernels_s16.c", "main.c")]
    subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), *sources, "-o", str(tmp_path / "t"), "-lm"], check=True
    )
    words = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout.split()
    q_in = quantize_array(values, info.input_tensors[0])
    assert [int(w) for w in words[:8]] == [int(v) for v in q_in] and q_in.min() == -32768 and q_in.max() == 32767
    q_out = run_tflm(info.raw, [[q_in.reshape(1, 8)]], 1 << 20, 1).outputs[0][0]
    np.testing.assert_allclose([float(w) for w in words[8:]], dequantize_array(q_out, info.output_tensors[0]).ravel(), rtol=1e-6)


def test_sigmoid_table_is_the_pinned_librarys():
    """The 256-entry table in mcuq_kernels_s16.c equals sigmoid_table_uint16 of every pinned
    TFLite Micro library whose sources are here."""
    import re

    from mcuq.common.resources import templates_dir

    def table(text: str, name: str) -> list[int]:
        body = text[text.index(name) :]
        return [int(v) for v in re.findall(r"\b\d+\b", body[body.index("{") + 1 : body.index("}")])]

    ours = table((templates_dir() / "c" / "runtime" / "mcuq_kernels_s16.c").read_text(), "sigmoid_u16[256]")
    assert len(ours) == 256 and ours[0] == 32768 and ours[-1] == 65535
    libs = Path(__file__).resolve().parents[2] / "shared" / "tflm-libs"
    headers = sorted(libs.glob("*/**/kernels/internal/common.h")) if libs.is_dir() else []
    if not headers:
        pytest.skip(f"TFLite Micro library sources not found at {libs}")
    for header in headers:
        assert table(header.read_text(), "sigmoid_table_uint16[256]") == ours, header


def _assert_c_equals_tflm(info: ModelInfo, samples: list[list[np.ndarray]]) -> np.ndarray:
    """The C runtime's outputs against the x86 TFLite Micro's on given samples; TFLM's first output."""
    want = run_tflm(info.raw, samples, 1 << 22, len(info.outputs)).outputs
    program = compile_model(info)
    got = run_host(program, render_c_model(program, "t"), samples)
    for k, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g[0], w[0]), f"sample {k}: C {g[0].ravel()[:10]} vs TFLM {w[0].ravel()[:10]}"
    return want[0][0]


@pytest.mark.parametrize("scale", [0.02, 40.0])
def test_rsqrt_bit_exact_over_every_nonnegative_input(scale):
    """RSQRT int16 over all 32,768 inputs from 0 (TFLite Micro's 32767) to 32767, a narrow and a
    wide calibration (outputs saturating at the top, and small)."""
    import tensorflow as tf

    need("gcc")
    info = convert_fn_16x8(lambda x: tf.math.rsqrt(x), [(1, 32768)], scale=scale, nonnegative=True)
    assert info.op_names == ["RSQRT"], info.op_names
    sweep = np.arange(32768, dtype=np.int16).reshape(1, 32768)
    out = _assert_c_equals_tflm(info, [[sweep], [sweep[:, ::-1].copy()]])
    assert out.ravel()[0] == 32767 and len(set(out.ravel().tolist())) > 200, "the sweep tests little"


def prelu_16x8(
    in_shape: tuple[int, ...], alpha: np.ndarray, shared_axes: list[int] | None, rescale: tuple[float, float], alpha_zp: int = 0
) -> ModelInfo:
    """A 16x8 PRELU model (int16 input and output, int8 alpha), as TFLite Micro runs it: the
    TFLite converter refuses 16x8 PRELU ("not yet supported"), so a full-int8 PRELU is converted
    and its activations retyped to int16 (zero point 0, the int8 scales times `rescale`);
    `alpha_zp` moves the alpha's zero point (the converter's is 0)."""
    import flatbuffers
    import keras
    import tensorflow as tf
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    inp = keras.Input(in_shape, batch_size=1)
    model = keras.Model(inp, keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(alpha), shared_axes=shared_axes)(inp))
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(size=(1, *in_shape)).astype(np.float32)] for _ in range(32))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    raw = bytes(converter.convert())
    keras.backend.clear_session()
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(raw, 0))
    graph = m.subgraphs[0]
    (op,) = graph.operators
    for index, factor in zip((op.inputs[0], op.outputs[0]), rescale):
        t = graph.tensors[index]
        t.type = schema.TensorType.INT16
        t.quantization.scale = [float(t.quantization.scale[0]) * factor]
        t.quantization.zeroPoint = [0]
    graph.tensors[op.inputs[1]].quantization.zeroPoint = [alpha_zp]
    builder = flatbuffers.Builder(len(raw) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return parse_model(bytes(builder.Output()))


PRELU_CASES = {
    # in shape, alpha, shared axes, (input, output) scale factors against the int8 ones
    "per_element_alpha": ((3, 4, 5), np.linspace(-0.8, 1.9, 60).reshape(3, 4, 5), None, (1 / 200, 1 / 150)),
    "alpha_per_channel_broadcast": ((4, 7, 3), np.array([-1.5, 0.3, 2.5]).reshape(1, 1, 3), [1, 2], (1 / 128, 1 / 400)),
    "odd_rank3_alpha_broadcast": ((5, 9), np.linspace(0.1, 0.9, 9).reshape(1, 9), [1], (1 / 300, 1 / 100)),
    "alpha_zero_point_moved": ((2, 3, 11), np.linspace(-2.0, 2.0, 11).reshape(1, 1, 11), [1, 2], (1 / 90, 1 / 250), -37),
}


@pytest.mark.parametrize("case", sorted(PRELU_CASES))
def test_prelu_16x8_bit_exact(case):
    """PRELU int16 with an int8 alpha: broadcast alphas, negative and above-one slopes, an alpha
    zero point away from 0, outputs saturating from full-range int16 inputs."""
    info = prelu_16x8(*PRELU_CASES[case])  # type: ignore[arg-type]
    assert info.op_names == ["PRELU"] and [t.dtype for t in info.input_tensors] == ["int16"], info.op_names
    alpha = info.tensors[info.ops[0].inputs[1]]
    assert alpha.dtype == "int8", alpha.dtype
    assert_bit_exact_16x8(info)
