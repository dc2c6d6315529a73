// Expert-choice routing (Zhou et al.): every expert takes its top-C tokens;
// C = round(capacity_factor * T / E) = round(2 * 32 / 8) = 8. The slots feed
// dispatch and combine directly; no load-balancing loss.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @expert_choice_layer
func.func @expert_choice_layer(%x: tensor<32x64xf32>, %wg: tensor<8x64xf32>, %w1: tensor<8x128x64xf32>,
                               %w2: tensor<8x64x128xf32>) -> tensor<32x64xf32> {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  // CHECK: %[[TOK:.+]], %[[GATE:.+]] = moe.expert_choice_route %{{.+}} {capacity = 8 : i64} : tensor<32x8xf32>
  %tok, %gate = moe.expert_choice_route %s {capacity = 8 : i64} : tensor<32x8xf32>
  // CHECK: %[[XE:.+]] = moe.dispatch %{{.+}}, %[[TOK]] : tensor<32x64xf32>, tensor<8x8xi32>
  %xe = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<8x8xi32>
  %ye = moe.grouped_ffn %xe weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<8x8x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>) -> tensor<8x8x64xf32>
  // CHECK: moe.combine %{{.+}}, %[[GATE]], %[[TOK]] : tensor<8x8x64xf32>, tensor<8x8xf32>, tensor<8x8xi32> -> tensor<32x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<8x8x64xf32>, tensor<8x8xf32>, tensor<8x8xi32> -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}
