//===- ActivationCode.h - CUDA expressions of the activations -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_ACTIVATIONCODE_H
#define MOEC_COMPILER_CODEGEN_ACTIVATIONCODE_H

#include "dialects/moe/IR/MoEDialect.h"

#include <string>

namespace moec::codegen {

/// act(x) as a parenthesised CUDA expression of `x`, as the CPU kernels
/// compute it (runtime/cpu/Math.h: activate).
std::string activationCode(moe::Activation kind, llvm::StringRef x);

/// act'(x), likewise (activateGrad); it calls the device functions of
/// kActivationGradHelpers, which the kernel's module must hold.
std::string activationGradCode(moe::Activation kind, llvm::StringRef x);

inline constexpr const char *kActivationGradHelpers =
    R"cuda(__device__ float moec_gelu_grad(float x) {
  float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
  float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
  return cdf + x * pdf;
}
__device__ float moec_gelu_tanh_grad(float x) {
  const float c = 0.7978845608028654f;
  float t = tanhf(c * (x + 0.044715f * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
}
__device__ float moec_silu_grad(float x) {
  float sig = 1.0f / (1.0f + expf(-x));
  return sig * (1.0f + x * (1.0f - sig));
}
__device__ float moec_sigmoid_grad(float x) {
  float sig = 1.0f / (1.0f + expf(-x));
  return sig * (1.0f - sig);
}
)cuda";

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_ACTIVATIONCODE_H
