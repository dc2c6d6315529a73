// A forward function of the elementwise and normalisation ops the cuda
// target generates kernels for, one of each kind.
func.func @forward(%x: tensor<4x64xf32> {moe.input = "x"},
                   %w: tensor<64xf32> {moe.param = "w", moe.init = "ones", moe.trainable = true})
    -> (tensor<f32> {moe.output = "loss"}) {
  %n = moe.rms_norm %x, %w {eps = 1.0e-5 : f32} : tensor<4x64xf32>, tensor<64xf32>
  %a = moe.activation %n {kind = #moe.activation<relu>} : tensor<4x64xf32>
  %b = moe.activation %a {kind = #moe.activation<gelu>} : tensor<4x64xf32>
  %c = moe.activation %b {kind = #moe.activation<gelu_tanh>} : tensor<4x64xf32>
  %d = moe.activation %c {kind = #moe.activation<silu>} : tensor<4x64xf32>
  %e = moe.add %d, %x : tensor<4x64xf32>
  %loss = moe.z_loss %e : tensor<4x64xf32>
  return %loss : tensor<f32>
}
