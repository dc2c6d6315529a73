//===- OpKernelModels.h - attaching CudaKernelOpInterface, by op family -*- C++ -*-===//
#ifndef MOEC_COMPILER_CODEGEN_OPKERNELMODELS_H
#define MOEC_COMPILER_CODEGEN_OPKERNELMODELS_H

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace moec::codegen {

// One function per file of kernel models; registerCudaKernelModels calls each.
void attachAttentionKernels(mlir::MLIRContext *context);
void attachDenseKernels(mlir::MLIRContext *context);
void attachDispatchKernels(mlir::MLIRContext *context);
void attachElementwiseKernels(mlir::MLIRContext *context);
void attachExpertKernels(mlir::MLIRContext *context);
void attachFusedKernels(mlir::MLIRContext *context); // moe.fused groups
void attachGemmKernels(mlir::MLIRContext *context);
void attachLinearAttentionKernels(mlir::MLIRContext *context); // gated DeltaNet
void attachLossKernels(mlir::MLIRContext *context);
void attachNormKernels(mlir::MLIRContext *context);
void attachOptimizerKernels(mlir::MLIRContext *context);
void attachRouterVariantKernels(mlir::MLIRContext *context);
void attachRoutingKernels(mlir::MLIRContext *context);
void attachTensorKernels(mlir::MLIRContext *context); // upstream tensor ops
void attachShapeKernels(mlir::MLIRContext *context);  // moe.transpose, moe.broadcast

} // namespace moec::codegen

#endif // MOEC_COMPILER_CODEGEN_OPKERNELMODELS_H
