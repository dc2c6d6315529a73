// LossSignatures.cpp - what each step of these ops must look like.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

#include <string>

namespace moec::rt::signatures {

namespace {

/// Sequence-wise balancing splits the tokens into whole sequences of
/// `seq_len` (which no other kind takes).
Status sequenceLength(const StepTensors &s) {
  const plan::Attr *kind = s.attr("kind");
  const plan::StringAttr *name = kind ? kind->value_as_StringAttr() : nullptr;
  bool sequence = name && name->value() && name->value()->str() == "sequence";
  bool hasLength = s.attr("seq_len") != nullptr;
  if (!sequence)
    return hasLength ? Status::error("attribute 'seq_len' applies only to kind sequence")
                     : Status::ok();
  if (!hasLength)
    return Status::error("kind sequence needs attribute 'seq_len'");
  int64_t tokens = s.inputs[0].shape[0], length = s.intAttr("seq_len");
  if (tokens % length != 0)
    return Status::error("attribute 'seq_len' (" + std::to_string(length) +
                         ") must divide the number of tokens (" + std::to_string(tokens) + ")");
  return Status::ok();
}

/// One coefficient per term.
Status coefficientPerTerm(const StepTensors &s) {
  const plan::Attr *a = s.attr("coefficients");
  const plan::FloatsAttr *v = a ? a->value_as_FloatsAttr() : nullptr;
  size_t count = v && v->values() ? v->values()->size() : 0;
  if (count != s.inputs.size())
    return Status::error("attribute 'coefficients' has " + std::to_string(count) + " values for " +
                         std::to_string(s.inputs.size()) + " terms");
  return Status::ok();
}

} // namespace

void addLossSignatures(SignatureTable &t) {
  t.add("moe.load_balancing_loss",
        "scores:f32[T,E] indices:i32[T,K] -> loss:f32[]; kind:str(switch|per_slot|sequence) "
        "seq_len:int?(1..)",
        sequenceLength);
  t.add("moe.load_balancing_loss_grad",
        "scores:f32[T,E] indices:i32[T,K] dloss:f32[] -> dscores:f32[T,E]; "
        "kind:str(switch|per_slot|sequence) seq_len:int?(1..)",
        sequenceLength);
  t.add("moe.z_loss", "logits:f32[T,E] -> loss:f32[]");
  t.add("moe.z_loss_grad", "logits:f32[T,E] dloss:f32[] -> dlogits:f32[T,E]");
  t.add("moe.entropy_loss", "scores:f32[T,E] -> loss:f32[]; q:float(>0)");
  t.add("moe.entropy_loss_grad", "scores:f32[T,E] dloss:f32[] -> dscores:f32[T,E]; q:float(>0)");
  t.add("moe.weighted_sum", "terms:f32[]+ -> result:f32[]; coefficients:floats",
        coefficientPerTerm);
}

} // namespace moec::rt::signatures
