"""TFLite's requantization of one channel as a short exact multiply, found at generation time.

TFLite Micro requantizes an accumulator with a 31-bit multiplier, two roundings and a clamp:
on the AVR that is a 24 x 31-bit product and a variable shift, about 150 cycles. But for one
channel the result is a monotone step function of the accumulator with at most 255 steps, so
it is fully described by its step positions (thresholds). This module computes them exactly
and searches a multiplier M and offset R with a byte-aligned shift K such that

    out = base + ((acc * M + R) >> K)          for acc in the part's range

equals TFLite's result at every threshold, hence (being monotone) at every accumulator. Below
the first threshold the output is act_min, from the last one on act_max: two compares. The
double rounding shifts the steps of negative accumulators by 2^31 / M, so a range that
crosses zero is split there into two parts. Nothing here is approximate: a plan exists only if
it reproduces TFLite at every threshold, and `evaluate` is the reference for the generated code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SHIFTS = (8, 16, 24, 32, 40)  # byte-aligned K: the result is one byte of the product, no shifting


def _srdhm(a: int, b: int) -> int:
    """gemmlowp::SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    q = abs(ab + nudge) // 2**31  # C++ division truncates toward zero
    return q if ab + nudge >= 0 else -q


def _rdivpot(x: int, exponent: int) -> int:
    """gemmlowp::RoundingDivideByPOT."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def tflite_requantize(acc: int, mult: int, shift: int, zp: int, lo: int, hi: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding) + zero point + clamp."""
    x = (acc * (1 << max(shift, 0)) + 2**31) % 2**32 - 2**31
    value = _rdivpot(_srdhm(x, mult), max(-shift, 0)) + zp
    return min(max(value, lo), hi)


@dataclass(frozen=True)
class RequantPart:
    """Accumulators in [start, end): out = base + byte K/8 of (unsigned 24-bit acc) * m + r."""

    start: int
    end: int
    base: int
    k: int
    m: int
    r: int  # modulo 2^(k + 8); includes the offset of the part and the two's complement of negatives
    high_byte: int | None  # the accumulator's top byte when it is the same over the whole part (its products fold into r)

    @property
    def m_bytes(self) -> list[int]:
        return [(self.m >> (8 * i)) & 0xFF for i in range((self.m.bit_length() + 7) // 8)]

    @property
    def products(self) -> list[tuple[int, int]]:
        """(accumulator byte, multiplier byte) pairs the result byte depends on."""
        acc_bytes = 2 if self.high_byte is not None else 3
        return [(i, j) for j, mj in enumerate(self.m_bytes) if mj for i in range(acc_bytes) if i + j <= self.k // 8]


@dataclass(frozen=True)
class RequantPlan:
    """One channel: act_min below t_lo, act_max from t_hi on, the parts in between. The code's
    accumulator holds acc - origin: with origin = t_lo (a window on one side of zero) the
    act_min test is the sign bit."""

    t_lo: int
    t_hi: int
    lo: int
    hi: int
    parts: tuple[RequantPart, ...]
    origin: int = 0


def _thresholds(mult: int, shift: int, zp: int, lo: int, hi: int, acc_min: int, acc_max: int) -> dict[int, int]:
    """q -> the smallest accumulator in [acc_min, acc_max + 1] whose output is >= q: the
    linear estimate of the step, moved to the exact one with TFLite's arithmetic."""

    def f(a: int) -> int:
        return tflite_requantize(a, mult, shift, zp, lo, hi)

    out = {}
    e = -shift
    for q in range(lo + 1, hi + 1):
        # acc * mult + 2^30 (+ 2^(30+e), the second rounding) reaches (q - zp) * 2^(31+e)
        estimate = (((q - zp) << (31 + e)) - (1 << 30) - ((1 << (29 + e)) << 1 if e > 0 else 0)) // mult
        a = min(max(estimate, acc_min), acc_max + 1)
        while a > acc_min and f(a - 1) >= q:
            a -= 1
        while a <= acc_max and f(a) < q:
            a += 1
        out[q] = a
    return out


def _solve(steps: np.ndarray, k: int) -> tuple[int, int] | None:
    """Smallest M and an R with floor((u * M + R) / 2^k) = j on every step (j, u) of `steps`
    (j = 0 at u = 0; the last row is one past the part: value j_last + 1 at its end)."""
    j, u = steps[:, 0], steps[:, 1]
    two = 1 << k
    # lower rows (all but the last): u_a*M + R >= j_a*2^k; upper rows (all but the first): (u_b-1)*M + R < j_b*2^k
    ja, ua = j[:-1, None], u[:-1, None]
    jb, ub = j[None, 1:], u[None, 1:]
    d = ub - 1 - ua
    n = (jb - ja) * two - 1
    if np.any((d == 0) & (n < 0)):
        return None
    pos, neg = d > 0, d < 0
    m_hi = int(np.min(n[pos] // d[pos])) if pos.any() else None
    m_lo = max(1, int(np.max(-((n[neg]) // -d[neg])))) if neg.any() else 1
    if m_hi is not None and m_lo > m_hi:
        return None
    m = m_lo
    lower = max(0, max(int(a) * two - int(b) * m for a, b in steps[:-1]))
    upper = min(int(a) * two - (int(b) - 1) * m - 1 for a, b in steps[1:])
    return (m, lower) if lower <= upper else None


def _part(t: dict[int, int], start: int, end: int, ref: dict[int, int], origin: int) -> RequantPart | None:
    base = ref[start]
    rows = [(0, 0)] + [(q - base, t[q] - start) for q in sorted(t) if start < t[q] < end and q > base]
    rows.append((ref[end - 1] - base + 1, end - start))
    steps = np.array(rows, dtype=np.int64)
    v_start, v_end = start - origin, end - origin  # what the code's accumulator holds
    top = (v_start >> 16) & 0xFF if (v_start >> 16) == ((v_end - 1) >> 16) else None
    best: RequantPart | None = None
    for k in SHIFTS:
        found = _solve(steps, k)
        if found is None:
            continue
        m, r = found
        # the generated code multiplies the accumulator's unsigned 24-bit pattern: fold the
        # part's start and, for negatives, the 2^24 of the two's complement into r
        r_raw = r - v_start * m - ((1 << 24) * m if v_start < 0 else 0)
        if top is not None:
            r_raw += top * m << 16
        part = RequantPart(start, end, base, k, m, r_raw % (1 << (k + 8)), top)
        if best is None or len(part.products) < len(best.products):
            best = part
    return best


def plan_requant(mult: int, shift: int, zp: int, lo: int, hi: int, acc_min: int, acc_max: int) -> RequantPlan | None:
    """The exact short form of one channel's requantization over [acc_min, acc_max], or None
    (a right shift and a 24-bit accumulator range are required)."""
    if shift > 0 or mult <= 0 or acc_min < -(2**23) or acc_max >= 2**23 or lo >= hi:
        return None
    t = _thresholds(mult, shift, zp, lo, hi, acc_min, acc_max)
    t_lo, t_hi = t[lo + 1], t[hi]
    if t_lo >= t_hi or t_lo > acc_max or t_hi <= acc_min:  # constant over the whole range: no part
        return RequantPlan(t_lo, t_hi, lo, hi, ())
    t_lo, t_hi = max(t_lo, acc_min), min(t_hi, acc_max + 1)
    bounds = [(t_lo, 0), (0, t_hi)] if t_lo < 0 < t_hi else [(t_lo, t_hi)]
    # one part: count from t_lo when every accumulator stays within 24 bits from there
    origin = t_lo if len(bounds) == 1 and acc_min - t_lo >= -(2**23) and acc_max - t_lo < 2**23 else 0
    needed = {a for s, e in bounds for a in (s, e - 1)}
    ref = {a: tflite_requantize(a, mult, shift, zp, lo, hi) for a in needed}
    parts = []
    for start, end in bounds:
        part = _part(t, start, end, ref, origin)
        if part is None:
            return None
        parts.append(part)
    return RequantPlan(t_lo, t_hi, lo, hi, tuple(parts), origin)


def evaluate(plan: RequantPlan, acc: int) -> int:
    """What the generated code computes (the same byte arithmetic)."""
    if acc < plan.t_lo:
        return plan.lo
    if acc >= plan.t_hi:
        return plan.hi
    for part in plan.parts:
        if part.start <= acc < part.end:
            pattern = (acc - plan.origin) & 0xFFFFFF
            if part.high_byte is not None:
                pattern &= 0xFFFF
            total = sum((((pattern >> (8 * i)) & 0xFF) * part.m_bytes[j]) << (8 * (i + j)) for i, j in part.products)
            return part.base + (((total + part.r) >> part.k) & 0xFF)
    raise AssertionError(f"accumulator {acc} in no part of {plan}")
