// RUN: moe-opt %s --moe-shard-optimizer-state | FileCheck %s

// ZeRO-1 on a 2-rank mesh: the moments of a [4, 8] weight are [2, 8] slices;
// the update runs on the rank's slices of the weight and the gradient, and
// the updated slices are gathered into the whole weight. The [3] bias, which
// 2 ranks do not divide, keeps its whole state.
// CHECK: func.func @train_step
// CHECK-SAME: %[[M:[^:]+]]: tensor<2x8xf32> {moe.init = "zeros", moe.shard_axes = array<i16: 0, 1>, moe.state = "w.exp_avg"}
// CHECK-SAME: %[[V:[^:]+]]: tensor<2x8xf32> {moe.init = "zeros", moe.shard_axes = array<i16: 0, 1>, moe.state = "w.exp_avg_sq"}
// CHECK-SAME: %{{[^:]+}}: tensor<3xf32> {moe.init = "zeros", moe.state = "b.exp_avg"}
// CHECK-SAME: -> (tensor<4x8xf32> {moe.update = "w"}, tensor<2x8xf32> {moe.update = "w.exp_avg"}, tensor<2x8xf32> {moe.update = "w.exp_avg_sq"}, tensor<3xf32> {moe.update = "b"}
// CHECK: %[[P:.+]] = mesh.all_slice %{{.+}} on @mesh mesh_axes = [0, 1] slice_axis = 0 : tensor<4x8xf32> -> tensor<2x8xf32>
// CHECK: %[[G:.+]] = mesh.all_slice %{{.+}} on @mesh mesh_axes = [0, 1] slice_axis = 0 : tensor<4x8xf32> -> tensor<2x8xf32>
// CHECK: %[[NP:.+]], %[[NM:.+]], %[[NV:.+]] = moe.adamw_update %[[P]], %[[G]], %[[M]], %[[V]], {{.+}} : tensor<2x8xf32>
// CHECK: %[[W:.+]] = mesh.all_gather %[[NP]] on @mesh mesh_axes = [0, 1] gather_axis = 0 : tensor<2x8xf32> -> tensor<4x8xf32>
// CHECK: moe.adamw_update {{.+}} : tensor<3xf32>
// CHECK: return %[[W]], %[[NM]], %[[NV]]
module {
  mesh.mesh @mesh(shape = 2x1)
  func.func @train_step(%w: tensor<4x8xf32> {moe.param = "w"}, %gw: tensor<4x8xf32> {moe.input = "gw"},
                        %b: tensor<3xf32> {moe.param = "b"}, %gb: tensor<3xf32> {moe.input = "gb"},
                        %m: tensor<4x8xf32> {moe.init = "zeros", moe.state = "w.exp_avg"},
                        %v: tensor<4x8xf32> {moe.init = "zeros", moe.state = "w.exp_avg_sq"},
                        %mb: tensor<3xf32> {moe.init = "zeros", moe.state = "b.exp_avg"},
                        %vb: tensor<3xf32> {moe.init = "zeros", moe.state = "b.exp_avg_sq"},
                        %step: tensor<i64>, %lr: tensor<f32>, %clip: tensor<f32>, %b1: tensor<f32>,
                        %b2: tensor<f32>, %eps: tensor<f32>, %wd: tensor<f32>)
      -> (tensor<4x8xf32> {moe.update = "w"}, tensor<4x8xf32> {moe.update = "w.exp_avg"},
          tensor<4x8xf32> {moe.update = "w.exp_avg_sq"}, tensor<3xf32> {moe.update = "b"},
          tensor<3xf32> {moe.update = "b.exp_avg"}, tensor<3xf32> {moe.update = "b.exp_avg_sq"}) {
    %p1, %m1, %v1 = moe.adamw_update %w, %gw, %m, %v, %step, %lr, %clip, %b1, %b2, %eps, %wd : tensor<4x8xf32>
    %p2, %m2, %v2 = moe.adamw_update %b, %gb, %mb, %vb, %step, %lr, %clip, %b1, %b2, %eps, %wd : tensor<3xf32>
    return %p1, %m1, %v1, %p2, %m2, %v2 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
  }
}
