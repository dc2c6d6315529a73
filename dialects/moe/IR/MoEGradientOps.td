//===- MoEGradientOps.td - vector-Jacobian products --------*- tablegen -*-===//
//
// The backward counterparts of the forward ops, emitted by `--moe-autodiff`
// through each op's GradientOpInterface. Names end in `_grad`; `dX` is the
// gradient of the loss with respect to X.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_GRADIENT_OPS_TD
#define MOE_GRADIENT_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class MoE_GradOp<string mnemonic, list<Trait> traits = []>
    : MoE_Op<mnemonic, !listconcat([Pure], traits)> {
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

def MoE_FillOp : MoE_Op<"fill", [Pure]> {
  let summary = "a tensor with every element equal to `value`";
  let description = [{
    Seeds backward passes (`dloss = 1`) and provides unit gates.

    ```mlir
    %one = moe.fill {value = 1.0 : f32} : tensor<f32>
    ```
  }];
  let arguments = (ins F32Attr:$value);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

def MoE_ReduceRowsOp : MoE_GradOp<"reduce_rows"> {
  let summary = "sum over every dimension but the last (bias gradients)";
  let description = [{
    `result[j] = Σ_{i...} input[i..., j]`.
  }];
  let arguments = (ins MoE_FloatTensor:$input);
  let results = (outs MoE_FloatTensor:$result);
}

def MoE_BroadcastGradOp : MoE_GradOp<"broadcast_grad"> {
  let summary = "dinput of moe.broadcast: dresult summed over the repeated dimensions";
  let arguments = (ins MoE_FloatTensor:$dresult);
  let results = (outs MoE_FloatTensor:$dinput);
}

def MoE_EmbeddingGradOp : MoE_GradOp<"embedding_grad"> {
  let summary = "dtable: scatter-add of the output gradient rows";
  let arguments = (ins MoE_FloatTensor:$dresult, MoE_IndexTensor:$tokens);
  let results = (outs MoE_FloatTensor:$dtable);
}

def MoE_RMSNormGradOp : MoE_GradOp<"rms_norm_grad",
    [MoE_RowNormalizationGradient, AllTypesMatch<["input", "dresult", "dinput"]>, AllTypesMatch<["weight", "dweight"]>]> {
  let summary = "dinput and dweight of moe.rms_norm";
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight,
                       MoE_FloatTensor:$dresult, F32Attr:$eps);
  let results = (outs MoE_FloatTensor:$dinput, MoE_FloatTensor:$dweight);
}

def MoE_LinearGradOp : MoE_GradOp<"linear_grad",
    [MoE_DenseProductGradient, AllTypesMatch<["input", "dinput"]>, AllTypesMatch<["weight", "dweight"]>]> {
  let summary = "dinput = dresult · W, dweight = dresultᵀ · input";
  let description = [{
    Over all leading dimensions of `input` (`[..., in]`) and `dresult`
    (`[..., out]`). Bias gradients are `moe.reduce_rows` of `dresult`.
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight,
                       MoE_FloatTensor:$dresult);
  let results = (outs MoE_FloatTensor:$dinput, MoE_FloatTensor:$dweight);
}

def MoE_RoPEGradOp : MoE_GradOp<"rope_grad", [MoE_PositionRotation,
    AllTypesMatch<["dresult", "dinput"]>]> {
  let summary = "the transpose of the RoPE rotation";
  let arguments = (ins MoE_FloatTensor:$dresult, F32Attr:$theta,
                       OptionalAttr<DenseF32ArrayAttr>:$inv_freq,
                       DefaultValuedAttr<F32Attr, "1.0">:$attention_factor,
                       UnitAttr:$interleaved);
  let results = (outs MoE_FloatTensor:$dinput);
}

def MoE_AttentionGradOp : MoE_GradOp<"attention_grad",
    [AllTypesMatch<["query", "dquery"]>, AllTypesMatch<["key", "dkey"]>,
     AllTypesMatch<["value", "dvalue"]>]> {
  let summary = "dquery, dkey, dvalue (and dsinks) of moe.attention (probabilities recomputed)";
  let description = [{
    With `sinks`, `dsinks[h] = −Σ p_sink · Σ_j p_j dp_j` over the head's rows.
  }];
  let arguments = (ins MoE_FloatTensor:$query, MoE_FloatTensor:$key,
                       MoE_FloatTensor:$value, MoE_FloatTensor:$dresult,
                       Optional<MoE_FloatTensor>:$sinks,
                       UnitAttr:$causal, OptionalAttr<F32Attr>:$scale,
                       OptionalAttr<I64Attr>:$window, OptionalAttr<I64Attr>:$chunk,
                       OptionalAttr<I64Attr>:$temperature_floor,
                       OptionalAttr<F32Attr>:$temperature_scale);
  let results = (outs MoE_FloatTensor:$dquery, MoE_FloatTensor:$dkey,
                      MoE_FloatTensor:$dvalue, Optional<MoE_FloatTensor>:$dsinks);
}

def MoE_CausalConv1DGradOp : MoE_GradOp<"causal_conv1d_grad",
    [AllTypesMatch<["input", "dinput"]>, AllTypesMatch<["weight", "dweight"]>]> {
  let summary = "dinput and dweight of moe.causal_conv1d";
  let description = [{
    `dinput[b, s, c] = Σ_j weight[c, j] · dresult[b, s + K − 1 − j, c]` over
    the positions within the sequence; `dweight[c, j]` sums
    `dresult[b, s, c] · input[b, s − (K − 1) + j, c]` over sequences and
    positions.
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight,
                       MoE_FloatTensor:$dresult);
  let results = (outs MoE_FloatTensor:$dinput, MoE_FloatTensor:$dweight);
}

def MoE_DeltaDecayGradOp : MoE_GradOp<"delta_decay_grad",
    [AllTypesMatch<["input", "dinput"]>, AllTypesMatch<["a_log", "da_log"]>,
     AllTypesMatch<["dt_bias", "ddt_bias"]>]> {
  let summary = "dinput, da_log and ddt_bias of moe.delta_decay";
  let description = [{
    With `u = input + dt_bias` and `g = −exp(a_log) · softplus(u)`:
    `dinput = −dresult · exp(a_log) · σ(u)` (1 above 20, as PyTorch's
    softplus passes gradients), `ddt_bias` its sum over positions, and
    `da_log = Σ dresult · g` over positions.
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$a_log,
                       MoE_FloatTensor:$dt_bias, MoE_FloatTensor:$dresult);
  let results = (outs MoE_FloatTensor:$dinput, MoE_FloatTensor:$da_log,
                      MoE_FloatTensor:$ddt_bias);
}

def MoE_GatedDeltaRuleGradOp : MoE_GradOp<"gated_delta_rule_grad",
    [AllTypesMatch<["query", "dquery"]>, AllTypesMatch<["key", "dkey"]>,
     AllTypesMatch<["value", "dvalue"]>, AllTypesMatch<["decay", "ddecay"]>,
     AllTypesMatch<["beta", "dbeta"]>]> {
  let summary = "the gradients of moe.gated_delta_rule's five operands (states recomputed)";
  let description = [{
    Backpropagation through the recurrence, last position first, with the
    states recomputed from the operands. Per position, with `A = exp(g)·M`
    the decayed state and `m = Aᵀk`: `dM += q̂ doᵀ`, `dq̂ = M do`,
    `dk = dM δ + A dm`, `dδ = dMᵀ k`, `dv = β dδ`, `dβ = dδ · (v − m)`,
    `dm = −β dδ`, `dA = dM + k dmᵀ`, `dg = Σ dA ⊙ A`, and `exp(g)·dA` is the
    earlier state's `dM`. Through the scale and the L2 norms to `dquery` and
    `dkey`; query and key heads shared by several value heads sum theirs.
  }];
  let arguments = (ins MoE_FloatTensor:$query, MoE_FloatTensor:$key, MoE_FloatTensor:$value,
                       MoE_FloatTensor:$decay, MoE_FloatTensor:$beta, MoE_FloatTensor:$dresult,
                       OptionalAttr<F32Attr>:$scale, OptionalAttr<F32Attr>:$qk_l2norm_eps);
  let results = (outs MoE_FloatTensor:$dquery, MoE_FloatTensor:$dkey, MoE_FloatTensor:$dvalue,
                      MoE_FloatTensor:$ddecay, MoE_FloatTensor:$dbeta);
}

def MoE_LightningAttentionGradOp : MoE_GradOp<"lightning_attention_grad",
    [AllTypesMatch<["query", "key", "value", "dresult", "dquery", "dkey", "dvalue"]>]> {
  let summary = "dquery, dkey and dvalue of moe.lightning_attention";
  let description = [{
    `dq_t = M_t do_t` with the forward state `M_t = e^{−s} M_{t−1} + k_t v_tᵀ`;
    `dk_t = G_t v_t` and `dv_t = G_tᵀ k_t` with the backward state
    `G_t = e^{−s} G_{t+1} + q_t do_tᵀ`, from the last position.
  }];
  let arguments = (ins MoE_FloatTensor:$query, MoE_FloatTensor:$key, MoE_FloatTensor:$value,
                       MoE_FloatTensor:$dresult, DenseF32ArrayAttr:$decay);
  let results = (outs MoE_FloatTensor:$dquery, MoE_FloatTensor:$dkey, MoE_FloatTensor:$dvalue);
}

def MoE_ClampedSwiGLUGradOp : MoE_GradOp<"clamped_swiglu_grad",
    [AllTypesMatch<["input", "dinput"]>]> {
  let summary = "dinput of moe.clamped_swiglu";
  let description = [{
    Interleaved like the input: `dgate = dr · (u + 1) · σ(αg)(1 + αg(1 − σ(αg)))`
    where the gate is at most `limit` (else 0), `dup = dr · g σ(αg)` where
    the up projection is within `[−limit, limit]` (else 0), as PyTorch's
    clamp passes gradients at its bounds.
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$dresult,
                       F32Attr:$alpha, F32Attr:$limit);
  let results = (outs MoE_FloatTensor:$dinput);
}

def MoE_FFNGradOp : MoE_GradOp<"ffn_grad"> {
  let summary = "dinput and the weight gradients of a dense FFN";
  let description = [{
    Results: `dinput`, then one gradient per weight operand (`dw1`, `dw2`,
    and `dw3` when gated).
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       MoE_FloatTensor:$w2, Optional<MoE_FloatTensor>:$w3,
                       MoE_FloatTensor:$dresult, MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$dinput, Variadic<MoE_FloatTensor>:$dweights);
}

def MoE_CrossEntropyGradOp : MoE_GradOp<"cross_entropy_grad",
    [MoE_LogitRows, AllTypesMatch<["logits", "dlogits"]>,
     DeclareOpInterfaceMethods<MoE_InPlaceOpInterface>]> {
  let summary = "dlogits = (softmax(logits) − onehot(targets)) · dloss / N";
  let arguments = (ins MoE_FloatTensor:$logits, MoE_IndexTensor:$targets,
                       MoE_ScalarF32:$dloss);
  let results = (outs MoE_FloatTensor:$dlogits);
}

def MoE_ScoreGradOp : MoE_GradOp<"score_grad",
    [MoE_TokenRows, AllTypesMatch<["scores", "dscores", "dlogits"]>]> {
  let summary = "dlogits of moe.score from its output";
  let description = [{
    softmax: `dl = s ⊙ (ds − Σ ds ⊙ s) / temperature`; sigmoid:
    `dl = ds ⊙ s ⊙ (1 − s)`.
  }];
  let arguments = (ins MoE_RouterTensor:$scores, MoE_RouterTensor:$dscores,
                       MoE_ScoreFunctionAttr:$function, F32Attr:$temperature);
  let results = (outs MoE_RouterTensor:$dlogits);
}

def MoE_SelectionGradOp : MoE_GradOp<"selection_grad",
    [MoE_TokenRows, AllTypesMatch<["scores", "dscores"]>]> {
  let summary = "dscores of a token-choice selection through its weights";
  let description = [{
    The weights of every token-choice selection are
    `w_j = scaling · s[idx_j] / (Σ_i s[idx_i] + norm_eps)` (without the
    denominator when not `normalize`); the indices carry no gradient. This op
    scatters `dweights` back to the selected scores.
  }];
  let arguments = (ins MoE_RouterTensor:$scores, MoE_IndexTensor:$indices,
                       MoE_RouterTensor:$dweights, BoolAttr:$normalize,
                       F32Attr:$norm_eps, F32Attr:$scaling);
  let results = (outs MoE_RouterTensor:$dscores);
}

def MoE_SortByExpertGradOp : MoE_GradOp<"sort_by_expert_grad"> {
  let summary = "dweights of moe.sort_by_expert from dsorted_gates";
  let arguments = (ins MoE_IndexTensor:$indices, MoE_RouterTensor:$dsorted_gates,
                       I64Attr:$num_experts);
  let results = (outs MoE_RouterTensor:$dweights);
}

def MoE_AssignSlotsGradOp : MoE_GradOp<"assign_slots_grad",
    [AllTypesMatch<["weights", "dweights"]>]> {
  let summary = "dweights of moe.assign_slots from dslot_gates (assignment replayed)";
  let arguments = (ins MoE_RouterTensor:$weights, MoE_IndexTensor:$indices,
                       MoE_RouterTensor:$dslot_gates, I64Attr:$num_experts,
                       I64Attr:$capacity, MoE_DropPriorityAttr:$priority);
  let results = (outs MoE_RouterTensor:$dweights);
}

def MoE_ScaleRowsGradOp : MoE_GradOp<"scale_rows_grad",
    [AllTypesMatch<["input", "dresult", "dinput"]>, AllTypesMatch<["gates", "dgates"]>]> {
  let summary = "dinput and dgates of moe.scale_rows";
  let description = [{
    `dinput = gates · dresult` row by row, `dgates[s] = input[s] · dresult[s]`.
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_RouterTensor:$gates,
                       MoE_FloatTensor:$dresult);
  let results = (outs MoE_FloatTensor:$dinput, MoE_RouterTensor:$dgates);
}

def MoE_CombineGradOp : MoE_GradOp<"combine_grad",
    [AllShapesMatch<["expert_outputs", "dexpert_outputs"]>,
     AllTypesMatch<["slot_gates", "dslot_gates"]>]> {
  let summary = "dexpert_outputs and dslot_gates of moe.combine";
  let description = [{
    `expert_outputs` may be stored in bf16 (`--moe-bf16-activations`);
    `dexpert_outputs` has their shape and `dresult`'s element type.
  }];
  let arguments = (ins MoE_FloatTensor:$expert_outputs, MoE_RouterTensor:$slot_gates,
                       MoE_IndexTensor:$slot_tokens, MoE_FloatTensor:$dresult);
  let results = (outs MoE_FloatTensor:$dexpert_outputs, MoE_RouterTensor:$dslot_gates);
}

def MoE_GroupedFFNGradOp : MoE_GradOp<"grouped_ffn_grad", [AttrSizedOperandSegments]> {
  let summary = "dinput and the weight gradients of moe.grouped_ffn";
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       MoE_FloatTensor:$w2, Optional<MoE_FloatTensor>:$w3,
                       Optional<MoE_IndexTensor>:$group_sizes,
                       MoE_FloatTensor:$dresult, MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$dinput, Variadic<MoE_FloatTensor>:$dweights);
}

def MoE_LoadBalancingLossGradOp : MoE_GradOp<"load_balancing_loss_grad",
    [MoE_TokenStatisticGradient, AllTypesMatch<["scores", "dscores"]>]> {
  let summary = "dscores of moe.load_balancing_loss (the counts are constants)";
  let arguments = (ins MoE_RouterTensor:$scores, MoE_IndexTensor:$indices,
                       MoE_ScalarF32:$dloss, MoE_LoadBalancingAttr:$kind,
                       OptionalAttr<I64Attr>:$seq_len);
  let results = (outs MoE_RouterTensor:$dscores);
}

def MoE_ZLossGradOp : MoE_GradOp<"z_loss_grad", [MoE_TokenRows, AllTypesMatch<["logits", "dlogits"]>]> {
  let summary = "dlogits = 2 · lse · softmax(logits) · dloss / T";
  let arguments = (ins MoE_RouterTensor:$logits, MoE_ScalarF32:$dloss);
  let results = (outs MoE_RouterTensor:$dlogits);
}

def MoE_LayerNormGradOp : MoE_GradOp<"layer_norm_grad",
    [AllTypesMatch<["input", "dresult", "dinput"]>,
     AllTypesMatch<["weight", "dweight", "dbias"]>]> {
  let summary = "dinput, dweight and dbias of moe.layer_norm";
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight,
                       MoE_FloatTensor:$dresult, F32Attr:$eps);
  let results = (outs MoE_FloatTensor:$dinput, MoE_FloatTensor:$dweight,
                      MoE_FloatTensor:$dbias);
}

def MoE_ActivationGradOp : MoE_GradOp<"activation_grad",
    [Elementwise, AllTypesMatch<["input", "dresult", "dinput"]>]> {
  let summary = "dinput = dresult ⊙ act'(input)";
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$dresult,
                       MoE_ActivationAttr:$kind);
  let results = (outs MoE_FloatTensor:$dinput);
}

def MoE_RouterInputTransformGradOp : MoE_GradOp<"router_input_transform_grad",
    [AllTypesMatch<["input", "dresult", "dinput"]>]> {
  let summary = "dinput of moe.router_input_transform";
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$dresult,
                       MoE_InputTransformAttr:$kind, F32Attr:$eps);
  let results = (outs MoE_FloatTensor:$dinput);
}

def MoE_GumbelSoftmaxGradOp : MoE_GradOp<"gumbel_softmax_grad",
    [MoE_TokenRows, AllTypesMatch<["scores", "dscores", "dlogits"]>]> {
  let summary = "dlogits = s ⊙ (ds − Σ ds ⊙ s) / τ (the noise is a constant)";
  let arguments = (ins MoE_RouterTensor:$scores, MoE_ScalarF32:$temperature,
                       MoE_RouterTensor:$dscores);
  let results = (outs MoE_RouterTensor:$dlogits);
}

def MoE_SparseMixerGradOp : MoE_GradOp<"sparsemixer_grad",
    [MoE_TokenRows, AllTypesMatch<["logits", "dlogits"]>]> {
  let summary = "dlogits of moe.sparsemixer_route from dweights";
  let description = [{
    Per pick `j` of `indices` (`[T, 2]`), with `p_j` the softmax of the
    logits masked as the forward pass masked them for that pick (recomputed
    from `logits`, the earlier pick and `epsilon`):
    `dlogits += dweights[j] · p_j[pick] · (onehot(pick) − p_j)`.
  }];
  let arguments = (ins MoE_RouterTensor:$logits, MoE_IndexTensor:$indices,
                       MoE_RouterTensor:$dweights, F32Attr:$epsilon);
  let results = (outs MoE_RouterTensor:$dlogits);
}

def MoE_ExpertChoiceGradOp : MoE_GradOp<"expert_choice_grad"> {
  let summary = "dscores of moe.expert_choice_route from dslot_gates";
  let description = [{
    `dscores[slot_tokens[e, c], e] += dslot_gates[e, c]`; the result is
    `[num_tokens, E]`.
  }];
  let arguments = (ins MoE_IndexTensor:$slot_tokens, MoE_RouterTensor:$dslot_gates);
  let results = (outs MoE_RouterTensor:$dscores);
}

def MoE_EntropyLossGradOp : MoE_GradOp<"entropy_loss_grad",
    [AllTypesMatch<["scores", "dscores"]>]> {
  let summary = "dscores of moe.entropy_loss";
  let arguments = (ins MoE_RouterTensor:$scores, MoE_ScalarF32:$dloss, F32Attr:$q);
  let results = (outs MoE_RouterTensor:$dscores);
}

def MoE_SharedExpertsGradOp : MoE_GradOp<"shared_experts_grad", [AttrSizedOperandSegments]> {
  let summary = "dinput and the weight (and sigmoid-gate) gradients of moe.shared_experts";
  let description = [{
    Results: `dinput`, then one gradient per weight operand in order
    (`w1`, `w2`, `w3` if given, `sigmoid_gate` if given).
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       MoE_FloatTensor:$w2, Optional<MoE_FloatTensor>:$w3,
                       Optional<MoE_FloatTensor>:$sigmoid_gate,
                       MoE_FloatTensor:$dresult, MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$dinput, Variadic<MoE_FloatTensor>:$dweights);
}

def MoE_LoRAExpertsGradOp : MoE_GradOp<"lora_experts_grad", [AttrSizedOperandSegments]> {
  let summary = "dinput and the adapter gradients of moe.lora_experts (base frozen)";
  let description = [{
    Results: `dinput`, then one gradient per adapter operand, in order.
  }];
  let arguments = (ins MoE_FloatTensor:$input, Variadic<MoE_FloatTensor>:$base,
                       Variadic<MoE_FloatTensor>:$adapters,
                       Optional<MoE_IndexTensor>:$group_sizes,
                       MoE_FloatTensor:$dresult, F32Attr:$alpha,
                       MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$dinput, Variadic<MoE_FloatTensor>:$dadapters);
}

def MoE_GroupedFFNUpGradOp : MoE_GradOp<"grouped_ffn_up_grad",
    [MoE_HiddenGradientInput, AttrSizedOperandSegments]> {
  let summary = "dinput, dw1 (and dw3) of moe.grouped_ffn_up";
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       Optional<MoE_FloatTensor>:$w3,
                       Optional<MoE_IndexTensor>:$group_sizes,
                       MoE_FloatTensor:$dhidden);
  let results = (outs MoE_FloatTensor:$dinput, Variadic<MoE_FloatTensor>:$dweights);
}

def MoE_GroupedFFNDownGradOp : MoE_GradOp<"grouped_ffn_down_grad",
    [MoE_ActivationGradient, AllShapesMatch<["hidden", "dhidden"]>, AllTypesMatch<["w2", "dw2"]>]> {
  let summary = "dhidden and dw2 of moe.grouped_ffn_down";
  let description = [{
    `hidden` may be stored in bf16 (`--moe-bf16-activations`); `dhidden`
    has `hidden`'s shape and `dresult`'s element type.
  }];
  let arguments = (ins MoE_FloatTensor:$hidden, MoE_FloatTensor:$w2,
                       Optional<MoE_IndexTensor>:$group_sizes,
                       MoE_FloatTensor:$dresult, MoE_ActivationAttr:$activation,
                       UnitAttr:$gated);
  let results = (outs MoE_FloatTensor:$dhidden, MoE_FloatTensor:$dw2);
}

#endif // MOE_GRADIENT_OPS_TD
