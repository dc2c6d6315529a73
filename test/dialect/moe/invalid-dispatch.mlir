// Every verifier error of slot assignment, dispatch and combine.
// RUN: moe-opt %s --split-input-file --verify-diagnostics

func.func @assign_weights_rank(%w: tensor<16xf32>, %i: tensor<16xi32>) {
  // expected-error @+1 {{'moe.assign_slots' op operand 'weights' must be a rank-2 tensor [tokens, experts per token], but has type 'tensor<16xf32>'}}
  %t, %g, %l = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 4 : i64} : tensor<16xf32>, tensor<16xi32>
  return
}

// -----

func.func @assign_indices_rank(%w: tensor<16x2xf32>, %i: tensor<32xi32>) {
  // expected-error @+1 {{operand 'indices' must be a rank-2 tensor [tokens, experts per token], but has type 'tensor<32xi32>'}}
  %t, %g, %l = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 4 : i64} : tensor<16x2xf32>, tensor<32xi32>
  return
}

// -----

func.func @assign_mismatch(%w: tensor<16x2xf32>, %i: tensor<16x1xi32>) {
  // expected-error @+1 {{'moe.assign_slots' op operand 'indices' must have shape [16, 2] (the shape of 'weights'), but has shape [16, 1]}}
  %t, %g, %l = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 4 : i64} : tensor<16x2xf32>, tensor<16x1xi32>
  return
}

// -----

func.func @assign_missing_experts(%w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.assign_slots' op requires attribute 'num_experts'}}
  %t, %g, %l = moe.assign_slots %w, %i {capacity = 4 : i64} : tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @assign_capacity(%w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.assign_slots' op attribute 'capacity' must be at least 1, but is 0}}
  %t, %g, %l = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 0 : i64} : tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @assign_capacity_type(%w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.assign_slots' op attribute 'capacity' must be an i64 integer, but is 1.250000e+00 : f32}}
  %t, %g, %l = moe.assign_slots %w, %i {num_experts = 8 : i64, capacity = 1.25 : f32} : tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @sort_experts(%w: tensor<16x2xf32>, %i: tensor<16x2xi32>) {
  // expected-error @+1 {{'moe.sort_by_expert' op attribute 'num_experts' must be at least 1, but is -8}}
  %t, %g, %s = moe.sort_by_expert %w, %i {num_experts = -8 : i64} : tensor<16x2xf32>, tensor<16x2xi32>
  return
}

// -----

func.func @sort_mismatch(%w: tensor<16x2xf32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{'moe.sort_by_expert' op operand 'indices' must have shape [16, 2] (the shape of 'weights'), but has shape [8, 2]}}
  %t, %g, %s = moe.sort_by_expert %w, %i {num_experts = 8 : i64} : tensor<16x2xf32>, tensor<8x2xi32>
  return
}

// -----

func.func @dispatch_input_rank(%x: tensor<2x16x64xf32>, %t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.dispatch' op operand 'input' must be a rank-2 tensor [tokens, width], but has type 'tensor<2x16x64xf32>'}}
  %xe = moe.dispatch %x, %t : tensor<2x16x64xf32>, tensor<8x4xi32>
  return
}

// -----

func.func @dispatch_slots_rank(%x: tensor<16x64xf32>, %t: tensor<i32>) {
  // expected-error @+1 {{'moe.dispatch' op operand 'slot_tokens' must have rank at least 1 (slot shape), but has type 'tensor<i32>'}}
  %xe = moe.dispatch %x, %t : tensor<16x64xf32>, tensor<i32>
  return
}

// -----

func.func @combine_gates(%ye: tensor<8x4x64xf32>, %g: tensor<8x5xf32>, %t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.combine' op operand 'slot_gates' must have shape [8, 4] (the shape of 'slot_tokens'), but has shape [8, 5]}}
  %y = moe.combine %ye, %g, %t : tensor<8x4x64xf32>, tensor<8x5xf32>, tensor<8x4xi32> -> tensor<16x64xf32>
  return
}

// -----

func.func @combine_outputs(%ye: tensor<8x5x64xf32>, %g: tensor<8x4xf32>, %t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.combine' op operand 'expert_outputs' must have shape [8, 4, 64] (slot shape × result width), but has shape [8, 5, 64]}}
  %y = moe.combine %ye, %g, %t : tensor<8x5x64xf32>, tensor<8x4xf32>, tensor<8x4xi32> -> tensor<16x64xf32>
  return
}

// -----

func.func @combine_width(%ye: tensor<8x4x32xf32>, %g: tensor<8x4xf32>, %t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.combine' op operand 'expert_outputs' must have shape [8, 4, 64] (slot shape × result width), but has shape [8, 4, 32]}}
  %y = moe.combine %ye, %g, %t : tensor<8x4x32xf32>, tensor<8x4xf32>, tensor<8x4xi32> -> tensor<16x64xf32>
  return
}

// -----

func.func @combine_result_rank(%ye: tensor<8x4x64xf32>, %g: tensor<8x4xf32>, %t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.combine' op result must be a rank-2 tensor [tokens, width], but has type 'tensor<2x8x64xf32>'}}
  %y = moe.combine %ye, %g, %t : tensor<8x4x64xf32>, tensor<8x4xf32>, tensor<8x4xi32> -> tensor<2x8x64xf32>
  return
}

// -----

// bf16 expert outputs may sum into fp32; nothing else changes type.
func.func @combine_element_type(%ye: tensor<8x4x64xf32>, %g: tensor<8x4xf32>, %t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.combine' op result element type must be 'f32' as 'expert_outputs' (or f32 for bf16 ones), but is 'bf16'}}
  %y = moe.combine %ye, %g, %t : tensor<8x4x64xf32>, tensor<8x4xf32>, tensor<8x4xi32> -> tensor<16x64xbf16>
  return
}

// -----

func.func @combine_tokens_rank(%ye: tensor<64xf32>, %g: tensor<f32>, %t: tensor<i32>) {
  // expected-error @+1 {{'moe.combine' op operand 'slot_tokens' must have rank at least 1 (slot shape), but has type 'tensor<i32>'}}
  %y = moe.combine %ye, %g, %t : tensor<64xf32>, tensor<f32>, tensor<i32> -> tensor<16x64xf32>
  return
}

// -----

func.func @stats_tokens(%t: tensor<8x4xi32>, %i: tensor<8x2xi32>) {
  // expected-error @+1 {{'moe.routing_stats' op operand 'indices' dimension 0 (tokens) must be 16 to match 'num_tokens', but is 8}}
  %l, %d = moe.routing_stats %t indices(%i : tensor<8x2xi32>) {num_experts = 8 : i64, num_tokens = 16 : i64} : tensor<8x4xi32>
  return
}

// -----

func.func @stats_num_tokens(%t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.routing_stats' op attribute 'num_tokens' must be at least 1, but is 0}}
  %l, %d = moe.routing_stats %t {num_experts = 8 : i64, num_tokens = 0 : i64} : tensor<8x4xi32>
  return
}

// -----

func.func @stats_experts(%t: tensor<8x4xi32>) {
  // expected-error @+1 {{'moe.routing_stats' op requires attribute 'num_experts'}}
  %l, %d = moe.routing_stats %t {num_tokens = 16 : i64} : tensor<8x4xi32>
  return
}

// -----

func.func @stats_slots(%t: tensor<i32>) {
  // expected-error @+1 {{'moe.routing_stats' op operand 'slot_tokens' must have rank at least 1 (slot shape), but has type 'tensor<i32>'}}
  %l, %d = moe.routing_stats %t {num_experts = 8 : i64, num_tokens = 16 : i64} : tensor<i32>
  return
}

// -----

mesh.mesh @mesh(shape = 1x2)
func.func @exchange_chunk_past_chunks(%rows: tensor<8x8xf32>, %counts: tensor<8xi32>) {
  // expected-error @+1 {{'moe.expert_exchange' op attribute 'chunk' must be between 0 and 1, but is 2}}
  %r, %s = moe.expert_exchange %rows, %counts on @mesh mesh_axes = [1] {chunk = 2 : i64, chunks = 2 : i64} : tensor<8x8xf32>, tensor<8xi32> -> tensor<16x8xf32>, tensor<2xi32>
  return
}

// -----

mesh.mesh @mesh(shape = 1x2)
func.func @return_no_chunks(%rows: tensor<16x8xf32>, %counts: tensor<8xi32>) {
  // expected-error @+1 {{'moe.expert_return' op attribute 'chunks' must be at least 1, but is 0}}
  %b = moe.expert_return %rows, %counts on @mesh mesh_axes = [1] {chunks = 0 : i64} : tensor<16x8xf32>, tensor<8xi32> -> tensor<8x8xf32>
  return
}

// -----

func.func @scale_rows_gates(%rows: tensor<8x5x64xf32>, %g: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.scale_rows' op operand 'gates'}}
  %s = moe.scale_rows %rows, %g : tensor<8x5x64xf32>, tensor<8x4xf32>
  return
}
