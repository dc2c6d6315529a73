//===- NormKernels.cpp - kernels of normalisations ------------------------===//
//
// One block per row; the row's sum of squares is a block reduction in a
// fixed order: moe.rms_norm.
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

struct RMSNormKernel : CudaKernelOpInterface::ExternalModel<RMSNormKernel, RMSNormOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto norm = cast<RMSNormOp>(op);
    auto type = cast<RankedTensorType>(norm.getInput().getType());
    int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
    unsigned threads = std::min(threadsFor(D), 256u);
    KernelWriter w(op, "rms_norm");
    w.os() << "  __shared__ float scratch[" << threads << "];\n"
           << "  for (long long r = blockIdx.x; r < " << rows << "LL; r += gridDim.x) {\n"
           << "    const float *x = in0 + r * " << D << "LL;\n"
           << "    float *y = out0 + r * " << D << "LL;\n"
           << "    float sum = 0.0f;\n"
           << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x)\n"
           << "      sum += x[i] * x[i];\n"
           << "    sum = moec_block_sum(sum, scratch);\n"
           << "    float scale = 1.0f / sqrtf(sum / " << D << ".0f + "
           << floatLiteral(norm.getEpsAttr().getValueAsDouble()) << ");\n"
           << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x)\n"
           << "      y[i] = in1[i] * (x[i] * scale);\n"
           << "  }\n";
    return w.finish({static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
                    {threads, 1, 1}, /*usesBarriers=*/true);
  }
};
/// Two launches: one block per row computes dx and keeps the row's
/// 1/rms in the workspace; then one thread per column sums the rows' dw
/// terms in row order (deterministic, no atomics).
struct RMSNormGradKernel : CudaKernelOpInterface::ExternalModel<RMSNormGradKernel, RMSNormGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<RMSNormGradOp>(op);
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
    unsigned threads = std::min(threadsFor(D), 256u);
    KernelWriter w(op, "rms_norm_grad");
    w.setWorkspace(rows * sizeof(float));
    // in: x, w, dy; out: dx, dw.
    w.beginEntry("rows", {static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
                 {threads, 1, 1}, /*usesBarriers=*/true);
    w.os() << "  __shared__ float scratch[" << threads << "];\n"
           << "  float *inverseRms = (float *)workspace;\n"
           << "  for (long long r = blockIdx.x; r < " << rows << "LL; r += gridDim.x) {\n"
           << "    const float *x = in0 + r * " << D << "LL, *g = in2 + r * " << D << "LL;\n"
           << "    float sum = 0.0f, dot = 0.0f;\n"
           << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x) {\n"
           << "      sum += x[i] * x[i];\n"
           << "      dot += in1[i] * g[i] * x[i];\n"
           << "    }\n"
           << "    sum = moec_block_sum(sum, scratch);\n"
           << "    dot = moec_block_sum(dot, scratch);\n"
           << "    float rs = 1.0f / sqrtf(sum / " << D << ".0f + "
           << floatLiteral(grad.getEpsAttr().getValueAsDouble()) << ");\n"
           << "    float coefficient = dot * rs * rs * rs / " << D << ".0f;\n"
           << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x)\n"
           << "      out0[r * " << D << "LL + i] = rs * in1[i] * g[i] - x[i] * coefficient;\n"
           << "    if (threadIdx.x == 0)\n"
           << "      inverseRms[r] = rs;\n"
           << "  }\n";
    w.beginEntry("weight", {blocksFor(D, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
    w.os() << "  const float *inverseRms = (const float *)workspace;\n"
           << forEachElement(D, "j") << "  {\n"
           << "    float sum = 0.0f;\n"
           << "    for (long long r = 0; r < " << rows << "LL; ++r)\n"
           << "      sum += in2[r * " << D << "LL + j] * in0[r * " << D
           << "LL + j] * inverseRms[r];\n"
           << "    out1[j] = sum;\n"
           << "  }\n";
    return w.finish();
  }
};
} // namespace

void attachNormKernels(MLIRContext *context) {
  RMSNormOp::attachInterface<RMSNormKernel>(*context);
  RMSNormGradOp::attachInterface<RMSNormGradKernel>(*context);
}

} // namespace moec::codegen
