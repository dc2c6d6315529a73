// DenseSignatures.cpp - what each step of these ops must look like.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

#include <string>
#include <vector>

namespace moec::rt::signatures {

namespace {
/// The kernels of row-wise ops take the row count as numel / (last
/// dimension of operand 0): an empty last dimension would divide by zero.
Status nonEmptyRows(const StepTensors &s) {
  if (s.inputs[0].shape.back() == 0)
    return Status::error("operand 0 is " + formatShape(s.inputs[0].shape) +
                         ": its last dimension, the row width, is empty");
  return Status::ok();
}

/// dw3 (result 3) exactly when w3 (the fifth operand) is given: the kernel
/// writes one weight gradient per weight.
Status ffnGradCheck(const StepTensors &s) {
  if (Status rows = nonEmptyRows(s); !rows)
    return rows;
  if (s.outputs.size() + 1 != s.inputs.size())
    return Status::error("has " + std::to_string(s.inputs.size()) + " operands and " +
                         std::to_string(s.outputs.size()) +
                         " results: dw3 goes with w3, one gradient per weight");
  return Status::ok();
}

/// Key/value heads divide query heads (grouped-query attention); the mask
/// attributes as the dialect combines them.
Status attentionCheck(const StepTensors &s) {
  int64_t queryHeads = s.inputs[0].shape[2], kvHeads = s.inputs[1].shape[2];
  if (kvHeads == 0 || queryHeads % kvHeads != 0)
    return Status::error("key/value heads (" + std::to_string(kvHeads) +
                         ") must divide query heads (" + std::to_string(queryHeads) + ")");
  const plan::Attr *causal = s.attr("causal");
  bool isCausal = causal && causal->value_as_BoolAttr() && causal->value_as_BoolAttr()->value();
  if ((s.attr("window") || s.attr("chunk")) && !isCausal)
    return Status::error("a 'window' or 'chunk' needs causal attention");
  if (s.attr("window") && s.attr("chunk"))
    return Status::error("takes a 'window' or a 'chunk', not both");
  if (!s.attr("temperature_floor") != !s.attr("temperature_scale"))
    return Status::error("'temperature_floor' and 'temperature_scale' go together");
  return Status::ok();
}

/// attentionCheck, and dsinks (result 3) exactly when sinks (operand 4) is
/// given.
Status attentionGradCheck(const StepTensors &s) {
  if (Status heads = attentionCheck(s); !heads)
    return heads;
  if (s.outputs.size() + 1 != s.inputs.size())
    return Status::error("has " + std::to_string(s.inputs.size()) + " operands and " +
                         std::to_string(s.outputs.size()) + " results: dsinks goes with sinks");
  return Status::ok();
}

/// An even head dimension (rotated in pairs) and, when given, one inverse
/// frequency per pair.
Status ropeCheck(const StepTensors &s) {
  int64_t headDim = s.inputs[0].shape[3];
  if (headDim % 2 != 0)
    return Status::error("head dimension " + std::to_string(headDim) +
                         " is odd: RoPE rotates pairs");
  if (const plan::Attr *a = s.attr("inv_freq")) {
    const plan::FloatsAttr *v = a->value_as_FloatsAttr();
    int64_t n = v && v->values() ? v->values()->size() : 0;
    if (n != headDim / 2)
      return Status::error("attribute 'inv_freq' has " + std::to_string(n) +
                           " values for a head dimension of " + std::to_string(headDim) +
                           ", needs " + std::to_string(headDim / 2));
  }
  return Status::ok();
}

/// Result dimension d is input dimension permutation[d], each input
/// dimension once.
Status transposeCheck(const StepTensors &s) {
  const std::vector<int64_t> &in = s.inputs[0].shape, &out = s.outputs[0].shape;
  std::vector<int64_t> permutation = s.intsAttr("permutation");
  if (permutation.size() != in.size() || out.size() != in.size())
    return Status::error("permutation of " + std::to_string(permutation.size()) +
                         " dimensions from " + formatShape(in) + " to " + formatShape(out));
  std::vector<bool> seen(in.size(), false);
  for (size_t d = 0; d < permutation.size(); ++d) {
    int64_t p = permutation[d];
    if (p < 0 || p >= static_cast<int64_t>(in.size()) || seen[p])
      return Status::error("attribute 'permutation' is not a permutation of 0.." +
                           std::to_string(in.size() - 1));
    seen[p] = true;
    if (out[d] != in[p])
      return Status::error("result dimension " + std::to_string(d) + " is " +
                           std::to_string(out[d]) + ", input dimension " + std::to_string(p) +
                           " is " + std::to_string(in[p]));
  }
  return Status::ok();
}

/// `small` repeated along its dimensions of size 1 is `large`.
Status repeats(const TensorRef &small, const char *smallName, const TensorRef &large,
               const char *largeName) {
  if (small.rank() != large.rank())
    return Status::error(std::string(smallName) + " " + formatShape(small.shape) + " and " +
                         largeName + " " + formatShape(large.shape) + " differ in rank");
  for (int d = 0; d < small.rank(); ++d)
    if (small.shape[d] != 1 && small.shape[d] != large.shape[d])
      return Status::error(std::string(smallName) + " dimension " + std::to_string(d) + " is " +
                           std::to_string(small.shape[d]) + ": it must be 1 or " + largeName +
                           "'s, " + std::to_string(large.shape[d]));
  return Status::ok();
}

Status broadcastCheck(const StepTensors &s) {
  return repeats(s.inputs[0], "operand 0 (x)", s.outputs[0], "result 0 (y)");
}

Status broadcastGradCheck(const StepTensors &s) {
  return repeats(s.outputs[0], "result 0 (dx)", s.inputs[0], "operand 0 (dy)");
}
} // namespace

void addDenseSignatures(SignatureTable &t) {
  t.add("moe.embedding", "table:f32[V,D] tokens:i32[..B,T] -> y:f32[..B,T,D]");
  t.add("moe.embedding_grad", "dy:f32[..B,T,D] tokens:i32[..B,T] -> dtable:f32[V,D]");
  t.add("moe.rms_norm", "x:f32[..B,D] w:f32[D] -> y:f32[..B,D]; eps:float(>0)", nonEmptyRows);
  t.add("moe.rms_norm_grad",
        "x:f32[..B,D] w:f32[D] dy:f32[..B,D] -> dx:f32[..B,D] dw:f32[D]; eps:float(>0)",
        nonEmptyRows);
  t.add("moe.layer_norm", "x:f32[..B,D] w:f32[D] b:f32[D]? -> y:f32[..B,D]; eps:float(>0)",
        nonEmptyRows);
  t.add("moe.layer_norm_grad",
        "x:f32[..B,D] w:f32[D] dy:f32[..B,D] -> dx:f32[..B,D] dw:f32[D] "
        "db:f32[D]; eps:float(>0)",
        nonEmptyRows);
  t.add("moe.linear",
        "x:f32[..B,K] w:f32[N,K] b:f32[N]? -> y:f32[..B,N]; "
        "moe.precision:str?(fp32|bf16)",
        nonEmptyRows);
  t.add("moe.linear_grad",
        "x:f32[..B,K] w:f32[N,K] dy:f32[..B,N] -> dx:f32[..B,K] dw:f32[N,K]; "
        "moe.precision:str?(fp32|bf16)",
        nonEmptyRows);
  t.add("moe.activation", "x:f32[..S] -> y:f32[..S]; kind:str(relu|gelu|gelu_tanh|silu|sigmoid)");
  t.add("moe.activation_grad", "x:f32[..S] dy:f32[..S] -> dx:f32[..S]; "
                               "kind:str(relu|gelu|gelu_tanh|silu|sigmoid)");
  t.add("moe.add", "a:f32[..S] b:f32[..S] -> y:f32[..S]");
  t.add("moe.multiply", "a:f32[..S] b:f32[..S] -> y:f32[..S]");
  t.add("moe.scale", "x:f32[..S] -> y:f32[..S]; factor:float");
  t.add("moe.ffn",
        "x:f32[..B,D] w1:f32[F,D] w2:f32[D,F] w3:f32[F,D]? -> y:f32[..B,D]; "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) "
        "moe.precision:str?(fp32|bf16)",
        nonEmptyRows);
  t.add("moe.ffn_grad",
        "x:f32[..B,D] w1:f32[F,D] w2:f32[D,F] w3:f32[F,D]? dy:f32[..B,D] -> "
        "dx:f32[..B,D] dw1:f32[F,D] dw2:f32[D,F] dw3:f32[F,D]?; "
        "activation:str(relu|gelu|gelu_tanh|silu|sigmoid) "
        "moe.precision:str?(fp32|bf16)",
        ffnGradCheck);
  t.add("moe.rope",
        "x:f32[B,S,H,D] -> y:f32[B,S,H,D]; theta:float(>0) inv_freq:floats? "
        "attention_factor:float(>0) interleaved:bool?",
        ropeCheck);
  t.add("moe.rope_grad",
        "dy:f32[B,S,H,D] -> dx:f32[B,S,H,D]; theta:float(>0) inv_freq:floats? "
        "attention_factor:float(>0) interleaved:bool?",
        ropeCheck);
  t.add("moe.transpose", "x:f32[*] -> y:f32[*]; permutation:ints", transposeCheck);
  t.add("moe.clamped_swiglu", "x:f32[..B,W] -> y:f32[..B,W/2]; alpha:float(>0) limit:float(>0)");
  t.add("moe.clamped_swiglu_grad",
        "x:f32[..B,W] dy:f32[..B,W/2] -> dx:f32[..B,W]; alpha:float(>0) limit:float(>0)");
  t.add("moe.broadcast", "x:f32[*] -> y:f32[*]", broadcastCheck);
  t.add("moe.broadcast_grad", "dy:f32[*] -> dx:f32[*]", broadcastGradCheck);
  t.add("moe.attention",
        "q:f32[B,S,Hq,D] k:f32[B,S,Hkv,D] v:f32[B,S,Hkv,Dv] sinks:f32[Hq]? -> "
        "o:f32[B,S,Hq,Dv]; causal:bool? scale:float?(>0) window:int?(1..) chunk:int?(1..) "
        "temperature_floor:int?(1..) temperature_scale:float? moe.precision:str?(fp32|bf16)",
        attentionCheck);
  t.add("moe.attention_grad",
        "q:f32[B,S,Hq,D] k:f32[B,S,Hkv,D] v:f32[B,S,Hkv,Dv] dy:f32[B,S,Hq,Dv] sinks:f32[Hq]? -> "
        "dq:f32[B,S,Hq,D] dk:f32[B,S,Hkv,D] dv:f32[B,S,Hkv,Dv] dsinks:f32[Hq]?; causal:bool? "
        "scale:float?(>0) window:int?(1..) chunk:int?(1..) temperature_floor:int?(1..) "
        "temperature_scale:float? moe.precision:str?(fp32|bf16)",
        attentionGradCheck);
  t.add("moe.cross_entropy", "logits:f32[..B,V] targets:i32[..B] -> loss:f32[]");
  t.add("moe.cross_entropy_grad",
        "logits:f32[..B,V] targets:i32[..B] dloss:f32[] -> dlogits:f32[..B,V]");
  // The gradient helpers of MoEGradientOps.td: seeds and bias gradients.
  t.add("moe.fill", "-> y:f32[*]; value:float");
  t.add("moe.reduce_rows", "x:f32[..B,D] -> y:f32[D]; moe.precision:str?(fp32|bf16)", nonEmptyRows);
}

} // namespace moec::rt::signatures
