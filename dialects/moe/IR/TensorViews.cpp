//===- TensorViews.cpp - tensor reshapes as views ---------------------------===//
#include "dialects/moe/IR/TensorViews.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;

namespace moec::moe {
namespace {
template <typename ReshapeOp>
struct ReshapeView
    : public ViewLikeOpInterface::ExternalModel<ReshapeView<ReshapeOp>, ReshapeOp> {
  Value getViewSource(Operation *op) const { return cast<ReshapeOp>(op).getSrc(); }
};
} // namespace

void registerTensorViewModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, tensor::TensorDialect *) {
    tensor::ExpandShapeOp::attachInterface<ReshapeView<tensor::ExpandShapeOp>>(*context);
    tensor::CollapseShapeOp::attachInterface<ReshapeView<tensor::CollapseShapeOp>>(*context);
  });
}

} // namespace moec::moe
