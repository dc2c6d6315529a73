//===- ElementwiseCode.h - kernels of one thread per element --*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_ELEMENTWISECODE_H
#define MOEC_COMPILER_CODEGEN_ELEMENTWISECODE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"

namespace moec::codegen {

/// The kernel of `members` (ElementKernelOpInterface ops of one shape, in
/// order) run by `kernelOp`: one thread per element computes every
/// member's element in registers; the values of `outputs` are stored. The
/// kernel reads the operands of `kernelOp`, which are the members' inputs
/// (or, for a moe.fused op, mapped to its body's arguments), and writes its
/// results, which are `outputs` in order. Tensors may be f32 or bf16 (loaded
/// and stored through moec_load / moec_store).
mlir::FailureOr<CudaKernel> elementwiseKernel(mlir::Operation *kernelOp, llvm::StringRef stem,
                                              mlir::ValueRange outputs,
                                              llvm::ArrayRef<mlir::Operation *> members);

/// The kernel of `members` (ElementLoopKernelOpInterface ops) run by
/// `kernelOp` (one of them, or a moe.fused op holding them): each member's
/// setup and loop over its elements, side by side as blocks of a 2-D grid
/// (blockIdx.y picks the member). Every member result must be a result of
/// `kernelOp`.
mlir::FailureOr<CudaKernel> elementLoopKernel(mlir::Operation *kernelOp, llvm::StringRef stem,
                                              llvm::ArrayRef<mlir::Operation *> members);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_ELEMENTWISECODE_H
