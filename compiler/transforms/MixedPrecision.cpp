//===- MixedPrecision.cpp - bf16 operands for the matrix products ---------===//
//
// Marks every op with the MatrixProducts trait with the precision of its
// matrix products (`moe.precision`); code generation reads it. Ops that
// already carry one keep it.
//
//===----------------------------------------------------------------------===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"

namespace moec {
#define GEN_PASS_DEF_MOEMIXEDPRECISIONPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

class MoEMixedPrecisionPass : public impl::MoEMixedPrecisionPassBase<MoEMixedPrecisionPass> {
public:
  using MoEMixedPrecisionPassBase::MoEMixedPrecisionPassBase;

  void runOnOperation() override {
    auto attr = PrecisionAttr::get(&getContext(), precision);
    getOperation().walk([&](Operation *op) {
      if (op->hasTrait<MatrixProducts>() && !op->hasAttr(MoEDialect::kPrecisionAttrName))
        op->setAttr(MoEDialect::kPrecisionAttrName, attr);
    });
  }
};

} // namespace
} // namespace moec
