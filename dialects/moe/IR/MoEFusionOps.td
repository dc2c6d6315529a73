//===- MoEFusionOps.td - fusion groups: one future kernel ---*- tablegen -*-===//
//
// `--moe-fusion` (and the passes it runs) moves groups of ops that one kernel
// can compute into a `moe.fused` region; codegen writes one kernel per
// region.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FUSION_OPS_TD
#define MOE_FUSION_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "dialects/moe/IR/MoEInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_FusedOp : MoE_Op<"fused", [IsolatedFromAbove, RecursiveMemoryEffects,
    DeclareOpInterfaceMethods<MoE_InPlaceOpInterface>,
    SingleBlockImplicitTerminator<"::moec::moe::YieldOp">]> {
  let summary = "a fusion group: ops that one generated kernel computes";
  let description = [{
    The body computes the results from the inputs (the block's arguments, in
    order) and yields them; values inside never reach memory of their own
    (they live in registers or the kernel's workspace). The region is
    isolated from above: everything it reads is an input. `kind` says which
    fusion formed the group, and so how codegen writes its kernel:

    * `router`: ops with the `TokenRows` trait (scores, selections, their
      gradients) and elementwise ops over router tensors, one thread per
      token; intermediate rows stay in the thread's registers. Ops with the
      `TokenStatistic` trait (the balancing loss, the z-loss) that read the
      group's rows add their sums up in the same kernel; an op with the
      `TokenStatisticGradient` trait (the balancing loss's gradient) whose
      rows only the group reads makes its sums over tokens in launches
      before the group's loop, and its rows in it.
    * `elementwise`: a chain of `Elementwise` ops, one thread per element.
    * `dispatch`: a gather (`RowGather`: `moe.dispatch`) and the op that
      reads its rows (`GatheredInput`: `moe.grouped_ffn_up`), whose GEMM
      gathers the rows as it loads its operand.
    * `expert`: an expert FFN's GEMMs with the activation between them. In
      the forward, the op producing the pre-activations (with its dispatch,
      when fused) and the op whose products read their activation
      (`ActivatedInput`: `moe.grouped_ffn_down`), the activation computed in
      the up projection's epilogue; in the backward, the op computing the hidden
      gradient (`ActivationGradient`: `moe.grouped_ffn_down_grad`), whose
      GEMM applies the activation's derivative in its epilogue, and the op
      reading that gradient (`HiddenGradientInput`:
      `moe.grouped_ffn_up_grad`).
    * `norm`: an elementwise op (the residual sum) and the row
      normalization reading it (`RowNormalization`: `moe.rms_norm`), one
      block per row.
    * `optimizer`: independent `ParameterUpdate` ops (one per parameter),
      one multi-tensor kernel; results update their parameter and state
      in place as the members' would (InPlaceOpInterface). The group may
      begin with the gradient norm (`GradientNorm`) and the clip scale
      computed from it (`GradientScale`), which the kernel computes before
      the updates.

    ```mlir
    %w, %i = moe.fused <router>(%logits) : (tensor<32x8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>) {
    ^bb0(%l: tensor<32x8xf32>):
      %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
      %weights, %indices = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
      moe.yield %weights, %indices : tensor<32x2xf32>, tensor<32x2xi32>
    }
    ```
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs, MoE_FusionKindAttr:$kind);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let regions = (region SizedRegion<1>:$region);
  let assemblyFormat = [{
    $kind `(` $inputs `)` attr-dict `:` functional-type($inputs, $results) $region
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The ops of the group, in order (without the terminator).
    auto getMembers() { return getBody()->without_terminator(); }
    /// The group's input or result behind `inner`, a value of its body (a
    /// block argument or a yielded value); null for one that stays inside.
    ::mlir::Value getOuterValue(::mlir::Value inner);
  }];
}

def MoE_YieldOp : MoE_Op<"yield", [Pure, Terminator,
    HasParent<"::moec::moe::FusedOp">]> {
  let summary = "the results of a fusion group";
  let arguments = (ins Variadic<AnyRankedTensor>:$values);
  let builders = [OpBuilder<(ins), [{ /* nothing */ }]>];
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // MOE_FUSION_OPS_TD
