//===- KernelWriter.h - the common frame of every generated kernel -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_KERNELWRITER_H
#define MOEC_COMPILER_CODEGEN_KERNELWRITER_H

#include "compiler/codegen/CudaKernel.h"

#include "mlir/IR/Operation.h"
#include "llvm/Support/raw_ostream.h"

#include <array>
#include <string>

namespace moec::codegen {

/// Writes the frame every kernel shares: the prelude, the signature (one
/// pointer per operand, `in0`, `in1`, ..., then one per result, `out0`, ...,
/// typed by element type), and the cuda-emu launcher. Op models write the
/// body with `os()`. The entry point is `<stem>_<hash of the source>`, so
/// identical kernels (the same op and shapes in every layer) share one name,
/// one compile and one module.
class KernelWriter {
public:
  KernelWriter(mlir::Operation *op, llvm::StringRef stem);

  /// The body, written inside the kernel function.
  llvm::raw_string_ostream &os() { return body_; }
  /// The C type of operand/result `value`'s elements ("float", "int",
  /// "long long"); fails with a diagnostic on the op for other types.
  mlir::FailureOr<std::string> elementType(mlir::Value value) const;

  /// Launch with `block` threads per block and `grid` blocks.
  /// `usesBarriers`: the body calls __syncthreads (cuda-emu then runs the
  /// threads of a block as fibers).
  mlir::FailureOr<CudaKernel> finish(std::array<unsigned, 3> grid,
                                     std::array<unsigned, 3> block, bool usesBarriers);

private:
  mlir::Operation *op_;
  std::string stem_;
  std::string bodyText_;
  llvm::raw_string_ostream body_{bodyText_};
};

/// The CUDA C++ shared by every kernel: block reductions and macros; with
/// MOEC_CUDA_EMU, the host-side definitions come from the cuda-emu header
/// the runtime force-includes.
llvm::StringRef cudaPrelude();

/// Blocks of `threads` (a power of two) that cover `n` elements with one
/// element per thread, capped so that grid-stride loops take the rest.
unsigned blocksFor(int64_t n, unsigned threads);

/// The smallest power of two >= n, within [32, 1024].
unsigned threadsFor(int64_t n);

/// The head of a grid-stride loop over `n` elements, index `i` (a line; the
/// caller writes the statement or block that follows).
std::string forEachElement(int64_t n);

/// `value` as a CUDA float literal that reads back to the same f32.
std::string floatLiteral(double value);

/// The number of elements of a ranked tensor value.
int64_t numElements(mlir::Value value);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_KERNELWRITER_H
