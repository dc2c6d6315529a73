//===- Gradients.cpp - vector-Jacobian products of the moe ops ------------===//
//
// Each differentiable op builds its backward ops (MoEGradientOps.td) here,
// through GradientOpInterface. Selections, indices and counts are not
// differentiated: gradients reach the router through the routing weights
// and the auxiliary losses, as in the reference implementations.
//
//===----------------------------------------------------------------------===//
#include "dialects/moe/IR/MeshGradients.h"
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace moec::moe;

namespace {
/// Gradients of ops whose every operand but those listed is non-differentiable.
void none(SmallVectorImpl<Value> &grads, unsigned count) {
  grads.append(count, Value());
}

Value unitGates(OpBuilder &b, Location loc, Value slotTokens) {
  auto shape = cast<RankedTensorType>(slotTokens.getType()).getShape();
  return b.create<FillOp>(loc, RankedTensorType::get(shape, b.getF32Type()),
                          b.getF32FloatAttr(1.0f));
}

/// Shared by every token-choice selection: the weights are the selected
/// scores, renormalised and scaled as the attributes say.
LogicalResult selectionVJP(OpBuilder &b, Operation *op, Value scores,
                           Value indices, Value dweights, bool normalize,
                           float normEps, float scaling,
                           SmallVectorImpl<Value> &grads) {
  Value dscores;
  if (dweights)
    dscores = b.create<SelectionGradOp>(
        op->getLoc(), scores.getType(), scores, indices, dweights,
        b.getBoolAttr(normalize), b.getF32FloatAttr(normEps),
        b.getF32FloatAttr(scaling));
  grads.push_back(dscores);
  none(grads, op->getNumOperands() - 1);
  return success();
}

float f(const APFloat &value) { return value.convertToFloat(); }
} // namespace

//===----------------------------------------------------------------------===//
// Dense ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<EmbeddingGradOp>(getLoc(), getTable().getType(),
                                            dresult[0], getTokens()));
  none(grads, 1);
  return success();
}

LogicalResult RMSNormOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                  SmallVectorImpl<Value> &grads) {
  auto g = b.create<RMSNormGradOp>(getLoc(), getInput().getType(),
                                   getWeight().getType(), getInput(),
                                   getWeight(), dresult[0], getEpsAttr());
  grads.append({g.getDinput(), g.getDweight()});
  return success();
}

LogicalResult LinearOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                 SmallVectorImpl<Value> &grads) {
  auto g = b.create<LinearGradOp>(getLoc(), getInput().getType(),
                                  getWeight().getType(), getInput(),
                                  getWeight(), dresult[0]);
  grads.append({g.getDinput(), g.getDweight()});
  if (Value bias = getBias())
    grads.push_back(b.create<ReduceRowsOp>(getLoc(), bias.getType(), dresult[0]));
  return success();
}

LogicalResult RoPEOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                               SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<RoPEGradOp>(getLoc(), getType(), dresult[0], getThetaAttr(),
                                       getInvFreqAttr(), getAttentionFactorAttr(),
                                       getInterleavedAttr()));
  return success();
}

LogicalResult AttentionOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  Type dsinks = getSinks() ? getSinks().getType() : Type();
  auto g = b.create<AttentionGradOp>(
      getLoc(), getQuery().getType(), getKey().getType(), getValue().getType(), dsinks, getQuery(),
      getKey(), getValue(), dresult[0], getSinks(), getCausalAttr(), getScaleAttr(),
      getWindowAttr(), getChunkAttr(), getTemperatureFloorAttr(), getTemperatureScaleAttr());
  grads.append({g.getDquery(), g.getDkey(), g.getDvalue()});
  if (getSinks())
    grads.push_back(g.getDsinks());
  return success();
}

LogicalResult TransposeOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  SmallVector<int64_t> inverse(getPermutation().size());
  for (auto [d, p] : llvm::enumerate(getPermutation()))
    inverse[p] = d;
  grads.push_back(b.create<TransposeOp>(getLoc(), getInput().getType(), dresult[0], inverse));
  return success();
}

LogicalResult ClampedSwiGLUOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                        SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<ClampedSwiGLUGradOp>(getLoc(), getInput().getType(), getInput(),
                                                dresult[0], getAlphaAttr(), getLimitAttr()));
  return success();
}

LogicalResult BroadcastOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<BroadcastGradOp>(getLoc(), getInput().getType(), dresult[0]));
  return success();
}

LogicalResult ScaleOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<ScaleOp>(getLoc(), dresult[0], getFactorAttr()));
  return success();
}

LogicalResult AddOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                              SmallVectorImpl<Value> &grads) {
  grads.append({dresult[0], dresult[0]});
  return success();
}

LogicalResult MultiplyOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                   SmallVectorImpl<Value> &grads) {
  grads.append({b.create<MultiplyOp>(getLoc(), dresult[0], getRhs()).getResult(),
                b.create<MultiplyOp>(getLoc(), dresult[0], getLhs()).getResult()});
  return success();
}

LogicalResult FFNOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                              SmallVectorImpl<Value> &grads) {
  SmallVector<Type> weightTypes = {getW1().getType(), getW2().getType()};
  if (getW3())
    weightTypes.push_back(getW3().getType());
  auto g = b.create<FFNGradOp>(getLoc(), getInput().getType(), weightTypes,
                               getInput(), getW1(), getW2(), getW3(),
                               dresult[0], getActivationAttr());
  grads.push_back(g.getDinput());
  grads.append(g.getDweights().begin(), g.getDweights().end());
  return success();
}

LogicalResult CrossEntropyOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                       SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<CrossEntropyGradOp>(
      getLoc(), getLogits().getType(), getLogits(), getTargets(), dresult[0]));
  none(grads, 1);
  return success();
}

//===----------------------------------------------------------------------===//
// Router
//===----------------------------------------------------------------------===//

LogicalResult RouterLogitsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                       SmallVectorImpl<Value> &grads) {
  auto g = b.create<LinearGradOp>(getLoc(), getInput().getType(),
                                  getWeight().getType(), getInput(),
                                  getWeight(), dresult[0]);
  grads.append({g.getDinput(), g.getDweight()});
  return success();
}

LogicalResult ScoreOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<ScoreGradOp>(getLoc(), getType(), getScores(),
                                        dresult[0], getFunctionAttr(),
                                        getTemperatureAttr()));
  return success();
}

LogicalResult TopKRouteOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  return selectionVJP(b, *this, getScores(), getIndices(), dresult[0],
                      getNormalize(), f(getNormEps()), f(getScaling()), grads);
}

LogicalResult GroupTopKRouteOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                         SmallVectorImpl<Value> &grads) {
  return selectionVJP(b, *this, getScores(), getIndices(), dresult[0],
                      getNormalize(), f(getNormEps()), f(getScaling()), grads);
}

LogicalResult SparseMixerRouteOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                           SmallVectorImpl<Value> &grads) {
  // The 1/3 midpoint factor is not differentiated (PhimoeMultiplier), and
  // the noise only chose the picks: the logits, picks and epsilon suffice.
  Value dlogits;
  if (dresult[0])
    dlogits = b.create<SparseMixerGradOp>(getLoc(), getLogits().getType(), getLogits(),
                                          getIndices(), dresult[0], getEpsilonAttr());
  grads.push_back(dlogits);
  none(grads, getNumOperands() - 1);
  return success();
}

LogicalResult PrototypeRouteOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                         SmallVectorImpl<Value> &grads) {
  return selectionVJP(b, *this, getScores(), getIndices(), dresult[0],
                      getNormalize(), 0.0f, 1.0f, grads);
}

LogicalResult TopPRouteOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  return selectionVJP(b, *this, getScores(), getIndices(), dresult[0],
                      getNormalize(), 0.0f, 1.0f, grads);
}

LogicalResult EntropyHybridRouteOp::buildVJP(OpBuilder &b,
                                             ArrayRef<Value> dresult,
                                             SmallVectorImpl<Value> &grads) {
  return selectionVJP(b, *this, getScores(), getIndices(), dresult[0],
                      getNormalize(), 0.0f, 1.0f, grads);
}

LogicalResult ThresholdRouteOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                         SmallVectorImpl<Value> &grads) {
  return selectionVJP(b, *this, getScores(), getIndices(), dresult[0],
                      /*normalize=*/true, 0.0f, 1.0f, grads);
}

//===----------------------------------------------------------------------===//
// Dispatch, experts, combine
//===----------------------------------------------------------------------===//

LogicalResult AssignSlotsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                      SmallVectorImpl<Value> &grads) {
  Value dweights;
  if (Value dgates = dresult[1])
    dweights = b.create<AssignSlotsGradOp>(
        getLoc(), getWeights().getType(), getWeights(), getIndices(), dgates,
        getNumExpertsAttr(), getCapacityAttr(), getPriorityAttr());
  grads.append({dweights, Value()});
  return success();
}

LogicalResult SortByExpertOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                       SmallVectorImpl<Value> &grads) {
  Value dweights;
  if (Value dgates = dresult[1])
    dweights = b.create<SortByExpertGradOp>(getLoc(), getWeights().getType(),
                                            getIndices(), dgates,
                                            getNumExpertsAttr());
  grads.append({dweights, Value()});
  return success();
}

LogicalResult DispatchOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                   SmallVectorImpl<Value> &grads) {
  // Gathering rows transposes to summing them back: a combine with unit gates.
  Value ones = unitGates(b, getLoc(), getSlotTokens());
  grads.push_back(b.create<CombineOp>(getLoc(), getInput().getType(),
                                      dresult[0], ones, getSlotTokens()));
  none(grads, 1);
  return success();
}

LogicalResult ScaleRowsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  auto g = b.create<ScaleRowsGradOp>(getLoc(), getInput().getType(), getGates().getType(),
                                     getInput(), getGates(), dresult[0]);
  grads.append({g.getDinput(), g.getDgates()});
  return success();
}

LogicalResult CombineOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                  SmallVectorImpl<Value> &grads) {
  // The gradient has dresult's element type, whatever the outputs' storage.
  auto outputs = cast<RankedTensorType>(getExpertOutputs().getType());
  Type doutputs = outputs.clone(cast<RankedTensorType>(dresult[0].getType()).getElementType());
  auto g = b.create<CombineGradOp>(
      getLoc(), doutputs, getSlotGates().getType(),
      getExpertOutputs(), getSlotGates(), getSlotTokens(), dresult[0]);
  grads.append({g.getDexpertOutputs(), g.getDslotGates(), Value()});
  return success();
}

LogicalResult GroupedFFNOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                     SmallVectorImpl<Value> &grads) {
  SmallVector<Type> weightTypes = {getW1().getType(), getW2().getType()};
  if (getW3())
    weightTypes.push_back(getW3().getType());
  auto g = b.create<GroupedFFNGradOp>(
      getLoc(), getInput().getType(), weightTypes, getInput(), getW1(), getW2(),
      getW3(), getGroupSizes(), dresult[0], getActivationAttr());
  grads.push_back(g.getDinput());
  grads.append(g.getDweights().begin(), g.getDweights().end());
  if (getGroupSizes())
    grads.push_back(Value());
  return success();
}

//===----------------------------------------------------------------------===//
// Losses
//===----------------------------------------------------------------------===//

LogicalResult LoadBalancingLossOp::buildVJP(OpBuilder &b,
                                            ArrayRef<Value> dresult,
                                            SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<LoadBalancingLossGradOp>(
      getLoc(), getScores().getType(), getScores(), getIndices(), dresult[0],
      getKindAttr(), getSeqLenAttr()));
  none(grads, 1);
  return success();
}

LogicalResult ZLossOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<ZLossGradOp>(getLoc(), getLogits().getType(),
                                        getLogits(), dresult[0]));
  return success();
}

LogicalResult WeightedSumOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                      SmallVectorImpl<Value> &grads) {
  for (float coefficient : getCoefficients())
    grads.push_back(b.create<WeightedSumOp>(
        getLoc(), ValueRange{dresult[0]}, ArrayRef<float>{coefficient}));
  return success();
}

//===----------------------------------------------------------------------===//
// Remaining forward ops
//===----------------------------------------------------------------------===//

LogicalResult LayerNormOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                    SmallVectorImpl<Value> &grads) {
  Type w = getWeight().getType();
  auto g = b.create<LayerNormGradOp>(getLoc(), getInput().getType(), w, w,
                                     getInput(), getWeight(), dresult[0], getEpsAttr());
  grads.append({g.getDinput(), g.getDweight()});
  if (getBias())
    grads.push_back(g.getDbias());
  return success();
}

LogicalResult ActivationOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                     SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<ActivationGradOp>(getLoc(), getType(), getInput(),
                                             dresult[0], getKindAttr()));
  return success();
}

LogicalResult RouterInputTransformOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                               SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<RouterInputTransformGradOp>(
      getLoc(), getType(), getInput(), dresult[0], getKindAttr(), getEpsAttr()));
  return success();
}

LogicalResult RouterJitterOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                       SmallVectorImpl<Value> &grads) {
  // result = input ⊙ noise: the same noise (same seed) scales the gradient.
  grads.push_back(
      b.create<RouterJitterOp>(getLoc(), dresult[0], getSeed(), getEpsilonAttr(), getStreamAttr()));
  none(grads, 1);
  return success();
}

LogicalResult GumbelSoftmaxOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                        SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<GumbelSoftmaxGradOp>(getLoc(), getType(), getScores(),
                                                getTemperature(), dresult[0]));
  none(grads, getNumOperands() - 1);
  return success();
}

LogicalResult ExpertChoiceRouteOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                            SmallVectorImpl<Value> &grads) {
  Value dscores;
  if (Value dgates = dresult[1])
    dscores = b.create<ExpertChoiceGradOp>(getLoc(), getScores().getType(),
                                           getSlotTokens(), dgates);
  grads.push_back(dscores);
  return success();
}

LogicalResult EntropyLossOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                      SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<EntropyLossGradOp>(getLoc(), getScores().getType(),
                                              getScores(), dresult[0], getQAttr()));
  return success();
}

LogicalResult SharedExpertsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                        SmallVectorImpl<Value> &grads) {
  SmallVector<Type> weightTypes = {getW1().getType(), getW2().getType()};
  if (getW3())
    weightTypes.push_back(getW3().getType());
  if (getSigmoidGate())
    weightTypes.push_back(getSigmoidGate().getType());
  auto g = b.create<SharedExpertsGradOp>(
      getLoc(), getInput().getType(), weightTypes, getInput(), getW1(), getW2(),
      getW3(), getSigmoidGate(), dresult[0], getActivationAttr());
  grads.push_back(g.getDinput());
  grads.append(g.getDweights().begin(), g.getDweights().end());
  return success();
}

LogicalResult LoRAExpertsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                      SmallVectorImpl<Value> &grads) {
  SmallVector<Type> adapterTypes(getAdapters().getTypes());
  auto g = b.create<LoRAExpertsGradOp>(getLoc(), getInput().getType(), adapterTypes,
                                       getInput(), getBase(), getAdapters(),
                                       getGroupSizes(), dresult[0], getAlphaAttr(),
                                       getActivationAttr());
  grads.push_back(g.getDinput());
  none(grads, getBase().size()); // the base FFN is frozen
  grads.append(g.getDadapters().begin(), g.getDadapters().end());
  if (getGroupSizes())
    grads.push_back(Value());
  return success();
}

LogicalResult GroupedFFNUpOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                       SmallVectorImpl<Value> &grads) {
  SmallVector<Type> weightTypes = {getW1().getType()};
  if (getW3())
    weightTypes.push_back(getW3().getType());
  auto g = b.create<GroupedFFNUpGradOp>(getLoc(), getInput().getType(), weightTypes,
                                        getInput(), getW1(), getW3(), getGroupSizes(),
                                        dresult[0]);
  grads.push_back(g.getDinput());
  grads.append(g.getDweights().begin(), g.getDweights().end());
  if (getGroupSizes())
    grads.push_back(Value());
  return success();
}

LogicalResult GroupedFFNDownOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                         SmallVectorImpl<Value> &grads) {
  // The gradient is fp32 (as dresult) even where the pre-activations are
  // stored in bf16.
  auto hidden = cast<RankedTensorType>(getHidden().getType());
  Type dhidden = hidden.clone(cast<RankedTensorType>(dresult[0].getType()).getElementType());
  auto g = b.create<GroupedFFNDownGradOp>(
      getLoc(), dhidden, getW2().getType(), getHidden(), getW2(),
      getGroupSizes(), dresult[0], getActivationAttr(), getGatedAttr());
  grads.append({g.getDhidden(), g.getDw2()});
  if (getGroupSizes())
    grads.push_back(Value());
  return success();
}

LogicalResult ExpertExchangeOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                         SmallVectorImpl<Value> &grads) {
  // The rows' cotangents travel back as the rows came.
  auto back =
      b.create<ExpertReturnOp>(getLoc(), getRows().getType(), dresult[0], getCounts(),
                               getMeshAttr(), getMeshAxesAttr(), getChunkAttr(), getChunksAttr());
  grads.append({back.getResult(), Value()});
  return success();
}

LogicalResult ExpertReturnOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                       SmallVectorImpl<Value> &grads) {
  FailureOr<int64_t> ranks = meshGroupSize(*this, getMesh(), getMeshAxes());
  if (failed(ranks))
    return failure();
  int64_t localExperts =
      cast<RankedTensorType>(getCounts().getType()).getDimSize(0) / (*ranks * *ranks);
  auto there = b.create<ExpertExchangeOp>(
      getLoc(),
      TypeRange{getRows().getType(), RankedTensorType::get({localExperts}, b.getI32Type())},
      dresult[0], getCounts(), getMeshAttr(), getMeshAxesAttr(), getChunkAttr(), getChunksAttr());
  grads.append({there.getReceived(), Value()});
  return success();
}

LogicalResult SlotsToExpertsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                         SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<SlotsFromExpertsOp>(getLoc(), getSlots().getType(), dresult[0],
                                               getMeshAttr(), getMeshAxesAttr()));
  return success();
}

LogicalResult SlotsFromExpertsOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                           SmallVectorImpl<Value> &grads) {
  grads.push_back(b.create<SlotsToExpertsOp>(getLoc(), getSlots().getType(), dresult[0],
                                             getMeshAttr(), getMeshAxesAttr()));
  return success();
}
