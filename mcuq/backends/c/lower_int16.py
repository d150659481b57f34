"""Lowering of 16x8 layers (int16 activations, int8 weights, int64 or int32 biases) onto the
kernels of ``mcuq_kernels_s16.c``, with the constants TFLite Micro's Prepare computes.

Why the shapes of these lowerings:
- int16 activations are symmetric (zero point 0): no zero-point folding, the weights keep
  TFLite's own order, padding taps add nothing.
- TFLite Micro picks the accumulator by the bias type: an int64 bias means an int64 sum and
  MultiplyByQuantizedMultiplier(int64_t), whose 16-bit "reduced" multiplier is computed here;
  an int32 bias means a wrapping int32 sum and the 32-bit multiplier. ``acc64`` tells the kernel.
- FULLY_CONNECTED is the convolution kernel with a 1x1 window over `batches` rows.
"""

from __future__ import annotations

import numpy as np

from mcuq.backends.c.emitter import Emitter, quant_of, unsupported
from mcuq.backends.c.ir import BufferRef, KernelCall, Value
from mcuq.model.info import OpInfo, TensorInfo
from mcuq.model.quant_math import activation_range, f32, padding_for, quantize_multiplier

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
BIAS_INT32 = 2  # TensorType INT32 in the options' quantized_bias_type


def is_int16_op(e: Emitter, op: OpInfo) -> bool:
    """An op with an int16 activation among its inputs or outputs runs a 16x8 kernel."""
    return any(i >= 0 and not e.t(i).is_constant and e.t(i).dtype == "int16" for i in (*op.inputs, *op.outputs))


def buf16(e: Emitter, index: int) -> BufferRef:
    return BufferRef("tensor", index, "int16_t*")


def reduced_multiplier(mult: int) -> int:
    """MultiplyByQuantizedMultiplier(int64_t)'s multiplier rounded to 16 bits."""
    return (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF


def _symmetric(e: Emitter, op: OpInfo, *tensors: TensorInfo) -> None:
    for t in tensors:
        if quant_of(t)[1] != 0:
            raise unsupported(e.info, op, f"has int16 tensor '{t.name}' with zero point {quant_of(t)[1]}; TFLite Micro needs 0")


def _bias(e: Emitter, op: OpInfo, pos: int) -> tuple[np.ndarray | None, bool]:
    """(bias as int64, whether TFLite Micro accumulates in int64)."""
    if len(op.inputs) <= pos or op.inputs[pos] < 0:
        return None, op.options.get("quantizedBiasType", 0) != BIAS_INT32
    b = e.t(op.inputs[pos])
    if b.data is None:
        raise unsupported(e.info, op, "has a non-constant bias")
    if b.dtype not in ("int32", "int64"):
        raise unsupported(e.info, op, f"has a {b.dtype} bias; 16x8 layers take int64 or int32")
    return np.asarray(b.data).astype(np.int64).reshape(-1), b.dtype == "int64"


def _multipliers(e: Emitter, op: OpInfo, reals: list[float], acc64: bool) -> tuple[str, str]:
    mults, shifts = [], []
    for real in reals:
        m, s = quantize_multiplier(real)
        mults.append(reduced_multiplier(m) if acc64 else m)
        shifts.append(s)
    return (
        e.const(f"m{op.index}", "int32_t", np.array(mults, np.int32)),
        e.const(f"s{op.index}", "int8_t", np.array(shifts, np.int8)),
    )


def _per_channel_reals(inp: TensorInfo, w: TensorInfo, out: TensorInfo, channels: int) -> list[float]:
    """PopulateConvolutionQuantizationParams: double(float32 in * float32 w) / float32 out."""
    assert w.quant is not None
    scales = list(w.quant.scale) if len(w.quant.scale) > 1 else list(w.quant.scale) * channels
    in_s, out_s = quant_of(inp)[0], quant_of(out)[0]
    return [float(np.float64(np.float32(in_s)) * np.float64(np.float32(s)) / np.float64(np.float32(out_s))) for s in scales[:channels]]


def _call(e: Emitter, op: OpInfo, geometry: dict[str, int], consts: tuple[str, str, str, str], acc64: bool) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), quant_of(out)[0], 0, INT16_MIN, INT16_MAX)
    filt, bias, m, s = consts
    args: list[tuple[str, Value]] = [
        ("in", buf16(e, inp.index)),
        ("out", buf16(e, out.index)),
        ("filter", filt),
        ("bias", bias),
        ("mult", m),
        ("shift", s),
        *geometry.items(),
        ("act_min", amin),
        ("act_max", amax),
        ("acc64", int(acc64)),
    ]
    return KernelCall(op.index, "mcuq_conv_s16", args, "mcuq_conv_s16_params")


def _bias_const(e: Emitter, op: OpInfo, bias: np.ndarray | None) -> str:
    return "0" if bias is None else e.const(f"b{op.index}", "int64_t", bias)


def lower_windowed_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """CONV_2D and DEPTHWISE_CONV_2D with int16 activations (ConvPerChannel /
    DepthwiseConvPerChannel, int16 overloads)."""
    inp, out, w = e.t(op.inputs[0]), e.t(op.outputs[0]), e.t(op.inputs[1])
    _symmetric(e, op, inp, out)
    wdata = e.weight_data(op, 1)
    _, ih, iw, ic = inp.shape
    _, oh, ow, oc = out.shape
    o = op.options
    sh, sw, dh, dw = o.get("strideH", 1), o.get("strideW", 1), o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    kh, kw = wdata.shape[1], wdata.shape[2]
    if not depthwise and wdata.shape[3] != ic:
        raise unsupported(e.info, op, "is a grouped convolution")
    bias, acc64 = _bias(e, op, 2)
    if depthwise and not acc64:
        raise unsupported(e.info, op, "has an int32 bias; TFLite Micro's 16x8 depthwise convolution takes int64")
    m, s = _multipliers(e, op, _per_channel_reals(inp, w, out, oc), acc64)
    geometry = {
        "in_h": ih,
        "in_w": iw,
        "in_c": ic,
        "out_h": oh,
        "out_w": ow,
        "out_c": oc,
        "k_h": kh,
        "k_w": kw,
        "stride_h": sh,
        "stride_w": sw,
        "dil_h": dh,
        "dil_w": dw,
        "pad_h": padding_for(sh, dh, ih, kh, oh),
        "pad_w": padding_for(sw, dw, iw, kw, ow),
        "depth_mult": oc // ic if depthwise else 1,
        "depthwise": int(depthwise),
    }
    consts = (e.weights(op, 1), _bias_const(e, op, bias), m, s)
    return _call(e, op, geometry, consts, acc64)


def lower_fully_connected_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """FULLY_CONNECTED with int16 activations (FullyConnected / FullyConnectedPerChannel)."""
    inp, out, w = e.t(op.inputs[0]), e.t(op.outputs[0]), e.t(op.inputs[1])
    _symmetric(e, op, inp, out)
    wdata = e.weight_data(op, 1)
    units, depth = wdata.shape
    batches = int(np.prod(inp.shape)) // depth
    bias, acc64 = _bias(e, op, 2)
    assert w.quant is not None
    if len(w.quant.scale) > 1:
        reals = _per_channel_reals(inp, w, out, units)
    else:
        # GetQuantizedConvolutionMultipler: the product is float32, then double.
        real = float(np.float64(f32(quant_of(inp)[0]) * f32(w.quant.scale[0])) / np.float64(f32(quant_of(out)[0])))
        reals = [real] * units
    m, s = _multipliers(e, op, reals, acc64)
    geometry = dict.fromkeys(("in_w", "out_w", "k_h", "k_w", "stride_h", "stride_w", "dil_h", "dil_w", "depth_mult"), 1)
    geometry.update(in_h=batches, in_c=depth, out_h=batches, out_c=units, pad_h=0, pad_w=0, depthwise=0)
    consts = (e.weights(op, 1), _bias_const(e, op, bias), m, s)
    return _call(e, op, geometry, consts, acc64)


def lower_reshape_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """RESHAPE / EXPAND_DIMS / SQUEEZE: the bytes as they are (the planner usually aliases them)."""
    out = e.t(op.outputs[0])
    return KernelCall(op.index, "mcuq_copy", [("in", e.buf(op.inputs[0])), ("out", e.buf(out.index)), ("n", out.nbytes)])


INT16_EMITTERS = {
    "RESHAPE": lower_reshape_s16,
    "EXPAND_DIMS": lower_reshape_s16,
    "SQUEEZE": lower_reshape_s16,
    "CONV_2D": lower_windowed_s16,
    "DEPTHWISE_CONV_2D": lower_windowed_s16,
    "FULLY_CONNECTED": lower_fully_connected_s16,
}
