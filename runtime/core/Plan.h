// Plan.h - loading and checking a .moeb plan.
#ifndef MOEC_RUNTIME_CORE_PLAN_H
#define MOEC_RUNTIME_CORE_PLAN_H

#include "runtime/core/Status.h"
#include "runtime/core/Tensor.h"
#include "runtime/schema/plan_generated.h"

#include <memory>
#include <string>
#include <vector>

namespace moec::rt {

/// Plan versions this runtime reads (3 marks views on their steps, which
/// older plans left to op names).
constexpr uint32_t kMinPlanVersion = 3;
constexpr uint32_t kMaxPlanVersion = 7;

/// A verified plan and the bytes it lives in.
class LoadedPlan {
public:
  /// Reads and verifies `path`: the FlatBuffers verifier first (a truncated
  /// or corrupted file is an error, never a crash), then the plan's own
  /// invariants (tensor ids, shapes, arena bounds).
  static StatusOr<std::shared_ptr<LoadedPlan>> load(const std::string &path);
  static StatusOr<std::shared_ptr<LoadedPlan>>
  fromBytes(std::vector<uint8_t> bytes, const std::string &name);

  const plan::Plan &root() const { return *root_; }
  const std::string &path() const { return path_; }
  /// FNV-1a of the plan's bytes: ranks compare it to agree on the plan.
  uint64_t contentHash() const;
  /// The number of ranks of the plan's mesh (1 without one).
  int64_t meshRanks() const;
  const plan::Function *function(const std::string &name) const;
  /// Whether the plan carries generated GPU kernels (moec --target=cuda).
  bool hasGpuCode() const;
  /// Whether those kernels carry PTX or a cubin for a GPU, not only their
  /// CUDA sources (moec --kernel-binaries=false, which cuda-emu runs).
  bool hasGpuBinaries() const;
  /// The tensor's dtype and shape, no data.
  TensorRef describe(int tensorId) const;
  const plan::Tensor &tensor(int tensorId) const {
    return *root_->tensors()->Get(tensorId);
  }
  int numTensors() const { return root_->tensors()->size(); }
  /// [batch, seq_len]: the shape of the `tokens` input of `forward`, which
  /// the plan's graphs were compiled for.
  StatusOr<std::pair<int64_t, int64_t>> tokenShape() const;

private:
  std::vector<uint8_t> bytes_;
  const plan::Plan *root_ = nullptr;
  std::string path_;
};

DType toDType(plan::DType dtype);
/// A plan tensor's dtype and shape, no data.
TensorRef describeTensor(const plan::Tensor &tensor);
/// The attribute `name` of `step`, or null.
const plan::Attr *findAttr(const plan::Step &step, const char *name);

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_PLAN_H
