//===- DispatchOps.cpp - verifiers and type inference of dispatch ops -----===//
#include "dialects/moe/IR/MeshGradients.h"
#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/Verification.h"

using namespace mlir;
using namespace moec::moe;
using namespace moec::moe::verify;

namespace {
/// `weights` and `indices` of a selection: both `[T, K]`. Returns their shape.
FailureOr<RankedTensorType> selectionPair(ErrorEmitter emit, Value weights,
                                          Value indices) {
  FailureOr<RankedTensorType> weightsType =
      rankedOperand(emit, weights, "weights", 2, "[tokens, experts per token]");
  if (failed(weightsType))
    return failure();
  FailureOr<RankedTensorType> indicesType =
      rankedOperand(emit, indices, "indices", 2, "[tokens, experts per token]");
  if (failed(indicesType) ||
      failed(checkShape(emit, "indices", *indicesType, weightsType->getShape(),
                        "the shape of 'weights'")))
    return failure();
  return weightsType;
}
} // namespace

LogicalResult AssignSlotsOp::inferReturnTypes(MLIRContext *context,
                                              std::optional<Location> loc,
                                              Adaptor adaptor,
                                              SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  if (failed(selectionPair(emit, adaptor.getWeights(), adaptor.getIndices())))
    return failure();
  FailureOr<int64_t> experts =
      positiveShapeAttr(emit, adaptor.getAttributes(), "num_experts");
  if (failed(experts))
    return failure();
  FailureOr<int64_t> capacity =
      positiveShapeAttr(emit, adaptor.getAttributes(), "capacity");
  if (failed(capacity))
    return failure();
  Type i32 = IntegerType::get(context, 32);
  results.push_back(RankedTensorType::get({*experts, *capacity}, i32));
  results.push_back(
      RankedTensorType::get({*experts, *capacity}, Float32Type::get(context)));
  results.push_back(RankedTensorType::get({*experts}, i32));
  return success();
}

LogicalResult SortByExpertOp::inferReturnTypes(MLIRContext *context,
                                               std::optional<Location> loc,
                                               Adaptor adaptor,
                                               SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  FailureOr<RankedTensorType> selection =
      selectionPair(emit, adaptor.getWeights(), adaptor.getIndices());
  if (failed(selection))
    return failure();
  FailureOr<int64_t> experts =
      positiveShapeAttr(emit, adaptor.getAttributes(), "num_experts");
  if (failed(experts))
    return failure();
  Type i32 = IntegerType::get(context, 32);
  int64_t assignments = product(selection->getShape());
  results.push_back(RankedTensorType::get({assignments}, i32));
  results.push_back(
      RankedTensorType::get({assignments}, Float32Type::get(context)));
  results.push_back(RankedTensorType::get({*experts}, i32));
  return success();
}

LogicalResult DispatchOp::inferReturnTypes(MLIRContext *context,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  FailureOr<RankedTensorType> input =
      rankedOperand(emit, adaptor.getInput(), "input", 2, "[tokens, width]");
  if (failed(input))
    return failure();
  FailureOr<RankedTensorType> slots = rankedOperandAtLeast(
      emit, adaptor.getSlotTokens(), "slot_tokens", 1, "(slot shape)");
  if (failed(slots))
    return failure();
  SmallVector<int64_t> shape(slots->getShape());
  shape.push_back(input->getDimSize(1));
  results.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult ScaleRowsOp::verify() {
  auto emit = [&] { return emitOpError(); };
  auto input = cast<RankedTensorType>(getInput().getType());
  auto gates = cast<RankedTensorType>(getGates().getType());
  if (input.getRank() < 2)
    return emitOpError(
               "operand 'input' must be rows of slots (slot shape × [width]), but has type ")
           << input;
  return checkShape(emit, "gates", gates, input.getShape().drop_back(),
                    "the slot shape of 'input'");
}

LogicalResult CombineOp::verify() {
  auto emit = [&] { return emitOpError(); };
  FailureOr<RankedTensorType> tokens = rankedOperandAtLeast(
      emit, getSlotTokens(), "slot_tokens", 1, "(slot shape)");
  if (failed(tokens))
    return failure();
  auto gates = cast<RankedTensorType>(getSlotGates().getType());
  if (failed(checkShape(emit, "slot_gates", gates, tokens->getShape(),
                        "the shape of 'slot_tokens'")))
    return failure();
  auto outputs = cast<RankedTensorType>(getExpertOutputs().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  if (result.getRank() != 2)
    return emitOpError("result must be a rank-2 tensor [tokens, width], but "
                       "has type ")
           << result;
  SmallVector<int64_t> expected(tokens->getShape());
  expected.push_back(result.getDimSize(1));
  if (failed(checkShape(emit, "expert_outputs", outputs, expected,
                        "slot shape × result width")))
    return failure();
  // Expert outputs stored in bf16 (--moe-bf16-activations) sum into fp32.
  bool widened = outputs.getElementType().isBF16() && result.getElementType().isF32();
  if (outputs.getElementType() != result.getElementType() && !widened)
    return emitOpError("result element type must be ")
           << outputs.getElementType() << " as 'expert_outputs' (or f32 for bf16 ones), but is "
           << result.getElementType();
  return success();
}

LogicalResult RoutingStatsOp::inferReturnTypes(MLIRContext *context,
                                               std::optional<Location> loc,
                                               Adaptor adaptor,
                                               SmallVectorImpl<Type> &results) {
  auto emit = [&] {
    return emitInferenceError(context, loc, getOperationName());
  };
  FailureOr<int64_t> experts =
      positiveShapeAttr(emit, adaptor.getAttributes(), "num_experts");
  if (failed(experts))
    return failure();
  results.push_back(
      RankedTensorType::get({*experts}, IntegerType::get(context, 32)));
  results.push_back(RankedTensorType::get({}, Float32Type::get(context)));
  return success();
}

LogicalResult RoutingStatsOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(rankedOperandAtLeast(emit, getSlotTokens(), "slot_tokens", 1,
                                  "(slot shape)")))
    return failure();
  auto tokens = static_cast<int64_t>(getNumTokens());
  if (failed(checkIntRange(emit, "num_tokens", tokens, 1,
                           ShapedType::kDynamic)))
    return failure();
  if (Value indices = getIndices()) {
    FailureOr<RankedTensorType> type = rankedOperand(
        emit, indices, "indices", 2, "[tokens, experts per token]");
    if (failed(type) || failed(checkDim(emit, "indices", *type, 0, tokens,
                                        "tokens", "'num_tokens'")))
      return failure();
  }
  return success();
}

LogicalResult LocalSlotsOp::verify() {
  auto emit = [&] { return emitOpError(); };
  if (failed(rankedOperandAtLeast(emit, getSlotTokens(), "slot_tokens", 1, "(slot shape)")))
    return failure();
  return checkIntRange(emit, "tokens_per_rank", static_cast<int64_t>(getTokensPerRank()), 1,
                       ShapedType::kDynamic);
}

namespace {
/// Rows `[N, d]` and expert counts `[P·E]` of an expert exchange over a group
/// of P ranks that divides the E experts; `moved` (`[M, d]`) is the other
/// side's rows. Returns E / P.
FailureOr<int64_t> verifyExchange(Operation *op, Value rows, Value counts, Value moved,
                                  StringRef mesh, ArrayRef<int16_t> axes) {
  auto emit = [&] { return op->emitOpError(); };
  FailureOr<RankedTensorType> rowsType = rankedOperand(emit, rows, "rows", 2, "[rows, width]");
  FailureOr<RankedTensorType> countsType =
      rankedOperand(emit, counts, "counts", 1, "[ranks x experts]");
  if (failed(rowsType) || failed(countsType))
    return failure();
  auto movedType = cast<RankedTensorType>(moved.getType());
  if (movedType.getRank() != 2 || movedType.getDimSize(1) != rowsType->getDimSize(1) ||
      movedType.getElementType() != rowsType->getElementType())
    return op->emitOpError("moves rows of ")
           << *rowsType << " into " << movedType << ": the width and type must match";
  FailureOr<int64_t> ranks = moec::moe::meshGroupSize(op, mesh, axes);
  if (failed(ranks))
    return failure();
  int64_t n = countsType->getDimSize(0);
  if (n % (*ranks * *ranks) != 0)
    return op->emitOpError("has ") << n << " expert counts, not a count per expert for each of the "
                                   << *ranks << " ranks, with the experts divided among them";
  return n / (*ranks * *ranks);
}

/// `chunk` of `chunks`: 0 <= chunk < chunks.
LogicalResult verifyChunk(Operation *op, int64_t chunk, int64_t chunks) {
  auto emit = [&] { return op->emitOpError(); };
  if (failed(checkIntRange(emit, "chunks", chunks, 1, ShapedType::kDynamic)))
    return failure();
  return checkIntRange(emit, "chunk", chunk, 0, chunks - 1);
}
} // namespace

LogicalResult ExpertExchangeOp::verify() {
  FailureOr<int64_t> local =
      verifyExchange(*this, getRows(), getCounts(), getReceived(), getMesh(), getMeshAxes());
  if (failed(local) || failed(verifyChunk(*this, getChunk(), getChunks())))
    return failure();
  auto sizes = cast<RankedTensorType>(getLocalSizes().getType());
  if (sizes.getRank() != 1 || sizes.getDimSize(0) != *local)
    return emitOpError("local_sizes must be [")
           << *local << "] (the rank's experts), not " << sizes;
  return success();
}

LogicalResult ExpertReturnOp::verify() {
  if (failed(verifyExchange(*this, getRows(), getCounts(), getResult(), getMesh(), getMeshAxes())))
    return failure();
  return verifyChunk(*this, getChunk(), getChunks());
}

namespace {
/// `whole` is `[E, C, d]` and `part` the block of E / P experts of a group of
/// P ranks.
LogicalResult verifySlotBlocks(Operation *op, Value whole, Value part, StringRef mesh,
                               ArrayRef<int16_t> axes) {
  auto wholeType = cast<RankedTensorType>(whole.getType());
  auto partType = cast<RankedTensorType>(part.getType());
  FailureOr<int64_t> ranks = moec::moe::meshGroupSize(op, mesh, axes);
  if (failed(ranks))
    return failure();
  if (wholeType.getRank() != 3 || partType.getRank() != 3 ||
      wholeType.getElementType() != partType.getElementType() ||
      wholeType.getDimSize(0) != partType.getDimSize(0) * *ranks ||
      wholeType.getShape().drop_front() != partType.getShape().drop_front())
    return op->emitOpError("moves ")
           << *ranks << " blocks of expert slots between " << wholeType << " and " << partType
           << ": [E, C, d] and [E / " << *ranks << ", C, d] of one type";
  return success();
}
} // namespace

LogicalResult SlotsToExpertsOp::verify() {
  return verifySlotBlocks(*this, getSlots(), getResult(), getMesh(), getMeshAxes());
}

LogicalResult SlotsFromExpertsOp::verify() {
  return verifySlotBlocks(*this, getResult(), getSlots(), getMesh(), getMeshAxes());
}
