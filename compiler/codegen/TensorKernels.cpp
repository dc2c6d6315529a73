//===- TensorKernels.cpp - kernels of the upstream tensor ops moec uses ---===//
//
// tensor.concat and tensor.extract_slice along dimension 0 (the gradients
// of concatenations): contiguous copies. Reshapes are views and run no code.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

namespace moec::codegen {
namespace {

struct ConcatKernel : CudaKernelOpInterface::ExternalModel<ConcatKernel, tensor::ConcatOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto concat = cast<tensor::ConcatOp>(op);
    if (concat.getDim() != 0)
      return op->emitOpError("the cuda target concatenates along dimension 0 only");
    KernelWriter w(op, "concat");
    int64_t offset = 0, largest = 1;
    for (auto [k, input] : llvm::enumerate(op->getOperands())) {
      int64_t n = numElements(input);
      w.os() << forEachElement(n) << "    out0[" << offset << "LL + i] = in" << k << "[i];\n";
      offset += n;
      largest = std::max(largest, n);
    }
    return w.finish({blocksFor(largest, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

struct ExtractSliceKernel
    : CudaKernelOpInterface::ExternalModel<ExtractSliceKernel, tensor::ExtractSliceOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto slice = cast<tensor::ExtractSliceOp>(op);
    auto source = slice.getSourceType();
    auto result = slice.getResultType();
    ArrayRef<int64_t> offsets = slice.getStaticOffsets(), strides = slice.getStaticStrides();
    bool rowsOnly = result.getRank() == source.getRank() &&
                    llvm::all_of(strides, [](int64_t s) { return s == 1; });
    for (int64_t d = 1; rowsOnly && d < source.getRank(); ++d)
      rowsOnly = offsets[d] == 0 && result.getDimSize(d) == source.getDimSize(d);
    if (!rowsOnly || ShapedType::isDynamic(offsets[0]))
      return op->emitOpError("the cuda target extracts static slices along dimension 0 only");
    int64_t n = result.getNumElements();
    int64_t rowElements = source.getDimSize(0) ? source.getNumElements() / source.getDimSize(0) : 0;
    KernelWriter w(op, "extract_slice");
    w.os() << forEachElement(n) << "    out0[i] = in0[" << offsets[0] * rowElements
           << "LL + i];\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

void attachTensorKernels(MLIRContext *context) {
  tensor::ConcatOp::attachInterface<ConcatKernel>(*context);
  tensor::ExtractSliceOp::attachInterface<ExtractSliceKernel>(*context);
}

} // namespace moec::codegen
