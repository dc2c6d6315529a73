//===- ExpertKernels.cpp - kernels of the expert FFNs ---------------------===//
//
// The grouped expert FFN (moe.grouped_ffn, its up and down halves and their
// gradients) over rows grouped by expert: either dropless blocks whose sizes
// the device computed (`group_sizes`) or capacity slots [E, C]; the dense
// FFN, the shared experts and the LoRA experts as the same products. Every
// matrix product is a tiled GEMM entry (TiledGemm.h), the activation and
// its gradient elementwise entries between them.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/ActivationCode.h"
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/ExpertCode.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/TiledGemm.h"

#include "dialects/moe/IR/MoEOps.h"

#include "llvm/ADT/DenseMap.h"

#include <array>
#include <vector>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

std::array<unsigned, 3> gridFor(int64_t n) { return {blocksFor(n, 256), 1, 1}; }
constexpr std::array<unsigned, 3> kBlock = {256, 1, 1};

/// The rows of an expert op's `input`, grouped by expert: by the device
/// array of E sizes named `sizes`, or when that is empty by input's [E, C]
/// capacity slots.
RowGroups expertRows(Value input, const std::string &sizes, int64_t E) {
  auto type = cast<RankedTensorType>(input.getType());
  RowGroups rows;
  rows.E = E;
  rows.count = type.getNumElements() / type.getShape().back();
  if (!sizes.empty())
    rows.sizes = sizes;
  else
    rows.capacity = type.getDimSize(1);
  return rows;
}

RowGroups rowsOf(KernelWriter &w, Value input, Value groupSizes, int64_t E) {
  return expertRows(input, groupSizes ? w.name(groupSizes) : "", E);
}

RowGroups denseRows(Value input) {
  auto type = cast<RankedTensorType>(input.getType());
  RowGroups rows;
  rows.count = rows.capacity = type.getNumElements() / type.getShape().back();
  return rows;
}

/// The sizes of one expert FFN and where its buffers are: weight pointers
/// (expressions; expert e's matrices at offsets e · F · d), inputs and
/// outputs by name.
struct Ffn {
  int64_t F, d;
  bool gated;
  Activation act;
  std::string w1, w2, w3; // [E, F, d], [E, d, F], [E, F, d]
  /// The C type of their elements: bf16 copies under bf16 products.
  std::string weightType = "float";
  int64_t H() const { return gated ? 2 * F : F; }
};

std::string plus(StringRef base, const std::string &offset) {
  return "(" + base.str() + " + " + offset + ")";
}
std::string rowsFrom(StringRef base, int64_t width) {
  return plus(base, "first * " + std::to_string(width) + "LL");
}
std::string expertMatrix(StringRef base, int64_t elements) {
  return plus(base, "(long long)e * " + std::to_string(elements) + "LL");
}

/// hidden[r, j] = W1_e[j] · x[r] for j < F, W3_e[j - F] · x[r] above
/// (entries up1, up3); rows of no expert are zero.
/// (`hiddenType`: the C type of hidden's elements, which the bf16 tile's
/// template arguments name when `in` is gathered.)
/// `lastStore`, when given, is the epilogue (GemmOperand::store) of the
/// last of the two products (up3, or up1 ungated).
void writeUp(KernelWriter &w, const RowGroups &rows, const Ffn &f, const GemmOperand &in,
             StringRef hidden, StringRef hiddenType = "float", StringRef lastStore = "") {
  GemmOperand h1{rowsFrom(hidden, f.H()), f.H()};
  h1.elementType = hiddenType.str();
  if (!f.gated)
    h1.store = lastStore.str();
  GemmOperand w1{expertMatrix(f.w1, f.F * f.d), f.d, true};
  w1.elementType = f.weightType;
  writeRowGroupedGemm(w, "up1", rows, f.F, f.d, in, w1, h1);
  if (f.gated) {
    GemmOperand h3 = h1, w3 = w1;
    h3.base = plus(h1.base, std::to_string(f.F));
    h3.store = lastStore.str();
    w3.base = expertMatrix(f.w3, f.F * f.d);
    writeRowGroupedGemm(w, "up3", rows, f.F, f.d, in, w3, h3);
  }
}

void writeUp(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef x, StringRef hidden) {
  writeUp(w, rows, f, GemmOperand{rowsFrom(x, f.d), f.d}, hidden);
}

/// Workspace for `n` activated elements g = act(h1) [⊙ h3], which only
/// GEMMs read: bf16 under bf16 products (the tile would round them so as it
/// loads them), else fp32. Written through moec_store.
std::string activatedRows(KernelWriter &w, int64_t n) {
  return w.copiesBf16Operands() ? w.workspaceBf16(n) : w.workspaceFloats(n);
}

/// The C type of the elements activatedRows gives, and of the weights'
/// copies (KernelWriter::bf16Operand).
std::string activatedType(KernelWriter &w) {
  return w.copiesBf16Operands() ? "unsigned short" : "float";
}

/// g = act(h1) [⊙ h3] of every row into the workspace (entry act); returns
/// its address expression ([rows, F]).
std::string writeActivation(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef hidden) {
  std::string g = activatedRows(w, rows.count * f.F), H = std::to_string(f.H());
  w.beginEntry("act", gridFor(rows.count * f.F), kBlock, false);
  w.os() << forEachElement(rows.count * f.F) << "  {\n"
         << "    long long r = i / " << f.F << "LL, j = i % " << f.F << "LL;\n"
         << "    float h1 = moec_load(" << hidden << " + r * " << H << "LL + j);\n"
         << "    moec_store(" << g << " + i, " << activationCode(f.act, "h1")
         << (f.gated ? " * moec_load(" + hidden.str() + " + r * " + H + "LL + " +
                           std::to_string(f.F) + " + j)"
                     : std::string())
         << ");\n"
         << "  }\n";
  return g;
}

/// A GEMM epilogue (GemmOperand::store) for the last up projection (up3,
/// or up1 ungated): it stores the pre-activation, then writes the activated
/// element g = act(h1) [⊙ h3] of the same row and column into `g`
/// (activatedRows, [rows, F], the group's first row), as writeActivation
/// computes it from
/// the stored (possibly bf16-rounded) h1 and h3, so the down projection
/// reads g with no launch of its own (and h3 is not read back from memory:
/// it is the value being stored).
/// `hidden` points at the group's first hidden row; the functor's type goes
/// into the kernel's helpers.
std::string activationStore(KernelWriter &w, const Ffn &f, StringRef hidden, StringRef hiddenType,
                            StringRef g) {
  w.helpers()
      << "// Stores a pre-activation, then g = act(h1) [* h3] of its row and\n"
      << "// column: the activation in the up projection's epilogue.\n"
      << "template <typename TH, typename TG>\n"
      << "struct moec_activation_store {\n"
      << "  const TH *hidden; // the group's first hidden row, [h1 | h3]\n"
      << "  TG *g;            // the group's first activated row\n"
      << "  template <typename TC>\n"
      << "  __device__ __forceinline__ void operator()(TC *C, long long ldc, long long m,\n"
      << "                                             long long n, float value, bool) const {\n"
      << "    moec_store(C + m * ldc + n, value);\n"
      << "    const float h1 = moec_load(hidden + m * " << f.H() << "LL + n);\n"
      << "    moec_store(g + m * " << f.F << "LL + n, " << activationCode(f.act, "h1")
      << (f.gated ? " * moec_load(C + m * ldc + n)" : "") << ");\n"
      << "  }\n"
      << "};\n";
  return "moec_activation_store<" + hiddenType.str() + ", " + activatedType(w) + ">{" +
         hidden.str() + ", " + g.str() + "}";
}

/// The up projection (writeUp) whose last GEMM's epilogue also writes the
/// activated rows (activationStore) into the workspace; returns their
/// address expression ([rows, F]), as writeActivation's, with no launch of
/// their own.
std::string writeUpActivated(KernelWriter &w, const RowGroups &rows, const Ffn &f,
                             const GemmOperand &in, StringRef hidden,
                             StringRef hiddenType = "float") {
  std::string g = activatedRows(w, rows.count * f.F);
  writeUp(w, rows, f, in, hidden, hiddenType,
          activationStore(w, f, rowsFrom(hidden, f.H()), hiddenType, rowsFrom(g, f.F)));
  return g;
}

std::string writeUpActivated(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef x,
                             StringRef hidden) {
  return writeUpActivated(w, rows, f, GemmOperand{rowsFrom(x, f.d), f.d}, hidden);
}

/// A GEMM epilogue (GemmOperand::store) that turns dg, the gradient of the
/// activated hidden row, into the pre-activations' gradient through the
/// activation, as writeDownGradHidden's entry computes it: dh1 = dg ⊙ h3 ⊙
/// act'(h1) and dh3 = dg ⊙ act(h1) (dh1 = dg ⊙ act'(h1) ungated); it also
/// writes g = act(h1) [⊙ h3] into `g` (activatedRows, [rows, F]) for dW2, as
/// writeActivation computes it. `hidden` points at the group's first row
/// (of C type `hiddenType`), `g` at the group's first activated row; the
/// functor's type goes into the kernel's helpers.
std::string activationGradStore(KernelWriter &w, const Ffn &f, StringRef hidden,
                                StringRef hiddenType, StringRef g) {
  w.useHelper(kActivationGradHelpers);
  std::string F = std::to_string(f.F);
  auto &os = w.helpers();
  os << "// The gradient dg of output (m, n) of act(h1) [* h3] through the\n"
     << "// activation into dh1 [and dh3], and g itself: a GEMM's epilogue.\n"
     << "template <typename TH, typename TG>\n"
     << "struct moec_activation_grad_store {\n"
     << "  const TH *hidden; // the group's first hidden row, [h1 | h3]\n"
     << "  TG *g;            // the group's first activated row\n"
     << "  template <typename TC>\n"
     << "  __device__ __forceinline__ void operator()(TC *C, long long ldc, long long m, long long "
        "n,\n"
     << "                                             float dgv, bool) const {\n"
     << "    const TH *h = hidden + m * " << f.H() << "LL;\n"
     << "    const float h1 = moec_load(h + n);\n"
     << "    const float a = " << activationCode(f.act, "h1")
     << ", da = " << activationGradCode(f.act, "h1") << ";\n";
  if (f.gated)
    os << "    const float h3 = moec_load(h + " << F << " + n);\n"
       << "    moec_store(C + m * ldc + n, dgv * h3 * da);\n"
       << "    moec_store(C + m * ldc + " << F << " + n, dgv * a);\n"
       << "    moec_store(g + m * " << F << "LL + n, a * h3);\n";
  else
    os << "    moec_store(C + m * ldc + n, dgv * da);\n"
       << "    moec_store(g + m * " << F << "LL + n, a);\n";
  os << "  }\n"
     << "};\n";
  return "moec_activation_grad_store<" + hiddenType.str() + ", " + activatedType(w) + ">{" +
         hidden.str() + ", " + g.str() + "}";
}

/// y[r, c] = Σ_j g(r, j) W2_e[c, j] (entry down).
void writeDown(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef g, StringRef y) {
  writeRowGroupedGemm(w, "down", rows, f.d, f.F, {rowsFrom(g, f.F), f.F},
                      {expertMatrix(f.w2, f.d * f.F), f.F, true}, {rowsFrom(y, f.d), f.d});
}

/// dhidden from dy: dg = dy W2_e into the workspace (entry dg), then
/// through the activation (entry hidden); rows of no expert get zeros.
void writeDownGradHidden(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef hidden,
                         StringRef dy, StringRef dhidden) {
  std::string dg = w.workspaceFloats(rows.count * f.F);
  std::string H = std::to_string(f.H()), F = std::to_string(f.F);
  writeRowGroupedGemm(w, "dg", rows, f.F, f.d, {rowsFrom(dy, f.d), f.d},
                      {expertMatrix(f.w2, f.d * f.F), f.F}, {rowsFrom(dg, f.F), f.F});
  w.beginEntry("hidden", gridFor(rows.count * f.F), kBlock, /*usesBarriers=*/true);
  w.os() << "  __shared__ long long grouped; // rows in a group; the rest are padding\n"
         << "  if (threadIdx.x == 0) {\n"
         << "    long long total = " << rows.E * rows.capacity << "LL;\n";
  if (rows.sizes != "nullptr")
    w.os() << "    for (int e = 0; e < " << rows.E << "; ++e)\n"
           << "      total += " << rows.sizes << "[e];\n";
  w.os() << "    grouped = total;\n"
         << "  }\n"
         << "  __syncthreads();\n"
         << forEachElement(rows.count * f.F) << "  {\n"
         << "    long long r = i / " << F << "LL, j = i % " << F << "LL;\n"
         << "    auto *dh = " << dhidden << " + r * " << H << "LL; // fp32 or bf16\n"
         << "    if (r >= grouped) {\n"
         << "      moec_store(dh + j, 0.0f);\n"
         << (f.gated ? "      moec_store(dh + " + F + " + j, 0.0f);\n" : std::string())
         << "      continue;\n"
         << "    }\n"
         << "    float dgv = " << dg << "[i];\n"
         << "    float h1 = moec_load(" << hidden << " + r * " << H << "LL + j);\n"
         << "    float a = " << activationCode(f.act, "h1") << ", da = "
         << activationGradCode(f.act, "h1") << ";\n";
  if (f.gated)
    w.os() << "    float h3 = moec_load(" << hidden << " + r * " << H << "LL + " << F << " + j);\n"
           << "    moec_store(dh + j, dgv * h3 * da);\n"
           << "    moec_store(dh + " << F << " + j, dgv * a);\n";
  else
    w.os() << "    moec_store(dh + j, dgv * da);\n"
           << "    (void)a;\n";
  w.os() << "  }\n";
}

/// dW2[e, c, j] = Σ over the expert's rows of dy[r, c] g(r, j) (entry dw2).
void writeDownGradWeight(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef g,
                         StringRef dy, StringRef dw2) {
  writeGroupReductionGemm(w, "dw2", rows, f.d, f.F, {rowsFrom(dy, f.d), f.d},
                          {rowsFrom(g, f.F), f.F}, {expertMatrix(dw2, f.d * f.F), f.F});
}

/// dx = dH1 W1_e (+ dH3 W3_e) (entries dx1, dx3).
void writeUpGradInput(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef dhidden,
                      StringRef dx) {
  GemmOperand out{rowsFrom(dx, f.d), f.d};
  writeRowGroupedGemm(w, "dx1", rows, f.d, f.F, {rowsFrom(dhidden, f.H()), f.H()},
                      {expertMatrix(f.w1, f.F * f.d), f.d}, out);
  if (f.gated)
    writeRowGroupedGemm(w, "dx3", rows, f.d, f.F,
                        {plus(rowsFrom(dhidden, f.H()), std::to_string(f.F)), f.H()},
                        {expertMatrix(f.w3, f.F * f.d), f.d}, out, /*accumulate=*/true);
}

/// dW1[e, j, k] = Σ over the expert's rows of dH1[r, j] x[r, k] (and dW3;
/// entries dw1, dw3).
void writeUpGradWeights(KernelWriter &w, const RowGroups &rows, const Ffn &f, StringRef x,
                        StringRef dhidden, StringRef dw1, StringRef dw3) {
  GemmOperand in{rowsFrom(x, f.d), f.d};
  writeGroupReductionGemm(w, "dw1", rows, f.F, f.d, {rowsFrom(dhidden, f.H()), f.H()}, in,
                          {expertMatrix(dw1, f.F * f.d), f.d});
  if (f.gated)
    writeGroupReductionGemm(w, "dw3", rows, f.F, f.d,
                            {plus(rowsFrom(dhidden, f.H()), std::to_string(f.F)), f.H()}, in,
                            {expertMatrix(dw3, f.F * f.d), f.d});
}

/// An expert FFN's weights (w1 [E, F, d] or [F, d], w2, optional w3) by name.
Ffn ffnOf(KernelWriter &w, Value w1, Value w2, Value w3, Activation act) {
  auto type = cast<RankedTensorType>(w1.getType());
  Ffn f;
  f.F = type.getDimSize(type.getRank() - 2);
  f.d = type.getDimSize(type.getRank() - 1);
  f.gated = static_cast<bool>(w3);
  f.act = act;
  // Weights are GEMM operands only: bf16 copies under bf16 products.
  f.w1 = w.bf16Operand(w1, w.name(w1));
  f.w2 = w.bf16Operand(w2, w.name(w2));
  f.w3 = w3 ? w.bf16Operand(w3, w.name(w3)) : "";
  f.weightType = activatedType(w);
  return f;
}

struct GroupedFFNUpKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNUpKernel, GroupedFFNUpOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto up = cast<GroupedFFNUpOp>(op);
    KernelWriter w(op, "grouped_ffn_up");
    // The up half needs no w2: name w1 for it.
    Ffn f = ffnOf(w, up.getW1(), up.getW1(), up.getW3(), Activation::relu);
    RowGroups rows = rowsOf(w, up.getInput(), up.getGroupSizes(),
                       cast<RankedTensorType>(up.getW1().getType()).getDimSize(0));
    // The bf16 tile loads its operands and stores its result through
    // moec_load / moec_store.
    if (w.bf16Products()) {
      w.acceptBf16(up.getInput());
      w.acceptBf16(up.getHidden());
    }
    writeUp(w, rows, f, w.bf16Operand(up.getInput(), w.name(up.getInput())), "out0");
    return w.finish();
  }
};

/// The C type of a value's elements in a GEMM tile's template arguments.
std::string cTypeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getElementType().isBF16() ? "unsigned short"
                                                                           : "float";
}

/// The values a fusion group's members read and write, as the group's
/// kernel names them: the group's inputs (block arguments) and results
/// (yielded values) by their parameters, values that stay inside it in the
/// kernel's workspace (one block each, of their element type).
class GroupValues {
public:
  GroupValues(KernelWriter &w, FusedOp fused) : w_(w), fused_(fused) {}

  /// The fused op's operand or result behind `inner`; null inside the group.
  Value outer(Value inner) { return fused_.getOuterValue(inner); }

  std::string name(Value inner) {
    if (Value value = outer(inner))
      return w_.name(value);
    auto [it, added] = inside_.try_emplace(inner);
    if (added) {
      int64_t n = numElements(inner);
      it->second = cTypeOf(inner) == "float"
                       ? w_.workspaceFloats(n)
                       : "((unsigned short *)" + w_.workspaceFloats((n + 1) / 2) + ")";
    }
    return it->second;
  }

  /// A GEMM operand as the bf16 tile reads it best
  /// (KernelWriter::bf16Operand). Only the group's inputs are copied (a
  /// copy is made once, where first asked for, and a value made inside the
  /// group may not exist yet there).
  std::string bf16Operand(Value inner) {
    return outer(inner) ? w_.bf16Operand(inner, name(inner)) : name(inner);
  }

  /// `inner` is read and written through moec_load / moec_store only.
  void acceptBf16(Value inner) {
    if (Value value = outer(inner))
      w_.acceptBf16(value);
  }

private:
  KernelWriter &w_;
  FusedOp fused_;
  llvm::DenseMap<Value, std::string> inside_;
};

Ffn ffnOf(KernelWriter &w, GroupValues &v, Value w1, Value w2, Value w3, Activation act) {
  auto type = cast<RankedTensorType>(w1.getType());
  return {type.getDimSize(type.getRank() - 2),
          type.getDimSize(type.getRank() - 1),
          static_cast<bool>(w3),
          act,
          v.bf16Operand(w1),
          v.bf16Operand(w2),
          w3 ? v.bf16Operand(w3) : "",
          activatedType(w)};
}

RowGroups rowsOf(GroupValues &v, Value input, Value groupSizes, Value w1) {
  return expertRows(input, groupSizes ? v.name(groupSizes) : "",
                    cast<RankedTensorType>(w1.getType()).getDimSize(0));
}

/// The dispatched rows as a GEMM's A: slot s is token row slot_tokens[s] of
/// the hidden states (a bf16 copy under bf16 products), loaded through the
/// index.
GemmOperand gatheredRows(KernelWriter &w, GroupValues &v, DispatchOp dispatch, int64_t d) {
  auto tokens = cast<RankedTensorType>(dispatch.getInput().getType());
  GemmOperand in{v.bf16Operand(dispatch.getInput()), d};
  in.elementType = w.copiesBf16Operands() ? "unsigned short" : cTypeOf(dispatch.getInput());
  in.gather = plus(v.name(dispatch.getSlotTokens()), "first");
  in.gatherEnd = tokens.getDimSize(0);
  return in;
}

/// A gated down projection (or its gradient) needs the up projection's w3.
LogicalResult checkGated(FusedOp fused, bool gated, Value w3) {
  if (gated == static_cast<bool>(w3))
    return success();
  return fused.emitOpError("has an expert group whose down projection is ")
         << (gated ? "" : "not ") << "gated but whose up projection has " << (w3 ? "" : "no ")
         << "w3";
}

/// The forward expert group: [a dispatch,] the up projection, whose last
/// GEMM's epilogue writes the activated rows, and the down projection
/// reading them (no activation entry; the epilogue reads h1 only).
FailureOr<CudaKernel> fusedExpertForward(FusedOp fused, DispatchOp dispatch, GroupedFFNUpOp up,
                                         GroupedFFNDownOp down) {
  KernelWriter w(fused, dispatch ? "fused_dispatch_expert" : "fused_expert");
  GroupValues v(w, fused);
  Ffn f = ffnOf(w, v, up.getW1(), down.getW2(), up.getW3(), down.getActivation());
  if (failed(checkGated(fused, down.getGated(), up.getW3())))
    return failure();
  RowGroups rows = rowsOf(v, up.getInput(), up.getGroupSizes(), up.getW1());
  // The bf16 tile loads operands and stores results through moec_load /
  // moec_store.
  if (w.bf16Products()) {
    v.acceptBf16(up.getInput());
    v.acceptBf16(up.getHidden());
    v.acceptBf16(down.getResult());
  }
  GemmOperand in = dispatch ? gatheredRows(w, v, dispatch, f.d)
                            : GemmOperand{rowsFrom(v.bf16Operand(up.getInput()), f.d), f.d};
  std::string g = writeUpActivated(w, rows, f, in, v.name(up.getHidden()), cTypeOf(up.getHidden()));
  writeDown(w, rows, f, g, v.name(down.getResult()));
  return w.finish();
}

/// The backward expert group: the hidden gradient (the dY W2 GEMM with the
/// activation's derivative in its epilogue, which also writes the activated
/// rows; no dg in memory), dW2 from them, then the up projection's
/// gradients from the hidden gradient.
FailureOr<CudaKernel> fusedExpertBackward(FusedOp fused, GroupedFFNDownGradOp down,
                                          GroupedFFNUpGradOp up) {
  KernelWriter w(fused, "fused_expert_grad");
  GroupValues v(w, fused);
  Ffn f = ffnOf(w, v, up.getW1(), down.getW2(), up.getW3(), down.getActivation());
  if (failed(checkGated(fused, down.getGated(), up.getW3())))
    return failure();
  RowGroups rows = rowsOf(v, down.getHidden(), down.getGroupSizes(), up.getW1());
  // hidden is read by moec_load only, dhidden written by moec_store only
  // (as the unfused kernels); the up gradient's GEMMs load x and dhidden.
  v.acceptBf16(down.getHidden());
  v.acceptBf16(down.getDhidden());
  if (w.bf16Products())
    v.acceptBf16(up.getInput());
  std::string hidden = v.name(down.getHidden()), dy = v.bf16Operand(down.getDresult());
  std::string dh = v.name(down.getDhidden());
  std::string g = activatedRows(w, rows.count * f.F);
  GemmOperand dhidden{rowsFrom(dh, f.H()), f.H()};
  dhidden.store = activationGradStore(w, f, rowsFrom(hidden, f.H()), cTypeOf(down.getHidden()),
                                      rowsFrom(g, f.F));
  dhidden.secondColumn = f.gated ? f.F : 0;
  writeRowGroupedGemm(w, "dg", rows, f.F, f.d, {rowsFrom(dy, f.d), f.d},
                      {expertMatrix(f.w2, f.d * f.F), f.F}, dhidden);
  writeDownGradWeight(w, rows, f, g, dy, v.name(down.getDw2()));
  writeUpGradInput(w, rows, f, dh, v.name(up.getDinput()));
  auto dweights = up.getDweights();
  writeUpGradWeights(w, rows, f, v.bf16Operand(up.getInput()), dh, v.name(dweights[0]),
                     f.gated ? v.name(dweights[1]) : "");
  return w.finish();
}

} // namespace

FailureOr<CudaKernel> fusedDispatchKernel(Operation *op) {
  auto fused = cast<FusedOp>(op);
  auto members = fused.getMembers();
  auto dispatch = dyn_cast<DispatchOp>(&*members.begin());
  Operation *consumer = &*std::next(members.begin());
  auto up = dyn_cast<GroupedFFNUpOp>(consumer);
  auto ffn = dyn_cast<GroupedFFNOp>(consumer);
  if (!dispatch || !(up || ffn) || std::next(members.begin(), 2) != members.end())
    return op->emitOpError("has no kernel for a dispatch group other than moe.dispatch then "
                           "moe.grouped_ffn_up or moe.grouped_ffn");
  if (fused.getNumResults() != 1 ||
      fused.getBody()->getTerminator()->getOperand(0) != consumer->getResult(0))
    return op->emitOpError("has a dispatch group whose dispatched rows are read outside it");
  KernelWriter w(op, up ? "fused_dispatch_up" : "fused_dispatch_ffn");
  GroupValues v(w, fused);
  Value w3 = up ? up.getW3() : ffn.getW3();
  Ffn f = up ? ffnOf(w, v, up.getW1(), up.getW1(), w3, Activation::relu)
             : ffnOf(w, v, ffn.getW1(), ffn.getW2(), w3, ffn.getActivation());
  RowGroups rows = up ? rowsOf(v, up.getInput(), up.getGroupSizes(), up.getW1())
                      : rowsOf(v, ffn.getInput(), ffn.getGroupSizes(), ffn.getW1());
  Value out = consumer->getResult(0);
  if (w.bf16Products())
    v.acceptBf16(out); // stored by the bf16 tile's moec_store
  GemmOperand in = gatheredRows(w, v, dispatch, f.d);
  if (ffn) {
    // The whole FFN, as moe.grouped_ffn's own kernel: the up half into the
    // workspace, the activation in its epilogue, the down half.
    std::string hidden = w.workspaceFloats(rows.count * f.H());
    writeDown(w, rows, f, writeUpActivated(w, rows, f, in, hidden), v.name(out));
    return w.finish();
  }
  writeUp(w, rows, f, in, v.name(out), cTypeOf(out));
  return w.finish();
}

FailureOr<CudaKernel> fusedExpertKernel(Operation *op) {
  auto fused = cast<FusedOp>(op);
  SmallVector<Operation *> members;
  for (Operation &member : fused.getMembers())
    members.push_back(&member);
  auto dispatch = members.size() == 3 ? dyn_cast<DispatchOp>(members[0]) : DispatchOp();
  ArrayRef<Operation *> ffn = ArrayRef(members).drop_front(dispatch ? 1 : 0);
  if (ffn.size() == 2) {
    auto up = dyn_cast<GroupedFFNUpOp>(ffn[0]);
    auto down = dyn_cast<GroupedFFNDownOp>(ffn[1]);
    bool dispatchFeedsUp = !dispatch || (up && up.getInput() == dispatch.getResult() &&
                                         dispatch.getResult().hasOneUse());
    if (up && down && down.getHidden() == up.getHidden() && dispatchFeedsUp)
      return fusedExpertForward(fused, dispatch, up, down);
    auto downGrad = dyn_cast<GroupedFFNDownGradOp>(ffn[0]);
    auto upGrad = dyn_cast<GroupedFFNUpGradOp>(ffn[1]);
    if (!dispatch && downGrad && upGrad && upGrad.getDhidden() == downGrad.getDhidden())
      return fusedExpertBackward(fused, downGrad, upGrad);
  }
  return op->emitOpError("has no kernel for an expert group other than [moe.dispatch,] "
                         "moe.grouped_ffn_up, moe.grouped_ffn_down (reading the up projection's "
                         "hidden rows) or moe.grouped_ffn_down_grad, moe.grouped_ffn_up_grad "
                         "(reading its hidden gradient)");
}

namespace {

/// The down half's FFN (w2 [E, d, F] only) of an unfused down op or its
/// gradient.
Ffn downFfn(KernelWriter &w, Value w2, bool gated, Activation act) {
  auto type = cast<RankedTensorType>(w2.getType());
  return {type.getDimSize(2), type.getDimSize(1), gated, act, "",
          w.bf16Operand(w2, w.name(w2)), "", activatedType(w)};
}

struct GroupedFFNDownKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNDownKernel, GroupedFFNDownOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto down = cast<GroupedFFNDownOp>(op);
    auto w2 = cast<RankedTensorType>(down.getW2().getType());
    KernelWriter w(op, "grouped_ffn_down");
    Ffn f = downFfn(w, down.getW2(), down.getGated(), down.getActivation());
    RowGroups rows = rowsOf(w, down.getHidden(), down.getGroupSizes(), w2.getDimSize(0));
    // Read by writeActivation's moec_load; stored by the bf16 tile's
    // moec_store.
    w.acceptBf16(down.getHidden());
    if (w.bf16Products())
      w.acceptBf16(down.getResult());
    writeDown(w, rows, f, writeActivation(w, rows, f, w.name(down.getHidden())), "out0");
    return w.finish();
  }
};

/// The unsplit expert FFN (evaluation): the up half into the workspace,
/// the activation in its last GEMM's epilogue, then the down half.
struct GroupedFFNKernel : CudaKernelOpInterface::ExternalModel<GroupedFFNKernel, GroupedFFNOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto ffn = cast<GroupedFFNOp>(op);
    KernelWriter w(op, "grouped_ffn");
    Ffn f = ffnOf(w, ffn.getW1(), ffn.getW2(), ffn.getW3(), ffn.getActivation());
    RowGroups rows = rowsOf(w, ffn.getInput(), ffn.getGroupSizes(),
                       cast<RankedTensorType>(ffn.getW1().getType()).getDimSize(0));
    std::string hidden = w.workspaceFloats(rows.count * f.H());
    std::string x = w.bf16Operand(ffn.getInput(), w.name(ffn.getInput()));
    writeDown(w, rows, f, writeUpActivated(w, rows, f, x, hidden), "out0");
    return w.finish();
  }
};

struct GroupedFFNDownGradKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNDownGradKernel, GroupedFFNDownGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<GroupedFFNDownGradOp>(op);
    auto w2 = cast<RankedTensorType>(grad.getW2().getType());
    KernelWriter w(op, "grouped_ffn_down_grad");
    w.useHelper(kActivationGradHelpers);
    Ffn f = downFfn(w, grad.getW2(), grad.getGated(), grad.getActivation());
    RowGroups rows = rowsOf(w, grad.getHidden(), grad.getGroupSizes(), w2.getDimSize(0));
    w.acceptBf16(grad.getHidden());  // read by moec_load only
    w.acceptBf16(grad.getDhidden()); // written by moec_store only
    std::string h = w.name(grad.getHidden());
    std::string dy = w.bf16Operand(grad.getDresult(), w.name(grad.getDresult()));
    writeDownGradHidden(w, rows, f, h, dy, "out0");
    writeDownGradWeight(w, rows, f, writeActivation(w, rows, f, h), dy, "out1");
    return w.finish();
  }
};

struct GroupedFFNUpGradKernel
    : CudaKernelOpInterface::ExternalModel<GroupedFFNUpGradKernel, GroupedFFNUpGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<GroupedFFNUpGradOp>(op);
    KernelWriter w(op, "grouped_ffn_up_grad");
    Ffn f = ffnOf(w, grad.getW1(), grad.getW1(), grad.getW3(), Activation::relu);
    RowGroups rows = rowsOf(w, grad.getInput(), grad.getGroupSizes(),
                       cast<RankedTensorType>(grad.getW1().getType()).getDimSize(0));
    // GEMM operands only: the bf16 tile loads them through moec_load.
    if (w.bf16Products()) {
      w.acceptBf16(grad.getInput());
      w.acceptBf16(grad.getDhidden());
    }
    std::string dh = w.bf16Operand(grad.getDhidden(), w.name(grad.getDhidden()));
    std::string x = w.bf16Operand(grad.getInput(), w.name(grad.getInput()));
    writeUpGradInput(w, rows, f, dh, "out0");
    writeUpGradWeights(w, rows, f, x, dh, "out1", "out2");
    return w.finish();
  }
};

/// A dense FFN on every row (moe.ffn; moe.shared_experts with an optional
/// sigmoid gate per token): up into the workspace (the activation in its
/// epilogue), down, then the gate.
FailureOr<CudaKernel> denseFfn(Operation *op, StringRef stem, Value x, const Ffn &fIn,
                               Value gate, KernelWriter &w) {
  Ffn f = fIn;
  RowGroups rows = denseRows(x);
  std::string in = w.name(x);
  std::string hidden = w.workspaceFloats(rows.count * f.H());
  writeDown(w, rows, f, writeUpActivated(w, rows, f, w.bf16Operand(x, in), hidden), "out0");
  if (gate) {
    w.beginEntry("sigmoid_gate", gridFor(rows.count), kBlock, false);
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
/// forward's hidden recomputed into the workspace (the activation in its
/// epilogue), then the down and up
/// gradients. With a sigmoid gate (as the CPU kernel): the gate per token,
/// dy scaled by it, then dz = (dy · f) g (1 − g) into dx and the gate's
/// gradient, f being the ungated output.
FailureOr<CudaKernel> denseFfnGrad(KernelWriter &w, Value x, const Ffn &f, Value gate,
                                   Value dy, unsigned gateResult) {
  RowGroups rows = denseRows(x);
  int64_t T = rows.count, d = f.d, H = f.H();
  std::string in = w.name(x), g = gate ? w.name(gate) : "", dyName = w.name(dy);
  w.useHelper(kActivationGradHelpers);
  std::string hidden = w.workspaceFloats(T * H), dhidden = w.workspaceFloats(T * H);
  // The GEMMs' x (and dy, when no gate scales it): bf16 copies under bf16
  // products; the gate's own loops read the fp32 ones.
  std::string inGemm = w.bf16Operand(x, in);
  std::string upstream = gate ? dyName : w.bf16Operand(dy, dyName), dz;
  std::string activation = writeUpActivated(w, rows, f, inGemm, hidden);
  if (gate) {
    // The gate per token, dy scaled by it, the ungated output f, and
    // dz = (dy · f) g (1 − g).
    std::string ungated = w.workspaceFloats(T * d), scaled = w.workspaceFloats(T * d);
    dz = w.workspaceFloats(T);
    writeDown(w, rows, f, activation, ungated);
    w.beginEntry("gates", gridFor(T), kBlock, false);
    w.os() << forEachElement(T, "t") << "  {\n"
           << "    float z = 0.0f;\n"
           << "    for (int i = 0; i < " << d << "; ++i)\n"
           << "      z += " << in << "[t * " << d << "LL + i] * " << g << "[i];\n"
           << "    float s = 1.0f / (1.0f + expf(-z));\n"
           << "    float dsig = 0.0f;\n"
           << "    for (int i = 0; i < " << d << "; ++i) {\n"
           << "      " << scaled << "[t * " << d << "LL + i] = " << dyName << "[t * " << d
           << "LL + i] * s;\n"
           << "      dsig += " << dyName << "[t * " << d << "LL + i] * " << ungated << "[t * " << d
           << "LL + i];\n"
           << "    }\n"
           << "    " << dz << "[t] = dsig * s * (1.0f - s);\n"
           << "  }\n";
    upstream = scaled;
  }
  writeDownGradHidden(w, rows, f, hidden, upstream, dhidden);
  // Results: dinput, dw1, dw2, [dw3], [dgate].
  writeDownGradWeight(w, rows, f, activation, upstream, "out2");
  writeUpGradInput(w, rows, f, dhidden, "out0");
  writeUpGradWeights(w, rows, f, inGemm, dhidden, "out1", f.gated ? "out3" : "");
  if (gate) {
    std::string dgate = "out" + std::to_string(gateResult);
    w.beginEntry("gate_input", gridFor(T * d), kBlock, false);
    w.os() << forEachElement(T * d) << "    out0[i] += " << dz << "[i / " << d << "LL] * " << g
           << "[i % " << d << "LL];\n";
    writeColumnSums(w, "gate_weight", T, d, "",
                    {{dz + "[r] * " + in + "[r * " + std::to_string(d) + "LL + j]", dgate}});
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
    LoRA l = loraOf(w, lora.getBase(), lora.getAdapters(),
                    lora.getAlphaAttr().getValueAsDouble(), lora.getActivation());
    RowGroups rows = rowsOf(w, lora.getInput(), lora.getGroupSizes(), l.E);
    w.setWorkspace(l.floats() * sizeof(float)); // the effective weights
    std::string hidden = w.workspaceFloats(rows.count * l.f.H());
    writeEffectiveWeights(w, l);
    writeDown(w, rows, l.f, writeUpActivated(w, rows, l.f, w.name(lora.getInput()), hidden),
              "out0");
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
    w.useHelper(kActivationGradHelpers);
    LoRA l = loraOf(w, grad.getBase(), grad.getAdapters(),
                    grad.getAlphaAttr().getValueAsDouble(), grad.getActivation());
    RowGroups rows = rowsOf(w, grad.getInput(), grad.getGroupSizes(), l.E);
    int64_t H = l.f.H(), effective = l.floats();
    // Workspace: effective weights, their gradients, hidden, dhidden.
    w.setWorkspace(2 * effective * sizeof(float));
    auto at = [](int64_t offset) {
      return "((float *)workspace + " + std::to_string(offset) + "LL)";
    };
    std::string hidden = w.workspaceFloats(rows.count * H);
    std::string dhidden = w.workspaceFloats(rows.count * H);
    std::string x = w.name(grad.getInput()), dy = w.name(grad.getDresult());
    writeEffectiveWeights(w, l);
    std::string activation = writeUpActivated(w, rows, l.f, x, hidden);
    writeDownGradHidden(w, rows, l.f, hidden, dy, dhidden);
    writeDownGradWeight(w, rows, l.f, activation, dy, at(effective + l.offsets[1]));
    writeUpGradInput(w, rows, l.f, dhidden, "out0");
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
