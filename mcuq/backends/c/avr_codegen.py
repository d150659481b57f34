"""AVR assembly generated per layer: the weights, biases and requantization as constants.

A generic kernel pays on every output for what the generator already knows: loading each
weight from flash (`lpm`, 3 cycles), looping, and TFLite's full 24 x 31-bit requantization
with a variable shift (about 150 cycles). This module writes, per CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED layer, functions that compute every output channel of one pixel:

- requantization: two compares against the channel's thresholds (act_min / act_max), then the
  short exact multiply found by `avr_requant` (a few `mul`s with immediates, byte-aligned result);
- up to 64 MACs per output, unrolled: `ldd` input, `ldi` weight, `muls`, a 24-bit add (zero
  weights left out), four channels sharing each input load; depthwise: one function per set of
  valid filter columns (left border, interior, right border), rows passed as pointers;
- more MACs per output: a loop over each window row's inputs, four channels' weights
  interleaved in a flash table in the order the loop reads them;
- Dense layers of depth 1: a 256-entry table per channel.

Only layers whose every channel has an exact short plan and whose sums fit 24 bits are
generated; C drivers in mcuq_kernels.c walk the pixels. The code runs only on the AVR: every
deploy's self-test runs it in simavr against TFLite Micro's golden vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mcuq.backends.c.avr_requant import RequantPart, RequantPlan, plan_requant, tflite_requantize
from mcuq.backends.c.ir import AvrKernel, CProgram, KernelCall

if TYPE_CHECKING:
    from mcuq.boards import Board

GROUP = 4  # channels accumulated together: 12 accumulator registers r2..r13
MAX_MACS_PER_OUTPUT = 64  # unrolled code up to here; beyond, a loop over the inputs (weights in a flash table)


def acc_range(weights: np.ndarray, bias: int) -> tuple[int, int]:
    """The accumulator's reachable range over all int8 inputs (padding taps hold in_zp, an int8 too)."""
    w = weights.astype(np.int64)
    return bias + int(np.minimum(w * -128, w * 127).sum()), bias + int(np.maximum(w * -128, w * 127).sum())


def _multiplier(mult: np.ndarray, shift: np.ndarray, c: int) -> tuple[int, int]:
    """Channel c's multiplier and shift (per-tensor layers have one of each)."""
    return int(mult[c if mult.size > 1 else 0]), int(shift[c if shift.size > 1 else 0])


def _bytes(value: int, count: int) -> list[int]:
    return [(value >> (8 * i)) & 0xFF for i in range(count)]


class _Writer:
    """Collects instructions and counts their words (all one-word instructions)."""

    def __init__(self, symbol: str, out: str = "Z") -> None:
        self.symbol = symbol
        self.out = out  # the pointer register outputs are stored through (st out+)
        self.lines: list[str] = []
        self.words = 0
        self.labels = 0

    def op(self, text: str) -> None:
        self.lines.append(f"\t{text}")
        self.words += 1

    def label(self, name: str) -> None:
        self.lines.append(f"{name}:")

    def new_label(self) -> str:
        self.labels += 1
        return f".L{self.symbol}_{self.labels}"


def _compare(w: _Writer, acc: tuple[int, int, int], value: int) -> None:
    """Signed 24-bit compare of the accumulator with a constant (flags for brlt/brge)."""
    for i, (reg, byte) in enumerate(zip(acc, _bytes(value, 3))):
        w.op(f"ldi r17, {byte}")
        w.op(f"{'cp' if i == 0 else 'cpc'} r{reg}, r17")


def _part(w: _Writer, acc: tuple[int, int, int], part: RequantPart) -> None:
    """out = base + byte K/8 of (acc bytes x M + R), stored through the output pointer."""
    kb = part.k // 8
    cols = [18 + p for p in range(kb + 1)]
    for reg, byte in zip(cols, _bytes(part.r, kb + 1)):
        w.op(f"ldi r{reg}, {byte}")
    w.op("clr r16")  # zero for the carries
    for j, mj in enumerate(part.m_bytes):
        pairs = [(i, jj) for i, jj in part.products if jj == j]
        if not pairs:
            continue
        w.op(f"ldi r17, {mj}")
        for i, _ in pairs:
            p = i + j
            w.op(f"mul r{acc[i]}, r17")
            w.op(f"add r{cols[p]}, r0")
            if p + 1 <= kb:
                w.op(f"adc r{cols[p + 1]}, r1")
            for q in range(p + 2, kb + 1):
                w.op(f"adc r{cols[q]}, r16")
    w.op(f"subi r{cols[kb]}, {(-part.base) & 0xFF}")
    w.op(f"st {w.out}+, r{cols[kb]}")


def _requant(w: _Writer, acc: tuple[int, int, int], plan: RequantPlan, lo_acc: int, hi_acc: int) -> int:
    """One channel's requantization; returns its cycles on the longest path."""
    done = w.new_label()
    cycles = 0
    if plan.t_lo > lo_acc:
        ok = w.new_label()
        if plan.origin == plan.t_lo:  # below t_lo: the accumulator is negative
            w.op(f"sbrs r{acc[2]}, 7")
            w.op(f"rjmp {ok}")
            cycles += 2
        else:
            _compare(w, acc, plan.t_lo - plan.origin)
            w.op(f"brge {ok}")
            cycles += 8
        w.op(f"ldi r17, {plan.lo & 0xFF}")
        w.op(f"st {w.out}+, r17")
        w.op(f"rjmp {done}")
        w.label(ok)
    if not plan.parts:
        w.op(f"ldi r17, {plan.hi & 0xFF}")
        w.op(f"st {w.out}+, r17")
        w.label(done)
        return cycles + 3
    if plan.t_hi <= hi_acc:
        ok = w.new_label()
        _compare(w, acc, plan.t_hi - plan.origin)
        w.op(f"brlt {ok}")
        w.op(f"ldi r17, {plan.hi & 0xFF}")
        w.op(f"st {w.out}+, r17")
        w.op(f"rjmp {done}")
        w.label(ok)
        cycles += 8
    if len(plan.parts) == 2:
        positive = w.new_label()
        w.op(f"sbrs r{acc[2]}, 7")
        w.op(f"rjmp {positive}")
        _part(w, acc, plan.parts[0])
        w.op(f"rjmp {done}")
        w.label(positive)
        cycles += 4
    _part(w, acc, plan.parts[-1])
    w.label(done)
    part_cycles = max(len(p.products) * 5 + p.k // 8 + 8 for p in plan.parts)
    return cycles + part_cycles


def _requant_group(
    w: _Writer, group: list[tuple[int, tuple[int, int, int]]], weights: np.ndarray, bias: np.ndarray, plans: list[RequantPlan]
) -> int:
    """The requantization of each (channel, accumulator registers) of a group, stored in order."""
    return sum(_requant(w, acc, plans[c], *acc_range(weights[c], int(bias[c]))) for c, acc in group)


def _push(w: _Writer, saved: list[int]) -> None:
    for reg in saved:
        w.op(f"push r{reg}")


def _prologue(w: _Writer, saved: list[int]) -> None:
    _push(w, saved)
    w.op("movw r28, r24")  # Y = in
    w.op("movw r30, r22")  # Z = out
    if 14 in saved:
        w.op("movw r14, r20")  # row stride


def _epilogue(w: _Writer, saved: list[int]) -> None:
    w.op("clr r1")
    for reg in reversed(saved):
        w.op(f"pop r{reg}")
    w.op("ret")


def _mac(w: _Writer, acc: tuple[int, int, int], load: str) -> None:
    """acc += r16 * the weight `load` puts in r17 (24 bits): 6 cycles after the load."""
    w.op(load)
    w.op("muls r16, r17")
    w.op("sbc r17, r17")  # the product's sign (C = bit 15) for the top byte
    w.op(f"add r{acc[0]}, r0")
    w.op(f"adc r{acc[1]}, r1")
    w.op(f"adc r{acc[2]}, r17")


def _init(w: _Writer, acc: tuple[int, int, int], value: int) -> None:
    for reg, byte in zip(acc, _bytes(value, 3)):
        w.op(f"ldi r17, {byte}")
        w.op(f"mov r{reg}, r17")


def _next_row(w: _Writer) -> None:
    w.op("add r28, r14")
    w.op("adc r29, r15")


@dataclass(frozen=True)
class Window:
    """Where input i of a pixel lies: its row of the window and its byte offset in that row."""

    rows: tuple[int, ...]
    offsets: tuple[int, ...]


def dense_kernel(op_index: int, symbol: str, window: Window, weights: np.ndarray, bias: np.ndarray, plans: list[RequantPlan]) -> AvrKernel:
    """CONV_2D and FULLY_CONNECTED: out[c] = requant_c(bias[c] + sum_i weights[c, i] * in[i]).

    Four channels share each input load. Registers: Y the input (ldd), Z the output (st Z+),
    r2..r13 four 24-bit sums, r14:r15 the row stride, r16 the input byte (then zero), r17
    weights and constants, r18..r23 the product's columns.
    """
    out_c, n = weights.shape
    w = _Writer(symbol)
    group = min(GROUP, out_c)
    saved = [*range(2, 2 + 3 * group), *((14, 15) if max(window.rows) else ()), 16, 17, 28, 29]
    _prologue(w, saved)
    cycles = 8 * len(saved) + 12
    for c0 in range(0, out_c, group):
        channels = list(range(c0, min(c0 + group, out_c)))
        accs = {c: (2 + 3 * k, 3 + 3 * k, 4 + 3 * k) for k, c in enumerate(channels)}
        for c in channels:
            _init(w, accs[c], int(bias[c]) - plans[c].origin)
        cycles += 6 * len(channels)
        row = 0
        for i in range(n):
            nonzero = [c for c in channels if weights[c, i]]
            if not nonzero:
                continue
            while row < window.rows[i]:
                _next_row(w)
                row += 1
            w.op(f"ldd r16, Y+{window.offsets[i]}")
            cycles += 2 + 7 * len(nonzero)
            for c in nonzero:
                _mac(w, accs[c], f"ldi r17, {int(weights[c, i]) & 0xFF}")
        if row:
            w.op("movw r28, r24")
        cycles += _requant_group(w, [(c, accs[c]) for c in channels], weights, bias, plans)
    _epilogue(w, saved)
    return _pixel_kernel(op_index, symbol, _function(symbol, w), 2 * w.words, cycles)


def looped_kernel(
    op_index: int, symbol: str, rows: int, row_len: int, weights: np.ndarray, bias: np.ndarray, plans: list[RequantPlan]
) -> AvrKernel:
    """Layers with many MACs per output: a loop over the inputs of each window row (ld X+) with
    the weights of four channels interleaved in a flash table in the order the loop reads them
    (lpm Z+, 10.5 cycles a MAC), then the four channels' requantizations as immediates.

    Registers: X the input, Z the weights, Y the output (st Y+), r2..r13 four 24-bit sums, r14:r15
    the row stride minus the row, r16 the input byte, r17 the weight, r18:r19 the loop counter
    (then the product's columns r18..r23).
    """
    out_c, n = weights.shape
    table = f"{symbol}_weights"
    w = _Writer(symbol, out="Y")
    group = min(GROUP, out_c)
    saved = [*range(2, 2 + 3 * group), *((14, 15) if rows > 1 else ()), 16, 17, 28, 29]
    _push(w, saved)
    w.op("movw r28, r22")  # Y = out
    if rows > 1:
        w.op(f"subi r20, {row_len & 0xFF}")
        w.op(f"sbci r21, {row_len >> 8}")
        w.op("movw r14, r20")  # from a row's end to the next row's start
    w.op(f"ldi r30, lo8({table})")
    w.op(f"ldi r31, hi8({table})")
    laid: list[int] = []
    cycles = 8 * len(saved) + 10
    for c0 in range(0, out_c, group):
        channels = list(range(c0, min(c0 + group, out_c)))
        accs = [(2 + 3 * k, 3 + 3 * k, 4 + 3 * k) for k in range(len(channels))]
        w.op("movw r26, r24")  # X = in
        for c, acc in zip(channels, accs):
            _init(w, acc, int(bias[c]) - plans[c].origin)
        for fy in range(rows):
            top = w.new_label()
            w.op(f"ldi r18, {row_len & 0xFF}")
            w.op(f"ldi r19, {row_len >> 8}")
            w.label(top)
            w.op("ld r16, X+")
            for acc in accs:
                _mac(w, acc, "lpm r17, Z+")
            w.op("subi r18, 1")
            w.op("sbci r19, 0")
            w.op(f"brne {top}")
            if fy + 1 < rows:
                w.op("add r26, r14")
                w.op("adc r27, r15")
            laid += [int(weights[c, i]) & 0xFF for i in range(fy * row_len, (fy + 1) * row_len) for c in channels]
        cycles += 6 * len(channels) + n * (6 + 9 * len(channels))
        cycles += _requant_group(w, list(zip(channels, accs)), weights, bias, plans)
    _epilogue(w, saved)
    return _pixel_kernel(op_index, symbol, _flash_table(table, laid) + _function(symbol, w), 2 * w.words + len(laid), cycles)


def table_kernel(
    op_index: int, symbol: str, weights: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, out_range: tuple[int, int, int]
) -> AvrKernel:
    """A Dense layer of depth 1 (one MAC per output): each channel's output for each of the 256
    input values, computed here with TFLite's arithmetic, read with `lpm` (6 cycles an output).
    256 bytes a channel, in the section the linker places with the other flash constants."""
    zp, lo, hi = out_range
    x = np.arange(-128, 128, dtype=np.int64)
    rows = []
    for c in range(weights.shape[0]):
        m, s = _multiplier(mult, shift, c)
        acc = int(bias[c]) + int(weights[c, 0]) * x
        rows.append([tflite_requantize(int(a), m, s, zp, lo, hi) & 0xFF for a in acc])
    table = f"{symbol}_table"
    w = _Writer(symbol)
    w.op("movw r26, r22")  # X = out
    w.op("movw r30, r24")
    w.op("ld r18, Z")  # the input
    w.op("subi r18, 0x80")  # its table column: x + 128
    w.op(f"ldi r30, lo8({table})")
    w.op(f"ldi r31, hi8({table})")
    w.op("add r30, r18")
    w.op("adc r31, r1")  # r1 is zero
    for c in range(len(rows)):
        if c:
            w.op("inc r31")  # the next channel's row: 256 bytes on
        w.op("lpm r18, Z")
        w.op("st X+, r18")
    w.op("ret")
    lines = _flash_table(table, [v for row in rows for v in row]) + _function(symbol, w)
    return _pixel_kernel(op_index, symbol, lines, 2 * w.words + 256 * len(rows), 12 + 6 * len(rows))


def depthwise_kernel(
    op_index: int,
    symbol: str,
    weights: np.ndarray,
    bias: np.ndarray,
    mult: np.ndarray,
    shift: np.ndarray,
    out_range: tuple[int, int, int],
    geometry: dict[str, int],
) -> AvrKernel | None:
    """DEPTHWISE_CONV_2D with depth multiplier 1: one function per distinct set of valid filter
    columns (interior, left border, right border, ...); one 24-bit sum in r2..r4, the row
    pointers in r6.., Y the row being read (ldd: column offset + channel)."""
    g = geometry
    kh, kw, ch = g["k_h"], g["k_w"], g["in_c"]
    taps = [(fy, fx) for fy in range(kh) for fx in range(kw)]
    columns = []
    for ox in range(g["out_w"]):
        x0 = ox * g["stride_w"] - g["pad_w"]
        columns.append(range(max(0, -x0), min(kw, g["in_w"] - x0)))
    variants = sorted(set((r.start, r.stop) for r in columns))
    zp, lo, hi = out_range
    # one plan per channel, over the accumulators of every variant (the union of their ranges)
    plans = []
    for c in range(ch):
        lows, highs = [], []
        for start, stop in variants:
            skipped = sum(int(weights[t, c]) for t in range(len(taps)) if not start <= taps[t][1] < stop)
            kept = np.array([weights[t, c] for t in range(len(taps)) if start <= taps[t][1] < stop], np.int64)
            a, b = acc_range(kept, int(bias[c]) + g["in_zp"] * skipped)
            lows.append(a)
            highs.append(b)
        plan = plan_requant(*_multiplier(mult, shift, c), zp, lo, hi, min(lows), max(highs))
        if plan is None or any(p.k > 40 for p in plan.parts):
            return None
        plans.append((plan, min(lows), max(highs)))
    asm: list[str] = []
    names = {}
    words = 0
    slowest = 0
    for k, (start, stop) in enumerate(variants):
        name = f"{symbol}_v{k}"
        names[(start, stop)] = name
        w = _Writer(name)
        rows = kh
        saved = [2, 3, 4, *range(6, 6 + 2 * rows), 16, 17, 28, 29]
        _push(w, saved)
        w.op("movw r26, r24")  # X = the row pointers
        for j in range(2 * rows):
            w.op(f"ld r{6 + j}, X+")
        w.op("movw r30, r22")  # Z = out
        cycles = 8 * len(saved) + 4 * rows + 8
        acc = (2, 3, 4)
        for c in range(ch):
            used = [t for t in range(len(taps)) if start <= taps[t][1] < stop and weights[t, c]]
            skipped = sum(int(weights[t, c]) for t in range(len(taps)) if not start <= taps[t][1] < stop)
            _init(w, acc, int(bias[c]) + g["in_zp"] * skipped - plans[c][0].origin)
            row = -1
            for t in used:
                fy, fx = taps[t]
                if fy != row:
                    w.op(f"movw r28, r{6 + 2 * fy}")
                    row = fy
                    cycles += 1
                w.op(f"ldd r16, Y+{fx * ch + c}")
                _mac(w, acc, f"ldi r17, {int(weights[t, c]) & 0xFF}")
            plan, lo_acc, hi_acc = plans[c]
            cycles += 6 + 9 * len(used) + _requant(w, acc, plan, lo_acc, hi_acc)
        _epilogue(w, saved)
        asm += _function(name, w)
        words += w.words
        slowest = max(slowest, cycles)
    table = f"{symbol}_columns"
    declarations = [f"void {name}(const int8_t* const* rows, int8_t* out);" for name in names.values()]
    declarations.append(
        f"static const mcuq_avr_rows {table}[{len(columns)}] PROGMEM = {{ {', '.join(names[(r.start, r.stop)] for r in columns)} }};"
    )
    return AvrKernel(op_index, "mcuq_depthwise_avr", table, declarations, asm, 2 * words + 2 * len(columns), slowest)


def c_string_literals(asm: list[str]) -> list[str]:
    """The assembly as the C string literals of a top-level `__asm__(...)` statement."""
    return ['"' + line.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '\\n"' for line in asm]


def _pixel_kernel(op_index: int, symbol: str, asm: list[str], code_bytes: int, cycles: int) -> AvrKernel:
    """A kernel of one function `symbol(in, out, row_stride)`; the caller picks its driver."""
    declaration = [f"void {symbol}(const int8_t* in, int8_t* out, mcuq_sz row_stride);"]
    return AvrKernel(op_index, "", symbol, declaration, asm, code_bytes, cycles)


def _flash_table(name: str, values: list[int]) -> list[str]:
    """Bytes in the section the linker places with the other flash constants (lpm reach)."""
    rows = [".byte " + ", ".join(str(v) for v in values[i : i + 32]) for i in range(0, len(values), 32)]
    return [f'.section .progmem.gen.{name},"a",@progbits', f"{name}:", *rows]


def _function(symbol: str, w: _Writer) -> list[str]:
    header = [f'.section .text.{symbol},"ax",@progbits', f".global {symbol}", f".type {symbol}, @function", f"{symbol}:"]
    return header + w.lines + [f".size {symbol}, .-{symbol}"]


def plan_channels(
    weights: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, zp: int, lo: int, hi: int
) -> list[RequantPlan] | None:
    """Every channel's exact short requantization (weights: [channel, input]), or None when one
    has none. Every partial sum lies within the channel's accumulator range, which
    plan_requant keeps within 24 bits."""
    plans = []
    for c in range(weights.shape[0]):
        plan = plan_requant(*_multiplier(mult, shift, c), zp, lo, hi, *acc_range(weights[c], int(bias[c])))
        if plan is None or any(p.k > 40 for p in plan.parts):
            return None
        plans.append(plan)
    return plans


def _const(program: CProgram, name: object) -> np.ndarray:
    return next(c.values for c in program.constants if c.name == name)


def _int(args: dict[str, object], key: str) -> int:
    value = args[key]
    assert isinstance(value, int), key
    return value


def _candidate(program: CProgram, call: KernelCall, symbol: str) -> tuple[AvrKernel, int] | None:
    """A CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED call's generated code and its number of
    pixels, if the layer qualifies: dilation 1, sums within 24 bits, an exact short
    requantization per channel. Up to 64 MACs per output the code is unrolled (a window row
    within `ldd` reach); beyond, a loop over the inputs with the weights in a flash table."""
    if call.function not in ("mcuq_conv2d", "mcuq_depthwise_conv2d", "mcuq_fully_connected"):
        return None
    a: dict[str, object] = dict(call.args)
    bias, mult, shift = _const(program, a["bias"]), _const(program, a["mult"]), _const(program, a["shift"])
    out_range = (_int(a, "out_zp"), _int(a, "act_min"), _int(a, "act_max"))
    replaced = sum(_const(program, a[k]).nbytes for k in ("filter", "bias", "mult", "shift"))
    if call.function in ("mcuq_conv2d", "mcuq_depthwise_conv2d"):
        g = {k: _int(a, k) for k in ("k_h", "k_w", "in_c", "out_c", "in_w", "out_h", "out_w", "stride_w", "pad_w", "in_zp")}
        kh, kw, ic, oc = g["k_h"], g["k_w"], g["in_c"], g["out_c"]
        if _int(a, "block") != 1 or _int(a, "dil_h") != 1 or _int(a, "dil_w") != 1 or kw * ic > 255:
            return None
        pixels = g["out_h"] * g["out_w"]
        if call.function == "mcuq_depthwise_conv2d":
            if _int(a, "depth_mult") != 1 or kh > 5 or kw * ic > 64 or kh * kw > MAX_MACS_PER_OUTPUT:
                return None
            weights = _const(program, a["filter"]).reshape(oc, kh * kw).T  # block 1 layout: [channel][tap]
            kernel = depthwise_kernel(call.op_index, symbol, weights, bias, mult, shift, out_range, g)
            return (replace(kernel, replaces_bytes=replaced), pixels) if kernel else None
        if _int(a, "col_len") == 0 and kh * kw > 1:  # a receptive field too large for an im2col copy
            return None
        taps = [(fy, fx) for fy in range(kh) for fx in range(kw)]
        window = Window(tuple(fy for fy, fx in taps for _ in range(ic)), tuple(fx * ic + c for fy, fx in taps for c in range(ic)))
        weights = _const(program, a["filter"]).reshape(oc, kh * kw * ic)
        driver, rows, row_len = "mcuq_window_avr", kh, kw * ic
    elif call.function == "mcuq_fully_connected":
        depth, units = _int(a, "depth"), _int(a, "units")
        if _int(a, "block") != 1:
            return None
        window = Window((0,) * depth, tuple(range(depth)))
        weights = _const(program, a["filter"]).reshape(units, depth)
        pixels = _int(a, "batches")
        driver, rows, row_len = "mcuq_fully_connected_avr" if pixels > 1 else "", 1, depth  # one row: called directly
        if depth == 1:
            kernel = table_kernel(call.op_index, symbol, weights, bias, mult, shift, out_range)
            return replace(kernel, driver=driver, replaces_bytes=replaced), pixels
    else:
        return None
    plans = plan_channels(weights, bias, mult, shift, *out_range)
    if plans is None:
        return None
    if weights.shape[1] <= MAX_MACS_PER_OUTPUT and row_len <= 64:
        kernel = dense_kernel(call.op_index, symbol, window, weights, bias, plans)
    else:
        kernel = looped_kernel(call.op_index, symbol, rows, row_len, weights, bias, plans)
    return replace(kernel, driver=driver, replaces_bytes=replaced), pixels


def avr_kernels(program: CProgram, prefix: str, flash_budget: int) -> dict[int, AvrKernel]:
    """The layers to generate within `flash_budget` bytes (the code less the arrays it makes
    unused), most cycles saved per byte first (the generic kernels cost about 12 cycles a MAC
    and 200 an output)."""
    candidates = []
    for call in program.calls:
        found = _candidate(program, call, f"{prefix}_avr_op{call.op_index}")
        if found is None:
            continue
        kernel, pixels = found
        op = program.info.ops[call.op_index]
        outputs = int(np.prod(program.info.tensors[op.outputs[0]].shape))
        saved = op.macs * 12 + outputs * 200 - pixels * kernel.cycles_per_pixel
        if saved > 0:
            candidates.append((saved / max(1, kernel.code_bytes - kernel.replaces_bytes), kernel))
    chosen: dict[int, AvrKernel] = {}
    for _, kernel in sorted(candidates, key=lambda c: -c[0]):
        cost = kernel.code_bytes - kernel.replaces_bytes
        if cost <= flash_budget:
            chosen[kernel.op_index] = kernel
            flash_budget -= max(0, cost)
    return chosen


AVR_GENERIC_CODE = 16 * 1024  # the AVR build's kernels and self-test (digits with every kernel: about 16 KB)
AVR_FLASH_RESERVE = 1024


def avr_code_budget(program: CProgram, board: Board, golden_bytes: int) -> int:
    """Flash left for generated AVR layers after the constants, golden vectors, generic code
    and framework; the measured size of the built firmware has the last word."""
    used = program.flash_constant_bytes + program.ram_constant_bytes + golden_bytes + AVR_GENERIC_CODE + board.framework_flash_bytes
    return max(0, board.flash_bytes - used - AVR_FLASH_RESERVE)


def attach_avr_kernels(program: CProgram, prefix: str, board: Board, golden_bytes: int) -> None:
    """On AVR boards, the layers to write as generated assembly (avr_codegen) within the flash
    the board has left; `prefix` names their symbols (the model's C API prefix)."""
    if board.architecture == "avr8":
        program.avr_kernels = avr_kernels(program, prefix, avr_code_budget(program, board, golden_bytes))
