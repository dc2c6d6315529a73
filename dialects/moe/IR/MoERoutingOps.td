//===- MoERoutingOps.td - scoring and expert selection -----*- tablegen -*-===//

#ifndef MOE_ROUTING_OPS_TD
#define MOE_ROUTING_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "dialects/moe/IR/MoEInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Router input
//===----------------------------------------------------------------------===//

def MoE_RouterInputTransformOp : MoE_Op<"router_input_transform",
    [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "transform the router input before gating";
  let description = [{
    Modified softmax gating gates on `τ(x)` instead of `x`; the experts still
    see the untransformed `x`. `input` is `[T, d]`.

    * `none`: `τ(x) = x`
    * `l2norm`: `τ(x) = x / max(‖x‖₂, eps)` per token
    * `layernorm`: `(x − mean(x)) / sqrt(var(x) + eps)` per token, no affine
    * `tanh`: `τ(x) = tanh(x)`

    ```mlir
    %t = moe.router_input_transform %x {kind = #moe.input_transform<l2norm>}
           : tensor<16x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input,
                       MoE_InputTransformAttr:$kind,
                       DefaultValuedAttr<F32Attr, "1.0e-6">:$eps);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def MoE_RouterJitterOp : MoE_Op<"router_jitter",
    [MoE_BatchCoupled, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "multiplicative jitter noise on the router input (training only)";
  let description = [{
    `result = input ⊙ U(1 − epsilon, 1 + epsilon)`, the noise drawn per element
    from the counter-based generator keyed by `seed` and `stream` (Switch
    Transformer, Mixtral `router_jitter_noise` on the router input; PhiMoE
    `input_jitter_noise` on the whole MoE block's input). The frontend emits
    it for training graphs, never for evaluation, and gives every layer and
    use its own `stream`, so that layers draw independent noise.

    ```mlir
    %j = moe.router_jitter %x, %seed {epsilon = 0.01 : f32, stream = 3 : i64} : tensor<16x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_ScalarI64:$seed,
                       F32Attr:$epsilon, DefaultValuedAttr<I64Attr, "0">:$stream);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input `,` $seed attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def MoE_RouterLogitsOp : MoE_Op<"router_logits", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "router logits l = x · W_gᵀ, computed in f32";
  let description = [{
    `input` is `[T, d]`, `weight` the router weight `[E, d]` (Hugging Face
    `gate.weight`). The result `[T, E]` is always `f32`: the router runs in
    full precision whatever the model dtype.

    ```mlir
    %l = moe.router_logits %x, %wg : tensor<16x64xbf16>, tensor<8x64xbf16>
    // %l : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight);
  let results = (outs MoE_RouterTensor:$logits);
  let assemblyFormat =
      "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Scores
//===----------------------------------------------------------------------===//

def MoE_ScoreOp : MoE_Op<"score", [MoE_TokenRows, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, AllTypesMatch<["logits", "scores"]>]> {
  let summary = "router scores from logits: softmax or sigmoid";
  let description = [{
    `logits` is `[T, E]`.

    * `softmax`: `s = softmax(l / temperature)` over experts
    * `sigmoid`: `s = σ(l)` (DeepSeek-V3, normalised sigmoid gating); the
      temperature must be 1

    ```mlir
    %s = moe.score %l {function = #moe.score<softmax>} : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$logits,
                       MoE_ScoreFunctionAttr:$function,
                       DefaultValuedAttr<F32Attr, "1.0">:$temperature);
  let results = (outs MoE_RouterTensor:$scores);
  let assemblyFormat = "$logits attr-dict `:` type($logits)";
  let hasVerifier = 1;
}

def MoE_GumbelSoftmaxOp : MoE_Op<"gumbel_softmax", [MoE_BatchCoupled, MoE_TokenRows, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure,
    AllTypesMatch<["logits", "scores"]>]> {
  let summary = "Gumbel-softmax scores with a scheduled temperature (EvoMoE)";
  let description = [{
    `s = softmax((l + g) / τ)` over experts, `g` Gumbel(0, 1) noise drawn from
    the generator keyed by `seed` and `stream` (the layer). Without `noise`
    (evaluation) `g = 0`.
    `temperature` is a value, not an attribute, because it follows a schedule
    over training steps (the step number is an input of the training graph).

    ```mlir
    %s = moe.gumbel_softmax %l temperature(%tau) noise(%seed) : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$logits, MoE_ScalarF32:$temperature,
                       Optional<MoE_ScalarI64>:$seed,
                       DefaultValuedAttr<I64Attr, "0">:$stream);
  let results = (outs MoE_RouterTensor:$scores);
  let assemblyFormat = [{
    $logits `temperature` `(` $temperature `)` (`noise` `(` $seed^ `)`)?
    attr-dict `:` type($logits)
  }];
  let hasVerifier = 1;
}

def MoE_TemperatureScheduleOp : MoE_Op<"temperature_schedule", [Pure]> {
  let summary = "the Gumbel-softmax temperature at a training step";
  let description = [{
    `τ = start · (end / start)^p` with `p = min(step, steps) / steps`: an
    exponential decay from `start` to `end` over `steps` steps (EvoMoE's
    dense-to-sparse gate), then constant. Part of the step, so training and
    evaluation at step `n` agree.

    ```mlir
    %tau = moe.temperature_schedule %step {start = 2.0 : f32, end = 0.5 : f32, steps = 1000 : i64}
    ```
  }];
  let arguments = (ins MoE_ScalarI64:$step, F32Attr:$start, F32Attr:$end,
                       I64Attr:$steps);
  let results = (outs MoE_ScalarF32:$temperature);
  let assemblyFormat = "$step attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Selection: which experts each token uses, with which weight
//===----------------------------------------------------------------------===//

// Token-choice selections return `weights : [T, K] f32` and
// `indices : [T, K] i32`; variable-k selections pad with weight 0, index -1.
// Each token selects from its own row of scores (TokenRows).
class MoE_SelectionOp<string mnemonic, list<Trait> traits = []>
    : MoE_Op<mnemonic, !listconcat([MoE_TokenRows, Pure, InferTypeOpAdaptor,
        DeclareOpInterfaceMethods<MoE_GradientOpInterface>], traits)> {
  let results = (outs MoE_RouterTensor:$weights, MoE_IndexTensor:$indices);
  let hasVerifier = 1;
}

def MoE_TopKRouteOp : MoE_SelectionOp<"topk_route"> {
  let summary = "token-choice top-k selection";
  let description = [{
    `w, idx = topk(scores + bias, k)` over experts, the weights read from the
    unbiased `scores`. `bias` (`[E]`) is the DeepSeek-V3 selection bias for
    auxiliary-loss-free balancing: it changes which experts are chosen, never
    their weights. Then, if `normalize`, `w ← w / (Σw + norm_eps)`; finally
    `w ← w · scaling` (`routed_scaling_factor`). Switch top-1 is `k = 1`
    without normalisation (the raw maximum probability).

    ```mlir
    %w, %i = moe.topk_route %s {k = 2 : i64, normalize = true} : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores,
                       Optional<MoE_RouterTensor>:$bias,
                       I64Attr:$k,
                       DefaultValuedAttr<BoolAttr, "false">:$normalize,
                       DefaultValuedAttr<F32Attr, "0.0">:$norm_eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$scaling);
  let assemblyFormat = [{
    $scores (`bias` `(` $bias^ `:` type($bias) `)`)? attr-dict `:` type($scores)
  }];
}

def MoE_GroupTopKRouteOp : MoE_SelectionOp<"group_topk_route"> {
  let summary = "group-limited top-k selection (DeepSeek-V2/V3)";
  let description = [{
    The `E` experts form `num_groups` contiguous groups. Each group is scored
    from the (biased, if `bias` is given) scores: its maximum
    (`#moe.group_score<max>`, DeepSeek-V2 `group_limited_greedy`) or the sum of
    its two best (`#moe.group_score<top2_sum>`, DeepSeek-V3 `noaux_tc`). The
    `topk_groups` best groups are kept; the scores of the others are replaced
    by `-inf` or `0` (`mask_fill`), then top-`k` selection, normalisation and
    scaling proceed as in `moe.topk_route` (weights from unbiased scores).

    ```mlir
    %w, %i = moe.group_topk_route %s bias(%b : tensor<16xf32>)
               {k = 4 : i64, num_groups = 4 : i64, topk_groups = 2 : i64,
                group_score = #moe.group_score<top2_sum>, normalize = true,
                norm_eps = 1.0e-20 : f32, scaling = 2.5 : f32}
               : tensor<32x16xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores,
                       Optional<MoE_RouterTensor>:$bias,
                       I64Attr:$k, I64Attr:$num_groups, I64Attr:$topk_groups,
                       MoE_GroupScoreAttr:$group_score,
                       DefaultValuedAttr<MoE_MaskFillAttr,
                           "::moec::moe::MaskFill::neg_inf">:$mask_fill,
                       DefaultValuedAttr<BoolAttr, "false">:$normalize,
                       DefaultValuedAttr<F32Attr, "0.0">:$norm_eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$scaling);
  let assemblyFormat = [{
    $scores (`bias` `(` $bias^ `:` type($bias) `)`)? attr-dict `:` type($scores)
  }];
}

def MoE_PrototypeRouteOp : MoE_SelectionOp<"prototype_route"> {
  let summary = "k top-1 expert prototyping (M6-T)";
  let description = [{
    The `E` experts form `num_prototypes` contiguous prototypes of
    `E / num_prototypes` experts each; every token takes the top-1 expert of
    each prototype, so it uses `K = num_prototypes` experts at the cost of
    top-K. The weight of a pick is its score, normalised over the K picks if
    `normalize`.

    ```mlir
    %w, %i = moe.prototype_route %s {num_prototypes = 2 : i64} : tensor<16x8xf32>
    // %w : tensor<16x2xf32>, %i : tensor<16x2xi32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores, I64Attr:$num_prototypes,
                       DefaultValuedAttr<BoolAttr, "false">:$normalize);
  let assemblyFormat = "$scores attr-dict `:` type($scores)";
}

def MoE_TopPRouteOp : MoE_SelectionOp<"top_p_route"> {
  let summary = "top-p (nucleus) selection: a variable number of experts";
  let description = [{
    Per token, the scores sorted in decreasing order; the smallest prefix whose
    cumulative score reaches `p` is kept, at least one expert and at most
    `max_k`. Results are `[T, max_k]`, unused slots padded with weight 0 and
    index -1. If `normalize`, weights are renormalised over the kept experts.

    ```mlir
    %w, %i = moe.top_p_route %s {p = 0.5 : f32, max_k = 4 : i64} : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores, F32Attr:$p, I64Attr:$max_k,
                       DefaultValuedAttr<BoolAttr, "false">:$normalize);
  let assemblyFormat = "$scores attr-dict `:` type($scores)";
}

def MoE_EntropyHybridRouteOp : MoE_SelectionOp<"entropy_hybrid_route"> {
  let summary = "Tsallis-entropy hybrid top-k / top-p selection (DynMoLE)";
  let description = [{
    Per token the Tsallis entropy `S_q(s) = (1 − Σ_e s_e^q) / (q − 1)` of its
    scores (Shannon entropy when `q = 1`) measures router uncertainty. Tokens
    with `S_q > threshold` are routed broadly with top-`p` selection capped at
    `max_k` (`p = 1, max_k = E` routes them to all experts); confident tokens
    use top-`k`. Results are `[T, max_k]`, padded with weight 0 and index -1;
    weights are renormalised over the kept experts if `normalize`.

    ```mlir
    %w, %i = moe.entropy_hybrid_route %s {q = 1.5 : f32, threshold = 0.9 : f32,
               k = 2 : i64, p = 0.75 : f32, max_k = 4 : i64} : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores, F32Attr:$q, F32Attr:$threshold,
                       I64Attr:$k, F32Attr:$p, I64Attr:$max_k,
                       DefaultValuedAttr<BoolAttr, "true">:$normalize);
  let assemblyFormat = "$scores attr-dict `:` type($scores)";
}

def MoE_ThresholdRouteOp : MoE_SelectionOp<"threshold_route"> {
  let summary = "dense-to-sparse thresholded selection (EvoMoE DTS gate)";
  let description = [{
    Keeps every expert whose score exceeds `threshold` (dense while the
    Gumbel-softmax temperature is high, sparse once it is low), the best
    `max_k` of them if more pass, and always at least the best expert.
    Weights are renormalised over the kept experts. Results are `[T, max_k]`,
    padded with weight 0 and index -1.

    ```mlir
    %w, %i = moe.threshold_route %s {threshold = 0.1 : f32, max_k = 8 : i64}
               : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores, F32Attr:$threshold,
                       I64Attr:$max_k);
  let assemblyFormat = "$scores attr-dict `:` type($scores)";
}

def MoE_SparseMixerRouteOp : MoE_SelectionOp<"sparsemixer_route", [MoE_BatchCoupled]> {
  let summary = "SparseMixer top-2 selection from router logits (PhiMoE)";
  let description = [{
    Two picks from the raw `logits` `l` (`[T, E]`), as PhiMoE's `sparsemixer`
    (Liu et al. 2024, GRIN). Pick 1: experts whose logit trails the best `m`
    by more than `2·epsilon` relative, `(m − l_e) / max(|l_e|, m) > 2ε`, are
    masked to −∞; `p = softmax` of what remains; in evaluation the pick is the
    best expert, in training a Gumbel sample `argmax(masked + g)`. Its weight
    is `p[pick]`, in training times `1` when the pick is `p`'s best or with
    probability 1/4 (a uniform draw above 0.75), else `1/3` (Heun's third-order
    midpoint). Pick 2: the same on the logits with pick 1 masked to −∞, the
    threshold measured from their best. `seed` (training) keys the noise with
    `stream` (the layer); without it, evaluation.

    The gradient (`moe.sparsemixer_grad`) is the straight softmax gradient of
    `p[pick]` whatever the 1/3 factor: `dl = dw·p[pick]·(onehot(pick) − p)`
    per pick, as PhiMoE's PhimoeMultiplier backward.

    ```mlir
    %w, %i = moe.sparsemixer_route %l noise(%seed) {epsilon = 0.01 : f32, stream = 0 : i64}
               : tensor<16x8xf32>
    // %w : tensor<16x2xf32>, %i : tensor<16x2xi32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$logits, Optional<MoE_ScalarI64>:$seed,
                       F32Attr:$epsilon, DefaultValuedAttr<I64Attr, "0">:$stream);
  let assemblyFormat = [{
    $logits (`noise` `(` $seed^ `)`)? attr-dict `:` type($logits)
  }];
}

def MoE_ExpertChoiceRouteOp : MoE_Op<"expert_choice_route",
    [MoE_BatchCoupled, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "expert-choice routing: each expert picks its top-C tokens";
  let description = [{
    Each expert `e` takes the `capacity` tokens with the highest `scores[:, e]`
    (Zhou et al.); the frontend sets `capacity = round(capacity_factor·T/E)`.
    Results are in slot form, `[E, C]`: `slot_tokens[e, c]` the token in slot
    `c` of expert `e` and `slot_gates[e, c]` its score. A token may be taken by
    0 to E experts; no load-balancing loss is needed. The selection looks
    across the whole batch, so it is not causal: suited to encoders and to the
    experiments of the paper, not to autoregressive decoding.

    ```mlir
    %tok, %gate = moe.expert_choice_route %s {capacity = 4 : i64} : tensor<16x8xf32>
    // %tok : tensor<8x4xi32>, %gate : tensor<8x4xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores, I64Attr:$capacity);
  let results = (outs MoE_IndexTensor:$slot_tokens,
                      MoE_RouterTensor:$slot_gates);
  let assemblyFormat = "$scores attr-dict `:` type($scores)";
  let hasVerifier = 1;
}

def MoE_UpdateSelectionBiasOp : MoE_Op<"update_selection_bias",
    [Pure, AllTypesMatch<["bias", "result"]>]> {
  let summary = "auxiliary-loss-free balancing: update the selection bias";
  let description = [{
    `b_e ← b_e + rate · sign(mean_e(load) − load_e)` (DeepSeek-V3). `load` is
    the number of assignments each expert received in the step (`[E]`). The
    bias is not trained by backpropagation; this op is its update rule.

    ```mlir
    %b2 = moe.update_selection_bias %b, %load {rate = 0.001 : f32}
            : tensor<8xf32>, tensor<8xi32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$bias, MoE_IndexTensor:$load,
                       F32Attr:$rate);
  let results = (outs MoE_RouterTensor:$result);
  let assemblyFormat =
      "$bias `,` $load attr-dict `:` type($bias) `,` type($load)";
  let hasVerifier = 1;
}

#endif // MOE_ROUTING_OPS_TD
