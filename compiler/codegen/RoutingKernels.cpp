//===- RoutingKernels.cpp - kernels of router scores and selections -------===//
//
// One thread per token (experts are few): moe.score, moe.score_grad,
// moe.topk_route, moe.selection_grad, the Gumbel-softmax and SparseMixer
// (token bodies, see TokenRowWriter.h), and jitter, as the CPU kernels
// compute them.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/TokenRowWriter.h"

#include "dialects/moe/IR/MoEOps.h"
#include "runtime/core/Random.h"

#include <algorithm>
#include <cstdio>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// The seed-independent part of a noise draw's key (rt::noiseKey), as a
/// literal to xor the seed with.
std::string noiseSaltLiteral(uint64_t salt, Operation *op) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%016llxull",
                static_cast<unsigned long long>(
                    rt::noiseKey(0, salt, static_cast<uint64_t>(intAttr(op, "stream")))));
  return text;
}

// Scores, selections and their gradients: one token's rows each
// (TokenRowWriter), alone or in a fused router kernel.

struct ScoreRows : TokenRowKernelOpInterface::ExternalModel<ScoreRows, ScoreOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    auto score = cast<ScoreOp>(op);
    int64_t E = TokenRowWriter::width(score.getLogits());
    rows.os() << "      const float *l = " << rows.row(score.getLogits()) << ";\n"
              << "      float *out = " << rows.row(score.getScores()) << ";\n";
    if (score.getFunction() == ScoreFunction::sigmoid) {
      rows.os() << "      for (int e = 0; e < " << E << "; ++e)\n"
                << "        out[e] = 1.0f / (1.0f + expf(-l[e]));\n";
      return success();
    }
    // softmaxRow of logits / temperature.
    rows.useHelper(kSoftmaxHelpers);
    rows.os() << "      for (int e = 0; e < " << E << "; ++e)\n"
              << "        out[e] = l[e] * "
              << floatLiteral(1.0 / score.getTemperature().convertToDouble()) << ";\n"
              << "      moec_softmax_row(out, " << E << ");\n";
    return success();
  }
};

struct ScoreGradRows : TokenRowKernelOpInterface::ExternalModel<ScoreGradRows, ScoreGradOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    auto grad = cast<ScoreGradOp>(op);
    int64_t E = TokenRowWriter::width(grad.getScores());
    rows.os() << "      const float *s = " << rows.row(grad.getScores())
              << ", *g = " << rows.row(grad.getDscores()) << ";\n"
              << "      float *out = " << rows.row(grad.getDlogits()) << ";\n";
    if (grad.getFunction() == ScoreFunction::sigmoid) {
      rows.os() << "      for (int e = 0; e < " << E << "; ++e)\n"
                << "        out[e] = g[e] * s[e] * (1.0f - s[e]);\n";
      return success();
    }
    rows.useHelper(kSoftmaxHelpers);
    rows.os() << "      moec_softmax_grad_row(s, g, out, " << E << ", "
              << floatLiteral(1.0 / grad.getTemperatureAttr().getValueAsDouble()) << ");\n";
    return success();
  }
};

/// The k largest of the scores plus the optional bias, ties to the lower
/// index, as a stable descending sort takes them; weights from the scores,
/// renormalised and scaled.
struct TopKRouteRows : TokenRowKernelOpInterface::ExternalModel<TopKRouteRows, TopKRouteOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    auto route = cast<TopKRouteOp>(op);
    int64_t E = TokenRowWriter::width(route.getScores()), k = route.getK();
    rows.useHelper(kSelectionHelpers);
    rows.os() << "      const float *row = " << rows.row(route.getScores()) << ";\n"
              << "      float choice[" << E << "];\n"
              << "      for (int e = 0; e < " << E << "; ++e)\n"
              << "        choice[e] = row[e]"
              << (op->getNumOperands() > 1 ? " + " + rows.row(op->getOperand(1)) + "[e]"
                                           : std::string(" + 0.0f"))
              << ";\n"
              << "      int picks[" << k << "];\n"
              << "      moec_order_desc(choice, " << E << ", " << k << ", picks);\n"
              << "      moec_write_selection(" << rows.row(route.getWeights()) << ", "
              << rows.row(route.getIndices()) << ", " << k << ", picks, " << k << ", row, "
              << (route.getNormalize() ? "true" : "false") << ", "
              << floatLiteral(route.getNormEps().convertToDouble()) << ", "
              << floatLiteral(route.getScaling().convertToDouble()) << ");\n";
    return success();
  }
};

struct SelectionGradRows
    : TokenRowKernelOpInterface::ExternalModel<SelectionGradRows, SelectionGradOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    auto grad = cast<SelectionGradOp>(op);
    int64_t E = TokenRowWriter::width(grad.getScores());
    int64_t K = TokenRowWriter::width(grad.getIndices());
    std::string scaling = floatLiteral(grad.getScalingAttr().getValueAsDouble());
    rows.os() << "      const int *idx = " << rows.row(grad.getIndices()) << ";\n"
              << "      const float *g = " << rows.row(grad.getDweights())
              << ", *s = " << rows.row(grad.getScores()) << ";\n"
              << "      float *out = " << rows.row(grad.getDscores()) << ";\n"
              << "      for (int e = 0; e < " << E << "; ++e)\n"
              << "        out[e] = 0.0f;\n";
    if (!grad.getNormalize()) {
      rows.os() << "      for (int j = 0; j < " << K << "; ++j)\n"
                << "        if (idx[j] >= 0 && idx[j] < " << E << ")\n"
                << "          out[idx[j]] += " << scaling << " * g[j];\n";
      return success();
    }
    rows.os() << "      float sum = 0.0f, dot = 0.0f;\n"
              << "      for (int j = 0; j < " << K << "; ++j)\n"
              << "        if (idx[j] >= 0 && idx[j] < " << E << ") {\n"
              << "          sum += s[idx[j]];\n"
              << "          dot += g[j] * s[idx[j]];\n"
              << "        }\n"
              << "      float denominator = sum + "
              << floatLiteral(grad.getNormEpsAttr().getValueAsDouble()) << ";\n"
              << "      for (int j = 0; j < " << K << "; ++j)\n"
              << "        if (idx[j] >= 0 && idx[j] < " << E << ")\n"
              << "          out[idx[j]] += " << scaling
              << " * (g[j] / denominator - dot / (denominator * denominator));\n";
    return success();
  }
};

std::string kernelStem(ScoreOp op) {
  return op.getFunction() == ScoreFunction::sigmoid ? "score_sigmoid" : "score_softmax";
}
std::string kernelStem(ScoreGradOp op) {
  return op.getFunction() == ScoreFunction::sigmoid ? "score_grad_sigmoid" : "score_grad_softmax";
}
std::string kernelStem(TopKRouteOp) { return "topk_route"; }
std::string kernelStem(SelectionGradOp) { return "selection_grad"; }

/// Gumbel noise from the seed (when given) at temperature in1, then the
/// softmax of each token's row.
struct GumbelSoftmaxRows
    : TokenRowKernelOpInterface::ExternalModel<GumbelSoftmaxRows, GumbelSoftmaxOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    int64_t E = TokenRowWriter::width(op->getOperand(0));
    bool noise = op->getNumOperands() > 2;
    rows.useHelper(kRandomHelpers);
    rows.useHelper(kSoftmaxHelpers);
    rows.os() << "      const float *l = " << rows.row(op->getOperand(0)) << ";\n"
              << "      float *out = " << rows.row(op->getResult(0)) << ";\n"
              << "      float tau = " << rows.row(op->getOperand(1)) << "[0];\n";
    if (noise)
      rows.os() << "      unsigned long long key = (unsigned long long)"
                << rows.row(op->getOperand(2)) << "[0] ^ " << noiseSaltLiteral(rt::kGumbelSalt, op)
                << ";\n";
    rows.os() << "      for (int e = 0; e < " << E << "; ++e) {\n"
              << "        long long i = t * " << E << "LL + e;\n"
              << "        float g = "
              << (noise ? "(float)(-log(-log(moec_uniform01(key, (unsigned long long)i))))"
                        : "0.0f")
              << ";\n"
              << "        out[e] = (l[e] + g) / tau;\n"
              << "      }\n"
              << "      moec_softmax_row(out, " << E << ");\n";
    return success();
  }
};

struct GumbelSoftmaxGradRows
    : TokenRowKernelOpInterface::ExternalModel<GumbelSoftmaxGradRows, GumbelSoftmaxGradOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    // in: scores, tau, dscores.
    rows.useHelper(kSoftmaxHelpers);
    rows.os() << "      moec_softmax_grad_row(" << rows.row(op->getOperand(0)) << ", "
              << rows.row(op->getOperand(2)) << ", " << rows.row(op->getResult(0)) << ", "
              << TokenRowWriter::width(op->getOperand(0)) << ", 1.0f / "
              << rows.row(op->getOperand(1)) << "[0]);\n";
    return success();
  }
};

/// PhiMoE's two picks, as the CPU kernel: per pick the masked gates, in
/// training a Gumbel sample and the midpoint factor.
struct SparseMixerRouteRows
    : TokenRowKernelOpInterface::ExternalModel<SparseMixerRouteRows, SparseMixerRouteOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    auto route = cast<SparseMixerRouteOp>(op);
    int64_t E = TokenRowWriter::width(route.getLogits());
    bool training = static_cast<bool>(route.getSeed());
    rows.useHelper(kSoftmaxHelpers);
    rows.useHelper(kSparseMixerHelpers);
    llvm::raw_string_ostream &os = rows.os();
    os << "      const float *l = " << rows.row(route.getLogits()) << ";\n"
       << "      float *w = " << rows.row(route.getWeights()) << ";\n"
       << "      int *idx = " << rows.row(route.getIndices()) << ";\n"
       << "      float masked[" << E << "], p[" << E << "];\n";
    if (training) {
      rows.useHelper(kRandomHelpers);
      std::string seed = "(unsigned long long)" + rows.row(route.getSeed()) + "[0]";
      os << "      const unsigned long long gumbelKeys[2] = {" << seed << " ^ "
         << noiseSaltLiteral(rt::kSparseMixerGumbelSalt1, op) << ", " << seed << " ^ "
         << noiseSaltLiteral(rt::kSparseMixerGumbelSalt2, op) << "};\n"
         << "      const unsigned long long midpointKeys[2] = {" << seed << " ^ "
         << noiseSaltLiteral(rt::kSparseMixerMidpointSalt1, op) << ", " << seed << " ^ "
         << noiseSaltLiteral(rt::kSparseMixerMidpointSalt2, op) << "};\n";
    }
    os << "      int excluded = -1;\n"
       << "      for (int j = 0; j < 2; ++j) {\n"
       << "        int pick = moec_sparsemixer_gates(l, " << E << ", excluded, "
       << floatLiteral(route.getEpsilon().convertToDouble()) << ", masked, p);\n"
       << "        float weight = p[pick];\n";
    if (training)
      os << "        for (int e = 0; e < " << E << "; ++e)\n"
         << "          masked[e] -= (float)log(-log(moec_uniform01(gumbelKeys[j], "
            "(unsigned long long)(t * "
         << E << "LL + e))));\n"
         << "        pick = moec_argmax(masked, " << E << ");\n"
         << "        bool one = pick == moec_argmax(p, " << E
         << ") || moec_uniform01(midpointKeys[j], (unsigned long long)t) > 0.75;\n"
         << "        weight = p[pick] * (0.3333f + 0.6667f * (one ? 1.0f : 0.0f));\n";
    os << "        w[j] = weight;\n"
       << "        idx[j] = pick;\n"
       << "        excluded = pick;\n"
       << "      }\n";
    return success();
  }
};

struct SparseMixerGradRows
    : TokenRowKernelOpInterface::ExternalModel<SparseMixerGradRows, SparseMixerGradOp> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    auto grad = cast<SparseMixerGradOp>(op);
    int64_t E = TokenRowWriter::width(grad.getLogits());
    rows.useHelper(kSoftmaxHelpers);
    rows.useHelper(kSparseMixerHelpers);
    rows.os() << "      const float *l = " << rows.row(grad.getLogits())
              << ", *g = " << rows.row(grad.getDweights()) << ";\n"
              << "      const int *idx = " << rows.row(grad.getIndices()) << ";\n"
              << "      float *out = " << rows.row(grad.getDlogits()) << ";\n"
              << "      float masked[" << E << "], p[" << E << "];\n"
              << "      for (int e = 0; e < " << E << "; ++e)\n"
              << "        out[e] = 0.0f;\n"
              << "      int excluded = -1;\n"
              << "      for (int j = 0; j < 2; ++j) {\n"
              << "        int pick = idx[j];\n"
              << "        if (pick < 0 || pick >= " << E << ")\n"
              << "          break;\n"
              << "        moec_sparsemixer_gates(l, " << E << ", excluded, "
              << floatLiteral(grad.getEpsilon().convertToDouble()) << ", masked, p);\n"
              << "        float scaled = g[j] * p[pick];\n"
              << "        for (int e = 0; e < " << E << "; ++e)\n"
              << "          out[e] -= scaled * p[e];\n"
              << "        out[pick] += scaled;\n"
              << "        excluded = pick;\n"
              << "      }\n";
    return success();
  }
};

std::string kernelStem(SparseMixerRouteOp op) {
  return op.getSeed() ? "sparsemixer_route_noise" : "sparsemixer_route";
}
std::string kernelStem(SparseMixerGradOp) { return "sparsemixer_grad"; }

std::string kernelStem(GumbelSoftmaxOp op) {
  return op->getNumOperands() > 2 ? "gumbel_softmax_noise" : "gumbel_softmax";
}
std::string kernelStem(GumbelSoftmaxGradOp) { return "gumbel_softmax_grad"; }

/// The kernel of a router op alone: its token body in a loop over tokens.
template <typename OpT>
struct TokenRowOpKernel : CudaKernelOpInterface::ExternalModel<TokenRowOpKernel<OpT>, OpT> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    return tokenRowKernel(op, kernelStem(cast<OpT>(op)));
  }
};

struct TemperatureScheduleKernel
    : CudaKernelOpInterface::ExternalModel<TemperatureScheduleKernel, TemperatureScheduleOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t steps = std::max<int64_t>(1, intAttr(op, "steps"));
    // The attributes are f32; the CPU kernel computes in f64 from them.
    double start = static_cast<float>(floatAttr(op, "start")),
           end = static_cast<float>(floatAttr(op, "end"));
    KernelWriter w(op, "temperature_schedule");
    char text[160];
    std::snprintf(text, sizeof(text), "  double start = %.17g, end = %.17g;\n", start, end);
    w.os() << text
           << "  double progress = fmin(1.0, (double)in0[0] / " << steps << ");\n"
           << "  out0[0] = (float)(start * pow(end / start, progress));\n";
    return w.finish({1, 1, 1}, {1, 1, 1}, /*usesBarriers=*/false);
  }
};

struct RouterJitterKernel : CudaKernelOpInterface::ExternalModel<RouterJitterKernel, RouterJitterOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t n = numElements(op->getOperand(0));
    char eps[40];
    std::snprintf(eps, sizeof(eps), "%.17g", floatAttr(op, "epsilon"));
    KernelWriter w(op, "router_jitter");
    w.helpers() << kRandomHelpers;
    w.os() << "  unsigned long long key = (unsigned long long)in1[0] ^ "
           << noiseSaltLiteral(rt::kJitterSalt, op) << ";\n"
           << "  double eps = " << eps << ";\n"
           << forEachElement(n) << "  {\n"
           << "    double u = moec_uniform01(key, (unsigned long long)i);\n"
           << "    out0[i] = in0[i] * (float)(1.0 - eps + 2.0 * eps * u);\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

void attachRoutingKernels(MLIRContext *context) {
  ScoreOp::attachInterface<ScoreRows, TokenRowOpKernel<ScoreOp>>(*context);
  ScoreGradOp::attachInterface<ScoreGradRows, TokenRowOpKernel<ScoreGradOp>>(*context);
  TopKRouteOp::attachInterface<TopKRouteRows, TokenRowOpKernel<TopKRouteOp>>(*context);
  SelectionGradOp::attachInterface<SelectionGradRows, TokenRowOpKernel<SelectionGradOp>>(*context);
  GumbelSoftmaxOp::attachInterface<GumbelSoftmaxRows, TokenRowOpKernel<GumbelSoftmaxOp>>(*context);
  GumbelSoftmaxGradOp::attachInterface<GumbelSoftmaxGradRows,
                                       TokenRowOpKernel<GumbelSoftmaxGradOp>>(*context);
  SparseMixerRouteOp::attachInterface<SparseMixerRouteRows, TokenRowOpKernel<SparseMixerRouteOp>>(
      *context);
  SparseMixerGradOp::attachInterface<SparseMixerGradRows, TokenRowOpKernel<SparseMixerGradOp>>(
      *context);
  TemperatureScheduleOp::attachInterface<TemperatureScheduleKernel>(*context);
  RouterJitterOp::attachInterface<RouterJitterKernel>(*context);
}

} // namespace moec::codegen
