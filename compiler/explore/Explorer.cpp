//===- Explorer.cpp - every strategy compiled and costed -------------------===//
#include "compiler/explore/Explorer.h"

#include "runtime/core/HumanBytes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace moec::explore {
namespace {

/// A word needs quotes in a shell command when it holds anything but
/// letters, digits and `-_./=,:+`.
std::string shellWord(const std::string &word) {
  bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string("-_./=,:+").find(c) != std::string::npos;
  });
  if (plain)
    return word;
  std::string quoted = "'";
  for (char c : word)
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// The first error line of a compile's messages, without the tool's prefix.
std::string firstError(const std::string &messages) {
  size_t start = 0;
  std::string fallback;
  while (start < messages.size()) {
    size_t end = messages.find('\n', start);
    std::string line = messages.substr(start, end == std::string::npos ? end : end - start);
    if (line.find("error") != std::string::npos)
      return line;
    if (fallback.empty() && !line.empty())
      fallback = line;
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  if (fallback.rfind("moec: ", 0) == 0)
    fallback = fallback.substr(6);
  return fallback.empty() ? "the plan could not be compiled" : fallback;
}

Outcome exploreOne(const CompileOptions &base, const Strategy &strategy,
                   const cost::Cluster &cluster, const cost::ExpertLoad *load) {
  Outcome outcome{strategy, strategy.apply(base), std::nullopt, ""};
  mlir::DialectRegistry registry;
  ModelCompiler::registerDialects(registry);
  mlir::MLIRContext context(registry, mlir::MLIRContext::Threading::DISABLED);
  std::string messages;
  llvm::raw_string_ostream errors(messages);
  // Diagnostics on ops (a pass that cannot shard, fuse or lower) are this
  // strategy's reasons, not the terminal's.
  mlir::ScopedDiagnosticHandler capture(&context, [&](mlir::Diagnostic &diag) {
    if (diag.getSeverity() == mlir::DiagnosticSeverity::Error)
      errors << "error: " << diag.str() << "\n";
    return mlir::success();
  });
  ModelCompiler compiler(context, outcome.options, errors);
  mlir::FailureOr<std::vector<uint8_t>> bytes =
      compiler.compile(/*sourcesOnly=*/cluster.device.kind == "cuda");
  if (failed(bytes)) {
    outcome.dropped = firstError(errors.str());
    return outcome;
  }
  auto plan = rt::LoadedPlan::fromBytes(std::move(*bytes), base.input);
  if (!plan.isOk()) {
    outcome.dropped = "internal error: " + plan.status().message();
    return outcome;
  }
  cost::PlanCost cost = cost::planCost(**plan, cluster, load);
  if (load)
    if (const plan::Function *function = (*plan)->function(cost.step.function))
      if (std::string why = load->mismatch(**plan, *function); !why.empty()) {
        outcome.dropped = "--expert-load: " + why;
        return outcome;
      }
  if (cost.memory.total() > cluster.device.memory) {
    outcome.dropped = "needs " + cost.memory.describe() + " per rank, more than the device's " +
                      rt::humanBytes(cluster.device.memory);
    outcome.oversized = std::move(cost);
    return outcome;
  }
  outcome.cost = std::move(cost);
  return outcome;
}
} // namespace

std::string Outcome::command(const std::string &plan) const {
  std::string command = "moec " + shellWord(options.input);
  for (const std::string &arg : options.arguments())
    command += " " + shellWord(arg);
  if (options.batch)
    command += " --batch " + std::to_string(options.batch);
  if (options.seqLen)
    command += " --seq-len " + std::to_string(options.seqLen);
  return command + " -o " + shellWord(plan);
}

std::vector<Outcome> exploreStrategies(const CompileOptions &base,
                                       const std::vector<Strategy> &strategies,
                                       const cost::Cluster &cluster, unsigned jobs,
                                       const cost::ExpertLoad *load) {
  std::vector<Outcome> outcomes(strategies.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < strategies.size();)
      outcomes[i] = exploreOne(base, strategies[i], cluster, load);
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < std::max(1u, jobs); ++t)
    threads.emplace_back(work);
  work();
  for (std::thread &thread : threads)
    thread.join();
  return outcomes;
}

std::vector<size_t> rankOutcomes(const std::vector<Outcome> &outcomes) {
  std::vector<size_t> ranked;
  for (size_t i = 0; i < outcomes.size(); ++i)
    if (outcomes[i].cost)
      ranked.push_back(i);
  std::stable_sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) {
    const cost::PlanCost &x = *outcomes[a].cost, &y = *outcomes[b].cost;
    if (x.step.seconds != y.step.seconds)
      return x.step.seconds < y.step.seconds;
    return x.memory.total() < y.memory.total();
  });
  return ranked;
}

std::vector<size_t> paretoFront(const std::vector<Outcome> &outcomes) {
  std::vector<size_t> byMemory;
  for (size_t i = 0; i < outcomes.size(); ++i)
    if (outcomes[i].cost)
      byMemory.push_back(i);
  std::stable_sort(byMemory.begin(), byMemory.end(), [&](size_t a, size_t b) {
    const cost::PlanCost &x = *outcomes[a].cost, &y = *outcomes[b].cost;
    if (x.memory.total() != y.memory.total())
      return x.memory.total() < y.memory.total();
    return x.step.seconds < y.step.seconds;
  });
  std::vector<size_t> front;
  double best = 0;
  for (size_t i : byMemory) {
    double seconds = outcomes[i].cost->step.seconds;
    if (front.empty() || seconds < best) {
      front.push_back(i);
      best = seconds;
    }
  }
  return front;
}

} // namespace moec::explore
