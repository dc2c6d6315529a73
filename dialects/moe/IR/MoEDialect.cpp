//===- MoEDialect.cpp - registration of the moe dialect -------------------===//
#include "dialects/moe/IR/MoEDialect.h"
#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

#include "dialects/moe/IR/MoEDialect.cpp.inc"

void MoEDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/moe/IR/MoEOps.cpp.inc"
      >();
  registerAttributes();
}

LogicalResult MoEDialect::verifyOperationAttribute(Operation *op, NamedAttribute attribute) {
  if (attribute.getName() == kPrecisionAttrName && !isa<PrecisionAttr>(attribute.getValue()))
    return op->emitError("'") << kPrecisionAttrName
                              << "' must be #moe.precision<fp32> or #moe.precision<bf16>, not "
                              << attribute.getValue();
  return success();
}
