//===- MoEOps.td - every op of the moe dialect -------------*- tablegen -*-===//

#ifndef MOE_OPS_TD
#define MOE_OPS_TD

include "dialects/moe/IR/MoERoutingOps.td"
include "dialects/moe/IR/MoEDispatchOps.td"
include "dialects/moe/IR/MoEExpertOps.td"
include "dialects/moe/IR/MoELossOps.td"
include "dialects/moe/IR/MoEDenseOps.td"
include "dialects/moe/IR/MoELinearAttentionOps.td"
include "dialects/moe/IR/MoEGradientOps.td"
include "dialects/moe/IR/MoEOptimizerOps.td"
include "dialects/moe/IR/MoEFusionOps.td"

#endif // MOE_OPS_TD
