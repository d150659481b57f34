"""Plain-C int8 backend: the model compiled to straight C calls over one static buffer.

Every op becomes one call into ``mcuq_kernels.c`` with its constants (weights, biases,
per-channel multipliers and shifts) computed here exactly as TFLite Micro computes them in
Prepare, so the C output is bit-exact with the x86 TFLite Micro. Activations share one
buffer laid out by ``planner``. An op outside the supported set is an error naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mcuq.backends.base import FitReport
from mcuq.backends.c.planner import Buffer, MemoryPlan, plan_memory
from mcuq.common.errors import UnsupportedOpError
from mcuq.model.info import ModelInfo, OpInfo, TensorInfo
from mcuq.model.quant_math import (
    INT8_MAX,
    INT8_MIN,
    activation_range,
    calculate_input_radius,
    f32,
    out_size,
    padding_for,
    quantize_multiplier,
    tflite_round,
)

if TYPE_CHECKING:
    from mcuq.boards import Board

SUPPORTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "ADD",
        "MUL",
        "RESHAPE",
        "EXPAND_DIMS",
        "SQUEEZE",
        "SOFTMAX",
        "LOGISTIC",
        "TANH",
        "RELU",
        "RELU6",
        "QUANTIZE",
        "CONCATENATION",
        "MEAN",
        "PAD",
        "PADV2",
        "TRANSPOSE_CONV",
    }
)
RESHAPE_OPS = {"RESHAPE", "EXPAND_DIMS", "SQUEEZE"}
SCRATCH_ALIGN = 4


@dataclass
class ConstArray:
    name: str
    ctype: str
    values: np.ndarray
    flash: bool = True  # PROGMEM on AVR; elementwise operands stay in RAM
    aligned: bool = False  # 4-byte aligned (weights read a word at a time by the SIMD path)


@dataclass(frozen=True)
class BufferRef:
    """A place in the activation buffer, resolved to `ARENA + offset` when rendering."""

    kind: str  # "tensor" (an activation tensor) or "scratch" (an op's temporary)
    index: int  # tensor index or op index
    cast: str = ""  # C type to cast the pointer to (int32_t* scratch)


@dataclass(frozen=True)
class PointerList:
    """A constant array of input pointers (CONCATENATION), rendered as a local array."""

    name: str
    items: tuple[Any, ...]


# A kernel argument: a number, the name of a constant array, or a buffer reference.
Value = int | str | BufferRef | PointerList


@dataclass
class KernelCall:
    """One op as one call with named arguments.

    With `params_type` the arguments become a per-layer `static const` struct of that type
    (designated initializers, in flash) passed by address; without it they are the positional
    arguments of `function`, each rendered with its name beside it.
    """

    op_index: int
    function: str
    args: list[tuple[str, Value]]
    params_type: str | None = None


@dataclass(frozen=True)
class AvrKernel:
    """One layer's generated code: `driver(&params, argument)` replaces the generic kernel call.

    CONV_2D and FULLY_CONNECTED: `void argument(const int8_t* in, int8_t* out, mcuq_sz row_stride)`
    computes every output channel of one pixel; `in` points at the window's first input, its
    rows `row_stride` bytes apart (the input's rows, or im2col's at the borders).
    DEPTHWISE_CONV_2D: `argument` is a flash table of one function per output column, `void
    f(const int8_t* const* rows, int8_t* out)`, each leaving out the taps that fall in that
    column's left or right padding (their zero-point products are in its biases); rows in the
    top or bottom padding point at a row of zero points.
    """

    op_index: int
    driver: str  # the C function in mcuq_kernels.c that walks the pixels ("": one pixel, called directly)
    argument: str  # what it is given besides the layer's parameters
    declarations: list[str]  # C lines (prototypes, the column table)
    asm: list[str]  # GNU as lines
    code_bytes: int  # flash of the functions (every instruction used is one word) and tables
    cycles_per_pixel: int  # an estimate (the slowest variant), for choosing layers under a flash budget
    replaces_bytes: int = 0  # flash of the layer's weight, bias and multiplier arrays, left out on AVR


@dataclass
class CProgram:
    """The compiled model: constants, one kernel call per op, and the memory plan."""

    info: ModelInfo
    constants: list[ConstArray] = field(default_factory=list)
    calls: list[KernelCall] = field(default_factory=list)
    plan: MemoryPlan | None = None
    scratch: dict[int, int] = field(default_factory=dict)  # op index -> scratch bytes
    simd: bool = False  # weights laid out for the 4-channel SIMD path (Cortex-M with DSP)
    avr_kernels: dict[int, AvrKernel] = field(default_factory=dict)  # op index -> generated AVR function

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes if self.plan else 0

    @property
    def flash_constant_bytes(self) -> int:
        return sum(c.values.nbytes for c in self.constants if c.flash)

    @property
    def ram_constant_bytes(self) -> int:
        return sum(c.values.nbytes for c in self.constants if not c.flash)


RECURRENT_OPS = {"UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "SVDF"}


def unsupported_ops(info: ModelInfo) -> list[str]:
    return [name for name in info.op_names if name not in SUPPORTED_OPS]


def _fail(info: ModelInfo, op: OpInfo, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"plain-C runtime: op {op.index} {op.name} (Keras layer '{info.layer_of_op(op)}') {why}")


def check_supported(info: ModelInfo) -> None:
    for op in info.ops:
        if op.name in RECURRENT_OPS:
            raise _fail(info, op, "is recurrent: the plain-C runtime has no LSTM kernel yet; use --runtime tflm on a 32-bit board")
        if op.name not in SUPPORTED_OPS:
            raise _fail(
                info, op, f"is not supported; supported ops: {', '.join(sorted(SUPPORTED_OPS))}; use --runtime tflm on a 32-bit board"
            )
    for t in info.tensors:
        if not t.is_constant and t.dtype != "int8" and t.index in _used(info):
            raise UnsupportedOpError(
                f"plain-C runtime: tensor '{t.name}' is {t.dtype}; the C runtime runs int8 models (--io int8, --activations int8)"
            )


def _used(info: ModelInfo) -> set[int]:
    return {i for op in info.ops for i in (*op.inputs, *op.outputs) if i >= 0}


def _q(t: TensorInfo) -> tuple[float, int]:
    assert t.quant is not None
    return t.quant.scale[0], t.quant.zero_point[0]


def _dims4(shape: tuple[int, ...]) -> list[int]:
    dims = list(shape) if shape else [1]
    return [1] * (4 - len(dims)) + dims


SIMD_BLOCK = 4  # output channels per block on the SIMD path (four SMLAD accumulators)
# Largest im2col stack buffer (bytes) per CONV_2D pixel: small on AVR / Cortex-M0+ (2-8 KB of
# RAM), larger on the DSP Cortex-M parts the SIMD layout targets.
IM2COL_MAX = {False: 128, True: 1024}


def block_layout(w3: np.ndarray, block: int) -> np.ndarray:
    """[channels, segments, n] weights -> the kernels' block layout (see mcuq_kernels.h):
    per block of `block` channels, per segment, chunks of 4 inputs per channel, then the tail
    of n % 4 inputs per channel. With block 1 this is the input order unchanged."""
    channels, segments, n = w3.shape
    full = n - n % 4
    parts = []
    for b0 in range(0, channels, block):
        blk = w3[b0 : b0 + block]
        nb = blk.shape[0]
        for s in range(segments):
            parts.append(blk[:, s, :full].reshape(nb, full // 4, 4).transpose(1, 0, 2).reshape(-1))
            parts.append(blk[:, s, full:].reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.int8)


def depthwise_layout(w: np.ndarray, block: int) -> np.ndarray:
    """[1, kh, kw, channels] -> per block of channels, per tap, the block's channel weights."""
    taps = w.reshape(-1, w.shape[-1])
    return np.concatenate([taps[:, b0 : b0 + block].reshape(-1) for b0 in range(0, taps.shape[1], block)])


def folded_bias(bias: np.ndarray | None, weight_sums: np.ndarray, in_zp: int) -> np.ndarray:
    """bias + in_offset * sum(weights) per channel (in_offset = -in_zp), wrapped to int32
    like the kernels' int32 accumulator."""
    b = np.zeros(weight_sums.shape, np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
    total = b - np.int64(in_zp) * weight_sums.astype(np.int64)
    return ((total + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


class _Emitter:
    def __init__(self, info: ModelInfo, simd: bool) -> None:
        self.info = info
        self.program = CProgram(info, simd=simd)

    def const(self, name: str, ctype: str, values: np.ndarray, flash: bool = True, aligned: bool = False) -> str:
        self.program.constants.append(ConstArray(name, ctype, np.asarray(values), flash, aligned))
        return name

    def t(self, index: int) -> TensorInfo:
        return self.info.tensors[index]

    def weight_data(self, op: OpInfo, pos: int) -> np.ndarray:
        w = self.t(op.inputs[pos])
        if w.data is None:
            raise _fail(self.info, op, "has non-constant weights")
        return w.data.astype(np.int8)

    def weights(self, op: OpInfo, pos: int) -> str:
        return self.const(f"w{op.index}", "int8_t", self.weight_data(op, pos).reshape(-1))

    def bias_data(self, op: OpInfo, pos: int) -> np.ndarray | None:
        if len(op.inputs) <= pos or op.inputs[pos] < 0:
            return None
        b = self.t(op.inputs[pos])
        if b.data is None:
            raise _fail(self.info, op, "has a non-constant bias")
        return b.data.astype(np.int32).reshape(-1)

    def buf(self, index: int) -> BufferRef:
        return BufferRef("tensor", index)

    def per_channel_params(self, op: OpInfo, inp: TensorInfo, w: TensorInfo, out: TensorInfo, channels: int) -> tuple[str, str]:
        in_scale, _ = _q(inp)
        out_scale, _ = _q(out)
        assert w.quant is not None
        scales = w.quant.scale if len(w.quant.scale) > 1 else w.quant.scale * channels
        mults, shifts = [], []
        for s in scales[:channels]:
            real = float(np.float64(np.float32(in_scale)) * np.float64(np.float32(s)) / np.float64(np.float32(out_scale)))
            m, sh = quantize_multiplier(real)
            mults.append(m)
            shifts.append(sh)
        return (
            self.const(f"m{op.index}", "int32_t", np.array(mults, np.int32)),
            self.const(f"s{op.index}", "int8_t", np.array(shifts, np.int8)),
        )

    def bias(self, op: OpInfo, pos: int) -> str:
        data = self.bias_data(op, pos)
        return "0" if data is None else self.const(f"b{op.index}", "int32_t", data)


def _out_range(op: OpInfo, inp: TensorInfo, out: TensorInfo) -> list[tuple[str, Value]]:
    """Zero points and activation range as every weighted kernel takes them."""
    _, izp = _q(inp)
    os_, ozp = _q(out)
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), os_, ozp)
    return [("in_zp", izp), ("out_zp", ozp), ("act_min", amin), ("act_max", amax)]


def _windowed(e: _Emitter, op: OpInfo, kind: str) -> KernelCall:
    """CONV_2D and DEPTHWISE_CONV_2D: weights re-laid for the inner loop, in_offset folded into the bias."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    w = e.weight_data(op, 1)
    _, ih, iw, ic = inp.shape
    _, oh, ow, oc = out.shape
    o = op.options
    sh, sw, dh, dw = o.get("strideH", 1), o.get("strideW", 1), o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
    _, izp = _q(inp)
    if kind == "conv":
        wc, kh, kw, wic = w.shape
        if wic != ic:
            raise _fail(e.info, op, "is a grouped convolution")
        block = SIMD_BLOCK if e.program.simd else 1
        field = kh * kw * ic
        # the SIMD loop reads words: its receptive field is padded to 4 with zero weights
        padded = -(-field // 4) * 4 if e.program.simd else field
        col_len = padded if kh * kw > 1 and padded <= IM2COL_MAX[e.program.simd] else 0
        if col_len:
            segments = np.zeros((wc, 1, col_len), np.int8)
            segments[:, 0, :field] = w.reshape(wc, field)
        else:
            segments = w.reshape(wc, kh, kw * ic) if dw == 1 else w.reshape(wc, kh * kw, ic)
        laid = block_layout(segments, block)
        sums = w.reshape(wc, -1).astype(np.int64).sum(axis=1)
        depth_mult = 1
    else:
        _, kh, kw, wc = w.shape
        depth_mult = wc // ic
        block = SIMD_BLOCK if e.program.simd and depth_mult == 1 else 1
        laid = depthwise_layout(w, block)
        sums = w.reshape(-1, wc).astype(np.int64).sum(axis=0)
        col_len = 0
    ph, pw = padding_for(sh, dh, ih, kh, oh), padding_for(sw, dw, iw, kw, ow)
    m, s = e.per_channel_params(op, inp, e.t(op.inputs[1]), out, oc)
    return KernelCall(
        op.index,
        "mcuq_conv2d" if kind == "conv" else "mcuq_depthwise_conv2d",
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("filter", e.const(f"w{op.index}", "int8_t", laid, aligned=True)),
            ("bias", e.const(f"b{op.index}", "int32_t", folded_bias(e.bias_data(op, 2), sums, izp))),
            ("mult", m),
            ("shift", s),
            ("in_h", ih),
            ("in_w", iw),
            ("in_c", ic),
            ("out_h", oh),
            ("out_w", ow),
            ("out_c", oc),
            ("k_h", kh),
            ("k_w", kw),
            ("stride_h", sh),
            ("stride_w", sw),
            ("dil_h", dh),
            ("dil_w", dw),
            ("pad_h", ph),
            ("pad_w", pw),
            ("block", block),
            ("depth_mult", depth_mult),
            ("col_len", col_len),
            *_out_range(op, inp, out),
        ],
        "mcuq_conv_params",
    )


def _conv(e: _Emitter, op: OpInfo) -> KernelCall:
    return _windowed(e, op, "conv")


def _depthwise(e: _Emitter, op: OpInfo) -> KernelCall:
    return _windowed(e, op, "depthwise")


def _fully_connected(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    w = e.t(op.inputs[1])
    wdata = e.weight_data(op, 1)
    units, depth = wdata.shape
    batches = int(np.prod(inp.shape)) // depth
    in_scale, izp = _q(inp)
    out_scale, _ = _q(out)
    assert w.quant is not None
    if len(w.quant.scale) > 1:
        m, s = e.per_channel_params(op, inp, w, out, units)
        per_channel = 1
    else:
        # GetQuantizedConvolutionMultipler: the product is float32, then double.
        real = float(np.float64(f32(in_scale) * f32(w.quant.scale[0])) / np.float64(f32(out_scale)))
        mult, shift = quantize_multiplier(real)
        m = e.const(f"m{op.index}", "int32_t", np.array([mult], np.int32))
        s = e.const(f"s{op.index}", "int8_t", np.array([shift], np.int8))
        per_channel = 0
    block = SIMD_BLOCK if e.program.simd else 1
    laid = block_layout(wdata.reshape(units, 1, depth), block)
    bias = folded_bias(e.bias_data(op, 2), wdata.astype(np.int64).sum(axis=1), izp)
    return KernelCall(
        op.index,
        "mcuq_fully_connected",
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("filter", e.const(f"w{op.index}", "int8_t", laid, aligned=True)),
            ("bias", e.const(f"b{op.index}", "int32_t", bias)),
            ("mult", m),
            ("shift", s),
            ("batches", batches),
            ("depth", depth),
            ("units", units),
            ("block", block),
            ("per_channel", per_channel),
            *_out_range(op, inp, out),
        ],
        "mcuq_fc_params",
    )


def _pool(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    _, ih, iw, c = inp.shape
    _, oh, ow, _ = out.shape
    o = op.options
    fh, fw, sh, sw = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
    ph, pw = padding_for(sh, 1, ih, fh, oh), padding_for(sw, 1, iw, fw, ow)
    os_, ozp = _q(out)
    amin, amax = activation_range(o.get("fusedActivationFunction", 0), os_, ozp)
    fn = "mcuq_max_pool" if op.name == "MAX_POOL_2D" else "mcuq_avg_pool"
    return KernelCall(
        op.index,
        fn,
        [
            ("in", e.buf(inp.index)),
            ("in_h", ih),
            ("in_w", iw),
            ("ch", c),
            ("out", e.buf(out.index)),
            ("out_h", oh),
            ("out_w", ow),
            ("f_h", fh),
            ("f_w", fw),
            ("stride_h", sh),
            ("stride_w", sw),
            ("pad_h", ph),
            ("pad_w", pw),
            ("act_min", amin),
            ("act_max", amax),
        ],
    )


def _operand(e: _Emitter, op: OpInfo, index: int, slot: int) -> Value:
    t = e.t(index)
    if t.is_constant:
        assert t.data is not None
        return e.const(f"k{op.index}_{slot}", "int8_t", t.data.astype(np.int8).reshape(-1), flash=False)
    return e.buf(index)


def _dims_const(e: _Emitter, name: str, shape: tuple[int, ...]) -> str:
    return e.const(name, "mcuq_dim", np.array(_dims4(shape), np.int32), flash=False)


def _binary_operands(e: _Emitter, op: OpInfo) -> list[tuple[str, Value]]:
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    return [
        ("a", _operand(e, op, a.index, 0)),
        ("a_dims", _dims_const(e, f"da{op.index}", a.shape)),
        ("b", _operand(e, op, b.index, 1)),
        ("b_dims", _dims_const(e, f"db{op.index}", b.shape)),
        ("out", e.buf(out.index)),
        ("out_dims", _dims_const(e, f"do{op.index}", out.shape)),
    ]


def _add(e: _Emitter, op: OpInfo) -> KernelCall:
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    (sa, za), (sb, zb), (so, zo) = _q(a), _q(b), _q(out)
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
            *_binary_operands(e, op),
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


def _mul(e: _Emitter, op: OpInfo) -> KernelCall:
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    (sa, za), (sb, zb), (so, zo) = _q(a), _q(b), _q(out)
    mo, sho = quantize_multiplier(float(f32(sa)) * float(f32(sb)) / float(f32(so)))
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), so, zo)
    return KernelCall(
        op.index,
        "mcuq_mul",
        [
            *_binary_operands(e, op),
            ("a_offset", -za),
            ("b_offset", -zb),
            ("out_offset", zo),
            ("out_mult", mo),
            ("out_shift", sho),
            ("act_min", amin),
            ("act_max", amax),
        ],
    )


def _reshape(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    return KernelCall(op.index, "mcuq_copy", [("in", e.buf(inp.index)), ("out", e.buf(out.index)), ("n", int(np.prod(out.shape)))])


def _softmax(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    in_scale, _ = _q(inp)
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


def _logistic_tanh(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    in_scale, izp = _q(inp)
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


def _requantize(e: _Emitter, op: OpInfo, zps: tuple[int, int], mult: int, shift: int, lo: int, hi: int) -> KernelCall:
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


def _relu(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    (si, zi), (so, zo) = _q(inp), _q(out)
    if op.name == "RELU6":
        six = max(INT8_MIN, min(INT8_MAX, tflite_round(float(f32(6.0) / f32(si))) + zi))
        return _requantize(e, op, (0, 0), 1 << 30, 1, zi, six)
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    amin = max(INT8_MIN, zo + tflite_round(float(f32(0.0) / f32(so))))
    return _requantize(e, op, (zi, zo), mult, shift, amin, INT8_MAX)


def _quantize(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    if inp.dtype != "int8" or out.dtype != "int8":
        raise _fail(e.info, op, f"converts {inp.dtype} to {out.dtype}; the C runtime only requantizes int8 (deploy with --io int8)")
    (si, zi), (so, zo) = _q(inp), _q(out)
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    return _requantize(e, op, (zi, zo), mult, shift, INT8_MIN, INT8_MAX)


def _concat(e: _Emitter, op: OpInfo) -> KernelCall:
    out = e.t(op.outputs[0])
    ins = [e.t(i) for i in op.inputs]
    if any(_q(t) != _q(out) for t in ins):
        raise _fail(e.info, op, "concatenates tensors with different scales; TFLite Micro requires equal quantization")
    axis = op.options.get("axis", -1) % len(out.shape)
    outer = int(np.prod(out.shape[:axis])) if axis else 1
    inner = int(np.prod(out.shape[axis + 1 :]))
    pointers = PointerList(f"ins{op.index}", tuple(_operand(e, op, t.index, k) for k, t in enumerate(ins)))
    sizes = e.const(f"ax{op.index}", "mcuq_dim", np.array([t.shape[axis] for t in ins], np.int32), flash=False)
    return KernelCall(
        op.index,
        "mcuq_concat",
        [("ins", pointers), ("axis_sizes", sizes), ("count", len(ins)), ("out", e.buf(out.index)), ("outer", outer), ("inner", inner)],
    )


def _pad(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, pads, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    assert pads.data is not None
    before = [int(p[0]) for p in pads.data.reshape(-1, 2)]
    before = [0] * (4 - len(before)) + before
    value = _q(out)[1]
    if op.name == "PADV2" and len(op.inputs) > 2 and e.t(op.inputs[2]).data is not None:
        value = int(e.t(op.inputs[2]).data.reshape(-1)[0])  # type: ignore[union-attr]
    return KernelCall(
        op.index,
        "mcuq_pad",
        [
            ("in", e.buf(inp.index)),
            ("in_dims", _dims_const(e, f"di{op.index}", inp.shape)),
            ("out", e.buf(out.index)),
            ("out_dims", _dims_const(e, f"do{op.index}", out.shape)),
            ("before", e.const(f"pb{op.index}", "mcuq_dim", np.array(before, np.int32), flash=False)),
            ("pad_value", value),
        ],
    )


def _mean(e: _Emitter, op: OpInfo) -> KernelCall:
    inp, axes, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    assert axes.data is not None
    rank = len(inp.shape)
    offset = 4 - rank
    mask = 0
    for a in axes.data.reshape(-1):
        mask |= 1 << (int(a) % rank + offset)
    (si, zi), (so, zo) = _q(inp), _q(out)
    mult, shift = quantize_multiplier(float(f32(si)) / float(f32(so)))
    n = int(np.prod([_dims4(inp.shape)[d] for d in range(4) if mask & (1 << d)]))
    # QuantizedMeanOrSum folds 1/N into the multiplier with a bounded extra shift.
    extra = min(63 - (64 - n.bit_length()) if n > 0 else 0, 32, 31 + shift)
    mult = int((mult << extra) // n)
    shift -= extra
    return KernelCall(
        op.index,
        "mcuq_mean",
        [
            ("in", e.buf(inp.index)),
            ("in_dims", _dims_const(e, f"di{op.index}", inp.shape)),
            ("axis_mask", mask),
            ("out", e.buf(out.index)),
            ("temp_sum", BufferRef("scratch", op.index, "int32_t*")),
            ("in_zp", zi),
            ("out_zp", zo),
            ("mult", mult),
            ("shift", shift),
        ],
    )


def _transpose_conv(e: _Emitter, op: OpInfo) -> KernelCall:
    w, inp, out = e.t(op.inputs[1]), e.t(op.inputs[2]), e.t(op.outputs[0])
    _, ih, iw, ic = inp.shape
    oc, kh, kw, _ = w.shape
    _, oh, ow, _ = out.shape
    o = op.options
    sh, sw, pad = o.get("strideH", 1), o.get("strideW", 1), o.get("padding", 0)
    ph = padding_for(sh, 1, oh, kh, out_size(pad, oh, kh, sh))
    pw = padding_for(sw, 1, ow, kw, out_size(pad, ow, kw, sw))
    m, s = e.per_channel_params(op, inp, w, out, oc)
    (_, izp), (os_, ozp) = _q(inp), _q(out)
    amin, amax = activation_range(o.get("fusedActivationFunction", 0), os_, ozp)
    return KernelCall(
        op.index,
        "mcuq_transpose_conv",
        [
            ("in", e.buf(inp.index)),
            ("in_h", ih),
            ("in_w", iw),
            ("in_c", ic),
            ("filter", e.weights(op, 1)),
            ("k_h", kh),
            ("k_w", kw),
            ("bias", e.bias(op, 3)),
            ("mult", m),
            ("shift", s),
            ("out", e.buf(out.index)),
            ("out_h", oh),
            ("out_w", ow),
            ("out_c", oc),
            ("stride_h", sh),
            ("stride_w", sw),
            ("pad_h", ph),
            ("pad_w", pw),
            ("scratch", BufferRef("scratch", op.index, "int32_t*")),
            ("in_offset", -izp),
            ("out_offset", ozp),
            ("act_min", amin),
            ("act_max", amax),
        ],
    )


def scratch_bytes(info: ModelInfo, op: OpInfo) -> int:
    if op.name == "MEAN":
        out = info.tensors[op.outputs[0]]
        return 4 * int(np.prod(out.shape))
    if op.name == "TRANSPOSE_CONV":
        return 4 * int(np.prod(info.tensors[op.outputs[0]].shape))
    return 0


EMITTERS: dict[str, Callable[[_Emitter, OpInfo], KernelCall]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": _pool,
    "AVERAGE_POOL_2D": _pool,
    "ADD": _add,
    "MUL": _mul,
    "RESHAPE": _reshape,
    "EXPAND_DIMS": _reshape,
    "SQUEEZE": _reshape,
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic_tanh,
    "TANH": _logistic_tanh,
    "RELU": _relu,
    "RELU6": _relu,
    "QUANTIZE": _quantize,
    "CONCATENATION": _concat,
    "PAD": _pad,
    "PADV2": _pad,
    "MEAN": _mean,
    "TRANSPOSE_CONV": _transpose_conv,
}


def compile_model(info: ModelInfo, simd: bool = False) -> CProgram:
    """Model -> C program. Raises UnsupportedOpError before anything is generated.

    `simd` lays the weights out for the 4-channel path of Cortex-M CPUs with the DSP
    extension; the kernels also run that layout portably, so it is a speed choice only.
    """
    check_supported(info)
    for t in info.input_tensors:
        if t.shape and t.shape[0] != 1:
            raise UnsupportedOpError(f"plain-C runtime: input '{t.name}' has batch {t.shape[0]}; export with batch 1")
    e = _Emitter(info, simd)
    program = e.program
    program.scratch = {op.index: scratch_bytes(info, op) for op in info.ops if scratch_bytes(info, op)}
    program.plan = plan_memory(info, program.scratch, alias_ops=RESHAPE_OPS)
    program.calls = [EMITTERS[op.name](e, op) for op in info.ops]
    return program


__all__ = [
    "SUPPORTED_OPS",
    "AvrKernel",
    "Buffer",
    "BufferRef",
    "CProgram",
    "ConstArray",
    "KernelCall",
    "PointerList",
    "check_supported",
    "compile_model",
    "unsupported_ops",
]


# Fit check for the plain-C runtime. Measured numbers come from the emulator build
# (`avr-size`/`arm-none-eabi-size` of the real firmware minus the Arduino core, whose cost
# is the board file's framework_* figures); without a toolchain they are estimated.
KERNEL_CODE_ESTIMATE = 6 * 1024
STACK_ALLOWANCE = 256


def estimate_c_fit(program: CProgram, board: Board, golden_bytes: int) -> FitReport:
    generated = sum(k.code_bytes for k in program.avr_kernels.values())
    flash = (
        program.flash_constant_bytes
        + program.ram_constant_bytes
        + golden_bytes
        + KERNEL_CODE_ESTIMATE
        + generated
        + board.framework_flash_bytes
    )
    ram = program.arena_bytes + program.ram_constant_bytes + STACK_ALLOWANCE + board.framework_ram_bytes
    return FitReport(
        ram,
        board.sram_bytes,
        flash,
        board.flash_bytes,
        False,
        0,
        "estimate: constants + golden vectors + ~6 KB kernels + framework; RAM = buffer + RAM constants + stack + framework",
    )


def measured_c_fit(flash: int, ram: int, board: Board, tool: str) -> FitReport:
    return FitReport(
        ram + STACK_ALLOWANCE + board.framework_ram_bytes,
        board.sram_bytes,
        flash + board.framework_flash_bytes,
        board.flash_bytes,
        False,
        0,
        f"measured with {tool} on the built firmware, plus the board's framework figures and {STACK_ALLOWANCE} B of stack",
    )


def check_c_fit(program: CProgram, board: Board, report: FitReport, golden_bytes: int) -> None:
    from mcuq.boards import list_boards
    from mcuq.common.errors import FitError

    if report.fits:
        return
    others = [
        b.id
        for b in sorted(list_boards(), key=lambda b: b.sram_bytes)
        if b.id != board.id and estimate_c_fit(program, b, golden_bytes).fits
    ]
    fits = f"fits: {', '.join(others[:3])}" if others else "no shipped board fits: shrink the model"
    if report.ram_bytes > report.ram_budget:
        raise FitError(
            f"model needs {report.ram_bytes} B RAM, {board.id} has {board.sram_bytes} B "
            f"(activation buffer {program.arena_bytes} B, framework {board.framework_ram_bytes} B; {report.estimate.split(':')[0]}); {fits}"
        )
    raise FitError(
        f"model needs {report.flash_bytes} B flash, {board.id} has {board.flash_bytes} B "
        f"(weights {program.flash_constant_bytes} B; {report.estimate.split(':')[0]}); {fits}"
    )
