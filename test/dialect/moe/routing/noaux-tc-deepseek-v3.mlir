// DeepSeek-V3: sigmoid scores, noaux_tc selection (group score = sum of the
// two best, with the e_score_correction_bias for choosing only), weights
// renormalised (+1e-20) then scaled, one shared expert, and the
// auxiliary-loss-free bias update from the step's expert load.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @deepseek_v3_layer
func.func @deepseek_v3_layer(%x: tensor<32x64xf32>, %wg: tensor<16x64xf32>, %bias: tensor<16xf32>,
                             %w1: tensor<16x32x64xf32>, %w2: tensor<16x64x32xf32>,
                             %w3: tensor<16x32x64xf32>, %s1: tensor<32x64xf32>,
                             %s2: tensor<64x32xf32>, %s3: tensor<32x64xf32>) -> (tensor<32x64xf32>, tensor<16xf32>) {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<16x64xf32>
  // CHECK: %[[S:.+]] = moe.score %{{.+}} {function = #moe.score<sigmoid>}
  %s = moe.score %l {function = #moe.score<sigmoid>} : tensor<32x16xf32>
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.group_topk_route %[[S]] bias(%{{.+}} : tensor<16xf32>) {group_score = #moe.group_score<top2_sum>, k = 4 : i64, norm_eps = 9.99999968E-21 : f32, normalize = true, num_groups = 4 : i64, scaling = 2.500000e+00 : f32, topk_groups = 2 : i64}
  %w, %i = moe.group_topk_route %s bias(%bias : tensor<16xf32>) {k = 4 : i64, num_groups = 4 : i64, topk_groups = 2 : i64, group_score = #moe.group_score<top2_sum>, normalize = true, norm_eps = 1.0e-20 : f32, scaling = 2.5 : f32} : tensor<32x16xf32>
  // CHECK: %{{.+}}, %{{.+}}, %[[SIZES:.+]] = moe.sort_by_expert %[[W]], %[[I]] {num_experts = 16 : i64}
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 16 : i64} : tensor<32x4xf32>, tensor<32x4xi32>
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<128xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2, %w3) group_sizes(%sizes) {activation = #moe.activation<silu>} : (tensor<128x64xf32>, tensor<16x32x64xf32>, tensor<16x64x32xf32>, tensor<16x32x64xf32>, tensor<16xi32>) -> tensor<128x64xf32>
  %routed = moe.combine %ye, %gate, %tok : tensor<128x64xf32>, tensor<128xf32>, tensor<128xi32> -> tensor<32x64xf32>
  %shared = moe.shared_experts %x weights(%s1, %s2, %s3) {num_shared = 1 : i64, activation = #moe.activation<silu>} : (tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x32xf32>, tensor<32x64xf32>) -> tensor<32x64xf32>
  %y = moe.add %routed, %shared : tensor<32x64xf32>
  // CHECK: moe.update_selection_bias %{{.+}}, %[[SIZES]] {rate = 1.000000e-03 : f32} : tensor<16xf32>, tensor<16xi32>
  %next_bias = moe.update_selection_bias %bias, %sizes {rate = 0.001 : f32} : tensor<16xf32>, tensor<16xi32>
  return %y, %next_bias : tensor<32x64xf32>, tensor<16xf32>
}
