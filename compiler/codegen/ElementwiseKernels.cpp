//===- ElementwiseKernels.cpp - kernels of elementwise ops ---------------===//
//
// moe.add, moe.multiply, moe.scale, moe.activation and moe.activation_grad give the expression of
// one element (ElementKernelOpInterface); their own kernels, fused
// elementwise kernels and router kernels compose those expressions.
// moe.fill writes a constant. moe.clamped_swiglu and its gradient read
// interleaved (gate, up) pairs: a thread per pair.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/ActivationCode.h"
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/ElementwiseCode.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

struct AddElement : ElementKernelOpInterface::ExternalModel<AddElement, AddOp> {
  std::string elementExpression(Operation *op, KernelWriter &w, ArrayRef<std::string> in) const {
    return "(" + in[0] + " + " + in[1] + ")";
  }
};

struct ActivationElement
    : ElementKernelOpInterface::ExternalModel<ActivationElement, ActivationOp> {
  std::string elementExpression(Operation *op, KernelWriter &w, ArrayRef<std::string> in) const {
    return activationCode(cast<ActivationOp>(op).getKind(), in[0]);
  }
};

struct ActivationGradElement
    : ElementKernelOpInterface::ExternalModel<ActivationGradElement, ActivationGradOp> {
  std::string elementExpression(Operation *op, KernelWriter &w, ArrayRef<std::string> in) const {
    w.useHelper(kActivationGradHelpers);
    return "(" + in[1] + " * " + activationGradCode(cast<ActivationGradOp>(op).getKind(), in[0]) +
           ")";
  }
};

struct MultiplyElement : ElementKernelOpInterface::ExternalModel<MultiplyElement, MultiplyOp> {
  std::string elementExpression(Operation *op, KernelWriter &w, ArrayRef<std::string> in) const {
    return "(" + in[0] + " * " + in[1] + ")";
  }
};

struct ScaleElement : ElementKernelOpInterface::ExternalModel<ScaleElement, ScaleOp> {
  std::string elementExpression(Operation *op, KernelWriter &w, ArrayRef<std::string> in) const {
    return "(" + in[0] + " * " + floatLiteral(cast<ScaleOp>(op).getFactor().convertToDouble()) +
           ")";
  }
};

std::string kernelStem(AddOp) { return "add"; }
std::string kernelStem(ScaleOp) { return "scale"; }
std::string kernelStem(MultiplyOp) { return "multiply"; }
std::string kernelStem(ActivationOp op) {
  return ("activation_" + stringifyActivation(op.getKind())).str();
}
std::string kernelStem(ActivationGradOp op) {
  return ("activation_grad_" + stringifyActivation(op.getKind())).str();
}

/// The kernel of an elementwise op alone: a group of one.
template <typename OpT>
struct ElementOpKernel : CudaKernelOpInterface::ExternalModel<ElementOpKernel<OpT>, OpT> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    return elementwiseKernel(op, kernelStem(cast<OpT>(op)), op->getResults(), {op});
  }
};

struct FillKernel : CudaKernelOpInterface::ExternalModel<FillKernel, FillOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto fill = cast<FillOp>(op);
    if (!cast<RankedTensorType>(fill.getType()).getElementType().isF32())
      return op->emitOpError("the cuda target fills f32 tensors only");
    KernelWriter w(op, "fill");
    int64_t n = numElements(fill.getResult());
    w.os() << forEachElement(n)
           << "    out0[i] = " << floatLiteral(fill.getValueAttr().getValueAsDouble()) << ";\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};
/// g = min(gate, limit), u = clamp(up, -limit, limit), σ = σ(alpha g):
/// the statements declaring them for the pair of thread `i` of `in0`, as
/// runtime/cpu/Math.h computes them.
std::string clampedPair(double alpha, double limit) {
  std::string a = floatLiteral(alpha), l = floatLiteral(limit);
  return "    float gate = in0[2 * i], up = in0[2 * i + 1];\n"
         "    float g = fminf(gate, " +
         l + "), u = fminf(fmaxf(up, -" + l + "), " + l +
         ");\n"
         "    float sig = 1.0f / (1.0f + expf(-g * " +
         a + "));\n";
}

struct ClampedSwiGLUKernel
    : CudaKernelOpInterface::ExternalModel<ClampedSwiGLUKernel, ClampedSwiGLUOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto swiglu = cast<ClampedSwiGLUOp>(op);
    KernelWriter w(op, "clamped_swiglu");
    int64_t n = numElements(swiglu.getResult());
    w.os() << forEachElement(n) << "  {\n"
           << clampedPair(swiglu.getAlpha().convertToDouble(), swiglu.getLimit().convertToDouble())
           << "    out0[i] = (u + 1.0f) * (g * sig);\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

/// in0: the pre-activations, in1: the result's gradient; out0 the pairs'.
struct ClampedSwiGLUGradKernel
    : CudaKernelOpInterface::ExternalModel<ClampedSwiGLUGradKernel, ClampedSwiGLUGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<ClampedSwiGLUGradOp>(op);
    double limit = grad.getLimit().convertToDouble();
    std::string l = floatLiteral(limit), a = floatLiteral(grad.getAlpha().convertToDouble());
    KernelWriter w(op, "clamped_swiglu_grad");
    int64_t n = numElements(grad.getDresult());
    w.os() << forEachElement(n) << "  {\n"
           << clampedPair(grad.getAlpha().convertToDouble(), limit) << "    float dy = in1[i];\n"
           << "    out0[2 * i] = gate <= " << l << " ? dy * (u + 1.0f) * sig * (1.0f + g * " << a
           << " * (1.0f - sig)) : 0.0f;\n"
           << "    out0[2 * i + 1] = up >= -" << l << " && up <= " << l
           << " ? dy * g * sig : 0.0f;\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

void attachElementwiseKernels(MLIRContext *context) {
  AddOp::attachInterface<AddElement, ElementOpKernel<AddOp>>(*context);
  ScaleOp::attachInterface<ScaleElement, ElementOpKernel<ScaleOp>>(*context);
  MultiplyOp::attachInterface<MultiplyElement, ElementOpKernel<MultiplyOp>>(*context);
  ActivationOp::attachInterface<ActivationElement, ElementOpKernel<ActivationOp>>(*context);
  ActivationGradOp::attachInterface<ActivationGradElement, ElementOpKernel<ActivationGradOp>>(
      *context);
  FillOp::attachInterface<FillKernel>(*context);
  ClampedSwiGLUOp::attachInterface<ClampedSwiGLUKernel>(*context);
  ClampedSwiGLUGradOp::attachInterface<ClampedSwiGLUGradKernel>(*context);
}

} // namespace moec::codegen
