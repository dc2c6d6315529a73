//===- AttentionKernels.cpp - kernels of causal attention -----------------===//
//
// moe.attention and moe.attention_grad (MHA/GQA, [B, S, H, D] layouts,
// values of their own width Dv, optional attention sinks):
// every product is a tiled GEMM over the B · Hq (batch, query head) groups
// of S positions (TiledGemm.h), the probabilities and their gradient kept
// in the workspace, softmax rows by a block each (one thread each when
// short). Deterministic; not fused (the probabilities go through memory).
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/TiledGemm.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

struct AttentionShape {
  int64_t B, S, Hq, Hkv, D, Dv, group; // D: query/key head width, Dv: value's
  std::string scale;
  bool causal;
  int64_t window, chunk;    // 0: none
  bool sinks;               // a sink logit per query head (operand `sinks`)
  int64_t temperatureFloor; // 0: no query temperature
  std::string temperatureScale;
};

AttentionShape attentionShape(Operation *op) {
  auto q = cast<RankedTensorType>(op->getOperand(0).getType());
  auto k = cast<RankedTensorType>(op->getOperand(1).getType());
  auto v = cast<RankedTensorType>(op->getOperand(2).getType());
  AttentionShape a;
  a.B = q.getDimSize(0);
  a.S = q.getDimSize(1);
  a.Hq = q.getDimSize(2);
  a.D = q.getDimSize(3);
  a.Dv = v.getDimSize(3);
  a.Hkv = k.getDimSize(2);
  a.group = a.Hq / a.Hkv;
  auto scale = op->getAttrOfType<FloatAttr>("scale");
  a.scale = floatLiteral(scale ? scale.getValueAsDouble()
                               : 1.0f / std::sqrt(static_cast<float>(a.D)));
  a.causal = op->hasAttr("causal");
  auto window = op->getAttrOfType<IntegerAttr>("window");
  a.window = window ? window.getInt() : 0;
  auto chunk = op->getAttrOfType<IntegerAttr>("chunk");
  a.chunk = chunk ? chunk.getInt() : 0;
  auto floor = op->getAttrOfType<IntegerAttr>("temperature_floor");
  a.temperatureFloor = floor ? floor.getInt() : 0;
  if (auto scale = op->getAttrOfType<FloatAttr>("temperature_scale"))
    a.temperatureScale = floatLiteral(scale.getValueAsDouble());
  a.sinks = isa<AttentionOp>(op) ? bool(cast<AttentionOp>(op).getSinks())
                                 : bool(cast<AttentionGradOp>(op).getSinks());
  return a;
}

std::string str(int64_t v) { return std::to_string(v); }

/// The first key query `i` sees (window, chunk), as a C expression.
std::string firstKey(const AttentionShape &a) {
  if (a.window)
    return "i < " + str(a.window) + " ? 0 : i - " + str(a.window - 1);
  if (a.chunk)
    return "i / " + str(a.chunk) + "LL * " + str(a.chunk) + "LL";
  return "0";
}

/// Query i's temperature (Llama 4), as runtime/cpu/Math.h computes it.
std::string temperatureOf(const AttentionShape &a) {
  return "(log1pf(floorf(((float)i + 1.0f) / " + floatLiteral(double(a.temperatureFloor)) +
         ")) * " + a.temperatureScale + " + 1.0f)";
}

/// The scale of query i's scores: the softmax scale, times its temperature.
std::string rowScale(const AttentionShape &a) {
  if (!a.temperatureFloor)
    return a.scale;
  return "(" + a.scale + " * " + temperatureOf(a) + ")";
}

/// Softmax rows at least this long take a block each (coalesced passes,
/// block reductions); shorter ones a thread each.
constexpr int64_t kBlockRowWidth = 128;

/// An entry over `rows` rows of `width` values, a block per row when wide
/// (a thread per row otherwise): the body, after beginRowEntry, sees `row`,
/// walks its values with `over` (index j) and combines the threads' partial
/// results with `reduce` (nothing with a thread per row); it ends with the
/// row loop's closing brace.
struct RowLoop {
  bool block;
  std::string over(const std::string &end, const std::string &begin = "0") const {
    return block ? "    for (long long j = " + begin + " + threadIdx.x; j < " + end +
                       "; j += blockDim.x)"
                 : "    for (long long j = " + begin + "; j < " + end + "; ++j)";
  }
  std::string reduce(const std::string &statement) const {
    return block ? "    " + statement + "\n" : "";
  }
};

RowLoop beginRowEntry(KernelWriter &w, StringRef label, int64_t rows, int64_t width) {
  if (width < kBlockRowWidth) {
    w.beginEntry(label, {blocksFor(rows, 128), 1, 1}, {128, 1, 1}, false);
    w.os() << forEachElement(rows, "row") << "  {\n";
    return {false};
  }
  unsigned threads = std::min(threadsFor(width), 256u);
  w.beginEntry(label, {static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
               {threads, 1, 1}, /*usesBarriers=*/true);
  w.os() << "  __shared__ float scratch[" << threads << "];\n"
         << "  __shared__ double scratch64[" << threads << "];\n"
         << "  for (long long row = blockIdx.x; row < " << rows << "LL; row += gridDim.x) {\n";
  return {true};
}

/// Operand bases of group e = b · Hq + h (batch b, query head h), rows
/// indexed by position: the query-head tensors [B, S, Hq, width] (q and dq
/// of width D, o and dO of width Dv) and the key/value-head ones
/// [B, S, Hkv, width] (k of width D, v of width Dv), whose head is
/// h / group. `row` is the position of the group's first row of the
/// operand (0, or a slice's first).
std::string queryRows(const AttentionShape &a, StringRef tensor, int64_t width,
                      StringRef row = "0") {
  return "(" + tensor.str() + " + (((long long)(e / " + str(a.Hq) + ") * " + str(a.S) + " + " +
         row.str() + ") * " + str(a.Hq) + " + e % " + str(a.Hq) + ") * " + str(width) + "LL)";
}
std::string keyRows(const AttentionShape &a, StringRef tensor, int64_t width) {
  return "(" + tensor.str() + " + ((long long)(e / " + str(a.Hq) + ") * " + str(a.S) + " * " +
         str(a.Hkv) + " + e % " + str(a.Hq) + " / " + str(a.group) + ") * " + str(width) + "LL)";
}
/// `count` of the B · Hq groups of S rows (one per batch and query head),
/// from group `first` on.
RowGroups headChunk(const AttentionShape &a, int64_t first, int64_t count) {
  RowGroups groups;
  groups.E = count;
  groups.capacity = a.S;
  groups.count = count * a.S;
  groups.firstGroup = first;
  return groups;
}

/// Group e's S x S block of the chunk's [groups, S, S] workspace tensor at
/// `base`.
std::string groupBlock(const AttentionShape &a, const RowGroups &chunk, StringRef base) {
  std::string e = chunk.firstGroup ? "(e - " + str(chunk.firstGroup) + ")" : "e";
  return "(" + base.str() + " + (long long)" + e + " * " + str(a.S * a.S) + "LL)";
}

/// The probabilities (and their gradient) are S x S per group: the groups
/// go through them in chunks of at most the target's
/// kAttentionChunkBytesAttr bytes per S x S tensor (1 GiB by default), so
/// that their workspace does not grow with batch and heads.
int64_t chunkBytes(Operation *op) {
  auto module = op->getParentOfType<ModuleOp>();
  auto bytes = module ? module->getAttrOfType<IntegerAttr>(kAttentionChunkBytesAttr) : nullptr;
  return bytes ? bytes.getInt() : int64_t(1) << 30;
}

/// Groups per chunk: the most that fit chunkBytes (at least one) and
/// divide the B · Hq groups evenly.
int64_t groupsPerChunk(Operation *op, const AttentionShape &a) {
  int64_t groups = a.B * a.Hq;
  int64_t fit =
      std::clamp<int64_t>(chunkBytes(op) / (a.S * a.S * int64_t(sizeof(float))), 1, groups);
  while (groups % fit)
    --fit;
  return fit;
}

/// Entry label `label` of chunk `index` of `chunks` ("scores", "scores_c1").
std::string chunkLabel(StringRef label, int64_t index, int64_t chunks) {
  return chunks == 1 ? label.str() : label.str() + "_c" + str(index);
}

/// The global row (over all B · Hq · S) of chunk row `row`.
std::string globalRow(const AttentionShape &a, const RowGroups &chunk) {
  return chunk.firstGroup ? "(row + " + str(chunk.firstGroup * a.S) + "LL)" : "row";
}

/// P[b, h, i, :] = softmax over the visible keys of scale · Q_i · K_j, zero
/// beyond them, for the chunk's groups, in the workspace at `P`: the scores
/// as a tiled GEMM per group (entry scores), then each row's softmax (entry
/// probs, a block or a thread per row). With sinks (operand `sinks`), the
/// head's sink logit joins the maximum and the sum; `sinkProbability`, when
/// given, receives its probability per global row.
void writeProbabilities(KernelWriter &w, const AttentionShape &a, const RowGroups &chunk,
                        const std::string &suffix, StringRef P, StringRef sinks = "",
                        StringRef sinkProbability = "") {
  writeRowGroupedGemm(w, "scores" + suffix, chunk, a.S, a.D, {queryRows(a, "in0", a.D), a.Hq * a.D},
                      {keyRows(a, "in1", a.D), a.Hkv * a.D, /*transposed=*/true},
                      {groupBlock(a, chunk, P), a.S});
  int64_t rows = chunk.count;
  RowLoop loop = beginRowEntry(w, "probs" + suffix, rows, a.S);
  w.os() << "    long long i = row % " << a.S << "LL;\n"
         << "    float *p = " << P << " + row * " << a.S << "LL;\n"
         << "    long long visible = " << (a.causal ? "i + 1" : str(a.S)) << ";\n"
         << "    long long first = " << firstKey(a) << ";\n"
         << "    float maximum = -__int_as_float(0x7f800000);\n";
  if (a.temperatureFloor)
    w.os() << "    float temperature = " << temperatureOf(a) << ";\n";
  if (!sinks.empty())
    w.os() << "    float sink = " << sinks << "[(" << chunk.firstGroup << "LL + row / " << a.S
           << "LL) % " << a.Hq << "];\n"
           << "    maximum = sink;\n";
  w.os() << loop.over("visible", "first") << " {\n"
         << "      p[j] = "
         << (a.temperatureFloor ? "(" + a.scale + " * p[j]) * temperature" : a.scale + " * p[j]")
         << ";\n"
         << "      maximum = fmaxf(maximum, p[j]);\n"
         << "    }\n"
         << loop.reduce("maximum = moec_block_max(maximum, scratch);") << "    double sum = 0.0;\n"
         << loop.over("visible", "first") << " {\n"
         << "      p[j] = expf(p[j] - maximum);\n"
         << "      sum += p[j];\n"
         << "    }\n"
         << loop.reduce("sum = moec_block_sum(sum, scratch64);");
  if (!sinks.empty())
    w.os() << "    float sinkTerm = expf(sink - maximum);\n"
           << "    sum += sinkTerm;\n";
  w.os() << "    float inverse = (float)(1.0 / sum);\n";
  if (!sinkProbability.empty())
    w.os() << (loop.block ? "    if (threadIdx.x == 0)\n  " : "") << "    " << sinkProbability
           << "[" << globalRow(a, chunk) << "] = sinkTerm * inverse;\n";
  w.os() << loop.over(str(a.S) + "LL") << "\n"
         << "      p[j] = j >= first && j < visible ? p[j] * inverse : 0.0f;\n"
         << "  }\n";
}

/// O = P V per group (entry output), chunk by chunk of groups.
struct AttentionKernel : CudaKernelOpInterface::ExternalModel<AttentionKernel, AttentionOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    AttentionShape a = attentionShape(op);
    KernelWriter w(op, "attention");
    int64_t perChunk = groupsPerChunk(op, a), chunks = a.B * a.Hq / perChunk;
    std::string P = w.workspaceFloats(perChunk * a.S * a.S);
    for (int64_t c = 0; c < chunks; ++c) {
      RowGroups chunk = headChunk(a, c * perChunk, perChunk);
      std::string suffix = chunkLabel("", c, chunks);
      // in: q, k, v(, sinks); out: o [B, S, Hq, Dv].
      writeProbabilities(w, a, chunk, suffix, P, a.sinks ? "in3" : "");
      writeRowGroupedGemm(w, "output" + suffix, chunk, a.Dv, a.S, {groupBlock(a, chunk, P), a.S},
                          {keyRows(a, "in2", a.Dv), a.Hkv * a.Dv},
                          {queryRows(a, "out0", a.Dv), a.Hq * a.Dv});
    }
    return w.finish();
  }
};

/// dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale, dQ = dS K per group;
/// dK = Σ over a key/value head's query heads of dSᵀ Q, dV likewise of
/// Pᵀ dO: per query head into the workspace (group-reduction products over
/// the positions), then summed head by head in order.
struct AttentionGradKernel
    : CudaKernelOpInterface::ExternalModel<AttentionGradKernel, AttentionGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    AttentionShape a = attentionShape(op);
    int64_t perChunk = groupsPerChunk(op, a), chunks = a.B * a.Hq / perChunk;
    int64_t probabilities = perChunk * a.S * a.S, rows = a.B * a.Hq * a.S;
    KernelWriter w(op, "attention_grad");
    std::string P = w.workspaceFloats(probabilities), dS = w.workspaceFloats(probabilities);
    std::string dKh = w.workspaceFloats(rows * a.D), dVh = w.workspaceFloats(rows * a.Dv);
    // With sinks: each row's sink probability, then its term of dsinks.
    std::string sinkP = a.sinks ? w.workspaceFloats(rows) : "",
                sinkTerms = a.sinks ? w.workspaceFloats(rows) : "";
    // Each chunk's scratch (split products' partial sums) is the next's.
    uint64_t scratch = w.workspaceMark();
    for (int64_t c = 0; c < chunks; ++c) {
      RowGroups chunk = headChunk(a, c * perChunk, perChunk);
      std::string suffix = chunkLabel("", c, chunks);
      // in: q, k, v, dO(, sinks); out: dq, dk, dv(, dsinks).
      writeProbabilities(w, a, chunk, suffix, P, a.sinks ? "in4" : "", sinkP);
      writeRowGroupedGemm(w, "dp" + suffix, chunk, a.S, a.Dv,
                          {queryRows(a, "in3", a.Dv), a.Hq * a.Dv},
                          {keyRows(a, "in2", a.Dv), a.Hkv * a.Dv, /*transposed=*/true},
                          {groupBlock(a, chunk, dS), a.S});
      RowLoop loop = beginRowEntry(w, "ds" + suffix, chunk.count, a.S);
      w.os() << "    const float *p = " << P << " + row * " << a.S << "LL;\n"
             << "    float *ds = " << dS << " + row * " << a.S << "LL;\n"
             << "    float dot = 0.0f;\n"
             << (a.temperatureFloor ? "    long long i = row % " + str(a.S) + "LL;\n" : "")
             << loop.over(str(a.S) + "LL") << "\n"
             << "      dot += ds[j] * p[j];\n"
             << loop.reduce("dot = moec_block_sum(dot, scratch);");
      if (a.sinks)
        w.os() << (loop.block ? "    if (threadIdx.x == 0)\n  " : "") << "    " << sinkTerms << "["
               << globalRow(a, chunk) << "] = -" << sinkP << "[" << globalRow(a, chunk)
               << "] * dot;\n";
      w.os() << loop.over(str(a.S) + "LL") << "\n"
             << "      ds[j] = p[j] * (ds[j] - dot) * " << rowScale(a) << ";\n"
             << "  }\n";
      writeRowGroupedGemm(w, "dq" + suffix, chunk, a.D, a.S, {groupBlock(a, chunk, dS), a.S},
                          {keyRows(a, "in1", a.D), a.Hkv * a.D},
                          {queryRows(a, "out0", a.D), a.Hq * a.D});
      // Per query head: C_e[j, c] = Σ_i X_e[i, j] Y_e[i, c] over the group's
      // positions i (from `first`, which a row slice moves; X holds the
      // chunk's groups only).
      std::string position = "(first - (long long)e * " + str(a.S) + ")";
      std::string chunkRow =
          chunk.firstGroup ? "(first - " + str(chunk.firstGroup * a.S) + "LL)" : "first";
      auto perQueryHead = [&](StringRef label, StringRef X, StringRef Y, int64_t width,
                              StringRef out) {
        writeGroupReductionGemm(
            w, (label + suffix).str(), chunk, a.S, width,
            {"(" + X.str() + " + " + chunkRow + " * " + str(a.S) + "LL)", a.S},
            {queryRows(a, Y, width, position), a.Hq * width},
            {"(" + out.str() + " + (long long)e * " + str(a.S * width) + "LL)", width});
      };
      perQueryHead("dk_heads", dS, "in0", a.D, dKh);
      perQueryHead("dv_heads", P, "in3", a.Dv, dVh);
      w.releaseWorkspace(scratch);
    }
    // dK and dV: each key/value head's query heads summed in order.
    auto sumHeads = [&](StringRef label, StringRef perHead, int64_t width, StringRef out) {
      int64_t n = a.B * a.S * a.Hkv * width;
      w.beginEntry(label, {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
      w.os() << forEachElement(n) << "  {\n"
             << "    long long c = i % " << width << "LL, kvh = i / " << width << "LL % " << a.Hkv
             << ", t = i / " << width * a.Hkv << "LL, b = t / " << a.S << "LL, j = t % " << a.S
             << "LL;\n"
             << "    float sum = 0.0f;\n"
             << "    for (long long h = kvh * " << a.group << "; h < (kvh + 1) * " << a.group
             << "; ++h)\n"
             << "      sum += " << perHead << "[((b * " << a.Hq << " + h) * " << a.S << " + j) * "
             << width << "LL + c];\n"
             << "    " << out << "[i] = sum;\n"
             << "  }\n";
    };
    sumHeads("dk", dKh, a.D, "out1");
    sumHeads("dv", dVh, a.Dv, "out2");
    if (a.sinks) {
      // dsinks[h]: the head's row terms, batch by batch, in order.
      w.beginEntry("dsinks", {blocksFor(a.Hq, 128), 1, 1}, {128, 1, 1}, false);
      w.os() << forEachElement(a.Hq) << "  {\n"
             << "    double sum = 0.0;\n"
             << "    for (long long b = 0; b < " << a.B << "; ++b) {\n"
             << "      double partial = 0.0;\n"
             << "      for (long long r = 0; r < " << a.S << "; ++r)\n"
             << "        partial += " << sinkTerms << "[(b * " << a.Hq << " + i) * " << a.S
             << "LL + r];\n"
             << "      sum += partial;\n"
             << "    }\n"
             << "    out3[i] = (float)sum;\n"
             << "  }\n";
    }
    return w.finish();
  }
};
} // namespace

void attachAttentionKernels(MLIRContext *context) {
  AttentionOp::attachInterface<AttentionKernel>(*context);
  AttentionGradOp::attachInterface<AttentionGradKernel>(*context);
}

} // namespace moec::codegen
