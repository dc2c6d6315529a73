//===- TrainingPasses.td - passes that build training steps -*- tablegen -*-===//
//
// From a forward function to training steps: mixed precision, splitting the
// expert FFNs, autodiff, the optimizer, and bf16 storage of activations
// (`--moe-build-training` and moec's pipeline).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TRANSFORMS_TRAININGPASSES_TD
#define MOEC_TRANSFORMS_TRAININGPASSES_TD

include "mlir/Pass/PassBase.td"

def MoEMixedPrecisionPass : Pass<"moe-mixed-precision", "::mlir::ModuleOp"> {
  let summary = "Give the matrix products of dense layers, attention and experts bf16 operands";
  let description = [{
    Mixed precision (`moec --precision=bf16`): every op with the
    `MatrixProducts` trait (`moe.linear`, `moe.ffn`, `moe.attention` and the
    expert FFNs) gets `moe.precision = #moe.precision<bf16>`: code generation
    then rounds the operands of its matrix products to bf16 and accumulates
    in fp32 (tensor cores on a GPU). Everything else stays fp32: the router's
    logits (`moe.router_logits` has no such trait), scores, top-k, losses,
    norms, master weights and optimizer state. An op that already carries
    `moe.precision` keeps it, so hand-written IR can pin an op to fp32.

    Run it on forward functions, before `--moe-split-expert-ffn` and
    `--moe-autodiff`: both carry an op's precision to the ops they build
    from it (its halves, its gradient).

    ```mlir
    // Before:
    %y = moe.linear %x, %w : tensor<8x64xf32>, tensor<32x64xf32>
    // After:
    %y = moe.linear %x, %w {moe.precision = #moe.precision<bf16>} : tensor<8x64xf32>, tensor<32x64xf32>
    ```
  }];
  let options = [
    Option<"precision", "precision", "::moec::moe::Precision",
           /*default=*/"::moec::moe::Precision::bf16",
           "The arithmetic of matrix products: fp32 or bf16",
           [{::llvm::cl::values(
               clEnumValN(::moec::moe::Precision::fp32, "fp32", "fp32 throughout"),
               clEnumValN(::moec::moe::Precision::bf16, "bf16",
                          "bf16 operands, fp32 accumulation"))}]>,
  ];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEBF16ActivationsPass : Pass<"moe-bf16-activations", "::mlir::ModuleOp"> {
  let summary = "Store the expert activations that backward keeps in bf16";
  let description = [{
    Where the op's `moe.precision` is bf16, two results become bf16
    tensors: `moe.grouped_ffn_up`'s (`[W1 x, W3 x]` per routed row) when only
    `moe.grouped_ffn_down` and `moe.grouped_ffn_down_grad` read it, and
    `moe.grouped_ffn_down`'s (the experts' outputs) when only `moe.combine`
    and `moe.combine_grad` read it: the largest activations a training step
    keeps for its backward pass. The GEMMs round their fp32 accumulators to
    bf16 (nearest even) as they store them; readers widen them back to fp32
    (the combine sums in fp32). Gradients stay fp32, but for one that only
    bf16 products read and so lose nothing in bf16 (the tensor-core tile
    rounds its operands as it loads them): `moe.grouped_ffn_down_grad`'s
    gradient of the pre-activations, read by `moe.grouped_ffn_up_grad`.
    Half the bytes in memory and through their readers, as PyTorch's
    autocast keeps them.
    moec runs it after `--moe-build-training` under `--precision=bf16`.

    ```mlir
    // Before:
    %h = moe.grouped_ffn_up %x weights(%w1, %w3) group_sizes(%n) {moe.precision = #moe.precision<bf16>} : (...) -> tensor<64x96xf32>
    // After:
    %h = moe.grouped_ffn_up %x weights(%w1, %w3) group_sizes(%n) {moe.precision = #moe.precision<bf16>} : (...) -> tensor<64x96xbf16>
    ```
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoESplitExpertFFNPass : Pass<"moe-split-expert-ffn", "::mlir::ModuleOp"> {
  let summary = "Split routed-expert FFNs so that backward reuses the pre-activations";
  let description = [{
    Rewrites `moe.grouped_ffn` into `moe.grouped_ffn_up` (the per-expert
    pre-activations `[W1 x, W3 x]`) and `moe.grouped_ffn_down` (activation,
    gating and `W2`). The backward pass then reads the pre-activations
    instead of recomputing them: 6 instead of 8 GEMMs per expert, at the cost
    of keeping them (`F` or `2F` floats per routed row) until backward.
    Training pipelines run it on the training forward function before
    `--moe-autodiff`; evaluation keeps the fused op.

    ```mlir
    // Before:
    %y = moe.grouped_ffn %x weights(%w1, %w2, %w3) group_sizes(%s) {activation = #moe.activation<silu>} : ...
    // After:
    %h = moe.grouped_ffn_up %x weights(%w1, %w3) group_sizes(%s) : ... -> tensor<Nx2Fxf32>
    %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%s) {activation = #moe.activation<silu>, gated} : ...
    ```
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "Only this function (default: every function)">,
  ];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

def MoEAutodiffPass : Pass<"moe-autodiff", "::mlir::ModuleOp"> {
  let summary = "Reverse-mode differentiation of the forward function";
  let description = [{
    Builds `@<function>_backward` next to `@<function>` (default `forward`):
    the forward computation, then, in reverse order, each op's
    vector-Jacobian product from its GradientOpInterface, seeded with
    d(`loss`) = 1. Gradients of values used more than once are summed. The
    new function returns the forward results, then the gradient of every
    trainable parameter (`moe.trainable = true`), each marked
    `moe.grad = "<parameter name>"`; a parameter the loss does not reach gets
    zeros. Integer values (selections, indices) are not differentiated.

    An op on the path to the loss without a gradient rule is an error that
    names it.
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"forward\"",
           "The function to differentiate">,
    Option<"loss", "loss", "std::string", /*default=*/"\"loss\"",
           "The `moe.output` name of the result to differentiate">,
  ];
  let dependentDialects = ["::moec::moe::MoEDialect", "::mlir::tensor::TensorDialect"];
}

def MoEOptimizerPass : Pass<"moe-optimizer", "::mlir::ModuleOp"> {
  let summary = "Turn a forward-backward function into a training step";
  let description = [{
    From `@<source>` (default `forward_backward`, built by `--moe-autodiff`)
    builds `@<name>` (default `train_step`):
    it takes the parameters, the optimizer state (AdamW: `exp_avg`,
    `exp_avg_sq`; SGD: `momentum_buffer`, one per trainable parameter, marked
    `moe.state`), the step number and the batch; computes the loss and the
    gradients, their global norm and clipping factor, the learning rate of
    the schedule at that step, and the update of every trainable parameter.
    It returns the forward results, `grad_norm`, `lr`, then the updated
    parameters and state, each marked `moe.update = "<tensor name>"`.
    Frozen parameters (`moe.trainable = false`) are not updated.

    The numeric hyperparameters (learning rate, warmup and total steps,
    final ratio, clipping threshold, β1, β2, ε and weight decay, or momentum
    and weight decay) are scalar inputs of the step, marked
    `moe.hyperparameter = "<name>"` with the option's value as
    `moe.value`: the plan records that value, and the runtime may feed
    another without recompiling. The schedule's kind stays an attribute
    of `moe.lr_schedule` (it decides the computation).

    ```mlir
    func.func @train_step(..., %lr: tensor<f32> {moe.hyperparameter = "lr",
                                                 moe.value = 3.0e-04 : f32}, ...)
    ```
  }];
  let options = [
    Option<"source", "source", "std::string", /*default=*/"\"forward_backward\"",
           "The function built by --moe-autodiff">,
    Option<"name", "name", "std::string", /*default=*/"\"train_step\"",
           "The name of the training step to build">,
    Option<"optimizer", "optimizer", "::moec::moe::OptimizerKind",
           /*default=*/"::moec::moe::OptimizerKind::adamw", "The optimizer",
           [{::llvm::cl::values(
             clEnumValN(::moec::moe::OptimizerKind::adamw, "adamw",
                        "AdamW (moments exp_avg, exp_avg_sq)"),
             clEnumValN(::moec::moe::OptimizerKind::sgd, "sgd",
                        "SGD with momentum (momentum_buffer)"))}]>,
    Option<"lr", "lr", "double", /*default=*/"3e-4", "Peak learning rate">,
    Option<"beta1", "beta1", "double", /*default=*/"0.9", "AdamW β1">,
    Option<"beta2", "beta2", "double", /*default=*/"0.95", "AdamW β2">,
    Option<"eps", "eps", "double", /*default=*/"1e-8", "AdamW ε">,
    Option<"weightDecay", "weight-decay", "double", /*default=*/"0.1", "Decoupled weight decay">,
    Option<"momentum", "momentum", "double", /*default=*/"0.9", "SGD momentum">,
    Option<"maxGradNorm", "max-grad-norm", "double", /*default=*/"1.0",
           "Global-norm clipping threshold (0: none)">,
    Option<"schedule", "schedule", "::moec::moe::LRScheduleKind",
           /*default=*/"::moec::moe::LRScheduleKind::cosine",
           "How the learning rate decays after warmup",
           [{::llvm::cl::values(
             clEnumValN(::moec::moe::LRScheduleKind::constant, "constant", "no decay"),
             clEnumValN(::moec::moe::LRScheduleKind::cosine, "cosine", "cosine to min-lr-ratio"),
             clEnumValN(::moec::moe::LRScheduleKind::linear, "linear", "linear to min-lr-ratio"))}]>,
    Option<"warmupSteps", "warmup-steps", "int64_t", /*default=*/"0", "Linear warmup steps">,
    Option<"totalSteps", "total-steps", "int64_t", /*default=*/"1000", "Steps of the schedule">,
    Option<"minLrRatio", "min-lr-ratio", "double", /*default=*/"0.1",
           "Final learning rate as a fraction of lr">,
  ];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

#endif // MOEC_TRANSFORMS_TRAININGPASSES_TD
