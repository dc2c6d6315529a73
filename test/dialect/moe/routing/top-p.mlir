// Dynamic top-p routing: each token keeps the smallest set of experts whose
// probability mass reaches p = 0.4, at most 4; dropless dispatch skips the
// unused (-1) slots.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @top_p_layer
func.func @top_p_layer(%x: tensor<32x64xf32>, %wg: tensor<8x64xf32>, %w1: tensor<8x128x64xf32>,
                       %w2: tensor<8x64x128xf32>, %w3: tensor<8x128x64xf32>) -> (tensor<32x64xf32>, tensor<f32>) {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.top_p_route %{{.+}} {max_k = 4 : i64, p = 4.000000e-01 : f32} : tensor<32x8xf32>
  %w, %i = moe.top_p_route %s {p = 0.4 : f32, max_k = 4 : i64} : tensor<32x8xf32>
  // CHECK: moe.sort_by_expert %[[W]], %[[I]] {num_experts = 8 : i64} : tensor<32x4xf32>, tensor<32x4xi32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 8 : i64} : tensor<32x4xf32>, tensor<32x4xi32>
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<128xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2, %w3) group_sizes(%sizes) {activation = #moe.activation<silu>} : (tensor<128x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<8x128x64xf32>, tensor<8xi32>) -> tensor<128x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<128x64xf32>, tensor<128xf32>, tensor<128xi32> -> tensor<32x64xf32>
  %aux = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<32x8xf32>, tensor<32x4xi32>
  return %y, %aux : tensor<32x64xf32>, tensor<f32>
}
