//===- ElementwiseCode.cpp - kernels of one thread per element ------------===//
#include "compiler/codegen/ElementwiseCode.h"

#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"

#include "dialects/moe/IR/MoEOps.h"

#include "llvm/ADT/DenseMap.h"

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

FailureOr<CudaKernel> elementLoopKernel(Operation *kernelOp, StringRef stem,
                                        ArrayRef<Operation *> members) {
  KernelWriter w(kernelOp, stem);
  // The kernel parameter behind each value a member reads or writes.
  llvm::DenseMap<Value, std::string> name;
  if (auto fused = dyn_cast<moe::FusedOp>(kernelOp)) {
    for (auto [input, argument] : llvm::zip(fused.getInputs(), fused.getBody()->getArguments()))
      name[argument] = w.name(input);
    for (auto [value, result] :
         llvm::zip(fused.getBody()->getTerminator()->getOperands(), fused.getResults()))
      name.try_emplace(value, w.name(result));
  } else {
    for (Value value : kernelOp->getOperands())
      name[value] = w.name(value);
    for (Value value : kernelOp->getResults())
      name[value] = w.name(value);
  }
  int64_t widest = 0;
  for (auto [j, member] : llvm::enumerate(members)) {
    auto loop = dyn_cast<ElementLoopKernelOpInterface>(member);
    if (!loop)
      return member->emitOpError("has no element loop: it cannot be in an optimizer kernel");
    SmallVector<std::string> names;
    SmallVector<Value> values(member->getOperands());
    llvm::append_range(values, member->getResults());
    for (Value value : values) {
      auto it = name.find(value);
      if (it == name.end())
        return member->emitOpError("writes a value the kernel does not return");
      names.push_back(it->second);
    }
    int64_t n = numElements(member->getOperand(0));
    widest = std::max(widest, n);
    w.os() << "  if (blockIdx.y == " << j << ") {\n";
    loop.writeSetup(w.os(), names);
    w.os() << "  " << forEachElement(n) << "    {\n";
    loop.writeElement(w.os(), names);
    w.os() << "    }\n"
           << "  }\n";
  }
  return w.finish({blocksFor(widest, 256), static_cast<unsigned>(members.size()), 1}, {256, 1, 1},
                  /*usesBarriers=*/false);
}

} // namespace moec::codegen
