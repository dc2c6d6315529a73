// RUN: moe-opt %s --moe-mixed-precision --split-input-file --verify-diagnostics | FileCheck %s
// RUN: moe-opt %s --moe-mixed-precision --moe-split-expert-ffn --moe-autodiff --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=TRAIN

// Dense layers and experts get bf16 products; the router's logits, the
// losses stay fp32; an op pinned to fp32 keeps it.
// CHECK-LABEL: func.func @forward(
// TRAIN-LABEL: func.func @forward_backward(
func.func @forward(%x: tensor<8x16xf32> {moe.input = "x"},
                   %rows: tensor<16x16xf32> {moe.input = "rows"},
                   %sizes: tensor<4xi32> {moe.input = "sizes"},
                   %t: tensor<16xi32> {moe.input = "targets"},
                   %wg: tensor<4x16xf32> {moe.param = "router"},
                   %w1: tensor<4x24x16xf32> {moe.param = "w1"},
                   %w2: tensor<4x16x24xf32> {moe.param = "w2"},
                   %wo: tensor<16x16xf32> {moe.param = "wo"},
                   %wp: tensor<16x16xf32> {moe.param = "pinned"})
    -> (tensor<f32> {moe.output = "loss"}) {
  // CHECK: moe.router_logits %{{.+}}, %{{.+}} :
  %logits = moe.router_logits %x, %wg : tensor<8x16xf32>, tensor<4x16xf32>
  // CHECK: moe.z_loss %{{.+}} :
  %z = moe.z_loss %logits : tensor<8x4xf32>
  // CHECK: moe.grouped_ffn %{{.+}} {activation = #moe.activation<gelu>, moe.precision = #moe.precision<bf16>}
  %y = moe.grouped_ffn %rows weights(%w1, %w2) group_sizes(%sizes) {activation = #moe.activation<gelu>} : (tensor<16x16xf32>, tensor<4x24x16xf32>, tensor<4x16x24xf32>, tensor<4xi32>) -> tensor<16x16xf32>
  // CHECK: moe.linear %{{.+}}, %{{.+}} {moe.precision = #moe.precision<bf16>}
  %o = moe.linear %y, %wo : tensor<16x16xf32>, tensor<16x16xf32>
  // CHECK: moe.linear %{{.+}}, %{{.+}} {moe.precision = #moe.precision<fp32>}
  %p = moe.linear %o, %wp {moe.precision = #moe.precision<fp32>} : tensor<16x16xf32>, tensor<16x16xf32>
  // CHECK: moe.cross_entropy %{{.+}}, %{{.+}} :
  %ce = moe.cross_entropy %p, %t : tensor<16x16xf32>, tensor<16xi32>
  %l = moe.weighted_sum %ce, %z {coefficients = array<f32: 1.0, 0.001>}
  return %l : tensor<f32>
}
// Splitting and autodiff carry each op's precision to the ops built from it:
// the expert FFN's halves and every gradient, the router's included (fp32).
// TRAIN: moe.router_logits %{{[^{]+}} :
// TRAIN: moe.grouped_ffn_up {{.+}}moe.precision = #moe.precision<bf16>
// TRAIN: moe.grouped_ffn_down {{.+}}moe.precision = #moe.precision<bf16>
// TRAIN: moe.linear_grad {{.+}} {moe.precision = #moe.precision<fp32>}
// TRAIN: moe.linear_grad {{.+}} {moe.precision = #moe.precision<bf16>}
// TRAIN: moe.grouped_ffn_down_grad {{.+}}moe.precision = #moe.precision<bf16>
// TRAIN: moe.grouped_ffn_up_grad {{.+}}moe.precision = #moe.precision<bf16>
// TRAIN: moe.z_loss_grad
// TRAIN: moe.linear_grad %{{[^{]+}} : (tensor<8x16xf32>, tensor<4x16xf32>
// TRAIN: return

// -----

func.func @invalid(%x: tensor<8x16xf32>, %w: tensor<16x16xf32>) -> tensor<8x16xf32> {
  // expected-error @+1 {{'moe.precision' must be #moe.precision<fp32> or #moe.precision<bf16>, not "bf16"}}
  %o = moe.linear %x, %w {moe.precision = "bf16"} : tensor<8x16xf32>, tensor<16x16xf32>
  return %o : tensor<8x16xf32>
}
