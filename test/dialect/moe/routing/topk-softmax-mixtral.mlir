// Mixtral: softmax scores, top-2 of 8 always renormalised, dropless experts
// (SwiGLU), router jitter in training, Mixtral's per-slot load-balancing loss.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @mixtral_moe_layer
func.func @mixtral_moe_layer(%x: tensor<32x64xf32>, %seed: tensor<i64>, %wg: tensor<8x64xf32>,
                             %w1: tensor<8x112x64xf32>, %w2: tensor<8x64x112xf32>,
                             %w3: tensor<8x112x64xf32>) -> (tensor<32x64xf32>, tensor<f32>, tensor<8xi32>) {
  // CHECK: %[[J:.+]] = moe.router_jitter %{{.+}}, %{{.+}} {epsilon = 0.00999999977 : f32}
  %j = moe.router_jitter %x, %seed {epsilon = 0.01 : f32} : tensor<32x64xf32>
  // CHECK: %[[L:.+]] = moe.router_logits %[[J]], %{{.+}} : tensor<32x64xf32>, tensor<8x64xf32>
  %l = moe.router_logits %j, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  // CHECK: %[[S:.+]] = moe.score %[[L]] {function = #moe.score<softmax>}
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.topk_route %[[S]] {k = 2 : i64, normalize = true}
  %w, %i = moe.topk_route %s {k = 2 : i64, normalize = true} : tensor<32x8xf32>
  // CHECK: %[[TOK:.+]], %[[GATE:.+]], %[[SIZES:.+]] = moe.sort_by_expert %[[W]], %[[I]] {num_experts = 8 : i64}
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 8 : i64} : tensor<32x2xf32>, tensor<32x2xi32>
  // CHECK: %[[ROWS:.+]] = moe.dispatch %{{.+}}, %[[TOK]] : tensor<32x64xf32>, tensor<64xi32>
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<64xi32>
  // CHECK: %[[Y:.+]] = moe.grouped_ffn %[[ROWS]] weights(%{{.+}}, %{{.+}}, %{{.+}}) group_sizes(%[[SIZES]]) {activation = #moe.activation<silu>}
  %ye = moe.grouped_ffn %rows weights(%w1, %w2, %w3) group_sizes(%sizes) {activation = #moe.activation<silu>} : (tensor<64x64xf32>, tensor<8x112x64xf32>, tensor<8x64x112xf32>, tensor<8x112x64xf32>, tensor<8xi32>) -> tensor<64x64xf32>
  // CHECK: moe.combine %[[Y]], %[[GATE]], %[[TOK]] : tensor<64x64xf32>, tensor<64xf32>, tensor<64xi32> -> tensor<32x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<64x64xf32>, tensor<64xf32>, tensor<64xi32> -> tensor<32x64xf32>
  // CHECK: moe.load_balancing_loss %[[S]], %[[I]] {kind = #moe.balance<per_slot>}
  %aux = moe.load_balancing_loss %s, %i {kind = #moe.balance<per_slot>} : tensor<32x8xf32>, tensor<32x2xi32>
  return %y, %aux, %sizes : tensor<32x64xf32>, tensor<f32>, tensor<8xi32>
}
