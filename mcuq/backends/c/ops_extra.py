"""Plain-C lowering of the ops beyond the CNN set: the Keras layer families' TRANSPOSE
(Permute, attention), STRIDED_SLICE (Cropping), REDUCE_MAX/MIN (GlobalMaxPooling), HARD_SWISH,
LEAKY_RELU, PRELU, MAXIMUM/MINIMUM, SUB, RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR (UpSampling,
Resizing) and BATCH_MATMUL.

Why the shapes of these lowerings:
- Ops that only move data become one `mcuq_gather` whose per-axis offset tables are computed
  here from TFLite's own index formulas (strided_slice_logic.h, GetNearestNeighbor in float32):
  the C side does no index arithmetic that could differ from TFLite Micro.
- Elementwise int8 -> int8 activations (HARD_SWISH, LEAKY_RELU, RSQRT) are evaluated here for
  all 256 inputs with TFLite's integer arithmetic (int16 gemmlowp steps for HARD_SWISH, the
  Newton-Raphson inverse square root for RSQRT), and run as a 256-byte table in flash: one load
  per element on every CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mcuq.backends.c.emitter import Emitter, binary_operands, dims4, dims_const, operand, unsupported
from mcuq.backends.c.ir import KernelCall
from mcuq.backends.c.lower_elementwise import lower_add
from mcuq.model.quant_math import f32, quantize_multiplier, tflite_round

if TYPE_CHECKING:
    from mcuq.model.info import OpInfo, TensorInfo

INT32_MAX = (1 << 31) - 1


def _q(t: TensorInfo) -> tuple[float, int]:
    assert t.quant is not None
    return t.quant.scale[0], t.quant.zero_point[0]


def const_ints(e: Emitter, op: OpInfo, pos: int, what: str) -> list[int]:
    t = e.t(op.inputs[pos])
    if t.data is None:
        raise unsupported(e.info, op, f"has a non-constant {what}; the C runtime needs it known at generation time")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def row_major_strides(dims: list[int]) -> list[int]:
    strides = [1] * len(dims)
    for d in range(len(dims) - 2, -1, -1):
        strides[d] = strides[d + 1] * dims[d + 1]
    return strides


def rank4(e: Emitter, op: OpInfo, t: TensorInfo) -> list[int]:
    if len(t.shape) > 4:
        raise unsupported(e.info, op, f"has a {len(t.shape)}-D tensor '{t.name}'; the C runtime moves data in up to 4 dimensions")
    return dims4(t.shape)


Layout = tuple[list[int], list[list[int]]]  # output dims (4) and per-axis input offsets


def gather(e: Emitter, op: OpInfo, layout: Layout) -> KernelCall:
    """One data-moving op as out[i0,i1,i2,i3] = in[t0[i0] + t1[i1] + t2[i2] + t3[i3]], or
    nothing when the planner placed the output inside the input (see alias_offsets)."""
    dims, tables = layout
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    if int(np.prod(dims)) != int(np.prod(out.shape)) * np.dtype(out.dtype).itemsize:
        raise unsupported(e.info, op, f"gives {dims} elements where its output '{out.name}' has shape {list(out.shape)}")
    plan = e.program.plan
    delta = window_offset(layout)
    if plan is not None and delta is not None and plan.tensor_offset[out.index] == plan.tensor_offset[inp.index] + delta:
        # aliased: the output already is that window of the input, no copy (mcuq_copy of a
        # buffer onto itself does nothing)
        return KernelCall(op.index, "mcuq_copy", [("in", e.buf(out.index)), ("out", e.buf(out.index)), ("n", 0)])
    flat = np.array([v for table in tables for v in table], np.int32)
    contiguous = int(all(v == tables[3][0] + k for k, v in enumerate(tables[3])))
    return KernelCall(
        op.index,
        "mcuq_gather",
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("dims", dims_const(e, f"do{op.index}", tuple(dims))),
            ("table", e.const(f"g{op.index}", "mcuq_dim", flat)),
            ("contiguous", contiguous),
        ],
    )


def window_offset(layout: Layout) -> int | None:
    """The input offset at which the output lies as one contiguous window (so the op can be an
    alias), or None when the op really rearranges bytes."""
    index = np.zeros(1, np.int64)
    tables = layout[1]
    for table in tables:
        index = (index[:, None] + np.array(table, np.int64)[None, :]).reshape(-1)
    if index.size == 0:
        return None
    return int(index[0]) if np.array_equal(index, index[0] + np.arange(index.size)) else None


def alias_offsets(e: Emitter, layouts: dict[str, LayoutFn] | None = None) -> dict[int, int]:
    """op index -> byte offset of its output inside its input, for the data-moving ops whose
    output is a contiguous window of the input (TRANSPOSE of unit axes, STRIDED_SLICE of
    leading rows, identity resizes): the planner places such an output inside its input."""
    found = {}
    for op in e.info.ops:
        if op.name in (layouts or LAYOUTS):
            delta = window_offset(byte_layout(e, op, layouts))
            if delta is not None:
                found[op.index] = delta
    return found


def _transpose_layout(e: Emitter, op: OpInfo) -> Layout:
    inp = e.t(op.inputs[0])
    in_dims = rank4(e, op, inp)
    lead = 4 - len(inp.shape)
    perm = list(range(lead)) + [lead + p % len(inp.shape) for p in const_ints(e, op, 1, "permutation")]
    strides = row_major_strides(in_dims)
    dims = [in_dims[p] for p in perm]
    return dims, [[i * strides[p] for i in range(in_dims[p])] for p in perm]


def _slice_axis(size: int, begin: int, end: int, stride: int, axis: int, masks: dict[str, int]) -> list[int]:
    """Input indices one axis of STRIDED_SLICE reads (StartForAxis / StopForAxis)."""
    lowest, highest = -(1 << 31), INT32_MAX
    if size == 0:
        return []
    start = (lowest if stride > 0 else highest) if masks["beginMask"] & (1 << axis) else begin
    if start < 0:
        start += size
    start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
    if masks["shrinkAxisMask"] & (1 << axis):
        return [start]
    stop = (highest if stride > 0 else lowest) if masks["endMask"] & (1 << axis) else end
    if stop < 0:
        stop += size
    stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
    return list(range(start, stop, stride))


def _strided_slice_layout(e: Emitter, op: OpInfo) -> Layout:
    inp = e.t(op.inputs[0])
    o = op.options
    masks = {k: int(o.get(k, 0) or 0) for k in ("beginMask", "endMask", "shrinkAxisMask", "ellipsisMask", "newAxisMask")}
    if masks["ellipsisMask"] or masks["newAxisMask"] or o.get("offset"):
        raise unsupported(e.info, op, "uses an ellipsis, new-axis or offset mask; the C runtime slices with begin/end/stride per axis")
    begin, end = const_ints(e, op, 1, "begin"), const_ints(e, op, 2, "end")
    strides = const_ints(e, op, 3, "strides") if len(op.inputs) > 3 else [1] * len(begin)
    in_dims = rank4(e, op, inp)
    rank = len(inp.shape)
    lead = 4 - rank
    in_strides = row_major_strides(in_dims)
    tables = [[0]] * lead
    for axis in range(rank):
        b = begin[axis] if axis < len(begin) else 0
        s = strides[axis] if axis < len(strides) else 1
        full = dict(masks)
        if axis >= len(begin):  # axes past the given ones are taken whole
            full["beginMask"] |= 1 << axis
            full["endMask"] |= 1 << axis
        idx = _slice_axis(in_dims[lead + axis], b, end[axis] if axis < len(end) else 0, s, axis, full)
        tables.append([i * in_strides[lead + axis] for i in idx])
    return [len(t) for t in tables], tables


def _nearest_index(i: int, in_size: int, out_size: int, align: bool, half: bool) -> int:
    """GetNearestNeighbor in float32, as TFLite computes it."""
    if align and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    value = (f32(i) + f32(0.5 if half else 0.0)) * scale
    v = tflite_round(float(value)) if align else math.floor(float(value))
    v = min(v, in_size - 1)
    return max(0, v) if half else v


def _resize_nearest_layout(e: Emitter, op: OpInfo) -> Layout:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    _, ih, iw, ch = inp.shape
    _, oh, ow, _ = out.shape
    align, half = bool(op.options.get("alignCorners")), bool(op.options.get("halfPixelCenters"))
    ys = [_nearest_index(y, ih, oh, align, half) * iw * ch for y in range(oh)]
    xs = [_nearest_index(x, iw, ow, align, half) * ch for x in range(ow)]
    return [1, oh, ow, ch], [[0], ys, xs, list(range(ch))]


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _bilinear_table(in_size: int, out_size: int, align: bool, half: bool) -> list[int]:
    """(lower, upper, scaled value) per output index: ComputeInterpolationValuesInteger."""
    scale = ((1 << 10) * in_size + out_size // 2) // out_size
    if align and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    table = []
    for v in range(out_size):
        scaled = v * scale + _cdiv(scale, 2) - (1 << 9) if half else v * scale
        lower = max(_cdiv(scaled, 1 << 10), 0)
        upper = min(_cdiv(scaled + (1 << 10) - 1, 1 << 10), in_size - 1)
        table += [lower, upper, scaled]
    return table


def _resize_bilinear(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    if _q(inp) != _q(out):
        raise unsupported(e.info, op, "changes quantization; TFLite Micro's int8 RESIZE_BILINEAR keeps it")
    _, ih, iw, ch = inp.shape
    _, oh, ow, _ = out.shape
    align, half = bool(op.options.get("alignCorners")), bool(op.options.get("halfPixelCenters"))
    return KernelCall(
        op.index,
        "mcuq_resize_bilinear",
        [
            ("in", e.buf(inp.index)),
            ("in_w", iw),
            ("ch", ch),
            ("out", e.buf(out.index)),
            ("out_h", oh),
            ("out_w", ow),
            ("y_table", e.const(f"ry{op.index}", "mcuq_dim", np.array(_bilinear_table(ih, oh, align, half), np.int32))),
            ("x_table", e.const(f"rx{op.index}", "mcuq_dim", np.array(_bilinear_table(iw, ow, align, half), np.int32))),
        ],
    )


# ---- elementwise activations as 256-entry tables -------------------------------------------


def _int16(x: int) -> int:
    return (x + (1 << 15)) % (1 << 16) - (1 << 15)


def _srdhm16(a: int, b: int) -> int:
    """gemmlowp::SaturatingRoundingDoublingHighMul for int16."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return _int16(_cdiv(ab + nudge, 1 << 15))


def _sdhm16(a: int, b: int) -> int:
    """reference_ops::SaturatingDoublingHighMul (no rounding nudge)."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    return _int16(_cdiv(a * b, 1 << 15))


def _rdivpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def _sat_left_shift16(x: int, amount: int) -> int:
    return max(-(1 << 15), min((1 << 15) - 1, x * (1 << amount)))


def _down_scale16(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    return (1 << 15) - 1 if m >= INT32_MAX - (1 << 15) else (m + (1 << 15)) >> 16


def hard_swish_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """reference_ops::HardSwish (int8) with hard_swish_common.cc's parameters, for inputs -128..127."""
    hires = f32(1.0 / 128.0) * f32(in_scale)
    out_m, out_e = quantize_multiplier(float(hires / f32(out_scale)))
    relu_m, relu_e = quantize_multiplier(float(hires / (f32(3.0) / f32(32768.0))))
    out_m16, relu_m16 = _down_scale16(out_m), _down_scale16(relu_m)
    if out_e > 0:
        raise ValueError("HARD_SWISH output multiplier exponent > 0 (TFLite Micro refuses it too)")
    values = []
    for q in range(-128, 128):
        x = _int16(q - in_zp)
        hires_x = _int16(x * (1 << 7))
        preshift = _srdhm16(hires_x, out_m16)
        r = hires_x
        if relu_e > 0:
            r = _sat_left_shift16(r, relu_e - 1)
        r = _srdhm16(r, relu_m16)
        if relu_e > 0:
            r = _sat_left_shift16(r, 1)
        if relu_e < 0:
            r = _rdivpot(r, -relu_e)
        r = _int16((r + (1 << 15)) >> 1)
        v = _rdivpot(_sdhm16(r, preshift), -out_e)
        values.append(max(-128, min(127, _int16(v + out_zp))))
    return np.array(values, np.int8)


def mbqm(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (int32, double rounding) in Python integers."""
    left, right = max(shift, 0), max(-shift, 0)
    a = x * (1 << left)
    a = (a + (1 << 31)) % (1 << 32) - (1 << 31)
    if a == m == -(1 << 31):
        high = INT32_MAX
    else:
        ab = a * m
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        high = _cdiv(ab + nudge, 1 << 31)
    return _rdivpot(high, right)


def leaky_relu_multipliers(in_scale: float, out_scale: float, alpha: float) -> tuple[int, int, int, int]:
    """(alpha multiplier, shift, identity multiplier, shift). leaky_relu_common.cc writes the
    quotients in float, but the x86 TFLite Micro computes them as doubles: a 16x8 sweep over all
    65,536 inputs differs in 17 outputs (ties) with float32 quotients and in none with doubles."""
    alpha_m, alpha_s = quantize_multiplier(float(in_scale) * float(f32(alpha)) / float(out_scale))
    id_m, id_s = quantize_multiplier(float(in_scale) / float(out_scale))
    return alpha_m, alpha_s, id_m, id_s


def leaky_relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, alpha: float) -> np.ndarray:
    """reference_ops::QuantizeLeakyRelu with leaky_relu_common.cc's multipliers."""
    alpha_m, alpha_s, id_m, id_s = leaky_relu_multipliers(in_scale, out_scale, alpha)
    negative = alpha_m < 0
    values = []
    for q in range(-128, 128):
        x = q - in_zp
        if x >= 0:
            v = out_zp + mbqm(x, id_m, id_s)
        else:
            scaled = mbqm(x, -alpha_m if negative else alpha_m, alpha_s)
            v = out_zp + (-scaled if negative else scaled)
        values.append(max(-128, min(127, v)))
    return np.array(values, np.int8)


def _int32(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def _srdhm32(a: int, b: int) -> int:
    """gemmlowp::SaturatingRoundingDoublingHighMul for int32."""
    if a == b == -(1 << 31):
        return INT32_MAX
    ab = a * b
    return _int32(_cdiv(ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30)), 1 << 31))


def _sat_shift32(x: int, amount: int) -> int:
    """gemmlowp::SaturatingRoundingMultiplyByPOT<amount > 0> on int32: saturating left shift."""
    return max(-(1 << 31), min(INT32_MAX, x * (1 << amount)))


def inv_sqrt_multiplier(value: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(value, kReverseShift = -1): 1/sqrt(value) as a multiplier
    and a left shift, with gemmlowp's 5 Newton-Raphson steps in 3-integer-bit fixed point."""
    if value <= 1:  # 0 is treated as 1 (TFLite's comment: avoids the overflow)
        return INT32_MAX, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    pairs = ((32 - value.bit_length()) - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    half_input = _rdivpot(value >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28  # F3::One()
    for _ in range(5):
        x3 = _sat_shift32(_srdhm32(_srdhm32(x, x), x), 6)
        x = _sat_shift32(_int32(_srdhm32(half_three, x) - _srdhm32(half_input, x3)), 3)
    x = _srdhm32(x, 1518500250)  # times sqrt(2)/2 in F0
    if shift < 0:
        x, shift = _int32(x << -shift), 0
    return x, -shift


def rsqrt_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """elementwise.cc's RsqrtEvalQuantized (int8) for inputs -128..127. Inputs below the zero point
    make TFLite Micro's invoke fail ("Rsqrt is only defined for positive values"); the plain-C
    runtime has no per-element error, so they read like the zero point: 127, RSQRT's 1/sqrt(0)."""
    mult, shift = quantize_multiplier(1.0 / (math.sqrt(float(f32(in_scale))) * float(f32(out_scale))))
    values = []
    for q in range(-128, 128):
        value = q - in_zp
        if value <= 0:
            values.append(127)
            continue
        inv, inv_shift = inv_sqrt_multiplier(value)
        data = mbqm(1, inv, inv_shift + 20)
        values.append(max(-128, min(127, mbqm(data, mult, shift - 20) + out_zp)))
    return np.array(values, np.int8)


def lut_call(e: Emitter, op: OpInfo, table: np.ndarray) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    # index by the input's byte: entry (uint8)q holds the output for q
    by_byte = np.concatenate([table[128:], table[:128]])
    return KernelCall(
        op.index,
        "mcuq_lut",
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("n", int(np.prod(inp.shape))),
            ("table", e.const(f"lut{op.index}", "int8_t", by_byte)),
        ],
    )


def _hard_swish(e: Emitter, op: OpInfo) -> KernelCall:
    (si, zi), (so, zo) = _q(e.t(op.inputs[0])), _q(e.t(op.outputs[0]))
    try:
        table = hard_swish_table(si, zi, so, zo)
    except ValueError as err:
        raise unsupported(e.info, op, str(err)) from None
    return lut_call(e, op, table)


def _leaky_relu(e: Emitter, op: OpInfo) -> KernelCall:
    (si, zi), (so, zo) = _q(e.t(op.inputs[0])), _q(e.t(op.outputs[0]))
    return lut_call(e, op, leaky_relu_table(si, zi, so, zo, float(op.options.get("alpha", 0.2))))


def _rsqrt(e: Emitter, op: OpInfo) -> KernelCall:
    (si, zi), (so, zo) = _q(e.t(op.inputs[0])), _q(e.t(op.outputs[0]))
    return lut_call(e, op, rsqrt_table(si, zi, so, zo))


# ---- binary elementwise ops ---------------------------------------------------------------


def _sub(e: Emitter, op: OpInfo) -> KernelCall:
    call = lower_add(e, op)
    call.function = "mcuq_sub"  # SUB's parameters are ADD's (sub_common.cc); only the sign differs
    return call


def _max_min(e: Emitter, op: OpInfo) -> KernelCall:
    return KernelCall(op.index, "mcuq_max_min", [*binary_operands(e, op), ("is_min", int(op.name == "MINIMUM"))])


def prelu_multipliers(in_scale: float, alpha_scale: float, out_scale: float) -> tuple[int, int, int, int]:
    """CalculatePreluParams (int8 and int16): in / out and in * alpha / out, as doubles."""
    return (*quantize_multiplier(in_scale / out_scale), *quantize_multiplier(in_scale * alpha_scale / out_scale))


def _prelu(e: Emitter, op: OpInfo) -> KernelCall:
    inp, alpha, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    assert alpha.quant is not None
    if len(set(alpha.quant.scale)) > 1:
        raise unsupported(e.info, op, "has per-channel alpha scales; the C runtime's PRELU takes one")
    (si, zi), (sa, za), (so, zo) = _q(inp), _q(alpha), _q(out)
    m1, s1, m2, s2 = prelu_multipliers(si, sa, so)
    operands = binary_operands(e, op)
    return KernelCall(
        op.index,
        "mcuq_prelu",
        [
            ("in", operands[0][1]),
            ("in_dims", operands[1][1]),
            ("alpha", operands[2][1]),
            ("alpha_dims", operands[3][1]),
            ("out", operands[4][1]),
            ("out_dims", operands[5][1]),
            ("in_offset", -zi),
            ("alpha_offset", -za),
            ("out_offset", zo),
            ("pos_mult", m1),
            ("pos_shift", s1),
            ("neg_mult", m2),
            ("neg_shift", s2),
        ],
    )


# ---- reductions and matrix products -------------------------------------------------------


def _reduce_max_min(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    if _q(inp) != _q(out):
        raise unsupported(e.info, op, "changes quantization; TFLite Micro's int8 REDUCE_MAX/MIN requires equal scales")
    rank4(e, op, inp)
    rank = len(inp.shape)
    mask = 0
    for a in const_ints(e, op, 1, "axis list"):
        mask |= 1 << (a % rank + 4 - rank)
    return KernelCall(
        op.index,
        "mcuq_reduce_max_min",
        [
            ("in", e.buf(inp.index)),
            ("in_dims", dims_const(e, f"di{op.index}", inp.shape)),
            ("axis_mask", mask),
            ("out", e.buf(out.index)),
            ("n_out", int(np.prod(out.shape))),
            ("is_min", int(op.name == "REDUCE_MIN")),
        ],
    )


def _extent(dims: list[int], axis: int) -> int:
    """batch_matmul::extent: 0 for a broadcast axis, else the elements per step."""
    return 0 if dims[axis] == 1 else int(np.prod(dims[axis + 1 :]))


def lower_batch_matmul(e: Emitter, op: OpInfo) -> KernelCall:
    """BATCH_MATMUL as strides over the operands as they lie (adj_x/adj_y, broadcast batch axes)."""
    lhs, rhs, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    if max(len(lhs.shape), len(rhs.shape)) > 5:
        raise unsupported(e.info, op, "has operands of more than 5 dimensions (TFLite Micro's limit too)")
    ld = [1] * (5 - len(lhs.shape)) + list(lhs.shape)
    rd = [1] * (5 - len(rhs.shape)) + list(rhs.shape)
    adj_x, adj_y = bool(op.options.get("adjX")), bool(op.options.get("adjY"))
    rows, depth = (ld[4], ld[3]) if adj_x else (ld[3], ld[4])
    cols = rd[3] if adj_y else rd[4]
    (sl, zl), (sr, zr), (so, zo) = _q(lhs), _q(rhs), _q(out)
    assert rhs.quant is not None
    if len(set(rhs.quant.scale)) > 1:
        raise unsupported(e.info, op, "has a per-channel right-hand operand; TFLite Micro's BATCH_MATMUL takes one scale")
    mult, shift = quantize_multiplier(float(np.float64(f32(sl) * f32(sr)) / np.float64(f32(so))))
    batch = [max(ld[a], rd[a]) for a in range(3)]

    def triple(values: list[int]) -> str:
        return "{" + ", ".join(str(v) for v in values) + "}"

    return KernelCall(
        op.index,
        "mcuq_batch_matmul",
        [
            ("lhs", operand(e, op, lhs.index, 0)),
            ("rhs", operand(e, op, rhs.index, 1)),
            ("out", e.buf(out.index)),
            ("batch", triple(batch)),
            ("lhs_batch", triple([_extent(ld, a) for a in range(3)])),
            ("rhs_batch", triple([_extent(rd, a) for a in range(3)])),
            ("rows", rows),
            ("cols", cols),
            ("depth", depth),
            ("lhs_row", 1 if adj_x else depth),
            ("lhs_k", rows if adj_x else 1),
            ("rhs_k", 1 if adj_y else cols),
            ("rhs_col", depth if adj_y else 1),
            ("lhs_offset", -zl),
            ("rhs_offset", -zr),
            ("out_offset", zo),
            ("mult", mult),
            ("shift", shift),
        ],
        "mcuq_batch_matmul_params",
    )


LayoutFn = Callable[[Emitter, "OpInfo"], Layout]
LAYOUTS: dict[str, LayoutFn] = {
    "TRANSPOSE": _transpose_layout,
    "STRIDED_SLICE": _strided_slice_layout,
    "RESIZE_NEAREST_NEIGHBOR": _resize_nearest_layout,
}


def byte_layout(e: Emitter, op: OpInfo, layouts: dict[str, LayoutFn] | None = None) -> Layout:
    """The op's layout (from `layouts`, default LAYOUTS) in bytes: an int16 tensor (16x8 models)
    moves as pairs of bytes, the innermost axis doubled, so one int8 gather kernel serves both."""
    dims, tables = (layouts or LAYOUTS)[op.name](e, op)
    size = np.dtype(e.t(op.outputs[0]).dtype).itemsize
    if size == 1:
        return dims, tables
    scaled = [[v * size for v in table] for table in tables]
    scaled[3] = [v + b for v in scaled[3] for b in range(size)]
    return [*dims[:3], dims[3] * size], scaled


def data_move(e: Emitter, op: OpInfo) -> KernelCall:
    """TRANSPOSE, STRIDED_SLICE, RESIZE_NEAREST_NEIGHBOR (int8 or int16): one gather, or an alias."""
    return gather(e, op, byte_layout(e, op))


EXTRA_EMITTERS: dict[str, Callable[[Emitter, OpInfo], KernelCall]] = {
    "TRANSPOSE": data_move,
    "STRIDED_SLICE": data_move,
    "RESIZE_NEAREST_NEIGHBOR": data_move,
    "RESIZE_BILINEAR": _resize_bilinear,
    "HARD_SWISH": _hard_swish,
    "LEAKY_RELU": _leaky_relu,
    "RSQRT": _rsqrt,
    "PRELU": _prelu,
    "SUB": _sub,
    "MAXIMUM": _max_min,
    "MINIMUM": _max_min,
    "REDUCE_MAX": _reduce_max_min,
    "REDUCE_MIN": _reduce_max_min,
    "BATCH_MATMUL": lower_batch_matmul,
}
