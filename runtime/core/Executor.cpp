// Executor.cpp - runs one function of a plan, step by step, over an arena.
#include "runtime/core/Executor.h"

#include <chrono>
#include <cstdint>
#include <cstring>

namespace moec::rt {

StatusOr<std::unique_ptr<Executor>> Executor::create(std::shared_ptr<LoadedPlan> plan,
                                                     const std::string &function,
                                                     const KernelRegistry &kernels) {
  std::unique_ptr<Executor> ex(new Executor());
  ex->plan_ = plan;
  ex->function_ = plan->function(function);
  if (!ex->function_)
    return Status::error(plan->path() + ": the plan has no function '" + function + "'");

  int buffer = ex->function_->buffer();
  if (buffer >= 0) {
    ex->arenaSize_ = plan->root().buffers()->Get(buffer)->size();
    // 64-byte aligned, zeroed once.
    ex->arenaStorage_.reset(new uint8_t[ex->arenaSize_ + 64]());
  }
  uint8_t *arena = ex->arenaStorage_.get();
  if (arena)
    arena += (64 - reinterpret_cast<uintptr_t>(arena) % 64) % 64;

  for (int id = 0; id < plan->numTensors(); ++id) {
    TensorRef ref = plan->describe(id);
    const plan::Tensor &t = plan->tensor(id);
    if (t.buffer() >= 0 && t.buffer() == buffer)
      ref.data = arena + t.offset();
    ex->tensors_.push_back(ref);
  }

  if (ex->function_->steps())
    for (unsigned i = 0; i < ex->function_->steps()->size(); ++i) {
      const plan::Step *step = ex->function_->steps()->Get(i);
      const Kernel *kernel = kernels.find(step->op()->str());
      if (!kernel)
        return Status::error(plan->path() + ": step " + std::to_string(i) +
                             " runs '" + step->op()->str() +
                             "', which this runtime has no kernel for");
      bool view = step->op()->str() == "tensor.expand_shape" ||
                  step->op()->str() == "tensor.collapse_shape";
      bool viewOfArgument = view && step->outputs() && step->outputs()->size() == 1 &&
                            plan->tensor(step->outputs()->Get(0)).buffer() < 0;
      ex->steps_.push_back({step, kernel, viewOfArgument});
    }
  return ex;
}

bool Executor::bind(const std::string &name, void *data) {
  bool bound = false;
  if (function_->inputs())
    for (int id : *function_->inputs())
      if (plan_->tensor(id).name()->str() == name) {
        tensors_[id].data = data;
        bound = true;
      }
  return bound;
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

Status Executor::run() {
  for (size_t i = 0; i < steps_.size(); ++i) {
    const PreparedStep &prepared = steps_[i];
    const plan::Step &step = *prepared.step;
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
    if (prepared.viewOfArgument)
      outputs[0]->data = inputs[0]->data;
    auto overrides = overrides_.find(step.op()->str());
    StepContext context(step, std::move(inputs), std::move(outputs),
                        overrides == overrides_.end() ? nullptr : &overrides->second);
    auto start = std::chrono::steady_clock::now();
    if (Status status = (*prepared.kernel)(context); !status)
      return Status::error("step " + std::to_string(i) + ": " + status.message());
    if (profiling_ || tracing_) {
      auto end = std::chrono::steady_clock::now();
      double duration = std::chrono::duration<double>(end - start).count();
      if (profiling_)
        profile_[step.op()->str()] += duration;
      if (tracing_)
        trace_.push_back({static_cast<int>(i),
                          std::chrono::duration<double>(start.time_since_epoch()).count(),
                          duration});
    }
  }
  return Status::ok();
}

} // namespace moec::rt
