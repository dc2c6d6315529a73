//===- MoEOptimizerOps.td - optimizer steps in IR ----------*- tablegen -*-===//

#ifndef MOE_OPTIMIZER_OPS_TD
#define MOE_OPTIMIZER_OPS_TD

include "dialects/moe/IR/MoEAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoE_GlobalNormOp : MoE_Op<"global_norm", [Pure, MoE_GradientNorm]> {
  let summary = "sqrt(Σ ‖g‖²) over every gradient";
  let arguments = (ins Variadic<MoE_FloatTensor>:$grads);
  let results = (outs MoE_ScalarF32:$norm);
  let assemblyFormat = "$grads attr-dict `:` type($grads)";
}

def MoE_ClipScaleOp : MoE_Op<"clip_scale", [Pure, MoE_GradientScale]> {
  let summary = "the factor global-norm clipping multiplies gradients by";
  let description = [{
    `min(1, max_norm / (norm + 1e-6))`; 1 when `max_norm` is 0 (no clipping).
    `max_norm` is an operand (a hyperparameter input of the training step),
    so that it can change between runs of one plan.

    ```mlir
    %scale = moe.clip_scale %norm, %max_norm
    ```
  }];
  let arguments = (ins MoE_ScalarF32:$norm, MoE_ScalarF32:$max_norm);
  let results = (outs MoE_ScalarF32:$scale);
  let assemblyFormat = "$norm `,` $max_norm attr-dict";
}

def MoE_LRScheduleOp : MoE_Op<"lr_schedule", [Pure]> {
  let summary = "the learning rate at a step: warmup, then constant/cosine/linear";
  let description = [{
    For step `s` (0-based): `lr · (s + 1) / warmup` while `s < warmup`; then
    with `p = (s − warmup) / max(1, total − warmup)` clamped to [0, 1]:
    constant `lr`; cosine `lr · (r + (1 − r) · (1 + cos πp) / 2)`; linear
    `lr · (1 − (1 − r) · p)`, `r = min_lr_ratio`. The numbers are operands
    (hyperparameter inputs of the training step); the kind, which decides
    the computation, is an attribute.

    ```mlir
    %lr = moe.lr_schedule <cosine> %step, %base_lr, %warmup, %total, %ratio
    ```
  }];
  let arguments = (ins MoE_LRScheduleKindAttr:$kind, MoE_ScalarI64:$step,
                       MoE_ScalarF32:$lr, MoE_ScalarI64:$warmup_steps,
                       MoE_ScalarI64:$total_steps, MoE_ScalarF32:$min_lr_ratio);
  let results = (outs MoE_ScalarF32:$result);
  let assemblyFormat = [{
    $kind $step `,` $lr `,` $warmup_steps `,` $total_steps `,` $min_lr_ratio attr-dict
  }];
}

def MoE_AdamWUpdateOp : MoE_Op<"adamw_update", [Pure, MoE_ParameterUpdate,
    DeclareOpInterfaceMethods<MoE_InPlaceOpInterface>,
    AllTypesMatch<["param", "grad", "m", "v", "new_param", "new_m", "new_v"]>]> {
  let summary = "one AdamW step (decoupled weight decay, bias correction)";
  let description = [{
    With `g = grad · clip`, `t = step + 1`: `m' = β1 m + (1 − β1) g`,
    `v' = β2 v + (1 − β2) g²`, `p' = p − lr · (m'/(1 − β1ᵗ)) /
    (sqrt(v'/(1 − β2ᵗ)) + eps) − lr · weight_decay · p` (as torch.optim.AdamW).
    β1, β2, eps and the weight decay are scalar operands (hyperparameter
    inputs of the training step).

    ```mlir
    %p1, %m1, %v1 = moe.adamw_update %p, %g, %m, %v, %step, %lr, %clip,
        %beta1, %beta2, %eps, %wd : tensor<64x32xf32>
    ```
  }];
  let arguments = (ins MoE_FloatTensor:$param, MoE_FloatTensor:$grad,
                       MoE_FloatTensor:$m, MoE_FloatTensor:$v,
                       MoE_ScalarI64:$step, MoE_ScalarF32:$lr, MoE_ScalarF32:$clip,
                       MoE_ScalarF32:$beta1, MoE_ScalarF32:$beta2, MoE_ScalarF32:$eps,
                       MoE_ScalarF32:$weight_decay);
  let results = (outs MoE_FloatTensor:$new_param, MoE_FloatTensor:$new_m,
                      MoE_FloatTensor:$new_v);
  let assemblyFormat = [{
    $param `,` $grad `,` $m `,` $v `,` $step `,` $lr `,` $clip `,` $beta1 `,` $beta2 `,`
    $eps `,` $weight_decay attr-dict `:` type($param)
  }];
}

def MoE_SGDUpdateOp : MoE_Op<"sgd_update", [Pure, MoE_ParameterUpdate,
    DeclareOpInterfaceMethods<MoE_InPlaceOpInterface>,
    AllTypesMatch<["param", "grad", "momentum_buffer", "new_param", "new_momentum_buffer"]>]> {
  let summary = "one SGD step with momentum and weight decay (as torch.optim.SGD)";
  let description = [{
    `g = grad · clip + weight_decay · p`; `b' = momentum · b + g` (`b' = g` at
    step 0); `p' = p − lr · b'`. The momentum and the weight decay are
    scalar operands (hyperparameter inputs of the training step).
  }];
  let arguments = (ins MoE_FloatTensor:$param, MoE_FloatTensor:$grad,
                       MoE_FloatTensor:$momentum_buffer, MoE_ScalarI64:$step,
                       MoE_ScalarF32:$lr, MoE_ScalarF32:$clip, MoE_ScalarF32:$momentum,
                       MoE_ScalarF32:$weight_decay);
  let results = (outs MoE_FloatTensor:$new_param, MoE_FloatTensor:$new_momentum_buffer);
  let assemblyFormat = [{
    $param `,` $grad `,` $momentum_buffer `,` $step `,` $lr `,` $clip `,` $momentum `,`
    $weight_decay attr-dict `:` type($param)
  }];
}

#endif // MOE_OPTIMIZER_OPS_TD
