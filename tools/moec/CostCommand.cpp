//===- CostCommand.cpp - `moec cost`: what the cost model predicts for one plan ===//
//
//   moec cost PLAN.moeb --cluster FILE [--function NAME] [--expert-load LOG] [--steps]
//             [--trace TRACE.json]
//
// The prediction of one compiled plan, broken down by op: the numbers
// `moec explore` ranks by, for checking them by hand; with a `moe-run
// --trace` of the plan, what each op took beside it.
//
//===----------------------------------------------------------------------===//
#include "tools/moec/CostCommand.h"

#include "compiler/cost/ClusterFile.h"
#include "compiler/cost/PlanCost.h"
#include "compiler/cost/TraceTimes.h"
#include "runtime/core/HumanBytes.h"

#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

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
cl::opt<std::string> tracePath(cl::sub(costCommand), cl::cat(costCategory), "trace",
                               cl::desc("A moe-run --trace of this plan: each op's measured time "
                                        "(the median over the recorded steps after the first) "
                                        "beside the prediction"),
                               cl::value_desc("trace.json"));

/// (predicted - measured) / measured in percent, rounded to a whole one
/// (never "-0").
double percentOff(double predicted, double measured) {
  double percent = std::round(100 * (predicted - measured) / measured);
  return percent == 0 ? 0.0 : percent;
}

void printFunction(const cost::FunctionCost &f, const cost::TraceTimes *trace) {
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
  // Measured: each op's steps' medians, summed.
  std::map<std::string, double> measured;
  double measuredTotal = 0;
  if (trace)
    for (const cost::StepCost &s : f.steps)
      if (auto it = trace->seconds.find(s.step); it != trace->seconds.end()) {
        measured[s.op] += it->second;
        measuredTotal += it->second;
      }
  std::printf("          %-34s %5s %12s %16s %14s %14s", "op", "count", "ms", "GEMM FLOPs", "bytes",
              "sent");
  std::printf(trace ? " %12s %7s\n" : "\n", "measured ms", "error");
  for (const auto &[op, t] : ops) {
    std::printf("          %-34s %5d %12.6f %16.0f %14.0f %14.0f", op.c_str(), t.count,
                t.seconds * 1e3, t.gemmFlops, t.bytes, t.sent);
    if (!trace) {
      std::printf("\n");
      continue;
    }
    double m = measured[op];
    if (m > 0)
      std::printf(" %12.6f %+6.0f%%\n", m * 1e3, percentOff(t.seconds, m));
    else
      std::printf(" %12.6f %7s\n", m * 1e3, "-");
  }
  if (trace) {
    double predicted = 0;
    for (const auto &[op, t] : ops)
      predicted += t.seconds;
    std::printf("          traced: %s, %d runs after the first; the steps' times summed: "
                "predicted %.3f ms, measured %.3f ms (%+.0f%%)\n",
                trace->path.c_str(), trace->runs, predicted * 1e3, measuredTotal * 1e3,
                measuredTotal > 0 ? percentOff(predicted, measuredTotal) : 0.0);
  }
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
  std::optional<cost::TraceTimes> trace;
  if (!tracePath.empty()) {
    auto read = cost::readTraceTimes(tracePath);
    if (!read.isOk()) {
      errs() << "moec cost: --trace " << read.status().message() << "\n";
      return 1;
    }
    // The trace must be of this plan's function.
    if (auto timed = cost::timedSteps(*read, total.step); !timed.isOk()) {
      errs() << "moec cost: --trace " << timed.status().message() << "\n";
      return 1;
    }
    trace = std::move(*read);
  }
  printFunction(total.step, trace ? &*trace : nullptr);
  std::printf("memory    %s per rank\n", total.memory.describe().c_str());
  std::printf("predicted %.0f tokens/s over %lld tokens per step, MFU %.1f%% of %s peak\n",
              total.tokensPerSecond(), static_cast<long long>(total.tokensPerStep),
              100 * total.mfu(*cluster), total.bf16 ? "bf16" : "fp32");
  return 0;
}

} // namespace moec::tools
