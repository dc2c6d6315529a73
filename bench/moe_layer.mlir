// The benchmark layer: T = 4096 tokens, d = 512, 8 SwiGLU experts of width
// 1024, softmax top-2 renormalised, dropless. The loss, mean_t (logsumexp
// y_t)², is cheap next to the expert GEMMs; it only gives backward a seed.
func.func @forward(%x: tensor<4096x512xf32> {moe.input = "x"},
                   %wg: tensor<8x512xf32> {moe.param = "router", moe.init = "normal", moe.init_std = 0.02 : f32, moe.trainable = true},
                   %w1: tensor<8x1024x512xf32> {moe.param = "w1", moe.init = "normal", moe.init_std = 0.02 : f32, moe.trainable = true},
                   %w2: tensor<8x512x1024xf32> {moe.param = "w2", moe.init = "normal", moe.init_std = 0.02 : f32, moe.trainable = true},
                   %w3: tensor<8x1024x512xf32> {moe.param = "w3", moe.init = "normal", moe.init_std = 0.02 : f32, moe.trainable = true})
    -> (tensor<f32> {moe.output = "loss"}) {
  %l = moe.router_logits %x, %wg : tensor<4096x512xf32>, tensor<8x512xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<4096x8xf32>
  %w, %i = moe.topk_route %s {k = 2 : i64, normalize = true} : tensor<4096x8xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 8 : i64} : tensor<4096x2xf32>, tensor<4096x2xi32>
  %rows = moe.dispatch %x, %tok : tensor<4096x512xf32>, tensor<8192xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2, %w3) group_sizes(%sizes) {activation = #moe.activation<silu>} : (tensor<8192x512xf32>, tensor<8x1024x512xf32>, tensor<8x512x1024xf32>, tensor<8x1024x512xf32>, tensor<8xi32>) -> tensor<8192x512xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<8192x512xf32>, tensor<8192xf32>, tensor<8192xi32> -> tensor<4096x512xf32>
  %loss = moe.z_loss %y : tensor<4096x512xf32>
  return %loss : tensor<f32>
}
