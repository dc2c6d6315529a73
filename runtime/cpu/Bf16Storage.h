// Bf16Storage.h - cpu kernels over tensors a plan stores in bf16 (moec
// --precision=bf16 keeps the expert activations so): they compute in fp32
// and widen what they read, round what they write.
#ifndef MOEC_RUNTIME_CPU_BF16STORAGE_H
#define MOEC_RUNTIME_CPU_BF16STORAGE_H

#include "runtime/core/Tensor.h"

#include <vector>

namespace moec::rt::cpu {

/// `t`'s elements as floats: `t` itself (f32), or widened into `scratch`
/// (bf16).
const float *floatsOf(const TensorRef &t, std::vector<float> &scratch);

/// Where a kernel writes `t`'s elements as floats: `t` itself (f32), or
/// `scratch` (bf16), which storeFloats then rounds into `t`.
float *floatOutput(const TensorRef &t, std::vector<float> &scratch);

/// Rounds `values` (what floatOutput gave) into `t` when it is bf16 (to
/// nearest even); nothing to do for f32.
void storeFloats(const TensorRef &t, const float *values);

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_BF16STORAGE_H
