// Every verifier error of the dense transformer ops.
// RUN: moe-opt %s --split-input-file --verify-diagnostics

func.func @embedding_table(%t: tensor<256xf32>, %tok: tensor<2x8xi32>) {
  // expected-error @+1 {{'moe.embedding' op operand 'table' must be a rank-2 tensor [vocabulary, width], but has type 'tensor<256xf32>'}}
  %h = moe.embedding %t, %tok : tensor<256xf32>, tensor<2x8xi32>
  return
}

// -----

func.func @embedding_tokens(%t: tensor<256x64xf32>, %tok: tensor<i32>) {
  // expected-error @+1 {{'moe.embedding' op operand 'tokens' must have rank at least 1 (token shape), but has type 'tensor<i32>'}}
  %h = moe.embedding %t, %tok : tensor<256x64xf32>, tensor<i32>
  return
}

// -----

func.func @rms_weight(%x: tensor<2x8x64xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op operand 'weight' dimension 0 (features) must be 64 to match the last dimension of 'input', but is 32}}
  %n = moe.rms_norm %x, %g : tensor<2x8x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @rms_weight_rank(%x: tensor<2x8x64xf32>, %g: tensor<1x64xf32>) {
  // expected-error @+1 {{operand 'weight' must be a rank-1 tensor [features], but has type 'tensor<1x64xf32>'}}
  %n = moe.rms_norm %x, %g : tensor<2x8x64xf32>, tensor<1x64xf32>
  return
}

// -----

func.func @rms_eps(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op attribute 'eps' must be greater than 0, but is -1e-06}}
  %n = moe.rms_norm %x, %g {eps = -1.0e-6 : f32} : tensor<2x8x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @rms_scalar(%x: tensor<f32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op operand 'input' must have rank at least 1 [..., features], but has type 'tensor<f32>'}}
  %n = moe.rms_norm %x, %g : tensor<f32>, tensor<64xf32>
  return
}

// -----

func.func @layer_norm_bias(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>, %b: tensor<63xf32>) {
  // expected-error @+1 {{'moe.layer_norm' op operand 'bias' dimension 0 (features) must be 64 to match the last dimension of 'input', but is 63}}
  %n = moe.layer_norm %x, %g, %b : tensor<2x8x64xf32>, tensor<64xf32>, tensor<63xf32>
  return
}

// -----

func.func @linear_in(%x: tensor<2x8x64xf32>, %w: tensor<32x48xf32>) {
  // expected-error @+1 {{'moe.linear' op operand 'weight' dimension 1 (in features) must be 64 to match the last dimension of 'input', but is 48}}
  %y = moe.linear %x, %w : tensor<2x8x64xf32>, tensor<32x48xf32>
  return
}

// -----

func.func @linear_weight_rank(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'moe.linear' op operand 'weight' must be a rank-2 tensor [out features, in features], but has type 'tensor<64xf32>'}}
  %y = moe.linear %x, %w : tensor<2x8x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @linear_input_rank(%x: tensor<f32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{'moe.linear' op operand 'input' must have rank at least 1 [..., in features], but has type 'tensor<f32>'}}
  %y = moe.linear %x, %w : tensor<f32>, tensor<32x64xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<2x8x64xf32>, %w: tensor<32x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{'moe.linear' op operand 'bias' dimension 0 (out features) must be 32 to match 'weight', but is 64}}
  %y = moe.linear %x, %w, %b : tensor<2x8x64xf32>, tensor<32x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @linear_bias_rank(%x: tensor<2x8x64xf32>, %w: tensor<32x64xf32>, %b: tensor<1x32xf32>) {
  // expected-error @+1 {{operand 'bias' must be a rank-1 tensor [out features], but has type 'tensor<1x32xf32>'}}
  %y = moe.linear %x, %w, %b : tensor<2x8x64xf32>, tensor<32x64xf32>, tensor<1x32xf32>
  return
}

// -----

func.func @ffn_w2(%x: tensor<2x8x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x96xf32>) {
  // expected-error @+1 {{'moe.ffn' op operand 'w2' must have shape [64, 128] (the transpose of 'w1'), but has shape [64, 96]}}
  %y = moe.ffn %x weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<2x8x64xf32>, tensor<128x64xf32>, tensor<64x96xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @ffn_input(%x: tensor<f32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>) {
  // expected-error @+1 {{'moe.ffn' op operand 'input' must have rank at least 1 [..., width], but has type 'tensor<f32>'}}
  %y = moe.ffn %x weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<f32>, tensor<128x64xf32>, tensor<64x128xf32>) -> tensor<f32>
  return
}

// -----

func.func @rope_rank(%x: tensor<2x8x64xf32>) {
  // expected-error @+1 {{'moe.rope' op operand 'input' must be a rank-4 tensor [batch, sequence, heads, head dim], but has type 'tensor<2x8x64xf32>'}}
  %y = moe.rope %x : tensor<2x8x64xf32>
  return
}

// -----

func.func @rope_odd(%x: tensor<2x8x4x15xf32>) {
  // expected-error @+1 {{'moe.rope' op operand 'input' head dimension must be even for RoPE, but is 15}}
  %y = moe.rope %x : tensor<2x8x4x15xf32>
  return
}

// -----

func.func @rope_theta(%x: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{'moe.rope' op attribute 'theta' must be greater than 0, but is 0}}
  %y = moe.rope %x {theta = 0.0 : f32} : tensor<2x8x4x16xf32>
  return
}

// -----

func.func @attention_rank(%q: tensor<2x8x64xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'moe.attention' op operand 'query' must be a rank-4 tensor [batch, sequence, heads, head dim], but has type 'tensor<2x8x64xf32>'}}
  %o = "moe.attention"(%q, %k, %k) : (tensor<2x8x64xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @attention_key_rank(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x32xf32>) {
  // expected-error @+1 {{'moe.attention' op operand 'key' must be a rank-4 tensor [batch, sequence, heads, head dim], but has type 'tensor<2x8x32xf32>'}}
  %o = moe.attention %q, %k, %k : tensor<2x8x4x16xf32>, tensor<2x8x32xf32>, tensor<2x8x32xf32>
  return
}

// -----

func.func @attention_gqa(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x3x16xf32>) {
  // expected-error @+1 {{'moe.attention' op key/value heads (3) must divide query heads (4) for grouped-query attention}}
  %o = moe.attention %q, %k, %k : tensor<2x8x4x16xf32>, tensor<2x8x3x16xf32>, tensor<2x8x3x16xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x32xf32>) {
  // expected-error @+1 {{'moe.attention' op operand 'key' dimension 3 (head dim) must be 16 to match 'query', but is 32}}
  %o = moe.attention %q, %k, %k : tensor<2x8x4x16xf32>, tensor<2x8x2x32xf32>, tensor<2x8x2x32xf32>
  return
}

// -----

func.func @attention_sequence(%q: tensor<2x8x4x16xf32>, %k: tensor<2x4x2x16xf32>) {
  // expected-error @+1 {{'moe.attention' op operand 'key' dimension 1 (sequence) must be 8 to match 'query', but is 4}}
  %o = moe.attention %q, %k, %k : tensor<2x8x4x16xf32>, tensor<2x4x2x16xf32>, tensor<2x4x2x16xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<2x8x4x16xf32>, %k: tensor<1x8x2x16xf32>) {
  // expected-error @+1 {{'moe.attention' op operand 'key' dimension 0 (batch) must be 2 to match 'query', but is 1}}
  %o = moe.attention %q, %k, %k : tensor<2x8x4x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>
  return
}

// -----

func.func @attention_dtype(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xbf16>) {
  // expected-error @+1 {{'moe.attention' op operand 'key' element type must be 'f32' as 'query', but is 'bf16'}}
  %o = moe.attention %q, %k, %k : tensor<2x8x4x16xf32>, tensor<2x8x2x16xbf16>, tensor<2x8x2x16xbf16>
  return
}

// -----

func.func @attention_value(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x1x8xf32>) {
  // expected-error @+1 {{'moe.attention' op operand 'value' dimension 2 (heads) must be 2 to match 'key', but is 1}}
  %o = "moe.attention"(%q, %k, %v) : (tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x1x8xf32>) -> tensor<2x8x4x8xf32>
  return
}

// -----

func.func @attention_scale(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'moe.attention' op attribute 'scale' must be greater than 0, but is 0}}
  %o = moe.attention %q, %k, %k {scale = 0.0 : f32} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @cross_entropy_targets(%l: tensor<2x8x256xf32>, %t: tensor<2x4xi32>) {
  // expected-error @+1 {{'moe.cross_entropy' op operand 'targets' must have shape [2, 8] (the shape of 'logits' without the vocabulary), but has shape [2, 4]}}
  %ce = moe.cross_entropy %l, %t : tensor<2x8x256xf32>, tensor<2x4xi32>
  return
}

// -----

func.func @cross_entropy_rank(%l: tensor<f32>, %t: tensor<i32>) {
  // expected-error @+1 {{'moe.cross_entropy' op operand 'logits' must have rank at least 1 [..., vocabulary], but has type 'tensor<f32>'}}
  %ce = moe.cross_entropy %l, %t : tensor<f32>, tensor<i32>
  return
}

// -----

func.func @add_types(%a: tensor<2x8x64xf32>, %b: tensor<2x8x64xbf16>) {
  // expected-error @+1 {{'moe.add' op requires the same type for all operands and results}}
  %r = "moe.add"(%a, %b) : (tensor<2x8x64xf32>, tensor<2x8x64xbf16>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @broadcast_rank(%x: tensor<2x8x1x8xf32>) {
  // expected-error @+1 {{'moe.broadcast' op result must have the rank of 'input' (4), but has rank 3}}
  %b = moe.broadcast %x : tensor<2x8x1x8xf32> to tensor<2x8x8xf32>
  return
}

// -----

func.func @broadcast_extent(%x: tensor<2x8x2x8xf32>) {
  // expected-error @+1 {{'moe.broadcast' op operand 'input' dimension 2 is 2: it must be 1 (repeated) or the result's, 4}}
  %b = moe.broadcast %x : tensor<2x8x2x8xf32> to tensor<2x8x4x8xf32>
  return
}

// -----

func.func @attention_window(%q: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{'moe.attention' op attribute 'window' must be at least 1, but is 0}}
  %o = moe.attention %q, %q, %q {causal, window = 0 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>
  return
}

// -----

func.func @attention_window_causal(%q: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{'moe.attention' op a 'window' needs causal attention}}
  %o = moe.attention %q, %q, %q {window = 4 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>
  return
}

// -----

func.func @attention_sinks_heads(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>, %s: tensor<2xf32>) {
  // expected-error @+1 {{'moe.attention' op operand 'sinks' dimension 0 (query heads) must be 4 to match 'query' dimension 2, but is 2}}
  %o = moe.attention %q, %k, %v sinks(%s) {causal} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2xf32>
  return
}

// -----

func.func @transpose_not_a_permutation(%x: tensor<2x3x4xf32>) {
  // expected-error @+1 {{'moe.transpose' op permutation [0, 2, 2] is not a permutation of 0..2}}
  %t = moe.transpose %x [0, 2, 2] : tensor<2x3x4xf32> to tensor<2x4x4xf32>
  return
}

// -----

func.func @transpose_shape(%x: tensor<2x3x4xf32>) {
  // expected-error @+1 {{'moe.transpose' op result dimension 1 is 3, but input dimension 2 is 4}}
  %t = moe.transpose %x [0, 2, 1] : tensor<2x3x4xf32> to tensor<2x3x4xf32>
  return
}

// -----

func.func @clamped_swiglu_odd(%x: tensor<4x7xf32>) {
  // expected-error @+1 {{'moe.clamped_swiglu' op input's last dimension interleaves gate and up: it must be even, but is 7}}
  %a = moe.clamped_swiglu %x {alpha = 1.702 : f32, limit = 7.0 : f32} : tensor<4x7xf32> to tensor<4x3xf32>
  return
}

// -----

func.func @clamped_swiglu_result(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.clamped_swiglu' op result must be 'tensor<4x4xf32>' (half the input's last dimension), but is 'tensor<4x8xf32>'}}
  %a = moe.clamped_swiglu %x {alpha = 1.702 : f32, limit = 7.0 : f32} : tensor<4x8xf32> to tensor<4x8xf32>
  return
}

// -----

func.func @clamped_swiglu_limit(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.clamped_swiglu' op attribute 'limit'}}
  %a = moe.clamped_swiglu %x {alpha = 1.702 : f32, limit = 0.0 : f32} : tensor<4x8xf32> to tensor<4x4xf32>
  return
}

// -----

func.func @attention_chunk_and_window(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'moe.attention' op takes a 'window' or a 'chunk', not both}}
  %o = moe.attention %q, %k, %v {causal, chunk = 4 : i64, window = 2 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @attention_chunk_not_causal(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'moe.attention' op a 'chunk' needs causal attention}}
  %o = moe.attention %q, %k, %v {chunk = 4 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @attention_temperature_half(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'moe.attention' op 'temperature_floor' and 'temperature_scale' go together}}
  %o = moe.attention %q, %k, %v {causal, temperature_floor = 4 : i64} : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @conv_channels(%x: tensor<2x8x40xf32>, %w: tensor<32x4xf32>) {
  // expected-error @+1 {{'moe.causal_conv1d' op operand 'weight' dimension 0 (channels) must be 40 to match the last dimension of 'input', but is 32}}
  %c = moe.causal_conv1d %x, %w : tensor<2x8x40xf32>, tensor<32x4xf32>
  return
}

// -----

func.func @decay_heads(%a: tensor<2x8x4xf32>, %alog: tensor<3xf32>, %dt: tensor<4xf32>) {
  // expected-error @+1 {{'moe.delta_decay' op operand 'a_log' dimension 0 (heads) must be 4 to match the last dimension of 'input', but is 3}}
  %g = moe.delta_decay %a, %alog, %dt : tensor<2x8x4xf32>, tensor<3xf32>, tensor<4xf32>
  return
}

// -----

func.func @delta_rule_heads(%q: tensor<2x8x3x8xf32>, %v: tensor<2x8x4x6xf32>, %g: tensor<2x8x4xf32>) {
  // expected-error @+1 {{'moe.gated_delta_rule' op query/key heads (3) must divide value heads (4)}}
  %o = moe.gated_delta_rule %q, %q, %v, %g, %g : tensor<2x8x3x8xf32>, tensor<2x8x3x8xf32>, tensor<2x8x4x6xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
  return
}

// -----

func.func @delta_rule_beta(%q: tensor<2x8x2x8xf32>, %v: tensor<2x8x4x6xf32>, %g: tensor<2x8x4xf32>, %b: tensor<2x7x4xf32>) {
  // expected-error @+1 {{'moe.gated_delta_rule' op operand 'beta' dimension 1 (sequence) must be 8 to match 'value', but is 7}}
  %o = moe.gated_delta_rule %q, %q, %v, %g, %b : tensor<2x8x2x8xf32>, tensor<2x8x2x8xf32>, tensor<2x8x4x6xf32>, tensor<2x8x4xf32>, tensor<2x7x4xf32>
  return
}

// -----

func.func @delta_rule_eps(%q: tensor<2x8x2x8xf32>, %v: tensor<2x8x4x6xf32>, %g: tensor<2x8x4xf32>) {
  // expected-error @+1 {{'moe.gated_delta_rule' op attribute 'qk_l2norm_eps' must be greater than 0, but is 0}}
  %o = moe.gated_delta_rule %q, %q, %v, %g, %g {qk_l2norm_eps = 0.0 : f32} : tensor<2x8x2x8xf32>, tensor<2x8x2x8xf32>, tensor<2x8x4x6xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
  return
}

// -----

func.func @lightning_rates(%q: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'moe.lightning_attention' op attribute 'decay' has 3 rates for 2 heads}}
  %o = moe.lightning_attention %q, %q, %q {decay = array<f32: 0.5, 0.25, 0.1>} : tensor<2x8x2x16xf32>
  return
}

// -----

func.func @lightning_negative(%q: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'moe.lightning_attention' op attribute 'decay' holds slope rates, each finite and at least 0, but one is -5.000000e-01}}
  %o = moe.lightning_attention %q, %q, %q {decay = array<f32: -0.5, 0.25>} : tensor<2x8x2x16xf32>
  return
}
