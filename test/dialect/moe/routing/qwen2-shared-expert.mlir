// Qwen2-MoE: softmax top-4 of 16 without renormalisation (norm_topk_prob =
// false) and a sigmoid-gated shared expert, σ(x · w_sg) · Shared(x).
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @qwen2_moe_layer
func.func @qwen2_moe_layer(%x: tensor<32x64xf32>, %wg: tensor<16x64xf32>, %w1: tensor<16x32x64xf32>,
                           %w2: tensor<16x64x32xf32>, %w3: tensor<16x32x64xf32>, %s1: tensor<128x64xf32>,
                           %s2: tensor<64x128xf32>, %s3: tensor<128x64xf32>,
                           %wsg: tensor<1x64xf32>) -> (tensor<32x64xf32>, tensor<f32>) {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<16x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x16xf32>
  // CHECK: moe.topk_route %{{.+}} {k = 4 : i64} : tensor<32x16xf32>
  %w, %i = moe.topk_route %s {k = 4 : i64} : tensor<32x16xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 16 : i64} : tensor<32x4xf32>, tensor<32x4xi32>
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<128xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2, %w3) group_sizes(%sizes) {activation = #moe.activation<silu>} : (tensor<128x64xf32>, tensor<16x32x64xf32>, tensor<16x64x32xf32>, tensor<16x32x64xf32>, tensor<16xi32>) -> tensor<128x64xf32>
  %routed = moe.combine %ye, %gate, %tok : tensor<128x64xf32>, tensor<128xf32>, tensor<128xi32> -> tensor<32x64xf32>
  // CHECK: moe.shared_experts %{{.+}} weights(%{{.+}}, %{{.+}}, %{{.+}}) sigmoid_gate(%{{.+}}) {activation = #moe.activation<silu>, num_shared = 1 : i64}
  %shared = moe.shared_experts %x weights(%s1, %s2, %s3) sigmoid_gate(%wsg) {num_shared = 1 : i64, activation = #moe.activation<silu>} : (tensor<32x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<1x64xf32>) -> tensor<32x64xf32>
  %y = moe.add %routed, %shared : tensor<32x64xf32>
  %aux = moe.load_balancing_loss %s, %i {kind = #moe.balance<per_slot>} : tensor<32x16xf32>, tensor<32x4xi32>
  return %y, %aux : tensor<32x64xf32>, tensor<f32>
}
