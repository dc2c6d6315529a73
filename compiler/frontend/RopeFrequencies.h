//===- RopeFrequencies.h - the rotation frequencies of scaled RoPE -*- C++ -*-===//
#ifndef MOEC_COMPILER_FRONTEND_ROPEFREQUENCIES_H
#define MOEC_COMPILER_FRONTEND_ROPEFREQUENCIES_H

#include "compiler/frontend/ModelConfig.h"

#include <vector>

namespace moec::frontend {

/// What `moe.rope` needs of a scaled RoPE: the inverse frequency of each of
/// the head's D/2 pairs (empty for the default rotation, which the kernels
/// compute from theta) and the factor on cos and sin.
struct RopeFrequencies {
  std::vector<float> inverse;
  float attentionFactor = 1.0f;
};

/// The frequencies of `scaling` for heads of `headDim` over sequences of
/// `seqLen` positions, computed in f32 as transformers' rope init functions
/// compute them (_compute_linear_scaling_rope_parameters,
/// _compute_yarn_parameters, _compute_longrope_parameters), so that moec
/// rotates by the same angles. `seqLen` chooses LongRoPE's short or long
/// factors, as transformers chooses them per batch.
RopeFrequencies ropeFrequencies(const RopeScalingConfig &scaling, double theta, int64_t headDim,
                                int64_t seqLen);

/// YaRN's softmax temperature correction for a context `scale` times longer
/// (transformers' get_mscale / DeepSeek's yarn_get_mscale).
double yarnMscale(double scale, double mscale);

} // namespace moec::frontend

#endif // MOEC_COMPILER_FRONTEND_ROPEFREQUENCIES_H
