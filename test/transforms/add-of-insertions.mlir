// The gradient of a split is a concatenation: moe.add of insertions into
// zeros at disjoint boxes canonicalizes to one chain, or to tensor.concat
// when the boxes tile the tensor along one dimension.
// RUN: moe-opt %s --canonicalize | FileCheck %s

// CHECK-LABEL: func.func @split_gradient
// CHECK-SAME: (%[[A:.+]]: tensor<2x4x3xf32>, %[[B:.+]]: tensor<2x4x5xf32>)
// CHECK-NEXT: %[[C:.+]] = tensor.concat dim(2) %[[A]], %[[B]] : (tensor<2x4x3xf32>, tensor<2x4x5xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: return %[[C]]
func.func @split_gradient(%a: tensor<2x4x3xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x4x8xf32> {
  %z = moe.fill {value = 0.0 : f32} : tensor<2x4x8xf32>
  %ia = tensor.insert_slice %a into %z[0, 0, 0] [2, 4, 3] [1, 1, 1] : tensor<2x4x3xf32> into tensor<2x4x8xf32>
  %ib = tensor.insert_slice %b into %z[0, 0, 3] [2, 4, 5] [1, 1, 1] : tensor<2x4x5xf32> into tensor<2x4x8xf32>
  %s = moe.add %ib, %ia : tensor<2x4x8xf32>
  return %s : tensor<2x4x8xf32>
}

// Three pieces summed in two additions, the order of the sum not theirs.
// CHECK-LABEL: func.func @three_pieces
// CHECK-NEXT: tensor.concat dim(1) %arg0, %arg1, %arg2
// CHECK-NOT: moe.add
func.func @three_pieces(%a: tensor<2x1x4xf32>, %b: tensor<2x2x4xf32>, %c: tensor<2x3x4xf32>) -> tensor<2x6x4xf32> {
  %z = moe.fill {value = 0.0 : f32} : tensor<2x6x4xf32>
  %ia = tensor.insert_slice %a into %z[0, 0, 0] [2, 1, 4] [1, 1, 1] : tensor<2x1x4xf32> into tensor<2x6x4xf32>
  %ib = tensor.insert_slice %b into %z[0, 1, 0] [2, 2, 4] [1, 1, 1] : tensor<2x2x4xf32> into tensor<2x6x4xf32>
  %ic = tensor.insert_slice %c into %z[0, 3, 0] [2, 3, 4] [1, 1, 1] : tensor<2x3x4xf32> into tensor<2x6x4xf32>
  %s1 = moe.add %ic, %ia : tensor<2x6x4xf32>
  %s2 = moe.add %s1, %ib : tensor<2x6x4xf32>
  return %s2 : tensor<2x6x4xf32>
}

// Boxes that leave zeros: one fill, insertions one after the other.
// CHECK-LABEL: func.func @gap
// CHECK-NEXT: %[[Z:.+]] = moe.fill
// CHECK-NEXT: %[[I:.+]] = tensor.insert_slice %arg0 into %[[Z]][0, 0]
// CHECK-NEXT: %[[J:.+]] = tensor.insert_slice %arg1 into %[[I]][0, 5]
// CHECK-NEXT: return %[[J]]
func.func @gap(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x8xf32> {
  %z = moe.fill {value = 0.0 : f32} : tensor<2x8xf32>
  %ia = tensor.insert_slice %a into %z[0, 0] [2, 3] [1, 1] : tensor<2x3xf32> into tensor<2x8xf32>
  %ib = tensor.insert_slice %b into %z[0, 5] [2, 3] [1, 1] : tensor<2x3xf32> into tensor<2x8xf32>
  %s = moe.add %ia, %ib : tensor<2x8xf32>
  return %s : tensor<2x8xf32>
}

// Overlapping boxes, or a fill that is not zero, add up as they are.
// CHECK-LABEL: func.func @overlap
// CHECK: moe.add
// CHECK-LABEL: func.func @ones
// CHECK: moe.add
func.func @overlap(%a: tensor<2x4xf32>, %b: tensor<2x4xf32>) -> tensor<2x6xf32> {
  %z = moe.fill {value = 0.0 : f32} : tensor<2x6xf32>
  %ia = tensor.insert_slice %a into %z[0, 0] [2, 4] [1, 1] : tensor<2x4xf32> into tensor<2x6xf32>
  %ib = tensor.insert_slice %b into %z[0, 2] [2, 4] [1, 1] : tensor<2x4xf32> into tensor<2x6xf32>
  %s = moe.add %ia, %ib : tensor<2x6xf32>
  return %s : tensor<2x6xf32>
}
func.func @ones(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x6xf32> {
  %z = moe.fill {value = 1.0 : f32} : tensor<2x6xf32>
  %ia = tensor.insert_slice %a into %z[0, 0] [2, 3] [1, 1] : tensor<2x3xf32> into tensor<2x6xf32>
  %ib = tensor.insert_slice %b into %z[0, 3] [2, 3] [1, 1] : tensor<2x3xf32> into tensor<2x6xf32>
  %s = moe.add %ia, %ib : tensor<2x6xf32>
  return %s : tensor<2x6xf32>
}
