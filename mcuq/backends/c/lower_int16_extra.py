"""Lowering of the 16x8 ops beyond the CNN set: TRANSPOSE_CONV, PRELU, RSQRT and BATCH_MATMUL
with int16 activations, onto ``mcuq_kernels_s16.c`` with the constants TFLite Micro's Prepare
computes.

Why the shapes of these lowerings:
- Each reuses its int8 lowering's shape logic (transpose_conv_geometry, lower_batch_matmul) or
  a 16x8 kernel that exists (PRELU is a kind of ``mcuq_binary_s16``, TRANSPOSE_CONV takes
  ``mcuq_conv_s16_params``): only the arithmetic that differs is new.
- TFLite Micro sums 16x8 TRANSPOSE_CONV and BATCH_MATMUL in int64 and requantizes with
  MultiplyByQuantizedMultiplier(int64_t), whose 16-bit reduced multiplier is computed here.
- PRELU's alpha is a constant: it is stored as int16 with its zero point already subtracted, so
  the kernel's second operand is `alpha_value` of reference_ops::BroadcastPrelu4DSlow.
- RSQRT has no table (65,536 int16 inputs): the kernel runs TFLite's Newton-Raphson inverse
  square root per element.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mcuq.backends.c.emitter import Emitter, quant_of, unsupported
from mcuq.backends.c.ir import KernelCall
from mcuq.backends.c.lower_int16 import (
    INT16_MAX,
    INT16_MIN,
    bias_const,
    binary_call,
    buf16,
    conv_call,
    elementwise_call,
    layer_bias,
    multipliers,
    per_channel_reals,
    reduced_multiplier,
    symmetric,
)
from mcuq.backends.c.lower_windowed import transpose_conv_geometry
from mcuq.backends.c.ops_extra import lower_batch_matmul, prelu_multipliers
from mcuq.model.info import OpInfo
from mcuq.model.quant_math import f32, quantize_multiplier


def _all_int16(e: Emitter, op: OpInfo, positions: tuple[int, ...]) -> None:
    tensors = [e.t(op.inputs[p]) for p in positions] + [e.t(op.outputs[0])]
    if any(t.dtype != "int16" for t in tensors):
        kinds = ", ".join(t.dtype for t in tensors)
        raise unsupported(e.info, op, f"has {kinds} operands; the C runtime's 16x8 {op.name} takes int16 activations")
    symmetric(e, op, *tensors)


def lower_transpose_conv_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """TRANSPOSE_CONV (reference_integer_ops::TransposeConv, int16): int64 sums and bias, the
    per-channel multipliers of PopulateConvolutionQuantizationParams."""
    _all_int16(e, op, (2,))
    w, inp, out = e.t(op.inputs[1]), e.t(op.inputs[2]), e.t(op.outputs[0])
    e.weight_data(op, 1)  # refuses non-constant weights
    bias, acc64 = layer_bias(e, op, 3)
    if bias is not None and not acc64:
        raise unsupported(
            e.info,
            op,
            "has an int32 bias; TFLite Micro's 16x8 TRANSPOSE_CONV reads its bias as int64; convert with int64 biases (the 16x8 default)",
        )
    geometry = transpose_conv_geometry(e, op)
    m, s = multipliers(e, op, per_channel_reals(inp, w, out, geometry["out_c"]), True)
    geometry.update(dil_h=1, dil_w=1, depth_mult=1, depthwise=0)
    consts = (e.weights(op, 1), bias_const(e, op, bias), m, s)
    return conv_call(e, op, geometry, consts, True, function="mcuq_transpose_conv_s16")


def lower_prelu_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """PRELU int16 with an int8 alpha (prelu_common.cc's two multipliers, as doubles)."""
    inp, alpha, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    if alpha.dtype != "int8" or alpha.data is None:
        raise unsupported(e.info, op, "has a non-constant or non-int8 alpha; the C runtime's 16x8 PRELU takes a constant int8 alpha")
    _all_int16(e, op, (0,))
    assert alpha.quant is not None
    if len(set(alpha.quant.scale)) > 1:
        raise unsupported(e.info, op, "has per-channel alpha scales; the C runtime's PRELU takes one")
    m1, s1, m2, s2 = prelu_multipliers(quant_of(inp)[0], quant_of(alpha)[0], quant_of(out)[0])
    za = quant_of(alpha)[1]
    values = np.asarray(alpha.data).astype(np.int16).reshape(-1) - np.int16(za)
    b = e.const(f"k{op.index}_1", "int16_t", values.astype(np.int16), flash=False)
    return binary_call(e, op, b, (m1, s1, 0, 0, m2, s2, 0), "MCUQ_S16_PRELU", (INT16_MIN, INT16_MAX))


def lower_rsqrt_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """RSQRT int16 (RsqrtEvalQuantized) with SetRsqrtOutputMultiplier's 1 / (sqrt(in) * out)."""
    _all_int16(e, op, (0,))
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    mult, shift = quantize_multiplier(1.0 / (math.sqrt(float(f32(quant_of(inp)[0]))) * float(f32(quant_of(out)[0]))))
    return elementwise_call(e, op, "mcuq_rsqrt_s16", mult, shift)


def lower_batch_matmul_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """BATCH_MATMUL of two int16 operands (BatchMatMul<int16_t, int64_t>): the int8 lowering's
    strides and multiplier, the multiplier reduced to 16 bits for the int64 requantization."""
    _all_int16(e, op, (0, 1))
    args = dict(lower_batch_matmul(e, op).args)
    mult = args["mult"]
    assert isinstance(mult, int)
    args.update({"out": buf16(e, op.outputs[0]), "mult": reduced_multiplier(mult)})
    return KernelCall(op.index, "mcuq_batch_matmul_s16", list(args.items()), "mcuq_batch_matmul_s16_params")


INT16_EXTRA_EMITTERS: dict[str, Callable[[Emitter, OpInfo], KernelCall]] = {
    "TRANSPOSE_CONV": lower_transpose_conv_s16,
    "PRELU": lower_prelu_s16,
    "RSQRT": lower_rsqrt_s16,
    "BATCH_MATMUL": lower_batch_matmul_s16,
}
