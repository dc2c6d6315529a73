// RUN: moe-opt %s --moe-optimizer="lr=0.01 warmup-steps=5 total-steps=50 max-grad-norm=0.5" | FileCheck %s
// RUN: moe-opt %s --moe-optimizer="optimizer=sgd momentum=0.8" | FileCheck %s --check-prefix=SGD
// RUN: not moe-opt %s --moe-optimizer="optimizer=adam" 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: moe-optimizer: unknown optimizer 'adam' (adamw or sgd)

func.func @forward_backward(%x: tensor<4xf32> {moe.input = "x"},
                            %w: tensor<4xf32> {moe.param = "w", moe.trainable = true})
    -> (tensor<4xf32> {moe.output = "loss"}, tensor<4xf32> {moe.grad = "w"}) {
  %y = moe.add %x, %w : tensor<4xf32>
  return %y, %x : tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @train_step
// CHECK-SAME: %{{.+}}: tensor<i64> {moe.input = "step"}
// CHECK-SAME: {moe.init = "zeros", moe.state = "w.exp_avg"}
// CHECK-SAME: {moe.init = "zeros", moe.state = "w.exp_avg_sq"}
// CHECK-SAME: -> (tensor<4xf32> {moe.output = "loss"}, tensor<f32> {moe.output = "grad_norm"}, tensor<f32> {moe.output = "lr"}, tensor<4xf32> {moe.update = "w"}, tensor<4xf32> {moe.update = "w.exp_avg"}, tensor<4xf32> {moe.update = "w.exp_avg_sq"})
// CHECK: %[[NORM:.+]] = moe.global_norm
// CHECK: %[[CLIP:.+]] = moe.clip_scale %[[NORM]] {max_norm = 5.000000e-01 : f32}
// CHECK: %[[LR:.+]] = moe.lr_schedule %{{.+}} {kind = "cosine", lr = 0.00999999977 : f32, min_lr_ratio = 1.000000e-01 : f32, total_steps = 50 : i64, warmup_steps = 5 : i64}
// CHECK: moe.adamw_update %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[LR]], %[[CLIP]] {beta1 = 0.899999976 : f32, beta2 = 0.949999988 : f32, eps = 9.99999993E-9 : f32, weight_decay = 1.000000e-01 : f32} : tensor<4xf32>

// SGD-LABEL: func.func @train_step
// SGD-SAME: {moe.init = "zeros", moe.state = "w.momentum_buffer"}
// SGD: moe.sgd_update {{.*}} {momentum = 8.000000e-01 : f32, weight_decay = 1.000000e-01 : f32} : tensor<4xf32>
