//===- BF16Activations.cpp - expert activations stored in bf16 ------------===//
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

bool computesInBF16(Operation *op) {
  auto precision = op->getAttrOfType<PrecisionAttr>(MoEDialect::kPrecisionAttrName);
  return precision && precision.getValue() == Precision::bf16;
}

/// Whether every use of `value` is operand 0 of an op of one of the
/// `Readers` types (which accept it in bf16).
template <typename... Readers>
bool onlyReadBy(Value value) {
  return llvm::all_of(value.getUses(), [](OpOperand &use) {
    return use.getOperandNumber() == 0 && isa<Readers...>(use.getOwner());
  });
}

/// Whether `value` has readers and each computes in bf16 and is accepted by
/// `reads` (given the user and the operand's number).
template <typename Reads>
bool readOnlyByBF16Products(Value value, Reads reads) {
  return !value.use_empty() && llvm::all_of(value.getUses(), [&](OpOperand &use) {
    return computesInBF16(use.getOwner()) && reads(use.getOwner(), use.getOperandNumber());
  });
}

/// `value`, if fp32, becomes bf16.
void storeInBF16(Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getElementType().isF32())
    value.setType(type.clone(BFloat16Type::get(value.getContext())));
}

class MoEBF16ActivationsPass
    : public impl::MoEBF16ActivationsPassBase<MoEBF16ActivationsPass> {
public:
  using MoEBF16ActivationsPassBase::MoEBF16ActivationsPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    // What backward keeps: the pre-activations, read by the down half and
    // its gradient, and the experts' outputs, read by the combine and its
    // gradient, where the op producing them computes in bf16.
    module.walk([](GroupedFFNUpOp up) {
      if (computesInBF16(up) && onlyReadBy<GroupedFFNDownOp, GroupedFFNDownGradOp>(up.getHidden()))
        storeInBF16(up.getHidden());
    });
    module.walk([](GroupedFFNDownOp down) {
      if (!computesInBF16(down))
        return;
      if (onlyReadBy<CombineOp, CombineGradOp>(down.getResult())) {
        storeInBF16(down.getResult());
        return;
      }
      // Under expert parallelism the outputs travel back to their tokens'
      // ranks first: the rows move in bf16, and the combine reads them so.
      if (!down.getResult().hasOneUse())
        return;
      auto back = dyn_cast<ExpertReturnOp>(*down.getResult().getUsers().begin());
      if (back && onlyReadBy<CombineOp, CombineGradOp>(back.getResult())) {
        storeInBF16(down.getResult());
        storeInBF16(back.getResult());
      }
    });
    // Operands that only bf16 products read lose nothing in bf16: the
    // tensor-core tile rounds them so as it loads them. The gradient of the
    // pre-activations, read by the up half's gradient:
    module.walk([](GroupedFFNDownGradOp grad) {
      if (readOnlyByBF16Products(grad.getDhidden(), [](Operation *user, unsigned operand) {
            auto up = dyn_cast<GroupedFFNUpGradOp>(user);
            return up && operand == user->getNumOperands() - 1; // dhidden is the last
          }))
        storeInBF16(grad.getDhidden());
    });
  }
};

} // namespace
} // namespace moec
