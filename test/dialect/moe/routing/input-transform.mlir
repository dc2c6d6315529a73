// Modified softmax gating: the router gates on a transform of x (l2norm,
// layernorm without affine, tanh) while the experts see x itself; softmax
// with a temperature.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @modified_gating_layer
func.func @modified_gating_layer(%x: tensor<32x64xf32>, %wg: tensor<8x64xf32>, %w1: tensor<8x128x64xf32>,
                                 %w2: tensor<8x64x128xf32>) -> tensor<32x64xf32> {
  // CHECK: %[[T:.+]] = moe.router_input_transform %[[X:.+]] {kind = #moe.input_transform<l2norm>}
  %t = moe.router_input_transform %x {kind = #moe.input_transform<l2norm>} : tensor<32x64xf32>
  // CHECK: moe.router_logits %[[T]]
  %l = moe.router_logits %t, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  // CHECK: moe.score %{{.+}} {function = #moe.score<softmax>, temperature = 5.000000e-01 : f32}
  %s = moe.score %l {function = #moe.score<softmax>, temperature = 0.5 : f32} : tensor<32x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64, normalize = true} : tensor<32x8xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 8 : i64} : tensor<32x2xf32>, tensor<32x2xi32>
  // The experts read the untransformed input.
  // CHECK: moe.dispatch %[[X]]
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<64xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2) group_sizes(%sizes) {activation = #moe.activation<gelu>} : (tensor<64x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<8xi32>) -> tensor<64x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<64x64xf32>, tensor<64xf32>, tensor<64xi32> -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}

// CHECK-LABEL: func.func @other_transforms
func.func @other_transforms(%x: tensor<32x64xf32>) -> (tensor<32x64xf32>, tensor<32x64xf32>) {
  // CHECK: moe.router_input_transform %{{.+}} {eps = 9.99999974E-6 : f32, kind = #moe.input_transform<layernorm>}
  %a = moe.router_input_transform %x {kind = #moe.input_transform<layernorm>, eps = 1.0e-5 : f32} : tensor<32x64xf32>
  // CHECK: moe.router_input_transform %{{.+}} {kind = #moe.input_transform<tanh>}
  %b = moe.router_input_transform %x {kind = #moe.input_transform<tanh>} : tensor<32x64xf32>
  return %a, %b : tensor<32x64xf32>, tensor<32x64xf32>
}
