// Hyperparameters.cpp - device buffers for a function's hyperparameter inputs.
#include "runtime/core/Hyperparameters.h"

namespace moec::rt {

StatusOr<std::vector<std::unique_ptr<hal::Buffer>>>
bindHyperparameters(Executor &ex, hal::Device &device,
                    const std::map<std::string, double> &given) {
  const LoadedPlan &plan = ex.plan();
  std::vector<std::unique_ptr<hal::Buffer>> buffers;
  hal::Stream &stream = device.defaultStream();
  for (int id : *ex.function().inputs()) {
    const plan::Tensor &t = plan.tensor(id);
    if (t.role() != plan::TensorRole::hyperparameter)
      continue;
    if (t.dtype() != plan::DType::i64 && t.dtype() != plan::DType::f32)
      return Status::error(plan.path() + ": corrupt plan: hyperparameter '" + t.name()->str() +
                           "' is neither f32 nor i64");
    auto value = given.find(t.name()->str());
    double chosen = value != given.end() ? value->second : t.value();
    int64_t asInt = static_cast<int64_t>(chosen);
    float asFloat = static_cast<float>(chosen);
    bool isInt = t.dtype() == plan::DType::i64;
    const void *bytes = isInt ? static_cast<const void *>(&asInt) : &asFloat;
    auto buffer = device.allocate(isInt ? 8 : 4);
    if (!buffer)
      return buffer.status();
    if (Status s = stream.upload((*buffer)->address(), bytes, (*buffer)->size()); !s)
      return s;
    if (Status s = stream.synchronize(); !s) // `bytes` lives on this stack
      return s;
    ex.bind(id, (*buffer)->address());
    buffers.push_back(std::move(*buffer));
  }
  return buffers;
}

} // namespace moec::rt
