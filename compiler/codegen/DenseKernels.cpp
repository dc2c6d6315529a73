//===- DenseKernels.cpp - kernels of the dense transformer ops -----------===//
//
// moe.embedding (a gather of table rows), moe.rope and moe.rope_grad (one
// thread per rotated pair, angles in f32 as transformers computes them; a
// moe.fused rope group one thread per position and pair for all its heads),
// moe.reduce_rows.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DenseCode.h"
#include "compiler/codegen/ElementwiseCode.h"
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

/// How moe.rope (or, `inverse`, moe.rope_grad) rotates: the angles of
/// position p and pair i, the pairs (i, i + D/2), or (2i, 2i + 1) when
/// `interleaved`.
struct Rotation {
  double theta;
  std::optional<ArrayRef<float>> inverseFrequencies;
  double attentionFactor;
  bool interleaved, inverse;
};

Rotation rotationOf(Operation *op) {
  if (auto rope = dyn_cast<RoPEOp>(op))
    return {rope.getThetaAttr().getValueAsDouble(), rope.getInvFreq(),
            rope.getAttentionFactorAttr().getValueAsDouble(), rope.getInterleaved(), false};
  auto grad = cast<RoPEGradOp>(op);
  return {grad.getThetaAttr().getValueAsDouble(), grad.getInvFreq(),
          grad.getAttentionFactorAttr().getValueAsDouble(), grad.getInterleaved(), true};
}

/// Statements giving `c` and `sn`, the cosine and sine of position `p`'s
/// angle for pair `i` (variables of the kernel), in f32 as transformers
/// computes them.
void writeAngle(raw_ostream &os, const Rotation &r, int64_t D) {
  int64_t half = D / 2;
  if (r.inverseFrequencies) {
    // Scaled RoPE: the frontend's table, one frequency per pair.
    os << "    const float frequencies[" << half << "] = {";
    for (int64_t i = 0; i < half; ++i)
      os << (i ? ", " : "") << floatLiteral((*r.inverseFrequencies)[i]);
    os << "};\n    float invFreq = frequencies[i];\n";
  } else {
    os << "    float invFreq = 1.0f / powf(" << floatLiteral(r.theta) << ", (float)(2 * i) / " << D
       << ".0f);\n";
  }
  os << "    float angle = (float)p * invFreq, c = cosf(angle) * "
     << floatLiteral(r.attentionFactor) << ", sn = sinf(angle) * "
     << floatLiteral(r.attentionFactor) << ";\n";
}

/// Statements rotating pair `i` of the row at element `base` of `in` into
/// `out` by `c` and `sn`.
void writeRotate(raw_ostream &os, const Rotation &r, int64_t D, StringRef base, StringRef in,
                 StringRef out, StringRef indent = "    ") {
  if (r.interleaved)
    os << indent << "long long first = " << base << " + 2 * i, second = first + 1;\n";
  else
    os << indent << "long long first = " << base << " + i, second = first + " << D / 2 << "LL;\n";
  os << indent << "float x1 = " << in << "[first], x2 = " << in << "[second];\n";
  if (r.inverse)
    os << indent << out << "[first] = x1 * c + x2 * sn;\n"
       << indent << out << "[second] = -x1 * sn + x2 * c;\n";
  else
    os << indent << out << "[first] = x1 * c - x2 * sn;\n"
       << indent << out << "[second] = x2 * c + x1 * sn;\n";
}

/// The rotation of each pair of [B, S, H, D] by `r`, one thread per pair.
FailureOr<CudaKernel> rotation(Operation *op, StringRef stem) {
  Rotation r = rotationOf(op);
  auto type = cast<RankedTensorType>(op->getOperand(0).getType());
  int64_t S = type.getDimSize(1), H = type.getDimSize(2), D = type.getDimSize(3);
  int64_t half = D / 2, pairs = type.getNumElements() / 2;
  KernelWriter w(op, stem);
  w.os() << forEachElement(pairs, "idx") << "  {\n"
         << "    long long i = idx % " << half << "LL, row = idx / " << half << "LL;\n"
         << "    long long p = row / " << H << "LL % " << S << "LL;\n";
  writeAngle(w.os(), r, D);
  writeRotate(w.os(), r, D, "row * " + std::to_string(D) + "LL", "in0", "out0");
  w.os() << "  }\n";
  return w.finish({blocksFor(pairs, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
}

struct RoPEKernel : CudaKernelOpInterface::ExternalModel<RoPEKernel, RoPEOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const { return rotation(op, "rope"); }
};

struct RoPEGradKernel : CudaKernelOpInterface::ExternalModel<RoPEGradKernel, RoPEGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const { return rotation(op, "rope_grad"); }
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

FailureOr<CudaKernel> fusedRoPEKernel(Operation *op) {
  auto fused = cast<FusedOp>(op);
  SmallVector<Operation *> members;
  for (Operation &member : fused.getMembers()) {
    if (!isa<RoPEOp, RoPEGradOp>(member))
      return member.emitOpError("has no code in a RoPE kernel");
    members.push_back(&member);
  }
  Rotation r = rotationOf(members.front());
  auto type = cast<RankedTensorType>(members.front()->getOperand(0).getType());
  int64_t B = type.getDimSize(0), S = type.getDimSize(1), D = type.getDimSize(3);
  int64_t half = D / 2, positions = B * S * half;
  KernelWriter w(op, "fused_rope");
  llvm::DenseMap<Value, std::string> names = kernelValueNames(w, op);
  // A thread per position and pair: the angle once, then that pair in
  // every head of every member.
  w.os() << forEachElement(positions, "idx") << "  {\n"
         << "    long long i = idx % " << half << "LL, bs = idx / " << half << "LL;\n"
         << "    long long p = bs % " << S << "LL;\n";
  writeAngle(w.os(), r, D);
  for (Operation *member : members) {
    FailureOr<SmallVector<std::string>> value = memberValueNames(member, names);
    if (failed(value))
      return failure();
    int64_t H = cast<RankedTensorType>(member->getOperand(0).getType()).getDimSize(2);
    w.os() << "    for (long long h = 0; h < " << H << "LL; ++h) {\n";
    writeRotate(w.os(), r, D,
                "(bs * " + std::to_string(H) + "LL + h) * " + std::to_string(D) + "LL", (*value)[0],
                (*value)[1], "      ");
    w.os() << "    }\n";
  }
  w.os() << "  }\n";
  return w.finish({blocksFor(positions, 256), 1, 1}, {256, 1, 1}, /*usesBarriers=*/false);
}

void attachDenseKernels(MLIRContext *context) {
  EmbeddingOp::attachInterface<EmbeddingKernel>(*context);
  RoPEOp::attachInterface<RoPEKernel>(*context);
  RoPEGradOp::attachInterface<RoPEGradKernel>(*context);
  ReduceRowsOp::attachInterface<ReduceRowsKernel>(*context);
}

} // namespace moec::codegen
