//===- Pipelines.cpp - the named pass pipelines moec runs -----------------===//
#include "compiler/pipelines/Pipelines.h"

#include "compiler/transforms/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace moec {

void buildLowerToPlanPipeline(mlir::OpPassManager &pm) {
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  pm.addNestedPass<mlir::func::FuncOp>(createMoEPlanMemoryPass());
}

void registerMoecPassesAndPipelines() {
  registerMoECPasses();
  mlir::PassPipelineRegistration<>(
      "moe-lower-to-plan",
      "Clean up forward IR and plan the memory of every function",
      buildLowerToPlanPipeline);
}

} // namespace moec
