// Parameters.cpp - the parameters and optimizer state of a plan, by name.
#include "runtime/core/Parameters.h"
#include "runtime/core/Hash.h"
#include "runtime/core/MeshGroups.h"
#include "runtime/core/Random.h"

#include <algorithm>
#include <cmath>

namespace moec::rt {

StatusOr<ParameterStore> ParameterStore::create(std::shared_ptr<LoadedPlan> plan,
                                                const std::vector<std::string> &functions,
                                                hal::Device &device, hal::Channel *channel) {
  ParameterStore store;
  store.plan_ = plan;
  store.device_ = &device;
  store.channel_ = channel;
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
                           "; the runtime keeps parameters and state in f32");
    stored.role = t.role();
    stored.shape = ref.shape;
    stored.numel = ref.numel();
    auto buffer = device.allocate(stored.numel * sizeof(float));
    if (!buffer)
      return Status::error("'" + name + "': " + buffer.status().message());
    stored.buffer = std::move(*buffer);
    stored.init = t.init();
    stored.initStd = t.init_std();
    stored.initHigh = t.init_high();
    stored.trainable = t.trainable();
    if (t.parts())
      for (const flatbuffers::String *part : *t.parts())
        stored.parts.push_back(part->str());
    if (t.shard_axes() && t.shard_axes()->size()) {
      const plan::Mesh *mesh = plan->root().mesh();
      if (!mesh)
        return Status::error(plan->path() + ": corrupt plan: '" + name +
                             "' is split over the ranks of a mesh the plan does not have");
      if (!channel)
        return Status::error(plan->path() + ": '" + name +
                             "' is split over the ranks of the plan's mesh; run it on them");
      auto group = meshGroup(*channel, *mesh,
                             std::vector<int64_t>(t.shard_axes()->begin(), t.shard_axes()->end()));
      if (!group)
        return Status::error(plan->path() + ": '" + name + "': " + group.status().message());
      stored.group = *group;
      stored.shards = stored.group->size();
      stored.shard = stored.group->rank();
    }
  }
  return store;
}

int64_t ParameterStore::count() const {
  int64_t n = 0;
  for (const auto &[name, t] : tensors_)
    if (t.role == plan::TensorRole::parameter)
      n += t.numel;
  return n;
}

size_t ParameterStore::bytes() const {
  size_t n = 0;
  for (const auto &[name, t] : tensors_)
    n += t.buffer->size();
  return n;
}

StatusOr<const float *> ParameterStore::hostValues(const StoredTensor &t,
                                                  std::vector<float> &staging) const {
  if (t.buffer->hostVisible())
    return static_cast<const float *>(t.buffer->address());
  staging.resize(t.numel);
  hal::Stream &stream = device_->defaultStream();
  if (Status s = stream.download(staging.data(), t.buffer->address(), t.buffer->size()); !s)
    return s;
  if (Status s = stream.synchronize(); !s)
    return s;
  return static_cast<const float *>(staging.data());
}

template <typename Fill> Status ParameterStore::fillFromHost(StoredTensor &t, Fill fill) {
  if (t.buffer->hostVisible())
    return fill(static_cast<float *>(t.buffer->address()));
  std::vector<float> staging(t.numel);
  if (Status s = fill(staging.data()); !s)
    return s;
  hal::Stream &stream = device_->defaultStream();
  if (Status s = stream.upload(t.buffer->address(), staging.data(), t.buffer->size()); !s)
    return s;
  return stream.synchronize();
}

Status ParameterStore::initialize(uint64_t seed) {
  for (auto &[name, t] : tensors_) {
    Status s = fillFromHost(t, [&, &name = name, &t = t](float *values) {
      if (t.role == plan::TensorRole::state || t.init == plan::InitKind::zeros ||
          t.init == plan::InitKind::none) {
        std::fill(values, values + t.numel, 0.0f);
      } else if (t.init == plan::InitKind::ones) {
        std::fill(values, values + t.numel, 1.0f);
      } else {
        // Keyed by the element's index in the whole tensor: a rank's slice
        // holds the values one rank draws for it.
        uint64_t key = seed ^ fnv1a64(name);
        const int64_t first = t.shard * t.numel;
        bool logUniform = t.init == plan::InitKind::log_uniform;
        if (logUniform && !(t.initHigh > 0))
          return Status::error("a log_uniform initialisation needs init_high above 0, but it is " +
                               std::to_string(t.initHigh));
        for (int64_t i = 0; i < t.numel; ++i)
          values[i] =
              static_cast<float>(logUniform ? std::log(uniform01(key, first + i) * t.initHigh)
                                            : normal01(key, first + i) * t.initStd);
      }
      return Status::ok();
    });
    if (!s)
      return Status::error("initialising '" + name + "': " + s.message());
  }
  return Status::ok();
}

void ParameterStore::appendCheckpointTensors(const std::string &name, const float *data,
                                             std::vector<TensorToSave> &out) const {
  const StoredTensor &t = tensors_.at(name);
  std::vector<int64_t> shape = t.wholeShape();
  if (t.parts.empty()) {
    out.push_back({name, shape, data});
    return;
  }
  // Stacked along dimension 0: one checkpoint tensor per slice.
  std::vector<int64_t> partShape(shape.begin() + 1, shape.end());
  size_t partSize = t.numel * t.shards / t.parts.size();
  for (size_t p = 0; p < t.parts.size(); ++p)
    out.push_back({t.parts[p], partShape, data + p * partSize});
}

Status ParameterStore::load(const SafetensorsFile &file, bool state) {
  std::string problems;
  int count = 0;
  for (auto &[name, t] : tensors_) {
    if (!state && t.role == plan::TensorRole::state)
      continue;
    Status s = fillFromHost(t, [&, &name = name, &t = t](float *values) {
      // A sharded tensor: the whole one, of which this rank keeps its slice.
      std::vector<float> whole(t.shards > 1 ? t.numel * t.shards : 0);
      float *target = t.shards > 1 ? whole.data() : values;
      std::vector<TensorToSave> parts;
      appendCheckpointTensors(name, target, parts);
      for (const TensorToSave &part : parts)
        // `values` is writable host memory; TensorToSave only views it.
        if (Status s = file.readF32(part.name, part.shape, const_cast<float *>(part.data)); !s) {
          problems += "\n  " + s.message();
          ++count;
        }
      if (t.shards > 1)
        std::copy_n(whole.data() + t.shard * t.numel, t.numel, values);
      return Status::ok();
    });
    if (!s)
      return Status::error("loading '" + name + "': " + s.message());
  }
  if (count)
    return Status::error(std::to_string(count) + " tensor" + (count > 1 ? "s" : "") +
                         " could not be loaded:" + problems);
  return Status::ok();
}

StatusOr<const float *> ParameterStore::wholeValues(const std::string &name, const float *local,
                                                    std::vector<float> &whole) const {
  const StoredTensor &t = tensors_.at(name);
  if (t.shards <= 1)
    return local;
  // Every rank's slice, in rank order (every rank of the group takes part).
  whole.resize(t.numel * t.shards);
  if (Status s = t.group->allGatherHost(local, t.numel * sizeof(float), whole.data()); !s)
    return s;
  return static_cast<const float *>(whole.data());
}

Status ParameterStore::save(const std::string &path, bool state,
                            const std::map<std::string, std::string> &metadata) const {
  std::vector<TensorToSave> tensors;
  std::map<std::string, std::vector<float>> staging; // for device memory
  std::map<std::string, std::vector<float>> gathered; // sharded tensors, whole
  for (const auto &[name, t] : tensors_) {
    if (!state && t.role == plan::TensorRole::state)
      continue;
    auto values = hostValues(t, staging[name]);
    if (!values)
      return Status::error("saving '" + name + "': " + values.status().message());
    auto whole = wholeValues(name, *values, gathered[name]);
    if (!whole)
      return Status::error("saving '" + name + "': " + whole.status().message());
    appendCheckpointTensors(name, *whole, tensors);
  }
  if (channel_ && channel_->rank() != 0)
    return Status::ok(); // rank 0 writes
  // A checkpoint is something to go back to: a diverged run's NaN or Inf is
  // not saved (nor does it replace the last good checkpoint).
  for (const TensorToSave &t : tensors) {
    size_t n = 1;
    for (int64_t extent : t.shape)
      n *= static_cast<size_t>(extent);
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(t.data[i]))
        return Status::error(path + ": not saved: '" + t.name + "' holds " +
                             (std::isnan(t.data[i]) ? "NaN" : "an infinity") +
                             "; the run has diverged");
  }
  std::map<std::string, std::string> all = {
      {"format", "pt"}, {"producer", "moec"},
      {"model", plan_->root().model_name() ? plan_->root().model_name()->str() : ""}};
  for (const auto &[key, value] : metadata)
    all[key] = value;
  return saveSafetensors(path, tensors, all);
}

} // namespace moec::rt
