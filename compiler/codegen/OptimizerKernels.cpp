//===- OptimizerKernels.cpp - kernels of the optimizer step ---------------===//
//
// moe.global_norm (partial sums over slices, then one block adding them: a
// fixed order, in f64), moe.clip_scale and moe.lr_schedule (one thread),
// moe.adamw_update and moe.sgd_update (one thread per element, as the CPU
// kernels compute them), and the moe.fused optimizer kernel made of them.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/ElementwiseCode.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/OptimizerCode.h"

#include "dialects/moe/IR/MoEOps.h"

#include <algorithm>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// The blocks of the gradient norm's partial sums over gradients of
/// `sizes` elements: about 16 elements per thread, at most 1024 blocks.
int64_t normBlocks(ArrayRef<int64_t> sizes) {
  int64_t total = 0;
  for (int64_t n : sizes)
    total += n;
  return std::clamp<int64_t>((total + 256 * 16 - 1) / (256 * 16), 1, 1024);
}

/// Entry `label` of the gradient norm: block b of `blocks` sums the
/// squares of the b-th slice of each gradient (`names`, of `sizes`
/// elements) in f64 into `partials`[b].
void writeNormPartials(KernelWriter &w, StringRef label, ArrayRef<std::string> names,
                       ArrayRef<int64_t> sizes, int64_t blocks, StringRef partials) {
  unsigned threads = 256;
  w.beginEntry(label, {static_cast<unsigned>(blocks), 1, 1}, {threads, 1, 1}, true);
  w.os() << "  __shared__ double scratch[" << threads << "];\n"
         << "  double sum = 0.0;\n";
  for (auto [grad, n] : llvm::zip(names, sizes)) {
    int64_t slice = (n + blocks - 1) / blocks;
    w.os() << "  for (long long i = blockIdx.x * " << slice << "LL + threadIdx.x; i < "
           << "(blockIdx.x + 1) * " << slice << "LL && i < " << n << "LL; i += blockDim.x)\n"
           << "    sum += (double)" << grad << "[i] * " << grad << "[i];\n";
  }
  w.os() << "  sum = moec_block_sum(sum, scratch);\n"
         << "  if (threadIdx.x == 0)\n"
         << "    " << partials << "[blockIdx.x] = sum;\n";
}

/// Entry `label`, one block of 1024 threads: adds the `blocks` partial sums
/// in a fixed order; thread 0 then stores the norm to `norm` and runs `then`.
void writeNormTotal(KernelWriter &w, StringRef label, int64_t blocks, StringRef partials,
                    StringRef norm, StringRef then = "") {
  w.beginEntry(label, {1, 1, 1}, {1024, 1, 1}, true);
  w.os() << "  __shared__ double scratch[1024];\n"
         << "  double sum = threadIdx.x < " << blocks << " ? " << partials
         << "[threadIdx.x] : 0.0;\n"
         << "  sum = moec_block_sum(sum, scratch);\n"
         << "  if (threadIdx.x == 0) {\n"
         << "    " << norm << "[0] = (float)sqrt(sum);\n"
         << then << "  }\n";
}

/// Workspace for `blocks` f64 partial sums, as a `double *` expression.
std::string reservePartials(KernelWriter &w, int64_t blocks) {
  return "((double *)" + w.workspaceFloats(2 * blocks) + ")";
}

/// sqrt(Σ g²) over every gradient, in two launches that always add the
/// same numbers in the same order: block b sums the b-th slice of each
/// gradient (f64) into the workspace, then one block adds the partial sums.
struct GlobalNormKernel : CudaKernelOpInterface::ExternalModel<GlobalNormKernel, GlobalNormOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    KernelWriter w(op, "global_norm");
    SmallVector<std::string> names;
    SmallVector<int64_t> sizes;
    for (Value grad : op->getOperands()) {
      names.push_back(w.name(grad));
      sizes.push_back(numElements(grad));
    }
    int64_t blocks = normBlocks(sizes);
    std::string partials = reservePartials(w, blocks);
    writeNormPartials(w, "partials", names, sizes, blocks, partials);
    writeNormTotal(w, "sum", blocks, partials, "out0");
    return w.finish();
  }
};

// in: norm, max norm; out: scale.
struct ClipScaleCode : ScalarKernelOpInterface::ExternalModel<ClipScaleCode, ClipScaleOp> {
  void writeScalar(Operation *op, raw_ostream &os, ArrayRef<std::string> n) const {
    os << "    double norm = " << n[0] << "[0], maxNorm = " << n[1] << "[0];\n"
       << "    " << n[2]
       << "[0] = maxNorm > 0.0 ? (float)fmin(1.0, maxNorm / (norm + 1e-6)) : 1.0f;\n";
  }
};

// in: step, lr, warmup, total, min lr ratio; out: lr.
struct LRScheduleCode : ScalarKernelOpInterface::ExternalModel<LRScheduleCode, LRScheduleOp> {
  void writeScalar(Operation *op, raw_ostream &os, ArrayRef<std::string> n) const {
    LRScheduleKind kind = cast<LRScheduleOp>(op).getKind();
    os << "    long long step = " << n[0] << "[0], warmup = " << n[2] << "[0], total = " << n[3]
       << "[0];\n"
       << "    double lr = " << n[1] << "[0], ratio = " << n[4] << "[0], value = lr;\n"
       << "    if (step < warmup) {\n"
       << "      value = lr * (double)(step + 1) / warmup;\n";
    if (kind != LRScheduleKind::constant) {
      os << "    } else {\n"
         << "      long long span = total - warmup > 1 ? total - warmup : 1;\n"
         << "      double p = fmin(fmax((double)(step - warmup) / span, 0.0), 1.0);\n";
      if (kind == LRScheduleKind::cosine)
        os << "      value = lr * (ratio + (1 - ratio) * 0.5 * (1 + cos(3.14159265358979323846 * "
              "p)));\n";
      else
        os << "      value = lr * (1 - (1 - ratio) * p);\n";
    }
    os << "    }\n"
       << "    " << n[5] << "[0] = (float)value;\n";
  }
};

std::string kernelStem(ClipScaleOp) { return "clip_scale"; }
std::string kernelStem(LRScheduleOp op) {
  return ("lr_schedule_" + stringifyLRScheduleKind(op.getKind())).str();
}

/// The kernel of a scalar op alone: one thread.
template <typename OpT>
struct ScalarKernel : CudaKernelOpInterface::ExternalModel<ScalarKernel<OpT>, OpT> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    KernelWriter w(op, kernelStem(cast<OpT>(op)));
    FailureOr<SmallVector<std::string>> names = memberValueNames(op, kernelValueNames(w, op));
    if (failed(names))
      return failure();
    w.os() << "  {\n";
    cast<ScalarKernelOpInterface>(op).writeScalar(w.os(), *names);
    w.os() << "  }\n";
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

FailureOr<CudaKernel> fusedOptimizerKernel(Operation *fused) {
  GlobalNormOp norm;
  Operation *scale = nullptr;
  SmallVector<Operation *> updates;
  for (Operation &member : cast<FusedOp>(fused).getMembers()) {
    if (auto n = dyn_cast<GlobalNormOp>(member))
      norm = n;
    else if (member.hasTrait<GradientScale>())
      scale = &member;
    else
      updates.push_back(&member);
  }
  if (!norm)
    return elementLoopKernel(fused, "fused_optimizer", updates);

  KernelWriter w(fused, "fused_optimizer");
  llvm::DenseMap<Value, std::string> names = kernelValueNames(w, fused);
  // The norm and the scale, when nothing after the group reads them, live
  // in the workspace.
  for (Operation *op : {norm.getOperation(), scale})
    if (op && !names.count(op->getResult(0)))
      names[op->getResult(0)] = w.workspaceFloats(1);
  SmallVector<std::string> grads;
  SmallVector<int64_t> sizes;
  for (Value grad : norm.getGrads()) {
    grads.push_back(names.lookup(grad));
    sizes.push_back(numElements(grad));
  }
  int64_t blocks = normBlocks(sizes);
  std::string partials = reservePartials(w, blocks);
  writeNormPartials(w, "norm_partials", grads, sizes, blocks, partials);
  std::string then;
  if (scale) {
    auto code = dyn_cast<ScalarKernelOpInterface>(scale);
    if (!code)
      return scale->emitOpError("has no one-thread code: it cannot be in an optimizer kernel");
    FailureOr<SmallVector<std::string>> scaleNames = memberValueNames(scale, names);
    if (failed(scaleNames))
      return failure();
    llvm::raw_string_ostream os(then);
    code.writeScalar(os, *scaleNames);
  }
  writeNormTotal(w, "norm", blocks, partials, names.lookup(norm.getResult()), then);
  if (!updates.empty()) {
    w.beginEntry("update", elementLoopGrid(updates), {256, 1, 1}, /*usesBarriers=*/false);
    if (failed(writeElementLoops(w.os(), updates, names)))
      return failure();
  }
  return w.finish();
}

void attachOptimizerKernels(MLIRContext *context) {
  GlobalNormOp::attachInterface<GlobalNormKernel>(*context);
  ClipScaleOp::attachInterface<ClipScaleCode, ScalarKernel<ClipScaleOp>>(*context);
  LRScheduleOp::attachInterface<LRScheduleCode, ScalarKernel<LRScheduleOp>>(*context);
  AdamWUpdateOp::attachInterface<AdamWLoop, UpdateKernel<AdamWUpdateOp>>(*context);
  SGDUpdateOp::attachInterface<SGDLoop, UpdateKernel<SGDUpdateOp>>(*context);
}

} // namespace moec::codegen
