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

from collections.abc import Callable

import numpy as np

from mcuq.backends.c.emitter import Emitter, dims_const, operand, quant_of, unsupported
from mcuq.backends.c.ir import BufferRef, KernelCall, Value
from mcuq.backends.c.lower_arith import lower_abs_s16, squared_difference_multipliers
from mcuq.backends.c.lower_elementwise import lower_concat, lower_mean, lower_pad
from mcuq.backends.c.lower_moves import lower_gather_move, lower_split
from mcuq.backends.c.ops_extra import data_move, leaky_relu_multipliers
from mcuq.model.info import ModelInfo, OpInfo, TensorInfo
from mcuq.model.quant_math import activation_range, f32, padding_for, quantize_multiplier, tflite_round

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
BIAS_INT32 = 2  # TensorType INT32 in the options' quantized_bias_type


def has_int16_activation(info: ModelInfo, op: OpInfo) -> bool:
    """An op with an int16 activation among its inputs or outputs runs a 16x8 kernel. The int8
    LSTM's int16 cell state and the int8 SVDF's int16 activation state are not: lower_lstm and
    lower_svdf run them (and check their types)."""
    if op.name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "SVDF"):
        return False
    return any(i >= 0 and not info.tensors[i].is_constant and info.tensors[i].dtype == "int16" for i in (*op.inputs, *op.outputs))


def is_int16_op(e: Emitter, op: OpInfo) -> bool:
    """:func:`has_int16_activation` for the op being lowered."""
    return has_int16_activation(e.info, op)


def buf16(e: Emitter, index: int) -> BufferRef:
    return BufferRef("tensor", index, "int16_t*")


def reduced_multiplier(mult: int) -> int:
    """MultiplyByQuantizedMultiplier(int64_t)'s multiplier rounded to 16 bits."""
    return (mult + (1 << 15)) >> 16 if mult < 0x7FFF0000 else 0x7FFF


def symmetric(e: Emitter, op: OpInfo, *tensors: TensorInfo) -> None:
    for t in tensors:
        if quant_of(t)[1] != 0:
            raise unsupported(e.info, op, f"has int16 tensor '{t.name}' with zero point {quant_of(t)[1]}; TFLite Micro needs 0")


def layer_bias(e: Emitter, op: OpInfo, pos: int) -> tuple[np.ndarray | None, bool]:
    """(bias as int64, whether TFLite Micro accumulates in int64)."""
    if len(op.inputs) <= pos or op.inputs[pos] < 0:
        return None, op.options.get("quantizedBiasType", 0) != BIAS_INT32
    b = e.t(op.inputs[pos])
    if b.data is None:
        raise unsupported(e.info, op, "has a non-constant bias")
    if b.dtype not in ("int32", "int64"):
        raise unsupported(e.info, op, f"has a {b.dtype} bias; 16x8 layers take int64 or int32")
    return np.asarray(b.data).astype(np.int64).reshape(-1), b.dtype == "int64"


def multipliers(e: Emitter, op: OpInfo, reals: list[float], acc64: bool) -> tuple[str, str]:
    mults, shifts = [], []
    for real in reals:
        m, s = quantize_multiplier(real)
        mults.append(reduced_multiplier(m) if acc64 else m)
        shifts.append(s)
    return (
        e.const(f"m{op.index}", "int32_t", np.array(mults, np.int32)),
        e.const(f"s{op.index}", "int8_t", np.array(shifts, np.int8)),
    )


def per_channel_reals(inp: TensorInfo, w: TensorInfo, out: TensorInfo, channels: int) -> list[float]:
    """PopulateConvolutionQuantizationParams: double(float32 in * float32 w) / float32 out."""
    assert w.quant is not None
    scales = list(w.quant.scale) if len(w.quant.scale) > 1 else list(w.quant.scale) * channels
    in_s, out_s = quant_of(inp)[0], quant_of(out)[0]
    return [float(np.float64(np.float32(in_s)) * np.float64(np.float32(s)) / np.float64(np.float32(out_s))) for s in scales[:channels]]


def conv_call(
    e: Emitter, op: OpInfo, geometry: dict[str, int], consts: tuple[str, str, str, str], acc64: bool, function: str = "mcuq_conv_s16"
) -> KernelCall:
    """The kernel call over ``mcuq_conv_s16_params`` (also TRANSPOSE_CONV's, whose data is input 2)."""
    inp, out = e.t(op.inputs[2 if op.name == "TRANSPOSE_CONV" else 0]), e.t(op.outputs[0])
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
    return KernelCall(op.index, function, args, "mcuq_conv_s16_params")


def bias_const(e: Emitter, op: OpInfo, bias: np.ndarray | None) -> str:
    return "0" if bias is None else e.const(f"b{op.index}", "int64_t", bias)


def lower_windowed_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """CONV_2D and DEPTHWISE_CONV_2D with int16 activations (ConvPerChannel /
    DepthwiseConvPerChannel, int16 overloads)."""
    inp, out, w = e.t(op.inputs[0]), e.t(op.outputs[0]), e.t(op.inputs[1])
    symmetric(e, op, inp, out)
    wdata = e.weight_data(op, 1)
    _, ih, iw, ic = inp.shape
    _, oh, ow, oc = out.shape
    o = op.options
    sh, sw, dh, dw = o.get("strideH", 1), o.get("strideW", 1), o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    kh, kw = wdata.shape[1], wdata.shape[2]
    if not depthwise and wdata.shape[3] != ic:
        raise unsupported(e.info, op, "is a grouped convolution")
    bias, acc64 = layer_bias(e, op, 2)
    if depthwise and not acc64:
        raise unsupported(e.info, op, "has an int32 bias; TFLite Micro's 16x8 depthwise convolution takes int64")
    m, s = multipliers(e, op, per_channel_reals(inp, w, out, oc), acc64)
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
    consts = (e.weights(op, 1), bias_const(e, op, bias), m, s)
    return conv_call(e, op, geometry, consts, acc64)


def lower_fully_connected_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """FULLY_CONNECTED with int16 activations (FullyConnected / FullyConnectedPerChannel)."""
    inp, out, w = e.t(op.inputs[0]), e.t(op.outputs[0]), e.t(op.inputs[1])
    symmetric(e, op, inp, out)
    wdata = e.weight_data(op, 1)
    units, depth = wdata.shape
    batches = int(np.prod(inp.shape)) // depth
    bias, acc64 = layer_bias(e, op, 2)
    assert w.quant is not None
    if len(w.quant.scale) > 1:
        reals = per_channel_reals(inp, w, out, units)
    else:
        # GetQuantizedConvolutionMultipler: the product is float32, then double.
        real = float(np.float64(f32(quant_of(inp)[0]) * f32(w.quant.scale[0])) / np.float64(f32(quant_of(out)[0])))
        reals = [real] * units
    m, s = multipliers(e, op, reals, acc64)
    geometry = dict.fromkeys(("in_w", "out_w", "k_h", "k_w", "stride_h", "stride_w", "dil_h", "dil_w", "depth_mult"), 1)
    geometry.update(in_h=batches, in_c=depth, out_h=batches, out_c=units, pad_h=0, pad_w=0, depthwise=0)
    consts = (e.weights(op, 1), bias_const(e, op, bias), m, s)
    return conv_call(e, op, geometry, consts, acc64)


def lower_reshape_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """RESHAPE / EXPAND_DIMS / SQUEEZE: the bytes as they are (the planner usually aliases them)."""
    out = e.t(op.outputs[0])
    return KernelCall(op.index, "mcuq_copy", [("in", e.buf(op.inputs[0])), ("out", e.buf(out.index)), ("n", out.nbytes)])


def lower_pool_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """MAX_POOL_2D / AVERAGE_POOL_2D with int16 activations."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    symmetric(e, op, inp, out)
    _, ih, iw, c = inp.shape
    _, oh, ow, _ = out.shape
    o = op.options
    fh, fw, sh, sw = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
    amin, amax = activation_range(o.get("fusedActivationFunction", 0), quant_of(out)[0], 0, INT16_MIN, INT16_MAX)
    args: list[tuple[str, Value]] = [
        ("in", buf16(e, inp.index)),
        ("out", buf16(e, out.index)),
        *{"in_h": ih, "in_w": iw, "ch": c, "out_h": oh, "out_w": ow, "f_h": fh, "f_w": fw, "stride_h": sh, "stride_w": sw}.items(),
        ("pad_h", padding_for(sh, 1, ih, fh, oh)),
        ("pad_w", padding_for(sw, 1, iw, fw, ow)),
        ("act_min", amin),
        ("act_max", amax),
        ("is_avg", int(op.name == "AVERAGE_POOL_2D")),
    ]
    return KernelCall(op.index, "mcuq_pool_s16", args, "mcuq_pool_s16_params")


def lower_mean_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """MEAN int16: the int8 lowering's constants (the same QuantizedMeanOrSum), int16 buffers."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    symmetric(e, op, inp, out)
    args = dict(lower_mean(e, op).args)
    args.update({"in": buf16(e, inp.index), "out": buf16(e, out.index)})
    order = ("in", "in_dims", "axis_mask", "out", "temp_sum", "mult", "shift")  # the C function's positional order
    return KernelCall(op.index, "mcuq_mean_s16", [(k, args[k]) for k in order])


def _checked_log2(x: float) -> tuple[bool, int]:
    """CheckedLog2 (quantization_util.cc): log2 rounded, and whether x is a power of two."""
    f = np.float32
    log2 = f(f(np.log(f(x))) * f(f(1) / f(np.log(f(2)))))
    rounded = f(np.sign(log2) * np.floor(np.abs(log2) + f(0.5)))
    return bool(abs(f(log2 - rounded)) < f(1e-3)), int(rounded)


def lower_logistic_tanh_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """LOGISTIC / TANH int16 with the (multiplier, left shift) of logistic_common.cc / tanh.cc
    Prepare: 0 and the shift for a power-of-two input scale (TANH also takes shift 1), else the
    input scale times 3 * 4096 doubled until it exceeds 32767 / 2."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    symmetric(e, op, inp, out)
    if _checked_log2(quant_of(out)[0]) != (True, -15):
        raise unsupported(e.info, op, f"has output scale {quant_of(out)[0]}; TFLite Micro's int16 {op.name} needs 2^-15")
    pot, log2 = _checked_log2(quant_of(inp)[0])
    shift = 12 + log2
    if pot and shift in ((0, 1) if op.name == "TANH" else (0,)):
        mult = 0
    else:
        multiplier, shift = float(np.float32(quant_of(inp)[0])) * 4096.0 * 3.0, 0
        while multiplier <= 32767.0 / 2.0 and shift <= 30:
            shift += 1
            multiplier *= 2.0
        mult = int(multiplier)
    return elementwise_call(e, op, "mcuq_tanh_s16" if op.name == "TANH" else "mcuq_logistic_s16", mult, shift)


def elementwise_call(e: Emitter, op: OpInfo, function: str, mult: int, shift: int) -> KernelCall:
    """`function(in, out, n, mult, shift)`: an int16 -> int16 elementwise kernel with one multiplier."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    args: list[tuple[str, Value]] = [
        ("in", buf16(e, inp.index)),
        ("out", buf16(e, out.index)),
        ("n", int(np.prod(out.shape))),
        ("mult", mult),
        ("shift", shift),
    ]
    return KernelCall(op.index, function, args)


def lower_binary_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """ADD and SUB (the general path with left_shift 15, as add_common.cc / sub_common.cc set it
    up for int16), MUL (double(s1) * double(s2) / double(out)), MAXIMUM and MINIMUM (raw values)."""
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    if a.dtype != "int16" or b.dtype != "int16" or out.dtype != "int16":
        raise unsupported(e.info, op, f"mixes {a.dtype}, {b.dtype} and {out.dtype}; the C runtime's 16x8 {op.name} is int16 throughout")
    symmetric(e, op, a, b, out)
    sa, sb, so = (float(f32(quant_of(t)[0])) for t in (a, b, out))
    left_shift = 15
    if op.name in ("MAXIMUM", "MINIMUM"):  # raw values compared (maximum_minimum.cc): no arithmetic
        (ma, sha), (mb, shb), (mo, sho) = (0, 0), (0, 0), (0, 0)
    elif op.name == "MUL":
        (ma, sha), (mb, shb) = (0, 0), (0, 0)
        mo, sho = quantize_multiplier(sa * sb / so)
    else:
        twice_max = 2.0 * max(sa, sb)
        (ma, sha), (mb, shb) = quantize_multiplier(sa / twice_max), quantize_multiplier(sb / twice_max)
        mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), so, 0, INT16_MIN, INT16_MAX)
    kind = {
        "ADD": "MCUQ_S16_ADD",
        "SUB": "MCUQ_S16_SUB",
        "MUL": "MCUQ_S16_MUL",
        "MAXIMUM": "MCUQ_S16_MAX",
        "MINIMUM": "MCUQ_S16_MIN",
        "SQUARED_DIFFERENCE": "MCUQ_S16_SQDIFF",
    }
    scales = (ma, sha, mb, shb, mo, sho, left_shift)
    return binary_call(e, op, operand(e, op, b.index, 1), scales, kind[op.name], (amin, amax))


def binary_call(
    e: Emitter, op: OpInfo, b: Value, scales: tuple[int, int, int, int, int, int, int], kind: str, act: tuple[int, int]
) -> KernelCall:
    """``mcuq_binary_s16`` over inputs 0 and 1; `scales`: a, b and out (multiplier, shift) and
    the left shift; `b` the second operand as the kernel reads it (PRELU: a derived constant)."""
    a, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    names = ("a_mult", "a_shift", "b_mult", "b_shift", "out_mult", "out_shift", "left_shift")
    args: list[tuple[str, Value]] = [
        ("a", operand(e, op, a.index, 0)),
        ("a_dims", dims_const(e, f"da{op.index}", a.shape)),
        ("b", b),
        ("b_dims", dims_const(e, f"db{op.index}", e.t(op.inputs[1]).shape)),
        ("out", buf16(e, out.index)),
        ("out_dims", dims_const(e, f"do{op.index}", out.shape)),
        *zip(names, scales),
        ("kind", kind),
        ("act_min", act[0]),
        ("act_max", act[1]),
    ]
    return KernelCall(op.index, "mcuq_binary_s16", args, "mcuq_binary_s16_params")


def lower_squared_difference_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """The binary call with SQUARED_DIFFERENCE's constants (squared_difference.cc for int16:
    left shift 0, the full int16 range, no fused activation)."""
    call = lower_binary_s16(e, op)  # checks the types and the zero points (0)
    sa, sb, so = (quant_of(e.t(i))[0] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (ma, sha), (mb, shb), (mo, sho) = squared_difference_multipliers(sa, sb, so, 0)
    update = {"a_mult": ma, "a_shift": sha, "b_mult": mb, "b_shift": shb, "out_mult": mo, "out_shift": sho}
    update |= {"left_shift": 0, "act_min": INT16_MIN, "act_max": INT16_MAX}
    call.args = [(k, update.get(k, v)) for k, v in call.args]
    return call


def lower_leaky_relu_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """LEAKY_RELU int16 with the int8 table's two multipliers (ops_extra.leaky_relu_multipliers)."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    symmetric(e, op, inp, out)
    alpha_m, alpha_s, id_m, id_s = leaky_relu_multipliers(quant_of(inp)[0], quant_of(out)[0], float(op.options.get("alpha", 0.2)))
    args: list[tuple[str, Value]] = [
        ("in", buf16(e, inp.index)),
        ("out", buf16(e, out.index)),
        ("n", int(np.prod(out.shape))),
        ("id_mult", id_m),
        ("id_shift", id_s),
        ("alpha_mult", abs(alpha_m)),
        ("alpha_shift", alpha_s),
        ("alpha_negative", int(alpha_m < 0)),
    ]
    return KernelCall(op.index, "mcuq_leaky_relu_s16", args)


def lower_quantize_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """QUANTIZE int8 -> int16, int16 -> int8, int16 -> int16 (reference_ops::Requantize with
    double(in scale) / double(out scale))."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    if {inp.dtype, out.dtype} - {"int8", "int16"}:
        raise unsupported(e.info, op, f"converts {inp.dtype} to {out.dtype}; the C runtime requantizes between int8 and int16")
    (si, zi), (so, zo) = quant_of(inp), quant_of(out)
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    lo, hi = (INT16_MIN, INT16_MAX) if out.dtype == "int16" else (-128, 127)
    return _requantize_s16(e, op, (zi, zo), (mult, shift), (lo, hi))


def _requantize_s16(
    e: Emitter, op: OpInfo, zero_points: tuple[int, int], multiplier: tuple[int, int], clamp: tuple[int, int]
) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    return KernelCall(
        op.index,
        "mcuq_requantize_s16",
        [
            ("in", e.buf(inp.index)),
            ("in_wide", int(inp.dtype == "int16")),
            ("out", e.buf(out.index)),
            ("out_wide", int(out.dtype == "int16")),
            ("n", int(np.prod(out.shape))),
            ("in_zp", zero_points[0]),
            ("out_zp", zero_points[1]),
            ("mult", multiplier[0]),
            ("shift", multiplier[1]),
            ("lo", clamp[0]),
            ("hi", clamp[1]),
        ],
    )


def lower_relu_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """RELU int16 (ReluQuantized: requantized by in/out scale, clamped below at the output's
    zero); RELU6 int16 (a clamp to [0, round(6 / scale)] of the raw values, as int8's)."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    symmetric(e, op, inp, out)
    si, so = quant_of(inp)[0], quant_of(out)[0]
    if op.name == "RELU6":
        six = max(INT16_MIN, min(INT16_MAX, tflite_round(float(f32(6.0) / f32(si)))))
        return _requantize_s16(e, op, (0, 0), (1 << 30, 1), (0, six))
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    return _requantize_s16(e, op, (0, 0), (mult, shift), (0, INT16_MAX))


def _libm() -> tuple[Callable[[float], float], Callable[[float], float]]:
    """expf and roundf of the C library: the functions TFLite Micro's x86 build calls when it
    fills its softmax tables (numpy's float32 exp may differ from glibc's in the last bit)."""
    import ctypes
    import ctypes.util

    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("expf", "roundf"):
        getattr(libm, name).restype = ctypes.c_float
        getattr(libm, name).argtypes = [ctypes.c_float]
    return libm.expf, libm.roundf


def lut_populate_int16(
    transform: Callable[[np.float32], np.float32], in_scale: np.float32, in_zp: int, out_scale: np.float32
) -> np.ndarray:
    """LUTPopulateInt16<float> (kernels/internal/common.h) step for step in float32: 512
    segments plus the end point, each sample biased by half its midpoint interpolation error."""
    _, roundf = _libm()
    f = np.float32
    rnd = lambda x: f(roundf(float(x)))  # noqa: E731
    in_min, in_max = f(in_scale * f(INT16_MIN - in_zp)), f(in_scale * f(INT16_MAX - in_zp))
    out_min, out_max = f(out_scale * f(INT16_MIN)), f(out_scale * f(INT16_MAX))
    step = f(f(in_max - in_min) / f(512))
    half = f(step / f(2))
    inv = f(f(65536) / f(out_max - out_min))
    lut = np.zeros(513, np.int16)
    for i in range(512):
        val = transform(f(in_min + f(f(i) * step)))
        mid = transform(f(f(in_min + f(f(i) * step)) + half))
        nxt = transform(f(in_min + f(f(i + 1) * step)))
        sample = rnd(f(val * inv))
        interp = rnd(f(f(f(nxt * inv) + rnd(f(val * inv))) / f(2)))
        bias = rnd(f(f(interp - rnd(f(mid * inv))) / f(2)))
        lut[i] = int(min(max(f(sample - bias), f(INT16_MIN)), f(INT16_MAX)))
    lut[512] = int(min(max(rnd(f(transform(in_max) * inv)), f(INT16_MIN)), f(INT16_MAX)))
    return lut


def softmax_luts() -> tuple[np.ndarray, np.ndarray]:
    """The two tables softmax_common.cc fills (the same for every model): exp on [-10, 0] and
    1 / (1 + x) on [0, 1]."""
    expf, _ = _libm()
    f = np.float32
    span = f(INT16_MAX - INT16_MIN)
    exp_lut = lut_populate_int16(lambda v: f(expf(float(v))), f(f(10) / span), INT16_MAX, f(f(2) / span))
    recip_lut = lut_populate_int16(lambda v: f(f(1) / f(f(1) + v)), f(f(1) / span), INT16_MIN, f(f(2) / span))
    return exp_lut, recip_lut


def lower_softmax_s16(e: Emitter, op: OpInfo) -> KernelCall:
    """SOFTMAX int16 -> int16 with the multiplier CalculateSoftmaxParams computes:
    double(in scale) * double(beta) / (10 / 65535)."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    if inp.dtype != "int16" or out.dtype != "int16":
        raise unsupported(e.info, op, f"maps {inp.dtype} to {out.dtype}; the C runtime's 16x8 SOFTMAX is int16 -> int16")
    symmetric(e, op, inp, out)
    beta = float(np.float32(op.options.get("beta", 1.0)))
    mult, shift = quantize_multiplier(float(f32(quant_of(inp)[0])) * beta / (10.0 / 65535.0))
    exp_lut, recip_lut = softmax_luts()
    depth = inp.shape[-1]
    return KernelCall(
        op.index,
        "mcuq_softmax_s16",
        [
            ("in", buf16(e, inp.index)),
            ("out", buf16(e, out.index)),
            ("outer", int(np.prod(inp.shape)) // depth),
            ("depth", depth),
            ("mult", mult),
            ("shift", shift),
            ("exp_lut", e.shared_const("softmax_exp_lut", "int16_t", exp_lut)),
            ("recip_lut", e.shared_const("softmax_recip_lut", "int16_t", recip_lut)),
        ],
    )


INT16_EMITTERS = {
    "LOGISTIC": lower_logistic_tanh_s16,
    "TANH": lower_logistic_tanh_s16,
    "MEAN": lower_mean_s16,
    "SUM": lower_mean_s16,  # the same kernel, the multiplier without 1/N
    "ABS": lower_abs_s16,
    "SQUARED_DIFFERENCE": lower_squared_difference_s16,
    "CONCATENATION": lower_concat,  # bytes moved: the int8 lowering serves
    "SPLIT": lower_split,  # bytes moved: the int8 lowering serves
    "UNPACK": lower_split,
    "SPLIT_V": lower_split,
    "PACK": lower_concat,
    "SLICE": lower_gather_move,
    "REVERSE_V2": lower_gather_move,
    "PAD": lower_pad,  # zero padding as bytes
    "PADV2": lower_pad,
    "TRANSPOSE": data_move,  # bytes moved: the int8 gather serves, in pairs of bytes
    "STRIDED_SLICE": data_move,
    "RESIZE_NEAREST_NEIGHBOR": data_move,
    "MAX_POOL_2D": lower_pool_s16,
    "AVERAGE_POOL_2D": lower_pool_s16,
    "SOFTMAX": lower_softmax_s16,
    "ADD": lower_binary_s16,
    "SUB": lower_binary_s16,
    "MUL": lower_binary_s16,
    "MAXIMUM": lower_binary_s16,
    "LEAKY_RELU": lower_leaky_relu_s16,
    "RELU": lower_relu_s16,
    "RELU6": lower_relu_s16,
    "MINIMUM": lower_binary_s16,
    "QUANTIZE": lower_quantize_s16,
    "RESHAPE": lower_reshape_s16,
    "EXPAND_DIMS": lower_reshape_s16,
    "SQUEEZE": lower_reshape_s16,
    "CONV_2D": lower_windowed_s16,
    "DEPTHWISE_CONV_2D": lower_windowed_s16,
    "FULLY_CONNECTED": lower_fully_connected_s16,
}
