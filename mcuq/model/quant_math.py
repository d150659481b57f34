"""TFLite's quantization arithmetic, reproduced on the host so generated C constants are
exactly the ones TFLite Micro computes at Prepare time (QuantizeMultiplier, activation
ranges, padding). Float32 steps stay float32: bit-exactness depends on it."""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def tflite_round(x: float) -> int:
    """std::round: halves away from zero."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier: real = multiplier * 2^(shift - 31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return (1 << 31) - 1, 30
    return q_fixed, shift


def f32(x: float) -> np.float32:
    return np.float32(x)


def activation_range(fused: int, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: 0 none, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6."""

    def quantize(f: float) -> int:
        return zero_point + tflite_round(float(f32(f) / f32(scale)))

    if fused == 1:
        return max(qmin, quantize(0.0)), qmax
    if fused == 3:
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if fused == 2:
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    return qmin, qmax


def out_size(padding: int, image: int, filt: int, stride: int, dilation: int = 1) -> int:
    effective = (filt - 1) * dilation + 1
    return (image + stride - 1) // stride if padding == 0 else (image + stride - effective) // stride


def padding_for(stride: int, dilation: int, in_size: int, filt: int, out: int) -> int:
    """ComputePaddingWithOffset: the leading half of the total padding."""
    effective = (filt - 1) * dilation + 1
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    max_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (total_signed_bits - integer_bits)) / (1 << left_shift)
    return math.floor(max_rescaled)
