"""Writes the benchmark MoE layer (bench/moe_layer.mlir's IR) at any shape:
T tokens of width d, E SwiGLU experts of width F, softmax top-k
renormalised, dropless; the loss, mean_t (logsumexp y_t)^2, only seeds the
backward pass.

usage: make_layer.py [--tokens T] [--hidden d] [--experts E] [--width F]
                     [--top-k K]   (defaults: bench/moe_layer.mlir's shape)
"""
import argparse

ap = argparse.ArgumentParser()
ap.add_argument("--tokens", type=int, default=4096)
ap.add_argument("--hidden", type=int, default=512)
ap.add_argument("--experts", type=int, default=8)
ap.add_argument("--width", type=int, default=1024)
ap.add_argument("--top-k", type=int, default=2)
a = ap.parse_args()
if min(a.tokens, a.hidden, a.experts, a.width, a.top_k) < 1 or a.top_k > a.experts:
    raise SystemExit("make_layer.py: sizes must be positive and --top-k at most --experts")
T, d, E, F, K = a.tokens, a.hidden, a.experts, a.width, a.top_k
R = T * K


def param(name, shape):
    return (f'%{name}: tensor<{shape}xf32> {{moe.param = "{"router" if name == "wg" else name}", '
            f'moe.init = "normal", moe.init_std = 0.02 : f32, moe.trainable = true}}')


print(f"""// The benchmark layer: T = {T} tokens, d = {d}, {E} SwiGLU experts of width
// {F}, softmax top-{K} renormalised, dropless. The loss, mean_t (logsumexp
// y_t)², is cheap next to the expert GEMMs; it only gives backward a seed.
func.func @forward(%x: tensor<{T}x{d}xf32> {{moe.input = "x"}},
                   {param("wg", f"{E}x{d}")},
                   {param("w1", f"{E}x{F}x{d}")},
                   {param("w2", f"{E}x{d}x{F}")},
                   {param("w3", f"{E}x{F}x{d}")})
    -> (tensor<f32> {{moe.output = "loss"}}) {{
  %l = moe.router_logits %x, %wg : tensor<{T}x{d}xf32>, tensor<{E}x{d}xf32>
  %s = moe.score %l {{function = #moe.score<softmax>}} : tensor<{T}x{E}xf32>
  %w, %i = moe.topk_route %s {{k = {K} : i64, normalize = true}} : tensor<{T}x{E}xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {{num_experts = {E} : i64}} : tensor<{T}x{K}xf32>, tensor<{T}x{K}xi32>
  %rows = moe.dispatch %x, %tok : tensor<{T}x{d}xf32>, tensor<{R}xi32>
  %ye = moe.grouped_ffn %rows weights(%w1, %w2, %w3) group_sizes(%sizes) {{activation = #moe.activation<silu>}} : (tensor<{R}x{d}xf32>, tensor<{E}x{F}x{d}xf32>, tensor<{E}x{d}x{F}xf32>, tensor<{E}x{F}x{d}xf32>, tensor<{E}xi32>) -> tensor<{R}x{d}xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<{R}x{d}xf32>, tensor<{R}xf32>, tensor<{R}xi32> -> tensor<{T}x{d}xf32>
  %loss = moe.z_loss %y : tensor<{T}x{d}xf32>
  return %loss : tensor<f32>
}}""")
