"""Plain-C lowering of ABS and SQUARED_DIFFERENCE, int8 and 16x8, with TFLite Micro's constants
(elementwise.cc, squared_difference.cc); SUM is lower_elementwise.lower_mean without the 1/N.
The 16x8 SQUARED_DIFFERENCE is lower_int16's binary call with this module's multipliers.

Why the shapes of these lowerings:
- int8 ABS is evaluated here for all 256 inputs (AbsEvalQuantized) and runs as a 256-byte
  table, like ops_extra's activations; int16 ABS is one small loop (`mcuq_abs_s16`).
- SQUARED_DIFFERENCE takes ADD's arguments (the same input scaling: left shift 7 for int8, 0
  for int16, multipliers of s / (2 max s)); only the last step differs: the raw difference
  squared in int32 times an output multiplier of (2 max s)^2 / (2^(2 left shift) s_out). int8
  runs its own loop (`mcuq_squared_difference`: a branch in ADD's element step would stop gcc
  inlining it), int16 one more kind of `mcuq_binary_s16`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcuq.backends.c.emitter import Emitter, binary_operands, quant_of, unsupported
from mcuq.backends.c.ir import BufferRef, KernelCall, Value
from mcuq.backends.c.ops_extra import lut_call, mbqm
from mcuq.model.info import OpInfo
from mcuq.model.quant_math import f32, quantize_multiplier


def abs_multiplier(in_scale: float, out_scale: float) -> tuple[bool, int, int]:
    """(rescale, multiplier, shift): SetAbsOutputMultiplier divides in float32, then widens."""
    si, so = f32(in_scale), f32(out_scale)
    if si == so:
        return False, 0, 0
    mult, shift = quantize_multiplier(float(si / so))  # np.float32 / np.float32: a float32 quotient
    return True, mult, shift


def abs_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """AbsEvalQuantized<int8_t> for inputs -128..127."""
    rescale, mult, shift = abs_multiplier(in_scale, out_scale)
    values = []
    for q in range(-128, 128):
        v = abs(q - in_zp)
        v = mbqm(v, mult, shift) if rescale else v
        values.append(max(-128, min(127, v + out_zp)))
    return np.array(values, np.int8)


def lower_abs(e: Emitter, op: OpInfo) -> KernelCall:
    (si, zi), (so, zo) = quant_of(e.t(op.inputs[0])), quant_of(e.t(op.outputs[0]))
    return lut_call(e, op, abs_table(si, zi, so, zo))


def lower_abs_s16(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    (si, zi), (so, zo) = quant_of(inp), quant_of(out)
    if zi or zo or inp.dtype != out.dtype:
        raise unsupported(e.info, op, f"has zero points {zi} and {zo} or mixed types; TFLite Micro's int16 ABS needs 0 and int16 -> int16")
    rescale, mult, shift = abs_multiplier(si, so)
    args: list[tuple[str, Value]] = [
        ("in", BufferRef("tensor", inp.index, "int16_t*")),
        ("out", BufferRef("tensor", out.index, "int16_t*")),
        ("n", int(np.prod(inp.shape))),
    ]
    return KernelCall(op.index, "mcuq_abs_s16", [*args, ("rescale", int(rescale)), ("mult", mult), ("shift", shift)])


def squared_difference_multipliers(sa: float, sb: float, so: float, left_shift: int) -> list[tuple[int, int]]:
    """PrepareQuantized (squared_difference.cc): doubles from the float scales; the output's
    denominator (1 << 2 left_shift) * s_out is a float product."""
    twice_max = 2.0 * float(max(f32(sa), f32(sb)))
    out_real = twice_max * twice_max / float(f32(1 << (2 * left_shift)) * f32(so))
    return [quantize_multiplier(float(f32(sa)) / twice_max), quantize_multiplier(float(f32(sb)) / twice_max), quantize_multiplier(out_real)]


def lower_squared_difference(e: Emitter, op: OpInfo) -> KernelCall:
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    (sa, za), (sb, zb), (so, zo) = quant_of(a), quant_of(b), quant_of(out)
    (ma, sha), (mb, shb), (mo, sho) = squared_difference_multipliers(sa, sb, so, 7)
    args: list[tuple[str, Value]] = [*binary_operands(e, op), ("a_offset", -za), ("a_mult", ma), ("a_shift", sha)]
    args += [("b_offset", -zb), ("b_mult", mb), ("b_shift", shb), ("left_shift", 7), ("out_offset", zo)]
    args += [("out_mult", mo), ("out_shift", sho), ("act_min", -128), ("act_max", 127)]
    return KernelCall(op.index, "mcuq_squared_difference", args)


ARITH_EMITTERS: dict[str, Callable[[Emitter, OpInfo], KernelCall]] = {"ABS": lower_abs, "SQUARED_DIFFERENCE": lower_squared_difference}
