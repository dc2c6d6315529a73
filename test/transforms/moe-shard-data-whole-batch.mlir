// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=2" | FileCheck %s

// Ops that need the whole batch (BatchCoupled) read it gathered, and every
// rank keeps its share of what they compute.

// Capacity slots are taken in the whole batch's order: every rank assigns
// them from the gathered selections, then keeps its own tokens.
// CHECK-LABEL: func.func @capacity
func.func @capacity(%t: tensor<4xi32> {moe.input = "tokens"}, %w: tensor<4x1xf32>, %i: tensor<4x1xi32>) -> tensor<2x2xi32> {
  // CHECK: %[[W:.+]] = mesh.all_gather %{{.+}} on @mesh mesh_axes = [0, 1] gather_axis = 0 : tensor<4x1xf32> -> tensor<8x1xf32>
  // CHECK: %[[I:.+]] = mesh.all_gather %{{.+}} on @mesh mesh_axes = [0, 1] gather_axis = 0 : tensor<4x1xi32> -> tensor<8x1xi32>
  // CHECK: %[[TOK:.+]], %{{.+}}, %{{.+}} = moe.assign_slots %[[W]], %[[I]] {capacity = 2 : i64, num_experts = 2 : i64} : tensor<8x1xf32>, tensor<8x1xi32>
  // CHECK: %[[MINE:.+]] = moe.local_slots %[[TOK]] on @mesh mesh_axes = [0, 1] {tokens_per_rank = 4 : i64} : tensor<2x2xi32>
  // CHECK: return %[[MINE]]
  %tok, %gate, %load = moe.assign_slots %w, %i {num_experts = 2 : i64, capacity = 2 : i64} : tensor<4x1xf32>, tensor<4x1xi32>
  return %tok : tensor<2x2xi32>
}

// -----

// Gumbel noise is drawn for the whole batch; each rank keeps its rows.
// CHECK-LABEL: func.func @noise
func.func @noise(%t: tensor<4xi32> {moe.input = "tokens"}, %l: tensor<4x2xf32>, %tau: tensor<f32>, %seed: tensor<i64>) -> tensor<4x2xf32> {
  // CHECK: %[[L:.+]] = mesh.all_gather %{{.+}} on @mesh mesh_axes = [0, 1] gather_axis = 0 : tensor<4x2xf32> -> tensor<8x2xf32>
  // CHECK: %[[S:.+]] = moe.gumbel_softmax %[[L]] temperature(%{{.+}}) noise(%{{.+}}) : tensor<8x2xf32>
  // CHECK: %[[MINE:.+]] = mesh.all_slice %[[S]] on @mesh mesh_axes = [0, 1] slice_axis = 0 : tensor<8x2xf32> -> tensor<4x2xf32>
  // CHECK: return %[[MINE]]
  %s = moe.gumbel_softmax %l temperature(%tau) noise(%seed) : tensor<4x2xf32>
  return %s : tensor<4x2xf32>
}

