//===- MoEExpertOps.td - expert compute --------------------*- tablegen -*-===//

#ifndef MOE_EXPERT_OPS_TD
#define MOE_EXPERT_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "dialects/moe/IR/MoEInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_GroupedFFNOp : MoE_Op<"grouped_ffn",
    [MoE_MatrixProducts, MoE_GatheredInput, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, AttrSizedOperandSegments, InferTypeOpAdaptor]> {
  let summary = "the routed experts: one FFN per expert over its tokens";
  let description = [{
    Expert `e` computes `W2_e · act(W1_e x)`, or with `w3` the gated form
    `W2_e · (act(W1_e x) ⊙ W3_e x)` (SwiGLU when `activation` is `silu`).
    `w1` and `w3` are `[E, F, d]`, `w2` is `[E, d, F]` (Hugging Face layouts:
    Mixtral `w1` gate, `w3` up, `w2` down; Qwen/OLMoE/DeepSeek `gate_proj`,
    `up_proj`, `down_proj`).

    Two input layouts:
    * capacity form: `input` is `[E, C, d]`, slot `c` of expert `e` goes
      through expert `e`;
    * grouped form (dropless): `input` is `[N, d]` with `group_sizes` (`[E]`):
      expert `e` owns a contiguous block of `group_sizes[e]` rows; rows after
      the last group are padding and produce zeros.
    The result has the shape of `input`.

    ```mlir
    %ye = moe.grouped_ffn %xe weights(%w1, %w2, %w3) {activation = #moe.activation<silu>}
        : (tensor<8x5x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>,
           tensor<8x128x64xf32>) -> tensor<8x5x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       MoE_FloatTensor:$w2, Optional<MoE_FloatTensor>:$w3,
                       Optional<MoE_IndexTensor>:$group_sizes,
                       MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $input `weights` `(` $w1 `,` $w2 (`,` $w3^)? `)`
    (`group_sizes` `(` $group_sizes^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_SharedExpertsOp : MoE_Op<"shared_experts",
    [MoE_MatrixProducts, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, AttrSizedOperandSegments, InferTypeOpAdaptor]> {
  let summary = "always-on shared experts (DeepSeekMoE, Qwen2-MoE)";
  let description = [{
    `num_shared` shared experts of width `F / num_shared`, computed as one FFN
    of width `F` over every token (`input` `[T, d]`): `W2 · act(W1 x)` or,
    with `w3`, `W2 · (act(W1 x) ⊙ W3 x)`; `w1`, `w3` are `[F, d]` and `w2`
    `[d, F]`. With `sigmoid_gate` (`w_sg`, `[1, d]`, Qwen2-MoE) the output is
    scaled per token by `σ(x · w_sgᵀ)`. The result, `[T, d]`, is added to the
    routed experts' combined output. Unlike routed experts, shared experts are
    replicated, never partitioned, when sharding over experts.

    ```mlir
    %sh = moe.shared_experts %x weights(%s1, %s2, %s3) sigmoid_gate(%wsg)
        {num_shared = 1 : i64, activation = #moe.activation<silu>}
        : (tensor<16x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>,
           tensor<96x64xf32>, tensor<1x64xf32>) -> tensor<16x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       MoE_FloatTensor:$w2, Optional<MoE_FloatTensor>:$w3,
                       Optional<MoE_FloatTensor>:$sigmoid_gate,
                       I64Attr:$num_shared, MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $input `weights` `(` $w1 `,` $w2 (`,` $w3^)? `)`
    (`sigmoid_gate` `(` $sigmoid_gate^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_LoRAExpertsOp : MoE_Op<"lora_experts",
    [MoE_MatrixProducts, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, AttrSizedOperandSegments, InferTypeOpAdaptor]> {
  let summary = "LoRA-adapter experts on a frozen dense FFN (MoLE, DynMoLE)";
  let description = [{
    One frozen FFN (`base`: `w1 [F, d]`, `w2 [d, F]`, optionally `w3 [F, d]`)
    shared by all experts, and per expert a rank-`r` adapter pair on each
    projection (`adapters`, in the order `A1, B1, A2, B2[, A3, B3]`):
    `A1, A3 : [E, r, d]`, `B1, B3 : [E, F, r]`, `A2 : [E, r, F]`,
    `B2 : [E, d, r]`. Expert `e` uses `W_p + (alpha / r) · B_{p,e} A_{p,e}`
    for each projection `p` in the FFN of `moe.grouped_ffn`, with the same
    two input layouts (capacity form `[E, C, d]`, grouped form `[N, d]` with
    `group_sizes`). Only the router and the adapters are trained.

    ```mlir
    %ye = moe.lora_experts %xe base(%w1, %w2) adapters(%a1, %b1, %a2, %b2)
        {alpha = 16.0 : f32, activation = #moe.activation<gelu>}
        : (tensor<4x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>,
           tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x128xf32>,
           tensor<4x64x8xf32>) -> tensor<4x8x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input,
                       Variadic<MoE_FloatTensor>:$base,
                       Variadic<MoE_FloatTensor>:$adapters,
                       Optional<MoE_IndexTensor>:$group_sizes,
                       F32Attr:$alpha, MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $input `base` `(` $base `)` `adapters` `(` $adapters `)`
    (`group_sizes` `(` $group_sizes^ `)`)? attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_GroupedFFNUpOp : MoE_Op<"grouped_ffn_up",
    [MoE_MatrixProducts, MoE_GatheredInput, MoE_PreActivations, Pure, AttrSizedOperandSegments, DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "the first half of moe.grouped_ffn: per-expert pre-activations";
  let description = [{
    `hidden = [W1_e x, W3_e x]` per row (only `W1_e x` without `w3`), in
    either layout of `moe.grouped_ffn`; `hidden` has `F` (or `2F`) in its
    last dimension. Training graphs split `moe.grouped_ffn` into this op and
    `moe.grouped_ffn_down` (`--moe-split-expert-ffn`) so that backward reuses
    the pre-activations instead of recomputing them.
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       Optional<MoE_FloatTensor>:$w3,
                       Optional<MoE_IndexTensor>:$group_sizes);
  let results = (outs MoE_FloatTensor:$hidden);
  let assemblyFormat = [{
    $input `weights` `(` $w1 (`,` $w3^)? `)` (`group_sizes` `(` $group_sizes^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_GroupedFFNDownOp : MoE_Op<"grouped_ffn_down",
    [MoE_MatrixProducts, MoE_ActivatedInput, Pure, DeclareOpInterfaceMethods<MoE_GradientOpInterface>]> {
  let summary = "the second half of moe.grouped_ffn: activation and W2";
  let description = [{
    `result = W2_e · act(h1)` or, with `gated`, `W2_e · (act(h1) ⊙ h3)`, where
    `hidden = [h1, h3]` comes from `moe.grouped_ffn_up`.
  }];
  let arguments = (ins MoE_FloatTensor:$hidden, MoE_FloatTensor:$w2,
                       Optional<MoE_IndexTensor>:$group_sizes,
                       MoE_ActivationAttr:$activation, UnitAttr:$gated);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $hidden `weights` `(` $w2 `)` (`group_sizes` `(` $group_sizes^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];

  let hasVerifier = 1;
}

#endif // MOE_EXPERT_OPS_TD
