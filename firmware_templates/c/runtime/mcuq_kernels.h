/* mcuq plain-C int8 runtime: kernels with TensorFlow Lite Micro's reference integer
 * arithmetic (fixed-point multipliers, rounding, saturation), so results are bit-exact
 * with TFLite Micro. C99, no allocation, no interpreter. Constant data (weights, biases,
 * multipliers) may live in flash: on AVR it is read with pgm_read_* (see MCUQ_RD_*). */
#ifndef MCUQ_KERNELS_H
#define MCUQ_KERNELS_H

#include <stdint.h>

#if defined(__AVR__)
#include <avr/pgmspace.h>
#define MCUQ_CONST PROGMEM
#define MCUQ_RD_I8(p) ((int8_t)pgm_read_byte(p))
#define MCUQ_RD_I32(p) ((int32_t)pgm_read_dword(p))
#else
#define MCUQ_CONST
#define MCUQ_RD_I8(p) (*(const int8_t*)(p))
#define MCUQ_RD_I32(p) (*(const int32_t*)(p))
#endif

typedef int32_t mcuq_dim;

/* Fixed-point helpers (gemmlowp / TFLite reference semantics). */
int32_t mcuq_srdhm(int32_t a, int32_t b);
int32_t mcuq_rdivpot(int32_t x, int exponent);
int32_t mcuq_mbqm(int32_t x, int32_t multiplier, int shift);

void mcuq_conv2d(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim in_c,
                 const int8_t* filter, mcuq_dim k_h, mcuq_dim k_w, const int32_t* bias,
                 const int32_t* mult, const int8_t* shift, int8_t* out, mcuq_dim out_h, mcuq_dim out_w,
                 mcuq_dim out_c, int stride_h, int stride_w, int dil_h, int dil_w, int pad_h, int pad_w,
                 int32_t in_offset, int32_t out_offset, int32_t act_min, int32_t act_max);

void mcuq_depthwise_conv2d(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim in_c,
                           const int8_t* filter, mcuq_dim k_h, mcuq_dim k_w, const int32_t* bias,
                           const int32_t* mult, const int8_t* shift, int8_t* out, mcuq_dim out_h,
                           mcuq_dim out_w, int depth_mult, int stride_h, int stride_w, int dil_h,
                           int dil_w, int pad_h, int pad_w, int32_t in_offset, int32_t out_offset,
                           int32_t act_min, int32_t act_max);

void mcuq_fully_connected(const int8_t* in, mcuq_dim batches, mcuq_dim depth, const int8_t* filter,
                          const int32_t* bias, const int32_t* mult, const int8_t* shift, int per_channel,
                          int8_t* out, mcuq_dim units, int32_t in_offset, int32_t out_offset,
                          int32_t act_min, int32_t act_max);

void mcuq_max_pool(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim ch, int8_t* out,
                   mcuq_dim out_h, mcuq_dim out_w, int f_h, int f_w, int stride_h, int stride_w,
                   int pad_h, int pad_w, int32_t act_min, int32_t act_max);

void mcuq_avg_pool(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim ch, int8_t* out,
                   mcuq_dim out_h, mcuq_dim out_w, int f_h, int f_w, int stride_h, int stride_w,
                   int pad_h, int pad_w, int32_t act_min, int32_t act_max);

/* Elementwise binary ops over 4-D broadcast shapes (dims of size 1 broadcast). */
void mcuq_add(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
              int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t a_mult, int a_shift,
              int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t out_offset,
              int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max);

void mcuq_mul(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
              int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t b_offset,
              int32_t out_offset, int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max);

void mcuq_copy(const int8_t* in, int8_t* out, mcuq_dim n);
/* Requantize (QUANTIZE int8->int8, standalone RELU/RELU6). */
void mcuq_requantize(const int8_t* in, int8_t* out, mcuq_dim n, int32_t in_zp, int32_t out_zp,
                     int32_t mult, int shift, int32_t act_min, int32_t act_max);

void mcuq_softmax(const int8_t* in, int8_t* out, mcuq_dim outer, mcuq_dim depth, int32_t in_mult,
                  int in_left_shift, int32_t diff_min);
void mcuq_logistic(const int8_t* in, int8_t* out, mcuq_dim n, int32_t in_zp, int32_t range_radius,
                   int32_t in_mult, int in_left_shift);
void mcuq_tanh(const int8_t* in, int8_t* out, mcuq_dim n, int32_t in_zp, int32_t range_radius,
               int32_t in_mult, int in_left_shift);

/* Concatenation along `axis` of inputs that share the output's quantization. */
void mcuq_concat(const int8_t* const* ins, const mcuq_dim* axis_sizes, int count, int8_t* out,
                 mcuq_dim outer, mcuq_dim inner);

void mcuq_pad(const int8_t* in, const mcuq_dim* in_dims, int8_t* out, const mcuq_dim* out_dims,
              const mcuq_dim* before, int8_t pad_value);

/* MEAN over a set of axes of a 4-D tensor (axis_mask bit i = reduce dim i). */
void mcuq_mean(const int8_t* in, const mcuq_dim* in_dims, int axis_mask, int8_t* out,
               int32_t* temp_sum, int32_t in_zp, int32_t out_zp, int32_t mult, int shift);

void mcuq_transpose_conv(const int8_t* in, mcuq_dim in_h, mcuq_dim in_w, mcuq_dim in_c,
                         const int8_t* filter, mcuq_dim k_h, mcuq_dim k_w, const int32_t* bias,
                         const int32_t* mult, const int8_t* shift, int8_t* out, mcuq_dim out_h,
                         mcuq_dim out_w, mcuq_dim out_c, int stride_h, int stride_w, int pad_h,
                         int pad_w, int32_t* scratch, int32_t in_offset, int32_t out_offset,
                         int32_t act_min, int32_t act_max);

#endif
