//===- PlanEmitter.h - a planned module to a .moeb FlatBuffer ------*- C++ -*-===//
#ifndef MOEC_COMPILER_TARGET_PLANEMITTER_H
#define MOEC_COMPILER_TARGET_PLANEMITTER_H

#include "compiler/frontend/ModelConfig.h"
#include "compiler/target/TargetBackend.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::target {

/// The plan format version this compiler writes (2: the plan's Source;
/// 3: views marked on their steps; 4: outputs written in place; 5: fusion
/// groups' members; 6: the device mesh and collective steps, mesh.*; 7: the
/// log_uniform initialisation and its init_high).
constexpr uint32_t kPlanVersion = 7;

/// The description a plan was compiled from and the moec options that shaped
/// it, stored in the plan so that the runtime can have it compiled again for
/// another batch shape.
struct PlanSource {
  std::string fileName; // base name; the extension selects the importer
  std::string text;
  std::vector<std::string> options; // e.g. {"--set", "num_layers=2"}
};

/// "bf16" when an op of `module` computes its matrix products in bf16
/// (`moe.precision`), else "fp32": what the plan records.
std::string precisionOf(mlir::ModuleOp module);

/// Serialises `module` (functions after `--moe-plan-memory`) with the run
/// configuration of `config`, the device code a target generated for it
/// and, when given, its `source`. Fails, with a diagnostic on the offending
/// op, when a function is not planned or a value cannot be represented.
mlir::FailureOr<std::vector<uint8_t>>
emitPlan(mlir::ModuleOp module, const frontend::ModelConfig &config,
         const TargetArtifacts &artifacts,
         const std::optional<PlanSource> &source = std::nullopt);

} // namespace moec::target

#endif // MOEC_COMPILER_TARGET_PLANEMITTER_H
