// GShard-style top-2 with a capacity and batch-prioritized routing: when an
// expert is over capacity, the assignments with the highest routing weight
// keep their slots.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// T = 32, E = 8, k = 2, capacity factor 1.0: C = ceil(32 * 2 / 8) = 8.
// CHECK-LABEL: func.func @bpr_layer
func.func @bpr_layer(%x: tensor<32x64xf32>, %wg: tensor<8x64xf32>, %w1: tensor<8x128x64xf32>,
                     %w2: tensor<8x64x128xf32>) -> tensor<32x64xf32> {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
  // CHECK: moe.assign_slots %{{.+}}, %{{.+}} {capacity = 8 : i64, num_experts = 8 : i64, priority = #moe.drop_priority<score>} : tensor<32x2xf32>, tensor<32x2xi32>
  %tok, %gate, %load = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 8 : i64, priority = #moe.drop_priority<score>} : tensor<32x2xf32>, tensor<32x2xi32>
  %xe = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<8x8xi32>
  // CHECK: moe.grouped_ffn %{{.+}} {activation = #moe.activation<gelu>}
  %ye = moe.grouped_ffn %xe weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<8x8x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>) -> tensor<8x8x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<8x8x64xf32>, tensor<8x8xf32>, tensor<8x8xi32> -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}
