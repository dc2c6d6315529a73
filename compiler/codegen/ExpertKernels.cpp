//===- ExpertKernels.cpp - reference kernels of the routed experts --------===//
//
// The grouped expert FFN (moe.grouped_ffn, its up and down halves and their
// gradients) over rows grouped by expert: either dropless blocks whose sizes
// the device computed (`group_sizes`) or capacity slots [E, C]. One thread
// per output element summing in index order: correct and deterministic, not
// fast; grouped GEMMs (cuBLAS or generated tiles) replace them for speed.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/ActivationCode.h"
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

#include <array>
#include <vector>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// Where an expert op's rows live: `sizes` the group-size parameter or
/// "nullptr"; `capacity` the rows per expert of the capacity form (a dense
/// FFN is one expert owning every row).
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

Rows denseRows(Value input) {
  auto type = cast<RankedTensorType>(input.getType());
  Rows rows;
  rows.E = 1;
  rows.count = rows.capacity = type.getNumElements() / type.getShape().back();
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

/// The sizes of one expert FFN and where its buffers are: weight pointers
/// (expressions; expert e's matrices at offsets e · F · d), inputs and
/// outputs by name.
struct Ffn {
  int64_t F, d;
  bool gated;
  Activation act;
  std::string w1, w2, w3; // [E, F, d], [E, d, F], [E, F, d]
  int64_t H() const { return gated ? 2 * F : F; }
};

/// hidden[r, j] = W1_e[j] · x[r] for j < F, W3_e[j - F] · x[r] above.
void writeUp(KernelWriter &w, const Rows &rows, const Ffn &f, StringRef x, StringRef hidden) {
  std::string F = std::to_string(f.F), d = std::to_string(f.d);
  w.os() << forEachElement(rows.count * f.H()) << "  {\n"
         << "    long long r = i / " << f.H() << "LL, j = i % " << f.H() << "LL;\n"
         << forRow(rows, "      " + hidden.str() + "[i] = 0.0f;\n")
         << "    const float *weight = "
         << (f.gated ? "j < " + F + " ? " : std::string()) << f.w1 << " + ((long long)e * " << F
         << " + j) * " << d << "LL"
         << (f.gated ? " : " + f.w3 + " + ((long long)e * " + F + " + j - " + F + ") * " + d + "LL"
                     : std::string())
         << ";\n"
         << "    const float *a = " << x << " + r * " << d << "LL;\n"
         << "    float acc = 0.0f;\n"
         << "    for (int k = 0; k < " << d << "; ++k)\n"
         << "      acc += a[k] * weight[k];\n"
         << "    " << hidden << "[i] = acc;\n"
         << "  }\n";
}

/// y[r, c] = Σ_j g(r, j) W2_e[c, j], g = act(h1) [⊙ h3], from `hidden`.
void writeDown(KernelWriter &w, const Rows &rows, const Ffn &f, StringRef hidden, StringRef y) {
  w.os() << forEachElement(rows.count * f.d) << "  {\n"
         << "    long long r = i / " << f.d << "LL, c = i % " << f.d << "LL;\n"
         << forRow(rows, "      " + y.str() + "[i] = 0.0f;\n")
         << "    const float *h = " << hidden << " + r * " << f.H() << "LL;\n"
         << "    const float *weight = " << f.w2 << " + ((long long)e * " << f.d << " + c) * "
         << f.F << "LL;\n"
         << "    float acc = 0.0f;\n"
         << "    for (int j = 0; j < " << f.F << "; ++j) {\n"
         << "      float h1 = h[j];\n"
         << "      acc += " << activationCode(f.act, "h1")
         << (f.gated ? " * h[" + std::to_string(f.F) + " + j]" : "") << " * weight[j];\n"
         << "    }\n"
         << "    " << y << "[i] = acc;\n"
         << "  }\n";
}

/// dhidden from dy (one thread per (row, j < F)).
void writeDownGradHidden(KernelWriter &w, const Rows &rows, const Ffn &f, StringRef hidden,
                         StringRef dy, StringRef dhidden) {
  std::string H = std::to_string(f.H()), F = std::to_string(f.F);
  w.os() << forEachElement(rows.count * f.F) << "  {\n"
         << "    long long r = i / " << F << "LL, j = i % " << F << "LL;\n"
         << forRow(rows, "      " + dhidden.str() + "[r * " + H + "LL + j] = 0.0f;\n" +
                             (f.gated ? "      " + dhidden.str() + "[r * " + H + "LL + " + F +
                                            " + j] = 0.0f;\n"
                                      : std::string()))
         << "    float dg = 0.0f;\n"
         << "    for (int c = 0; c < " << f.d << "; ++c)\n"
         << "      dg += " << dy << "[r * " << f.d << "LL + c] * " << f.w2
         << "[((long long)e * " << f.d << " + c) * " << F << "LL + j];\n"
         << "    float h1 = " << hidden << "[r * " << H << "LL + j];\n"
         << "    float a = " << activationCode(f.act, "h1") << ", da = "
         << activationGradCode(f.act, "h1") << ";\n";
  if (f.gated)
    w.os() << "    float h3 = " << hidden << "[r * " << H << "LL + " << F << " + j];\n"
           << "    " << dhidden << "[r * " << H << "LL + j] = dg * h3 * da;\n"
           << "    " << dhidden << "[r * " << H << "LL + " << F << " + j] = dg * a;\n";
  else
    w.os() << "    " << dhidden << "[r * " << H << "LL + j] = dg * da;\n";
  w.os() << "  }\n";
}

/// dW2[e, c, j] = Σ over the expert's rows of dy[r, c] g(r, j).
void writeDownGradWeight(KernelWriter &w, const Rows &rows, const Ffn &f, StringRef hidden,
                         StringRef dy, StringRef dw2) {
  std::string H = std::to_string(f.H()), F = std::to_string(f.F);
  w.os() << forEachElement(rows.E * f.d * f.F) << "  {\n"
         << "    int e = (int)(i / " << f.d * f.F << "LL);\n"
         << "    long long c = i / " << F << "LL % " << f.d << ", j = i % " << F << "LL;\n"
         << "    long long first, count;\n"
         << "    moec_expert_block(" << rows.sizes << ", e, " << rows.capacity
         << "LL, &first, &count);\n"
         << "    float acc = 0.0f;\n"
         << "    for (long long r = first; r < first + count; ++r) {\n"
         << "      float h1 = " << hidden << "[r * " << H << "LL + j];\n"
         << "      float g = " << activationCode(f.act, "h1")
         << (f.gated ? " * " + hidden.str() + "[r * " + H + "LL + " + F + " + j]" : std::string())
         << ";\n"
         << "      acc += " << dy << "[r * " << f.d << "LL + c] * g;\n"
         << "    }\n"
         << "    " << dw2 << "[i] = acc;\n"
         << "  }\n";
}

/// dx = dH1 W1_e (+ dH3 W3_e), one thread per (row, k).
void writeUpGradInput(KernelWriter &w, const Rows &rows, const Ffn &f, StringRef dhidden,
                      StringRef dx) {
  std::string H = std::to_string(f.H()), F = std::to_string(f.F);
  w.os() << forEachElement(rows.count * f.d) << "  {\n"
         << "    long long r = i / " << f.d << "LL, k = i % " << f.d << "LL;\n"
         << forRow(rows, "      " + dx.str() + "[i] = 0.0f;\n")
         << "    float acc = 0.0f;\n"
         << "    for (int j = 0; j < " << F << "; ++j)\n"
         << "      acc += " << dhidden << "[r * " << H << "LL + j] * " << f.w1
         << "[((long long)e * " << F << " + j) * " << f.d << "LL + k];\n";
  if (f.gated)
    w.os() << "    float acc3 = 0.0f;\n"
           << "    for (int j = 0; j < " << F << "; ++j)\n"
           << "      acc3 += " << dhidden << "[r * " << H << "LL + " << F << " + j] * " << f.w3
           << "[((long long)e * " << F << " + j) * " << f.d << "LL + k];\n"
           << "    acc += acc3;\n";
  w.os() << "    " << dx << "[i] = acc;\n"
         << "  }\n";
}

/// dW1[e, j, k] = Σ over the expert's rows of dH1[r, j] x[r, k] (and dW3).
void writeUpGradWeights(KernelWriter &w, const Rows &rows, const Ffn &f, StringRef x,
                        StringRef dhidden, StringRef dw1, StringRef dw3) {
  std::string H = std::to_string(f.H()), F = std::to_string(f.F);
  w.os() << forEachElement(rows.E * f.F * f.d) << "  {\n"
         << "    int e = (int)(i / " << f.F * f.d << "LL);\n"
         << "    long long j = i / " << f.d << "LL % " << F << ", k = i % " << f.d << "LL;\n"
         << "    long long first, count;\n"
         << "    moec_expert_block(" << rows.sizes << ", e, " << rows.capacity
         << "LL, &first, &count);\n"
         << "    float acc = 0.0f" << (f.gated ? ", acc3 = 0.0f" : "") << ";\n"
         << "    for (long long r = first; r < first + count; ++r) {\n"
         << "      acc += " << dhidden << "[r * " << H << "LL + j] * " << x << "[r * " << f.d
         << "LL + k];\n";
  if (f.gated)
    w.os() << "      acc3 += " << dhidden << "[r * " << H << "LL + " << F << " + j] * " << x
           << "[r * " << f.d << "LL + k];\n";
  w.os() << "    }\n"
         << "    " << dw1 << "[i] = acc;\n";
  if (f.gated)
    w.os() << "    " << dw3 << "[i] = acc3;\n";
  w.os() << "  }\n";
}

std::array<unsigned, 3> gridFor(int64_t n) { return {blocksFor(n, 256), 1, 1}; }
constexpr std::array<unsigned, 3> kBlock = {256, 1, 1};

/// An expert FFN's weights (w1 [E, F, d] or [F, d], w2, optional w3) by name.
Ffn ffnOf(KernelWriter &w, Value w1, Value w2, Value w3, Activation act) {
  auto type = cast<RankedTensorType>(w1.getType());
  Ffn f;
  f.F = type.getDimSize(type.getRank() - 2);
  f.d = type.getDimSize(type.getRank() - 1);
  f.gated = static_cast<bool>(w3);
  f.act = act;
  f.w1 = w.name(w1);
  f.w2 = w.name(w2);
  f.w3 = w3 ? w.name(w3) : "";
  return f;
}

struct GroupedFFNUpKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNUpKernel, GroupedFFNUpOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto up = cast<GroupedFFNUpOp>(op);
    KernelWriter w(op, "grouped_ffn_up");
    w.helpers() << kExpertRowsHelper;
    // The up half needs no w2: name w1 for it.
    Ffn f = ffnOf(w, up.getW1(), up.getW1(), up.getW3(), Activation::relu);
    Rows rows = rowsOf(w, up.getInput(), up.getGroupSizes(),
                       cast<RankedTensorType>(up.getW1().getType()).getDimSize(0));
    writeUp(w, rows, f, w.name(up.getInput()), "out0");
    return w.finish(gridFor(rows.count * f.H()), kBlock, /*usesBarriers=*/false);
  }
};

struct GroupedFFNDownKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNDownKernel, GroupedFFNDownOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto down = cast<GroupedFFNDownOp>(op);
    auto w2 = cast<RankedTensorType>(down.getW2().getType());
    KernelWriter w(op, "grouped_ffn_down");
    w.helpers() << kExpertRowsHelper;
    Ffn f{w2.getDimSize(2), w2.getDimSize(1), down.getGated(), down.getActivation(), "",
          w.name(down.getW2()), ""};
    Rows rows = rowsOf(w, down.getHidden(), down.getGroupSizes(), w2.getDimSize(0));
    writeDown(w, rows, f, "in0", "out0");
    return w.finish(gridFor(rows.count * f.d), kBlock, false);
  }
};

/// The unsplit expert FFN (evaluation): the up half into the workspace,
/// then the down half.
struct GroupedFFNKernel : CudaKernelOpInterface::ExternalModel<GroupedFFNKernel, GroupedFFNOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto ffn = cast<GroupedFFNOp>(op);
    KernelWriter w(op, "grouped_ffn");
    w.helpers() << kExpertRowsHelper;
    Ffn f = ffnOf(w, ffn.getW1(), ffn.getW2(), ffn.getW3(), ffn.getActivation());
    Rows rows = rowsOf(w, ffn.getInput(), ffn.getGroupSizes(),
                       cast<RankedTensorType>(ffn.getW1().getType()).getDimSize(0));
    w.setWorkspace(rows.count * f.H() * sizeof(float));
    w.beginEntry("up", gridFor(rows.count * f.H()), kBlock, false);
    w.os() << "  float *hidden = (float *)workspace;\n";
    writeUp(w, rows, f, w.name(ffn.getInput()), "hidden");
    w.beginEntry("down", gridFor(rows.count * f.d), kBlock, false);
    w.os() << "  const float *hidden = (const float *)workspace;\n";
    writeDown(w, rows, f, "hidden", "out0");
    return w.finish();
  }
};

struct GroupedFFNDownGradKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNDownGradKernel, GroupedFFNDownGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<GroupedFFNDownGradOp>(op);
    auto w2 = cast<RankedTensorType>(grad.getW2().getType());
    KernelWriter w(op, "grouped_ffn_down_grad");
    w.helpers() << kExpertRowsHelper << kActivationGradHelpers;
    Ffn f{w2.getDimSize(2), w2.getDimSize(1), grad.getGated(), grad.getActivation(), "",
          w.name(grad.getW2()), ""};
    Rows rows = rowsOf(w, grad.getHidden(), grad.getGroupSizes(), w2.getDimSize(0));
    std::string h = w.name(grad.getHidden()), dy = w.name(grad.getDresult());
    w.beginEntry("hidden", gridFor(rows.count * f.F), kBlock, false);
    writeDownGradHidden(w, rows, f, h, dy, "out0");
    w.beginEntry("weight", gridFor(rows.E * f.d * f.F), kBlock, false);
    writeDownGradWeight(w, rows, f, h, dy, "out1");
    return w.finish();
  }
};

struct GroupedFFNUpGradKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNUpGradKernel, GroupedFFNUpGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<GroupedFFNUpGradOp>(op);
    KernelWriter w(op, "grouped_ffn_up_grad");
    w.helpers() << kExpertRowsHelper;
    Ffn f = ffnOf(w, grad.getW1(), grad.getW1(), grad.getW3(), Activation::relu);
    Rows rows = rowsOf(w, grad.getInput(), grad.getGroupSizes(),
                       cast<RankedTensorType>(grad.getW1().getType()).getDimSize(0));
    std::string dh = w.name(grad.getDhidden());
    w.beginEntry("input", gridFor(rows.count * f.d), kBlock, false);
    writeUpGradInput(w, rows, f, dh, "out0");
    w.beginEntry("weights", gridFor(rows.E * f.F * f.d), kBlock, false);
    writeUpGradWeights(w, rows, f, w.name(grad.getInput()), dh, "out1", "out2");
    return w.finish();
  }
};

/// A dense FFN on every row (moe.ffn; moe.shared_experts with an optional
/// sigmoid gate per token): up into the workspace, down, then the gate.
FailureOr<CudaKernel> denseFfn(Operation *op, StringRef stem, Value x, const Ffn &fIn,
                               Value gate, KernelWriter &w) {
  Ffn f = fIn;
  Rows rows = denseRows(x);
  std::string in = w.name(x);
  w.helpers() << kExpertRowsHelper;
  w.setWorkspace(rows.count * f.H() * sizeof(float));
  w.beginEntry("up", gridFor(rows.count * f.H()), kBlock, false);
  w.os() << "  float *hidden = (float *)workspace;\n";
  writeUp(w, rows, f, in, "hidden");
  w.beginEntry("down", gridFor(rows.count * f.d), kBlock, false);
  w.os() << "  const float *hidden = (const float *)workspace;\n";
  writeDown(w, rows, f, "hidden", "out0");
  if (gate) {
    w.beginEntry("gate", gridFor(rows.count), kBlock, false);
    w.os() << forEachElement(rows.count, "t") << "  {\n"
           << "    float dot = 0.0f;\n"
           << "    for (int i = 0; i < " << f.d << "; ++i)\n"
           << "      dot += " << in << "[t * " << f.d << "LL + i] * " << w.name(gate) << "[i];\n"
           << "    float g = 1.0f / (1.0f + expf(-dot));\n"
           << "    for (int i = 0; i < " << f.d << "; ++i)\n"
           << "      out0[t * " << f.d << "LL + i] *= g;\n"
           << "  }\n";
  }
  return w.finish();
}

struct FFNKernel : CudaKernelOpInterface::ExternalModel<FFNKernel, FFNOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto ffn = cast<FFNOp>(op);
    KernelWriter w(op, "ffn");
    Ffn f = ffnOf(w, ffn.getW1(), ffn.getW2(), ffn.getW3(), ffn.getActivation());
    return denseFfn(op, "ffn", ffn.getInput(), f, Value(), w);
  }
};

struct SharedExpertsKernel
    : CudaKernelOpInterface::ExternalModel<SharedExpertsKernel, SharedExpertsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto shared = cast<SharedExpertsOp>(op);
    KernelWriter w(op, "shared_experts");
    Ffn f = ffnOf(w, shared.getW1(), shared.getW2(), shared.getW3(), shared.getActivation());
    return denseFfn(op, "shared_experts", shared.getInput(), f, shared.getSigmoidGate(), w);
  }
};

/// The dense FFN's backward (moe.ffn_grad, moe.shared_experts_grad): the
/// forward's hidden recomputed into the workspace, then the down and up
/// gradients. With a sigmoid gate (as the CPU kernel): the gate per token,
/// dy scaled by it, then dz = (dy · f) g (1 − g) into dx and the gate's
/// gradient, f being the ungated output.
FailureOr<CudaKernel> denseFfnGrad(KernelWriter &w, Value x, const Ffn &f, Value gate,
                                   Value dy, unsigned gateResult) {
  Rows rows = denseRows(x);
  int64_t T = rows.count, d = f.d, H = f.H();
  std::string in = w.name(x), g = gate ? w.name(gate) : "", dyName = w.name(dy);
  w.helpers() << kExpertRowsHelper << kActivationGradHelpers;
  // Workspace: hidden [T, H], dhidden [T, H], and with a gate: gates [T],
  // scaled dy [T, d], f [T, d], dz [T].
  int64_t floats = 2 * T * H + (gate ? 2 * T + 2 * T * d : 0);
  w.setWorkspace(floats * sizeof(float));
  std::string layout = "  float *hidden = (float *)workspace, *dhidden = hidden + " +
                       std::to_string(T * H) + "LL, *gates = dhidden + " +
                       std::to_string(T * H) + "LL, *scaled = gates + " + std::to_string(T) +
                       "LL, *ungated = scaled + " + std::to_string(T * d) +
                       "LL, *dz = ungated + " + std::to_string(T * d) + "LL;\n";
  std::string upstream = dyName;
  w.beginEntry("up", gridFor(T * H), kBlock, false);
  w.os() << layout;
  writeUp(w, rows, f, in, "hidden");
  if (gate) {
    w.beginEntry("ungated", gridFor(T * d), kBlock, false);
    w.os() << layout;
    writeDown(w, rows, f, "hidden", "ungated");
    w.beginEntry("gates", gridFor(T), kBlock, false);
    w.os() << layout << forEachElement(T, "t") << "  {\n"
           << "    float z = 0.0f;\n"
           << "    for (int i = 0; i < " << d << "; ++i)\n"
           << "      z += " << in << "[t * " << d << "LL + i] * " << g << "[i];\n"
           << "    float s = 1.0f / (1.0f + expf(-z));\n"
           << "    gates[t] = s;\n"
           << "    float dsig = 0.0f;\n"
           << "    for (int i = 0; i < " << d << "; ++i) {\n"
           << "      scaled[t * " << d << "LL + i] = " << dyName << "[t * " << d << "LL + i] * s;\n"
           << "      dsig += " << dyName << "[t * " << d << "LL + i] * ungated[t * " << d
           << "LL + i];\n"
           << "    }\n"
           << "    dz[t] = dsig * s * (1.0f - s);\n"
           << "  }\n";
    upstream = "scaled";
  }
  w.beginEntry("hidden", gridFor(T * f.F), kBlock, false);
  w.os() << layout;
  writeDownGradHidden(w, rows, f, "hidden", upstream, "dhidden");
  // Results: dinput, dw1, dw2, [dw3], [dgate].
  std::string dw3 = f.gated ? "out3" : "";
  w.beginEntry("w2", gridFor(d * f.F), kBlock, false);
  w.os() << layout;
  writeDownGradWeight(w, rows, f, "hidden", upstream, "out2");
  w.beginEntry("input", gridFor(T * d), kBlock, false);
  w.os() << layout;
  writeUpGradInput(w, rows, f, "dhidden", "out0");
  w.beginEntry("w1", gridFor(f.F * d), kBlock, false);
  w.os() << layout;
  writeUpGradWeights(w, rows, f, in, "dhidden", "out1", dw3);
  if (gate) {
    std::string dgate = "out" + std::to_string(gateResult);
    w.beginEntry("gate_input", gridFor(T * d), kBlock, false);
    w.os() << layout << forEachElement(T * d) << "    out0[i] += dz[i / " << d << "LL] * " << g
           << "[i % " << d << "LL];\n";
    w.beginEntry("gate_weight", gridFor(d), kBlock, false);
    w.os() << layout << forEachElement(d, "j") << "  {\n"
           << "    float acc = 0.0f;\n"
           << "    for (long long t = 0; t < " << T << "LL; ++t)\n"
           << "      acc += dz[t] * " << in << "[t * " << d << "LL + j];\n"
           << "    " << dgate << "[j] = acc;\n"
           << "  }\n";
  }
  return w.finish();
}

struct FFNGradKernel : CudaKernelOpInterface::ExternalModel<FFNGradKernel, FFNGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<FFNGradOp>(op);
    KernelWriter w(op, "ffn_grad");
    Ffn f = ffnOf(w, grad.getW1(), grad.getW2(), grad.getW3(), grad.getActivation());
    return denseFfnGrad(w, grad.getInput(), f, Value(), grad.getDresult(), 0);
  }
};

struct SharedExpertsGradKernel
    : CudaKernelOpInterface::ExternalModel<SharedExpertsGradKernel, SharedExpertsGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<SharedExpertsGradOp>(op);
    KernelWriter w(op, "shared_experts_grad");
    Ffn f = ffnOf(w, grad.getW1(), grad.getW2(), grad.getW3(), grad.getActivation());
    return denseFfnGrad(w, grad.getInput(), f, grad.getSigmoidGate(), grad.getDresult(),
                        f.gated ? 4 : 3);
  }
};
/// The LoRA experts' effective weights W_p + scale · B_p[e] A_p[e] of each
/// projection p (w1: d -> F, w2: F -> d, w3: d -> F), expert by expert,
/// into the workspace at `offsets` (launch "effective").
struct LoRA {
  Ffn f;                    // w1/w2/w3 name the effective weights in the workspace
  int64_t E, rank, projections;
  std::string scale;        // alpha / rank
  std::vector<std::string> base, adapters; // parameter names
  std::vector<int64_t> offsets;            // floats into the workspace, per projection
  int64_t in(int p) const { return p == 1 ? f.F : f.d; }
  int64_t out(int p) const { return p == 1 ? f.d : f.F; }
  int64_t floats() const { return offsets.back(); }
};

LoRA loraOf(KernelWriter &w, ValueRange base, ValueRange adapters, double alpha,
            Activation act) {
  LoRA l;
  auto w1 = cast<RankedTensorType>(base[0].getType());
  auto a1 = cast<RankedTensorType>(adapters[0].getType());
  l.projections = base.size();
  l.E = a1.getDimSize(0);
  l.rank = a1.getDimSize(1);
  l.scale = floatLiteral(static_cast<float>(alpha / l.rank));
  l.f.F = w1.getDimSize(0);
  l.f.d = w1.getDimSize(1);
  l.f.gated = l.projections == 3;
  l.f.act = act;
  for (Value v : base)
    l.base.push_back(w.name(v));
  for (Value v : adapters)
    l.adapters.push_back(w.name(v));
  l.offsets = {0};
  for (int p = 0; p < l.projections; ++p)
    l.offsets.push_back(l.offsets.back() + l.E * l.out(p) * l.in(p));
  auto at = [](int64_t offset) {
    return "((float *)workspace + " + std::to_string(offset) + "LL)";
  };
  l.f.w1 = at(l.offsets[0]);
  l.f.w2 = at(l.offsets[1]);
  l.f.w3 = l.f.gated ? at(l.offsets[2]) : "";
  return l;
}

void writeEffectiveWeights(KernelWriter &w, const LoRA &l) {
  for (int p = 0; p < l.projections; ++p) {
    int64_t in = l.in(p), out = l.out(p), n = l.E * out * in;
    w.beginEntry("effective" + std::to_string(p + 1), gridFor(n), kBlock, false);
    w.os() << forEachElement(n) << "  {\n"
           << "    long long e = i / " << out * in << "LL, o = i / " << in << "LL % " << out
           << ", c = i % " << in << "LL;\n"
           << "    float low = 0.0f;\n"
           << "    for (int r = 0; r < " << l.rank << "; ++r)\n"
           << "      low += " << l.adapters[2 * p + 1] << "[(e * " << out << " + o) * " << l.rank
           << "LL + r] * " << l.adapters[2 * p] << "[(e * " << l.rank << " + r) * " << in
           << "LL + c];\n"
           << "    ((float *)workspace)[" << l.offsets[p] << "LL + i] = " << l.base[p] << "[o * "
           << in << "LL + c] + " << l.scale << " * low;\n"
           << "  }\n";
  }
}

struct LoRAExpertsKernel
    : CudaKernelOpInterface::ExternalModel<LoRAExpertsKernel, LoRAExpertsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto lora = cast<LoRAExpertsOp>(op);
    KernelWriter w(op, "lora_experts");
    w.helpers() << kExpertRowsHelper;
    LoRA l = loraOf(w, lora.getBase(), lora.getAdapters(),
                    lora.getAlphaAttr().getValueAsDouble(), lora.getActivation());
    Rows rows = rowsOf(w, lora.getInput(), lora.getGroupSizes(), l.E);
    int64_t hiddenAt = l.floats();
    w.setWorkspace((hiddenAt + rows.count * l.f.H()) * sizeof(float));
    writeEffectiveWeights(w, l);
    std::string hidden = "((float *)workspace + " + std::to_string(hiddenAt) + "LL)";
    w.beginEntry("up", gridFor(rows.count * l.f.H()), kBlock, false);
    writeUp(w, rows, l.f, w.name(lora.getInput()), hidden);
    w.beginEntry("down", gridFor(rows.count * l.f.d), kBlock, false);
    writeDown(w, rows, l.f, hidden, "out0");
    return w.finish();
  }
};

/// Backward through the effective weights, then each adapter's gradient:
/// dA = scale · Bᵀ dW_eff, dB = scale · dW_eff Aᵀ.
struct LoRAExpertsGradKernel
    : CudaKernelOpInterface::ExternalModel<LoRAExpertsGradKernel, LoRAExpertsGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<LoRAExpertsGradOp>(op);
    KernelWriter w(op, "lora_experts_grad");
    w.helpers() << kExpertRowsHelper << kActivationGradHelpers;
    LoRA l = loraOf(w, grad.getBase(), grad.getAdapters(),
                    grad.getAlphaAttr().getValueAsDouble(), grad.getActivation());
    Rows rows = rowsOf(w, grad.getInput(), grad.getGroupSizes(), l.E);
    int64_t H = l.f.H(), effective = l.floats();
    // Workspace: effective weights, their gradients, hidden, dhidden.
    int64_t hiddenAt = 2 * effective, dhiddenAt = hiddenAt + rows.count * H;
    w.setWorkspace((dhiddenAt + rows.count * H) * sizeof(float));
    auto at = [](int64_t offset) {
      return "((float *)workspace + " + std::to_string(offset) + "LL)";
    };
    std::string hidden = at(hiddenAt), dhidden = at(dhiddenAt);
    std::string x = w.name(grad.getInput()), dy = w.name(grad.getDresult());
    writeEffectiveWeights(w, l);
    w.beginEntry("up", gridFor(rows.count * H), kBlock, false);
    writeUp(w, rows, l.f, x, hidden);
    w.beginEntry("hidden", gridFor(rows.count * l.f.F), kBlock, false);
    writeDownGradHidden(w, rows, l.f, hidden, dy, dhidden);
    w.beginEntry("w2", gridFor(l.E * l.f.d * l.f.F), kBlock, false);
    writeDownGradWeight(w, rows, l.f, hidden, dy, at(effective + l.offsets[1]));
    w.beginEntry("input", gridFor(rows.count * l.f.d), kBlock, false);
    writeUpGradInput(w, rows, l.f, dhidden, "out0");
    w.beginEntry("w1", gridFor(l.E * l.f.F * l.f.d), kBlock, false);
    writeUpGradWeights(w, rows, l.f, x, dhidden, at(effective + l.offsets[0]),
                       l.f.gated ? at(effective + l.offsets[2]) : "");
    for (int p = 0; p < l.projections; ++p) {
      int64_t in = l.in(p), out = l.out(p);
      std::string dEff = at(effective + l.offsets[p]);
      std::string A = l.adapters[2 * p], B = l.adapters[2 * p + 1];
      std::string dA = "out" + std::to_string(1 + 2 * p), dB = "out" + std::to_string(2 + 2 * p);
      int64_t nA = l.E * l.rank * in, nB = l.E * out * l.rank;
      w.beginEntry("a" + std::to_string(p + 1), gridFor(nA), kBlock, false);
      w.os() << forEachElement(nA) << "  {\n"
             << "    long long e = i / " << l.rank * in << "LL, r = i / " << in << "LL % "
             << l.rank << ", c = i % " << in << "LL;\n"
             << "    float acc = 0.0f;\n"
             << "    for (long long o = 0; o < " << out << "LL; ++o)\n"
             << "      acc += " << B << "[(e * " << out << " + o) * " << l.rank << "LL + r] * "
             << dEff << "[(e * " << out << " + o) * " << in << "LL + c];\n"
             << "    " << dA << "[i] = " << l.scale << " * acc;\n"
             << "  }\n";
      w.beginEntry("b" + std::to_string(p + 1), gridFor(nB), kBlock, false);
      w.os() << forEachElement(nB) << "  {\n"
             << "    long long e = i / " << out * l.rank << "LL, o = i / " << l.rank << "LL % "
             << out << ", r = i % " << l.rank << "LL;\n"
             << "    float acc = 0.0f;\n"
             << "    for (long long c = 0; c < " << in << "LL; ++c)\n"
             << "      acc += " << dEff << "[(e * " << out << " + o) * " << in << "LL + c] * "
             << A << "[(e * " << l.rank << " + r) * " << in << "LL + c];\n"
             << "    " << dB << "[i] = " << l.scale << " * acc;\n"
             << "  }\n";
    }
    return w.finish();
  }
};
} // namespace

void attachExpertKernels(MLIRContext *context) {
  FFNOp::attachInterface<FFNKernel>(*context);
  FFNGradOp::attachInterface<FFNGradKernel>(*context);
  SharedExpertsOp::attachInterface<SharedExpertsKernel>(*context);
  SharedExpertsGradOp::attachInterface<SharedExpertsGradKernel>(*context);
  LoRAExpertsOp::attachInterface<LoRAExpertsKernel>(*context);
  LoRAExpertsGradOp::attachInterface<LoRAExpertsGradKernel>(*context);
  GroupedFFNOp::attachInterface<GroupedFFNKernel>(*context);
  GroupedFFNUpOp::attachInterface<GroupedFFNUpKernel>(*context);
  GroupedFFNDownOp::attachInterface<GroupedFFNDownKernel>(*context);
  GroupedFFNUpGradOp::attachInterface<GroupedFFNUpGradKernel>(*context);
  GroupedFFNDownGradOp::attachInterface<GroupedFFNDownGradKernel>(*context);
}

} // namespace moec::codegen
