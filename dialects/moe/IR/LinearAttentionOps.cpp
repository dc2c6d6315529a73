//===- LinearAttentionOps.cpp - verifiers and gradients of gated DeltaNet ops ===//
#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/Verification.h"

#include "mlir/IR/Builders.h"

#include <cmath>

using namespace mlir;
using namespace moec::moe;
using namespace moec::moe::verify;

namespace {
/// Operand `name` must be `[B, S, H]` with B and S those of `like`
/// (`[B, S, ...]`) and H `heads`.
LogicalResult checkPerHead(ErrorEmitter emit, Value operand, StringRef name, RankedTensorType like,
                           int64_t heads) {
  FailureOr<RankedTensorType> type =
      rankedOperand(emit, operand, name, 3, "[batch, sequence, value heads]");
  if (failed(type))
    return failure();
  if (failed(checkDim(emit, name, *type, 0, like.getDimSize(0), "batch", "'value'")) ||
      failed(checkDim(emit, name, *type, 1, like.getDimSize(1), "sequence", "'value'")))
    return failure();
  return checkDim(emit, name, *type, 2, heads, "value heads", "'value'");
}
} // namespace

LogicalResult CausalConv1DOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> input =
      rankedOperand(emit, getInput(), "input", 3, "[batch, sequence, channels]");
  if (failed(input))
    return failure();
  FailureOr<RankedTensorType> weight =
      rankedOperand(emit, getWeight(), "weight", 2, "[channels, kernel]");
  if (failed(weight) || failed(checkDim(emit, "weight", *weight, 0, input->getDimSize(2),
                                        "channels", "the last dimension of 'input'")))
    return failure();
  if (weight->getDimSize(1) < 1)
    return emitOpError("the kernel must have at least one tap, but 'weight' has ")
           << weight->getDimSize(1);
  return success();
}

LogicalResult DeltaDecayOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> input =
      rankedOperand(emit, getInput(), "input", 3, "[batch, sequence, heads]");
  if (failed(input))
    return failure();
  for (auto [value, name] : {std::pair{getALog(), "a_log"}, std::pair{getDtBias(), "dt_bias"}}) {
    FailureOr<RankedTensorType> type = rankedOperand(emit, value, name, 1, "[heads]");
    if (failed(type) || failed(checkDim(emit, name, *type, 0, input->getDimSize(2), "heads",
                                        "the last dimension of 'input'")))
      return failure();
  }
  return success();
}

LogicalResult GatedDeltaRuleOp::verify() {
  auto emit = [&] { return emitOpError(); };
  StringRef layout = "[batch, sequence, heads, head dim]";
  FailureOr<RankedTensorType> query = rankedOperand(emit, getQuery(), "query", 4, layout);
  if (failed(query))
    return failure();
  FailureOr<RankedTensorType> key = rankedOperand(emit, getKey(), "key", 4, layout);
  if (failed(key))
    return failure();
  FailureOr<RankedTensorType> value = rankedOperand(emit, getValue(), "value", 4, layout);
  if (failed(value))
    return failure();
  if (failed(checkShape(emit, "key", *key, query->getShape(), "the shape of 'query'")))
    return failure();
  static const char *meanings[] = {"batch", "sequence"};
  for (unsigned dim : {0u, 1u})
    if (failed(
            checkDim(emit, "value", *value, dim, query->getDimSize(dim), meanings[dim], "'query'")))
      return failure();
  int64_t keyHeads = query->getDimSize(2), valueHeads = value->getDimSize(2);
  if (keyHeads < 1 || valueHeads % keyHeads != 0)
    return emitOpError("query/key heads (")
           << keyHeads << ") must divide value heads (" << valueHeads << ")";
  if (failed(checkPerHead(emit, getDecay(), "decay", *value, valueHeads)) ||
      failed(checkPerHead(emit, getBeta(), "beta", *value, valueHeads)))
    return failure();
  if (std::optional<APFloat> eps = getQkL2normEps())
    if (failed(checkFloatAbove(emit, "qk_l2norm_eps", eps->convertToFloat(), 0.0f)))
      return failure();
  if (std::optional<APFloat> scale = getScale())
    return checkFloatAbove(emit, "scale", scale->convertToFloat(), 0.0f);
  return success();
}

LogicalResult LightningAttentionOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> query =
      rankedOperand(emit, getQuery(), "query", 4, "[batch, sequence, heads, head dim]");
  if (failed(query))
    return failure();
  int64_t heads = query->getDimSize(2);
  if (int64_t(getDecay().size()) != heads)
    return emitOpError("attribute 'decay' has ")
           << getDecay().size() << " rates for " << heads << " heads";
  for (float rate : getDecay())
    if (!(rate >= 0.0f) || std::isinf(rate))
      return emitOpError("attribute 'decay' holds slope rates, each finite and at least 0, "
                         "but one is ")
             << rate;
  return success();
}

LogicalResult LightningAttentionOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                             SmallVectorImpl<Value> &grads) {
  auto type = getQuery().getType();
  auto g = b.create<LightningAttentionGradOp>(getLoc(), type, type, type, getQuery(), getKey(),
                                              getValue(), dresult[0], getDecayAttr());
  grads.append(g->result_begin(), g->result_end());
  return success();
}

LogicalResult CausalConv1DOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                       SmallVectorImpl<Value> &grads) {
  auto g = b.create<CausalConv1DGradOp>(getLoc(), getInput().getType(), getWeight().getType(),
                                        getInput(), getWeight(), dresult[0]);
  grads.append({g.getDinput(), g.getDweight()});
  return success();
}

LogicalResult DeltaDecayOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                     SmallVectorImpl<Value> &grads) {
  auto g = b.create<DeltaDecayGradOp>(getLoc(), getInput().getType(), getALog().getType(),
                                      getDtBias().getType(), getInput(), getALog(), getDtBias(),
                                      dresult[0]);
  grads.append({g.getDinput(), g.getDaLog(), g.getDdtBias()});
  return success();
}

LogicalResult GatedDeltaRuleOp::buildVJP(OpBuilder &b, ArrayRef<Value> dresult,
                                         SmallVectorImpl<Value> &grads) {
  auto g = b.create<GatedDeltaRuleGradOp>(getLoc(),
                                          TypeRange{getQuery().getType(), getKey().getType(),
                                                    getValue().getType(), getDecay().getType(),
                                                    getBeta().getType()},
                                          getQuery(), getKey(), getValue(), getDecay(), getBeta(),
                                          dresult[0], getScaleAttr(), getQkL2normEpsAttr());
  grads.append(g->result_begin(), g->result_end());
  return success();
}
