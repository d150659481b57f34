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
