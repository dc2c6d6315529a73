//===- Passes.td - every moec pass -------------------------*- tablegen -*-===//
//
// The passes by phase (the frontend builds IR directly and has none):
// training, fusion, lowering to a plan.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TRANSFORMS_PASSES_TD
#define MOEC_TRANSFORMS_PASSES_TD

include "compiler/transforms/TrainingPasses.td"
include "compiler/transforms/FusionPasses.td"
include "compiler/transforms/ShardingPasses.td"
include "compiler/transforms/LoweringPasses.td"

#endif // MOEC_TRANSFORMS_PASSES_TD
