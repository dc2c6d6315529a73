//===- Fusion.cpp - the fusion passes and strategies ----------------------===//
//
// Each fusion is a legality rule read from op traits, given to the group
// formation of FusionGroups.cpp; a strategy is a list of fusions.
//
//===----------------------------------------------------------------------===//
#include "compiler/transforms/Passes.h"

#include "compiler/transforms/FusionGroups.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace moec {
#define GEN_PASS_DEF_MOEFUSEROUTERPASS
#define GEN_PASS_DEF_MOEFUSEELEMENTWISEPASS
#define GEN_PASS_DEF_MOEFUSEDISPATCHPASS
#define GEN_PASS_DEF_MOEFUSEEXPERTPASS
#define GEN_PASS_DEF_MOEFUSEOPTIMIZERPASS
#define GEN_PASS_DEF_MOEFUSENORMPASS
#define GEN_PASS_DEF_MOEFUSELMHEADPASS
#define GEN_PASS_DEF_MOEFUSEROPEPASS
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

/// The ops of `func` with trait `Trait` that are in no group yet, in order
/// (collected first: fusing them moves ops).
template <template <typename> class Trait>
SmallVector<Operation *> opsWithTrait(func::FuncOp func) {
  SmallVector<Operation *> ops;
  func.walk([&](Operation *op) {
    if (op->hasTrait<Trait>() && !isa<FusedOp>(op->getParentOp()))
      ops.push_back(op);
  });
  return ops;
}

/// Token statistics (TokenStatistic: the balancing loss, the z-loss) join
/// the first router group whose results or inputs are all of their operands:
/// the group's kernel adds their terms up as it makes the rows.
void fuseTokenStatistics(func::FuncOp func) {
  for (Operation *statistic : opsWithTrait<TokenStatistic>(func)) {
    FusedOp group;
    for (Operation &op : *statistic->getBlock()) {
      auto candidate = dyn_cast<FusedOp>(op);
      if (&op == statistic)
        break;
      if (!candidate || candidate.getKind() != FusionKind::router)
        continue;
      auto isInput = [&](Value v) { return llvm::is_contained(candidate.getInputs(), v); };
      auto isResult = [&](Value v) { return v.getDefiningOp() == candidate; };
      if (llvm::all_of(statistic->getOperands(),
                       [&](Value v) { return isInput(v) || isResult(v); })) {
        group = candidate;
        break;
      }
    }
    if (!group)
      continue;
    // Right after the group (its operands are the group's inputs and
    // results), so that nothing between them moves.
    statistic->moveAfter(group);
    SmallVector<Operation *> members = unfuse(group);
    members.push_back(statistic);
    fuse(members, FusionKind::router);
  }
}

/// A statistic's gradient (TokenStatisticGradient: the balancing loss's)
/// joins the router group that is its result's only reader, over the same
/// tokens: the group's kernel makes the sums over tokens first and each
/// token's row where the group reads it, so the [T, E] rows are never
/// stored. (Its operands come before it, so before the group.)
void fuseTokenStatisticGradients(func::FuncOp func) {
  for (Operation *gradient : opsWithTrait<TokenStatisticGradient>(func)) {
    Value result = gradient->getResult(0);
    if (result.use_empty())
      continue;
    auto group = dyn_cast<FusedOp>(*result.getUsers().begin());
    // The group's rows are the gradient's: every TokenRows member runs over
    // its tokens.
    auto sameTokens = [&](Operation &member) {
      return !member.hasTrait<TokenRows>() || tokenRowCount(&member) == tokenRowCount(gradient);
    };
    if (!group || group.getKind() != FusionKind::router ||
        !llvm::all_of(result.getUsers(), [&](Operation *user) { return user == group; }) ||
        !llvm::all_of(group.getMembers(), sameTokens))
      continue;
    SmallVector<Operation *> members{gradient};
    llvm::append_range(members, unfuse(group));
    fuse(members, FusionKind::router);
  }
}

/// Router fusion: TokenRows ops, and the router-tensor sums between them,
/// over the same tokens; then the token statistics of their rows and the
/// statistics' gradients the groups read.
unsigned fuseRouter(func::FuncOp func) {
  auto canStart = [](Operation *op) { return op->hasTrait<TokenRows>(); };
  auto canJoin = [](Operation *op, Operation *anchor) {
    // A sum joins with the router op whose rows it reads ([T, E], not the
    // [T, d] hidden states the router's input gradient adds up).
    if (isRouterElementwise(op))
      return llvm::is_contained(anchor->getResultTypes(), op->getResult(0).getType());
    return op->hasTrait<TokenRows>() && tokenRowCount(op) == tokenRowCount(anchor);
  };
  unsigned formed =
      formFusionGroups(func.getBody().front(), {FusionKind::router, canStart, canJoin});
  fuseTokenStatistics(func);
  fuseTokenStatisticGradients(func);
  return formed;
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

/// Norm fusion, backward: a row normalization's input gradient whose one
/// reader is an elementwise op over tensors of its type (the residual
/// gradient's sum), and that op: the norm gradient's kernel applies it to
/// each element it makes, and the gradient itself is never stored.
bool feedsOneElementwise(Operation *op) {
  if (!op->hasTrait<RowNormalizationGradient>() || !op->getResult(0).hasOneUse())
    return false;
  Type type = op->getResult(0).getType();
  Operation *reader = *op->getResult(0).getUsers().begin();
  return isElementwise(reader) && reader->getNumResults() == 1 &&
         reader->getResult(0).getType() == type &&
         llvm::all_of(reader->getOperandTypes(), [&](Type t) { return t == type; });
}

unsigned fuseNorm(func::FuncOp func) {
  auto canStart = [](Operation *op) {
    return feedsOneRowNormalization(op) || feedsOneElementwise(op);
  };
  auto canJoin = [](Operation *op, Operation *anchor) {
    if (op->hasTrait<RowNormalization>())
      return feedsOneRowNormalization(anchor) && op->getOperand(0) == anchor->getResult(0);
    // A sum of two norm gradients joins the first one's group (one kernel
    // makes one norm gradient).
    if (!isElementwise(op))
      return false;
    auto gradient = llvm::find_if(op->getOperands(), [](Value v) {
      auto result = dyn_cast<OpResult>(v);
      return result && result.getResultNumber() == 0 && feedsOneElementwise(result.getOwner());
    });
    return gradient != op->operand_end() && (*gradient).getDefiningOp() == anchor;
  };
  return formFusionGroups(func.getBody().front(), {FusionKind::norm, canStart, canJoin});
}

/// LM head fusion: a dense product whose logits only LogitRows ops read
/// (the loss; in training also its gradient), those ops, and the gradient of
/// the product reading the logits' gradient: one kernel computes the logits
/// a chunk of rows at a time, so they never exist whole.

/// Whether `a` and `b` hold the same values: one value, or the same result
/// of two equivalent recomputable ops (a forward op and the copy that
/// `--moe-rematerialize` made of it for the backward pass).
bool sameValues(Value a, Value b) {
  if (a == b)
    return true;
  auto x = dyn_cast<OpResult>(a), y = dyn_cast<OpResult>(b);
  return x && y && x.getResultNumber() == y.getResultNumber() &&
         x.getOwner()->hasTrait<Recomputable>() &&
         OperationEquivalence::isEquivalentTo(x.getOwner(), y.getOwner(),
                                              OperationEquivalence::IgnoreLocations);
}

bool isLMHeadGradient(Operation *op, Operation *product, Value dlogits) {
  return op->hasTrait<DenseProductGradient>() &&
         sameValues(op->getOperand(0), product->getOperand(0)) &&
         op->getOperand(1) == product->getOperand(1) && op->getOperand(2) == dlogits &&
         samePrecision(op, product);
}

/// Whether `op` is a dense product whose f32 logits only LogitRows ops read
/// (as operand 0): one loss (a 0-d result) and, in training, one gradient
/// read only by the product's gradient. (A bias gradient would read the
/// logits' gradient whole: then only the loss, in evaluation, fuses.)
bool startsLMHead(Operation *op) {
  if (!op->hasTrait<DenseProduct>() || op->getNumResults() != 1)
    return false;
  Value logits = op->getResult(0);
  auto type = dyn_cast<RankedTensorType>(logits.getType());
  if (!type || !type.getElementType().isF32())
    return false;
  unsigned losses = 0, gradients = 0;
  for (OpOperand &use : logits.getUses()) {
    Operation *reader = use.getOwner();
    if (!reader->hasTrait<LogitRows>() || use.getOperandNumber() != 0 ||
        reader->getNumResults() != 1)
      return false;
    Value result = reader->getResult(0);
    if (cast<RankedTensorType>(result.getType()).getRank() == 0) {
      ++losses;
      continue;
    }
    ++gradients;
    if (!result.hasOneUse() || !isLMHeadGradient(*result.getUsers().begin(), op, result))
      return false;
  }
  return losses == 1 && gradients <= 1;
}

/// Whether an LM head group holds the whole pattern: neither the logits
/// nor their gradient leave it (a group cut short by a path outside it
/// would store them, and has no kernel).
bool isWholeLMHead(FusedOp fused) {
  for (Operation &member : fused.getMembers()) {
    bool logitsOrTheirGradient =
        member.hasTrait<DenseProduct>() ||
        (member.hasTrait<LogitRows>() &&
         cast<RankedTensorType>(member.getResult(0).getType()).getRank() > 0);
    if (logitsOrTheirGradient && fused.getOuterValue(member.getResult(0)))
      return false;
  }
  return true;
}

/// When the product of an LM head group reads the forward's input and its
/// gradient the backward's recomputed copy, both read the copy, which is
/// live where the group runs (at the start of the backward pass); the
/// forward's is then dead after its last forward reader, as
/// rematerialization meant.
void readRecomputedInput(FusedOp fused) {
  Operation *product = nullptr, *gradient = nullptr;
  for (Operation &member : fused.getMembers()) {
    if (member.hasTrait<DenseProduct>())
      product = &member;
    else if (member.hasTrait<DenseProductGradient>())
      gradient = &member;
  }
  if (!product || !gradient || product->getOperand(0) == gradient->getOperand(0))
    return;
  auto forward = cast<BlockArgument>(product->getOperand(0));
  product->setOperand(0, gradient->getOperand(0));
  if (!forward.use_empty())
    return;
  SmallVector<Value> inputs(fused.getInputs());
  Value outside = inputs[forward.getArgNumber()];
  inputs.erase(inputs.begin() + forward.getArgNumber());
  fused.getBody()->eraseArgument(forward.getArgNumber());
  OpBuilder builder(fused);
  auto rebuilt =
      builder.create<FusedOp>(fused.getLoc(), fused.getResultTypes(), inputs, fused.getKindAttr());
  rebuilt->setAttrs(fused->getAttrDictionary());
  rebuilt.getRegion().takeBody(fused.getRegion());
  fused->replaceAllUsesWith(rebuilt->getResults());
  fused->erase();
  // The forward's copy may have had no other reader.
  if (Operation *producer = outside.getDefiningOp(); producer && isOpTriviallyDead(producer))
    producer->erase();
}

unsigned fuseLMHead(func::FuncOp func) {
  auto canJoin = [](Operation *op, Operation *anchor) {
    if (op->hasTrait<LogitRows>())
      return startsLMHead(anchor) && op->getOperand(0) == anchor->getResult(0);
    return anchor->hasTrait<LogitRows>() && anchor->getNumResults() == 1 &&
           op->hasTrait<DenseProductGradient>() && op->getOperand(2) == anchor->getResult(0);
  };
  unsigned formed =
      formFusionGroups(func.getBody().front(), {FusionKind::lm_head, startsLMHead, canJoin});
  SmallVector<FusedOp> groups;
  func.walk([&](FusedOp fused) {
    if (fused.getKind() == FusionKind::lm_head)
      groups.push_back(fused);
  });
  for (FusedOp fused : groups) {
    if (isWholeLMHead(fused)) {
      readRecomputedInput(fused);
      continue;
    }
    unfuse(fused);
    --formed;
  }
  return formed;
}

/// Whether `a` and `b` (PositionRotation ops) rotate alike: one kind, the
/// same attributes, operands of one element type and the same B, S and D.
bool rotateAlike(Operation *a, Operation *b) {
  if (a->getName() != b->getName() || a->getAttrDictionary() != b->getAttrDictionary())
    return false;
  auto ta = cast<RankedTensorType>(a->getOperand(0).getType());
  auto tb = cast<RankedTensorType>(b->getOperand(0).getType());
  return ta.getRank() == 4 && tb.getRank() == 4 && ta.getElementType() == tb.getElementType() &&
         ta.getDimSize(0) == tb.getDimSize(0) && ta.getDimSize(1) == tb.getDimSize(1) &&
         ta.getDimSize(3) == tb.getDimSize(3);
}

/// Whether `a` and `b` are siblings: one op reads both their results (the
/// queries' and keys' rotations, read by the attention), or both their
/// operands come from one op (the gradients the attention's gradient makes).
bool rotationSiblings(Operation *a, Operation *b) {
  Operation *producer = a->getOperand(0).getDefiningOp();
  if (producer && producer == b->getOperand(0).getDefiningOp())
    return true;
  for (Operation *user : a->getResult(0).getUsers())
    if (llvm::is_contained(b->getResult(0).getUsers(), user))
      return true;
  return false;
}

/// RoPE fusion: sibling rotations (PositionRotation) that rotate alike, the
/// queries' and the keys', form one group: its kernel computes each
/// position's and pair's cosine and sine once for both.
unsigned fuseRotations(func::FuncOp func) {
  unsigned formed = 0;
  SmallVector<Operation *> rotations = opsWithTrait<PositionRotation>(func);
  llvm::SmallPtrSet<Operation *, 16> taken;
  for (auto [n, first] : llvm::enumerate(rotations)) {
    if (taken.contains(first))
      continue;
    SmallVector<Operation *> members{first};
    for (Operation *other : ArrayRef(rotations).drop_front(n + 1)) {
      // `other` after `first`, its operand made before `first`: neither
      // depends on the other.
      if (taken.contains(other)) // fused already: erased
        continue;
      Operation *producer = other->getOperand(0).getDefiningOp();
      if (other->getBlock() != first->getBlock() ||
          (producer && producer->getBlock() == first->getBlock() &&
           !producer->isBeforeInBlock(first)) ||
          !rotateAlike(first, other) || !rotationSiblings(first, other))
        continue;
      members.push_back(other);
      taken.insert(other);
    }
    if (members.size() < 2)
      continue;
    fuse(members, FusionKind::rope);
    ++formed;
  }
  return formed;
}

/// The pointers a kernel takes within CUDA's 4 KiB of parameters.
constexpr unsigned kMaxKernelPointers = 4096 / sizeof(void *);

/// The pointers of `fused`'s kernel: its inputs, its results and the
/// workspace.
unsigned kernelPointers(FusedOp fused) {
  return fused->getNumOperands() + fused->getNumResults() + 1;
}

/// The gradient norm (GradientNorm) and the scale computed from it
/// (GradientScale) join the first group of updates that reads the scale,
/// whose kernel then takes the norm, then the scale, then the updates; or,
/// when all of them would not fit a kernel's parameters, form a group of
/// their own (the norm's partial sums and its total with the scale: two
/// launches, not three).
void fuseGradientScale(func::FuncOp func) {
  for (Operation *scale : opsWithTrait<GradientScale>(func)) {
    Operation *norm = scale->getOperand(0).getDefiningOp();
    if (!norm || !norm->hasTrait<GradientNorm>() || norm->getBlock() != scale->getBlock())
      continue;
    FusedOp first;
    for (Operation *user : scale->getResult(0).getUsers()) {
      auto group = dyn_cast<FusedOp>(user);
      if (group && group.getKind() == FusionKind::optimizer &&
          group->getBlock() == scale->getBlock() && (!first || group->isBeforeInBlock(first)))
        first = group;
    }
    if (first) {
      SmallVector<Operation *> updates = unfuse(first);
      SmallVector<Operation *> members{norm, scale};
      members.append(updates);
      FusedOp merged = fuse(members, FusionKind::optimizer);
      if (kernelPointers(merged) <= kMaxKernelPointers)
        continue;
      // Too many pointers: the updates as they were, the norm and scale apart.
      SmallVector<Operation *> apart = unfuse(merged);
      fuse(ArrayRef(apart).drop_front(2), FusionKind::optimizer);
      norm = apart[0];
      scale = apart[1];
    }
    fuse({norm, scale}, FusionKind::optimizer);
  }
}

/// Optimizer fusion: the independent updates of every parameter (siblings:
/// they read the same step, learning rate and clip scale), at most 64 to a
/// kernel so that its parameters stay within CUDA's 4 KiB; then the
/// gradient norm and the clip scale before the first of them.
unsigned fuseOptimizer(func::FuncOp func) {
  auto isUpdate = [](Operation *op) { return op->hasTrait<ParameterUpdate>(); };
  auto canJoin = [&](Operation *op, Operation *anchor) {
    return isUpdate(op) && op->getName() == anchor->getName();
  };
  FusionRule rule{FusionKind::optimizer, isUpdate, canJoin};
  rule.siblings = true;
  rule.maxMembers = 64;
  unsigned formed = formFusionGroups(func.getBody().front(), rule);
  fuseGradientScale(func);
  return formed;
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

struct MoEFuseLMHeadPass : impl::MoEFuseLMHeadPassBase<MoEFuseLMHeadPass> {
  void runOnOperation() override { fuseLMHead(getOperation()); }
};

struct MoEFuseRoPEPass : impl::MoEFuseRoPEPassBase<MoEFuseRoPEPass> {
  void runOnOperation() override { fuseRotations(getOperation()); }
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
    fuseRotations(getOperation());
    if (!libraryGemms)
      fuseLMHead(getOperation());
    fuseOptimizer(getOperation());
  }
};
} // namespace
} // namespace moec
