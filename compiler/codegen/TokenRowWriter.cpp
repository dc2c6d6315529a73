//===- TokenRowWriter.cpp - kernels of one thread per token ---------------===//
#include "compiler/codegen/TokenRowWriter.h"

#include "compiler/codegen/CudaKernelInterface.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/IR/BuiltinTypes.h"

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

/// Writes `member`'s body: its own token-row code, or the loop of an
/// elementwise op over its row.
LogicalResult writeBody(Operation *member, TokenRowWriter &rows) {
  rows.os() << "    {\n";
  if (auto body = dyn_cast<TokenRowKernelOpInterface>(member)) {
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
} // namespace

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
  DenseMap<Value, std::string> rowOf;
  for (Value value : op->getOperands())
    rowOf[value] = parameterRow(value, w.name(value));
  for (Value value : op->getResults())
    rowOf[value] = parameterRow(value, w.name(value));
  int64_t tokens = moe::tokenRowCount(op);
  TokenRowWriter rows(w, tokens, std::move(rowOf));
  w.os() << forEachElement(tokens, "t") << "  {\n";
  if (failed(writeBody(op, rows)))
    return failure();
  return finishPerToken(w, tokens);
}

FailureOr<CudaKernel> fusedRouterKernel(Operation *op) {
  auto fused = cast<moe::FusedOp>(op);
  KernelWriter w(op, "fused_router");
  DenseMap<Value, std::string> rowOf;
  for (auto [input, argument] : llvm::zip(fused.getInputs(), fused.getBody()->getArguments()))
    rowOf[argument] = parameterRow(argument, w.name(input));
  Operation *yield = fused.getBody()->getTerminator();
  for (auto [value, result] : llvm::zip(yield->getOperands(), fused.getResults()))
    rowOf.try_emplace(value, parameterRow(value, w.name(result)));

  int64_t tokens = 0;
  std::string locals, members;
  unsigned next = 0;
  for (Operation &member : fused.getMembers()) {
    tokens = std::max(tokens, moe::tokenRowCount(&member));
    members += (members.empty() ? "" : ", ") + member.getName().getStringRef().str();
    for (OpResult result : member.getResults()) {
      if (rowOf.count(result))
        continue; // yielded: written to the kernel's result
      auto type = cast<RankedTensorType>(result.getType());
      std::string element = registerType(type.getElementType());
      if (type.getRank() < 2 || element.empty())
        return member.emitOpError("cannot keep result ")
               << result.getResultNumber() << " (" << result.getType()
               << ") in registers inside a router kernel";
      std::string name = "v" + std::to_string(next++);
      locals += "    " + element + " " + name + "[" +
                std::to_string(TokenRowWriter::width(result)) + "];\n";
      rowOf[result] = name;
    }
  }
  w.helpers() << "// fused: " << members << "\n";
  TokenRowWriter rows(w, tokens, std::move(rowOf));
  w.os() << forEachElement(tokens, "t") << "  {\n" << locals;
  for (Operation &member : fused.getMembers())
    if (failed(writeBody(&member, rows)))
      return failure();
  return finishPerToken(w, tokens);
}

} // namespace moec::codegen
