// Parameters.cpp - the parameters and optimizer state of a plan, by name.
#include "runtime/core/Parameters.h"
#include "runtime/core/Random.h"


namespace moec::rt {

namespace {
uint64_t hashName(const std::string &name) {
  uint64_t h = 1469598103934665603ull; // FNV-1a
  for (unsigned char c : name)
    h = (h ^ c) * 1099511628211ull;
  return h;
}
} // namespace

StatusOr<ParameterStore> ParameterStore::create(std::shared_ptr<LoadedPlan> plan,
                                                const std::vector<std::string> &functions) {
  ParameterStore store;
  store.plan_ = plan;
  std::vector<int> ids;
  for (const std::string &name : functions) {
    const plan::Function *function = plan->function(name);
    if (!function)
      return Status::error(plan->path() + ": the plan has no function '" + name + "'");
    if (function->inputs())
      ids.insert(ids.end(), function->inputs()->begin(), function->inputs()->end());
  }
  for (int id : ids) {
    const plan::Tensor &t = plan->tensor(id);
    if (t.role() != plan::TensorRole::parameter && t.role() != plan::TensorRole::state)
      continue;
    std::string name = t.name()->str();
    TensorRef ref = plan->describe(id);
    auto [it, inserted] = store.tensors_.try_emplace(name);
    StoredTensor &stored = it->second;
    if (!inserted) {
      if (stored.shape != ref.shape)
        return Status::error(plan->path() + ": corrupt plan: '" + name +
                             "' has two shapes");
      continue;
    }
    if (t.dtype() != plan::DType::f32)
      return Status::error(plan->path() + ": '" + name + "' is " +
                           plan::EnumNameDType(t.dtype()) +
                           "; the CPU runtime keeps parameters in f32");
    stored.role = t.role();
    stored.shape = ref.shape;
    stored.data.assign(ref.numel(), 0.0f);
    stored.init = t.init();
    stored.initStd = t.init_std();
    stored.trainable = t.trainable();
    if (t.parts())
      for (const flatbuffers::String *part : *t.parts())
        stored.parts.push_back(part->str());
  }
  return store;
}

int64_t ParameterStore::count() const {
  int64_t n = 0;
  for (const auto &[name, t] : tensors_)
    if (t.role == plan::TensorRole::parameter)
      n += t.data.size();
  return n;
}

void ParameterStore::initialize(uint64_t seed) {
  for (auto &[name, t] : tensors_) {
    std::vector<float> &buffer = t.data;
    if (t.role == plan::TensorRole::state || t.init == plan::InitKind::zeros ||
        t.init == plan::InitKind::none) {
      std::fill(buffer.begin(), buffer.end(), 0.0f);
    } else if (t.init == plan::InitKind::ones) {
      std::fill(buffer.begin(), buffer.end(), 1.0f);
    } else {
      uint64_t key = seed ^ hashName(name);
      for (size_t i = 0; i < buffer.size(); ++i)
        buffer[i] = static_cast<float>(normal01(key, i) * t.initStd);
    }
  }
}

void ParameterStore::appendCheckpointTensors(const std::string &name, const float *data,
                                             std::vector<TensorToSave> &out) const {
  const StoredTensor &t = tensors_.at(name);
  if (t.parts.empty()) {
    out.push_back({name, t.shape, data});
    return;
  }
  // Stacked along dimension 0: one checkpoint tensor per slice.
  std::vector<int64_t> partShape(t.shape.begin() + 1, t.shape.end());
  size_t partSize = t.data.size() / t.parts.size();
  for (size_t p = 0; p < t.parts.size(); ++p)
    out.push_back({t.parts[p], partShape, data + p * partSize});
}

std::vector<TensorToSave> ParameterStore::checkpointTensors(bool state) const {
  std::vector<TensorToSave> out;
  for (const auto &[name, t] : tensors_)
    if (state || t.role != plan::TensorRole::state)
      appendCheckpointTensors(name, t.data.data(), out);
  return out;
}

Status ParameterStore::load(const SafetensorsFile &file, bool state) {
  std::string problems;
  int count = 0;
  for (const TensorToSave &t : checkpointTensors(state))
    // The store owns these bytes; checkpointTensors only views them.
    if (Status s = file.readF32(t.name, t.shape, const_cast<float *>(t.data)); !s) {
      problems += "\n  " + s.message();
      ++count;
    }
  if (count)
    return Status::error(std::to_string(count) + " tensor" + (count > 1 ? "s" : "") +
                         " could not be loaded:" + problems);
  return Status::ok();
}

Status ParameterStore::save(const std::string &path, bool state,
                            const std::map<std::string, std::string> &metadata) const {
  std::vector<TensorToSave> tensors = checkpointTensors(state);
  std::map<std::string, std::string> all = {
      {"format", "pt"}, {"producer", "moec"},
      {"model", plan_->root().model_name() ? plan_->root().model_name()->str() : ""}};
  for (const auto &[key, value] : metadata)
    all[key] = value;
  return saveSafetensors(path, tensors, all);
}

} // namespace moec::rt
