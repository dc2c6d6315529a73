// Executor.h - runs one function of a plan, step by step, over an arena.
#ifndef MOEC_RUNTIME_CORE_EXECUTOR_H
#define MOEC_RUNTIME_CORE_EXECUTOR_H

#include "runtime/core/Kernel.h"
#include "runtime/core/Plan.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moec::rt {

class Executor {
public:
  /// Prepares `function`: one arena for its intermediates and a kernel for
  /// every step (an op without a kernel is an error naming the step).
  static StatusOr<std::unique_ptr<Executor>>
  create(std::shared_ptr<LoadedPlan> plan, const std::string &function,
         const KernelRegistry &kernels);

  /// Points a parameter or input tensor at caller-owned bytes.
  void bind(int tensorId, void *data) { tensors_[tensorId].data = data; }
  /// Binds every function input named `name`; false when there is none.
  bool bind(const std::string &name, void *data);
  /// Replaces attribute `attr` of every step running `op`.
  void overrideAttr(const std::string &op, const std::string &attr, AttrOverride value) {
    overrides_[op][attr] = std::move(value);
  }
  /// Accumulates the time spent in each op while on.
  void setProfiling(bool on) { profiling_ = on; }
  const std::map<std::string, double> &profile() const { return profile_; }

  /// One executed step, for Chrome/Perfetto traces.
  struct TraceEvent {
    int step;      // index in the function
    double start;  // seconds since the epoch of the steady clock
    double duration;
  };
  /// Records every executed step while on.
  void setTracing(bool on) { tracing_ = on; }
  std::vector<TraceEvent> takeTrace() { return std::move(trace_); }
  /// Runs every step; the first failing kernel stops the run.
  Status run();

  const TensorRef &tensor(int tensorId) const { return tensors_[tensorId]; }
  const plan::Function &function() const { return *function_; }
  const LoadedPlan &plan() const { return *plan_; }
  size_t arenaBytes() const { return arenaSize_; }
  /// The tensor id of the function input or output named `name`, or -1.
  int inputId(const std::string &name) const;
  int outputId(const std::string &name) const;

private:
  struct PreparedStep {
    const plan::Step *step;
    const Kernel *kernel;
    /// A reshape of a function argument: its result has no arena bytes and
    /// aliases the argument, which may be rebound between runs.
    bool viewOfArgument;
  };

  std::shared_ptr<LoadedPlan> plan_;
  const plan::Function *function_ = nullptr;
  std::vector<TensorRef> tensors_;
  std::unique_ptr<uint8_t[]> arenaStorage_;
  size_t arenaSize_ = 0;
  std::vector<PreparedStep> steps_;
  std::map<std::string, AttrOverrides> overrides_;
  bool profiling_ = false;
  std::map<std::string, double> profile_;
  bool tracing_ = false;
  std::vector<TraceEvent> trace_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_EXECUTOR_H
