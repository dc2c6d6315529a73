//===- ShardOptimizerState.cpp - ZeRO-1 over the mesh ---------------------===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"
#include "dialects/moe/IR/MoETraits.h"

#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/Builders.h"

namespace moec {
#define GEN_PASS_DEF_MOESHARDOPTIMIZERSTATEPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

class MoEShardOptimizerStatePass
    : public impl::MoEShardOptimizerStatePassBase<MoEShardOptimizerStatePass> {
public:
  using MoEShardOptimizerStatePassBase::MoEShardOptimizerStatePassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto meshes = module.getOps<mesh::MeshOp>();
    if (meshes.empty())
      return;
    meshOp = *meshes.begin();
    ranks = 1;
    for (int64_t axis = 0; axis < meshOp.getRank(); ++axis) {
      axes.push_back(static_cast<mesh::MeshAxis>(axis));
      ranks *= meshOp.getShape()[axis];
    }
    if (ranks <= 1)
      return;
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal() && failed(shard(func)))
        return signalPassFailure();
  }

private:
  LogicalResult shard(func::FuncOp func);
  /// Updates `update` (a ParameterUpdate op) on this rank's slices.
  LogicalResult shardUpdate(func::FuncOp func, Operation *update);

  mesh::MeshOp meshOp;
  SmallVector<mesh::MeshAxis> axes;
  int64_t ranks = 1;
};

LogicalResult MoEShardOptimizerStatePass::shard(func::FuncOp func) {
  SmallVector<Operation *> updates;
  func.walk([&](Operation *op) {
    if (op->hasTrait<ParameterUpdate>())
      updates.push_back(op);
  });
  if (updates.empty())
    return success();
  for (Operation *update : updates)
    if (failed(shardUpdate(func, update)))
      return failure();
  // Arguments and results whose types changed.
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  func.setFunctionType(FunctionType::get(
      func.getContext(), func.getBody().front().getArgumentTypes(), ret.getOperandTypes()));
  return success();
}

LogicalResult MoEShardOptimizerStatePass::shardUpdate(func::FuncOp func, Operation *update) {
  auto full = cast<RankedTensorType>(update->getOperand(0).getType());
  if (full.getRank() == 0 || full.getDimSize(0) % ranks != 0)
    return success(); // the whole state stays on every rank
  if (auto param = dyn_cast<BlockArgument>(update->getOperand(0)))
    if (func.getArgAttr(param.getArgNumber(), MoEDialect::kShardAxesAttrName))
      return success(); // split already (experts over ep): its state is the rank's
  SmallVector<int64_t> shape(full.getShape());
  shape[0] /= ranks;
  auto slice = full.clone(shape);
  OpBuilder b(update);
  StringRef meshName = meshOp.getSymName();
  for (OpOperand &operand : update->getOpOperands()) {
    auto type = dyn_cast<RankedTensorType>(operand.get().getType());
    if (!type || type.getRank() == 0)
      continue; // step, learning rate, hyperparameters: read whole
    if (type != full)
      return update->emitOpError("operand ")
             << operand.getOperandNumber() << " has type " << type << ", not the parameter's "
             << full << "; its update cannot be sliced";
    auto arg = dyn_cast<BlockArgument>(operand.get());
    if (arg && func.getArgAttr(arg.getArgNumber(), MoEDialect::kStateAttrName)) {
      // The rank's slice is all it holds.
      if (!arg.hasOneUse())
        return update->emitOpError("reads optimizer state '")
               << func.getArgAttr(arg.getArgNumber(), MoEDialect::kStateAttrName)
               << "' that another op also reads; it cannot be sliced";
      arg.setType(slice);
      func.setArgAttr(arg.getArgNumber(), MoEDialect::kShardAxesAttrName,
                      b.getDenseI16ArrayAttr(axes));
      continue;
    }
    operand.set(b.create<mesh::AllSliceOp>(update->getLoc(), slice, meshName, axes, operand.get(),
                                           APInt(64, 0)));
  }
  for (OpResult result : update->getResults())
    result.setType(slice);
  // Every rank needs the whole parameter for the next step.
  b.setInsertionPointAfter(update);
  Value newParam = update->getResult(0);
  auto gathered =
      b.create<mesh::AllGatherOp>(update->getLoc(), full, meshName, axes, newParam, APInt(64, 0));
  newParam.replaceAllUsesExcept(gathered, gathered);
  return success();
}

} // namespace
} // namespace moec
