//===- RouterVariantKernels.cpp - kernels of the other routing variants ---===//
//
// One thread per token (per expert for expert choice), as the CPU kernels
// compute them: group-limited top-k, expert prototyping, top-p, the
// entropy-driven hybrid, dense-to-sparse thresholds, expert choice and its
// gradient, and the selection-bias update.
//
//===----------------------------------------------------------------------===//
#include "compiler/codegen/CudaKernelInterface.h"
#include "compiler/codegen/DeviceHelpers.h"
#include "compiler/codegen/KernelWriter.h"
#include "compiler/codegen/OpKernelModels.h"
#include "compiler/codegen/TokenRowWriter.h"

#include "dialects/moe/IR/MoEOps.h"

using namespace mlir;
using namespace moec::moe;

namespace moec::codegen {
namespace {


const char *boolean(bool value) { return value ? "true" : "false"; }

/// How a selection op picks: statements that fill `picks` (of a row of
/// scores `row`) and set `count`, then the selection is written into
/// `slots` slots, renormalised and scaled as the CPU kernels do.
struct SelectionCode {
  std::string stem; // the kernel's name when the op runs alone
  int64_t slots;
  std::string pick;
  bool normalize;
  double normEps, scaling;
};

/// `count` = the smallest prefix of picks[0..maxK) whose scores sum to at
/// least p, clamped to [1, maxK] (nucleus in the CPU kernels).
std::string nucleus(StringRef p, int64_t maxK) {
  return "    {\n"
         "      float cumulative = 0.0f;\n"
         "      count = 0;\n"
         "      while (count < " + std::to_string(maxK) + ") {\n"
         "        cumulative += row[picks[count]];\n"
         "        ++count;\n"
         "        if (cumulative >= " + p.str() + ")\n"
         "          break;\n"
         "      }\n"
         "    }\n";
}

/// `bias`: the row of the selection bias (operand 1), when the op has one.
SelectionCode selectionCode(GroupTopKRouteOp route, const std::string &bias) {
  auto [T, E] = routerShape(route.getScores());
  int64_t k = route.getK(), G = route.getNumGroups(), keep = route.getTopkGroups(), size = E / G;
  std::string fill = route.getMaskFill() == MaskFill::zero ? "0.0f" : "-__int_as_float(0x7f800000)";
  std::string pick;
  llvm::raw_string_ostream os(pick);
  os << "    float choice[" << E << "], groupScores[" << G << "];\n"
     << "    for (int e = 0; e < " << E << "; ++e)\n"
     << "      choice[e] = row[e]" << (bias.empty() ? " + 0.0f" : " + " + bias + "[e]") << ";\n"
     << "    for (int g = 0; g < " << G << "; ++g) {\n"
     << "      const float *members = choice + g * " << size << ";\n";
  if (route.getGroupScore() == GroupScore::top2_sum)
    os << "      int best[2];\n"
       << "      moec_order_desc(members, " << size << ", 2, best);\n"
       << "      groupScores[g] = members[best[0]] + members[best[1]];\n";
  else
    os << "      float maximum = members[0];\n"
       << "      for (int m = 1; m < " << size << "; ++m)\n"
       << "        if (members[m] > maximum)\n"
       << "          maximum = members[m];\n"
       << "      groupScores[g] = maximum;\n";
  os << "    }\n"
     << "    int groups[" << keep << "];\n"
     << "    moec_order_desc(groupScores, " << G << ", " << keep << ", groups);\n"
     << "    for (int e = 0; e < " << E << "; ++e) {\n"
     << "      bool kept = false;\n"
     << "      for (int g = 0; g < " << keep << "; ++g)\n"
     << "        kept = kept || groups[g] == e / " << size << ";\n"
     << "      if (!kept)\n"
     << "        choice[e] = " << fill << ";\n"
     << "    }\n"
     << "    moec_order_desc(choice, " << E << ", " << k << ", picks);\n"
     << "    count = " << k << ";\n";
  return {"group_topk_route",
          k,
          pick,
          route.getNormalize(),
          route.getNormEps().convertToDouble(),
          route.getScaling().convertToDouble()};
}

SelectionCode selectionCode(PrototypeRouteOp op, const std::string &) {
  auto [T, E] = routerShape(op.getScores());
  int64_t P = intAttr(op, "num_prototypes"), size = E / P;
  std::string pick = "    for (int p = 0; p < " + std::to_string(P) +
                     "; ++p) {\n"
                     "      int best = p * " +
                     std::to_string(size) +
                     ";\n"
                     "      for (int e = best + 1; e < (p + 1) * " +
                     std::to_string(size) +
                     "; ++e)\n"
                     "        if (row[e] > row[best])\n"
                     "          best = e;\n"
                     "      picks[count++] = best;\n"
                     "    }\n";
  return {"prototype_route", P, pick, boolAttr(op, "normalize"), 0.0, 1.0};
}

SelectionCode selectionCode(TopPRouteOp op, const std::string &) {
  auto [T, E] = routerShape(op.getScores());
  int64_t maxK = intAttr(op, "max_k");
  std::string pick = "    moec_order_desc(row, " + std::to_string(E) + ", " + std::to_string(maxK) +
                     ", picks);\n" + nucleus(floatLiteral(floatAttr(op, "p")), maxK);
  return {"top_p_route", maxK, pick, boolAttr(op, "normalize"), 0.0, 1.0};
}

SelectionCode selectionCode(EntropyHybridRouteOp op, const std::string &) {
  auto [T, E] = routerShape(op.getScores());
  int64_t maxK = intAttr(op, "max_k"), k = intAttr(op, "k");
  float q = static_cast<float>(floatAttr(op, "q"));
  std::string e = std::to_string(E);
  // tsallis(): Shannon at q = 1, else (1 - Σ p^q) / (q - 1), in f64.
  std::string entropy = q == 1.0f ? "    double sum = 0.0;\n"
                                    "    for (int e = 0; e < " +
                                        e +
                                        "; ++e)\n"
                                        "      if (row[e] > 0.0f)\n"
                                        "        sum -= row[e] * logf(row[e]);\n"
                                        "    float entropy = (float)sum;\n"
                                  : "    double sum = 0.0;\n"
                                    "    for (int e = 0; e < " +
                                        e +
                                        "; ++e)\n"
                                        "      sum += pow((double)row[e], (double)" +
                                        floatLiteral(q) +
                                        ");\n"
                                        "    float entropy = (float)((1.0 - sum) / (" +
                                        floatLiteral(q) + " - 1.0));\n";
  std::string pick = entropy + "    moec_order_desc(row, " + e + ", " +
                     std::to_string(std::max(maxK, k)) + ", picks);\n" + "    if (entropy > " +
                     floatLiteral(floatAttr(op, "threshold")) + ")\n" +
                     nucleus(floatLiteral(floatAttr(op, "p")), maxK) + "    else\n" +
                     "      count = " + std::to_string(k) + ";\n";
  return {"entropy_hybrid_route", maxK, pick, boolAttr(op, "normalize"), 0.0, 1.0};
}

SelectionCode selectionCode(ThresholdRouteOp op, const std::string &) {
  auto [T, E] = routerShape(op.getScores());
  int64_t maxK = intAttr(op, "max_k");
  std::string pick = "    moec_order_desc(row, " + std::to_string(E) + ", " + std::to_string(maxK) +
                     ", picks);\n" + "    while (count < " + std::to_string(maxK) +
                     " && row[picks[count]] > " + floatLiteral(floatAttr(op, "threshold")) + ")\n" +
                     "      ++count;\n" + "    if (count < 1)\n" + "      count = 1;\n";
  return {"threshold_route", maxK, pick, /*normalize=*/true, 0.0, 1.0};
}

/// One token's selection: its picks, then the weights and indices.
template <typename OpT>
struct SelectionRows : TokenRowKernelOpInterface::ExternalModel<SelectionRows<OpT>, OpT> {
  LogicalResult writeTokenRow(Operation *op, TokenRowWriter &rows) const {
    std::string bias = op->getNumOperands() > 1 ? rows.row(op->getOperand(1)) : "";
    SelectionCode code = selectionCode(cast<OpT>(op), bias);
    rows.useHelper(kSelectionHelpers);
    rows.os() << "    const float *row = " << rows.row(op->getOperand(0)) << ";\n"
              << "    int picks[" << TokenRowWriter::width(op->getOperand(0)) << "];\n"
              << "    int count = 0;\n"
              << code.pick << "    moec_write_selection(" << rows.row(op->getResult(0)) << ", "
              << rows.row(op->getResult(1)) << ", " << code.slots << ", picks, count, row, "
              << boolean(code.normalize) << ", " << floatLiteral(code.normEps) << ", "
              << floatLiteral(code.scaling) << ");\n";
    return success();
  }
};

/// The kernel of a selection op alone.
template <typename OpT>
struct SelectionKernel : CudaKernelOpInterface::ExternalModel<SelectionKernel<OpT>, OpT> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    return tokenRowKernel(op, selectionCode(cast<OpT>(op), "").stem);
  }
};

/// Each expert takes its C highest-scoring tokens (ties to the lower token):
/// one thread per expert, C selection passes over the tokens.
struct ExpertChoiceRouteKernel
    : CudaKernelOpInterface::ExternalModel<ExpertChoiceRouteKernel, ExpertChoiceRouteOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto [T, E] = routerShape(op->getOperand(0));
    int64_t C = cast<RankedTensorType>(op->getResult(0).getType()).getDimSize(1);
    KernelWriter w(op, "expert_choice_route");
    // The previous pick bounds the next: (value, token) pairs strictly after
    // it in the descending, token-ascending order.
    w.os() << forEachElement(E, "e") << "  {\n"
           << "    float lastValue = 0.0f;\n"
           << "    int lastToken = -1;\n"
           << "    for (int c = 0; c < " << C << "; ++c) {\n"
           << "      int best = -1;\n"
           << "      float bestValue = 0.0f;\n"
           << "      for (int t = 0; t < " << T << "; ++t) {\n"
           << "        float v = in0[(long long)t * " << E << " + e];\n"
           << "        bool after = lastToken < 0 || v < lastValue ||\n"
           << "                     (v == lastValue && t > lastToken);\n"
           << "        if (after && (best < 0 || v > bestValue)) {\n"
           << "          best = t;\n"
           << "          bestValue = v;\n"
           << "        }\n"
           << "      }\n"
           << "      out0[e * " << C << "LL + c] = best;\n"
           << "      out1[e * " << C << "LL + c] = best >= 0 ? bestValue : 0.0f;\n"
           << "      lastValue = bestValue;\n"
           << "      lastToken = best;\n"
           << "    }\n"
           << "  }\n";
    return w.finish({blocksFor(E, 32), 1, 1}, {32, 1, 1}, /*usesBarriers=*/false);
  }
};

/// dscores[t, e] = Σ of the slot gradients of expert e's slots holding t:
/// one thread per expert walks its slots in order (no two experts share a
/// column of dscores).
struct ExpertChoiceGradKernel
    : CudaKernelOpInterface::ExternalModel<ExpertChoiceGradKernel, ExpertChoiceGradOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    auto slots = cast<RankedTensorType>(op->getOperand(0).getType());
    int64_t E = slots.getDimSize(0), C = slots.getDimSize(1);
    int64_t T = cast<RankedTensorType>(op->getResult(0).getType()).getDimSize(0);
    KernelWriter w(op, "expert_choice_grad");
    w.os() << forEachElement(E, "e") << "  {\n"
           << "    for (int t = 0; t < " << T << "; ++t)\n"
           << "      out0[(long long)t * " << E << " + e] = 0.0f;\n"
           << "    for (int c = 0; c < " << C << "; ++c) {\n"
           << "      int t = in0[e * " << C << "LL + c];\n"
           << "      if (t >= 0 && t < " << T << ")\n"
           << "        out0[(long long)t * " << E << " + e] += in1[e * " << C << "LL + c];\n"
           << "    }\n"
           << "  }\n";
    return w.finish({blocksFor(E, 32), 1, 1}, {32, 1, 1}, /*usesBarriers=*/false);
  }
};

struct UpdateSelectionBiasKernel
    : CudaKernelOpInterface::ExternalModel<UpdateSelectionBiasKernel, UpdateSelectionBiasOp> {
  FailureOr<CudaKernel> buildCudaKernel(Operation *op) const {
    int64_t E = numElements(op->getOperand(0));
    KernelWriter w(op, "update_selection_bias");
    // in: bias, load. One thread: E is small.
    w.os() << "  double mean = 0.0;\n"
           << "  for (int e = 0; e < " << E << "; ++e)\n"
           << "    mean += in1[e];\n"
           << "  mean /= " << E << ";\n"
           << "  for (int e = 0; e < " << E << "; ++e) {\n"
           << "    double diff = mean - in1[e];\n"
           << "    float sign = diff > 0 ? 1.0f : (diff < 0 ? -1.0f : 0.0f);\n"
           << "    out0[e] = in0[e] + " << floatLiteral(floatAttr(op, "rate")) << " * sign;\n"
           << "  }\n";
    return w.finish({1, 1, 1}, {1, 1, 1}, /*usesBarriers=*/false);
  }
};
} // namespace

void attachRouterVariantKernels(MLIRContext *context) {
  GroupTopKRouteOp::attachInterface<SelectionRows<GroupTopKRouteOp>,
                                    SelectionKernel<GroupTopKRouteOp>>(*context);
  PrototypeRouteOp::attachInterface<SelectionRows<PrototypeRouteOp>,
                                    SelectionKernel<PrototypeRouteOp>>(*context);
  TopPRouteOp::attachInterface<SelectionRows<TopPRouteOp>, SelectionKernel<TopPRouteOp>>(*context);
  EntropyHybridRouteOp::attachInterface<SelectionRows<EntropyHybridRouteOp>,
                                        SelectionKernel<EntropyHybridRouteOp>>(*context);
  ThresholdRouteOp::attachInterface<SelectionRows<ThresholdRouteOp>,
                                    SelectionKernel<ThresholdRouteOp>>(*context);
  ExpertChoiceRouteOp::attachInterface<ExpertChoiceRouteKernel>(*context);
  ExpertChoiceGradOp::attachInterface<ExpertChoiceGradKernel>(*context);
  UpdateSelectionBiasOp::attachInterface<UpdateSelectionBiasKernel>(*context);
}

} // namespace moec::codegen
