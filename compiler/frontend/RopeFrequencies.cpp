//===- RopeFrequencies.cpp - the rotation frequencies of scaled RoPE ------===//
#include "compiler/frontend/RopeFrequencies.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace moec::frontend {
double yarnMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

namespace {

/// The dimension at which a frequency turns `rotations` times over the
/// pretraining context.
double correctionDim(double rotations, int64_t dim, double base, double positions) {
  return (dim * std::log(positions / (rotations * 2 * M_PI))) / (2 * std::log(base));
}

} // namespace

RopeFrequencies ropeFrequencies(const RopeScalingConfig &s, double theta, int64_t headDim,
                                int64_t seqLen) {
  RopeFrequencies result;
  if (s.type == "default")
    return result;
  const int64_t dim = headDim, half = dim / 2;
  // base ** (arange(0, dim, 2) / dim) in f32, as torch computes it.
  std::vector<float> powers(half);
  for (int64_t i = 0; i < half; ++i)
    powers[i] = std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / dim);
  const float factor = static_cast<float>(s.factor);
  if (s.type == "linear") {
    for (int64_t i = 0; i < half; ++i)
      result.inverse.push_back((1.0f / powers[i]) / factor);
    return result;
  }
  if (s.type == "llama3") {
    // transformers' _compute_llama3_parameters, in f32: wavelengths longer
    // than the context / low_freq_factor divided by factor, shorter than
    // context / high_freq_factor kept, the ones between smoothed.
    const float context = static_cast<float>(s.originalMaxPositions);
    const float low = static_cast<float>(s.lowFreqFactor),
                high = static_cast<float>(s.highFreqFactor);
    const float lowWavelength =
        static_cast<float>(double(s.originalMaxPositions) / s.lowFreqFactor);
    const float highWavelength =
        static_cast<float>(double(s.originalMaxPositions) / s.highFreqFactor);
    for (int64_t i = 0; i < half; ++i) {
      float inverse = 1.0f / powers[i];
      float wavelength = static_cast<float>(2 * M_PI) / inverse;
      float scaled = wavelength > lowWavelength ? inverse / factor : inverse;
      if (!(wavelength < highWavelength) && !(wavelength > lowWavelength)) {
        float smooth = (context / wavelength - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      result.inverse.push_back(scaled);
    }
    return result;
  }
  if (s.type == "longrope") {
    // Each frequency divided by its factor, the short ones up to the
    // original context; cos and sin scaled by PhiMoE's mscale of that side,
    // else by the attention factor (default sqrt(1 + ln f / ln original), f
    // the `factor`: the context's extension).
    bool longSide = seqLen > s.originalMaxPositions;
    const std::vector<double> &factors = longSide ? s.longFactor : s.shortFactor;
    for (int64_t i = 0; i < half; ++i)
      result.inverse.push_back(1.0f / (static_cast<float>(factors[i]) * powers[i]));
    std::optional<double> mscale = longSide ? s.longMscale : s.shortMscale;
    double attention =
        mscale              ? *mscale
        : s.attentionFactor ? *s.attentionFactor
        : s.factor <= 1.0
            ? 1.0
            : std::sqrt(1.0 + std::log(s.factor) / std::log(double(s.originalMaxPositions)));
    result.attentionFactor = static_cast<float>(attention);
    return result;
  }
  // YaRN: the low frequencies interpolated (divided by factor), the high
  // ones kept, a linear ramp between the dimensions that turn beta_fast
  // and beta_slow times over the original context.
  double attention = s.attentionFactor ? *s.attentionFactor
                     : (s.mscale && s.mscaleAllDim && *s.mscale && *s.mscaleAllDim)
                         ? yarnMscale(s.factor, *s.mscale) / yarnMscale(s.factor, *s.mscaleAllDim)
                         : yarnMscale(s.factor, 1.0);
  result.attentionFactor = static_cast<float>(attention);
  double low = correctionDim(s.betaFast, dim, theta, double(s.originalMaxPositions));
  double high = correctionDim(s.betaSlow, dim, theta, double(s.originalMaxPositions));
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high)
    high += 0.001; // as transformers: no singular ramp
  for (int64_t i = 0; i < half; ++i) {
    float ramp = (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low);
    ramp = std::clamp(ramp, 0.0f, 1.0f);
    float extrapolation = 1.0f - ramp;
    float kept = 1.0f / powers[i], interpolated = 1.0f / (factor * powers[i]);
    result.inverse.push_back(interpolated * (1.0f - extrapolation) + kept * extrapolation);
  }
  return result;
}

} // namespace moec::frontend
