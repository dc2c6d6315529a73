//===- ExploreCommand.cpp - `moec explore`: strategies ranked by the cost model ===//
//
//   moec explore MODEL --cluster FILE --world N [--batch B] [--seq-len S]
//                [--json] [--plot FILE.svg] [--top N] [strategy lists]
//
//===----------------------------------------------------------------------===//
#include "tools/moec/ExploreCommand.h"

#include "compiler/cost/ClusterFile.h"
#include "compiler/explore/Report.h"
#include "compiler/frontend/ModelDescription.h"
#include "runtime/core/AtomicFile.h"
#include "tools/moec/CostCommand.h"

#include "llvm/Support/raw_ostream.h"

#include <iostream>
#include <sstream>
#include <thread>

using namespace llvm;

namespace moec::tools {

cl::SubCommand exploreCommand("explore",
                              "Rank fusion and sharding strategies for a model on a cluster "
                              "by the cost model's predictions (docs/design/cost-model.md)");
cl::OptionCategory exploreCategory("moec explore options");

namespace {
cl::opt<std::string> model(cl::sub(exploreCommand), cl::cat(exploreCategory), cl::Positional,
                           cl::desc("<model.yaml | config.json>"), cl::Required);
cl::opt<std::string> clusterPath(cl::sub(exploreCommand), cl::cat(exploreCategory), "cluster",
                                 cl::desc("Cluster description (YAML; clusters/*.yaml)"),
                                 cl::value_desc("file"), cl::Required);
cl::opt<int64_t> world(cl::sub(exploreCommand), cl::cat(exploreCategory), "world",
                       cl::desc("Devices (ranks) to train on"), cl::Required);
cl::opt<int64_t> batch(cl::sub(exploreCommand), cl::cat(exploreCategory), "batch",
                       cl::desc("Global batch (default: training.batch_size)"), cl::init(0));
cl::opt<int64_t> seqLen(cl::sub(exploreCommand), cl::cat(exploreCategory), "seq-len",
                        cl::desc("Sequence length (default: training.seq_len)"), cl::init(0));
cl::list<std::string> overrides(cl::sub(exploreCommand), cl::cat(exploreCategory), "set",
                                cl::desc("Override a description key, as moec --set"),
                                cl::value_desc("key=value"));
cl::list<std::string> substitutions(cl::sub(exploreCommand), cl::cat(exploreCategory), "substitute",
                                    cl::desc("As moec --substitute"),
                                    cl::value_desc("feature=replacement"));
cl::opt<bool> json(cl::sub(exploreCommand), cl::cat(exploreCategory), "json",
                   cl::desc("Print every strategy as JSON instead of the table"));
cl::opt<std::string> plot(cl::sub(exploreCommand), cl::cat(exploreCategory), "plot",
                          cl::desc("Write an SVG of step time against memory per rank, the "
                                   "Pareto front marked"),
                          cl::value_desc("file.svg"));
cl::opt<unsigned> top(cl::sub(exploreCommand), cl::cat(exploreCategory), "top",
                      cl::desc("Strategies the table shows (default 20; 0: all)"), cl::init(20));
cl::opt<std::string> expertLoad(cl::sub(exploreCommand), cl::cat(exploreCategory), "expert-load",
                                cl::desc(cost::kExpertLoadHelp), cl::value_desc("log.jsonl"));
cl::opt<unsigned> jobs(cl::sub(exploreCommand), cl::cat(exploreCategory), "jobs",
                       cl::desc("Strategies compiled at once (default: the cores)"), cl::init(0));
cl::list<std::string> fusions(cl::sub(exploreCommand), cl::cat(exploreCategory), "fusion",
                              cl::desc("Fusion strategies to try on a cuda cluster (default "
                                       "none,moe,all)"),
                              cl::CommaSeparated);
cl::list<std::string> precisions(cl::sub(exploreCommand), cl::cat(exploreCategory), "precision",
                                 cl::desc("Precisions to try (default fp32,bf16)"),
                                 cl::CommaSeparated);
cl::list<unsigned> zeroStages(cl::sub(exploreCommand), cl::cat(exploreCategory), "zero",
                              cl::desc("ZeRO stages to try (default 0,1)"), cl::CommaSeparated);
cl::list<int64_t> overlapChunks(cl::sub(exploreCommand), cl::cat(exploreCategory), "overlap-chunks",
                                cl::desc("Overlap chunks to try with ep > 1 (default 1,2,4)"),
                                cl::CommaSeparated);
cl::list<double> capacityFactors(cl::sub(exploreCommand), cl::cat(exploreCategory),
                                 "capacity-factors",
                                 cl::desc("Routers' capacity factors to try, 0 for dropless "
                                          "(default: the description's)"),
                                 cl::CommaSeparated);
cl::list<std::string> meshes(cl::sub(exploreCommand), cl::cat(exploreCategory), "mesh",
                             cl::desc("Meshes to try, e.g. --mesh dp=8,ep=1 --mesh dp=2,ep=4 "
                                      "(default: every dp x ep of --world whose ep divides the "
                                      "experts)"),
                             cl::value_desc("dp=D,ep=E"));

/// The experts of the model's largest MoE layer (meshes split them), or 0.
int64_t expertsOf(const CompileOptions &base) {
  frontend::DiagnosticList diagnostics;
  frontend::ImportOptions import;
  import.substituteMlaWithGqa =
      std::count(base.substitutions.begin(), base.substitutions.end(), "mla=gqa") > 0;
  std::optional<frontend::ModelConfig> config =
      frontend::loadModel(base.input, import, base.overrides, diagnostics);
  if (!config) {
    diagnostics.print(std::cerr);
    return -1;
  }
  return config->moe ? config->moe->numExperts : 0;
}

/// The strategy lists the options give, with the defaults for `cluster`.
std::optional<explore::StrategySpace> strategySpace(const cost::Cluster &cluster, int64_t experts) {
  explore::StrategySpace space;
  bool cuda = cluster.device.kind == "cuda";
  std::vector<std::string> fusionNames(fusions.begin(), fusions.end());
  if (fusionNames.empty())
    fusionNames =
        cuda ? std::vector<std::string>{"none", "moe", "all"} : std::vector<std::string>{"none"};
  for (const std::string &name : fusionNames) {
    std::optional<moe::FusionStrategy> fusion = moe::symbolizeFusionStrategy(name);
    if (!fusion) {
      errs() << "moec explore: --fusion " << name
             << " is not a fusion strategy (none, router, dispatch, expert, moe, all)\n";
      return std::nullopt;
    }
    if (!cuda && *fusion != moe::FusionStrategy::none) {
      errs() << "moec explore: --fusion " << name << ": " << cluster.name
             << " is a cpu cluster, whose plans run one kernel per op\n";
      return std::nullopt;
    }
    space.fusions.push_back(*fusion);
  }
  std::vector<std::string> precisionNames(precisions.begin(), precisions.end());
  if (precisionNames.empty())
    precisionNames = {"fp32", "bf16"};
  for (const std::string &name : precisionNames) {
    std::optional<moe::Precision> precision = moe::symbolizePrecision(name);
    if (!precision) {
      errs() << "moec explore: --precision " << name << " is not fp32 or bf16\n";
      return std::nullopt;
    }
    space.precisions.push_back(*precision);
  }
  space.zeroStages.assign(zeroStages.begin(), zeroStages.end());
  if (space.zeroStages.empty())
    space.zeroStages = {0, 1};
  for (unsigned stage : space.zeroStages)
    if (stage > 1) {
      errs() << "moec explore: --zero " << stage << " is not built (0 or 1)\n";
      return std::nullopt;
    }
  space.overlapChunks.assign(overlapChunks.begin(), overlapChunks.end());
  if (space.overlapChunks.empty())
    space.overlapChunks = {1, 2, 4};
  for (int64_t chunks : space.overlapChunks)
    if (chunks < 1) {
      errs() << "moec explore: --overlap-chunks " << chunks << ": give at least 1\n";
      return std::nullopt;
    }
  for (double factor : capacityFactors) {
    if (!(factor >= 0) || factor > 1e6) {
      errs() << "moec explore: --capacity-factors " << factor
             << ": give 0 (dropless) or a positive factor\n";
      return std::nullopt;
    }
    space.capacityFactors.push_back(factor);
  }
  if (space.capacityFactors.empty())
    space.capacityFactors = {std::nullopt};
  for (const std::string &text : meshes) {
    std::string error;
    std::optional<MeshShape> mesh = parseMeshShape(text, error);
    if (!mesh) {
      errs() << "moec explore: " << error << "\n";
      return std::nullopt;
    }
    if (mesh->ranks() != world) {
      errs() << "moec explore: --mesh " << text << " has " << mesh->ranks()
             << " ranks, not --world " << world << "\n";
      return std::nullopt;
    }
    space.meshes.push_back(*mesh);
  }
  if (space.meshes.empty())
    space.meshes = explore::StrategySpace::meshesOf(world, experts);
  return space;
}

bool writePlot(const std::vector<explore::Outcome> &outcomes, const explore::ReportContext &c) {
  std::ostringstream svg;
  explore::writeSvgPlot(svg, outcomes, c);
  std::string text = svg.str();
  rt::Status written = rt::writeFileAtomically(
      plot, "--plot", [&](int fd) { return rt::writeAll(fd, text.data(), text.size()); });
  if (!written)
    errs() << "moec explore: " << written.message() << "\n";
  return static_cast<bool>(written);
}
} // namespace

int runExplore() {
  if (world < 1 || world > (int64_t(1) << 20)) {
    errs() << "moec explore: --world " << world << ": give between 1 and 1048576 devices\n";
    return 1;
  }
  if (batch < 0 || seqLen < 0) {
    errs() << "moec explore: --batch and --seq-len must be positive\n";
    return 1;
  }
  if (StringRef(model).ends_with(".mlir")) {
    errs() << "moec explore: " << model
           << " is IR with fixed shapes; explore compiles a description for each mesh\n";
    return 1;
  }
  if (!plot.empty())
    if (rt::Status s = rt::checkOutputPath(plot, "--plot"); !s) {
      errs() << "moec explore: " << s.message() << "\n";
      return 1;
    }
  frontend::DiagnosticList diagnostics;
  std::optional<cost::Cluster> cluster = cost::readClusterFile(clusterPath, diagnostics);
  diagnostics.print(std::cerr);
  if (!cluster)
    return 1;
  if (!cluster->nodesFor(world)) {
    errs() << "moec explore: --world " << world << " is more than the "
           << cluster->nodes * cluster->devicesPerNode << " devices of " << cluster->name << " ("
           << clusterPath << ")\n";
    return 1;
  }
  std::optional<cost::ExpertLoad> load;
  if (!readExpertLoadOption(expertLoad, "moec explore", load))
    return 1;
  CompileOptions base;
  base.input = model;
  base.overrides.assign(overrides.begin(), overrides.end());
  base.substitutions.assign(substitutions.begin(), substitutions.end());
  base.batch = batch;
  base.seqLen = seqLen;
  // Explore weighs each plan's memory against the cluster's devices itself
  // and says what a plan too large would take: moec's own limit (64 TiB
  // by default, against runaway descriptions) gives way to 4 PiB, far
  // enough from 2^63 bytes that the memory planner's sums cannot overflow.
  base.memoryLimit = double(uint64_t(1) << 52);
  base.target = cluster->device.kind == "cuda" ? CompileTarget::Cuda : CompileTarget::Cpu;
  int64_t experts = expertsOf(base);
  if (experts < 0)
    return 1;
  std::optional<explore::StrategySpace> space = strategySpace(*cluster, experts);
  if (!space)
    return 1;
  std::vector<explore::Strategy> strategies = space->enumerate();
  unsigned threads = jobs ? unsigned(jobs) : std::max(1u, std::thread::hardware_concurrency());
  std::vector<explore::Outcome> outcomes =
      explore::exploreStrategies(base, strategies, *cluster, threads, load ? &*load : nullptr);
  explore::ReportContext context{model, &*cluster, world, top, expertLoad, load ? &*load : nullptr};
  if (json)
    explore::printJson(std::cout, outcomes, context);
  else
    explore::printTable(std::cout, outcomes, context);
  if (!plot.empty() && !writePlot(outcomes, context))
    return 1;
  return explore::rankOutcomes(outcomes).empty() ? 2 : 0;
}

} // namespace moec::tools
