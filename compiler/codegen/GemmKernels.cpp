//===- GemmKernels.cpp - reference kernels of the dense GEMM ops ----------===//
//
// moe.linear, moe.router_logits and moe.linear_grad as one thread per output
// element summing in index order: correct and deterministic, not fast. On a
// GPU these ops are meant for cuBLASLt; these kernels are the generated
// fallback and the reference the library path is checked against.
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

/// y[r, o] = Σ_k x[r, k] W[o, k] (+ b[o]) for x [rows, in], W [out, in].
FailureOr<CudaKernel> linearKernel(Operation *op, StringRef stem, Value x, Value weight,
                                   Value bias) {
  auto w = cast<RankedTensorType>(weight.getType());
  int64_t out = w.getDimSize(0), in = w.getDimSize(1), rows = numElements(x) / in;
  KernelWriter k(op, stem);
  k.os() << forEachElement(rows * out) << "  {\n"
         << "    long long r = i / " << out << "LL, o = i % " << out << "LL;\n"
         << "    const float *a = " << k.name(x) << " + r * " << in << "LL, *b = "
         << k.name(weight) << " + o * " << in << "LL;\n"
         << "    float acc = 0.0f;\n"
         << "    for (int j = 0; j < " << in << "; ++j)\n"
         << "      acc += a[j] * b[j];\n"
         << "    out0[i] = acc" << (bias ? " + " + k.name(bias) + "[o]" : std::string()) << ";\n"
         << "  }\n";
  return k.finish({blocksFor(rows * out, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
}

struct LinearKernel : CudaKernelOpInterface::ExternalModel<LinearKernel, LinearOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto linear = cast<LinearOp>(op);
    return linearKernel(op, "linear", linear.getInput(), linear.getWeight(), linear.getBias());
  }
};

struct RouterLogitsKernel : CudaKernelOpInterface::ExternalModel<RouterLogitsKernel, RouterLogitsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto logits = cast<RouterLogitsOp>(op);
    return linearKernel(op, "router_logits", logits.getInput(), logits.getWeight(), Value());
  }
};

/// dx = dy W, dW = dyᵀ x: two launches.
struct LinearGradKernel : CudaKernelOpInterface::ExternalModel<LinearGradKernel, LinearGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto w = cast<RankedTensorType>(op->getOperand(1).getType());
    int64_t out = w.getDimSize(0), in = w.getDimSize(1);
    int64_t rows = numElements(op->getOperand(0)) / in;
    KernelWriter k(op, "linear_grad");
    // in: x, W, dy; out: dx, dW.
    k.beginEntry("input", {blocksFor(rows * in, 256), 1, 1}, {256, 1, 1}, false);
    k.os() << forEachElement(rows * in) << "  {\n"
           << "    long long r = i / " << in << "LL, c = i % " << in << "LL;\n"
           << "    float acc = 0.0f;\n"
           << "    for (long long o = 0; o < " << out << "LL; ++o)\n"
           << "      acc += in2[r * " << out << "LL + o] * in1[o * " << in << "LL + c];\n"
           << "    out0[i] = acc;\n"
           << "  }\n";
    k.beginEntry("weight", {blocksFor(out * in, 256), 1, 1}, {256, 1, 1}, false);
    k.os() << forEachElement(out * in) << "  {\n"
           << "    long long o = i / " << in << "LL, c = i % " << in << "LL;\n"
           << "    float acc = 0.0f;\n"
           << "    for (long long r = 0; r < " << rows << "LL; ++r)\n"
           << "      acc += in2[r * " << out << "LL + o] * in0[r * " << in << "LL + c];\n"
           << "    out1[i] = acc;\n"
           << "  }\n";
    return k.finish();
  }
};
} // namespace

void attachGemmKernels(MLIRContext *context) {
  LinearOp::attachInterface<LinearKernel>(*context);
  RouterLogitsOp::attachInterface<RouterLogitsKernel>(*context);
  LinearGradOp::attachInterface<LinearGradKernel>(*context);
}

} // namespace moec::codegen
