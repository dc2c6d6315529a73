//===- MoEOps.h - the ops of the moe dialect ----------------------*- C++ -*-===//
#ifndef MOEC_DIALECTS_MOE_IR_MOEOPS_H
#define MOEC_DIALECTS_MOE_IR_MOEOPS_H

#include "dialects/moe/IR/MoEDialect.h"
#include "dialects/moe/IR/MoETraits.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/moe/IR/MoEInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/moe/IR/MoEOps.h.inc"

#endif // MOEC_DIALECTS_MOE_IR_MOEOPS_H
