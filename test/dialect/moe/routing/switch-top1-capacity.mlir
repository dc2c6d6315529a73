// Switch Transformer: softmax top-1 with the raw probability as weight,
// capacity factor 1.25 with position priority (drops), ReLU experts, the
// Switch load-balancing loss and the router z-loss.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// T = 32 tokens, E = 4 experts, k = 1: C = ceil(1.25 * 32 * 1 / 4) = 10.
// CHECK-LABEL: func.func @switch_layer
func.func @switch_layer(%x: tensor<32x64xf32>, %wg: tensor<4x64xf32>, %w1: tensor<4x256x64xf32>,
                        %w2: tensor<4x64x256xf32>) -> (tensor<32x64xf32>, tensor<f32>, tensor<4xi32>) {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<4x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x4xf32>
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.topk_route %{{.+}} {k = 1 : i64} : tensor<32x4xf32>
  %w, %i = moe.topk_route %s {k = 1 : i64} : tensor<32x4xf32>
  // Position priority is the default, so it is not printed.
  // CHECK: %[[TOK:.+]], %[[GATE:.+]], %[[LOAD:.+]] = moe.assign_slots %[[W]], %[[I]] {capacity = 10 : i64, num_experts = 4 : i64} :
  %tok, %gate, %load = moe.assign_slots %w, %i {num_experts = 4 : i64, capacity = 10 : i64, priority = #moe.drop_priority<position>} : tensor<32x1xf32>, tensor<32x1xi32>
  // CHECK: moe.dispatch %{{.+}}, %[[TOK]] : tensor<32x64xf32>, tensor<4x10xi32>
  %xe = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<4x10xi32>
  // CHECK: moe.grouped_ffn %{{.+}} weights(%{{.+}}, %{{.+}}) {activation = #moe.activation<relu>} : (tensor<4x10x64xf32>
  %ye = moe.grouped_ffn %xe weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<4x10x64xf32>, tensor<4x256x64xf32>, tensor<4x64x256xf32>) -> tensor<4x10x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<4x10x64xf32>, tensor<4x10xf32>, tensor<4x10xi32> -> tensor<32x64xf32>
  // CHECK: %[[AUX:.+]] = moe.load_balancing_loss %{{.+}}, %[[I]] {kind = #moe.balance<switch>}
  %aux = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<32x4xf32>, tensor<32x1xi32>
  // CHECK: %[[Z:.+]] = moe.z_loss
  %z = moe.z_loss %l : tensor<32x4xf32>
  // CHECK: moe.weighted_sum %[[AUX]], %[[Z]] {coefficients = array<f32: 1.000000e-03, 1.000000e-03>}
  %total = moe.weighted_sum %aux, %z {coefficients = array<f32: 0.001, 0.001>}
  return %y, %total, %load : tensor<32x64xf32>, tensor<f32>, tensor<4xi32>
}
