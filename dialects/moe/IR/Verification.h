//===- Verification.h - shape checks shared by the moe op verifiers -*- C++ -*-===//
//
// Every check emits one diagnostic that names the operand, the dimension and
// the expected against the actual value, so verifiers read as a list of
// requirements.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_DIALECTS_MOE_IR_VERIFICATION_H
#define MOEC_DIALECTS_MOE_IR_VERIFICATION_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"

#include <optional>
#include <string>

namespace moec::moe::verify {

/// Emits an error; for op verifiers it is `op->emitOpError()`, for type
/// inference an error at the op's location prefixed with its name.
using ErrorEmitter = llvm::function_ref<mlir::InFlightDiagnostic()>;

/// An emitter for `inferReturnTypes`, which runs before the op exists.
mlir::InFlightDiagnostic emitInferenceError(mlir::MLIRContext *context,
                                            std::optional<mlir::Location> loc,
                                            llvm::StringRef opName);

/// `[16, ?, 8]`.
std::string formatShape(llvm::ArrayRef<int64_t> shape);

/// False only when both extents are static and differ.
bool extentsMatch(int64_t a, int64_t b);

/// Product of extents, dynamic if any is.
int64_t product(llvm::ArrayRef<int64_t> extents);

/// `value` must be a ranked tensor of rank `rank`; `layout` reads like
/// "[tokens, experts]".
mlir::FailureOr<mlir::RankedTensorType>
rankedOperand(ErrorEmitter emitError, mlir::Value value, llvm::StringRef name,
              int64_t rank, llvm::StringRef layout);

/// `value` must be a ranked tensor of rank at least `minRank`.
mlir::FailureOr<mlir::RankedTensorType>
rankedOperandAtLeast(ErrorEmitter emitError, mlir::Value value,
                     llvm::StringRef name, int64_t minRank,
                     llvm::StringRef layout);

/// Dimension `dim` of operand `name` (a `meaning`, e.g. "model width") must
/// equal `expected`, taken from `source`.
mlir::LogicalResult checkDim(ErrorEmitter emitError, llvm::StringRef name,
                             mlir::RankedTensorType type, unsigned dim,
                             int64_t expected, llvm::StringRef meaning,
                             llvm::StringRef source);

/// Operand `name` must have exactly `expected` as its shape.
mlir::LogicalResult checkShape(ErrorEmitter emitError, llvm::StringRef name,
                               mlir::RankedTensorType type,
                               llvm::ArrayRef<int64_t> expected,
                               llvm::StringRef why);

/// An integer attribute in [lo, hi] (hi dynamic: no upper bound).
mlir::LogicalResult checkIntRange(ErrorEmitter emitError, llvm::StringRef name,
                                  int64_t value, int64_t lo, int64_t hi,
                                  llvm::StringRef hiMeaning = "");

/// A positive integer attribute that a result shape depends on; type
/// inference runs before the verifier, so presence is checked here too.
mlir::FailureOr<int64_t> positiveShapeAttr(ErrorEmitter emitError,
                                           mlir::DictionaryAttr attributes,
                                           llvm::StringRef name);

/// A float attribute strictly above `lo` (or at least `lo` when `inclusive`).
mlir::LogicalResult checkFloatAbove(ErrorEmitter emitError,
                                    llvm::StringRef name, float value,
                                    float lo, bool inclusive = false);

/// A float attribute in (lo, hi] or [lo, hi) as the flags say.
mlir::LogicalResult checkFloatRange(ErrorEmitter emitError,
                                    llvm::StringRef name, float value,
                                    float lo, bool loInclusive, float hi,
                                    bool hiInclusive);

/// Weights of an FFN: `w1` and optional `w3` are `expertDims ++ [F, d]`, `w2`
/// is `expertDims ++ [d, F]`; `experts` and `width` come from the input
/// (dynamic to skip). Returns F (possibly dynamic).
mlir::FailureOr<int64_t> checkFFNWeights(ErrorEmitter emitError,
                                         mlir::Value w1, mlir::Value w2,
                                         mlir::Value w3, bool perExpert,
                                         int64_t experts, int64_t width);

/// Router `scores`/`logits` `[T, E]`; returns the type.
mlir::FailureOr<mlir::RankedTensorType>
routerOperand(ErrorEmitter emitError, mlir::Value value, llvm::StringRef name);

} // namespace moec::moe::verify

#endif // MOEC_DIALECTS_MOE_IR_VERIFICATION_H
