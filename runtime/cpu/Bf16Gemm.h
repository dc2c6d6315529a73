// Bf16Gemm.h - matrix products with bf16 operands and fp32 sums on the CPU
// (gemm() with Precision::bf16, --precision=bf16).
#ifndef MOEC_RUNTIME_CPU_BF16GEMM_H
#define MOEC_RUNTIME_CPU_BF16GEMM_H

#include "runtime/cpu/Math.h"

#include <cstdint>

namespace moec::rt::cpu {

/// C[M, N] = alpha · op(A) · op(B) + beta · C with A and B rounded to bf16
/// (nearest even; operands given as bf16 bits are taken as they are) and the
/// products summed in fp32. M, N and K are positive; a bf16 C has beta = 0.
void gemmBf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, MatrixIn A,
              MatrixIn B, float beta, MatrixOut C);

/// Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), so
/// that gemmBf16 runs oneDNN's bf16 matmul; without, it runs sgemm on the
/// rounded operands (the same products: two bf16 values multiply exactly in
/// fp32), no faster than fp32.
bool bf16ProductsInHardware();

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_BF16GEMM_H
