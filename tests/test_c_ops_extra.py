"""Plain-C runtime, the ops beyond the CNN set (TRANSPOSE, STRIDED_SLICE, REDUCE_MAX/MIN,
HARD_SWISH, LEAKY_RELU, RSQRT, PRELU, MAXIMUM/MINIMUM, SUB, RESIZE_*, BATCH_MATMUL): each converted
by the TFLite converter from a tiny TensorFlow function over a table of edge cases (zero
points, saturation, broadcast shapes, odd sizes, masks, align/half-pixel modes, adjoints)
and required bit-exact with the x86 TFLite Micro."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from test_c_runtime import _assert_bit_exact

from mcuq.backends.c.ops_extra import hard_swish_table, leaky_relu_table, rsqrt_table
from mcuq.model.info import ModelInfo, parse_model

pytestmark = pytest.mark.slow


def convert_fn(fn: Callable, shapes: list[tuple[int, ...]], loc: float = 0.0, scale: float = 1.0, seed: int = 0) -> ModelInfo:
    """A tf.function over `shapes` (batch 1) -> full-int8 TFLite (int8 I/O), calibrated on
    normal(loc, scale) data: `loc` moves the zero points away from 0."""
    import tensorflow as tf

    specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
    concrete = tf.function(fn).get_concrete_function(*specs)
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(48):
            yield [(rng.normal(loc, scale, s)).astype(np.float32) for s in shapes]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return parse_model(bytes(converter.convert()))


def _cases() -> dict[str, tuple[Callable, list[tuple[int, ...]], dict, str]]:
    import tensorflow as tf

    const_b = np.random.default_rng(9).normal(size=(1, 1, 5, 4)).astype(np.float32)
    import keras

    prelu = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant([-0.5, 0.25, 1.5]), shared_axes=[1, 2])
    return {
        # TRANSPOSE
        "transpose_hw": (lambda x: tf.transpose(x, [0, 2, 1, 3]), [(1, 4, 6, 3)], {}, "TRANSPOSE"),
        "transpose_odd_chw": (lambda x: tf.transpose(x, [0, 3, 1, 2]), [(1, 5, 3, 7)], {"loc": 2.0}, "TRANSPOSE"),
        "transpose_3d": (lambda x: tf.transpose(x, [0, 2, 1]), [(1, 5, 7)], {}, "TRANSPOSE"),
        # STRIDED_SLICE
        "slice_step_reverse": (lambda x: x[:, ::2, ::-1, 1:], [(1, 7, 5, 4)], {}, "STRIDED_SLICE"),
        "slice_shrink_axis": (lambda x: x[:, 2, 1:4, :], [(1, 5, 6, 3)], {"loc": -1.0}, "STRIDED_SLICE"),
        "slice_negative_bounds": (lambda x: x[:, -3:-1, :, ::3], [(1, 6, 5, 7)], {}, "STRIDED_SLICE"),
        # SPLIT / UNPACK (the unrolled GRU and SimpleRNN): pieces as model outputs, or used further
        "split_channels": (lambda x: tuple(tf.split(x, 3, axis=-1)), [(1, 4, 5, 6)], {}, "SPLIT"),
        "split_rows_then_sub": (lambda x: (lambda p: p[0] - p[1])(tf.split(x, 2, axis=1)), [(1, 6, 3, 5)], {"loc": 1.0}, "SPLIT"),
        "unpack_time_steps": (lambda x: tuple(tf.unstack(x, axis=1)), [(1, 4, 7)], {"loc": -0.5}, "UNPACK"),
        # REDUCE_MAX / REDUCE_MIN
        "reduce_max_hw": (lambda x: tf.reduce_max(x, axis=[1, 2]), [(1, 5, 7, 3)], {"loc": 1.0}, "REDUCE_MAX"),
        "reduce_max_last_keepdims": (lambda x: tf.reduce_max(x, axis=-1, keepdims=True), [(1, 3, 4, 9)], {}, "REDUCE_MAX"),
        "reduce_min_w": (lambda x: tf.reduce_min(x, axis=2), [(1, 3, 5, 2)], {}, "REDUCE_MIN"),
        # elementwise activations (tables over all 256 inputs: every sample has > 256 elements)
        "hard_swish": (lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, [(1, 300)], {"scale": 4.0}, "HARD_SWISH"),
        "hard_swish_offset": (lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, [(1, 300)], {"loc": 3.0, "scale": 0.5}, "HARD_SWISH"),
        "hard_swish_wide": (lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, [(1, 300)], {"scale": 40.0}, "HARD_SWISH"),
        "leaky_relu": (lambda x: tf.nn.leaky_relu(x, 0.2), [(1, 300)], {}, "LEAKY_RELU"),
        "leaky_relu_small_alpha_offset": (lambda x: tf.nn.leaky_relu(x, 0.01), [(1, 300)], {"loc": -2.0}, "LEAKY_RELU"),
        "leaky_relu_alpha_above_one": (lambda x: tf.nn.leaky_relu(x, 1.7), [(1, 300)], {"loc": 1.0}, "LEAKY_RELU"),
        "prelu_channel_alpha": (prelu, [(1, 4, 5, 3)], {}, "PRELU"),
        # binary elementwise with broadcast and different scales
        "maximum_broadcast": (lambda x, y: tf.maximum(x, 3.0 * y), [(1, 4, 5, 3), (1, 1, 5, 1)], {}, "MAXIMUM"),
        "minimum_same_shape": (lambda x, y: tf.minimum(x, y), [(1, 7, 3), (1, 7, 3)], {"loc": 0.5}, "MINIMUM"),
        "sub_broadcast": (lambda x, y: x - 5.0 * y, [(1, 4, 5, 3), (1, 1, 1, 3)], {}, "SUB"),
        "sub_relu_saturating": (lambda x, y: tf.nn.relu(0.1 * x - y), [(1, 6, 5), (1, 6, 5)], {"loc": 1.0}, "SUB"),
        # RESIZE
        "bilinear_half_pixel_up": (lambda x: tf.image.resize(x, (7, 5), "bilinear"), [(1, 3, 4, 2)], {}, "RESIZE_BILINEAR"),
        "bilinear_down": (lambda x: tf.image.resize(x, (4, 3), "bilinear"), [(1, 6, 8, 3)], {"loc": 1.0}, "RESIZE_BILINEAR"),
        "bilinear_align_corners": (
            lambda x: tf.compat.v1.image.resize_bilinear(x, (7, 9), align_corners=True),
            [(1, 3, 4, 2)],
            {},
            "RESIZE_BILINEAR",
        ),
        "bilinear_legacy": (lambda x: tf.compat.v1.image.resize_bilinear(x, (5, 6)), [(1, 2, 4, 3)], {}, "RESIZE_BILINEAR"),
        "nearest_half_pixel_up3": (lambda x: tf.image.resize(x, (9, 6), "nearest"), [(1, 3, 2, 4)], {}, "RESIZE_NEAREST_NEIGHBOR"),
        "nearest_down": (lambda x: tf.image.resize(x, (3, 4), "nearest"), [(1, 7, 9, 2)], {}, "RESIZE_NEAREST_NEIGHBOR"),
        "nearest_align_corners": (
            lambda x: tf.compat.v1.image.resize_nearest_neighbor(x, (5, 7), align_corners=True),
            [(1, 3, 4, 2)],
            {},
            "RESIZE_NEAREST_NEIGHBOR",
        ),
        # BATCH_MATMUL
        "matmul": (lambda a, b: tf.matmul(a, b), [(1, 2, 3, 5), (1, 2, 5, 4)], {"loc": 0.5}, "BATCH_MATMUL"),
        "matmul_adjoint_b": (lambda a, b: tf.matmul(a, b, transpose_b=True), [(1, 2, 3, 6), (1, 2, 4, 6)], {}, "BATCH_MATMUL"),
        "matmul_adjoint_a": (lambda a, b: tf.matmul(a, b, transpose_a=True), [(1, 3, 5, 3), (1, 3, 5, 2)], {}, "BATCH_MATMUL"),
        "matmul_broadcast_batch": (lambda a, b: tf.matmul(a, b), [(1, 3, 4, 5), (1, 1, 5, 2)], {}, "BATCH_MATMUL"),
        "matmul_const_rhs": (lambda a: tf.matmul(a, const_b), [(1, 2, 3, 5)], {}, "BATCH_MATMUL"),
    }


CASES = sorted(_cases())


@pytest.mark.parametrize("case", CASES)
def test_extra_op_bit_exact(case):
    fn, shapes, calib, op = _cases()[case]
    info = convert_fn(fn, shapes, **calib)
    if op not in info.op_names:
        pytest.fail(f"the converter made {info.op_names}, not {op}: the case does not test what it says")
    _assert_bit_exact(info, n=24)


def test_lut_tables_cover_saturation_and_zero_points():
    """The generator's tables: outputs saturate at both ends, and the identity half of
    LEAKY_RELU with equal scales is the identity."""
    t = leaky_relu_table(0.05, -3, 0.05, -3, 0.5)
    assert list(t[128 - 3 :]) == list(range(-3, 128))  # x >= zero point: unchanged
    wide = hard_swish_table(0.5, 0, 0.01, -128)
    assert wide.max() == 127 and wide.min() == -128


RSQRT_CALIBRATIONS = {
    # (loc, scale) of the normal calibration data: every one puts the input zero point above -128,
    # so TFLite Micro refuses the lowest inputs (below)
    "rsqrt_offset_zero_point": (3.0, 1.0),
    "rsqrt_wide_range": (40.0, 20.0),
    "rsqrt_tiny_inputs_huge_outputs": (0.01, 0.005),
    "rsqrt_half_negative_calibration": (1.0, 2.0),
}


@pytest.mark.parametrize("case", sorted(RSQRT_CALIBRATIONS))
def test_rsqrt_bit_exact_over_every_valid_input(case):
    """RSQRT (int8) as a 256-entry table: every input from the zero point (x = 0: TFLite Micro
    answers 127) to 127, in the C runtime, equal to the x86 TFLite Micro; inputs below the zero
    point make TFLite Micro's invoke fail, and the table reads them like the zero point."""
    import tensorflow as tf

    from mcuq.common.errors import NativeCrashError
    from mcuq.reference.host_tflm import run_tflm

    loc, scale = RSQRT_CALIBRATIONS[case]
    info = convert_fn(lambda x: tf.math.rsqrt(x), [(1, 300)], loc=loc, scale=scale)
    assert info.op_names == ["RSQRT"], info.op_names
    (t_in,) = info.input_tensors
    (zp,) = t_in.quant.zero_point
    assert zp > -128, "the case does not test an input zero point away from -128"
    valid = np.arange(zp, 128)
    samples = [[np.resize(np.roll(valid, k), (1, 300)).astype(np.int8)] for k in range(4)]
    _assert_bit_exact(info, samples=samples)
    out = run_tflm(info.raw, samples[:1], 1 << 20, 1).outputs[0][0].reshape(-1)
    assert len(set(out.tolist())) > 8, "the outputs are (nearly) all saturated: the case tests little"
    with pytest.raises(NativeCrashError):
        run_tflm(info.raw, [[np.full((1, 300), zp - 1, np.int8)]], 1 << 20, 1)
    t_out = info.tensors[info.ops[0].outputs[0]]
    table = rsqrt_table(t_in.quant.scale[0], zp, t_out.quant.scale[0], t_out.quant.zero_point[0])
    assert set(table[: zp + 129].tolist()) == {127}  # zero point and below


def test_slice_of_leading_rows_is_an_alias_not_a_copy():
    """A STRIDED_SLICE whose output is one contiguous window of its input (rows 2..4 of an
    NHWC map) costs no copy and no RAM: the planner places the output inside the input."""
    import tensorflow as tf

    from mcuq.backends.c.program import compile_model

    info = convert_fn(lambda x: tf.nn.relu(x)[:, 2:5, :, :] * 2.0, [(1, 7, 4, 3)], loc=0.5)
    assert "STRIDED_SLICE" in info.op_names, info.op_names
    program = compile_model(info)
    op = next(o for o in info.ops if o.name == "STRIDED_SLICE")
    call = next(c for c in program.calls if c.op_index == op.index)
    assert call.function == "mcuq_copy" and dict(call.args)["n"] == 0
    assert program.plan.tensor_offset[op.outputs[0]] == program.plan.tensor_offset[op.inputs[0]] + 2 * 4 * 3
    assert program.plan.arena_bytes == program.plan.lower_bound
    _assert_bit_exact(info, n=8)


def test_reshape_of_the_model_input_is_an_alias_not_a_copy():
    """micro_speech starts with a RESHAPE of its input: the output is the input's bytes, so the
    planner aliases it (no copy, no RAM) like any other reshape; still bit-exact."""
    import keras
    import tensorflow as tf

    from mcuq.backends.c.program import compile_model

    keras.utils.set_random_seed(6)
    dense = keras.layers.Dense(5)
    info = convert_fn(lambda x: dense(tf.reshape(x, (1, 24))), [(1, 4, 6)])
    op = next(o for o in info.ops if o.name == "RESHAPE")
    assert op.inputs[0] in info.inputs
    program = compile_model(info)
    assert program.plan.tensor_offset[op.outputs[0]] == program.plan.tensor_offset[op.inputs[0]]
    assert program.plan.arena_bytes == program.plan.lower_bound
    _assert_bit_exact(info, n=8)


def test_concat_of_feature_vectors_is_written_in_place():
    """Dense branches concatenated on their features: each producer writes its piece straight
    into the concatenation's output, which then copies nothing; still bit-exact."""
    import keras
    import tensorflow as tf

    from mcuq.backends.c.program import compile_model

    keras.utils.set_random_seed(4)
    d1, d2, d3 = keras.layers.Dense(6), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)
    info = convert_fn(lambda x: d3(tf.concat([d1(x), d2(x)], axis=-1)), [(1, 10)])
    assert "CONCATENATION" in info.op_names, info.op_names
    program = compile_model(info)
    op = next(o for o in info.ops if o.name == "CONCATENATION")
    call = next(c for c in program.calls if c.op_index == op.index)
    assert call.function == "mcuq_copy" and dict(call.args)["n"] == 0
    offsets = [program.plan.tensor_offset[i] for i in (*op.inputs, op.outputs[0])]
    assert offsets[1] == offsets[0] + 6 and offsets[0] == offsets[2]
    _assert_bit_exact(info, n=8)
