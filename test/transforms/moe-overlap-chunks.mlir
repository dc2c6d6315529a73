// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=1 ep=2" --moe-overlap-chunks="chunks=2" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=1 ep=2" --moe-overlap-chunks="chunks=1" | FileCheck %s --check-prefix=ONE
// RUN: moe-opt %s --split-input-file --moe-shard-data="dp=1 ep=2" --moe-overlap-chunks="chunks=2" --moe-autodiff --moe-reduce-gradients="function=forward_backward" --moe-issue-collectives-early | FileCheck %s --check-prefix=EARLY

// Dropless expert parallelism in 2 chunks: both chunks' exchanges first (a
// rank's 8 rows in chunks of at most 4 + 4 experts, capped at 8), then each
// chunk's experts and return, and the returns summed.
// CHECK-LABEL: func.func @forward
// CHECK: %[[COUNTS:.+]] = mesh.all_gather
// CHECK: %[[R0:[^,]+]], %[[S0:.+]] = moe.expert_exchange %[[ROWS:[^,]+]], %[[COUNTS]] on @mesh mesh_axes = [1] {chunks = 2 : i64} : tensor<8x8xf32>, tensor<8xi32> -> tensor<16x8xf32>, tensor<2xi32>
// CHECK: %[[R1:[^,]+]], %[[S1:.+]] = moe.expert_exchange %[[ROWS]], %[[COUNTS]] on @mesh mesh_axes = [1] {chunk = 1 : i64, chunks = 2 : i64}
// CHECK: %[[O0:.+]] = moe.grouped_ffn %[[R0]] {{.+}} group_sizes(%[[S0]])
// CHECK: %[[B0:.+]] = moe.expert_return %[[O0]], %[[COUNTS]] on @mesh mesh_axes = [1] {chunks = 2 : i64} : tensor<16x8xf32>, tensor<8xi32> -> tensor<8x8xf32>
// CHECK: %[[O1:.+]] = moe.grouped_ffn %[[R1]] {{.+}} group_sizes(%[[S1]])
// CHECK: %[[B1:.+]] = moe.expert_return %[[O1]], %[[COUNTS]] on @mesh mesh_axes = [1] {chunk = 1 : i64, chunks = 2 : i64}
// CHECK: %[[SUM:.+]] = moe.add %[[B0]], %[[B1]]
// CHECK: moe.combine %[[SUM]]
// CHECK-NOT: moe.expert_exchange

// One chunk: the exchange is left whole.
// ONE-LABEL: func.func @forward
// ONE-COUNT-1: moe.expert_exchange
// ONE-NOT: chunks
// ONE-NOT: moe.expert_exchange

// Differentiated, the chunks' gradients travel one by one; issued early,
// both chunks' cotangent exchanges start before the first chunk's expert
// gradients compute, and each chunk's gradient returns as soon as it is
// computed.
// EARLY-LABEL: func.func @forward_backward
// EARLY: moe.combine_grad
// EARLY: moe.expert_exchange {{.+}} {chunk = 1 : i64, chunks = 2 : i64}
// EARLY-NEXT: moe.expert_exchange {{.+}} {chunks = 2 : i64}
// EARLY: %[[G1:.+]], %{{.+}} = moe.grouped_ffn_grad
// EARLY-NEXT: moe.expert_return %[[G1]], {{.+}} {chunk = 1 : i64, chunks = 2 : i64}
// EARLY: %[[G0:.+]], %{{.+}} = moe.grouped_ffn_grad
// EARLY-NEXT: moe.expert_return %[[G0]], {{.+}} {chunks = 2 : i64}
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
