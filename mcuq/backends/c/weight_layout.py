"""Weight layouts for the inner loops, computed once at generation time: four output channels
interleaved for the SMLAD path, depthwise taps by channel block, the input zero point folded
into the bias (so the kernels never subtract it per MAC).
"""

from __future__ import annotations

import numpy as np

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
