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
