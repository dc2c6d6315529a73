// Every verifier error of the expert compute ops.
// RUN: moe-opt %s --split-input-file --verify-diagnostics

func.func @ffn_input_rank(%x: tensor<40x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>) {
  // expected-error @+1 {{'moe.grouped_ffn' op operand 'input' must be a rank-3 tensor [experts, capacity, width] (or [rows, width] with 'group_sizes'), but has type 'tensor<40x64xf32>'}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<40x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>) -> tensor<40x64xf32>
  return
}

// -----

func.func @ffn_grouped_rank(%x: tensor<8x5x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>, %s: tensor<8xi32>) {
  // expected-error @+1 {{operand 'input' must be a rank-2 tensor [rows, width] when 'group_sizes' is given, but has type 'tensor<8x5x64xf32>'}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) group_sizes(%s) {activation = #moe.activation<relu>} : (tensor<8x5x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<8xi32>) -> tensor<8x5x64xf32>
  return
}

// -----

func.func @ffn_sizes_rank(%x: tensor<40x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>, %s: tensor<2x8xi32>) {
  // expected-error @+1 {{operand 'group_sizes' must be a rank-1 tensor [experts], but has type 'tensor<2x8xi32>'}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) group_sizes(%s) {activation = #moe.activation<relu>} : (tensor<40x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<2x8xi32>) -> tensor<40x64xf32>
  return
}

// -----

func.func @ffn_w1_rank(%x: tensor<8x5x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<8x64x128xf32>) {
  // expected-error @+1 {{operand 'w1' must be a rank-3 tensor [experts, ffn width, model width], but has type 'tensor<128x64xf32>'}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<8x5x64xf32>, tensor<128x64xf32>, tensor<8x64x128xf32>) -> tensor<8x5x64xf32>
  return
}

// -----

func.func @ffn_w1_experts(%x: tensor<8x5x64xf32>, %w1: tensor<4x128x64xf32>, %w2: tensor<8x64x128xf32>) {
  // expected-error @+1 {{'moe.grouped_ffn' op operand 'w1' dimension 0 (experts) must be 8 to match the number of experts, but is 4}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<8x5x64xf32>, tensor<4x128x64xf32>, tensor<8x64x128xf32>) -> tensor<8x5x64xf32>
  return
}

// -----

func.func @ffn_w1_width(%x: tensor<8x5x64xf32>, %w1: tensor<8x128x32xf32>, %w2: tensor<8x64x128xf32>) {
  // expected-error @+1 {{'moe.grouped_ffn' op operand 'w1' dimension 2 (model width) must be 64 to match 'input', but is 32}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<8x5x64xf32>, tensor<8x128x32xf32>, tensor<8x64x128xf32>) -> tensor<8x5x64xf32>
  return
}

// -----

func.func @ffn_w2_shape(%x: tensor<8x5x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x128x64xf32>) {
  // expected-error @+1 {{'moe.grouped_ffn' op operand 'w2' must have shape [8, 64, 128] (the transpose of 'w1'), but has shape [8, 128, 64]}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<8x5x64xf32>, tensor<8x128x64xf32>, tensor<8x128x64xf32>) -> tensor<8x5x64xf32>
  return
}

// -----

func.func @ffn_w2_rank(%x: tensor<8x5x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<64x128xf32>) {
  // expected-error @+1 {{operand 'w2' must be a rank-3 tensor [experts, model width, ffn width], but has type 'tensor<64x128xf32>'}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<8x5x64xf32>, tensor<8x128x64xf32>, tensor<64x128xf32>) -> tensor<8x5x64xf32>
  return
}

// -----

func.func @ffn_w3_shape(%x: tensor<8x5x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>, %w3: tensor<8x96x64xf32>) {
  // expected-error @+1 {{'moe.grouped_ffn' op operand 'w3' must have shape [8, 128, 64] (the shape of 'w1'), but has shape [8, 96, 64]}}
  %y = moe.grouped_ffn %x weights(%w1, %w2, %w3) {activation = #moe.activation<silu>} : (tensor<8x5x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<8x96x64xf32>) -> tensor<8x5x64xf32>
  return
}

// -----

func.func @ffn_group_experts(%x: tensor<40x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>, %s: tensor<4xi32>) {
  // expected-error @+1 {{'moe.grouped_ffn' op operand 'w1' dimension 0 (experts) must be 4 to match the number of experts, but is 8}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) group_sizes(%s) {activation = #moe.activation<relu>} : (tensor<40x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<4xi32>) -> tensor<40x64xf32>
  return
}

// -----

func.func @ffn_result(%x: tensor<8x5x64xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>) {
  // expected-error @+2 {{'moe.grouped_ffn' op inferred type(s) 'tensor<8x5x64xf32>' are incompatible with return type(s) of operation 'tensor<8x5x128xf32>'}}
  // expected-error @+1 {{'moe.grouped_ffn' op failed to infer returned types}}
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<relu>} : (tensor<8x5x64xf32>, tensor<8x128x64xf32>, tensor<8x64x128xf32>) -> tensor<8x5x128xf32>
  return
}

// -----

func.func @shared_input_rank(%x: tensor<2x16x64xf32>, %w1: tensor<96x64xf32>, %w2: tensor<64x96xf32>) {
  // expected-error @+1 {{'moe.shared_experts' op operand 'input' must be a rank-2 tensor [tokens, width], but has type 'tensor<2x16x64xf32>'}}
  %y = moe.shared_experts %x weights(%w1, %w2) {num_shared = 2 : i64, activation = #moe.activation<relu>} : (tensor<2x16x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @shared_divide(%x: tensor<16x64xf32>, %w1: tensor<96x64xf32>, %w2: tensor<64x96xf32>) {
  // expected-error @+1 {{'moe.shared_experts' op attribute 'num_shared' (5) must divide the shared FFN width (96)}}
  %y = moe.shared_experts %x weights(%w1, %w2) {num_shared = 5 : i64, activation = #moe.activation<relu>} : (tensor<16x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @shared_count(%x: tensor<16x64xf32>, %w1: tensor<96x64xf32>, %w2: tensor<64x96xf32>) {
  // expected-error @+1 {{attribute 'num_shared' must be at least 1, but is 0}}
  %y = moe.shared_experts %x weights(%w1, %w2) {num_shared = 0 : i64, activation = #moe.activation<relu>} : (tensor<16x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @shared_weights(%x: tensor<16x64xf32>, %w1: tensor<96x32xf32>, %w2: tensor<64x96xf32>) {
  // expected-error @+1 {{'moe.shared_experts' op operand 'w1' dimension 1 (model width) must be 64 to match 'input', but is 32}}
  %y = moe.shared_experts %x weights(%w1, %w2) {num_shared = 1 : i64, activation = #moe.activation<relu>} : (tensor<16x64xf32>, tensor<96x32xf32>, tensor<64x96xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @shared_gate(%x: tensor<16x64xf32>, %w1: tensor<96x64xf32>, %w2: tensor<64x96xf32>, %g: tensor<2x64xf32>) {
  // expected-error @+1 {{'moe.shared_experts' op operand 'sigmoid_gate' must have shape [1, 64] (one gate weight per model width), but has shape [2, 64]}}
  %y = moe.shared_experts %x weights(%w1, %w2) sigmoid_gate(%g) {num_shared = 1 : i64, activation = #moe.activation<silu>} : (tensor<16x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>, tensor<2x64xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @shared_gate_rank(%x: tensor<16x64xf32>, %w1: tensor<96x64xf32>, %w2: tensor<64x96xf32>, %g: tensor<64xf32>) {
  // expected-error @+1 {{operand 'sigmoid_gate' must be a rank-2 tensor [1, width], but has type 'tensor<64xf32>'}}
  %y = moe.shared_experts %x weights(%w1, %w2) sigmoid_gate(%g) {num_shared = 1 : i64, activation = #moe.activation<silu>} : (tensor<16x64xf32>, tensor<96x64xf32>, tensor<64x96xf32>, tensor<64xf32>) -> tensor<16x64xf32>
  return
}

// -----

func.func @lora_base_count(%x: tensor<4x8x64xf32>, %w1: tensor<128x64xf32>) {
  // expected-error @+1 {{'moe.lora_experts' op 'base' must be (w1, w2) or (w1, w2, w3), but has 1 operands}}
  %y = moe.lora_experts %x base(%w1) adapters() {alpha = 16.0 : f32, activation = #moe.activation<gelu>} : (tensor<4x8x64xf32>, tensor<128x64xf32>) -> tensor<4x8x64xf32>
  return
}

// -----

func.func @lora_adapter_count(%x: tensor<4x8x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %a1: tensor<4x8x64xf32>, %b1: tensor<4x128x8xf32>) {
  // expected-error @+1 {{'moe.lora_experts' op 'adapters' must hold an (A, B) pair per base projection: 4 operands, but has 2}}
  %y = moe.lora_experts %x base(%w1, %w2) adapters(%a1, %b1) {alpha = 16.0 : f32, activation = #moe.activation<gelu>} : (tensor<4x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>) -> tensor<4x8x64xf32>
  return
}

// -----

func.func @lora_alpha(%x: tensor<4x8x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %a1: tensor<4x8x64xf32>, %b1: tensor<4x128x8xf32>, %a2: tensor<4x8x128xf32>, %b2: tensor<4x64x8xf32>) {
  // expected-error @+1 {{'moe.lora_experts' op attribute 'alpha' must be greater than 0, but is 0}}
  %y = moe.lora_experts %x base(%w1, %w2) adapters(%a1, %b1, %a2, %b2) {alpha = 0.0 : f32, activation = #moe.activation<gelu>} : (tensor<4x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x128xf32>, tensor<4x64x8xf32>) -> tensor<4x8x64xf32>
  return
}

// -----

func.func @lora_adapter_shape(%x: tensor<4x8x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %a1: tensor<4x8x64xf32>, %b1: tensor<4x128x8xf32>, %a2: tensor<4x8x64xf32>, %b2: tensor<4x64x8xf32>) {
  // expected-error @+1 {{'moe.lora_experts' op operand 'A2' must have shape [4, 8, 128] ([experts, rank, in] for A, [experts, out, rank] for B), but has shape [4, 8, 64]}}
  %y = moe.lora_experts %x base(%w1, %w2) adapters(%a1, %b1, %a2, %b2) {alpha = 16.0 : f32, activation = #moe.activation<gelu>} : (tensor<4x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x64xf32>, tensor<4x64x8xf32>) -> tensor<4x8x64xf32>
  return
}

// -----

func.func @lora_rank_mismatch(%x: tensor<4x8x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %a1: tensor<4x8x64xf32>, %b1: tensor<4x128x4xf32>, %a2: tensor<4x8x128xf32>, %b2: tensor<4x64x8xf32>) {
  // expected-error @+1 {{'moe.lora_experts' op operand 'B1' must have shape [4, 128, 8] ([experts, rank, in] for A, [experts, out, rank] for B), but has shape [4, 128, 4]}}
  %y = moe.lora_experts %x base(%w1, %w2) adapters(%a1, %b1, %a2, %b2) {alpha = 16.0 : f32, activation = #moe.activation<gelu>} : (tensor<4x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<4x8x64xf32>, tensor<4x128x4xf32>, tensor<4x8x128xf32>, tensor<4x64x8xf32>) -> tensor<4x8x64xf32>
  return
}

// -----

func.func @lora_a1_rank(%x: tensor<4x8x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %a1: tensor<8x64xf32>, %b1: tensor<4x128x8xf32>, %a2: tensor<4x8x128xf32>, %b2: tensor<4x64x8xf32>) {
  // expected-error @+1 {{operand 'A1' must be a rank-3 tensor [experts, rank, in], but has type 'tensor<8x64xf32>'}}
  %y = moe.lora_experts %x base(%w1, %w2) adapters(%a1, %b1, %a2, %b2) {alpha = 16.0 : f32, activation = #moe.activation<gelu>} : (tensor<4x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x128xf32>, tensor<4x64x8xf32>) -> tensor<4x8x64xf32>
  return
}

// -----

func.func @lora_experts_mismatch(%x: tensor<2x8x64xf32>, %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %a1: tensor<4x8x64xf32>, %b1: tensor<4x128x8xf32>, %a2: tensor<4x8x128xf32>, %b2: tensor<4x64x8xf32>) {
  // expected-error @+1 {{'moe.lora_experts' op operand 'A1' must have shape [2, 8, 64] ([experts, rank, in] for A, [experts, out, rank] for B), but has shape [4, 8, 64]}}
  %y = moe.lora_experts %x base(%w1, %w2) adapters(%a1, %b1, %a2, %b2) {alpha = 16.0 : f32, activation = #moe.activation<gelu>} : (tensor<2x8x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x128xf32>, tensor<4x64x8xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @ffn_down_gated_width(%h: tensor<32x12xf32>, %w2: tensor<4x8x12xf32>, %sizes: tensor<4xi32>) {
  // expected-error @+1 {{'moe.grouped_ffn_down' op hidden rows have 12 columns, but a gated FFN of width 12 (w2's last dimension) needs 24}}
  %y = moe.grouped_ffn_down %h weights(%w2) group_sizes(%sizes) {activation = #moe.activation<silu>, gated} : (tensor<32x12xf32>, tensor<4x8x12xf32>, tensor<4xi32>) -> tensor<32x8xf32>
  return
}
