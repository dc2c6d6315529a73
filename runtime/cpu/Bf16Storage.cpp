// Bf16Storage.cpp - cpu kernels over tensors a plan stores in bf16.
#include "runtime/cpu/Bf16Storage.h"

#include "runtime/core/Bf16.h"

namespace moec::rt::cpu {

const float *floatsOf(const TensorRef &t, std::vector<float> &scratch) {
  if (t.dtype != DType::bf16)
    return t.f32();
  const uint16_t *bits = static_cast<const uint16_t *>(t.data);
  int64_t n = t.numel();
  scratch.resize(n);
  float *out = scratch.data();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    out[i] = bf16Value(bits[i]);
  return out;
}

float *floatOutput(const TensorRef &t, std::vector<float> &scratch) {
  if (t.dtype != DType::bf16)
    return t.f32();
  scratch.resize(t.numel());
  return scratch.data();
}

void storeFloats(const TensorRef &t, const float *values) {
  if (t.dtype != DType::bf16)
    return;
  uint16_t *bits = static_cast<uint16_t *>(t.data);
  int64_t n = t.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    bits[i] = bf16Bits(values[i]);
}

} // namespace moec::rt::cpu
