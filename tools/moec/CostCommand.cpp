//===- CostCommand.cpp - `moec cost`: what the cost model predicts for one plan ===//
//
//   moec cost PLAN.moeb --cluster FILE [--function NAME] [--expert-load LOG] [--steps]
//
// The prediction of one compiled plan, broken down by op: the numbers
// `moec explore` ranks by, for checking them by hand.
//
//===----------------------------------------------------------------------===//
#include "tools/moec/CostCommand.h"

#include "compiler/cost/ClusterFile.h"
#include "compiler/cost/PlanCost.h"
#include "runtime/core/HumanBytes.h"

#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

using namespace llvm;

namespace moec::tools {

cl::SubCommand costCommand("cost", "Predict a compiled plan's step time, FLOPs, bytes, "
                                   "communication and memory on a cluster, by op");
cl::OptionCategory costCategory("moec cost options");

namespace {
cl::opt<std::string> planPath(cl::sub(costCommand), cl::cat(costCategory), cl::Positional,
                              cl::desc("<plan.moeb>"), cl::Required);
cl::opt<std::string> clusterPath(cl::sub(costCommand), cl::cat(costCategory), "cluster",
                                 cl::desc("Cluster description (YAML; clusters/*.yaml)"),
                                 cl::value_desc("file"), cl::Required);
cl::opt<std::string> functionName(cl::sub(costCommand), cl::cat(costCategory), "function",
                                  cl::desc("The function to cost (default: the training step "
                                           "of the plan's optimizer)"));
cl::opt<std::string> expertLoad(cl::sub(costCommand), cl::cat(costCategory), "expert-load",
                                cl::desc(cost::kExpertLoadHelp), cl::value_desc("log.jsonl"));
cl::opt<bool> steps(cl::sub(costCommand), cl::cat(costCategory), "steps",
                    cl::desc("Also list every step with its start and time"));

void printFunction(const cost::FunctionCost &f) {
  std::printf("function  %s: %.6f ms per run (compute %.6f ms, collectives %.6f ms, "
              "%.6f ms of them exposed)\n",
              f.function.c_str(), f.seconds * 1e3, f.computeSeconds * 1e3,
              f.collectiveSeconds * 1e3, f.exposedCollectiveSeconds() * 1e3);
  std::printf("          GEMM FLOPs %.0f, bytes %.0f, sent %.0f, launches %d\n", f.gemmFlops,
              f.bytes, f.sent, f.launches);
  std::vector<std::pair<std::string, cost::OpTotals>> ops(f.byOp.begin(), f.byOp.end());
  std::stable_sort(ops.begin(), ops.end(), [](const auto &a, const auto &b) {
    return a.second.seconds > b.second.seconds;
  });
  std::printf("          %-34s %5s %12s %16s %14s %14s\n", "op", "count", "ms", "GEMM FLOPs",
              "bytes", "sent");
  for (const auto &[op, t] : ops)
    std::printf("          %-34s %5d %12.6f %16.0f %14.0f %14.0f\n", op.c_str(), t.count,
                t.seconds * 1e3, t.gemmFlops, t.bytes, t.sent);
  if (steps)
    for (const cost::StepCost &s : f.steps)
      std::printf("          step %4d %-34s %s start %.6f ms, %.6f ms\n", s.step, s.op.c_str(),
                  s.collective ? "queue  " : "compute", s.start * 1e3, s.seconds * 1e3);
}
} // namespace

bool readExpertLoadOption(const std::string &path, const char *command,
                          std::optional<cost::ExpertLoad> &load) {
  if (path.empty())
    return true;
  std::string error;
  load = cost::readExpertLoad(path, error);
  if (!load)
    errs() << command << ": --expert-load: " << error << "\n";
  return load.has_value();
}

int runCost() {
  frontend::DiagnosticList diagnostics;
  std::optional<cost::Cluster> cluster = cost::readClusterFile(clusterPath, diagnostics);
  diagnostics.print(std::cerr);
  if (!cluster)
    return 1;
  std::optional<cost::ExpertLoad> load;
  if (!readExpertLoadOption(expertLoad, "moec cost", load))
    return 1;
  const cost::ExpertLoad *loadOrNull = load ? &*load : nullptr;
  auto plan = rt::LoadedPlan::load(planPath);
  if (!plan.isOk()) {
    errs() << "moec cost: " << plan.status().message() << "\n";
    return 1;
  }
  cost::PlanCost total = cost::planCost(**plan, *cluster, loadOrNull);
  if (!functionName.empty()) {
    const plan::Function *function = (*plan)->function(functionName);
    if (!function) {
      errs() << "moec cost: " << planPath << " has no function '" << functionName << "'\n";
      return 1;
    }
    total.step = cost::functionCost(**plan, *function, *cluster, loadOrNull);
    total.memory = rt::planMemory(**plan, {functionName});
  }
  if (total.step.function.empty()) {
    errs() << "moec cost: " << planPath << " has neither a training step nor forward\n";
    return 1;
  }
  if (load)
    if (std::string why = load->mismatch(**plan, *(*plan)->function(total.step.function));
        !why.empty()) {
      errs() << "moec cost: --expert-load " << expertLoad << ": " << why << "\n";
      return 1;
    }
  std::printf("plan      %s on 1 of %lld ranks, %s (%s)\n", planPath.c_str(),
              static_cast<long long>(total.ranks), cluster->device.name.c_str(),
              cluster->name.c_str());
  if (load)
    std::printf("routing   as %s records it (%lld steps): the busiest expert-parallel rank "
                "computes %.3fx the mean rank's rows\n",
                expertLoad.c_str(), static_cast<long long>(load->steps.size()),
                total.step.busiestRank);
  printFunction(total.step);
  std::printf("memory    %s per rank\n", total.memory.describe().c_str());
  std::printf("predicted %.0f tokens/s over %lld tokens per step, MFU %.1f%% of %s peak\n",
              total.tokensPerSecond(), static_cast<long long>(total.tokensPerStep),
              100 * total.mfu(*cluster), total.bf16 ? "bf16" : "fp32");
  return 0;
}

} // namespace moec::tools
