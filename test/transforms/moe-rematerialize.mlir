// RUN: moe-opt %s --moe-rematerialize --split-input-file | FileCheck %s

// The norm's result would live from the forward linear to its gradient,
// across the peak (the wide activation %wide); its input and weight are
// live there anyway (the norm's own gradient reads them), so the backward
// pass computes it again and the forward's copy dies early.
// CHECK-LABEL: func.func @norm_across_the_peak
func.func @norm_across_the_peak(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %w: tensor<8x8xf32>,
                                %wide_w: tensor<512x8xf32>, %back_w: tensor<8x512xf32>)
    -> (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) {
  // CHECK: %[[N:.+]] = moe.rms_norm %arg0, %arg1
  // CHECK: moe.linear %[[N]], %arg2
  %n = moe.rms_norm %x, %g : tensor<4x8xf32>, tensor<8xf32>
  %y = moe.linear %n, %w : tensor<4x8xf32>, tensor<8x8xf32>
  %wide = moe.linear %y, %wide_w : tensor<4x8xf32>, tensor<512x8xf32>
  %dy = moe.linear %wide, %back_w : tensor<4x512xf32>, tensor<8x512xf32>
  // CHECK: %[[AGAIN:.+]] = moe.rms_norm %arg0, %arg1
  // CHECK-NEXT: moe.linear_grad %[[AGAIN]], %arg2
  %dn, %dw = moe.linear_grad %n, %w, %dy : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x8xf32>)
  %dx, %dg = moe.rms_norm_grad %x, %g, %dn {eps = 1.0e-6 : f32} : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>)
  return %dx, %dw, %dg : tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>
}

// -----

// The norm's input is dead by the time the backward pass needs the result:
// recomputing would keep it alive instead, so nothing changes.
// CHECK-LABEL: func.func @input_not_live
func.func @input_not_live(%a: tensor<4x8xf32>, %g: tensor<8xf32>, %w: tensor<8x8xf32>,
                          %wide_w: tensor<512x8xf32>, %back_w: tensor<8x512xf32>)
    -> (tensor<4x8xf32>, tensor<8x8xf32>) {
  %x = moe.add %a, %a : tensor<4x8xf32>
  // CHECK-COUNT-1: moe.rms_norm{{ }}
  // CHECK-NOT: moe.rms_norm{{ }}
  %n = moe.rms_norm %x, %g : tensor<4x8xf32>, tensor<8xf32>
  %y = moe.linear %n, %w : tensor<4x8xf32>, tensor<8x8xf32>
  %wide = moe.linear %y, %wide_w : tensor<4x8xf32>, tensor<512x8xf32>
  %dy = moe.linear %wide, %back_w : tensor<4x512xf32>, tensor<8x512xf32>
  %dn, %dw = moe.linear_grad %n, %w, %dy : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x8xf32>)
  return %dn, %dw : tensor<4x8xf32>, tensor<8x8xf32>
}

// -----

// The peak lies after the backward use: keeping the result costs nothing.
// CHECK-LABEL: func.func @peak_elsewhere
func.func @peak_elsewhere(%x: tensor<4x8xf32>, %g: tensor<8xf32>, %w: tensor<8x8xf32>,
                          %wide_w: tensor<512x8xf32>, %back_w: tensor<8x512xf32>)
    -> (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<4x8xf32>) {
  // CHECK-COUNT-1: moe.rms_norm{{ }}
  // CHECK-NOT: moe.rms_norm{{ }}
  %n = moe.rms_norm %x, %g : tensor<4x8xf32>, tensor<8xf32>
  %y = moe.linear %n, %w : tensor<4x8xf32>, tensor<8x8xf32>
  %dn, %dw = moe.linear_grad %n, %w, %y : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x8xf32>)
  %dx, %dg = moe.rms_norm_grad %x, %g, %dn {eps = 1.0e-6 : f32} : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8xf32>)
  %wide = moe.linear %dx, %wide_w : tensor<4x8xf32>, tensor<512x8xf32>
  %after = moe.linear %wide, %back_w : tensor<4x512xf32>, tensor<8x512xf32>
  return %dx, %dw, %dg, %after : tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<4x8xf32>
}

// -----

// A dispatch recomputed for the expert gradient reads the norm through a
// view that the router's gradient reads later; the norm is then recomputed
// for both, view and all.
// CHECK-LABEL: func.func @dispatch_and_norm
func.func @dispatch_and_norm(%x: tensor<2x2x8xf32>, %g: tensor<8xf32>, %slots: tensor<8xi32>, %gates: tensor<8xf32>,
                             %w1: tensor<2x6x8xf32>, %sizes: tensor<2xi32>, %rw: tensor<2x8xf32>,
                             %wide_w: tensor<512x6xf32>, %back_w: tensor<6x512xf32>)
    -> (tensor<8x8xf32>, tensor<2x6x8xf32>, tensor<2x2x8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<2x8xf32>) {
  // CHECK: %[[N:.+]] = moe.rms_norm
  // CHECK: %[[FLAT:.+]] = tensor.collapse_shape %[[N]]
  // CHECK: %[[R:.+]] = moe.linear %[[FLAT]]
  // CHECK: %[[D:.+]] = moe.dispatch %[[FLAT]], %arg2
  // CHECK: moe.grouped_ffn_up %[[D]]
  %n = moe.rms_norm %x, %g : tensor<2x2x8xf32>, tensor<8xf32>
  %flat = tensor.collapse_shape %n [[0, 1], [2]] : tensor<2x2x8xf32> into tensor<4x8xf32>
  %r = moe.linear %flat, %rw : tensor<4x8xf32>, tensor<2x8xf32>
  %d = moe.dispatch %flat, %slots : tensor<4x8xf32>, tensor<8xi32>
  %h = moe.grouped_ffn_up %d weights(%w1) group_sizes(%sizes) : (tensor<8x8xf32>, tensor<2x6x8xf32>, tensor<2xi32>) -> tensor<8x6xf32>
  %wide = moe.linear %h, %wide_w : tensor<8x6xf32>, tensor<512x6xf32>
  %dh = moe.linear %wide, %back_w : tensor<8x512xf32>, tensor<6x512xf32>
  // CHECK: %[[N2:.+]] = moe.rms_norm %arg0, %arg1
  // CHECK-NEXT: %[[FLAT2:.+]] = tensor.collapse_shape %[[N2]]
  // CHECK-NEXT: %[[D2:.+]] = moe.dispatch %[[FLAT2]], %arg2
  // CHECK-NEXT: moe.grouped_ffn_up_grad %[[D2]]
  %dd, %dw1 = moe.grouped_ffn_up_grad %d, %w1, %sizes, %dh {operandSegmentSizes = array<i32: 1, 1, 0, 1, 1>} : (tensor<8x8xf32>, tensor<2x6x8xf32>, tensor<2xi32>, tensor<8x6xf32>) -> (tensor<8x8xf32>, tensor<2x6x8xf32>)
  // CHECK: moe.linear_grad %[[FLAT2]], %arg6, %[[R]]
  %dflat, %drw = moe.linear_grad %flat, %rw, %r : (tensor<4x8xf32>, tensor<2x8xf32>, tensor<4x2xf32>) -> (tensor<4x8xf32>, tensor<2x8xf32>)
  %dsum = moe.combine %dd, %gates, %slots : tensor<8x8xf32>, tensor<8xf32>, tensor<8xi32> -> tensor<4x8xf32>
  %dn = tensor.expand_shape %dsum [[0, 1], [2]] output_shape [2, 2, 8] : tensor<4x8xf32> into tensor<2x2x8xf32>
  %dx, %dg = moe.rms_norm_grad %x, %g, %dn {eps = 1.0e-6 : f32} : (tensor<2x2x8xf32>, tensor<8xf32>, tensor<2x2x8xf32>) -> (tensor<2x2x8xf32>, tensor<8xf32>)
  return %dd, %dw1, %dx, %dg, %dflat, %drw : tensor<8x8xf32>, tensor<2x6x8xf32>, tensor<2x2x8xf32>, tensor<8xf32>, tensor<4x8xf32>, tensor<2x8xf32>
}
