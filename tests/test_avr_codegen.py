"""The AVR code generated per layer (mcuq/backends/c/avr_codegen.py), checked two ways:

- its requantization plans (avr_requant) against TFLite's arithmetic over whole accumulator
  windows, in Python;
- the generated assembly itself, run in simavr on random layers and random inputs, against
  the same arithmetic: every channel of every vector must match.

Whole models deployed with the generated layers are compared with x86 TFLite Micro in
test_avr_kernels.py and by every AVR deploy's own self-test.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import run_avr_selftest
from mcuq.backends.c.avr_codegen import (
    Window,
    acc_range,
    c_string_literals,
    dense_kernel,
    depthwise_kernel,
    looped_kernel,
    plan_channels,
    table_kernel,
)
from mcuq.backends.c.avr_requant import evaluate, plan_requant, tflite_requantize
from mcuq.backends.c.ir import AvrKernel


def _random_channel(rng: random.Random) -> tuple[int, int, int, int, int, int, int]:
    mult = rng.choice([rng.randint(2**30, 2**31 - 1), 2**30, 2**31 - 1])
    shift = rng.randint(-13, 0)
    zp = rng.randint(-128, 120)
    lo = rng.choice([-128, zp])
    hi = rng.choice([127, rng.randint(lo + 1, 127)])
    span = rng.choice([2**23 - 1, 300_000, 40_000])
    return mult, shift, zp, lo, hi, -rng.randint(0, span), rng.randint(0, span)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_requantization_plans_reproduce_tflite_over_the_whole_window(seed):
    rng = random.Random(seed)
    checked = 0
    for _ in range(25):
        mult, shift, zp, lo, hi, a_min, a_max = _random_channel(rng)
        plan = plan_requant(mult, shift, zp, lo, hi, a_min, a_max)
        assert plan is not None, (mult, shift, zp, lo, hi, a_min, a_max)
        # every accumulator of the window between the clamps (and a margin), else every step
        # of it with its neighbours: the output changes only there
        start, stop = max(a_min, plan.t_lo - 64), min(a_max, plan.t_hi + 64)
        if stop - start <= 60_000:
            points = range(start, stop + 1)
        else:
            points = sorted(
                {a_min, a_max, 0, -1}
                | {a + d for p in plan.parts for a in (p.start, p.end) for d in (-2, -1, 0, 1)}
                | {rng.randint(a_min, a_max) for _ in range(5000)}
            )
        for acc in points:
            if a_min <= acc <= a_max:
                assert evaluate(plan, acc) == tflite_requantize(acc, mult, shift, zp, lo, hi), (mult, shift, zp, lo, hi, acc)
                checked += 1
    assert checked > 100_000


def test_layer_plans_are_exact_on_edge_case_layers():
    """Whole layers as plan_channels sees them: all-zero, single-tap and saturated weights, tiny
    weights, clamps one step wide, shifts down to -20; every plan exact around both thresholds
    and at random accumulators of each channel's range."""
    rng, pick = np.random.default_rng(5), random.Random(5)
    checked = 0
    for _ in range(150):
        out_c, n = pick.choice([1, 2, 3, 5]), pick.choice([1, 2, 9, 30, 100])
        weights = rng.integers(-127, 128, size=(out_c, n)).astype(np.int8)
        kind = pick.choice(["zero", "one", "max", "random", "tiny"])
        if kind == "zero":
            weights[:] = 0
        elif kind == "one":
            weights[:] = 0
            weights[:, 0] = pick.choice([1, -1, 127, -127])
        elif kind == "max":
            weights[:] = pick.choice([127, -127])
        elif kind == "tiny":
            weights = rng.integers(-2, 3, size=(out_c, n)).astype(np.int8)
        bias = rng.integers(-(2**20), 2**20, size=out_c).astype(np.int32)
        mult, shift = rng.integers(2**30, 2**31 - 1, size=out_c), rng.integers(-20, 1, size=out_c).astype(np.int8)
        zp = pick.randint(-128, 126)
        lo = pick.choice([-128, zp])
        hi = pick.choice([127, lo + 1, min(127, lo + pick.randint(1, 50))])
        plans = plan_channels(weights, bias, mult, shift, zp, lo, hi)
        assert plans is not None
        for c, plan in enumerate(plans):
            a_min, a_max = acc_range(weights[c], int(bias[c]))
            near = [a for t in (plan.t_lo, plan.t_hi) for a in range(t - 40, t + 41)]
            for acc in {a_min, a_max, *near, *(pick.randint(a_min, a_max) for _ in range(200))}:
                if a_min <= acc <= a_max:
                    assert evaluate(plan, acc) == tflite_requantize(acc, int(mult[c]), int(shift[c]), zp, lo, hi)
                    checked += 1
    assert checked > 30_000


def test_a_plan_is_refused_where_the_short_form_does_not_apply():
    assert plan_requant(2**30, 1, 0, -128, 127, -1000, 1000) is None  # left shift
    assert plan_requant(2**30, -5, 0, -128, 127, -(2**24), 1000) is None  # beyond 24 bits


def _layer(rng: np.random.Generator, out_c: int, n: int, zp: int, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    weights = rng.integers(-127, 128, size=(out_c, n)).astype(np.int8)
    weights[rng.random(weights.shape) < 0.15] = 0  # left out of the code
    weights[:, 3] = 0  # a whole input column unused
    bias = rng.integers(-20_000, 20_000, size=out_c).astype(np.int32)
    mult = rng.integers(2**30, 2**31 - 1, size=out_c).astype(np.int64)
    shift = rng.integers(-11, -5, size=out_c).astype(np.int8)
    return weights, bias, mult, shift


def _vectors_c(name: str, values: np.ndarray) -> str:
    rows = ",\n".join("  {" + ", ".join(str(int(v)) for v in row) + "}" for row in values)
    return f"static const int8_t {name}[{values.shape[0]}][{values.shape[1]}] PROGMEM = {{\n{rows}\n}};"


def _harness(kernel: AvrKernel, call: str, inputs: np.ndarray, expected: np.ndarray, setup: str = "") -> str:
    lines = "\n".join(c_string_literals(kernel.asm))
    return f"""#include <stdio.h>
#include <string.h>
#include "mcuq_kernels.h"
#include "mcuq_selftest.h"
void mcuq_hw_print(const char* text);
{chr(10).join(kernel.declarations)}
__asm__(
{lines}
);
{_vectors_c("IN", inputs)}
{_vectors_c("WANT", expected)}
void mcuq_selftest(void) {{
  char buf[96];
  static int8_t in[{inputs.shape[1]}], out[{expected.shape[1]}];
  unsigned bad = 0, v, c;
{setup}
  for (v = 0; v < {inputs.shape[0]}; ++v) {{
    memcpy_P(in, IN[v], sizeof in);
    {call}
    for (c = 0; c < sizeof out; ++c) {{
      const int8_t want = (int8_t)pgm_read_byte(&WANT[v][c]);
      if (out[c] != want && bad++ < 5) {{
        sprintf(buf, "mismatch vector %u channel %u: got %d want %d", v, c, out[c], want);
        mcuq_hw_print(buf);
      }}
    }}
  }}
  sprintf(buf, "checked %u vectors, %u mismatches", v, bad);
  mcuq_hw_print(buf);
  if (bad == 0) mcuq_hw_print("mcuq: selftest PASS");
}}
"""


def _run(program: str) -> str:
    return str(run_avr_selftest(program).log)


def _inputs(rng: np.random.Generator, count: int, n: int) -> np.ndarray:
    x = rng.integers(-128, 128, size=(count, n)).astype(np.int8)
    x[0], x[1] = -128, 127  # the accumulator's extremes for every channel
    return x


@pytest.mark.slow
@pytest.mark.parametrize(("zp", "lo", "hi"), [(-128, -128, 127), (5, -128, 127), (-20, -20, 60)], ids=["relu", "linear", "relu6"])
def test_generated_dense_kernel_matches_tflite_in_simavr(zp, lo, hi):
    rng = np.random.default_rng(abs(zp) + hi)
    out_c, n = 10, 20  # groups of 4, 4 and 2 channels
    weights, bias, mult, shift = _layer(rng, out_c, n, zp, lo, hi)
    plans = plan_channels(weights, bias, mult, shift, zp, lo, hi)
    assert plans is not None
    kernel = dense_kernel(0, "t_dense", Window((0,) * n, tuple(range(n))), weights, bias, plans)
    inputs = _inputs(rng, 60, n)
    acc = inputs.astype(np.int64) @ weights.astype(np.int64).T + bias
    expected = np.array(
        [[tflite_requantize(int(a), int(mult[c]), int(shift[c]), zp, lo, hi) for c, a in enumerate(row)] for row in acc], np.int8
    )
    log = _run(_harness(kernel, "t_dense(in, out, 0);", inputs, expected))
    assert f"checked {len(inputs)} vectors, 0 mismatches" in log, log[-800:]


@pytest.mark.slow
def test_generated_table_for_one_input_dense_layers_matches_tflite_in_simavr():
    """Depth 1: a 256-entry table per channel, every input value checked."""
    rng = np.random.default_rng(11)
    weights = rng.integers(-127, 128, size=(5, 1)).astype(np.int8)
    bias = rng.integers(-30_000, 30_000, size=5).astype(np.int32)
    mult, shift = np.array([1_518_500_250], np.int64), np.array([-7], np.int8)  # per-tensor
    kernel = table_kernel(0, "t_table", weights, bias, mult, shift, (9, -128, 127))
    inputs = np.arange(-128, 128, dtype=np.int8).reshape(-1, 1)
    acc = inputs.astype(np.int64) @ weights.astype(np.int64).T + bias
    expected = np.array([[tflite_requantize(int(a), int(mult[0]), int(shift[0]), 9, -128, 127) for a in row] for row in acc], np.int8)
    log = _run(_harness(kernel, "t_table(in, out, 0);", inputs, expected))
    assert "checked 256 vectors, 0 mismatches" in log, log[-800:]


@pytest.mark.slow
def test_generated_dense_kernel_reads_window_rows_a_stride_apart_in_simavr():
    """A 3x2 window of 2 channels (im2col order) whose rows lie 11 bytes apart in the input."""
    rng = np.random.default_rng(7)
    kh, kw, ic, stride = 3, 2, 2, 11
    taps = [(fy, fx) for fy in range(kh) for fx in range(kw)]
    window = Window(tuple(fy for fy, _ in taps for _ in range(ic)), tuple(fx * ic + c for _, fx in taps for c in range(ic)))
    n = kh * kw * ic
    weights, bias, mult, shift = _layer(rng, 5, n, -128, -128, 127)
    plans = plan_channels(weights, bias, mult, shift, -128, -128, 127)
    assert plans is not None
    kernel = dense_kernel(0, "t_rows", window, weights, bias, plans)
    image = _inputs(rng, 40, stride * kh)
    gathered = np.stack([image[:, fy * stride + fx * ic + c] for fy, fx in taps for c in range(ic)], axis=1)
    acc = gathered.astype(np.int64) @ weights.astype(np.int64).T + bias
    expected = np.array(
        [[tflite_requantize(int(a), int(mult[c]), int(shift[c]), -128, -128, 127) for c, a in enumerate(r)] for r in acc], np.int8
    )
    log = _run(_harness(kernel, f"t_rows(in, out, {stride});", image, expected))
    assert f"checked {len(image)} vectors, 0 mismatches" in log, log[-800:]


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "row_len", "stride"), [(1, 300, 0), (2, 70, 90)], ids=["dense-300", "window-2x70"])
def test_generated_loop_kernel_matches_tflite_in_simavr(rows, row_len, stride):
    """More than 64 MACs per output: a loop over each row's inputs (a 16-bit count past 255),
    weights of 4 + 2 channels interleaved in a flash table, rows `stride` bytes apart."""
    rng = np.random.default_rng(row_len)
    n = rows * row_len
    weights, bias, mult, shift = _layer(rng, 6, n, -128, -128, 127)
    weights //= 4  # keeps 300 products within the 24-bit sums
    plans = plan_channels(weights, bias, mult, shift, -128, -128, 127)
    assert plans is not None
    kernel = looped_kernel(0, "t_loop", rows, row_len, weights, bias, plans)
    image = _inputs(rng, 12, max(stride, row_len) * (rows - 1) + row_len)
    gathered = np.concatenate([image[:, fy * stride : fy * stride + row_len] for fy in range(rows)], axis=1)
    acc = gathered.astype(np.int64) @ weights.astype(np.int64).T + bias
    expected = np.array(
        [[tflite_requantize(int(a), int(mult[c]), int(shift[c]), -128, -128, 127) for c, a in enumerate(r)] for r in acc], np.int8
    )
    log = _run(_harness(kernel, f"t_loop(in, out, {stride});", image, expected))
    assert f"checked {len(image)} vectors, 0 mismatches" in log, log[-800:]


@pytest.mark.slow
def test_generated_depthwise_variants_match_tflite_in_simavr():
    """3x3 depthwise, 6 channels, SAME padding on a 2x3 input: one function per output column
    (left border, interior, right border); rows in the top and bottom padding read a row of
    in_zp, as the driver passes them."""
    rng = np.random.default_rng(3)
    ch, in_zp, zp, lo, hi = 6, -7, 3, -128, 127
    weights = rng.integers(-127, 128, size=(9, ch)).astype(np.int8)
    weights[rng.random(weights.shape) < 0.2] = 0
    bias = rng.integers(-5000, 5000, size=ch).astype(np.int32)
    folded = (bias - in_zp * weights.astype(np.int64).sum(axis=0)).astype(np.int32)  # as program.folded_bias
    mult = rng.integers(2**30, 2**31 - 1, size=ch).astype(np.int64)
    shift = rng.integers(-10, -6, size=ch).astype(np.int8)
    g = {"k_h": 3, "k_w": 3, "in_c": ch, "out_c": ch, "in_w": 3, "out_h": 2, "out_w": 3, "stride_w": 1, "pad_w": 1, "in_zp": in_zp}
    kernel = depthwise_kernel(0, "t_dw", weights, folded, mult, shift, (zp, lo, hi), g)
    assert kernel is not None and len(kernel.declarations) == 4  # three variants and the column table
    images = _inputs(rng, 40, 2 * 3 * ch)
    expected = []
    for x in images.astype(np.int64).reshape(-1, 2, 3, ch):
        out = []
        for oy in range(2):
            for ox in range(3):
                for c in range(ch):
                    acc = int(bias[c])
                    for fy in range(3):
                        for fx in range(3):
                            iy, ix = oy - 1 + fy, ox - 1 + fx
                            if 0 <= iy < 2 and 0 <= ix < 3:  # TFLite skips the padding
                                acc += int(weights[fy * 3 + fx, c]) * (int(x[iy, ix, c]) - in_zp)
                    out.append(tflite_requantize(acc, int(mult[c]), int(shift[c]), zp, lo, hi))
        expected.append(out)
    row = 3 * ch
    setup = f"  const int8_t* rows[3];\n  int8_t zp_row[{row}];\n  int y, x, k;\n  memset(zp_row, {in_zp}, sizeof zp_row);"
    call = (
        "for (y = 0; y < 2; ++y) for (x = 0; x < 3; ++x) {"
        f" for (k = 0; k < 3; ++k) rows[k] = (y - 1 + k < 0 || y - 1 + k > 1) ? zp_row : in + (y - 1 + k) * {row} + (x - 1) * {ch};"
        f" ((mcuq_avr_rows)pgm_read_word(t_dw_columns + x))(rows, out + (y * 3 + x) * {ch}); }}"
    )
    log = _run(_harness(kernel, call, images, np.array(expected, np.int8), setup))
    assert f"checked {len(images)} vectors, 0 mismatches" in log, log[-800:]


def test_layers_are_chosen_by_cycles_saved_per_byte_within_the_flash_budget(digits_int8):
    from mcuq.backends.c.avr_codegen import avr_kernels
    from mcuq.backends.c.program import compile_model

    program = compile_model(digits_int8.info)
    everything = avr_kernels(program, "d", 10**6)
    # digits: every weighted layer (the 3x3, depthwise and 1x1 convs and the last Dense
    # unrolled, the Dense of depth 256 as a loop over its inputs)
    assert set(everything) == {0, 2, 3, 5, 6}
    assert avr_kernels(program, "d", 0) == {}
    cost = {i: k.code_bytes - k.replaces_bytes for i, k in everything.items()}
    budget = cost[0] + cost[2]
    chosen = avr_kernels(program, "d", budget)
    assert chosen and sum(cost[i] for i in chosen) <= budget
    assert len(chosen) < len(everything)


@pytest.mark.slow
def test_deploy_with_generic_avr_kernels_writes_no_assembly(tmp_path, sine_int8):
    """--avr-kernels generic: the shared kernels only (less flash), still self-tested."""
    from conftest import SINE, need
    from mcuq.deploy import DeployRequest, deploy

    need("avr-gcc")
    need("simavr")
    # the session's sine conversion (the same model, calibration and default options)
    common = {"model": str(SINE / "model.keras"), "quantized": sine_int8, "board": "nano"}
    generic = deploy(DeployRequest(**common, out=str(tmp_path / "generic"), backend_options={"avr_kernels": "generic"}))
    generated = deploy(DeployRequest(**common, out=str(tmp_path / "generated")))
    assert generic.emulator_passed is True and generated.emulator_passed is True
    assert generic.plan.context["program"].avr_kernels == {}
    assert "_avr_op" not in (tmp_path / "generic" / "src" / "mcuq_model.c").read_text()
    assert set(generated.plan.context["program"].avr_kernels) == {0, 1, 2}
    assert "_avr_op0" in (tmp_path / "generated" / "src" / "mcuq_model.c").read_text()
