//===- Passes.h - every moec pass ---------------------------------*- C++ -*-===//
#ifndef MOEC_COMPILER_TRANSFORMS_PASSES_H
#define MOEC_COMPILER_TRANSFORMS_PASSES_H

#include "dialects/moe/IR/MoEDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace moec {

#define GEN_PASS_DECL
#include "compiler/transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "compiler/transforms/Passes.h.inc"

} // namespace moec

#endif // MOEC_COMPILER_TRANSFORMS_PASSES_H
