// Collectives come from the upstream mesh dialect: an expert-parallel layer
// on a 2 x 4 (dp x ep) mesh exchanges its capacity slots with mesh.all_to_all
// over the ep axis before and after the experts.
// RUN: moe-opt %s | moe-opt | FileCheck %s

// CHECK: mesh.mesh @mesh(shape = 2x4)
mesh.mesh @mesh(shape = 2x4)

// CHECK-LABEL: func.func @expert_parallel_layer
func.func @expert_parallel_layer(%x: tensor<32x64xf32>, %wg: tensor<8x64xf32>,
                                 %w1: tensor<2x128x64xf32>, %w2: tensor<2x64x128xf32>) -> tensor<32x64xf32> {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<8x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64, normalize = true} : tensor<32x8xf32>
  %tok, %gate, %load = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 8 : i64} : tensor<32x2xf32>, tensor<32x2xi32>
  %xe = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<8x8xi32>
  // Each rank sends the slots of the experts it does not own and receives
  // the slots of its 2 local experts from the 4 ranks of its ep group.
  // CHECK: %[[RECV:.+]] = mesh.all_to_all %{{.+}} on @mesh mesh_axes = [1] split_axis = 0 concat_axis = 1 : tensor<8x8x64xf32> -> tensor<2x32x64xf32>
  %recv = mesh.all_to_all %xe on @mesh mesh_axes = [1] split_axis = 0 concat_axis = 1 : tensor<8x8x64xf32> -> tensor<2x32x64xf32>
  // CHECK: moe.grouped_ffn %[[RECV]]
  %ye = moe.grouped_ffn %recv weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<2x32x64xf32>, tensor<2x128x64xf32>, tensor<2x64x128xf32>) -> tensor<2x32x64xf32>
  // CHECK: mesh.all_to_all %{{.+}} on @mesh mesh_axes = [1] split_axis = 1 concat_axis = 0 : tensor<2x32x64xf32> -> tensor<8x8x64xf32>
  %back = mesh.all_to_all %ye on @mesh mesh_axes = [1] split_axis = 1 concat_axis = 0 : tensor<2x32x64xf32> -> tensor<8x8x64xf32>
  %y = moe.combine %back, %gate, %tok : tensor<8x8x64xf32>, tensor<8x8xf32>, tensor<8x8xi32> -> tensor<32x64xf32>
  return %y : tensor<32x64xf32>
}
