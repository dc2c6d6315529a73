//===- OptimizerCode.h - the multi-tensor optimizer kernel ------*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_OPTIMIZERCODE_H
#define MOEC_COMPILER_CODEGEN_OPTIMIZERCODE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"

namespace moec::codegen {

/// The kernel of a `moe.fused optimizer` group: with a gradient norm
/// (`moe.global_norm`) and the clip scale computed from it, first the
/// norm's partial sums over slices of every gradient, then one block that
/// adds them and computes the norm and the scale (the same sums, in the
/// same order, as the ops' own kernels), then the updates side by side,
/// each reading the scale from where that block left it.
mlir::FailureOr<CudaKernel> fusedOptimizerKernel(mlir::Operation *fused);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_OPTIMIZERCODE_H
