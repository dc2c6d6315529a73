//===- ReduceGradients.cpp - sum parameter gradients over the mesh --------===//
#include "compiler/transforms/Passes.h"

#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/Builders.h"

namespace moec {
#define GEN_PASS_DEF_MOEREDUCEGRADIENTSPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

class MoEReduceGradientsPass : public impl::MoEReduceGradientsPassBase<MoEReduceGradientsPass> {
public:
  using MoEReduceGradientsPassBase::MoEReduceGradientsPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto meshes = module.getOps<mesh::MeshOp>();
    if (meshes.empty())
      return;
    mesh::MeshOp meshOp = *meshes.begin();
    auto func = module.lookupSymbol<func::FuncOp>(function);
    if (!func) {
      module.emitError("moe-reduce-gradients: no function '") << function << "'";
      return signalPassFailure();
    }
    // Every axis: parameters are replicated on every rank (data parallelism).
    SmallVector<mesh::MeshAxis> axes;
    for (int64_t axis = 0; axis < meshOp.getRank(); ++axis)
      axes.push_back(static_cast<mesh::MeshAxis>(axis));
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    OpBuilder b(ret);
    for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
      if (!func.getResultAttr(i, MoEDialect::kGradAttrName))
        continue;
      Value grad = ret.getOperand(i);
      auto sum = b.create<mesh::AllReduceOp>(grad.getLoc(), grad, meshOp.getSymName(), axes,
                                             mesh::ReductionKind::Sum);
      ret.setOperand(i, sum);
    }
  }
};

} // namespace
} // namespace moec
