//===- Pipelines.cpp - the named pass pipelines moec runs -----------------===//
#include "compiler/pipelines/Pipelines.h"

#include "compiler/transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace moec {

void buildLowerToPlanPipeline(mlir::OpPassManager &pm, bool rematerialize,
                              moe::FusionStrategy fusion, bool issueCollectivesEarly,
                              bool libraryGemms) {
  // Private functions (a training forward already differentiated) go.
  pm.addPass(mlir::createSymbolDCEPass());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  // After CSE, which would merge the recomputations back.
  if (rematerialize)
    pm.addNestedPass<mlir::func::FuncOp>(createMoERematerializePass());
  // Before memory planning: values inside a group take no arena bytes.
  if (fusion != moe::FusionStrategy::none)
    pm.addNestedPass<mlir::func::FuncOp>(createMoEFusionPass({fusion, libraryGemms}));
  // The last reordering before memory planning, which sees the lifetimes.
  if (issueCollectivesEarly)
    pm.addNestedPass<mlir::func::FuncOp>(createMoEIssueCollectivesEarlyPass());
  pm.addNestedPass<mlir::func::FuncOp>(createMoEPlanMemoryPass());
}

void buildTrainingPipeline(mlir::OpPassManager &pm, const MoEOptimizerPassOptions &optimizer,
                           bool shardOptimizerState) {
  MoESplitExpertFFNPassOptions split;
  split.function = "forward_train";
  pm.addPass(createMoESplitExpertFFNPass(split));
  MoEAutodiffPassOptions autodiff;
  autodiff.function = "forward_train";
  pm.addPass(createMoEAutodiffPass(autodiff));
  // Sharded modules (a mesh.mesh): every rank's gradients summed before the
  // optimizer reads them; a module without a mesh is left as it is.
  pm.addPass(createMoEReduceGradientsPass());
  // One training step per optimizer, so that moe-run --optimizer can choose;
  // the description's hyperparameters apply to both.
  for (moe::OptimizerKind kind : {moe::OptimizerKind::adamw, moe::OptimizerKind::sgd}) {
    MoEOptimizerPassOptions options = optimizer;
    options.source = "forward_train_backward";
    options.optimizer = kind;
    options.name = "train_step_" + moe::stringifyOptimizerKind(kind).str();
    pm.addPass(createMoEOptimizerPass(options));
  }
  if (shardOptimizerState)
    pm.addPass(createMoEShardOptimizerStatePass());
}

void registerMoecPassesAndPipelines() {
  registerMoECPasses();
  mlir::PassPipelineRegistration<>(
      "moe-lower-to-plan",
      "Clean up, recompute cheap forward ops for the backward pass and plan the "
      "memory of every function",
      [](mlir::OpPassManager &pm) { buildLowerToPlanPipeline(pm); });
  mlir::PassPipelineRegistration<>(
      "moe-build-training",
      "Differentiate @forward_train and build @train_step_adamw and "
      "@train_step_sgd with the default "
      "optimizer options (run --moe-autodiff and --moe-optimizer to set them)",
      [](mlir::OpPassManager &pm) { buildTrainingPipeline(pm, {}); });
}

} // namespace moec
