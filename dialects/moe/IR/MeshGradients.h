//===- MeshGradients.h - gradients of the upstream mesh collectives -*- C++ -*-===//
#ifndef MOEC_DIALECTS_MOE_IR_MESHGRADIENTS_H
#define MOEC_DIALECTS_MOE_IR_MESHGRADIENTS_H

#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace mlir {
class DialectRegistry;
class Operation;
} // namespace mlir

namespace moec::moe {

/// Attaches GradientOpInterface to mesh.all_gather, mesh.all_slice,
/// mesh.all_reduce and mesh.all_to_all, which `--moe-shard-data` puts into a forward function
/// before it is differentiated.
///
/// The rules read a cotangent the way the forward reads a value: a tensor
/// that every rank of a group holds the same (the result of an all-gather or
/// an all-reduce) is one logical value, and its cotangent, the same on every
/// rank, is that value's one cotangent, not one per rank. So the gradient of
/// an all-gather is the rank's slice of the cotangent (mesh.all_slice, no
/// communication), that of a sum all-reduce the cotangent itself, and that
/// of an average all-reduce the cotangent over the group size, that of an
/// all-to-all the reverse all-to-all (no value is replicated). Parameters
/// used on every rank then receive the sum over ranks of their local
/// gradients (`--moe-reduce-gradients`).
void registerMeshGradientModels(mlir::DialectRegistry &registry);

/// The number of ranks in a group over `axes` of the mesh `mesh` that `op`
/// names: the product of the mesh's sizes along them (an error on `op` when
/// there is no such mesh or a size is dynamic).
mlir::FailureOr<int64_t> meshGroupSize(mlir::Operation *op, llvm::StringRef mesh,
                                       llvm::ArrayRef<int16_t> axes);

} // namespace moec::moe

#endif // MOEC_DIALECTS_MOE_IR_MESHGRADIENTS_H
