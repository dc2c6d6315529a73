//===- ReduceGradients.cpp - sum parameter gradients over the mesh --------===//
#include "compiler/transforms/Passes.h"

#include "mlir/Dialect/Mesh/IR/MeshOps.h"
#include "mlir/IR/Builders.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"

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
    // The mesh axes each parameter is split over (experts over ep).
    llvm::StringMap<ArrayRef<int16_t>> splitAxes;
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      if (auto name = func.getArgAttrOfType<StringAttr>(i, MoEDialect::kParamAttrName))
        if (auto axes = func.getArgAttrOfType<DenseI16ArrayAttr>(i, MoEDialect::kShardAxesAttrName))
          splitAxes[name.getValue()] = axes.asArrayRef();
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    OpBuilder b(ret);
    for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, MoEDialect::kGradAttrName);
      if (!name)
        continue;
      // Summed over the ranks that hold the same parameter: every axis but
      // those it is split over.
      SmallVector<mesh::MeshAxis> axes;
      ArrayRef<int16_t> split = splitAxes.lookup(name.getValue());
      int64_t ranks = 1;
      for (int64_t axis = 0; axis < meshOp.getRank(); ++axis)
        if (!llvm::is_contained(split, axis)) {
          axes.push_back(static_cast<mesh::MeshAxis>(axis));
          ranks *= meshOp.getShape()[axis];
        }
      if (ranks == 1)
        continue; // no other rank holds it
      Value grad = ret.getOperand(i);
      auto sum = b.create<mesh::AllReduceOp>(grad.getLoc(), grad, meshOp.getSymName(), axes,
                                             mesh::ReductionKind::Sum);
      ret.setOperand(i, sum);
    }
  }
};

} // namespace
} // namespace moec
