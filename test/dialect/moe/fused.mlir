// moe.fused round-trips; its verifier rejects malformed groups, and TokenRows
// ops whose rows disagree on the tokens.
// RUN: moe-opt %s --split-input-file --verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @router_group
// CHECK: %[[R:.+]]:2 = moe.fused <router>(%arg0) : (tensor<32x8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>) {
// CHECK-NEXT: ^bb0(%[[L:.+]]: tensor<32x8xf32>):
// CHECK-NEXT:   %[[S:.+]] = moe.score %[[L]]
// CHECK-NEXT:   %{{.+}}, %{{.+}} = moe.topk_route %[[S]]
// CHECK-NEXT:   moe.yield
// CHECK-NEXT: }
func.func @router_group(%logits: tensor<32x8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>) {
  %w, %i = moe.fused <router>(%logits) : (tensor<32x8xf32>) -> (tensor<32x2xf32>, tensor<32x2xi32>) {
  ^bb0(%l: tensor<32x8xf32>):
    %s = moe.score %l {function = #moe.score<softmax>} : tensor<32x8xf32>
    %weights, %indices = moe.topk_route %s {k = 2 : i64} : tensor<32x8xf32>
    moe.yield %weights, %indices : tensor<32x2xf32>, tensor<32x2xi32>
  }
  return %w, %i : tensor<32x2xf32>, tensor<32x2xi32>
}

// -----

func.func @isolated(%a: tensor<4x4xf32>, %b: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // expected-note @+1 {{required by region isolation constraints}}
  %r = moe.fused <elementwise>(%a) : (tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%x: tensor<4x4xf32>):
    // expected-error @+1 {{using value defined outside the region}}
    %s = moe.add %x, %b : tensor<4x4xf32>
    moe.yield %s : tensor<4x4xf32>
  }
  return %r : tensor<4x4xf32>
}

// -----

func.func @argument_types(%a: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // expected-error @+1 {{'moe.fused' op input 0 is 'tensor<4x4xf32>' but body argument 0 is 'tensor<2x8xf32>'}}
  %r = moe.fused <elementwise>(%a) : (tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%x: tensor<2x8xf32>):
    %s = moe.add %x, %x : tensor<2x8xf32>
    moe.yield %a : tensor<4x4xf32>
  }
  return %r : tensor<4x4xf32>
}

// -----

func.func @yield_types(%a: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // expected-error @+1 {{'moe.fused' op yields 2 values whose types differ from its results}}
  %r = moe.fused <elementwise>(%a) : (tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%x: tensor<4x4xf32>):
    %s = moe.add %x, %x : tensor<4x4xf32>
    moe.yield %s, %s : tensor<4x4xf32>, tensor<4x4xf32>
  }
  return %r : tensor<4x4xf32>
}

// -----

func.func @empty(%a: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // expected-error @+1 {{'moe.fused' op has no ops: a fusion group holds at least one}}
  %r = moe.fused <elementwise>(%a) : (tensor<4x4xf32>) -> tensor<4x4xf32> {
  ^bb0(%x: tensor<4x4xf32>):
    moe.yield %x : tensor<4x4xf32>
  }
  return %r : tensor<4x4xf32>
}

// -----

func.func @token_rows(%s: tensor<32x8xf32>, %i: tensor<16x2xi32>, %g: tensor<32x2xf32>) -> tensor<32x8xf32> {
  // expected-error @+1 {{'moe.selection_grad' op reads and writes each token's rows: operand 1 has 16 rows, not 32}}
  %d = moe.selection_grad %s, %i, %g {normalize = true, norm_eps = 0.0 : f32, scaling = 1.0 : f32} : (tensor<32x8xf32>, tensor<16x2xi32>, tensor<32x2xf32>) -> tensor<32x8xf32>
  return %d : tensor<32x8xf32>
}
