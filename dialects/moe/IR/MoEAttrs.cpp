//===- MoEAttrs.cpp - enum attributes of the moe dialect ------------------===//
#include "dialects/moe/IR/MoEDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace moec::moe;

#include "dialects/moe/IR/MoEEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/IR/MoEAttrs.cpp.inc"

void MoEDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/moe/IR/MoEAttrs.cpp.inc"
      >();
}
