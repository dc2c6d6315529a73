//===- DispatchKernels.cpp - kernels of sorting, dispatch and combine -----===//
//
// Counts and offsets stay on the device (no host synchronisation in a
// step), and every order is the CPU kernels' order, so results are the same
// bits run after run: per-expert and per-token lists are built by counting,
// scanning and filling in index order (integer atomics only, then a sort of
// each token's short list), never by float atomics.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

#include <algorithm>

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// A stable counting sort of the n assignments in `indices` by expert (E
/// buckets, and bucket E for invalid ones), in three launches that give the
/// same result however blocks are scheduled: per-block histograms (integer
/// atomics in shared memory), one block scanning them into per-block
/// offsets (and `sizes`, when given, the per-expert totals), then each
/// block placing its slice, in order, 256 assignments at a time; `body`
/// runs for assignment i of bucket `x`, which goes to sorted position `row`.
void writeStableExpertSort(KernelWriter &w, int64_t n, int64_t E, StringRef indices,
                           StringRef sizes, StringRef body) {
  int64_t buckets = E + 1;
  int64_t blocks = std::clamp<int64_t>((n + 1023) / 1024, 1, 1024);
  int64_t slice = (n + blocks - 1) / blocks;
  w.setWorkspace(2 * blocks * buckets * sizeof(int));
  std::string layout = "  int *counts = (int *)workspace, *offsets = counts + " +
                       std::to_string(blocks * buckets) + ";\n";
  std::string bucket = "    int x = " + indices.str() + "[i];\n    if (x < 0 || x >= " +
                       std::to_string(E) + ")\n      x = " + std::to_string(E) + ";\n";
  std::string range = "  long long begin = blockIdx.x * " + std::to_string(slice) +
                      "LL, end = begin + " + std::to_string(slice) + "LL < " +
                      std::to_string(n) + "LL ? begin + " + std::to_string(slice) + "LL : " +
                      std::to_string(n) + "LL;\n";
  w.beginEntry("count", {static_cast<unsigned>(blocks), 1, 1}, {256, 1, 1}, true);
  w.os() << layout << "  __shared__ int histogram[" << buckets << "];\n"
         << "  for (int x = threadIdx.x; x < " << buckets << "; x += blockDim.x)\n"
         << "    histogram[x] = 0;\n"
         << "  __syncthreads();\n"
         << range
         << "  for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) {\n"
         << bucket << "    atomicAdd(&histogram[x], 1);\n"
         << "  }\n"
         << "  __syncthreads();\n"
         << "  for (int x = threadIdx.x; x < " << buckets << "; x += blockDim.x)\n"
         << "    counts[blockIdx.x * " << buckets << " + x] = histogram[x];\n";
  // One block: each thread a contiguous run of buckets, whose totals over
  // the blocks it sums; those sums scanned across the block; then each
  // bucket's offsets, block after block.
  int64_t run = (buckets + 1023) / 1024;
  w.useHelper(kBlockScanHelper);
  w.beginEntry("scan", {1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
  w.os() << layout << "  __shared__ long long scratch[1024];\n"
         << "  const int first = threadIdx.x * " << run << ", last = first + " << run << " < "
         << buckets << " ? first + " << run << " : " << buckets << ";\n"
         << "  long long mine = 0, all;\n"
         << "  for (int x = first; x < last; ++x)\n"
         << "    for (int b = 0; b < " << blocks << "; ++b)\n"
         << "      mine += counts[b * " << buckets << " + x];\n"
         << "  long long acc = moec_block_exclusive_scan(mine, scratch, &all);\n"
         << "  for (int x = first; x < last; ++x) {\n"
         << "    int total = 0;\n"
         << "    for (int b = 0; b < " << blocks << "; ++b) {\n"
         << "      offsets[b * " << buckets << " + x] = (int)acc + total;\n"
         << "      total += counts[b * " << buckets << " + x];\n"
         << "    }\n";
  if (!sizes.empty())
    w.os() << "    if (x < " << E << ")\n"
           << "      " << sizes << "[x] = total;\n";
  w.os() << "    acc += total;\n"
         << "  }\n";
  // Each block walks its slice a chunk of 256 at a time: an assignment's
  // row is its bucket's next row plus how many assignments before it in the
  // chunk share its bucket; the last of each bucket then moves that
  // bucket's next row past the chunk's (the barriers order the chunks).
  w.beginEntry("place", {static_cast<unsigned>(blocks), 1, 1}, {256, 1, 1}, true);
  w.os() << layout << range << "  int *next = offsets + blockIdx.x * " << buckets << ";\n"
         << "  __shared__ int chunk[256];\n"
         << "  for (long long first = begin; first < end; first += 256) {\n"
         << "    const long long i = first + threadIdx.x;\n"
         << "    __syncthreads();\n"
         << "    chunk[threadIdx.x] = -1;\n"
         << "    if (i < end) {\n"
         << bucket << "    chunk[threadIdx.x] = x;\n"
         << "    }\n"
         << "    __syncthreads();\n"
         << "    const int x = chunk[threadIdx.x];\n"
         << "    int before = 0, same = 0;\n"
         << "    for (int j = 0; j < 256; ++j) {\n"
         << "      same += chunk[j] == x;\n"
         << "      before += chunk[j] == x && j < (int)threadIdx.x;\n"
         << "    }\n"
         << "    const int row = i < end ? next[x < 0 ? 0 : x] + before : 0;\n"
         << "    __syncthreads();\n"
         << "    if (i < end) {\n"
         << body << "      if (before == same - 1)\n"
         << "        next[x] += same;\n"
         << "    }\n"
         << "  }\n";
}

struct SortByExpertKernel
    : CudaKernelOpInterface::ExternalModel<SortByExpertKernel, SortByExpertOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto sort = cast<SortByExpertOp>(op);
    auto type = cast<RankedTensorType>(sort.getIndices().getType());
    int64_t K = type.getDimSize(1), n = type.getNumElements(), E = sort.getNumExperts();
    KernelWriter w(op, "sort_by_expert");
    // in: weights, indices; out: tokens, gates, sizes.
    std::string e = std::to_string(E);
    writeStableExpertSort(w, n, E, "in1", "out2",
                          "    out0[row] = x < " + e + " ? (int)(i / " + std::to_string(K) +
                              ") : -1;\n    out1[row] = x < " + e + " ? in0[i] : 0.0f;\n");
    return w.finish();
  }
};

struct SortByExpertGradKernel
    : CudaKernelOpInterface::ExternalModel<SortByExpertGradKernel, SortByExpertGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<SortByExpertGradOp>(op);
    auto type = cast<RankedTensorType>(grad.getIndices().getType());
    int64_t n = type.getNumElements(), E = grad.getNumExperts();
    KernelWriter w(op, "sort_by_expert_grad");
    // in: indices, dsorted gates; out: dweights.
    writeStableExpertSort(w, n, E, "in0", "",
                          "    out0[i] = x < " + std::to_string(E) + " ? in1[row] : 0.0f;\n");
    return w.finish();
  }
};

struct DispatchKernel : CudaKernelOpInterface::ExternalModel<DispatchKernel, DispatchOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto x = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t T = x.getDimSize(0), d = x.getDimSize(1), n = numElements(op->getResult(0));
    KernelWriter w(op, "dispatch");
    w.os() << forEachElement(n) << "  {\n"
           << "    int t = in1[i / " << d << "LL];\n"
           << "    out0[i] = t >= 0 && t < " << T << " ? in0[(long long)t * " << d << "LL + i % "
           << d << "LL] : 0.0f;\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

/// A thread per element: row i / d times its gate.
struct ScaleRowsKernel : CudaKernelOpInterface::ExternalModel<ScaleRowsKernel, ScaleRowsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t n = numElements(op->getResult(0)), rows = numElements(op->getOperand(1));
    int64_t d = rows ? n / rows : 0;
    KernelWriter w(op, "scale_rows");
    w.os() << forEachElement(n) << "    out0[i] = in1[i / " << d << "LL] * in0[i];\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

/// in: input, gates, dresult; out: dinput (a thread per element, entry
/// rows), dgates (a thread per row summing its products in double, in
/// order, entry gates).
struct ScaleRowsGradKernel
    : CudaKernelOpInterface::ExternalModel<ScaleRowsGradKernel, ScaleRowsGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t n = numElements(op->getOperand(0)), rows = numElements(op->getOperand(1));
    int64_t d = rows ? n / rows : 0;
    KernelWriter w(op, "scale_rows_grad");
    w.beginEntry("rows", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(n) << "    out0[i] = in1[i / " << d << "LL] * in2[i];\n";
    w.beginEntry("gates", {blocksFor(rows, 128), 1, 1}, {128, 1, 1}, false);
    w.os() << forEachElement(rows) << "  {\n"
           << "    double dot = 0.0;\n"
           << "    for (long long j = 0; j < " << d << "LL; ++j)\n"
           << "      dot += (double)in0[i * " << d << "LL + j] * in2[i * " << d << "LL + j];\n"
           << "    out1[i] = (float)dot;\n"
           << "  }\n";
    return w.finish();
  }
};

/// How many members a group list expects: a few (a token's k rows: each
/// list is ordered by one thread) or many (a token id's positions: each
/// list is ordered by a block, ranking every member against the others).
enum class GroupSize { few, many };

/// Lists, in the workspace, the indices i < n whose group `key` (an
/// expression of i) is g, for each of `groups` groups, in increasing i:
/// counted, scanned (one block), filled (in any order: integer atomics),
/// then each list ordered. Returns the workspace layout declaration for the caller's
/// launches (`ordered[offsets[g]]` .. `ordered[offsets[g + 1] - 1]`); the
/// caller sets the workspace to at least groupListBytes().
std::string writeGroupLists(KernelWriter &w, int64_t groups, int64_t n, StringRef key,
                            GroupSize size) {
  std::string layout = "  int *counts = (int *)workspace, *offsets = counts + " +
                       std::to_string(groups) + ", *cursor = offsets + " +
                       std::to_string(groups + 1) + ", *list = cursor + " +
                       std::to_string(groups) + ", *ordered = " +
                       (size == GroupSize::few ? "list" : "list + " + std::to_string(n)) + ";\n";
  std::string inRange = "g >= 0 && g < " + std::to_string(groups);
  w.beginEntry("zero", {blocksFor(groups, 256), 1, 1}, {256, 1, 1}, false);
  w.os() << layout << forEachElement(groups, "g") << "    counts[g] = 0;\n";
  w.beginEntry("count", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
  w.os() << layout << forEachElement(n) << "  {\n"
         << "    int g = " << key << ";\n"
         << "    if (" << inRange << ")\n"
         << "      atomicAdd(&counts[g], 1);\n"
         << "  }\n";
  // One block: each thread a contiguous run of groups, its sum scanned
  // across the block, then its run's offsets.
  int64_t run = (groups + 1023) / 1024;
  w.useHelper(kBlockScanHelper);
  w.beginEntry("scan", {1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
  w.os() << layout << "  __shared__ long long scratch[1024];\n"
         << "  const long long first = threadIdx.x * " << run << "LL, last = first + " << run
         << "LL < " << groups << "LL ? first + " << run << "LL : " << groups << "LL;\n"
         << "  long long mine = 0, total;\n"
         << "  for (long long g = first; g < last; ++g)\n"
         << "    mine += counts[g];\n"
         << "  long long acc = moec_block_exclusive_scan(mine, scratch, &total);\n"
         << "  for (long long g = first; g < last; ++g) {\n"
         << "    offsets[g] = cursor[g] = (int)acc;\n"
         << "    acc += counts[g];\n"
         << "  }\n"
         << "  if (threadIdx.x == 0)\n"
         << "    offsets[" << groups << "] = (int)total;\n";
  w.beginEntry("fill", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
  w.os() << layout << forEachElement(n) << "  {\n"
         << "    int g = " << key << ";\n"
         << "    if (" << inRange << ")\n"
         << "      list[atomicAdd(&cursor[g], 1)] = (int)i;\n"
         << "  }\n";
  if (size == GroupSize::few) {
    // Insertion sort in place, one thread per group.
    w.beginEntry("order", {blocksFor(groups, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << layout << forEachElement(groups, "g") << "  {\n"
           << "    for (int a = offsets[g] + 1; a < offsets[g + 1]; ++a) {\n"
           << "      int v = list[a], b = a - 1;\n"
           << "      for (; b >= offsets[g] && list[b] > v; --b)\n"
           << "        list[b + 1] = list[b];\n"
           << "      list[b + 1] = v;\n"
           << "    }\n"
           << "  }\n";
    return layout;
  }
  // One block per group: each member's place is how many members are
  // smaller (members are distinct indices), counted against the list
  // loaded tile by tile into shared memory.
  unsigned blocks = static_cast<unsigned>(std::clamp<int64_t>(groups, 1, 65535));
  w.beginEntry("order", {blocks, 1, 1}, {256, 1, 1}, /*usesBarriers=*/true);
  w.os() << layout << "  __shared__ int tile[1024];\n"
         << "  for (long long g = blockIdx.x; g < " << groups << "LL; g += gridDim.x) {\n"
         << "    const int begin = offsets[g], count = offsets[g + 1] - begin;\n"
         << "    for (int base = 0; base < count; base += blockDim.x) {\n"
         << "      const int at = base + (int)threadIdx.x;\n"
         << "      const int mine = at < count ? list[begin + at] : 0;\n"
         << "      int rank = 0;\n"
         << "      for (int t0 = 0; t0 < count; t0 += 1024) {\n"
         << "        __syncthreads();\n"
         << "        for (int k = threadIdx.x; k < 1024 && t0 + k < count; k += blockDim.x)\n"
         << "          tile[k] = list[begin + t0 + k];\n"
         << "        __syncthreads();\n"
         << "        const int m = count - t0 < 1024 ? count - t0 : 1024;\n"
         << "        if (at < count)\n"
         << "          for (int k = 0; k < m; ++k)\n"
         << "            rank += tile[k] < mine;\n"
         << "      }\n"
         << "      if (at < count)\n"
         << "        ordered[begin + rank] = mine;\n"
         << "    }\n"
         << "  }\n";
  return layout;
}

/// The workspace writeGroupLists needs.
uint64_t groupListBytes(int64_t groups, int64_t n, GroupSize size) {
  return (3 * groups + 1 + n + (size == GroupSize::many ? n : 0)) * sizeof(int);
}

/// y[t] = Σ gate[i] · outputs[i] over the rows i of token t, in increasing
/// i (the CPU kernel's order).
struct CombineKernel : CudaKernelOpInterface::ExternalModel<CombineKernel, CombineOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto y = cast<RankedTensorType>(op->getResult(0).getType());
    int64_t T = y.getDimSize(0), d = y.getDimSize(1), n = numElements(op->getOperand(2));
    KernelWriter w(op, "combine");
    w.acceptBf16(op->getOperand(0)); // the experts' outputs: moec_load
    w.setWorkspace(groupListBytes(T, n, GroupSize::few));
    std::string layout = writeGroupLists(w, T, n, "in2[i]", GroupSize::few);
    w.beginEntry("sum", {blocksFor(T * d, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << layout << forEachElement(T * d) << "  {\n"
           << "    long long t = i / " << d << "LL, j = i % " << d << "LL;\n"
           << "    float acc = 0.0f;\n"
           << "    for (int a = offsets[t]; a < offsets[t + 1]; ++a)\n"
           << "      acc += in1[ordered[a]] * moec_load(in0 + (long long)ordered[a] * " << d
           << "LL + j);\n"
           << "    out0[i] = acc;\n"
           << "  }\n";
    return w.finish();
  }
};

/// dtable[v] = Σ dy[t] over the positions t of token v, in increasing t.
struct EmbeddingGradKernel
    : CudaKernelOpInterface::ExternalModel<EmbeddingGradKernel, EmbeddingGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto table = cast<RankedTensorType>(op->getResult(0).getType());
    int64_t V = table.getDimSize(0), d = table.getDimSize(1);
    int64_t n = numElements(op->getOperand(1));
    KernelWriter w(op, "embedding_grad");
    w.setWorkspace(groupListBytes(V, n, GroupSize::many));
    std::string layout = writeGroupLists(w, V, n, "in1[i]", GroupSize::many);
    w.beginEntry("sum", {blocksFor(V * d, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << layout << forEachElement(V * d) << "  {\n"
           << "    long long v = i / " << d << "LL, j = i % " << d << "LL;\n"
           << "    float acc = 0.0f;\n"
           << "    for (int a = offsets[v]; a < offsets[v + 1]; ++a)\n"
           << "      acc += in0[(long long)ordered[a] * " << d << "LL + j];\n"
           << "    out0[i] = acc;\n"
           << "  }\n";
    return w.finish();
  }
};

struct CombineGradKernel : CudaKernelOpInterface::ExternalModel<CombineGradKernel, CombineGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto dy = cast<RankedTensorType>(op->getOperand(3).getType());
    int64_t T = dy.getDimSize(0), d = dy.getDimSize(1), n = numElements(op->getOperand(2));
    unsigned threads = std::min(threadsFor(d), 256u);
    KernelWriter w(op, "combine_grad");
    w.acceptBf16(op->getOperand(0)); // the experts' outputs: moec_load
    // in: outputs, gates, slots, dy; out: doutputs, dgates. One block per row.
    w.os() << "  __shared__ float scratch[" << threads << "];\n"
           << "  for (long long i = blockIdx.x; i < " << n << "LL; i += gridDim.x) {\n"
           << "    int t = in2[i];\n"
           << "    bool valid = t >= 0 && t < " << T << ";\n"
           << "    float gate = valid ? in1[i] : 0.0f, dot = 0.0f;\n"
           << "    for (long long j = threadIdx.x; j < " << d << "LL; j += blockDim.x) {\n"
           << "      float g = valid ? in3[(long long)t * " << d << "LL + j] : 0.0f;\n"
           << "      out0[i * " << d << "LL + j] = gate * g;\n"
           << "      dot += moec_load(in0 + i * " << d << "LL + j) * g;\n"
           << "    }\n"
           << "    dot = moec_block_sum(dot, scratch);\n"
           << "    if (threadIdx.x == 0)\n"
           << "      out1[i] = dot;\n"
           << "  }\n";
    return w.finish({static_cast<unsigned>(std::min<int64_t>(n, 65535)), 1, 1},
                    {threads, 1, 1}, /*usesBarriers=*/true);
  }
};

/// The assignments of expert e in priority order: k-major (slot 0 choices
/// first) for `position`, by decreasing weight then k-major for `score`.
/// One thread per expert; `body` runs for each, with `position` counting
/// them and `a` = k * T + t the assignment.
std::string expertAssignments(int64_t T, int64_t K, bool byScore, StringRef body) {
  std::string t = std::to_string(T), k = std::to_string(K), n = std::to_string(T * K);
  std::string expertOf = "in1[(a % " + t + ") * " + k + " + a / " + t + "]";
  if (!byScore)
    return "    long long position = 0;\n"
           "    for (long long a = 0; a < " + n + "LL; ++a)\n"
           "      if (" + expertOf + " == e) {\n" + body.str() + "        ++position;\n"
           "      }\n";
  // Selection passes: each takes the next (weight desc, a asc) assignment.
  return "    float lastWeight = 0.0f;\n"
         "    long long last = -1;\n"
         "    for (long long position = 0;; ++position) {\n"
         "      long long a = -1;\n"
         "      float best = 0.0f;\n"
         "      for (long long b = 0; b < " + n + "LL; ++b) {\n"
         "        if (in1[(b % " + t + ") * " + k + " + b / " + t + "] != e)\n"
         "          continue;\n"
         "        float v = in0[(b % " + t + ") * " + k + " + b / " + t + "];\n"
         "        bool after = last < 0 || v < lastWeight || (v == lastWeight && b > last);\n"
         "        if (after && (a < 0 || v > best)) {\n"
         "          a = b;\n"
         "          best = v;\n"
         "        }\n"
         "      }\n"
         "      if (a < 0)\n"
         "        break;\n" + body.str() +
         "      lastWeight = best;\n"
         "      last = a;\n"
         "    }\n";
}

/// Capacity dispatch: expert e fills its C slots in priority order; its
/// load counts every assignment, kept or dropped.
struct AssignSlotsKernel : CudaKernelOpInterface::ExternalModel<AssignSlotsKernel, AssignSlotsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t T = type.getDimSize(0), K = type.getDimSize(1);
    int64_t E = intAttr(op, "num_experts"), C = intAttr(op, "capacity");
    bool byScore = cast<AssignSlotsOp>(op).getPriority() == DropPriority::score;
    std::string c = std::to_string(C);
    KernelWriter w(op, byScore ? "assign_slots_score" : "assign_slots_position");
    // in: weights, indices; out: slot tokens, slot gates, load.
    w.os() << forEachElement(E, "e") << "  {\n"
           << "    for (int s = 0; s < " << C << "; ++s) {\n"
           << "      out0[e * " << C << "LL + s] = -1;\n"
           << "      out1[e * " << C << "LL + s] = 0.0f;\n"
           << "    }\n"
           << "    out2[e] = 0;\n"
           << expertAssignments(T, K, byScore,
                                "        if (position < " + c + ") {\n"
                                "          out0[e * " + c + "LL + position] = (int)(a % " +
                                    std::to_string(T) + ");\n"
                                "          out1[e * " + c + "LL + position] = in0[(a % " +
                                    std::to_string(T) + ") * " + std::to_string(K) + " + a / " +
                                    std::to_string(T) + "];\n"
                                "        }\n"
                                "        out2[e] = (int)position + 1;\n")
           << "  }\n";
    return w.finish({blocksFor(E, 32), 1, 1}, {32, 1, 1}, /*usesBarriers=*/false);
  }
};

struct AssignSlotsGradKernel
    : CudaKernelOpInterface::ExternalModel<AssignSlotsGradKernel, AssignSlotsGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<AssignSlotsGradOp>(op);
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t T = type.getDimSize(0), K = type.getDimSize(1);
    int64_t E = grad.getNumExperts(), C = grad.getCapacity();
    bool byScore = grad.getPriority() == DropPriority::score;
    std::string c = std::to_string(C);
    KernelWriter w(op, byScore ? "assign_slots_grad_score" : "assign_slots_grad_position");
    // in: weights, indices, dslot gates; out: dweights [T, K].
    w.beginEntry("zero", {blocksFor(T * K, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(T * K) << "    out0[i] = 0.0f;\n";
    w.beginEntry("experts", {blocksFor(E, 32), 1, 1}, {32, 1, 1}, false);
    w.os() << forEachElement(E, "e") << "  {\n"
           << expertAssignments(T, K, byScore,
                                "        if (position < " + c + ")\n"
                                "          out0[(a % " + std::to_string(T) + ") * " +
                                    std::to_string(K) + " + a / " + std::to_string(T) +
                                    "] = in2[e * " + c + "LL + position];\n")
           << "  }\n";
    return w.finish();
  }
};

/// Expert load and the dropped fraction, in one block.
struct RoutingStatsKernel
    : CudaKernelOpInterface::ExternalModel<RoutingStatsKernel, RoutingStatsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto stats = cast<RoutingStatsOp>(op);
    int64_t E = stats.getNumExperts(), T = stats.getNumTokens();
    int64_t n = numElements(op->getOperand(0));
    bool withIndices = op->getNumOperands() > 1;
    KernelWriter w(op, "routing_stats");
    w.os() << "  __shared__ long long scratch[1024];\n";
    if (withIndices) {
      int64_t assignments = numElements(op->getOperand(1));
      // in: slots, indices; out: load, dropped.
      w.os() << "  long long kept = 0, assigned = 0;\n"
             << "  for (long long i = threadIdx.x; i < " << n << "LL; i += blockDim.x)\n"
             << "    kept += in0[i] >= 0;\n"
             << "  for (int e = threadIdx.x; e < " << E << "; e += blockDim.x) {\n"
             << "    int c = 0;\n"
             << "    for (long long i = 0; i < " << assignments << "LL; ++i)\n"
             << "      c += in1[i] == e;\n"
             << "    out0[e] = c;\n"
             << "    assigned += c;\n"
             << "  }\n"
             << "  kept = moec_block_sum(kept, scratch);\n"
             << "  assigned = moec_block_sum(assigned, scratch);\n"
             << "  if (threadIdx.x == 0)\n"
             << "    out1[0] = assigned ? 1.0f - (float)kept / assigned : 0.0f;\n";
      return w.finish({1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
    }
    // Capacity slots [E, C]: the load of e counts its filled slots; a token
    // is dropped when no slot holds it.
    int64_t C = n / E;
    w.setWorkspace(T);
    w.os() << "  char *routed = workspace;\n"
           << "  for (long long t = threadIdx.x; t < " << T << "LL; t += blockDim.x)\n"
           << "    routed[t] = 0;\n"
           << "  __syncthreads();\n"
           << "  for (long long i = threadIdx.x; i < " << n << "LL; i += blockDim.x) {\n"
           << "    int t = in0[i];\n"
           << "    if (t >= 0 && t < " << T << ")\n"
           << "      routed[t] = 1;\n"
           << "  }\n"
           << "  for (int e = threadIdx.x; e < " << E << "; e += blockDim.x) {\n"
           << "    int c = 0;\n"
           << "    for (long long s = 0; s < " << C << "LL; ++s) {\n"
           << "      int t = in0[e * " << C << "LL + s];\n"
           << "      c += t >= 0 && t < " << T << ";\n"
           << "    }\n"
           << "    out0[e] = c;\n"
           << "  }\n"
           << "  __syncthreads();\n"
           << "  long long unrouted = 0;\n"
           << "  for (long long t = threadIdx.x; t < " << T << "LL; t += blockDim.x)\n"
           << "    unrouted += !routed[t];\n"
           << "  unrouted = moec_block_sum(unrouted, scratch);\n"
           << "  if (threadIdx.x == 0)\n"
           << "    out1[0] = (float)unrouted / " << T << ";\n";
    return w.finish({1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
  }
};
} // namespace

void attachDispatchKernels(MLIRContext *context) {
  SortByExpertOp::attachInterface<SortByExpertKernel>(*context);
  SortByExpertGradOp::attachInterface<SortByExpertGradKernel>(*context);
  DispatchOp::attachInterface<DispatchKernel>(*context);
  CombineOp::attachInterface<CombineKernel>(*context);
  ScaleRowsOp::attachInterface<ScaleRowsKernel>(*context);
  ScaleRowsGradOp::attachInterface<ScaleRowsGradKernel>(*context);
  EmbeddingGradOp::attachInterface<EmbeddingGradKernel>(*context);
  CombineGradOp::attachInterface<CombineGradKernel>(*context);
  RoutingStatsOp::attachInterface<RoutingStatsKernel>(*context);
  AssignSlotsOp::attachInterface<AssignSlotsKernel>(*context);
  AssignSlotsGradOp::attachInterface<AssignSlotsGradKernel>(*context);
}

} // namespace moec::codegen
