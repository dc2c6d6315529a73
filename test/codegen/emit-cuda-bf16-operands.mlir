// A kernel takes a bf16 tensor only where it reads or writes it through
// moec_load / moec_store (the combine's expert outputs); elsewhere the cuda
// target refuses it, rather than read its bits as floats.
// RUN: not moec %s --no-train --emit=cuda 2>&1 | FileCheck %s
// CHECK: error: 'moe.rms_norm' op the cuda target has no kernel for element type 'tensor<4x8xbf16>'
// CHECK-NOT: moe.combine' op
func.func @forward(%x: tensor<4x8xbf16> {moe.input = "x"}, %g: tensor<4xf32> {moe.input = "g"},
                   %t: tensor<4xi32> {moe.input = "t"}, %w: tensor<8xbf16> {moe.input = "w"})
    -> (tensor<f32> {moe.output = "loss"}) {
  %y = moe.rms_norm %x, %w : tensor<4x8xbf16>, tensor<8xbf16>
  %c = moe.combine %y, %g, %t : tensor<4x8xbf16>, tensor<4xf32>, tensor<4xi32> -> tensor<4x8xf32>
  %loss = moe.z_loss %c : tensor<4x8xf32>
  return %loss : tensor<f32>
}
