//===- ElementwiseKernels.cpp - kernels of elementwise ops ---------------===//
//
// One thread per element, grid-stride: moe.add, moe.activation.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/ActivationCode.h"
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

FailureOr<CudaKernel> elementwise(Operation *op, StringRef stem, StringRef expression) {
  KernelWriter w(op, stem);
  int64_t n = numElements(op->getResult(0));
  w.os() << forEachElement(n) << "    out0[i] = " << expression << ";\n";
  unsigned threads = 256;
  return w.finish({blocksFor(n, threads), 1, 1}, {threads, 1, 1}, /*usesBarriers=*/false);
}

struct AddKernel : CudaKernelOpInterface::ExternalModel<AddKernel, AddOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    return elementwise(op, "add", "in0[i] + in1[i]");
  }
};

struct ActivationKernel : CudaKernelOpInterface::ExternalModel<ActivationKernel, ActivationOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto activation = cast<ActivationOp>(op);
    return elementwise(op, ("activation_" + stringifyActivation(activation.getKind())).str(),
                       activationCode(activation.getKind(), "in0[i]"));
  }
};
struct ActivationGradKernel
    : CudaKernelOpInterface::ExternalModel<ActivationGradKernel, ActivationGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    Activation kind = cast<ActivationGradOp>(op).getKind();
    KernelWriter w(op, ("activation_grad_" + stringifyActivation(kind)).str());
    w.helpers() << kActivationGradHelpers;
    int64_t n = numElements(op->getResult(0));
    w.os() << forEachElement(n) << "    out0[i] = in1[i] * " << activationGradCode(kind, "in0[i]")
           << ";\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

struct FillKernel : CudaKernelOpInterface::ExternalModel<FillKernel, FillOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto fill = cast<FillOp>(op);
    if (!cast<RankedTensorType>(fill.getType()).getElementType().isF32())
      return op->emitOpError("the cuda target fills f32 tensors only");
    return elementwise(op, "fill", floatLiteral(fill.getValueAttr().getValueAsDouble()));
  }
};
} // namespace

void attachElementwiseKernels(MLIRContext *context) {
  AddOp::attachInterface<AddKernel>(*context);
  ActivationOp::attachInterface<ActivationKernel>(*context);
  ActivationGradOp::attachInterface<ActivationGradKernel>(*context);
  FillOp::attachInterface<FillKernel>(*context);
}

} // namespace moec::codegen
