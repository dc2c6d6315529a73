// Parameters.h - the parameters and optimizer state of a plan, by name:
// initialisation, checkpoints.
#ifndef MOEC_RUNTIME_CORE_PARAMETERS_H
#define MOEC_RUNTIME_CORE_PARAMETERS_H

#include "runtime/core/Plan.h"
#include "runtime/core/Safetensors.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moec::rt {

struct StoredTensor {
  plan::TensorRole role = plan::TensorRole::parameter;
  std::vector<int64_t> shape;
  std::vector<float> data;
  plan::InitKind init = plan::InitKind::zeros;
  float initStd = 0;
  bool trainable = true;
  std::vector<std::string> parts; // checkpoint names of dimension-0 slices
};

class ParameterStore {
public:
  /// One f32 buffer per distinct parameter and state name among the inputs
  /// of `functions` (the functions of a plan share them by name).
  static StatusOr<ParameterStore> create(std::shared_ptr<LoadedPlan> plan,
                                         const std::vector<std::string> &functions);

  /// Parameters as the plan says (normal(0, std), zeros or ones),
  /// deterministic in `seed` and each name; state to zeros.
  void initialize(uint64_t seed);
  /// Reads every parameter (joining per-expert parts) and, when `state`, every
  /// state tensor; reports every missing or mis-shaped tensor at once.
  Status load(const SafetensorsFile &file, bool state);
  /// Writes the parameters under their checkpoint names and, when `state`,
  /// the state, atomically.
  Status save(const std::string &path, bool state,
              const std::map<std::string, std::string> &metadata = {}) const;

  std::map<std::string, StoredTensor> &tensors() { return tensors_; }
  const std::map<std::string, StoredTensor> &tensors() const { return tensors_; }
  /// Number of parameter elements (state excluded).
  int64_t count() const;

  /// Tensor `name` as a checkpoint stores it (one slice per expert when it
  /// has parts), with its bytes taken from `data`: the tensor itself or
  /// anything of its layout, such as its gradient.
  void appendCheckpointTensors(const std::string &name, const float *data,
                               std::vector<TensorToSave> &out) const;

private:
  /// Every parameter (and, with `state`, state tensor) as checkpoints store them.
  std::vector<TensorToSave> checkpointTensors(bool state) const;

  std::shared_ptr<LoadedPlan> plan_;
  std::map<std::string, StoredTensor> tensors_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_PARAMETERS_H
