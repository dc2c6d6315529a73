// CpuKernels.h - registration of the CPU kernels, one function per op family.
#ifndef MOEC_RUNTIME_CPU_CPUKERNELS_H
#define MOEC_RUNTIME_CPU_CPUKERNELS_H

#include "runtime/core/Kernel.h"
#include "runtime/cpu/Math.h"

#include <cstdint>
#include <vector>

namespace moec::rt::cpu {

void registerDenseKernels(KernelTable &registry);
void registerRoutingKernels(KernelTable &registry);
void registerDispatchKernels(KernelTable &registry);
void registerExpertKernels(KernelTable &registry);
void registerLossKernels(KernelTable &registry);
void registerShapeKernels(KernelTable &registry);
void registerDenseGradientKernels(KernelTable &registry);
void registerLinearAttentionKernels(KernelTable &registry);
void registerRouterGradientKernels(KernelTable &registry);
void registerExpertGradientKernels(KernelTable &registry);
void registerLossGradientKernels(KernelTable &registry);

/// The inverse frequency of each of the D/2 pairs a moe.rope (or
/// moe.rope_grad) step rotates: its `inv_freq` (scaled RoPE), else
/// theta^(-2i/D) in f32, as transformers computes them.
/// A plan whose `inv_freq` does not have D/2 values is an error.
StatusOr<std::vector<float>> ropeInverseFrequencies(const StepContext &s, int64_t headDim);
/// The mask attributes of a moe.attention (or moe.attention_grad) step.
AttentionMask attentionMask(const StepContext &s);
/// A [B, S, H, D] attention operand as its heads' products read it: its
/// values, or for bf16 products rounded once into `scratch` (not once per
/// head that reads it: a key head serves every query head of its group),
/// which must outlive it. headOf gives head `h` of batch `b`: S rows of D,
/// H·D apart. (The attention kernels' results are fp32 tensors.)
struct AttentionOperand {
  MatrixIn whole;
  int64_t S, H;
  AttentionOperand(const TensorRef &t, Precision precision, std::vector<uint16_t> &scratch);
  MatrixIn headOf(int64_t b, int64_t h) const;
};
/// The arithmetic of the step's matrix products: its `moe.precision`
/// (--precision=bf16 gives it to every op with matrix products and their
/// gradients), fp32 when absent.
StatusOr<Precision> precisionOf(const StepContext &s);
void registerOptimizerKernels(KernelTable &registry);
void registerSplitExpertKernels(KernelTable &registry);

/// Every CPU kernel.
inline void registerCpuKernels(KernelTable &registry) {
  registerDenseKernels(registry);
  registerRoutingKernels(registry);
  registerDispatchKernels(registry);
  registerExpertKernels(registry);
  registerLossKernels(registry);
  registerShapeKernels(registry);
  registerDenseGradientKernels(registry);
  registerLinearAttentionKernels(registry);
  registerRouterGradientKernels(registry);
  registerExpertGradientKernels(registry);
  registerLossGradientKernels(registry);
  registerOptimizerKernels(registry);
  registerSplitExpertKernels(registry);
}

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_CPUKERNELS_H
