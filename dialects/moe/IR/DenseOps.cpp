//===- DenseOps.cpp - verifiers and type inference of dense ops -----------===//
#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/Verification.h"

using namespace mlir;
using namespace moec::moe;
using namespace moec::moe::verify;

namespace {
/// A per-feature parameter (`[D]`) of a normalisation over the last
/// dimension of `input`.
LogicalResult checkFeatureVector(ErrorEmitter emit, StringRef name,
                                 Value param, RankedTensorType input) {
  FailureOr<RankedTensorType> type =
      rankedOperand(emit, param, name, 1, "[features]");
  if (failed(type))
    return failure();
  return checkDim(emit, name, *type, 0, input.getShape().back(),
                  "features", "the last dimension of 'input'");
}

/// Input and parameters of a normalisation over the last dimension.
LogicalResult checkNorm(ErrorEmitter emit, Value input, Value weight,
                        Value bias, float eps) {
  FailureOr<RankedTensorType> inputType =
      rankedOperandAtLeast(emit, input, "input", 1, "[..., features]");
  if (failed(inputType) ||
      failed(checkFeatureVector(emit, "weight", weight, *inputType)))
    return failure();
  if (bias && failed(checkFeatureVector(emit, "bias", bias, *inputType)))
    return failure();
  return checkFloatAbove(emit, "eps", eps, 0.0f);
}
} // namespace

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *context,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  FailureOr<RankedTensorType> table =
      rankedOperand(emit, adaptor.getTable(), "table", 2, "[vocabulary, width]");
  if (failed(table))
    return failure();
  FailureOr<RankedTensorType> tokens = rankedOperandAtLeast(
      emit, adaptor.getTokens(), "tokens", 1, "(token shape)");
  if (failed(tokens))
    return failure();
  SmallVector<int64_t> shape(tokens->getShape());
  shape.push_back(table->getDimSize(1));
  results.push_back(RankedTensorType::get(shape, table->getElementType()));
  return success();
}

LogicalResult RMSNormOp::verify() {
  return checkNorm([&] { return emitOpError(); }, getInput(), getWeight(),
                   Value(), getEps().convertToFloat());
}

LogicalResult LayerNormOp::verify() {
  return checkNorm([&] { return emitOpError(); }, getInput(), getWeight(),
                   getBias(), getEps().convertToFloat());
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *context,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  FailureOr<RankedTensorType> input = rankedOperandAtLeast(
      emit, adaptor.getInput(), "input", 1, "[..., in features]");
  if (failed(input))
    return failure();
  FailureOr<RankedTensorType> weight = rankedOperand(
      emit, adaptor.getWeight(), "weight", 2, "[out features, in features]");
  if (failed(weight))
    return failure();
  SmallVector<int64_t> shape(input->getShape());
  shape.back() = weight->getDimSize(0);
  results.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult LinearOp::verify() {
  auto emit = [&] { return emitOpError(); };
  auto input = cast<RankedTensorType>(getInput().getType());
  auto weight = cast<RankedTensorType>(getWeight().getType());
  if (failed(checkDim(emit, "weight", weight, 1, input.getShape().back(),
                      "in features", "the last dimension of 'input'")))
    return failure();
  if (Value bias = getBias()) {
    FailureOr<RankedTensorType> biasType =
        rankedOperand(emit, bias, "bias", 1, "[out features]");
    if (failed(biasType) ||
        failed(checkDim(emit, "bias", *biasType, 0, weight.getDimSize(0),
                        "out features", "'weight'")))
      return failure();
  }
  return success();
}

LogicalResult FFNOp::inferReturnTypes(MLIRContext *context,
                                      std::optional<Location> loc,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult FFNOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> input =
      rankedOperandAtLeast(emit, getInput(), "input", 1, "[..., width]");
  if (failed(input))
    return failure();
  return checkFFNWeights(emit, getW1(), getW2(), getW3(), /*perExpert=*/false,
                         0, input->getShape().back());
}

LogicalResult RoPEOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> input = rankedOperand(
      emit, getInput(), "input", 4, "[batch, sequence, heads, head dim]");
  if (failed(input))
    return failure();
  int64_t headDim = input->getDimSize(3);
  if (!ShapedType::isDynamic(headDim) && headDim % 2 != 0)
    return emitOpError("operand 'input' head dimension must be even for "
                       "RoPE, but is ")
           << headDim;
  if (failed(checkFloatAbove(emit, "theta", getTheta().convertToFloat(), 0.0f)) ||
      failed(
          checkFloatAbove(emit, "attention_factor", getAttentionFactor().convertToFloat(), 0.0f)))
    return failure();
  if (std::optional<ArrayRef<float>> inverse = getInvFreq();
      inverse && !ShapedType::isDynamic(headDim) && int64_t(inverse->size()) != headDim / 2)
    return emitOpError("has ") << inverse->size() << " inverse frequencies for a head of "
                               << headDim << ": one per pair, " << headDim / 2;
  return success();
}

LogicalResult TransposeOp::verify() {
  auto input = cast<RankedTensorType>(getInput().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  ArrayRef<int64_t> permutation = getPermutation();
  if (int64_t(permutation.size()) != input.getRank())
    return emitOpError("permutation has ")
           << permutation.size() << " entries for an input of rank " << input.getRank();
  SmallVector<bool> seen(permutation.size(), false);
  for (int64_t p : permutation) {
    if (p < 0 || p >= input.getRank() || seen[p])
      return emitOpError("permutation [")
             << permutation << "] is not a permutation of 0.." << input.getRank() - 1;
    seen[p] = true;
  }
  if (input.getElementType() != result.getElementType())
    return emitOpError("result element type must be ")
           << input.getElementType() << " as 'input', but is " << result.getElementType();
  if (result.getRank() != input.getRank())
    return emitOpError("result must have the rank of 'input' (")
           << input.getRank() << "), but has rank " << result.getRank();
  for (auto [d, p] : llvm::enumerate(permutation))
    if (result.getDimSize(d) != input.getDimSize(p))
      return emitOpError("result dimension ")
             << d << " is " << result.getDimSize(d) << ", but input dimension " << p << " is "
             << input.getDimSize(p);
  return success();
}

LogicalResult ClampedSwiGLUOp::verify() {
  auto input = cast<RankedTensorType>(getInput().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  SmallVector<int64_t> expected(input.getShape());
  if (expected.empty() || expected.back() % 2 != 0)
    return emitOpError("input's last dimension interleaves gate and up: it must be even, but is ")
           << (expected.empty() ? 0 : expected.back());
  expected.back() /= 2;
  if (result.getShape() != ArrayRef<int64_t>(expected) ||
      result.getElementType() != input.getElementType())
    return emitOpError("result must be ")
           << input.clone(expected) << " (half the input's last dimension), but is " << result;
  auto emit = [&] { return emitOpError(); };
  if (failed(checkFloatAbove(emit, "limit", getLimit().convertToFloat(), 0.0f)))
    return failure();
  return checkFloatAbove(emit, "alpha", getAlpha().convertToFloat(), 0.0f);
}

LogicalResult BroadcastOp::verify() {
  auto input = cast<RankedTensorType>(getInput().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  if (input.getRank() != result.getRank())
    return emitOpError("result must have the rank of 'input' (")
           << input.getRank() << "), but has rank " << result.getRank();
  if (input.getElementType() != result.getElementType())
    return emitOpError("result element type must be ")
           << input.getElementType() << " as 'input', but is " << result.getElementType();
  for (int64_t d = 0; d < input.getRank(); ++d)
    if (input.getDimSize(d) != 1 && input.getDimSize(d) != result.getDimSize(d))
      return emitOpError("operand 'input' dimension ")
             << d << " is " << input.getDimSize(d) << ": it must be 1 (repeated) or the result's, "
             << result.getDimSize(d);
  return success();
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *, std::optional<Location>, Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  // [B, S, Hq, Dv]; malformed operands are left to the verifier, which
  // names the problem.
  auto query = dyn_cast<RankedTensorType>(adaptor.getQuery().getType());
  auto value = dyn_cast<RankedTensorType>(adaptor.getValue().getType());
  if (!query || !value || query.getRank() != 4 || value.getRank() != 4) {
    results.push_back(adaptor.getQuery().getType());
    return success();
  }
  SmallVector<int64_t> shape(query.getShape());
  shape[3] = value.getDimSize(3);
  results.push_back(RankedTensorType::get(shape, query.getElementType()));
  return success();
}

LogicalResult AttentionOp::verify() {
  auto emit = [&] { return emitOpError(); };
  StringRef layout = "[batch, sequence, heads, head dim]";
  FailureOr<RankedTensorType> query =
      rankedOperand(emit, getQuery(), "query", 4, layout);
  if (failed(query))
    return failure();
  FailureOr<RankedTensorType> key =
      rankedOperand(emit, getKey(), "key", 4, layout);
  if (failed(key))
    return failure();
  if (key->getElementType() != query->getElementType())
    return emitOpError("operand 'key' element type must be ")
           << query->getElementType() << " as 'query', but is "
           << key->getElementType();
  static const char *meanings[] = {"batch", "sequence", "", "head dim"};
  for (unsigned dim : {0u, 1u, 3u})
    if (failed(checkDim(emit, "key", *key, dim, query->getDimSize(dim),
                        meanings[dim], "'query'")))
      return failure();
  FailureOr<RankedTensorType> value = rankedOperand(emit, getValue(), "value", 4, layout);
  if (failed(value))
    return failure();
  if (value->getElementType() != query->getElementType())
    return emitOpError("operand 'value' element type must be ")
           << query->getElementType() << " as 'query', but is " << value->getElementType();
  static const char *keyMeanings[] = {"batch", "sequence", "heads"};
  for (unsigned dim : {0u, 1u, 2u})
    if (failed(
            checkDim(emit, "value", *value, dim, key->getDimSize(dim), keyMeanings[dim], "'key'")))
      return failure();
  int64_t queryHeads = query->getDimSize(2);
  int64_t kvHeads = key->getDimSize(2);
  if (!ShapedType::isDynamic(queryHeads) && !ShapedType::isDynamic(kvHeads) &&
      (kvHeads == 0 || queryHeads % kvHeads != 0))
    return emitOpError("key/value heads (")
           << kvHeads << ") must divide query heads (" << queryHeads
           << ") for grouped-query attention";
  if (std::optional<uint64_t> window = getWindow()) {
    if (int64_t(*window) < 1)
      return emitOpError("attribute 'window' must be at least 1, but is ") << int64_t(*window);
    if (!getCausal())
      return emitOpError("a 'window' needs causal attention");
  }
  if (std::optional<uint64_t> chunk = getChunk()) {
    if (int64_t(*chunk) < 1)
      return emitOpError("attribute 'chunk' must be at least 1, but is ") << int64_t(*chunk);
    if (!getCausal())
      return emitOpError("a 'chunk' needs causal attention");
    if (getWindow())
      return emitOpError("takes a 'window' or a 'chunk', not both");
  }
  if (bool(getTemperatureFloor()) != bool(getTemperatureScale()))
    return emitOpError("'temperature_floor' and 'temperature_scale' go together");
  if (std::optional<uint64_t> floor = getTemperatureFloor(); floor && int64_t(*floor) < 1)
    return emitOpError("attribute 'temperature_floor' must be at least 1, but is ")
           << int64_t(*floor);
  if (Value sinks = getSinks()) {
    FailureOr<RankedTensorType> type = rankedOperand(emit, sinks, "sinks", 1, "[query heads]");
    if (failed(type) ||
        failed(checkDim(emit, "sinks", *type, 0, queryHeads, "query heads", "'query' dimension 2")))
      return failure();
  }
  if (std::optional<APFloat> scale = getScale())
    return checkFloatAbove(emit, "scale", scale->convertToFloat(), 0.0f);
  return success();
}

LogicalResult CrossEntropyOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> logits =
      rankedOperandAtLeast(emit, getLogits(), "logits", 1, "[..., vocabulary]");
  if (failed(logits))
    return failure();
  auto targets = cast<RankedTensorType>(getTargets().getType());
  return checkShape(emit, "targets", targets, logits->getShape().drop_back(),
                    "the shape of 'logits' without the vocabulary");
}
