//===- PlanMemory.cpp - arena offsets for the tensors of a function -------===//
#include "compiler/transforms/Passes.h"

#include "compiler/transforms/FunctionArguments.h"
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/IR/BuiltinAttributes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <algorithm>
#include <limits>

namespace moec {
#define GEN_PASS_DEF_MOEPLANMEMORYPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using moec::moe::FusedOp;
using moec::moe::MoEDialect;

namespace moec {
namespace {

/// A set of values sharing one allocation: a tensor and its reshaped views.
struct Allocation {
  int64_t size = 0;
  int64_t start = 0; // index of the defining op
  int64_t end = 0;   // index of the last use
  int64_t offset = -1;
  bool viewOfArgument = false;
  bool mergedInPlace = false;      // its values now use another allocation
  bool overwritesArgument = false; // it lives in a function argument's bytes
};

class MoEPlanMemoryPass
    : public impl::MoEPlanMemoryPassBase<MoEPlanMemoryPass> {
public:
  using MoEPlanMemoryPassBase::MoEPlanMemoryPassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    if (!func.getBody().hasOneBlock()) {
      func.emitError("moe-plan-memory needs a function with one block");
      return signalPassFailure();
    }
    Block &block = func.getBody().front();

    DenseMap<Operation *, int64_t> position;
    DenseMap<Value, unsigned> allocationOf;
    SmallVector<Allocation> allocations;
    int64_t index = 0;
    for (Operation &op : block) {
      position[&op] = index++;
      for (OpResult result : op.getResults()) {
        if (auto view = dyn_cast<ViewLikeOpInterface>(&op)) {
          Value source = view.getViewSource();
          auto it = allocationOf.find(source);
          if (it == allocationOf.end()) {
            Allocation view;
            view.viewOfArgument = true;
            allocationOf[result] = allocations.size();
            allocations.push_back(view);
          } else {
            allocationOf[result] = it->second;
          }
          continue;
        }
        auto type = dyn_cast<RankedTensorType>(result.getType());
        if (!type || !type.hasStaticShape()) {
          op.emitOpError("moe-plan-memory needs static tensor shapes, but "
                         "result ")
              << result.getResultNumber() << " has type " << result.getType();
          return signalPassFailure();
        }
        int64_t bits = type.getElementTypeBitWidth();
        int64_t bytes = (type.getNumElements() * bits + 7) / 8;
        Allocation allocation;
        allocation.size = std::max<int64_t>(1, llvm::alignTo(bytes, alignment));
        allocation.start = position[&op];
        allocation.end = position[&op];
        allocationOf[result] = allocations.size();
        allocations.push_back(allocation);
      }
    }

    // Live ranges: to the last use of any value of the allocation; values the
    // function returns live to the end.
    for (Operation &op : block) {
      bool returns = op.hasTrait<OpTrait::IsTerminator>();
      for (Value operand : op.getOperands()) {
        auto it = allocationOf.find(operand);
        if (it == allocationOf.end())
          continue;
        Allocation &allocation = allocations[it->second];
        allocation.end = returns ? std::numeric_limits<int64_t>::max()
                                 : std::max(allocation.end, position[&op]);
      }
    }

    reuseOperandsInPlace(block, position, allocationOf, allocations);
    int64_t arenaSize = assignOffsets(allocations);

    Builder builder(func.getContext());
    for (Operation &op : block) {
      if (op.getNumResults() == 0)
        continue;
      SmallVector<int64_t> offsets;
      for (OpResult result : op.getResults()) {
        const Allocation &allocation = allocations[allocationOf[result]];
        offsets.push_back(allocation.viewOfArgument || allocation.overwritesArgument
                              ? -1
                              : allocation.offset);
      }
      op.setAttr(MoEDialect::kOffsetsAttrName, builder.getDenseI64ArrayAttr(offsets));
    }
    func->setAttr(MoEDialect::kArenaSizeAttrName, builder.getI64IntegerAttr(arenaSize));
    if (int64_t internal = planGroupInternals(block))
      func->setAttr(MoEDialect::kInternalArenaSizeAttrName, builder.getI64IntegerAttr(internal));
  }

private:
  /// Offsets for the values inside fusion groups, in an arena of their own:
  /// a generated kernel keeps them in registers, but a device that runs the
  /// group's ops one by one (the cpu) needs bytes for them. Groups run one
  /// at a time, so they share the arena; within a group each value has its
  /// own bytes. Members get `moe.offsets` (-1 for a result the group
  /// yields: its bytes are the group's result's). Returns the arena's size.
  int64_t planGroupInternals(Block &block) {
    Builder builder(block.getParentOp()->getContext());
    int64_t size = 0;
    for (auto fused : block.getOps<FusedOp>()) {
      llvm::SmallPtrSet<Value, 8> yielded;
      for (Value value : fused.getBody()->getTerminator()->getOperands())
        yielded.insert(value);
      int64_t end = 0;
      for (Operation &member : fused.getMembers()) {
        SmallVector<int64_t> offsets;
        for (Value result : member.getResults()) {
          if (yielded.contains(result)) {
            offsets.push_back(-1);
            continue;
          }
          auto type = cast<RankedTensorType>(result.getType());
          int64_t bytes = (type.getNumElements() * type.getElementTypeBitWidth() + 7) / 8;
          offsets.push_back(end);
          end += std::max<int64_t>(1, llvm::alignTo(bytes, alignment));
        }
        member.setAttr(MoEDialect::kOffsetsAttrName, builder.getDenseI64ArrayAttr(offsets));
      }
      size = std::max(size, end);
    }
    return size;
  }

  /// A result of an op with InPlaceOpInterface takes the bytes of the
  /// operand it may overwrite when nothing reads that operand after the op
  /// (and no other operand of the op is the same bytes). An arena operand's
  /// allocation lives on as the result's (the loss gradient over the logits
  /// saves a logits-sized tensor); a function argument is updated where it
  /// lives (the optimizer's new parameters and moments need no arena bytes),
  /// which `moe.overwrites` records: per result, the operand it overwrites
  /// or -1.
  static void reuseOperandsInPlace(Block &block, DenseMap<Operation *, int64_t> &position,
                                   DenseMap<Value, unsigned> &allocationOf,
                                   SmallVectorImpl<Allocation> &allocations) {
    // The last op that reads each argument's bytes, directly or by a view.
    DenseMap<BlockArgument, int64_t> argumentEnd;
    for (Operation &op : block)
      for (Value operand : op.getOperands())
        if (BlockArgument argument = argumentBehind(operand))
          argumentEnd[argument] = op.hasTrait<OpTrait::IsTerminator>()
                                      ? std::numeric_limits<int64_t>::max()
                                      : std::max(argumentEnd[argument], position[&op]);

    Builder builder(block.getParentOp()->getContext());
    for (Operation &op : block) {
      auto inPlace = dyn_cast<moe::InPlaceOpInterface>(&op);
      if (!inPlace)
        continue;
      SmallVector<int64_t> overwrites(op.getNumResults(), -1);
      for (OpResult result : op.getResults()) {
        std::optional<unsigned> operandIndex =
            inPlace.getOverwrittenOperand(result.getResultNumber());
        if (!operandIndex || *operandIndex >= op.getNumOperands() ||
            op.getOperand(*operandIndex).getType() != result.getType())
          continue;
        Value operand = op.getOperand(*operandIndex);
        unsigned outputIndex = allocationOf[result];
        Allocation &output = allocations[outputIndex];
        if (BlockArgument argument = argumentBehind(operand)) {
          // Only the argument itself: the plan names it, not a view of it.
          bool sharedWithinOp = llvm::count_if(op.getOperands(), [&](Value other) {
                                  return argumentBehind(other) == argument;
                                }) > 1;
          if (operand != argument || argument.getOwner() != &block ||
              argument != overwritableArgument(result) ||
              argumentEnd[argument] != position[&op] || sharedWithinOp)
            continue;
          output.overwritesArgument = true;
          overwrites[result.getResultNumber()] = *operandIndex;
          continue;
        }
        auto source = allocationOf.find(operand);
        if (source == allocationOf.end())
          continue;
        unsigned inputIndex = source->second;
        Allocation &input = allocations[inputIndex];
        if (input.end != position[&op] || input.size != output.size)
          continue;
        if (llvm::count_if(op.getOperands(), [&](Value other) {
              auto it = allocationOf.find(other);
              return it != allocationOf.end() && it->second == inputIndex;
            }) > 1)
          continue;
        input.end = output.end;
        output.mergedInPlace = true;
        for (auto &[value, index] : allocationOf)
          if (index == outputIndex)
            index = inputIndex;
      }
      if (llvm::any_of(overwrites, [](int64_t o) { return o >= 0; }))
        op.setAttr(MoEDialect::kOverwritesAttrName, builder.getDenseI64ArrayAttr(overwrites));
      else
        op.removeAttr(MoEDialect::kOverwritesAttrName); // from an earlier run
    }
  }

  /// Places the allocations twice, first fit in order of definition and
  /// first fit largest first (TensorFlow Lite's "greedy by size"), and keeps
  /// the smaller arena; returns its size.
  int64_t assignOffsets(SmallVectorImpl<Allocation> &allocations) {
    SmallVector<unsigned> order;
    for (unsigned i = 0; i < allocations.size(); ++i)
      if (!allocations[i].viewOfArgument && !allocations[i].mergedInPlace &&
          !allocations[i].overwritesArgument)
        order.push_back(i);
    llvm::stable_sort(order, [&](unsigned a, unsigned b) {
      return allocations[a].start < allocations[b].start;
    });
    SmallVector<int64_t> byDefinition;
    int64_t definitionSize = placeFirstFit(allocations, order, byDefinition);
    llvm::stable_sort(order, [&](unsigned a, unsigned b) {
      return allocations[a].size > allocations[b].size;
    });
    SmallVector<int64_t> bySize;
    int64_t sizeSize = placeFirstFit(allocations, order, bySize);
    const SmallVector<int64_t> &chosen = sizeSize < definitionSize ? bySize : byDefinition;
    for (unsigned i = 0; i < allocations.size(); ++i)
      if (chosen[i] >= 0)
        allocations[i].offset = chosen[i];
    return std::min(sizeSize, definitionSize);
  }

  /// Places the allocations in `order`, each at the lowest offset free of
  /// those already placed that are alive at the same time; writes each
  /// one's offset (-1 when not placed) and returns the arena size.
  static int64_t placeFirstFit(ArrayRef<Allocation> allocations, ArrayRef<unsigned> order,
                               SmallVectorImpl<int64_t> &offsets) {
    offsets.assign(allocations.size(), -1);
    SmallVector<unsigned> placed;
    int64_t arenaSize = 0;
    for (unsigned i : order) {
      const Allocation &current = allocations[i];
      // Occupied intervals of allocations alive at the same time.
      SmallVector<std::pair<int64_t, int64_t>> busy;
      for (unsigned j : placed) {
        const Allocation &other = allocations[j];
        if (other.end >= current.start && other.start <= current.end)
          busy.push_back({offsets[j], offsets[j] + other.size});
      }
      llvm::sort(busy);
      int64_t offset = 0;
      for (auto [lo, hi] : busy) {
        if (offset + current.size <= lo)
          break;
        offset = std::max(offset, hi);
      }
      offsets[i] = offset;
      arenaSize = std::max(arenaSize, offset + current.size);
      placed.push_back(i);
    }
    return arenaSize;
  }
};
} // namespace
} // namespace moec
