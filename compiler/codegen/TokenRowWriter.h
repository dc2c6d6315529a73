//===- TokenRowWriter.h - kernels of one thread per token ----*- C++ -*-===//
//
// Router ops compute each token's rows on their own (experts are few): a
// kernel loops over tokens, one thread each, and every op writes the body of
// one token. A single op's kernel has one body; a `moe.fused router`
// kernel has the bodies of its members, rows that stay in the group held in
// the thread's registers.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_CODEGEN_TOKENROWWRITER_H
#define MOEC_COMPILER_CODEGEN_TOKENROWWRITER_H

#include "compiler/codegen/KernelWriter.h"

#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"

namespace moec::codegen {

/// What an op's token body writes to, and where its operands' rows are.
class TokenRowWriter {
public:
  /// `rows` maps every value the bodies touch to its row expression.
  TokenRowWriter(KernelWriter &kernel, int64_t tokens,
                 llvm::DenseMap<mlir::Value, std::string> rows)
      : kernel_(kernel), tokens_(tokens), rows_(std::move(rows)) {}

  /// A pointer to token `t`'s row of `value` (rank >= 2), or to the whole
  /// of `value` (a bias, a scalar: rank < 2).
  const std::string &row(mlir::Value value) const { return rows_.find(value)->second; }
  /// The elements of one row of `value` (its size without the tokens).
  static int64_t width(mlir::Value value);
  /// The number of tokens (the loop's `t` runs over [0, tokens)).
  int64_t tokens() const { return tokens_; }
  /// The body being written.
  llvm::raw_string_ostream &os() { return kernel_.os(); }
  /// Device functions the body calls, added once.
  void useHelper(const char *code) { kernel_.useHelper(code); }
  KernelWriter &kernel() { return kernel_; }

private:
  KernelWriter &kernel_;
  int64_t tokens_;
  llvm::DenseMap<mlir::Value, std::string> rows_;
};

/// The kernel of one TokenRowKernelOpInterface op: its body in a loop over
/// tokens.
mlir::FailureOr<CudaKernel> tokenRowKernel(mlir::Operation *op, llvm::StringRef stem);

/// The kernel of a `moe.fused router` group: its members' bodies in order,
/// in one loop over tokens; elementwise members loop over their row. Token
/// statistics (TokenStatisticKernelOpInterface) in the group store their
/// tokens' terms in that loop and their slices' sums at the end of each
/// block, then a second launch computes their results. Statistics'
/// gradients (TokenStatisticGradientKernelOpInterface) make their values in
/// launches before the loop and their rows in it.
mlir::FailureOr<CudaKernel> fusedRouterKernel(mlir::Operation *fused);

/// The kernel of one TokenStatisticKernelOpInterface op: the tokens' terms
/// (a loop over tokens), the blocks' sums over their slices of tokens, then
/// the result in one block; each step a launch, when the op has it.
mlir::FailureOr<CudaKernel> tokenStatisticKernel(mlir::Operation *op, llvm::StringRef stem);

/// The first two launches of `op`'s rows (a
/// TokenStatisticGradientKernelOpInterface op over `tokens` tokens), entries
/// "slices`suffix`" and "values`suffix`": each slice's sums of `operands`
/// (pointers to each operand's first element), then the values the rows
/// are made of, whose expression it returns.
mlir::FailureOr<std::string> writeStatisticGradientValues(KernelWriter &w, mlir::Operation *op,
                                                          llvm::ArrayRef<std::string> operands,
                                                          int64_t tokens,
                                                          llvm::StringRef suffix = "");

/// The number of slices of `tokens` tokens (TokenStatisticKernelOpInterface:
/// slice s holds tokens s·tokenSliceSize() up to the next slice's first).
int64_t tokenSlices(int64_t tokens);

/// The tokens of a slice (but the last): those of one block of the loop
/// over tokens.
int64_t tokenSliceSize();

/// The head of a loop over this block's slices of `tokens` tokens (in a
/// grid of blocks of tokenSliceSize() threads, as the loop over tokens
/// takes them): `slice`, and its tokens `t0` ≤ t < `t1`; the caller closes
/// it with "  }".
std::string beginSliceLoop(int64_t tokens);

/// The C type of elements of type `type` ("float", "int", "long long"), or
/// empty when a kernel cannot hold it in registers.
std::string registerType(mlir::Type type);

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_TOKENROWWRITER_H
