// DispatchSignatures.cpp - what each step of these ops must look like.
#include "runtime/core/OpSignature.h"
#include "runtime/core/signatures/Signatures.h"

#include <string>

namespace moec::rt::signatures {

namespace {
std::string describe(const TensorRef &t) { return dtypeName(t.dtype) + formatShape(t.shape); }

/// moe.routing_stats without indices (expert choice) reads the slots as
/// `[num_experts, C]`: slot i belongs to expert i / C.
Status checkRoutingStats(const StepTensors &s) {
  if (s.inputs.size() > 1)
    return Status::ok();
  const TensorRef &slots = s.inputs[0];
  int64_t experts = s.intAttr("num_experts");
  if (slots.shape.size() != 2 || slots.shape[0] != experts)
    return Status::error("operand 0 (slot_tokens) is " + describe(slots) +
                         ", expected [num_experts = " + std::to_string(experts) +
                         ", C] without indices");
  return Status::ok();
}

/// moe.expert_exchange and moe.expert_return: the executor sizes a row as
/// the bytes of each side over its row count, and moves rows of either
/// float type (bf16 expert results, --precision=bf16) if both sides agree.
Status checkExchangeRows(const StepTensors &s) {
  if (s.inputs[0].shape[0] < 1)
    return Status::error("operand 0 (rows) is " + describe(s.inputs[0]) + ", it has no rows");
  if (s.outputs[0].shape[0] < 1)
    return Status::error(std::string("result 0 (") +
                         (s.step.op()->str() == "moe.expert_exchange" ? "received" : "result") +
                         ") is " + describe(s.outputs[0]) + ", it has no rows");
  if (s.inputs[0].dtype != s.outputs[0].dtype)
    return Status::error("operand 0 (rows) is " + describe(s.inputs[0]) + " and result 0 " +
                         describe(s.outputs[0]) + ": rows travel as they are");
  return Status::ok();
}
} // namespace

void addDispatchSignatures(SignatureTable &t) {
  t.add("moe.assign_slots",
        "weights:f32[T,K] indices:i32[T,K] -> slot_tokens:i32[num_experts,capacity] "
        "slot_gates:f32[num_experts,capacity] expert_load:i32[num_experts]; "
        "num_experts:int(1..) capacity:int(1..) priority:str(position|score)");
  t.add("moe.assign_slots_grad",
        "weights:f32[T,K] indices:i32[T,K] dslot_gates:f32[num_experts,capacity] "
        "-> dweights:f32[T,K]; "
        "num_experts:int(1..) capacity:int(1..) priority:str(position|score)");
  t.add("moe.sort_by_expert",
        "weights:f32[T,K] indices:i32[T,K] -> sorted_tokens:i32[T*K] sorted_gates:f32[T*K] "
        "group_sizes:i32[num_experts]; num_experts:int(1..)");
  t.add("moe.sort_by_expert_grad",
        "indices:i32[T,K] dsorted_gates:f32[T*K] -> dweights:f32[T,K]; num_experts:int(1..)");
  t.add("moe.dispatch", "input:f32[T,D] slot_tokens:i32[..S,M] -> result:f32[..S,M,D]");
  t.add("moe.scale_rows", "input:f32[..S,M,D] gates:f32[..S,M] -> result:f32[..S,M,D]");
  t.add("moe.scale_rows_grad", "input:f32[..S,M,D] gates:f32[..S,M] dresult:f32[..S,M,D] "
                               "-> dinput:f32[..S,M,D] dgates:f32[..S,M]");
  t.add("moe.combine", "expert_outputs:float[..S,M,D] slot_gates:f32[..S,M] slot_tokens:i32[..S,M] "
                       "-> result:f32[T,D]");
  t.add("moe.combine_grad",
        "expert_outputs:float[..S,M,D] slot_gates:f32[..S,M] slot_tokens:i32[..S,M] "
        "dresult:f32[T,D] -> dexpert_outputs:f32[..S,M,D] dslot_gates:f32[..S,M]");
  t.add("moe.routing_stats",
        "slot_tokens:i32[..S,M] indices:i32[num_tokens,K]? "
        "-> expert_tokens:i32[num_experts] dropped_fraction:f32[]; "
        "num_experts:int(1..) num_tokens:int(1..)",
        checkRoutingStats);
  // Run by the executor (ExecutorCollectives.cpp). `mesh_axes` index the
  // plan's mesh and form the group of P ranks, which the executor checks
  // against the sizes: `counts` [P·E] with P dividing E, `local_sizes`
  // [E/P], slot blocks [E/P, C, d] of [E, C, d].
  t.add("moe.local_slots", "slot_tokens:i32[..S,M] -> result:i32[..S,M]; "
                           "tokens_per_rank:int(1..) mesh:str mesh_axes:ints(0..)");
  t.add("moe.expert_exchange",
        "rows:float[N,D] counts:i32[_] -> received:float[_,D] local_sizes:i32[_]; "
        "chunks:int(1..) chunk:int(0..chunks-1) mesh:str mesh_axes:ints(0..)",
        checkExchangeRows);
  t.add("moe.expert_return",
        "rows:float[N,D] counts:i32[_] -> result:float[_,D]; "
        "chunks:int(1..) chunk:int(0..chunks-1) mesh:str mesh_axes:ints(0..)",
        checkExchangeRows);
  t.add("moe.slots_to_experts",
        "slots:f32[_,C,D] -> result:f32[_,C,D]; mesh:str mesh_axes:ints(0..)");
  t.add("moe.slots_from_experts",
        "slots:f32[_,C,D] -> result:f32[_,C,D]; mesh:str mesh_axes:ints(0..)");
}

} // namespace moec::rt::signatures
