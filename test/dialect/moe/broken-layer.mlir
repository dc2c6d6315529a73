// A user's broken op in the middle of a layer: moe-opt fails and its message
// names the file position, the op, the operand, and expected vs actual.
// RUN: not moe-opt %s 2>&1 | FileCheck %s

func.func @layer(%x: tensor<32x64xf32>, %wg: tensor<8x64xf32>, %w1: tensor<8x128x64xf32>,
                 %w2: tensor<8x128x64xf32>) -> tensor<32x64xf32> {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
  %tok, %gate, %load = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 8 : i64} : tensor<32x2xf32>, tensor<32x2xi32>
  %xe = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<8x8xi32>
  // w2 was given the layout of w1 by mistake.
  // CHECK: broken-layer.mlir:[[@LINE+1]]:9: error: 'moe.grouped_ffn' op operand 'w2' must have shape [8, 64, 128] (the transpose of 'w1'), but has shape [8, 128, 64]
  %ye = moe.grouped_ffn %xe weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<8x8x64xf32>, tensor<8x128x64xf32>, tensor<8x128x64xf32>) -> tensor<8x8x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<8x8x64xf32>, tensor<8x8xf32>, tensor<8x8xi32> -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}
