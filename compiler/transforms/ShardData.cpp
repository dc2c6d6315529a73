//===- ShardData.cpp - data parallelism over a device mesh ----------------===//
//
// Every rank runs the same forward function on its share of the batch; the
// few values that depend on the whole batch are made whole with upstream
// mesh collectives, so that each rank's losses and metrics are the batch's.
//
//===----------------------------------------------------------------------===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/MoETraits.h"

#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/Builders.h"

namespace moec {
#define GEN_PASS_DEF_MOESHARDDATAPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

constexpr StringLiteral kMeshName = "mesh";

/// Whether `func` is a forward function: it reads a batch of tokens.
bool readsTokens(func::FuncOp func) {
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    if (auto name = func.getArgAttrOfType<StringAttr>(i, MoEDialect::kInputAttrName))
      if (name.getValue() == "tokens")
        return true;
  return false;
}

class MoEShardDataPass : public impl::MoEShardDataPassBase<MoEShardDataPass> {
public:
  using MoEShardDataPassBase::MoEShardDataPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (dp < 1 || ep < 1) {
      module.emitError("moe-shard-data: the mesh needs dp >= 1 and ep >= 1, not dp=")
          << static_cast<int64_t>(dp) << ", ep=" << static_cast<int64_t>(ep);
      return signalPassFailure();
    }
    if (module.lookupSymbol(kMeshName)) {
      module.emitError("moe-shard-data: the module already has a symbol '@")
          << kMeshName << "'; it is sharded once";
      return signalPassFailure();
    }
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToStart(module.getBody());
    b.create<mesh::MeshOp>(module.getLoc(), kMeshName, ArrayRef<int64_t>{dp, ep});
    module->setAttr(MoEDialect::kMeshAxesAttrName, b.getStrArrayAttr({"dp", "ep"}));
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal() && readsTokens(func)) {
        if (failed(shard(func)))
          return signalPassFailure();
        // Expert weights split: the arguments' types changed.
        func.setFunctionType(FunctionType::get(
            func.getContext(), func.getBody().front().getArgumentTypes(), func.getResultTypes()));
      }
  }

private:
  int64_t ranks() const { return dp * ep; }
  LogicalResult shard(func::FuncOp func);
  /// Replaces every use of `value` but the new op's by `op(value)`.
  void replaceWith(Value value, Operation *op) { value.replaceAllUsesExcept(op->getResult(0), op); }
  mesh::AllReduceOp allReduce(OpBuilder &b, Value value, mesh::ReductionKind kind);
  Value allGather(OpBuilder &b, Value value);
  SmallVector<mesh::MeshAxis> axes() const { return {0, 1}; }
  /// Makes a BatchCoupled op compute on the whole batch, on every rank.
  LogicalResult runOnWholeBatch(OpBuilder &b, Operation *op);
  /// Expert parallelism: `ffn`'s experts are split over the ep axis, and its
  /// rows travel to their experts' ranks and back.
  LogicalResult shardExperts(OpBuilder &b, func::FuncOp func, GroupedFFNOp ffn);
};

/// A BatchCoupled op reads the whole batch (its token-row operands
/// gathered): every rank computes the 1-rank result, bit for bit, and keeps
/// its share of it. Router noise (per token rows) is sliced back to the
/// rank's rows; expert slots (capacity drops, expert choice), which hold
/// tokens of the whole batch, keep the rank's tokens (moe.local_slots).
/// Routing ops are cheap next to the experts; the gathers move `[T, k]`
/// selections or `[T, E]` scores, and the router input for jitter.
LogicalResult MoEShardDataPass::runOnWholeBatch(OpBuilder &b, Operation *op) {
  Value rows;
  bool noise = isa<GumbelSoftmaxOp, RouterJitterOp, SparseMixerRouteOp>(op);
  if (auto mixer = dyn_cast<SparseMixerRouteOp>(op); mixer && !mixer.getSeed())
    return success(); // evaluation picks: each token's own row decides them
  if (auto slots = dyn_cast<AssignSlotsOp>(op))
    rows = slots.getWeights();
  else if (auto choice = dyn_cast<ExpertChoiceRouteOp>(op))
    rows = choice.getScores();
  else if (noise)
    rows = op->getOperand(0);
  else
    return op->emitOpError("depends on the whole batch, and data parallelism (--mesh dp=")
           << static_cast<int64_t>(dp) << ") does not know how to give it the whole batch";
  const int64_t tokens = cast<RankedTensorType>(rows.getType()).getDimSize(0);
  b.setInsertionPoint(op);
  for (OpOperand &operand : op->getOpOperands()) {
    auto type = dyn_cast<RankedTensorType>(operand.get().getType());
    if (!type || type.getRank() == 0)
      continue; // a seed, a temperature: the same on every rank
    if (type.getDimSize(0) != tokens)
      return op->emitOpError("operand ")
             << operand.getOperandNumber() << " has " << type.getDimSize(0)
             << " rows, not one per token (" << tokens << "); it cannot be gathered";
    operand.set(allGather(b, operand.get()));
  }
  b.setInsertionPointAfter(op);
  if (noise) {
    // Noise drawn for the whole batch, as one rank draws it; this rank's rows
    // of each result.
    for (Value result : op->getResults()) {
      auto local = cast<RankedTensorType>(result.getType());
      SmallVector<int64_t> shape(local.getShape());
      shape[0] *= ranks();
      result.setType(local.clone(shape));
      auto slice =
          b.create<mesh::AllSliceOp>(op->getLoc(), local, kMeshName, axes(), result, APInt(64, 0));
      replaceWith(result, slice);
    }
    return success();
  }
  Value slotTokens = isa<AssignSlotsOp>(op) ? cast<AssignSlotsOp>(op).getSlotTokens()
                                            : cast<ExpertChoiceRouteOp>(op).getSlotTokens();
  auto mine = b.create<LocalSlotsOp>(op->getLoc(), slotTokens.getType(), slotTokens, kMeshName,
                                     axes(), static_cast<uint64_t>(tokens));
  replaceWith(slotTokens, mine);
  return success();
}

mesh::AllReduceOp MoEShardDataPass::allReduce(OpBuilder &b, Value value, mesh::ReductionKind kind) {
  b.setInsertionPointAfterValue(value);
  auto reduce = b.create<mesh::AllReduceOp>(value.getLoc(), value, kMeshName, axes(), kind);
  replaceWith(value, reduce);
  return reduce;
}

/// The batch's rows of `value` ([tokens, ...]), rank after rank.
Value MoEShardDataPass::allGather(OpBuilder &b, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape[0] *= ranks();
  return b.create<mesh::AllGatherOp>(value.getLoc(), type.clone(shape), kMeshName, axes(), value,
                                     APInt(64, 0));
}

LogicalResult MoEShardDataPass::shardExperts(OpBuilder &b, func::FuncOp func, GroupedFFNOp ffn) {
  const SmallVector<mesh::MeshAxis> epAxis = {1};
  Value groupSizes = ffn.getGroupSizes();
  // The rank's block of experts: [E / ep, ...] of each weight.
  SmallVector<Value> weights = {ffn.getW1(), ffn.getW2()};
  if (ffn.getW3())
    weights.push_back(ffn.getW3());
  for (Value weight : weights) {
    auto arg = dyn_cast<BlockArgument>(weight);
    if (!arg || !func.getArgAttr(arg.getArgNumber(), MoEDialect::kParamAttrName))
      return ffn.emitOpError("reads expert weights that are not parameters of the function; "
                             "expert parallelism splits parameters");
    for (Operation *user : arg.getUsers())
      if (!isa<GroupedFFNOp>(user))
        return user->emitOpError("reads the expert weights '")
               << func.getArgAttr(arg.getArgNumber(), MoEDialect::kParamAttrName)
               << "', which expert parallelism splits over the ranks; only moe.grouped_ffn "
                  "may read them";
    auto type = cast<RankedTensorType>(arg.getType());
    if (func.getArgAttr(arg.getArgNumber(), MoEDialect::kShardAxesAttrName))
      continue; // another FFN of the function already split them
    if (type.getDimSize(0) % ep != 0)
      return ffn.emitOpError("has ")
             << type.getDimSize(0) << " experts, which the " << static_cast<int64_t>(ep)
             << " ranks of the ep axis do not divide";
    SmallVector<int64_t> shape(type.getShape());
    shape[0] /= ep;
    arg.setType(type.clone(shape));
    func.setArgAttr(arg.getArgNumber(), MoEDialect::kShardAxesAttrName,
                    b.getDenseI16ArrayAttr(epAxis));
  }
  if (!groupSizes) {
    // Capacity slots [E, C, d], each filled on the one rank that holds its
    // token (moe.local_slots): every rank receives its experts' slots with
    // all ranks' rows, runs them, and every rank gets every output back.
    auto slots = cast<RankedTensorType>(ffn.getInput().getType());
    if (slots.getRank() != 3)
      return ffn.emitOpError("has neither group sizes nor [experts, capacity, width] slots");
    auto mine = slots.clone({slots.getDimSize(0) / ep, slots.getDimSize(1), slots.getDimSize(2)});
    auto meshRef = FlatSymbolRefAttr::get(b.getContext(), kMeshName);
    auto axesAttr = b.getDenseI16ArrayAttr(epAxis);
    b.setInsertionPoint(ffn);
    auto there = b.create<SlotsToExpertsOp>(ffn.getLoc(), mine, ffn.getInput(), meshRef, axesAttr);
    ffn.getInputMutable().assign(there);
    Value result = ffn.getResult();
    result.setType(mine);
    b.setInsertionPointAfter(ffn);
    auto back = b.create<SlotsFromExpertsOp>(ffn.getLoc(), slots, result, meshRef, axesAttr);
    replaceWith(result, back);
    return success();
  }
  // Every rank of the ep group learns how many rows each rank has for each
  // expert, sends its rows to their experts' ranks, runs its experts on
  // what it receives and sends the results back.
  b.setInsertionPoint(ffn);
  auto sizesType = cast<RankedTensorType>(groupSizes.getType());
  int64_t experts = sizesType.getDimSize(0);
  auto counts = b.create<mesh::AllGatherOp>(ffn.getLoc(), sizesType.clone({experts * ep}),
                                            kMeshName, epAxis, groupSizes, APInt(64, 0));
  auto rowsType = cast<RankedTensorType>(ffn.getInput().getType());
  auto receivedType = rowsType.clone({rowsType.getDimSize(0) * ep, rowsType.getDimSize(1)});
  auto exchange = b.create<ExpertExchangeOp>(
      ffn.getLoc(), TypeRange{receivedType, sizesType.clone({experts / ep})}, ffn.getInput(),
      counts, FlatSymbolRefAttr::get(b.getContext(), kMeshName), b.getDenseI16ArrayAttr(epAxis),
      /*chunk=*/IntegerAttr(), /*chunks=*/IntegerAttr());
  ffn.getInputMutable().assign(exchange.getReceived());
  ffn.getGroupSizesMutable().assign(exchange.getLocalSizes());
  Value result = ffn.getResult();
  result.setType(receivedType);
  b.setInsertionPointAfter(ffn);
  auto back = b.create<ExpertReturnOp>(ffn.getLoc(), rowsType, result, counts,
                                       FlatSymbolRefAttr::get(b.getContext(), kMeshName),
                                       b.getDenseI16ArrayAttr(epAxis), /*chunk=*/IntegerAttr(),
                                       /*chunks=*/IntegerAttr());
  replaceWith(result, back);
  return success();
}

LogicalResult MoEShardDataPass::shard(func::FuncOp func) {
  SmallVector<Operation *> ops;
  for (Operation &op : func.getBody().front().without_terminator())
    ops.push_back(&op);
  OpBuilder b(func.getContext());
  for (Operation *op : ops) {
    if (op->hasTrait<BatchCoupled>() && ranks() > 1) {
      if (failed(runOnWholeBatch(b, op)))
        return failure();
      continue;
    }
    if (auto balance = dyn_cast<LoadBalancingLossOp>(op)) {
      if (balance.getKind() == LoadBalancing::sequence) {
        allReduce(b, balance.getLoss(), mesh::ReductionKind::Average);
        continue;
      }
      // E · Σ_e f_e · P_e: both statistics over the whole batch.
      b.setInsertionPoint(balance);
      Value scores = allGather(b, balance.getScores());
      Value indices = allGather(b, balance.getIndices());
      balance.getScoresMutable().assign(scores);
      balance.getIndicesMutable().assign(indices);
      continue;
    }
    if (op->hasTrait<BatchMean>()) {
      allReduce(b, op->getResult(0), mesh::ReductionKind::Average);
      continue;
    }
    if (auto dispatch = dyn_cast<DispatchOp>(op);
        dispatch && ep > 1 && llvm::none_of(dispatch->getUsers(), [](Operation *user) {
          return isa<GroupedFFNOp>(user);
        }))
      // Only moe.grouped_ffn experts are partitioned; others (LoRA experts,
      // gpt-oss's) run where their tokens are, with every expert's weights.
      dispatch.emitWarning("expert parallelism partitions the experts of moe.grouped_ffn only; "
                           "these experts stay replicated on every rank of the ep axis");
    if (auto ffn = dyn_cast<GroupedFFNOp>(op); ffn && ep > 1) {
      if (failed(shardExperts(b, func, ffn)))
        return failure();
      continue;
    }
    if (auto stats = dyn_cast<RoutingStatsOp>(op)) {
      allReduce(b, stats.getExpertTokens(), mesh::ReductionKind::Sum);
      allReduce(b, stats.getDroppedFraction(), mesh::ReductionKind::Average);
    }
  }
  return success();
}

} // namespace
} // namespace moec
