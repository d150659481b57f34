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

static int32_t clamp16(int32_t x) { return x < -32768 ? -32768 : (x > 32767 ? 32767 : x); }

/* One unit's four gate pre-activations at 2^-12: per gate the input FC and the recurrent FC,
 * each requantized and saturated to int16 (FullyConnected<int8, int8, int16, int32>), then
 * their saturating sum (AddElementWise). The products and the requantization are the FC
 * kernel's (mcuq_dot_rows_s8, mcuq_requant_s16 in mcuq_kernels.c): the unit's four rows of
 * each weight array are in sequence. `w` is advanced past them. */
typedef struct {
  const int8_t* w_in;
  const int8_t* w_rec;
  const int32_t* b_in;
  const int32_t* b_rec;
} lstm_rows;

static void gate_inputs(const mcuq_lstm_params* p, lstm_rows* w, const int8_t* x, const int8_t* h, int32_t gate[4]) {
  int32_t in[4], rec[4];
  int g;
  w->w_in = mcuq_dot_rows_s8(w->w_in, x, p->in_dim, w->b_in, 4, in);
  w->w_rec = mcuq_dot_rows_s8(w->w_rec, h, p->units, w->b_rec, 4, rec);
  w->b_in += 4, w->b_rec += 4;
  for (g = 0; g < 4; ++g) {
    const int32_t a = mcuq_requant_s16(in[g], p->fc_mult + g, p->in_shift[g]);
    gate[g] = clamp16(a + mcuq_requant_s16(rec[g], p->fc_mult + 4 + g, p->rec_shift[g]));
  }
}

/* An inter-gate multiplication (Q0.15 gate x int16) requantized: the product of two int16
 * values (|x| < 2^30) is one 16 x 16 multiply. TFLite's cell scale is a power of two, so forget
 * x cell and input x cell gate have the multiplier 2^30 (a scale 2^-k): then srdhm(x, 2^30) is
 * exactly (x + 1) >> 1 and only RoundingDivideByPOT remains, as mcuq_mbqm computes it. Any other
 * multiplier takes mcuq_mbqm. */
static int32_t mul_gates(int16_t a, int16_t b, int32_t mult, int8_t shift) {
  int32_t x = (int32_t)a * b;
  int8_t e;
  if (mult != ((int32_t)1 << 30) || shift > 0) return mcuq_mbqm(x, mult, shift);
  x = (x + 1) >> 1;
  if (shift == 0) return x;
  e = (int8_t)(-shift - 1);
  x -= x < 0;
  if (e >= 8) x >>= 8, e -= 8; /* a whole byte first: AVR shifts one bit per loop turn */
  return ((x >> e) + 1) >> 1;
}

/* One time step of one batch row: LstmStep with the gates computed unit by unit. */
static void lstm_step(const mcuq_lstm_params* p, const int8_t* x, int8_t* out, int8_t* h, int16_t* c) {
  lstm_rows w;
  mcuq_sz u;
  w.w_in = p->w_in, w.w_rec = p->w_rec, w.b_in = p->b_in, w.b_rec = p->b_rec;
  for (u = 0; u < p->units; ++u) {
    int32_t gate[4], kept, added, cell, hidden;
    int16_t ig, fg, cg, og;
    gate_inputs(p, &w, x, h, gate);
    ig = mcuq_sigmoid16(gate[0], 0, 0);
    fg = mcuq_sigmoid16(gate[1], 0, 0);
    cg = p->cell_gate_sigmoid ? mcuq_sigmoid16(gate[2], 0, 0) : mcuq_tanh16(gate[2], 0, 0);
    og = mcuq_sigmoid16(gate[3], 0, 0);
    /* UpdateLstmCell: forget x cell and input x cell gate, each int16-saturated, summed with
     * saturation, then clipped */
    kept = clamp16(mul_gates(fg, c[u], p->cf_mult, p->cf_shift));
    added = clamp16(mul_gates(ig, cg, p->ig_mult, p->ig_shift));
    cell = clamp16(kept + added);
    if (p->cell_clip > 0) cell = cell > p->cell_clip ? p->cell_clip : (cell < -p->cell_clip ? -p->cell_clip : cell);
    c[u] = (int16_t)cell;
    /* UpdateLstmHidden: tanh(cell) x output gate -> int8 with the hidden zero point */
    hidden = p->hidden_zp + mul_gates(mcuq_tanh16(cell, p->cell_tanh_mult, p->cell_tanh_shift), og, p->hid_mult, p->hid_shift);
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
