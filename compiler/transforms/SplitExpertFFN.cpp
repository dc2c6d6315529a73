//===- SplitExpertFFN.cpp - grouped FFNs as up and down halves ------------===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace moec {
#define GEN_PASS_DEF_MOESPLITEXPERTFFNPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

struct SplitGroupedFFN : public OpRewritePattern<GroupedFFNOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(GroupedFFNOp op,
                                PatternRewriter &rewriter) const override {
    auto input = cast<RankedTensorType>(op.getInput().getType());
    auto w1 = cast<RankedTensorType>(op.getW1().getType());
    bool gated = bool(op.getW3());
    SmallVector<int64_t> hiddenShape(input.getShape());
    hiddenShape.back() = w1.getDimSize(1) * (gated ? 2 : 1);
    auto hiddenType = RankedTensorType::get(hiddenShape, input.getElementType());
    Attribute precision = op->getAttr(MoEDialect::kPrecisionAttrName);
    auto up = rewriter.create<GroupedFFNUpOp>(op.getLoc(), hiddenType, op.getInput(),
                                              op.getW1(), op.getW3(), op.getGroupSizes());
    auto down = rewriter.replaceOpWithNewOp<GroupedFFNDownOp>(
        op, op.getType(), up.getHidden(), op.getW2(), op.getGroupSizes(),
        op.getActivationAttr(), gated ? rewriter.getUnitAttr() : UnitAttr());
    // Both halves compute in the op's precision.
    if (precision) {
      up->setAttr(MoEDialect::kPrecisionAttrName, precision);
      down->setAttr(MoEDialect::kPrecisionAttrName, precision);
    }
    return success();
  }
};

class MoESplitExpertFFNPass
    : public impl::MoESplitExpertFFNPassBase<MoESplitExpertFFNPass> {
public:
  using MoESplitExpertFFNPassBase::MoESplitExpertFFNPassBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<SplitGroupedFFN>(&getContext());
    FrozenRewritePatternSet frozen(std::move(patterns));
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (!function.empty() && func.getName() != function)
        continue;
      if (failed(applyPatternsAndFoldGreedily(func, frozen)))
        return signalPassFailure();
    }
  }
};

} // namespace
} // namespace moec
