// Executor.h - runs one function of a plan, step by step, on a device.
#ifndef MOEC_RUNTIME_CORE_EXECUTOR_H
#define MOEC_RUNTIME_CORE_EXECUTOR_H

#include "runtime/core/CollectiveQueue.h"
#include "runtime/core/Kernel.h"
#include "runtime/core/Plan.h"
#include "runtime/core/RunTimer.h"
#include "runtime/hal/Channel.h"
#include "runtime/hal/Device.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace moec::rt {

class Executor {
public:
  /// Prepares `function` on `device`: one arena of device memory for its
  /// intermediates and, for every step, the plan's generated kernel when the
  /// device runs generated code, else the device's op kernel (an op with
  /// neither is an error naming the step). Collective steps (mesh.*) run
  /// over `channel`, which joins the ranks of the plan's mesh (null: one
  /// rank). The device and the channel outlive the executor.
  static StatusOr<std::unique_ptr<Executor>> create(std::shared_ptr<LoadedPlan> plan,
                                                    const std::string &function,
                                                    hal::Device &device,
                                                    hal::Channel *channel = nullptr);

  /// Points a parameter or input tensor at caller-owned device memory.
  void bind(int tensorId, void *deviceAddress) {
    tensors_[tensorId].data = deviceAddress;
    graph_.reset(); // recorded with the old address
  }
  /// Binds every function input named `name`; false when there is none.
  bool bind(const std::string &name, void *deviceAddress);
  /// Copies tensor `tensorId` (after the last run) into `host`, which holds
  /// its bytes; waits for the device.
  Status read(int tensorId, void *host) const;
  /// Accumulates the time spent in each op while on.
  void setProfiling(bool on) { profiling_ = on; }
  const std::map<std::string, double> &profile() const { return profile_; }

  /// One executed step, or one kernel a step launched, for Chrome/Perfetto
  /// traces. Times come from the device's events (RunTimer): on a GPU, when
  /// the work ran, not when it was queued. A kernel's time runs from the end
  /// of the work before it (the step's first kernel: from the step's
  /// start), so it includes any wait for its launch.
  struct TraceEvent {
    int step;         // index in the function
    std::string name; // its op (a fusion group's member: "moe.fused/moe.score")
    /// Seconds since the epoch of the steady clock: the host's clock when
    /// the run was queued, plus the device's time from then.
    double start;
    double duration;
    /// A generated step's kernel launch (the kernel's name), one event each
    /// inside the step's own; empty for the step itself.
    std::string kernel = "";
  };
  /// Records every executed step while on.
  void setTracing(bool on) { tracing_ = on; }
  std::vector<TraceEvent> takeTrace() { return std::move(trace_); }
  /// Runs the function as one recorded graph (a CUDA graph on a GPU): the
  /// first run launches step by step (libraries initialise then, outside a
  /// recording), the second records every step and replays the recording,
  /// later runs replay it, until a bind() changes an address. Only where the default stream can
  /// record and every step is generated code; never while profiling or tracing (they mark each step
  /// and launch with events). Off by default.
  void setGraphs(bool on) { graphs_ = on; }
  /// Whether runs replay a recorded graph (setGraphs on, and possible).
  bool usesGraphs() const;

  /// Queues every step on the device's default stream; the first failing
  /// kernel stops the run. Results are ready once the stream synchronizes
  /// (read() does). On host devices (cpu, cuda-emu) the collectives run on
  /// a thread of their own while the following steps compute, each step
  /// waiting only for the collectives whose memory it touches; run()
  /// returns once all have finished.
  Status run();
  /// Seconds the steps waited for collectives still in flight (the
  /// communication that compute did not hide), since the last call.
  double takeCommunicationWait();

  const TensorRef &tensor(int tensorId) const { return tensors_[tensorId]; }
  const plan::Function &function() const { return *function_; }
  const LoadedPlan &plan() const { return *plan_; }
  hal::Device &device() const { return *device_; }
  size_t arenaBytes() const { return arenaSize_; }
  /// The tensor id of the function input or output named `name`, or -1.
  int inputId(const std::string &name) const;
  int outputId(const std::string &name) const;

private:
  struct PreparedStep {
    /// The step run: a step of the function, or a member of one (a fusion
    /// group whose generated kernel the device does not run).
    const plan::Step *step;
    const Kernel *kernel; // op kernel; null for views and generated code
    /// Generated code: the kernel launches, in order (empty otherwise).
    std::vector<std::pair<std::string, hal::LaunchConfig>> launches;
    /// The launches' arguments as cuLaunchKernel takes them: the addresses
    /// of the step's tensors' data pointers (and of the workspace's),
    /// fixed when the step is prepared.
    std::vector<void *> arguments;
    /// Outputs written in place over an input of the function: (output,
    /// input) tensor ids, from the plan's `overwrites`.
    std::vector<std::pair<int, int>> overwrites;
    /// The index of the function's step it is (or is a member of).
    int index = 0;
    /// For a member: the function's step it belongs to.
    const plan::Step *group = nullptr;
    /// A collective (mesh.*): what it does, over which group.
    enum class Collective {
      none,
      allReduce,
      allGather,
      allSlice,
      localSlots,      // moe.local_slots: rank-dependent, no communication
      expertExchange,  // moe.expert_exchange: rows to their experts' ranks
      expertReturn,    // moe.expert_return: and back
      allToAll,        // mesh.all_to_all: fixed-size pieces
      slotsToExperts,  // moe.slots_to_experts: the sum of the ranks' slots, a block each
      slotsFromExperts // moe.slots_from_experts: every rank's block, gathered
    } collective = Collective::none;
    int64_t splitAxis = 0, concatAxis = 0; // mesh.all_to_all
    int64_t tokensPerRank = 0; // moe.local_slots
    int64_t chunk = 0, chunks = 1; // expert exchanges: the chunk of every expert's rows
    hal::Reduction reduction = hal::Reduction::sum;
    /// The channel of its group of ranks.
    hal::Channel *channel = nullptr;
  };

  Status prepareSteps();
  /// Whether the step's result depends on the rank (a collective, mesh.*, or
  /// moe.local_slots): the executor runs it with the channel.
  static bool isRankStep(const plan::Step &step);
  /// Prepares a collective step (mesh.all_reduce, mesh.all_gather,
  /// mesh.all_slice, moe.local_slots) over the channel.
  Status prepareCollective(const plan::Step *step, int index);
  /// Runs a prepared collective (on the collective thread, when there is one).
  Status runCollective(const PreparedStep &prepared);
  /// Starts a prepared collective: on the collective thread (host devices),
  /// else in order on the stream.
  Status issueCollective(size_t n);
  /// Grows the collectives' two staging buffers to at least these bytes
  /// (allocated once all steps are prepared; collectives run one at a time,
  /// so they share them).
  void needStaging(size_t first, size_t second) {
    // At least a byte: every use takes the buffers' addresses.
    stagingBytes_[0] = std::max({stagingBytes_[0], first, size_t(1)});
    stagingBytes_[1] = std::max({stagingBytes_[1], second, size_t(1)});
  }
  /// The memory a step reads and writes (its tensors' bytes).
  void stepMemory(const plan::Step &step, std::vector<MemorySpan> &reads,
                  std::vector<MemorySpan> &writes) const;
  /// moe.expert_exchange and moe.expert_return (host memory).
  Status exchangeExperts(const PreparedStep &prepared);
  /// mesh.all_to_all (host memory).
  Status exchangePieces(const PreparedStep &prepared);
  /// Prepares one step that runs the device's op kernel (or is a view).
  Status prepareOpKernel(const plan::Step *step, int index, const plan::Step *group);
  /// Points the function's tensors inside fusion groups into an arena of
  /// their own (allocated once, when a group runs member by member).
  Status allocateInternalArena();
  /// Queues every step (run() without a graph, or while recording one) and
  /// waits for the collectives; after an error, cancels those not started.
  Status runSteps();
  /// Queues every step in order.
  Status queueSteps();
  Status loadGeneratedCode();
  bool usesGeneratedCode(const plan::Step &step) const;
  /// While profiling or tracing: marks the current end of the stream's
  /// work (the start of a step, the end of a launch); nullopt otherwise.
  StatusOr<std::optional<size_t>> markTiming();
  /// Prepared step `n`, from mark `begin` to now, to be added to the profile
  /// and the trace once the run has finished (when on).
  Status recordTiming(size_t n, std::optional<size_t> begin);
  /// Reads the run's marks into the profile and the trace.
  Status finishTiming();

  std::shared_ptr<LoadedPlan> plan_;
  hal::Device *device_ = nullptr;
  hal::Channel *channel_ = nullptr;
  std::unique_ptr<hal::Channel> localChannel_; // when create() got none
  std::unique_ptr<hal::Channel> self_;         // the group of this rank alone
  /// Device memory where collectives pack and regroup rows.
  std::unique_ptr<hal::Buffer> collectiveStaging_[2];
  size_t stagingBytes_[2] = {0, 0};
  const plan::Function *function_ = nullptr;
  std::vector<TensorRef> tensors_;
  std::unique_ptr<hal::Buffer> arena_;
  /// The values inside fusion groups, when the device runs a group's
  /// members one by one.
  std::unique_ptr<hal::Buffer> internalArena_;
  std::shared_ptr<hal::Executable> executable_; // the plan's generated kernels
  std::unique_ptr<hal::Buffer> workspace_;      // the largest any step needs
  void *workspaceAddress_ = nullptr;
  size_t arenaSize_ = 0;
  std::vector<PreparedStep> steps_;
  bool profiling_ = false;
  std::map<std::string, double> profile_;
  bool tracing_ = false;
  std::vector<TraceEvent> trace_;
  /// What this run times (profiling or tracing): a step's span, or a
  /// launch's (`kernel` set), between two marks of `timer_`.
  struct TimedSpan {
    size_t n;
    std::string kernel;
    size_t begin, end;
  };
  std::vector<TimedSpan> spans_;
  std::unique_ptr<RunTimer> timer_;
  bool graphs_ = false;
  bool allGenerated_ = true; // every step a view or generated code
  std::unique_ptr<hal::Graph> graph_;
  bool warmedUp_ = false; // a run has launched step by step
  /// The collectives in flight (host devices); last, so that it finishes
  /// them before the memory they use goes.
  std::unique_ptr<CollectiveQueue> collectives_;
  double communicationWait_ = 0; // on devices without a collective thread
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_EXECUTOR_H
