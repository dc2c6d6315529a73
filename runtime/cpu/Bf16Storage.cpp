// Bf16Storage.cpp - cpu kernels over tensors a plan stores in bf16.
#include "runtime/cpu/Bf16Storage.h"

#include "runtime/core/Bf16.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace moec::rt::cpu {

MOEC_VECTOR_CLONES void roundToBf16(const float *values, uint16_t *bits, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    bits[i] = bf16Bits(values[i]);
}

MOEC_VECTOR_CLONES void widenBf16(const uint16_t *bits, float *values, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    values[i] = bf16Value(bits[i]);
}

namespace {
uint16_t *bitsOf(const TensorRef &t) { return static_cast<uint16_t *>(t.data); }

/// Calls `convert(begin, count)` over [0, n) in blocks, across the threads
/// unless already inside a parallel region.
template <typename Convert> void inBlocks(int64_t n, Convert convert) {
  constexpr int64_t kBlock = 1 << 14;
  int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for if (!omp_in_parallel() && blocks > 1) schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    convert(b * kBlock, std::min(kBlock, n - b * kBlock));
}
} // namespace

const float *floatsOf(const TensorRef &t, std::vector<float> &scratch) {
  if (t.dtype != DType::bf16)
    return t.f32();
  scratch.resize(static_cast<size_t>(t.numel()));
  const uint16_t *bits = bitsOf(t);
  float *values = scratch.data();
  inBlocks(t.numel(),
           [&](int64_t begin, int64_t n) { widenBf16(bits + begin, values + begin, n); });
  return values;
}

MatrixIn rowsOperand(const TensorRef &t, int64_t first, int64_t count, Precision precision,
                     std::vector<uint16_t> &scratch) {
  int64_t width = t.dim(-1);
  if (t.dtype == DType::bf16)
    return MatrixIn(bitsOf(t) + first * width, width);
  const float *values = t.f32() + first * width;
  if (precision != Precision::bf16)
    return MatrixIn(values, width);
  scratch.resize(static_cast<size_t>(count * width));
  uint16_t *bits = scratch.data();
  inBlocks(count * width,
           [&](int64_t begin, int64_t n) { roundToBf16(values + begin, bits + begin, n); });
  return MatrixIn(bits, width);
}

MatrixOut rowsResult(const TensorRef &t, int64_t first) {
  int64_t width = t.dim(-1);
  if (t.dtype == DType::bf16)
    return MatrixOut(bitsOf(t) + first * width, width);
  return MatrixOut(t.f32() + first * width, width);
}

void zeroRowsFrom(const TensorRef &t, int64_t first) {
  int64_t rows = t.numel() / t.dim(-1);
  if (first >= rows)
    return;
  size_t rowBytes = t.bytes() / rows;
  std::memset(static_cast<char *>(t.data) + first * rowBytes, 0, (rows - first) * rowBytes);
}

} // namespace moec::rt::cpu
