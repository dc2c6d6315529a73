//===- LossKernels.cpp - kernels of the objective and auxiliary losses ---===//
//
// Sums over tokens are reductions in a fixed order (per-row values in the
// workspace, then one block adds them in f64), so a loss has the same bits
// on every run: moe.cross_entropy, moe.z_loss, moe.weighted_sum and their
// gradients.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/TokenRowWriter.h"

#include "dialects/moe/IR/MoEOps.h"

#include <cstdio>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// Opens a loop over `rows` rows of `V` logits, one block per row, that
/// computes the row's `maximum` and `sum` (f64) of `exponential` (of
/// `row[i] - maximum`) with block reductions; the caller writes the rest of
/// the loop's body and closes it.
void beginRowSoftmax(KernelWriter &w, int64_t rows, int64_t V, unsigned threads,
                     StringRef exponential) {
  w.os() << "  __shared__ float maxScratch[" << threads << "];\n"
         << "  __shared__ double sumScratch[" << threads << "];\n"
         << "  for (long long r = blockIdx.x; r < " << rows << "LL; r += gridDim.x) {\n"
         << "    const float *row = in0 + r * " << V << "LL;\n"
         << "    float maximum = -__int_as_float(0x7f800000);\n"
         << "    for (long long i = threadIdx.x; i < " << V << "LL; i += blockDim.x)\n"
         << "      maximum = fmaxf(maximum, row[i]);\n"
         << "    maximum = moec_block_max(maximum, maxScratch);\n"
         << "    double sum = 0.0;\n"
         << "    for (long long i = threadIdx.x; i < " << V << "LL; i += blockDim.x)\n"
         << "      sum += " << exponential << ";\n"
         << "    sum = moec_block_sum(sum, sumScratch);\n";
}

/// Launch "sum": one block adds `rows` per-row values of the workspace in
/// f64 and writes `scale` times the total to out0[0].
void writeRowSum(KernelWriter &w, int64_t rows, const std::string &scale) {
  w.beginEntry("sum", {1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
  w.os() << "  __shared__ double scratch[1024];\n"
         << "  const double *perRow = (const double *)workspace;\n"
         << "  double sum = 0.0;\n"
         << "  for (long long r = threadIdx.x; r < " << rows << "LL; r += blockDim.x)\n"
         << "    sum += perRow[r];\n"
         << "  sum = moec_block_sum(sum, scratch);\n"
         << "  if (threadIdx.x == 0)\n"
         << "    out0[0] = (float)(sum " << scale << ");\n";
}

struct CrossEntropyKernel
    : CudaKernelOpInterface::ExternalModel<CrossEntropyKernel, CrossEntropyOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t V = type.getShape().back(), rows = numElements(op->getOperand(1));
    KernelWriter w(op, "cross_entropy");
    w.setWorkspace(rows * sizeof(double));
    w.useHelper(kRowLseHelper);
    // One block per row: the maximum and the f64 sum of exponentials.
    unsigned threads = std::min(threadsFor(V), 256u);
    w.beginEntry("rows", {static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
                 {threads, 1, 1}, /*usesBarriers=*/true);
    w.os() << "  double *perRow = (double *)workspace;\n";
    beginRowSoftmax(w, rows, V, threads, "exp((double)(row[i] - maximum))");
    w.os() << "    if (threadIdx.x == 0) {\n"
           << "      int target = in1[r];\n"
           << "      float picked = target >= 0 && target < " << V
           << " ? row[target] : __int_as_float(0x7fc00000);\n"
           << "      perRow[r] = (double)((maximum + (float)log(sum)) - picked);\n"
           << "    }\n"
           << "  }\n";
    writeRowSum(w, rows, "/ " + std::to_string(rows) + ".0");
    return w.finish();
  }
};

struct CrossEntropyGradKernel
    : CudaKernelOpInterface::ExternalModel<CrossEntropyGradKernel, CrossEntropyGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t V = type.getShape().back(), rows = numElements(op->getOperand(1));
    unsigned threads = std::min(threadsFor(V), 256u);
    KernelWriter w(op, "cross_entropy_grad");
    // in: logits, targets, dloss. The softmax as softmaxRow: f32
    // exponentials, their f64 sum, one f32 reciprocal.
    w.os() << "  float scale = in2[0] / " << rows << ";\n";
    beginRowSoftmax(w, rows, V, threads, "expf(row[i] - maximum)");
    w.os() << "    float *out = out0 + r * " << V << "LL;\n"
           << "    float inverse = (float)(1.0 / sum);\n"
           << "    int target = in1[r];\n"
           << "    for (long long i = threadIdx.x; i < " << V << "LL; i += blockDim.x) {\n"
           << "      float p = expf(row[i] - maximum) * inverse;\n"
           << "      out[i] = (i == target ? p - 1.0f : p) * scale;\n"
           << "    }\n"
           << "  }\n";
    return w.finish({static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
                    {threads, 1, 1}, /*usesBarriers=*/true);
  }
};

struct ZLossKernel : CudaKernelOpInterface::ExternalModel<ZLossKernel, ZLossOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t E = type.getShape().back(), rows = type.getNumElements() / E;
    KernelWriter w(op, "z_loss");
    w.setWorkspace(rows * sizeof(double));
    w.useHelper(kRowLseHelper);
    w.beginEntry("rows", {blocksFor(rows, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
    w.os() << "  double *perRow = (double *)workspace;\n"
           << forEachElement(rows, "r") << "  {\n"
           << "    double lse = moec_row_lse(in0 + r * " << E << "LL, " << E << ");\n"
           << "    perRow[r] = lse * lse;\n"
           << "  }\n";
    writeRowSum(w, rows, "/ " + std::to_string(rows) + ".0");
    return w.finish();
  }
};

/// dlogits = 2 · lse · softmax(logits) · dloss / T, one token's row.
struct ZLossGradRows : TokenRowKernelOpInterface::ExternalModel<ZLossGradRows, ZLossGradOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    auto grad = cast<ZLossGradOp>(op);
    int64_t E = TokenRowWriter::width(grad.getLogits());
    rows.useHelper(kRowLseHelper);
    rows.os() << "      const float *l = " << rows.row(grad.getLogits()) << ";\n"
              << "      float *out = " << rows.row(grad.getDlogits()) << ";\n"
              << "      float dloss = " << rows.row(grad.getDloss()) << "[0];\n"
              << "      float lse = moec_row_lse(l, " << E << ");\n"
              << "      for (int e = 0; e < " << E << "; ++e)\n"
              << "        out[e] = dloss * 2.0f * lse * expf(l[e] - lse) / " << rows.tokens()
              << ";\n";
    return success();
  }
};

struct ZLossGradKernel : CudaKernelOpInterface::ExternalModel<ZLossGradKernel, ZLossGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    return tokenRowKernel(op, "z_loss_grad");
  }
};

struct WeightedSumKernel : CudaKernelOpInterface::ExternalModel<WeightedSumKernel, WeightedSumOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto sum = cast<WeightedSumOp>(op);
    ArrayRef<float> coefficients = sum.getCoefficients();
    if (coefficients.size() != op->getNumOperands())
      return op->emitOpError("has ") << coefficients.size() << " coefficients for "
                                     << op->getNumOperands() << " terms";
    KernelWriter w(op, "weighted_sum");
    w.os() << "  double sum = 0.0;\n";
    for (auto [i, c] : llvm::enumerate(coefficients))
      w.os() << "  sum += (double)" << floatLiteral(c) << " * (double)in" << i << "[0];\n";
    w.os() << "  out0[0] = (float)sum;\n";
    return w.finish({1, 1, 1}, {1, 1, 1}, /*usesBarriers=*/false);
  }
};
/// The auxiliary load-balancing loss in one block, thread e for expert e,
/// in f64 as the CPU kernel computes it: Switch (E · Σ f_e P_e with f the
/// share of assignments), per_slot (f counted per top-k slot) and sequence
/// (per sequence of `seq_len`, then the mean).
struct LoadBalancingLossKernel
    : CudaKernelOpInterface::ExternalModel<LoadBalancingLossKernel, LoadBalancingLossOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto loss = cast<LoadBalancingLossOp>(op);
    auto scores = cast<RankedTensorType>(loss.getScores().getType());
    int64_t T = scores.getDimSize(0), E = scores.getDimSize(1);
    int64_t K = cast<RankedTensorType>(loss.getIndices().getType()).getDimSize(1);
    if (E > 1024)
      return op->emitOpError("the cuda target balances at most 1024 experts, not ") << E;
    unsigned threads = threadsFor(E);
    KernelWriter w(op, ("load_balancing_loss_" + stringifyLoadBalancing(loss.getKind())).str());
    // in: scores, indices.
    w.os() << "  __shared__ double scratch[" << threads << "];\n"
           << "  int e = threadIdx.x;\n"
           << "  bool expert = e < " << E << ";\n"
           << "  double total = 0.0;\n";
    switch (loss.getKind()) {
    case LoadBalancing::sequence: {
      int64_t S = loss.getSeqLen().value_or(T), B = T / S;
      w.os() << "  for (long long b = 0; b < " << B << "; ++b) {\n"
             << "    double P = 0.0, count = 0.0;\n"
             << "    if (expert) {\n"
             << "      for (long long t = b * " << S << "; t < (b + 1) * " << S << "; ++t) {\n"
             << "        P += in0[t * " << E << " + e];\n"
             << "        for (int k = 0; k < " << K << "; ++k)\n"
             << "          count += in1[t * " << K << " + k] == e;\n"
             << "      }\n"
             << "      P /= " << S << ";\n"
             << "    }\n"
             << "    double term = expert ? count / ((double)" << S << " * " << K << " / " << E
             << ") * P : 0.0;\n"
             << "    term = moec_block_sum(term, scratch);\n"
             << "    total += term / " << B << ";\n"
             << "  }\n";
      break;
    }
    case LoadBalancing::per_slot:
      w.os() << "  double P = 0.0, term = 0.0;\n"
             << "  if (expert) {\n"
             << "    for (long long t = 0; t < " << T << "; ++t)\n"
             << "      P += in0[t * " << E << " + e];\n"
             << "    P /= " << T << ";\n"
             << "    for (int k = 0; k < " << K << "; ++k) {\n"
             << "      double f = 0.0;\n"
             << "      for (long long t = 0; t < " << T << "; ++t)\n"
             << "        if (in1[t * " << K << " + k] == e)\n"
             << "          f += 1.0 / " << T << ";\n"
             << "      term += f * P;\n"
             << "    }\n"
             << "  }\n"
             << "  total = moec_block_sum(term, scratch) * " << E << ";\n";
      break;
    case LoadBalancing::Switch:
      w.os() << "  double P = 0.0, f = 0.0;\n"
             << "  if (expert) {\n"
             << "    for (long long t = 0; t < " << T << "; ++t)\n"
             << "      P += in0[t * " << E << " + e];\n"
             << "    P /= " << T << ";\n"
             << "    for (long long i = 0; i < " << T * K << "; ++i)\n"
             << "      f += in1[i] == e;\n"
             << "  }\n"
             << "  double assigned = moec_block_sum(f, scratch);\n"
             << "  double term = assigned > 0 ? f / assigned * P : 0.0;\n"
             << "  total = moec_block_sum(term, scratch) * " << E << ";\n";
      break;
    }
    w.os() << "  if (e == 0)\n"
           << "    out0[0] = (float)total;\n";
    return w.finish({1, 1, 1}, {threads, 1, 1}, /*usesBarriers=*/true);
  }
};

/// d loss / d scores: the same per-expert counts, written to every token.
struct LoadBalancingLossGradKernel
    : CudaKernelOpInterface::ExternalModel<LoadBalancingLossGradKernel, LoadBalancingLossGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<LoadBalancingLossGradOp>(op);
    auto scores = cast<RankedTensorType>(grad.getScores().getType());
    int64_t T = scores.getDimSize(0), E = scores.getDimSize(1);
    int64_t K = cast<RankedTensorType>(grad.getIndices().getType()).getDimSize(1);
    if (E > 1024)
      return op->emitOpError("the cuda target balances at most 1024 experts, not ") << E;
    unsigned threads = threadsFor(E);
    KernelWriter w(op,
                   ("load_balancing_loss_grad_" + stringifyLoadBalancing(grad.getKind())).str());
    // in: scores, indices, dloss.
    w.os() << "  __shared__ double scratch[" << threads << "];\n"
           << "  int e = threadIdx.x;\n"
           << "  bool expert = e < " << E << ";\n"
           << "  float dloss = in2[0];\n";
    if (grad.getKind() == LoadBalancing::sequence) {
      int64_t S = grad.getSeqLen().value_or(T), B = T / S;
      w.os() << "  if (expert)\n"
             << "    for (long long b = 0; b < " << B << "; ++b) {\n"
             << "      double count = 0.0;\n"
             << "      for (long long i = b * " << S * K << "; i < (b + 1) * " << S * K
             << "; ++i)\n"
             << "        count += in1[i] == e;\n"
             << "      float value = (float)(dloss * count / ((double)" << S << " * " << K
             << " / " << E << ") / " << S << " / " << B << ");\n"
             << "      for (long long t = b * " << S << "; t < (b + 1) * " << S << "; ++t)\n"
             << "        out0[t * " << E << " + e] = value;\n"
             << "    }\n";
    } else {
      bool perSlot = grad.getKind() == LoadBalancing::per_slot;
      w.os() << "  double f = 0.0;\n"
             << "  if (expert)\n"
             << "    for (long long i = 0; i < " << T * K << "; ++i)\n"
             << "      f += in1[i] == e;\n"
             << "  double assigned = moec_block_sum(f, scratch);\n";
      if (perSlot)
        w.os() << "  f = f / " << T << ";\n";
      else
        w.os() << "  f = assigned > 0 ? f / assigned : 0.0;\n";
      w.os() << "  if (expert) {\n"
             << "    float value = (float)(dloss * " << E << " * f / " << T << ");\n"
             << "    for (long long t = 0; t < " << T << "; ++t)\n"
             << "      out0[t * " << E << " + e] = value;\n"
             << "  }\n";
    }
    return w.finish({1, 1, 1}, {threads, 1, 1}, /*usesBarriers=*/true);
  }
};
/// The mean Tsallis (Shannon at q = 1) entropy of the routing
/// distributions: per-row values, then a fixed-order f64 sum.
struct EntropyLossKernel : CudaKernelOpInterface::ExternalModel<EntropyLossKernel, EntropyLossOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t T = type.getDimSize(0), E = type.getDimSize(1);
    double q = floatAttr(op, "q");
    char qText[40];
    std::snprintf(qText, sizeof(qText), "%.17g", q);
    KernelWriter w(op, "entropy_loss");
    w.setWorkspace(T * sizeof(double));
    w.beginEntry("rows", {blocksFor(T, 128), 1, 1}, {128, 1, 1}, /*usesBarriers=*/false);
    w.os() << "  double *perRow = (double *)workspace;\n"
           << forEachElement(T, "t") << "  {\n"
           << "    const float *row = in0 + t * " << E << "LL;\n"
           << "    double h = 0.0;\n";
    if (q == 1.0)
      w.os() << "    for (int e = 0; e < " << E << "; ++e)\n"
             << "      if (row[e] > 0.0f)\n"
             << "        h -= row[e] * log((double)row[e]);\n";
    else
      w.os() << "    double power = 0.0;\n"
             << "    for (int e = 0; e < " << E << "; ++e)\n"
             << "      power += pow((double)row[e], " << qText << ");\n"
             << "    h = (1.0 - power) / (" << qText << " - 1.0);\n";
    w.os() << "    perRow[t] = h;\n"
           << "  }\n";
    writeRowSum(w, T, "/ " + std::to_string(T) + ".0");
    return w.finish();
  }
};

struct EntropyLossGradKernel
    : CudaKernelOpInterface::ExternalModel<EntropyLossGradKernel, EntropyLossGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t T = type.getDimSize(0), n = type.getNumElements();
    double q = floatAttr(op, "q");
    char qText[40];
    std::snprintf(qText, sizeof(qText), "%.17g", q);
    KernelWriter w(op, "entropy_loss_grad");
    // in: scores, dloss.
    w.os() << "  float dloss = in1[0];\n"
           << forEachElement(n) << "  {\n"
           << "    double p = in0[i];\n";
    if (q == 1.0)
      w.os() << "    double d = p > 0 ? -(log(p) + 1.0) : 0.0;\n";
    else
      w.os() << "    double d = -" << qText << " * pow(p, " << qText << " - 1.0) / (" << qText
             << " - 1.0);\n";
    w.os() << "    out0[i] = (float)(dloss * d / " << T << ");\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

void attachLossKernels(MLIRContext *context) {
  CrossEntropyOp::attachInterface<CrossEntropyKernel>(*context);
  CrossEntropyGradOp::attachInterface<CrossEntropyGradKernel>(*context);
  ZLossOp::attachInterface<ZLossKernel>(*context);
  ZLossGradOp::attachInterface<ZLossGradRows, ZLossGradKernel>(*context);
  WeightedSumOp::attachInterface<WeightedSumKernel>(*context);
  EntropyLossOp::attachInterface<EntropyLossKernel>(*context);
  EntropyLossGradOp::attachInterface<EntropyLossGradKernel>(*context);
  LoadBalancingLossOp::attachInterface<LoadBalancingLossKernel>(*context);
  LoadBalancingLossGradOp::attachInterface<LoadBalancingLossGradKernel>(*context);
}

} // namespace moec::codegen
