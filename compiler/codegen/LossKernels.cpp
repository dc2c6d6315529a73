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
#include "compiler/codegen/LossCode.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/TiledGemm.h"
#include "compiler/codegen/TokenRowWriter.h"

#include "dialects/moe/IR/MoEOps.h"

#include <algorithm>
#include <cstdio>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// Rows [first, first + count) of V logits, row r at `base` + (r - first)·V.
struct LogitRowRange {
  int64_t first = 0, count = 0;
  std::string base = "in0";
};

/// Sums `exponential` (of `row[i] - maximum`) over a row in f64, with a
/// block reduction, into `sum`.
void writeRowExpSum(KernelWriter &w, int64_t V, StringRef exponential, StringRef sum) {
  w.os() << "    double " << sum << " = 0.0;\n"
         << "    for (long long i = threadIdx.x; i < " << V << "LL; i += blockDim.x)\n"
         << "      " << sum << " += " << exponential << ";\n"
         << "    " << sum << " = moec_block_sum(" << sum << ", sumScratch);\n";
}

/// Opens a loop over `rows` of `V` logits, one block per row, that computes
/// the row's `maximum` and `sum` (f64) of `exponential` (of `row[i] -
/// maximum`) with block reductions; the caller writes the rest of the
/// loop's body and closes it.
void beginRowSoftmax(KernelWriter &w, const LogitRowRange &rows, int64_t V, unsigned threads,
                     StringRef exponential) {
  w.os() << "  __shared__ float maxScratch[" << threads << "];\n"
         << "  __shared__ double sumScratch[" << threads << "];\n"
         << "  for (long long r = " << rows.first << "LL + blockIdx.x; r < "
         << rows.first + rows.count << "LL; r += gridDim.x) {\n"
         << "    const float *row = " << rows.base << " + (r - " << rows.first << "LL) * " << V
         << "LL;\n"
         << "    float maximum = -__int_as_float(0x7f800000);\n"
         << "    for (long long i = threadIdx.x; i < " << V << "LL; i += blockDim.x)\n"
         << "      maximum = fmaxf(maximum, row[i]);\n"
         << "    maximum = moec_block_max(maximum, maxScratch);\n";
  writeRowExpSum(w, V, exponential, "sum");
}

/// Inside a row-softmax loop: the row's loss term, `logsumexp - the
/// target's logit`, into the f64 per-row values at the workspace's start
/// (its sum's exponentials: f64, as in `moec_row_lse`).
void writeCrossEntropyRow(KernelWriter &w, int64_t V, const std::string &targets) {
  w.os() << "    if (threadIdx.x == 0) {\n"
         << "      int target = " << targets << "[r];\n"
         << "      float picked = target >= 0 && target < " << V
         << " ? row[target] : __int_as_float(0x7fc00000);\n"
         << "      ((double *)workspace)[r] = (double)((maximum + (float)log(sum)) - picked);\n"
         << "    }\n";
}

/// Inside a row-softmax loop: the row's logit gradients `(softmax -
/// onehot) · scale` into `out` (which may be the row itself), the softmax as
/// softmaxRow: f32 exponentials, their f64 sum `sum`, one f32 reciprocal.
void writeCrossEntropyGradRow(KernelWriter &w, int64_t V, const std::string &targets, StringRef out,
                              StringRef sum) {
  w.os() << "    float *out = " << out << ";\n"
         << "    float inverse = (float)(1.0 / " << sum << ");\n"
         << "    int target = " << targets << "[r];\n"
         << "    for (long long i = threadIdx.x; i < " << V << "LL; i += blockDim.x) {\n"
         << "      float p = expf(row[i] - maximum) * inverse;\n"
         << "      out[i] = (i == target ? p - 1.0f : p) * scale;\n"
         << "    }\n";
}

/// The threads of a block that reduces a row of V logits.
unsigned rowSoftmaxThreads(int64_t V) { return std::min(threadsFor(V), 256u); }

/// Statements of one block of 1024 threads (`scratch`: 1024 doubles) that
/// add `rows` f64 values at `perRow` in a fixed order and write `scale`
/// times the total to `out`[0].
void writeRowSumBody(raw_ostream &os, int64_t rows, StringRef perRow, StringRef scale,
                     StringRef out) {
  os << "  double sum = 0.0;\n"
     << "  for (long long r = threadIdx.x; r < " << rows << "LL; r += blockDim.x)\n"
     << "    sum += " << perRow << "[r];\n"
     << "  sum = moec_block_sum(sum, scratch);\n"
     << "  if (threadIdx.x == 0)\n"
     << "    " << out << "[0] = (float)(sum " << scale << ");\n";
}

/// Launch "sum": one block adds `rows` per-row values of the workspace in
/// f64 and writes `scale` times the total to `out`[0].
void writeRowSum(KernelWriter &w, int64_t rows, const std::string &scale,
                 const std::string &out = "out0") {
  w.beginEntry("sum", {1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
  w.os() << "  __shared__ double scratch[1024];\n"
         << "  const double *perRow = (const double *)workspace;\n";
  writeRowSumBody(w.os(), rows, "perRow", scale, out);
}

struct CrossEntropyKernel
    : CudaKernelOpInterface::ExternalModel<CrossEntropyKernel, CrossEntropyOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t V = type.getShape().back(), rows = numElements(op->getOperand(1));
    KernelWriter w(op, "cross_entropy");
    w.setWorkspace(rows * sizeof(double));
    // One block per row: the maximum and the f64 sum of exponentials.
    unsigned threads = rowSoftmaxThreads(V);
    w.beginEntry("rows", {static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
                 {threads, 1, 1}, /*usesBarriers=*/true);
    beginRowSoftmax(w, {0, rows}, V, threads, "exp((double)(row[i] - maximum))");
    writeCrossEntropyRow(w, V, "in1");
    w.os() << "  }\n";
    writeRowSum(w, rows, "/ " + std::to_string(rows) + ".0");
    return w.finish();
  }
};

struct CrossEntropyGradKernel
    : CudaKernelOpInterface::ExternalModel<CrossEntropyGradKernel, CrossEntropyGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t V = type.getShape().back(), rows = numElements(op->getOperand(1));
    unsigned threads = rowSoftmaxThreads(V);
    KernelWriter w(op, "cross_entropy_grad");
    // in: logits, targets, dloss.
    w.os() << "  float scale = in2[0] / " << rows << ";\n";
    beginRowSoftmax(w, {0, rows}, V, threads, "expf(row[i] - maximum)");
    writeCrossEntropyGradRow(w, V, "in1", "out0 + r * " + std::to_string(V) + "LL", "sum");
    w.os() << "  }\n";
    return w.finish({static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
                    {threads, 1, 1}, /*usesBarriers=*/true);
  }
};

/// mean_t lse_t²: each token's lse² (f64), then one block adds them.
struct ZLossStatistic : TokenStatisticKernelOpInterface::ExternalModel<ZLossStatistic, ZLossOp> {
  int64_t tokenTermWidth(Operation *op) const { return 1; }
  LogicalResult writeTokenTerms(Operation *op, TokenRowWriter &rows, StringRef perToken) const {
    Value logits = cast<ZLossOp>(op).getLogits();
    rows.useHelper(kRowLseHelper);
    rows.os() << "      double lse = moec_row_lse(" << rows.row(logits) << ", "
              << TokenRowWriter::width(logits) << ");\n"
              << "      " << perToken << "[t] = lse * lse;\n";
    return success();
  }
  LogicalResult writeResult(Operation *op, raw_ostream &os, ArrayRef<std::string> operands,
                            StringRef partials, StringRef perToken, StringRef result) const {
    int64_t T = cast<RankedTensorType>(op->getOperand(0).getType()).getDimSize(0);
    writeRowSumBody(os, T, perToken, "/ " + std::to_string(T) + ".0", result);
    return success();
  }
};

struct ZLossKernel : CudaKernelOpInterface::ExternalModel<ZLossKernel, ZLossOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    return tokenStatisticKernel(op, "z_loss");
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
/// A balancing loss's sizes: tokens T, experts E, slots K, and the
/// segments it averages over: B of S tokens (one of T but for `sequence`).
/// A slice of tokens keeps sums for the `local` segments it can overlap
/// (the one it starts in and those after), each E scores' and `counts`
/// assignment counts (per slot for `per_slot`).
struct BalanceShape {
  LoadBalancing kind;
  int64_t T, E, K, S, B, counts, local;
  int64_t perSegment() const { return E + counts; }
  int64_t width() const { return local * perSegment(); }

  static BalanceShape of(Value scores, Value indices, LoadBalancing kind,
                         std::optional<uint64_t> seqLen) {
    auto type = cast<RankedTensorType>(scores.getType());
    BalanceShape s;
    s.kind = kind;
    s.T = type.getDimSize(0);
    s.E = type.getDimSize(1);
    s.K = cast<RankedTensorType>(indices.getType()).getDimSize(1);
    s.S = kind == LoadBalancing::sequence ? static_cast<int64_t>(seqLen.value_or(s.T)) : s.T;
    if (s.S < 1)
      s.S = s.T;
    s.B = std::max<int64_t>(1, s.T / s.S);
    s.counts = kind == LoadBalancing::per_slot ? s.K * s.E : s.E;
    // Tokens t0 ... t0 + 127 lie in segments t0 / S ... (t0 + 127) / S.
    s.local = std::min(s.B, (tokenSliceSize() - 1 + s.S - 1) / s.S + 1);
    return s;
  }

  /// Whether the kernels can compute it: segments that tile the tokens, at
  /// most 1024 experts (one block's threads).
  LogicalResult check(Operation *op) const {
    if (T % S != 0)
      return op->emitOpError("sequences of ") << S << " tokens do not tile its " << T << " tokens";
    if (E > 1024)
      return op->emitOpError("the cuda target balances at most 1024 experts, not ") << E;
    return success();
  }

  /// Statements adding to `into`, for expert thread `e` and segment `b`
  /// (variables of the kernel), the sums of value `c` (an expression of
  /// `e`, < perSegment()) over the slices that overlap the segment, in
  /// slice order.
  void writeSegmentSum(raw_ostream &os, StringRef partials, StringRef into,
                       const std::string &c) const {
    int64_t size = tokenSliceSize();
    os << "      for (long long s = (long long)b * " << S << " / " << size
       << "; s <= ((long long)b * " << S << " + " << S - 1 << ") / " << size << "; ++s)\n"
       << "        " << into << " += " << partials << "[s * " << width() << "LL + (b - s * " << size
       << " / " << S << ") * " << perSegment() << " + " << c << "];\n";
  }
};

/// The sums over one slice of tokens (TokenStatisticKernelOpInterface:
/// t0 ≤ t < t1) of a balancing loss: for each segment the slice overlaps,
/// each expert's scores (`in`[0]) and assignments (`in`[1]), into
/// `partial`.
void writeBalanceSliceSums(raw_ostream &os, const BalanceShape &s, ArrayRef<std::string> in,
                           StringRef partial) {
  os << "    for (int j = threadIdx.x; j < " << s.width() << "; j += blockDim.x) {\n"
     << "      long long b = t0 / " << s.S << " + j / " << s.perSegment() << ";\n"
     << "      int c = j % " << s.perSegment() << ";\n"
     << "      double acc = 0.0;\n"
     << "      for (long long t = t0; t < t1; ++t) {\n";
  if (s.B > 1)
    os << "        if (t / " << s.S << " != b)\n"
       << "          continue;\n";
  os << "        if (c < " << s.E << ")\n"
     << "          acc += " << in[0] << "[t * " << s.E << "LL + c];\n";
  if (s.kind == LoadBalancing::per_slot)
    os << "        else\n"
       << "          acc += " << in[1] << "[t * " << s.K << "LL + (c - " << s.E << ") / " << s.E
       << "] == (c - " << s.E << ") % " << s.E << ";\n";
  else
    os << "        else\n"
       << "          for (int k = 0; k < " << s.K << "; ++k)\n"
       << "            acc += " << in[1] << "[t * " << s.K << "LL + k] == c - " << s.E << ";\n";
  os << "      }\n"
     << "      " << partial << "[j] = acc;\n"
     << "    }\n";
}

/// The auxiliary load-balancing loss as a token statistic, in f64:
/// Switch (E · Σ f_e P_e with f the share of assignments), per_slot (f
/// counted per top-k slot) and sequence (per sequence of `seq_len`, then
/// the mean). Each slice of tokens gets its sums of scores and assignments
/// per expert (writeBalanceSliceSums); then one block, thread e for expert
/// e, adds the slices in order and the experts' terms. (The CPU kernel adds
/// in token order: the last bits of the f64 sums may differ.)
struct LoadBalancingStatistic
    : TokenStatisticKernelOpInterface::ExternalModel<LoadBalancingStatistic, LoadBalancingLossOp> {
  static BalanceShape shapeOf(LoadBalancingLossOp loss) {
    return BalanceShape::of(loss.getScores(), loss.getIndices(), loss.getKind(), loss.getSeqLen());
  }

  int64_t sliceWidth(Operation *op) const { return shapeOf(cast<LoadBalancingLossOp>(op)).width(); }

  // operands: scores, indices.
  void writeSliceSums(Operation *op, raw_ostream &os, ArrayRef<std::string> in,
                      StringRef partial) const {
    writeBalanceSliceSums(os, shapeOf(cast<LoadBalancingLossOp>(op)), in, partial);
  }

  LogicalResult writeResult(Operation *op, raw_ostream &os, ArrayRef<std::string> in,
                            StringRef partials, StringRef perToken, StringRef result) const {
    auto loss = cast<LoadBalancingLossOp>(op);
    BalanceShape s = shapeOf(loss);
    if (failed(s.check(op)))
      return failure();
    auto slicesSum = [&](StringRef into, const std::string &c) {
      s.writeSegmentSum(os, partials, into, c);
    };
    os << "  int e = threadIdx.x;\n"
       << "  bool expert = e < " << s.E << ";\n"
       << "  double total = 0.0;\n"
       << "  for (int b = 0; b < " << s.B << "; ++b) {\n"
       << "    double P = 0.0, term = 0.0;\n"
       << "    if (expert) {\n";
    slicesSum("P", "e");
    os << "      P /= " << s.S << ";\n"
       << "    }\n";
    switch (loss.getKind()) {
    case LoadBalancing::Switch:
      os << "    double f = 0.0;\n"
         << "    if (expert) {\n";
      slicesSum("f", std::to_string(s.E) + " + e");
      os << "    }\n"
         << "    double assigned = moec_block_sum(f, scratch);\n"
         << "    term = assigned > 0 ? f / assigned * P : 0.0;\n"
         << "    total = moec_block_sum(term, scratch) * " << s.E << ";\n";
      break;
    case LoadBalancing::per_slot:
      os << "    if (expert)\n"
         << "      for (int k = 0; k < " << s.K << "; ++k) {\n"
         << "        double f = 0.0;\n";
      slicesSum("f", std::to_string(s.E) + " + k * " + std::to_string(s.E) + " + e");
      os << "        term += f / " << s.T << " * P;\n"
         << "      }\n"
         << "    total = moec_block_sum(term, scratch) * " << s.E << ";\n";
      break;
    case LoadBalancing::sequence:
      os << "    double count = 0.0;\n"
         << "    if (expert) {\n";
      slicesSum("count", std::to_string(s.E) + " + e");
      os << "    }\n"
         << "    term = expert ? count / ((double)" << s.S << " * " << s.K << " / " << s.E
         << ") * P : 0.0;\n"
         << "    total += moec_block_sum(term, scratch) / " << s.B << ";\n";
      break;
    }
    os << "  }\n"
       << "  if (threadIdx.x == 0)\n"
       << "    " << result << "[0] = (float)total;\n";
    return success();
  }
};

struct LoadBalancingLossKernel
    : CudaKernelOpInterface::ExternalModel<LoadBalancingLossKernel, LoadBalancingLossOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto loss = cast<LoadBalancingLossOp>(op);
    return tokenStatisticKernel(
        op, ("load_balancing_loss_" + stringifyLoadBalancing(loss.getKind())).str());
  }
};

/// d loss / d scores: the same per-expert counts, written to every token.
/// The blocks' slice sums of the forward (writeBalanceSliceSums), one block
/// that turns the counts into each expert's (per sequence: each segment's)
/// gradient, then each token's row of them. Counts are whole numbers, exact
/// in f64 in any order.
struct LoadBalancingGradientStatistic
    : TokenStatisticGradientKernelOpInterface::ExternalModel<LoadBalancingGradientStatistic,
                                                             LoadBalancingLossGradOp> {
  static BalanceShape shapeOf(Operation *op) {
    auto grad = cast<LoadBalancingLossGradOp>(op);
    return BalanceShape::of(grad.getScores(), grad.getIndices(), grad.getKind(), grad.getSeqLen());
  }

  int64_t sliceWidth(Operation *op) const { return shapeOf(op).width(); }

  // operands: scores, indices, dloss.
  void writeSliceSums(Operation *op, raw_ostream &os, ArrayRef<std::string> in,
                      StringRef partial) const {
    writeBalanceSliceSums(os, shapeOf(op), in, partial);
  }

  int64_t valueCount(Operation *op) const {
    BalanceShape s = shapeOf(op);
    return s.B * s.E;
  }

  LogicalResult writeValues(Operation *op, raw_ostream &os, ArrayRef<std::string> in,
                            StringRef partials, StringRef values) const {
    BalanceShape s = shapeOf(op);
    if (failed(s.check(op)))
      return failure();
    int64_t slots = s.kind == LoadBalancing::per_slot ? s.K : 1;
    os << "  int e = threadIdx.x;\n"
       << "  bool expert = e < " << s.E << ";\n"
       << "  float dloss = " << in[2] << "[0];\n"
       << "  for (int b = 0; b < " << s.B << "; ++b) {\n"
       << "    double count = 0.0;\n"
       << "    if (expert)\n"
       << "      for (int k = 0; k < " << slots << "; ++k) {\n";
    s.writeSegmentSum(os, partials, "count",
                      std::to_string(s.E) + " + k * " + std::to_string(s.E) + " + e");
    os << "      }\n";
    switch (s.kind) {
    case LoadBalancing::sequence:
      os << "    float value = (float)(dloss * count / ((double)" << s.S << " * " << s.K << " / "
         << s.E << ") / " << s.S << " / " << s.B << ");\n";
      break;
    case LoadBalancing::per_slot:
      os << "    double f = count / " << s.T << ";\n"
         << "    float value = (float)(dloss * " << s.E << " * f / " << s.T << ");\n";
      break;
    case LoadBalancing::Switch:
      os << "    double assigned = moec_block_sum(count, scratch);\n"
         << "    double f = assigned > 0 ? count / assigned : 0.0;\n"
         << "    float value = (float)(dloss * " << s.E << " * f / " << s.T << ");\n";
      break;
    }
    os << "    if (expert)\n"
       << "      " << values << "[b * " << s.E << " + e] = value;\n"
       << "  }\n";
    return success();
  }

  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows, StringRef values) const {
    BalanceShape s = shapeOf(op);
    rows.os() << "      float *out = " << rows.row(cast<LoadBalancingLossGradOp>(op).getDscores())
              << ";\n"
              << "      for (int e = 0; e < " << s.E << "; ++e)\n"
              << "        out[e] = " << values << "[t / " << s.S << " * " << s.E << " + e];\n";
    return success();
  }
};

/// Its own kernel: the slices' sums and the values, then every element of
/// the [T, E] result in parallel.
struct LoadBalancingLossGradKernel
    : CudaKernelOpInterface::ExternalModel<LoadBalancingLossGradKernel, LoadBalancingLossGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<LoadBalancingLossGradOp>(op);
    BalanceShape s = LoadBalancingGradientStatistic::shapeOf(op);
    KernelWriter w(op,
                   ("load_balancing_loss_grad_" + stringifyLoadBalancing(grad.getKind())).str());
    SmallVector<std::string> operands;
    for (Value operand : op->getOperands())
      operands.push_back(w.name(operand));
    FailureOr<std::string> values = writeStatisticGradientValues(w, op, operands, s.T);
    if (failed(values))
      return failure();
    w.beginEntry("rows", {blocksFor(s.T * s.E, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
    w.os() << forEachElement(s.T * s.E) << "    out0[i] = " << *values << "[i / " << s.S * s.E
           << "LL * " << s.E << " + i % " << s.E << "];\n";
    return w.finish();
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

namespace {

/// The rows [first, first + rows) whose logits an LM head group computes at
/// once.
struct LogitChunk {
  int64_t first, rows;
};

/// Chunks of about as many logits as the input rows hold values (T·d, as
/// Liger's fused linear cross-entropy takes them), in whole GEMM tiles of
/// 128 rows.
SmallVector<LogitChunk> logitChunks(int64_t T, int64_t V, int64_t d) {
  int64_t widthRatio = (V + d - 1) / d;
  int64_t perChunk = (T + widthRatio - 1) / widthRatio;
  perChunk = std::max<int64_t>(128, (perChunk + 127) / 128 * 128);
  SmallVector<LogitChunk> chunks;
  for (int64_t first = 0; first < T; first += perChunk)
    chunks.push_back({first, std::min(perChunk, T - first)});
  return chunks;
}

std::string offsetBy(const std::string &base, int64_t elements) {
  return "(" + base + " + " + std::to_string(elements) + "LL)";
}

/// All rows as one group.
RowGroups allRows(int64_t rows) {
  RowGroups groups;
  groups.count = groups.capacity = rows;
  return groups;
}

} // namespace

FailureOr<CudaKernel> fusedLMHeadKernel(Operation *op) {
  auto fused = cast<FusedOp>(op);
  LinearOp product;
  CrossEntropyOp loss;
  CrossEntropyGradOp lossGrad;
  LinearGradOp productGrad;
  unsigned count = 0;
  for (Operation &member : fused.getMembers()) {
    ++count;
    if (auto m = dyn_cast<LinearOp>(member); m && !product)
      product = m;
    else if (auto m = dyn_cast<CrossEntropyOp>(member); m && !loss)
      loss = m;
    else if (auto m = dyn_cast<CrossEntropyGradOp>(member); m && !lossGrad)
      lossGrad = m;
    else if (auto m = dyn_cast<LinearGradOp>(member); m && !productGrad)
      productGrad = m;
  }
  bool training = lossGrad && productGrad && count == 4;
  bool shaped = product && loss && loss.getLogits() == product.getResult() &&
                (count == 2 || (training && lossGrad.getLogits() == product.getResult() &&
                                lossGrad.getTargets() == loss.getTargets() &&
                                productGrad.getDresult() == lossGrad.getResult() &&
                                productGrad.getInput() == product.getInput() &&
                                productGrad.getWeight() == product.getWeight()));
  KernelWriter w(op, "fused_lm_head");
  // The kernel parameter behind a value of the body (an input or a yielded
  // value), or "" for one that stays inside.
  auto nameOf = [&](Value value) -> std::string {
    Value outer = value ? fused.getOuterValue(value) : Value();
    return outer ? w.name(outer) : "";
  };
  if (!shaped || !nameOf(product.getResult()).empty() ||
      (training && !nameOf(lossGrad.getResult()).empty()))
    return op->emitOpError("has no kernel for an LM head group other than moe.linear and the "
                           "moe.cross_entropy of its logits (and their gradients: "
                           "moe.cross_entropy_grad and the moe.linear_grad of its result), "
                           "the logits and their gradient read by no other op");
  auto weightType = cast<RankedTensorType>(product.getWeight().getType());
  int64_t V = weightType.getDimSize(0), d = weightType.getDimSize(1);
  int64_t T = numElements(product.getInput()) / d;
  std::string x = nameOf(product.getInput()), weight = nameOf(product.getWeight());
  std::string targets = nameOf(loss.getTargets()), bias = nameOf(product.getBias());
  // What nothing reads after the group is not computed: the loss (its
  // per-row terms and their sum), dx, dW (a frozen head).
  std::string lossOut = nameOf(loss.getResult());

  // Workspace: the per-row loss terms (f64) first, where writeRowSum reads
  // them; one chunk's logits (their gradient in place); the weight
  // gradient's slices when the unfused product would slice its rows.
  w.workspaceFloats(2 * T);
  std::string dloss, dx, dW;
  if (training) {
    dloss = nameOf(lossGrad.getDloss());
    dx = nameOf(productGrad.getDinput());
    dW = nameOf(productGrad.getDweight());
  }
  RowSlices slices = !dW.empty() ? denseRowSlices(w, T, V, d) : RowSlices{1, T};
  SmallVector<LogitChunk> chunks = logitChunks(T, V, d);
  std::string chunk = w.workspaceFloats(chunks.front().rows * V);
  std::string partials = slices.count > 1 ? w.workspaceFloats(slices.count * V * d) : "";
  unsigned threads = rowSoftmaxThreads(V);
  for (auto [i, c] : llvm::enumerate(chunks)) {
    std::string tag = "_" + std::to_string(i);
    std::string rowsOfX = offsetBy(x, c.first * d);
    // The chunk's logits, as moe.linear computes them.
    writeRowGroupedGemm(w, "logits" + tag, allRows(c.rows), V, d, {rowsOfX, d},
                        {weight, d, /*transposed=*/true}, {chunk, V});
    if (!bias.empty()) {
      w.beginEntry("bias" + tag, {blocksFor(c.rows * V, 256), 1, 1}, {256, 1, 1}, false);
      w.os() << forEachElement(c.rows * V) << "    " << chunk << "[i] += " << bias << "[i % " << V
             << "LL];\n";
    }
    // Each row's loss term, as moe.cross_entropy; in training its gradient,
    // as moe.cross_entropy_grad, over the logits.
    w.beginEntry("rows" + tag, {static_cast<unsigned>(std::min<int64_t>(c.rows, 65535)), 1, 1},
                 {threads, 1, 1}, /*usesBarriers=*/true);
    if (training)
      w.os() << "  float scale = " << dloss << "[0] / " << T << ";\n";
    beginRowSoftmax(w, {c.first, c.rows, chunk}, V, threads, "exp((double)(row[i] - maximum))");
    if (!lossOut.empty())
      writeCrossEntropyRow(w, V, targets);
    if (training) {
      writeRowExpSum(w, V, "expf(row[i] - maximum)", "gradSum");
      writeCrossEntropyGradRow(w, V, targets, "(float *)row", "gradSum");
    }
    w.os() << "  }\n";
    if (!training)
      continue;
    // The chunk's rows of dx = dlogits W; its rows' share of dW = dlogitsᵀ
    // x, one part per slice of the unfused product's rows it meets, each
    // continuing the sums of the chunks before it in that slice.
    if (!dx.empty())
      writeRowGroupedGemm(w, "input" + tag, allRows(c.rows), d, V, {chunk, V}, {weight, d},
                          {offsetBy(dx, c.first * d), d});
    if (dW.empty())
      continue;
    std::vector<ReductionPart> parts;
    for (int64_t s = 0; s < slices.count; ++s) {
      int64_t begin = std::max(c.first, s * slices.rows);
      int64_t end = std::min({c.first + c.rows, (s + 1) * slices.rows, T});
      if (begin >= end)
        continue;
      std::string sums = slices.count > 1 ? offsetBy(partials, s * V * d) : dW;
      parts.push_back({{offsetBy(chunk, (begin - c.first) * V), V},
                       {offsetBy(x, begin * d), d},
                       {sums, d},
                       end - begin,
                       /*resume=*/begin > s * slices.rows});
    }
    writeDenseReductionGemm(w, "weight" + tag, V, d, parts);
  }
  if (!dW.empty() && slices.count > 1) {
    // Slices past the rows hold zeros, as the unfused product's do.
    int64_t filled = (T + slices.rows - 1) / slices.rows;
    if (filled < slices.count) {
      int64_t n = (slices.count - filled) * V * d;
      w.beginEntry("empty_slices", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
      w.os() << forEachElement(n) << "    " << offsetBy(partials, filled * V * d)
             << "[i] = 0.0f;\n";
    }
    writeSliceSum(w, "weight_sum", partials, slices.count, V, d, dW);
  }
  if (!lossOut.empty())
    writeRowSum(w, T, "/ " + std::to_string(T) + ".0", lossOut);
  return w.finish();
}

void attachLossKernels(MLIRContext *context) {
  CrossEntropyOp::attachInterface<CrossEntropyKernel>(*context);
  CrossEntropyGradOp::attachInterface<CrossEntropyGradKernel>(*context);
  ZLossOp::attachInterface<ZLossStatistic, ZLossKernel>(*context);
  ZLossGradOp::attachInterface<ZLossGradRows, ZLossGradKernel>(*context);
  WeightedSumOp::attachInterface<WeightedSumKernel>(*context);
  EntropyLossOp::attachInterface<EntropyLossKernel>(*context);
  EntropyLossGradOp::attachInterface<EntropyLossGradKernel>(*context);
  LoadBalancingLossOp::attachInterface<LoadBalancingStatistic, LoadBalancingLossKernel>(*context);
  LoadBalancingLossGradOp::attachInterface<LoadBalancingLossGradKernel,
                                           LoadBalancingGradientStatistic>(*context);
}

} // namespace moec::codegen
