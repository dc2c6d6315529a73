//===- RoutingOps.cpp - verifiers and type inference of routing ops -------===//
#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/Verification.h"

using namespace mlir;
using namespace moec::moe;
using namespace moec::moe::verify;

namespace {
/// Type inference of a token-choice selection: `[T, E]` scores give `[T, slots]`
/// weights and indices, `slots` being the attribute `name` (positive), or 2
/// when `name` is empty (SparseMixer's two picks).
template <typename OpTy>
LogicalResult inferSelection(MLIRContext *context, std::optional<Location> loc,
                             Value scores, StringRef name,
                             DictionaryAttr attributes,
                             SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, OpTy::getOperationName());
  };
  FailureOr<RankedTensorType> scoresType =
      routerOperand(emit, scores, "scores");
  if (failed(scoresType))
    return failure();
  FailureOr<int64_t> slots =
      name.empty() ? FailureOr<int64_t>(2) : positiveShapeAttr(emit, attributes, name);
  if (failed(slots))
    return failure();
  SmallVector<int64_t, 2> shape = {scoresType->getDimSize(0), *slots};
  results.push_back(RankedTensorType::get(shape, Float32Type::get(context)));
  results.push_back(RankedTensorType::get(shape, IntegerType::get(context, 32)));
  return success();
}

int64_t numExperts(Value scores) {
  return cast<RankedTensorType>(scores.getType()).getDimSize(1);
}

int64_t numTokens(Value scores) {
  return cast<RankedTensorType>(scores.getType()).getDimSize(0);
}

float toFloat(const APFloat &value) { return value.convertToFloat(); }

/// Optional `[E]` selection bias beside `[T, E]` scores.
LogicalResult checkSelectionBias(ErrorEmitter emitError, Value bias,
                                 Value scores) {
  if (!bias)
    return success();
  FailureOr<RankedTensorType> type =
      rankedOperand(emitError, bias, "bias", 1, "[experts]");
  if (failed(type))
    return failure();
  return checkDim(emitError, "bias", *type, 0, numExperts(scores), "experts",
                  "'scores'");
}

/// Renormalisation epsilon and routed scaling factor of top-k selections.
LogicalResult checkWeightPostprocessing(ErrorEmitter emitError, float normEps,
                                        float scaling) {
  if (failed(checkFloatAbove(emitError, "norm_eps", normEps, 0.0f,
                             /*inclusive=*/true)))
    return failure();
  return checkFloatAbove(emitError, "scaling", scaling, 0.0f);
}

/// 1 <= k <= E for an attribute that counts experts per token.
LogicalResult checkExpertsPerToken(ErrorEmitter emitError, StringRef name,
                                   int64_t k, Value scores) {
  return checkIntRange(emitError, name, k, 1, numExperts(scores),
                       "the number of experts");
}
} // namespace

//===----------------------------------------------------------------------===//
// Router input and logits
//===----------------------------------------------------------------------===//

LogicalResult RouterInputTransformOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(rankedOperand(emit, getInput(), "input", 2, "[tokens, width]")))
    return failure();
  bool usesEps = getKind() == InputTransform::l2norm ||
                 getKind() == InputTransform::layernorm;
  if (usesEps)
    return checkFloatAbove(emit, "eps", toFloat(getEps()), 0.0f);
  return success();
}

LogicalResult RouterJitterOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(rankedOperand(emit, getInput(), "input", 2, "[tokens, width]")) ||
      failed(checkIntRange(emit, "stream", getStream(), 0, ShapedType::kDynamic)))
    return failure();
  return checkFloatRange(emit, "epsilon", toFloat(getEpsilon()), 0.0f, false,
                         1.0f, false);
}

LogicalResult RouterLogitsOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  FailureOr<RankedTensorType> input =
      rankedOperand(emit, adaptor.getInput(), "input", 2, "[tokens, width]");
  if (failed(input))
    return failure();
  FailureOr<RankedTensorType> weight = rankedOperand(
      emit, adaptor.getWeight(), "weight", 2, "[experts, width]");
  if (failed(weight))
    return failure();
  results.push_back(RankedTensorType::get(
      {input->getDimSize(0), weight->getDimSize(0)}, Float32Type::get(context)));
  return success();
}

LogicalResult RouterLogitsOp::verify() {
  auto emit = [&] { return emitOpError(); };
  auto input = cast<RankedTensorType>(getInput().getType());
  auto weight = cast<RankedTensorType>(getWeight().getType());
  return checkDim(emit, "weight", weight, 1, input.getDimSize(1),
                  "model width", "'input'");
}

//===----------------------------------------------------------------------===//
// Scores
//===----------------------------------------------------------------------===//

LogicalResult ScoreOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(routerOperand(emit, getLogits(), "logits")))
    return failure();
  float temperature = toFloat(getTemperature());
  if (failed(checkFloatAbove(emit, "temperature", temperature, 0.0f)))
    return failure();
  if (getFunction() == ScoreFunction::sigmoid && temperature != 1.0f)
    return emitOpError("attribute 'temperature' applies to softmax scores "
                       "only; sigmoid scores need 1.0, but it is ")
           << temperature;
  return success();
}

LogicalResult GumbelSoftmaxOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(checkIntRange(emit, "stream", getStream(), 0, ShapedType::kDynamic)))
    return failure();
  return routerOperand(emit, getLogits(), "logits");
}

LogicalResult TemperatureScheduleOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(checkFloatAbove(emit, "start", toFloat(getStart()), 0.0f)) ||
      failed(checkFloatAbove(emit, "end", toFloat(getEnd()), 0.0f)))
    return failure();
  return checkIntRange(emit, "steps", getSteps(), 1, ShapedType::kDynamic);
}

//===----------------------------------------------------------------------===//
// Selection
//===----------------------------------------------------------------------===//

LogicalResult TopKRouteOp::inferReturnTypes(MLIRContext *context,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return inferSelection<TopKRouteOp>(context, loc, adaptor.getScores(), "k",
                                      adaptor.getAttributes(),
                                      results);
}

LogicalResult TopKRouteOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(checkExpertsPerToken(emit, "k", getK(), getScores())) ||
      failed(checkSelectionBias(emit, getBias(), getScores())))
    return failure();
  return checkWeightPostprocessing(emit, toFloat(getNormEps()),
                                   toFloat(getScaling()));
}

LogicalResult GroupTopKRouteOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return inferSelection<GroupTopKRouteOp>(context, loc, adaptor.getScores(), "k",
                                      adaptor.getAttributes(),
                                      results);
}

LogicalResult GroupTopKRouteOp::verify() {
  auto emit = [&] { return emitOpError(); };
  int64_t experts = numExperts(getScores());
  int64_t groups = getNumGroups();
  if (failed(checkIntRange(emit, "num_groups", groups, 1, experts,
                           "the number of experts")))
    return failure();
  if (!ShapedType::isDynamic(experts) && experts % groups != 0)
    return emitOpError("attribute 'num_groups' (")
           << groups << ") must divide the number of experts (" << experts
           << ")";
  if (failed(checkIntRange(emit, "topk_groups", getTopkGroups(), 1, groups,
                           "'num_groups'")))
    return failure();
  if (!ShapedType::isDynamic(experts)) {
    int64_t groupSize = experts / groups;
    if (getGroupScore() == GroupScore::top2_sum && groupSize < 2)
      return emitOpError("#moe.group_score<top2_sum> needs at least 2 experts "
                         "per group, but groups have ")
             << groupSize;
    int64_t eligible = groupSize * static_cast<int64_t>(getTopkGroups());
    if (failed(checkIntRange(emit, "k", getK(), 1, eligible,
                             "the experts in the kept groups")))
      return failure();
  }
  if (failed(checkSelectionBias(emit, getBias(), getScores())))
    return failure();
  return checkWeightPostprocessing(emit, toFloat(getNormEps()),
                                   toFloat(getScaling()));
}

LogicalResult PrototypeRouteOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return inferSelection<PrototypeRouteOp>(context, loc, adaptor.getScores(), "num_prototypes",
                                      adaptor.getAttributes(),
                                      results);
}

LogicalResult PrototypeRouteOp::verify() {
  auto emit = [&] { return emitOpError(); };
  int64_t prototypes = getNumPrototypes();
  if (failed(checkExpertsPerToken(emit, "num_prototypes", prototypes,
                                  getScores())))
    return failure();
  int64_t experts = numExperts(getScores());
  if (!ShapedType::isDynamic(experts) && experts % prototypes != 0)
    return emitOpError("attribute 'num_prototypes' (")
           << prototypes << ") must divide the number of experts (" << experts
           << ")";
  return success();
}

LogicalResult TopPRouteOp::inferReturnTypes(MLIRContext *context,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return inferSelection<TopPRouteOp>(context, loc, adaptor.getScores(), "max_k",
                                      adaptor.getAttributes(),
                                      results);
}

LogicalResult TopPRouteOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(checkFloatRange(emit, "p", toFloat(getP()), 0.0f, false, 1.0f,
                             true)))
    return failure();
  return checkExpertsPerToken(emit, "max_k", getMaxK(), getScores());
}

LogicalResult EntropyHybridRouteOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return inferSelection<EntropyHybridRouteOp>(context, loc, adaptor.getScores(), "max_k",
                                      adaptor.getAttributes(),
                                      results);
}

LogicalResult EntropyHybridRouteOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(checkFloatAbove(emit, "q", toFloat(getQ()), 0.0f)) ||
      failed(checkFloatAbove(emit, "threshold", toFloat(getThreshold()), 0.0f,
                             /*inclusive=*/true)) ||
      failed(checkFloatRange(emit, "p", toFloat(getP()), 0.0f, false, 1.0f,
                             true)) ||
      failed(checkExpertsPerToken(emit, "max_k", getMaxK(), getScores())))
    return failure();
  return checkIntRange(emit, "k", getK(), 1, getMaxK(), "'max_k'");
}

LogicalResult ThresholdRouteOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return inferSelection<ThresholdRouteOp>(context, loc, adaptor.getScores(), "max_k",
                                      adaptor.getAttributes(),
                                      results);
}

LogicalResult ThresholdRouteOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(checkFloatRange(emit, "threshold", toFloat(getThreshold()), 0.0f,
                             true, 1.0f, false)))
    return failure();
  return checkExpertsPerToken(emit, "max_k", getMaxK(), getScores());
}

LogicalResult SparseMixerRouteOp::inferReturnTypes(MLIRContext *context,
                                                   std::optional<Location> loc, Adaptor adaptor,
                                                   SmallVectorImpl<Type> &results) {
  return inferSelection<SparseMixerRouteOp>(context, loc, adaptor.getLogits(), "",
                                            adaptor.getAttributes(), results);
}

LogicalResult SparseMixerRouteOp::verify() {
  auto emit = [&] { return emitOpError(); };
  int64_t experts = numExperts(getLogits());
  if (!ShapedType::isDynamic(experts) && experts < 2)
    return emitOpError("picks two experts, but 'logits' has ") << experts << " expert(s)";
  if (failed(checkIntRange(emit, "stream", getStream(), 0, ShapedType::kDynamic)))
    return failure();
  return checkFloatAbove(emit, "epsilon", toFloat(getEpsilon()), 0.0f, /*inclusive=*/true);
}

LogicalResult ExpertChoiceRouteOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  FailureOr<RankedTensorType> scores =
      routerOperand(emit, adaptor.getScores(), "scores");
  if (failed(scores))
    return failure();
  FailureOr<int64_t> capacity =
      positiveShapeAttr(emit, adaptor.getAttributes(), "capacity");
  if (failed(capacity))
    return failure();
  SmallVector<int64_t, 2> slots = {scores->getDimSize(1), *capacity};
  results.push_back(RankedTensorType::get(slots, IntegerType::get(context, 32)));
  results.push_back(RankedTensorType::get(slots, Float32Type::get(context)));
  return success();
}

LogicalResult ExpertChoiceRouteOp::verify() {
  return checkIntRange([&] { return emitOpError(); }, "capacity",
                       getCapacity(), 1, numTokens(getScores()),
                       "the number of tokens");
}

LogicalResult UpdateSelectionBiasOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> bias =
      rankedOperand(emit, getBias(), "bias", 1, "[experts]");
  if (failed(bias))
    return failure();
  FailureOr<RankedTensorType> load =
      rankedOperand(emit, getLoad(), "load", 1, "[experts]");
  if (failed(load) || failed(checkDim(emit, "load", *load, 0,
                                      bias->getDimSize(0), "experts",
                                      "'bias'")))
    return failure();
  return checkFloatAbove(emit, "rate", toFloat(getRate()), 0.0f);
}
