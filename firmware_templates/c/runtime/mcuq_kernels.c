/* mcuq plain-C int8 runtime kernels. Each function mirrors the TensorFlow Lite Micro
 * reference integer kernel of the same op (tensorflow/lite/kernels/internal/reference/
 * integer_ops, gemmlowp fixedpoint.h) operation for operation, so that outputs are
 * bit-exact with TFLite Micro. Layout is NHWC with batch 1 folded away by the generator. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__AVR__) && !defined(MCUQ_KEEP_OPT_LEVEL)
/* The SIMD loops need -O2's register allocation (-Os, PlatformIO's default, spills the
 * accumulators to the stack and doubles the instruction count); AVR keeps -Os (flash). */
#pragma GCC optimize("O2")
#endif
#include "mcuq_kernels.h"

#include <math.h>
#include <string.h>

#define MCUQ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MCUQ_MAX(a, b) ((a) > (b) ? (a) : (b))
#define MCUQ_CLAMP(x, lo, hi) MCUQ_MIN(MCUQ_MAX((x), (lo)), (hi))
/* The per-output requantization is inlined into the kernels on 32-bit targets (a call costs
 * as much as the arithmetic); AVR keeps one copy (flash). */
#if defined(__AVR__)
#define MCUQ_HOT static inline
#else
#define MCUQ_HOT static inline __attribute__((always_inline))
#endif
/* weight (int8) x (input + offset) (within +-255) always fits 16 bits (|p| <= 32640): on AVR this
 * keeps the multiply in the 8/16-bit hardware multiplier instead of a 32-bit library call. */
#define MCUQ_MAC16(w, x) ((int32_t)(int16_t)((int16_t)(w) * (int16_t)(x)))

#if defined(__AVR__)
/* AVR: |a| * |b| as a 64-bit (hi, lo) pair with the 8x8 hardware multiplier (16 MULs, ~120
 * cycles; libgcc's 64-bit multiply takes several hundred). */
static inline void umul32x32(uint32_t a, uint32_t b, uint32_t* lo_out, uint32_t* hi_out) {
  uint32_t lo = 0, hi = 0;
  uint8_t z = 0;
  __asm__(
        "mul %A[a], %A[b]\n\t"
        "add %A[lo], r0\n\t"
        "adc %B[lo], r1\n\t"
        "adc %C[lo], %[z]\n\t"
        "adc %D[lo], %[z]\n\t"
        "adc %A[hi], %[z]\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %A[a], %B[b]\n\t"
        "add %B[lo], r0\n\t"
        "adc %C[lo], r1\n\t"
        "adc %D[lo], %[z]\n\t"
        "adc %A[hi], %[z]\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %A[a], %C[b]\n\t"
        "add %C[lo], r0\n\t"
        "adc %D[lo], r1\n\t"
        "adc %A[hi], %[z]\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %A[a], %D[b]\n\t"
        "add %D[lo], r0\n\t"
        "adc %A[hi], r1\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %B[a], %A[b]\n\t"
        "add %B[lo], r0\n\t"
        "adc %C[lo], r1\n\t"
        "adc %D[lo], %[z]\n\t"
        "adc %A[hi], %[z]\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %B[a], %B[b]\n\t"
        "add %C[lo], r0\n\t"
        "adc %D[lo], r1\n\t"
        "adc %A[hi], %[z]\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %B[a], %C[b]\n\t"
        "add %D[lo], r0\n\t"
        "adc %A[hi], r1\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %B[a], %D[b]\n\t"
        "add %A[hi], r0\n\t"
        "adc %B[hi], r1\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %C[a], %A[b]\n\t"
        "add %C[lo], r0\n\t"
        "adc %D[lo], r1\n\t"
        "adc %A[hi], %[z]\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %C[a], %B[b]\n\t"
        "add %D[lo], r0\n\t"
        "adc %A[hi], r1\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %C[a], %C[b]\n\t"
        "add %A[hi], r0\n\t"
        "adc %B[hi], r1\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %C[a], %D[b]\n\t"
        "add %B[hi], r0\n\t"
        "adc %C[hi], r1\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %D[a], %A[b]\n\t"
        "add %D[lo], r0\n\t"
        "adc %A[hi], r1\n\t"
        "adc %B[hi], %[z]\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %D[a], %B[b]\n\t"
        "add %A[hi], r0\n\t"
        "adc %B[hi], r1\n\t"
        "adc %C[hi], %[z]\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %D[a], %C[b]\n\t"
        "add %B[hi], r0\n\t"
        "adc %C[hi], r1\n\t"
        "adc %D[hi], %[z]\n\t"
        "mul %D[a], %D[b]\n\t"
        "add %C[hi], r0\n\t"
        "adc %D[hi], r1\n\t"
        "clr __zero_reg__\n\t"
        : [lo] "+&r"(lo), [hi] "+&r"(hi)
        : [a] "r"(a), [b] "r"(b), [z] "r"(z)
        : "r0");
  *lo_out = lo;
  *hi_out = hi;
}
#endif

/* gemmlowp::SaturatingRoundingDoublingHighMul. gemmlowp adds a nudge of 2^30 (ab >= 0) or
 * 1 - 2^30 (ab < 0) and divides by 2^31 truncating toward zero; both cases equal
 * floor((ab + 2^30) / 2^31), one 64-bit add and shift. AVR has no fast 64-bit multiply: the
 * product is formed from four 16x16 -> 32 hardware multiplies on magnitudes. */
MCUQ_HOT int32_t srdhm_core(int32_t a, int32_t b) {
#if defined(__AVR__)
  {
    const uint8_t negative = (a < 0) != (b < 0);
    uint32_t lo, hi, t;
    umul32x32(a < 0 ? (uint32_t)0 - (uint32_t)a : (uint32_t)a, b < 0 ? (uint32_t)0 - (uint32_t)b : (uint32_t)b, &lo, &hi);
    /* |ab| + 2^30 (product >= 0) or |ab| + 2^30 - 1 (product < 0, floor of the negation) */
    t = lo + (negative ? 0x3FFFFFFFu : 0x40000000u);
    hi += t < lo;
    t = (hi << 1) | (t >> 31);
    return negative ? -(int32_t)t : (int32_t)t;
  }
#else
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
#endif
}

MCUQ_HOT int32_t srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX; /* the one product that overflows */
  return srdhm_core(a, b);
}

/* gemmlowp::RoundingDivideByPOT */
int32_t mcuq_rdivpot(int32_t x, int exponent) {
  int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  int32_t remainder = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

#if defined(__AVR__)
/* mbqm(x, *mult, shift) saturated to int16, for |x| < 2^23 (nearly every accumulator on AVR:
 * a few hundred int8 products), shift <= 0 and a multiplier in [0, 2^31) read from flash.
 * srdhm: a signed 24 x unsigned 32-bit product by columns (12 MUL/MULSU; a 3-byte accumulator
 * whose low byte leaves each column), + 2^30, bits 31..54. Only call-clobbered registers, so
 * the caller saves nothing. */
__attribute__((always_inline)) static inline int16_t mbqm_avr24(int32_t x, const int32_t* mult, int8_t shift) {
  register int32_t r __asm__("r22") = x;
  const int32_t* z = mult;
  __asm__(
      "lpm  r18, Z+\n\t" /* m0..m3 */
      "lpm  r19, Z+\n\t"
      "lpm  r20, Z+\n\t"
      "lpm  r21, Z\n\t"
      "clr  r30\n\t" /* zero */
      "mov  r26, r22\n\t" /* x0 */
      "mov  r27, r23\n\t" /* x1 */
      "mov  r22, r24\n\t" /* x2 (signed; MULSU needs r16..r23) */
      /* column 0: acc = r23 r24 r25 */
      "mul  r26, r18\n\t"
      "mov  r24, r1\n\t"
      "clr  r25\n\t"
      /* column 1: acc = r24 r25 r23 */
      "clr  r23\n\t"
      "mul  r26, r19\n\t"
      "add  r24, r0\n\t"
      "adc  r25, r1\n\t"
      "adc  r23, r30\n\t"
      "mul  r27, r18\n\t"
      "add  r24, r0\n\t"
      "adc  r25, r1\n\t"
      "adc  r23, r30\n\t"
      /* column 2: acc = r25 r23 r24 */
      "clr  r24\n\t"
      "mul  r26, r20\n\t"
      "add  r25, r0\n\t"
      "adc  r23, r1\n\t"
      "adc  r24, r30\n\t"
      "mul  r27, r19\n\t"
      "add  r25, r0\n\t"
      "adc  r23, r1\n\t"
      "adc  r24, r30\n\t"
      "mulsu r22, r18\n\t"
      "sbc  r31, r31\n\t" /* sign extension of the signed product (C = its bit 15) */
      "add  r25, r0\n\t"
      "adc  r23, r1\n\t"
      "adc  r24, r31\n\t"
      /* column 3: acc = r23 r24 r25 */
      "mov  r25, r24\n\t"
      "lsl  r25\n\t"
      "sbc  r25, r25\n\t"
      "mul  r26, r21\n\t"
      "add  r23, r0\n\t"
      "adc  r24, r1\n\t"
      "adc  r25, r30\n\t"
      "mul  r27, r20\n\t"
      "add  r23, r0\n\t"
      "adc  r24, r1\n\t"
      "adc  r25, r30\n\t"
      "mulsu r22, r19\n\t"
      "sbc  r31, r31\n\t"
      "add  r23, r0\n\t"
      "adc  r24, r1\n\t"
      "adc  r25, r31\n\t"
      "ldi  r31, 0x40\n\t" /* + 2^30 */
      "add  r23, r31\n\t"
      "adc  r24, r30\n\t"
      "adc  r25, r30\n\t"
      "bst  r23, 7\n\t" /* bit 31 */
      /* column 4: acc = r24 r25 r23 */
      "mov  r23, r25\n\t"
      "lsl  r23\n\t"
      "sbc  r23, r23\n\t"
      "mul  r27, r21\n\t"
      "add  r24, r0\n\t"
      "adc  r25, r1\n\t"
      "adc  r23, r30\n\t"
      "mulsu r22, r20\n\t"
      "sbc  r31, r31\n\t"
      "add  r24, r0\n\t"
      "adc  r25, r1\n\t"
      "adc  r23, r31\n\t"
      /* column 5: acc = r25 r23 r26; byte 4 stays in r24 */
      "mov  r26, r23\n\t"
      "lsl  r26\n\t"
      "sbc  r26, r26\n\t"
      "mulsu r22, r21\n\t"
      "sbc  r31, r31\n\t"
      "add  r25, r0\n\t"
      "adc  r23, r1\n\t"
      "adc  r26, r31\n\t"
      "clr  r1\n\t"
      /* bytes 4..7 = r24 r25 r23 r26; result = bits 31..62 into r22..r25 */
      "lsl  r24\n\t"
      "rol  r25\n\t"
      "rol  r23\n\t"
      "rol  r26\n\t"
      "bld  r24, 0\n\t"
      "mov  r22, r24\n\t"
      "mov  r24, r23\n\t"
      "mov  r23, r25\n\t"
      /* r = r24:r23:r22 (|r| < 2^23). Rounding divide by 2^E, E = -shift: r - [r < 0], whole
       * bytes while E > 8, then (t * 2^(8-E) + 128) >> 8 with 2^(8-E) built by bit tests. */
      "mov  r27, %[s]\n\t"
      "neg  r27\n\t"
      "breq 8f\n\t"
      "sbrs r24, 7\n\t"
      "rjmp 2f\n\t"
      "subi r22, 1\n\t"
      "sbci r23, 0\n\t"
      "sbci r24, 0\n\t"
      "2:\n\t"
      "cpi  r27, 9\n\t"
      "brlo 3f\n\t"
      "mov  r22, r23\n\t"
      "mov  r23, r24\n\t"
      "lsl  r24\n\t"
      "sbc  r24, r24\n\t"
      "subi r27, 8\n\t"
      "rjmp 2b\n\t"
      "3:\n\t"
      "ldi  r31, 8\n\t"
      "sub  r31, r27\n\t"
      "ldi  r18, 1\n\t"
      "sbrc r31, 1\n\t"
      "ldi  r18, 4\n\t"
      "sbrc r31, 2\n\t"
      "swap r18\n\t"
      "sbrc r31, 0\n\t"
      "lsl  r18\n\t"
      "mov  r21, r24\n\t"
      "mul  r22, r18\n\t"
      "mov  r20, r1\n\t"
      "lsl  r0\n\t"
      "adc  r20, r30\n\t"
      "mov  r19, r30\n\t"
      "adc  r19, r30\n\t"
      "mul  r23, r18\n\t"
      "add  r20, r0\n\t"
      "adc  r19, r1\n\t"
      "mulsu r21, r18\n\t"
      "mov  r22, r20\n\t"
      "add  r19, r0\n\t"
      "mov  r23, r19\n\t"
      "adc  r1, r30\n\t"
      "mov  r24, r1\n\t"
      "clr  r1\n\t"
      /* saturate to int16 in r23:r22 */
      "8:\n\t"
      "mov  r26, r23\n\t"
      "lsl  r26\n\t"
      "sbc  r26, r26\n\t"
      "cp   r24, r26\n\t"
      "breq 9f\n\t"
      "ldi  r22, 0xFF\n\t"
      "ldi  r23, 0x7F\n\t"
      "sbrs r24, 7\n\t"
      "rjmp 9f\n\t"
      "ldi  r22, 0x00\n\t"
      "ldi  r23, 0x80\n\t"
      "9:\n\t"
      : "+r"(r), "+z"(z)
      : [s] "r"(shift)
      : "r0", "r18", "r19", "r20", "r21", "r26", "r27", "cc");
  return (int16_t)(uint16_t)(uint32_t)r;
}
#endif

/* tflite::MultiplyByQuantizedMultiplier (double rounding, TFLM's default build). The
 * multiplier is positive, so srdhm never returns INT32_MIN and RoundingDivideByPOT (round half
 * away from zero) is floor((floor((x - [x < 0]) / 2^(e-1)) + 1) / 2): two shifts, no masks. */
MCUQ_HOT int32_t mbqm(int32_t x, int32_t multiplier, int shift) {
  int32_t r;
  if (shift > 0) x = (int32_t)((uint32_t)x << shift);
  r = srdhm_core(x, multiplier); /* multiplier > 0: the INT32_MIN * INT32_MIN case cannot occur */
  if (shift < 0) {
    int e = -shift - 1;
#if defined(__AVR__)
    r -= r < 0;
    if (e >= 16) r >>= 16, e -= 16; /* whole bytes first: AVR shifts one bit per loop turn */
    if (e >= 8) r >>= 8, e -= 8;
    r = ((r >> e) + 1) >> 1;
#else
    r = (((r - (r < 0)) >> e) + 1) >> 1;
#endif
  }
  return r;
}

int32_t mcuq_srdhm(int32_t a, int32_t b) { return srdhm(a, b); }
int32_t mcuq_mbqm(int32_t x, int32_t multiplier, int shift) { return mbqm(x, multiplier, shift); }

/* ---- SIMD: ACLE intrinsics on Cortex-M with the DSP extension; host builds with
 * -DMCUQ_EMULATE_SIMD run the same arithmetic in portable C (so the host tests check the
 * SIMD code path and weight layout bit for bit, and qemu checks the real instructions). ---- */
#if defined(__ARM_FEATURE_DSP) && !defined(MCUQ_NO_SIMD)
#include <arm_acle.h>
#define MCUQ_SIMD 1
static inline uint32_t sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int8x4_t)x); }
static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int16x2_t)a, (int16x2_t)b, acc); }
static inline int32_t smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb((int32_t)a, (int32_t)b, acc); }
static inline int32_t smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt((int32_t)a, (int32_t)b, acc); }
#elif defined(MCUQ_EMULATE_SIMD)
#define MCUQ_SIMD 1
static inline int32_t lo16(uint32_t a) { return (int16_t)(uint16_t)(a & 0xFFFFu); }
static inline int32_t hi16(uint32_t a) { return (int16_t)(uint16_t)(a >> 16); }
static inline uint32_t sxtb16(uint32_t x) {
  return (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)(x & 0xFFu) |
         ((uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)((x >> 16) & 0xFFu) << 16);
}
static inline uint32_t sxtb16_ror8(uint32_t x) { return sxtb16((x >> 8) | (x << 24)); }
static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(lo16(a) * lo16(b)) + (uint32_t)(hi16(a) * hi16(b)));
}
static inline int32_t smlabb(uint32_t a, uint32_t b, int32_t acc) { return (int32_t)((uint32_t)acc + (uint32_t)(lo16(a) * lo16(b))); }
static inline int32_t smlatt(uint32_t a, uint32_t b, int32_t acc) { return (int32_t)((uint32_t)acc + (uint32_t)(hi16(a) * hi16(b))); }
#endif

#ifdef MCUQ_SIMD
static inline uint32_t rd32(const int8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one LDR: Cortex-M3/M4/M7/M33 allow unaligned word loads */
  return v;
}

/* Four output channels over n inputs (block layout: per 4 inputs, 4 bytes per channel). */
static const int8_t* dot4_simd(const int8_t* w, const int8_t* x, mcuq_sz n, int32_t* acc) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  const mcuq_sz tail = n & 3;
  mcuq_sz k, i;
  for (k = n >> 2; k > 0; --k, x += 4, w += 16) {
    const uint32_t xv = rd32(x), xe = sxtb16(xv), xo = sxtb16_ror8(xv);
    uint32_t wv = rd32(w);
    a0 = smlad(sxtb16(wv), xe, a0);
    a0 = smlad(sxtb16_ror8(wv), xo, a0);
    wv = rd32(w + 4);
    a1 = smlad(sxtb16(wv), xe, a1);
    a1 = smlad(sxtb16_ror8(wv), xo, a1);
    wv = rd32(w + 8);
    a2 = smlad(sxtb16(wv), xe, a2);
    a2 = smlad(sxtb16_ror8(wv), xo, a2);
    wv = rd32(w + 12);
    a3 = smlad(sxtb16(wv), xe, a3);
    a3 = smlad(sxtb16_ror8(wv), xo, a3);
  }
  for (i = 0; i < tail; ++i) {
    const int16_t xi = x[i];
    a0 += MCUQ_MAC16(w[i], xi);
    a1 += MCUQ_MAC16(w[tail + i], xi);
    a2 += MCUQ_MAC16(w[2 * tail + i], xi);
    a3 += MCUQ_MAC16(w[3 * tail + i], xi);
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
  return w + 4 * tail;
}

static int32_t dot1_simd(const int8_t* w, const int8_t* x, mcuq_sz n, int32_t a) {
  mcuq_sz k, i;
  for (k = n >> 2; k > 0; --k, x += 4, w += 4) {
    const uint32_t xv = rd32(x), wv = rd32(w);
    a = smlad(sxtb16(wv), sxtb16(xv), a);
    a = smlad(sxtb16_ror8(wv), sxtb16_ror8(xv), a);
  }
  for (i = 0; i < (n & 3); ++i) a += MCUQ_MAC16(w[i], x[i]);
  return a;
}
#endif

/* One channel over n sequential weights and inputs (the AVR path reads the weights with
 * sequential `lpm Z+` and keeps the product in the 8x8 hardware multiplier). */
#if defined(__AVR__)
/* One MAC into a 24-bit sum: weight by `lpm Z+`, input by `ld X+`, signed 8x8 product, its
 * sign (carry = bit 15) extended into the top byte. 11 cycles. */
#define MCUQ_AVR_MAC24              \
  "lpm  %[wv], Z+\n\t"              \
  "ld   %[xv], X+\n\t"              \
  "muls %[wv], %[xv]\n\t"           \
  "sbc  %[wv], %[wv]\n\t"           \
  "add  %A[a], r0\n\t"              \
  "adc  %B[a], r1\n\t"              \
  "adc  %C[a], %[wv]\n\t"
#endif

#if defined(__AVR__)
__attribute__((always_inline)) static inline
#else
static
#endif
int32_t dot1(const int8_t* w, const int8_t* x, mcuq_sz n, int32_t acc) {
#if defined(__AVR__)
  /* chunks of at most 252 products (|sum| < 2^22) summed in 24 bits, four per loop turn:
   * 11.75 cycles a MAC */
  while (n > 0) {
    const uint8_t count = n > 252 ? 252 : (uint8_t)n;
    uint8_t quads = count >> 2, rest = count & 3, wv, xv;
    uint32_t part = 0;
    n -= count;
    __asm__ volatile(
        "tst  %[q]\n\t"
        "breq 2f\n\t"
        "1:\n\t"
        MCUQ_AVR_MAC24
        MCUQ_AVR_MAC24
        MCUQ_AVR_MAC24
        MCUQ_AVR_MAC24
        "dec  %[q]\n\t"
        "brne 1b\n\t"
        "2:\n\t"
        "tst  %[r]\n\t"
        "breq 4f\n\t"
        "3:\n\t"
        MCUQ_AVR_MAC24
        "dec  %[r]\n\t"
        "brne 3b\n\t"
        "4:\n\t"
        "clr  __zero_reg__\n\t"
        : [a] "+r"(part), [q] "+r"(quads), [r] "+r"(rest), "+z"(w), "+x"(x), [wv] "=&d"(wv), [xv] "=&d"(xv)
        :
        : "r0", "memory");
    acc += (int32_t)(part << 8) >> 8; /* sign-extend the 24-bit partial sum */
  }
  return acc;
#else
#ifdef MCUQ_SIMD
  return dot1_simd(w, x, n, acc);
#else
  for (; n > 0; --n) acc += MCUQ_MAC16(MCUQ_RD_I8(w++), *x++);
  return acc;
#endif
#endif
}

/* acc[k] = bias[k] + channel k's n weights (sequential from w) times x, for count channels;
 * returns the weights after them. Out of line with few live values: on AVR the loop stays in
 * registers. The AVR FULLY_CONNECTED path and the LSTM's gates (mcuq_lstm.c) use it. */
__attribute__((noinline)) const int8_t* mcuq_dot_rows_s8(const int8_t* w, const int8_t* x, mcuq_sz n, const int32_t* bias,
                                                         uint8_t count, int32_t* acc) {
  for (; count > 0; --count, w += n, ++bias) *acc++ = dot1(w, x, n, MCUQ_RD_I32(bias));
  return w;
}

/* acc[0..nb) += one segment of n inputs against nb channels in the block layout; returns the
 * weights after the segment. */
static const int8_t* dot_block(const int8_t* w, const int8_t* x, mcuq_sz n, mcuq_sz nb, int32_t* acc) {
  const mcuq_sz tail = n & 3;
  mcuq_sz k, j, i;
  if (nb == 1) {
    acc[0] = dot1(w, x, n, acc[0]);
    return w + n;
  }
#ifdef MCUQ_SIMD
  if (nb == 4) return dot4_simd(w, x, n, acc);
#endif
  for (k = n >> 2; k > 0; --k, x += 4)
    for (j = 0; j < nb; ++j, w += 4)
      acc[j] += MCUQ_MAC16(MCUQ_RD_I8(w), x[0]) + MCUQ_MAC16(MCUQ_RD_I8(w + 1), x[1]) +
                MCUQ_MAC16(MCUQ_RD_I8(w + 2), x[2]) + MCUQ_MAC16(MCUQ_RD_I8(w + 3), x[3]);
  for (j = 0; j < nb; ++j, w += tail)
    for (i = 0; i < tail; ++i) acc[j] += MCUQ_MAC16(MCUQ_RD_I8(w + i), x[i]);
  return w;
}

/* pad[0..nb) += the segment's weights (taps that lie in the padding). */
static const int8_t* wsum_block(const int8_t* w, mcuq_sz n, mcuq_sz nb, int32_t* pad) {
  const int32_t count = (mcuq_sz)n * nb;
  int32_t e;
  mcuq_sz j;
  if (nb == 1) {
    for (e = 0; e < count; ++e) pad[0] += MCUQ_RD_I8(w + e);
  } else {
    for (e = 0; e < count; ++e) {
      const mcuq_sz full = n & ~3;
      j = e < (mcuq_sz)full * nb ? (mcuq_sz)((e >> 2) % nb) : (mcuq_sz)((e - (mcuq_sz)full * nb) / (n & 3));
      pad[j] += MCUQ_RD_I8(w + e);
    }
  }
  return w + count;
}

/* A row segment (k_w taps of in_c inputs) that crosses the left or right border. */
static const int8_t* border_row(const int8_t* w, const int8_t* in_row, mcuq_sz x0, mcuq_sz in_w, mcuq_sz in_c,
                                mcuq_sz k_w, mcuq_sz nb, int32_t* acc, int32_t* pad) {
  const mcuq_sz n = k_w * in_c, full = n & ~3, tail = n & 3;
  mcuq_sz fx, c, j;
  for (fx = 0; fx < k_w; ++fx) {
    const mcuq_sz ix = x0 + fx;
    const int valid = ix >= 0 && ix < in_w;
    for (c = 0; c < in_c; ++c) {
      const mcuq_sz e = fx * in_c + c;
      const int8_t* we = e < full ? w + (mcuq_sz)(e >> 2) * 4 * nb + (e & 3) : w + (mcuq_sz)full * nb + (e - full);
      const mcuq_sz step = e < full ? 4 : tail;
      for (j = 0; j < nb; ++j) {
        const int8_t v = MCUQ_RD_I8(we + j * step);
        if (valid) {
          acc[j] += MCUQ_MAC16(v, in_row[(mcuq_sz)ix * in_c + c]);
        } else {
          pad[j] += v;
        }
      }
    }
  }
  return w + (mcuq_sz)n * nb;
}

/* TFLite's MultiplyByQuantizedMultiplier + output offset + activation clamp. */
#if defined(__AVR__)
/* Left shifts and accumulators beyond +-2^23: the general 32-bit path, then out_zp and the clamp
 * (oq = {out_zp, act_min, act_max}). */
__attribute__((noinline)) static int8_t requantize_wide(int32_t acc, const int32_t* mult, int8_t s, const int16_t* oq) {
  const int32_t v = mbqm(acc, MCUQ_RD_I32(mult), s) + oq[0];
  return (int8_t)MCUQ_CLAMP(v, oq[1], oq[2]);
}

#define MCUQ_AVR_GROUP 8 /* channels accumulated before their requantization (32 B of stack) */

/* One output with the layer's (out_zp, act_min, act_max) = oq (three int16s in both parameter
 * structs; lo/hi: the bounds minus out_zp, relu: act_min >= out_zp, hoisted by the callers).
 * Accumulators within +-2^23 with a right shift (nearly all) take mbqm_avr24, inlined. Its
 * 16-bit result is clamped to the bounds minus the zero point first, so adding the zero point
 * cannot overflow. */
__attribute__((always_inline)) static inline int8_t requant_one_avr(int32_t a, const int32_t* mult, int8_t s, const int16_t* oq,
                                                                    int16_t lo, int16_t hi, uint8_t relu) {
  const int8_t b2 = (int8_t)((uint32_t)a >> 16), b3 = (int8_t)((uint32_t)a >> 24);
  int16_t v;
  if (s > 0 || b3 != (b2 >> 7)) return requantize_wide(a, mult, s, oq);
  /* ReLU-like floor: a negative accumulator rounds to a value <= 0 (the multiplier is
   * positive), so the output is act_min without the multiply. */
  if (b3 < 0 && relu) return (int8_t)oq[1];
  v = mbqm_avr24(a, mult, s);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return (int8_t)(v + oq[0]);
}

/* acc[0..n) -> out[0..n), per-channel parameters: the loop's values stay in call-saved
 * registers, nothing is pushed per output. */
__attribute__((noinline)) static void requantize_group_avr(const int32_t* acc, uint8_t n, const int32_t* mult, const int8_t* shift,
                                                           const int16_t* oq, int8_t* out) {
  const int16_t lo = oq[1] - oq[0], hi = oq[2] - oq[0];
  const uint8_t relu = oq[1] >= oq[0];
  for (; n > 0; --n, ++acc, ++mult, ++shift, ++out) *out = requant_one_avr(*acc, mult, MCUQ_RD_I8(shift), oq, lo, hi, relu);
}

/* One output (the kernels' generic paths). */
__attribute__((noinline)) static int8_t requantize_avr(int32_t acc, const int32_t* mult, const int8_t* shift, const int16_t* oq) {
  return requant_one_avr(acc, mult, MCUQ_RD_I8(shift), oq, oq[1] - oq[0], oq[2] - oq[0], oq[1] >= oq[0]);
}
#define MCUQ_REQUANT(acc, p, q) requantize_avr((acc), (p)->mult + (q), (p)->shift + (q), &(p)->out_zp)
#else
MCUQ_HOT int8_t requantize(int32_t acc, const int32_t* mult, const int8_t* shift, int32_t out_zp, int32_t lo, int32_t hi) {
  acc = mbqm(acc, MCUQ_RD_I32(mult), MCUQ_RD_I8(shift)) + out_zp;
  return (int8_t)MCUQ_CLAMP(acc, lo, hi);
}
#define MCUQ_REQUANT(acc, p, q) requantize((acc), (p)->mult + (q), (p)->shift + (q), (p)->out_zp, (p)->act_min, (p)->act_max)
#endif

/* The LSTM's gate requantization (mcuq_lstm.c; its products are mcuq_dot_rows_s8, AVR: 24-bit
 * sums of 8x8 `muls`, ~12 cycles a MAC; Cortex-M with DSP: SMLAD): FullyConnected<int8, int8,
 * int16>, MultiplyByQuantizedMultiplier then the int16 clamp, on AVR by mbqm_avr24 when the
 * accumulator fits 24 bits and the shift is a right shift (~200 cycles a call against ~450 for
 * the 32-bit path). `mult` is a constant (flash). */
int16_t mcuq_requant_s16(int32_t acc, const int32_t* mult, int8_t shift) {
#if defined(__AVR__)
  const int8_t b2 = (int8_t)((uint32_t)acc >> 16), b3 = (int8_t)((uint32_t)acc >> 24);
  if (shift <= 0 && b3 == (b2 >> 7)) return mbqm_avr24(acc, mult, shift);
#endif
  acc = mbqm(acc, MCUQ_RD_I32(mult), shift);
  return (int16_t)MCUQ_CLAMP(acc, -32768, 32767);
}

/* The receptive field of one output pixel copied into `col` (k_h * k_w * in_c inputs in
 * filter order); taps in the padding get in_zp, whose product with the folded bias term
 * cancels, exactly as TFLite Micro skips them. */
static void copy_bytes(int8_t* dst, const int8_t* src, mcuq_sz n) {
  if (n >= 16) {
    memcpy(dst, src, (size_t)n);
  } else {
    for (; n > 0; --n) *dst++ = *src++;
  }
}

static void im2col(const mcuq_conv_params* p, mcuq_sz y0, mcuq_sz x0, int8_t* col) {
  const mcuq_sz row_len = p->k_w * p->in_c;
  const int row_inside = p->dil_w == 1 && x0 >= 0 && x0 + p->k_w <= p->in_w;
  mcuq_sz fy, fx, i;
  for (fy = 0; fy < p->k_h; ++fy) {
    const mcuq_sz iy = y0 + fy * p->dil_h;
    if (iy < 0 || iy >= p->in_h) {
      for (i = 0; i < row_len; ++i) *col++ = (int8_t)p->in_zp;
      continue;
    }
    if (row_inside) { /* the whole filter row is contiguous in the input */
      copy_bytes(col, p->in + ((mcuq_sz)iy * p->in_w + x0) * p->in_c, row_len);
      col += row_len;
      continue;
    }
    for (fx = 0; fx < p->k_w; ++fx, col += p->in_c) {
      const mcuq_sz ix = x0 + fx * p->dil_w;
      if (ix < 0 || ix >= p->in_w) {
        for (i = 0; i < p->in_c; ++i) col[i] = (int8_t)p->in_zp;
      } else {
        copy_bytes(col, p->in + ((mcuq_sz)iy * p->in_w + ix) * p->in_c, p->in_c);
      }
    }
  }
}

#ifdef MCUQ_SIMD
/* Two output pixels at once (x0, x1: their contiguous inputs, n % 4 == 0): every weight word
 * is loaded once for both, two channels at a time (four SMLAD accumulators in registers). */
__attribute__((noinline)) static void conv_pair_simd(const mcuq_conv_params* p, const int8_t* x0, const int8_t* x1, mcuq_sz n,
                                                     int8_t* out0, int8_t* out1) {
  const int8_t* w = p->filter;
  mcuq_sz oc0, h, k;
  for (oc0 = 0; oc0 < p->out_c; oc0 += 4) {
    if (p->out_c - oc0 < 4) {
      const mcuq_sz nb = p->out_c - oc0;
      int32_t a[4], b[4];
      for (h = 0; h < nb; ++h) a[h] = b[h] = MCUQ_RD_I32(p->bias + oc0 + h);
      dot_block(w, x0, n, nb, a);
      w = dot_block(w, x1, n, nb, b);
      for (h = 0; h < nb; ++h) {
        out0[oc0 + h] = MCUQ_REQUANT(a[h], p, oc0 + h);
        out1[oc0 + h] = MCUQ_REQUANT(b[h], p, oc0 + h);
      }
      continue;
    }
    for (h = 0; h < 4; h += 2) {
      int32_t a0 = MCUQ_RD_I32(p->bias + oc0 + h), a1 = MCUQ_RD_I32(p->bias + oc0 + h + 1), b0 = a0, b1 = a1;
      const int8_t* wp = w + 4 * h;
      const int8_t* xa = x0;
      const int8_t* xb = x1;
      for (k = n >> 2; k > 0; --k, wp += 16, xa += 4, xb += 4) {
        const uint32_t va = rd32(xa), vb = rd32(xb);
        const uint32_t ae = sxtb16(va), ao = sxtb16_ror8(va), be = sxtb16(vb), bo = sxtb16_ror8(vb);
        uint32_t wv = rd32(wp), wo = sxtb16_ror8(wv);
        wv = sxtb16(wv);
        a0 = smlad(wv, ae, a0);
        a0 = smlad(wo, ao, a0);
        b0 = smlad(wv, be, b0);
        b0 = smlad(wo, bo, b0);
        wv = rd32(wp + 4);
        wo = sxtb16_ror8(wv);
        wv = sxtb16(wv);
        a1 = smlad(wv, ae, a1);
        a1 = smlad(wo, ao, a1);
        b1 = smlad(wv, be, b1);
        b1 = smlad(wo, bo, b1);
      }
      out0[oc0 + h] = MCUQ_REQUANT(a0, p, oc0 + h);
      out0[oc0 + h + 1] = MCUQ_REQUANT(a1, p, oc0 + h + 1);
      out1[oc0 + h] = MCUQ_REQUANT(b0, p, oc0 + h);
      out1[oc0 + h + 1] = MCUQ_REQUANT(b1, p, oc0 + h + 1);
    }
    w += 4 * n;
  }
}
#endif

/* Every output channel of one pixel over n contiguous inputs, one channel at a time (block 1). */
#if defined(__AVR__)
__attribute__((noinline))
#endif
static void conv_pixel_1(const mcuq_conv_params* p, const int8_t* x, mcuq_sz n, int8_t* out) {
  const int8_t* w = p->filter;
  mcuq_sz c;
#if defined(__AVR__)
  /* accumulate a group of channels, then requantize it: two loops with few live values */
  int32_t acc[MCUQ_AVR_GROUP];
  for (c = 0; c < p->out_c; c += MCUQ_AVR_GROUP) {
    const uint8_t count = (uint8_t)MCUQ_MIN(MCUQ_AVR_GROUP, p->out_c - c);
    w = mcuq_dot_rows_s8(w, x, n, p->bias + c, count, acc);
    requantize_group_avr(acc, count, p->mult + c, p->shift + c, &p->out_zp, out + c);
  }
#else
  for (c = 0; c < p->out_c; ++c, w += n) out[c] = MCUQ_REQUANT(dot1(w, x, n, MCUQ_RD_I32(p->bias + c)), p, c);
#endif
}

void mcuq_conv2d(const mcuq_conv_params* params) {
  mcuq_conv_params p;
  mcuq_sz oy, ox, oc0, j, s;
  int8_t* out;
  MCUQ_LOAD_PARAMS(p, params);
  out = p.out;
  {
    /* col_len > 0: the generator laid the weights out as one segment of col_len (the
     * receptive field rounded up to 4, zero weights in the padding) for an im2col buffer */
    int8_t col[p.col_len > 0 ? p.col_len : 1];
#ifdef MCUQ_SIMD
    /* two pixels per pass: a second im2col buffer, or 1x1 filters read in place */
    int8_t col2[p.col_len > 0 ? p.col_len : 1];
    const int pairs = p.block == 4 && (p.col_len > 0 || (p.k_h == 1 && p.k_w == 1 && (p.in_c & 3) == 0));
    if (p.col_len > 0) memset(col2, 0, (size_t)p.col_len);
#endif
    if (p.col_len > 0) memset(col, 0, (size_t)p.col_len);
    for (oy = 0; oy < p.out_h; ++oy) {
      const mcuq_sz y0 = oy * p.stride_h - p.pad_h;
      for (ox = 0; ox < p.out_w; ++ox, out += p.out_c) {
        const mcuq_sz x0 = ox * p.stride_w - p.pad_w;
        /* otherwise, dilation 1: one segment per filter row (k_w * in_c contiguous inputs); else per tap */
        const int rows = p.dil_w == 1;
        const mcuq_sz n = p.col_len > 0 ? p.col_len : rows ? p.k_w * p.in_c : p.in_c;
        const mcuq_sz segs = p.col_len > 0 ? 1 : rows ? p.k_h : p.k_h * p.k_w;
        const int x_inside = x0 >= 0 && x0 + (p.k_w - 1) * p.dil_w < p.in_w;
        const int8_t* w = p.filter;
#ifdef MCUQ_SIMD
        if (pairs && ox + 1 < p.out_w) {
          const mcuq_sz x1 = x0 + p.stride_w;
          const int inside1 = x1 >= 0 && x1 < p.in_w && y0 >= 0 && y0 < p.in_h;
          if (p.col_len > 0) {
            im2col(&p, y0, x0, col);
            im2col(&p, y0, x1, col2);
            conv_pair_simd(&p, col, col2, p.col_len, out, out + p.out_c);
            ++ox, out += p.out_c;
            continue;
          }
          if (x_inside && inside1) {
            const int8_t* row = p.in + (mcuq_sz)y0 * p.in_w * p.in_c;
            conv_pair_simd(&p, row + (mcuq_sz)x0 * p.in_c, row + (mcuq_sz)x1 * p.in_c, p.in_c, out, out + p.out_c);
            ++ox, out += p.out_c;
            continue;
          }
        }
#endif
        if (p.col_len > 0) im2col(&p, y0, x0, col);
        if (p.block == 1 && (p.col_len > 0 || (p.k_h == 1 && p.k_w == 1 && x_inside && y0 >= 0 && y0 < p.in_h))) {
          conv_pixel_1(&p, p.col_len > 0 ? col : p.in + ((mcuq_sz)y0 * p.in_w + x0) * p.in_c, n, out);
          continue;
        }
        for (oc0 = 0; oc0 < p.out_c; oc0 += p.block) {
          const mcuq_sz nb = MCUQ_MIN(p.block, p.out_c - oc0);
          int32_t acc[4], pad[4];
          for (j = 0; j < nb; ++j) acc[j] = MCUQ_RD_I32(p.bias + oc0 + j), pad[j] = 0;
          if (p.col_len > 0) {
            w = dot_block(w, col, n, nb, acc);
          } else {
            for (s = 0; s < segs; ++s) {
              const mcuq_sz fy = rows ? s : s / p.k_w, fx = rows ? 0 : s % p.k_w;
              const mcuq_sz iy = y0 + fy * p.dil_h, ix = x0 + fx * p.dil_w;
              if (iy < 0 || iy >= p.in_h || (!rows && (ix < 0 || ix >= p.in_w))) {
                w = wsum_block(w, n, nb, pad);
              } else if (!rows || x_inside) {
                w = dot_block(w, p.in + ((mcuq_sz)iy * p.in_w + ix) * p.in_c, n, nb, acc);
              } else {
                w = border_row(w, p.in + (mcuq_sz)iy * p.in_w * p.in_c, x0, p.in_w, p.in_c, p.k_w, nb, acc, pad);
              }
            }
          }
          for (j = 0; j < nb; ++j)
            out[oc0 + j] = MCUQ_REQUANT(acc[j] + p.in_zp * pad[j], &p, oc0 + j);
        }
      }
    }
  }
}

/* One depthwise channel over an interior window: weights sequential, inputs `step` bytes apart
 * within a row and `row` bytes between rows. A small function keeps AVR's frame small. */
static int32_t dw_taps1(const int8_t* w, const int8_t* x, mcuq_sz k_h, mcuq_sz k_w, mcuq_sz step, mcuq_sz row, int32_t acc) {
  mcuq_sz fy, fx;
  for (fy = k_h; fy > 0; --fy, x += row) {
    const int8_t* xp = x;
    for (fx = k_w; fx > 0; --fx, xp += step) acc += MCUQ_MAC16(MCUQ_RD_I8(w++), *xp);
  }
  return acc;
}

#ifdef MCUQ_SIMD
/* Every channel of one output pixel, four per word: one word of inputs and one of weights per
 * tap; taps outside the input (bit clear in `valid`) read the input zero point, which the
 * folded bias cancels. Out of line so that its loops have the registers to themselves. */
__attribute__((noinline)) static void dw_pixel_simd(const mcuq_conv_params* p, const int8_t* x, uint32_t valid, int8_t* out) {
  const uint32_t zp4 = (uint32_t)(uint8_t)p->in_zp * 0x01010101u;
  const mcuq_sz step = p->dil_w * p->in_c, row = p->dil_h * p->in_w * p->in_c - p->k_w * step;
  const int8_t* w = p->filter;
  mcuq_sz c, fy, fx;
  for (c = 0; c + 4 <= p->out_c; c += 4, x += 4, out += 4) {
    int32_t a0 = MCUQ_RD_I32(p->bias + c), a1 = MCUQ_RD_I32(p->bias + c + 1);
    int32_t a2 = MCUQ_RD_I32(p->bias + c + 2), a3 = MCUQ_RD_I32(p->bias + c + 3);
    const int8_t* xp = x;
    uint32_t bits = valid;
    for (fy = p->k_h; fy > 0; --fy, xp += row) {
      for (fx = p->k_w; fx > 0; --fx, xp += step, w += 4, bits >>= 1) {
        const uint32_t xv = (bits & 1u) ? rd32(xp) : zp4, wv = rd32(w);
        const uint32_t xe = sxtb16(xv), xo = sxtb16_ror8(xv), we = sxtb16(wv), wo = sxtb16_ror8(wv);
        a0 = smlabb(we, xe, a0);
        a2 = smlatt(we, xe, a2);
        a1 = smlabb(wo, xo, a1);
        a3 = smlatt(wo, xo, a3);
      }
    }
    out[0] = MCUQ_REQUANT(a0, p, c);
    out[1] = MCUQ_REQUANT(a1, p, c + 1);
    out[2] = MCUQ_REQUANT(a2, p, c + 2);
    out[3] = MCUQ_REQUANT(a3, p, c + 3);
  }
}
#endif

#if defined(__AVR__)
/* acc + the taps of one channel over a rows x cols window: weights sequential in flash
 * (`w_skip` skipped after each row), inputs `step` bytes apart and `row` bytes from the end of
 * one row to the start of the next. 17 cycles a tap. */
__attribute__((always_inline)) static inline int32_t taps_avr(const int8_t* w, const int8_t* x, uint8_t rows, uint8_t cols, int16_t step, int16_t row,
                               uint8_t w_skip, int32_t acc) {
  uint8_t n, wv, xv;
  __asm__ volatile(
      "1:\n\t"
      "mov  %[n], %[cols]\n\t"
      "2:\n\t"
      "lpm  %[wv], Z+\n\t"
      "ld   %[xv], X\n\t"
      "add  r26, %A[step]\n\t"
      "adc  r27, %B[step]\n\t"
      "muls %[wv], %[xv]\n\t"
      "sbc  %[wv], %[wv]\n\t"
      "add  %A[acc], r0\n\t"
      "adc  %B[acc], r1\n\t"
      "adc  %C[acc], %[wv]\n\t"
      "adc  %D[acc], %[wv]\n\t"
      "dec  %[n]\n\t"
      "brne 2b\n\t"
      "clr  __zero_reg__\n\t"
      "add  r26, %A[row]\n\t"
      "adc  r27, %B[row]\n\t"
      "add  r30, %[skip]\n\t"
      "adc  r31, __zero_reg__\n\t"
      "dec  %[rows]\n\t"
      "brne 1b\n\t"
      : [acc] "+r"(acc), [rows] "+r"(rows), "+z"(w), "+x"(x), [n] "=&r"(n), [wv] "=&d"(wv), [xv] "=&d"(xv)
      : [cols] "r"(cols), [step] "r"(step), [row] "r"(row), [skip] "r"(w_skip)
      : "r0", "memory");
  return acc;
}

/* Every channel of one output pixel (depth multiplier 1, weights [channel][tap]): the taps
 * inside the input form a rectangle, run by taps_avr; taps in the padding add in_zp times
 * their weights (border pixels only), as TFLite Micro's skipped taps do against the folded bias. */
/* The sum of a rows x cols window of weights in flash (`skip` weights after each row). */
static int16_t wsum_avr(const int8_t* w, uint8_t rows, uint8_t cols, uint8_t skip) {
  int16_t sum = 0;
  uint8_t n, wv;
  __asm__ volatile(
      "1:\n\t"
      "mov  %[n], %[cols]\n\t"
      "2:\n\t"
      "lpm  %[wv], Z+\n\t"
      "add  %A[s], %[wv]\n\t"
      "adc  %B[s], __zero_reg__\n\t"
      "sbrc %[wv], 7\n\t"
      "dec  %B[s]\n\t" /* a negative weight: its sign extension is 0xFF */
      "dec  %[n]\n\t"
      "brne 2b\n\t"
      "add  r30, %[skip]\n\t"
      "adc  r31, __zero_reg__\n\t"
      "dec  %[rows]\n\t"
      "brne 1b\n\t"
      : [s] "+r"(sum), [rows] "+r"(rows), "+z"(w), [n] "=&r"(n), [wv] "=&r"(wv)
      : [cols] "r"(cols), [skip] "r"(skip)
      : "memory");
  return sum;
}

/* The part of a depthwise filter window that lies inside the input. */
typedef struct {
  int16_t step, row;    /* input bytes between taps of a row; from a row's end to the next row */
  uint8_t rows, cols;   /* taps inside the input */
  uint8_t skip, taps;   /* weights skipped after each row; weights per channel */
} mcuq_dw_window;

/* acc[k] = bias[k] + the window's taps of channel k, for n consecutive channels (weights
 * [channel][tap] from w, inputs one byte apart per channel from x). Out of line with few live
 * values, so the loop runs in registers. */
__attribute__((noinline)) static void dw_group_avr(const int8_t* w, const int8_t* x, const int32_t* bias, uint8_t n,
                                                   const mcuq_dw_window* win, int32_t* acc) {
  const mcuq_dw_window g = *win;
  for (; n > 0; --n, w += g.taps, ++x, ++bias)
    *acc++ = taps_avr(w, x, g.rows, g.cols, g.step, g.row, g.skip, MCUQ_RD_I32(bias));
}

__attribute__((noinline)) static void dw_pixel_avr(const mcuq_conv_params* p, mcuq_sz y0, mcuq_sz x0, int8_t* out) {
  const mcuq_sz taps = p->k_h * p->k_w, step = p->dil_w * p->in_c;
  mcuq_sz fy0 = 0, fy1 = p->k_h, fx0 = 0, fx1 = p->k_w, c0;
  int32_t acc[MCUQ_AVR_GROUP];
  mcuq_dw_window g;
  while (fy0 < fy1 && y0 + fy0 * p->dil_h < 0) ++fy0;
  while (fy1 > fy0 && y0 + (fy1 - 1) * p->dil_h >= p->in_h) --fy1;
  while (fx0 < fx1 && x0 + fx0 * p->dil_w < 0) ++fx0;
  while (fx1 > fx0 && x0 + (fx1 - 1) * p->dil_w >= p->in_w) --fx1;
  g.rows = (uint8_t)(fy1 - fy0);
  g.cols = (uint8_t)(fx1 - fx0);
  g.skip = (uint8_t)(p->k_w - g.cols);
  g.taps = (uint8_t)taps;
  g.step = (int16_t)step;
  g.row = (int16_t)(p->dil_h * p->in_w * p->in_c - g.cols * step);
  {
    const int8_t* x = p->in + ((mcuq_sz)(y0 + fy0 * p->dil_h) * p->in_w + (x0 + fx0 * p->dil_w)) * p->in_c;
    const int8_t* w = p->filter + fy0 * p->k_w + fx0;
    const int partial = (mcuq_sz)g.rows * g.cols != taps;
    for (c0 = 0; c0 < p->out_c; c0 += MCUQ_AVR_GROUP, w += MCUQ_AVR_GROUP * taps, x += MCUQ_AVR_GROUP) {
      const uint8_t n = (uint8_t)MCUQ_MIN(MCUQ_AVR_GROUP, p->out_c - c0);
      uint8_t k;
      if (g.rows != 0 && g.cols != 0) {
        dw_group_avr(w, x, p->bias + c0, n, &g, acc);
      } else {
        for (k = 0; k < n; ++k) acc[k] = MCUQ_RD_I32(p->bias + c0 + k);
      }
      if (partial) { /* the taps in the padding: all weights minus the window's */
        const int8_t* wc = p->filter + (mcuq_sz)c0 * taps;
        for (k = 0; k < n; ++k, wc += taps) {
          const int16_t pad = wsum_avr(wc, 1, g.taps, 0) - (g.rows && g.cols ? wsum_avr(wc + fy0 * p->k_w + fx0, g.rows, g.cols, g.skip) : 0);
          acc[k] += (int32_t)p->in_zp * pad;
        }
      }
      requantize_group_avr(acc, n, p->mult + c0, p->shift + c0, &p->out_zp, out + c0);
    }
  }
}
#endif

/* Every channel of one output pixel, one channel at a time (weights [channel][tap], read in
 * order); taps outside the input (bit clear in `valid`) read the input zero point. */
#if !defined(__AVR__)
static void dw_pixel_1(const mcuq_conv_params* p, const int8_t* x, uint32_t valid, int8_t* out) {
  const int8_t zp = (int8_t)p->in_zp;
  const mcuq_sz step = p->dil_w * p->in_c, row = p->dil_h * p->in_w * p->in_c - p->k_w * step;
  const int8_t* w = p->filter;
  mcuq_sz c, fy, fx;
  for (c = 0; c < p->out_c; ++c, ++x) {
    int32_t a = MCUQ_RD_I32(p->bias + c);
    const int8_t* xp = x;
    uint32_t bits = valid;
    for (fy = p->k_h; fy > 0; --fy, xp += row)
      for (fx = p->k_w; fx > 0; --fx, xp += step, bits >>= 1) a += MCUQ_MAC16(MCUQ_RD_I8(w++), (bits & 1u) ? *xp : zp);
    out[c] = MCUQ_REQUANT(a, p, c);
  }
}
#endif

void mcuq_depthwise_conv2d(const mcuq_conv_params* params) {
  mcuq_conv_params p;
  mcuq_sz oy, ox, oc0, j, fy, fx;
  int8_t* out;
  MCUQ_LOAD_PARAMS(p, params);
  out = p.out;
  for (oy = 0; oy < p.out_h; ++oy) {
    const mcuq_sz y0 = oy * p.stride_h - p.pad_h;
    const int y_inside = y0 >= 0 && y0 + (p.k_h - 1) * p.dil_h < p.in_h;
    for (ox = 0; ox < p.out_w; ++ox, out += p.out_c) {
      const mcuq_sz x0 = ox * p.stride_w - p.pad_w;
      const int inside = y_inside && x0 >= 0 && x0 + (p.k_w - 1) * p.dil_w < p.in_w && p.depth_mult == 1;
      const int8_t* w = p.filter;
      if (p.depth_mult == 1 && p.k_h * p.k_w <= 32 && (p.block == 1 || (p.out_c & 3) == 0)) {
        uint32_t valid = 0, bit = 1; /* bit t: tap t lies inside the input */
        for (fy = 0; fy < p.k_h; ++fy)
          for (fx = 0; fx < p.k_w; ++fx, bit <<= 1) {
            const mcuq_sz iy = y0 + fy * p.dil_h, ix = x0 + fx * p.dil_w;
            if (iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w) valid |= bit;
          }
#ifdef MCUQ_SIMD
        if (p.block == 4) {
          dw_pixel_simd(&p, p.in + ((mcuq_sz)y0 * p.in_w + x0) * p.in_c, valid, out);
          continue;
        }
#endif
        if (p.block == 1) {
#if defined(__AVR__)
          (void)valid;
          dw_pixel_avr(&p, y0, x0, out);
#else
          dw_pixel_1(&p, p.in + ((mcuq_sz)y0 * p.in_w + x0) * p.in_c, valid, out);
#endif
          continue;
        }
      }
      for (oc0 = 0; oc0 < p.out_c; oc0 += p.block) {
        const mcuq_sz nb = MCUQ_MIN(p.block, p.out_c - oc0);
        int32_t acc[4], pad[4];
        for (j = 0; j < nb; ++j) acc[j] = MCUQ_RD_I32(p.bias + oc0 + j), pad[j] = 0;
        if (inside && nb == 1) {
          /* interior, one channel: sequential weights, inputs one pixel (in_c bytes) apart */
          acc[0] = dw_taps1(w, p.in + ((mcuq_sz)y0 * p.in_w + x0) * p.in_c + oc0, p.k_h, p.k_w, p.dil_w * p.in_c,
                            p.dil_h * p.in_w * p.in_c, acc[0]);
          w += p.k_h * p.k_w;
        } else {
          for (fy = 0; fy < p.k_h; ++fy) {
            const mcuq_sz iy = y0 + fy * p.dil_h;
            for (fx = 0; fx < p.k_w; ++fx, w += nb) {
              const mcuq_sz ix = x0 + fx * p.dil_w;
              if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) {
                for (j = 0; j < nb; ++j) pad[j] += MCUQ_RD_I8(w + j);
              } else {
                const int8_t* x = p.in + ((mcuq_sz)iy * p.in_w + ix) * p.in_c;
                if (p.depth_mult == 1) {
                  for (j = 0; j < nb; ++j) acc[j] += MCUQ_MAC16(MCUQ_RD_I8(w + j), x[oc0 + j]);
                } else {
                  for (j = 0; j < nb; ++j) acc[j] += MCUQ_MAC16(MCUQ_RD_I8(w + j), x[(oc0 + j) / p.depth_mult]);
                }
              }
            }
          }
        }
        for (j = 0; j < nb; ++j)
          out[oc0 + j] = MCUQ_REQUANT(acc[j] + p.in_zp * pad[j], &p, oc0 + j);
      }
    }
  }
}

void mcuq_fully_connected(const mcuq_fc_params* params) {
  mcuq_fc_params p;
  mcuq_sz b, u0, j;
  MCUQ_LOAD_PARAMS(p, params);
  for (b = 0; b < p.batches; ++b) {
    const int8_t* x = p.in + (mcuq_sz)b * p.depth;
    int8_t* out = p.out + (mcuq_sz)b * p.units;
    const int8_t* w = p.filter;
    for (u0 = 0; u0 < p.units; u0 += p.block) {
      const mcuq_sz nb = MCUQ_MIN(p.block, p.units - u0);
      int32_t acc[4];
      for (j = 0; j < nb; ++j) acc[j] = MCUQ_RD_I32(p.bias + u0 + j);
      w = dot_block(w, x, p.depth, nb, acc);
      for (j = 0; j < nb; ++j) {
        const mcuq_sz q = p.per_channel ? u0 + j : 0;
        out[u0 + j] = MCUQ_REQUANT(acc[j], &p, q);
      }
    }
  }
}

#if defined(__AVR__)
/* im2col for dilation 1 with byte counters and walking pointers (a row is at most 127 bytes
 * for the generated layers): each row is padding, input, padding. */
static void window_avr(const mcuq_conv_params* p, mcuq_sz y0, mcuq_sz x0, int8_t* col) {
  const uint8_t row_len = (uint8_t)(p->k_w * p->in_c);
  const uint8_t left = (uint8_t)(x0 < 0 ? -x0 * p->in_c : 0);
  const uint8_t right = (uint8_t)(x0 + p->k_w > p->in_w ? (x0 + p->k_w - p->in_w) * p->in_c : 0);
  const int8_t zp = (int8_t)p->in_zp;
  const int8_t* src = p->in + ((mcuq_sz)y0 * p->in_w + x0) * p->in_c + left;
  uint8_t fy, k;
  for (fy = 0; fy < (uint8_t)p->k_h; ++fy, src += p->in_w * p->in_c) {
    const mcuq_sz iy = y0 + fy;
    if (iy < 0 || iy >= p->in_h) {
      for (k = row_len; k > 0; --k) *col++ = zp;
      continue;
    }
    {
      const int8_t* s = src;
      for (k = left; k > 0; --k) *col++ = zp;
      for (k = row_len - left - right; k > 0; --k) *col++ = *s++;
      for (k = right; k > 0; --k) *col++ = zp;
    }
  }
}

/* CONV_2D and DEPTHWISE_CONV_2D (dilation 1) through a generated pixel function: a window
 * inside the input is read in place (rows in_w * in_c apart); a window over the padding is
 * copied by im2col first (padding taps hold in_zp, as in mcuq_conv2d; rows k_w * in_c apart). */
void mcuq_window_avr(const mcuq_conv_params* params, mcuq_avr_pixel pixel) {
  mcuq_conv_params p;
  mcuq_sz oy, ox;
  int8_t* out;
  MCUQ_LOAD_PARAMS(p, params);
  out = p.out;
  {
    const mcuq_sz row = p.in_w * p.in_c, step = p.stride_w * p.in_c, x_end = p.in_w - p.k_w;
    /* a window leaves the input with leading padding, or trailing padding only (SAME with an
     * odd total: the last row or column of windows) */
    const int borders = p.pad_h > 0 || p.pad_w > 0 || (p.out_h - 1) * p.stride_h + p.k_h > p.in_h ||
                        (p.out_w - 1) * p.stride_w + p.k_w > p.in_w;
    int8_t col[borders ? p.k_h * p.k_w * p.in_c : 1];
    for (oy = 0; oy < p.out_h; ++oy) {
      const mcuq_sz y0 = oy * p.stride_h - p.pad_h;
      const int rows_inside = y0 >= 0 && y0 + p.k_h <= p.in_h;
      mcuq_sz x0 = -p.pad_w;
      const int8_t* in = p.in + (mcuq_sz)y0 * row + x0 * p.in_c;
      for (ox = 0; ox < p.out_w; ++ox, out += p.out_c, in += step, x0 += p.stride_w) {
        if (rows_inside && x0 >= 0 && x0 <= x_end) {
          pixel(in, out, row);
        } else {
          window_avr(&p, y0, x0, col);
          pixel(col, out, p.k_w * p.in_c);
        }
      }
    }
  }
}

void mcuq_depthwise_avr(const mcuq_conv_params* params, const mcuq_avr_rows* by_column) {
  mcuq_conv_params p;
  mcuq_sz oy, ox, fy;
  int8_t* out;
  MCUQ_LOAD_PARAMS(p, params);
  out = p.out;
  {
    const mcuq_sz row = p.in_w * p.in_c, step = p.stride_w * p.in_c;
    int8_t zp_row[p.k_w * p.in_c];
    const int8_t* base[p.k_h];
    const int8_t* rows[p.k_h];
    memset(zp_row, (int8_t)p.in_zp, sizeof zp_row);
    for (oy = 0; oy < p.out_h; ++oy) {
      const mcuq_sz y0 = oy * p.stride_h - p.pad_h;
      const mcuq_sz x_off = -p.pad_w * p.in_c;
      for (fy = 0; fy < p.k_h; ++fy) {
        const mcuq_sz iy = y0 + fy;
        base[fy] = iy >= 0 && iy < p.in_h ? p.in + (mcuq_sz)iy * row + x_off : 0;
      }
      for (ox = 0; ox < p.out_w; ++ox, out += p.out_c) {
        for (fy = 0; fy < p.k_h; ++fy) {
          rows[fy] = base[fy] ? base[fy] : zp_row;
          if (base[fy]) base[fy] += step;
        }
        ((mcuq_avr_rows)pgm_read_word(by_column + ox))(rows, out);
      }
    }
  }
}

void mcuq_fully_connected_avr(const mcuq_fc_params* params, mcuq_avr_pixel pixel) {
  mcuq_fc_params p;
  mcuq_sz b;
  MCUQ_LOAD_PARAMS(p, params);
  for (b = 0; b < p.batches; ++b) pixel(p.in + (mcuq_sz)b * p.depth, p.out + (mcuq_sz)b * p.units, 0);
}
#endif

/* TFLite's average: the sum divided by the count, halves away from zero. On AVR a window of
 * fewer than 256 elements (|sum| < 2^15) divides in 16 bits: a third of the 32-bit division. */
static int32_t rounded_average(int32_t sum, int32_t count) {
#if defined(__AVR__)
  if (count < 256) {
    const uint16_t q = (uint16_t)(((uint16_t)(sum > 0 ? sum : -sum) + (uint16_t)(count >> 1)) / (uint16_t)count);
    return sum > 0 ? (int32_t)q : -(int32_t)q;
  }
#endif
  return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

/* MAX_POOL_2D and AVERAGE_POOL_2D walk the same clipped windows (TFLite's filter_x_start/end). */
static void pool(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim ch, int8_t* out, mcuq_dim out_h,
                 mcuq_dim out_w, int f_h, int f_w, int stride_h, int stride_w, int pad_h, int pad_w,
                 int32_t act_min, int32_t act_max, int average) {
  /* pointers walk the window (no per-element index products: 32-bit multiplies on AVR) */
  const mcuq_sz row_step = (mcuq_sz)in_w * ch;
  mcuq_sz oy, ox, c, fy, fx;
  for (oy = 0; oy < out_h; ++oy) {
    for (ox = 0; ox < out_w; ++ox, out += ch) {
      const mcuq_sz y0 = oy * stride_h - pad_h, x0 = ox * stride_w - pad_w;
      const mcuq_sz fy0 = MCUQ_MAX(0, -y0), fy1 = MCUQ_MIN(f_h, in_h - y0);
      const mcuq_sz fx0 = MCUQ_MAX(0, -x0), fx1 = MCUQ_MIN(f_w, in_w - x0);
      const int8_t* corner = in + ((mcuq_sz)(y0 + fy0) * in_w + (x0 + fx0)) * ch;
      const int32_t count = fy1 > fy0 && fx1 > fx0 ? (int32_t)(fy1 - fy0) * (fx1 - fx0) : 1;
      for (c = 0; c < ch; ++c) {
        const int8_t* row = corner + c;
        int32_t acc = average ? 0 : -128;
        for (fy = fy0; fy < fy1; ++fy, row += row_step) {
          const int8_t* px = row;
          for (fx = fx0; fx < fx1; ++fx, px += ch) {
            const int8_t v = *px;
            if (average) {
              acc += v;
            } else if (v > acc) {
              acc = v;
            }
          }
        }
        if (average) acc = rounded_average(acc, count);
        out[c] = (int8_t)MCUQ_CLAMP(acc, act_min, act_max);
      }
    }
  }
}

void mcuq_max_pool(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim ch, int8_t* out,
                   mcuq_dim out_h, mcuq_dim out_w, int f_h, int f_w, int stride_h, int stride_w,
                   int pad_h, int pad_w, int32_t act_min, int32_t act_max) {
  pool(in, in_h, in_w, ch, out, out_h, out_w, f_h, f_w, stride_h, stride_w, pad_h, pad_w, act_min, act_max, 0);
}

void mcuq_avg_pool(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim ch, int8_t* out,
                   mcuq_dim out_h, mcuq_dim out_w, int f_h, int f_w, int stride_h, int stride_w,
                   int pad_h, int pad_w, int32_t act_min, int32_t act_max) {
  pool(in, in_h, in_w, ch, out, out_h, out_w, f_h, f_w, stride_h, stride_w, pad_h, pad_w, act_min, act_max, 1);
}

/* Index of a broadcast operand for a 4-D output position. */
static mcuq_dim bcast_index(const mcuq_dim* dims, mcuq_dim i0, mcuq_dim i1, mcuq_dim i2, mcuq_dim i3) {
  const mcuq_dim a = dims[0] == 1 ? 0 : i0, b = dims[1] == 1 ? 0 : i1;
  const mcuq_dim c = dims[2] == 1 ? 0 : i2, d = dims[3] == 1 ? 0 : i3;
  return ((a * dims[1] + b) * dims[2] + c) * dims[3] + d;
}

/* Parameters of the int8 ADD/MUL reference kernels (TFLite's ArithmeticParams). */
enum { MCUQ_BIN_ADD, MCUQ_BIN_MUL, MCUQ_BIN_SUB, MCUQ_BIN_MAX, MCUQ_BIN_MIN, MCUQ_BIN_PRELU };
typedef struct {
  int kind; /* MCUQ_BIN_* */
  int32_t a_offset, a_mult, b_offset, b_mult, out_offset, out_mult;
  int a_shift, b_shift, left_shift, out_shift;
  int32_t act_min, act_max;
} binary_params;

/* MultiplyByQuantizedMultiplierSmallerThanOneExp: for shift <= 0 the same as mcuq_mbqm. */
static inline int32_t mul_smaller_than_one(int32_t x, int32_t m, int shift) {
  return shift <= 0 ? mbqm(x, m, shift) : mcuq_rdivpot(srdhm(x, m), -shift);
}

static inline int32_t binary_value(int32_t x, int32_t y, const binary_params* p) {
  switch (p->kind) {
    case MCUQ_BIN_MUL:
      return p->out_offset + mbqm(x * y, p->out_mult, p->out_shift);
    case MCUQ_BIN_MAX: /* MAXIMUM/MINIMUM compare the raw int8 values (offsets are 0) */
      return MCUQ_MAX(x, y);
    case MCUQ_BIN_MIN:
      return MCUQ_MIN(x, y);
    case MCUQ_BIN_PRELU: /* reference_ops::BroadcastPrelu4DSlow: a_mult/a_shift for x >= 0 */
      return p->out_offset + (x >= 0 ? mbqm(x, p->a_mult, p->a_shift) : mbqm(x * y, p->out_mult, p->out_shift));
    default:
      break;
  }
  x = mul_smaller_than_one((int32_t)((uint32_t)x << p->left_shift), p->a_mult, p->a_shift);
  y = mul_smaller_than_one((int32_t)((uint32_t)y << p->left_shift), p->b_mult, p->b_shift);
  return mul_smaller_than_one(p->kind == MCUQ_BIN_SUB ? x - y : x + y, p->out_mult, p->out_shift) + p->out_offset;
}

/* ADD and MUL share the 4-D broadcast walk over the output. */
static void broadcast_binary(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
                             int8_t* out, const mcuq_dim* out_dims, const binary_params* p) {
  mcuq_dim i0, i1, i2, i3, o = 0;
  if (memcmp(a_dims, out_dims, 4 * sizeof(mcuq_dim)) == 0 && memcmp(b_dims, out_dims, 4 * sizeof(mcuq_dim)) == 0) {
    const mcuq_dim n = out_dims[0] * out_dims[1] * out_dims[2] * out_dims[3];
    for (o = 0; o < n; ++o) { /* same shapes: no broadcast indexing */
      const int32_t r = binary_value(p->a_offset + a[o], p->b_offset + b[o], p);
      out[o] = (int8_t)MCUQ_CLAMP(r, p->act_min, p->act_max);
    }
    return;
  }
  for (i0 = 0; i0 < out_dims[0]; ++i0)
    for (i1 = 0; i1 < out_dims[1]; ++i1)
      for (i2 = 0; i2 < out_dims[2]; ++i2)
        for (i3 = 0; i3 < out_dims[3]; ++i3, ++o) {
          const int32_t x = p->a_offset + a[bcast_index(a_dims, i0, i1, i2, i3)];
          const int32_t y = p->b_offset + b[bcast_index(b_dims, i0, i1, i2, i3)];
          const int32_t r = binary_value(x, y, p);
          out[o] = (int8_t)MCUQ_CLAMP(r, p->act_min, p->act_max);
        }
}

static void add_sub(int kind, const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
                    int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t a_mult, int a_shift,
                    int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t out_offset,
                    int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max) {
  binary_params p;
  p.kind = kind;
  p.a_offset = a_offset, p.a_mult = a_mult, p.a_shift = a_shift;
  p.b_offset = b_offset, p.b_mult = b_mult, p.b_shift = b_shift;
  p.left_shift = left_shift, p.out_offset = out_offset, p.out_mult = out_mult, p.out_shift = out_shift;
  p.act_min = act_min, p.act_max = act_max;
  broadcast_binary(a, a_dims, b, b_dims, out, out_dims, &p);
}

void mcuq_add(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
              int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t a_mult, int a_shift,
              int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t out_offset,
              int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max) {
  add_sub(MCUQ_BIN_ADD, a, a_dims, b, b_dims, out, out_dims, a_offset, a_mult, a_shift, b_offset, b_mult, b_shift,
          left_shift, out_offset, out_mult, out_shift, act_min, act_max);
}

void mcuq_sub(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
              int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t a_mult, int a_shift,
              int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t out_offset,
              int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max) {
  add_sub(MCUQ_BIN_SUB, a, a_dims, b, b_dims, out, out_dims, a_offset, a_mult, a_shift, b_offset, b_mult, b_shift,
          left_shift, out_offset, out_mult, out_shift, act_min, act_max);
}

/* SQUARED_DIFFERENCE (squared_difference.cc): ADD's input scaling (left_shift 7), then the raw
 * difference squared in int32 times out_mult. Its own walk: a branch in binary_value would stop
 * gcc inlining that into ADD's and MUL's loop. */
void mcuq_squared_difference(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
                             int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t a_mult, int a_shift,
                             int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t out_offset,
                             int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max) {
  mcuq_dim i0, i1, i2, i3, o = 0;
  for (i0 = 0; i0 < out_dims[0]; ++i0)
    for (i1 = 0; i1 < out_dims[1]; ++i1)
      for (i2 = 0; i2 < out_dims[2]; ++i2)
        for (i3 = 0; i3 < out_dims[3]; ++i3, ++o) {
          const int32_t x = a_offset + a[bcast_index(a_dims, i0, i1, i2, i3)];
          const int32_t y = b_offset + b[bcast_index(b_dims, i0, i1, i2, i3)];
          const int32_t d = mul_smaller_than_one((int32_t)((uint32_t)x << left_shift), a_mult, a_shift) -
                            mul_smaller_than_one((int32_t)((uint32_t)y << left_shift), b_mult, b_shift);
          const int32_t r = mbqm(d * d, out_mult, out_shift) + out_offset;
          out[o] = (int8_t)MCUQ_CLAMP(r, act_min, act_max);
        }
}

void mcuq_max_min(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
                  int8_t* out, const mcuq_dim* out_dims, int is_min) {
  binary_params p;
  memset(&p, 0, sizeof(p));
  p.kind = is_min ? MCUQ_BIN_MIN : MCUQ_BIN_MAX;
  p.act_min = -128, p.act_max = 127;
  broadcast_binary(a, a_dims, b, b_dims, out, out_dims, &p);
}

void mcuq_prelu(const int8_t* in, const mcuq_dim* in_dims, const int8_t* alpha, const mcuq_dim* alpha_dims,
                int8_t* out, const mcuq_dim* out_dims, int32_t in_offset, int32_t alpha_offset,
                int32_t out_offset, int32_t pos_mult, int pos_shift, int32_t neg_mult, int neg_shift) {
  binary_params p;
  memset(&p, 0, sizeof(p));
  p.kind = MCUQ_BIN_PRELU;
  p.a_offset = in_offset, p.b_offset = alpha_offset, p.out_offset = out_offset;
  p.a_mult = pos_mult, p.a_shift = pos_shift, p.out_mult = neg_mult, p.out_shift = neg_shift;
  p.act_min = -128, p.act_max = 127;
  broadcast_binary(in, in_dims, alpha, alpha_dims, out, out_dims, &p);
}

void mcuq_mul(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
              int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t b_offset,
              int32_t out_offset, int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max) {
  binary_params p;
  memset(&p, 0, sizeof(p));
  p.kind = MCUQ_BIN_MUL;
  p.a_offset = a_offset, p.b_offset = b_offset;
  p.out_offset = out_offset, p.out_mult = out_mult, p.out_shift = out_shift;
  p.act_min = act_min, p.act_max = act_max;
  broadcast_binary(a, a_dims, b, b_dims, out, out_dims, &p);
}

void mcuq_copy(const int8_t* in, int8_t* out, mcuq_dim n) {
  if (in != out) memmove(out, in, (size_t)n);
}

void mcuq_requantize(const int8_t* in, int8_t* out, mcuq_dim n, int32_t in_zp, int32_t out_zp,
                     int32_t mult, int shift, int32_t act_min, int32_t act_max) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) {
    int32_t v = mbqm((int32_t)in[i] - in_zp, mult, shift) + out_zp;
    out[i] = (int8_t)MCUQ_CLAMP(v, act_min, act_max);
  }
}

/* ---- gemmlowp fixed-point transcendental functions (int32 raw values) ---- */

static int32_t fp_mul(int32_t a, int32_t b) { return mcuq_srdhm(a, b); }

static int32_t fp_sat_mul_pot(int32_t x, int exponent) {
  if (exponent > 0) {
    const int32_t min = INT32_MIN, max = INT32_MAX;
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) return max;
    if (x < -threshold) return min;
    return (int32_t)((uint32_t)x << exponent);
  }
  if (exponent < 0) return mcuq_rdivpot(x, -exponent);
  return x;
}

static int32_t fp_rounding_half_sum(int32_t a, int32_t b) {
  int64_t sum = (int64_t)a + (int64_t)b;
  int64_t sign = sum >= 0 ? 1 : -1;
  return (int32_t)((sum + sign) / 2);
}

/* exp(x) for x in [-1/4, 0), x with 0 integer bits */
static int32_t fp_exp_quarter(int32_t a) {
  const int32_t constant_term = 1895147668;
  const int32_t one_third = 715827883;
  const int32_t x = a + ((int32_t)1 << 28);
  const int32_t x2 = fp_mul(x, x);
  const int32_t x3 = fp_mul(x2, x);
  const int32_t x4 = fp_mul(x2, x2);
  const int32_t x4_over_4 = fp_sat_mul_pot(x4, -2);
  const int32_t poly = fp_sat_mul_pot(fp_mul(x4_over_4 + x3, one_third) + x2, -1);
  return constant_term + fp_mul(constant_term, x + poly);
}

/* exp(a) for a < 0; a has `integer_bits` integer bits; result has 0 integer bits. */
static int32_t fp_exp_on_negative_values(int32_t a, int integer_bits) {
  static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  const int fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
  int32_t result = fp_exp_quarter(fp_sat_mul_pot(a_mod_quarter_minus_one_quarter, integer_bits));
  const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
  int e;
  for (e = -2; e <= 4; ++e) {
    if (integer_bits > e) {
      const int shift_amount = fractional_bits + e;
      if (remainder & ((int32_t)1 << shift_amount)) result = fp_mul(result, multipliers[e + 2]);
    }
  }
  if (integer_bits > 5) {
    const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
    if (a < clamp) result = 0;
  }
  if (a == 0) result = INT32_MAX;
  return result;
}

/* gemmlowp's Newton-Raphson division shared by 1/(1+x) and (1-x)/(1+x), x in (0, 1):
 * returns x ~ 1/half_denominator in F2 (2 integer bits). */
static int32_t fp_newton_reciprocal(int32_t a) {
  const int32_t half_denominator = fp_rounding_half_sum(a, INT32_MAX);
  const int32_t c48_17 = 1515870810, cneg32_17 = -1010580540;
  const int32_t f2_one = (int32_t)1 << 29;
  int32_t x = c48_17 + fp_mul(half_denominator, cneg32_17);
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t hdx = fp_mul(half_denominator, x);
    x = x + fp_sat_mul_pot(fp_mul(x, f2_one - hdx), 2);
  }
  return x;
}

/* 1 / (1 + x): Rescale<0>(ExactMulByPot<-1>(x)), F1 -> F0 */
static int32_t fp_one_over_one_plus_x(int32_t a) { return fp_sat_mul_pot(fp_newton_reciprocal(a), 1); }

/* (1 - x) / (1 + x): Rescale<0>(x - F2::One()) */
static int32_t fp_one_minus_x_over_one_plus_x(int32_t a) {
  return fp_sat_mul_pot(fp_newton_reciprocal(a) - ((int32_t)1 << 29), 2);
}

static int32_t fp_logistic(int32_t a, int integer_bits) {
  int32_t abs_input, pos;
  if (a == 0) return (int32_t)1 << 30;
  abs_input = a > 0 ? a : -a;
  pos = fp_one_over_one_plus_x(fp_exp_on_negative_values(-abs_input, integer_bits));
  return a > 0 ? pos : INT32_MAX - pos;
}

static int32_t fp_tanh(int32_t a, int integer_bits) {
  int32_t n, t;
  if (a == 0) return 0;
  n = a < 0 ? a : -a;
  /* ExactMulByPot<1>: same raw value, one more integer bit */
  t = fp_one_minus_x_over_one_plus_x(fp_exp_on_negative_values(n, integer_bits + 1));
  return a < 0 ? -t : t;
}

static int count_leading_zeros32(uint32_t x) {
  int n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
}

void mcuq_softmax(const int8_t* in, int8_t* out, mcuq_dim outer, mcuq_dim depth, int32_t in_mult,
                  int in_left_shift, int32_t diff_min) {
  mcuq_dim i, c;
  for (i = 0; i < outer; ++i) {
    const int8_t* row = in + i * depth;
    int8_t* orow = out + i * depth;
    int32_t max_in_row = -128, sum_of_exps = 0, shifted_scale, shifted_sum_minus_one;
    int headroom_plus_one, num_bits_over_unit, exponent;
    for (c = 0; c < depth; ++c) max_in_row = MCUQ_MAX(max_in_row, (int32_t)row[c]);
    for (c = 0; c < depth; ++c) {
      const int32_t diff = (int32_t)row[c] - max_in_row;
      if (diff >= diff_min) {
        const int32_t rescaled = mcuq_srdhm((int32_t)((uint32_t)diff << in_left_shift), in_mult);
        sum_of_exps += fp_sat_mul_pot(fp_exp_on_negative_values(rescaled, 5), -12);
      }
    }
    headroom_plus_one = count_leading_zeros32((uint32_t)sum_of_exps);
    num_bits_over_unit = 12 - headroom_plus_one;
    shifted_sum_minus_one = (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
    shifted_scale = fp_one_over_one_plus_x(shifted_sum_minus_one);
    exponent = num_bits_over_unit + 31 - 8;
    for (c = 0; c < depth; ++c) {
      const int32_t diff = (int32_t)row[c] - max_in_row;
      if (diff >= diff_min) {
        const int32_t rescaled = mcuq_srdhm((int32_t)((uint32_t)diff << in_left_shift), in_mult);
        const int32_t exp_in_0 = fp_exp_on_negative_values(rescaled, 5);
        const int32_t unsat = mcuq_rdivpot(fp_mul(shifted_scale, exp_in_0), exponent);
        orow[c] = (int8_t)MCUQ_CLAMP(unsat - 128, -128, 127);
      } else {
        orow[c] = -128;
      }
    }
  }
}

/* LOGISTIC and TANH share TFLite's int8 structure: saturate outside the input radius,
 * otherwise rescale to Q4.27, apply the gemmlowp function, rescale to the output grid. */
static void sigmoid_like(const int8_t* in, int8_t* out, mcuq_dim n, int32_t in_zp, int32_t range_radius,
                         int32_t in_mult, int in_left_shift, int is_tanh) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) {
    const int32_t x = (int32_t)in[i] - in_zp;
    if (x <= -range_radius) {
      out[i] = -128;
    } else if (x >= range_radius) {
      out[i] = 127;
    } else {
      const int32_t x_q4 = mcuq_mbqm(x, in_mult, in_left_shift);
      const int32_t y = is_tanh ? mcuq_rdivpot(fp_tanh(x_q4, 4), 31 - 7)
                                : mcuq_rdivpot(fp_logistic(x_q4, 4), 31 - 8) - 128;
      out[i] = (int8_t)MCUQ_CLAMP(y, -128, 127);
    }
  }
}

void mcuq_logistic(const int8_t* in, int8_t* out, mcuq_dim n, int32_t in_zp, int32_t range_radius,
                   int32_t in_mult, int in_left_shift) {
  sigmoid_like(in, out, n, in_zp, range_radius, in_mult, in_left_shift, 0);
}

void mcuq_tanh(const int8_t* in, int8_t* out, mcuq_dim n, int32_t in_zp, int32_t range_radius,
               int32_t in_mult, int in_left_shift) {
  sigmoid_like(in, out, n, in_zp, range_radius, in_mult, in_left_shift, 1);
}

void mcuq_concat(const int8_t* const* ins, const mcuq_dim* axis_sizes, int count, int8_t* out,
                 mcuq_dim outer, mcuq_dim inner) {
  mcuq_dim o;
  int k;
  for (o = 0; o < outer; ++o) {
    for (k = 0; k < count; ++k) {
      const mcuq_dim chunk = axis_sizes[k] * inner;
      memcpy(out, ins[k] + o * chunk, (size_t)chunk);
      out += chunk;
    }
  }
}

/* SPLIT / SPLIT_V / UNPACK: outer rows of `count` pieces, piece k (chunks[k] bytes, in flash) to
 * outs[k]. */
void mcuq_split(const int8_t* in, int8_t* const* outs, const mcuq_dim* chunks, int count, mcuq_dim outer) {
  mcuq_dim o;
  int k;
  for (o = 0; o < outer; ++o)
    for (k = 0; k < count; ++k) {
      const mcuq_dim chunk = MCUQ_RD_I32(chunks + k);
      memcpy(outs[k] + o * chunk, in, (size_t)chunk);
      in += chunk;
    }
}

void mcuq_pad(const int8_t* in, const mcuq_dim* in_dims, int8_t* out, const mcuq_dim* out_dims,
              const mcuq_dim* before, int8_t pad_value) {
  mcuq_dim i0, i1, i2, i3, o = 0;
  for (i0 = 0; i0 < out_dims[0]; ++i0)
    for (i1 = 0; i1 < out_dims[1]; ++i1)
      for (i2 = 0; i2 < out_dims[2]; ++i2)
        for (i3 = 0; i3 < out_dims[3]; ++i3, ++o) {
          const mcuq_dim j0 = i0 - before[0], j1 = i1 - before[1], j2 = i2 - before[2], j3 = i3 - before[3];
          if (j0 < 0 || j0 >= in_dims[0] || j1 < 0 || j1 >= in_dims[1] || j2 < 0 || j2 >= in_dims[2] ||
              j3 < 0 || j3 >= in_dims[3]) {
            out[o] = pad_value;
          } else {
            out[o] = in[((j0 * in_dims[1] + j1) * in_dims[2] + j2) * in_dims[3] + j3];
          }
        }
}

void mcuq_mean(const int8_t* in, const mcuq_dim* in_dims, int axis_mask, int8_t* out,
               int32_t* temp_sum, int32_t in_zp, int32_t out_zp, int32_t mult, int shift) {
  mcuq_dim out_dims[4], i0, i1, i2, i3, n_out = 1, per_out = 1, k;
  int d;
  for (d = 0; d < 4; ++d) {
    out_dims[d] = (axis_mask & (1 << d)) ? 1 : in_dims[d];
    n_out *= out_dims[d];
    if (axis_mask & (1 << d)) per_out *= in_dims[d];
  }
  for (k = 0; k < n_out; ++k) temp_sum[k] = 0;
  /* the input is read in order; each reduced axis has output stride 0 (no index products) */
  {
    mcuq_dim os[4];
    const int8_t* px = in;
    os[3] = 1;
    for (d = 2; d >= 0; --d) os[d] = os[d + 1] * out_dims[d + 1];
    for (d = 0; d < 4; ++d)
      if (axis_mask & (1 << d)) os[d] = 0;
    for (i0 = 0; i0 < in_dims[0]; ++i0)
      for (i1 = 0; i1 < in_dims[1]; ++i1)
        for (i2 = 0; i2 < in_dims[2]; ++i2) {
          int32_t* t = temp_sum + i0 * os[0] + i1 * os[1] + i2 * os[2];
          for (i3 = 0; i3 < in_dims[3]; ++i3, t += os[3]) *t += *px++;
        }
  }
  /* QuantizedMeanOrSum: the 1/N factor is folded into (mult, shift) by the generator. */
  for (k = 0; k < n_out; ++k) {
    int32_t v = mcuq_mbqm(temp_sum[k] - in_zp * per_out, mult, shift) + out_zp;
    out[k] = (int8_t)MCUQ_CLAMP(v, -128, 127);
  }
}

void mcuq_transpose_conv(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim in_c,
                         const int8_t* filter, mcuq_dim k_h, mcuq_dim k_w, const int32_t* bias,
                         const int32_t* mult, const int8_t* shift, int8_t* out, mcuq_dim out_h,
                         mcuq_dim out_w, mcuq_dim out_c, int stride_h, int stride_w, int pad_h,
                         int pad_w, int32_t* scratch, int32_t in_offset, int32_t out_offset,
                         int32_t act_min, int32_t act_max) {
  mcuq_dim iy, ix, ic, fy, fx, oc, k;
  const mcuq_dim n = out_h * out_w * out_c;
  for (k = 0; k < n; ++k) scratch[k] = 0;
  for (iy = 0; iy < in_h; ++iy)
    for (ix = 0; ix < in_w; ++ix)
      for (ic = 0; ic < in_c; ++ic) {
        const int32_t v = (int32_t)in[(iy * in_w + ix) * in_c + ic] + in_offset;
        const mcuq_dim y0 = iy * stride_h - pad_h, x0 = ix * stride_w - pad_w;
        for (fy = 0; fy < k_h; ++fy)
          for (fx = 0; fx < k_w; ++fx)
            for (oc = 0; oc < out_c; ++oc) {
              const mcuq_dim oy = y0 + fy, ox = x0 + fx;
              if (oy >= 0 && oy < out_h && ox >= 0 && ox < out_w)
                scratch[(oy * out_w + ox) * out_c + oc] +=
                    v * (int32_t)MCUQ_RD_I8(filter + ((oc * k_h + fy) * k_w + fx) * in_c + ic);
            }
      }
  for (k = 0; k < n; ++k) {
    const mcuq_dim c = k % out_c;
    int32_t acc = scratch[k];
    if (bias) acc += MCUQ_RD_I32(bias + c);
    acc = mcuq_mbqm(acc, MCUQ_RD_I32(mult + c), MCUQ_RD_I8(shift + c)) + out_offset;
    out[k] = (int8_t)MCUQ_CLAMP(acc, act_min, act_max);
  }
}

/* ---- ops added for the Keras layer families (TRANSPOSE, STRIDED_SLICE, resize, reductions,
 * elementwise activations, BATCH_MATMUL); each is linked only when a model calls it
 * (-ffunction-sections, --gc-sections). ---- */

void mcuq_lut(const int8_t* in, int8_t* out, mcuq_dim n, const int8_t* table) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) out[i] = MCUQ_RD_I8(table + (uint8_t)in[i]);
}

void mcuq_gather(const int8_t* in, int8_t* out, const mcuq_dim* dims, const mcuq_dim* table, int contiguous) {
  const mcuq_dim d0 = dims[0], d1 = dims[1], d2 = dims[2], d3 = dims[3];
  const mcuq_dim* t0 = table;
  const mcuq_dim* t1 = t0 + d0;
  const mcuq_dim* t2 = t1 + d1;
  const mcuq_dim* t3 = t2 + d2;
  mcuq_dim i0, i1, i2, i3;
  for (i0 = 0; i0 < d0; ++i0) {
    const mcuq_dim b0 = MCUQ_RD_I32(t0 + i0);
    for (i1 = 0; i1 < d1; ++i1) {
      const mcuq_dim b1 = b0 + MCUQ_RD_I32(t1 + i1);
      for (i2 = 0; i2 < d2; ++i2) {
        const int8_t* row = in + b1 + MCUQ_RD_I32(t2 + i2);
        if (contiguous) { /* the innermost axis is read in order: one copy per row */
          memcpy(out, row + MCUQ_RD_I32(t3), (size_t)d3);
          out += d3;
        } else {
          for (i3 = 0; i3 < d3; ++i3) *out++ = row[MCUQ_RD_I32(t3 + i3)];
        }
      }
    }
  }
}

void mcuq_reduce_max_min(const int8_t* in, const mcuq_dim* in_dims, int axis_mask, int8_t* out, mcuq_dim n_out, int is_min) {
  mcuq_dim os[4], i0, i1, i2, i3, k;
  int d;
  const int8_t* px = in;
  for (k = 0; k < n_out; ++k) out[k] = is_min ? 127 : -128;
  os[3] = 1;
  for (d = 2; d >= 0; --d) os[d] = os[d + 1] * ((axis_mask & (1 << (d + 1))) ? 1 : in_dims[d + 1]);
  for (d = 0; d < 4; ++d)
    if (axis_mask & (1 << d)) os[d] = 0;
  for (i0 = 0; i0 < in_dims[0]; ++i0)
    for (i1 = 0; i1 < in_dims[1]; ++i1)
      for (i2 = 0; i2 < in_dims[2]; ++i2) {
        int8_t* t = out + i0 * os[0] + i1 * os[1] + i2 * os[2];
        for (i3 = 0; i3 < in_dims[3]; ++i3, t += os[3], ++px) {
          if (is_min ? *px < *t : *px > *t) *t = *px;
        }
      }
}

/* reference_ops::ResizeBilinearInteger: per output row/column the generator has computed
 * (lower index, upper index, 10-bit position) with TFLite's integer formulas. */
void mcuq_resize_bilinear(const int8_t* in, mcuq_dim in_w, mcuq_dim ch, int8_t* out, mcuq_dim out_h,
                          mcuq_dim out_w, const mcuq_dim* y_table, const mcuq_dim* x_table) {
  mcuq_dim y, x, c;
  for (y = 0; y < out_h; ++y) {
    const mcuq_dim y0 = MCUQ_RD_I32(y_table + 3 * y), y1 = MCUQ_RD_I32(y_table + 3 * y + 1);
    const int32_t fy = MCUQ_RD_I32(y_table + 3 * y + 2) - 1024 * y0;
    for (x = 0; x < out_w; ++x) {
      const mcuq_dim x0 = MCUQ_RD_I32(x_table + 3 * x), x1 = MCUQ_RD_I32(x_table + 3 * x + 1);
      const int32_t fx = MCUQ_RD_I32(x_table + 3 * x + 2) - 1024 * x0;
      const int8_t* ll = in + (y0 * in_w + x0) * ch;
      const int8_t* lu = in + (y1 * in_w + x0) * ch;
      const int8_t* rl = in + (y0 * in_w + x1) * ch;
      const int8_t* ru = in + (y1 * in_w + x1) * ch;
      /* |weights| <= 2048 * 2048 / 2 over the four taps: the sum fits int32 */
      const int32_t wll = (1024 - fy) * (1024 - fx), wlu = fy * (1024 - fx), wrl = (1024 - fy) * fx, wru = fy * fx;
      for (c = 0; c < ch; ++c) {
        const int32_t v = ll[c] * wll + lu[c] * wlu + rl[c] * wrl + ru[c] * wru;
        const int32_t round = v > 0 ? ((int32_t)1 << 19) : -((int32_t)1 << 19);
        *out++ = (int8_t)((v + round) / ((int32_t)1 << 20));
      }
    }
  }
}

/* reference_ops::BatchMatMul (int8): out[b][i][j] = requant(sum_k (lhs[b][i][k] + lhs_offset) *
 * (rhs[b][k][j] + rhs_offset)). */
static int8_t bmm_out8(int32_t acc, const mcuq_batch_matmul_params* p) {
  acc = mbqm(acc, p->mult, p->shift) + p->out_offset;
  return (int8_t)MCUQ_CLAMP(acc, -128, 127);
}

void mcuq_batch_matmul(const mcuq_batch_matmul_params* params) {
  mcuq_batch_matmul_params p;
  MCUQ_LOAD_PARAMS(p, params);
  MCUQ_BATCH_MATMUL_WALK(p, int8_t, int32_t, bmm_out8);
}
