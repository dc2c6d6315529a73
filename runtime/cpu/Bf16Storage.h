// Bf16Storage.h - cpu kernels over tensors a plan stores in bf16 (moec
// --precision=bf16 keeps the expert activations so): they compute in fp32
// and widen what they read, round what they write.
#ifndef MOEC_RUNTIME_CPU_BF16STORAGE_H
#define MOEC_RUNTIME_CPU_BF16STORAGE_H

#include "runtime/core/Tensor.h"
#include "runtime/cpu/Math.h"

#include <cstdint>
#include <vector>

namespace moec::rt::cpu {

/// `n` floats rounded to bf16 bits (nearest even, NaN stays NaN), and back;
/// vectorised for the CPU they run on.
void roundToBf16(const float *values, uint16_t *bits, int64_t n);
void widenBf16(const uint16_t *bits, float *values, int64_t n);

/// `t`'s elements as floats: `t` itself (f32), or widened into `scratch`
/// (bf16).
const float *floatsOf(const TensorRef &t, std::vector<float> &scratch);

/// Rows from row `first` of `t` as an operand of `count`-row products in
/// `precision`: bf16 bits when `t` is stored in bf16, else its fp32 values,
/// rounded once into `scratch` for bf16 products (so that rows several
/// products read are rounded once).
MatrixIn rowsOperand(const TensorRef &t, int64_t first, int64_t count, Precision precision,
                     std::vector<uint16_t> &scratch);
/// Rows from row `first` of `t` as the result of a product, in `t`'s type.
MatrixOut rowsResult(const TensorRef &t, int64_t first);

/// Sets rows [first, end) of `t` to zero, whatever its element type.
void zeroRowsFrom(const TensorRef &t, int64_t first);

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_BF16STORAGE_H
