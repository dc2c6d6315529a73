//===- TensorGradients.h - gradients of the upstream tensor ops moec uses -*- C++ -*-===//
#ifndef MOEC_DIALECTS_MOE_IR_TENSORGRADIENTS_H
#define MOEC_DIALECTS_MOE_IR_TENSORGRADIENTS_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace moec::moe {

/// Attaches GradientOpInterface to tensor.expand_shape, tensor.collapse_shape
/// and tensor.concat, which the forward IR uses between moe ops.
void registerTensorGradientModels(mlir::DialectRegistry &registry);

} // namespace moec::moe

#endif // MOEC_DIALECTS_MOE_IR_TENSORGRADIENTS_H
