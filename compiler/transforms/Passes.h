//===- Passes.h - every moec pass ---------------------------------*- C++ -*-===//
#ifndef MOEC_COMPILER_TRANSFORMS_PASSES_H
#define MOEC_COMPILER_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace moec {

#define GEN_PASS_DECL
#include "compiler/transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "compiler/transforms/Passes.h.inc"

} // namespace moec

#endif // MOEC_COMPILER_TRANSFORMS_PASSES_H
