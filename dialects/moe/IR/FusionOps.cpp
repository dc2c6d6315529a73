//===- FusionOps.cpp - moe.fused and the TokenRows trait ------------------===//
#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;

namespace moec::moe {

LogicalResult verifyTokenRows(Operation *op) {
  std::optional<int64_t> tokens;
  auto check = [&](Value value, StringRef what, unsigned n) -> LogicalResult {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || type.getRank() < 2)
      return success();
    if (!tokens) {
      tokens = type.getDimSize(0);
      return success();
    }
    if (type.getDimSize(0) == *tokens)
      return success();
    return op->emitOpError("reads and writes each token's rows: ")
           << what << " " << n << " has " << type.getDimSize(0) << " rows, not " << *tokens;
  };
  for (auto [n, operand] : llvm::enumerate(op->getOperands()))
    if (failed(check(operand, "operand", n)))
      return failure();
  for (auto [n, result] : llvm::enumerate(op->getResults()))
    if (failed(check(result, "result", n)))
      return failure();
  return success();
}

int64_t tokenRowCount(Operation *op) {
  for (Value result : op->getResults())
    if (auto type = dyn_cast<RankedTensorType>(result.getType()); type && type.getRank() >= 1)
      return type.getDimSize(0);
  return 0;
}

Value FusedOp::getOuterValue(Value inner) {
  if (auto argument = dyn_cast<BlockArgument>(inner))
    return argument.getOwner() == getBody() ? getInputs()[argument.getArgNumber()] : Value();
  for (OpOperand &yielded : getBody()->getTerminator()->getOpOperands())
    if (yielded.get() == inner)
      return getResult(yielded.getOperandNumber());
  return {};
}

std::optional<unsigned> FusedOp::getOverwrittenOperand(unsigned resultIndex) {
  // The member's own choice, when what it overwrites is an input of the
  // group that no other member reads (members may run one by one).
  Value yielded = getBody()->getTerminator()->getOperand(resultIndex);
  auto member = dyn_cast_or_null<InPlaceOpInterface>(yielded.getDefiningOp());
  if (!member)
    return std::nullopt;
  std::optional<unsigned> operand =
      member.getOverwrittenOperand(cast<OpResult>(yielded).getResultNumber());
  if (!operand)
    return std::nullopt;
  auto argument = dyn_cast<BlockArgument>(member->getOperand(*operand));
  if (!argument ||
      llvm::any_of(argument.getUsers(), [&](Operation *user) { return user != member; }))
    return std::nullopt;
  return argument.getArgNumber();
}

LogicalResult FusedOp::verify() {
  Block *body = getBody();
  if (body->getNumArguments() != getInputs().size())
    return emitOpError("has ") << getInputs().size() << " inputs but its body takes "
                               << body->getNumArguments() << " arguments";
  for (auto [n, input, argument] : llvm::enumerate(getInputs(), body->getArguments()))
    if (input.getType() != argument.getType())
      return emitOpError("input ") << n << " is " << input.getType() << " but body argument " << n
                                   << " is " << argument.getType();
  auto yield = cast<YieldOp>(body->getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError("yields ") << yield.getValues().size()
                                  << " values whose types differ from its results";
  if (body->without_terminator().empty())
    return emitOpError("has no ops: a fusion group holds at least one");
  for (Operation &member : getMembers())
    if (member.getNumRegions())
      return member.emitOpError("cannot be fused: a fusion group holds ops without regions");
  return success();
}

} // namespace moec::moe
