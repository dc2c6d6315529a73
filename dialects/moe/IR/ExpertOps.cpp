//===- ExpertOps.cpp - verifiers and type inference of expert ops ---------===//
#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/Verification.h"

using namespace mlir;
using namespace moec::moe;
using namespace moec::moe::verify;

namespace {
/// The input of routed experts in either layout. Capacity form `[E, C, d]`;
/// grouped form `[N, d]` with `group_sizes` `[E]`. Returns {E, d}.
FailureOr<std::pair<int64_t, int64_t>>
checkExpertInput(ErrorEmitter emit, Value input, Value groupSizes) {
  if (!groupSizes) {
    FailureOr<RankedTensorType> type = rankedOperand(
        emit, input, "input", 3,
        "[experts, capacity, width] (or [rows, width] with 'group_sizes')");
    if (failed(type))
      return failure();
    return std::make_pair(type->getDimSize(0), type->getDimSize(2));
  }
  FailureOr<RankedTensorType> type = rankedOperand(
      emit, input, "input", 2, "[rows, width] when 'group_sizes' is given");
  if (failed(type))
    return failure();
  FailureOr<RankedTensorType> sizes =
      rankedOperand(emit, groupSizes, "group_sizes", 1, "[experts]");
  if (failed(sizes))
    return failure();
  return std::make_pair(sizes->getDimSize(0), type->getDimSize(1));
}

/// Routed experts return the layout of their input.
LogicalResult sameAsInput(Value input, SmallVectorImpl<Type> &results) {
  results.push_back(input.getType());
  return success();
}
} // namespace

LogicalResult GroupedFFNOp::inferReturnTypes(MLIRContext *context,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &results) {
  return sameAsInput(adaptor.getInput(), results);
}

LogicalResult GroupedFFNOp::verify() {
  auto emit = [&] { return emitOpError(); };
  auto dims = checkExpertInput(emit, getInput(), getGroupSizes());
  if (failed(dims))
    return failure();
  return checkFFNWeights(emit, getW1(), getW2(), getW3(), /*perExpert=*/true,
                         dims->first, dims->second);
}

LogicalResult GroupedFFNDownOp::verify() {
  auto hidden = dyn_cast<RankedTensorType>(getHidden().getType());
  auto w2 = dyn_cast<RankedTensorType>(getW2().getType());
  if (!hidden || !w2 || w2.getRank() != 3)
    return emitOpError("needs ranked hidden rows and a w2 of [experts, width, ffn width]");
  int64_t width = w2.getDimSize(2), columns = hidden.getShape().back();
  int64_t expected = getGated() ? 2 * width : width;
  if (!ShapedType::isDynamic(width) && !ShapedType::isDynamic(columns) && columns != expected)
    return emitOpError("hidden rows have ")
           << columns << " columns, but " << (getGated() ? "a gated" : "an ungated")
           << " FFN of width " << width << " (w2's last dimension) needs " << expected;
  return success();
}

LogicalResult SharedExpertsOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  return sameAsInput(adaptor.getInput(), results);
}

LogicalResult SharedExpertsOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> input =
      rankedOperand(emit, getInput(), "input", 2, "[tokens, width]");
  if (failed(input))
    return failure();
  int64_t width = input->getDimSize(1);
  FailureOr<int64_t> ffnWidth = checkFFNWeights(
      emit, getW1(), getW2(), getW3(), /*perExpert=*/false, 0, width);
  if (failed(ffnWidth))
    return failure();
  int64_t shared = getNumShared();
  if (failed(checkIntRange(emit, "num_shared", shared, 1,
                           ShapedType::kDynamic)))
    return failure();
  if (!ShapedType::isDynamic(*ffnWidth) && *ffnWidth % shared != 0)
    return emitOpError("attribute 'num_shared' (")
           << shared << ") must divide the shared FFN width (" << *ffnWidth
           << ")";
  if (Value gate = getSigmoidGate()) {
    FailureOr<RankedTensorType> gateType =
        rankedOperand(emit, gate, "sigmoid_gate", 2, "[1, width]");
    if (failed(gateType) ||
        failed(checkShape(emit, "sigmoid_gate", *gateType, {1, width},
                          "one gate weight per model width")))
      return failure();
  }
  return success();
}

LogicalResult LoRAExpertsOp::inferReturnTypes(MLIRContext *context,
                                              std::optional<Location> loc,
                                              Adaptor adaptor,
                                              SmallVectorImpl<Type> &results) {
  return sameAsInput(adaptor.getInput(), results);
}

LogicalResult LoRAExpertsOp::verify() {
  auto emit = [&] { return emitOpError(); };
  auto dims = checkExpertInput(emit, getInput(), getGroupSizes());
  if (failed(dims))
    return failure();
  auto [experts, width] = *dims;

  ValueRange base = getBase();
  if (base.size() != 2 && base.size() != 3)
    return emitOpError("'base' must be (w1, w2) or (w1, w2, w3), but has ")
           << base.size() << " operands";
  ValueRange adapters = getAdapters();
  if (adapters.size() != 2 * base.size())
    return emitOpError("'adapters' must hold an (A, B) pair per base "
                       "projection: ")
           << 2 * base.size() << " operands, but has " << adapters.size();
  Value w3 = base.size() == 3 ? base[2] : Value();
  FailureOr<int64_t> ffnWidth = checkFFNWeights(
      emit, base[0], base[1], w3, /*perExpert=*/false, 0, width);
  if (failed(ffnWidth))
    return failure();
  if (failed(checkFloatAbove(emit, "alpha", getAlpha().convertToFloat(),
                             0.0f)))
    return failure();

  // Projection p maps in_p -> out_p: w1, w3: d -> F; w2: F -> d.
  // A_p is [E, r, in_p] and B_p is [E, out_p, r].
  FailureOr<RankedTensorType> firstA =
      rankedOperand(emit, adapters[0], "A1", 3, "[experts, rank, in]");
  if (failed(firstA))
    return failure();
  int64_t rank = firstA->getDimSize(1);
  const char *names[] = {"A1", "B1", "A2", "B2", "A3", "B3"};
  for (size_t p = 0; p < base.size(); ++p) {
    bool down = p == 1;
    int64_t in = down ? *ffnWidth : width;
    int64_t out = down ? width : *ffnWidth;
    SmallVector<int64_t, 3> aShape = {experts, rank, in};
    SmallVector<int64_t, 3> bShape = {experts, out, rank};
    for (auto [value, name, shape] :
         {std::make_tuple(adapters[2 * p], names[2 * p], ArrayRef(aShape)),
          std::make_tuple(adapters[2 * p + 1], names[2 * p + 1],
                          ArrayRef(bShape))}) {
      FailureOr<RankedTensorType> type =
          rankedOperand(emit, value, name, 3, "[experts, ., .]");
      if (failed(type) ||
          failed(checkShape(emit, name, *type, shape,
                            "[experts, rank, in] for A, [experts, out, rank] "
                            "for B")))
        return failure();
    }
  }
  return success();
}
