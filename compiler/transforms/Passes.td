//===- Passes.td - every moec pass -------------------------*- tablegen -*-===//

#ifndef MOEC_TRANSFORMS_PASSES_TD
#define MOEC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// Memory planning
//===----------------------------------------------------------------------===//

def MoEPlanMemoryPass : Pass<"moe-plan-memory", "::mlir::func::FuncOp"> {
  let summary = "Assign arena offsets to the intermediate tensors of a function";
  let description = [{
    Gives every tensor a function computes a byte offset in one arena, so
    that the runtime allocates once per function and never inside a step.
    Tensors whose live ranges (from the op defining them to their last use;
    returned tensors live to the end) do not overlap share memory: the pass
    places them first-fit in order of definition. Reshapes
    (`tensor.expand_shape`, `tensor.collapse_shape`) are views: their result
    shares its source's bytes and extends its live range.

    Each op gets `moe.offsets`, one offset per result (-1 for a view of a
    function argument); the function gets `moe.arena_size`.

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

#endif // MOEC_TRANSFORMS_PASSES_TD
