//===- MoELossOps.td - auxiliary losses and the objective --*- tablegen -*-===//

#ifndef MOE_LOSS_OPS_TD
#define MOE_LOSS_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "dialects/moe/IR/MoEInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

// Losses are 0-D f32 tensors and carry no coefficient: the metrics report
// each raw term and `moe.weighted_sum` forms the objective.

def MoE_LoadBalancingLossOp : MoE_Op<"load_balancing_loss",
    [MoE_TokenStatistic, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "load-balancing auxiliary loss (Switch, Mixtral, DeepSeek)";
  let description = [{
    `scores` is `[T, E]`, `indices` `[T, K]` (index -1 ignored);
    `P_e = mean_t scores[t, e]`.

    * `switch`: `E · Σ_e f_e · P_e`, `f_e` the fraction of the `T·K`
      assignments that went to `e` (1 when perfectly balanced).
    * `per_slot` (Mixtral, Qwen-MoE and OLMoE in transformers):
      `E · Σ_{slot, e} f[slot, e] · P_e`, `f[slot, e]` the fraction of tokens
      whose `slot`-th choice is `e` (equals K when uniform). For the
      whole-model form, concatenate every MoE layer's scores and indices
      along tokens first.
    * `sequence` (DeepSeek): tokens form sequences of `seq_len`; per sequence
      `b`, `Σ_e (count_{b,e} / (seq_len·K/E)) · mean_{t∈b} scores[t, e]`, then
      the mean over sequences.

    ```mlir
    %aux = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>}
             : tensor<16x8xf32>, tensor<16x2xi32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores, MoE_IndexTensor:$indices,
                       MoE_LoadBalancingAttr:$kind,
                       OptionalAttr<I64Attr>:$seq_len);
  let results = (outs MoE_ScalarF32:$loss);
  let assemblyFormat =
      "$scores `,` $indices attr-dict `:` type($scores) `,` type($indices)";
  let hasVerifier = 1;
}

def MoE_ZLossOp : MoE_Op<"z_loss", [MoE_BatchMean, MoE_TokenStatistic,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "router z-loss (ST-MoE)";
  let description = [{
    `mean_t (logsumexp_e logits[t, e])²` over `[T, E]` router logits.

    ```mlir
    %z = moe.z_loss %l : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$logits);
  let results = (outs MoE_ScalarF32:$loss);
  let assemblyFormat = "$logits attr-dict `:` type($logits)";
  let hasVerifier = 1;
}

def MoE_EntropyLossOp : MoE_Op<"entropy_loss", [MoE_BatchMean, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "mean router entropy (Tsallis; Shannon when q = 1)";
  let description = [{
    `mean_t S_q(scores[t, :])` with `S_q(s) = (1 − Σ_e s_e^q) / (q − 1)`, and
    `S_1(s) = −Σ_e s_e log s_e`. DynMoLE adds it with a coefficient to push
    the router toward confident choices.

    ```mlir
    %h = moe.entropy_loss %s {q = 1.5 : f32} : tensor<16x8xf32>
    ```
  }];
  let arguments = (ins MoE_RouterTensor:$scores,
                       DefaultValuedAttr<F32Attr, "1.0">:$q);
  let results = (outs MoE_ScalarF32:$loss);
  let assemblyFormat = "$scores attr-dict `:` type($scores)";
  let hasVerifier = 1;
}

def MoE_WeightedSumOp : MoE_Op<"weighted_sum", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "the training objective: a weighted sum of loss terms";
  let description = [{
    `Σ_i coefficients[i] · terms[i]` over 0-D f32 terms, e.g. the LM loss with
    coefficient 1 and each auxiliary loss with its coefficient.

    ```mlir
    %loss = moe.weighted_sum %lm, %aux, %z {coefficients = array<f32: 1.0, 0.01, 0.001>}
    ```
  }];
  let arguments = (ins Variadic<MoE_ScalarF32>:$terms,
                       DenseF32ArrayAttr:$coefficients);
  let results = (outs MoE_ScalarF32:$result);
  let assemblyFormat = "$terms attr-dict";
  let hasVerifier = 1;
}

#endif // MOE_LOSS_OPS_TD
