//===- LossOps.cpp - verifiers and type inference of loss ops -------------===//
#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/Verification.h"

using namespace mlir;
using namespace moec::moe;
using namespace moec::moe::verify;

LogicalResult LoadBalancingLossOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> scores = routerOperand(emit, getScores(), "scores");
  if (failed(scores))
    return failure();
  FailureOr<RankedTensorType> indices = rankedOperand(
      emit, getIndices(), "indices", 2, "[tokens, experts per token]");
  if (failed(indices) ||
      failed(checkDim(emit, "indices", *indices, 0, scores->getDimSize(0),
                      "tokens", "'scores'")))
    return failure();

  std::optional<uint64_t> seqLen = getSeqLen();
  if (getKind() != LoadBalancing::sequence) {
    if (seqLen)
      return emitOpError("attribute 'seq_len' applies only to "
                         "#moe.balance<sequence>");
    return success();
  }
  if (!seqLen)
    return emitOpError("#moe.balance<sequence> needs attribute 'seq_len'");
  auto length = static_cast<int64_t>(*seqLen);
  if (failed(checkIntRange(emit, "seq_len", length, 1, ShapedType::kDynamic)))
    return failure();
  int64_t tokens = scores->getDimSize(0);
  if (!ShapedType::isDynamic(tokens) && tokens % length != 0)
    return emitOpError("attribute 'seq_len' (")
           << length << ") must divide the number of tokens (" << tokens << ")";
  return success();
}

LogicalResult ZLossOp::verify() {
  return routerOperand([&] { return emitOpError(); }, getLogits(), "logits");
}

LogicalResult EntropyLossOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(routerOperand(emit, getScores(), "scores")))
    return failure();
  return checkFloatAbove(emit, "q", getQ().convertToFloat(), 0.0f);
}

LogicalResult WeightedSumOp::verify() {
  if (getTerms().empty())
    return emitOpError("needs at least one term");
  if (getCoefficients().size() != getTerms().size())
    return emitOpError("attribute 'coefficients' must have one entry per "
                       "term (")
           << getTerms().size() << "), but has " << getCoefficients().size();
  return success();
}
