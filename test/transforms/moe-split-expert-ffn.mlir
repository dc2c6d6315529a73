// RUN: moe-opt %s --moe-split-expert-ffn | FileCheck %s
// RUN: moe-opt %s --moe-split-expert-ffn=function=other | FileCheck %s --check-prefix=OTHER

// CHECK-LABEL: func.func @gated_grouped
// OTHER-LABEL: func.func @gated_grouped
// OTHER: moe.grouped_ffn %
func.func @gated_grouped(%x: tensor<32x16xf32>, %w1: tensor<4x24x16xf32>, %w2: tensor<4x16x24xf32>,
                         %w3: tensor<4x24x16xf32>, %sizes: tensor<4xi32>) -> tensor<32x16xf32> {
  // CHECK: %[[H:.+]] = moe.grouped_ffn_up %{{.+}} weights(%{{.+}}, %{{.+}}) group_sizes(%{{.+}}) : (tensor<32x16xf32>, tensor<4x24x16xf32>, tensor<4x24x16xf32>, tensor<4xi32>) -> tensor<32x48xf32>
  // CHECK: moe.grouped_ffn_down %[[H]] weights(%{{.+}}) group_sizes(%{{.+}}) {activation = #moe.activation<silu>, gated} : (tensor<32x48xf32>, tensor<4x16x24xf32>, tensor<4xi32>) -> tensor<32x16xf32>
  // CHECK-NOT: moe.grouped_ffn %
  %y = moe.grouped_ffn %x weights(%w1, %w2, %w3) group_sizes(%sizes) {activation = #moe.activation<silu>} : (tensor<32x16xf32>, tensor<4x24x16xf32>, tensor<4x16x24xf32>, tensor<4x24x16xf32>, tensor<4xi32>) -> tensor<32x16xf32>
  return %y : tensor<32x16xf32>
}

// CHECK-LABEL: func.func @plain_capacity
func.func @plain_capacity(%x: tensor<4x5x16xf32>, %w1: tensor<4x24x16xf32>, %w2: tensor<4x16x24xf32>) -> tensor<4x5x16xf32> {
  // CHECK: %[[H:.+]] = moe.grouped_ffn_up %{{.+}} weights(%{{.+}}) : (tensor<4x5x16xf32>, tensor<4x24x16xf32>) -> tensor<4x5x24xf32>
  // CHECK: moe.grouped_ffn_down %[[H]] weights(%{{.+}}) {activation = #moe.activation<gelu>} : (tensor<4x5x24xf32>, tensor<4x16x24xf32>) -> tensor<4x5x16xf32>
  %y = moe.grouped_ffn %x weights(%w1, %w2) {activation = #moe.activation<gelu>} : (tensor<4x5x16xf32>, tensor<4x24x16xf32>, tensor<4x16x24xf32>) -> tensor<4x5x16xf32>
  return %y : tensor<4x5x16xf32>
}
