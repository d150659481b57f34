/* mcuq plain-C runtime: UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations x int8 weights with an
 * int16 cell state, as TensorFlow Lite Micro's reference kernel computes it (lstm_eval.h
 * EvalLstm<int8_t, int8_t, int16_t, int32_t>). Its own file so that models without an LSTM
 * never compile or link it. The hidden (int8) and cell (int16) state live in static arrays of
 * the generated model, outside the activation buffer, and survive mcuq_invoke() like TFLite
 * Micro's variable tensors. */
#ifndef MCUQ_LSTM_H
#define MCUQ_LSTM_H

#include "mcuq_kernels.h"

/* Everything is computed by the generator (mcuq/backends/c/lower_lstm.py):
 *  - w_in [units][4][in_dim], w_rec [units][4][units]: per unit its four gates' rows in TFLite's
 *    input order (input, forget, cell, output), so the kernel reads the weights in sequence;
 *  - b_in [units][4] = gate bias - in_zp * (sum of the row's input weights), b_rec [units][4] =
 *    -hidden_zp * (sum of the row's recurrent weights): the loops multiply raw int8 values;
 *  - fc_mult [8] (a constant: the input FCs' four, then the recurrent FCs'), in_shift, rec_shift:
 *    the two FC requantizations into the fixed 2^-12 gate scale; cf/ig/hid: the inter-gate
 *    multiplications (forget x cell, input x cell gate, tanh(cell) x output -> hidden int8 with
 *    hidden_zp);
 *  - cell_tanh_mult/shift: TFLite's Tanh input scaling for the cell's power-of-two scale;
 *    cell_gate_sigmoid: the cell gate's activation is a sigmoid instead of tanh;
 *    cell_clip: quantized clip (0: none). */
typedef struct {
  const int8_t* in;
  int8_t* out;
  int8_t* hidden;
  int16_t* cell;
  const int8_t* w_in;
  const int8_t* w_rec;
  const int32_t* b_in;
  const int32_t* b_rec;
  const int32_t* fc_mult;
  int32_t cf_mult, ig_mult, hid_mult, cell_tanh_mult;
  int8_t in_shift[4], rec_shift[4];
  int8_t cf_shift, ig_shift, hid_shift, cell_tanh_shift;
  mcuq_sz batch, steps, in_dim, units;
  int16_t time_major, cell_gate_sigmoid, cell_clip, hidden_zp;
} mcuq_lstm_params;

void mcuq_lstm(const mcuq_lstm_params* params);

/* The gates' int16 nonlinearities are the 16x8 LOGISTIC/TANH ones (mcuq_sigmoid16 and
 * mcuq_tanh16 of mcuq_kernels_s16.c, one copy of TFLite's sigmoid table); their products and
 * int16 requantization are FULLY_CONNECTED's (mcuq_dot_rows_s8, mcuq_requant_s16 of
 * mcuq_kernels.c: on AVR the 24-bit MAC loop and the 24-bit-accumulator requantization). */

#endif
