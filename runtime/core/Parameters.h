// Parameters.h - the parameters and optimizer state of a plan, by name, in a
// device's memory: initialisation, checkpoints.
#ifndef MOEC_RUNTIME_CORE_PARAMETERS_H
#define MOEC_RUNTIME_CORE_PARAMETERS_H

#include "runtime/core/Plan.h"
#include "runtime/core/Safetensors.h"
#include "runtime/hal/Channel.h"
#include "runtime/hal/Device.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moec::rt {

struct StoredTensor {
  plan::TensorRole role = plan::TensorRole::parameter;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  std::unique_ptr<hal::Buffer> buffer; // numel f32 values on the store's device
  plan::InitKind init = plan::InitKind::zeros;
  float initStd = 0;
  float initHigh = 0; // log_uniform: log(U(0, initHigh])
  bool trainable = true;
  std::vector<std::string> parts; // checkpoint names of dimension-0 slices
  /// Ranks that each hold one slice of dimension 0 (experts under moec
  /// --mesh ep=E, optimizer state under --zero=1): `shape` is this rank's
  /// slice, slice `shard` of `shards`; checkpoints hold all of them.
  int64_t shards = 1, shard = 0;
  hal::Channel *group = nullptr; // the ranks holding the slices
  /// The shape checkpoints hold: `shape` with dimension 0 times `shards`.
  std::vector<int64_t> wholeShape() const {
    std::vector<int64_t> whole = shape;
    if (!whole.empty())
      whole[0] *= shards;
    return whole;
  }
};

class ParameterStore {
public:
  /// One f32 buffer on `device` per distinct parameter and state name among
  /// the inputs of `functions` (the functions of a plan share them by name).
  /// Tensors the plan shards over the ranks of its mesh hold this rank's
  /// slice; `channel` (the run's ranks; null: one rank) gathers and slices
  /// them for checkpoints. The device and the channel outlive the store.
  static StatusOr<ParameterStore> create(std::shared_ptr<LoadedPlan> plan,
                                         const std::vector<std::string> &functions,
                                         hal::Device &device, hal::Channel *channel = nullptr);

  /// Parameters as the plan says (normal(0, std), zeros or ones),
  /// deterministic in `seed` and each name; state to zeros.
  Status initialize(uint64_t seed);
  /// Reads every parameter (joining per-expert parts) and, when `state`, every
  /// state tensor (this rank's slice of a sharded one); reports every missing
  /// or mis-shaped tensor at once.
  Status load(const SafetensorsFile &file, bool state);
  /// Writes the parameters under their checkpoint names and, when `state`,
  /// the state, atomically. With sharded tensors every rank calls it (the
  /// slices are gathered) and rank 0 writes.
  Status save(const std::string &path, bool state,
              const std::map<std::string, std::string> &metadata = {}) const;

  std::map<std::string, StoredTensor> &tensors() { return tensors_; }
  const std::map<std::string, StoredTensor> &tensors() const { return tensors_; }
  /// Number of parameter elements (state excluded).
  int64_t count() const;
  /// Bytes of device memory the store holds.
  size_t bytes() const;

  /// Tensor `name` as a checkpoint stores it (one slice per expert when it
  /// has parts), with its bytes taken from host memory `data`: a copy of the
  /// whole tensor (all ranks' slices of a sharded one) or anything of its
  /// layout, such as its gradient.
  void appendCheckpointTensors(const std::string &name, const float *data,
                               std::vector<TensorToSave> &out) const;
  /// Tensor `name`'s values of this rank, `local`, made whole: `local` itself,
  /// or, for a sharded tensor, every rank's slice gathered into `whole`
  /// (every rank of its group must call it).
  StatusOr<const float *> wholeValues(const std::string &name, const float *local,
                                      std::vector<float> &whole) const;

private:
  /// The values of `t` on the host: its own memory when the device's is
  /// host-visible, else a copy downloaded into `staging`.
  StatusOr<const float *> hostValues(const StoredTensor &t, std::vector<float> &staging) const;
  /// Fills `t` by `fill(values)` on host memory, then uploads where needed.
  template <typename Fill> Status fillFromHost(StoredTensor &t, Fill fill);

  std::shared_ptr<LoadedPlan> plan_;
  hal::Device *device_ = nullptr;
  hal::Channel *channel_ = nullptr;
  std::map<std::string, StoredTensor> tensors_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_PARAMETERS_H
