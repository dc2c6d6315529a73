//===- InPlaceOps.cpp - ops whose results may overwrite their operands ----===//
//
// InPlaceOpInterface: which operand's bytes each result may take. The
// kernels of these ops are written for it (see the interface's contract).
//
//===----------------------------------------------------------------------===//
#include "dialects/moe/IR/MoEOps.h"

namespace moec::moe {

/// dlogits over logits: each row is reduced (maximum, sum) before it is
/// rewritten.
std::optional<unsigned> CrossEntropyGradOp::getOverwrittenOperand(unsigned resultIndex) {
  if (resultIndex == 0)
    return 0;
  return std::nullopt;
}

/// (param, m, v) over (param, m, v): element i only touches index i.
std::optional<unsigned> AdamWUpdateOp::getOverwrittenOperand(unsigned resultIndex) {
  static constexpr unsigned kOperand[] = {0, 2, 3};
  if (resultIndex < 3)
    return kOperand[resultIndex];
  return std::nullopt;
}

/// (param, momentum buffer) over (param, momentum buffer): elementwise.
std::optional<unsigned> SGDUpdateOp::getOverwrittenOperand(unsigned resultIndex) {
  static constexpr unsigned kOperand[] = {0, 2};
  if (resultIndex < 2)
    return kOperand[resultIndex];
  return std::nullopt;
}

} // namespace moec::moe
