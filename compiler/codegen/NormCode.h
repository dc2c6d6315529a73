//===- NormCode.h - norm kernels that fusion groups reuse -----*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_NORMCODE_H
#define MOEC_COMPILER_CODEGEN_NORMCODE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"

namespace moec::codegen {

/// The kernel of a `moe.fused norm` group (an elementwise op, typically the
/// residual sum, and the moe.rms_norm of its result): one block per row
/// computes the row's elements from the op's inputs, stores them when they
/// are read after the group, and normalizes the row, as moe.rms_norm's own
/// kernel does.
mlir::FailureOr<CudaKernel> fusedNormKernel(mlir::Operation *fused);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_NORMCODE_H
