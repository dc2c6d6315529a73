//===- NormKernels.cpp - kernels of normalisations ------------------------===//
//
// One block per row; the row's sum of squares is a block reduction in a
// fixed order: moe.rms_norm.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/NormCode.h"
#include "compiler/codegen/OpKernelModels.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {

/// The rows of an RMS norm, one block per row, `threads` threads: each
/// pass over a row runs its code (`firstPass`, `secondPass`) for element i
/// of row r, which defines `const float x`; the first sums x², the second
/// writes out[r, i] = weight[i] · (x / rms).
std::array<unsigned, 3> writeRmsNormRows(KernelWriter &w, int64_t rows, int64_t D, unsigned threads,
                                         double eps, StringRef firstPass, StringRef secondPass,
                                         StringRef weight, StringRef out) {
  std::string row = "r * " + std::to_string(D) + "LL";
  w.os() << "  __shared__ float scratch[" << threads << "];\n"
         << "  for (long long r = blockIdx.x; r < " << rows << "LL; r += gridDim.x) {\n"
         << "    float sum = 0.0f;\n"
         << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x) {\n"
         << firstPass << "      sum += x * x;\n"
         << "    }\n"
         << "    sum = moec_block_sum(sum, scratch);\n"
         << "    float scale = 1.0f / sqrtf(sum / " << D << ".0f + " << floatLiteral(eps) << ");\n"
         << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x) {\n"
         << secondPass << "      " << out << "[" << row << " + i] = " << weight
         << "[i] * (x * scale);\n"
         << "    }\n"
         << "  }\n";
  return {static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1};
}

unsigned rmsNormThreads(int64_t D) { return std::min(threadsFor(D), 256u); }

struct RMSNormKernel : CudaKernelOpInterface::ExternalModel<RMSNormKernel, RMSNormOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto norm = cast<RMSNormOp>(op);
    auto type = cast<RankedTensorType>(norm.getInput().getType());
    int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
    unsigned threads = rmsNormThreads(D);
    KernelWriter w(op, "rms_norm");
    std::string load = "      const float x = in0[r * " + std::to_string(D) + "LL + i];\n";
    auto grid = writeRmsNormRows(w, rows, D, threads, norm.getEpsAttr().getValueAsDouble(), load,
                                 load, "in1", "out0");
    return w.finish(grid, {threads, 1, 1}, /*usesBarriers=*/true);
  }
};

/// moe.rms_norm_grad's code over `rows` rows of D, reading x, the weight
/// and dy (parameter names): one block per row computes each dx element,
/// which `storeDx` (given the element's index) stores, and keeps the row's
/// 1/rms in the workspace; then the column sums of the rows' dw terms into
/// `dw` (none when it is ""), sliced by rows (writeColumnSums:
/// deterministic, no atomics).
void writeRmsNormGrad(KernelWriter &w, int64_t rows, int64_t D, double eps, const std::string &x,
                      const std::string &weight, const std::string &dy,
                      llvm::function_ref<std::string(const std::string &index)> storeDx,
                      const std::string &dw) {
  unsigned threads = std::min(threadsFor(D), 256u);
  w.setWorkspace(rows * sizeof(float));
  w.beginEntry("rows", {static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 1},
               {threads, 1, 1}, /*usesBarriers=*/true);
  w.os() << "  __shared__ float scratch[" << threads << "];\n"
         << "  float *inverseRms = (float *)workspace;\n"
         << "  for (long long r = blockIdx.x; r < " << rows << "LL; r += gridDim.x) {\n"
         << "    const float *x = " << x << " + r * " << D << "LL, *g = " << dy << " + r * " << D
         << "LL;\n"
         << "    float sum = 0.0f, dot = 0.0f;\n"
         << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x) {\n"
         << "      sum += x[i] * x[i];\n"
         << "      dot += " << weight << "[i] * g[i] * x[i];\n"
         << "    }\n"
         << "    sum = moec_block_sum(sum, scratch);\n"
         << "    dot = moec_block_sum(dot, scratch);\n"
         << "    float rs = 1.0f / sqrtf(sum / " << D << ".0f + " << floatLiteral(eps) << ");\n"
         << "    float coefficient = dot * rs * rs * rs / " << D << ".0f;\n"
         << "    for (int i = threadIdx.x; i < " << D << "; i += blockDim.x) {\n"
         << "      const float dx = rs * " << weight << "[i] * g[i] - x[i] * coefficient;\n"
         << storeDx("r * " + std::to_string(D) + "LL + i") << "    }\n"
         << "    if (threadIdx.x == 0)\n"
         << "      inverseRms[r] = rs;\n"
         << "  }\n";
  if (dw.empty()) // a weight without a gradient (frozen)
    return;
  std::string at = "[r * " + std::to_string(D) + "LL + j]";
  writeColumnSums(w, "weight", rows, D, "  const float *inverseRms = (const float *)workspace;\n",
                  {{dy + at + " * " + x + at + " * inverseRms[r]", dw}});
}

struct RMSNormGradKernel : CudaKernelOpInterface::ExternalModel<RMSNormGradKernel, RMSNormGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto grad = cast<RMSNormGradOp>(op);
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
    KernelWriter w(op, "rms_norm_grad");
    // in: x, w, dy; out: dx, dw.
    writeRmsNormGrad(
        w, rows, D, grad.getEpsAttr().getValueAsDouble(), "in0", "in1", "in2",
        [](const std::string &index) { return "      out0[" + index + "] = dx;\n"; }, "out1");
    return w.finish();
  }
};
/// One thread per row, as the CPU kernel (sequential f32 sums).
struct LayerNormKernel : CudaKernelOpInterface::ExternalModel<LayerNormKernel, LayerNormOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
    bool bias = op->getNumOperands() > 2;
    KernelWriter w(op, "layer_norm");
    w.helpers() << kLayerNormHelper;
    w.os() << forEachElement(rows, "r") << "  {\n"
           << "    const float *x = in0 + r * " << D << "LL;\n"
           << "    float *y = out0 + r * " << D << "LL;\n"
           << "    float mean;\n"
           << "    float scale = moec_inverse_std(x, " << D << ", "
           << floatLiteral(floatAttr(op, "eps")) << ", &mean);\n"
           << "    for (int i = 0; i < " << D << "; ++i)\n"
           << "      y[i] = (x[i] - mean) * scale * in1[i] + " << (bias ? "in2[i]" : "0.0f")
           << ";\n"
           << "  }\n";
    return w.finish({blocksFor(rows, 128), 1, 1}, {128, 1, 1}, /*usesBarriers=*/false);
  }
};

/// dx per row (one thread per row), then dw and db as column sums sliced
/// by rows (writeColumnSums).
struct LayerNormGradKernel
    : CudaKernelOpInterface::ExternalModel<LayerNormGradKernel, LayerNormGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
    KernelWriter w(op, "layer_norm_grad");
    w.helpers() << kLayerNormHelper;
    w.setWorkspace(2 * rows * sizeof(float)); // mean and 1/std per row
    std::string stats = "  float *mean = (float *)workspace, *inverseStd = mean + " +
                        std::to_string(rows) + ";\n";
    // in: x, w, dy; out: dx, dw, db.
    w.beginEntry("rows", {blocksFor(rows, 128), 1, 1}, {128, 1, 1}, false);
    w.os() << stats << forEachElement(rows, "r") << "  {\n"
           << "    const float *x = in0 + r * " << D << "LL, *g = in2 + r * " << D << "LL;\n"
           << "    float m;\n"
           << "    float rs = moec_inverse_std(x, " << D << ", "
           << floatLiteral(floatAttr(op, "eps")) << ", &m);\n"
           << "    float sumG = 0.0f, sumGX = 0.0f;\n"
           << "    for (int i = 0; i < " << D << "; ++i) {\n"
           << "      float xhat = (x[i] - m) * rs, gw = g[i] * in1[i];\n"
           << "      sumG += gw;\n"
           << "      sumGX += gw * xhat;\n"
           << "    }\n"
           << "    for (int i = 0; i < " << D << "; ++i) {\n"
           << "      float xhat = (x[i] - m) * rs;\n"
           << "      out0[r * " << D << "LL + i] = rs * (g[i] * in1[i] - sumG / " << D
           << " - xhat * sumGX / " << D << ");\n"
           << "    }\n"
           << "    mean[r] = m;\n"
           << "    inverseStd[r] = rs;\n"
           << "  }\n";
    std::string at = "[r * " + std::to_string(D) + "LL + j]";
    writeColumnSums(w, "weight", rows, D, stats,
                    {{"in2" + at + " * ((in0" + at + " - mean[r]) * inverseStd[r])", "out1"},
                     {"in2" + at, "out2"}});
    return w.finish();
  }
};

/// The router input transforms, one thread per token, as the CPU kernel.
struct RouterInputTransformKernel
    : CudaKernelOpInterface::ExternalModel<RouterInputTransformKernel, RouterInputTransformOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    InputTransform kind = cast<RouterInputTransformOp>(op).getKind();
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t T = type.getDimSize(0), d = type.getDimSize(1);
    std::string eps = floatLiteral(floatAttr(op, "eps")), D = std::to_string(d);
    KernelWriter w(op, ("router_input_transform_" + stringifyInputTransform(kind)).str());
    if (kind == InputTransform::layernorm)
      w.helpers() << kLayerNormHelper;
    w.os() << forEachElement(T, "t") << "  {\n"
           << "    const float *x = in0 + t * " << d << "LL;\n"
           << "    float *y = out0 + t * " << d << "LL;\n";
    switch (kind) {
    case InputTransform::l2norm:
      w.os() << "    float norm = 0.0f;\n"
             << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      norm += x[i] * x[i];\n"
             << "    float inv = 1.0f / fmaxf(sqrtf(norm), " << eps << ");\n"
             << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      y[i] = x[i] * inv;\n";
      break;
    case InputTransform::layernorm:
      w.os() << "    float mean;\n"
             << "    float inv = moec_inverse_std(x, " << D << ", " << eps << ", &mean);\n"
             << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      y[i] = (x[i] - mean) * inv;\n";
      break;
    case InputTransform::tanh:
      w.os() << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      y[i] = tanhf(x[i]);\n";
      break;
    case InputTransform::none:
      w.os() << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      y[i] = x[i];\n";
      break;
    }
    w.os() << "  }\n";
    return w.finish({blocksFor(T, 128), 1, 1}, {128, 1, 1}, /*usesBarriers=*/false);
  }
};

struct RouterInputTransformGradKernel
    : CudaKernelOpInterface::ExternalModel<RouterInputTransformGradKernel,
                                           RouterInputTransformGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    InputTransform kind = cast<RouterInputTransformGradOp>(op).getKind();
    auto type = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t T = type.getDimSize(0), d = type.getDimSize(1);
    std::string eps = floatLiteral(floatAttr(op, "eps")), D = std::to_string(d);
    KernelWriter w(op, ("router_input_transform_grad_" + stringifyInputTransform(kind)).str());
    if (kind == InputTransform::layernorm)
      w.helpers() << kLayerNormHelper;
    // in: x, dy.
    w.os() << forEachElement(T, "t") << "  {\n"
           << "    const float *x = in0 + t * " << d << "LL, *g = in1 + t * " << d << "LL;\n"
           << "    float *out = out0 + t * " << d << "LL;\n";
    switch (kind) {
    case InputTransform::l2norm:
      w.os() << "    float norm = 0.0f;\n"
             << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      norm += x[i] * x[i];\n"
             << "    norm = sqrtf(norm);\n"
             << "    if (norm <= " << eps << ") {\n"
             << "      for (int i = 0; i < " << D << "; ++i)\n"
             << "        out[i] = g[i] / " << eps << ";\n"
             << "    } else {\n"
             << "      float dot = 0.0f;\n"
             << "      for (int i = 0; i < " << D << "; ++i)\n"
             << "        dot += g[i] * x[i];\n"
             << "      for (int i = 0; i < " << D << "; ++i)\n"
             << "        out[i] = g[i] / norm - x[i] * dot / (norm * norm * norm);\n"
             << "    }\n";
      break;
    case InputTransform::layernorm:
      w.os() << "    float mean;\n"
             << "    float rs = moec_inverse_std(x, " << D << ", " << eps
             << ", &mean), sumG = 0.0f, sumGX = 0.0f;\n"
             << "    for (int i = 0; i < " << D << "; ++i) {\n"
             << "      sumG += g[i];\n"
             << "      sumGX += g[i] * (x[i] - mean) * rs;\n"
             << "    }\n"
             << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      out[i] = rs * (g[i] - sumG / " << D << " - (x[i] - mean) * rs * sumGX / "
             << D << ");\n";
      break;
    case InputTransform::tanh:
      w.os() << "    for (int i = 0; i < " << D << "; ++i) {\n"
             << "      float th = tanhf(x[i]);\n"
             << "      out[i] = g[i] * (1.0f - th * th);\n"
             << "    }\n";
      break;
    case InputTransform::none:
      w.os() << "    for (int i = 0; i < " << D << "; ++i)\n"
             << "      out[i] = g[i];\n";
      break;
    }
    w.os() << "  }\n";
    return w.finish({blocksFor(T, 128), 1, 1}, {128, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

namespace {

/// A backward norm group: moe.rms_norm_grad and the elementwise op reading
/// its dx (the residual gradient's sum), whose element the rows pass
/// computes from each dx as it is made; dx itself is never stored.
FailureOr<CudaKernel> fusedNormGradKernel(FusedOp fused, RMSNormGradOp grad,
                                          ElementKernelOpInterface consumer) {
  Operation *op = fused;
  KernelWriter w(op, "fused_rms_norm_grad");
  // The kernel parameter behind a value of the body (an input or a yielded
  // value), or "" for one that stays inside.
  auto nameOf = [&](Value value) -> std::string {
    Value outer = value ? fused.getOuterValue(value) : Value();
    return outer ? w.name(outer) : "";
  };
  auto type = cast<RankedTensorType>(grad.getDresult().getType());
  int64_t D = type.getShape().back(), rows = type.getNumElements() / D;
  Value dx = grad.getResult(0);
  std::string out = nameOf(consumer->getResult(0)), dw = nameOf(grad.getResult(1));
  if (!nameOf(dx).empty() || out.empty())
    return op->emitOpError("has a norm gradient group whose dx is read outside it, or whose "
                           "sum is not a result");
  // The consumer's operands: dx as computed, the others loaded (f32 or
  // bf16, as its own kernel loads them).
  SmallVector<std::string> operands;
  std::string loads;
  for (auto [j, operand] : llvm::enumerate(consumer->getOperands())) {
    if (operand == dx) {
      operands.push_back("dx");
      continue;
    }
    if (numElements(operand) != rows * D || !isa<BlockArgument>(operand))
      return consumer->emitOpError("reads an operand of other than ")
             << rows * D << " elements: it cannot be in a norm gradient kernel";
    w.acceptBf16(fused.getInputs()[cast<BlockArgument>(operand).getArgNumber()]);
    operands.push_back("a" + std::to_string(j));
    loads += "      const float a" + std::to_string(j) + " = moec_load(" + nameOf(operand) +
             " + @INDEX@);\n";
  }
  w.acceptBf16(fused.getOuterValue(consumer->getResult(0)));
  std::string expression = consumer.elementExpression(w, operands);
  writeRmsNormGrad(
      w, rows, D, grad.getEpsAttr().getValueAsDouble(), nameOf(grad.getInput()),
      nameOf(grad.getWeight()), nameOf(grad.getDresult()),
      [&](const std::string &index) {
        std::string code = loads;
        for (size_t at = code.find("@INDEX@"); at != std::string::npos;
             at = code.find("@INDEX@", at))
          code.replace(at, 7, index);
        return code + "      moec_store(" + out + " + " + index + ", " + expression + ");\n";
      },
      dw);
  return w.finish();
}

} // namespace

FailureOr<CudaKernel> fusedNormKernel(Operation *op) {
  auto fused = cast<FusedOp>(op);
  SmallVector<Operation *> members;
  for (Operation &member : fused.getMembers())
    members.push_back(&member);
  if (members.size() == 2)
    if (auto grad = dyn_cast<RMSNormGradOp>(members[0]))
      if (auto consumer = dyn_cast<ElementKernelOpInterface>(members[1]))
        return fusedNormGradKernel(fused, grad, consumer);
  auto producer = members.size() == 2 ? dyn_cast<ElementKernelOpInterface>(members[0])
                                      : ElementKernelOpInterface();
  auto norm = members.size() == 2 ? dyn_cast<RMSNormOp>(members[1]) : RMSNormOp();
  if (!producer || !norm || norm.getInput() != members[0]->getResult(0) ||
      llvm::any_of(members[0]->getOperands(), [](Value v) { return !isa<BlockArgument>(v); }))
    return op->emitOpError("has no kernel for a norm group other than an elementwise op on the "
                           "group's inputs and the moe.rms_norm of its result");
  auto type = cast<RankedTensorType>(norm.getInput().getType());
  int64_t D = type.getShape().back(), rows = type.getNumElements() / D, n = rows * D;
  KernelWriter w(op, "fused_residual_norm");
  // The kernel parameter behind a value of the body (an input or a yielded
  // value), or "" for one that stays inside.
  auto nameOf = [&](Value value) -> std::string {
    Value outer = value ? fused.getOuterValue(value) : Value();
    return outer ? w.name(outer) : "";
  };
  std::string row = "r * " + std::to_string(D) + "LL + i";
  // Element i of row r of the producer: its operands through moec_load (f32
  // or bf16, as its own kernel), then its expression.
  std::string loads;
  SmallVector<std::string> operands;
  for (auto [j, operand] : llvm::enumerate(members[0]->getOperands())) {
    if (numElements(operand) != n)
      return members[0]->emitOpError("reads an operand of other than ")
             << n << " elements: it cannot be in a norm kernel";
    w.acceptBf16(fused.getInputs()[cast<BlockArgument>(operand).getArgNumber()]);
    operands.push_back("a" + std::to_string(j));
    loads += "      const float a" + std::to_string(j) + " = moec_load(" + nameOf(operand) + " + " +
             row + ");\n";
  }
  std::string compute =
      loads + "      const float x = " + producer.elementExpression(w, operands) + ";\n";
  // The residual sum read after the group is stored by the first pass and
  // read back by the second; otherwise the second computes it again.
  std::string stored = nameOf(norm.getInput()), first = compute, second = compute;
  if (!stored.empty()) {
    w.acceptBf16(fused.getResult(0));
    first += "      moec_store(" + stored + " + " + row + ", x);\n";
    second = "      const float x = moec_load(" + stored + " + " + row + ");\n";
  }
  std::string weight = nameOf(norm.getWeight()), out = nameOf(norm.getResult());
  if (weight.empty() || out.empty())
    return op->emitOpError("has a norm group whose norm weight is not an input or whose "
                           "normalized rows are not a result");
  unsigned threads = rmsNormThreads(D);
  auto grid = writeRmsNormRows(w, rows, D, threads, norm.getEpsAttr().getValueAsDouble(), first,
                               second, weight, out);
  return w.finish(grid, {threads, 1, 1}, /*usesBarriers=*/true);
}

void attachNormKernels(MLIRContext *context) {
  RMSNormOp::attachInterface<RMSNormKernel>(*context);
  RMSNormGradOp::attachInterface<RMSNormGradKernel>(*context);
  LayerNormOp::attachInterface<LayerNormKernel>(*context);
  LayerNormGradOp::attachInterface<LayerNormGradKernel>(*context);
  RouterInputTransformOp::attachInterface<RouterInputTransformKernel>(*context);
  RouterInputTransformGradOp::attachInterface<RouterInputTransformGradKernel>(*context);
}

} // namespace moec::codegen
