//===- IssueCollectivesEarly.cpp - collectives up to their operands -------===//
//
// Moves every communication op up to just after its operands' definitions,
// in their order, so that the compute after it overlaps it at run time.
//
//===----------------------------------------------------------------------===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoETraits.h"

#include "mlir/Dialect/Mesh/IR/MeshOps.h"

namespace moec {
#define GEN_PASS_DEF_MOEISSUECOLLECTIVESEARLYPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;

namespace moec {
namespace {

/// Whether `op` waits for other ranks (a mesh collective or a moe op with
/// the Communication trait). mesh.all_slice only copies the rank's part.
bool communicates(Operation *op) {
  return isa<mesh::AllReduceOp, mesh::AllGatherOp, mesh::AllToAllOp, mesh::ReduceScatterOp>(op) ||
         op->hasTrait<moe::Communication>();
}

class MoEIssueCollectivesEarlyPass
    : public impl::MoEIssueCollectivesEarlyPassBase<MoEIssueCollectivesEarlyPass> {
public:
  void runOnOperation() override {
    for (Block &block : getOperation().getBody()) {
      SmallVector<Operation *> collectives;
      for (Operation &op : block)
        if (communicates(&op))
          collectives.push_back(&op);
      // The earliest place: after the last definition of an operand in this
      // block, and after the collective issued before it.
      Operation *previous = nullptr;
      for (Operation *op : collectives) {
        Operation *after = previous;
        for (Value operand : op->getOperands())
          if (Operation *def = operand.getDefiningOp();
              def && def->getBlock() == &block && (!after || after->isBeforeInBlock(def)))
            after = def;
        if (after)
          op->moveAfter(after);
        else if (op != &block.front())
          op->moveBefore(&block.front());
        previous = op;
      }
    }
  }
};

} // namespace
} // namespace moec
