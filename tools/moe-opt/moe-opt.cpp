//===- moe-opt.cpp - mlir-opt with the moe dialect and every moec pass ----===//
#include "compiler/pipelines/Pipelines.h"
#include "dialects/moe/IR/MeshGradients.h"
#include "dialects/moe/IR/MoEDialect.h"
#include "dialects/moe/IR/TensorGradients.h"
#include "dialects/moe/IR/TensorViews.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Mesh/IR/MeshDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<moec::moe::MoEDialect, mlir::arith::ArithDialect,
                  mlir::func::FuncDialect, mlir::mesh::MeshDialect,
                  mlir::tensor::TensorDialect>();
  moec::moe::registerTensorGradientModels(registry);
  moec::moe::registerMeshGradientModels(registry);
  moec::moe::registerTensorViewModels(registry);

  // Upstream cleanups (canonicalize, cse, ...) beside the moec passes.
  mlir::registerTransformsPasses();
  moec::registerMoecPassesAndPipelines();

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "moec optimizer driver\n", registry));
}
