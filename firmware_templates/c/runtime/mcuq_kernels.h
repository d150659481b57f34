/* mcuq plain-C int8 runtime: kernels with TensorFlow Lite Micro's reference integer
 * arithmetic (fixed-point multipliers, rounding, saturation), so results are bit-exact
 * with TFLite Micro. C99, no allocation, no interpreter. Constant data (weights, biases,
 * multipliers) may live in flash: on AVR it is read with pgm_read_* (see MCUQ_RD_*). */
#ifndef MCUQ_KERNELS_H
#define MCUQ_KERNELS_H

#include <stdint.h>
#include <string.h>

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

/* Index type of the weighted kernels' shapes: 16-bit on AVR (8 KB of RAM bounds every
 * dimension), 32-bit elsewhere. */
#if defined(__AVR__)
typedef int16_t mcuq_sz;
#define MCUQ_LOAD_PARAMS(dst, src) memcpy_P(&(dst), (src), sizeof(dst))
#else
typedef int32_t mcuq_sz;
#define MCUQ_LOAD_PARAMS(dst, src) ((dst) = *(src))
#endif
/* Weight arrays may be read 4 bytes at a time by the SIMD path. */
#define MCUQ_ALIGN4 __attribute__((aligned(4)))

/* Also for mcuq_lstm.c: acc[k] = bias[k] + the dot product of row k of `count` rows of n int8
 * weights (constants, in sequence; returns the weights after them) with x, and an accumulator's
 * requantization saturated to int16 with a multiplier read from a constant. */
const int8_t* mcuq_dot_rows_s8(const int8_t* w, const int8_t* x, mcuq_sz n, const int32_t* bias, uint8_t count, int32_t* acc);
int16_t mcuq_requant_s16(int32_t acc, const int32_t* mult, int8_t shift);

/* Weighted ops take one named constant struct per layer (in flash; on AVR copied to the
 * stack with memcpy_P). The generator has re-laid the weights for the inner loop:
 *  - CONV_2D with col_len > 0: the receptive field (k_h * k_w * in_c, rounded up to 4 with zero
 *    weights) is one segment, read from a per-pixel im2col copy on the stack;
 *  - `block` output channels are computed together; within a block the weights of each tap
 *    (CONV_2D, per input-depth segment; FULLY_CONNECTED: the whole depth) come as chunks of
 *    4 inputs per channel ([c0 w0..3][c1 w0..3]...), then the depth % 4 tail per channel. With
 *    block 1 this is TFLite's own [oc][kh][kw][ic] order. DEPTHWISE_CONV_2D: per block,
 *    per tap, the block's `block` channel weights.
 *  - `bias` already holds bias + in_offset * (sum of the channel's weights): the interior
 *    multiplies raw int8 inputs; taps in the padding add in_zp * (their weights) back, which
 *    is the same int32 sum TFLite Micro forms over the valid taps only. */
typedef struct {
  const int8_t* in;
  int8_t* out;
  const int8_t* filter;
  const int32_t* bias;
  const int32_t* mult;
  const int8_t* shift;
  mcuq_sz in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
  mcuq_sz stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
  mcuq_sz block, depth_mult, col_len;
  int16_t in_zp, out_zp, act_min, act_max;
} mcuq_conv_params;

void mcuq_conv2d(const mcuq_conv_params* params);
void mcuq_depthwise_conv2d(const mcuq_conv_params* params);

typedef struct {
  const int8_t* in;
  int8_t* out;
  const int8_t* filter;
  const int32_t* bias;
  const int32_t* mult;
  const int8_t* shift;
  mcuq_sz batches, depth, units, block;
  int16_t per_channel, in_zp, out_zp, act_min, act_max;
} mcuq_fc_params;

void mcuq_fully_connected(const mcuq_fc_params* params);

#if defined(__AVR__)
/* Layers with few MACs per output run a function generated for them (assembly in
 * mcuq_model.c: weights, biases and requantization as immediates) that computes every output
 * channel of one pixel from its inputs; these drivers walk the pixels. */
typedef void (*mcuq_avr_pixel)(const int8_t* in, int8_t* out, mcuq_sz row_stride);
void mcuq_window_avr(const mcuq_conv_params* params, mcuq_avr_pixel pixel); /* CONV_2D, DEPTHWISE_CONV_2D */
void mcuq_fully_connected_avr(const mcuq_fc_params* params, mcuq_avr_pixel pixel);
/* DEPTHWISE_CONV_2D (dilation 1): per output column a function that leaves out the taps in
 * that column's left/right padding; rows[fy] points at the window's row (or a row of in_zp). */
typedef void (*mcuq_avr_rows)(const int8_t* const* rows, int8_t* out);
void mcuq_depthwise_avr(const mcuq_conv_params* params, const mcuq_avr_rows* by_column);
#endif

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

/* Concatenation along `axis` of inputs that share the output's quantization (and PACK); its
 * inverse (SPLIT, SPLIT_V, UNPACK): chunks[k] (flash) bytes of each outer row go to outs[k]. */
void mcuq_split(const int8_t* in, int8_t* const* outs, const mcuq_dim* chunks, int count, mcuq_dim outer);
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

/* ---- ops of the Keras layer families beyond the CNN set ---- */
void mcuq_sub(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
              int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t a_mult, int a_shift,
              int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t out_offset,
              int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max);
void mcuq_squared_difference(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
                             int8_t* out, const mcuq_dim* out_dims, int32_t a_offset, int32_t a_mult, int a_shift,
                             int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t out_offset,
                             int32_t out_mult, int out_shift, int32_t act_min, int32_t act_max);
/* MAXIMUM / MINIMUM on the raw int8 values, 4-D broadcast. */
void mcuq_max_min(const int8_t* a, const mcuq_dim* a_dims, const int8_t* b, const mcuq_dim* b_dims,
                  int8_t* out, const mcuq_dim* out_dims, int is_min);
void mcuq_prelu(const int8_t* in, const mcuq_dim* in_dims, const int8_t* alpha, const mcuq_dim* alpha_dims,
                int8_t* out, const mcuq_dim* out_dims, int32_t in_offset, int32_t alpha_offset,
                int32_t out_offset, int32_t pos_mult, int pos_shift, int32_t neg_mult, int neg_shift);
/* Elementwise int8 -> int8 through a 256-entry table (flash) indexed by the input's byte:
 * HARD_SWISH and LEAKY_RELU, whose TFLite arithmetic the generator evaluates for every input. */
void mcuq_lut(const int8_t* in, int8_t* out, mcuq_dim n, const int8_t* table);
/* Ops that only move data (TRANSPOSE, STRIDED_SLICE, RESIZE_NEAREST_NEIGHBOR): out is walked in
 * order over 4 axes; table (flash) holds, per axis and output index, the input offset it adds
 * (dims[0] + dims[1] + dims[2] + dims[3] entries). contiguous: the last axis reads in order. */
void mcuq_gather(const int8_t* in, int8_t* out, const mcuq_dim* dims, const mcuq_dim* table, int contiguous);
/* REDUCE_MAX / REDUCE_MIN over the axes in axis_mask (bit i = dim i of 4); equal quantization. */
void mcuq_reduce_max_min(const int8_t* in, const mcuq_dim* in_dims, int axis_mask, int8_t* out, mcuq_dim n_out, int is_min);
/* RESIZE_BILINEAR: tables (flash) of 3 entries per output row / column: lower, upper, scaled value. */
void mcuq_resize_bilinear(const int8_t* in, mcuq_dim in_w, mcuq_dim ch, int8_t* out, mcuq_dim out_h,
                          mcuq_dim out_w, const mcuq_dim* y_table, const mcuq_dim* x_table);

/* BATCH_MATMUL of element type T (int8 here, int16 in mcuq_kernels_s16.h): strides address
 * transposed operands (adj_x/adj_y) in place and broadcast batch axes (stride 0). */
#define MCUQ_BATCH_MATMUL_FIELDS(T)                               \
  const T* lhs;                                                   \
  const T* rhs;                                                   \
  T* out;                                                         \
  mcuq_dim batch[3], lhs_batch[3], rhs_batch[3];                  \
  mcuq_dim rows, cols, depth, lhs_row, lhs_k, rhs_k, rhs_col;     \
  int32_t lhs_offset, rhs_offset, out_offset, mult;               \
  int16_t shift;

/* The walk both kernels share: ACC the sum type, OUT(acc, &p) the stored (requantized, clamped) value. */
#define MCUQ_BATCH_MATMUL_WALK(p, T, ACC, OUT)                                                               \
  do {                                                                                                       \
    mcuq_dim b0, b1, b2, i, j, k;                                                                            \
    T* out_ = (p).out;                                                                                       \
    for (b0 = 0; b0 < (p).batch[0]; ++b0)                                                                    \
      for (b1 = 0; b1 < (p).batch[1]; ++b1)                                                                  \
        for (b2 = 0; b2 < (p).batch[2]; ++b2) {                                                              \
          const T* lhs_ = (p).lhs + b0 * (p).lhs_batch[0] + b1 * (p).lhs_batch[1] + b2 * (p).lhs_batch[2];   \
          const T* rhs_ = (p).rhs + b0 * (p).rhs_batch[0] + b1 * (p).rhs_batch[1] + b2 * (p).rhs_batch[2];   \
          for (i = 0; i < (p).rows; ++i)                                                                     \
            for (j = 0; j < (p).cols; ++j) {                                                                 \
              const T* a_ = lhs_ + i * (p).lhs_row;                                                          \
              const T* w_ = rhs_ + j * (p).rhs_col;                                                          \
              ACC acc_ = 0;                                                                                  \
              for (k = 0; k < (p).depth; ++k, a_ += (p).lhs_k, w_ += (p).rhs_k)                              \
                acc_ += ((int32_t)*a_ + (p).lhs_offset) * ((int32_t)*w_ + (p).rhs_offset);                   \
              *out_++ = OUT(acc_, &(p));                                                                     \
            }                                                                                                \
        }                                                                                                    \
  } while (0)

typedef struct {
  MCUQ_BATCH_MATMUL_FIELDS(int8_t)
} mcuq_batch_matmul_params;

void mcuq_batch_matmul(const mcuq_batch_matmul_params* params);

/* 16x8 (int16 activation) kernels: mcuq_kernels_s16.c */
#include "mcuq_kernels_s16.h"

#endif
