// OptimizerSignatures.cpp - what each step of these ops must look like.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

namespace moec::rt::signatures {

void addOptimizerSignatures(SignatureTable &t) {
  t.add("moe.global_norm", "grads:f32[*]* -> norm:f32[]");
  t.add("moe.clip_scale", "norm:f32[] max_norm:f32[] -> scale:f32[]");
  t.add("moe.lr_schedule",
        "step:i64[] lr:f32[] warmup_steps:i64[] total_steps:i64[] min_lr_ratio:f32[] "
        "-> result:f32[]; kind:str(constant|cosine|linear)");
  t.add("moe.adamw_update",
        "param:f32[..P] grad:f32[..P] m:f32[..P] v:f32[..P] step:i64[] lr:f32[] clip:f32[] "
        "beta1:f32[] beta2:f32[] eps:f32[] weight_decay:f32[] -> new_param:f32[..P] "
        "new_m:f32[..P] new_v:f32[..P]");
  t.add("moe.sgd_update",
        "param:f32[..P] grad:f32[..P] momentum_buffer:f32[..P] step:i64[] lr:f32[] clip:f32[] "
        "momentum:f32[] weight_decay:f32[] -> new_param:f32[..P] new_momentum_buffer:f32[..P]");
}

} // namespace moec::rt::signatures
