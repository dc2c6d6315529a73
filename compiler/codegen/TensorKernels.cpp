//===- TensorKernels.cpp - kernels of the shape ops -----------------------===//
//
// The upstream tensor ops moec uses — tensor.concat (any dimension),
// static unit-stride tensor.extract_slice and tensor.insert_slice — and
// moe.transpose and moe.broadcast with its gradient: a thread per element,
// the element's index decomposed against constant shapes. Reshapes are
// views and run no code.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;

namespace moec::codegen {
namespace {

/// Row-major strides of `shape`, in elements.
SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> strides(shape.size(), 1);
  for (int64_t d = int64_t(shape.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

/// Statements declaring `target` (long long): the element offset, in a
/// tensor of `strides`, of element `index` of a box of extents `box` placed
/// at `offsets` (each dimension's stride is 0 where `repeated[d]`: a
/// broadcast reads one element along it).
std::string boxOffset(StringRef target, StringRef index, ArrayRef<int64_t> box,
                      ArrayRef<int64_t> offsets, ArrayRef<int64_t> strides) {
  std::string code =
      "    long long " + target.str() + " = 0, " + target.str() + "_rest = " + index.str() + ";\n";
  for (int64_t d = int64_t(box.size()) - 1; d >= 0; --d) {
    std::string at = target.str() + "_rest % " + std::to_string(box[d]) + "LL";
    if (offsets[d])
      at = "(" + at + " + " + std::to_string(offsets[d]) + "LL)";
    if (strides[d])
      code += "    " + target.str() + " += " + at + " * " + std::to_string(strides[d]) + "LL;\n";
    if (d > 0)
      code += "    " + target.str() + "_rest /= " + std::to_string(box[d]) + "LL;\n";
  }
  return code;
}

RankedTensorType typeOf(Value value) { return cast<RankedTensorType>(value.getType()); }

/// Copies every element of `from` (operand `source`, the whole tensor) to
/// the box at `offsets` of the result, in the current entry.
void writeBoxCopy(KernelWriter &w, Operation *op, StringRef source, RankedTensorType from,
                  ArrayRef<int64_t> offsets) {
  w.os() << forEachElement(from.getNumElements()) << "  {\n"
         << boxOffset("to", "i", from.getShape(), offsets,
                      stridesOf(typeOf(op->getResult(0)).getShape()))
         << "    out0[to] = " << source << "[i];\n"
         << "  }\n";
}

struct ConcatKernel : CudaKernelOpInterface::ExternalModel<ConcatKernel, tensor::ConcatOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto concat = cast<tensor::ConcatOp>(op);
    int64_t dim = concat.getDim();
    KernelWriter w(op, "concat");
    SmallVector<int64_t> offsets(concat.getResultType().getRank(), 0);
    int64_t largest = 1;
    for (auto [k, input] : llvm::enumerate(op->getOperands())) {
      RankedTensorType type = typeOf(input);
      writeBoxCopy(w, op, "in" + std::to_string(k), type, offsets);
      offsets[dim] += type.getDimSize(dim);
      largest = std::max(largest, type.getNumElements());
    }
    return w.finish({blocksFor(largest, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

/// The static offsets of a unit-stride slice with no rank reduction.
template <typename SliceOp>
FailureOr<ArrayRef<int64_t>> staticBox(SliceOp slice, RankedTensorType whole,
                                       RankedTensorType box) {
  if (!slice.hasUnitStride() || !slice.getOffsets().empty() || box.getRank() != whole.getRank())
    return slice->emitOpError("the cuda target takes static unit-stride slices of full rank only");
  return slice.getStaticOffsets();
}

/// out0[i] = in0[from], `from` the offset of result element i's index at
/// `offsets` in a source of `strides`: a slice or a broadcast.
FailureOr<CudaKernel> writeGather(Operation *op, StringRef stem, ArrayRef<int64_t> offsets,
                                  ArrayRef<int64_t> strides) {
  RankedTensorType result = typeOf(op->getResult(0));
  int64_t n = result.getNumElements();
  KernelWriter w(op, stem);
  w.os() << forEachElement(n) << "  {\n"
         << boxOffset("from", "i", result.getShape(), offsets, strides)
         << "    out0[i] = in0[from];\n"
         << "  }\n";
  return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
}

struct ExtractSliceKernel
    : CudaKernelOpInterface::ExternalModel<ExtractSliceKernel, tensor::ExtractSliceOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto slice = cast<tensor::ExtractSliceOp>(op);
    FailureOr<ArrayRef<int64_t>> offsets =
        staticBox(slice, slice.getSourceType(), slice.getResultType());
    if (failed(offsets))
      return failure();
    return writeGather(op, "extract_slice", *offsets, stridesOf(slice.getSourceType().getShape()));
  }
};

/// The destination copied (entry dest), then the source in its box (entry
/// box).
struct InsertSliceKernel
    : CudaKernelOpInterface::ExternalModel<InsertSliceKernel, tensor::InsertSliceOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto insert = cast<tensor::InsertSliceOp>(op);
    RankedTensorType source = insert.getSourceType(), dest = insert.getDestType();
    FailureOr<ArrayRef<int64_t>> offsets = staticBox(insert, dest, source);
    if (failed(offsets))
      return failure();
    KernelWriter w(op, "insert_slice");
    int64_t n = dest.getNumElements();
    w.beginEntry("dest", {blocksFor(n, 256), 1, 1}, {256, 1, 1}, false);
    w.os() << forEachElement(n) << "    out0[i] = in1[i];\n";
    w.beginEntry("box", {blocksFor(source.getNumElements(), 256), 1, 1}, {256, 1, 1}, false);
    writeBoxCopy(w, op, "in0", source, *offsets);
    return w.finish();
  }
};

/// The strides of `input` within a broadcast to `result`: 0 along the
/// repeated dimensions.
SmallVector<int64_t> repeatStrides(RankedTensorType input, RankedTensorType result) {
  SmallVector<int64_t> strides = stridesOf(input.getShape());
  for (int64_t d = 0; d < input.getRank(); ++d)
    if (input.getDimSize(d) != result.getDimSize(d))
      strides[d] = 0;
  return strides;
}

struct BroadcastKernel : CudaKernelOpInterface::ExternalModel<BroadcastKernel, moe::BroadcastOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    RankedTensorType input = typeOf(op->getOperand(0)), result = typeOf(op->getResult(0));
    SmallVector<int64_t> zero(result.getRank(), 0);
    return writeGather(op, "broadcast", zero, repeatStrides(input, result));
  }
};

/// Result element i reads the input at its index permuted back: the
/// result's dimension d walks the input's dimension permutation[d].
struct TransposeKernel : CudaKernelOpInterface::ExternalModel<TransposeKernel, moe::TransposeOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto transpose = cast<moe::TransposeOp>(op);
    SmallVector<int64_t> inputStrides = stridesOf(typeOf(transpose.getInput()).getShape());
    SmallVector<int64_t> strides;
    for (int64_t p : transpose.getPermutation())
      strides.push_back(inputStrides[p]);
    SmallVector<int64_t> zero(strides.size(), 0);
    return writeGather(op, "transpose", zero, strides);
  }
};

/// A thread per input element sums its repeats in order (deterministic).
struct BroadcastGradKernel
    : CudaKernelOpInterface::ExternalModel<BroadcastGradKernel, moe::BroadcastGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    RankedTensorType dresult = typeOf(op->getOperand(0)), dinput = typeOf(op->getResult(0));
    SmallVector<int64_t> repeats, repeatStridesInResult, zero;
    SmallVector<int64_t> resultStrides = stridesOf(dresult.getShape());
    // The input element's place in the result (repeated dimensions at 0),
    // then its repeats over the repeated dimensions.
    SmallVector<int64_t> kept = resultStrides;
    int64_t count = 1;
    for (int64_t d = 0; d < dinput.getRank(); ++d) {
      if (dinput.getDimSize(d) == dresult.getDimSize(d))
        continue;
      kept[d] = 0;
      repeats.push_back(dresult.getDimSize(d));
      repeatStridesInResult.push_back(resultStrides[d]);
      zero.push_back(0);
      count *= dresult.getDimSize(d);
    }
    int64_t n = dinput.getNumElements();
    SmallVector<int64_t> none(dinput.getRank(), 0);
    KernelWriter w(op, "broadcast_grad");
    w.os() << forEachElement(n) << "  {\n"
           << boxOffset("base", "i", dinput.getShape(), none, kept) << "    float sum = 0.0f;\n"
           << "    for (long long r = 0; r < " << count << "LL; ++r) {\n"
           << boxOffset("at", "r", repeats, zero, repeatStridesInResult)
           << "      sum += in0[base + at];\n"
           << "    }\n"
           << "    out0[i] = sum;\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

void attachTensorKernels(MLIRContext *context) {
  tensor::ConcatOp::attachInterface<ConcatKernel>(*context);
  tensor::ExtractSliceOp::attachInterface<ExtractSliceKernel>(*context);
  tensor::InsertSliceOp::attachInterface<InsertSliceKernel>(*context);
}

void attachShapeKernels(MLIRContext *context) {
  moe::TransposeOp::attachInterface<TransposeKernel>(*context);
  moe::BroadcastOp::attachInterface<BroadcastKernel>(*context);
  moe::BroadcastGradOp::attachInterface<BroadcastGradKernel>(*context);
}

} // namespace moec::codegen
