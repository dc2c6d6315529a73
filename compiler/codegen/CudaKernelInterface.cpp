//===- CudaKernelInterface.cpp - the interface and its registration -------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEDialect.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"

#include "compiler/codegen/CudaKernelInterface.cpp.inc"

namespace moec::codegen {

void registerCudaKernelModels(mlir::DialectRegistry &registry) {
  registry.addExtension(+[](mlir::MLIRContext *context, moe::MoEDialect *) {
    attachAttentionKernels(context);
    attachDenseKernels(context);
    attachShapeKernels(context);
    attachDispatchKernels(context);
    attachElementwiseKernels(context);
    attachExpertKernels(context);
    attachFusedKernels(context);
    attachGemmKernels(context);
    attachLinearAttentionKernels(context);
    attachLossKernels(context);
    attachNormKernels(context);
    attachOptimizerKernels(context);
    attachRouterVariantKernels(context);
    attachRoutingKernels(context);
  });
  registry.addExtension(+[](mlir::MLIRContext *context, mlir::tensor::TensorDialect *) {
    attachTensorKernels(context);
  });
}

} // namespace moec::codegen
