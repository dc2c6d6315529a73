// Every verifier error of the scoring and selection ops.
// RUN: moe-opt %s --split-input-file --verify-diagnostics

func.func @transform_rank(%x: tensor<16xf32>) {
  // expected-error @+1 {{'moe.router_input_transform' op operand 'input' must be a rank-2 tensor [tokens, width], but has type 'tensor<16xf32>'}}
  %t = moe.router_input_transform %x {kind = #moe.input_transform<tanh>} : tensor<16xf32>
  return
}

// -----

func.func @transform_eps(%x: tensor<16x64xf32>) {
  // expected-error @+1 {{attribute 'eps' must be greater than 0, but is 0}}
  %t = moe.router_input_transform %x {kind = #moe.input_transform<layernorm>, eps = 0.0 : f32} : tensor<16x64xf32>
  return
}

// -----

func.func @jitter_epsilon(%x: tensor<16x64xf32>, %seed: tensor<i64>) {
  // expected-error @+1 {{'moe.router_jitter' op attribute 'epsilon' must be in (0, 1), but is 1.5}}
  %j = moe.router_jitter %x, %seed {epsilon = 1.5 : f32} : tensor<16x64xf32>
  return
}

// -----

func.func @jitter_stream(%x: tensor<16x64xf32>, %seed: tensor<i64>) {
  // expected-error @+1 {{'moe.router_jitter' op attribute 'stream' must be at least 0, but is -1}}
  %j = moe.router_jitter %x, %seed {epsilon = 0.1 : f32, stream = -1 : i64} : tensor<16x64xf32>
  return
}

// -----

func.func @sparsemixer_one_expert(%l: tensor<16x1xf32>) {
  // expected-error @+1 {{'moe.sparsemixer_route' op picks two experts, but 'logits' has 1 expert(s)}}
  %w, %i = moe.sparsemixer_route %l {epsilon = 0.01 : f32} : tensor<16x1xf32>
  return
}

// -----

func.func @sparsemixer_epsilon(%l: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.sparsemixer_route' op attribute 'epsilon' must be at least 0, but is -0.5}}
  %w, %i = moe.sparsemixer_route %l {epsilon = -0.5 : f32} : tensor<16x8xf32>
  return
}

// -----

func.func @jitter_rank(%x: tensor<2x16x64xf32>, %seed: tensor<i64>) {
  // expected-error @+1 {{operand 'input' must be a rank-2 tensor [tokens, width], but has type 'tensor<2x16x64xf32>'}}
  %j = moe.router_jitter %x, %seed {epsilon = 0.1 : f32} : tensor<2x16x64xf32>
  return
}

// -----

func.func @logits_width(%x: tensor<16x64xf32>, %wg: tensor<8x32xf32>) {
  // expected-error @+1 {{'moe.router_logits' op operand 'weight' dimension 1 (model width) must be 64 to match 'input', but is 32}}
  %l = moe.router_logits %x, %wg : tensor<16x64xf32>, tensor<8x32xf32>
  return
}

// -----

func.func @logits_input_rank(%x: tensor<2x16x64xf32>, %wg: tensor<8x64xf32>) {
  // expected-error @+1 {{'moe.router_logits' op operand 'input' must be a rank-2 tensor [tokens, width], but has type 'tensor<2x16x64xf32>'}}
  %l = moe.router_logits %x, %wg : tensor<2x16x64xf32>, tensor<8x64xf32>
  return
}

// -----

func.func @logits_weight_rank(%x: tensor<16x64xf32>, %wg: tensor<64xf32>) {
  // expected-error @+1 {{operand 'weight' must be a rank-2 tensor [experts, width], but has type 'tensor<64xf32>'}}
  %l = moe.router_logits %x, %wg : tensor<16x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @logits_result(%x: tensor<16x64xf32>, %wg: tensor<8x64xf32>) {
  // expected-error @+2 {{'moe.router_logits' op inferred type(s) 'tensor<16x8xf32>' are incompatible with return type(s) of operation 'tensor<16x4xf32>'}}
  // expected-error @+1 {{'moe.router_logits' op failed to infer returned types}}
  %l = "moe.router_logits"(%x, %wg) : (tensor<16x64xf32>, tensor<8x64xf32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @logits_f32(%x: tensor<16x64xbf16>, %wg: tensor<8x64xbf16>) {
  // expected-error @+1 {{result #0 must be ranked tensor of 32-bit float values, but got 'tensor<16x8xbf16>'}}
  %l = "moe.router_logits"(%x, %wg) : (tensor<16x64xbf16>, tensor<8x64xbf16>) -> tensor<16x8xbf16>
  return
}

// -----

func.func @score_rank(%l: tensor<16xf32>) {
  // expected-error @+1 {{'moe.score' op operand 'logits' must be a rank-2 tensor [tokens, experts], but has type 'tensor<16xf32>'}}
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<16xf32>
  return
}

// -----

func.func @score_temperature(%l: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'temperature' must be greater than 0, but is -1}}
  %s = moe.score %l {function = #moe.score<softmax>, temperature = -1.0 : f32} : tensor<16x8xf32>
  return
}

// -----

func.func @sigmoid_temperature(%l: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'temperature' applies to softmax scores only; sigmoid scores need 1.0, but it is 2}}
  %s = moe.score %l {function = #moe.score<sigmoid>, temperature = 2.0 : f32} : tensor<16x8xf32>
  return
}

// -----

func.func @score_unknown_function(%l: tensor<16x8xf32>) {
  // expected-error @+2 {{expected ::moec::moe::ScoreFunction to be one of: softmax, sigmoid}}
  // expected-error @+1 {{failed to parse MoE_ScoreFunctionAttr parameter 'value' which is to be a `::moec::moe::ScoreFunction`}}
  %s = moe.score %l {function = #moe.score<relu>} : tensor<16x8xf32>
  return
}

// -----

func.func @gumbel_rank(%l: tensor<2x16x8xf32>, %tau: tensor<f32>) {
  // expected-error @+1 {{'moe.gumbel_softmax' op operand 'logits' must be a rank-2 tensor [tokens, experts], but has type 'tensor<2x16x8xf32>'}}
  %s = moe.gumbel_softmax %l temperature(%tau) : tensor<2x16x8xf32>
  return
}

// -----

func.func @topk_scores_rank(%s: tensor<16xf32>) {
  // expected-error @+1 {{'moe.topk_route' op operand 'scores' must be a rank-2 tensor [tokens, experts], but has type 'tensor<16xf32>'}}
  %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<16xf32>
  return
}

// -----

func.func @topk_missing_k(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.topk_route' op requires attribute 'k'}}
  %w, %i = moe.topk_route %s : tensor<16x8xf32>
  return
}

// -----

func.func @topk_zero_k(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.topk_route' op attribute 'k' must be at least 1, but is 0}}
  %w, %i = moe.topk_route %s {k = 0 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @topk_too_many(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.topk_route' op attribute 'k' must be between 1 and the number of experts (8), but is 9}}
  %w, %i = moe.topk_route %s {k = 9 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @topk_bias_size(%s: tensor<16x8xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'moe.topk_route' op operand 'bias' dimension 0 (experts) must be 8 to match 'scores', but is 4}}
  %w, %i = moe.topk_route %s bias(%b : tensor<4xf32>) {k = 2 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @topk_bias_rank(%s: tensor<16x8xf32>, %b: tensor<1x8xf32>) {
  // expected-error @+1 {{operand 'bias' must be a rank-1 tensor [experts], but has type 'tensor<1x8xf32>'}}
  %w, %i = moe.topk_route %s bias(%b : tensor<1x8xf32>) {k = 2 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @topk_norm_eps(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'norm_eps' must be at least 0, but is -1}}
  %w, %i = moe.topk_route %s {k = 2 : i64, normalize = true, norm_eps = -1.0 : f32} : tensor<16x8xf32>
  return
}

// -----

func.func @topk_scaling(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'scaling' must be greater than 0, but is 0}}
  %w, %i = moe.topk_route %s {k = 2 : i64, scaling = 0.0 : f32} : tensor<16x8xf32>
  return
}

// -----

func.func @topk_result_shape(%s: tensor<16x8xf32>) {
  // expected-error @+2 {{'moe.topk_route' op inferred type(s) 'tensor<16x2xf32>', 'tensor<16x2xi32>' are incompatible with return type(s) of operation 'tensor<16x3xf32>', 'tensor<16x3xi32>'}}
  // expected-error @+1 {{'moe.topk_route' op failed to infer returned types}}
  %w, %i = "moe.topk_route"(%s) {k = 2 : i64} : (tensor<16x8xf32>) -> (tensor<16x3xf32>, tensor<16x3xi32>)
  return
}

// -----

func.func @groups_divide(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.group_topk_route' op attribute 'num_groups' (3) must divide the number of experts (8)}}
  %w, %i = moe.group_topk_route %s {k = 2 : i64, num_groups = 3 : i64, topk_groups = 1 : i64, group_score = #moe.group_score<max>} : tensor<16x8xf32>
  return
}

// -----

func.func @groups_too_many(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'num_groups' must be between 1 and the number of experts (8), but is 16}}
  %w, %i = moe.group_topk_route %s {k = 2 : i64, num_groups = 16 : i64, topk_groups = 1 : i64, group_score = #moe.group_score<max>} : tensor<16x8xf32>
  return
}

// -----

func.func @topk_groups_range(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'topk_groups' must be between 1 and 'num_groups' (4), but is 5}}
  %w, %i = moe.group_topk_route %s {k = 2 : i64, num_groups = 4 : i64, topk_groups = 5 : i64, group_score = #moe.group_score<max>} : tensor<16x8xf32>
  return
}

// -----

func.func @top2_sum_singletons(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{#moe.group_score<top2_sum> needs at least 2 experts per group, but groups have 1}}
  %w, %i = moe.group_topk_route %s {k = 2 : i64, num_groups = 8 : i64, topk_groups = 4 : i64, group_score = #moe.group_score<top2_sum>} : tensor<16x8xf32>
  return
}

// -----

func.func @group_k_exceeds_kept(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'k' must be between 1 and the experts in the kept groups (4), but is 6}}
  %w, %i = moe.group_topk_route %s {k = 6 : i64, num_groups = 4 : i64, topk_groups = 2 : i64, group_score = #moe.group_score<max>} : tensor<16x8xf32>
  return
}

// -----

func.func @group_bias(%s: tensor<16x8xf32>, %b: tensor<16xf32>) {
  // expected-error @+1 {{operand 'bias' dimension 0 (experts) must be 8 to match 'scores', but is 16}}
  %w, %i = moe.group_topk_route %s bias(%b : tensor<16xf32>) {k = 2 : i64, num_groups = 4 : i64, topk_groups = 2 : i64, group_score = #moe.group_score<max>} : tensor<16x8xf32>
  return
}

// -----

func.func @prototypes_divide(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.prototype_route' op attribute 'num_prototypes' (3) must divide the number of experts (8)}}
  %w, %i = moe.prototype_route %s {num_prototypes = 3 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @prototypes_too_many(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'num_prototypes' must be between 1 and the number of experts (8), but is 16}}
  %w, %i = moe.prototype_route %s {num_prototypes = 16 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @top_p_range(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.top_p_route' op attribute 'p' must be in (0, 1], but is 0}}
  %w, %i = moe.top_p_route %s {p = 0.0 : f32, max_k = 4 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @top_p_max_k(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'max_k' must be between 1 and the number of experts (8), but is 12}}
  %w, %i = moe.top_p_route %s {p = 0.5 : f32, max_k = 12 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @hybrid_q(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.entropy_hybrid_route' op attribute 'q' must be greater than 0, but is 0}}
  %w, %i = moe.entropy_hybrid_route %s {q = 0.0 : f32, threshold = 0.5 : f32, k = 2 : i64, p = 0.9 : f32, max_k = 4 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @hybrid_threshold(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'threshold' must be at least 0, but is -0.5}}
  %w, %i = moe.entropy_hybrid_route %s {q = 2.0 : f32, threshold = -0.5 : f32, k = 2 : i64, p = 0.9 : f32, max_k = 4 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @hybrid_p(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'p' must be in (0, 1], but is 1.5}}
  %w, %i = moe.entropy_hybrid_route %s {q = 2.0 : f32, threshold = 0.5 : f32, k = 2 : i64, p = 1.5 : f32, max_k = 4 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @hybrid_max_k(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'max_k' must be between 1 and the number of experts (8), but is 9}}
  %w, %i = moe.entropy_hybrid_route %s {q = 2.0 : f32, threshold = 0.5 : f32, k = 2 : i64, p = 0.9 : f32, max_k = 9 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @hybrid_k_above_max_k(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{attribute 'k' must be between 1 and 'max_k' (4), but is 6}}
  %w, %i = moe.entropy_hybrid_route %s {q = 2.0 : f32, threshold = 0.5 : f32, k = 6 : i64, p = 0.9 : f32, max_k = 4 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @threshold_range(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.threshold_route' op attribute 'threshold' must be in [0, 1), but is 1}}
  %w, %i = moe.threshold_route %s {threshold = 1.0 : f32, max_k = 4 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @threshold_max_k(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.threshold_route' op attribute 'max_k' must be at least 1, but is 0}}
  %w, %i = moe.threshold_route %s {threshold = 0.1 : f32, max_k = 0 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @expert_choice_capacity(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.expert_choice_route' op attribute 'capacity' must be between 1 and the number of tokens (16), but is 32}}
  %t, %g = moe.expert_choice_route %s {capacity = 32 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @expert_choice_zero_capacity(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.expert_choice_route' op attribute 'capacity' must be at least 1, but is 0}}
  %t, %g = moe.expert_choice_route %s {capacity = 0 : i64} : tensor<16x8xf32>
  return
}

// -----

func.func @bias_update_load(%b: tensor<8xf32>, %load: tensor<4xi32>) {
  // expected-error @+1 {{'moe.update_selection_bias' op operand 'load' dimension 0 (experts) must be 8 to match 'bias', but is 4}}
  %b2 = moe.update_selection_bias %b, %load {rate = 0.001 : f32} : tensor<8xf32>, tensor<4xi32>
  return
}

// -----

func.func @bias_update_rank(%b: tensor<2x8xf32>, %load: tensor<8xi32>) {
  // expected-error @+1 {{operand 'bias' must be a rank-1 tensor [experts], but has type 'tensor<2x8xf32>'}}
  %b2 = moe.update_selection_bias %b, %load {rate = 0.001 : f32} : tensor<2x8xf32>, tensor<8xi32>
  return
}

// -----

func.func @bias_update_load_rank(%b: tensor<8xf32>, %load: tensor<2x8xi32>) {
  // expected-error @+1 {{operand 'load' must be a rank-1 tensor [experts], but has type 'tensor<2x8xi32>'}}
  %b2 = moe.update_selection_bias %b, %load {rate = 0.001 : f32} : tensor<8xf32>, tensor<2x8xi32>
  return
}

// -----

func.func @bias_update_rate(%b: tensor<8xf32>, %load: tensor<8xi32>) {
  // expected-error @+1 {{attribute 'rate' must be greater than 0, but is -0.001}}
  %b2 = moe.update_selection_bias %b, %load {rate = -0.001 : f32} : tensor<8xf32>, tensor<8xi32>
  return
}

// -----

func.func @schedule_steps(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.temperature_schedule' op attribute 'steps' must be at least 1, but is 0}}
  %t = moe.temperature_schedule %step {start = 2.0 : f32, end = 0.5 : f32, steps = 0 : i64}
  return
}

// -----

func.func @schedule_end(%step: tensor<i64>) {
  // expected-error @+1 {{'moe.temperature_schedule' op attribute 'end' must be greater than 0, but is 0}}
  %t = moe.temperature_schedule %step {start = 2.0 : f32, end = 0.0 : f32, steps = 10 : i64}
  return
}
