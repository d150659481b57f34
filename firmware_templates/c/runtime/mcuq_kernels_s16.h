/* mcuq plain-C runtime, 16x8 kernels: int16 activations (zero point 0), int8 weights, int64
 * or int32 biases, with TensorFlow Lite Micro's reference_integer_ops arithmetic. Included by
 * mcuq_kernels.h; the functions live in mcuq_kernels_s16.c (dropped by --gc-sections when a
 * model has no int16 layer). */
#ifndef MCUQ_KERNELS_S16_H
#define MCUQ_KERNELS_S16_H

#include <stdint.h>

/* CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (a 1x1 convolution over `batches` rows) of
 * int16 inputs. Weights in TFLite's own order ([oc][kh][kw][ic], depthwise [kh][kw][oc]).
 * acc64: TFLite Micro accumulates in int64 (int64 bias) and requantizes with the 16-bit
 * `reduced` multiplier in `mult` (MultiplyByQuantizedMultiplier(int64_t)); otherwise (int32
 * bias) it accumulates in int32 (wrapping) and uses the 32-bit multiplier. */
typedef struct {
  const int16_t* in;
  int16_t* out;
  const int8_t* filter;
  const int64_t* bias; /* 0: none */
  const int32_t* mult;
  const int8_t* shift;
  mcuq_sz in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
  mcuq_sz stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, depth_mult;
  int16_t act_min, act_max;
  int8_t depthwise, acc64;
} mcuq_conv_s16_params;

void mcuq_conv_s16(const mcuq_conv_s16_params* params);
/* TRANSPOSE_CONV of int16 inputs (reference_integer_ops::TransposeConv, int64 sums): the same
 * parameters (dil_*, depth_mult, depthwise unused; acc64 1), weights [oc][kh][kw][ic]; each
 * output gathers the inputs that TFLite Micro scatters onto it, so no int64 scratch buffer. */
void mcuq_transpose_conv_s16(const mcuq_conv_s16_params* params);

/* ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE of int16 tensors and PRELU (b: alpha minus its zero point,
 * as int16; a_mult/a_shift for x >= 0, out_mult/out_shift for x * alpha), 4-D broadcast (dims
 * of size 1 broadcast); dims in RAM. */
enum { MCUQ_S16_ADD, MCUQ_S16_SUB, MCUQ_S16_MUL, MCUQ_S16_MAX, MCUQ_S16_MIN, MCUQ_S16_PRELU, MCUQ_S16_SQDIFF };
typedef struct {
  const int16_t* a;
  const mcuq_dim* a_dims;
  const int16_t* b;
  const mcuq_dim* b_dims;
  int16_t* out;
  const mcuq_dim* out_dims;
  int32_t a_mult, b_mult, out_mult;
  int8_t a_shift, b_shift, out_shift, left_shift, kind;
  int16_t act_min, act_max;
} mcuq_binary_s16_params;

void mcuq_binary_s16(const mcuq_binary_s16_params* params);

/* ABS int16 (zero points 0): |x|, rescaled by (mult, shift) when the scales differ (rescale). */
void mcuq_abs_s16(const int16_t* in, int16_t* out, mcuq_dim n, int rescale, int32_t mult, int shift);

/* QUANTIZE int8 <-> int16 and int16 -> int16 (in_wide / out_wide: the side is int16). */
void mcuq_requantize_s16(const void* in, int in_wide, void* out, int out_wide, mcuq_dim n, int32_t in_zp, int32_t out_zp,
                         int32_t mult, int shift, int32_t lo, int32_t hi);

/* SOFTMAX int16 -> int16; exp_lut and recip_lut: TFLite Micro's two 513-entry tables. */
void mcuq_softmax_s16(const int16_t* in, int16_t* out, mcuq_dim outer, mcuq_dim depth, int32_t mult, int shift,
                      const int16_t* exp_lut, const int16_t* recip_lut);

/* MAX_POOL_2D (is_avg 0) and AVERAGE_POOL_2D (is_avg 1) of int16 tensors. */
typedef struct {
  const int16_t* in;
  int16_t* out;
  mcuq_sz in_h, in_w, ch, out_h, out_w, f_h, f_w, stride_h, stride_w, pad_h, pad_w;
  int16_t act_min, act_max;
  int8_t is_avg;
} mcuq_pool_s16_params;

void mcuq_pool_s16(const mcuq_pool_s16_params* params);

/* MEAN of an int16 tensor over the axes in axis_mask (bit i = dim i of 4); temp_sum: scratch. */
void mcuq_mean_s16(const int16_t* in, const mcuq_dim* in_dims, int axis_mask, int16_t* out, int32_t* temp_sum, int32_t mult,
                   int shift);

/* LOGISTIC / TANH int16 -> int16 (output scale 2^-15) through TensorFlow Lite's sigmoid table;
 * mult 0: a power-of-two input scale (the kernel uses 3 << shift). */
void mcuq_logistic_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t mult, int shift);
void mcuq_tanh_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t mult, int shift);
/* LEAKY_RELU int16 -> int16 (zero points 0). */
void mcuq_leaky_relu_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t id_mult, int id_shift, int32_t alpha_mult,
                         int alpha_shift, int alpha_negative);
/* RSQRT int16 -> int16 (elementwise.cc's RsqrtEvalQuantized): mult/shift of 1 / (sqrt(in scale)
 * * out scale); inputs <= 0 give 32767 (TFLite Micro fails the invoke on negative ones). */
void mcuq_rsqrt_s16(const int16_t* in, int16_t* out, mcuq_dim n, int32_t mult, int shift);

/* BATCH_MATMUL of two int16 tensors (zero points 0), int64 sums, the 16-bit reduced multiplier:
 * mcuq_batch_matmul's walk (MCUQ_BATCH_MATMUL_WALK). */
typedef struct {
  MCUQ_BATCH_MATMUL_FIELDS(int16_t)
} mcuq_batch_matmul_s16_params;

void mcuq_batch_matmul_s16(const mcuq_batch_matmul_s16_params* params);

/* One value of each (also the plain-C LSTM's gates, mcuq_lstm.c). */
int16_t mcuq_sigmoid16(int32_t x, int32_t mult, int shift);
int16_t mcuq_tanh16(int32_t x, int32_t mult, int shift);

#endif
