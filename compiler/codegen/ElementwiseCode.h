//===- ElementwiseCode.h - kernels of one thread per element --*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_ELEMENTWISECODE_H
#define MOEC_COMPILER_CODEGEN_ELEMENTWISECODE_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseMap.h"

#include <array>
#include <string>

namespace moec::codegen {

class KernelWriter;

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

/// The pointer expression of each value the kernel of `kernelOp` reads or
/// writes: for a moe.fused op, its body's arguments (the group's inputs)
/// and the values it yields (its results); otherwise its operands and
/// results.
llvm::DenseMap<mlir::Value, std::string> kernelValueNames(const KernelWriter &w,
                                                          mlir::Operation *kernelOp);

/// The expressions `names` gives `member`'s operands, then its results, in
/// order; fails with a diagnostic on the member when one has none.
mlir::FailureOr<llvm::SmallVector<std::string>>
memberValueNames(mlir::Operation *member, const llvm::DenseMap<mlir::Value, std::string> &names);

/// The grid of elementLoopKernel's loops: for each member in turn, blocks
/// enough for its elements (up to 65535, then grid-stride loops).
std::array<unsigned, 3> elementLoopGrid(llvm::ArrayRef<mlir::Operation *> members);

/// Writes to `os` (an entry of 256 threads, on elementLoopGrid's grid) each
/// member's setup and loop over its elements (ElementLoopKernelOpInterface),
/// in the member's own range of blocks; `names` must name every value they
/// read and write.
mlir::LogicalResult writeElementLoops(llvm::raw_ostream &os,
                                      llvm::ArrayRef<mlir::Operation *> members,
                                      const llvm::DenseMap<mlir::Value, std::string> &names);

/// The kernel of `members` (ElementLoopKernelOpInterface ops) run by
/// `kernelOp` (one of them, or a moe.fused op holding them): each member's
/// setup and loop over its elements, side by side, each in a range of
/// blocks of its own (as many as its elements need, so no block idles).
/// Every member result must be a result of `kernelOp`.
mlir::FailureOr<CudaKernel> elementLoopKernel(mlir::Operation *kernelOp, llvm::StringRef stem,
                                              llvm::ArrayRef<mlir::Operation *> members);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_ELEMENTWISECODE_H
