//===- FusionPasses.td - passes that form fusion groups ----*- tablegen -*-===//
//
// Fusion runs on planned-for-execution functions: after autodiff and the
// optimizer pass (backward and update ops fuse too), after rematerialization,
// and before memory planning (values inside a group take no arena bytes).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TRANSFORMS_FUSIONPASSES_TD
#define MOEC_TRANSFORMS_FUSIONPASSES_TD

include "mlir/Pass/PassBase.td"

def MoEFuseRouterPass : Pass<"moe-fuse-router", "::mlir::func::FuncOp"> {
  let summary = "Fuse each router's scoring, selection and their gradients into one kernel";
  let description = [{
    Groups ops with the `TokenRows` trait (`moe.score`, `moe.topk_route`,
    `moe.score_grad`, `moe.selection_grad`, `moe.z_loss_grad`) that are
    connected by their values and have the same tokens, together with the
    `Elementwise` ops between them over `[T, E]` router tensors (the
    gradient sums autodiff writes), into `moe.fused router` regions: one
    kernel with one thread per token, whose intermediate rows stay in
    registers. Groups never form a cycle: an op joins only when no path
    outside the group leads from a member to it.

    Then each op with the `TokenStatistic` trait (`moe.load_balancing_loss`,
    `moe.z_loss`: a 0-D result made of sums over tokens) whose operands are
    all results or inputs of one router group joins the first such group:
    its kernel stores the statistic's terms per token and sums them per
    block of tokens as it makes the rows, and one more launch adds the
    blocks' sums in order.

    ```mlir
    // Before:
    %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
    %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
    // After (when %s has no other user):
    %w, %i = moe.fused <router>(%l) : (tensor<32x8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>) {
    ^bb0(%arg0: tensor<32x8xf32>):
      %s = moe.score %arg0 {function = #moe.score<softmax>} : tensor<32x8xf32>
      %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
      moe.yield %w, %i : tensor<32x2xf32>, tensor<32x2xi32>
    }
    ```
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFuseElementwisePass : Pass<"moe-fuse-elementwise", "::mlir::func::FuncOp"> {
  let summary = "Fuse chains of elementwise ops of one shape into one kernel";
  let description = [{
    Groups ops with the upstream `Elementwise` trait (`moe.add`,
    `moe.activation`, `moe.activation_grad`) whose results have the same
    type and that feed one another (the gradient sums of the backward pass)
    into `moe.fused elementwise` regions: one kernel, one thread per
    element, intermediates in registers. Ops already in a fusion group stay
    there.
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFuseDispatchPass : Pass<"moe-fuse-dispatch", "::mlir::func::FuncOp"> {
  let summary = "Fuse each token dispatch into the operand load of the expert GEMM that reads it";
  let description = [{
    A gather (`RowGather`: `moe.dispatch`) whose only reader takes its rows
    as operand 0 and can load them through the row index (`GatheredInput`:
    `moe.grouped_ffn_up`, `moe.grouped_ffn`) joins that reader in a `moe.fused dispatch`
    region: the up projection's GEMM reads each slot's token row straight
    from the hidden states, and the dispatched rows ([T·K, d]) are never
    written. (With `--moe-rematerialize`, the backward pass has a dispatch
    of its own, so the forward's has one reader.)
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFuseExpertPass : Pass<"moe-fuse-expert", "::mlir::func::FuncOp"> {
  let summary = "Fuse each expert FFN's activation into its GEMMs";
  let description = [{
    Forward: the op computing an expert FFN's pre-activations
    (`PreActivations`: `moe.grouped_ffn_up`) and the one op whose products
    read their activation
    (`ActivatedInput`: `moe.grouped_ffn_down`) form a `moe.fused expert`
    region: the up projection's last GEMM computes `act(h1) [* h3]` in its
    epilogue, so no launch computes the activated rows. Members of a group
    have one precision. Backward: the op computing the hidden
    gradient (`ActivationGradient`: `moe.grouped_ffn_down_grad`) and the only
    reader of that gradient (`HiddenGradientInput`:
    `moe.grouped_ffn_up_grad`): the `dY W2` GEMM applies the activation's
    derivative in its epilogue, writing the hidden gradient (and the
    activated rows `dW2` reads) itself. With `--moe-fuse-dispatch` in the same
    strategy, a dispatch fused into the up projection joins the forward
    group.

    ```mlir
    %h = moe.grouped_ffn_up %x weights(%w1, %w3) : ...
    %y = moe.grouped_ffn_down %h weights(%w2) {activation = #moe.activation<silu>, gated} : ...
    // After (%h is also read by the backward pass, so the group yields it):
    %h, %y = moe.fused <expert>(%x, %w1, %w3, %w2) : ... {
      ...
      moe.yield %h, %y : ...
    }
    ```
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFuseNormPass : Pass<"moe-fuse-norm", "::mlir::func::FuncOp"> {
  let summary = "Fuse each residual sum into the RMS norm that reads it, and each norm gradient into the sum that reads it";
  let description = [{
    An `Elementwise` op (the residual sum `moe.add`) whose result one op
    with the `RowNormalization` trait (`moe.rms_norm`) reads as its input
    joins that op in a `moe.fused norm` region: one kernel, one block per
    row, computes the row's sums, stores them when they are read after the
    group (the residual stream is), and normalizes them; the norm's second
    pass reads the stored row back instead of a separate kernel's output.
    One launch fewer per norm of a pre-norm transformer's residual stream.

    Backward: an op whose result 0 is a row normalization's input gradient
    (`RowNormalizationGradient`: `moe.rms_norm_grad`) and the one
    elementwise op reading it (the residual gradient's sum, over tensors of
    its type; a sum of two such gradients joins the first) form a `moe.fused
    norm` region: the norm gradient's kernel applies the sum to each
    element it makes, so the gradient itself is never stored.
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFuseRoPEPass : Pass<"moe-fuse-rope", "::mlir::func::FuncOp"> {
  let summary = "Fuse the rotations of the queries and keys (RoPE, its gradient) into one kernel";
  let description = [{
    Ops with the `PositionRotation` trait (`moe.rope`, `moe.rope_grad`)
    that rotate alike (one kind, the same attributes, the same batch,
    sequence and head size) and are siblings (one op reads both results,
    the attention; or one op makes both operands, the attention's gradient)
    form a `moe.fused rope` region: one kernel, a thread per position and
    pair, computes the angle's cosine and sine once and rotates that pair in
    every head of every member. The numbers are the members' own kernels',
    bit for bit.

    ```mlir
    %qr = moe.rope %q : tensor<2x16x4x8xf32>
    %kr = moe.rope %k : tensor<2x16x2x8xf32>
    %o = moe.attention %qr, %kr, %v {causal} : ...
    // After:
    %r:2 = moe.fused <rope>(%q, %k) : ... {
      %qr = moe.rope ...
      %kr = moe.rope ...
      moe.yield %qr, %kr : ...
    }
    ```
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFuseOptimizerPass : Pass<"moe-fuse-optimizer", "::mlir::func::FuncOp"> {
  let summary = "Fuse the updates of every parameter into multi-tensor kernels";
  let description = [{
    Groups the ops with the `ParameterUpdate` trait (`moe.adamw_update`,
    `moe.sgd_update`) of one kind, which read the same step, learning rate
    and clip scale but not one another's results, into `moe.fused
    optimizer` regions of at most 64 updates: one kernel each, whose blocks
    take the parameters side by side. The group updates parameters and
    optimizer state in place as its members would (`moe.fused` forwards
    InPlaceOpInterface), so memory planning gives them no arena bytes.

    Then the gradient norm (`GradientNorm`: `moe.global_norm`) and the clip
    scale computed from it (`GradientScale`: `moe.clip_scale`) join the
    first group that reads the scale: its kernel sums the squares of every
    gradient in slices, adds the slices in one block that computes the norm
    and the scale, then runs the updates (three launches for what took
    four, the same sums in the same order). When the norm's gradients and
    that group's operands would pass the 512 pointers of a kernel's 4 KiB
    of parameters, the norm and the scale form a group of their own.

    ```mlir
    %norm = moe.global_norm %g, %gq : tensor<8x4xf32>, tensor<16xf32>
    %clip = moe.clip_scale %norm, %max
    %p1, %m1, %v1 = moe.adamw_update %p, %g, %m, %v, %step, %lr, %clip, ... : tensor<8x4xf32>
    %q1, %mq1, %vq1 = moe.adamw_update %q, %gq, %mq, %vq, %step, %lr, %clip, ... : tensor<16xf32>
    // After:
    %r:7 = moe.fused <optimizer>(%g, %gq, %max, %p, %m, %v, %step, %lr, ...) : ... {
      %n = moe.global_norm ...
      %c = moe.clip_scale %n, ...
      ... = moe.adamw_update ..., %c, ...
      ... = moe.adamw_update ..., %c, ...
      moe.yield %n, ...
    }
    ```
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFuseLMHeadPass : Pass<"moe-fuse-lm-head", "::mlir::func::FuncOp"> {
  let summary = "Fuse the LM head's product, the cross-entropy and their gradients into one chunked kernel";
  let description = [{
    A dense product (`DenseProduct`: `moe.linear`) whose result only ops
    that read it as rows of logits (`LogitRows`: `moe.cross_entropy`,
    `moe.cross_entropy_grad`) read, those ops, and the product's gradient
    (`DenseProductGradient`: `moe.linear_grad`) that reads the logits'
    gradient, form a `moe.fused lm_head` region: one kernel computes the
    logits a chunk of rows at a time, each chunk's loss terms and logit
    gradients in place, then the chunk's rows of the input gradient and its
    share of the weight gradient, so that the `[T, V]` logits (and their
    gradient) never exist whole: the kernel's workspace holds one chunk of
    about `T·d` values. The losses and gradients are those of the unfused
    ops, bit for bit (the weight gradient's sum over rows continues from
    chunk to chunk in the same order). An LM head with a trainable bias
    fuses in the evaluation function only (the bias gradient reads every
    row of the logits' gradient). The kernel's products are generated
    tiles: `--moe-fusion` with `library-gemms` leaves the head unfused.

    ```mlir
    %logits = moe.linear %h, %w : tensor<2x8x64xf32>, tensor<256x64xf32>
    %loss = moe.cross_entropy %logits, %targets : tensor<2x8x256xf32>, tensor<2x8xi32>
    ...
    %dlogits = moe.cross_entropy_grad %logits, %targets, %dloss : ...
    %dh, %dw = moe.linear_grad %h, %w, %dlogits : ...
    // After:
    %loss, %dh, %dw = moe.fused <lm_head>(%h, %w, %targets, %dloss) : ... {
      ...
    }
    ```
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEFusionPass : Pass<"moe-fusion", "::mlir::func::FuncOp"> {
  let summary = "Apply a fusion strategy: the fusion passes it names, in order";
  let description = [{
    `moec --fusion=<strategy>` runs this pass. The strategies:

    * `none`: no groups; every op is a kernel of its own.
    * `router`: `--moe-fuse-router`.
    * `dispatch`: `--moe-fuse-dispatch`.
    * `expert`: `--moe-fuse-expert`.
    * `moe`: every MoE-specific fusion built so far (router, dispatch,
      expert; a dispatch and the expert FFN reading it form one group).
    * `all`: `moe`, then for the dense part `--moe-fuse-norm`,
      `--moe-fuse-elementwise`, `--moe-fuse-rope` and `--moe-fuse-lm-head` (not with
      `library-gemms`), and `--moe-fuse-optimizer`.
  }];
  let options = [
    Option<"strategy", "strategy", "::moec::moe::FusionStrategy",
           /*default=*/"::moec::moe::FusionStrategy::all", "The fusions to apply",
           [{::llvm::cl::values(
             clEnumValN(::moec::moe::FusionStrategy::none, "none", "no fusion"),
             clEnumValN(::moec::moe::FusionStrategy::router, "router",
                        "scores, selections and their gradients"),
             clEnumValN(::moec::moe::FusionStrategy::dispatch, "dispatch",
                        "token dispatch into the expert GEMM's operand load"),
             clEnumValN(::moec::moe::FusionStrategy::expert, "expert",
                        "the activation into the expert GEMMs"),
             clEnumValN(::moec::moe::FusionStrategy::moe, "moe",
                        "every MoE-specific fusion"),
             clEnumValN(::moec::moe::FusionStrategy::all, "all",
                        "moe, then residual norms, elementwise chains, RoPE, the LM "
                        "head and the optimizer"))}]>,
    Option<"libraryGemms", "library-gemms", "bool", /*default=*/"false",
           "The target runs dense products as library GEMMs (moec --gemm=cublaslt), "
           "which read whole tensors: the LM head is not chunked">,
  ];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

#endif // MOEC_TRANSFORMS_FUSIONPASSES_TD
