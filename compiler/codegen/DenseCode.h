//===- DenseCode.h - dense-layer kernels that fusion groups reuse -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_DENSECODE_H
#define MOEC_COMPILER_CODEGEN_DENSECODE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"

namespace moec::codegen {

/// The kernel of a `moe.fused rope` group (rotations that rotate alike:
/// the queries' and keys' moe.rope, or their moe.rope_grad): one thread
/// per position and pair computes the angle's cosine and sine once and
/// rotates that pair in every head of every member, as each member's own
/// kernel computes it.
mlir::FailureOr<CudaKernel> fusedRoPEKernel(mlir::Operation *fused);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_DENSECODE_H
