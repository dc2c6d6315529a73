//===- MoETraits.h - op traits of the moe dialect ----------------*- C++ -*-===//
#ifndef MOEC_DIALECTS_MOE_IR_MOETRAITS_H
#define MOEC_DIALECTS_MOE_IR_MOETRAITS_H

#include "mlir/IR/OpDefinition.h"

namespace moec::moe {

/// A forward op whose work is matrix products (dense layers, attention,
/// expert FFNs): --moe-mixed-precision may give it bf16 operands.
template <typename ConcreteType>
class MatrixProducts : public mlir::OpTrait::TraitBase<ConcreteType, MatrixProducts> {};

/// A forward op that is cheap to compute again (a gather, a norm: bound by
/// memory, not arithmetic) and deterministic: --moe-rematerialize computes
/// it again for the backward pass instead of keeping its result alive.
template <typename ConcreteType>
class Recomputable : public mlir::OpTrait::TraitBase<ConcreteType, Recomputable> {};

} // namespace moec::moe

#endif // MOEC_DIALECTS_MOE_IR_MOETRAITS_H
