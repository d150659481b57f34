/* mcuq plain-C runtime: SVDF (int8 input and feature weights, int8 or int16 time weights and
 * activation state, int32 bias), as TensorFlow Lite Micro's reference kernel computes it
 * (svdf_common.cc EvalIntegerSvdfReference<int8_t / int16_t>). Its own file so that models
 * without an SVDF never compile or link it. The activation state lives in a static array of the
 * generated model, outside the activation buffer, and survives mcuq_invoke() like TFLite Micro's
 * variable tensor. */
#ifndef MCUQ_SVDF_H
#define MCUQ_SVDF_H

#include "mcuq_kernels.h"

/* Everything is computed by the generator (mcuq/backends/c/lower_svdf.py):
 *  - state [batch][filters][memory]: one of state8/state16 (the other is 0), the time weights
 *    [filters][memory] of the same type in w_time8/w_time16; filters = units * rank;
 *  - w_feature [filters][in_dim]; bias [units] (0: none);
 *  - feature_mult/shift: input x feature weights -> state scale; out_mult/shift: state x time
 *    weights -> output scale (Prepare's effective_scale_1 and _2). */
typedef struct {
  const int8_t* in;
  int8_t* out;
  int8_t* state8;
  int16_t* state16;
  const int8_t* w_feature;
  const int8_t* w_time8;
  const int16_t* w_time16;
  const int32_t* bias;
  int32_t feature_mult, out_mult;
  int8_t feature_shift, out_shift;
  mcuq_sz batch, in_dim, filters, memory, rank;
  int16_t in_zp, state_zp, out_zp;
} mcuq_svdf_params;

void mcuq_svdf(const mcuq_svdf_params* params);

#endif
