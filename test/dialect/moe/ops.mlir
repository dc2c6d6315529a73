// Round-trip of every moe op: custom form, and generic form read back.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @router
func.func @router(%x: tensor<16x64xf32>, %wg: tensor<8x64xbf16>, %seed: tensor<i64>,
                  %tau: tensor<f32>) -> (tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>) {
  // CHECK: %[[T:.+]] = moe.router_input_transform %{{.+}} {kind = #moe.input_transform<l2norm>} : tensor<16x64xf32>
  %t = moe.router_input_transform %x {kind = #moe.input_transform<l2norm>} : tensor<16x64xf32>
  // CHECK: %[[J:.+]] = moe.router_jitter %[[T]], %{{.+}} {epsilon = 0.00999999977 : f32} : tensor<16x64xf32>
  %j = moe.router_jitter %t, %seed {epsilon = 0.01 : f32} : tensor<16x64xf32>
  // CHECK: moe.router_jitter %[[T]], %{{.+}} {epsilon = 0.00999999977 : f32, stream = 3 : i64} : tensor<16x64xf32>
  %j3 = moe.router_jitter %t, %seed {epsilon = 0.01 : f32, stream = 3 : i64} : tensor<16x64xf32>
  // CHECK: %[[L:.+]] = moe.router_logits %[[J]], %{{.+}} : tensor<16x64xf32>, tensor<8x64xbf16>
  %l = moe.router_logits %j, %wg : tensor<16x64xf32>, tensor<8x64xbf16>
  // CHECK: moe.score %[[L]] {function = #moe.score<softmax>, temperature = 2.000000e+00 : f32} : tensor<16x8xf32>
  %s = moe.score %l {function = #moe.score<softmax>, temperature = 2.0 : f32} : tensor<16x8xf32>
  // CHECK: moe.score %[[L]] {function = #moe.score<sigmoid>} : tensor<16x8xf32>
  %sg = moe.score %l {function = #moe.score<sigmoid>} : tensor<16x8xf32>
  // CHECK: moe.gumbel_softmax %[[L]] temperature(%{{.+}}) noise(%{{.+}}) : tensor<16x8xf32>
  %g = moe.gumbel_softmax %l temperature(%tau) noise(%seed) : tensor<16x8xf32>
  // CHECK: moe.temperature_schedule %{{.+}} {end = 5.000000e-01 : f32, start = 2.000000e+00 : f32, steps = 1000 : i64}
  %sched = moe.temperature_schedule %seed {start = 2.0 : f32, end = 0.5 : f32, steps = 1000 : i64}
  // CHECK: moe.gumbel_softmax %[[L]] temperature(%{{.+}}) : tensor<16x8xf32>
  %ge = moe.gumbel_softmax %l temperature(%tau) : tensor<16x8xf32>
  // CHECK: %{{.+}}, %[[PICKS:.+]] = moe.sparsemixer_route %[[L]] noise(%{{.+}}) {epsilon = 0.00999999977 : f32, stream = 1 : i64} : tensor<16x8xf32>
  %sw, %si = moe.sparsemixer_route %l noise(%seed) {epsilon = 0.01 : f32, stream = 1 : i64} : tensor<16x8xf32>
  // CHECK: moe.sparsemixer_route %[[L]] {epsilon = 0.00999999977 : f32} : tensor<16x8xf32>
  %ew, %ei = moe.sparsemixer_route %l {epsilon = 0.01 : f32} : tensor<16x8xf32>
  // CHECK: moe.sparsemixer_grad %[[L]], %[[PICKS]], %{{.+}} {epsilon = 0.00999999977 : f32} : (tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x2xf32>) -> tensor<16x8xf32>
  %dl = moe.sparsemixer_grad %l, %si, %sw {epsilon = 0.01 : f32} : (tensor<16x8xf32>, tensor<16x2xi32>, tensor<16x2xf32>) -> tensor<16x8xf32>
  return %s, %sg, %g, %ge : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>
}

// CHECK-LABEL: func.func @selection
func.func @selection(%s: tensor<16x8xf32>, %b: tensor<8xf32>, %load: tensor<8xi32>) {
  // CHECK: %{{.+}}, %{{.+}} = moe.topk_route %{{.+}} {k = 2 : i64, normalize = true} : tensor<16x8xf32>
  %w0, %i0 = moe.topk_route %s {k = 2 : i64, normalize = true} : tensor<16x8xf32>
  // CHECK: moe.topk_route %{{.+}} bias(%{{.+}} : tensor<8xf32>) {k = 1 : i64, scaling = 2.500000e+00 : f32} : tensor<16x8xf32>
  %w1, %i1 = moe.topk_route %s bias(%b : tensor<8xf32>) {k = 1 : i64, scaling = 2.5 : f32} : tensor<16x8xf32>
  // CHECK: moe.group_topk_route %{{.+}} bias(%{{.+}} : tensor<8xf32>) {group_score = #moe.group_score<top2_sum>, k = 2 : i64, mask_fill = #moe.mask_fill<zero>, num_groups = 4 : i64, topk_groups = 2 : i64} : tensor<16x8xf32>
  %w2, %i2 = moe.group_topk_route %s bias(%b : tensor<8xf32>) {k = 2 : i64, num_groups = 4 : i64, topk_groups = 2 : i64, group_score = #moe.group_score<top2_sum>, mask_fill = #moe.mask_fill<zero>} : tensor<16x8xf32>
  // CHECK: moe.prototype_route %{{.+}} {num_prototypes = 4 : i64} : tensor<16x8xf32>
  %w3, %i3 = moe.prototype_route %s {num_prototypes = 4 : i64} : tensor<16x8xf32>
  // CHECK: moe.top_p_route %{{.+}} {max_k = 4 : i64, p = 5.000000e-01 : f32} : tensor<16x8xf32>
  %w4, %i4 = moe.top_p_route %s {p = 0.5 : f32, max_k = 4 : i64} : tensor<16x8xf32>
  // CHECK: moe.entropy_hybrid_route %{{.+}} {k = 2 : i64, max_k = 8 : i64, p = 1.000000e+00 : f32, q = 1.500000e+00 : f32, threshold = 7.500000e-01 : f32} : tensor<16x8xf32>
  %w5, %i5 = moe.entropy_hybrid_route %s {q = 1.5 : f32, threshold = 0.75 : f32, k = 2 : i64, p = 1.0 : f32, max_k = 8 : i64} : tensor<16x8xf32>
  // CHECK: moe.threshold_route %{{.+}} {max_k = 8 : i64, threshold = 1.000000e-01 : f32} : tensor<16x8xf32>
  %w6, %i6 = moe.threshold_route %s {threshold = 0.1 : f32, max_k = 8 : i64} : tensor<16x8xf32>
  // CHECK: moe.expert_choice_route %{{.+}} {capacity = 4 : i64} : tensor<16x8xf32>
  %tok, %gate = moe.expert_choice_route %s {capacity = 4 : i64} : tensor<16x8xf32>
  // CHECK: moe.update_selection_bias %{{.+}}, %{{.+}} {rate = 1.000000e-03 : f32} : tensor<8xf32>, tensor<8xi32>
  %b2 = moe.update_selection_bias %b, %load {rate = 0.001 : f32} : tensor<8xf32>, tensor<8xi32>
  return
}

// CHECK-LABEL: func.func @dispatch_combine
func.func @dispatch_combine(%x: tensor<16x64xf32>, %w: tensor<16x2xf32>, %i: tensor<16x2xi32>) -> (tensor<16x64xf32>, tensor<16x64xf32>) {
  // CHECK: %[[TOK:.+]], %[[GATE:.+]], %{{.+}} = moe.assign_slots %{{.+}}, %{{.+}} {capacity = 5 : i64, num_experts = 8 : i64, priority = #moe.drop_priority<score>} : tensor<16x2xf32>, tensor<16x2xi32>
  %tok, %gate, %load = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 5 : i64, priority = #moe.drop_priority<score>} : tensor<16x2xf32>, tensor<16x2xi32>
  // CHECK: %[[XE:.+]] = moe.dispatch %{{.+}}, %[[TOK]] : tensor<16x64xf32>, tensor<8x5xi32>
  %xe = moe.dispatch %x, %tok : tensor<16x64xf32>, tensor<8x5xi32>
  // CHECK: moe.combine %[[XE]], %[[GATE]], %[[TOK]] : tensor<8x5x64xf32>, tensor<8x5xf32>, tensor<8x5xi32> -> tensor<16x64xf32>
  %y = moe.combine %xe, %gate, %tok : tensor<8x5x64xf32>, tensor<8x5xf32>, tensor<8x5xi32> -> tensor<16x64xf32>
  // CHECK: %[[STOK:.+]], %[[SGATE:.+]], %{{.+}} = moe.sort_by_expert %{{.+}}, %{{.+}} {num_experts = 8 : i64} : tensor<16x2xf32>, tensor<16x2xi32>
  %stok, %sgate, %sizes = moe.sort_by_expert %w, %i {num_experts = 8 : i64} : tensor<16x2xf32>, tensor<16x2xi32>
  // CHECK: %[[ROWS:.+]] = moe.dispatch %{{.+}}, %[[STOK]] : tensor<16x64xf32>, tensor<32xi32>
  %rows = moe.dispatch %x, %stok : tensor<16x64xf32>, tensor<32xi32>
  // CHECK: moe.combine %[[ROWS]], %[[SGATE]], %[[STOK]] : tensor<32x64xf32>, tensor<32xf32>, tensor<32xi32> -> tensor<16x64xf32>
  %y2 = moe.combine %rows, %sgate, %stok : tensor<32x64xf32>, tensor<32xf32>, tensor<32xi32> -> tensor<16x64xf32>
  // CHECK: moe.routing_stats %[[TOK]] indices(%{{.+}} : tensor<16x2xi32>) {num_experts = 8 : i64, num_tokens = 16 : i64} : tensor<8x5xi32>
  %load2, %dropped = moe.routing_stats %tok indices(%i : tensor<16x2xi32>) {num_experts = 8 : i64, num_tokens = 16 : i64} : tensor<8x5xi32>
  // CHECK: moe.routing_stats %[[TOK]] {num_experts = 8 : i64, num_tokens = 16 : i64} : tensor<8x5xi32>
  %load3, %dropped3 = moe.routing_stats %tok {num_experts = 8 : i64, num_tokens = 16 : i64} : tensor<8x5xi32>
  return %y, %y2 : tensor<16x64xf32>, tensor<16x64xf32>
}

// CHECK-LABEL: func.func @experts
func.func @experts(%xe: tensor<8x5x64xbf16>, %rows: tensor<32x64xbf16>, %sizes: tensor<8xi32>,
                   %w1: tensor<8x128x64xbf16>, %w2: tensor<8x64x128xbf16>, %w3: tensor<8x128x64xbf16>,
                   %x: tensor<16x64xbf16>, %s1: tensor<96x64xbf16>, %s2: tensor<64x96xbf16>,
                   %s3: tensor<96x64xbf16>, %wsg: tensor<1x64xbf16>) {
  // CHECK: moe.grouped_ffn %{{.+}} weights(%{{.+}}, %{{.+}}, %{{.+}}) {activation = #moe.activation<silu>} : (tensor<8x5x64xbf16>, tensor<8x128x64xbf16>, tensor<8x64x128xbf16>, tensor<8x128x64xbf16>) -> tensor<8x5x64xbf16>
  %a = moe.grouped_ffn %xe weights(%w1, %w2, %w3) {activation = #moe.activation<silu>} : (tensor<8x5x64xbf16>, tensor<8x128x64xbf16>, tensor<8x64x128xbf16>, tensor<8x128x64xbf16>) -> tensor<8x5x64xbf16>
  // CHECK: moe.grouped_ffn %{{.+}} weights(%{{.+}}, %{{.+}}) group_sizes(%{{.+}}) {activation = #moe.activation<relu>} : (tensor<32x64xbf16>, tensor<8x128x64xbf16>, tensor<8x64x128xbf16>, tensor<8xi32>) -> tensor<32x64xbf16>
  %b = moe.grouped_ffn %rows weights(%w1, %w2) group_sizes(%sizes) {activation = #moe.activation<relu>} : (tensor<32x64xbf16>, tensor<8x128x64xbf16>, tensor<8x64x128xbf16>, tensor<8xi32>) -> tensor<32x64xbf16>
  // CHECK: moe.shared_experts %{{.+}} weights(%{{.+}}, %{{.+}}, %{{.+}}) sigmoid_gate(%{{.+}}) {activation = #moe.activation<silu>, num_shared = 2 : i64}
  %c = moe.shared_experts %x weights(%s1, %s2, %s3) sigmoid_gate(%wsg) {num_shared = 2 : i64, activation = #moe.activation<silu>} : (tensor<16x64xbf16>, tensor<96x64xbf16>, tensor<64x96xbf16>, tensor<96x64xbf16>, tensor<1x64xbf16>) -> tensor<16x64xbf16>
  // CHECK: moe.shared_experts %{{.+}} weights(%{{.+}}, %{{.+}}) {activation = #moe.activation<gelu_tanh>, num_shared = 1 : i64}
  %d = moe.shared_experts %x weights(%s1, %s2) {num_shared = 1 : i64, activation = #moe.activation<gelu_tanh>} : (tensor<16x64xbf16>, tensor<96x64xbf16>, tensor<64x96xbf16>) -> tensor<16x64xbf16>
  return
}

// CHECK-LABEL: func.func @lora_experts
func.func @lora_experts(%xe: tensor<4x8x64xf32>, %rows: tensor<16x64xf32>, %sizes: tensor<4xi32>,
                        %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %w3: tensor<128x64xf32>,
                        %a1: tensor<4x8x64xf32>, %b1: tensor<4x128x8xf32>,
                        %a2: tensor<4x8x128xf32>, %b2: tensor<4x64x8xf32>) {
  // CHECK: moe.lora_experts %{{.+}} base(%{{.+}}, %{{.+}}) adapters(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) {activation = #moe.activation<gelu>, alpha = 1.600000e+01 : f32}
  %a = moe.lora_experts %xe base(%w1, %w2) adapters(%a1, %b1, %a2, %b2) {alpha = 16.0 : f32, activation = #moe.activation<gelu>} : (tensor<4x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x128xf32>, tensor<4x64x8xf32>) -> tensor<4x8x64xf32>
  // CHECK: moe.lora_experts %{{.+}} base(%{{.+}}, %{{.+}}, %{{.+}}) adapters(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) group_sizes(%{{.+}}) {activation = #moe.activation<silu>, alpha = 8.000000e+00 : f32}
  %b = moe.lora_experts %rows base(%w1, %w2, %w3) adapters(%a1, %b1, %a2, %b2, %a1, %b1) group_sizes(%sizes) {alpha = 8.0 : f32, activation = #moe.activation<silu>} : (tensor<16x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x128xf32>, tensor<4x64x8xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4xi32>) -> tensor<16x64xf32>
  return
}

// CHECK-LABEL: func.func @losses
func.func @losses(%l: tensor<16x8xf32>, %s: tensor<16x8xf32>, %i: tensor<16x2xi32>) -> tensor<f32> {
  // CHECK: %[[A:.+]] = moe.load_balancing_loss %{{.+}}, %{{.+}} {kind = #moe.balance<switch>} : tensor<16x8xf32>, tensor<16x2xi32>
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<16x8xf32>, tensor<16x2xi32>
  // CHECK: %[[B:.+]] = moe.load_balancing_loss %{{.+}}, %{{.+}} {kind = #moe.balance<per_slot>} : tensor<16x8xf32>, tensor<16x2xi32>
  %b = moe.load_balancing_loss %s, %i {kind = #moe.balance<per_slot>} : tensor<16x8xf32>, tensor<16x2xi32>
  // CHECK: %[[C:.+]] = moe.load_balancing_loss %{{.+}}, %{{.+}} {kind = #moe.balance<sequence>, seq_len = 8 : i64} : tensor<16x8xf32>, tensor<16x2xi32>
  %c = moe.load_balancing_loss %s, %i {kind = #moe.balance<sequence>, seq_len = 8 : i64} : tensor<16x8xf32>, tensor<16x2xi32>
  // CHECK: %[[Z:.+]] = moe.z_loss %{{.+}} : tensor<16x8xf32>
  %z = moe.z_loss %l : tensor<16x8xf32>
  // CHECK: %[[H:.+]] = moe.entropy_loss %{{.+}} {q = 1.500000e+00 : f32} : tensor<16x8xf32>
  %h = moe.entropy_loss %s {q = 1.5 : f32} : tensor<16x8xf32>
  // CHECK: moe.weighted_sum %[[A]], %[[B]], %[[C]], %[[Z]], %[[H]] {coefficients = array<f32: 1.000000e+00, 2.000000e+00, 3.000000e+00, 5.000000e-01, 2.500000e-01>}
  %t = moe.weighted_sum %a, %b, %c, %z, %h {coefficients = array<f32: 1.0, 2.0, 3.0, 0.5, 0.25>}
  return %t : tensor<f32>
}

// CHECK-LABEL: func.func @dense
func.func @dense(%table: tensor<256x64xf32>, %tokens: tensor<2x8xi32>, %g: tensor<64xf32>,
                 %beta: tensor<64xf32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>,
                 %bk: tensor<32xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>,
                 %w3: tensor<128x64xf32>, %head: tensor<256x64xf32>) -> tensor<f32> {
  // CHECK: %[[H:.+]] = moe.embedding %{{.+}}, %{{.+}} : tensor<256x64xf32>, tensor<2x8xi32>
  %h = moe.embedding %table, %tokens : tensor<256x64xf32>, tensor<2x8xi32>
  // CHECK: %[[N:.+]] = moe.rms_norm %[[H]], %{{.+}} {eps = 9.99999974E-6 : f32} : tensor<2x8x64xf32>, tensor<64xf32>
  %n = moe.rms_norm %h, %g {eps = 1.0e-5 : f32} : tensor<2x8x64xf32>, tensor<64xf32>
  // CHECK: moe.layer_norm %[[H]], %{{.+}}, %{{.+}} : tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>
  %ln = moe.layer_norm %h, %g, %beta : tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>
  // CHECK: moe.layer_norm %[[H]], %{{.+}} : tensor<2x8x64xf32>, tensor<64xf32>
  %ln2 = moe.layer_norm %h, %g : tensor<2x8x64xf32>, tensor<64xf32>
  // CHECK: %[[Q:.+]] = moe.linear %[[N]], %{{.+}} : tensor<2x8x64xf32>, tensor<64x64xf32>
  %q = moe.linear %n, %wq : tensor<2x8x64xf32>, tensor<64x64xf32>
  // CHECK: %[[K:.+]] = moe.linear %[[N]], %{{.+}}, %{{.+}} : tensor<2x8x64xf32>, tensor<32x64xf32>, tensor<32xf32>
  %k = moe.linear %n, %wk, %bk : tensor<2x8x64xf32>, tensor<32x64xf32>, tensor<32xf32>
  %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [2, 8, 4, 16] : tensor<2x8x64xf32> into tensor<2x8x4x16xf32>
  %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [2, 8, 2, 16] : tensor<2x8x32xf32> into tensor<2x8x2x16xf32>
  // CHECK: %[[QR:.+]] = moe.rope %{{.+}} {theta = 1.000000e+06 : f32} : tensor<2x8x4x16xf32>
  %qr = moe.rope %q4 {theta = 1000000.0 : f32} : tensor<2x8x4x16xf32>
  // CHECK: %[[KR:.+]] = moe.rope %{{.+}} : tensor<2x8x2x16xf32>
  %kr = moe.rope %k4 : tensor<2x8x2x16xf32>
  // CHECK: moe.attention %[[QR]], %[[KR]], %[[KR]] {causal} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  %o = moe.attention %qr, %kr, %kr {causal} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  // CHECK: moe.attention %[[QR]], %[[KR]], %[[KR]] {scale = 1.250000e-01 : f32} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  %o2 = moe.attention %qr, %kr, %kr {scale = 0.125 : f32} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  %o3 = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<2x8x4x16xf32> into tensor<2x8x64xf32>
  // CHECK: %[[R:.+]] = moe.add %[[H]], %{{.+}} : tensor<2x8x64xf32>
  %r = moe.add %h, %o3 : tensor<2x8x64xf32>
  // CHECK: moe.ffn %[[R]] weights(%{{.+}}, %{{.+}}, %{{.+}}) {activation = #moe.activation<silu>} : (tensor<2x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<2x8x64xf32>
  %f = moe.ffn %r weights(%w1, %w2, %w3) {activation = #moe.activation<silu>} : (tensor<2x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>) -> tensor<2x8x64xf32>
  // CHECK: moe.activation %{{.+}} {kind = #moe.activation<gelu>} : tensor<2x8x64xf32>
  %act = moe.activation %f {kind = #moe.activation<gelu>} : tensor<2x8x64xf32>
  // CHECK: %[[LOGITS:.+]] = moe.linear %{{.+}}, %{{.+}} : tensor<2x8x64xf32>, tensor<256x64xf32>
  %logits = moe.linear %act, %head : tensor<2x8x64xf32>, tensor<256x64xf32>
  // CHECK: moe.cross_entropy %[[LOGITS]], %{{.+}} : tensor<2x8x256xf32>, tensor<2x8xi32>
  %ce = moe.cross_entropy %logits, %tokens : tensor<2x8x256xf32>, tensor<2x8xi32>
  return %ce : tensor<f32>
}

// Shapes that are only known at run time are accepted; checks apply to the
// static extents.
// CHECK-LABEL: func.func @dynamic_tokens
func.func @dynamic_tokens(%x: tensor<?x64xf32>, %wg: tensor<8x64xf32>) -> tensor<?x2xi32> {
  // CHECK: moe.router_logits %{{.+}}, %{{.+}} : tensor<?x64xf32>, tensor<8x64xf32>
  %l = moe.router_logits %x, %wg : tensor<?x64xf32>, tensor<8x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<?x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<?x8xf32>
  return %i : tensor<?x2xi32>
}

// Latent attention's pieces: interleaved RoPE on a key part shared by the
// heads, repeated over them, and values narrower than queries and keys.
// CHECK-LABEL: func.func @latent_attention
func.func @latent_attention(%q: tensor<2x8x4x24xf32>, %kr: tensor<2x8x1x8xf32>, %kp: tensor<2x8x4x16xf32>, %v: tensor<2x8x4x16xf32>) -> tensor<2x8x4x16xf32> {
  // CHECK: moe.rope %{{.+}} {interleaved} : tensor<2x8x1x8xf32>
  %r = moe.rope %kr {interleaved} : tensor<2x8x1x8xf32>
  // CHECK: moe.broadcast %{{.+}} : tensor<2x8x1x8xf32> to tensor<2x8x4x8xf32>
  %b = moe.broadcast %r : tensor<2x8x1x8xf32> to tensor<2x8x4x8xf32>
  %k = tensor.concat dim(3) %kp, %b : (tensor<2x8x4x16xf32>, tensor<2x8x4x8xf32>) -> tensor<2x8x4x24xf32>
  // CHECK: moe.attention %{{.+}}, %{{.+}}, %{{.+}} {causal} : tensor<2x8x4x24xf32>, tensor<2x8x4x24xf32>, tensor<2x8x4x16xf32>
  %o = moe.attention %q, %k, %v {causal} : tensor<2x8x4x24xf32>, tensor<2x8x4x24xf32>, tensor<2x8x4x16xf32>
  return %o : tensor<2x8x4x16xf32>
}

// gpt-oss's pieces: attention sinks, an input-major expert projection
// transposed for the grouped product, the clamped SwiGLU of interleaved
// gate/up pairs.
// CHECK-LABEL: func.func @gpt_oss
func.func @gpt_oss(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>, %sinks: tensor<4xf32>, %gu: tensor<4x64x32xf32>, %h: tensor<16x32xf32>) -> (tensor<2x8x4x16xf32>, tensor<4x32x64xf32>, tensor<16x16xf32>) {
  // CHECK: moe.attention %{{.+}}, %{{.+}}, %{{.+}} sinks(%{{.+}}) {causal, window = 4 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<4xf32>
  %o = moe.attention %q, %k, %v sinks(%sinks) {causal, window = 4 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<4xf32>
  // CHECK: moe.transpose %{{.+}} [0, 2, 1] : tensor<4x64x32xf32> to tensor<4x32x64xf32>
  %t = moe.transpose %gu [0, 2, 1] : tensor<4x64x32xf32> to tensor<4x32x64xf32>
  // CHECK: moe.clamped_swiglu %{{.+}} {alpha = 1.702000e+00 : f32, limit = 7.000000e+00 : f32} : tensor<16x32xf32> to tensor<16x16xf32>
  %a = moe.clamped_swiglu %h {alpha = 1.702 : f32, limit = 7.0 : f32} : tensor<16x32xf32> to tensor<16x16xf32>
  return %o, %t, %a : tensor<2x8x4x16xf32>, tensor<4x32x64xf32>, tensor<16x16xf32>
}

// Llama 4's pieces: chunked attention, the queries' temperature, routing
// weights on the experts' inputs.
// CHECK-LABEL: func.func @llama4
func.func @llama4(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>, %xe: tensor<8x5x64xf32>, %g: tensor<8x5xf32>) -> (tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<8x5x64xf32>) {
  // CHECK: moe.attention %{{.+}}, %{{.+}}, %{{.+}} {causal, chunk = 4 : i64}
  %c = moe.attention %q, %k, %v {causal, chunk = 4 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  // CHECK: moe.attention %{{.+}}, %{{.+}}, %{{.+}} {causal, temperature_floor = 8192 : i64, temperature_scale = 1.000000e-01 : f32}
  %t = moe.attention %q, %k, %v {causal, temperature_floor = 8192 : i64, temperature_scale = 0.1 : f32} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  // CHECK: moe.scale_rows %{{.+}}, %{{.+}} : tensor<8x5x64xf32>, tensor<8x5xf32>
  %s = moe.scale_rows %xe, %g : tensor<8x5x64xf32>, tensor<8x5xf32>
  return %c, %t, %s : tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<8x5x64xf32>
}

// CHECK-LABEL: func.func @granite_scale
func.func @granite_scale(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // CHECK: moe.scale %{{.+}} {factor = 1.200000e+01 : f32} : tensor<2x8x64xf32>
  %s = moe.scale %x {factor = 12.0 : f32} : tensor<2x8x64xf32>
  return %s : tensor<2x8x64xf32>
}

// Qwen3-Next's pieces: gated DeltaNet (convolution, decay, the delta rule
// and their gradients) and the gates' products.
// CHECK-LABEL: func.func @gated_deltanet
func.func @gated_deltanet(%x: tensor<2x8x40xf32>, %w: tensor<40x4xf32>, %a: tensor<2x8x4xf32>,
                          %alog: tensor<4xf32>, %dt: tensor<4xf32>, %q: tensor<2x8x2x8xf32>,
                          %k: tensor<2x8x2x8xf32>, %v: tensor<2x8x4x6xf32>,
                          %beta: tensor<2x8x4xf32>, %do: tensor<2x8x4x6xf32>) {
  // CHECK: moe.causal_conv1d %{{.+}}, %{{.+}} : tensor<2x8x40xf32>, tensor<40x4xf32>
  %c = moe.causal_conv1d %x, %w : tensor<2x8x40xf32>, tensor<40x4xf32>
  // CHECK: moe.causal_conv1d_grad
  %dx, %dw = moe.causal_conv1d_grad %x, %w, %c : (tensor<2x8x40xf32>, tensor<40x4xf32>, tensor<2x8x40xf32>) -> (tensor<2x8x40xf32>, tensor<40x4xf32>)
  // CHECK: %[[G:.+]] = moe.delta_decay %{{.+}}, %{{.+}}, %{{.+}} : tensor<2x8x4xf32>, tensor<4xf32>, tensor<4xf32>
  %g = moe.delta_decay %a, %alog, %dt : tensor<2x8x4xf32>, tensor<4xf32>, tensor<4xf32>
  // CHECK: moe.delta_decay_grad
  %da, %dalog, %ddt = moe.delta_decay_grad %a, %alog, %dt, %g : (tensor<2x8x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<2x8x4xf32>) -> (tensor<2x8x4xf32>, tensor<4xf32>, tensor<4xf32>)
  // CHECK: moe.gated_delta_rule %{{.+}}, %{{.+}}, %{{.+}}, %[[G]], %{{.+}} {qk_l2norm_eps = 9.99999997E-7 : f32} : tensor<2x8x2x8xf32>, tensor<2x8x2x8xf32>, tensor<2x8x4x6xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
  %o = moe.gated_delta_rule %q, %k, %v, %g, %beta {qk_l2norm_eps = 1.0e-6 : f32}
      : tensor<2x8x2x8xf32>, tensor<2x8x2x8xf32>, tensor<2x8x4x6xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
  // CHECK: moe.gated_delta_rule_grad {{.+}} {scale = 5.000000e-01 : f32}
  %gq, %gk, %gv, %gg, %gb = moe.gated_delta_rule_grad %q, %k, %v, %g, %beta, %do {scale = 0.5 : f32} : (tensor<2x8x2x8xf32>, tensor<2x8x2x8xf32>, tensor<2x8x4x6xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4x6xf32>) -> (tensor<2x8x2x8xf32>, tensor<2x8x2x8xf32>, tensor<2x8x4x6xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>)
  // CHECK: %[[S:.+]] = moe.activation %{{.+}} {kind = #moe.activation<sigmoid>} : tensor<2x8x4x6xf32>
  %s = moe.activation %do {kind = #moe.activation<sigmoid>} : tensor<2x8x4x6xf32>
  // CHECK: moe.multiply %{{.+}}, %[[S]] : tensor<2x8x4x6xf32>
  %m = moe.multiply %o, %s : tensor<2x8x4x6xf32>
  return
}

// MiniMax's lightning attention and its gradient.
// CHECK-LABEL: func.func @lightning
func.func @lightning(%q: tensor<2x8x2x16xf32>) {
  // CHECK: moe.lightning_attention %{{.+}}, %{{.+}}, %{{.+}} {decay = array<f32: 5.000000e-01, 2.500000e-01>} : tensor<2x8x2x16xf32>
  %o = moe.lightning_attention %q, %q, %q {decay = array<f32: 0.5, 0.25>} : tensor<2x8x2x16xf32>
  // CHECK: moe.lightning_attention_grad
  %dq, %dk, %dv = moe.lightning_attention_grad %q, %q, %q, %o {decay = array<f32: 0.5, 0.25>} : (tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>) -> (tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>)
  return
}
