// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=2" --verify-diagnostics | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=2" --moe-autodiff --moe-reduce-gradients="function=forward_backward" --verify-diagnostics | FileCheck %s --check-prefix=GRAD

// A router with Switch load balancing and z-loss under a cross-entropy, on a
// rank that holds 4 of the batch's 8 tokens.
// CHECK: module attributes {moe.mesh_axes = ["dp", "ep"]}
// CHECK: mesh.mesh @mesh(shape = 2x1)
// CHECK-LABEL: func.func @forward
func.func @forward(%x: tensor<4x8xf32>, %t: tensor<4xi32> {moe.input = "tokens"},
                   %wg: tensor<2x8xf32> {moe.param = "wg", moe.trainable = true},
                   %wo: tensor<3x8xf32> {moe.param = "wo", moe.trainable = true})
    -> (tensor<f32> {moe.output = "loss"}, tensor<2xi32> {moe.output = "layers.0.expert_tokens"},
        tensor<f32> {moe.output = "layers.0.dropped_fraction"}) {
  %l = moe.router_logits %x, %wg : tensor<4x8xf32>, tensor<2x8xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<4x2xf32>
  %w, %i = moe.topk_route %s {k = 1 : i64, normalize = false} : tensor<4x2xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 2 : i64} : tensor<4x1xf32>, tensor<4x1xi32>
  %load, %dropped = moe.routing_stats %tok indices(%i : tensor<4x1xi32>) {num_experts = 2 : i64, num_tokens = 4 : i64} : tensor<4xi32>
  // Load balancing reads the scores and selections of the whole batch.
  // CHECK: %[[S:.+]] = moe.score
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.topk_route
  // CHECK: %[[LOAD:.+]], %[[DROPPED:.+]] = moe.routing_stats
  // CHECK-DAG: %[[DROPPED_ALL:.+]] = mesh.all_reduce %[[DROPPED]] on @mesh mesh_axes = [0, 1] reduction = <average> : tensor<f32> -> tensor<f32>
  // CHECK-DAG: %[[LOAD_ALL:.+]] = mesh.all_reduce %[[LOAD]] on @mesh mesh_axes = [0, 1] : tensor<2xi32> -> tensor<2xi32>
  // CHECK: %[[SG:.+]] = mesh.all_gather %[[S]] on @mesh mesh_axes = [0, 1] gather_axis = 0 : tensor<4x2xf32> -> tensor<8x2xf32>
  // CHECK: %[[IG:.+]] = mesh.all_gather %[[I]] on @mesh mesh_axes = [0, 1] gather_axis = 0 : tensor<4x1xi32> -> tensor<8x1xi32>
  // CHECK: %[[LB:.+]] = moe.load_balancing_loss %[[SG]], %[[IG]] {kind = #moe.balance<switch>} : tensor<8x2xf32>, tensor<8x1xi32>
  %lb = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<4x2xf32>, tensor<4x1xi32>
  // Token means become the batch's: the average over ranks.
  // CHECK: %[[Z:.+]] = moe.z_loss
  // CHECK: %[[Z_ALL:.+]] = mesh.all_reduce %[[Z]] on @mesh mesh_axes = [0, 1] reduction = <average>
  %z = moe.z_loss %l : tensor<4x2xf32>
  %o = moe.linear %x, %wo : tensor<4x8xf32>, tensor<3x8xf32>
  // CHECK: %[[CE:.+]] = moe.cross_entropy
  // CHECK: %[[CE_ALL:.+]] = mesh.all_reduce %[[CE]] on @mesh mesh_axes = [0, 1] reduction = <average>
  %ce = moe.cross_entropy %o, %t : tensor<4x3xf32>, tensor<4xi32>
  // CHECK: moe.weighted_sum %[[CE_ALL]], %[[LB]], %[[Z_ALL]]
  %loss = moe.weighted_sum %ce, %lb, %z {coefficients = array<f32: 1.0, 0.01, 0.001>}
  // CHECK: return %{{.+}}, %[[LOAD_ALL]], %[[DROPPED_ALL]]
  return %loss, %load, %dropped : tensor<f32>, tensor<2xi32>, tensor<f32>
}

// Differentiated: an average's gradient is the cotangent over the 2 ranks,
// a gather's the rank's slice of it; every parameter gradient is summed
// over the mesh, after autodiff.
// GRAD-LABEL: func.func @forward_backward
// GRAD: moe.weighted_sum %{{.+}} {coefficients = array<f32: 5.000000e-01>}
// GRAD: %[[DS:.+]] = moe.load_balancing_loss_grad
// GRAD: mesh.all_slice %[[DS]] on @mesh mesh_axes = [0, 1] slice_axis = 0 : tensor<8x2xf32> -> tensor<4x2xf32>
// GRAD: %[[RWG:.+]] = mesh.all_reduce %{{.+}} on @mesh mesh_axes = [0, 1] : tensor<2x8xf32> -> tensor<2x8xf32>
// GRAD: %[[RWO:.+]] = mesh.all_reduce %{{.+}} on @mesh mesh_axes = [0, 1] : tensor<3x8xf32> -> tensor<3x8xf32>
// GRAD: return {{.+}}, %[[RWG]], %[[RWO]]

