// moe.grouped_ffn_grad (the unsplit expert gradient, which training graphs
// never contain: --moe-split-expert-ffn replaces it) has no generated kernel.
func.func @forward(%x: tensor<8x16xf32> {moe.input = "x"},
                   %w1: tensor<2x32x16xf32> {moe.param = "w1", moe.init = "normal", moe.init_std = 0.02 : f32},
                   %w2: tensor<2x16x32xf32> {moe.param = "w2", moe.init = "normal", moe.init_std = 0.02 : f32})
    -> (tensor<f32> {moe.output = "loss"}) {
  %x3 = tensor.expand_shape %x [[0, 1], [2]] output_shape [2, 4, 16] : tensor<8x16xf32> into tensor<2x4x16xf32>
  %dx, %dw1, %dw2 = moe.grouped_ffn_grad %x3, %w1, %w2, %x3 {activation = #moe.activation<relu>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 1>} : (tensor<2x4x16xf32>, tensor<2x32x16xf32>, tensor<2x16x32xf32>, tensor<2x4x16xf32>) -> (tensor<2x4x16xf32>, tensor<2x32x16xf32>, tensor<2x16x32xf32>)
  %flat = tensor.collapse_shape %dx [[0, 1], [2]] : tensor<2x4x16xf32> into tensor<8x16xf32>
  %loss = moe.z_loss %flat : tensor<8x16xf32>
  return %loss : tensor<f32>
}
