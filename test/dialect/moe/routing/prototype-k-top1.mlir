// M6-T expert prototyping: 8 experts in k = 2 prototypes of 4; every token
// takes the top-1 expert of each prototype.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @prototype_layer
func.func @prototype_layer(%x: tensor<32x64xf32>, %wg: tensor<8x64xf32>, %w1: tensor<8x128x64xf32>,
                           %w2: tensor<8x64x128xf32>) -> (tensor<32x64xf32>, tensor<f32>) {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.prototype_route %{{.+}} {num_prototypes = 2 : i64} : tensor<32x8xf32>
  %w, %i = moe.prototype_route %s {num_prototypes = 2 : i64} : tensor<32x8xf32>
  // CHECK: moe.assign_slots %[[W]], %[[I]] {{.+}} : tensor<32x2xf32>, tensor<32x2xi32>
  %tok, %gate, %load = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 10 : i64} : tensor<32x2xf32>, tensor<32x2xi32>
  %xe = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<8x10xi32>
  %ye = moe.grouped_ffn %xe weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<8x10x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>) -> tensor<8x10x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<8x10x64xf32>, tensor<8x10xf32>, tensor<8x10xi32> -> tensor<32x64xf32>
  %aux = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<32x8xf32>, tensor<32x2xi32>
  return %y, %aux : tensor<32x64xf32>, tensor<f32>
}
