//===- MoEDialect.h - the moe dialect and its attributes ----------*- C++ -*-===//
#ifndef MOEC_DIALECTS_MOE_IR_MOEDIALECT_H
#define MOEC_DIALECTS_MOE_IR_MOEDIALECT_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "dialects/moe/IR/MoEDialect.h.inc"
#include "dialects/moe/IR/MoEEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/IR/MoEAttrs.h.inc"

#endif // MOEC_DIALECTS_MOE_IR_MOEDIALECT_H
