//===- ExpertKernels.cpp - reference kernels of the routed experts --------===//
//
// The grouped expert FFN (moe.grouped_ffn, its up and down halves and their
// gradients) over rows grouped by expert: either dropless blocks whose sizes
// the device computed (`group_sizes`) or capacity slots [E, C]. One thread
// per output element summing in index order: correct and deterministic, not
// fast; grouped GEMMs (cuBLAS or generated tiles) replace them for speed.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// act(x) and act'(x) as expressions of `x`.
std::string activation(Activation kind, StringRef x) {
  std::string v = x.str();
  switch (kind) {
  case Activation::relu:
    return "(" + v + " > 0.0f ? " + v + " : 0.0f)";
  case Activation::gelu:
    return "(0.5f * " + v + " * (1.0f + erff(" + v + " * 0.70710678118654752f)))";
  case Activation::gelu_tanh:
    return "(0.5f * " + v + " * (1.0f + tanhf(0.7978845608028654f * (" + v + " + 0.044715f * " +
           v + " * " + v + " * " + v + "))))";
  case Activation::silu:
    return "(" + v + " / (1.0f + expf(-" + v + ")))";
  }
  return v;
}

std::string activationGrad(Activation kind, StringRef x) {
  std::string v = x.str();
  switch (kind) {
  case Activation::relu:
    return "(" + v + " > 0.0f ? 1.0f : 0.0f)";
  case Activation::gelu:
    return "(0.5f * (1.0f + erff(" + v + " * 0.70710678118654752f)) + " + v +
           " * 0.3989422804014327f * expf(-0.5f * " + v + " * " + v + "))";
  case Activation::gelu_tanh:
    return "moec_gelu_tanh_grad(" + v + ")";
  case Activation::silu:
    return "moec_silu_grad(" + v + ")";
  }
  return "1.0f";
}

constexpr const char *kActivationGradHelpers = R"cuda(__device__ float moec_silu_grad(float x) {
  float sig = 1.0f / (1.0f + expf(-x));
  return sig * (1.0f + x * (1.0f - sig));
}
__device__ float moec_gelu_tanh_grad(float x) {
  const float c = 0.7978845608028654f;
  float t = tanhf(c * (x + 0.044715f * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
}
)cuda";

/// Where an expert op's rows live: `sizes` the group-size parameter or
/// "nullptr"; `capacity` the rows per expert of the capacity form.
struct Rows {
  std::string sizes = "nullptr";
  int64_t capacity = 0, count = 0, E = 0;
};

Rows rowsOf(KernelWriter &w, Value input, Value groupSizes, int64_t E) {
  auto type = cast<RankedTensorType>(input.getType());
  Rows rows;
  rows.E = E;
  rows.count = type.getNumElements() / type.getShape().back();
  if (groupSizes)
    rows.sizes = w.name(groupSizes);
  else
    rows.capacity = type.getDimSize(1);
  return rows;
}

/// Opens the body of a thread for row `r` of `rows`: declares e, first,
/// count; padding rows (no expert) take `padding` and continue.
std::string forRow(const Rows &rows, StringRef padding) {
  return "    long long first, count;\n"
         "    int e = moec_expert_rows(" + rows.sizes + ", " + std::to_string(rows.E) + ", " +
         std::to_string(rows.capacity) + "LL, r, &first, &count);\n"
         "    if (e < 0) {\n" + padding.str() + "      continue;\n    }\n";
}

/// hidden[r, j] = W1_e[j] · x[r] for j < F, W3_e[j - F] · x[r] above.
void writeUp(KernelWriter &w, const Rows &rows, Value x, Value w1, Value w3, StringRef hidden,
             int64_t F, int64_t d) {
  int64_t H = w3 ? 2 * F : F;
  w.os() << forEachElement(rows.count * H) << "  {\n"
         << "    long long r = i / " << H << "LL, j = i % " << H << "LL;\n"
         << forRow(rows, "      " + hidden.str() + "[i] = 0.0f;\n")
         << "    const float *weight = " << (w3 ? "j < " + std::to_string(F) + " ? " : std::string())
         << w.name(w1) << " + ((long long)e * " << F << " + j) * " << d << "LL"
         << (w3 ? " : " + w.name(w3) + " + ((long long)e * " + std::to_string(F) + " + j - " +
                      std::to_string(F) + ") * " + std::to_string(d) + "LL"
                : std::string())
         << ";\n"
         << "    const float *a = " << w.name(x) << " + r * " << d << "LL;\n"
         << "    float acc = 0.0f;\n"
         << "    for (int k = 0; k < " << d << "; ++k)\n"
         << "      acc += a[k] * weight[k];\n"
         << "    " << hidden << "[i] = acc;\n"
         << "  }\n";
}

/// y[r, c] = Σ_j g(r, j) W2_e[c, j], g = act(h1) [⊙ h3], from `hidden`.
void writeDown(KernelWriter &w, const Rows &rows, StringRef hidden, Value w2, StringRef y,
               Activation act, bool gated, int64_t F, int64_t d) {
  int64_t H = gated ? 2 * F : F;
  w.os() << forEachElement(rows.count * d) << "  {\n"
         << "    long long r = i / " << d << "LL, c = i % " << d << "LL;\n"
         << forRow(rows, "      " + y.str() + "[i] = 0.0f;\n")
         << "    const float *h = " << hidden << " + r * " << H << "LL;\n"
         << "    const float *weight = " << w.name(w2) << " + ((long long)e * " << d << " + c) * "
         << F << "LL;\n"
         << "    float acc = 0.0f;\n"
         << "    for (int j = 0; j < " << F << "; ++j) {\n"
         << "      float h1 = h[j];\n"
         << "      acc += " << activation(act, "h1") << (gated ? " * h[" + std::to_string(F) + " + j]" : "")
         << " * weight[j];\n"
         << "    }\n"
         << "    " << y << "[i] = acc;\n"
         << "  }\n";
}

struct GroupedFFNUpKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNUpKernel, GroupedFFNUpOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto up = cast<GroupedFFNUpOp>(op);
    auto w1 = cast<RankedTensorType>(up.getW1().getType());
    int64_t E = w1.getDimSize(0), F = w1.getDimSize(1), d = w1.getDimSize(2);
    KernelWriter w(op, "grouped_ffn_up");
    w.helpers() << kExpertRowsHelper;
    Rows rows = rowsOf(w, up.getInput(), up.getGroupSizes(), E);
    writeUp(w, rows, up.getInput(), up.getW1(), up.getW3(), "out0", F, d);
    int64_t n = rows.count * (up.getW3() ? 2 * F : F);
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

struct GroupedFFNDownKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNDownKernel, GroupedFFNDownOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto down = cast<GroupedFFNDownOp>(op);
    auto w2 = cast<RankedTensorType>(down.getW2().getType());
    int64_t E = w2.getDimSize(0), d = w2.getDimSize(1), F = w2.getDimSize(2);
    KernelWriter w(op, "grouped_ffn_down");
    w.helpers() << kExpertRowsHelper;
    Rows rows = rowsOf(w, down.getHidden(), down.getGroupSizes(), E);
    writeDown(w, rows, "in0", down.getW2(), "out0", down.getActivation(), down.getGated(), F, d);
    return w.finish({blocksFor(rows.count * d, 256), 1, 1}, {256, 1, 1}, false);
  }
};

/// The unsplit expert FFN (evaluation): the up half into the workspace,
/// then the down half.
struct GroupedFFNKernel : CudaKernelOpInterface::ExternalModel<GroupedFFNKernel, GroupedFFNOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto ffn = cast<GroupedFFNOp>(op);
    auto w1 = cast<RankedTensorType>(ffn.getW1().getType());
    int64_t E = w1.getDimSize(0), F = w1.getDimSize(1), d = w1.getDimSize(2);
    bool gated = static_cast<bool>(ffn.getW3());
    KernelWriter w(op, "grouped_ffn");
    w.helpers() << kExpertRowsHelper;
    Rows rows = rowsOf(w, ffn.getInput(), ffn.getGroupSizes(), E);
    int64_t H = gated ? 2 * F : F;
    w.setWorkspace(rows.count * H * sizeof(float));
    w.beginEntry("up", {blocksFor(rows.count * H, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << "  float *hidden = (float *)workspace;\n";
    writeUp(w, rows, ffn.getInput(), ffn.getW1(), ffn.getW3(), "hidden", F, d);
    w.beginEntry("down", {blocksFor(rows.count * d, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << "  const float *hidden = (const float *)workspace;\n";
    writeDown(w, rows, "hidden", ffn.getW2(), "out0", ffn.getActivation(), gated, F, d);
    return w.finish();
  }
};

/// dhidden (one thread per (row, j < F)) and dW2 (one per (e, c, j), over
/// the expert's rows in order).
struct GroupedFFNDownGradKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNDownGradKernel, GroupedFFNDownGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<GroupedFFNDownGradOp>(op);
    auto w2 = cast<RankedTensorType>(grad.getW2().getType());
    int64_t E = w2.getDimSize(0), d = w2.getDimSize(1), F = w2.getDimSize(2);
    bool gated = grad.getGated();
    int64_t H = gated ? 2 * F : F;
    Activation act = grad.getActivation();
    KernelWriter w(op, "grouped_ffn_down_grad");
    w.helpers() << kExpertRowsHelper << kActivationGradHelpers;
    Rows rows = rowsOf(w, grad.getHidden(), grad.getGroupSizes(), E);
    std::string h = w.name(grad.getHidden()), dy = w.name(grad.getDresult()),
                weight = w.name(grad.getW2());
    w.beginEntry("hidden", {blocksFor(rows.count * F, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(rows.count * F) << "  {\n"
           << "    long long r = i / " << F << "LL, j = i % " << F << "LL;\n"
           << forRow(rows, "      out0[r * " + std::to_string(H) + "LL + j] = 0.0f;\n" +
                               (gated ? "      out0[r * " + std::to_string(H) + "LL + " +
                                            std::to_string(F) + " + j] = 0.0f;\n"
                                      : std::string()))
           << "    float dg = 0.0f;\n"
           << "    for (int c = 0; c < " << d << "; ++c)\n"
           << "      dg += " << dy << "[r * " << d << "LL + c] * " << weight
           << "[((long long)e * " << d << " + c) * " << F << "LL + j];\n"
           << "    float h1 = " << h << "[r * " << H << "LL + j];\n"
           << "    float a = " << activation(act, "h1") << ", da = " << activationGrad(act, "h1")
           << ";\n";
    if (gated)
      w.os() << "    float h3 = " << h << "[r * " << H << "LL + " << F << " + j];\n"
             << "    out0[r * " << H << "LL + j] = dg * h3 * da;\n"
             << "    out0[r * " << H << "LL + " << F << " + j] = dg * a;\n";
    else
      w.os() << "    out0[r * " << H << "LL + j] = dg * da;\n";
    w.os() << "  }\n";
    w.beginEntry("weight", {blocksFor(E * d * F, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(E * d * F) << "  {\n"
           << "    int e = (int)(i / " << d * F << "LL);\n"
           << "    long long c = i / " << F << "LL % " << d << ", j = i % " << F << "LL;\n"
           << "    long long first, count;\n"
           << "    moec_expert_block(" << rows.sizes << ", e, " << rows.capacity
           << "LL, &first, &count);\n"
           << "    float acc = 0.0f;\n"
           << "    for (long long r = first; r < first + count; ++r) {\n"
           << "      float h1 = " << h << "[r * " << H << "LL + j];\n"
           << "      float g = " << activation(act, "h1")
           << (gated ? " * " + h + "[r * " + std::to_string(H) + "LL + " + std::to_string(F) + " + j]"
                     : std::string())
           << ";\n"
           << "      acc += " << dy << "[r * " << d << "LL + c] * g;\n"
           << "    }\n"
           << "    out1[i] = acc;\n"
           << "  }\n";
    return w.finish();
  }
};

/// dx (one thread per (row, k)) and dW1, dW3 (one per (e, j, k), over the
/// expert's rows in order).
struct GroupedFFNUpGradKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNUpGradKernel, GroupedFFNUpGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<GroupedFFNUpGradOp>(op);
    auto w1 = cast<RankedTensorType>(grad.getW1().getType());
    int64_t E = w1.getDimSize(0), F = w1.getDimSize(1), d = w1.getDimSize(2);
    bool gated = static_cast<bool>(grad.getW3());
    int64_t H = gated ? 2 * F : F;
    KernelWriter w(op, "grouped_ffn_up_grad");
    w.helpers() << kExpertRowsHelper;
    Rows rows = rowsOf(w, grad.getInput(), grad.getGroupSizes(), E);
    std::string x = w.name(grad.getInput()), dh = w.name(grad.getDhidden()),
                wa = w.name(grad.getW1()), wb = gated ? w.name(grad.getW3()) : "";
    w.beginEntry("input", {blocksFor(rows.count * d, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(rows.count * d) << "  {\n"
           << "    long long r = i / " << d << "LL, k = i % " << d << "LL;\n"
           << forRow(rows, "      out0[i] = 0.0f;\n")
           << "    float acc = 0.0f;\n"
           << "    for (int j = 0; j < " << F << "; ++j)\n"
           << "      acc += " << dh << "[r * " << H << "LL + j] * " << wa << "[((long long)e * "
           << F << " + j) * " << d << "LL + k];\n";
    if (gated)
      w.os() << "    float acc3 = 0.0f;\n"
             << "    for (int j = 0; j < " << F << "; ++j)\n"
             << "      acc3 += " << dh << "[r * " << H << "LL + " << F << " + j] * " << wb
             << "[((long long)e * " << F << " + j) * " << d << "LL + k];\n"
             << "    acc += acc3;\n";
    w.os() << "    out0[i] = acc;\n"
           << "  }\n";
    w.beginEntry("weights", {blocksFor(E * F * d, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(E * F * d) << "  {\n"
           << "    int e = (int)(i / " << F * d << "LL);\n"
           << "    long long j = i / " << d << "LL % " << F << ", k = i % " << d << "LL;\n"
           << "    long long first, count;\n"
           << "    moec_expert_block(" << rows.sizes << ", e, " << rows.capacity
           << "LL, &first, &count);\n"
           << "    float acc = 0.0f" << (gated ? ", acc3 = 0.0f" : "") << ";\n"
           << "    for (long long r = first; r < first + count; ++r) {\n"
           << "      acc += " << dh << "[r * " << H << "LL + j] * " << x << "[r * " << d
           << "LL + k];\n";
    if (gated)
      w.os() << "      acc3 += " << dh << "[r * " << H << "LL + " << F << " + j] * " << x
             << "[r * " << d << "LL + k];\n";
    w.os() << "    }\n"
           << "    out1[i] = acc;\n";
    if (gated)
      w.os() << "    out2[i] = acc3;\n";
    w.os() << "  }\n";
    return w.finish();
  }
};
} // namespace

void attachExpertKernels(MLIRContext *context) {
  GroupedFFNOp::attachInterface<GroupedFFNKernel>(*context);
  GroupedFFNUpOp::attachInterface<GroupedFFNUpKernel>(*context);
  GroupedFFNDownOp::attachInterface<GroupedFFNDownKernel>(*context);
  GroupedFFNUpGradOp::attachInterface<GroupedFFNUpGradKernel>(*context);
  GroupedFFNDownGradOp::attachInterface<GroupedFFNDownGradKernel>(*context);
}

} // namespace moec::codegen
