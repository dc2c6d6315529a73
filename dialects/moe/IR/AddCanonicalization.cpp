//===- AddCanonicalization.cpp - sums of disjoint insertions --------------===//
//
// The gradient of a static slice is the slice's gradient inserted into
// zeros; a tensor split into slices (DeepSeek's latent attention splits
// three per layer) gets the sum of such insertions. Their boxes are
// disjoint, so the sum is one chain of insertions into one fill of zeros,
// and a tensor.concat when the boxes tile the tensor along one dimension:
// no fill, no additions.
//
//===----------------------------------------------------------------------===//
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#include <algorithm>

using namespace mlir;

namespace moec::moe {
namespace {

/// A value inserted at a static box.
struct Box {
  Value source;
  SmallVector<int64_t> offsets, sizes;
};

/// Whether `value` is zeros with static unit-stride boxes inserted (a
/// chain of tensor.insert_slice into a moe.fill of 0), appending the boxes.
bool collectBoxes(Value value, SmallVectorImpl<Box> &boxes) {
  while (auto insert = value.getDefiningOp<tensor::InsertSliceOp>()) {
    if (!insert.hasUnitStride() || !insert.getOffsets().empty() || !insert.getSizes().empty() ||
        insert.getSourceType().getRank() != insert.getDestType().getRank())
      return false;
    boxes.push_back({insert.getSource(), SmallVector<int64_t>(insert.getStaticOffsets()),
                     SmallVector<int64_t>(insert.getStaticSizes())});
    value = insert.getDest();
  }
  auto fill = value.getDefiningOp<FillOp>();
  return fill && fill.getValue().isZero();
}

bool disjoint(const Box &a, const Box &b) {
  for (size_t d = 0; d < a.offsets.size(); ++d)
    if (a.offsets[d] + a.sizes[d] <= b.offsets[d] || b.offsets[d] + b.sizes[d] <= a.offsets[d])
      return true;
  return false;
}

/// The dimension along which `boxes` (sorted by offset along it) tile
/// `shape`, each whole in every other dimension; -1 when they do not.
int64_t tilingDimension(SmallVectorImpl<Box> &boxes, ArrayRef<int64_t> shape) {
  for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
    bool wholeElsewhere = llvm::all_of(boxes, [&](const Box &box) {
      for (int64_t e = 0; e < int64_t(shape.size()); ++e)
        if (e != d && (box.offsets[e] != 0 || box.sizes[e] != shape[e]))
          return false;
      return true;
    });
    if (!wholeElsewhere)
      continue;
    llvm::sort(boxes, [&](const Box &a, const Box &b) { return a.offsets[d] < b.offsets[d]; });
    int64_t covered = 0;
    for (const Box &box : boxes) {
      if (box.offsets[d] != covered)
        return -1;
      covered += box.sizes[d];
    }
    return covered == shape[d] ? d : -1;
  }
  return -1;
}

struct SumOfDisjointInsertions : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp add, PatternRewriter &rewriter) const override {
    SmallVector<Box> boxes;
    if (!collectBoxes(add.getLhs(), boxes) || !collectBoxes(add.getRhs(), boxes))
      return failure();
    for (size_t i = 0; i < boxes.size(); ++i)
      for (size_t j = i + 1; j < boxes.size(); ++j)
        if (!disjoint(boxes[i], boxes[j]))
          return failure();
    auto type = cast<RankedTensorType>(add.getType());
    Location loc = add.getLoc();
    if (int64_t dim = tilingDimension(boxes, type.getShape()); dim >= 0) {
      SmallVector<Value> pieces;
      for (const Box &box : boxes)
        pieces.push_back(box.source);
      rewriter.replaceOpWithNewOp<tensor::ConcatOp>(add, type, dim, pieces);
      return success();
    }
    Value result = rewriter.create<FillOp>(loc, type, rewriter.getF32FloatAttr(0.0f));
    for (const Box &box : boxes) {
      SmallVector<int64_t> strides(box.sizes.size(), 1);
      result = rewriter.create<tensor::InsertSliceOp>(
          loc, box.source, result, ValueRange{}, ValueRange{}, ValueRange{},
          rewriter.getDenseI64ArrayAttr(box.offsets), rewriter.getDenseI64ArrayAttr(box.sizes),
          rewriter.getDenseI64ArrayAttr(strides));
    }
    rewriter.replaceOp(add, result);
    return success();
  }
};

} // namespace

void AddOp::getCanonicalizationPatterns(RewritePatternSet &patterns, MLIRContext *context) {
  patterns.add<SumOfDisjointInsertions>(context);
}

} // namespace moec::moe
