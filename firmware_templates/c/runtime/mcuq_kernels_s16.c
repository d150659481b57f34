/* mcuq plain-C runtime, 16x8 kernels (int16 activations, int8 weights): the arithmetic of
 * TensorFlow Lite Micro's reference_integer_ops int16 paths, step for step, so results are
 * bit-exact with it. Constants (weights, biases, multipliers, tables) may live in flash. */
#include "mcuq_kernels.h"

#if defined(__AVR__)
/* Keeps avr-gcc -Os from merging a byte shift and bit shifts into one shift loop (a 32-bit
 * shift by a count that is no multiple of 8 is a loop of ~6 cycles per bit there). */
#define MCUQ_OPAQUE(x) __asm__("" : "+r"(x))
#define RD_I16(p) ((int16_t)pgm_read_word(p))
static int64_t rd_i64(const int64_t* p) {
  int64_t v;
  memcpy_P(&v, p, sizeof(v));
  return v;
}
#define RD_I64(p) rd_i64(p)
#define pgm_u16(p) ((uint32_t)pgm_read_word(p))
#else
#define MCUQ_OPAQUE(x) ((void)0)
#define pgm_u16(p) ((uint32_t)*(p))
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

/* Taps of output position o along one axis: input i with i * stride - pad + k == o. */
static int tap(mcuq_sz o, mcuq_sz k, mcuq_sz stride, mcuq_sz pad, mcuq_sz in_size, mcuq_sz* i) {
  const mcuq_sz t = o + pad - k;
  if (t < 0 || t % stride) return 0;
  *i = t / stride;
  return *i < in_size;
}

void mcuq_transpose_conv_s16(const mcuq_conv_s16_params* params) {
  mcuq_conv_s16_params p;
  mcuq_sz oy, ox, oc, ky, kx, iy, ix, c;
  int16_t* out;
  MCUQ_LOAD_PARAMS(p, params);
  out = p.out;
  for (oy = 0; oy < p.out_h; ++oy)
    for (ox = 0; ox < p.out_w; ++ox)
      for (oc = 0; oc < p.out_c; ++oc) {
        int64_t acc = 0; /* int64 sums are exact: the order of TFLite Micro's scatter does not matter */
        for (ky = 0; ky < p.k_h; ++ky) {
          if (!tap(oy, ky, p.stride_h, p.pad_h, p.in_h, &iy)) continue;
          for (kx = 0; kx < p.k_w; ++kx) {
            const int16_t* in;
            const int8_t* w;
            if (!tap(ox, kx, p.stride_w, p.pad_w, p.in_w, &ix)) continue;
            in = p.in + ((int32_t)iy * p.in_w + ix) * p.in_c;
            w = p.filter + (((int32_t)oc * p.k_h + ky) * p.k_w + kx) * p.in_c;
            for (c = 0; c < p.in_c; ++c) acc += (int32_t)MCUQ_RD_I8(w + c) * (int32_t)in[c];
          }
        }
        if (p.bias) acc += RD_I64(p.bias + oc);
        *out++ = clamp16(mbqm64(acc, MCUQ_RD_I32(p.mult + oc), MCUQ_RD_I8(p.shift + oc)), p.act_min, p.act_max);
      }
}

/* ADD / SUB (the general quantized path TFLite Micro takes for int16, left_shift 15), MUL
 * (MulElementwise) and MAXIMUM / MINIMUM over 4-D broadcast shapes. */
static int32_t smaller_than_one(int32_t x, int32_t m, int shift) {
  return shift <= 0 ? mcuq_mbqm(x, m, shift) : mcuq_rdivpot(mcuq_srdhm(x, m), -shift);
}

static int32_t binary_s16(const mcuq_binary_s16_params* p, int32_t x, int32_t y) {
  if (p->kind == MCUQ_S16_MUL) return mcuq_mbqm(x * y, p->out_mult, p->out_shift);
  if (p->kind == MCUQ_S16_MAX) return x > y ? x : y; /* MaximumMinimum: raw values, as TFLite Micro */
  if (p->kind == MCUQ_S16_MIN) return x < y ? x : y;
  if (p->kind == MCUQ_S16_PRELU) /* reference_ops::BroadcastPrelu4DSlow */
    return x >= 0 ? mcuq_mbqm(x, p->a_mult, p->a_shift) : mcuq_mbqm(x * y, p->out_mult, p->out_shift);
  x = smaller_than_one((int32_t)((uint32_t)x << p->left_shift), p->a_mult, p->a_shift);
  y = smaller_than_one((int32_t)((uint32_t)y << p->left_shift), p->b_mult, p->b_shift);
  if (p->kind == MCUQ_S16_SQDIFF) return mcuq_mbqm((x - y) * (x - y), p->out_mult, p->out_shift);
  return smaller_than_one(p->kind == MCUQ_S16_SUB ? x - y : x + y, p->out_mult, p->out_shift);
}

static mcuq_dim bcast16(const mcuq_dim* dims, mcuq_dim i0, mcuq_dim i1, mcuq_dim i2, mcuq_dim i3) {
  const mcuq_dim a = dims[0] == 1 ? 0 : i0, b = dims[1] == 1 ? 0 : i1;
  const mcuq_dim c = dims[2] == 1 ? 0 : i2, d = dims[3] == 1 ? 0 : i3;
  return ((a * dims[1] + b) * dims[2] + c) * dims[3] + d;
}

void mcuq_binary_s16(const mcuq_binary_s16_params* params) {
  mcuq_binary_s16_params p;
  mcuq_dim i0, i1, i2, i3, o = 0;
  MCUQ_LOAD_PARAMS(p, params);
  for (i0 = 0; i0 < p.out_dims[0]; ++i0)
    for (i1 = 0; i1 < p.out_dims[1]; ++i1)
      for (i2 = 0; i2 < p.out_dims[2]; ++i2)
        for (i3 = 0; i3 < p.out_dims[3]; ++i3, ++o) {
          const int32_t x = p.a[bcast16(p.a_dims, i0, i1, i2, i3)];
          const int32_t y = p.b[bcast16(p.b_dims, i0, i1, i2, i3)];
          p.out[o] = clamp16(binary_s16(&p, x, y), p.act_min, p.act_max);
        }
}

/* AbsEvalQuantized<int16_t>: std::abs of the value, clamped (|-32768| saturates), or rescaled. */
void mcuq_abs_s16(const int16_t* in, int16_t* out, mcuq_dim n, int rescale, int32_t mult, int shift) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) {
    const int32_t v = in[i] < 0 ? -(int32_t)in[i] : (int32_t)in[i];
    const int32_t r = rescale ? mcuq_mbqm(v, mult, shift) : v;
    out[i] = clamp16(r, -32768, 32767);
  }
}

/* QUANTIZE between int8 and int16 (either way) and int16 -> int16: reference_ops::Requantize;
 * RELU / RELU6 on int16 (ReluQuantized: the same with the activation range as lo..hi). */
void mcuq_requantize_s16(const void* in, int in_wide, void* out, int out_wide, mcuq_dim n, int32_t in_zp, int32_t out_zp,
                         int32_t mult, int shift, int32_t lo, int32_t hi) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) {
    const int32_t x = (in_wide ? (int32_t)((const int16_t*)in)[i] : (int32_t)((const int8_t*)in)[i]) - in_zp;
    const int32_t v = mcuq_mbqm(x, mult, shift) + out_zp;
    const int32_t c = v < lo ? lo : (v > hi ? hi : v);
    if (out_wide)
      ((int16_t*)out)[i] = (int16_t)c;
    else
      ((int8_t*)out)[i] = (int8_t)c;
  }
}

/* LUTLookup(int16_t): 512 segments of a 513-entry table, linear interpolation in Q0.7. */
static int16_t lut_lookup(int16_t value, const int16_t* lut) {
  const uint16_t index = (uint16_t)(256 + (value >> 7));
  const int32_t offset = value & 0x7f;
  const int16_t base = RD_I16(lut + index);
  const int16_t slope = (int16_t)(RD_I16(lut + index + 1) - base);
  return (int16_t)(base + (((int32_t)slope * offset + 64) >> 7));
}

static int clz32(uint32_t x) {
  int n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000UL)) x <<= 1, ++n;
  return n;
}

static int16_t sat16(int32_t v) { return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v)); }

/* SOFTMAX int16 -> int16 (reference_ops::SoftmaxInt16): exp through exp_lut (inputs scaled so
 * [-65535, 0] is [-10, 0]), the reciprocal of the sum through recip_lut (1 / (1 + x)). The
 * exps are cached in `out`, as TFLite Micro does. */
void mcuq_softmax_s16(const int16_t* in, int16_t* out, mcuq_dim outer, mcuq_dim depth, int32_t mult, int shift,
                      const int16_t* exp_lut, const int16_t* recip_lut) {
  mcuq_dim i, c;
  for (i = 0; i < outer; ++i) {
    const int16_t* x = in + (int32_t)i * depth;
    int16_t* y = out + (int32_t)i * depth;
    int16_t top = -32768, recip;
    int32_t sum = 0, shifted;
    int headroom, right;
    for (c = 0; c < depth; ++c) top = x[c] > top ? x[c] : top;
    for (c = 0; c < depth; ++c) {
      y[c] = lut_lookup(sat16(mcuq_mbqm((int32_t)x[c] - top, mult, shift) + 32767), exp_lut);
      sum += y[c];
    }
    headroom = clz32((uint32_t)sum);
    shifted = (int32_t)((((int64_t)sum << (headroom - 1)) + (1 << 13)) >> 14);
    recip = lut_lookup(sat16(shifted - ((1L << 15) + (1L << 16))), recip_lut);
    right = 31 - headroom;
    for (c = 0; c < depth; ++c) {
      const int32_t r = (int32_t)(((int64_t)y[c] * recip + ((int64_t)1 << (right - 1))) >> right);
      y[c] = (int16_t)(r < 0 ? 0 : (r > 32767 ? 32767 : r));
    }
  }
}

/* MAX_POOL_2D / AVERAGE_POOL_2D int16 (reference_integer_ops pooling): the window clipped to
 * the image; the average rounds half away from zero by integer division. */
void mcuq_pool_s16(const mcuq_pool_s16_params* params) {
  mcuq_pool_s16_params p;
  mcuq_sz oy, ox, c, fy, fx;
  MCUQ_LOAD_PARAMS(p, params);
  for (oy = 0; oy < p.out_h; ++oy) {
    const mcuq_sz y0 = oy * p.stride_h - p.pad_h;
    const mcuq_sz fy0 = y0 < 0 ? -y0 : 0, fy1 = p.f_h < p.in_h - y0 ? p.f_h : p.in_h - y0;
    for (ox = 0; ox < p.out_w; ++ox) {
      const mcuq_sz x0 = ox * p.stride_w - p.pad_w;
      const mcuq_sz fx0 = x0 < 0 ? -x0 : 0, fx1 = p.f_w < p.in_w - x0 ? p.f_w : p.in_w - x0;
      for (c = 0; c < p.ch; ++c) {
        int32_t acc = p.is_avg ? 0 : -32768, count = 0;
        for (fy = fy0; fy < fy1; ++fy)
          for (fx = fx0; fx < fx1; ++fx) {
            const int32_t v = p.in[((int32_t)(y0 + fy) * p.in_w + (x0 + fx)) * p.ch + c];
            if (p.is_avg)
              acc += v;
            else if (v > acc)
              acc = v;
            ++count;
          }
        if (p.is_avg && count) acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
        p.out[((int32_t)oy * p.out_w + ox) * p.ch + c] = clamp16(acc, p.act_min, p.act_max);
      }
    }
  }
}

/* MEAN int16 (QuantizedMeanOrSum, as for int8): int32 sums per output, then one requantize
 * with the 1/N factor folded into (mult, shift) by the generator. */
void mcuq_mean_s16(const int16_t* in, const mcuq_dim* in_dims, int axis_mask, int16_t* out, int32_t* temp_sum, int32_t mult,
                   int shift) {
  mcuq_dim out_dims[4], os[4], i0, i1, i2, i3, n_out = 1, k;
  int d;
  for (d = 0; d < 4; ++d) {
    out_dims[d] = (axis_mask & (1 << d)) ? 1 : in_dims[d];
    n_out *= out_dims[d];
  }
  os[3] = 1;
  for (d = 2; d >= 0; --d) os[d] = os[d + 1] * out_dims[d + 1];
  for (d = 0; d < 4; ++d)
    if (axis_mask & (1 << d)) os[d] = 0;
  for (k = 0; k < n_out; ++k) temp_sum[k] = 0;
  for (i0 = 0; i0 < in_dims[0]; ++i0)
    for (i1 = 0; i1 < in_dims[1]; ++i1)
      for (i2 = 0; i2 < in_dims[2]; ++i2)
        for (i3 = 0; i3 < in_dims[3]; ++i3) temp_sum[i0 * os[0] + i1 * os[1] + i2 * os[2] + i3 * os[3]] += *in++;
  for (k = 0; k < n_out; ++k) out[k] = sat16(mcuq_mbqm(temp_sum[k], mult, shift));
}

/* TensorFlow Lite's sigmoid_table_uint16 (kernels/internal/common.h, Apache-2.0): sigmoid(i/24)
 * in 0.16, hand-tuned (no formula reproduces every entry), so it is data here;
 * tests/test_c_int16.py compares it with the pinned library sources when they are present. */
static const uint16_t sigmoid_u16[256] MCUQ_CONST = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
};

/* reference_integer_ops::Logistic (int16), one value (LOGISTIC below, the LSTM's gates): mult 0 means the power-of-two case 3 << shift. */
/* The input scaled to the table's Q(3 * 4096) (power-of-two scales: mult 0, 3 << shift). */
static int32_t table_input(int32_t x, int32_t mult, int shift) {
  if (mult == 0) { /* x * (3 << shift) as shifts and an add: AVR has no 32-bit multiply */
    uint32_t u = (uint32_t)x << shift;
    MCUQ_OPAQUE(u);
    return (int32_t)(u + (u << 1));
  }
  return (x * mult + (shift > 0 ? (int32_t)1 << (shift - 1) : 0)) >> shift;
}

/* The table's interpolation term: frac < 2^9 and the table rises (step < 2^16), so it is one
 * 16 x 16 -> 32-bit multiply (on AVR four hardware MULs instead of a 32-bit library call). */
static uint32_t lerp_term(uint32_t frac, uint32_t ua, uint32_t ub) { return (uint32_t)(uint16_t)frac * (uint16_t)(ub - ua); }

int16_t mcuq_sigmoid16(int32_t x, int32_t mult, int shift) {
  const int32_t v = table_input(x, mult, shift);
  const uint32_t a = (uint32_t)(v < 0 ? -v : v);
  uint32_t result;
  if (a >= (uint32_t)255 << 9) { /* the table index a >> 9 is past its last step */
    result = (uint32_t)0x7FFF << 10;
  } else {
    /* a < 2^17: the index a >> 9 and ua << 9 as a byte move and one bit shift */
    const uint8_t uh = (uint8_t)((uint16_t)(a >> 1) >> 8);
    const uint32_t ua = pgm_u16(sigmoid_u16 + uh), ub = pgm_u16(sigmoid_u16 + uh + 1);
    uint32_t base = ua << 8;
    MCUQ_OPAQUE(base);
    result = (base << 1) + lerp_term(a & 0x1FF, ua, ub);
  }
  result = v >= 0 ? result + ((uint32_t)1 << 9) : ((uint32_t)1 << 25) - result + ((uint32_t)1 << 9) - 1;
  result >>= 8; /* >> 10 as a byte move and two bit shifts */
  MCUQ_OPAQUE(result);
  return (int16_t)(result >> 2);
}

/* reference_integer_ops::Tanh (int16): tanh(x) = 2 sigmoid(2x) - 1 on the same table. */
int16_t mcuq_tanh16(int32_t x, int32_t mult, int shift) {
  const int32_t v = table_input(x, mult, shift);
  const uint32_t a = (uint32_t)(v < 0 ? -v : v);
  int32_t result;
  uint32_t uh;
  uh = a >> 8;
  if (uh >= 255) {
    result = (int32_t)((uint32_t)0xFFFF << 8);
  } else {
    uint32_t ua = pgm_u16(sigmoid_u16 + uh);
    uint32_t ub = pgm_u16(sigmoid_u16 + uh + 1);
    result = (int32_t)((ua << 8) + lerp_term(a & 0xFF, ua, ub));
  }
  result = v >= 0 ? result - ((int32_t)1 << 23) + ((int32_t)1 << 7) : -result + ((int32_t)1 << 23) + ((int32_t)1 << 7) - 1;
  return (int16_t)(result >> 8);
}

/* LOGISTIC int16 (reference_integer_ops::Logistic): the table at 2^9 steps, interpolated. */
void mcuq_logistic_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t mult, int shift) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) out[i] = mcuq_sigmoid16(in[i], mult, shift);
}

/* TANH int16 (reference_integer_ops::Tanh). */
void mcuq_tanh_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t mult, int shift) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) out[i] = mcuq_tanh16(in[i], mult, shift);
}

/* LEAKY_RELU int16 (reference_ops::QuantizeLeakyRelu; zero points 0): the identity multiplier for
 * x >= 0, the alpha one (made positive, `alpha_negative` restores the sign) below. */
void mcuq_leaky_relu_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t id_mult, int id_shift, int32_t alpha_mult,
                         int alpha_shift, int alpha_negative) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) {
    const int32_t x = in[i];
    int32_t v;
    if (x >= 0) {
      v = mcuq_mbqm(x, id_mult, id_shift);
    } else {
      v = mcuq_mbqm(x, alpha_mult, alpha_shift);
      if (alpha_negative) v = -v;
    }
    out[i] = (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
  }
}

/* GetInvSqrtQuantizedMultiplierExp (kernels/internal/common.h, reverse shift -1): gemmlowp's 5
 * Newton-Raphson steps in 3-integer-bit fixed point; returns the multiplier, *shift the left shift. */
static int32_t sat_shl32(int32_t x, int amount) {
  const int64_t v = (int64_t)x * ((int64_t)1 << amount);
  return (int32_t)(v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : v));
}

static int32_t inv_sqrt(int32_t value, int* shift) {
  int32_t half_input, x;
  int pairs, i;
  *shift = 0;
  if (value <= 1) return INT32_MAX;
  *shift = 11; /* an int16 value is below 1 << 29: no scaling down */
  pairs = (clz32((uint32_t)value) - 1) / 2 - 1;
  *shift -= pairs;
  value <<= 2 * pairs;
  half_input = mcuq_rdivpot(value >> 1, 1);
  x = (int32_t)1 << 28; /* F3 one */
  for (i = 0; i < 5; ++i) {
    const int32_t x3 = sat_shl32(mcuq_srdhm(mcuq_srdhm(x, x), x), 6);
    x = sat_shl32((int32_t)((uint32_t)mcuq_srdhm(((int32_t)1 << 28) + ((int32_t)1 << 27), x) - (uint32_t)mcuq_srdhm(half_input, x3)), 3);
  }
  x = mcuq_srdhm(x, (int32_t)1518500250); /* sqrt(2) / 2 in F0 */
  if (*shift < 0) {
    x = (int32_t)((uint32_t)x << -*shift);
    *shift = 0;
  }
  *shift = -*shift;
  return x;
}

void mcuq_rsqrt_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t mult, int shift) {
  mcuq_dim i;
  for (i = 0; i < n; ++i) {
    int inv_shift;
    int32_t inv, data;
    if (in[i] <= 0) { /* 0: TFLite Micro's "max output"; below 0 its invoke fails */
      out[i] = 32767;
      continue;
    }
    inv = inv_sqrt(in[i], &inv_shift);
    data = mcuq_mbqm(1, inv, inv_shift + 20);
    out[i] = sat16(mcuq_mbqm(data, mult, shift - 20));
  }
}

/* reference_ops::BatchMatMul<int16_t, int64_t> (offsets 0). */
static int16_t bmm_out16(int64_t acc, const mcuq_batch_matmul_s16_params* p) { return sat16(mbqm64(acc, p->mult, p->shift)); }

void mcuq_batch_matmul_s16(const mcuq_batch_matmul_s16_params* params) {
  mcuq_batch_matmul_s16_params p;
  MCUQ_LOAD_PARAMS(p, params);
  MCUQ_BATCH_MATMUL_WALK(p, int16_t, int64_t, bmm_out16);
}
