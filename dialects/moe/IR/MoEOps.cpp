//===- MoEOps.cpp - ODS-generated op definitions of the moe dialect -------===//
// Verifiers and type inference live beside their op family
// (RoutingOps.cpp, DispatchOps.cpp, ...).
#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;

#include "dialects/moe/IR/MoEInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "dialects/moe/IR/MoEOps.cpp.inc"
