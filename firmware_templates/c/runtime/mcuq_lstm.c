/* mcuq plain-C runtime: UNIDIRECTIONAL_SEQUENCE_LSTM (see mcuq_lstm.h). Operation for
 * operation TFLite Micro's reference kernel (lstm_eval.h LstmStep, lstm_eval.cc; the int16
 * Logistic / Tanh of reference/integer_ops), so the outputs and the state are bit-exact with it.
 *
 * TFLite Micro computes each gate over all units into 4 scratch buffers of batch x units int16.
 * Every step after the two matrix products is elementwise and the gates all read the previous
 * hidden state, so here one unit's four gates, its cell and its hidden value are computed
 * together: the new hidden value goes to the output row (the hidden state is copied from it at
 * the end of the step, as TFLite Micro copies the hidden state to the output) and the kernel
 * needs no scratch memory at all. */
#include "mcuq_lstm.h"

#if defined(__AVR__)
#define MCUQ_RD_U16(p) ((uint16_t)pgm_read_word(p))
#else
#define MCUQ_RD_U16(p) (*(const uint16_t*)(p))
#endif

/* TFLite's sigmoid_table_uint16 (tensorflow/lite/kernels/internal/common.h, Apache-2.0):
 * sigmoid(i / 24) in 0.16 fixed point, shared by the int16 sigmoid and tanh. */
static const uint16_t mcuq_sigmoid_table[256] MCUQ_CONST = {
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

static int32_t clamp16(int32_t x) { return x < -32768 ? -32768 : (x > 32767 ? 32767 : x); }

/* reference_integer_ops::Logistic (int16): mult 0 means the power-of-two case 3 << shift. */
int16_t mcuq_sigmoid16(int32_t x, int32_t mult, int shift) {
  int32_t round, v;
  uint32_t a, uh, result;
  if (mult == 0) {
    mult = (int32_t)3 << shift;
    shift = 0;
  }
  round = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
  v = (x * mult + round) >> shift;
  a = (uint32_t)(v < 0 ? -v : v);
  uh = a >> 9;
  if (uh >= 255) {
    result = (uint32_t)0x7FFF << 10;
  } else {
    uint32_t ua = MCUQ_RD_U16(&mcuq_sigmoid_table[uh]);
    uint32_t ub = MCUQ_RD_U16(&mcuq_sigmoid_table[uh + 1]);
    result = (ua << 9) + (a & 0x1FF) * (ub - ua);
  }
  result = v >= 0 ? result + ((uint32_t)1 << 9) : ((uint32_t)1 << 25) - result + ((uint32_t)1 << 9) - 1;
  return (int16_t)(result >> 10);
}

/* reference_integer_ops::Tanh (int16): tanh(x) = 2 sigmoid(2x) - 1 on the same table. */
int16_t mcuq_tanh16(int32_t x, int32_t mult, int shift) {
  int32_t round, v, result;
  uint32_t a, uh;
  if (mult == 0) {
    mult = (int32_t)3 << shift;
    shift = 0;
  }
  round = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
  v = (x * mult + round) >> shift;
  a = (uint32_t)(v < 0 ? -v : v);
  uh = a >> 8;
  if (uh >= 255) {
    result = (int32_t)((uint32_t)0xFFFF << 8);
  } else {
    uint32_t ua = MCUQ_RD_U16(&mcuq_sigmoid_table[uh]);
    uint32_t ub = MCUQ_RD_U16(&mcuq_sigmoid_table[uh + 1]);
    result = (int32_t)((ua << 8) + (a & 0xFF) * (ub - ua));
  }
  result = v >= 0 ? result - ((int32_t)1 << 23) + ((int32_t)1 << 7) : -result + ((int32_t)1 << 23) + ((int32_t)1 << 7) - 1;
  return (int16_t)(result >> 8);
}

/* bias + sum of w[k] * x[k] (raw int8 values; the zero points are in the bias). */
static int32_t dot(const int8_t* w, const int8_t* x, mcuq_sz n, int32_t acc) {
#if defined(__AVR__)
  /* one 8x8 signed hardware multiply per MAC (avr-gcc otherwise calls __mulhisi3) */
  while (n-- > 0) {
    int8_t a = (int8_t)pgm_read_byte(w++), b = *x++;
    int16_t product;
    __asm__("muls %1, %2\n\tmovw %0, r0\n\tclr __zero_reg__" : "=r"(product) : "d"(a), "d"(b) : "r0");
    acc += product;
  }
#else
  mcuq_sz k;
  for (k = 0; k < n; ++k) acc += (int32_t)w[k] * (int32_t)x[k];
#endif
  return acc;
}

/* One gate's pre-activation at 2^-12: the input FC and the recurrent FC, each requantized and
 * saturated to int16 (FullyConnected<int8, int8, int16, int32>), then their saturating sum
 * (AddElementWise). */
static int32_t gate_input(const mcuq_lstm_params* p, int g, mcuq_sz u, const int8_t* x, const int8_t* h) {
  const mcuq_sz row = (mcuq_sz)(g * p->units + u);
  int32_t a = dot(p->w_in + (int32_t)row * p->in_dim, x, p->in_dim, MCUQ_RD_I32(p->b_in + row));
  int32_t r = dot(p->w_rec + (int32_t)row * p->units, h, p->units, MCUQ_RD_I32(p->b_rec + row));
  a = clamp16(mcuq_mbqm(a, p->in_mult[g], p->in_shift[g]));
  r = clamp16(mcuq_mbqm(r, p->rec_mult[g], p->rec_shift[g]));
  return clamp16(a + r);
}

/* One time step of one batch row: LstmStep with the gates computed unit by unit. */
static void lstm_step(const mcuq_lstm_params* p, const int8_t* x, int8_t* out, int8_t* h, int16_t* c) {
  mcuq_sz u;
  for (u = 0; u < p->units; ++u) {
    int32_t ig = mcuq_sigmoid16(gate_input(p, 0, u, x, h), 0, 0);
    int32_t fg = mcuq_sigmoid16(gate_input(p, 1, u, x, h), 0, 0);
    int32_t cg_in = gate_input(p, 2, u, x, h);
    int32_t cg = p->cell_gate_sigmoid ? mcuq_sigmoid16(cg_in, 0, 0) : mcuq_tanh16(cg_in, 0, 0);
    int32_t og = mcuq_sigmoid16(gate_input(p, 3, u, x, h), 0, 0);
    /* UpdateLstmCell: forget x cell and input x cell gate, each int16-saturated, summed with
     * saturation, then clipped */
    int32_t kept = clamp16(mcuq_mbqm(fg * c[u], p->cf_mult, p->cf_shift));
    int32_t added = clamp16(mcuq_mbqm(ig * cg, p->ig_mult, p->ig_shift));
    int32_t cell = clamp16(kept + added);
    int32_t hidden;
    if (p->cell_clip > 0) cell = cell > p->cell_clip ? p->cell_clip : (cell < -p->cell_clip ? -p->cell_clip : cell);
    c[u] = (int16_t)cell;
    /* UpdateLstmHidden: tanh(cell) x output gate -> int8 with the hidden zero point */
    hidden = p->hidden_zp + mcuq_mbqm(mcuq_tanh16(cell, p->cell_tanh_mult, p->cell_tanh_shift) * og, p->hid_mult, p->hid_shift);
    out[u] = (int8_t)(hidden < -128 ? -128 : (hidden > 127 ? 127 : hidden));
  }
  memcpy(h, out, (size_t)p->units);
}

/* EvalLstm: time major steps all batch rows at time t before t + 1; batch major runs each row's
 * whole sequence. Batch rows are independent, so both orders are one loop here. */
void mcuq_lstm(const mcuq_lstm_params* params) {
  mcuq_lstm_params p;
  mcuq_sz b, t;
  MCUQ_LOAD_PARAMS(p, params);
  for (b = 0; b < p.batch; ++b) {
    for (t = 0; t < p.steps; ++t) {
      const int32_t row = p.time_major ? (int32_t)t * p.batch + b : (int32_t)b * p.steps + t;
      lstm_step(&p, p.in + row * p.in_dim, p.out + row * p.units, p.hidden + (int32_t)b * p.units, p.cell + (int32_t)b * p.units);
    }
  }
}
