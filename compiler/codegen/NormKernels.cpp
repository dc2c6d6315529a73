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
} // namespace

void attachNormKernels(MLIRContext *context) {
  RMSNormOp::attachInterface<RMSNormKernel>(*context);
}

} // namespace moec::codegen
