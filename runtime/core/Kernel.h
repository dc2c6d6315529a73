// Kernel.h - what a kernel sees of one plan step, and the registry of kernels.
#ifndef MOEC_RUNTIME_CORE_KERNEL_H
#define MOEC_RUNTIME_CORE_KERNEL_H

#include "runtime/core/Status.h"
#include "runtime/core/Tensor.h"
#include "runtime/schema/plan_generated.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace moec::rt {

/// A value that replaces an attribute of every step of one op at run time
/// (hyperparameters given on moe-run's command line).
struct AttrOverride {
  enum Kind { Int, Float, String } kind = Float;
  int64_t i = 0;
  double f = 0;
  std::string s;
};
using AttrOverrides = std::map<std::string, AttrOverride>;

/// One step's operands, results and attributes.
class StepContext {
public:
  StepContext(const plan::Step &step, std::vector<TensorRef *> inputs,
              std::vector<TensorRef *> outputs,
              const AttrOverrides *overrides = nullptr)
      : step_(step), inputs_(std::move(inputs)), outputs_(std::move(outputs)),
        overrides_(overrides) {}

  const std::string op() const { return step_.op()->str(); }
  size_t numInputs() const { return inputs_.size(); }
  TensorRef &in(size_t i) const { return *inputs_[i]; }
  TensorRef &out(size_t i) const { return *outputs_[i]; }

  bool has(const char *name) const { return overridden(name) || find(name); }
  int64_t i64(const char *name, int64_t fallback = 0) const;
  double f64(const char *name, double fallback = 0) const;
  bool flag(const char *name, bool fallback = false) const;
  std::string str(const char *name, const std::string &fallback = "") const;
  std::vector<int64_t> ints(const char *name) const;
  std::vector<double> floats(const char *name) const;

  /// An error naming the step.
  Status error(const std::string &message) const {
    return Status::error(op() + ": " + message);
  }

private:
  const plan::Attr *find(const char *name) const;
  const AttrOverride *overridden(const char *name) const {
    if (!overrides_)
      return nullptr;
    auto it = overrides_->find(name);
    return it == overrides_->end() ? nullptr : &it->second;
  }
  const plan::Step &step_;
  std::vector<TensorRef *> inputs_;
  std::vector<TensorRef *> outputs_;
  const AttrOverrides *overrides_;
};

using Kernel = std::function<Status(const StepContext &)>;

/// Kernels by op name, per device.
class KernelRegistry {
public:
  void add(const std::string &op, Kernel kernel) { kernels_[op] = std::move(kernel); }
  const Kernel *find(const std::string &op) const {
    auto it = kernels_.find(op);
    return it == kernels_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> ops() const;

private:
  std::map<std::string, Kernel> kernels_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_KERNEL_H
