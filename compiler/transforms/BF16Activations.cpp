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

/// Whether every use of `value` is operand 0 of an op of one of the
/// `Readers` types (which accept it in bf16).
template <typename... Readers>
bool onlyReadBy(Value value) {
  return llvm::all_of(value.getUses(), [](OpOperand &use) {
    return use.getOperandNumber() == 0 && isa<Readers...>(use.getOwner());
  });
}

/// Stores `value`, the result of `op`, in bf16 where the op computes in
/// bf16 and `value` is fp32.
void storeInBF16(Operation *op, Value value) {
  auto precision = op->getAttrOfType<PrecisionAttr>(MoEDialect::kPrecisionAttrName);
  auto type = cast<RankedTensorType>(value.getType());
  if (!precision || precision.getValue() != Precision::bf16 || !type.getElementType().isF32())
    return;
  value.setType(type.clone(BFloat16Type::get(op->getContext())));
}

class MoEBF16ActivationsPass
    : public impl::MoEBF16ActivationsPassBase<MoEBF16ActivationsPass> {
public:
  using MoEBF16ActivationsPassBase::MoEBF16ActivationsPassBase;

  void runOnOperation() override {
    // The pre-activations, read by the down half and its gradient.
    getOperation().walk([](GroupedFFNUpOp up) {
      if (onlyReadBy<GroupedFFNDownOp, GroupedFFNDownGradOp>(up.getHidden()))
        storeInBF16(up, up.getHidden());
    });
    // The experts' outputs, read by the combine and its gradient.
    getOperation().walk([](GroupedFFNDownOp down) {
      if (onlyReadBy<CombineOp, CombineGradOp>(down.getResult()))
        storeInBF16(down, down.getResult());
    });
  }
};

} // namespace
} // namespace moec
