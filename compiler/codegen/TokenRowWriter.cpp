//===- TokenRowWriter.cpp - kernels of one thread per token ---------------===//
#include "compiler/codegen/TokenRowWriter.h"

#include "compiler/codegen/CudaKernelInterface.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <algorithm>

using namespace mlir;

namespace moec::codegen {
namespace {

constexpr unsigned kThreadsPerBlock = 128;

/// Token `t`'s row of kernel parameter `name` holding `value`.
std::string parameterRow(Value value, const std::string &name) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() < 2)
    return name;
  return "(" + name + " + t * " + std::to_string(TokenRowWriter::width(value)) + "LL)";
}

/// The row of each operand and result of `op`, its kernel's parameters.
DenseMap<Value, std::string> parameterRows(KernelWriter &w, Operation *op) {
  DenseMap<Value, std::string> rowOf;
  for (Value value : op->getOperands())
    rowOf[value] = parameterRow(value, w.name(value));
  for (Value value : op->getResults())
    rowOf[value] = parameterRow(value, w.name(value));
  return rowOf;
}

/// Writes `member`'s body: its own token-row code, its row from the
/// `values` of a statistic's gradient, or the loop of an elementwise op
/// over its row.
LogicalResult writeBody(Operation *member, TokenRowWriter &rows, StringRef values = "") {
  rows.os() << "    {\n";
  if (auto gradient = dyn_cast<TokenStatisticGradientKernelOpInterface>(member)) {
    if (values.empty())
      return member->emitOpError("makes its rows from sums over every token: only a router "
                                 "group's kernel, which makes the sums first, can hold it");
    if (failed(gradient.writeTokenRow(rows, values)))
      return failure();
  } else if (auto body = dyn_cast<TokenRowKernelOpInterface>(member)) {
    if (failed(body.writeTokenRow(rows)))
      return failure();
  } else if (auto element = dyn_cast<ElementKernelOpInterface>(member)) {
    SmallVector<std::string> operands;
    for (Value operand : member->getOperands())
      operands.push_back(rows.row(operand) + "[c]");
    rows.os() << "      for (int c = 0; c < " << TokenRowWriter::width(member->getResult(0))
              << "; ++c)\n"
              << "        " << rows.row(member->getResult(0))
              << "[c] = " << element.elementExpression(rows.kernel(), operands) << ";\n";
  } else {
    return member->emitOpError("has no code for one token's rows: it cannot be in a router "
                               "kernel");
  }
  rows.os() << "    }\n";
  return success();
}

FailureOr<CudaKernel> finishPerToken(KernelWriter &w, int64_t tokens) {
  w.os() << "  }\n";
  return w.finish({blocksFor(tokens, kThreadsPerBlock), 1, 1}, {kThreadsPerBlock, 1, 1},
                  /*usesBarriers=*/false);
}

/// Where a token statistic's values live in the workspace: its tokens'
/// terms and its slices' sums (f64), and the pointer to each operand's
/// first element.
struct StatisticBuffers {
  std::string perToken, partials;
  SmallVector<std::string> operands;
};

/// `n` f64 values of the workspace, as an expression.
std::string workspaceDoubles(KernelWriter &w, int64_t n) {
  return "((double *)" + w.workspaceFloats(2 * n) + ")";
}

/// Reserves `statistic`'s f64 terms and slice sums over `tokens` tokens.
StatisticBuffers reserveStatistic(KernelWriter &w, TokenStatisticKernelOpInterface statistic,
                                  int64_t tokens) {
  StatisticBuffers buffers;
  if (int64_t width = statistic.tokenTermWidth())
    buffers.perToken = workspaceDoubles(w, tokens * width);
  if (int64_t width = statistic.sliceWidth())
    buffers.partials = workspaceDoubles(w, tokenSlices(tokens) * width);
  return buffers;
}

/// For each slice of this block (the tokens its threads took in the loop
/// over tokens), `writeSums` of the slice's row of `width` values at
/// `partials`.
void writeSlicePass(raw_ostream &os, int64_t tokens, StringRef partials, int64_t width,
                    llvm::function_ref<void(StringRef)> writeSums) {
  os << beginSliceLoop(tokens);
  writeSums("(" + partials.str() + " + slice * " + std::to_string(width) + "LL)");
  os << "  }\n";
}

/// The slice sums of `statistic` for each slice of this block, into the
/// slice's row of the partial sums.
void writeBlockSums(raw_ostream &os, TokenStatisticKernelOpInterface statistic,
                    const StatisticBuffers &buffers, int64_t tokens) {
  if (int64_t width = statistic.sliceWidth())
    writeSlicePass(os, tokens, buffers.partials, width, [&](StringRef partial) {
      statistic.writeSliceSums(os, buffers.operands, partial);
    });
}

/// Entry `statistics`: one block of 1024 threads writes each statistic's
/// result.
LogicalResult writeStatisticResults(KernelWriter &w,
                                    ArrayRef<TokenStatisticKernelOpInterface> statistics,
                                    ArrayRef<StatisticBuffers> buffers,
                                    ArrayRef<std::string> results, int64_t tokens) {
  w.beginEntry("statistics", {1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
  w.os() << "  __shared__ double scratch[1024];\n";
  for (auto [n, buffer] : llvm::enumerate(buffers)) {
    TokenStatisticKernelOpInterface statistic = statistics[n];
    StringRef result = results[n];
    w.os() << "  {\n";
    if (failed(statistic.writeResult(w.os(), buffer.operands, buffer.partials, buffer.perToken,
                                     result)))
      return failure();
    w.os() << "  }\n";
  }
  return success();
}
} // namespace

int64_t tokenSlices(int64_t tokens) {
  return std::max<int64_t>(1, (tokens + kThreadsPerBlock - 1) / kThreadsPerBlock);
}

int64_t tokenSliceSize() { return kThreadsPerBlock; }

std::string beginSliceLoop(int64_t tokens) {
  std::string T = std::to_string(tokens), B = std::to_string(kThreadsPerBlock);
  return "  for (long long slice = blockIdx.x; slice < " + std::to_string(tokenSlices(tokens)) +
         "LL; slice += gridDim.x) {\n" + "    const long long t0 = slice * " + B +
         "LL, t1 = t0 + " + B + "LL < " + T + "LL ? t0 + " + B + "LL : " + T + "LL;\n";
}

FailureOr<std::string> writeStatisticGradientValues(KernelWriter &w, Operation *op,
                                                    ArrayRef<std::string> operands, int64_t tokens,
                                                    StringRef suffix) {
  auto gradient = cast<TokenStatisticGradientKernelOpInterface>(op);
  int64_t width = gradient.sliceWidth();
  std::string partials = workspaceDoubles(w, tokenSlices(tokens) * width);
  std::string values = w.workspaceFloats(gradient.valueCount());
  w.beginEntry(("slices" + suffix).str(), {blocksFor(tokens, kThreadsPerBlock), 1, 1},
               {kThreadsPerBlock, 1, 1}, /*usesBarriers=*/false);
  writeSlicePass(w.os(), tokens, partials, width,
                 [&](StringRef partial) { gradient.writeSliceSums(w.os(), operands, partial); });
  w.beginEntry(("values" + suffix).str(), {1, 1, 1}, {1024, 1, 1}, /*usesBarriers=*/true);
  w.os() << "  __shared__ double scratch[1024];\n";
  if (failed(gradient.writeValues(w.os(), operands, partials, values)))
    return failure();
  return values;
}

FailureOr<CudaKernel> tokenStatisticKernel(Operation *op, StringRef stem) {
  auto statistic = cast<TokenStatisticKernelOpInterface>(op);
  KernelWriter w(op, stem);
  int64_t tokens = cast<RankedTensorType>(op->getOperand(0).getType()).getDimSize(0);
  StatisticBuffers buffers = reserveStatistic(w, statistic, tokens);
  for (Value operand : op->getOperands())
    buffers.operands.push_back(w.name(operand));
  if (statistic.tokenTermWidth()) {
    TokenRowWriter rows(w, tokens, parameterRows(w, op));
    w.beginEntry("terms", {blocksFor(tokens, kThreadsPerBlock), 1, 1}, {kThreadsPerBlock, 1, 1},
                 /*usesBarriers=*/false);
    w.os() << forEachElement(tokens, "t") << "  {\n";
    if (failed(statistic.writeTokenTerms(rows, buffers.perToken)))
      return failure();
    w.os() << "  }\n";
  }
  if (statistic.sliceWidth()) {
    w.beginEntry("slices", {blocksFor(tokens, kThreadsPerBlock), 1, 1}, {kThreadsPerBlock, 1, 1},
                 /*usesBarriers=*/false);
    writeBlockSums(w.os(), statistic, buffers, tokens);
  }
  if (failed(writeStatisticResults(w, {statistic}, {buffers}, {w.name(op->getResult(0))}, tokens)))
    return failure();
  return w.finish();
}

int64_t TokenRowWriter::width(Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() < 1 || type.getDimSize(0) == 0)
    return type.getNumElements();
  return type.getNumElements() / type.getDimSize(0);
}

std::string registerType(Type type) {
  if (type.isF32())
    return "float";
  if (type.isSignlessInteger(32))
    return "int";
  if (type.isSignlessInteger(64))
    return "long long";
  return "";
}

FailureOr<CudaKernel> tokenRowKernel(Operation *op, StringRef stem) {
  KernelWriter w(op, stem);
  int64_t tokens = moe::tokenRowCount(op);
  TokenRowWriter rows(w, tokens, parameterRows(w, op));
  w.os() << forEachElement(tokens, "t") << "  {\n";
  if (failed(writeBody(op, rows)))
    return failure();
  return finishPerToken(w, tokens);
}

FailureOr<CudaKernel> fusedRouterKernel(Operation *op) {
  auto fused = cast<moe::FusedOp>(op);
  KernelWriter w(op, "fused_router");
  DenseMap<Value, std::string> rowOf, baseOf;
  for (auto [input, argument] : llvm::zip(fused.getInputs(), fused.getBody()->getArguments())) {
    rowOf[argument] = parameterRow(argument, w.name(input));
    baseOf[argument] = w.name(input);
  }
  Operation *yield = fused.getBody()->getTerminator();
  for (auto [value, result] : llvm::zip(yield->getOperands(), fused.getResults())) {
    rowOf.try_emplace(value, parameterRow(value, w.name(result)));
    baseOf.try_emplace(value, w.name(result));
  }

  SmallVector<Operation *> perToken, gradients;
  SmallVector<TokenStatisticKernelOpInterface> statistics;
  for (Operation &member : fused.getMembers()) {
    if (auto statistic = dyn_cast<TokenStatisticKernelOpInterface>(member))
      statistics.push_back(statistic);
    else
      perToken.push_back(&member);
    if (isa<TokenStatisticGradientKernelOpInterface>(member))
      gradients.push_back(&member);
  }
  int64_t tokens = 0;
  for (Operation *member : perToken)
    tokens = std::max(tokens, moe::tokenRowCount(member));
  // Rows a statistic's slice sums read after the loop are in memory: the
  // kernel's parameters, or the workspace.
  DenseSet<Value> readBack;
  for (TokenStatisticKernelOpInterface statistic : statistics)
    if (statistic.sliceWidth())
      for (Value operand : statistic->getOperands())
        readBack.insert(operand);

  std::string locals, members;
  unsigned next = 0;
  for (Operation &member : fused.getMembers()) {
    members += (members.empty() ? "" : ", ") + member.getName().getStringRef().str();
    if (isa<TokenStatisticKernelOpInterface>(member))
      continue;
    for (OpResult result : member.getResults()) {
      if (rowOf.count(result))
        continue; // yielded: written to the kernel's result
      auto type = cast<RankedTensorType>(result.getType());
      std::string element = registerType(type.getElementType());
      if (type.getRank() < 2 || element.empty())
        return member.emitOpError("cannot keep result ")
               << result.getResultNumber() << " (" << result.getType()
               << ") in registers inside a router kernel";
      if (readBack.contains(result)) {
        std::string base =
            "((" + element + " *)" +
            w.workspaceFloats(type.getNumElements() * (element == "long long" ? 2 : 1)) + ")";
        baseOf[result] = base;
        rowOf[result] = parameterRow(result, base);
        continue;
      }
      std::string name = "v" + std::to_string(next++);
      locals += "    " + element + " " + name + "[" +
                std::to_string(TokenRowWriter::width(result)) + "];\n";
      rowOf[result] = name;
    }
  }
  w.helpers() << "// fused: " << members << "\n";
  SmallVector<StatisticBuffers> buffers;
  for (TokenStatisticKernelOpInterface statistic : statistics) {
    buffers.push_back(reserveStatistic(w, statistic, tokens));
    for (Value operand : statistic->getOperands())
      buffers.back().operands.push_back(baseOf.lookup(operand));
  }
  // Statistics' gradients: their values first, from operands the group
  // reads (made before its kernel).
  DenseMap<Operation *, std::string> valuesOf;
  for (auto [n, gradient] : llvm::enumerate(gradients)) {
    SmallVector<std::string> operands;
    for (Value operand : gradient->getOperands()) {
      if (!isa<BlockArgument>(operand))
        return gradient->emitOpError("reads rows its router group makes: its sums over every "
                                     "token cannot run before the group's kernel");
      operands.push_back(baseOf.lookup(operand));
    }
    FailureOr<std::string> values =
        writeStatisticGradientValues(w, gradient, operands, tokens, "_" + std::to_string(n));
    if (failed(values))
      return failure();
    valuesOf[gradient] = *values;
  }
  TokenRowWriter rows(w, tokens, std::move(rowOf));
  w.beginEntry("main", {blocksFor(tokens, kThreadsPerBlock), 1, 1}, {kThreadsPerBlock, 1, 1},
               /*usesBarriers=*/!statistics.empty());
  w.os() << forEachElement(tokens, "t") << "  {\n" << locals;
  for (Operation *member : perToken)
    if (failed(writeBody(member, rows, valuesOf.lookup(member))))
      return failure();
  for (auto [statistic, buffer] : llvm::zip(statistics, buffers)) {
    if (!statistic.tokenTermWidth())
      continue;
    rows.os() << "    {\n";
    if (failed(statistic.writeTokenTerms(rows, buffer.perToken)))
      return failure();
    rows.os() << "    }\n";
  }
  if (statistics.empty())
    return finishPerToken(w, tokens);
  // Every thread of the block has stored its tokens' rows: the block's
  // slice sums read them back.
  w.os() << "  }\n"
         << "  __syncthreads();\n";
  for (auto [statistic, buffer] : llvm::zip(statistics, buffers))
    writeBlockSums(w.os(), statistic, buffer, tokens);
  SmallVector<std::string> results;
  for (TokenStatisticKernelOpInterface statistic : statistics) {
    Value result = fused.getOuterValue(statistic->getResult(0));
    if (!result)
      return statistic->emitOpError("has a result that nothing after its router group reads");
    results.push_back(w.name(result));
  }
  if (failed(writeStatisticResults(w, statistics, buffers, results, tokens)))
    return failure();
  return w.finish();
}

} // namespace moec::codegen
