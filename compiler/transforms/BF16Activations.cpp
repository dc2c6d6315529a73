//===- BF16Activations.cpp - expert pre-activations stored in bf16 --------===//
#include "compiler/transforms/Passes.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/BuiltinTypes.h"

namespace moec {
#define GEN_PASS_DEF_MOEBF16ACTIVATIONSPASS
#include "compiler/transforms/Passes.h.inc"
} // namespace moec

using namespace mlir;
using namespace moec::moe;

namespace moec {
namespace {

/// Whether every reader of `hidden` reads it as the pre-activations of the
/// down half or of its gradient, which accept bf16.
bool onlyDownHalvesRead(Value hidden) {
  return llvm::all_of(hidden.getUses(), [](OpOperand &use) {
    Operation *user = use.getOwner();
    if (auto down = dyn_cast<GroupedFFNDownOp>(user))
      return use.get() == down.getHidden() && use.getOperandNumber() == 0;
    if (auto grad = dyn_cast<GroupedFFNDownGradOp>(user))
      return use.get() == grad.getHidden() && use.getOperandNumber() == 0;
    return false;
  });
}

class MoEBF16ActivationsPass
    : public impl::MoEBF16ActivationsPassBase<MoEBF16ActivationsPass> {
public:
  using MoEBF16ActivationsPassBase::MoEBF16ActivationsPassBase;

  void runOnOperation() override {
    getOperation().walk([](GroupedFFNUpOp up) {
      auto precision = up->getAttrOfType<PrecisionAttr>(MoEDialect::kPrecisionAttrName);
      auto type = cast<RankedTensorType>(up.getHidden().getType());
      if (!precision || precision.getValue() != Precision::bf16 || !type.getElementType().isF32() ||
          !onlyDownHalvesRead(up.getHidden()))
        return;
      up.getHidden().setType(type.clone(BFloat16Type::get(up.getContext())));
    });
  }
};

} // namespace
} // namespace moec
