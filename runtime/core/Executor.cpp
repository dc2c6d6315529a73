// Executor.cpp - runs one function of a plan, step by step, on a device.
#include "runtime/core/Executor.h"
#include "runtime/hal/LocalChannel.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

namespace moec::rt {

StatusOr<std::unique_ptr<Executor>> Executor::create(std::shared_ptr<LoadedPlan> plan,
                                                     const std::string &function,
                                                     hal::Device &device, hal::Channel *channel) {
  std::unique_ptr<Executor> ex(new Executor());
  ex->plan_ = plan;
  ex->device_ = &device;
  if (!channel) {
    ex->localChannel_ = std::make_unique<hal::LocalChannel>();
    channel = ex->localChannel_.get();
  }
  ex->channel_ = channel;
  ex->function_ = plan->function(function);
  if (!ex->function_)
    return Status::error(plan->path() + ": the plan has no function '" + function + "'");

  int buffer = ex->function_->buffer();
  uint8_t *arena = nullptr;
  if (buffer >= 0) {
    ex->arenaSize_ = plan->root().buffers()->Get(buffer)->size();
    auto storage = device.allocate(ex->arenaSize_); // zeroed once
    if (!storage)
      return Status::error(plan->path() + ": the arena of '" + function +
                           "': " + storage.status().message());
    ex->arena_ = std::move(*storage);
    arena = static_cast<uint8_t *>(ex->arena_->address());
  }

  for (int id = 0; id < plan->numTensors(); ++id) {
    TensorRef ref = plan->describe(id);
    const plan::Tensor &t = plan->tensor(id);
    if (t.buffer() >= 0 && t.buffer() == buffer)
      ref.data = arena + t.offset();
    ex->tensors_.push_back(ref);
  }

  if (Status s = ex->prepareSteps(); !s)
    return s;
  return ex;
}

bool Executor::usesGeneratedCode(const plan::Step &step) const {
  return device_->runsGeneratedCode() && step.kernel() >= 0;
}

Status Executor::loadGeneratedCode() {
  const auto *kernels = plan_->root().kernels();
  bool needed = false;
  for (const plan::Step *step : *function_->steps())
    needed = needed || usesGeneratedCode(*step);
  if (!needed)
    return Status::ok();
  // Every kernel of the plan, so that the functions of one plan share one
  // executable (devices cache it by the kernels' names).
  std::vector<const plan::Kernel *> all(kernels->begin(), kernels->end());
  uint64_t workspace = 0;
  for (const plan::Step *step : *function_->steps())
    if (usesGeneratedCode(*step))
      workspace = std::max(workspace, kernels->Get(step->kernel())->workspace());
  if (workspace) {
    auto buffer = device_->allocate(workspace);
    if (!buffer)
      return Status::error(plan_->path() + ": the kernels' workspace: " +
                           buffer.status().message());
    workspace_ = std::move(*buffer);
    workspaceAddress_ = workspace_->address();
  }
  auto executable = device_->loadExecutable(all);
  if (!executable)
    return Status::error(plan_->path() + ": " + executable.status().message());
  executable_ = std::move(*executable);
  return Status::ok();
}

Status Executor::prepareSteps() {
  if (!function_->steps())
    return Status::ok();
  if (Status s = loadGeneratedCode(); !s)
    return s;
  for (unsigned i = 0; i < function_->steps()->size(); ++i) {
    const plan::Step *step = function_->steps()->Get(i);
    if (step->view()) {
      if (Status s = prepareOpKernel(step, i, nullptr); !s)
        return s;
      continue;
    }
    if (isRankStep(*step)) {
      allGenerated_ = false; // collectives are not recorded in graphs
      if (Status s = prepareCollective(step, i); !s)
        return s;
      continue;
    }
    if (usesGeneratedCode(*step)) {
      const plan::Kernel *code = plan_->root().kernels()->Get(step->kernel());
      PreparedStep prepared{step, nullptr, {}, {}};
      prepared.index = static_cast<int>(i);
      for (const auto *ids : {step->inputs(), step->outputs()})
        if (ids)
          for (int id : *ids)
            prepared.arguments.push_back(&tensors_[id].data);
      if (code->workspace() > 0)
        prepared.arguments.push_back(&workspaceAddress_);
      for (const plan::Launch *launch : *code->launches()) {
        hal::LaunchConfig config;
        for (unsigned d = 0; d < 3; ++d) {
          config.grid[d] = launch->grid()->Get(d);
          config.block[d] = launch->block()->Get(d);
        }
        config.argumentCount = static_cast<unsigned>(prepared.arguments.size());
        prepared.launches.push_back({launch->entry()->str(), config});
      }
      steps_.push_back(std::move(prepared));
      continue;
    }
    allGenerated_ = false;
    if (step->members()) {
      // A fusion group, run op by op.
      if (Status s = allocateInternalArena(); !s)
        return s;
      for (const plan::Step *member : *step->members())
        if (Status s = prepareOpKernel(member, i, step); !s)
          return s;
      continue;
    }
    if (Status s = prepareOpKernel(step, i, nullptr); !s)
      return s;
  }
  for (int i = 0; i < 2; ++i)
    if (stagingBytes_[i]) {
      auto staging = device_->allocate(stagingBytes_[i]);
      if (!staging)
        return Status::error(plan_->path() +
                             ": the collectives' staging memory: " + staging.status().message());
      collectiveStaging_[i] = std::move(*staging);
    }
  // Every step was prepared once, in order: outputs written in place.
  for (PreparedStep &prepared : steps_)
    if (prepared.step->outputs())
      for (int id : *prepared.step->outputs())
        if (int target = plan_->tensor(id).overwrites(); target >= 0)
          prepared.overwrites.push_back({id, target});
  return Status::ok();
}

Status Executor::prepareOpKernel(const plan::Step *step, int index, const plan::Step *group) {
  PreparedStep prepared{step, nullptr, {}, {}};
  prepared.index = index;
  prepared.group = group;
  if (!step->view()) {
    prepared.kernel = device_->findKernel(step->op()->str());
    if (!prepared.kernel)
      return Status::error(
          plan_->path() + ": step " + std::to_string(index) + " runs '" + step->op()->str() + "'" +
          (group ? " (in " + group->op()->str() + ")" : std::string()) + ", which the " +
          hal::deviceKindName(device_->kind()) + " device has no kernel for");
  }
  steps_.push_back(std::move(prepared));
  return Status::ok();
}

Status Executor::allocateInternalArena() {
  int buffer = function_->internal_buffer();
  if (internalArena_ || buffer < 0)
    return Status::ok();
  auto storage = device_->allocate(plan_->root().buffers()->Get(buffer)->size());
  if (!storage)
    return Status::error(plan_->path() + ": the fusion groups' values of '" +
                         function_->name()->str() + "': " + storage.status().message());
  internalArena_ = std::move(*storage);
  auto *base = static_cast<uint8_t *>(internalArena_->address());
  for (int id = 0; id < plan_->numTensors(); ++id)
    if (plan_->tensor(id).buffer() == buffer)
      tensors_[id].data = base + plan_->tensor(id).offset();
  return Status::ok();
}

bool Executor::bind(const std::string &name, void *deviceAddress) {
  bool bound = false;
  if (function_->inputs())
    for (int id : *function_->inputs())
      if (plan_->tensor(id).name()->str() == name) {
        bind(id, deviceAddress);
        bound = true;
      }
  return bound;
}

Status Executor::read(int tensorId, void *host) const {
  const TensorRef &t = tensors_[tensorId];
  if (!t.data)
    return Status::error("'" + plan_->tensor(tensorId).name()->str() + "' holds no data");
  hal::Stream &stream = device_->defaultStream();
  if (Status s = stream.download(host, t.data, t.bytes()); !s)
    return s;
  return stream.synchronize();
}

int Executor::inputId(const std::string &name) const {
  if (function_->inputs())
    for (int id : *function_->inputs())
      if (plan_->tensor(id).name()->str() == name)
        return id;
  return -1;
}

int Executor::outputId(const std::string &name) const {
  if (function_->outputs())
    for (int id : *function_->outputs())
      if (plan_->tensor(id).name()->str() == name)
        return id;
  return -1;
}

bool Executor::usesGraphs() const {
  return graphs_ && allGenerated_ && !profiling_ && !tracing_ &&
         device_->defaultStream().supportsCapture();
}

Status Executor::run() {
  if (!usesGraphs())
    return runSteps();
  hal::Stream &stream = device_->defaultStream();
  if (!warmedUp_) {
    // The first run launches step by step: what libraries do on first use
    // (cuBLASLt loads its kernels lazily) happens outside a recording.
    warmedUp_ = true;
    return runSteps();
  }
  if (!graph_) {
    if (Status s = stream.beginCapture(); !s)
      return s;
    Status recorded = runSteps();
    auto graph = stream.endCapture();
    if (!recorded)
      return recorded;
    if (!graph)
      return Status::error("recording the step as a graph: " + graph.status().message());
    graph_ = std::move(*graph);
  }
  return graph_->launch(stream);
}

Status Executor::runSteps() {
  if (collectives_)
    collectives_->reset();
  if (Status s = queueSteps(); !s) {
    // Nothing of this run may go on touching its memory or the channel.
    if (collectives_)
      collectives_->cancel();
    return s;
  }
  if (collectives_)
    if (Status s = collectives_->drain(); !s)
      return s;
  return profiling_ || tracing_ ? finishTiming() : Status::ok();
}

Status Executor::queueSteps() {
  hal::Stream &stream = device_->defaultStream();
  spans_.clear();
  if (profiling_ || tracing_) {
    if (!timer_)
      timer_ = std::make_unique<RunTimer>(*device_);
    if (Status s = timer_->start(stream); !s)
      return s;
  }
  for (size_t n = 0; n < steps_.size(); ++n) {
    const PreparedStep &prepared = steps_[n];
    const plan::Step &step = *prepared.step;
    const size_t i = prepared.index; // the function's step
    std::vector<TensorRef *> inputs, outputs;
    if (step.inputs())
      for (int id : *step.inputs()) {
        if (!tensors_[id].data)
          return Status::error("step " + std::to_string(i) + " (" + step.op()->str() +
                               ") reads '" + plan_->tensor(id).name()->str() +
                               "', which was never bound");
        inputs.push_back(&tensors_[id]);
      }
    if (step.outputs())
      for (int id : *step.outputs())
        outputs.push_back(&tensors_[id]);
    // Written in place over an input (an optimizer update): its bytes are
    // that input's, which may be rebound between runs.
    for (auto [id, target] : prepared.overwrites) {
      if (!tensors_[target].data)
        return Status::error("step " + std::to_string(i) + " (" + step.op()->str() + ") updates '" +
                             plan_->tensor(target).name()->str() +
                             "' in place, which was never bound");
      tensors_[id].data = tensors_[target].data;
    }
    if (prepared.step->view()) {
      // Arguments may be rebound between runs: alias on every run.
      outputs[0]->data = inputs[0]->data;
      continue;
    }
    auto start = markTiming();
    if (!start)
      return start.status();
    if (prepared.collective != PreparedStep::Collective::none) {
      if (Status s = issueCollective(n); !s)
        return s;
      if (Status s = recordTiming(n, *start); !s)
        return s;
      continue;
    }
    if (collectives_ && collectives_->busy()) {
      // Wait for the collectives in flight whose memory this step touches.
      std::vector<MemorySpan> reads, writes;
      stepMemory(step, reads, writes);
      if (Status s = collectives_->waitForConflicts(reads, writes); !s)
        return s;
    }
    if (!prepared.launches.empty()) {
      void **arguments = const_cast<void **>(prepared.arguments.data());
      std::optional<size_t> launched = *start;
      for (const auto &[entry, config] : prepared.launches) {
        if (Status status = executable_->launch(stream, entry, config, arguments); !status)
          return Status::error("step " + std::to_string(i) + " (" + step.op()->str() +
                               "): " + status.message());
        auto end = markTiming();
        if (!end)
          return end.status();
        if (*end)
          spans_.push_back({n, entry, *launched, **end});
        launched = *end;
      }
      if (*start) // the step ends with its last kernel
        spans_.push_back({n, "", **start, *launched});
      continue;
    }
    StepContext context(step, stream, std::move(inputs), std::move(outputs));
    if (Status status = (*prepared.kernel)(context); !status)
      return Status::error("step " + std::to_string(i) + ": " + status.message());
    if (!context.missingAttribute().empty())
      return Status::error(plan_->path() + ": step " + std::to_string(i) + " (" +
                           step.op()->str() + ") has no attribute '" +
                           context.missingAttribute() +
                           "'; the plan was not written by this moec: compile it again");
    if (Status s = recordTiming(n, *start); !s)
      return s;
  }
  return Status::ok();
}

Status Executor::issueCollective(size_t n) {
  const PreparedStep &prepared = steps_[n];
  const plan::Step &step = *prepared.step;
  auto run = [this, &prepared]() -> Status {
    if (Status s = runCollective(prepared); !s)
      return Status::error("step " + std::to_string(prepared.index) + " (" +
                           prepared.step->op()->str() + "): " + s.message());
    return Status::ok();
  };
  if (device_->kind() == hal::DeviceKind::cuda) {
    // Ordered on the stream like the kernels around it.
    auto start = std::chrono::steady_clock::now();
    Status s = run();
    communicationWait_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return s;
  }
  // Kernels queued before it have written its inputs.
  if (Status s = device_->defaultStream().synchronize(); !s)
    return s;
  if (!collectives_)
    collectives_ = std::make_unique<CollectiveQueue>();
  std::vector<MemorySpan> reads, writes;
  stepMemory(step, reads, writes);
  collectives_->submit(run, std::move(reads), std::move(writes));
  // A profile or a trace times each collective whole.
  if (profiling_ || tracing_)
    return collectives_->drain();
  return Status::ok();
}

void Executor::stepMemory(const plan::Step &step, std::vector<MemorySpan> &reads,
                          std::vector<MemorySpan> &writes) const {
  if (step.inputs())
    for (int id : *step.inputs())
      reads.push_back({tensors_[id].data, tensors_[id].bytes()});
  if (step.outputs())
    for (int id : *step.outputs())
      writes.push_back({tensors_[id].data, tensors_[id].bytes()});
}

double Executor::takeCommunicationWait() {
  double waited = communicationWait_;
  communicationWait_ = 0;
  if (collectives_)
    waited += collectives_->takeWaitSeconds();
  return waited;
}

StatusOr<std::optional<size_t>> Executor::markTiming() {
  if (!profiling_ && !tracing_)
    return std::optional<size_t>();
  auto mark = timer_->mark(device_->defaultStream());
  if (!mark)
    return mark.status();
  return std::optional<size_t>(*mark);
}

Status Executor::recordTiming(size_t n, std::optional<size_t> begin) {
  if (!begin)
    return Status::ok();
  auto end = markTiming();
  if (!end)
    return end.status();
  spans_.push_back({n, "", *begin, **end});
  return Status::ok();
}

Status Executor::finishTiming() {
  // Kernels may only have been queued: the marks complete with them.
  if (Status s = timer_->finish(); !s)
    return Status::error("after the run: " + s.message());
  for (const TimedSpan &span : spans_) {
    const PreparedStep &prepared = steps_[span.n];
    std::string name = prepared.step->op()->str();
    if (prepared.group)
      name = prepared.group->op()->str() + "/" + name;
    double start = timer_->secondsAt(span.begin);
    double duration = timer_->secondsAt(span.end) - start;
    if (profiling_ && span.kernel.empty())
      profile_[name] += duration;
    if (tracing_)
      trace_.push_back({prepared.index, name, timer_->hostStart() + start, duration, span.kernel});
  }
  spans_.clear();
  return Status::ok();
}

} // namespace moec::rt
