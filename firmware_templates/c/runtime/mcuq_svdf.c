/* mcuq plain-C runtime: SVDF (see mcuq_svdf.h). Operation for operation TFLite Micro's
 * reference kernel (svdf_common.cc EvalIntegerSvdfReference), so the output and the state are
 * bit-exact with it:
 *  1. the whole state array moves one element to the left (one memmove over every batch row
 *     and filter, as TFLite Micro's loop does);
 *  2. each filter's newest state element (its last, memory - 1) becomes the feature product,
 *     requantized, saturated to the state type, plus the state zero point (stored with the
 *     state type's wrap-around, as TFLite Micro's implicit conversion);
 *  3. each unit sums its rank filters' time products (state - state zero point) and its bias,
 *     then requantizes to int8 (no activation: TFLite Micro's integer SVDF ignores it).
 * The sums are int32 with wrap-around (uint32 here: C leaves signed overflow undefined).
 * TFLite Micro keeps two int32 scratch buffers (batch x filters and batch x units); here each
 * unit's sum is finished in one register, so the kernel needs no scratch memory. */
#include "mcuq_svdf.h"

#if defined(__AVR__)
#define MCUQ_RD_I16(p) ((int16_t)pgm_read_word(p))
#else
#define MCUQ_RD_I16(p) (*(const int16_t*)(p))
#endif

/* The feature product of one filter for one batch row, requantized and saturated to [lo, hi]. */
static int32_t feature(const mcuq_svdf_params* p, const int8_t* x, mcuq_sz f, int32_t lo, int32_t hi) {
  const int8_t* w = p->w_feature + (int32_t)f * p->in_dim;
  uint32_t acc = 0;
  mcuq_sz c;
  int32_t v;
  for (c = 0; c < p->in_dim; ++c) acc += (uint32_t)((int32_t)MCUQ_RD_I8(w + c) * ((int32_t)x[c] - p->in_zp));
  v = mcuq_mbqm((int32_t)acc, p->feature_mult, p->feature_shift);
  return v < lo ? lo : (v > hi ? hi : v);
}

/* Sum over one unit's rank filters of (time weights . (state - zero point)), for either state type. */
#define MCUQ_SVDF_TIME(STATE, WTIME, RD)                                                      \
  do {                                                                                        \
    mcuq_sz j, k;                                                                             \
    for (j = 0; j < p->rank; ++j) {                                                           \
      const int32_t f = (int32_t)u * p->rank + j;                                             \
      for (k = 0; k < p->memory; ++k)                                                         \
        acc += (uint32_t)((int32_t)RD(WTIME + f * p->memory + k) *                            \
                          ((int32_t)STATE[row + f * p->memory + k] - p->state_zp));           \
    }                                                                                         \
  } while (0)

static void svdf_row(const mcuq_svdf_params* p, mcuq_sz b) {
  const int8_t* x = p->in + (int32_t)b * p->in_dim;
  const int32_t row = (int32_t)b * p->filters * p->memory;
  const mcuq_sz units = (mcuq_sz)(p->filters / p->rank);
  mcuq_sz f, u;
  for (f = 0; f < p->filters; ++f) {
    const int32_t newest = row + (int32_t)f * p->memory + p->memory - 1;
    if (p->state16)
      p->state16[newest] = (int16_t)(p->state_zp + feature(p, x, f, -32768, 32767));
    else
      p->state8[newest] = (int8_t)(p->state_zp + feature(p, x, f, -128, 127));
  }
  for (u = 0; u < units; ++u) {
    uint32_t acc = p->bias ? (uint32_t)MCUQ_RD_I32(p->bias + u) : 0u;
    int32_t v;
    if (p->state16)
      MCUQ_SVDF_TIME(p->state16, p->w_time16, MCUQ_RD_I16);
    else
      MCUQ_SVDF_TIME(p->state8, p->w_time8, MCUQ_RD_I8);
    v = mcuq_mbqm((int32_t)acc, p->out_mult, p->out_shift) + p->out_zp;
    p->out[(int32_t)b * units + u] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
  }
}

void mcuq_svdf(const mcuq_svdf_params* params) {
  mcuq_svdf_params p;
  int32_t count;
  mcuq_sz b;
  MCUQ_LOAD_PARAMS(p, params);
  count = (int32_t)p.batch * p.filters * p.memory;
  if (p.state16)
    memmove(p.state16, p.state16 + 1, (size_t)(count - 1) * sizeof(int16_t));
  else
    memmove(p.state8, p.state8 + 1, (size_t)(count - 1));
  for (b = 0; b < p.batch; ++b) svdf_row(&p, b);
}
