//===- Optimizer.cpp - a training step from a forward-backward function ---===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Mesh/IR/MeshOps.h"
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
    buildTrainStep(function);
  }

private:
  void buildTrainStep(func::FuncOp source);
};

/// The norm of every gradient, on every rank. A parameter split over ranks
/// (experts under expert parallelism, `moe.shard_axes`) has only this
/// rank's slice of its gradient here: the norm of the split gradients is
/// taken on each rank, the ranks' norms are gathered over the axes they are
/// split along, and their norm joins the other gradients'.
template <typename Trainables, typename Mapped>
Value globalNorm(OpBuilder &b, func::FuncOp source, const Trainables &trainables, Mapped mapped) {
  Location loc = source.getLoc();
  SmallVector<Value> whole, split;
  DenseI16ArrayAttr splitAxes;
  for (const auto &t : trainables) {
    auto axes =
        source.getArgAttrOfType<DenseI16ArrayAttr>(t.paramArg, MoEDialect::kShardAxesAttrName);
    (axes ? split : whole).push_back(mapped(t.gradResult));
    if (axes)
      splitAxes = axes; // one set of axes: the experts' (ep)
  }
  if (split.empty())
    return b.create<GlobalNormOp>(loc, whole);
  auto meshes = source->getParentOfType<ModuleOp>().getOps<mesh::MeshOp>();
  mesh::MeshOp meshOp = *meshes.begin();
  int64_t ranks = 1;
  for (int16_t axis : splitAxes.asArrayRef())
    ranks *= meshOp.getShape()[axis];
  Value mine = b.create<GlobalNormOp>(loc, split);
  auto one = RankedTensorType::get({1}, b.getF32Type());
  Value row = b.create<tensor::ExpandShapeOp>(loc, one, mine, ArrayRef<ReassociationIndices>{});
  Value all =
      b.create<mesh::AllGatherOp>(loc, RankedTensorType::get({ranks}, b.getF32Type()),
                                  meshOp.getSymName(), splitAxes.asArrayRef(), row, APInt(64, 0));
  whole.push_back(all);
  return b.create<GlobalNormOp>(loc, whole);
}

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
    if (auto input = source.getArgAttrOfType<StringAttr>(i, MoEDialect::kInputAttrName))
      if (input.getValue() == "step")
        stepIndex = i;
  }
  if (!stepIndex) {
    stepIndex = argTypes.size();
    argTypes.push_back(scalarI64);
    argAttrs.push_back(
        b.getDictionaryAttr(b.getNamedAttr(MoEDialect::kInputAttrName, b.getStringAttr("step"))));
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
    auto name = source.getResultAttrOfType<StringAttr>(r, MoEDialect::kGradAttrName);
    if (!name)
      continue;
    for (unsigned a = 0; a < source.getNumArguments(); ++a)
      if (source.getArgAttrOfType<StringAttr>(a, MoEDialect::kParamAttrName) == name)
        trainables.push_back({name, a, r, {}});
  }
  SmallVector<StringRef> stateNames = optimizer == OptimizerKind::adamw
                                          ? SmallVector<StringRef>{"exp_avg", "exp_avg_sq"}
                                          : SmallVector<StringRef>{"momentum_buffer"};
  for (Trainable &t : trainables)
    for (StringRef state : stateNames) {
      t.stateArgs.push_back(argTypes.size());
      argTypes.push_back(source.getArgumentTypes()[t.paramArg]);
      SmallVector<NamedAttribute> attrs = {
          b.getNamedAttr(MoEDialect::kStateAttrName,
                         b.getStringAttr(t.name.getValue() + "." + state)),
          b.getNamedAttr(MoEDialect::kInitAttrName, b.getStringAttr("zeros"))};
      // The state of a parameter split over ranks (experts) is split as it is.
      if (Attribute axes = source.getArgAttr(t.paramArg, MoEDialect::kShardAxesAttrName))
        attrs.push_back(b.getNamedAttr(MoEDialect::kShardAxesAttrName, axes));
      argAttrs.push_back(b.getDictionaryAttr(attrs));
    }

  // Hyperparameters: scalar inputs carrying the compiled value.
  auto scalarF32 = RankedTensorType::get({}, b.getF32Type());
  auto hyperparameter = [&](StringRef hyperName, Attribute value) {
    unsigned index = argTypes.size();
    argTypes.push_back(isa<IntegerAttr>(value) ? Type(scalarI64) : Type(scalarF32));
    argAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr(MoEDialect::kHyperparameterAttrName, b.getStringAttr(hyperName)),
         b.getNamedAttr(MoEDialect::kValueAttrName, value)}));
    return index;
  };
  unsigned lrArg = hyperparameter("lr", b.getF32FloatAttr(lr));
  unsigned warmupArg = hyperparameter("warmup_steps", b.getI64IntegerAttr(warmupSteps));
  unsigned totalArg = hyperparameter("total_steps", b.getI64IntegerAttr(totalSteps));
  unsigned ratioArg = hyperparameter("min_lr_ratio", b.getF32FloatAttr(minLrRatio));
  unsigned clipArg = hyperparameter("max_grad_norm", b.getF32FloatAttr(maxGradNorm));
  SmallVector<unsigned> updateArgs; // the update op's scalar operands, in order
  if (optimizer == OptimizerKind::adamw)
    for (auto [hyperName, value] : {std::pair{"beta1", beta1.getValue()}, {"beta2", beta2.getValue()},
                                    {"eps", eps.getValue()}, {"weight_decay", weightDecay.getValue()}})
      updateArgs.push_back(hyperparameter(hyperName, b.getF32FloatAttr(value)));
  else
    for (auto [hyperName, value] :
         {std::pair{"momentum", momentum.getValue()}, {"weight_decay", weightDecay.getValue()}})
      updateArgs.push_back(hyperparameter(hyperName, b.getF32FloatAttr(value)));

  auto step = b.create<func::FuncOp>(loc, name, b.getFunctionType(argTypes, {}));
  Block *body = step.addEntryBlock();
  b.setInsertionPointToStart(body);
  auto arg = [&](unsigned index) -> Value { return body->getArgument(index); };

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
  Value norm = globalNorm(b, source, trainables, mapped);
  Value clip = b.create<ClipScaleOp>(loc, norm, arg(clipArg));
  Value stepArg = body->getArgument(*stepIndex);
  Value lrValue = b.create<LRScheduleOp>(
      loc, LRScheduleKindAttr::get(b.getContext(), schedule), stepArg, arg(lrArg),
      arg(warmupArg), arg(totalArg), arg(ratioArg));

  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned r = 0; r < source.getNumResults(); ++r)
    if (!source.getResultAttrOfType<StringAttr>(r, MoEDialect::kGradAttrName)) {
      results.push_back(mapped(r));
      resultAttrs.push_back(source.getResultAttrDict(r));
    }
  auto output = [&](Value value, StringRef attr, StringRef name) {
    results.push_back(value);
    resultAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr(attr, b.getStringAttr(name))));
  };
  output(norm, MoEDialect::kOutputAttrName, "grad_norm");
  output(lrValue, MoEDialect::kOutputAttrName, "lr");

  for (Trainable &t : trainables) {
    Value param = body->getArgument(t.paramArg), grad = mapped(t.gradResult);
    if (optimizer == OptimizerKind::adamw) {
      auto update = b.create<AdamWUpdateOp>(
          loc, param, grad, body->getArgument(t.stateArgs[0]),
          body->getArgument(t.stateArgs[1]), stepArg, lrValue, clip, arg(updateArgs[0]),
          arg(updateArgs[1]), arg(updateArgs[2]), arg(updateArgs[3]));
      output(update.getNewParam(), MoEDialect::kUpdateAttrName, t.name.getValue());
      output(update.getNewM(), MoEDialect::kUpdateAttrName, t.name.getValue().str() + ".exp_avg");
      output(update.getNewV(), MoEDialect::kUpdateAttrName,
             t.name.getValue().str() + ".exp_avg_sq");
    } else {
      auto update = b.create<SGDUpdateOp>(
          loc, param, grad, body->getArgument(t.stateArgs[0]), stepArg, lrValue, clip,
          arg(updateArgs[0]), arg(updateArgs[1]));
      output(update.getNewParam(), MoEDialect::kUpdateAttrName, t.name.getValue());
      output(update.getNewMomentumBuffer(), MoEDialect::kUpdateAttrName,
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
