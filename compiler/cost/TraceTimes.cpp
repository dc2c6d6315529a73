//===- TraceTimes.cpp - the measured seconds of a plan's steps ------------===//
#include "compiler/cost/TraceTimes.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>

namespace moec::cost {

rt::StatusOr<TraceTimes> readTraceTimes(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    return rt::Status::error(path + ": cannot read the trace");
  nlohmann::json root = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return rt::Status::error(path + ": not JSON (a moe-run --trace file is expected)");
  if (!root.is_object() || !root.contains("traceEvents") || !root["traceEvents"].is_array())
    return rt::Status::error(path + ": no 'traceEvents' array (a moe-run --trace file is "
                                    "expected)");
  // (run, step index) -> seconds, summed over a group's members.
  std::map<std::pair<int64_t, int>, double> perRun;
  TraceTimes trace;
  trace.path = path;
  size_t n = 0;
  for (const nlohmann::json &e : root["traceEvents"]) {
    ++n;
    auto where = [&] { return path + ": event " + std::to_string(n) + ": "; };
    // A step's kernels (category "kernel") lie inside its own event.
    if (!e.is_object() || e.value("ph", "") != "X" || e.value("cat", "") == "kernel")
      continue;
    if (!e.contains("args") || !e["args"].is_object() || !e["args"].contains("step") ||
        !e["args"]["step"].is_number_integer() || !e["args"].contains("index") ||
        !e["args"]["index"].is_number_integer())
      return rt::Status::error(where() + "no integer args.step and args.index (not a moe-run "
                                         "--trace?)");
    if (!e.contains("dur") || !e["dur"].is_number() || e["dur"].get<double>() < 0 ||
        !e.contains("name") || !e["name"].is_string())
      return rt::Status::error(where() + "no name or no non-negative dur");
    int64_t run = e["args"]["step"].get<int64_t>();
    int index = e["args"]["index"].get<int>();
    std::string op = e["name"].get<std::string>();
    op = op.substr(0, op.find('/')); // a member: its group's op
    auto [known, inserted] = trace.ops.emplace(index, op);
    if (!inserted && known->second != op)
      return rt::Status::error(where() + "step " + std::to_string(index) + " is " + op +
                               " here and " + known->second + " before");
    perRun[{run, index}] += e["dur"].get<double>() * 1e-6;
  }
  std::set<int64_t> runs;
  for (const auto &[key, seconds] : perRun)
    runs.insert(key.first);
  if (runs.size() < 2)
    return rt::Status::error(path + ": " + std::to_string(runs.size()) +
                             " recorded run(s); at least 2 are needed, the first being left out "
                             "(moe-run --steps 2 or more)");
  int64_t first = *runs.begin();
  trace.runs = static_cast<int>(runs.size()) - 1;
  std::map<int, std::vector<double>> byStep;
  for (const auto &[key, seconds] : perRun)
    if (key.first != first)
      byStep[key.second].push_back(seconds);
  for (auto &[index, times] : byStep) {
    std::sort(times.begin(), times.end());
    // The median of the runs that have the step (every run has every
    // step, unless the trace was cut short).
    trace.seconds[index] = times[times.size() / 2];
  }
  return trace;
}

rt::StatusOr<std::vector<TimedStep>> timedSteps(const TraceTimes &trace, const FunctionCost &cost) {
  std::vector<TimedStep> steps;
  for (const StepCost &s : cost.steps) {
    auto op = trace.ops.find(s.step);
    if (op == trace.ops.end())
      return rt::Status::error(trace.path + ": no time for step " + std::to_string(s.step) + " (" +
                               s.op + ") of " + cost.function + ": a trace of another plan?");
    if (op->second != s.op)
      return rt::Status::error(trace.path + ": step " + std::to_string(s.step) + " of " +
                               cost.function + " is " + s.op + " in the plan but " + op->second +
                               " in the trace: a trace of another plan?");
    if (s.collective)
      continue;
    auto seconds = trace.seconds.find(s.step);
    steps.push_back({s.work, s.launches, seconds == trace.seconds.end() ? 0 : seconds->second});
  }
  return steps;
}

} // namespace moec::cost
