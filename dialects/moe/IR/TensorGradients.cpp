//===- TensorGradients.cpp - gradients of the upstream tensor ops ---------===//
#include "dialects/moe/IR/TensorGradients.h"
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"

using namespace mlir;

namespace moec::moe {
namespace {
/// A reshape's gradient is the inverse reshape of the result's gradient.
template <typename ReshapeOp, typename InverseOp>
struct ReshapeGradient
    : public GradientOpInterface::ExternalModel<ReshapeGradient<ReshapeOp, InverseOp>,
                                                ReshapeOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto reshape = cast<ReshapeOp>(op);
    grads.push_back(b.create<InverseOp>(op->getLoc(), reshape.getSrc().getType(),
                                        dresult[0],
                                        reshape.getReassociationIndices()));
    return success();
  }
};

/// A concatenation along dimension 0 hands each input its slice.
struct ConcatGradient
    : public GradientOpInterface::ExternalModel<ConcatGradient, tensor::ConcatOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto concat = cast<tensor::ConcatOp>(op);
    if (concat.getDim() != 0)
      return op->emitOpError("gradients of concatenations along dimension ")
             << concat.getDim() << " are not implemented";
    int64_t offset = 0;
    for (Value input : concat.getInputs()) {
      auto type = cast<RankedTensorType>(input.getType());
      SmallVector<int64_t> offsets(type.getRank(), 0), strides(type.getRank(), 1);
      offsets[0] = offset;
      grads.push_back(b.create<tensor::ExtractSliceOp>(
          op->getLoc(), type, dresult[0], ValueRange{}, ValueRange{}, ValueRange{},
          b.getDenseI64ArrayAttr(offsets), b.getDenseI64ArrayAttr(type.getShape()),
          b.getDenseI64ArrayAttr(strides)));
      offset += type.getDimSize(0);
    }
    return success();
  }
};
} // namespace

void registerTensorGradientModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, tensor::TensorDialect *) {
    tensor::ExpandShapeOp::attachInterface<
        ReshapeGradient<tensor::ExpandShapeOp, tensor::CollapseShapeOp>>(*context);
    tensor::CollapseShapeOp::attachInterface<
        ReshapeGradient<tensor::CollapseShapeOp, tensor::ExpandShapeOp>>(*context);
    tensor::ConcatOp::attachInterface<ConcatGradient>(*context);
  });
}

} // namespace moec::moe
