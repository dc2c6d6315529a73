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
#define GEN_PASS_DEF_MOEFUSEEXPERTPASS
#define GEN_PASS_DEF_MOEFUSEOPTIMIZERPASS
#define GEN_PASS_DEF_MOEFUSENORMPASS
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
bool isGatherForLoad(Operation *op) {
  if (!op->hasTrait<RowGather>() || !op->getResult(0).hasOneUse())
    return false;
  OpOperand &use = *op->getResult(0).use_begin();
  return use.getOwner()->hasTrait<GatheredInput>() && use.getOperandNumber() == 0;
}

bool joinsDispatch(Operation *op, Operation *anchor) {
  return isGatherForLoad(anchor) && op->hasTrait<GatheredInput>() &&
         op->getOperand(0) == anchor->getResult(0);
}

/// Expert fusion, forward: an op computing pre-activations (PreActivations)
/// that one ActivatedInput op reads as operand 0 (any other readers are the
/// backward's), which computes their activation in its epilogue, and that
/// op.
bool producesActivatedInput(Operation *op) {
  return op->hasTrait<PreActivations>() && op->getNumResults() == 1 &&
         llvm::count_if(op->getResult(0).getUses(), [](OpOperand &use) {
           return use.getOwner()->hasTrait<ActivatedInput>() && use.getOperandNumber() == 0;
         }) == 1;
}

/// Members of an expert group share one kernel and so one precision.
bool samePrecision(Operation *a, Operation *b) {
  return a->getAttr(MoEDialect::kPrecisionAttrName) == b->getAttr(MoEDialect::kPrecisionAttrName);
}

/// Expert fusion, backward: an ActivationGradient op (the derivative in its
/// GEMM's epilogue) and the only reader of the gradient it computes.
bool joinsExpert(Operation *op, Operation *anchor) {
  if (!samePrecision(op, anchor))
    return false;
  if (op->hasTrait<ActivatedInput>())
    return producesActivatedInput(anchor) && op->getOperand(0) == anchor->getResult(0);
  if (op->hasTrait<HiddenGradientInput>())
    return anchor->hasTrait<ActivationGradient>() && anchor->getResult(0).hasOneUse() &&
           llvm::is_contained(op->getOperands(), anchor->getResult(0));
  return false;
}

bool startsExpert(Operation *op) {
  return producesActivatedInput(op) || op->hasTrait<ActivationGradient>();
}

FusionKind expertOrDispatch(ArrayRef<Operation *> members) {
  bool expert = llvm::any_of(members, [](Operation *op) {
    return op->hasTrait<ActivatedInput>() || op->hasTrait<ActivationGradient>();
  });
  return expert ? FusionKind::expert : FusionKind::dispatch;
}

/// Dispatch and expert fusion, either or both: together, a dispatch, the up
/// projection loading its rows and the down projection applying the
/// activation form one group (kind expert).
unsigned fuseExperts(func::FuncOp func, bool dispatch, bool expert) {
  auto canStart = [&](Operation *op) {
    return (dispatch && isGatherForLoad(op)) || (expert && startsExpert(op));
  };
  auto canJoin = [&](Operation *op, Operation *anchor) {
    return (dispatch && joinsDispatch(op, anchor)) || (expert && joinsExpert(op, anchor));
  };
  FusionRule rule{expert ? FusionKind::expert : FusionKind::dispatch, canStart, canJoin};
  if (dispatch && expert)
    rule.kindOf = expertOrDispatch;
  return formFusionGroups(func.getBody().front(), rule);
}

/// Norm fusion: an elementwise op whose result one row normalization reads
/// as its input (the residual sum and the next norm), and that norm: one
/// block per row computes the row's elements and normalizes them, and the
/// sum is read from memory once instead of twice (and not at all when
/// nothing else reads it).
bool feedsOneRowNormalization(Operation *op) {
  if (!isElementwise(op) || op->getNumResults() != 1)
    return false;
  return llvm::count_if(op->getResult(0).getUses(), [](OpOperand &use) {
           return use.getOwner()->hasTrait<RowNormalization>() && use.getOperandNumber() == 0;
         }) == 1;
}

unsigned fuseNorm(func::FuncOp func) {
  auto canJoin = [](Operation *op, Operation *anchor) {
    return op->hasTrait<RowNormalization>() && feedsOneRowNormalization(anchor) &&
           op->getOperand(0) == anchor->getResult(0);
  };
  return formFusionGroups(func.getBody().front(),
                          {FusionKind::norm, feedsOneRowNormalization, canJoin});
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
  void runOnOperation() override { fuseExperts(getOperation(), /*dispatch=*/true, false); }
};

struct MoEFuseExpertPass : impl::MoEFuseExpertPassBase<MoEFuseExpertPass> {
  void runOnOperation() override { fuseExperts(getOperation(), false, /*expert=*/true); }
};

struct MoEFuseNormPass : impl::MoEFuseNormPassBase<MoEFuseNormPass> {
  void runOnOperation() override { fuseNorm(getOperation()); }
};

struct MoEFuseOptimizerPass : impl::MoEFuseOptimizerPassBase<MoEFuseOptimizerPass> {
  void runOnOperation() override { fuseOptimizer(getOperation()); }
};

struct MoEFusionPass : impl::MoEFusionPassBase<MoEFusionPass> {
  using MoEFusionPassBase::MoEFusionPassBase;
  void runOnOperation() override {
    using S = FusionStrategy;
    auto in = [&](std::initializer_list<S> strategies) {
      return llvm::is_contained(strategies, strategy);
    };
    if (in({S::router, S::moe, S::all}))
      fuseRouter(getOperation());
    bool dispatch = in({S::dispatch, S::moe, S::all}), expert = in({S::expert, S::moe, S::all});
    if (dispatch || expert)
      fuseExperts(getOperation(), dispatch, expert);
    if (strategy != S::all)
      return;
    fuseNorm(getOperation()); // before elementwise chains take the sums
    fuseElementwise(getOperation());
    fuseOptimizer(getOperation());
  }
};
} // namespace
} // namespace moec
