// RUN: moe-opt %s --moe-bf16-activations --split-input-file | FileCheck %s

// bf16 products: the pre-activations that the down half and its gradient
// read are stored in bf16; the gradient stays fp32.
// CHECK-LABEL: func.func @stored_in_bf16
func.func @stored_in_bf16(%x: tensor<8x4xf32>, %w1: tensor<2x6x4xf32>, %w3: tensor<2x6x4xf32>,
                          %w2: tensor<2x4x6xf32>, %n: tensor<2xi32>, %dy: tensor<8x4xf32>)
    -> (tensor<8x4xf32>, tensor<8x12xf32>, tensor<2x4x6xf32>) {
  // CHECK: moe.grouped_ffn_up {{.*}} -> tensor<8x12xbf16>
  %h = moe.grouped_ffn_up %x weights(%w1, %w3) group_sizes(%n) {moe.precision = #moe.precision<bf16>} : (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2x6x4xf32>, tensor<2xi32>) -> tensor<8x12xf32>
  // CHECK: moe.grouped_ffn_down {{.*}} : (tensor<8x12xbf16>, tensor<2x4x6xf32>, tensor<2xi32>) -> tensor<8x4xf32>
  %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%n) {activation = #moe.activation<silu>, gated, moe.precision = #moe.precision<bf16>} : (tensor<8x12xf32>, tensor<2x4x6xf32>, tensor<2xi32>) -> tensor<8x4xf32>
  // CHECK: moe.grouped_ffn_down_grad {{.*}} : (tensor<8x12xbf16>, tensor<2x4x6xf32>, tensor<2xi32>, tensor<8x4xf32>) -> (tensor<8x12xf32>, tensor<2x4x6xf32>)
  %dh, %dw2 = moe.grouped_ffn_down_grad %h, %w2, %n, %y {activation = #moe.activation<silu>, gated} : (tensor<8x12xf32>, tensor<2x4x6xf32>, tensor<2xi32>, tensor<8x4xf32>) -> (tensor<8x12xf32>, tensor<2x4x6xf32>)
  return %y, %dh, %dw2 : tensor<8x4xf32>, tensor<8x12xf32>, tensor<2x4x6xf32>
}

// -----

// fp32 products keep fp32 storage; so do pre-activations another op reads.
// CHECK-LABEL: func.func @kept_in_fp32
func.func @kept_in_fp32(%x: tensor<8x4xf32>, %w1: tensor<2x6x4xf32>, %w2: tensor<2x4x6xf32>,
                        %n: tensor<2xi32>) -> (tensor<8x4xf32>, tensor<8x6xf32>) {
  // CHECK: moe.grouped_ffn_up {{.*}} -> tensor<8x6xf32>
  %h = moe.grouped_ffn_up %x weights(%w1) group_sizes(%n) : (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2xi32>) -> tensor<8x6xf32>
  %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%n) {activation = #moe.activation<relu>} : (tensor<8x6xf32>, tensor<2x4x6xf32>, tensor<2xi32>) -> tensor<8x4xf32>
  // CHECK: moe.grouped_ffn_up {{.*}} -> tensor<8x6xf32>
  %h2 = moe.grouped_ffn_up %x weights(%w1) group_sizes(%n) {moe.precision = #moe.precision<bf16>} : (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2xi32>) -> tensor<8x6xf32>
  %r = moe.add %h2, %h2 : tensor<8x6xf32>
  return %y, %r : tensor<8x4xf32>, tensor<8x6xf32>
}

// -----

// The experts' outputs, read by the combine and its gradient, too; the
// combine sums them into fp32, their gradient is fp32.
// CHECK-LABEL: func.func @outputs_in_bf16
func.func @outputs_in_bf16(%h: tensor<8x6xf32>, %w2: tensor<2x4x6xf32>, %n: tensor<2xi32>,
                           %gates: tensor<8xf32>, %slots: tensor<8xi32>, %dy: tensor<4x4xf32>)
    -> (tensor<4x4xf32>, tensor<8x4xf32>, tensor<8xf32>) {
  // CHECK: moe.grouped_ffn_down {{.*}} -> tensor<8x4xbf16>
  %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%n) {activation = #moe.activation<relu>, moe.precision = #moe.precision<bf16>} : (tensor<8x6xf32>, tensor<2x4x6xf32>, tensor<2xi32>) -> tensor<8x4xf32>
  // CHECK: moe.combine {{.*}} : tensor<8x4xbf16>, tensor<8xf32>, tensor<8xi32> -> tensor<4x4xf32>
  %c = moe.combine %y, %gates, %slots : tensor<8x4xf32>, tensor<8xf32>, tensor<8xi32> -> tensor<4x4xf32>
  // CHECK: moe.combine_grad {{.*}} : (tensor<8x4xbf16>, tensor<8xf32>, tensor<8xi32>, tensor<4x4xf32>) -> (tensor<8x4xf32>, tensor<8xf32>)
  %dy8, %dg = moe.combine_grad %y, %gates, %slots, %dy : (tensor<8x4xf32>, tensor<8xf32>, tensor<8xi32>, tensor<4x4xf32>) -> (tensor<8x4xf32>, tensor<8xf32>)
  return %c, %dy8, %dg : tensor<4x4xf32>, tensor<8x4xf32>, tensor<8xf32>
}

// -----

// The gradient of the pre-activations, which only bf16 products read (the
// tile rounds it as it loads it anyway).
// CHECK-LABEL: func.func @gradient_in_bf16
func.func @gradient_in_bf16(%rows: tensor<8x4xf32>, %w1: tensor<2x6x4xf32>,
                            %w2: tensor<2x4x6xf32>, %n: tensor<2xi32>, %h: tensor<8x6xf32>,
                            %dy: tensor<8x4xf32>)
    -> (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2x4x6xf32>) {
  // CHECK: moe.grouped_ffn_down_grad {{.*}} -> (tensor<8x6xbf16>, tensor<2x4x6xf32>)
  %dh, %dw2 = moe.grouped_ffn_down_grad %h, %w2, %n, %dy {activation = #moe.activation<relu>, moe.precision = #moe.precision<bf16>} : (tensor<8x6xf32>, tensor<2x4x6xf32>, tensor<2xi32>, tensor<8x4xf32>) -> (tensor<8x6xf32>, tensor<2x4x6xf32>)
  // CHECK: moe.grouped_ffn_up_grad {{.*}} : (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2xi32>, tensor<8x6xbf16>) -> (tensor<8x4xf32>, tensor<2x6x4xf32>)
  %dx, %dw1 = moe.grouped_ffn_up_grad %rows, %w1, %n, %dh {operandSegmentSizes = array<i32: 1, 1, 0, 1, 1>, moe.precision = #moe.precision<bf16>} : (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2xi32>, tensor<8x6xf32>) -> (tensor<8x4xf32>, tensor<2x6x4xf32>)
  return %dx, %dw1, %dw2 : tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2x4x6xf32>
}

// -----

// A gradient an fp32 product reads stays fp32.
// CHECK-LABEL: func.func @gradient_read_in_fp32
func.func @gradient_read_in_fp32(%rows: tensor<8x4xf32>, %w1: tensor<2x6x4xf32>,
                                 %w2: tensor<2x4x6xf32>, %n: tensor<2xi32>, %h: tensor<8x6xf32>,
                                 %dy: tensor<8x4xf32>)
    -> (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2x4x6xf32>) {
  // CHECK: moe.grouped_ffn_down_grad {{.*}} -> (tensor<8x6xf32>, tensor<2x4x6xf32>)
  %dh, %dw2 = moe.grouped_ffn_down_grad %h, %w2, %n, %dy {activation = #moe.activation<relu>, moe.precision = #moe.precision<bf16>} : (tensor<8x6xf32>, tensor<2x4x6xf32>, tensor<2xi32>, tensor<8x4xf32>) -> (tensor<8x6xf32>, tensor<2x4x6xf32>)
  %dx, %dw1 = moe.grouped_ffn_up_grad %rows, %w1, %n, %dh {operandSegmentSizes = array<i32: 1, 1, 0, 1, 1>} : (tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2xi32>, tensor<8x6xf32>) -> (tensor<8x4xf32>, tensor<2x6x4xf32>)
  return %dx, %dw1, %dw2 : tensor<8x4xf32>, tensor<2x6x4xf32>, tensor<2x4x6xf32>
}

// -----

// Under expert parallelism the outputs travel back to their tokens' ranks
// before the combine: the returned rows are bf16 as well.
// CHECK-LABEL: func.func @returned_in_bf16
module {
  mesh.mesh @mesh(shape = 1x2)
  func.func @returned_in_bf16(%h: tensor<16x6xf32>, %w2: tensor<2x4x6xf32>, %n: tensor<2xi32>,
                              %counts: tensor<8xi32>, %gates: tensor<8xf32>, %slots: tensor<8xi32>,
                              %dy: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<8x4xf32>) {
    // CHECK: moe.grouped_ffn_down {{.*}} -> tensor<16x4xbf16>
    %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%n) {activation = #moe.activation<relu>, moe.precision = #moe.precision<bf16>} : (tensor<16x6xf32>, tensor<2x4x6xf32>, tensor<2xi32>) -> tensor<16x4xf32>
    // CHECK: moe.expert_return {{.*}} : tensor<16x4xbf16>, tensor<8xi32> -> tensor<8x4xbf16>
    %back = moe.expert_return %y, %counts on @mesh mesh_axes = [1] : tensor<16x4xf32>, tensor<8xi32> -> tensor<8x4xf32>
    %out = moe.combine %back, %gates, %slots : tensor<8x4xf32>, tensor<8xf32>, tensor<8xi32> -> tensor<4x4xf32>
    %dback, %dgates = moe.combine_grad %back, %gates, %slots, %dy : (tensor<8x4xf32>, tensor<8xf32>, tensor<8xi32>, tensor<4x4xf32>) -> (tensor<8x4xf32>, tensor<8xf32>)
    return %out, %dback : tensor<4x4xf32>, tensor<8x4xf32>
  }
}
