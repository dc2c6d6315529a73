//===- Pipelines.h - the named pass pipelines moec runs ------------*- C++ -*-===//
#ifndef MOEC_COMPILER_PIPELINES_PIPELINES_H
#define MOEC_COMPILER_PIPELINES_PIPELINES_H

#include "compiler/transforms/Passes.h"

#include "mlir/Pass/PassManager.h"

namespace moec {

/// Forward IR to what the plan emitter serialises: cleanups, cheap forward
/// ops recomputed for the backward pass (unless `rematerialize` is off),
/// the fusion groups of `fusion`, collectives moved up to their operands
/// (`issueCollectivesEarly`, for overlap), then one arena per function
/// (`--moe-lower-to-plan` in moe-opt, with no fusion). `libraryGemms`: the
/// target runs dense products through a library (moec --gemm=cublaslt), so
/// fusion leaves them whole.
void buildLowerToPlanPipeline(mlir::OpPassManager &pm, bool rematerialize = true,
                              moe::FusionStrategy fusion = moe::FusionStrategy::none,
                              bool issueCollectivesEarly = false, bool libraryGemms = false);

/// The training steps from a model's training forward function
/// `@forward_train`: expert FFNs split for backward, autodiff, then one step
/// per optimizer, `@train_step_adamw` and `@train_step_sgd`
/// (`--moe-build-training`). On a sharded module, gradients are summed over
/// the ranks before the optimizer reads them, and with
/// `shardOptimizerState` (moec --zero=1) each rank keeps a slice of the
/// optimizer state.
void buildTrainingPipeline(mlir::OpPassManager &pm, const MoEOptimizerPassOptions &optimizer,
                           bool shardOptimizerState = false);

/// Registers every moec pass and pipeline with MLIR's registry.
void registerMoecPassesAndPipelines();

} // namespace moec

#endif // MOEC_COMPILER_PIPELINES_PIPELINES_H
