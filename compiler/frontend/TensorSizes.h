//===- TensorSizes.h - every tensor of a module within a byte limit -*- C++ -*-===//
//
// Sizes from a description multiply: a [hidden, hidden] weight of two
// sizes below 2^31 fits 64 bits, an expert stack [E, F, d] may not. Before
// anything computes element counts in 64-bit integers (verifiers, passes,
// the arena), moec checks each tensor's bytes in floating point against its
// memory limit.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_FRONTEND_TENSORSIZES_H
#define MOEC_COMPILER_FRONTEND_TENSORSIZES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

namespace moec::frontend {

/// The bytes of a statically shaped tensor type, as a double (no overflow);
/// 0 for anything else.
double tensorBytes(mlir::Type type);

/// Fails, with an error at the op (or function) that makes it, when a
/// tensor of `module` needs more than `limitBytes`.
mlir::LogicalResult checkTensorSizes(mlir::ModuleOp module, double limitBytes);

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_TENSORSIZES_H
