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
    if (ep != 1) {
      module.emitError("moe-shard-data: expert parallelism (ep=")
          << static_cast<int64_t>(ep) << ") is not built yet; shard with dp only (ep=1)";
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
      if (!func.isExternal() && readsTokens(func) && failed(shard(func)))
        return signalPassFailure();
  }

private:
  int64_t ranks() const { return dp * ep; }
  LogicalResult shard(func::FuncOp func);
  /// Replaces every use of `value` but the new op's by `op(value)`.
  void replaceWith(Value value, Operation *op) { value.replaceAllUsesExcept(op->getResult(0), op); }
  mesh::AllReduceOp allReduce(OpBuilder &b, Value value, mesh::ReductionKind kind);
  Value allGather(OpBuilder &b, Value value);
  SmallVector<mesh::MeshAxis> axes() const { return {0, 1}; }
};

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

LogicalResult MoEShardDataPass::shard(func::FuncOp func) {
  SmallVector<Operation *> ops;
  for (Operation &op : func.getBody().front().without_terminator())
    ops.push_back(&op);
  OpBuilder b(func.getContext());
  for (Operation *op : ops) {
    if (op->hasTrait<BatchCoupled>() && ranks() > 1)
      return op->emitOpError("depends on the whole batch (capacity slots taken in batch "
                             "order, experts choosing among all tokens, or router noise "
                             "drawn by token position), which a rank holding 1/")
             << ranks()
             << " of it cannot compute; data parallelism (--mesh dp=" << static_cast<int64_t>(dp)
             << ") does not support it yet";
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
    if (auto stats = dyn_cast<RoutingStatsOp>(op)) {
      allReduce(b, stats.getExpertTokens(), mesh::ReductionKind::Sum);
      allReduce(b, stats.getDroppedFraction(), mesh::ReductionKind::Average);
    }
  }
  return success();
}

} // namespace
} // namespace moec
