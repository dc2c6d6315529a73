// EvoMoE dense-to-sparse gate: Gumbel-softmax scores at a scheduled
// temperature (an input of the step), every expert above threshold 0.1 kept
// and renormalised.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @dts_layer
func.func @dts_layer(%x: tensor<32x64xf32>, %tau: tensor<f32>, %seed: tensor<i64>, %wg: tensor<8x64xf32>,
                     %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>) -> tensor<32x64xf32> {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  // CHECK: %[[S:.+]] = moe.gumbel_softmax %{{.+}} temperature(%{{.+}}) noise(%{{.+}}) : tensor<32x8xf32>
  %s = moe.gumbel_softmax %l temperature(%tau) noise(%seed) : tensor<32x8xf32>
  // CHECK: moe.threshold_route %[[S]] {max_k = 8 : i64, threshold = 1.000000e-01 : f32} : tensor<32x8xf32>
  %w, %i = moe.threshold_route %s {threshold = 0.1 : f32, max_k = 8 : i64} : tensor<32x8xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 8 : i64} : tensor<32x8xf32>, tensor<32x8xi32>
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<256xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2) group_sizes(%sizes) {activation = #moe.activation<gelu>} : (tensor<256x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<8xi32>) -> tensor<256x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<256x64xf32>, tensor<256xf32>, tensor<256xi32> -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}
