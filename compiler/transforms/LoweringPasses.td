//===- LoweringPasses.td - passes from training IR to a plan -*- tablegen -*-===//
//
// `--moe-lower-to-plan` runs them after cleanups: rematerialization, then
// (with a fusion strategy, FusionPasses.td) fusion, then memory planning.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TRANSFORMS_LOWERINGPASSES_TD
#define MOEC_TRANSFORMS_LOWERINGPASSES_TD

include "mlir/Pass/PassBase.td"

def MoEPlanMemoryPass : Pass<"moe-plan-memory", "::mlir::func::FuncOp"> {
  let summary = "Assign arena offsets to the intermediate tensors of a function";
  let description = [{
    Gives every tensor a function computes a byte offset in one arena, so
    that the runtime allocates once per function and never inside a step.
    Tensors whose live ranges (from the op defining them to their last use;
    returned tensors live to the end) do not overlap share memory: the pass
    places them first-fit, once in order of definition and once largest
    first, and keeps the smaller arena. Views (ops with
    `ViewLikeOpInterface`: `tensor.expand_shape` and `tensor.collapse_shape`
    get it from moec) share their source's bytes and extend its live range.

    Ops with `InPlaceOpInterface` write a result over an operand when
    nothing reads that operand after them: `moe.cross_entropy_grad`'s
    gradient takes the logits' bytes, and `moe.adamw_update` /
    `moe.sgd_update` update parameters and optimizer state (function
    arguments with `moe.param` or `moe.state`) where they live, so the
    training step's arena holds no second copy of them. Such ops get
    `moe.overwrites`: per result, the operand it overwrites, or -1.

    Each op gets `moe.offsets`, one offset per result (-1 for a view of a
    function argument or a result written over one); the function gets
    `moe.arena_size`.

    ```mlir
    // Before:
    %0 = moe.add %a, %b : tensor<4x4xf32>
    %1 = moe.add %0, %b : tensor<4x4xf32>
    %2 = moe.add %1, %b : tensor<4x4xf32>
    // After (%0 is dead when %2 is defined, so %2 reuses its bytes):
    %0 = moe.add %a, %b {moe.offsets = array<i64: 0>} : tensor<4x4xf32>
    %1 = moe.add %0, %b {moe.offsets = array<i64: 64>} : tensor<4x4xf32>
    %2 = moe.add %1, %b {moe.offsets = array<i64: 0>} : tensor<4x4xf32>
    ```
  }];
  let options = [
    Option<"alignment", "alignment", "int64_t", /*default=*/"64",
           "Byte alignment of every tensor in the arena">,
  ];
}

def MoERematerializePass : Pass<"moe-rematerialize", "::mlir::func::FuncOp"> {
  let summary = "Compute cheap forward ops again for the backward pass instead of keeping their results";
  let description = [{
    An op with the `Recomputable` trait (`moe.dispatch`, `moe.rms_norm`:
    memory-bound and deterministic) whose result the backward pass reads
    is cloned right before its first backward user, which with every later
    backward user reads the clone; the forward keeps the original. Backward
    users are the ops autodiff built: those without GradientOpInterface.
    The clone is only made where every operand of the op is still live at
    that point (a function argument, or read there or later), so that no
    other lifetime grows: the result's bytes are freed between the forward
    and the backward pass, the peak of training memory. The numbers do not
    change: the clone computes the same bits.

    Runs after CSE (which would merge the clone back) and before
    `--moe-plan-memory`; for OLMoE's shapes it frees the dispatched
    activations and the normalised inputs of every layer, 1.1 GiB per
    layer at batch 8 x 2048.

    ```mlir
    // Before:
    %x = moe.dispatch %h, %slots : ...
    %up = moe.grouped_ffn_up %x ...
    ...  // the rest of the forward pass and the backward pass of later layers
    %dx, %dw:2 = moe.grouped_ffn_up_grad %x, ...
    // After:
    %x = moe.dispatch %h, %slots : ...
    %up = moe.grouped_ffn_up %x ...
    ...
    %x2 = moe.dispatch %h, %slots : ...
    %dx, %dw:2 = moe.grouped_ffn_up_grad %x2, ...
    ```
  }];
  let dependentDialects = ["::moec::moe::MoEDialect"];
}

#endif // MOEC_TRANSFORMS_LOWERINGPASSES_TD
