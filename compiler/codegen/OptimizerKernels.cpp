//===- OptimizerKernels.cpp - kernels of the optimizer step ---------------===//
//
// moe.global_norm (one block: a reduction in a fixed order, in f64),
// moe.clip_scale and moe.lr_schedule (one thread), moe.adamw_update and
// moe.sgd_update (one thread per element, as the CPU kernels compute them).
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/ElementwiseCode.h"
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

// in: param, grad, m, v, step, lr, clip, beta1, beta2, eps, weight decay;
// out: param, m, v.
struct AdamWLoop : ElementLoopKernelOpInterface::ExternalModel<AdamWLoop, AdamWUpdateOp> {
  void writeSetup(Operation *op, raw_ostream &os, ArrayRef<std::string> n) const {
    os << "    long long t = " << n[4] << "[0] + 1;\n"
       << "    float lr = " << n[5] << "[0], clip = " << n[6] << "[0], beta1 = " << n[7]
       << "[0], beta2 = " << n[8] << "[0],\n"
       << "          eps = " << n[9] << "[0], wd = " << n[10] << "[0];\n"
       << "    double correction1 = 1.0 - pow((double)beta1, (double)t);\n"
       << "    double correction2 = 1.0 - pow((double)beta2, (double)t);\n"
       << "    float stepSize = (float)(lr / correction1);\n"
       << "    float sqrtCorrection2 = (float)sqrt(correction2);\n";
  }
  void writeElement(Operation *op, raw_ostream &os, ArrayRef<std::string> n) const {
    os << "      float grad = " << n[1] << "[i] * clip;\n"
       << "      float param = " << n[0] << "[i] * (1.0f - lr * wd);\n"
       << "      float m = beta1 * " << n[2] << "[i] + (1.0f - beta1) * grad;\n"
       << "      float v = beta2 * " << n[3] << "[i] + (1.0f - beta2) * grad * grad;\n"
       << "      " << n[12] << "[i] = m;\n"
       << "      " << n[13] << "[i] = v;\n"
       << "      " << n[11] << "[i] = param - stepSize * m / (sqrtf(v) / sqrtCorrection2 + eps);\n";
  }
};

// in: param, grad, momentum buffer, step, lr, clip, momentum, weight decay;
// out: param, momentum buffer.
struct SGDLoop : ElementLoopKernelOpInterface::ExternalModel<SGDLoop, SGDUpdateOp> {
  void writeSetup(Operation *op, raw_ostream &os, ArrayRef<std::string> n) const {
    os << "    long long step = " << n[3] << "[0];\n"
       << "    float lr = " << n[4] << "[0], clip = " << n[5] << "[0], momentum = " << n[6]
       << "[0], wd = " << n[7] << "[0];\n"
       << "    bool useMomentum = momentum != 0.0f, hasHistory = useMomentum && step > 0;\n";
  }
  void writeElement(Operation *op, raw_ostream &os, ArrayRef<std::string> n) const {
    os << "      float d = " << n[1] << "[i] * clip + wd * " << n[0] << "[i];\n"
       << "      float b = hasHistory ? momentum * " << n[2] << "[i] + d : d;\n"
       << "      " << n[9] << "[i] = b;\n"
       << "      " << n[8] << "[i] = " << n[0] << "[i] - lr * (useMomentum ? b : d);\n";
  }
};

std::string kernelStem(AdamWUpdateOp) { return "adamw_update"; }
std::string kernelStem(SGDUpdateOp) { return "sgd_update"; }

/// The kernel of one update alone.
template <typename OpT>
struct UpdateKernel : CudaKernelOpInterface::ExternalModel<UpdateKernel<OpT>, OpT> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    return elementLoopKernel(op, kernelStem(cast<OpT>(op)), {op});
  }
};
} // namespace

void attachOptimizerKernels(MLIRContext *context) {
  GlobalNormOp::attachInterface<GlobalNormKernel>(*context);
  ClipScaleOp::attachInterface<ClipScaleKernel>(*context);
  LRScheduleOp::attachInterface<LRScheduleKernel>(*context);
  AdamWUpdateOp::attachInterface<AdamWLoop, UpdateKernel<AdamWUpdateOp>>(*context);
  SGDUpdateOp::attachInterface<SGDLoop, UpdateKernel<SGDUpdateOp>>(*context);
}

} // namespace moec::codegen
