//===- LinearAttentionKernels.cpp - kernels of gated DeltaNet ops ---------===//
//
// moe.causal_conv1d and moe.delta_decay: a thread per element, their weight
// gradients as deterministic column sums (writeColumnSums). The gated delta
// rule: a block per sequence and value head, a thread per column j of the
// [Dk, Dv] state, which holds that column in registers (each column evolves
// on its own: mⱼ = Σᵢ M[i, j] kᵢ). Its gradient recomputes the states: the
// state at the start of every chunk of ⌈√S⌉ positions, then each chunk's states
// (last chunk first) into the workspace, and runs back through them; the
// products over columns (dq̂, dk̂) are summed in column order by the threads
// of the block, the scalars (dβ, dg) by block reductions. A last entry sums
// the value heads of each key head and goes back through the L2 norms.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

#include <cmath>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

RankedTensorType typeOf(Value value) { return cast<RankedTensorType>(value.getType()); }
std::string ll(int64_t value) { return std::to_string(value) + "LL"; }

struct CausalConv1DKernel
    : CudaKernelOpInterface::ExternalModel<CausalConv1DKernel, CausalConv1DOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    RankedTensorType x = typeOf(op->getOperand(0));
    int64_t S = x.getDimSize(1), C = x.getDimSize(2), K = typeOf(op->getOperand(1)).getDimSize(1);
    int64_t n = x.getNumElements();
    KernelWriter w(op, "causal_conv1d");
    w.os() << forEachElement(n) << "  {\n"
           << "    long long c = i % " << C << ", t = i / " << C << " % " << S << ";\n"
           << "    float sum = 0.0f;\n"
           << "    for (long long j = t < " << K - 1 << " ? " << K - 1 << " - t : 0; j < " << K
           << "; ++j)\n"
           << "      sum += in1[c * " << K << " + j] * in0[i + (j - " << K - 1 << ") * " << C
           << "];\n"
           << "    out0[i] = sum;\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

/// in0: the input, in1: the weight, in2: the result's gradient.
struct CausalConv1DGradKernel
    : CudaKernelOpInterface::ExternalModel<CausalConv1DGradKernel, CausalConv1DGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    RankedTensorType x = typeOf(op->getOperand(0));
    int64_t B = x.getDimSize(0), S = x.getDimSize(1), C = x.getDimSize(2),
            K = typeOf(op->getOperand(1)).getDimSize(1), n = x.getNumElements();
    KernelWriter w(op, "causal_conv1d_grad");
    w.beginEntry("dinput", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(n) << "  {\n"
           << "    long long c = i % " << C << ", t = i / " << C << " % " << S << ";\n"
           << "    float sum = 0.0f;\n"
           << "    for (long long j = t + " << K << " > " << S << " ? t + " << K - S << " : 0; j < "
           << K << "; ++j)\n"
           << "      sum += in1[c * " << K << " + j] * in2[i + (" << K - 1 << " - j) * " << C
           << "];\n"
           << "    out0[i] = sum;\n"
           << "  }\n";
    // dweight[c, tap] over the rows r = (b, t): dy[r, c] · x[r − (K−1) + tap, c].
    std::string term = "(r % " + ll(S) + " + j % " + ll(K) + " >= " + ll(K - 1) + " ? in2[r * " +
                       ll(C) + " + j / " + ll(K) + "] * in0[(r + j % " + ll(K) + " - " + ll(K - 1) +
                       ") * " + ll(C) + " + j / " + ll(K) + "] : 0.0f)";
    writeColumnSums(w, "dweight", B * S, C * K, "", {{term, "out1"}});
    return w.finish();
  }
};

constexpr const char *kSoftplusHelpers = R"cuda(__device__ float moec_softplus(float x) {
  return x > 20.0f ? x : log1pf(expf(x));
}
__device__ float moec_softplus_grad(float x) {
  return x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-x));
}
)cuda";

struct DeltaDecayKernel : CudaKernelOpInterface::ExternalModel<DeltaDecayKernel, DeltaDecayOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    RankedTensorType a = typeOf(op->getOperand(0));
    int64_t H = a.getShape().back(), n = a.getNumElements();
    KernelWriter w(op, "delta_decay");
    w.useHelper(kSoftplusHelpers);
    w.os() << forEachElement(n) << "    out0[i] = -expf(in1[i % " << H
           << "]) * moec_softplus(in0[i] + in2[i % " << H << "]);\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

/// in0: the input, in1: a_log, in2: dt_bias, in3: the result's gradient.
struct DeltaDecayGradKernel
    : CudaKernelOpInterface::ExternalModel<DeltaDecayGradKernel, DeltaDecayGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    RankedTensorType a = typeOf(op->getOperand(0));
    int64_t H = a.getShape().back(), n = a.getNumElements();
    KernelWriter w(op, "delta_decay_grad");
    w.useHelper(kSoftplusHelpers);
    w.beginEntry("dinput", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(n) << "    out0[i] = -in3[i] * expf(in1[i % " << H
           << "]) * moec_softplus_grad(in0[i] + in2[i % " << H << "]);\n";
    std::string at = "r * " + ll(H) + " + j";
    writeColumnSums(
        w, "sums", n / H, H, "",
        {{"in3[" + at + "] * -expf(in1[j]) * moec_softplus(in0[" + at + "] + in2[j])", "out1"},
         {"out0[" + at + "]", "out2"}});
    return w.finish();
  }
};

/// The shapes and attributes of a gated delta rule (or its gradient) and
/// the code both share.
struct DeltaRuleCode {
  int64_t B, S, Hk, Dk, Hv, Dv;
  double scale;
  std::optional<double> eps;
  unsigned threads;

  DeltaRuleCode(Operation *op, std::optional<APFloat> scaleAttr, std::optional<APFloat> epsAttr) {
    RankedTensorType q = typeOf(op->getOperand(0)), v = typeOf(op->getOperand(2));
    B = q.getDimSize(0), S = q.getDimSize(1), Hk = q.getDimSize(2), Dk = q.getDimSize(3);
    Hv = v.getDimSize(2), Dv = v.getDimSize(3);
    scale = scaleAttr ? scaleAttr->convertToDouble() : 1.0 / std::sqrt(double(Dk));
    if (epsAttr)
      eps = epsAttr->convertToDouble();
    threads = threadsFor(Dv);
  }

  /// Declarations at the top of an entry with a block per (sequence, value
  /// head): b, h, the key head kh, this thread's column j and `active`.
  std::string blockHead() const {
    return "  const long long b = blockIdx.x / " + ll(Hv) + ", h = blockIdx.x % " + ll(Hv) +
           ", kh = h / " + ll(Hv / Hk) +
           ";\n"
           "  const int j = threadIdx.x;\n"
           "  const bool active = j < " +
           std::to_string(Dv) + ";\n";
  }
  /// At position t: qt, kt (the query and key head's rows), qs, ks (the
  /// factors that normalise them, the query's times the scale), decay,
  /// beta, and the offset vt of the value head's row.
  std::string positionHead() const {
    std::string qk = "((b * " + ll(S) + " + t) * " + ll(Hk) + " + kh) * " + ll(Dk);
    std::string gate = "(b * " + ll(S) + " + t) * " + ll(Hv) + " + h";
    std::string code = "    const float *qt = in0 + " + qk + ", *kt = in1 + " + qk +
                       ";\n"
                       "    float qs = " +
                       floatLiteral(scale) + ", ks = 1.0f;\n";
    if (eps)
      code += "    {\n"
              "      float qq = 0.0f, kk = 0.0f;\n"
              "      for (int i = 0; i < " +
              std::to_string(Dk) +
              "; ++i) {\n"
              "        qq += qt[i] * qt[i];\n"
              "        kk += kt[i] * kt[i];\n"
              "      }\n"
              "      qs /= sqrtf(qq + " +
              floatLiteral(*eps) + ");\n      ks = 1.0f / sqrtf(kk + " + floatLiteral(*eps) +
              ");\n"
              "    }\n";
    code += "    const float decay = expf(in3[" + gate + "]), beta = in4[" + gate +
            "];\n"
            "    const long long vt = ((b * " +
            ll(S) + " + t) * " + ll(Hv) + " + h) * " + ll(Dv) + " + j;\n";
    return code;
  }
  /// One step of column j from `M` (the state before t, Dk floats): M
  /// becomes the state after t; m and delta are declared.
  std::string step(StringRef M) const {
    std::string Dks = std::to_string(Dk), m = M.str();
    return "    float m = 0.0f;\n"
           "    for (int i = 0; i < " +
           Dks + "; ++i) {\n      " + m + "[i] *= decay;\n      m += " + m +
           "[i] * (kt[i] * ks);\n    }\n"
           "    const float delta = beta * (in2[vt] - m);\n"
           "    for (int i = 0; i < " +
           Dks + "; ++i)\n      " + m + "[i] += kt[i] * ks * delta;\n";
  }
};

/// A thread per column of the state: at most a block's 1024 threads.
LogicalResult checkValueWidth(Operation *op, const DeltaRuleCode &r) {
  if (r.Dv > 1024)
    return op->emitOpError("the cuda target's delta rule holds a value head in one block: its "
                           "width must be at most 1024, but is ")
           << r.Dv;
  return success();
}

struct GatedDeltaRuleKernel
    : CudaKernelOpInterface::ExternalModel<GatedDeltaRuleKernel, GatedDeltaRuleOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto rule = cast<GatedDeltaRuleOp>(op);
    DeltaRuleCode r(op, rule.getScale(), rule.getQkL2normEps());
    if (failed(checkValueWidth(op, r)))
      return failure();
    KernelWriter w(op, "gated_delta_rule");
    w.os() << r.blockHead() << "  if (!active)\n    return;\n"
           << "  float M[" << r.Dk << "];\n"
           << "  for (int i = 0; i < " << r.Dk << "; ++i)\n    M[i] = 0.0f;\n"
           << "  for (long long t = 0; t < " << r.S << "; ++t) {\n"
           << r.positionHead() << r.step("M") << "    float o = 0.0f;\n"
           << "    for (int i = 0; i < " << r.Dk << "; ++i)\n"
           << "      o += M[i] * (qt[i] * qs);\n"
           << "    out0[vt] = o;\n"
           << "  }\n";
    return w.finish({unsigned(r.B * r.Hv), 1, 1}, {r.threads, 1, 1}, /*usesBarriers=*/false);
  }
};

/// in0..in4: query, key, value, decay, beta; in5: the result's gradient.
/// out0..out4: their gradients.
struct GatedDeltaRuleGradKernel
    : CudaKernelOpInterface::ExternalModel<GatedDeltaRuleGradKernel, GatedDeltaRuleGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<GatedDeltaRuleGradOp>(op);
    DeltaRuleCode r(op, grad.getScale(), grad.getQkL2normEps());
    if (failed(checkValueWidth(op, r)))
      return failure();
    int64_t Dk = r.Dk, Dv = r.Dv, S = r.S, heads = r.B * r.Hv;
    // Checkpoints every ⌈√S⌉ positions: the fewest states kept (S/C + C).
    const int64_t kChunk = std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(S)))));
    int64_t chunks = (S + kChunk - 1) / kChunk, state = Dk * Dv;
    KernelWriter w(op, "gated_delta_rule_grad");
    // Per (sequence, value head): the chunks' first states and one chunk's
    // states ([i, j] at i · Dv + j), each column's products for the column
    // sums ([j, i]), and dq̂, dk̂ per position ([t, i]).
    std::string checkpoints = w.workspaceFloats(heads * chunks * state);
    std::string states = w.workspaceFloats(heads * kChunk * state);
    std::string partQ = w.workspaceFloats(heads * state), partK = w.workspaceFloats(heads * state);
    std::string dqHat = w.workspaceFloats(heads * S * Dk),
                dkHat = w.workspaceFloats(heads * S * Dk);
    std::string head = "blockIdx.x * " + ll(state);
    w.beginEntry("recurrence", {unsigned(heads), 1, 1}, {r.threads, 1, 1}, true);
    auto &os = w.os();
    os << r.blockHead() << "  __shared__ float scratch[" << r.threads << "];\n"
       << "  float M[" << Dk << "], dM[" << Dk << "];\n"
       << "  for (int i = 0; i < " << Dk << "; ++i)\n    M[i] = dM[i] = 0.0f;\n"
       << "  float *checkpoint = " << checkpoints << " + blockIdx.x * " << ll(chunks * state)
       << ", *before = " << states << " + blockIdx.x * " << ll(kChunk * state) << ";\n"
       << "  float *pq = " << partQ << " + " << head << ", *pk = " << partK << " + " << head
       << ";\n"
       << "  float *dq = " << dqHat << " + blockIdx.x * " << ll(S * Dk) << ", *dk = " << dkHat
       << " + blockIdx.x * " << ll(S * Dk)
       << ";\n"
       // The first state of every chunk.
       << "  if (active)\n"
       << "    for (long long t = 0; t < " << S << "; ++t) {\n"
       << "      if (t % " << kChunk << " == 0)\n"
       << "        for (int i = 0; i < " << Dk << "; ++i)\n"
       << "          checkpoint[t / " << kChunk << " * " << ll(state) << " + i * " << Dv
       << " + j] = M[i];\n"
       << r.positionHead() << r.step("M") << "    }\n"
       << "  for (long long c = " << chunks - 1 << "; c >= 0; --c) {\n"
       << "    const long long first = c * " << kChunk << ", end = first + " << kChunk << " < " << S
       << " ? first + " << kChunk << " : " << S
       << ";\n"
       // The chunk's states: before[t - first] is the state before t.
       << "    if (active) {\n"
       << "      for (int i = 0; i < " << Dk << "; ++i)\n"
       << "        M[i] = checkpoint[c * " << ll(state) << " + i * " << Dv << " + j];\n"
       << "      for (long long t = first; t < end; ++t) {\n"
       << "        for (int i = 0; i < " << Dk << "; ++i)\n"
       << "          before[(t - first) * " << ll(state) << " + i * " << Dv << " + j] = M[i];\n"
       << r.positionHead() << r.step("M") << "      }\n"
       << "    }\n"
       << "    for (long long t = end - 1; t >= first; --t) {\n"
       << r.positionHead() << "    float dbeta = 0.0f, dg = 0.0f;\n"
       << "    if (active) {\n"
       << "      const float *prior = before + (t - first) * " << ll(state) << ";\n"
       << "      const float dout = in5[vt];\n"
       // m and δ of column j, and the state after t.
       << "      float m = 0.0f;\n"
       << "      for (int i = 0; i < " << Dk << "; ++i)\n"
       << "        m += decay * prior[i * " << Dv << " + j] * (kt[i] * ks);\n"
       << "      const float delta = beta * (in2[vt] - m);\n"
       << "      float ddelta = 0.0f;\n"
       << "      for (int i = 0; i < " << Dk << "; ++i) {\n"
       << "        const float k = kt[i] * ks, after = decay * prior[i * " << Dv
       << " + j] + k * delta;\n"
       << "        dM[i] += qt[i] * qs * dout;\n"
       << "        pq[j * " << Dk << " + i] = after * dout;\n"
       << "        ddelta += dM[i] * k;\n"
       << "      }\n"
       << "      out2[vt] = beta * ddelta;\n"
       << "      dbeta = ddelta * (in2[vt] - m);\n"
       << "      const float dm = -beta * ddelta;\n"
       << "      for (int i = 0; i < " << Dk << "; ++i) {\n"
       << "        const float k = kt[i] * ks, A = decay * prior[i * " << Dv << " + j];\n"
       << "        const float dA = dM[i] + k * dm;\n"
       << "        pk[j * " << Dk << " + i] = dM[i] * delta + A * dm;\n"
       << "        dg += dA * A;\n"
       << "        dM[i] = decay * dA;\n"
       << "      }\n"
       << "    }\n"
       << "    __syncthreads();\n"
       << "    for (int i = threadIdx.x; i < " << Dk << "; i += blockDim.x) {\n"
       << "      float sq = 0.0f, sk = 0.0f;\n"
       << "      for (int col = 0; col < " << Dv << "; ++col) {\n"
       << "        sq += pq[col * " << Dk << " + i];\n"
       << "        sk += pk[col * " << Dk << " + i];\n"
       << "      }\n"
       << "      dq[t * " << Dk << " + i] = sq;\n"
       << "      dk[t * " << Dk << " + i] = sk;\n"
       << "    }\n"
       // No thread writes the next position's products before every thread
       // has read these.
       << "    __syncthreads();\n"
       << "    dbeta = moec_block_sum(dbeta, scratch);\n"
       << "    dg = moec_block_sum(dg, scratch);\n"
       << "    if (threadIdx.x == 0) {\n"
       << "      out4[(b * " << S << " + t) * " << r.Hv << " + h] = dbeta;\n"
       << "      out3[(b * " << S << " + t) * " << r.Hv << " + h] = dg;\n"
       << "    }\n"
       << "    }\n"
       << "  }\n";
    // Each key head's rows: the sum over its value heads, then back
    // through the scale and the L2 norm.
    int64_t rows = r.B * S * r.Hk, group = r.Hv / r.Hk;
    w.beginEntry("normalize", {blocksFor(rows, 128), 1, 1}, {128, 1, 1}, false);
    w.os() << forEachElement(rows, "row") << "  {\n"
           << "    const long long kh = row % " << r.Hk << ", t = row / " << r.Hk << " % " << S
           << ", b = row / " << ll(r.Hk * S) << ";\n"
           << "    const float *q = in0 + row * " << Dk << ", *k = in1 + row * " << Dk << ";\n"
           << "    float *gq = out0 + row * " << Dk << ", *gk = out1 + row * " << Dk << ";\n"
           << "    for (int i = 0; i < " << Dk << "; ++i) {\n"
           << "      float sq = 0.0f, sk = 0.0f;\n"
           << "      for (long long h = kh * " << group << "; h < (kh + 1) * " << group
           << "; ++h) {\n"
           << "        const long long at = ((b * " << r.Hv << " + h) * " << S << " + t) * " << Dk
           << " + i;\n"
           << "        sq += " << dqHat << "[at];\n"
           << "        sk += " << dkHat << "[at];\n"
           << "      }\n"
           << "      gq[i] = sq * " << floatLiteral(r.scale) << ";\n"
           << "      gk[i] = sk;\n"
           << "    }\n";
    if (r.eps) {
      // d(x / n) = g  ->  dx = (g − ŷ (g · ŷ)) / n, ŷ = x / n.
      std::string e = floatLiteral(*r.eps);
      for (auto [x, g] : {std::pair{"q", "gq"}, std::pair{"k", "gk"}})
        w.os() << "    {\n"
               << "      float xx = 0.0f, dot = 0.0f;\n"
               << "      for (int i = 0; i < " << Dk << "; ++i)\n"
               << "        xx += " << x << "[i] * " << x << "[i];\n"
               << "      const float n = sqrtf(xx + " << e << ");\n"
               << "      for (int i = 0; i < " << Dk << "; ++i)\n"
               << "        dot += " << g << "[i] * " << x << "[i] / n;\n"
               << "      for (int i = 0; i < " << Dk << "; ++i)\n"
               << "        " << g << "[i] = (" << g << "[i] - " << x << "[i] / n * dot) / n;\n"
               << "    }\n";
    }
    w.os() << "  }\n";
    return w.finish();
  }
};
/// One decayed scan of a lightning attention (or of its gradient) per
/// (sequence, head) block, a thread per row k of the [D, D] state
/// (`transpose`: out_t[k] = Σ_m M[k, m] x_t[m], the row in registers) or per
/// column (out_t[k] = Σ_m M[m, k] x_t[m]), with M ← e^{−s} M + a_t b_tᵀ
/// first; from the last position when `reverse`. No thread reads another's
/// state, so the entry has no barriers.
void writeDecayedScan(KernelWriter &w, StringRef label, int64_t B, int64_t S, int64_t H, int64_t D,
                      ArrayRef<float> rates, StringRef a, StringRef b, StringRef x, StringRef out,
                      bool reverse, bool transpose) {
  std::string decays;
  for (float rate : rates)
    decays += (decays.empty() ? "" : ", ") + floatLiteral(rate);
  w.beginEntry(label, {unsigned(B * H), 1, 1}, {threadsFor(D), 1, 1}, false);
  w.os() << "  const long long b = blockIdx.x / " << H << ", h = blockIdx.x % " << H << ";\n"
         << "  const int k = threadIdx.x;\n"
         << "  if (k >= " << D << ")\n    return;\n"
         << "  const float rates[" << H << "] = {" << decays << "};\n"
         << "  const float decay = expf(-rates[h]);\n"
         << "  float M[" << D << "];\n"
         << "  for (int m = 0; m < " << D << "; ++m)\n    M[m] = 0.0f;\n"
         << "  for (long long step = 0; step < " << S << "; ++step) {\n"
         << "    const long long t = " << (reverse ? std::to_string(S - 1) + " - step" : "step")
         << ";\n"
         << "    const long long at = ((b * " << S << " + t) * " << H << " + h) * " << D << ";\n"
         << "    float sum = 0.0f;\n"
         << "    for (int m = 0; m < " << D << "; ++m) {\n";
  // transpose: M[k, m] = e^{-s} M[k, m] + a[k] b[m]; else M[m, k] (column k).
  if (transpose)
    w.os() << "      M[m] = decay * M[m] + " << a << "[at + k] * " << b << "[at + m];\n";
  else
    w.os() << "      M[m] = decay * M[m] + " << a << "[at + m] * " << b << "[at + k];\n";
  w.os() << "      sum += M[m] * " << x << "[at + m];\n"
         << "    }\n"
         << "    " << out << "[at + k] = sum;\n"
         << "  }\n";
}

/// The [B, S, H, D] of a lightning attention's operands (operand 0), with
/// heads no wider than a block.
FailureOr<std::array<int64_t, 4>> lightningShape(Operation *op) {
  RankedTensorType q = typeOf(op->getOperand(0));
  std::array<int64_t, 4> shape = {q.getDimSize(0), q.getDimSize(1), q.getDimSize(2),
                                  q.getDimSize(3)};
  if (shape[3] > 1024)
    return op->emitOpError("the cuda target's lightning attention holds a head in one block: "
                           "its width must be at most 1024, but is ")
           << shape[3];
  return shape;
}

struct LightningAttentionKernel
    : CudaKernelOpInterface::ExternalModel<LightningAttentionKernel, LightningAttentionOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    FailureOr<std::array<int64_t, 4>> shape = lightningShape(op);
    if (failed(shape))
      return failure();
    auto [B, S, H, D] = *shape;
    KernelWriter w(op, "lightning_attention");
    writeDecayedScan(w, "scan", B, S, H, D, cast<LightningAttentionOp>(op).getDecay(), "in1", "in2",
                     "in0", "out0", /*reverse=*/false, /*transpose=*/false);
    return w.finish();
  }
};

/// in0..in3: query, key, value, the result's gradient.
struct LightningAttentionGradKernel
    : CudaKernelOpInterface::ExternalModel<LightningAttentionGradKernel, LightningAttentionGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    FailureOr<std::array<int64_t, 4>> shape = lightningShape(op);
    if (failed(shape))
      return failure();
    auto [B, S, H, D] = *shape;
    ArrayRef<float> rates = cast<LightningAttentionGradOp>(op).getDecay();
    KernelWriter w(op, "lightning_attention_grad");
    // dq_t = M_t do_t; G_t = e^{−s} G_{t+1} + q_t do_tᵀ: dk_t = G_t v_t, dv_t = G_tᵀ k_t.
    writeDecayedScan(w, "dquery", B, S, H, D, rates, "in1", "in2", "in3", "out0", false, true);
    writeDecayedScan(w, "dkey", B, S, H, D, rates, "in0", "in3", "in2", "out1", true, true);
    writeDecayedScan(w, "dvalue", B, S, H, D, rates, "in0", "in3", "in1", "out2", true, false);
    return w.finish();
  }
};
} // namespace

void attachLinearAttentionKernels(MLIRContext *context) {
  LightningAttentionOp::attachInterface<LightningAttentionKernel>(*context);
  LightningAttentionGradOp::attachInterface<LightningAttentionGradKernel>(*context);
  CausalConv1DOp::attachInterface<CausalConv1DKernel>(*context);
  CausalConv1DGradOp::attachInterface<CausalConv1DGradKernel>(*context);
  DeltaDecayOp::attachInterface<DeltaDecayKernel>(*context);
  DeltaDecayGradOp::attachInterface<DeltaDecayGradKernel>(*context);
  GatedDeltaRuleOp::attachInterface<GatedDeltaRuleKernel>(*context);
  GatedDeltaRuleGradOp::attachInterface<GatedDeltaRuleGradKernel>(*context);
}

} // namespace moec::codegen
