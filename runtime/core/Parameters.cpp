// Parameters.cpp - the parameters and optimizer state of a plan, by name.
#include "runtime/core/Parameters.h"

#include <cmath>

namespace moec::rt {

namespace {
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
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
      uint64_t key = mix(seed ^ hashName(name));
      for (size_t i = 0; i < buffer.size(); ++i) {
        double u1 = ((mix(key + 2 * i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = ((mix(key + 2 * i + 1) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        buffer[i] = static_cast<float>(z * t.initStd);
      }
    }
  }
}

void ParameterStore::forEachCheckpointTensor(
    bool state,
    const std::function<void(const std::string &, const std::vector<int64_t> &,
                             float *)> &visit) const {
  for (const auto &[name, t] : tensors_) {
    if (t.role == plan::TensorRole::state && !state)
      continue;
    float *data = const_cast<float *>(t.data.data());
    if (!t.parts.empty()) {
      // Stacked along dimension 0: one checkpoint tensor per slice.
      std::vector<int64_t> partShape(t.shape.begin() + 1, t.shape.end());
      size_t partSize = t.data.size() / t.parts.size();
      for (size_t p = 0; p < t.parts.size(); ++p)
        visit(t.parts[p], partShape, data + p * partSize);
    } else {
      visit(name, t.shape, data);
    }
  }
}

Status ParameterStore::load(const SafetensorsFile &file, bool state) {
  std::string problems;
  int count = 0;
  forEachCheckpointTensor(state, [&](const std::string &name,
                                     const std::vector<int64_t> &shape, float *data) {
    if (Status s = file.readF32(name, shape, data); !s) {
      problems += "\n  " + s.message();
      ++count;
    }
  });
  if (count)
    return Status::error(std::to_string(count) + " tensor" + (count > 1 ? "s" : "") +
                         " could not be loaded:" + problems);
  return Status::ok();
}

Status ParameterStore::save(const std::string &path, bool state,
                            const std::map<std::string, std::string> &metadata) const {
  std::vector<TensorToSave> tensors;
  forEachCheckpointTensor(state, [&](const std::string &name,
                                     const std::vector<int64_t> &shape, float *data) {
    tensors.push_back({name, shape, data});
  });
  std::map<std::string, std::string> all = {
      {"format", "pt"}, {"producer", "moec"},
      {"model", plan_->root().model_name() ? plan_->root().model_name()->str() : ""}};
  for (const auto &[key, value] : metadata)
    all[key] = value;
  return saveSafetensors(path, tensors, all);
}

} // namespace moec::rt
