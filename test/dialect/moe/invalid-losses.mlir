// Every verifier error of the loss ops.
// RUN: moe-opt %s --split-input-file --verify-diagnostics

func.func @balance_scores_rank(%s: tensor<16xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.load_balancing_loss' op operand 'scores' must be a rank-2 tensor [tokens, experts], but has type 'tensor<16xf32>'}}
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<16xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @balance_indices_rank(%s: tensor<16x8xf32>, %i: tensor<16xi32>) {
  // expected-error @+1 {{operand 'indices' must be a rank-2 tensor [tokens, experts per token], but has type 'tensor<16xi32>'}}
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>} : tensor<16x8xf32>, tensor<16xi32>
  return
}

// -----

func.func @balance_tokens(%s: tensor<16x8xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{'moe.load_balancing_loss' op operand 'indices' dimension 0 (tokens) must be 16 to match 'scores', but is 8}}
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<per_slot>} : tensor<16x8xf32>, tensor<8x2xi32>
  return
}

// -----

func.func @balance_stray_seq_len(%s: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.load_balancing_loss' op attribute 'seq_len' applies only to #moe.balance<sequence>}}
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<switch>, seq_len = 8 : i64} : tensor<16x8xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @balance_missing_seq_len(%s: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.load_balancing_loss' op #moe.balance<sequence> needs attribute 'seq_len'}}
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<sequence>} : tensor<16x8xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @balance_seq_len_positive(%s: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{attribute 'seq_len' must be at least 1, but is 0}}
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<sequence>, seq_len = 0 : i64} : tensor<16x8xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @balance_seq_len_divides(%s: tensor<16x8xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.load_balancing_loss' op attribute 'seq_len' (5) must divide the number of tokens (16)}}
  %a = moe.load_balancing_loss %s, %i {kind = #moe.balance<sequence>, seq_len = 5 : i64} : tensor<16x8xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @z_loss_rank(%l: tensor<2x16x8xf32>) {
  // expected-error @+1 {{'moe.z_loss' op operand 'logits' must be a rank-2 tensor [tokens, experts], but has type 'tensor<2x16x8xf32>'}}
  %z = moe.z_loss %l : tensor<2x16x8xf32>
  return
}

// -----

func.func @entropy_q(%s: tensor<16x8xf32>) {
  // expected-error @+1 {{'moe.entropy_loss' op attribute 'q' must be greater than 0, but is -1}}
  %h = moe.entropy_loss %s {q = -1.0 : f32} : tensor<16x8xf32>
  return
}

// -----

func.func @entropy_rank(%s: tensor<8xf32>) {
  // expected-error @+1 {{'moe.entropy_loss' op operand 'scores' must be a rank-2 tensor [tokens, experts], but has type 'tensor<8xf32>'}}
  %h = moe.entropy_loss %s : tensor<8xf32>
  return
}

// -----

func.func @sum_empty() {
  // expected-error @+1 {{'moe.weighted_sum' op needs at least one term}}
  %t = moe.weighted_sum {coefficients = array<f32>}
  return
}

// -----

func.func @sum_coefficients(%a: tensor<f32>, %b: tensor<f32>) {
  // expected-error @+1 {{'moe.weighted_sum' op attribute 'coefficients' must have one entry per term (2), but has 3}}
  %t = moe.weighted_sum %a, %b {coefficients = array<f32: 1.0, 0.1, 0.01>}
  return
}

// -----

func.func @sum_scalar_terms(%a: tensor<1xf32>) {
  // expected-error @+1 {{'moe.weighted_sum' op operand #0 must be variadic of 0-D tensor of f32, but got 'tensor<1xf32>'}}
  %t = "moe.weighted_sum"(%a) {coefficients = array<f32: 1.0>} : (tensor<1xf32>) -> tensor<f32>
  return
}
