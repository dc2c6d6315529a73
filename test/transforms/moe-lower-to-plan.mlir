// The pipeline moec runs before writing a plan: cleanups, recomputation for
// the backward pass, then memory.
// RUN: moe-opt %s --moe-lower-to-plan | FileCheck %s
// RUN: moe-opt --help | FileCheck %s --check-prefix=HELP
// HELP-DAG: --moe-lower-to-plan - Clean up, recompute cheap forward ops for the backward pass and plan the memory of every function
// HELP-DAG: --moe-rematerialize - Compute cheap forward ops again for the backward pass instead of keeping their results
// HELP-DAG: --moe-plan-memory - Assign arena offsets to the intermediate tensors of a function

// CHECK-LABEL: func.func @layer
// CHECK-SAME: moe.arena_size
func.func @layer(%x: tensor<16x32xf32>, %wg: tensor<4x32xf32>) -> tensor<f32> {
  %l = moe.router_logits %x, %wg : tensor<16x32xf32>, tensor<4x32xf32>
  // The duplicate is removed by CSE.
  // CHECK: moe.z_loss
  // CHECK-NOT: moe.z_loss
  %z1 = moe.z_loss %l : tensor<16x4xf32>
  %z2 = moe.z_loss %l : tensor<16x4xf32>
  %t = moe.weighted_sum %z1, %z2 {coefficients = array<f32: 1.0, 1.0>}
  return %t : tensor<f32>
}
