// TraceFile.h - an executor's recorded steps as a Chrome/Perfetto trace:
// what `moe-run --trace` and `moe_layer_bench --trace` write, and what
// `moec cost --trace` and `moec calibrate` read (compiler/cost/TraceTimes.h).
#ifndef MOEC_RUNTIME_CORE_TRACEFILE_H
#define MOEC_RUNTIME_CORE_TRACEFILE_H

#include "runtime/core/Executor.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace moec::rt {

/// The events of each recorded run (a training step's number, then what
/// Executor::takeTrace gave), in order.
using TracedRuns = std::vector<std::pair<int64_t, std::vector<Executor::TraceEvent>>>;

/// Writes `runs` to `path` (atomically; `flag` names the option in
/// errors) as Chrome trace events: one complete event per executed step
/// (category "op"), and inside a generated step's one per kernel it
/// launched (category "kernel", named after the kernel, `args.op` its
/// step's op); `args.step` the run and `args.index` the function's step,
/// times from the first event.
Status writeTraceFile(const std::string &path, const std::string &flag, const TracedRuns &runs);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_TRACEFILE_H
