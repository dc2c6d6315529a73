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

/// A static, unit-stride box of `type`'s shape at `offsets` in `source`.
Value extractBox(OpBuilder &b, Location loc, Value source, RankedTensorType type,
                 ArrayRef<int64_t> offsets) {
  SmallVector<int64_t> strides(type.getRank(), 1);
  return b.create<tensor::ExtractSliceOp>(
      loc, type, source, ValueRange{}, ValueRange{}, ValueRange{}, b.getDenseI64ArrayAttr(offsets),
      b.getDenseI64ArrayAttr(type.getShape()), b.getDenseI64ArrayAttr(strides));
}

/// A concatenation hands each input its slice of the result's gradient.
struct ConcatGradient
    : public GradientOpInterface::ExternalModel<ConcatGradient, tensor::ConcatOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto concat = cast<tensor::ConcatOp>(op);
    int64_t dim = concat.getDim(), offset = 0;
    for (Value input : concat.getInputs()) {
      auto type = cast<RankedTensorType>(input.getType());
      SmallVector<int64_t> offsets(type.getRank(), 0);
      offsets[dim] = offset;
      grads.push_back(extractBox(b, op->getLoc(), dresult[0], type, offsets));
      offset += type.getDimSize(dim);
    }
    return success();
  }
};

/// A static slice's gradient is the result's gradient in its place, zeros
/// elsewhere.
struct ExtractSliceGradient
    : public GradientOpInterface::ExternalModel<ExtractSliceGradient, tensor::ExtractSliceOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto slice = cast<tensor::ExtractSliceOp>(op);
    if (!slice.hasUnitStride() || !slice.getOffsets().empty() || !slice.getSizes().empty() ||
        slice.getResultType().getRank() != slice.getSourceType().getRank())
      return op->emitOpError("gradients of dynamic, strided or rank-reducing slices are not "
                             "implemented");
    Value zeros = b.create<FillOp>(op->getLoc(), slice.getSourceType(), b.getF32FloatAttr(0.0f));
    grads.push_back(b.create<tensor::InsertSliceOp>(
        op->getLoc(), slice.getSourceType(), dresult[0], zeros, ValueRange{}, ValueRange{},
        ValueRange{}, slice.getStaticOffsetsAttr(), slice.getStaticSizesAttr(),
        slice.getStaticStridesAttr()));
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
    tensor::ExtractSliceOp::attachInterface<ExtractSliceGradient>(*context);
  });
}

} // namespace moec::moe
