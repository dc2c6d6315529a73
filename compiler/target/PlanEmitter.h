//===- PlanEmitter.h - a planned module to a .moeb FlatBuffer ------*- C++ -*-===//
#ifndef MOEC_COMPILER_TARGET_PLANEMITTER_H
#define MOEC_COMPILER_TARGET_PLANEMITTER_H

#include "compiler/frontend/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <vector>

namespace moec::target {

/// The plan format version this compiler writes.
constexpr uint32_t kPlanVersion = 1;

/// Serialises `module` (functions after `--moe-plan-memory`) with the run
/// configuration of `config`. Fails, with a diagnostic on the offending op,
/// when a function is not planned or a value cannot be represented.
mlir::FailureOr<std::vector<uint8_t>>
emitPlan(mlir::ModuleOp module, const frontend::ModelConfig &config);

} // namespace moec::target

#endif // MOEC_COMPILER_TARGET_PLANEMITTER_H
