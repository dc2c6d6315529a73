//===- MoEAttrs.td - enum attributes of the moe dialect ----*- tablegen -*-===//

#ifndef MOE_ATTRS_TD
#define MOE_ATTRS_TD

include "dialects/moe/IR/MoEDialect.td"
include "mlir/IR/EnumAttr.td"

class MoE_Enum<string name, string summary, list<I32EnumAttrCase> cases>
    : I32EnumAttr<name, summary, cases> {
  let cppNamespace = "::moec::moe";
  let genSpecializedAttr = 0;
}

class MoE_EnumAttr<EnumAttrInfo info, string mnemonic>
    : EnumAttr<MoE_Dialect, info, mnemonic> {
  let assemblyFormat = "`<` $value `>`";
}

def MoE_InputTransform : MoE_Enum<"InputTransform",
    "transform applied to the router input before gating", [
  I32EnumAttrCase<"none", 0>,
  I32EnumAttrCase<"l2norm", 1>,
  I32EnumAttrCase<"layernorm", 2>,
  I32EnumAttrCase<"tanh", 3>]>;
def MoE_InputTransformAttr : MoE_EnumAttr<MoE_InputTransform, "input_transform">;

def MoE_ScoreFunction : MoE_Enum<"ScoreFunction",
    "function turning router logits into scores", [
  I32EnumAttrCase<"softmax", 0>,
  I32EnumAttrCase<"sigmoid", 1>]>;
def MoE_ScoreFunctionAttr : MoE_EnumAttr<MoE_ScoreFunction, "score">;

def MoE_GroupScore : MoE_Enum<"GroupScore",
    "score of an expert group in group-limited routing", [
  I32EnumAttrCase<"max", 0>,       // DeepSeek-V2 group_limited_greedy
  I32EnumAttrCase<"top2_sum", 1>]>; // DeepSeek-V3 noaux_tc
def MoE_GroupScoreAttr : MoE_EnumAttr<MoE_GroupScore, "group_score">;

def MoE_MaskFill : MoE_Enum<"MaskFill",
    "value given to the scores of experts in dropped groups", [
  I32EnumAttrCase<"neg_inf", 0>,
  I32EnumAttrCase<"zero", 1>]>;
def MoE_MaskFillAttr : MoE_EnumAttr<MoE_MaskFill, "mask_fill">;

def MoE_DropPriority : MoE_Enum<"DropPriority",
    "which assignments keep their slot when an expert is over capacity", [
  I32EnumAttrCase<"position", 0>,  // sequence order (Switch)
  I32EnumAttrCase<"score", 1>]>;   // highest routing weight first (BPR)
def MoE_DropPriorityAttr : MoE_EnumAttr<MoE_DropPriority, "drop_priority">;

def MoE_Activation : MoE_Enum<"Activation", "activation function", [
  I32EnumAttrCase<"relu", 0>,
  I32EnumAttrCase<"gelu", 1>,       // exact, erf-based
  I32EnumAttrCase<"gelu_tanh", 2>,  // tanh approximation
  I32EnumAttrCase<"silu", 3>,
  I32EnumAttrCase<"sigmoid", 4>]>;
def MoE_ActivationAttr : MoE_EnumAttr<MoE_Activation, "activation">;

def MoE_LoadBalancing : MoE_Enum<"LoadBalancing",
    "variant of the load-balancing auxiliary loss", [
  I32EnumAttrCase<"Switch", 0, "switch">,     // E · Σ f_e P_e over all assignments
  I32EnumAttrCase<"per_slot", 1>,   // Mixtral: f counted per top-k slot
  I32EnumAttrCase<"sequence", 2>]>; // DeepSeek: per sequence, then mean
def MoE_LoadBalancingAttr : MoE_EnumAttr<MoE_LoadBalancing, "balance">;

def MoE_LRScheduleKind : MoE_Enum<"LRScheduleKind",
    "how the learning rate decays after warmup", [
  I32EnumAttrCase<"constant", 0>,
  I32EnumAttrCase<"cosine", 1>,
  I32EnumAttrCase<"linear", 2>]>;
def MoE_LRScheduleKindAttr : MoE_EnumAttr<MoE_LRScheduleKind, "lr_schedule">;

// The optimizer a training step applies (`--moe-optimizer`'s option).
def MoE_OptimizerKind : MoE_Enum<"OptimizerKind",
    "the optimizer of a training step", [
  I32EnumAttrCase<"adamw", 0>,
  I32EnumAttrCase<"sgd", 1>]>;

// The arithmetic of an op's matrix products (`moe.precision`, a discardable
// attribute that `--moe-mixed-precision` sets and autodiff carries to the
// op's gradient): fp32 throughout, or bf16 operands with fp32 accumulation.
def MoE_Precision : MoE_Enum<"Precision", "arithmetic of matrix products", [
  I32EnumAttrCase<"fp32", 0>,
  I32EnumAttrCase<"bf16", 1>]>;
def MoE_PrecisionAttr : MoE_EnumAttr<MoE_Precision, "precision">;

// What a `moe.fused` group computes: the fusion pass that formed it and the
// kernel shape codegen gives it.
def MoE_FusionKind : MoE_Enum<"FusionKind", "the kind of a fusion group", [
  I32EnumAttrCase<"router", 0>,
  I32EnumAttrCase<"elementwise", 1>,
  I32EnumAttrCase<"optimizer", 2>,
  I32EnumAttrCase<"dispatch", 3>,
  I32EnumAttrCase<"expert", 4>,
  I32EnumAttrCase<"norm", 5>,
  I32EnumAttrCase<"lm_head", 6>,
  I32EnumAttrCase<"rope", 7>]>;
def MoE_FusionKindAttr : MoE_EnumAttr<MoE_FusionKind, "fusion">;

// Which fusions `--moe-fusion` (and `moec --fusion`) applies.
def MoE_FusionStrategy : MoE_Enum<"FusionStrategy", "a fusion strategy", [
  I32EnumAttrCase<"none", 0>,
  I32EnumAttrCase<"router", 1>,
  I32EnumAttrCase<"moe", 2>,
  I32EnumAttrCase<"all", 3>,
  I32EnumAttrCase<"dispatch", 4>,
  I32EnumAttrCase<"expert", 5>]>;

#endif // MOE_ATTRS_TD
