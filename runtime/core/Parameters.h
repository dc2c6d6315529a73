// Parameters.h - the parameters of a plan: initialisation, checkpoints.
#ifndef MOEC_RUNTIME_CORE_PARAMETERS_H
#define MOEC_RUNTIME_CORE_PARAMETERS_H

#include "runtime/core/Plan.h"
#include "runtime/core/Safetensors.h"

#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace moec::rt {

class ParameterStore {
public:
  /// One f32 buffer per parameter tensor of `plan`.
  static StatusOr<ParameterStore> create(std::shared_ptr<LoadedPlan> plan);

  /// As the plan says: normal(0, std), zeros or ones; deterministic in
  /// `seed` and each parameter's name.
  void initialize(uint64_t seed);
  /// Reads every parameter from a checkpoint, joining per-expert parts;
  /// reports every missing or mis-shaped tensor at once.
  Status load(const SafetensorsFile &file);
  /// Writes every parameter under its checkpoint names (per-expert parts
  /// separately), atomically.
  Status save(const std::string &path) const;

  const std::map<int, std::vector<float>> &buffers() const { return buffers_; }
  float *data(int tensorId) { return buffers_.at(tensorId).data(); }
  int64_t count() const;

private:
  /// Every tensor as a checkpoint stores it: name, shape, bytes.
  void forEachCheckpointTensor(
      const std::function<void(const std::string &, const std::vector<int64_t> &,
                               float *)> &visit) const;

  std::shared_ptr<LoadedPlan> plan_;
  std::map<int, std::vector<float>> buffers_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_PARAMETERS_H
