//===- ElementwiseCode.cpp - kernels of one thread per element ------------===//
#include "compiler/codegen/ElementwiseCode.h"

#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"

#include "dialects/moe/IR/MoEOps.h"

#include "llvm/ADT/DenseMap.h"

#include <algorithm>

using namespace mlir;

namespace moec::codegen {

FailureOr<CudaKernel> elementwiseKernel(Operation *kernelOp, StringRef stem, ValueRange outputs,
                                        ArrayRef<Operation *> members) {
  KernelWriter w(kernelOp, stem);
  // Read with moec_load, written with moec_store: bf16 or f32.
  for (Value value : kernelOp->getOperands())
    w.acceptBf16(value);
  for (Value value : kernelOp->getResults())
    w.acceptBf16(value);
  // The values the members read from the kernel's parameters.
  ValueRange sources = kernelOp->getOperands();
  if (auto fused = dyn_cast<moe::FusedOp>(kernelOp))
    sources = fused.getBody()->getArguments();
  int64_t n = numElements(members.front()->getResult(0));
  if (isa<moe::FusedOp>(kernelOp)) {
    std::string names;
    for (Operation *member : members)
      names += (names.empty() ? "" : ", ") + member->getName().getStringRef().str();
    w.helpers() << "// fused: " << names << "\n";
  }

  llvm::DenseMap<Value, std::string> element;
  w.os() << forEachElement(n) << "  {\n";
  for (auto [j, source] : llvm::enumerate(sources)) {
    element[source] = "a" + std::to_string(j);
    w.os() << "    float a" << j << " = moec_load(" << w.name(kernelOp->getOperand(j))
           << " + i);\n";
  }
  for (auto [k, member] : llvm::enumerate(members)) {
    auto code = dyn_cast<ElementKernelOpInterface>(member);
    if (!code || member->getNumResults() != 1 || numElements(member->getResult(0)) != n)
      return member->emitOpError("has no code for one element of ")
             << n << ": it cannot be in an elementwise kernel";
    SmallVector<std::string> operands;
    for (Value operand : member->getOperands())
      operands.push_back(element.lookup(operand));
    std::string name = "v" + std::to_string(k);
    w.os() << "    float " << name << " = " << code.elementExpression(w, operands) << ";\n";
    element[member->getResult(0)] = name;
  }
  for (auto [j, output] : llvm::enumerate(outputs))
    w.os() << "    moec_store(" << w.name(kernelOp->getResult(j)) << " + i, "
           << element.lookup(output) << ");\n";
  w.os() << "  }\n";
  return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
}

llvm::DenseMap<Value, std::string> kernelValueNames(const KernelWriter &w, Operation *kernelOp) {
  llvm::DenseMap<Value, std::string> name;
  if (auto fused = dyn_cast<moe::FusedOp>(kernelOp)) {
    for (auto [input, argument] : llvm::zip(fused.getInputs(), fused.getBody()->getArguments()))
      name[argument] = w.name(input);
    for (auto [value, result] :
         llvm::zip(fused.getBody()->getTerminator()->getOperands(), fused.getResults()))
      name.try_emplace(value, w.name(result));
    return name;
  }
  for (Value value : kernelOp->getOperands())
    name[value] = w.name(value);
  for (Value value : kernelOp->getResults())
    name[value] = w.name(value);
  return name;
}

FailureOr<SmallVector<std::string>>
memberValueNames(Operation *member, const llvm::DenseMap<Value, std::string> &name) {
  SmallVector<std::string> names;
  SmallVector<Value> values(member->getOperands());
  llvm::append_range(values, member->getResults());
  for (Value value : values) {
    auto it = name.find(value);
    if (it == name.end())
      return member->emitOpError("writes a value the kernel does not return");
    names.push_back(it->second);
  }
  return names;
}

std::array<unsigned, 3> elementLoopGrid(ArrayRef<Operation *> members) {
  int64_t blocks = 0;
  for (Operation *member : members)
    blocks += blocksFor(numElements(member->getOperand(0)), 256);
  return {static_cast<unsigned>(blocks), 1, 1};
}

LogicalResult writeElementLoops(raw_ostream &os, ArrayRef<Operation *> members,
                                const llvm::DenseMap<Value, std::string> &name) {
  int64_t first = 0;
  for (auto [j, member] : llvm::enumerate(members)) {
    auto loop = dyn_cast<ElementLoopKernelOpInterface>(member);
    if (!loop)
      return member->emitOpError("has no element loop: it cannot be in an optimizer kernel");
    FailureOr<SmallVector<std::string>> names = memberValueNames(member, name);
    if (failed(names))
      return failure();
    int64_t n = numElements(member->getOperand(0));
    unsigned blocks = blocksFor(n, 256);
    // Blocks [first, first + blocks) are this member's.
    os << "  " << (j ? "else if" : "if") << " (blockIdx.x < " << first + blocks << "u) {\n";
    loop.writeSetup(os, *names);
    os << "    for (long long i = (blockIdx.x - " << first
       << "u) * (long long)blockDim.x + threadIdx.x; i < " << n << "LL; i += " << blocks
       << "LL * blockDim.x)\n"
       << "    {\n";
    loop.writeElement(os, *names);
    os << "    }\n"
       << "  }\n";
    first += blocks;
  }
  return success();
}

FailureOr<CudaKernel> elementLoopKernel(Operation *kernelOp, StringRef stem,
                                        ArrayRef<Operation *> members) {
  KernelWriter w(kernelOp, stem);
  if (failed(writeElementLoops(w.os(), members, kernelValueNames(w, kernelOp))))
    return failure();
  return w.finish(elementLoopGrid(members), {256, 1, 1}, /*usesBarriers=*/false);
}

} // namespace moec::codegen
