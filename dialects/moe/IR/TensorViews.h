//===- TensorViews.h - the upstream tensor ops that are views -*- C++ -*-===//
#ifndef MOEC_DIALECTS_MOE_IR_TENSORVIEWS_H
#define MOEC_DIALECTS_MOE_IR_TENSORVIEWS_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace moec::moe {

/// Attaches upstream's ViewLikeOpInterface to tensor.expand_shape and
/// tensor.collapse_shape: on a contiguous row-major tensor a reshape is a new
/// shape over the same bytes, so memory planning and the plan treat it as an
/// alias of its source (no copy, no kernel).
void registerTensorViewModels(mlir::DialectRegistry &registry);

} // namespace moec::moe

#endif // MOEC_DIALECTS_MOE_IR_TENSORVIEWS_H
