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

/// TokenRows' verifier: the leading dimensions agree.
mlir::LogicalResult verifyTokenRows(mlir::Operation *op);

/// Each token's rows of the results depend only on that token's rows of the
/// operands: operands and results of rank >= 2 share their leading
/// dimension (the tokens); operands of lower rank are read whole.
template <typename ConcreteType>
class TokenRows : public mlir::OpTrait::TraitBase<ConcreteType, TokenRows> {
public:
  // After the op's own verifier, whose messages name the operand.
  static mlir::LogicalResult verifyRegionTrait(mlir::Operation *op) { return verifyTokenRows(op); }
};

/// Rows of the result are rows of operand 0 picked by the index operand 1.
template <typename ConcreteType>
class RowGather : public mlir::OpTrait::TraitBase<ConcreteType, RowGather> {};

/// Kernels can read operand 0's rows through a row index (a fused gather).
template <typename ConcreteType>
class GatheredInput : public mlir::OpTrait::TraitBase<ConcreteType, GatheredInput> {};

/// Result 0 holds an expert FFN's pre-activations [h1 | h3].
template <typename ConcreteType>
class PreActivations : public mlir::OpTrait::TraitBase<ConcreteType, PreActivations> {};

/// The op's products read an elementwise function of operand 0 (the
/// activation), computed in the producer's epilogue when fused.
template <typename ConcreteType>
class ActivatedInput : public mlir::OpTrait::TraitBase<ConcreteType, ActivatedInput> {};

/// Result 0 is the activation's derivative applied to the op's first
/// product: a fused kernel computes it in that GEMM's epilogue.
template <typename ConcreteType>
class ActivationGradient : public mlir::OpTrait::TraitBase<ConcreteType, ActivationGradient> {};

/// The op's products read an expert FFN's hidden-layer gradient (an
/// ActivationGradient op's result 0) in the same row groups.
template <typename ConcreteType>
class HiddenGradientInput : public mlir::OpTrait::TraitBase<ConcreteType, HiddenGradientInput> {};

/// The op normalizes each row of operand 0 over its last dimension, one
/// block per row.
template <typename ConcreteType>
class RowNormalization : public mlir::OpTrait::TraitBase<ConcreteType, RowNormalization> {};

/// A dense product y = x Wᵀ (+ b): operands (x, W[, b]).
template <typename ConcreteType>
class DenseProduct : public mlir::OpTrait::TraitBase<ConcreteType, DenseProduct> {};

/// The op reads operand 0 as rows of logits, each row by itself.
template <typename ConcreteType>
class LogitRows : public mlir::OpTrait::TraitBase<ConcreteType, LogitRows> {};

/// The gradient of a dense product: operands (x, W, dy), results (dx, dW).
template <typename ConcreteType>
class DenseProductGradient : public mlir::OpTrait::TraitBase<ConcreteType, DenseProductGradient> {};

/// Result 0 is a row normalization's input gradient, made one block per row.
template <typename ConcreteType>
class RowNormalizationGradient
    : public mlir::OpTrait::TraitBase<ConcreteType, RowNormalizationGradient> {};

/// An optimizer's update of one parameter: elementwise over its operands of
/// the parameter's shape, reading 0-d operands whole.
template <typename ConcreteType>
class ParameterUpdate : public mlir::OpTrait::TraitBase<ConcreteType, ParameterUpdate> {};

/// Rotates each pair of its [B, S, H, D] operand 0 by angles of the position
/// and the pair alone.
template <typename ConcreteType>
class PositionRotation : public mlir::OpTrait::TraitBase<ConcreteType, PositionRotation> {};

/// The 0-D result is a function of sums over tokens of each token's terms,
/// read from the token-row operands.
template <typename ConcreteType>
class TokenStatistic : public mlir::OpTrait::TraitBase<ConcreteType, TokenStatistic> {};

/// Each token's result row depends on sums over every token of the operands
/// (made before it).
template <typename ConcreteType>
class TokenStatisticGradient
    : public mlir::OpTrait::TraitBase<ConcreteType, TokenStatisticGradient> {};

/// The 0-D result is the L2 norm of every operand's elements together.
template <typename ConcreteType>
class GradientNorm : public mlir::OpTrait::TraitBase<ConcreteType, GradientNorm> {};

/// The 0-D result scales the gradients parameter updates read; operand 0 is
/// a GradientNorm op's result, the others are 0-D.
template <typename ConcreteType>
class GradientScale : public mlir::OpTrait::TraitBase<ConcreteType, GradientScale> {};

/// The 0-D result is a mean over the batch's tokens or sequences.
template <typename ConcreteType>
class BatchMean : public mlir::OpTrait::TraitBase<ConcreteType, BatchMean> {};

/// A token's result depends on other tokens of the batch or on its position.
template <typename ConcreteType>
class BatchCoupled : public mlir::OpTrait::TraitBase<ConcreteType, BatchCoupled> {};

/// The op moves data between the ranks of a group of the device mesh.
template <typename ConcreteType>
class Communication : public mlir::OpTrait::TraitBase<ConcreteType, Communication> {};

/// The token count of a TokenRows or Elementwise op: the leading dimension of
/// its first result (0 when it has none of rank >= 1).
int64_t tokenRowCount(mlir::Operation *op);

} // namespace moec::moe

#endif // MOEC_DIALECTS_MOE_IR_MOETRAITS_H
