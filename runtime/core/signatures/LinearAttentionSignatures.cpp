// LinearAttentionSignatures.cpp - what each step of these ops must look like.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

#include <string>

namespace moec::rt::signatures {

namespace {
/// moe.lightning_attention(_grad): `decay` holds one slope rate per head
/// (the query's dimension 2); the kernels index it by head.
Status ratePerHead(const StepTensors &s) {
  const plan::Attr *a = s.attr("decay");
  const plan::FloatsAttr *rates = a ? a->value_as_FloatsAttr() : nullptr;
  int64_t count = rates && rates->values() ? int64_t(rates->values()->size()) : 0;
  int64_t heads = s.inputs[0].shape[2];
  if (count == heads)
    return Status::ok();
  return Status::error("attribute 'decay' has " + std::to_string(count) + " rates for " +
                       std::to_string(heads) + " heads");
}
} // namespace

void addLinearAttentionSignatures(SignatureTable &t) {
  t.add("moe.causal_conv1d", "x:f32[B,S,C] w:f32[C,K] -> y:f32[B,S,C]");
  t.add("moe.causal_conv1d_grad",
        "x:f32[B,S,C] w:f32[C,K] dy:f32[B,S,C] -> dx:f32[B,S,C] dw:f32[C,K]");
  t.add("moe.delta_decay", "x:f32[B,S,H] a_log:f32[H] dt_bias:f32[H] -> g:f32[B,S,H]");
  // H/H*H is H for H >= 1 and matches nothing for 0: the kernel divides by H.
  t.add("moe.delta_decay_grad",
        "x:f32[B,S,H] a_log:f32[H] dt_bias:f32[H] dg:f32[B,S,H] -> dx:f32[B,S,H/H*H] "
        "da_log:f32[H] ddt_bias:f32[H]");
  // Hv/Hk*Hk is Hv only when Hk >= 1 divides Hv (value head h reads
  // query/key head h / (Hv / Hk)).
  t.add("moe.gated_delta_rule",
        "q:f32[B,S,Hk,Dk] k:f32[B,S,Hk,Dk] v:f32[B,S,Hv,Dv] g:f32[B,S,Hv/Hk*Hk] "
        "beta:f32[B,S,Hv] -> o:f32[B,S,Hv,Dv]; scale:float?(>0) qk_l2norm_eps:float?(>0)");
  t.add("moe.gated_delta_rule_grad",
        "q:f32[B,S,Hk,Dk] k:f32[B,S,Hk,Dk] v:f32[B,S,Hv,Dv] g:f32[B,S,Hv/Hk*Hk] "
        "beta:f32[B,S,Hv] do:f32[B,S,Hv,Dv] -> dq:f32[B,S,Hk,Dk] dk:f32[B,S,Hk,Dk] "
        "dv:f32[B,S,Hv,Dv] dg:f32[B,S,Hv] dbeta:f32[B,S,Hv]; scale:float?(>0) "
        "qk_l2norm_eps:float?(>0)");
  t.add("moe.lightning_attention",
        "q:f32[B,S,H,D] k:f32[B,S,H,D] v:f32[B,S,H,D] -> o:f32[B,S,H,D]; decay:floats(>=0)",
        ratePerHead);
  t.add("moe.lightning_attention_grad",
        "q:f32[B,S,H,D] k:f32[B,S,H,D] v:f32[B,S,H,D] do:f32[B,S,H,D] -> dq:f32[B,S,H,D] "
        "dk:f32[B,S,H,D] dv:f32[B,S,H,D]; decay:floats(>=0)",
        ratePerHead);
}

} // namespace moec::rt::signatures
