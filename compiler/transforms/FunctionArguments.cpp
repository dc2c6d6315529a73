//===- FunctionArguments.cpp - what the passes ask of function arguments -===//
#include "compiler/transforms/FunctionArguments.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;
using moec::moe::MoEDialect;

namespace moec {

BlockArgument argumentBehind(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
    value = view.getViewSource();
  return dyn_cast<BlockArgument>(value);
}

bool isParameterOrState(BlockArgument argument) {
  auto func = dyn_cast<func::FuncOp>(argument.getOwner()->getParentOp());
  if (!func)
    return false;
  DictionaryAttr attrs = func.getArgAttrDict(argument.getArgNumber());
  return attrs && (attrs.get(MoEDialect::kParamAttrName) || attrs.get(MoEDialect::kStateAttrName));
}

BlockArgument overwritableArgument(OpResult result) {
  auto inPlace = dyn_cast<moe::InPlaceOpInterface>(result.getOwner());
  if (!inPlace)
    return {};
  std::optional<unsigned> operand = inPlace.getOverwrittenOperand(result.getResultNumber());
  if (!operand || *operand >= result.getOwner()->getNumOperands())
    return {};
  Value source = result.getOwner()->getOperand(*operand);
  BlockArgument argument = argumentBehind(source);
  if (!argument || !isParameterOrState(argument) || source.getType() != result.getType())
    return {};
  return argument;
}

} // namespace moec
