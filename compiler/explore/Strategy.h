//===- Strategy.h - the ways to compile one model for one cluster -*- C++ -*-===//
//
// A strategy is a set of moec options: the fusion strategy, the dp x ep
// mesh, the ZeRO stage, the overlap chunks, the routing capacity and the
// precision. `moec explore` enumerates them for a world size, compiles each
// and ranks them by the cost model's prediction.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_COMPILER_EXPLORE_STRATEGY_H
#define MOEC_COMPILER_EXPLORE_STRATEGY_H

#include "compiler/pipelines/ModelCompiler.h"

#include <optional>
#include <string>
#include <vector>

namespace moec::explore {

struct Strategy {
  moe::FusionStrategy fusion = moe::FusionStrategy::none;
  MeshShape mesh;
  unsigned zero = 0;
  int64_t overlapChunks = 1;
  /// The routers' capacity factor (`--set moe.router.capacity_factor=`):
  /// nullopt keeps the description's, 0 is dropless.
  std::optional<double> capacityFactor;
  moe::Precision precision = moe::Precision::fp32;

  /// "fusion=all dp=2 ep=4 zero=1 chunks=2 bf16 cf=1.25": a name for tables.
  std::string name() const;
  /// `base` with this strategy's options.
  CompileOptions apply(const CompileOptions &base) const;
};

/// What may vary; each list holds the values to try.
struct StrategySpace {
  std::vector<moe::FusionStrategy> fusions;
  std::vector<MeshShape> meshes;
  std::vector<unsigned> zeroStages;
  std::vector<int64_t> overlapChunks;
  std::vector<std::optional<double>> capacityFactors;
  std::vector<moe::Precision> precisions;

  /// The meshes of `world` ranks: every dp x ep with dp·ep = world whose ep
  /// divides `experts`.
  static std::vector<MeshShape> meshesOf(int64_t world, int64_t experts);
  /// Every combination that means something: ZeRO and overlap only on a
  /// mesh of more than one rank, overlap only with ep > 1.
  std::vector<Strategy> enumerate() const;
};

} // namespace moec::explore

#endif // MOEC_COMPILER_EXPLORE_STRATEGY_H
