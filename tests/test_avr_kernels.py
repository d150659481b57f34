"""The AVR-only paths of the plain-C runtime, run in simavr.

The kernels have assembly paths compiled only for AVR (the 24 x 32-bit requantization, the
depthwise window loop, the dot-product groups), so the host tests cannot reach them: these
tests compare them on the AVR itself against TFLite's arithmetic (requantization vectors) and
against x86 TFLite Micro (whole layers with borders, strides and dilations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import need, run_avr_selftest
from mcuq.backends.c.avr_requant import INT32_MAX, INT32_MIN, tflite_requantize
from mcuq.common.resources import templates_dir


def _vectors(n: int, seed: int = 0) -> list[tuple[int, int, int, int, int, int]]:
    """Accumulators inside and outside the 24-bit fast path, edge multipliers and shifts."""
    rng = np.random.default_rng(seed)
    edges_acc = [0, 1, -1, 2**23 - 1, -(2**23), 2**23, -(2**23) - 1, INT32_MAX, INT32_MIN + 1, 123456, -123456]
    out = []
    for i in range(n):
        kind = i % 4
        if i < len(edges_acc) * 3:
            acc = edges_acc[i % len(edges_acc)]
        elif kind == 0:
            acc = int(rng.integers(-(2**23), 2**23))
        elif kind == 1:
            acc = int(rng.integers(-(2**17), 2**17))  # typical: a few hundred products
        elif kind == 2:
            acc = int(rng.integers(-(2**12), 2**12))
        else:
            acc = int(rng.integers(INT32_MIN // 4, INT32_MAX // 4))  # the 32-bit path
        mult = int(rng.choice([2**30, INT32_MAX, int(rng.integers(2**30, 2**31))]))
        shift = int(rng.choice([0, 1, 3, -1, -8, -9, -16, -17, -24, -31, int(rng.integers(-20, 1))]))
        zp = int(rng.integers(-128, 128))
        lo, hi = (-128, 127) if i % 3 else (zp, 127)  # plain or ReLU
        out.append((acc, mult, shift, zp, lo, hi))
    return out


def _requant_program(vectors: list[tuple[int, int, int, int, int, int]]) -> str:
    rows = ",\n".join(
        f"  {{{a}L, {m}L, {s}, {{{zp}, {lo}, {hi}}}, {tflite_requantize(a, m, s, zp, lo, hi)}}}" for a, m, s, zp, lo, hi in vectors
    )
    return f"""#include <stdio.h>
#include "mcuq_kernels_impl.inc"
#include "mcuq_selftest.h"
void mcuq_hw_print(const char* text);
typedef struct {{ int32_t acc; int32_t mult; int8_t shift; int16_t oq[3]; int8_t want; }} vec;
static const vec V[] PROGMEM = {{
{rows}
}};
void mcuq_selftest(void) {{
  char buf[96];
  unsigned bad = 0, i;
  for (i = 0; i < sizeof V / sizeof V[0]; ++i) {{
    vec v;
    int8_t got;
    memcpy_P(&v, &V[i], sizeof v);
    got = requantize_avr(v.acc, &V[i].mult, &V[i].shift, v.oq);
    if (got != v.want) {{
      if (bad++ < 5) {{
        sprintf(buf, "mismatch %u: acc=%ld shift=%d got %d want %d", i, (long)v.acc, v.shift, got, v.want);
        mcuq_hw_print(buf);
      }}
    }}
  }}
  sprintf(buf, "checked %u vectors, %u mismatches", i, bad);
  mcuq_hw_print(buf);
  if (bad == 0) mcuq_hw_print("mcuq: selftest PASS");
}}
"""


def test_reference_requantize_matches_known_values():
    # Hand-checked against TFLite: 2^30 is 0.5, round half away from zero after the shift.
    assert tflite_requantize(3, 2**30, 0, 0, -128, 127) == 2  # 1.5 -> 2
    assert tflite_requantize(-3, 2**30, 0, 0, -128, 127) == -1  # srdhm: -1.5 -> -1 (nudge)
    assert tflite_requantize(100, 2**30, -2, 5, -128, 127) == 18  # 50 / 4 = 12.5 -> 13, + 5
    assert tflite_requantize(-100, 2**30, -2, 5, -128, 127) == -8  # -12.5 -> -13, + 5
    assert tflite_requantize(-100, 2**30, -2, 5, 5, 127) == 5  # ReLU clamp
    assert tflite_requantize(1000, 2**30, -2, 5, -128, 127) == 127


@pytest.mark.slow
def test_avr_requantization_matches_tflite_in_simavr():
    # the self-test unit includes the kernels (their AVR helpers are static)
    kernels = (templates_dir() / "c" / "runtime" / "mcuq_kernels.c").read_text()
    result = run_avr_selftest(_requant_program(_vectors(1500)), mcuq_kernels_impl_inc=kernels)
    assert "checked 1500 vectors, 0 mismatches" in result.log, result.log[-800:]
    assert result.passed


def _tflite(tmp_path: Path, layers, shape, seed: int = 0) -> Path:
    import keras

    from mcuq.common.console import SILENT
    from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    x = inp
    for layer in layers:
        x = layer(x)
    path = tmp_path / "m.keras"
    keras.Model(inp, x).save(path)
    rng = np.random.default_rng(seed)
    np.save(tmp_path / "cal.npy", rng.normal(size=(64, *shape)).astype(np.float32))
    out = convert_in_this_process(path, str(tmp_path / "cal.npy"), QuantizeOptions(calibration_samples=64), SILENT)
    keras.backend.clear_session()
    target = tmp_path / "m.tflite"
    target.write_bytes(out["tflite"])
    return target


def _layers(case: str):
    import keras

    L = keras.layers
    if case == "trailing_padding":
        # stride 2, SAME on an even size: no leading padding, one row/column of trailing padding
        return [L.Conv2D(4, 3, strides=2, padding="same", activation="relu"), L.Conv2D(3, 3, strides=2, padding="same")], (8, 8, 2)
    if case == "depthwise":
        # borders on every side, a stride, a dilation, a 5x5 window and a depth multiplier of 2
        return [
            L.DepthwiseConv2D(3, padding="same", activation="relu"),
            L.DepthwiseConv2D(3, strides=2, padding="same"),
            L.DepthwiseConv2D(3, dilation_rate=2, padding="same"),
            L.DepthwiseConv2D(5, padding="same", activation="relu6"),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        ], (9, 7, 12)
    return [
        L.Conv2D(10, 3, padding="same", activation="relu"),
        L.Conv2D(9, 1),
        L.Conv2D(12, 3, strides=2, padding="same"),
        L.Conv2D(8, 3, dilation_rate=2, padding="same"),
        L.AveragePooling2D((2, 3), padding="same"),  # partial windows: counts 6, 4, 3, 2
        L.Flatten(),
        L.Dense(19, activation="relu"),
        L.Dense(5),
    ], (8, 9, 3)


# the layers written as generated AVR assembly (avr_codegen): dilation 1, depth multiplier 1
# (unrolled up to 64 MACs per output, looped beyond: conv_dense layer 2); the others run the
# generic AVR kernels
GENERATED = {"depthwise": {0, 1, 3}, "conv_dense": {0, 1, 2, 6, 7}, "trailing_padding": {0, 1}}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["depthwise", "conv_dense", "trailing_padding"])
def test_avr_layers_bit_exact_with_tflite_micro_in_simavr(tmp_path, case):
    need("avr-gcc")
    need("simavr")
    from mcuq.deploy import DeployRequest, deploy

    layers, shape = _layers(case)
    model = _tflite(tmp_path, layers, shape)
    result = deploy(DeployRequest(model=str(model), board="mega2560", out=str(tmp_path / "out"), golden=4))
    assert result.emulator_passed is True, result.plan.emulation
    assert result.plan.emulation is not None and str(result.plan.emulation.target).startswith("atmega2560")
    assert result.ok
    assert set(result.plan.context["program"].avr_kernels) == GENERATED[case]


@pytest.mark.slow
def test_generated_layers_bit_exact_on_a_hundred_validation_samples_in_simavr(tmp_path, digits_int8):
    """The digits example on the ATmega2560: every weighted layer runs generated assembly (the
    Dense of depth 256 as a loop); the firmware's self-test compares 100 validation samples with
    x86 TFLite Micro (the host build cannot run this code)."""
    need("avr-gcc")
    need("simavr")
    from mcuq.deploy import DeployRequest, deploy

    digits = Path(__file__).resolve().parents[1] / "examples" / "digits"
    request = DeployRequest(
        model=str(digits / "model.keras"),
        quantized=digits_int8,  # the session's conversion of this model (same calibration, default options)
        data=str(digits / "val.npz"),
        board="mega2560",
        out=str(tmp_path / "out"),
        golden=100,
    )
    result = deploy(request)
    log = result.plan.context["c"]["emulation"]["log"]
    assert set(result.plan.context["program"].avr_kernels) == {0, 2, 3, 5, 6}
    assert result.emulator_passed is True, log[-800:]
    assert log.count(" PASS max_abs_diff=0") == 100
    assert "AVR assembly generated for ops</td><td>0, 2, 3, 5, 6 (" in (tmp_path / "out" / "report.html").read_text()
