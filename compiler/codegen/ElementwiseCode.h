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

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_ELEMENTWISECODE_H
