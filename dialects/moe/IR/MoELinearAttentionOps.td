//===- MoELinearAttentionOps.td - gated DeltaNet token mixing -*- tablegen -*-===//
//
// Qwen3-Next's linear attention (transformers' Qwen3NextGatedDeltaNet): a
// short causal convolution over each channel, a per-head decay, and the gated
// delta rule, a recurrence over positions whose state is a [Dk, Dv] matrix
// per head.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LINEAR_ATTENTION_OPS_TD
#define MOE_LINEAR_ATTENTION_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "dialects/moe/IR/MoEInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_CausalConv1DOp : MoE_Op<"causal_conv1d", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>,
    Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "depthwise causal convolution along the sequence";
  let description = [{
    `input` is `[B, S, C]`, `weight` `[C, K]`; each channel is convolved
    with its own kernel over the positions up to itself, zeros before the
    sequence: `result[b, s, c] = Σ_j weight[c, j] · input[b, s − (K − 1) + j, c]`
    (PyTorch's `conv1d` with `groups = C` and `padding = K − 1`, its first
    `S` outputs). No bias, no activation.

    ```mlir
    %y = moe.causal_conv1d %x, %w : tensor<2x8x96xf32>, tensor<96x4xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def MoE_DeltaDecayOp : MoE_Op<"delta_decay", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>,
    Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "the gated delta rule's log decay per position and head";
  let description = [{
    `result = −exp(a_log) · softplus(input + dt_bias)` with `input`
    `[B, S, H]` and `a_log`, `dt_bias` `[H]` (Qwen3-Next's `A_log` and
    `dt_bias`); `softplus(x) = log(1 + exp(x))`, `x` above 20 as itself, as
    PyTorch computes it. The state decays by `exp(result)` per position.

    ```mlir
    %g = moe.delta_decay %a, %a_log, %dt_bias : tensor<2x8x4xf32>, tensor<4xf32>, tensor<4xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$a_log, MoE_FloatTensor:$dt_bias);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $a_log `,` $dt_bias attr-dict `:` type($input) `,` type($a_log) `,` type($dt_bias)
  }];
  let hasVerifier = 1;
}

def MoE_GatedDeltaRuleOp : MoE_Op<"gated_delta_rule", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>,
    Pure, AllTypesMatch<["value", "result"]>]> {
  let summary = "the gated delta rule: linear attention with a decaying, corrected state";
  let description = [{
    `query`, `key` are `[B, S, Hk, Dk]`, `value` `[B, S, Hv, Dv]` with `Hk`
    dividing `Hv` (value head `h` reads query/key head `h / (Hv / Hk)`),
    `decay` (`g`) and `beta` `[B, S, Hv]`; the result is `[B, S, Hv, Dv]`.
    Per sequence and value head, from a zero state `M` (`[Dk, Dv]`), each
    position `t` in order:

    ```
    M  ← exp(g_t) · M
    δ  = β_t · (v_t − Mᵀ k_t)
    M  ← M + k_t δᵀ
    o_t = Mᵀ (scale · q_t)
    ```

    With `qk_l2norm_eps` ε, queries and keys are first divided by
    `sqrt(Σ x² + ε)` over each head (transformers' `l2norm`, FLA's
    `use_qk_l2norm_in_kernel`); `scale` defaults to `1 / sqrt(Dk)`. The
    result is what transformers' `torch_chunk_gated_delta_rule` computes
    (its chunked form is the same recurrence).

    ```mlir
    %o = moe.gated_delta_rule %q, %k, %v, %g, %beta {qk_l2norm_eps = 1.0e-6 : f32}
        : tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4x16xf32>,
          tensor<2x8x4xf32>, tensor<2x8x4xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$query, MoE_FloatTensor:$key, MoE_FloatTensor:$value,
                       MoE_FloatTensor:$decay, MoE_FloatTensor:$beta,
                       OptionalAttr<F32Attr>:$scale, OptionalAttr<F32Attr>:$qk_l2norm_eps);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $decay `,` $beta attr-dict `:` type($query) `,` type($key) `,`
    type($value) `,` type($decay) `,` type($beta)
  }];
  let hasVerifier = 1;
}

def MoE_LightningAttentionOp : MoE_Op<"lightning_attention", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>,
    Pure, AllTypesMatch<["query", "key", "value", "result"]>]> {
  let summary = "linear attention with a fixed exponential decay per head";
  let description = [{
    MiniMax's lightning attention: `query`, `key`, `value` and the result
    are `[B, S, H, D]`; with `decay` (`[H]`, the slope rates s_h ≥ 0),
    `result[b, t, h] = Σ_{j ≤ t} exp(−s_h (t − j)) (q_t · k_j) v_j` per
    sequence: no softmax and no scale. (The state M = Σ e^{−s(t−j)} k_j v_jᵀ
    decays by `exp(−s_h)` per position; transformers computes the same sums
    in blocks.)

    ```mlir
    %o = moe.lightning_attention %q, %k, %v {decay = array<f32: 0.5, 0.25>} : tensor<2x8x2x16xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$query, MoE_FloatTensor:$key, MoE_FloatTensor:$value,
                       DenseF32ArrayAttr:$decay);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$query `,` $key `,` $value attr-dict `:` type($query)";
  let hasVerifier = 1;
}

#endif // MOE_LINEAR_ATTENTION_OPS_TD
