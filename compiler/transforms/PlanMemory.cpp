//===- PlanMemory.cpp - arena offsets for the tensors of a function -------===//
#include "compiler/transforms/Passes.h"

#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/IR/BuiltinAttributes.h"

#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <limits>

namespace moec {
#define GEN_PASS_DEF_MOEPLANMEMORYPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;

namespace moec {
namespace {

/// A set of values sharing one allocation: a tensor and its reshaped views.
struct Allocation {
  int64_t size = 0;
  int64_t start = 0; // index of the defining op
  int64_t end = 0;   // index of the last use
  int64_t offset = -1;
  bool viewOfArgument = false;
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

    int64_t arenaSize = assignOffsets(allocations);

    Builder builder(func.getContext());
    for (Operation &op : block) {
      if (op.getNumResults() == 0)
        continue;
      SmallVector<int64_t> offsets;
      for (OpResult result : op.getResults()) {
        const Allocation &allocation = allocations[allocationOf[result]];
        offsets.push_back(allocation.viewOfArgument ? -1 : allocation.offset);
      }
      op.setAttr("moe.offsets", builder.getDenseI64ArrayAttr(offsets));
    }
    func->setAttr("moe.arena_size", builder.getI64IntegerAttr(arenaSize));
  }

private:
  /// First fit in order of definition; returns the arena size.
  int64_t assignOffsets(SmallVectorImpl<Allocation> &allocations) {
    SmallVector<unsigned> order;
    for (unsigned i = 0; i < allocations.size(); ++i)
      if (!allocations[i].viewOfArgument)
        order.push_back(i);
    llvm::stable_sort(order, [&](unsigned a, unsigned b) {
      return allocations[a].start < allocations[b].start;
    });
    SmallVector<unsigned> placed;
    int64_t arenaSize = 0;
    for (unsigned i : order) {
      Allocation &current = allocations[i];
      // Occupied intervals of allocations alive at the same time.
      SmallVector<std::pair<int64_t, int64_t>> busy;
      for (unsigned j : placed) {
        const Allocation &other = allocations[j];
        if (other.end >= current.start && other.start <= current.end)
          busy.push_back({other.offset, other.offset + other.size});
      }
      llvm::sort(busy);
      int64_t offset = 0;
      for (auto [lo, hi] : busy) {
        if (offset + current.size <= lo)
          break;
        offset = std::max(offset, hi);
      }
      current.offset = offset;
      arenaSize = std::max(arenaSize, offset + current.size);
      placed.push_back(i);
    }
    return arenaSize;
  }
};
} // namespace
} // namespace moec
