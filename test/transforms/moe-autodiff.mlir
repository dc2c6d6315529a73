// RUN: moe-opt %s --moe-autodiff --split-input-file --verify-diagnostics | FileCheck %s

// A linear layer under cross-entropy: one gradient per trainable parameter,
// none for frozen ones, the forward results kept.
// CHECK-LABEL: func.func @forward_backward
// CHECK-SAME: -> (tensor<f32> {moe.output = "loss"}, tensor<4x8xf32> {moe.grad = "w"}, tensor<4xf32> {moe.grad = "b"})
func.func @forward(%x: tensor<2x3x8xf32> {moe.input = "x"},
                   %t: tensor<2x3xi32> {moe.input = "targets"},
                   %w: tensor<4x8xf32> {moe.param = "w", moe.trainable = true},
                   %b: tensor<4xf32> {moe.param = "b", moe.trainable = true},
                   %frozen: tensor<4xf32> {moe.param = "frozen", moe.trainable = false})
    -> (tensor<f32> {moe.output = "loss"}) {
  %y = moe.linear %x, %w, %b : tensor<2x3x8xf32>, tensor<4x8xf32>, tensor<4xf32>
  %z = moe.linear %x, %w, %frozen : tensor<2x3x8xf32>, tensor<4x8xf32>, tensor<4xf32>
  %s = moe.add %y, %z : tensor<2x3x4xf32>
  %l = moe.cross_entropy %s, %t : tensor<2x3x4xf32>, tensor<2x3xi32>
  return %l : tensor<f32>
}
// The seed, then the VJPs in reverse order; %w is used twice, so its two
// gradients are summed.
// CHECK: %[[ONE:.+]] = moe.fill {value = 1.000000e+00 : f32} : tensor<f32>
// CHECK: %[[DS:.+]] = moe.cross_entropy_grad %{{.+}}, %{{.+}}, %[[ONE]]
// CHECK: %[[DX1:.+]], %[[DW1:.+]] = moe.linear_grad %{{.+}}, %{{.+}}, %[[DS]]
// CHECK: %[[DX2:.+]], %[[DW2:.+]] = moe.linear_grad %{{.+}}, %{{.+}}, %[[DS]]
// CHECK: %[[DB:.+]] = moe.reduce_rows %[[DS]]
// CHECK: %[[DW:.+]] = moe.add %[[DW1]], %[[DW2]]
// CHECK: return %{{.+}}, %[[DW]], %[[DB]]

// -----

// An op on the path to the loss without a gradient rule is an error.
func.func @forward(%t: tensor<4xi32> {moe.input = "tokens"}, %i: tensor<4x2xi32> {moe.input = "i"})
    -> (tensor<f32> {moe.output = "loss"}) {
  // expected-error @+1 {{'moe.routing_stats' op is on the path to 'loss' but has no gradient rule (GradientOpInterface)}}
  %load, %dropped = moe.routing_stats %t indices(%i : tensor<4x2xi32>) {num_experts = 2 : i64, num_tokens = 4 : i64} : tensor<4xi32>
  %l = moe.weighted_sum %dropped {coefficients = array<f32: 1.0>}
  return %l : tensor<f32>
}

// -----

// expected-error @+1 {{moe-autodiff: no result named 'loss'}}
func.func @forward(%x: tensor<f32> {moe.input = "x"}) -> (tensor<f32> {moe.output = "other"}) {
  return %x : tensor<f32>
}
