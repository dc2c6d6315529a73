// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=1 ep=2" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=1 ep=2" --moe-autodiff --moe-reduce-gradients="function=forward_backward" | FileCheck %s --check-prefix=GRAD

// Expert parallelism, dropless: each rank of the ep axis holds 2 of the 4
// experts; its sorted rows travel to their experts' ranks and back.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: %{{[^:]+}}: tensor<2x6x8xf32> {moe.param = "w1", moe.shard_axes = array<i16: 1>, moe.trainable = true}
// CHECK-SAME: %{{[^:]+}}: tensor<2x8x6xf32> {moe.param = "w2", moe.shard_axes = array<i16: 1>, moe.trainable = true}
// CHECK: %[[TOK:[^,]+]], %[[GATE:[^,]+]], %[[SIZES:.+]] = moe.sort_by_expert
// CHECK: %[[ROWS:.+]] = moe.dispatch
// CHECK: %[[COUNTS:.+]] = mesh.all_gather %[[SIZES]] on @mesh mesh_axes = [1] gather_axis = 0 : tensor<4xi32> -> tensor<8xi32>
// CHECK: %[[RECV:.+]], %[[LOCAL:.+]] = moe.expert_exchange %[[ROWS]], %[[COUNTS]] on @mesh mesh_axes = [1] : tensor<8x8xf32>, tensor<8xi32> -> tensor<16x8xf32>, tensor<2xi32>
// CHECK: %[[OUT:.+]] = moe.grouped_ffn %[[RECV]] weights(%{{.+}}, %{{.+}}) group_sizes(%[[LOCAL]]) {{.+}} -> tensor<16x8xf32>
// CHECK: %[[BACK:.+]] = moe.expert_return %[[OUT]], %[[COUNTS]] on @mesh mesh_axes = [1] : tensor<16x8xf32>, tensor<8xi32> -> tensor<8x8xf32>
// CHECK: moe.combine %[[BACK]], %[[GATE]], %[[TOK]]

// Differentiated: the exchanges are each other's gradient; the split
// weights' gradients are not summed over ep (no other rank holds them), the
// router's are.
// GRAD-LABEL: func.func @forward_backward
// GRAD: %[[COUNTS:.+]] = mesh.all_gather
// GRAD: moe.expert_exchange
// GRAD: moe.expert_return
// GRAD: moe.combine_grad
// GRAD: %[[DRECV:.+]], %{{.+}} = moe.expert_exchange %{{.+}}, %[[COUNTS]]
// GRAD: %[[DIN:.+]], %{{.+}} = moe.grouped_ffn_grad {{.+}} %[[DRECV]]
// GRAD: moe.expert_return %[[DIN]], %[[COUNTS]]
// GRAD: %[[RG:.+]] = mesh.all_reduce %{{.+}} on @mesh mesh_axes = [0, 1] : tensor<4x8xf32> -> tensor<4x8xf32>
// GRAD-NOT: mesh.all_reduce
// GRAD: return
func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32> {moe.input = "tokens"},
                   %wg: tensor<4x8xf32> {moe.param = "wg", moe.trainable = true},
                   %w1: tensor<4x6x8xf32> {moe.param = "w1", moe.trainable = true},
                   %w2: tensor<4x8x6xf32> {moe.param = "w2", moe.trainable = true})
    -> (tensor<f32> {moe.output = "loss"}) {
  %l = moe.router_logits %x, %wg : tensor<4x8xf32>, tensor<4x8xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<4x4xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64, normalize = true} : tensor<4x4xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 4 : i64} : tensor<4x2xf32>, tensor<4x2xi32>
  %rows = moe.dispatch %x, %tok : tensor<4x8xf32>, tensor<8xi32>
  %out = moe.grouped_ffn %rows weights(%w1, %w2) group_sizes(%sizes) {activation = #moe.activation<gelu>} : (tensor<8x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>, tensor<4xi32>) -> tensor<8x8xf32>
  %y = moe.combine %out, %gate, %tok : tensor<8x8xf32>, tensor<8xf32>, tensor<8xi32> -> tensor<4x8xf32>
  %loss = moe.z_loss %y : tensor<4x8xf32>
  return %loss : tensor<f32>
}

// -----

// Capacity slots: each rank receives its experts' slots with every rank's
// rows, and every rank gets every expert's outputs back.
// CHECK-LABEL: func.func @forward(
// CHECK: %[[MINE:.+]] = moe.slots_to_experts %{{.+}} on @mesh mesh_axes = [1] : tensor<4x2x8xf32> -> tensor<2x2x8xf32>
// CHECK: %[[OUT:.+]] = moe.grouped_ffn %[[MINE]] {{.+}} -> tensor<2x2x8xf32>
// CHECK: moe.slots_from_experts %[[OUT]] on @mesh mesh_axes = [1] : tensor<2x2x8xf32> -> tensor<4x2x8xf32>
// Backward, each is the other's gradient.
// GRAD-LABEL: func.func @forward_backward
// GRAD: moe.slots_to_experts
// GRAD: moe.slots_from_experts
// GRAD: %[[DOUT:.+]] = moe.slots_to_experts
// GRAD: %[[DIN:.+]], %{{.+}} = moe.grouped_ffn_grad {{.+}} %[[DOUT]]
// GRAD: moe.slots_from_experts %[[DIN]]
func.func @forward(%slots: tensor<4x2x8xf32>, %t: tensor<4xi32> {moe.input = "tokens"},
                    %w1: tensor<4x6x8xf32> {moe.param = "w1", moe.trainable = true},
                    %w2: tensor<4x8x6xf32> {moe.param = "w2", moe.trainable = true})
    -> (tensor<f32> {moe.output = "loss"}) {
  %out = moe.grouped_ffn %slots weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<4x2x8xf32>, tensor<4x6x8xf32>, tensor<4x8x6xf32>) -> tensor<4x2x8xf32>
  %flat = tensor.collapse_shape %out [[0, 1], [2]] : tensor<4x2x8xf32> into tensor<8x8xf32>
  %loss = moe.z_loss %flat : tensor<8x8xf32>
  return %loss : tensor<f32>
}
