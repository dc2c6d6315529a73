//===- OptimizerKernels.cpp - kernels of the optimizer step ---------------===//
//
// moe.global_norm (one block: a reduction in a fixed order, in f64),
// moe.clip_scale and moe.lr_schedule (one thread), moe.adamw_update and
// moe.sgd_update (one thread per element, as the CPU kernels compute them).
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

#include <algorithm>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// sqrt(Σ g²) over every gradient, in two launches that always add the
/// same numbers in the same order: block b sums the b-th slice of each
/// gradient (f64) into the workspace, then one block adds the partial sums.
struct GlobalNormKernel : CudaKernelOpInterface::ExternalModel<GlobalNormKernel, GlobalNormOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t total = 0;
    for (Value grad : op->getOperands())
      total += numElements(grad);
    unsigned threads = 256;
    // About 16 elements per thread per block, at most 1024 blocks.
    int64_t blocks = std::clamp<int64_t>((total + threads * 16 - 1) / (threads * 16), 1, 1024);
    KernelWriter w(op, "global_norm");
    w.setWorkspace(blocks * sizeof(double));
    w.beginEntry("partials", {static_cast<unsigned>(blocks), 1, 1}, {threads, 1, 1}, true);
    w.os() << "  __shared__ double scratch[" << threads << "];\n"
           << "  double sum = 0.0;\n";
    for (auto [k, grad] : llvm::enumerate(op->getOperands())) {
      int64_t n = numElements(grad), slice = (n + blocks - 1) / blocks;
      w.os() << "  for (long long i = blockIdx.x * " << slice << "LL + threadIdx.x; i < "
             << "(blockIdx.x + 1) * " << slice << "LL && i < " << n << "LL; i += blockDim.x)\n"
             << "    sum += (double)in" << k << "[i] * in" << k << "[i];\n";
    }
    w.os() << "  sum = moec_block_sum(sum, scratch);\n"
           << "  if (threadIdx.x == 0)\n"
           << "    ((double *)workspace)[blockIdx.x] = sum;\n";
    w.beginEntry("sum", {1, 1, 1}, {1024, 1, 1}, true);
    w.os() << "  __shared__ double scratch[1024];\n"
           << "  double sum = threadIdx.x < " << blocks
           << " ? ((const double *)workspace)[threadIdx.x] : 0.0;\n"
           << "  sum = moec_block_sum(sum, scratch);\n"
           << "  if (threadIdx.x == 0)\n"
           << "    out0[0] = (float)sqrt(sum);\n";
    return w.finish();
  }
};

struct ClipScaleKernel : CudaKernelOpInterface::ExternalModel<ClipScaleKernel, ClipScaleOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    KernelWriter w(op, "clip_scale");
    w.os() << "  double norm = in0[0], maxNorm = in1[0];\n"
           << "  out0[0] = maxNorm > 0.0 ? (float)fmin(1.0, maxNorm / (norm + 1e-6)) : 1.0f;\n";
    return w.finish({1, 1, 1}, {1, 1, 1}, /*usesBarriers=*/false);
  }
};

struct LRScheduleKernel : CudaKernelOpInterface::ExternalModel<LRScheduleKernel, LRScheduleOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    LRScheduleKind kind = cast<LRScheduleOp>(op).getKind();
    KernelWriter w(op, ("lr_schedule_" + stringifyLRScheduleKind(kind)).str());
    w.os() << "  long long step = in0[0], warmup = in2[0], total = in3[0];\n"
           << "  double lr = in1[0], ratio = in4[0], value = lr;\n"
           << "  if (step < warmup) {\n"
           << "    value = lr * (double)(step + 1) / warmup;\n";
    if (kind != LRScheduleKind::constant) {
      w.os() << "  } else {\n"
             << "    long long span = total - warmup > 1 ? total - warmup : 1;\n"
             << "    double p = fmin(fmax((double)(step - warmup) / span, 0.0), 1.0);\n";
      if (kind == LRScheduleKind::cosine)
        w.os() << "    value = lr * (ratio + (1 - ratio) * 0.5 * (1 + cos(3.14159265358979323846 * p)));\n";
      else
        w.os() << "    value = lr * (1 - (1 - ratio) * p);\n";
    }
    w.os() << "  }\n"
           << "  out0[0] = (float)value;\n";
    return w.finish({1, 1, 1}, {1, 1, 1}, /*usesBarriers=*/false);
  }
};

struct AdamWKernel : CudaKernelOpInterface::ExternalModel<AdamWKernel, AdamWUpdateOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t n = numElements(op->getOperand(0));
    KernelWriter w(op, "adamw_update");
    // in: param, grad, m, v, step, lr, clip, beta1, beta2, eps, weight decay.
    w.os() << "  long long t = in4[0] + 1;\n"
           << "  float lr = in5[0], clip = in6[0], beta1 = in7[0], beta2 = in8[0], eps = in9[0],\n"
           << "        wd = in10[0];\n"
           << "  double correction1 = 1.0 - pow((double)beta1, (double)t);\n"
           << "  double correction2 = 1.0 - pow((double)beta2, (double)t);\n"
           << "  float stepSize = (float)(lr / correction1);\n"
           << "  float sqrtCorrection2 = (float)sqrt(correction2);\n"
           << forEachElement(n) << "  {\n"
           << "    float grad = in1[i] * clip;\n"
           << "    float param = in0[i] * (1.0f - lr * wd);\n"
           << "    float m = beta1 * in2[i] + (1.0f - beta1) * grad;\n"
           << "    float v = beta2 * in3[i] + (1.0f - beta2) * grad * grad;\n"
           << "    out1[i] = m;\n"
           << "    out2[i] = v;\n"
           << "    out0[i] = param - stepSize * m / (sqrtf(v) / sqrtCorrection2 + eps);\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

struct SGDKernel : CudaKernelOpInterface::ExternalModel<SGDKernel, SGDUpdateOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t n = numElements(op->getOperand(0));
    KernelWriter w(op, "sgd_update");
    // in: param, grad, momentum buffer, step, lr, clip, momentum, weight decay.
    w.os() << "  long long step = in3[0];\n"
           << "  float lr = in4[0], clip = in5[0], momentum = in6[0], wd = in7[0];\n"
           << "  bool useMomentum = momentum != 0.0f, hasHistory = useMomentum && step > 0;\n"
           << forEachElement(n) << "  {\n"
           << "    float d = in1[i] * clip + wd * in0[i];\n"
           << "    float b = hasHistory ? momentum * in2[i] + d : d;\n"
           << "    out1[i] = b;\n"
           << "    out0[i] = in0[i] - lr * (useMomentum ? b : d);\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

void attachOptimizerKernels(MLIRContext *context) {
  GlobalNormOp::attachInterface<GlobalNormKernel>(*context);
  ClipScaleOp::attachInterface<ClipScaleKernel>(*context);
  LRScheduleOp::attachInterface<LRScheduleKernel>(*context);
  AdamWUpdateOp::attachInterface<AdamWKernel>(*context);
  SGDUpdateOp::attachInterface<SGDKernel>(*context);
}

} // namespace moec::codegen
