//===- LossCode.h - the chunked kernel of the LM head and its loss -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_LOSSCODE_H
#define MOEC_COMPILER_CODEGEN_LOSSCODE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"
#include "mlir/Support/LogicalResult.h"

namespace moec::codegen {

/// The kernel of a `moe.fused lm_head` group: moe.linear (the LM head), the
/// moe.cross_entropy of its logits and, in training, moe.cross_entropy_grad
/// and the head's moe.linear_grad. The logits are computed a chunk of rows
/// at a time into the workspace (about T·d of them), each chunk's loss
/// terms and logit gradients in place, then its rows of the input gradient
/// and its share of the weight gradient: the bits of the unfused ops, with
/// the `[T, V]` logits never stored.
mlir::FailureOr<CudaKernel> fusedLMHeadKernel(mlir::Operation *fused);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_LOSSCODE_H
