//===- MoEDenseOps.td - dense decoder-only transformer ops -*- tablegen -*-===//

#ifndef MOE_DENSE_OPS_TD
#define MOE_DENSE_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "dialects/moe/IR/MoEInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_EmbeddingOp : MoE_Op<"embedding", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "token embedding lookup";
  let description = [{
    `result[..., :] = table[tokens[...], :]`; `table` is `[V, d]`, `tokens`
    any shape `S` of `i32` ids, the result `S × [d]`.

    ```mlir
    %h = moe.embedding %table, %tokens : tensor<256x64xf32>, tensor<2x8xi32>
    // %h : tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$table, MoE_IndexTensor:$tokens);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat =
      "$table `,` $tokens attr-dict `:` type($table) `,` type($tokens)";
  }

def MoE_RMSNormOp : MoE_Op<"rms_norm", [MoE_RowNormalization, MoE_Recomputable,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "RMSNorm over the last dimension, computed in f32";
  let description = [{
    `result = weight ⊙ x / sqrt(mean(x²) + eps)` over the last dimension,
    with `weight` of that size. Computed in f32 whatever the input dtype, as
    transformers does.

    ```mlir
    %n = moe.rms_norm %h, %g {eps = 1.0e-6 : f32} : tensor<2x8x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight,
                       DefaultValuedAttr<F32Attr, "1.0e-6">:$eps);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def MoE_LayerNormOp : MoE_Op<"layer_norm", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "LayerNorm over the last dimension";
  let description = [{
    `result = weight ⊙ (x − mean(x)) / sqrt(var(x) + eps) + bias` over the
    last dimension (biased variance); `weight` and the optional `bias` have
    its size.

    ```mlir
    %n = moe.layer_norm %h, %g, %b {eps = 1.0e-5 : f32}
           : tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight,
                       Optional<MoE_FloatTensor>:$bias,
                       DefaultValuedAttr<F32Attr, "1.0e-5">:$eps);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` type($input) `,`
    type($weight) (`,` type($bias)^)?
  }];
  let hasVerifier = 1;
}

def MoE_LinearOp : MoE_Op<"linear", [MoE_MatrixProducts, MoE_DenseProduct, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "dense projection y = x · Wᵀ (+ b)";
  let description = [{
    `input` is `[..., in]`, `weight` `[out, in]` (Hugging Face layout), the
    optional `bias` `[out]`; the result is `[..., out]`.

    ```mlir
    %q = moe.linear %n, %wq : tensor<2x8x64xf32>, tensor<64x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$weight,
                       Optional<MoE_FloatTensor>:$bias);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` type($input) `,`
    type($weight) (`,` type($bias)^)?
  }];
  let hasVerifier = 1;
}

def MoE_ActivationOp : MoE_Op<"activation", [Elementwise, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "elementwise activation function";
  let description = [{
    `relu`, `gelu` (exact, erf), `gelu_tanh` (tanh approximation), `silu`
    (`x · σ(x)`) or `sigmoid` (`σ(x)`), elementwise.

    ```mlir
    %a = moe.activation %x {kind = #moe.activation<silu>} : tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_ActivationAttr:$kind);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def MoE_AddOp : MoE_Op<"add", [Elementwise, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, Commutative, SameOperandsAndResultType]> {
  let summary = "elementwise sum (residual connections)";
  let description = [{
    ```mlir
    %h2 = moe.add %h, %attn : tensor<2x8x64xf32>
    ```

    Canonicalization: a sum of tensors that are zero outside disjoint static
    boxes (`tensor.insert_slice`s into `moe.fill 0`, the gradients of slices)
    becomes one chain of insertions, or a `tensor.concat` when the boxes tile
    the result along one dimension (the gradient of a split).
  }];
  let arguments = (ins MoE_FloatTensor:$lhs, MoE_FloatTensor:$rhs);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  let hasCanonicalizer = 1;
}

def MoE_MultiplyOp : MoE_Op<"multiply", [Elementwise, DeclareOpInterfaceMethods<MoE_GradientOpInterface>,
    Pure, Commutative, SameOperandsAndResultType]> {
  let summary = "elementwise product (gates)";
  let description = [{
    Qwen3-Next's gates: attention outputs times `σ(gate)`, the linear
    attention's normalised outputs times `silu(z)` (with `moe.activation` on
    the gate).

    ```mlir
    %g = moe.multiply %o, %s : tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$lhs, MoE_FloatTensor:$rhs);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def MoE_ScaleOp : MoE_Op<"scale", [Elementwise, DeclareOpInterfaceMethods<MoE_GradientOpInterface>,
    Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "every element times a constant";
  let description = [{
    Granite's multipliers: of the embeddings, of each residual branch, and
    (by the inverse of `logits_scaling`) of the logits.

    ```mlir
    %s = moe.scale %x {factor = 1.200000e+01 : f32} : tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, F32Attr:$factor);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def MoE_FFNOp : MoE_Op<"ffn", [MoE_MatrixProducts, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, InferTypeOpAdaptor]> {
  let summary = "dense feed-forward block";
  let description = [{
    `W2 · act(W1 x)`, or with `w3` `W2 · (act(W1 x) ⊙ W3 x)`, over the last
    dimension of `input` (`[..., d]`); `w1`, `w3` are `[F, d]`, `w2` `[d, F]`.
    Used by dense layers of MoE models.

    ```mlir
    %f = moe.ffn %n weights(%w1, %w2, %w3) {activation = #moe.activation<silu>}
           : (tensor<2x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>,
              tensor<128x64xf32>) -> tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, MoE_FloatTensor:$w1,
                       MoE_FloatTensor:$w2, Optional<MoE_FloatTensor>:$w3,
                       MoE_ActivationAttr:$activation);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $input `weights` `(` $w1 `,` $w2 (`,` $w3^)? `)` attr-dict
    `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def MoE_RoPEOp : MoE_Op<"rope", [MoE_PositionRotation,
    DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding, rotate-half or interleaved pairs";
  let description = [{
    `input` is `[B, S, H, D]` (D even); position `s` rotates pairs
    `(x_i, x_{i+D/2})` by angle `s · theta^(−2i/D)`, as transformers'
    `rotate_half` does. Positions are `0 .. S−1`. With `interleaved` the
    pairs are `(x_{2i}, x_{2i+1})`, as in DeepSeek's and Meta's reference
    code (complex multiplication); the layout is kept, so queries and keys
    rotated alike have the dot products of transformers'
    `apply_rotary_pos_emb_interleave`, which also de-interleaves.

    Scaled RoPE (YaRN, linear; computed by the frontend as transformers
    does) gives the inverse frequency of each pair in `inv_freq` (`D/2`
    values, replacing `theta^(−2i/D)`) and multiplies cos and sin by
    `attention_factor`.

    ```mlir
    %qr = moe.rope %q {theta = 10000.0 : f32} : tensor<2x8x4x16xf32>
    %qy = moe.rope %q {attention_factor = 1.138 : f32, inv_freq = array<f32: 1.0, 0.1, ...>}
        : tensor<2x8x4x16xf32>
    %qi = moe.rope %q {interleaved} : tensor<2x8x4x16xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input,
                       DefaultValuedAttr<F32Attr, "10000.0">:$theta,
                       OptionalAttr<DenseF32ArrayAttr>:$inv_freq,
                       DefaultValuedAttr<F32Attr, "1.0">:$attention_factor,
                       UnitAttr:$interleaved);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def MoE_TransposeOp : MoE_Op<"transpose", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "permutes the dimensions of a tensor";
  let description = [{
    `result[i_p(0), ..., i_p(n-1)] = input[i_0, ..., i_n-1]` read the other
    way: dimension `d` of the result is dimension `permutation[d]` of the
    input. gpt-oss stores its experts' projections input-major (`[E, d, 2F]`);
    the expert GEMMs read them output-major:

    ```mlir
    %w = moe.transpose %gate_up [0, 2, 1] : tensor<4x64x256xf32> to tensor<4x256x64xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input $permutation attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
}

def MoE_ClampedSwiGLUOp : MoE_Op<"clamped_swiglu", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "gpt-oss's gated activation of interleaved gate/up pre-activations";
  let description = [{
    `input` is `[..., 2F]` with the gate at even and the up projection at
    odd positions of the last dimension; the result is `[..., F]`:
    `g = min(gate, limit)`, `u = clamp(up, −limit, limit)`,
    `result = (u + 1) · g · σ(alpha · g)` (gpt-oss: alpha 1.702, limit 7).
    Rows of zeros give zeros.

    ```mlir
    %a = moe.clamped_swiglu %h {alpha = 1.702 : f32, limit = 7.0 : f32}
        : tensor<16x256xf32> to tensor<16x128xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input, F32Attr:$alpha, F32Attr:$limit);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
}

def MoE_BroadcastOp : MoE_Op<"broadcast", [DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "repeats the input along its dimensions of size 1";
  let description = [{
    `input` and `result` have the same rank and element type; each dimension
    of `input` is the result's or 1, and a 1 is repeated to the result's
    size. DeepSeek's latent attention shares one rotary key among the heads:

    ```mlir
    %kr = moe.broadcast %k : tensor<2x8x1x16xf32> to tensor<2x8x4x16xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$input);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
}

def MoE_AttentionOp : MoE_Op<"attention", [MoE_MatrixProducts, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure,
    InferTypeOpAdaptor]> {
  let summary = "scaled dot-product attention, multi-head or grouped-query";
  let description = [{
    `query` is `[B, S, Hq, D]`, `key` `[B, S, Hkv, D]` and `value`
    `[B, S, Hkv, Dv]` with `Hkv` dividing `Hq` (grouped-query attention:
    query head `h` reads key/value head `h / (Hq / Hkv)`); the result is
    `[B, S, Hq, Dv]`. `softmax(q kᵀ · scale + mask) v` per head, with the
    causal mask when `causal`; `scale` defaults to `1 / sqrt(D)`. Values may
    be narrower or wider than queries and keys (DeepSeek's latent attention:
    `D = 192`, `Dv = 128`). With a causal `window` W, position i sees the W
    positions up to itself, `i − W < j ≤ i` (sliding-window attention, as
    transformers masks it). With a causal `chunk` C, position i sees the
    positions up to itself in its chunk, `⌊i/C⌋·C ≤ j ≤ i` (Llama 4's chunked
    attention). With `temperature_floor` F and `temperature_scale` s, the
    query at position i is scaled by `log(⌊(i + 1)/F⌋ + 1) · s + 1` (Llama
    4's attention temperature). With `sinks` (`[Hq]`, gpt-oss's attention sinks)
    each query head's softmax has one more logit, `sinks[h]`, whose value is
    zero: it takes a share of the probability and adds nothing to the output.

    ```mlir
    %o = moe.attention %q, %k, %v {causal}
        : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
    %s = moe.attention %q, %k, %v sinks(%sinks) {causal}
        : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<4xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$query, MoE_FloatTensor:$key,
                       MoE_FloatTensor:$value, Optional<MoE_FloatTensor>:$sinks,
                       UnitAttr:$causal, OptionalAttr<F32Attr>:$scale,
                       OptionalAttr<I64Attr>:$window, OptionalAttr<I64Attr>:$chunk,
                       OptionalAttr<I64Attr>:$temperature_floor,
                       OptionalAttr<F32Attr>:$temperature_scale);
  let results = (outs MoE_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`sinks` `(` $sinks^ `)`)? attr-dict `:` type($query) `,`
    type($key) `,` type($value) (`,` type($sinks)^)?
  }];
  let hasVerifier = 1;
}

def MoE_CrossEntropyOp : MoE_Op<"cross_entropy", [MoE_BatchMean, MoE_LogitRows, DeclareOpInterfaceMethods<MoE_GradientOpInterface>, Pure]> {
  let summary = "token-mean softmax cross-entropy";
  let description = [{
    `mean_t (logsumexp(logits[t, :]) − logits[t, targets[t]])` over every
    token; `logits` is `S × [V]`, `targets` `S` (`i32`). Computed in f32.

    ```mlir
    %lm = moe.cross_entropy %logits, %targets : tensor<2x8x256xf32>, tensor<2x8xi32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$logits, MoE_IndexTensor:$targets);
  let results = (outs MoE_ScalarF32:$loss);
  let assemblyFormat =
      "$logits `,` $targets attr-dict `:` type($logits) `,` type($targets)";
  let hasVerifier = 1;
}

#endif // MOE_DENSE_OPS_TD
