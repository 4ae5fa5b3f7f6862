// An int8 Linear as the 1×1 convolution over an n × 1 image that it is.
#include "runtime/int8_linear.h"

#include "core/error.h"

namespace shrink::runtime {

namespace {

Conv2dGeometry one_by_one(int64_t rows, int64_t cols) {
  Conv2dGeometry g;
  g.in_channels = cols;
  g.out_channels = rows;
  g.kernel = {1, 1};
  g.stride = {1, 1};
  g.padding = {0, 0};
  g.dilation = {1, 1};
  return g;
}

void check_rows(const Int8ConvWeights& w, int64_t n) {
  SHRINK_CHECK(n >= 0, "int8 Linear: row count must be >= 0, got ", n);
  SHRINK_CHECK(w.geometry.kernel == std::vector<int64_t>({1, 1}), "int8 Linear takes weights from pack_int8_linear");
}

}  // namespace

Int8ConvWeights pack_int8_linear(const int8_t* weight, int64_t rows, int64_t cols, const std::vector<float>& scales,
                                 const std::vector<float>& bias) {
  SHRINK_CHECK(rows > 0 && cols > 0, "int8 Linear features must be > 0, got ", cols, " in and ", rows, " out");
  // [rows][cols] is PyTorch's [oc][c][1][1]: the same bytes.
  return pack_int8_conv2d(one_by_one(rows, cols), weight, scales, bias);
}

void int8_linear(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out,
                 Int8Path path) {
  check_rows(w, n);
  if (n == 0) return;
  int8_conv2d(w, x, 1, n, 1, p, out, path);
}

void int8_linear(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out) {
  int8_linear(w, x, n, p, out, int8_conv2d_best_path());
}

void int8_linear_float(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, float* out,
                       Int8Path path) {
  check_rows(w, n);
  if (n == 0) return;
  int8_conv2d_float(w, x, 1, n, 1, p, out, path);
}

void int8_linear_float(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, float* out) {
  int8_linear_float(w, x, n, p, out, int8_conv2d_best_path());
}

}  // namespace shrink::runtime
