// RUN: moe-opt %s --moe-plan-memory --split-input-file | FileCheck %s
// RUN: moe-opt %s --moe-plan-memory=alignment=16 --split-input-file | FileCheck %s --check-prefix=ALIGN16

// Tensors that are dead share bytes; live ones do not.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: moe.arena_size = 128
func.func @chain(%a: tensor<4x4xf32>, %b: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // CHECK: %[[X:.+]] = moe.add {{.*}} {moe.offsets = array<i64: 0>}
  %x = moe.add %a, %b : tensor<4x4xf32>
  // CHECK: %[[Y:.+]] = moe.add %[[X]], {{.*}} {moe.offsets = array<i64: 64>}
  %y = moe.add %x, %b : tensor<4x4xf32>
  // %x is dead here, so %z reuses its bytes.
  // CHECK: moe.add %[[Y]], {{.*}} {moe.offsets = array<i64: 0>}
  %z = moe.add %y, %b : tensor<4x4xf32>
  return %z : tensor<4x4xf32>
}

// -----

// Returned tensors live to the end; reshapes are views of their source.
// CHECK-LABEL: func.func @views_and_results
// CHECK-SAME: moe.arena_size = 192
func.func @views_and_results(%a: tensor<2x8xf32>, %b: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {
  // CHECK: %[[S:.+]] = moe.add {{.*}} {moe.offsets = array<i64: 0>} : tensor<2x8xf32>
  %s = moe.add %a, %a : tensor<2x8xf32>
  // CHECK: tensor.collapse_shape %[[S]] {{.*}} {moe.offsets = array<i64: 0>}
  %flat = tensor.collapse_shape %s [[0, 1]] : tensor<2x8xf32> into tensor<16xf32>
  // CHECK: moe.add {{.*}} {moe.offsets = array<i64: 64>} : tensor<16xf32>
  %r = moe.add %flat, %b : tensor<16xf32>
  // The view keeps %s alive until here, so this cannot reuse offset 0.
  // CHECK: moe.add {{.*}} {moe.offsets = array<i64: 128>} : tensor<16xf32>
  %t = moe.add %flat, %r : tensor<16xf32>
  return %r, %t : tensor<16xf32>, tensor<16xf32>
}

// -----

// A view of a function argument has no bytes of its own.
// CHECK-LABEL: func.func @view_of_argument
func.func @view_of_argument(%a: tensor<2x8xf32>) -> tensor<16xf32> {
  // CHECK: tensor.collapse_shape {{.*}} {moe.offsets = array<i64: -1>}
  %flat = tensor.collapse_shape %a [[0, 1]] : tensor<2x8xf32> into tensor<16xf32>
  %r = moe.add %flat, %flat : tensor<16xf32>
  return %r : tensor<16xf32>
}

// -----

// Multi-result ops get one offset per result.
// CHECK-LABEL: func.func @multi_result
func.func @multi_result(%s: tensor<16x8xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>) {
  // CHECK: moe.topk_route {{.*}} {k = 2 : i64, moe.offsets = array<i64: 0, 128>}
  %w, %i = moe.topk_route %s {k = 2 : i64} : tensor<16x8xf32>
  return %w, %i : tensor<16x2xf32>, tensor<16x2xi32>
}

// -----

// Every tensor starts at a multiple of the alignment (default 64 bytes).
// CHECK-LABEL: func.func @alignment
// CHECK-SAME: moe.arena_size = 128
// ALIGN16-LABEL: func.func @alignment
// ALIGN16-SAME: moe.arena_size = 64
func.func @alignment(%a: tensor<5xf32>) -> tensor<5xf32> {
  // CHECK: moe.add {{.*}} {moe.offsets = array<i64: 0>}
  // ALIGN16: moe.add {{.*}} {moe.offsets = array<i64: 0>}
  %x = moe.add %a, %a : tensor<5xf32>
  // CHECK: moe.add {{.*}} {moe.offsets = array<i64: 64>}
  // ALIGN16: moe.add {{.*}} {moe.offsets = array<i64: 32>}
  %y = moe.add %x, %a : tensor<5xf32>
  return %y : tensor<5xf32>
}

// -----

// The loss gradient overwrites the logits when nothing reads them later.
// CHECK-LABEL: func.func @gradient_over_logits
// CHECK-SAME: moe.arena_size = 384
func.func @gradient_over_logits(%x: tensor<4x8xf32>, %t: tensor<4xi32>, %d: tensor<f32>) -> tensor<4x8xf32> {
  // CHECK: %[[L:.+]] = moe.add {{.*}} {moe.offsets = array<i64: 0>}
  %logits = moe.add %x, %x : tensor<4x8xf32>
  // CHECK: moe.cross_entropy_grad %[[L]], {{.*}} {moe.offsets = array<i64: 0>}
  %g = moe.cross_entropy_grad %logits, %t, %d : (tensor<4x8xf32>, tensor<4xi32>, tensor<f32>) -> tensor<4x8xf32>
  // The in-place result lives on: nothing else may take offset 0.
  // CHECK: moe.add {{.*}} {moe.offsets = array<i64: 128>}
  %h = moe.add %x, %x : tensor<4x8xf32>
  %s = moe.add %g, %h : tensor<4x8xf32>
  return %s : tensor<4x8xf32>
}

// -----

// Logits read after the gradient keep their bytes.
// CHECK-LABEL: func.func @logits_read_later
func.func @logits_read_later(%x: tensor<4x8xf32>, %t: tensor<4xi32>, %d: tensor<f32>) -> tensor<4x8xf32> {
  // CHECK: moe.add {{.*}} {moe.offsets = array<i64: 0>}
  %logits = moe.add %x, %x : tensor<4x8xf32>
  // CHECK: moe.cross_entropy_grad {{.*}} {moe.offsets = array<i64: 128>}
  %g = moe.cross_entropy_grad %logits, %t, %d : (tensor<4x8xf32>, tensor<4xi32>, tensor<f32>) -> tensor<4x8xf32>
  %s = moe.add %g, %logits : tensor<4x8xf32>
  return %s : tensor<4x8xf32>
}

// -----

// An input of the function is the caller's: never overwritten.
// CHECK-LABEL: func.func @argument_logits
func.func @argument_logits(%logits: tensor<4x8xf32>, %t: tensor<4xi32>, %d: tensor<f32>) -> tensor<4x8xf32> {
  // CHECK: moe.cross_entropy_grad
  // CHECK-NOT: moe.overwrites
  // CHECK-SAME: {moe.offsets = array<i64: 0>}
  %g = moe.cross_entropy_grad %logits, %t, %d : (tensor<4x8xf32>, tensor<4xi32>, tensor<f32>) -> tensor<4x8xf32>
  return %g : tensor<4x8xf32>
}

// -----

// The optimizer updates parameters and state where they live: no arena
// bytes, and moe.overwrites names the operand each result overwrites.
// CHECK-LABEL: func.func @adamw_in_place
// CHECK-SAME: moe.arena_size = 0
func.func @adamw_in_place(%p: tensor<4x8xf32> {moe.param = "w"}, %g: tensor<4x8xf32>,
                          %m: tensor<4x8xf32> {moe.state = "w.exp_avg"},
                          %v: tensor<4x8xf32> {moe.state = "w.exp_avg_sq"},
                          %step: tensor<i64>, %s: tensor<f32>)
    -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  // CHECK: moe.adamw_update {{.*}} {moe.offsets = array<i64: -1, -1, -1>, moe.overwrites = array<i64: 0, 2, 3>}
  %p1, %m1, %v1 = moe.adamw_update %p, %g, %m, %v, %step, %s, %s, %s, %s, %s, %s : tensor<4x8xf32>
  return %p1, %m1, %v1 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// A parameter read after its update keeps its bytes: the update gets its
// own; so does an input that is not a parameter or state (%g as momentum).
// CHECK-LABEL: func.func @sgd_parameter_read_later
func.func @sgd_parameter_read_later(%p: tensor<4x8xf32> {moe.param = "w"}, %g: tensor<4x8xf32>,
                                    %step: tensor<i64>, %s: tensor<f32>)
    -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  // CHECK: moe.sgd_update {{.*}} {moe.offsets = array<i64: 0, 128>}
  // CHECK-NOT: moe.overwrites
  %p1, %b1 = moe.sgd_update %p, %g, %g, %step, %s, %s, %s, %s : tensor<4x8xf32>
  // CHECK: moe.add
  %later = moe.add %p, %p : tensor<4x8xf32>
  return %p1, %b1, %later : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}
