// Parameters.cpp - the parameters of a plan: initialisation, checkpoints.
#include "runtime/core/Parameters.h"

#include <cmath>
#include <functional>

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

void ParameterStore::forEachCheckpointTensor(
    const std::function<void(const std::string &, const std::vector<int64_t> &,
                             float *)> &visit) const {
  for (const auto &[id, buffer] : buffers_) {
    const plan::Tensor &t = plan_->tensor(id);
    std::vector<int64_t> shape = plan_->describe(id).shape;
    float *data = const_cast<float *>(buffer.data());
    if (t.parts() && t.parts()->size() > 0) {
      // Stacked along dimension 0: one checkpoint tensor per slice.
      std::vector<int64_t> partShape(shape.begin() + 1, shape.end());
      size_t partSize = buffer.size() / t.parts()->size();
      for (unsigned p = 0; p < t.parts()->size(); ++p)
        visit(t.parts()->Get(p)->str(), partShape, data + p * partSize);
    } else {
      visit(t.name()->str(), shape, data);
    }
  }
}

StatusOr<ParameterStore> ParameterStore::create(std::shared_ptr<LoadedPlan> plan) {
  ParameterStore store;
  store.plan_ = plan;
  for (int id = 0; id < plan->numTensors(); ++id) {
    const plan::Tensor &t = plan->tensor(id);
    if (t.role() != plan::TensorRole::parameter)
      continue;
    if (t.dtype() != plan::DType::f32)
      return Status::error(plan->path() + ": parameter '" + t.name()->str() +
                           "' is " + plan::EnumNameDType(t.dtype()) +
                           "; the CPU runtime keeps parameters in f32");
    store.buffers_[id].assign(plan->describe(id).numel(), 0.0f);
  }
  return store;
}

int64_t ParameterStore::count() const {
  int64_t n = 0;
  for (const auto &[id, buffer] : buffers_)
    n += buffer.size();
  return n;
}

void ParameterStore::initialize(uint64_t seed) {
  for (auto &[id, buffer] : buffers_) {
    const plan::Tensor &t = plan_->tensor(id);
    switch (t.init()) {
    case plan::InitKind::ones:
      std::fill(buffer.begin(), buffer.end(), 1.0f);
      break;
    case plan::InitKind::normal: {
      uint64_t key = mix(seed ^ hashName(t.name()->str()));
      for (size_t i = 0; i < buffer.size(); ++i) {
        double u1 = ((mix(key + 2 * i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = ((mix(key + 2 * i + 1) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        buffer[i] = static_cast<float>(z * t.init_std());
      }
      break;
    }
    default:
      std::fill(buffer.begin(), buffer.end(), 0.0f);
    }
  }
}

Status ParameterStore::load(const SafetensorsFile &file) {
  std::string problems;
  int count = 0;
  auto note = [&](const Status &status) {
    if (!status.isOk()) {
      problems += "\n  " + status.message();
      ++count;
    }
  };
  forEachCheckpointTensor([&](const std::string &name,
                              const std::vector<int64_t> &shape, float *data) {
    note(file.readF32(name, shape, data));
  });
  if (count)
    return Status::error(std::to_string(count) + " parameter" + (count > 1 ? "s" : "") +
                         " could not be loaded:" + problems);
  return Status::ok();
}

Status ParameterStore::save(const std::string &path) const {
  std::vector<TensorToSave> tensors;
  forEachCheckpointTensor([&](const std::string &name,
                              const std::vector<int64_t> &shape, float *data) {
    tensors.push_back({name, shape, data});
  });
  return saveSafetensors(path, tensors,
                         {{"format", "pt"}, {"producer", "moec"},
                          {"model", plan_->root().model_name()
                                        ? plan_->root().model_name()->str()
                                        : ""}});
}

} // namespace moec::rt
