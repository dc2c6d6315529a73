//===- AttentionKernels.cpp - reference kernels of causal attention -------===//
//
// moe.attention and moe.attention_grad (MHA/GQA, [B, S, H, D] layouts) as
// the CPU kernels compute them: the probabilities of each query row in the
// workspace, then one thread per output element summing in index order.
// Correct and deterministic, not fast (the GPU work replaces them with
// batched library GEMMs or a fused kernel).
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

struct AttentionShape {
  int64_t B, S, Hq, Hkv, D, group;
  std::string scale;
  bool causal;
};

AttentionShape attentionShape(Operation *op) {
  auto q = cast<RankedTensorType>(op->getOperand(0).getType());
  auto k = cast<RankedTensorType>(op->getOperand(1).getType());
  AttentionShape a;
  a.B = q.getDimSize(0);
  a.S = q.getDimSize(1);
  a.Hq = q.getDimSize(2);
  a.D = q.getDimSize(3);
  a.Hkv = k.getDimSize(2);
  a.group = a.Hq / a.Hkv;
  auto scale = op->getAttrOfType<FloatAttr>("scale");
  a.scale = floatLiteral(scale ? scale.getValueAsDouble()
                               : 1.0f / std::sqrt(static_cast<float>(a.D)));
  a.causal = op->hasAttr("causal");
  return a;
}

/// Launch "probs": P[b, h, i, :] = softmax over the visible keys of
/// scale · Q_i · K_j, zero beyond them (one thread per query row).
void writeProbabilities(KernelWriter &w, const AttentionShape &a) {
  int64_t rows = a.B * a.Hq * a.S;
  w.beginEntry("probs", {blocksFor(rows, 128), 1, 1}, {128, 1, 1}, false);
  w.os() << "  float *P = (float *)workspace;\n"
         << forEachElement(rows, "row") << "  {\n"
         << "    long long b = row / " << a.Hq * a.S << "LL, h = row / " << a.S << "LL % "
         << a.Hq << ", i = row % " << a.S << "LL;\n"
         << "    const float *Q = in0 + ((b * " << a.S << " + i) * " << a.Hq << " + h) * " << a.D
         << "LL;\n"
         << "    float *p = P + row * " << a.S << "LL;\n"
         << "    long long visible = " << (a.causal ? "i + 1" : std::to_string(a.S)) << ";\n"
         << "    float maximum = -__int_as_float(0x7f800000);\n"
         << "    for (long long j = 0; j < visible; ++j) {\n"
         << "      const float *K = in1 + ((b * " << a.S << " + j) * " << a.Hkv << " + h / "
         << a.group << ") * " << a.D << "LL;\n"
         << "      float dot = 0.0f;\n"
         << "      for (int c = 0; c < " << a.D << "; ++c)\n"
         << "        dot += Q[c] * K[c];\n"
         << "      p[j] = " << a.scale << " * dot;\n"
         << "      maximum = fmaxf(maximum, p[j]);\n"
         << "    }\n"
         << "    double sum = 0.0;\n"
         << "    for (long long j = 0; j < visible; ++j) {\n"
         << "      p[j] = expf(p[j] - maximum);\n"
         << "      sum += p[j];\n"
         << "    }\n"
         << "    float inverse = (float)(1.0 / sum);\n"
         << "    for (long long j = 0; j < " << a.S << "; ++j)\n"
         << "      p[j] = j < visible ? p[j] * inverse : 0.0f;\n"
         << "  }\n";
}

struct AttentionKernel : CudaKernelOpInterface::ExternalModel<AttentionKernel, AttentionOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    AttentionShape a = attentionShape(op);
    KernelWriter w(op, "attention");
    w.setWorkspace(a.B * a.Hq * a.S * a.S * sizeof(float));
    writeProbabilities(w, a);
    int64_t n = a.B * a.S * a.Hq * a.D;
    // in: q, k, v; out: o [B, S, Hq, D].
    w.beginEntry("output", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << "  const float *P = (const float *)workspace;\n"
           << forEachElement(n) << "  {\n"
           << "    long long c = i % " << a.D << "LL, h = i / " << a.D << "LL % " << a.Hq
           << ", t = i / " << a.D * a.Hq << "LL, b = t / " << a.S << "LL, q = t % " << a.S
           << "LL;\n"
           << "    const float *p = P + ((b * " << a.Hq << " + h) * " << a.S << " + q) * " << a.S
           << "LL;\n"
           << "    float acc = 0.0f;\n"
           << "    for (long long j = 0; j < " << a.S << "; ++j)\n"
           << "      acc += p[j] * in2[((b * " << a.S << " + j) * " << a.Hkv << " + h / " << a.group
           << ") * " << a.D << "LL + c];\n"
           << "    out0[i] = acc;\n"
           << "  }\n";
    return w.finish();
  }
};

struct AttentionGradKernel
    : CudaKernelOpInterface::ExternalModel<AttentionGradKernel, AttentionGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    AttentionShape a = attentionShape(op);
    int64_t probabilities = a.B * a.Hq * a.S * a.S;
    KernelWriter w(op, "attention_grad");
    w.setWorkspace(2 * probabilities * sizeof(float)); // P, then dS
    writeProbabilities(w, a);
    std::string layout = "  const float *P = (const float *)workspace;\n  float *dS = (float *)workspace + " +
                         std::to_string(probabilities) + "LL;\n";
    // in: q, k, v, dO; out: dq, dk, dv.
    int64_t rows = a.B * a.Hq * a.S;
    w.beginEntry("scores", {blocksFor(rows, 128), 1, 1}, {128, 1, 1}, false);
    w.os() << layout << forEachElement(rows, "row") << "  {\n"
           << "    long long b = row / " << a.Hq * a.S << "LL, h = row / " << a.S << "LL % "
           << a.Hq << ", i = row % " << a.S << "LL;\n"
           << "    const float *dO = in3 + ((b * " << a.S << " + i) * " << a.Hq << " + h) * "
           << a.D << "LL;\n"
           << "    const float *p = P + row * " << a.S << "LL;\n"
           << "    float *ds = dS + row * " << a.S << "LL;\n"
           << "    float dot = 0.0f;\n"
           << "    for (long long j = 0; j < " << a.S << "; ++j) {\n"
           << "      const float *V = in2 + ((b * " << a.S << " + j) * " << a.Hkv << " + h / "
           << a.group << ") * " << a.D << "LL;\n"
           << "      float dp = 0.0f;\n"
           << "      for (int c = 0; c < " << a.D << "; ++c)\n"
           << "        dp += dO[c] * V[c];\n"
           << "      ds[j] = dp;\n"
           << "      dot += dp * p[j];\n"
           << "    }\n"
           << "    for (long long j = 0; j < " << a.S << "; ++j)\n"
           << "      ds[j] = p[j] * (ds[j] - dot) * " << a.scale << ";\n"
           << "  }\n";
    int64_t nq = a.B * a.S * a.Hq * a.D, nk = a.B * a.S * a.Hkv * a.D;
    w.beginEntry("query", {blocksFor(nq, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << layout << forEachElement(nq) << "  {\n"
           << "    long long c = i % " << a.D << "LL, h = i / " << a.D << "LL % " << a.Hq
           << ", t = i / " << a.D * a.Hq << "LL, b = t / " << a.S << "LL, q = t % " << a.S
           << "LL;\n"
           << "    const float *ds = dS + ((b * " << a.Hq << " + h) * " << a.S << " + q) * "
           << a.S << "LL;\n"
           << "    float acc = 0.0f;\n"
           << "    for (long long j = 0; j < " << a.S << "; ++j)\n"
           << "      acc += ds[j] * in1[((b * " << a.S << " + j) * " << a.Hkv << " + h / "
           << a.group << ") * " << a.D << "LL + c];\n"
           << "    out0[i] = acc;\n"
           << "  }\n";
    // dK and dV over the query heads of each key/value head, head by head.
    w.beginEntry("keys", {blocksFor(nk, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << layout << forEachElement(nk) << "  {\n"
           << "    long long c = i % " << a.D << "LL, kvh = i / " << a.D << "LL % " << a.Hkv
           << ", t = i / " << a.D * a.Hkv << "LL, b = t / " << a.S << "LL, j = t % " << a.S
           << "LL;\n"
           << "    float dk = 0.0f, dv = 0.0f;\n"
           << "    for (long long h = kvh * " << a.group << "; h < (kvh + 1) * " << a.group
           << "; ++h) {\n"
           << "      float hk = 0.0f, hv = 0.0f;\n"
           << "      for (long long q = 0; q < " << a.S << "; ++q) {\n"
           << "        long long at = ((b * " << a.Hq << " + h) * " << a.S << " + q) * " << a.S
           << "LL + j;\n"
           << "        long long qi = ((b * " << a.S << " + q) * " << a.Hq << " + h) * " << a.D
           << "LL + c;\n"
           << "        hk += dS[at] * in0[qi];\n"
           << "        hv += P[at] * in3[qi];\n"
           << "      }\n"
           << "      dk += hk;\n"
           << "      dv += hv;\n"
           << "    }\n"
           << "    out1[i] = dk;\n"
           << "    out2[i] = dv;\n"
           << "  }\n";
    return w.finish();
  }
};
} // namespace

void attachAttentionKernels(MLIRContext *context) {
  AttentionOp::attachInterface<AttentionKernel>(*context);
  AttentionGradOp::attachInterface<AttentionGradKernel>(*context);
}

} // namespace moec::codegen
