//===- GemmKernels.cpp - the dense GEMM ops as tiled GEMMs ---------------===//
//
// moe.linear, moe.router_logits and moe.linear_grad as tiled GEMMs
// (TiledGemm.h) over one group of every row: deterministic, each output
// summed in index order, the bias added after the sum; or, when the target
// asks for them (moec --gemm=cublaslt), as library GEMMs.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/TiledGemm.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// All rows as one group.
RowGroups everyRow(int64_t rows) {
  RowGroups groups;
  groups.count = groups.capacity = rows;
  return groups;
}

/// C[m, n] = Σ_k A(m, k) B(k, n) over whole operands of the op, as a
/// library GEMM (cuBLASLt on a GPU, moec --gemm=cublaslt).
void libraryProduct(KernelWriter &k, StringRef label, int64_t m, int64_t n, int64_t depth,
                    Value a, int64_t lda, bool aTransposed, Value b, int64_t ldb,
                    bool bTransposed, Value c) {
  LibraryGemm gemm;
  gemm.m = m;
  gemm.n = n;
  gemm.k = depth;
  gemm.a = k.argumentIndex(a);
  gemm.b = k.argumentIndex(b);
  gemm.c = k.argumentIndex(c);
  gemm.lda = lda;
  gemm.ldb = ldb;
  gemm.ldc = n;
  gemm.aTransposed = aTransposed;
  gemm.bTransposed = bTransposed;
  gemm.bf16 = k.bf16Products();
  k.addLibraryGemm(label, gemm);
}

/// y[r, o] = Σ_k x[r, k] W[o, k] (+ b[o]) for x [rows, in], W [out, in].
FailureOr<CudaKernel> linearKernel(Operation *op, StringRef stem, Value x, Value weight,
                                   Value bias) {
  auto w = cast<RankedTensorType>(weight.getType());
  int64_t out = w.getDimSize(0), in = w.getDimSize(1), rows = numElements(x) / in;
  KernelWriter k(op, stem);
  if (k.libraryGemms())
    libraryProduct(k, "product", rows, out, in, x, in, false, weight, in, /*bTransposed=*/true,
                   op->getResult(0));
  else
    writeRowGroupedGemm(k, "product", everyRow(rows), out, in, {k.bf16Operand(x, k.name(x)), in},
                        {k.bf16Operand(weight, k.name(weight)), in, /*transposed=*/true},
                        {"out0", out});
  if (bias) {
    k.beginEntry("bias", {blocksFor(rows * out, 256), 1, 1}, {256, 1, 1}, false);
    k.os() << forEachElement(rows * out) << "    out0[i] += " << k.name(bias) << "[i % " << out
           << "LL];\n";
  }
  return k.finish();
}

struct LinearKernel : CudaKernelOpInterface::ExternalModel<LinearKernel, LinearOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto linear = cast<LinearOp>(op);
    return linearKernel(op, "linear", linear.getInput(), linear.getWeight(), linear.getBias());
  }
};

struct RouterLogitsKernel : CudaKernelOpInterface::ExternalModel<RouterLogitsKernel, RouterLogitsOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto logits = cast<RouterLogitsOp>(op);
    return linearKernel(op, "router_logits", logits.getInput(), logits.getWeight(), Value());
  }
};

/// dx = dy W, dW = dyᵀ x: two launches.
struct LinearGradKernel : CudaKernelOpInterface::ExternalModel<LinearGradKernel, LinearGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto w = cast<RankedTensorType>(op->getOperand(1).getType());
    int64_t out = w.getDimSize(0), in = w.getDimSize(1);
    int64_t rows = numElements(op->getOperand(0)) / in;
    KernelWriter k(op, "linear_grad");
    // in: x, W, dy; out: dx = dy W, dW = dyᵀ x.
    if (k.libraryGemms()) {
      Value x = op->getOperand(0), weight = op->getOperand(1), dy = op->getOperand(2);
      libraryProduct(k, "input", rows, in, out, dy, out, false, weight, in, false,
                     op->getResult(0));
      libraryProduct(k, "weight", out, in, rows, dy, out, /*aTransposed=*/true, x, in, false,
                     op->getResult(1));
      return k.finish();
    }
    // Operands as the bf16 tile reads them best (bf16 copies under bf16
    // products).
    std::string x = k.bf16Operand(op->getOperand(0), "in0");
    std::string weight = k.bf16Operand(op->getOperand(1), "in1");
    std::string dy = k.bf16Operand(op->getOperand(2), "in2");
    writeRowGroupedGemm(k, "input", everyRow(rows), in, out, {dy, out}, {weight, in}, {"out0", in});
    auto fromFirst = [](StringRef base, int64_t width) {
      return "(" + base.str() + " + first * " + std::to_string(width) + "LL)";
    };
    writeGroupReductionGemm(k, "weight", everyRow(rows), out, in, {fromFirst(dy, out), out},
                            {fromFirst(x, in), in}, {"out1", in});
    return k.finish();
  }
};
} // namespace

void attachGemmKernels(MLIRContext *context) {
  LinearOp::attachInterface<LinearKernel>(*context);
  RouterLogitsOp::attachInterface<RouterLogitsKernel>(*context);
  LinearGradOp::attachInterface<LinearGradKernel>(*context);
}

} // namespace moec::codegen
