//===- FunctionArguments.h - what the passes ask of function arguments ---===//
#ifndef MOEC_COMPILER_TRANSFORMS_FUNCTIONARGUMENTS_H
#define MOEC_COMPILER_TRANSFORMS_FUNCTIONARGUMENTS_H

#include "mlir/IR/Value.h"

namespace moec {

/// The function argument whose bytes `value` is (through views), or null.
mlir::BlockArgument argumentBehind(mlir::Value value);

/// Parameters and optimizer state (`moe.param`, `moe.state`) are the
/// training step's to update in place; other inputs (tokens, targets) are
/// the caller's and never overwritten.
bool isParameterOrState(mlir::BlockArgument argument);

/// The parameter or state argument that result `result` of an op with
/// InPlaceOpInterface may be written over (whether it is, depends on
/// nothing reading the argument after the op), or null.
mlir::BlockArgument overwritableArgument(mlir::OpResult result);

} // namespace moec

#endif // MOEC_COMPILER_TRANSFORMS_FUNCTIONARGUMENTS_H
