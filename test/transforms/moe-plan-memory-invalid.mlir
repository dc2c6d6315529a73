// RUN: moe-opt %s --moe-plan-memory --verify-diagnostics

func.func @dynamic(%x: tensor<?x64xf32>, %wg: tensor<8x64xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'moe.router_logits' op moe-plan-memory needs static tensor shapes, but result 0 has type 'tensor<?x8xf32>'}}
  %l = moe.router_logits %x, %wg : tensor<?x64xf32>, tensor<8x64xf32>
  return %l : tensor<?x8xf32>
}
