"""Lowering of the ops that slide a window or multiply by a weight matrix: CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED, the pools and TRANSPOSE_CONV, with TFLite Micro's arithmetic."""

from __future__ import annotations

import numpy as np

from mcuq.backends.c.emitter import Emitter, out_range, quant_of, unsupported
from mcuq.backends.c.ir import BufferRef, KernelCall
from mcuq.backends.c.weight_layout import IM2COL_MAX, SIMD_BLOCK, block_layout, depthwise_layout, folded_bias
from mcuq.model.info import OpInfo
from mcuq.model.quant_math import (
    activation_range,
    f32,
    out_size,
    padding_for,
    quantize_multiplier,
)


def lower_windowed(e: Emitter, op: OpInfo, kind: str) -> KernelCall:
    """CONV_2D and DEPTHWISE_CONV_2D: weights re-laid for the inner loop, in_offset folded into the bias."""
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    w = e.weight_data(op, 1)
    _, ih, iw, ic = inp.shape
    _, oh, ow, oc = out.shape
    o = op.options
    sh, sw, dh, dw = o.get("strideH", 1), o.get("strideW", 1), o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
    _, izp = quant_of(inp)
    if kind == "depthwise" and ic == 1:
        # One input channel: depthwise with multiplier M is a CONV_2D with M output channels (the
        # same int32 sums per output, the same per-channel requantization), which has im2col and
        # generated AVR code (micro_speech's 8x10 depthwise layer).
        w = w.transpose(3, 1, 2, 0)
        kind = "conv"
    if kind == "conv":
        wc, kh, kw, wic = w.shape
        if wic != ic:
            raise unsupported(e.info, op, "is a grouped convolution")
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
            *out_range(op, inp, out),
        ],
        "mcuq_conv_params",
    )


def lower_conv(e: Emitter, op: OpInfo) -> KernelCall:
    return lower_windowed(e, op, "conv")


def lower_depthwise(e: Emitter, op: OpInfo) -> KernelCall:
    return lower_windowed(e, op, "depthwise")


def lower_fully_connected(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    w = e.t(op.inputs[1])
    wdata = e.weight_data(op, 1)
    units, depth = wdata.shape
    batches = int(np.prod(inp.shape)) // depth
    in_scale, izp = quant_of(inp)
    out_scale, _ = quant_of(out)
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
            *out_range(op, inp, out),
        ],
        "mcuq_fc_params",
    )


def lower_pool(e: Emitter, op: OpInfo) -> KernelCall:
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    _, ih, iw, c = inp.shape
    _, oh, ow, _ = out.shape
    o = op.options
    fh, fw, sh, sw = o["filterHeight"], o["filterWidth"], o["strideH"], o["strideW"]
    ph, pw = padding_for(sh, 1, ih, fh, oh), padding_for(sw, 1, iw, fw, ow)
    os_, ozp = quant_of(out)
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


def transpose_conv_geometry(e: Emitter, op: OpInfo) -> dict[str, int]:
    """TRANSPOSE_CONV's shapes, strides and the padding TFLite computes from the output size
    (inputs: output shape, weights [oc][kh][kw][ic], data, bias); shared by the 16x8 lowering."""
    w, inp, out = e.t(op.inputs[1]), e.t(op.inputs[2]), e.t(op.outputs[0])
    _, ih, iw, ic = inp.shape
    oc, kh, kw, _ = w.shape
    _, oh, ow, _ = out.shape
    o = op.options
    sh, sw, pad = o.get("strideH", 1), o.get("strideW", 1), o.get("padding", 0)
    ph = padding_for(sh, 1, oh, kh, out_size(pad, oh, kh, sh))
    pw = padding_for(sw, 1, ow, kw, out_size(pad, ow, kw, sw))
    names = ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w", "stride_h", "stride_w", "pad_h", "pad_w")
    return dict(zip(names, (ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, ph, pw)))


def lower_transpose_conv(e: Emitter, op: OpInfo) -> KernelCall:
    w, inp, out = e.t(op.inputs[1]), e.t(op.inputs[2]), e.t(op.outputs[0])
    g = transpose_conv_geometry(e, op)
    m, s = e.per_channel_params(op, inp, w, out, g["out_c"])
    (_, izp), (os_, ozp) = quant_of(inp), quant_of(out)
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), os_, ozp)
    return KernelCall(
        op.index,
        "mcuq_transpose_conv",
        [
            ("in", e.buf(inp.index)),
            *[(k, g[k]) for k in ("in_h", "in_w", "in_c")],
            ("filter", e.weights(op, 1)),
            ("k_h", g["k_h"]),
            ("k_w", g["k_w"]),
            ("bias", e.bias(op, 3)),
            ("mult", m),
            ("shift", s),
            ("out", e.buf(out.index)),
            *[(k, g[k]) for k in ("out_h", "out_w", "out_c", "stride_h", "stride_w", "pad_h", "pad_w")],
            ("scratch", BufferRef("scratch", op.index, "int32_t*")),
            ("in_offset", -izp),
            ("out_offset", ozp),
            ("act_min", amin),
            ("act_max", amax),
        ],
    )
