//===- Optimizer.cpp - a training step from a forward-backward function ---===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace moec {
#define GEN_PASS_DEF_MOEOPTIMIZERPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

class MoEOptimizerPass : public impl::MoEOptimizerPassBase<MoEOptimizerPass> {
public:
  using MoEOptimizerPassBase::MoEOptimizerPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto function = module.lookupSymbol<func::FuncOp>(source);
    if (!function) {
      module.emitError("moe-optimizer needs @") << source << ": run --moe-autodiff first";
      return signalPassFailure();
    }
    if (optimizer != "adamw" && optimizer != "sgd") {
      module.emitError("moe-optimizer: unknown optimizer '") << optimizer
                                                             << "' (adamw or sgd)";
      return signalPassFailure();
    }
    if (schedule != "constant" && schedule != "cosine" && schedule != "linear") {
      module.emitError("moe-optimizer: unknown schedule '") << schedule
                                                            << "' (constant, cosine or linear)";
      return signalPassFailure();
    }
    buildTrainStep(function);
  }

private:
  void buildTrainStep(func::FuncOp source);
};

void MoEOptimizerPass::buildTrainStep(func::FuncOp source) {
  // At the end of the module, so that steps appear in the order built.
  OpBuilder b = OpBuilder::atBlockEnd(source->getParentOfType<ModuleOp>().getBody());
  Location loc = source.getLoc();
  auto scalarI64 = RankedTensorType::get({}, b.getI64Type());

  // Arguments: those of forward_backward, the step (unless the forward
  // already takes it, e.g. for a temperature schedule), then the state.
  SmallVector<Type> argTypes(source.getArgumentTypes());
  SmallVector<DictionaryAttr> argAttrs;
  std::optional<unsigned> stepIndex;
  for (unsigned i = 0; i < source.getNumArguments(); ++i) {
    argAttrs.push_back(source.getArgAttrDict(i));
    if (auto input = source.getArgAttrOfType<StringAttr>(i, "moe.input"))
      if (input.getValue() == "step")
        stepIndex = i;
  }
  if (!stepIndex) {
    stepIndex = argTypes.size();
    argTypes.push_back(scalarI64);
    argAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr("moe.input", b.getStringAttr("step"))));
  }

  // Gradients are the results marked moe.grad, in parameter order.
  struct Trainable {
    StringAttr name;
    unsigned paramArg;
    unsigned gradResult;
    SmallVector<unsigned> stateArgs;
  };
  SmallVector<Trainable> trainables;
  for (unsigned r = 0; r < source.getNumResults(); ++r) {
    auto name = source.getResultAttrOfType<StringAttr>(r, "moe.grad");
    if (!name)
      continue;
    for (unsigned a = 0; a < source.getNumArguments(); ++a)
      if (source.getArgAttrOfType<StringAttr>(a, "moe.param") == name)
        trainables.push_back({name, a, r, {}});
  }
  SmallVector<StringRef> stateNames =
      optimizer == "adamw" ? SmallVector<StringRef>{"exp_avg", "exp_avg_sq"}
                           : SmallVector<StringRef>{"momentum_buffer"};
  for (Trainable &t : trainables)
    for (StringRef state : stateNames) {
      t.stateArgs.push_back(argTypes.size());
      argTypes.push_back(source.getArgumentTypes()[t.paramArg]);
      argAttrs.push_back(b.getDictionaryAttr(
          {b.getNamedAttr("moe.state", b.getStringAttr(t.name.getValue() + "." + state)),
           b.getNamedAttr("moe.init", b.getStringAttr("zeros"))}));
    }

  auto step = b.create<func::FuncOp>(loc, name, b.getFunctionType(argTypes, {}));
  Block *body = step.addEntryBlock();
  b.setInsertionPointToStart(body);

  // The forward and backward computation, inlined.
  IRMapping mapping;
  for (unsigned i = 0; i < source.getNumArguments(); ++i)
    mapping.map(source.getArgument(i), body->getArgument(i));
  Block &sourceBody = source.getBody().front();
  for (Operation &op : sourceBody.without_terminator())
    b.clone(op, mapping);
  auto sourceReturn = cast<func::ReturnOp>(sourceBody.getTerminator());
  auto mapped = [&](unsigned result) {
    return mapping.lookup(sourceReturn.getOperand(result));
  };

  // Norm, clipping factor, learning rate.
  SmallVector<Value> gradValues;
  for (Trainable &t : trainables)
    gradValues.push_back(mapped(t.gradResult));
  Value norm = b.create<GlobalNormOp>(loc, gradValues);
  Value clip = b.create<ClipScaleOp>(loc, norm, b.getF32FloatAttr(maxGradNorm));
  Value stepArg = body->getArgument(*stepIndex);
  Value lrValue = b.create<LRScheduleOp>(
      loc, stepArg, b.getStringAttr(schedule), b.getF32FloatAttr(lr),
      b.getI64IntegerAttr(warmupSteps), b.getI64IntegerAttr(totalSteps),
      b.getF32FloatAttr(minLrRatio));

  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned r = 0; r < source.getNumResults(); ++r)
    if (!source.getResultAttrOfType<StringAttr>(r, "moe.grad")) {
      results.push_back(mapped(r));
      resultAttrs.push_back(source.getResultAttrDict(r));
    }
  auto output = [&](Value value, StringRef attr, StringRef name) {
    results.push_back(value);
    resultAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr(attr, b.getStringAttr(name))));
  };
  output(norm, "moe.output", "grad_norm");
  output(lrValue, "moe.output", "lr");

  for (Trainable &t : trainables) {
    Value param = body->getArgument(t.paramArg), grad = mapped(t.gradResult);
    if (optimizer == "adamw") {
      auto update = b.create<AdamWUpdateOp>(
          loc, param, grad, body->getArgument(t.stateArgs[0]),
          body->getArgument(t.stateArgs[1]), stepArg, lrValue, clip,
          b.getF32FloatAttr(beta1), b.getF32FloatAttr(beta2), b.getF32FloatAttr(eps),
          b.getF32FloatAttr(weightDecay));
      output(update.getNewParam(), "moe.update", t.name.getValue());
      output(update.getNewM(), "moe.update", t.name.getValue().str() + ".exp_avg");
      output(update.getNewV(), "moe.update", t.name.getValue().str() + ".exp_avg_sq");
    } else {
      auto update = b.create<SGDUpdateOp>(
          loc, param, grad, body->getArgument(t.stateArgs[0]), stepArg, lrValue, clip,
          b.getF32FloatAttr(momentum), b.getF32FloatAttr(weightDecay));
      output(update.getNewParam(), "moe.update", t.name.getValue());
      output(update.getNewMomentumBuffer(), "moe.update",
             t.name.getValue().str() + ".momentum_buffer");
    }
  }
  b.create<func::ReturnOp>(loc, results);
  step.setFunctionType(b.getFunctionType(argTypes, ValueRange(results).getTypes()));
  step.setAllArgAttrs(argAttrs);
  step.setAllResultAttrs(resultAttrs);
}

} // namespace
} // namespace moec
