//===- StepWork.cpp - the arithmetic and memory traffic of one plan step ----===//
#include "compiler/cost/StepWork.h"

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace moec::cost {
namespace {

/// A step's operands and results as shapes, with its attributes.
struct Shapes {
  const plan::Step &step;
  std::vector<rt::TensorRef> in, out;
  bool gradient = false; ///< a `_grad` op: the cotangent is the last operand
  /// The step runs generated code (its own kernel or its group's), not the
  /// runtime's op kernel.
  bool generated = false;

  size_t operands() const { return in.size() - (gradient ? 1 : 0); }

  double rows(size_t i) const { // the product of all but the last extent
    double n = 1;
    for (size_t d = 0; d + 1 < in[i].shape.size(); ++d)
      n *= double(in[i].shape[d]);
    return n;
  }
  double last(size_t i) const { return in[i].shape.empty() ? 1 : double(in[i].shape.back()); }
  double dim(size_t i, int d) const { return double(in[i].dim(d)); }
  bool flag(const char *name) const {
    const plan::Attr *a = rt::findAttr(step, name);
    return a && a->value_as_BoolAttr() && a->value_as_BoolAttr()->value();
  }
  int64_t integer(const char *name, int64_t otherwise) const {
    const plan::Attr *a = rt::findAttr(step, name);
    return a && a->value_as_IntAttr() ? a->value_as_IntAttr()->value() : otherwise;
  }
  double numel(size_t i) const { return double(in[i].numel()); }
};

/// What one op computes: the FLOPs of its matrix products, in how many
/// GEMM calls, and its transcendental functions (exp, log, sigmoid).
struct OpWork {
  double flops = 0, calls = 0, transcendentals = 0;
};

/// The work of one execution, given the fraction of input rows that hold
/// data.
using WorkFn = std::function<OpWork(const Shapes &, double fill)>;

/// An FFN over `rows` rows of width D with hidden width F: gated ones have
/// three products, others two; the activation once per hidden value.
OpWork ffnWork(double rows, double d, double f, bool gated, double experts = 1) {
  double products = gated ? 3 : 2;
  return {2 * rows * d * f * products, experts * products, rows * f};
}

/// Query-key pairs of causal (or windowed) attention over S positions.
double attentionPairs(const Shapes &s, double length) {
  int64_t window = s.integer("window", 0);
  bool causal = s.flag("causal");
  if (!causal)
    return length * length;
  if (window <= 0 || window >= length)
    return length * (length + 1) / 2;
  double w = double(window);
  return w * (w + 1) / 2 + (length - w) * w; // the first w rows grow, then w each
}

OpWork attentionWork(const Shapes &s) {
  // q [B, S, Hq, D], v [B, S, Hkv, Dv]: scores (D) and values (Dv), two
  // products per sequence and head, an exp per visible score. Generated
  // kernels multiply the visible query-key pairs only; the cpu backend's
  // kernel multiplies every pair of a head (two GEMM calls) and masks
  // the scores after, so its products cover the whole square.
  double batch = s.dim(0, 0), length = s.dim(0, 1), heads = s.dim(0, 2);
  double pairs = attentionPairs(s, length);
  double multiplied = s.generated ? pairs : length * length;
  return {2 * batch * heads * multiplied * (s.dim(0, 3) + s.dim(2, 3)), 2 * batch * heads,
          batch * heads * pairs};
}

bool hasOperand(const Shapes &s, const char *segmentsAttr, size_t group) {
  const plan::Attr *a = rt::findAttr(s.step, segmentsAttr);
  if (!a || !a->value_as_IntsAttr() || !a->value_as_IntsAttr()->values())
    return false;
  auto *values = a->value_as_IntsAttr()->values();
  return group < values->size() && values->Get(group) > 0;
}

/// An op's work: a formula over its forward operands, and how many times
/// that its gradient op (`<op>_grad`, the same operands and the result's
/// cotangent last) does: the operand and the weight gradients, two
/// products per forward one; attention's backward also recomputes the
/// scores (2.5, as FlashAttention's). Its transcendentals are computed
/// again once.
struct Products {
  WorkFn forward;
  double backward = 2;
};

double expertRows(const Shapes &s) { // [E, C, D] slots or [N, D] rows
  return s.in[0].shape.size() == 3 ? s.dim(0, 0) * s.dim(0, 1) : s.rows(0);
}

OpWork denseProduct(const Shapes &s, double fill) {
  return {2 * s.rows(0) * fill * s.last(0) * s.dim(1, 0), 1, 0};
}

const std::map<std::string, Products> &productTable() {
  static const std::map<std::string, Products> table = {
      {"moe.linear", {denseProduct}},
      {"moe.router_logits", {denseProduct}},
      // x w1 w2 [w3]: no segment sizes, the operand count tells.
      {"moe.ffn", {[](const Shapes &s, double f) {
         return ffnWork(s.rows(0) * f, s.last(0), s.dim(1, 0), s.operands() == 4);
       }}},
      {"moe.grouped_ffn", {[](const Shapes &s, double f) {
         return ffnWork(expertRows(s) * f, s.last(0), s.dim(1, 1),
                        hasOperand(s, "operandSegmentSizes", 3), s.dim(1, 0));
       }}},
      {"moe.grouped_ffn_up", {[](const Shapes &s, double f) {
         double products = hasOperand(s, "operandSegmentSizes", 2) ? 2 : 1;
         return OpWork{2 * expertRows(s) * f * s.last(0) * s.dim(1, 1) * products,
                       s.dim(1, 0) * products, 0};
       }}},
      // The activation (and gate) of the hidden rows, then w2 [E, D, F].
      {"moe.grouped_ffn_down", {[](const Shapes &s, double f) {
         double rows = expertRows(s) * f;
         return OpWork{2 * rows * s.dim(1, 1) * s.dim(1, 2), s.dim(1, 0), rows * s.dim(1, 2)};
       }}},
      {"moe.shared_experts", {[](const Shapes &s, double f) {
         return ffnWork(s.rows(0) * f, s.last(0), s.dim(1, 0),
                        hasOperand(s, "operandSegmentSizes", 3));
       }}},
      {"moe.attention", {[](const Shapes &s, double) { return attentionWork(s); }, 2.5}},
      // Linear attention keeps a D x Dv state per head: each position
      // updates it and reads it (two products of D x Dv), q [B, S, H, D].
      {"moe.lightning_attention", {[](const Shapes &s, double) {
         double heads = s.dim(0, 0) * s.dim(0, 2);
         return OpWork{4 * heads * s.dim(0, 1) * s.dim(0, 3) * s.dim(2, 3), heads, 0};
       }}},
      // The delta rule reads, corrects and writes a Dk x Dv state per value
      // head and position: three products; a decay (exp) per position.
      {"moe.gated_delta_rule", {[](const Shapes &s, double) {
         double heads = s.dim(2, 0) * s.dim(2, 2), positions = heads * s.dim(2, 1);
         return OpWork{6 * positions * s.dim(0, 3) * s.dim(2, 3), heads, positions};
       }}},
  };
  return table;
}

/// Ops with no products whose cost is their transcendentals: an exp (or
/// log, sigmoid) per element of operand 0, forward and backward alike.
bool transcendentalPerElement(const std::string &op) {
  static const std::set<std::string> ops = {
      "moe.score",          "moe.cross_entropy",      "moe.cross_entropy_grad",
      "moe.activation",     "moe.activation_grad",    "moe.z_loss",
      "moe.z_loss_grad",    "moe.entropy_loss",       "moe.entropy_loss_grad",
      "moe.gumbel_softmax", "moe.gumbel_softmax_grad"};
  return ops.count(op) > 0;
}

/// LoRA experts: the shared base products over every row, and each
/// adapter's two rank-r products over its expert's rows.
OpWork loraWork(const Shapes &s, double fill, bool backward) {
  double rows = s.rows(0) * fill, flops = 0, experts = 1;
  for (size_t i = 1; i < s.operands(); ++i) {
    const rt::TensorRef &t = s.in[i];
    if (t.dtype != rt::DType::f32 && t.dtype != rt::DType::bf16)
      continue; // group sizes
    if (t.shape.size() == 2)
      flops += 2 * rows * double(t.numel());
    else if (t.shape.size() == 3 && t.shape[0] > 0) {
      flops += 2 * rows * double(t.numel()) / double(t.shape[0]);
      experts = double(t.shape[0]);
    }
  }
  double factor = backward ? 2 : 1;
  return {factor * flops, factor * experts * 3, 0};
}

bool isBf16(const plan::Step &step) {
  const plan::Attr *a = rt::findAttr(step, "moe.precision");
  return a && a->value_as_StringAttr() && a->value_as_StringAttr()->value() &&
         a->value_as_StringAttr()->value()->str() == "bf16";
}

/// The sum of `measure` over the distinct tensors among `ids`, each scaled
/// by the fraction of its rows that hold data.
template <typename Measure>
double filledSum(const rt::LoadedPlan &plan, const flatbuffers::Vector<int32_t> *ids,
                 const RowFill &fill, Measure measure) {
  double sum = 0;
  if (!ids)
    return 0;
  std::set<int> seen;
  for (int id : *ids)
    if (seen.insert(id).second) {
      auto it = fill.find(id);
      sum += measure(plan.describe(id)) * (it == fill.end() ? 1.0 : it->second);
    }
  return sum;
}

/// The elements of the distinct fp32 matrices among `ids` (rows that hold
/// data only): what a bf16 product rounds before it multiplies.
double fp32Elements(const rt::LoadedPlan &plan, const flatbuffers::Vector<int32_t> *ids,
                    const RowFill &fill) {
  return filledSum(plan, ids, fill, [](const rt::TensorRef &t) {
    return t.dtype == rt::DType::f32 && t.shape.size() >= 2 ? double(t.numel()) : 0.0;
  });
}

/// The work of one op (a member of a group, or a step of its own), without
/// its traffic.
StepWork opWork(const rt::LoadedPlan &plan, const plan::Step &step, RowFill &fill,
                double busiestRank, bool generated) {
  StepWork work;
  work.bf16 = isBf16(step);
  if (!step.inputs() || step.inputs()->size() == 0)
    return work;
  Shapes shapes{step, {}, {}, false, generated};
  for (int id : *step.inputs())
    shapes.in.push_back(plan.describe(id));
  if (step.outputs())
    for (int id : *step.outputs())
      shapes.out.push_back(plan.describe(id));
  int first = step.inputs()->Get(0);
  double rowFill = fill.count(first) ? fill[first] : 1.0;
  std::string op = step.op()->str();
  const std::string suffix = "_grad";
  shapes.gradient = op.size() > suffix.size() &&
                    op.compare(op.size() - suffix.size(), suffix.size(), suffix) == 0;
  std::string forward = shapes.gradient ? op.substr(0, op.size() - suffix.size()) : op;
  OpWork done;
  if (forward == "moe.lora_experts") {
    done = loraWork(shapes, rowFill, shapes.gradient);
  } else if (auto it = productTable().find(forward); it != productTable().end()) {
    done = it->second.forward(shapes, rowFill);
    double factor = shapes.gradient ? it->second.backward : 1;
    done.flops *= factor;
    done.calls *= factor;
  } else if (transcendentalPerElement(op)) {
    done.transcendentals = shapes.numel(0) * rowFill;
  }
  work.gemmFlops = done.flops;
  work.gemmCalls = done.calls;
  work.transcendentals = done.transcendentals;
  if (work.bf16 && done.flops > 0)
    work.bf16Operands = fp32Elements(plan, step.inputs(), fill);
  // Rows that came through an expert exchange: its receive buffer holds
  // what balanced routing sends, the rows of its input (a chunk of them,
  // --overlap-chunks), times the busiest rank's load.
  if (op == "moe.expert_exchange" && !shapes.out.empty() && shapes.out[0].numel() > 0) {
    double chunks = double(std::max<int64_t>(shapes.integer("chunks", 1), 1));
    fill[step.outputs()->Get(0)] = std::min(1.0, busiestRank * double(shapes.in[0].numel()) /
                                                     chunks / double(shapes.out[0].numel()));
  } else if (rowFill < 1 && op != "moe.expert_return" && step.outputs()) {
    for (size_t i = 0; i < shapes.out.size(); ++i)
      if (!shapes.out[i].shape.empty() && !shapes.in[0].shape.empty() &&
          shapes.out[i].shape[0] == shapes.in[0].shape[0])
        fill[step.outputs()->Get(i)] = rowFill;
  }
  return work;
}

double filledBytes(const rt::LoadedPlan &plan, const flatbuffers::Vector<int32_t> *ids,
                   const RowFill &fill) {
  return filledSum(plan, ids, fill, [](const rt::TensorRef &t) { return double(t.bytes()); });
}
} // namespace

double distinctBytes(const rt::LoadedPlan &plan, const flatbuffers::Vector<int32_t> *ids) {
  return filledBytes(plan, ids, {});
}

StepWork stepWork(const rt::LoadedPlan &plan, const plan::Step &step, RowFill &fill,
                  double busiestRank) {
  StepWork work;
  if (step.view())
    return work;
  const bool generated = step.kernel() >= 0;
  if (step.members() && step.members()->size() > 0) {
    for (const plan::Step *member : *step.members()) {
      StepWork inner = opWork(plan, *member, fill, busiestRank, generated);
      work.gemmFlops += inner.gemmFlops;
      work.gemmCalls += inner.gemmCalls;
      work.transcendentals += inner.transcendentals;
      work.bf16Operands += inner.bf16Operands;
      work.bf16 = work.bf16 || inner.bf16;
    }
  } else {
    work = opWork(plan, step, fill, busiestRank, generated);
  }
  // Only the group's own operands and results travel through memory, and
  // of a receive buffer only the rows that hold data.
  work.bytes = filledBytes(plan, step.inputs(), fill) + filledBytes(plan, step.outputs(), fill);
  return work;
}

} // namespace moec::cost
