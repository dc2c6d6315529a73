//===- DenseKernels.cpp - kernels of the dense transformer ops -----------===//
//
// moe.embedding (a gather of table rows), moe.rope and moe.rope_grad (one
// thread per rotated pair, angles in f32 as transformers computes them),
// moe.reduce_rows.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

struct EmbeddingKernel : CudaKernelOpInterface::ExternalModel<EmbeddingKernel, EmbeddingOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto table = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t vocab = table.getDimSize(0), d = table.getDimSize(1);
    int64_t n = numElements(op->getResult(0));
    KernelWriter w(op, "embedding");
    // Token ids were checked against the vocabulary when the data was read;
    // an id outside it reads zeros rather than memory outside the table.
    w.os() << forEachElement(n) << "  {\n"
           << "    long long t = i / " << d << "LL, j = i % " << d << "LL;\n"
           << "    int id = in1[t];\n"
           << "    out0[i] = id >= 0 && id < " << vocab << " ? in0[(long long)id * " << d
           << "LL + j] : 0.0f;\n"
           << "  }\n";
    return w.finish({blocksFor(n, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
  }
};

/// The rotation of each (i, i + D/2) pair of [B, S, H, D] (each (2i, 2i + 1)
/// when `interleaved`) by position p's angles; `inverse` for the gradient.
FailureOr<CudaKernel> rotation(Operation *op, StringRef stem, double theta,
                               std::optional<ArrayRef<float>> inverseFrequencies,
                               double attentionFactor, bool interleaved, bool inverse) {
  auto type = cast<RankedTensorType>(op->getOperand(0).getType());
  int64_t S = type.getDimSize(1), H = type.getDimSize(2), D = type.getDimSize(3);
  int64_t half = D / 2, pairs = type.getNumElements() / 2;
  KernelWriter w(op, stem);
  w.os() << forEachElement(pairs, "idx") << "  {\n"
         << "    long long i = idx % " << half << "LL, row = idx / " << half << "LL;\n"
         << "    long long p = row / " << H << "LL % " << S << "LL;\n";
  if (inverseFrequencies) {
    // Scaled RoPE: the frontend's table, one frequency per pair.
    w.os() << "    const float frequencies[" << half << "] = {";
    for (int64_t i = 0; i < half; ++i)
      w.os() << (i ? ", " : "") << floatLiteral((*inverseFrequencies)[i]);
    w.os() << "};\n    float invFreq = frequencies[i];\n";
  } else {
    w.os() << "    float invFreq = 1.0f / powf(" << floatLiteral(theta) << ", (float)(2 * i) / "
           << D << ".0f);\n";
  }
  w.os() << "    float angle = (float)p * invFreq, c = cosf(angle) * "
         << floatLiteral(attentionFactor) << ", sn = sinf(angle) * "
         << floatLiteral(attentionFactor) << ";\n"
         << "    long long base = row * " << D << "LL;\n";
  if (interleaved)
    w.os() << "    long long first = base + 2 * i, second = first + 1;\n";
  else
    w.os() << "    long long first = base + i, second = first + " << half << "LL;\n";
  w.os() << "    float x1 = in0[first], x2 = in0[second];\n";
  if (inverse)
    w.os() << "    out0[first] = x1 * c + x2 * sn;\n"
           << "    out0[second] = -x1 * sn + x2 * c;\n";
  else
    w.os() << "    out0[first] = x1 * c - x2 * sn;\n"
           << "    out0[second] = x2 * c + x1 * sn;\n";
  w.os() << "  }\n";
  return w.finish({blocksFor(pairs, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
}

struct RoPEKernel : CudaKernelOpInterface::ExternalModel<RoPEKernel, RoPEOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto rope = cast<RoPEOp>(op);
    return rotation(op, "rope", rope.getThetaAttr().getValueAsDouble(), rope.getInvFreq(),
                    rope.getAttentionFactorAttr().getValueAsDouble(), rope.getInterleaved(),
                    /*inverse=*/false);
  }
};

struct RoPEGradKernel : CudaKernelOpInterface::ExternalModel<RoPEGradKernel, RoPEGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<RoPEGradOp>(op);
    return rotation(op, "rope_grad", grad.getThetaAttr().getValueAsDouble(), grad.getInvFreq(),
                    grad.getAttentionFactorAttr().getValueAsDouble(), grad.getInterleaved(),
                    /*inverse=*/true);
  }
};
/// Column sums over the rows (writeColumnSums: sliced by rows, in order).
struct ReduceRowsKernel : CudaKernelOpInterface::ExternalModel<ReduceRowsKernel, ReduceRowsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
    KernelWriter w(op, "reduce_rows");
    writeColumnSums(w, "columns", rows, D, "",
                    {{"in0[r * " + std::to_string(D) + "LL + j]", "out0"}});
    return w.finish();
  }
};
} // namespace

void attachDenseKernels(MLIRContext *context) {
  EmbeddingOp::attachInterface<EmbeddingKernel>(*context);
  RoPEOp::attachInterface<RoPEKernel>(*context);
  RoPEGradOp::attachInterface<RoPEGradKernel>(*context);
  ReduceRowsOp::attachInterface<ReduceRowsKernel>(*context);
}

} // namespace moec::codegen
