//===- MeshGradients.cpp - gradients of the upstream mesh collectives -----===//
#include "dialects/moe/IR/MeshGradients.h"
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;

namespace moec::moe {
FailureOr<int64_t> meshGroupSize(Operation *op, StringRef meshName, ArrayRef<int16_t> axes) {
  auto meshOp = SymbolTable::lookupNearestSymbolFrom<mesh::MeshOp>(
      op, FlatSymbolRefAttr::get(op->getContext(), meshName));
  if (!meshOp)
    return op->emitOpError("names no mesh.mesh '") << meshName << "'";
  int64_t size = 1;
  for (int16_t axis : axes) {
    int64_t extent = meshOp.getShape()[axis];
    if (ShapedType::isDynamic(extent))
      return op->emitOpError("runs over mesh axis ")
             << axis << " of dynamic size, whose gradient needs the size";
    size *= extent;
  }
  return size;
}

namespace {

/// The gradient of gathering along an axis is this rank's slice of the
/// result's cotangent.
struct AllGatherGradient
    : public GradientOpInterface::ExternalModel<AllGatherGradient, mesh::AllGatherOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto gather = cast<mesh::AllGatherOp>(op);
    grads.push_back(b.create<mesh::AllSliceOp>(op->getLoc(), gather.getInput().getType(),
                                               gather.getMesh(), gather.getMeshAxes(), dresult[0],
                                               gather.getGatherAxis()));
    return success();
  }
};

/// The gradient of slicing is the gather of the slices' cotangents.
struct AllSliceGradient
    : public GradientOpInterface::ExternalModel<AllSliceGradient, mesh::AllSliceOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto slice = cast<mesh::AllSliceOp>(op);
    grads.push_back(b.create<mesh::AllGatherOp>(op->getLoc(), slice.getInput().getType(),
                                                slice.getMesh(), slice.getMeshAxes(), dresult[0],
                                                slice.getSliceAxis()));
    return success();
  }
};

/// An all-to-all's gradient is the reverse all-to-all: pieces split along
/// the concatenation axis travel back and are joined along the split axis.
struct AllToAllGradient
    : public GradientOpInterface::ExternalModel<AllToAllGradient, mesh::AllToAllOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto exchange = cast<mesh::AllToAllOp>(op);
    grads.push_back(b.create<mesh::AllToAllOp>(
        op->getLoc(), exchange.getInput().getType(), exchange.getMesh(), exchange.getMeshAxes(),
        dresult[0], exchange.getConcatAxis(), exchange.getSplitAxis()));
    return success();
  }
};

/// A sum's gradient is its cotangent; an average's, the cotangent over the
/// group size (a 0-D loss term: moe.weighted_sum scales it).
struct AllReduceGradient
    : public GradientOpInterface::ExternalModel<AllReduceGradient, mesh::AllReduceOp> {
  LogicalResult buildVJP(Operation *op, OpBuilder &b, ArrayRef<Value> dresult,
                         SmallVectorImpl<Value> &grads) const {
    auto reduce = cast<mesh::AllReduceOp>(op);
    if (reduce.getReduction() == mesh::ReductionKind::Sum) {
      grads.push_back(dresult[0]);
      return success();
    }
    if (reduce.getReduction() != mesh::ReductionKind::Average)
      return op->emitOpError("has no gradient rule for reduction ")
             << mesh::stringifyReductionKind(reduce.getReduction());
    auto type = cast<RankedTensorType>(reduce.getType());
    if (type.getRank() != 0)
      return op->emitOpError("averages a tensor of rank ")
             << type.getRank() << "; gradients of averages are built for 0-D loss terms only";
    FailureOr<int64_t> size = meshGroupSize(op, reduce.getMesh(), reduce.getMeshAxes());
    if (failed(size))
      return failure();
    grads.push_back(b.create<WeightedSumOp>(
        op->getLoc(), ValueRange{dresult[0]},
        b.getDenseF32ArrayAttr({static_cast<float>(1.0 / static_cast<double>(*size))})));
    return success();
  }
};
} // namespace

void registerMeshGradientModels(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, mesh::MeshDialect *) {
    mesh::AllGatherOp::attachInterface<AllGatherGradient>(*context);
    mesh::AllSliceOp::attachInterface<AllSliceGradient>(*context);
    mesh::AllReduceOp::attachInterface<AllReduceGradient>(*context);
    mesh::AllToAllOp::attachInterface<AllToAllGradient>(*context);
  });
}

} // namespace moec::moe
