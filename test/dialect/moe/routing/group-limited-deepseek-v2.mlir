// DeepSeek-V2: softmax scores, group_limited_greedy (group score = max),
// 3 of 8 groups kept, top-6 of 64 experts without renormalisation, scaled by
// routed_scaling_factor; two shared experts; DeepSeek's sequence-level
// auxiliary loss.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @deepseek_v2_layer
func.func @deepseek_v2_layer(%x: tensor<32x64xf32>, %wg: tensor<64x64xf32>, %w1: tensor<64x24x64xf32>,
                             %w2: tensor<64x64x24xf32>, %w3: tensor<64x24x64xf32>,
                             %s1: tensor<48x64xf32>, %s2: tensor<64x48xf32>,
                             %s3: tensor<48x64xf32>) -> (tensor<32x64xf32>, tensor<f32>) {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<64x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x64xf32>
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.group_topk_route %{{.+}} {group_score = #moe.group_score<max>, k = 6 : i64, num_groups = 8 : i64, scaling = 1.600000e+01 : f32, topk_groups = 3 : i64} : tensor<32x64xf32>
  %w, %i = moe.group_topk_route %s {k = 6 : i64, num_groups = 8 : i64, topk_groups = 3 : i64, group_score = #moe.group_score<max>, scaling = 16.0 : f32} : tensor<32x64xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 64 : i64} : tensor<32x6xf32>, tensor<32x6xi32>
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<192xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2, %w3) group_sizes(%sizes) {activation = #moe.activation<silu>} : (tensor<192x64xf32>, tensor<64x24x64xf32>, tensor<64x64x24xf32>, tensor<64x24x64xf32>, tensor<64xi32>) -> tensor<192x64xf32>
  %routed = moe.combine %ye, %gate, %tok : tensor<192x64xf32>, tensor<192xf32>, tensor<192xi32> -> tensor<32x64xf32>
  // CHECK: %[[SH:.+]] = moe.shared_experts %{{.+}} weights(%{{.+}}, %{{.+}}, %{{.+}}) {activation = #moe.activation<silu>, num_shared = 2 : i64}
  %shared = moe.shared_experts %x weights(%s1, %s2, %s3) {num_shared = 2 : i64, activation = #moe.activation<silu>} : (tensor<32x64xf32>, tensor<48x64xf32>, tensor<64x48xf32>, tensor<48x64xf32>) -> tensor<32x64xf32>
  // CHECK: moe.add %{{.+}}, %[[SH]]
  %y = moe.add %routed, %shared : tensor<32x64xf32>
  // Two sequences of 16 tokens.
  // CHECK: moe.load_balancing_loss %{{.+}}, %[[I]] {kind = #moe.balance<sequence>, seq_len = 16 : i64}
  %aux = moe.load_balancing_loss %s, %i {kind = #moe.balance<sequence>, seq_len = 16 : i64} : tensor<32x64xf32>, tensor<32x6xi32>
  return %y, %aux : tensor<32x64xf32>, tensor<f32>
}
