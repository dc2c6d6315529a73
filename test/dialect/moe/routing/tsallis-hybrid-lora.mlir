// DynMoLE: LoRA-adapter experts on a frozen SwiGLU FFN, routed by the
// Tsallis-entropy hybrid (top-2 for confident tokens, top-p = 0.75 up to 4
// experts for uncertain ones), with the Tsallis entropy loss (q = 1.5).
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt %s --mlir-print-op-generic | moe-opt | FileCheck %s

// CHECK-LABEL: func.func @dynmole_layer
func.func @dynmole_layer(%x: tensor<32x64xf32>, %wg: tensor<4x64xf32>,
                         %w1: tensor<128x64xf32>, %w2: tensor<64x128xf32>, %w3: tensor<128x64xf32>,
                         %a1: tensor<4x8x64xf32>, %b1: tensor<4x128x8xf32>,
                         %a2: tensor<4x8x128xf32>, %b2: tensor<4x64x8xf32>,
                         %a3: tensor<4x8x64xf32>, %b3: tensor<4x128x8xf32>) -> (tensor<32x64xf32>, tensor<f32>) {
  %l = moe.router_logits %x, %wg : tensor<32x64xf32>, tensor<4x64xf32>
  %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x4xf32>
  // CHECK: %[[W:.+]], %[[I:.+]] = moe.entropy_hybrid_route %{{.+}} {k = 2 : i64, max_k = 4 : i64, p = 7.500000e-01 : f32, q = 1.500000e+00 : f32, threshold = 8.000000e-01 : f32} : tensor<32x4xf32>
  %w, %i = moe.entropy_hybrid_route %s {q = 1.5 : f32, threshold = 0.8 : f32, k = 2 : i64, p = 0.75 : f32, max_k = 4 : i64} : tensor<32x4xf32>
  %tok, %gate, %sizes = moe.sort_by_expert %w, %i {num_experts = 4 : i64} : tensor<32x4xf32>, tensor<32x4xi32>
  %rows = moe.dispatch %x, %tok : tensor<32x64xf32>, tensor<128xi32>
  // CHECK: moe.lora_experts %{{.+}} base(%{{.+}}, %{{.+}}, %{{.+}}) adapters(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) group_sizes(%{{.+}}) {activation = #moe.activation<silu>, alpha = 1.600000e+01 : f32}
  %ye = moe.lora_experts %rows base(%w1, %w2, %w3) adapters(%a1, %b1, %a2, %b2, %a3, %b3) group_sizes(%sizes) {alpha = 16.0 : f32, activation = #moe.activation<silu>} : (tensor<128x64xf32>, tensor<128x64xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4x8x128xf32>, tensor<4x64x8xf32>, tensor<4x8x64xf32>, tensor<4x128x8xf32>, tensor<4xi32>) -> tensor<128x64xf32>
  %y = moe.combine %ye, %gate, %tok : tensor<128x64xf32>, tensor<128xf32>, tensor<128xi32> -> tensor<32x64xf32>
  // CHECK: moe.entropy_loss %{{.+}} {q = 1.500000e+00 : f32} : tensor<32x4xf32>
  %h = moe.entropy_loss %s {q = 1.5 : f32} : tensor<32x4xf32>
  return %y, %h : tensor<32x64xf32>, tensor<f32>
}
