// TraceFile.cpp - an executor's recorded steps as a Chrome/Perfetto trace.
#include "runtime/core/TraceFile.h"

#include "runtime/core/AtomicFile.h"

#include <nlohmann/json.hpp>

namespace moec::rt {

Status writeTraceFile(const std::string &path, const std::string &flag, const TracedRuns &runs) {
  using json = nlohmann::ordered_json;
  json events = json::array();
  double origin =
      runs.empty() || runs.front().second.empty() ? 0 : runs.front().second.front().start;
  for (const auto &[step, trace] : runs)
    for (const Executor::TraceEvent &e : trace) {
      json args = {{"step", step}, {"index", e.step}};
      if (!e.kernel.empty())
        args["op"] = e.name;
      events.push_back({{"name", e.kernel.empty() ? e.name : e.kernel},
                        {"cat", e.kernel.empty() ? "op" : "kernel"},
                        {"ph", "X"},
                        {"ts", (e.start - origin) * 1e6},
                        {"dur", e.duration * 1e6},
                        {"pid", 1},
                        {"tid", 1},
                        {"args", args}});
    }
  std::string text = json{{"traceEvents", events}, {"displayTimeUnit", "ms"}}.dump();
  return writeFileAtomically(path, flag,
                             [&](int fd) { return writeAll(fd, text.data(), text.size()); });
}

} // namespace moec::rt
