//===- Rematerialize.cpp - cheap forward ops computed again for backward -===//
//
// Training keeps every forward activation the backward pass reads, from the
// forward op that writes it until its gradient is computed: all layers'
// activations are live at once at the start of the backward pass. An op
// that is cheap to compute again (a gather, a norm) whose inputs are live
// anyway is better computed twice: its result then lives in the forward and
// again in the backward, not in between.
//
//===----------------------------------------------------------------------===//
#include "compiler/transforms/Passes.h"

#include "compiler/transforms/FunctionArguments.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <limits>

namespace moec {
#define GEN_PASS_DEF_MOEREMATERIALIZEPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

/// `op` and the views of its results (and of those views), in block order.
SmallVector<Operation *> withViews(Operation *op) {
  SmallVector<Operation *> chain = {op};
  for (size_t i = 0; i < chain.size(); ++i)
    for (Value result : chain[i]->getResults())
      for (Operation *user : result.getUsers())
        if (isa<ViewLikeOpInterface>(user) && !llvm::is_contained(chain, user))
          chain.push_back(user);
  llvm::sort(chain.begin() + 1, chain.end(),
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return chain;
}

class MoERematerializePass : public impl::MoERematerializePassBase<MoERematerializePass> {
public:
  using MoERematerializePassBase::MoERematerializePassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal() || !func.getBody().hasOneBlock())
      return;
    Block &block = func.getBody().front();
    // Last first: a recomputed op's clone counts as a backward user of
    // what it reads, so the ops feeding it can be recomputed for it too.
    SmallVector<Operation *> candidates;
    for (Operation &op : block)
      if (op.hasTrait<Recomputable>())
        candidates.push_back(&op);
    for (Operation *op : llvm::reverse(candidates)) {
      analyse(block);
      rematerialize(op);
    }
  }

private:
  /// Positions, the last op that reads each value's bytes (through views
  /// too) and the position where the most bytes are live.
  void analyse(Block &block) {
    position.clear();
    lastUse.clear();
    for (Operation &op : block)
      position[&op] = position.size();
    for (Operation &op : block)
      for (Value operand : op.getOperands())
        for (Value value = operand;;) {
          int64_t &last = lastUse[value];
          last = std::max(last, position[&op]);
          auto view = value.getDefiningOp<ViewLikeOpInterface>();
          if (!view)
            break;
          value = view.getViewSource();
        }
    // Bytes live at each position: a result from its op to its last use.
    std::vector<int64_t> delta(position.size() + 1, 0);
    for (Operation &op : block) {
      if (isa<ViewLikeOpInterface>(op))
        continue; // a view's bytes are its source's
      for (OpResult result : op.getResults()) {
        auto type = dyn_cast<RankedTensorType>(result.getType());
        if (!type || !type.hasStaticShape())
          continue;
        // An update written over a parameter or state (moe-plan-memory)
        // takes no bytes.
        if (BlockArgument argument = overwritableArgument(result);
            argument && lastUse.lookup(argument) == position[&op])
          continue;
        int64_t bytes = type.getNumElements() * type.getElementTypeBitWidth() / 8;
        int64_t start = position[&op], end = std::max(start, lastUse.lookup(result));
        delta[start] += bytes;
        delta[end + 1] -= bytes;
      }
    }
    int64_t live = 0, most = -1;
    for (size_t i = 0; i < position.size(); ++i) {
      live += delta[i];
      if (live > most) {
        most = live;
        peak = i;
      }
    }
  }

  /// Whether `value` is still held at `where`: a function argument, or read
  /// there or later.
  bool liveAt(Value value, int64_t where) {
    if (isa<BlockArgument>(value))
      return true;
    auto it = lastUse.find(value);
    return it != lastUse.end() && it->second >= where;
  }

  /// Backward users: the ops autodiff built (which it cannot differentiate)
  /// and the clones this pass made.
  bool isBackward(Operation *user) const {
    return !isa<GradientOpInterface>(user) || clones.contains(user);
  }

  void rematerialize(Operation *op) {
    SmallVector<Operation *> chain = withViews(op);
    SmallVector<OpOperand *> backwardUses;
    int64_t lastForward = position[op], firstBackward = std::numeric_limits<int64_t>::max();
    for (Operation *link : chain)
      for (Value result : link->getResults())
        for (OpOperand &use : result.getUses()) {
          Operation *user = use.getOwner();
          if (llvm::is_contained(chain, user))
            continue;
          if (user->hasTrait<OpTrait::IsTerminator>())
            return; // returned: its bytes are kept anyway
          if (isBackward(user)) {
            backwardUses.push_back(&use);
            firstBackward = std::min(firstBackward, position[user]);
          } else {
            lastForward = std::max(lastForward, position[user]);
          }
        }
    // Only where it lowers the peak: the result is live across it, between
    // its last forward and its first backward use.
    if (backwardUses.empty() || lastForward >= firstBackward || peak <= lastForward ||
        peak >= firstBackward)
      return;
    if (!llvm::all_of(op->getOperands(), [&](Value v) { return liveAt(v, firstBackward); }))
      return;

    Operation *first = nullptr;
    for (OpOperand *use : backwardUses)
      if (position[use->getOwner()] == firstBackward)
        first = use->getOwner();
    OpBuilder builder(first);
    IRMapping mapping;
    SmallVector<Operation *> copies;
    for (Operation *link : chain) {
      Operation *copy = builder.clone(*link, mapping);
      position[copy] = firstBackward;
      copies.push_back(copy);
    }
    clones.insert(copies.front());
    for (OpOperand *use : backwardUses)
      use->set(mapping.lookup(use->get()));
    // Views no backward user needed.
    for (Operation *copy : llvm::reverse(copies))
      if (copy->use_empty())
        copy->erase();
  }

  DenseMap<Operation *, int64_t> position;
  DenseMap<Value, int64_t> lastUse;
  int64_t peak = 0;
  llvm::SmallPtrSet<Operation *, 8> clones;
};

} // namespace
} // namespace moec
