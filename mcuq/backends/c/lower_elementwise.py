"""Lowering of the elementwise, activation and data-moving ops (ADD, MUL, SOFTMAX, LOGISTIC,
TANH, RELU, QUANTIZE, CONCATENATION, PACK, PAD, MEAN, SUM, RESHAPE), with TFLite Micro's arithmetic."""

from __future__ import annotations

import math

import numpy as np

from mcuq.backends.c.emitter import Emitter, binary_operands, dims4, dims_const, operand, quant_of, unsupported
from mcuq.backends.c.ir import BufferRef, KernelCall, PointerList
from mcuq.model.info import OpInfo
from mcuq.model.quant_math import (
    INT8_MAX,
    INT8_MIN,
    activation_range,
    calculate_input_radius,
    f32,
    quantize_multiplier,
    tflite_round,
)


def lower_add(e: Emitter, op: OpInfo) -> KernelCall:
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    (sa, za), (sb, zb), (so, zo) = quant_of(a), quant_of(b), quant_of(out)
    left_shift = 20
    twice_max = 2.0 * float(max(f32(sa), f32(sb)))
    ma, sha = quantize_multiplier(float(f32(sa)) / twice_max)
    mb, shb = quantize_multiplier(float(f32(sb)) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * float(f32(so))))
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), so, zo)
    return KernelCall(
        op.index,
        "mcuq_add",
        [
            *binary_operands(e, op),
            ("a_offset", -za),
            ("a_mult", ma),
            ("a_shift", sha),
            ("b_offset", -zb),
            ("b_mult", mb),
            ("b_shift", shb),
            ("left_shift", left_shift),
            ("out_offset", zo),
            ("out_mult", mo),
            ("out_shift", sho),
            ("act_min", amin),
            ("act_max", amax),
        ],
    )


def lower_mul(e: Emitter, op: OpInfo) -> KernelCall:
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    (sa, za), (sb, zb), (so, zo) = quant_of(a), quant_of(b), quant_of(out)
    mo, sho = quantize_multiplier(float(f32(sa)) * float(f32(sb)) / float(f32(so)))
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), so, zo)
    return KernelCall(
        op.index,
        "mcuq_mul",
        [
            *binary_operands(e, op),
            ("a_offset", -za),
            ("b_offset", -zb),
            ("out_offset", zo),
            ("out_mult", mo),
            ("out_shift", sho),
            ("act_min", amin),
            ("act_max", amax),
        ],
    )


def lower_reshape(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    return KernelCall(op.index, "mcuq_copy", [("in", e.buf(inp.index)), ("out", e.buf(out.index)), ("n", int(np.prod(out.shape)))])


def lower_softmax(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    in_scale, _ = quant_of(inp)
    beta = float(op.options.get("beta", 1.0))
    real = min(beta * float(f32(in_scale)) * (1 << (31 - 5)), float((1 << 31) - 1))
    mult, shift = quantize_multiplier(real)
    diff_min = -calculate_input_radius(5, shift)
    depth = inp.shape[-1]
    return KernelCall(
        op.index,
        "mcuq_softmax",
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("outer", int(np.prod(inp.shape)) // depth),
            ("depth", depth),
            ("in_mult", mult),
            ("in_left_shift", shift),
            ("diff_min", diff_min),
        ],
    )


def lower_logistic_tanh(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    in_scale, izp = quant_of(inp)
    real = float(f32(in_scale)) * float(1 << (31 - 4))
    q, left_shift = math.frexp(real)
    mult = tflite_round(q * (1 << 31))
    radius = calculate_input_radius(4, left_shift, 31)
    fn = "mcuq_logistic" if op.name == "LOGISTIC" else "mcuq_tanh"
    return KernelCall(
        op.index,
        fn,
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("n", int(np.prod(inp.shape))),
            ("in_zp", izp),
            ("range_radius", radius),
            ("in_mult", mult),
            ("in_left_shift", left_shift),
        ],
    )


def lower_requantize(e: Emitter, op: OpInfo, zps: tuple[int, int], mult: int, shift: int, lo: int, hi: int) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    return KernelCall(
        op.index,
        "mcuq_requantize",
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("n", int(np.prod(inp.shape))),
            ("in_zp", zps[0]),
            ("out_zp", zps[1]),
            ("mult", mult),
            ("shift", shift),
            ("act_min", lo),
            ("act_max", hi),
        ],
    )


def lower_relu(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    (si, zi), (so, zo) = quant_of(inp), quant_of(out)
    if op.name == "RELU6":
        six = max(INT8_MIN, min(INT8_MAX, tflite_round(float(f32(6.0) / f32(si))) + zi))
        return lower_requantize(e, op, (0, 0), 1 << 30, 1, zi, six)
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    amin = max(INT8_MIN, zo + tflite_round(float(f32(0.0) / f32(so))))
    return lower_requantize(e, op, (zi, zo), mult, shift, amin, INT8_MAX)


def lower_quantize(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    if inp.dtype != "int8" or out.dtype != "int8":
        raise unsupported(e.info, op, f"converts {inp.dtype} to {out.dtype}; the C runtime only requantizes int8 (deploy with --io int8)")
    (si, zi), (so, zo) = quant_of(inp), quant_of(out)
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    return lower_requantize(e, op, (zi, zo), mult, shift, INT8_MIN, INT8_MAX)


def lower_concat(e: Emitter, op: OpInfo) -> KernelCall:
    """CONCATENATION (and PACK) of tensors of one quantization, bytes copied (an int16 tensor of a 16x8
    model moves as 2-byte elements), or nothing when the planner wrote every input in place."""
    out = e.t(op.outputs[0])
    ins = [e.t(i) for i in op.inputs]
    if any(quant_of(t) != quant_of(out) or t.dtype != out.dtype for t in ins):
        raise unsupported(e.info, op, "concatenates tensors of different types or scales; TFLite Micro requires equal quantization")
    size = np.dtype(out.dtype).itemsize
    if size > 1 and any(t.is_constant for t in ins):
        raise unsupported(e.info, op, f"concatenates a constant {out.dtype} tensor; the C runtime concatenates 16-bit activations only")
    axis = op.options.get("axis", -1) % len(out.shape)
    outer = int(np.prod(out.shape[:axis])) if axis else 1
    inner = int(np.prod(out.shape[axis + 1 :])) * size
    # PACK is a concatenation along a new axis: each input is one step of it
    steps = [1] * len(ins) if op.name == "PACK" else [t.shape[axis] for t in ins]
    plan = e.program.plan
    if plan is not None and not any(t.is_constant for t in ins):
        starts = np.cumsum([0] + [t.nbytes for t in ins])[:-1]
        if outer == 1 and all(plan.tensor_offset[t.index] == plan.tensor_offset[out.index] + int(s) for t, s in zip(ins, starts)):
            # every input was written in place inside the output (planner: concat_members)
            return KernelCall(op.index, "mcuq_copy", [("in", e.buf(out.index)), ("out", e.buf(out.index)), ("n", 0)])
    # byte pointers: a constant input (int8 only, above) as its array, an activation as its place
    pointers = PointerList(
        f"ins{op.index}", tuple(operand(e, op, t.index, k) if t.is_constant else e.buf(t.index) for k, t in enumerate(ins))
    )
    sizes = e.const(f"ax{op.index}", "mcuq_dim", np.array(steps, np.int32), flash=False)
    return KernelCall(
        op.index,
        "mcuq_concat",
        [("ins", pointers), ("axis_sizes", sizes), ("count", len(ins)), ("out", e.buf(out.index)), ("outer", outer), ("inner", inner)],
    )


def lower_pad(e: Emitter, op: OpInfo) -> KernelCall:
    """PAD / PADV2 with the output's zero point (or PADV2's constant). An int16 tensor (16x8:
    zero point 0) is padded as bytes, its innermost axis doubled: the padding bytes are 0 0."""
    inp, pads, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    assert pads.data is not None
    before = [int(p[0]) for p in pads.data.reshape(-1, 2)]
    before = [0] * (4 - len(before)) + before
    value = quant_of(out)[1]
    if op.name == "PADV2" and len(op.inputs) > 2 and e.t(op.inputs[2]).data is not None:
        value = int(e.t(op.inputs[2]).data.reshape(-1)[0])  # type: ignore[union-attr]
    size = np.dtype(out.dtype).itemsize
    if size > 1 and value != 0:
        raise unsupported(
            e.info,
            op,
            f"pads a {out.dtype} tensor with {value}; the C runtime pads 16-bit tensors with 0 only; use --runtime tflm on a 32-bit board",
        )
    before[3] *= size

    def in_bytes(shape: tuple[int, ...]) -> tuple[int, ...]:
        d = dims4(shape)
        return (d[0], d[1], d[2], d[3] * size)

    return KernelCall(
        op.index,
        "mcuq_pad",
        [
            ("in", e.buf(inp.index)),
            ("in_dims", dims_const(e, f"di{op.index}", in_bytes(inp.shape))),
            ("out", e.buf(out.index)),
            ("out_dims", dims_const(e, f"do{op.index}", in_bytes(out.shape))),
            ("before", e.const(f"pb{op.index}", "mcuq_dim", np.array(before, np.int32), flash=False)),
            ("pad_value", value),
        ],
    )


def lower_mean(e: Emitter, op: OpInfo) -> KernelCall:
    """MEAN and SUM (TFLite Micro's QuantizedMeanOrSum for both) over up to 4 axes."""
    inp, axes, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    assert axes.data is not None
    rank = len(inp.shape)
    offset = 4 - rank
    mask = 0
    for a in axes.data.reshape(-1):
        mask |= 1 << (int(a) % rank + offset)
    (si, zi), (so, zo) = quant_of(inp), quant_of(out)
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    n = int(np.prod([dims4(inp.shape)[d] for d in range(4) if mask & (1 << d)]))
    if op.name == "MEAN":  # SUM is QuantizedMeanOrSum with compute_sum: no 1/N
        # QuantizedMeanOrSum folds 1/N into the multiplier with a bounded extra shift.
        extra = min(63 - (64 - n.bit_length()) if n > 0 else 0, 32, 31 + shift)
        mult = int((mult << extra) // n)
        shift -= extra
    return KernelCall(
        op.index,
        "mcuq_mean",
        [
            ("in", e.buf(inp.index)),
            ("in_dims", dims_const(e, f"di{op.index}", inp.shape)),
            ("axis_mask", mask),
            ("out", e.buf(out.index)),
            ("temp_sum", BufferRef("scratch", op.index, "int32_t*")),
            ("in_zp", zi),
            ("out_zp", zo),
            ("mult", mult),
            ("shift", shift),
        ],
    )
