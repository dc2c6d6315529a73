//===- Strategy.cpp - the ways to compile one model for one cluster --------===//
#include "compiler/explore/Strategy.h"

namespace moec::explore {

std::string Strategy::name() const {
  std::string name = "fusion=" + moe::stringifyFusionStrategy(fusion).str() +
                     " dp=" + std::to_string(mesh.dp) + " ep=" + std::to_string(mesh.ep);
  if (zero)
    name += " zero=" + std::to_string(zero);
  if (overlapChunks > 1)
    name += " chunks=" + std::to_string(overlapChunks);
  name += " " + moe::stringifyPrecision(precision).str();
  if (capacityFactor)
    name += *capacityFactor == 0 ? " dropless" : " cf=" + capacityFactorText(*capacityFactor);
  return name;
}

CompileOptions Strategy::apply(const CompileOptions &base) const {
  CompileOptions options = base;
  options.fusion = fusion;
  options.mesh.reset();
  if (mesh.ranks() > 1)
    options.mesh = mesh;
  options.zero = zero;
  options.overlapChunks = overlapChunks;
  options.precision = precision;
  if (capacityFactor)
    options.capacityFactor = capacityFactor;
  return options;
}

std::vector<MeshShape> StrategySpace::meshesOf(int64_t world, int64_t experts) {
  std::vector<MeshShape> meshes;
  for (int64_t ep = 1; ep <= world; ++ep)
    if (world % ep == 0 && (experts <= 0 || experts % ep == 0))
      meshes.push_back({world / ep, ep});
  return meshes;
}

std::vector<Strategy> StrategySpace::enumerate() const {
  std::vector<Strategy> strategies;
  for (const MeshShape &mesh : meshes)
    for (unsigned zero : zeroStages) {
      if (zero && mesh.ranks() == 1)
        continue;
      for (int64_t chunks : overlapChunks) {
        if (chunks > 1 && mesh.ep == 1)
          continue;
        for (const std::optional<double> &capacity : capacityFactors)
          for (moe::Precision precision : precisions)
            for (moe::FusionStrategy fusion : fusions)
              strategies.push_back({fusion, mesh, zero, chunks, capacity, precision});
      }
    }
  return strategies;
}

} // namespace moec::explore
