//===- FusionGroups.cpp - forming moe.fused groups from legal ops ---------===//
#include "compiler/transforms/FusionGroups.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallPtrSet.h"

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

using OpSet = llvm::SmallPtrSet<Operation *, 16>;

/// Whether some op outside `group` depends on a member and is depended on
/// by a member: the group as one op would then read its own result.
bool hasOutsidePath(const OpSet &group) {
  Operation *first = nullptr;
  for (Operation *member : group)
    if (!first || member->isBeforeInBlock(first))
      first = member;
  // Walk back from every operand produced outside the group, within the
  // ops after the group's first member (earlier ones cannot depend on it).
  SmallVector<Operation *> work;
  llvm::SmallPtrSet<Operation *, 32> seen;
  auto pushProducers = [&](Operation *op) {
    for (Value operand : op->getOperands()) {
      Operation *producer = operand.getDefiningOp();
      if (producer && producer->getBlock() == first->getBlock() &&
          first->isBeforeInBlock(producer) && seen.insert(producer).second)
        work.push_back(producer);
    }
  };
  for (Operation *member : group)
    pushProducers(member);
  while (!work.empty()) {
    Operation *op = work.pop_back_val();
    if (group.contains(op))
      continue; // a direct edge inside the group
    for (Value operand : op->getOperands())
      if (Operation *producer = operand.getDefiningOp(); producer && group.contains(producer))
        return true;
    pushProducers(op);
  }
  return false;
}
} // namespace

FusedOp fuse(ArrayRef<Operation *> members, FusionKind kind) {
  OpSet memberSet(members.begin(), members.end());
  Operation *first = members.front(), *last = members.back();

  // Ops between the members that depend on one: they move after the group.
  SmallVector<Operation *> dependents;
  llvm::SmallPtrSet<Operation *, 32> tainted(memberSet.begin(), memberSet.end());
  for (Operation *op = first->getNextNode(); op != last; op = op->getNextNode()) {
    if (memberSet.contains(op))
      continue;
    if (llvm::any_of(op->getOperands(), [&](Value v) {
          Operation *producer = v.getDefiningOp();
          return producer && tainted.contains(producer);
        })) {
      tainted.insert(op);
      dependents.push_back(op);
    }
  }

  llvm::SetVector<Value> inputs, outputs;
  for (Operation *member : members) {
    for (Value operand : member->getOperands()) {
      Operation *producer = operand.getDefiningOp();
      if (!producer || !memberSet.contains(producer))
        inputs.insert(operand);
    }
    for (Value result : member->getResults())
      if (llvm::any_of(result.getUsers(),
                       [&](Operation *user) { return !memberSet.contains(user); }))
        outputs.insert(result);
  }

  OpBuilder builder(last->getContext());
  builder.setInsertionPointAfter(last);
  SmallVector<Type> resultTypes;
  for (Value output : outputs)
    resultTypes.push_back(output.getType());
  auto fused = builder.create<FusedOp>(last->getLoc(), resultTypes, inputs.getArrayRef(),
                                       FusionKindAttr::get(builder.getContext(), kind));
  // The group's products take its members' precision (the rules join only
  // members of one precision).
  for (Operation *member : members)
    if (Attribute precision = member->getAttr(MoEDialect::kPrecisionAttrName))
      fused->setAttr(MoEDialect::kPrecisionAttrName, precision);
  Block *body = builder.createBlock(&fused.getRegion());
  IRMapping mapping;
  for (Value input : inputs)
    mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
  for (Operation *member : members)
    builder.clone(*member, mapping);
  SmallVector<Value> yielded;
  for (Value output : outputs)
    yielded.push_back(mapping.lookup(output));
  builder.create<YieldOp>(last->getLoc(), yielded);

  for (auto [output, result] : llvm::zip(outputs, fused.getResults()))
    Value(output).replaceUsesWithIf(
        result, [&](OpOperand &use) { return !memberSet.contains(use.getOwner()); });
  Operation *after = fused;
  for (Operation *dependent : dependents) {
    dependent->moveAfter(after);
    after = dependent;
  }
  for (Operation *member : llvm::reverse(members))
    member->erase();
  return fused;
}

SmallVector<Operation *> unfuse(FusedOp fused) {
  OpBuilder builder(fused);
  IRMapping mapping;
  for (auto [argument, input] : llvm::zip(fused.getBody()->getArguments(), fused.getInputs()))
    mapping.map(argument, input);
  SmallVector<Operation *> members;
  for (Operation &member : fused.getMembers())
    members.push_back(builder.clone(member, mapping));
  for (auto [result, yielded] :
       llvm::zip(fused.getResults(), fused.getBody()->getTerminator()->getOperands()))
    result.replaceAllUsesWith(mapping.lookup(yielded));
  fused->erase();
  return members;
}

unsigned formFusionGroups(Block &block, const FusionRule &rule) {
  // Groups by index; groupOf maps a member to its group.
  std::vector<SmallVector<Operation *>> groups;
  llvm::DenseMap<Operation *, size_t> groupOf;
  for (Operation &op : block.without_terminator()) {
    if (op.getNumRegions())
      continue;
    // The groups of the producers (and siblings) that `op` may join.
    SmallVector<size_t> joinable;
    auto consider = [&](Operation *anchor) {
      auto it = anchor ? groupOf.find(anchor) : groupOf.end();
      if (it != groupOf.end() && !llvm::is_contained(joinable, it->second) &&
          rule.canJoin(&op, anchor))
        joinable.push_back(it->second);
    };
    for (Value operand : op.getOperands()) {
      consider(operand.getDefiningOp());
      if (rule.siblings)
        for (Operation *user : operand.getUsers())
          if (user != &op && user->getBlock() == &block && user->isBeforeInBlock(&op))
            consider(user);
    }
    // Join them one at a time while no cycle forms.
    std::optional<size_t> target;
    for (size_t g : joinable) {
      OpSet candidate;
      candidate.insert(&op);
      if (target)
        candidate.insert(groups[*target].begin(), groups[*target].end());
      candidate.insert(groups[g].begin(), groups[g].end());
      if ((rule.maxMembers && candidate.size() > rule.maxMembers) || hasOutsidePath(candidate))
        continue;
      if (!target) {
        groups[g].push_back(&op);
        groupOf[&op] = g;
        target = g;
        continue;
      }
      for (Operation *member : groups[g])
        groupOf[member] = *target;
      groups[*target].append(groups[g].begin(), groups[g].end());
      groups[g].clear();
    }
    if (!target && rule.canStart(&op)) {
      groupOf[&op] = groups.size();
      groups.push_back({&op});
    }
  }
  unsigned formed = 0;
  for (SmallVector<Operation *> &group : groups) {
    if (group.size() < 2)
      continue;
    // Groups fused before this one are single ops now, which may join paths
    // that were apart: check again.
    llvm::sort(group, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    if (hasOutsidePath(OpSet(group.begin(), group.end())))
      continue;
    fuse(group, rule.kindOf ? rule.kindOf(group) : rule.kind);
    ++formed;
  }
  return formed;
}

} // namespace moec
