//===- ElementwiseKernels.cpp - kernels of elementwise ops ---------------===//
//
// One thread per element, grid-stride: moe.add, moe.activation.
//
//===----------------------------------------------------------------------===//
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

/// f(x) of each activation, as the CPU kernels compute it (runtime/cpu/Math.h).
std::string activationExpression(Activation kind, StringRef x) {
  std::string v = x.str();
  switch (kind) {
  case Activation::relu:
    return v + " > 0.0f ? " + v + " : 0.0f";
  case Activation::gelu:
    return "0.5f * " + v + " * (1.0f + erff(" + v + " * 0.70710678118654752f))";
  case Activation::gelu_tanh:
    return "0.5f * " + v + " * (1.0f + tanhf(0.7978845608028654f * (" + v + " + 0.044715f * " +
           v + " * " + v + " * " + v + ")))";
  case Activation::silu:
    return v + " / (1.0f + expf(-" + v + "))";
  }
  return v;
}

struct ActivationKernel : CudaKernelOpInterface::ExternalModel<ActivationKernel, ActivationOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto activation = cast<ActivationOp>(op);
    return elementwise(op, ("activation_" + stringifyActivation(activation.getKind())).str(),
                       activationExpression(activation.getKind(), "in0[i]"));
  }
};
/// f'(x) of each activation, as the CPU kernels compute it (activateGrad).
std::string activationGradExpression(Activation kind) {
  switch (kind) {
  case Activation::relu:
    return "float d = x > 0.0f ? 1.0f : 0.0f;";
  case Activation::gelu:
    return "float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));\n"
           "    float pdf = 0.3989422804014327f * expf(-0.5f * x * x);\n"
           "    float d = cdf + x * pdf;";
  case Activation::gelu_tanh:
    return "const float c = 0.7978845608028654f;\n"
           "    float t = tanhf(c * (x + 0.044715f * x * x * x));\n"
           "    float d = 0.5f * (1.0f + t) +\n"
           "              0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);";
  case Activation::silu:
    return "float sig = 1.0f / (1.0f + expf(-x));\n"
           "    float d = sig * (1.0f + x * (1.0f - sig));";
  }
  return "float d = 1.0f;";
}

struct ActivationGradKernel
    : CudaKernelOpInterface::ExternalModel<ActivationGradKernel, ActivationGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    Activation kind = cast<ActivationGradOp>(op).getKind();
    KernelWriter w(op, ("activation_grad_" + stringifyActivation(kind)).str());
    int64_t n = numElements(op->getResult(0));
    w.os() << forEachElement(n) << "  {\n"
           << "    float x = in0[i];\n"
           << "    " << activationGradExpression(kind) << "\n"
           << "    out0[i] = in1[i] * d;\n"
           << "  }\n";
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
