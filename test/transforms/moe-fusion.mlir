// Fusion groups form along producer-consumer edges by the ops' traits
// (TokenRows, Elementwise), never around a path outside the group.
// RUN: moe-opt %s --split-input-file --moe-fuse-router | FileCheck %s --check-prefixes=ROUTER,ROUTERONLY
// RUN: moe-opt %s --split-input-file --moe-fuse-elementwise | FileCheck %s --check-prefix=ELEMENTWISE
// RUN: moe-opt %s --split-input-file --moe-fusion=strategy=all | FileCheck %s --check-prefix=ALL
// RUN: moe-opt %s --split-input-file --moe-fusion=strategy=router | FileCheck %s --check-prefixes=ROUTER,ROUTERONLY
// RUN: moe-opt %s --split-input-file --moe-fusion=strategy=moe | FileCheck %s --check-prefixes=ROUTER,MOE
// RUN: moe-opt %s --split-input-file --moe-fusion=strategy=none | FileCheck %s --check-prefix=NONE
// NONE-NOT: moe.fused

// The forward router: scores and top-k in one group; then the token
// statistics of its rows (TokenStatistic: the z-loss, here of the scores,
// and the balancing loss) join it, the z-loss moved from between the two.
// The scores stay inside; the group yields the losses.
// ROUTER-LABEL: func.func @forward_router
// ROUTER:      %[[G:.+]]:4 = moe.fused <router>(%arg0) : (tensor<32x8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>, tensor<f32>, tensor<f32>) {
// ROUTER-NEXT: ^bb0(%[[L:.+]]: tensor<32x8xf32>):
// ROUTER-NEXT:   %[[S:.+]] = moe.score %[[L]]
// ROUTER-NEXT:   %[[W:.+]], %[[I:.+]] = moe.topk_route %[[S]]
// ROUTER-NEXT:   %[[Z:.+]] = moe.z_loss %[[S]]
// ROUTER-NEXT:   %[[LB:.+]] = moe.load_balancing_loss %[[S]], %[[I]]
// ROUTER-NEXT:   moe.yield %[[W]], %[[I]], %[[Z]], %[[LB]]
// ROUTER-NEXT: }
// ROUTER-NEXT: return %[[G]]#0, %[[G]]#1, %[[G]]#2, %[[G]]#3
// ELEMENTWISE-LABEL: func.func @forward_router
// ELEMENTWISE-NOT: moe.fused
func.func @forward_router(%l: tensor<32x8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>, tensor<f32>, tensor<f32>) {
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  %z = moe.z_loss %s : tensor<32x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
  %lb = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<32x8xf32>, tensor<32x2xi32>
  return %w, %i, %z, %lb : tensor<32x2xf32>, tensor<32x2xi32>, tensor<f32>, tensor<f32>
}

// -----

// The z-loss of the logits, the group's input, joins it too; a balancing
// loss that also reads rows the group does not make (here scores from
// elsewhere) stays a kernel of its own.
// ROUTER-LABEL: func.func @statistics_outside
// ROUTER:      %[[G:.+]]:3 = moe.fused <router>(%arg0)
// ROUTER-NEXT: ^bb0(%[[L:.+]]: tensor<32x8xf32>):
// ROUTER-NEXT:   moe.score %[[L]]
// ROUTER-NEXT:   %[[W:.+]], %[[I:.+]] = moe.topk_route
// ROUTER-NEXT:   %[[Z:.+]] = moe.z_loss %[[L]]
// ROUTER-NEXT:   moe.yield %[[W]], %[[I]], %[[Z]]
// ROUTER-NEXT: }
// ROUTER-NEXT: moe.load_balancing_loss %arg1, %[[G]]#1
func.func @statistics_outside(%l: tensor<32x8xf32>, %other: tensor<32x8xf32>)
    -> (tensor<32x2xf32>, tensor<f32>, tensor<f32>) {
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
  %z = moe.z_loss %l : tensor<32x8xf32>
  %lb = moe.load_balancing_loss %other, %i {kind = #moe.balance<switch>} : tensor<32x8xf32>, tensor<32x2xi32>
  return %w, %z, %lb : tensor<32x2xf32>, tensor<f32>, tensor<f32>
}

// -----

// The backward router: every gradient over the router's rows and the sums
// autodiff wrote between them, in one group; the ops that are not
// TokenRows (the gradient through the expert order) stay out, and the
// router input's gradient ([T, d], not a router row) is not pulled in.
// ROUTER-LABEL: func.func @backward_router
// ROUTER:      moe.sort_by_expert_grad
// ROUTER-NEXT: %[[G:.+]] = moe.fused <router>(%arg0, %arg1, %arg2, %arg3, %{{.+}}, %arg5)
// ROUTER-NEXT: ^bb0
// ROUTER-NEXT:   moe.z_loss_grad
// ROUTER-NEXT:   moe.selection_grad
// ROUTER-NEXT:   moe.add
// ROUTER-NEXT:   moe.score_grad
// ROUTER-NEXT:   moe.add
// ROUTER-NEXT:   moe.yield
// ROUTER-NEXT: }
// ROUTER-NEXT: %[[DX:.+]], %{{.+}} = moe.linear_grad %arg6, %arg7, %[[G]]
// ROUTER-NEXT: moe.add %[[DX]], %arg8 : tensor<32x16xf32>
// ALL-LABEL: func.func @backward_router
// ALL-COUNT-1: moe.fused <router>
// ALL-NOT: moe.fused
func.func @backward_router(%logits: tensor<32x8xf32>, %dloss: tensor<f32>, %s: tensor<32x8xf32>,
                           %i: tensor<32x2xi32>, %dslots: tensor<64xf32>, %dlb: tensor<32x8xf32>,
                           %x: tensor<32x16xf32>, %wg: tensor<8x16xf32>, %dx2: tensor<32x16xf32>)
    -> (tensor<32x16xf32>, tensor<8x16xf32>) {
  %dz = moe.z_loss_grad %logits, %dloss : (tensor<32x8xf32>, tensor<f32>) -> tensor<32x8xf32>
  %dw = moe.sort_by_expert_grad %i, %dslots {num_experts = 8 : i64} : (tensor<32x2xi32>, tensor<64xf32>) -> tensor<32x2xf32>
  %ds1 = moe.selection_grad %s, %i, %dw {norm_eps = 0.0 : f32, normalize = true, scaling = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<32x2xf32>) -> tensor<32x8xf32>
  %ds = moe.add %dlb, %ds1 : tensor<32x8xf32>
  %dl1 = moe.score_grad %s, %ds {function = #moe.score<softmax>, temperature = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x8xf32>) -> tensor<32x8xf32>
  %dl = moe.add %dz, %dl1 : tensor<32x8xf32>
  %dx, %dwg = moe.linear_grad %x, %wg, %dl : (tensor<32x16xf32>, tensor<8x16xf32>, tensor<32x8xf32>) -> (tensor<32x16xf32>, tensor<8x16xf32>)
  %dx_total = moe.add %dx, %dx2 : tensor<32x16xf32>
  return %dx_total, %dwg : tensor<32x16xf32>, tensor<8x16xf32>
}

// -----

// The balancing loss's gradient (TokenStatisticGradient) whose rows only
// the backward router group reads joins it, first: the group's kernel sums
// the counts before its loop over tokens. One that something else reads
// too stays out.
// ROUTER-LABEL: func.func @balance_gradient
// ALL-LABEL: func.func @balance_gradient
// ROUTER:      %[[G:.+]] = moe.fused <router>(%arg2, %arg3, %arg1, %arg0, %{{.+}})
// ROUTER-NEXT: ^bb0
// ROUTER-NEXT:   %[[DLB:.+]] = moe.load_balancing_loss_grad
// ROUTER-NEXT:   moe.z_loss_grad
// ROUTER-NEXT:   moe.selection_grad
// ROUTER-NEXT:   moe.add %[[DLB]]
// ROUTER:        moe.yield
// ROUTER-LABEL: func.func @balance_gradient_read_elsewhere
// ROUTER:      %[[DLB:.+]] = moe.load_balancing_loss_grad
// ROUTER:      moe.fused <router>(%arg0, %arg1, %arg2, %arg3, %{{.+}}, %[[DLB]])
// ROUTER-NOT:    moe.load_balancing_loss_grad
// ROUTER:      return %{{.+}}, %[[DLB]]
func.func @balance_gradient(%logits: tensor<32x8xf32>, %dloss: tensor<f32>, %s: tensor<32x8xf32>,
                            %i: tensor<32x2xi32>, %dslots: tensor<64xf32>) -> tensor<32x8xf32> {
  %dlb = moe.load_balancing_loss_grad %s, %i, %dloss {kind = #moe.balance<sequence>, seq_len = 16 : i64} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<f32>) -> tensor<32x8xf32>
  %dz = moe.z_loss_grad %logits, %dloss : (tensor<32x8xf32>, tensor<f32>) -> tensor<32x8xf32>
  %dw = moe.sort_by_expert_grad %i, %dslots {num_experts = 8 : i64} : (tensor<32x2xi32>, tensor<64xf32>) -> tensor<32x2xf32>
  %ds1 = moe.selection_grad %s, %i, %dw {norm_eps = 0.0 : f32, normalize = true, scaling = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<32x2xf32>) -> tensor<32x8xf32>
  %ds = moe.add %dlb, %ds1 : tensor<32x8xf32>
  %dl1 = moe.score_grad %s, %ds {function = #moe.score<softmax>, temperature = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x8xf32>) -> tensor<32x8xf32>
  %dl = moe.add %dz, %dl1 : tensor<32x8xf32>
  return %dl : tensor<32x8xf32>
}
func.func @balance_gradient_read_elsewhere(%logits: tensor<32x8xf32>, %dloss: tensor<f32>,
                                           %s: tensor<32x8xf32>, %i: tensor<32x2xi32>,
                                           %dslots: tensor<64xf32>)
    -> (tensor<32x8xf32>, tensor<32x8xf32>) {
  %dlb = moe.load_balancing_loss_grad %s, %i, %dloss {kind = #moe.balance<switch>} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<f32>) -> tensor<32x8xf32>
  %dz = moe.z_loss_grad %logits, %dloss : (tensor<32x8xf32>, tensor<f32>) -> tensor<32x8xf32>
  %dw = moe.sort_by_expert_grad %i, %dslots {num_experts = 8 : i64} : (tensor<32x2xi32>, tensor<64xf32>) -> tensor<32x2xf32>
  %ds1 = moe.selection_grad %s, %i, %dw {norm_eps = 0.0 : f32, normalize = true, scaling = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<32x2xf32>) -> tensor<32x8xf32>
  %ds = moe.add %dlb, %ds1 : tensor<32x8xf32>
  %dl1 = moe.score_grad %s, %ds {function = #moe.score<softmax>, temperature = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x8xf32>) -> tensor<32x8xf32>
  %dl = moe.add %dz, %dl1 : tensor<32x8xf32>
  return %dl, %dlb : tensor<32x8xf32>, tensor<32x8xf32>
}

// -----

// A path outside the group (the balancing loss's gradient, a sum over
// tokens, reads the scores and feeds their gradient) keeps the two apart:
// as one kernel, the group would read its own result.
// ROUTER-LABEL: func.func @no_cycle
// ALL-LABEL: func.func @no_cycle
// ROUTER-NOT: moe.fused
func.func @no_cycle(%l: tensor<32x8xf32>, %i: tensor<32x2xi32>, %dloss: tensor<f32>) -> tensor<32x8xf32> {
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
  %g = moe.load_balancing_loss_grad %s, %i, %dloss {kind = #moe.balance<switch>} : (tensor<32x8xf32>, tensor<32x2xi32>, tensor<f32>) -> tensor<32x8xf32>
  %d = moe.score_grad %s, %g {function = #moe.score<softmax>, temperature = 1.0 : f32} : (tensor<32x8xf32>, tensor<32x8xf32>) -> tensor<32x8xf32>
  return %d : tensor<32x8xf32>
}

// -----

// Elementwise chains of one shape: the three-way gradient sum is one
// kernel; the sum of another shape is not part of it.
// ELEMENTWISE-LABEL: func.func @gradient_sums
// ELEMENTWISE:      %[[G:.+]] = moe.fused <elementwise>(%arg0, %arg1, %arg2) : (tensor<2x16x32xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>) -> tensor<2x16x32xf32> {
// ELEMENTWISE-NEXT: ^bb0(%[[A:.+]]: tensor<2x16x32xf32>, %[[B:.+]]: tensor<2x16x32xf32>, %[[C:.+]]: tensor<2x16x32xf32>):
// ELEMENTWISE-NEXT:   %[[AB:.+]] = moe.add %[[A]], %[[B]]
// ELEMENTWISE-NEXT:   %[[ABC:.+]] = moe.add %[[AB]], %[[C]]
// ELEMENTWISE-NEXT:   %[[ACT:.+]] = moe.activation %[[ABC]]
// ELEMENTWISE-NEXT:   moe.yield %[[ACT]]
// ELEMENTWISE:      moe.add %arg3, %arg3 : tensor<4x4xf32>
// ROUTER-LABEL: func.func @gradient_sums
// ROUTER-NOT: moe.fused
func.func @gradient_sums(%a: tensor<2x16x32xf32>, %b: tensor<2x16x32xf32>, %c: tensor<2x16x32xf32>,
                         %d: tensor<4x4xf32>) -> (tensor<2x16x32xf32>, tensor<4x4xf32>) {
  %ab = moe.add %a, %b : tensor<2x16x32xf32>
  %abc = moe.add %ab, %c : tensor<2x16x32xf32>
  %act = moe.activation %abc {kind = #moe.activation<silu>} : tensor<2x16x32xf32>
  %dd = moe.add %d, %d : tensor<4x4xf32>
  return %act, %dd : tensor<2x16x32xf32>, tensor<4x4xf32>
}

// -----

// The optimizer: independent updates that read the same step, learning
// rate and clip scale become one group, which still overwrites each
// parameter and moment (in-place through InPlaceOpInterface).
// RUN: moe-opt %s --split-input-file --moe-fuse-optimizer | FileCheck %s --check-prefix=OPTIMIZER
// RUN: moe-opt %s --split-input-file --moe-fuse-optimizer --moe-plan-memory | FileCheck %s --check-prefix=INPLACE
// OPTIMIZER-LABEL: func.func @updates
// OPTIMIZER:      %[[G:.+]]:6 = moe.fused <optimizer>(%arg0, %arg1, %arg2, %arg3, %arg8, %arg9, %arg10, %arg11, %arg12, %arg13, %arg14, %arg4, %arg5, %arg6, %arg7)
// OPTIMIZER-COUNT-2: moe.adamw_update
// OPTIMIZER:      moe.yield
// ROUTER-LABEL: func.func @updates
// ROUTER-NOT: moe.fused
// INPLACE-LABEL: func.func @updates
// INPLACE: moe.fused <optimizer>{{.*}}moe.overwrites = array<i64: 0, 2, 3, 11, 13, 14>
func.func @updates(%p: tensor<8x4xf32> {moe.param = "p"}, %g: tensor<8x4xf32>,
                   %m: tensor<8x4xf32> {moe.state = "p.m"}, %v: tensor<8x4xf32> {moe.state = "p.v"},
                   %q: tensor<16xf32> {moe.param = "q"}, %gq: tensor<16xf32>,
                   %mq: tensor<16xf32> {moe.state = "q.m"}, %vq: tensor<16xf32> {moe.state = "q.v"},
                   %step: tensor<i64>, %lr: tensor<f32>, %clip: tensor<f32>, %b1: tensor<f32>,
                   %b2: tensor<f32>, %eps: tensor<f32>, %wd: tensor<f32>)
    -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %p1, %m1, %v1 = moe.adamw_update %p, %g, %m, %v, %step, %lr, %clip, %b1, %b2, %eps, %wd : tensor<8x4xf32>
  %q1, %mq1, %vq1 = moe.adamw_update %q, %gq, %mq, %vq, %step, %lr, %clip, %b1, %b2, %eps, %wd : tensor<16xf32>
  return %p1, %m1, %v1, %q1, %mq1, %vq1 : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}

// -----

// With global-norm clipping, the norm of every gradient (GradientNorm) and
// the clip scale computed from it (GradientScale) join the group of updates
// that reads the scale: one kernel takes the norm, the scale, then the
// updates. The norm, read after the group, is one of its results.
// RUN: moe-opt %s --split-input-file --moe-fuse-optimizer | FileCheck %s --check-prefix=CLIPPED
// CLIPPED-LABEL: func.func @clipped_updates
// CLIPPED:      %[[G:.+]]:7 = moe.fused <optimizer>(%arg1, %arg5, %arg11, %arg0, %arg2, %arg3, %arg8, %arg9, %arg10, %arg12, %arg13, %arg14, %arg4, %arg6, %arg7)
// CLIPPED-NEXT: ^bb0(
// CLIPPED-NEXT:   %[[N:.+]] = moe.global_norm
// CLIPPED-NEXT:   %[[S:.+]] = moe.clip_scale %[[N]],
// CLIPPED-NEXT:   moe.adamw_update {{.*}}, %[[S]],
// CLIPPED-NEXT:   moe.adamw_update {{.*}}, %[[S]],
// CLIPPED-NEXT:   moe.yield %[[N]],
// CLIPPED:      return %[[G]]#0,
func.func @clipped_updates(%p: tensor<8x4xf32> {moe.param = "p"}, %g: tensor<8x4xf32>,
                   %m: tensor<8x4xf32> {moe.state = "p.m"}, %v: tensor<8x4xf32> {moe.state = "p.v"},
                   %q: tensor<16xf32> {moe.param = "q"}, %gq: tensor<16xf32>,
                   %mq: tensor<16xf32> {moe.state = "q.m"}, %vq: tensor<16xf32> {moe.state = "q.v"},
                   %step: tensor<i64>, %lr: tensor<f32>, %b1: tensor<f32>, %max: tensor<f32>,
                   %b2: tensor<f32>, %eps: tensor<f32>, %wd: tensor<f32>)
    -> (tensor<f32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %norm = moe.global_norm %g, %gq : tensor<8x4xf32>, tensor<16xf32>
  %clip = moe.clip_scale %norm, %max
  %p1, %m1, %v1 = moe.adamw_update %p, %g, %m, %v, %step, %lr, %clip, %b1, %b2, %eps, %wd : tensor<8x4xf32>
  %q1, %mq1, %vq1 = moe.adamw_update %q, %gq, %mq, %vq, %step, %lr, %clip, %b1, %b2, %eps, %wd : tensor<16xf32>
  return %norm, %p1, %m1, %v1, %q1, %mq1, %vq1 : tensor<f32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}

// -----

// RoPE: the queries' and keys' rotations, which the attention reads, rotate
// alike (PositionRotation, the same attributes, B, S and D): one group. A
// rotation with another theta stays a kernel of its own.
// RUN: moe-opt %s --split-input-file --moe-fuse-rope | FileCheck %s --check-prefix=ROPE
// ROPE-LABEL: func.func @rope_siblings
// ROPE:      %[[G:.+]]:2 = moe.fused <rope>(%arg0, %arg1) : (tensor<2x16x4x8xf32>, tensor<2x16x2x8xf32>) -> (tensor<2x16x4x8xf32>, tensor<2x16x2x8xf32>) {
// ROPE-NEXT: ^bb0(%[[Q:.+]]: tensor<2x16x4x8xf32>, %[[K:.+]]: tensor<2x16x2x8xf32>):
// ROPE-NEXT:   %[[QR:.+]] = moe.rope %[[Q]]
// ROPE-NEXT:   %[[KR:.+]] = moe.rope %[[K]]
// ROPE-NEXT:   moe.yield %[[QR]], %[[KR]]
// ROPE-NEXT: }
// ROPE-NEXT: moe.attention %[[G]]#0, %[[G]]#1, %arg2
// ROPE-NEXT: moe.rope %arg3 {theta = 5.000000e+05 : f32}
// ROPE-NOT:  moe.fused
// ALL-LABEL: func.func @rope_siblings
// ALL:       moe.fused <rope>
// ROUTERONLY-LABEL: func.func @rope_siblings
// ROUTERONLY-NOT: moe.fused
func.func @rope_siblings(%q: tensor<2x16x4x8xf32>, %k: tensor<2x16x2x8xf32>,
                         %v: tensor<2x16x2x8xf32>, %x: tensor<2x16x2x8xf32>)
    -> (tensor<2x16x4x8xf32>, tensor<2x16x2x8xf32>) {
  %qr = moe.rope %q : tensor<2x16x4x8xf32>
  %kr = moe.rope %k : tensor<2x16x2x8xf32>
  %o = moe.attention %qr, %kr, %v {causal} : tensor<2x16x4x8xf32>, tensor<2x16x2x8xf32>, tensor<2x16x2x8xf32>
  %xr = moe.rope %x {theta = 500000.0 : f32} : tensor<2x16x2x8xf32>
  return %o, %xr : tensor<2x16x4x8xf32>, tensor<2x16x2x8xf32>
}

// -----

// Dispatch: the gather of token rows into expert order joins the up
// projection that reads them (its GEMM gathers as it loads); a dispatch
// whose rows are also read elsewhere stays a kernel of its own.
// RUN: moe-opt %s --split-input-file --moe-fuse-dispatch | FileCheck %s --check-prefix=DISPATCH
// RUN: moe-opt %s --split-input-file --moe-fusion=strategy=dispatch | FileCheck %s --check-prefix=DISPATCH
// DISPATCH-LABEL: func.func @dispatch_into_gemm
// DISPATCH:      %[[H:.+]] = moe.fused <dispatch>(%arg0, %arg1, %arg2, %arg3, %arg4) : (tensor<16x8xf32>, tensor<32xi32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>) -> tensor<32x24xf32> {
// DISPATCH-NEXT: ^bb0(%[[X:.+]]: tensor<16x8xf32>, %[[T:.+]]: tensor<32xi32>,
// DISPATCH-NEXT:   %[[D:.+]] = moe.dispatch %[[X]], %[[T]]
// DISPATCH-NEXT:   %[[U:.+]] = moe.grouped_ffn_up %[[D]] weights(
// DISPATCH-NEXT:   moe.yield %[[U]]
// DISPATCH:      moe.dispatch %arg0, %arg1
// DISPATCH-NEXT: moe.grouped_ffn_up
// DISPATCH-NOT:  moe.fused
// MOE-LABEL:     func.func @dispatch_into_gemm
// MOE:           moe.fused <dispatch>
// ROUTERONLY-LABEL: func.func @dispatch_into_gemm
// ROUTERONLY-NOT: moe.fused
func.func @dispatch_into_gemm(%x: tensor<16x8xf32>, %tok: tensor<32xi32>, %w1: tensor<4x12x8xf32>,
                              %w3: tensor<4x12x8xf32>, %sizes: tensor<4xi32>)
    -> (tensor<32x24xf32>, tensor<32x24xf32>, tensor<32x8xf32>) {
  %xe = moe.dispatch %x, %tok : tensor<16x8xf32>, tensor<32xi32>
  %h = moe.grouped_ffn_up %xe weights(%w1, %w3) group_sizes(%sizes) : (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>) -> tensor<32x24xf32>
  %xe2 = moe.dispatch %x, %tok : tensor<16x8xf32>, tensor<32xi32>
  %h2 = moe.grouped_ffn_up %xe2 weights(%w1, %w3) group_sizes(%sizes) : (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>) -> tensor<32x24xf32>
  return %h, %h2, %xe2 : tensor<32x24xf32>, tensor<32x24xf32>, tensor<32x8xf32>
}

// -----

// Expert: the up projection and the down projection that reads its hidden
// rows through the activation form one group; the hidden rows, which the
// backward pass also reads, leave it. With the dispatch fusion in the same
// strategy (moe), the dispatch joins them.
// RUN: moe-opt %s --split-input-file --moe-fuse-expert | FileCheck %s --check-prefix=EXPERT
// RUN: moe-opt %s --split-input-file --moe-fusion=strategy=expert | FileCheck %s --check-prefix=EXPERT
// EXPERT-LABEL: func.func @expert_forward
// EXPERT:      %[[D:.+]] = moe.dispatch %arg0, %arg1
// EXPERT-NEXT: %[[R:.+]]:2 = moe.fused <expert>(%[[D]], %arg2, %arg3, %arg4, %arg5) : (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>, tensor<4x8x12xf32>) -> (tensor<32x24xf32>, tensor<32x8xf32>) {
// EXPERT-NEXT: ^bb0(%[[X:.+]]: tensor<32x8xf32>, %[[W1:.+]]: tensor<4x12x8xf32>, %[[W3:.+]]: tensor<4x12x8xf32>, %[[S:.+]]: tensor<4xi32>, %[[W2:.+]]: tensor<4x8x12xf32>):
// EXPERT-NEXT:   %[[H:.+]] = moe.grouped_ffn_up %[[X]] weights(%[[W1]], %[[W3]]) group_sizes(%[[S]])
// EXPERT-NEXT:   %[[Y:.+]] = moe.grouped_ffn_down %[[H]] weights(%[[W2]]) group_sizes(%[[S]])
// EXPERT-NEXT:   moe.yield %[[H]], %[[Y]]
// EXPERT:      return %[[R]]#0, %[[R]]#1
// MOE-LABEL:   func.func @expert_forward
// MOE:         moe.fused <expert>(%arg0, %arg1, %arg2, %arg3, %arg4, %arg5)
// MOE-NEXT:    ^bb0(
// MOE-NEXT:      moe.dispatch
// MOE-NEXT:      moe.grouped_ffn_up
// MOE-NEXT:      moe.grouped_ffn_down
// MOE-NEXT:      moe.yield
// DISPATCH-LABEL: func.func @expert_forward
// DISPATCH:      moe.fused <dispatch>
// DISPATCH:      moe.grouped_ffn_down
// ROUTERONLY-LABEL: func.func @expert_forward
// ROUTERONLY-NOT: moe.fused
func.func @expert_forward(%x: tensor<16x8xf32>, %tok: tensor<32xi32>, %w1: tensor<4x12x8xf32>,
                          %w3: tensor<4x12x8xf32>, %sizes: tensor<4xi32>, %w2: tensor<4x8x12xf32>)
    -> (tensor<32x24xf32>, tensor<32x8xf32>) {
  %xe = moe.dispatch %x, %tok : tensor<16x8xf32>, tensor<32xi32>
  %h = moe.grouped_ffn_up %xe weights(%w1, %w3) group_sizes(%sizes) : (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>) -> tensor<32x24xf32>
  %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%sizes) {activation = #moe.activation<silu>, gated} : (tensor<32x24xf32>, tensor<4x8x12xf32>, tensor<4xi32>) -> tensor<32x8xf32>
  return %h, %y : tensor<32x24xf32>, tensor<32x8xf32>
}

// -----

// Expert, backward: the hidden gradient stays inside the group of the op
// that computes it and the one that reads it; one read elsewhere too keeps
// them apart.
// EXPERT-LABEL: func.func @expert_backward
// EXPERT:      %[[R:.+]]:4 = moe.fused <expert>(%arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg6)
// EXPERT-NEXT: ^bb0(
// EXPERT-NEXT:   %[[DH:.+]], %[[DW2:.+]] = moe.grouped_ffn_down_grad
// EXPERT-NEXT:   %[[DX:.+]], %[[DW:.+]]:2 = moe.grouped_ffn_up_grad {{.*}}, %[[DH]] {
// EXPERT-NEXT:   moe.yield %[[DW2]], %[[DX]], %[[DW]]#0, %[[DW]]#1
// EXPERT:      moe.grouped_ffn_down_grad
// EXPERT-NEXT: moe.grouped_ffn_up_grad
// EXPERT-NOT:  moe.fused
func.func @expert_backward(%h: tensor<32x24xf32>, %w2: tensor<4x8x12xf32>, %sizes: tensor<4xi32>,
                           %dy: tensor<32x8xf32>, %xe: tensor<32x8xf32>, %w1: tensor<4x12x8xf32>,
                           %w3: tensor<4x12x8xf32>)
    -> (tensor<4x8x12xf32>, tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<32x24xf32>) {
  %dh, %dw2 = moe.grouped_ffn_down_grad %h, %w2, %sizes, %dy {activation = #moe.activation<silu>, gated} : (tensor<32x24xf32>, tensor<4x8x12xf32>, tensor<4xi32>, tensor<32x8xf32>) -> (tensor<32x24xf32>, tensor<4x8x12xf32>)
  %dx, %dw:2 = moe.grouped_ffn_up_grad %xe, %w1, %w3, %sizes, %dh {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>, tensor<32x24xf32>) -> (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>)
  %dh2, %dw22 = moe.grouped_ffn_down_grad %h, %w2, %sizes, %dy {activation = #moe.activation<silu>, gated} : (tensor<32x24xf32>, tensor<4x8x12xf32>, tensor<4xi32>, tensor<32x8xf32>) -> (tensor<32x24xf32>, tensor<4x8x12xf32>)
  %dx2, %dw2x:2 = moe.grouped_ffn_up_grad %xe, %w1, %w3, %sizes, %dh2 {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>, tensor<32x24xf32>) -> (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>)
  return %dw2, %dx, %dw#0, %dw#1, %dh2 : tensor<4x8x12xf32>, tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4x12x8xf32>, tensor<32x24xf32>
}

// -----

// Norm: the residual sum joins the RMS norm that reads it; the sum, which
// the next residual reads too, leaves the group. A sum that two norms read
// stays a kernel of its own.
// RUN: moe-opt %s --split-input-file --moe-fuse-norm | FileCheck %s --check-prefix=NORM
// NORM-LABEL: func.func @residual_norm
// NORM:      %[[R:.+]]:2 = moe.fused <norm>(%arg0, %arg1, %arg2) : (tensor<2x16x32xf32>, tensor<2x16x32xf32>, tensor<32xf32>) -> (tensor<2x16x32xf32>, tensor<2x16x32xf32>) {
// NORM-NEXT: ^bb0(%[[X:.+]]: tensor<2x16x32xf32>, %[[A:.+]]: tensor<2x16x32xf32>, %[[W:.+]]: tensor<32xf32>):
// NORM-NEXT:   %[[S:.+]] = moe.add %[[X]], %[[A]]
// NORM-NEXT:   %[[N:.+]] = moe.rms_norm %[[S]], %[[W]]
// NORM-NEXT:   moe.yield %[[S]], %[[N]]
// NORM:      moe.add %[[R]]#0, %[[R]]#1
// NORM-NEXT: moe.rms_norm
// NORM-NEXT: moe.rms_norm
// NORM-NOT:  moe.fused
// ALL-LABEL: func.func @residual_norm
// ALL:       moe.fused <norm>
// ROUTERONLY-LABEL: func.func @residual_norm
// ROUTERONLY-NOT: moe.fused
func.func @residual_norm(%x: tensor<2x16x32xf32>, %a: tensor<2x16x32xf32>, %w: tensor<32xf32>)
    -> (tensor<2x16x32xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>) {
  %s = moe.add %x, %a : tensor<2x16x32xf32>
  %n = moe.rms_norm %s, %w : tensor<2x16x32xf32>, tensor<32xf32>
  %s2 = moe.add %s, %n : tensor<2x16x32xf32>
  %n2 = moe.rms_norm %s2, %w : tensor<2x16x32xf32>, tensor<32xf32>
  %n3 = moe.rms_norm %s2, %w : tensor<2x16x32xf32>, tensor<32xf32>
  return %s2, %n2, %n3 : tensor<2x16x32xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>
}

// -----

// Expert: members of a group share one precision; an up projection in
// bf16 and a down projection in f32 stay apart.
// EXPERT-LABEL: func.func @expert_precisions
// EXPERT-NOT:   moe.fused
func.func @expert_precisions(%xe: tensor<32x8xf32>, %w1: tensor<4x12x8xf32>, %sizes: tensor<4xi32>,
                             %w2: tensor<4x8x12xf32>) -> tensor<32x8xf32> {
  %h = moe.grouped_ffn_up %xe weights(%w1) group_sizes(%sizes) {moe.precision = #moe.precision<bf16>} : (tensor<32x8xf32>, tensor<4x12x8xf32>, tensor<4xi32>) -> tensor<32x12xf32>
  %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%sizes) {activation = #moe.activation<gelu>} : (tensor<32x12xf32>, tensor<4x8x12xf32>, tensor<4xi32>) -> tensor<32x8xf32>
  return %y : tensor<32x8xf32>
}

// -----

// LM head: the head's product, the cross-entropy of its logits and their
// gradients form one group yielding the loss and the gradients of the
// input and the weight; the logits and their gradient stay inside (the
// kernel computes them a chunk of rows at a time). Not with library GEMMs.
// RUN: moe-opt %s --split-input-file --moe-fuse-lm-head | FileCheck %s --check-prefix=LMHEAD
// RUN: moe-opt %s --split-input-file --moe-fusion="strategy=all library-gemms=true" | FileCheck %s --check-prefix=LIBRARY
// LMHEAD-LABEL: func.func @lm_head_training
// LMHEAD:      %[[R:.+]]:3 = moe.fused <lm_head>(%arg0, %arg1, %arg2, %arg3) : (tensor<2x16x32xf32>, tensor<64x32xf32>, tensor<2x16xi32>, tensor<f32>) -> (tensor<f32>, tensor<2x16x32xf32>, tensor<64x32xf32>) {
// LMHEAD-NEXT: ^bb0(%[[H:.+]]: tensor<2x16x32xf32>, %[[W:.+]]: tensor<64x32xf32>, %[[T:.+]]: tensor<2x16xi32>, %[[D:.+]]: tensor<f32>):
// LMHEAD-NEXT:   %[[L:.+]] = moe.linear %[[H]], %[[W]]
// LMHEAD-NEXT:   %[[LOSS:.+]] = moe.cross_entropy %[[L]], %[[T]]
// LMHEAD-NEXT:   %[[DL:.+]] = moe.cross_entropy_grad %[[L]], %[[T]], %[[D]]
// LMHEAD-NEXT:   %[[DH:.+]], %[[DW:.+]] = moe.linear_grad %[[H]], %[[W]], %[[DL]]
// LMHEAD-NEXT:   moe.yield %[[LOSS]], %[[DH]], %[[DW]]
// LMHEAD:      return %[[R]]#0, %[[R]]#1, %[[R]]#2
// ALL-LABEL: func.func @lm_head_training
// ALL:       moe.fused <lm_head>
// LIBRARY-LABEL: func.func @lm_head_training
// LIBRARY-NOT: moe.fused <lm_head>
// MOE-LABEL: func.func @lm_head_training
// MOE-NOT:   moe.fused
func.func @lm_head_training(%h: tensor<2x16x32xf32>, %w: tensor<64x32xf32>, %t: tensor<2x16xi32>,
                            %dloss: tensor<f32>)
    -> (tensor<f32>, tensor<2x16x32xf32>, tensor<64x32xf32>) {
  %logits = moe.linear %h, %w : tensor<2x16x32xf32>, tensor<64x32xf32>
  %loss = moe.cross_entropy %logits, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  %dlogits = moe.cross_entropy_grad %logits, %t, %dloss : (tensor<2x16x64xf32>, tensor<2x16xi32>, tensor<f32>) -> tensor<2x16x64xf32>
  %dh, %dw = moe.linear_grad %h, %w, %dlogits : (tensor<2x16x32xf32>, tensor<64x32xf32>, tensor<2x16x64xf32>) -> (tensor<2x16x32xf32>, tensor<64x32xf32>)
  return %loss, %dh, %dw : tensor<f32>, tensor<2x16x32xf32>, tensor<64x32xf32>
}

// -----

// Evaluation: the product and the loss, a bias included.
// LMHEAD-LABEL: func.func @lm_head_eval
// LMHEAD:      %[[LOSS:.+]] = moe.fused <lm_head>(%arg0, %arg1, %arg2, %arg3) : (tensor<2x16x32xf32>, tensor<64x32xf32>, tensor<64xf32>, tensor<2x16xi32>) -> tensor<f32> {
// LMHEAD:        moe.linear
// LMHEAD-NEXT:   moe.cross_entropy
// LMHEAD-NEXT:   moe.yield
// LMHEAD:      return %[[LOSS]]
func.func @lm_head_eval(%h: tensor<2x16x32xf32>, %w: tensor<64x32xf32>, %b: tensor<64xf32>,
                        %t: tensor<2x16xi32>) -> tensor<f32> {
  %logits = moe.linear %h, %w, %b : tensor<2x16x32xf32>, tensor<64x32xf32>, tensor<64xf32>
  %loss = moe.cross_entropy %logits, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  return %loss : tensor<f32>
}

// -----

// No group when the logits must be stored anyway (another op reads them),
// when the bias's gradient reads the logits' gradient whole, when the
// head's gradient has another precision than the head, or when two losses
// read the logits.
// LMHEAD-LABEL: func.func @lm_head_not_fused
// LMHEAD-NOT:   moe.fused
func.func @lm_head_not_fused(%h: tensor<2x16x32xf32>, %w: tensor<64x32xf32>, %b: tensor<64xf32>,
                             %t: tensor<2x16xi32>, %dloss: tensor<f32>)
    -> (tensor<f32>, tensor<2x16x64xf32>, tensor<f32>, tensor<64xf32>, tensor<f32>, tensor<64x32xf32>,
        tensor<f32>, tensor<f32>) {
  %logits = moe.linear %h, %w : tensor<2x16x32xf32>, tensor<64x32xf32>
  %loss = moe.cross_entropy %logits, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  %biased = moe.linear %h, %w, %b : tensor<2x16x32xf32>, tensor<64x32xf32>, tensor<64xf32>
  %loss2 = moe.cross_entropy %biased, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  %d2 = moe.cross_entropy_grad %biased, %t, %dloss : (tensor<2x16x64xf32>, tensor<2x16xi32>, tensor<f32>) -> tensor<2x16x64xf32>
  %db = moe.reduce_rows %d2 : (tensor<2x16x64xf32>) -> tensor<64xf32>
  %bf = moe.linear %h, %w {moe.precision = #moe.precision<bf16>} : tensor<2x16x32xf32>, tensor<64x32xf32>
  %loss3 = moe.cross_entropy %bf, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  %d3 = moe.cross_entropy_grad %bf, %t, %dloss : (tensor<2x16x64xf32>, tensor<2x16xi32>, tensor<f32>) -> tensor<2x16x64xf32>
  %dh3, %dw3 = moe.linear_grad %h, %w, %d3 : (tensor<2x16x32xf32>, tensor<64x32xf32>, tensor<2x16x64xf32>) -> (tensor<2x16x32xf32>, tensor<64x32xf32>)
  %twice = moe.linear %h, %w : tensor<2x16x32xf32>, tensor<64x32xf32>
  %loss4 = moe.cross_entropy %twice, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  %loss5 = moe.cross_entropy %twice, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  return %loss, %logits, %loss2, %db, %loss3, %dw3, %loss4, %loss5 : tensor<f32>, tensor<2x16x64xf32>, tensor<f32>, tensor<64xf32>, tensor<f32>, tensor<64x32xf32>, tensor<f32>, tensor<f32>
}

// -----

// After --moe-rematerialize the head's gradient reads a recomputed copy of
// the head's input: the group reads the copy for both (it runs in the
// backward pass, where the copy lives), and the forward's norm, read by
// nothing else, goes.
// LMHEAD-LABEL: func.func @lm_head_recomputed_input
// LMHEAD:      %[[COPY:.+]] = moe.rms_norm %arg0, %arg1
// LMHEAD-NOT:  moe.rms_norm
// LMHEAD:      moe.fused <lm_head>(%arg2, %arg3, %arg4, %[[COPY]]) : (tensor<64x32xf32>, tensor<2x16xi32>, tensor<f32>, tensor<2x16x32xf32>)
// LMHEAD-NEXT: ^bb0(%[[W:.+]]: tensor<64x32xf32>, %[[T:.+]]: tensor<2x16xi32>, %[[D:.+]]: tensor<f32>, %[[X:.+]]: tensor<2x16x32xf32>):
// LMHEAD-NEXT:   moe.linear %[[X]], %[[W]]
// LMHEAD:        moe.linear_grad %[[X]], %[[W]]
func.func @lm_head_recomputed_input(%r: tensor<2x16x32xf32>, %g: tensor<32xf32>,
                                    %w: tensor<64x32xf32>, %t: tensor<2x16xi32>,
                                    %dloss: tensor<f32>)
    -> (tensor<f32>, tensor<2x16x32xf32>, tensor<64x32xf32>) {
  %h = moe.rms_norm %r, %g : tensor<2x16x32xf32>, tensor<32xf32>
  %logits = moe.linear %h, %w : tensor<2x16x32xf32>, tensor<64x32xf32>
  %loss = moe.cross_entropy %logits, %t : tensor<2x16x64xf32>, tensor<2x16xi32>
  %dlogits = moe.cross_entropy_grad %logits, %t, %dloss : (tensor<2x16x64xf32>, tensor<2x16xi32>, tensor<f32>) -> tensor<2x16x64xf32>
  %h2 = moe.rms_norm %r, %g : tensor<2x16x32xf32>, tensor<32xf32>
  %dh, %dw = moe.linear_grad %h2, %w, %dlogits : (tensor<2x16x32xf32>, tensor<64x32xf32>, tensor<2x16x64xf32>) -> (tensor<2x16x32xf32>, tensor<64x32xf32>)
  return %loss, %dh, %dw : tensor<f32>, tensor<2x16x32xf32>, tensor<64x32xf32>
}

// -----

// Norm, backward: the residual gradient's sum joins the norm gradient whose
// dx it reads, and dx stays inside; a sum of two norm gradients joins the
// first; a dx read twice is stored and stays apart.
// NORM-LABEL: func.func @norm_grad
// NORM:      %[[A:.+]]:2 = moe.fused <norm>(%arg0, %arg1, %arg2, %arg3) : (tensor<2x16x32xf32>, tensor<32xf32>, tensor<2x16x32xf32>, tensor<2x16x32xf32>) -> (tensor<32xf32>, tensor<2x16x32xf32>) {
// NORM-NEXT: ^bb0(%[[X:.+]]: tensor<2x16x32xf32>, %[[W:.+]]: tensor<32xf32>, %[[DY:.+]]: tensor<2x16x32xf32>, %[[DR:.+]]: tensor<2x16x32xf32>):
// NORM-NEXT:   %[[DX:.+]], %[[DW:.+]] = moe.rms_norm_grad %[[X]], %[[W]], %[[DY]]
// NORM-NEXT:   %[[S:.+]] = moe.add %[[DR]], %[[DX]]
// NORM-NEXT:   moe.yield %[[DW]], %[[S]]
// NORM:      %[[DX2:.+]], %{{.+}} = moe.rms_norm_grad %arg0, %arg1, %[[A]]#1
// NORM-NEXT: %[[B:.+]]:2 = moe.fused <norm>(%arg0, %arg1, %arg2, %[[DX2]]) :
// NORM-NEXT: ^bb0(%{{.+}}, %{{.+}}, %{{.+}}, %[[IN:.+]]: tensor<2x16x32xf32>):
// NORM-NEXT:   %[[DX3:.+]], %{{.+}} = moe.rms_norm_grad
// NORM-NEXT:   moe.add %[[DX3]], %[[IN]]
// NORM:      %[[D:.+]], %{{.+}} = moe.rms_norm_grad %arg0, %arg1, %[[B]]#1
// NORM-NEXT: moe.add %[[D]], %[[D]]
// NORM-NOT:  moe.fused
func.func @norm_grad(%x: tensor<2x16x32xf32>, %w: tensor<32xf32>, %dy: tensor<2x16x32xf32>,
                     %dr: tensor<2x16x32xf32>)
    -> (tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<2x16x32xf32>) {
  %dx, %dw = moe.rms_norm_grad %x, %w, %dy {eps = 1.0e-6 : f32} : (tensor<2x16x32xf32>, tensor<32xf32>, tensor<2x16x32xf32>) -> (tensor<2x16x32xf32>, tensor<32xf32>)
  %s = moe.add %dr, %dx : tensor<2x16x32xf32>
  %dx2, %dw2 = moe.rms_norm_grad %x, %w, %s {eps = 1.0e-6 : f32} : (tensor<2x16x32xf32>, tensor<32xf32>, tensor<2x16x32xf32>) -> (tensor<2x16x32xf32>, tensor<32xf32>)
  %dx3, %dw3 = moe.rms_norm_grad %x, %w, %dy {eps = 1.0e-6 : f32} : (tensor<2x16x32xf32>, tensor<32xf32>, tensor<2x16x32xf32>) -> (tensor<2x16x32xf32>, tensor<32xf32>)
  %s2 = moe.add %dx3, %dx2 : tensor<2x16x32xf32>
  %dx4, %dw4 = moe.rms_norm_grad %x, %w, %s2 {eps = 1.0e-6 : f32} : (tensor<2x16x32xf32>, tensor<32xf32>, tensor<2x16x32xf32>) -> (tensor<2x16x32xf32>, tensor<32xf32>)
  %s3 = moe.add %dx4, %dx4 : tensor<2x16x32xf32>
  return %dw, %dw2, %dw3, %dw4, %s3 : tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<2x16x32xf32>
}
