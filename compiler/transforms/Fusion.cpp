//===- Fusion.cpp - the fusion passes and strategies ----------------------===//
//
// Each fusion is a legality rule read from op traits, given to the group
// formation of FusionGroups.cpp; a strategy is a list of fusions.
//
//===----------------------------------------------------------------------===//
#include "compiler/transforms/Passes.h"

#include "compiler/transforms/FusionGroups.h"

#include "dialects/moe/IR/MoEOps.h"

namespace moec {
#define GEN_PASS_DEF_MOEFUSEROUTERPASS
#define GEN_PASS_DEF_MOEFUSEELEMENTWISEPASS
#define GEN_PASS_DEF_MOEFUSEDISPATCHPASS
#define GEN_PASS_DEF_MOEFUSEOPTIMIZERPASS
#define GEN_PASS_DEF_MOEFUSIONPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

bool isElementwise(Operation *op) { return op->hasTrait<OpTrait::Elementwise>(); }

/// An elementwise op over router tensors: every operand and the result are
/// [T, E] f32.
bool isRouterElementwise(Operation *op) {
  if (!isElementwise(op) || op->getNumResults() != 1)
    return false;
  auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  return type && type.getRank() == 2 && type.getElementType().isF32() &&
         llvm::all_of(op->getOperandTypes(), [&](Type t) { return t == type; });
}

/// Router fusion: TokenRows ops, and the router-tensor sums between them,
/// over the same tokens.
unsigned fuseRouter(func::FuncOp func) {
  auto canStart = [](Operation *op) { return op->hasTrait<TokenRows>(); };
  auto canJoin = [](Operation *op, Operation *anchor) {
    // A sum joins with the router op whose rows it reads ([T, E], not the
    // [T, d] hidden states the router's input gradient adds up).
    if (isRouterElementwise(op))
      return llvm::is_contained(anchor->getResultTypes(), op->getResult(0).getType());
    return op->hasTrait<TokenRows>() && tokenRowCount(op) == tokenRowCount(anchor);
  };
  return formFusionGroups(func.getBody().front(), {FusionKind::router, canStart, canJoin});
}

/// Elementwise fusion: Elementwise ops with results of one type.
unsigned fuseElementwise(func::FuncOp func) {
  auto canJoin = [](Operation *op, Operation *anchor) {
    return isElementwise(op) && op->getResultTypes() == anchor->getResultTypes();
  };
  return formFusionGroups(func.getBody().front(),
                          {FusionKind::elementwise, isElementwise, canJoin});
}

/// Dispatch fusion: a gather whose one reader loads its rows through the
/// index (its GEMM's operand load), so the gathered rows never reach memory.
unsigned fuseDispatch(func::FuncOp func) {
  auto isGatherForLoad = [](Operation *op) {
    if (!op->hasTrait<RowGather>() || !op->getResult(0).hasOneUse())
      return false;
    OpOperand &use = *op->getResult(0).use_begin();
    return use.getOwner()->hasTrait<GatheredInput>() && use.getOperandNumber() == 0;
  };
  auto canJoin = [&](Operation *op, Operation *anchor) {
    return isGatherForLoad(anchor) && op->hasTrait<GatheredInput>() &&
           op->getOperand(0) == anchor->getResult(0);
  };
  return formFusionGroups(func.getBody().front(), {FusionKind::dispatch, isGatherForLoad, canJoin});
}

/// Optimizer fusion: the independent updates of every parameter (siblings:
/// they read the same step, learning rate and clip scale), at most 64 to a
/// kernel so that its parameters stay within CUDA's 4 KiB.
unsigned fuseOptimizer(func::FuncOp func) {
  auto isUpdate = [](Operation *op) { return op->hasTrait<ParameterUpdate>(); };
  auto canJoin = [&](Operation *op, Operation *anchor) {
    return isUpdate(op) && op->getName() == anchor->getName();
  };
  FusionRule rule{FusionKind::optimizer, isUpdate, canJoin};
  rule.siblings = true;
  rule.maxMembers = 64;
  return formFusionGroups(func.getBody().front(), rule);
}

struct MoEFuseRouterPass : impl::MoEFuseRouterPassBase<MoEFuseRouterPass> {
  void runOnOperation() override { fuseRouter(getOperation()); }
};

struct MoEFuseElementwisePass : impl::MoEFuseElementwisePassBase<MoEFuseElementwisePass> {
  void runOnOperation() override { fuseElementwise(getOperation()); }
};

struct MoEFuseDispatchPass : impl::MoEFuseDispatchPassBase<MoEFuseDispatchPass> {
  void runOnOperation() override { fuseDispatch(getOperation()); }
};

struct MoEFuseOptimizerPass : impl::MoEFuseOptimizerPassBase<MoEFuseOptimizerPass> {
  void runOnOperation() override { fuseOptimizer(getOperation()); }
};

struct MoEFusionPass : impl::MoEFusionPassBase<MoEFusionPass> {
  using MoEFusionPassBase::MoEFusionPassBase;
  void runOnOperation() override {
    if (strategy == FusionStrategy::none)
      return;
    if (strategy != FusionStrategy::dispatch)
      fuseRouter(getOperation());
    if (strategy != FusionStrategy::router)
      fuseDispatch(getOperation());
    if (strategy != FusionStrategy::all)
      return;
    fuseElementwise(getOperation());
    fuseOptimizer(getOperation());
  }
};
} // namespace
} // namespace moec
