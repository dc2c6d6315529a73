// ExpertSignatures.cpp - what each step of these ops must look like.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

#include <string>
#include <vector>

namespace moec::rt::signatures {

namespace {
std::string describe(const TensorRef &t) { return dtypeName(t.dtype) + formatShape(t.shape); }

std::string operand(const StepTensors &s, size_t i, const char *name) {
  return "operand " + std::to_string(i) + " (" + name + ") is " + describe(s.inputs[i]);
}

/// The operand segment sizes, by which the kernels find their optional
/// operands. The signature follows them only when they have one value per
/// operand group, so they must have `groups`.
StatusOr<std::vector<int64_t>> segments(const StepTensors &s, size_t groups) {
  std::vector<int64_t> sizes = s.intsAttr("operandSegmentSizes");
  if (sizes.size() != groups)
    return Status::error("attribute 'operandSegmentSizes' has " + std::to_string(sizes.size()) +
                         " values, expected " + std::to_string(groups));
  return sizes;
}

/// The routed experts' rows, operand `i`: capacity form `[E, C, width]`, or
/// `[N, width]` with group sizes. The kernels count rows by the width, so it
/// must not be 0.
Status expertRows(const StepTensors &s, size_t i, const char *name, bool grouped, int64_t experts) {
  const TensorRef &t = s.inputs[i];
  if (grouped && t.shape.size() != 2)
    return Status::error(operand(s, i, name) + ", expected [N, width] with group_sizes");
  if (!grouped && (t.shape.size() != 3 || t.shape[0] != experts))
    return Status::error(operand(s, i, name) + ", expected [E = " + std::to_string(experts) +
                         ", C, width] without group_sizes");
  if (t.shape.back() < 1)
    return Status::error(operand(s, i, name) + ", its rows are empty");
  return Status::ok();
}

/// Pre-activation rows: h1 (F columns) and, gated, h3 (F more).
Status hiddenWidth(const TensorRef &hidden, const std::string &what, int64_t F, bool gated) {
  if (hidden.shape.back() != (gated ? 2 : 1) * F)
    return Status::error(what + " is " + describe(hidden) + ", expected " +
                         (gated ? "2F = " : "F = ") + std::to_string((gated ? 2 : 1) * F) +
                         " columns (" + (gated ? "gated" : "ungated") + ", F of the weights)");
  return Status::ok();
}

/// A gradient's results: dinput, then one gradient per weight operand
/// [first, first + count), in order, each of its weight's type.
Status weightGradients(const StepTensors &s, size_t first, size_t count) {
  if (s.outputs.size() != 1 + count)
    return Status::error("has " + std::to_string(s.outputs.size()) + " results, expected " +
                         std::to_string(1 + count) + " (dinput and a gradient per weight operand)");
  for (size_t i = 0; i < count; ++i) {
    const TensorRef &w = s.inputs[first + i], &dw = s.outputs[1 + i];
    if (dw.dtype != w.dtype || dw.shape != w.shape)
      return Status::error("result " + std::to_string(1 + i) + " is " + describe(dw) +
                           ", expected " + describe(w) + " as operand " +
                           std::to_string(first + i));
  }
  return Status::ok();
}

bool flag(const StepTensors &s, const char *name) {
  const plan::Attr *a = s.attr(name);
  const plan::BoolAttr *v = a ? a->value_as_BoolAttr() : nullptr;
  return v && v->value();
}

Status checkGroupedFfn(const StepTensors &s) {
  auto sizes = segments(s, 5);
  if (!sizes)
    return sizes.status();
  return expertRows(s, 0, "input", (*sizes)[4] == 1, s.inputs[1].shape[0]);
}

Status checkGroupedFfnGrad(const StepTensors &s) {
  auto sizes = segments(s, 6);
  if (!sizes)
    return sizes.status();
  bool hasW3 = (*sizes)[3] == 1;
  if (Status st = expertRows(s, 0, "input", (*sizes)[4] == 1, s.inputs[1].shape[0]); !st)
    return st;
  return weightGradients(s, 1, 2 + hasW3);
}

Status checkSharedExperts(const StepTensors &s) {
  auto sizes = segments(s, 5);
  if (!sizes)
    return sizes.status();
  int64_t width = s.inputs[1].shape[0], shared = s.intAttr("num_shared");
  if (width % shared != 0)
    return Status::error("attribute 'num_shared' is " + std::to_string(shared) +
                         ", must divide the FFN width " + std::to_string(width));
  return Status::ok();
}

Status checkSharedExpertsGrad(const StepTensors &s) {
  auto sizes = segments(s, 6);
  if (!sizes)
    return sizes.status();
  return weightGradients(s, 1, 2 + (*sizes)[3] + (*sizes)[4]);
}

/// The operands of a LoRA step, base (w1, w2[, w3]) and adapters (A, B per
/// projection), whose shapes follow one another: variadic operands match
/// one pattern each, so the shapes are checked by this signature.
const OpSignature &loraOperands(bool grad, bool gated) {
  static const SignatureTable table = [] {
    SignatureTable t;
    for (bool grad : {false, true})
      for (bool gated : {false, true})
        t.add(std::to_string(grad) + std::to_string(gated),
              std::string("input:f32[..B,D] w1:f32[F,D] w2:f32[D,F] ") +
                  (gated ? "w3:f32[F,D] " : "") +
                  "a1:f32[E,R,D] b1:f32[E,F,R] a2:f32[E,R,F] b2:f32[E,D,R] " +
                  (gated ? "a3:f32[E,R,D] b3:f32[E,F,R] " : "") + "group_sizes:i32[E]? " +
                  (grad ? "dresult:f32[..B,D] " : "") + "-> results:any[*]*");
    return t;
  }();
  return *table.find(std::to_string(grad) + std::to_string(gated));
}

Status checkLora(const StepTensors &s, bool grad) {
  auto sizes = segments(s, grad ? 5 : 4);
  if (!sizes)
    return sizes.status();
  int64_t base = (*sizes)[1], adapters = (*sizes)[2];
  if (base != 2 && base != 3)
    return Status::error("has " + std::to_string(base) + " base weights, expected w1, w2[, w3]");
  if (adapters != 2 * base)
    return Status::error("has " + std::to_string(adapters) + " adapters, expected " +
                         std::to_string(2 * base) + " (A and B per base weight)");
  if (Status st = loraOperands(grad, base == 3).check(s); !st)
    return st;
  const TensorRef &a1 = s.inputs[1 + base];
  if (a1.shape[1] < 1)
    return Status::error(operand(s, 1 + base, "a1") + ", its adapter rank is 0");
  if (Status st = expertRows(s, 0, "input", (*sizes)[3] == 1, a1.shape[0]); !st)
    return st;
  return grad ? weightGradients(s, 1 + base, adapters) : Status::ok();
}

Status checkLoraExperts(const StepTensors &s) { return checkLora(s, /*grad=*/false); }
Status checkLoraExpertsGrad(const StepTensors &s) { return checkLora(s, /*grad=*/true); }

Status checkGroupedFfnUp(const StepTensors &s) {
  auto sizes = segments(s, 4);
  if (!sizes)
    return sizes.status();
  const TensorRef &w1 = s.inputs[1];
  if (Status st = expertRows(s, 0, "input", (*sizes)[3] == 1, w1.shape[0]); !st)
    return st;
  return hiddenWidth(s.outputs[0], "result 0 (hidden)", w1.shape[1], (*sizes)[2] == 1);
}

Status checkGroupedFfnUpGrad(const StepTensors &s) {
  auto sizes = segments(s, 5);
  if (!sizes)
    return sizes.status();
  const TensorRef &w1 = s.inputs[1];
  bool hasW3 = (*sizes)[2] == 1, grouped = (*sizes)[3] == 1;
  if (Status st = expertRows(s, 0, "input", grouped, w1.shape[0]); !st)
    return st;
  size_t dhidden = 2 + hasW3 + grouped;
  if (Status st =
          hiddenWidth(s.inputs[dhidden], "operand " + std::to_string(dhidden) + " (dhidden)",
                      w1.shape[1], hasW3);
      !st)
    return st;
  return weightGradients(s, 1, 1 + hasW3);
}

/// moe.grouped_ffn_down(_grad): hidden, w2 [E, d, F], [group_sizes], ....
Status checkDown(const StepTensors &s, bool grouped) {
  const TensorRef &w2 = s.inputs[1];
  if (Status st = expertRows(s, 0, "hidden", grouped, w2.shape[0]); !st)
    return st;
  return hiddenWidth(s.inputs[0], "operand 0 (hidden)", w2.shape[2], flag(s, "gated"));
}

Status checkGroupedFfnDown(const StepTensors &s) { return checkDown(s, s.inputs.size() == 3); }
Status checkGroupedFfnDownGrad(const StepTensors &s) { return checkDown(s, s.inputs.size() == 4); }
} // namespace

void addExpertSignatures(SignatureTable &t) {
  t.add("moe.grouped_ffn",
        "input:f32[..B,D] w1:f32[E,F,D] w2:f32[E,D,F] w3:f32[E,F,D]? group_sizes:i32[E]? "
        "-> result:f32[..B,D]; "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) moe.precision:str?(fp32|bf16)",
        checkGroupedFfn);
  t.add("moe.grouped_ffn_grad",
        "input:f32[..B,D] w1:f32[E,F,D] w2:f32[E,D,F] w3:f32[E,F,D]? group_sizes:i32[E]? "
        "dresult:f32[..B,D] -> dinput:f32[..B,D] dw1:f32[E,F,D] dw2:f32[E,D,F] "
        "dw3:f32[E,F,D]?; "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) moe.precision:str?(fp32|bf16)",
        checkGroupedFfnGrad);
  t.add("moe.shared_experts",
        "input:f32[T,D] w1:f32[F,D] w2:f32[D,F] w3:f32[F,D]? sigmoid_gate:f32[1,D]? "
        "-> result:f32[T,D]; num_shared:int(1..F) "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) moe.precision:str?(fp32|bf16)",
        checkSharedExperts);
  t.add("moe.shared_experts_grad",
        "input:f32[T,D] w1:f32[F,D] w2:f32[D,F] w3:f32[F,D]? sigmoid_gate:f32[1,D]? "
        "dresult:f32[T,D] -> dinput:f32[T,D] dw1:f32[F,D] dw2:f32[D,F] dweights:f32[_,_]*; "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) moe.precision:str?(fp32|bf16)",
        checkSharedExpertsGrad);
  t.add("moe.lora_experts",
        "input:f32[..B,D] base:f32[_,_]+ adapters:f32[_,_,_]+ group_sizes:i32[_]? "
        "-> result:f32[..B,D]; alpha:float(>0) "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) moe.precision:str?(fp32|bf16)",
        checkLoraExperts);
  t.add("moe.lora_experts_grad",
        "input:f32[..B,D] base:f32[_,_]+ adapters:f32[_,_,_]+ group_sizes:i32[_]? "
        "dresult:f32[..B,D] -> dinput:f32[..B,D] dadapters:f32[_,_,_]+; alpha:float(>0) "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) moe.precision:str?(fp32|bf16)",
        checkLoraExpertsGrad);
  t.add("moe.grouped_ffn_up",
        "input:f32[..B,D] w1:f32[E,F,D] w3:f32[E,F,D]? group_sizes:i32[E]? "
        "-> hidden:float[..B,H]; moe.precision:str?(fp32|bf16)",
        checkGroupedFfnUp);
  t.add("moe.grouped_ffn_up_grad",
        "input:f32[..B,D] w1:f32[E,F,D] w3:f32[E,F,D]? group_sizes:i32[E]? dhidden:float[..B,H] "
        "-> dinput:f32[..B,D] dw1:f32[E,F,D] dw3:f32[E,F,D]?; moe.precision:str?(fp32|bf16)",
        checkGroupedFfnUpGrad);
  t.add("moe.grouped_ffn_down",
        "hidden:float[..B,H] w2:f32[E,D,F] group_sizes:i32[E]? -> result:float[..B,D]; "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) gated:bool? "
        "moe.precision:str?(fp32|bf16)",
        checkGroupedFfnDown);
  t.add("moe.grouped_ffn_down_grad",
        "hidden:float[..B,H] w2:f32[E,D,F] group_sizes:i32[E]? dresult:f32[..B,D] "
        "-> dhidden:float[..B,H] dw2:f32[E,D,F]; "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) gated:bool? "
        "moe.precision:str?(fp32|bf16)",
        checkGroupedFfnDownGrad);
}

} // namespace moec::rt::signatures
