/* mcuq plain-C runtime, 16x8 kernels (int16 activations, int8 weights): the arithmetic of
 * TensorFlow Lite Micro's reference_integer_ops int16 paths, step for step, so results are
 * bit-exact with it. Constants (weights, biases, multipliers, tables) may live in flash. */
#include "mcuq_kernels.h"

#if defined(__AVR__)
#define RD_I16(p) ((int16_t)pgm_read_word(p))
static int64_t rd_i64(const int64_t* p) {
  int64_t v;
  memcpy_P(&v, p, sizeof(v));
  return v;
}
#define RD_I64(p) rd_i64(p)
#else
#define RD_I16(p) (*(const int16_t*)(p))
#define RD_I64(p) (*(const int64_t*)(p))
#endif

/* MultiplyByQuantizedMultiplier(int64_t x, ...): `reduced` is the multiplier rounded to 16
 * bits (done by the generator), one rounding shift. */
static int32_t mbqm64(int64_t x, int32_t reduced, int shift) {
  int total = 15 - shift;
  return (int32_t)((x * (int64_t)reduced + ((int64_t)1 << (total - 1))) >> total);
}

/* The accumulator as TFLite Micro forms it: int64, or int32 with two's-complement wrap. */
static int32_t requant_acc(int64_t acc, int acc64, int32_t mult, int shift) {
  if (acc64) return mbqm64(acc, mult, shift);
  return mcuq_mbqm((int32_t)(uint32_t)(uint64_t)acc, mult, shift);
}

static int16_t clamp16(int32_t v, int32_t lo, int32_t hi) { return (int16_t)(v < lo ? lo : (v > hi ? hi : v)); }

/* One output value: the window's taps inside the image (padding adds nothing: zero point 0). */
static int64_t window_sum(const mcuq_conv_s16_params* p, mcuq_sz oy, mcuq_sz ox, mcuq_sz oc) {
  int64_t acc = 0;
  mcuq_sz ky, kx, c;
  mcuq_sz ic = p->depthwise ? oc / p->depth_mult : 0;
  for (ky = 0; ky < p->k_h; ++ky) {
    mcuq_sz iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
    if (iy < 0 || iy >= p->in_h) continue;
    for (kx = 0; kx < p->k_w; ++kx) {
      mcuq_sz ix = ox * p->stride_w - p->pad_w + kx * p->dil_w;
      const int16_t* in;
      if (ix < 0 || ix >= p->in_w) continue;
      in = p->in + ((int32_t)iy * p->in_w + ix) * p->in_c;
      if (p->depthwise) {
        acc += (int32_t)MCUQ_RD_I8(p->filter + ((int32_t)ky * p->k_w + kx) * p->out_c + oc) * (int32_t)in[ic];
        continue;
      }
      {
        const int8_t* w = p->filter + (((int32_t)oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
        for (c = 0; c < p->in_c; ++c) acc += (int32_t)MCUQ_RD_I8(w + c) * (int32_t)in[c];
      }
    }
  }
  return acc;
}

void mcuq_conv_s16(const mcuq_conv_s16_params* params) {
  mcuq_conv_s16_params p;
  mcuq_sz oy, ox, oc;
  MCUQ_LOAD_PARAMS(p, params);
  for (oy = 0; oy < p.out_h; ++oy) {
    for (ox = 0; ox < p.out_w; ++ox) {
      int16_t* out = p.out + ((int32_t)oy * p.out_w + ox) * p.out_c;
      for (oc = 0; oc < p.out_c; ++oc) {
        int64_t acc = window_sum(&p, oy, ox, oc);
        int32_t v;
        if (p.bias) acc += RD_I64(p.bias + oc);
        v = requant_acc(acc, p.acc64, MCUQ_RD_I32(p.mult + oc), MCUQ_RD_I8(p.shift + oc));
        out[oc] = clamp16(v, p.act_min, p.act_max);
      }
    }
  }
}
