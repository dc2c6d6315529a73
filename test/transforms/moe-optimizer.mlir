// RUN: moe-opt %s --moe-optimizer="lr=0.01 warmup-steps=5 total-steps=50 max-grad-norm=0.5" | FileCheck %s
// RUN: moe-opt %s --moe-optimizer="optimizer=sgd momentum=0.8 schedule=linear" | FileCheck %s --check-prefix=SGD
// RUN: not moe-opt %s --moe-optimizer="optimizer=adam" 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: Cannot find option named 'adam'!
// RUN: not moe-opt %s --moe-optimizer="schedule=exponential" 2>&1 | FileCheck %s --check-prefix=BADSCHEDULE
// BADSCHEDULE: Cannot find option named 'exponential'!

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
// CHECK-SAME: %[[LR:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "lr", moe.value = 0.00999999977 : f32}
// CHECK-SAME: %[[WARMUP:[a-z0-9]+]]: tensor<i64> {moe.hyperparameter = "warmup_steps", moe.value = 5 : i64}
// CHECK-SAME: %[[TOTAL:[a-z0-9]+]]: tensor<i64> {moe.hyperparameter = "total_steps", moe.value = 50 : i64}
// CHECK-SAME: %[[RATIO:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "min_lr_ratio", moe.value = 1.000000e-01 : f32}
// CHECK-SAME: %[[MAXNORM:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "max_grad_norm", moe.value = 5.000000e-01 : f32}
// CHECK-SAME: %[[B1:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "beta1", moe.value = 0.899999976 : f32}
// CHECK-SAME: %[[B2:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "beta2", moe.value = 0.949999988 : f32}
// CHECK-SAME: %[[EPS:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "eps", moe.value = 9.99999993E-9 : f32}
// CHECK-SAME: %[[WD:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "weight_decay", moe.value = 1.000000e-01 : f32}
// CHECK-SAME: -> (tensor<4xf32> {moe.output = "loss"}, tensor<f32> {moe.output = "grad_norm"}, tensor<f32> {moe.output = "lr"}, tensor<4xf32> {moe.update = "w"}, tensor<4xf32> {moe.update = "w.exp_avg"}, tensor<4xf32> {moe.update = "w.exp_avg_sq"})
// CHECK: %[[NORM:.+]] = moe.global_norm
// CHECK: %[[CLIP:.+]] = moe.clip_scale %[[NORM]], %[[MAXNORM]]
// CHECK: %[[RATE:.+]] = moe.lr_schedule <cosine> %{{.+}}, %[[LR]], %[[WARMUP]], %[[TOTAL]], %[[RATIO]]
// CHECK: moe.adamw_update %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[RATE]], %[[CLIP]], %[[B1]], %[[B2]], %[[EPS]], %[[WD]] : tensor<4xf32>

// SGD-LABEL: func.func @train_step
// SGD-SAME: {moe.init = "zeros", moe.state = "w.momentum_buffer"}
// SGD-SAME: %[[MOMENTUM:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "momentum", moe.value = 8.000000e-01 : f32}
// SGD-SAME: %[[WD:[a-z0-9]+]]: tensor<f32> {moe.hyperparameter = "weight_decay", moe.value = 1.000000e-01 : f32}
// SGD: moe.lr_schedule <linear>
// SGD: moe.sgd_update {{.*}}, %[[MOMENTUM]], %[[WD]] : tensor<4xf32>
