// shrink's own int8 Conv2d, for the convolutions LibTorch's quantized kernels run slowly on small
// inputs (one image, few input channels) and for when PyTorch removes those kernels: quint8
// activations in NHWC, symmetric int8 weights with a scale per output channel, quint8 output in
// NHWC (ReLU optional), u8 × s8 products summed in 32 bits. A plain scalar reference, and AVX-512
// VNNI, AVX-VNNI and AVX2 paths tested against it.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "runtime/conv2d_geometry.h"
#include "runtime/int8_gemv.h"
#include "runtime/int8_path.h"

namespace shrink::runtime {

// Weights packed once for every path (groups 1 only).
struct Int8ConvWeights {
  Conv2dGeometry geometry;
  int64_t k = 0;               // kh · kw · C: the products of one output
  std::vector<int8_t> values;  // [oc][kh][kw][c]: the reference's order
  std::vector<int32_t> sums;   // Σ_k w[oc][k], for the input zero point's correction
  std::vector<float> scales;   // per output channel
  std::vector<float> bias;     // per output channel
  // The vector paths' layout (AVX2 widens it as it loads). A window is read as segments of
  // adjacent input bytes: a kernel row (kw · C bytes) where the width's dilation is 1, else a
  // kernel position (C bytes); each segment's weights are rounded up to whole quads with zeros.
  // quads: [segments][segment_quads][oc rounded up to 16][4].
  int64_t segments = 0, segment_quads = 0;
  std::vector<int8_t> quads;
  // AVX2's 7-bit tile reads each block of 16 output channels' quads in an order of its own, the
  // quads it pairs first: vpmaddubsw's 16-bit sums of two quads are added in 16 bits before they
  // widen (three multiplies for eight products a channel, not four), which is exact where no 7-bit
  // input can take a lane past 16 bits: every lane's positive weights, and its negative ones, sum
  // to at most kNarrowPairLimit in magnitude over the two quads.
  // A quad whose 16 channels' weights are all zero is not read at all.
  // narrow_order: [blocks][segments · segment_quads] quad indices (segment · segment_quads + quad),
  // each pair's two adjacent, pairs first, then the single quads; narrow_pairs and narrow_singles:
  // [blocks]; narrow_quads: the weights in that order, [blocks][segments · segment_quads][16][4].
  // Where each quad lies from a pixel's window: narrow_rows[i] input rows down (dilation
  // included), then narrow_bytes[i] bytes on.
  std::vector<int32_t> narrow_order;
  std::vector<int64_t> narrow_pairs, narrow_singles;
  std::vector<int8_t> narrow_quads;
  std::vector<int64_t> narrow_rows, narrow_bytes;
};

// 127 · 258 = 32766: the most a lane's weights of one sign may sum to, in magnitude, for two
// quads to pair (inputs of 7 bits, 0–127).
constexpr int kNarrowPairLimit = 258;

// `weight` in PyTorch's [oc][c][kh][kw] order; `scales` one per output channel (or one for all);
// `bias` one per output channel. Checks the geometry (groups 1, positive sizes).
Int8ConvWeights pack_int8_conv2d(const Conv2dGeometry& geometry, const int8_t* weight, const std::vector<float>& scales,
                                 const std::vector<float>& bias);

// The output's [height, width] for an input of `height` × `width`; an Error when it is empty.
std::array<int64_t, 2> int8_conv2d_output_size(const Conv2dGeometry& geometry, int64_t height, int64_t width);

// x: `batch` images [height][width][C] of quint8 (zero point p.in_zero_point, which padding takes);
// out: `batch` × [out height][out width][OC] of quint8. What one output computes is what the GEMV's
// does for a row: requantize(in_scale · scale[oc] · Σ_k (x − in_zp) w[oc][k] + bias[oc]).
void int8_conv2d_reference(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                           const Int8GemvParams& p, uint8_t* out);
// One path by name (reference, avx2, avx_vnni or avx512_vnni; an Error when the CPU lacks it), or the best
// this CPU has. Output rows are shared out over ATen's intra-op threads.
void int8_conv2d(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                 const Int8GemvParams& p, uint8_t* out, Int8Path path);
void int8_conv2d(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                 const Int8GemvParams& p, uint8_t* out);
// The same sums dequantized instead of requantized (p.out_scale and p.out_zero_point unused):
// out[..][oc] = relu?(in_scale · scale[oc] · Σ_k (x − in_zp) w[oc][k] + bias[oc]) in float, what
// the GEMV's float store computes (a dynamic Linear's rows, int8_linear.h).
void int8_conv2d_float(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                       const Int8GemvParams& p, float* out, Int8Path path);
// The convolution followed by a 2x2, stride-2 max pooling (floor mode), in one pass: out is
// `batch` × [out height / 2][out width / 2][OC], each byte the largest of the four int8_conv2d
// gives for its window (the reference computes those and pools them). AVX2's 7-bit tile
// requantizes only each window's largest sum: requantization never decreases while every
// in_scale · scale[oc] and 1 / out_scale is positive, and the other paths, or other multipliers,
// pool the convolution's rows as they leave it. An Error when the output is below 2x2.
void int8_conv2d_max_pool2x2(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                             const Int8GemvParams& p, uint8_t* out, Int8Path path);
void int8_conv2d_max_pool2x2(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                             const Int8GemvParams& p, uint8_t* out);
// The path `int8_conv2d` runs here: avx512_vnni, else avx2, else the reference.
Int8Path int8_conv2d_best_path();

}  // namespace shrink::runtime
