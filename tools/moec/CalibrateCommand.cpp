//===- CalibrateCommand.cpp - `moec calibrate`: figures fitted to traced plans ===//
//
//   moec calibrate --cluster BASE.yaml --plan A.moeb --trace A.json
//                  [--plan B.moeb --trace B.json]... -o OUT.yaml
//
// A device's figures fitted to the steps of plans as they ran on it
// (compiler/cost/FigureFit.h): what a GPU's generated kernels reach, which
// microbenchmarks cannot measure without them. Links, memory and every
// figure no traced step depends on are BASE's.
//
//===----------------------------------------------------------------------===//
#include "tools/moec/CalibrateCommand.h"

#include "compiler/cost/ClusterFile.h"
#include "compiler/cost/FigureFit.h"
#include "compiler/cost/PlanCost.h"
#include "compiler/cost/TraceTimes.h"
#include "runtime/core/AtomicFile.h"

#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <iostream>
#include <sstream>

using namespace llvm;

namespace moec::tools {

cl::SubCommand calibrateCommand("calibrate",
                                "Fit a cluster description's device figures to the measured "
                                "steps of plans (moe-run --trace)");
cl::OptionCategory calibrateCategory("moec calibrate options");

namespace {
cl::opt<std::string> basePath(cl::sub(calibrateCommand), cl::cat(calibrateCategory), "cluster",
                              cl::desc("The cluster description to start from (YAML): its links, "
                                       "memory and unfitted figures are kept"),
                              cl::value_desc("file"), cl::Required);
cl::list<std::string> planPaths(cl::sub(calibrateCommand), cl::cat(calibrateCategory), "plan",
                                cl::desc("A plan that ran (repeat; each with its --trace, in "
                                         "order)"),
                                cl::value_desc("plan.moeb"), cl::OneOrMore);
cl::list<std::string> tracePaths(cl::sub(calibrateCommand), cl::cat(calibrateCategory), "trace",
                                 cl::desc("moe-run --trace of the --plan before it"),
                                 cl::value_desc("trace.json"), cl::OneOrMore);
cl::opt<std::string> outputPath(cl::sub(calibrateCommand), cl::cat(calibrateCategory), "o",
                                cl::desc("Where to write the fitted cluster description"),
                                cl::value_desc("file"), cl::Required);

std::string join(const std::vector<std::string> &words) {
  std::string text;
  for (const std::string &w : words)
    text += (text.empty() ? "" : ", ") + w;
  return text.empty() ? "none" : text;
}

std::string percent(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", 100 * x);
  return text;
}
} // namespace

int runCalibrate() {
  if (planPaths.size() != tracePaths.size()) {
    errs() << "moec calibrate: " << planPaths.size() << " --plan and " << tracePaths.size()
           << " --trace: give each plan its trace, in order\n";
    return 1;
  }
  if (rt::Status s = rt::checkOutputPath(outputPath, "-o"); !s) {
    errs() << "moec calibrate: " << s.message() << "\n";
    return 1;
  }
  frontend::DiagnosticList diagnostics;
  std::optional<cost::Cluster> cluster = cost::readClusterFile(basePath, diagnostics);
  diagnostics.print(std::cerr);
  if (!cluster)
    return 1;
  std::vector<cost::TimedStep> steps;
  std::string sources;
  for (size_t i = 0; i < planPaths.size(); ++i) {
    auto plan = rt::LoadedPlan::load(planPaths[i]);
    if (!plan.isOk()) {
      errs() << "moec calibrate: " << plan.status().message() << "\n";
      return 1;
    }
    // Routing is assumed balanced: behind an expert exchange the model
    // gives each rank's experts the mean rank's rows, where the traced run
    // gave its busiest rank more, which the fit would take for slower
    // products. Say so; traces of plans without one (ep=1) fit cleanly.
    cost::PlanCost predicted = cost::planCost(**plan, *cluster);
    for (const cost::StepCost &s : predicted.step.steps)
      if (s.op == "moe.expert_exchange") {
        std::printf("note      %s exchanges tokens between expert-parallel ranks: its "
                    "experts' steps are fitted as if routing were balanced (trace ep=1 plans "
                    "for the device's figures)\n",
                    planPaths[i].c_str());
        break;
      }
    if (predicted.step.function.empty()) {
      errs() << "moec calibrate: " << planPaths[i] << " has neither a training step nor forward\n";
      return 1;
    }
    auto trace = cost::readTraceTimes(tracePaths[i]);
    if (!trace.isOk()) {
      errs() << "moec calibrate: " << trace.status().message() << "\n";
      return 1;
    }
    auto timed = cost::timedSteps(*trace, predicted.step);
    if (!timed.isOk()) {
      errs() << "moec calibrate: " << timed.status().message() << "\n";
      return 1;
    }
    std::printf("traced    %s: %zu compute steps of %s, %d runs after the first (%s)\n",
                planPaths[i].c_str(), timed->size(), predicted.step.function.c_str(), trace->runs,
                tracePaths[i].c_str());
    sources += "  " + planPaths[i] + " (" + predicted.step.function + ", " +
               std::to_string(timed->size()) + " steps) traced in " + tracePaths[i] + "\n";
    steps.insert(steps.end(), timed->begin(), timed->end());
  }
  cost::FigureFit fit = cost::fitDeviceFigures(steps, *cluster);
  if (fit.steps == 0) {
    errs() << "moec calibrate: the traces time no compute step\n";
    return 1;
  }
  std::printf("fitted    %s\n", join(fit.fitted).c_str());
  std::printf("kept      %s (as %s has them)\n", join(fit.kept).c_str(), basePath.c_str());
  std::printf("steps     %zu: median error per step %s before, %s after; summed: measured "
              "%.3f ms, predicted %.3f ms before, %.3f ms after\n",
              fit.steps, percent(fit.medianErrorBefore).c_str(),
              percent(fit.medianErrorAfter).c_str(), fit.measured * 1e3, fit.predictedBefore * 1e3,
              fit.predictedAfter * 1e3);
  std::ostringstream text;
  cost::writeCluster(text, *cluster,
                     "Fitted by moec calibrate to the measured steps of:\n" + sources +
                         "starting from " + basePath +
                         " (its links, memory and the figures "
                         "fitted to nothing).\nFitted: " +
                         join(fit.fitted) + ".\nKept: " + join(fit.kept) +
                         ".\nMedian error per step: " + percent(fit.medianErrorBefore) +
                         " before, " + percent(fit.medianErrorAfter) + " after, over " +
                         std::to_string(fit.steps) + " steps.");
  std::string bytes = text.str();
  if (rt::Status s = rt::writeFileAtomically(
          outputPath, "-o", [&](int fd) { return rt::writeAll(fd, bytes.data(), bytes.size()); });
      !s) {
    errs() << "moec calibrate: " << s.message() << "\n";
    return 1;
  }
  std::printf("wrote     %s\n", outputPath.c_str());
  return 0;
}

} // namespace moec::tools
