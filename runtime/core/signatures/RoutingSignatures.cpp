// RoutingSignatures.cpp - what each step of these ops must look like.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

#include <string>

namespace moec::rt::signatures {

namespace {

/// The string attribute `name`, or "" when absent or not a string.
std::string stringAttr(const StepTensors &s, const char *name) {
  const plan::Attr *a = s.attr(name);
  const plan::StringAttr *v = a ? a->value_as_StringAttr() : nullptr;
  return v && v->value() ? v->value()->str() : "";
}

/// l2norm and layernorm divide by their `eps` (a norm's floor, a variance's
/// offset): it must be positive there; none and tanh do not read it.
Status transformEps(const StepTensors &s) {
  std::string kind = stringAttr(s, "kind");
  if (kind != "l2norm" && kind != "layernorm")
    return Status::ok();
  const plan::Attr *a = s.attr("eps");
  const plan::FloatAttr *eps = a ? a->value_as_FloatAttr() : nullptr;
  if (!eps || !(eps->value() > 0))
    return Status::error("attribute 'eps' must be above 0 for kind " + kind);
  return Status::ok();
}

/// Group-limited selection: `num_groups` contiguous groups of equal size,
/// two experts at least in each for `top2_sum` (it reads a group's two best),
/// and `k` no more than the experts of the `topk_groups` kept groups.
Status expertGroups(const StepTensors &s) {
  int64_t experts = s.inputs[0].shape[1], groups = s.intAttr("num_groups");
  if (experts % groups != 0)
    return Status::error("attribute 'num_groups' (" + std::to_string(groups) +
                         ") must divide the number of experts (" + std::to_string(experts) + ")");
  int64_t size = experts / groups;
  if (stringAttr(s, "group_score") == "top2_sum" && size < 2)
    return Status::error("group_score top2_sum needs 2 experts per group, groups have " +
                         std::to_string(size));
  int64_t eligible = size * s.intAttr("topk_groups"), k = s.intAttr("k");
  if (k > eligible)
    return Status::error("attribute 'k' is " + std::to_string(k) + ", must be at most the " +
                         std::to_string(eligible) + " experts of the kept groups");
  return Status::ok();
}

/// Prototypes are contiguous blocks of E / num_prototypes experts.
Status prototypesDivideExperts(const StepTensors &s) {
  int64_t experts = s.inputs[0].shape[1], prototypes = s.intAttr("num_prototypes");
  if (experts % prototypes != 0)
    return Status::error("attribute 'num_prototypes' (" + std::to_string(prototypes) +
                         ") must divide the number of experts (" + std::to_string(experts) + ")");
  return Status::ok();
}

/// SparseMixer picks two distinct experts (its second pick masks the first).
Status twoExperts(const StepTensors &s) {
  int64_t experts = s.inputs[0].shape[1];
  if (experts < 2)
    return Status::error("picks two experts, but 'logits' has " + std::to_string(experts));
  return Status::ok();
}

} // namespace

void addRoutingSignatures(SignatureTable &t) {
  t.add("moe.router_input_transform",
        "x:f32[T,D] -> y:f32[T,D]; kind:str(none|l2norm|layernorm|tanh) eps:float", transformEps);
  t.add("moe.router_input_transform_grad",
        "x:f32[T,D] dy:f32[T,D] -> dx:f32[T,D]; kind:str(none|l2norm|layernorm|tanh) eps:float",
        transformEps);
  t.add("moe.router_jitter",
        "x:f32[T,D] seed:i64[] -> y:f32[T,D]; epsilon:float(0..1) stream:int(0..)");
  t.add("moe.router_logits", "x:f32[T,D] w:f32[E,D] -> logits:f32[T,E]");
  t.add("moe.score", "logits:f32[T,E] -> scores:f32[T,E]; function:str(softmax|sigmoid) "
                     "temperature:float(>0)");
  t.add("moe.score_grad", "scores:f32[T,E] dscores:f32[T,E] -> dlogits:f32[T,E]; "
                          "function:str(softmax|sigmoid) temperature:float(>0)");
  t.add("moe.gumbel_softmax",
        "logits:f32[T,E] temperature:f32[] seed:i64[]? -> scores:f32[T,E]; stream:int(0..)");
  t.add("moe.gumbel_softmax_grad",
        "scores:f32[T,E] temperature:f32[] dscores:f32[T,E] -> dlogits:f32[T,E]");
  t.add("moe.temperature_schedule",
        "step:i64[] -> temperature:f32[]; start:float(>0) end:float(>0) steps:int(1..)");
  t.add("moe.topk_route", "scores:f32[T,E] bias:f32[E]? -> weights:f32[T,k] indices:i32[T,k]; "
                          "k:int(1..E) normalize:bool norm_eps:float(>=0) scaling:float(>0)");
  t.add("moe.group_topk_route",
        "scores:f32[T,E] bias:f32[E]? -> weights:f32[T,k] indices:i32[T,k]; "
        "num_groups:int(1..E) topk_groups:int(1..num_groups) k:int(1..E) "
        "group_score:str(max|top2_sum) mask_fill:str(neg_inf|zero) normalize:bool "
        "norm_eps:float(>=0) scaling:float(>0)",
        expertGroups);
  t.add("moe.prototype_route",
        "scores:f32[T,E] -> weights:f32[T,num_prototypes] indices:i32[T,num_prototypes]; "
        "num_prototypes:int(1..E) normalize:bool",
        prototypesDivideExperts);
  t.add("moe.top_p_route",
        "scores:f32[T,E] -> weights:f32[T,max_k] indices:i32[T,max_k]; p:float(0..1) "
        "max_k:int(1..E) normalize:bool");
  t.add("moe.entropy_hybrid_route",
        "scores:f32[T,E] -> weights:f32[T,max_k] indices:i32[T,max_k]; q:float(>0) "
        "threshold:float(>=0) max_k:int(1..E) k:int(1..max_k) p:float(0..1) normalize:bool");
  t.add("moe.threshold_route",
        "scores:f32[T,E] -> weights:f32[T,max_k] indices:i32[T,max_k]; threshold:float(0..1) "
        "max_k:int(1..E)");
  // The backward of the selections above (their weights are scaled scores).
  t.add("moe.selection_grad",
        "scores:f32[T,E] indices:i32[T,K] dweights:f32[T,K] -> dscores:f32[T,E]; "
        "normalize:bool norm_eps:float(>=0) scaling:float(>0)");
  t.add("moe.sparsemixer_route",
        "logits:f32[T,E] seed:i64[]? -> weights:f32[T,2] indices:i32[T,2]; "
        "epsilon:float(>=0) stream:int(0..)",
        twoExperts);
  t.add("moe.sparsemixer_grad",
        "logits:f32[T,E] indices:i32[T,2] dweights:f32[T,2] -> dlogits:f32[T,E]; "
        "epsilon:float(>=0)",
        twoExperts);
  t.add("moe.expert_choice_route",
        "scores:f32[T,E] -> slot_tokens:i32[E,capacity] slot_gates:f32[E,capacity]; "
        "capacity:int(1..T)");
  t.add("moe.expert_choice_grad", "slot_tokens:i32[E,C] dslot_gates:f32[E,C] -> dscores:f32[T,E]");
  t.add("moe.update_selection_bias", "bias:f32[E] load:i32[E] -> result:f32[E]; rate:float(>0)");
}

} // namespace moec::rt::signatures
