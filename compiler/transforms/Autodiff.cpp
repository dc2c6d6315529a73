//===- Autodiff.cpp - reverse-mode differentiation of a forward function --===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include "llvm/ADT/DenseMap.h"

namespace moec {
#define GEN_PASS_DEF_MOEAUTODIFFPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

/// The ops a builder creates while it listens.
struct CreatedOps : OpBuilder::Listener {
  SmallVector<Operation *> ops;
  void notifyOperationInserted(Operation *op, OpBuilder::InsertPoint) override {
    ops.push_back(op);
  }
};

bool isDifferentiable(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

class MoEAutodiffPass : public impl::MoEAutodiffPassBase<MoEAutodiffPass> {
public:
  using MoEAutodiffPassBase::MoEAutodiffPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(function);
    if (!forward) {
      module.emitError("moe-autodiff: no function '") << function << "'";
      return signalPassFailure();
    }
    if (failed(differentiate(forward)))
      return signalPassFailure();
  }

private:
  LogicalResult differentiate(func::FuncOp forward);
};

LogicalResult MoEAutodiffPass::differentiate(func::FuncOp forward) {
  OpBuilder b(forward);
  b.setInsertionPointAfter(forward);
  auto clone = cast<func::FuncOp>(b.clone(*forward));
  clone.setSymName(function + "_backward");
  clone.setPublic();
  Block &body = clone.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Location loc = clone.getLoc();

  // The loss among the results.
  Value loss;
  for (unsigned i = 0; i < clone.getNumResults(); ++i)
    if (auto name = clone.getResultAttrOfType<StringAttr>(i, MoEDialect::kOutputAttrName))
      if (name.getValue() == this->loss)
        loss = ret.getOperand(i);
  if (!loss)
    return forward.emitError("moe-autodiff: no result named '") << this->loss << "'";

  // Reverse sweep, inserted before the return.
  b.setInsertionPoint(ret);
  DenseMap<Value, Value> grads;
  grads[loss] = b.create<FillOp>(loc, loss.getType(), b.getF32FloatAttr(1.0f));
  auto accumulate = [&](Value value, Value grad) {
    if (!grad || !isDifferentiable(value.getType()))
      return;
    Value &slot = grads[value];
    slot = slot ? b.create<AddOp>(loc, slot, grad).getResult() : grad;
  };

  SmallVector<Operation *> forwardOps;
  for (Operation &op : body.without_terminator())
    forwardOps.push_back(&op);
  for (Operation *op : llvm::reverse(forwardOps)) {
    SmallVector<Value> resultGrads;
    bool reached = false;
    for (Value result : op->getResults()) {
      resultGrads.push_back(grads.lookup(result));
      reached |= bool(resultGrads.back());
    }
    // Nothing to propagate to: unreached, or a constant (no operands).
    if (!reached || op->getNumOperands() == 0)
      continue;
    auto gradient = dyn_cast<GradientOpInterface>(op);
    if (!gradient)
      return op->emitOpError("is on the path to '")
             << this->loss << "' but has no gradient rule (GradientOpInterface)";
    // Multi-result ops receive null for results that do not reach the loss.
    SmallVector<Value> operandGrads;
    CreatedOps created;
    b.setListener(&created);
    LogicalResult built = gradient.buildVJP(b, resultGrads, operandGrads);
    b.setListener(nullptr);
    if (failed(built))
      return failure();
    // The gradient computes in the op's precision (moe.precision).
    if (Attribute precision = op->getAttr(MoEDialect::kPrecisionAttrName))
      for (Operation *gradientOp : created.ops)
        if (!gradientOp->hasAttr(MoEDialect::kPrecisionAttrName))
          gradientOp->setAttr(MoEDialect::kPrecisionAttrName, precision);
    if (operandGrads.size() != op->getNumOperands())
      return op->emitOpError("gradient rule returned ")
             << operandGrads.size() << " gradients for " << op->getNumOperands()
             << " operands";
    for (auto [operand, grad] : llvm::zip(op->getOperands(), operandGrads))
      accumulate(operand, grad);
  }

  // Results: the forward ones, then one gradient per trainable parameter.
  SmallVector<Value> results(ret.getOperands());
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0; i < clone.getNumResults(); ++i)
    resultAttrs.push_back(clone.getResultAttrDict(i));
  for (BlockArgument arg : body.getArguments()) {
    auto name = clone.getArgAttrOfType<StringAttr>(arg.getArgNumber(), MoEDialect::kParamAttrName);
    auto trainable =
        clone.getArgAttrOfType<BoolAttr>(arg.getArgNumber(), MoEDialect::kTrainableAttrName);
    if (!name || (trainable && !trainable.getValue()))
      continue;
    Value grad = grads.lookup(arg);
    if (!grad)
      grad = b.create<FillOp>(loc, arg.getType(), b.getF32FloatAttr(0.0f));
    results.push_back(grad);
    resultAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr(MoEDialect::kGradAttrName, name)));
  }
  b.create<func::ReturnOp>(ret.getLoc(), results);
  ret.erase();
  clone.setFunctionType(b.getFunctionType(clone.getArgumentTypes(),
                                          ValueRange(results).getTypes()));
  clone.setAllResultAttrs(resultAttrs);
  return success();
}

} // namespace
} // namespace moec
