// Kernel.h - what a kernel sees of one plan step, and the registry of kernels.
#ifndef MOEC_RUNTIME_CORE_KERNEL_H
#define MOEC_RUNTIME_CORE_KERNEL_H

#include "runtime/core/Status.h"
#include "runtime/core/Tensor.h"
#include "runtime/hal/DeviceKind.h"
#include "runtime/hal/Stream.h"
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

/// One step's operands, results and attributes, and the stream it runs on.
/// Operand bytes live in the memory of the stream's device.
class StepContext {
public:
  StepContext(const plan::Step &step, hal::Stream &stream, std::vector<TensorRef *> inputs,
              std::vector<TensorRef *> outputs,
              const AttrOverrides *overrides = nullptr)
      : step_(step), stream_(stream), inputs_(std::move(inputs)),
        outputs_(std::move(outputs)), overrides_(overrides) {}

  const std::string op() const { return step_.op()->str(); }
  size_t numInputs() const { return inputs_.size(); }
  TensorRef &in(size_t i) const { return *inputs_[i]; }
  TensorRef &out(size_t i) const { return *outputs_[i]; }
  hal::Stream &stream() const { return stream_; }

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
  hal::Stream &stream_;
  std::vector<TensorRef *> inputs_;
  std::vector<TensorRef *> outputs_;
  const AttrOverrides *overrides_;
};

using Kernel = std::function<Status(const StepContext &)>;

/// The kernels of one device kind, by op name.
class KernelTable {
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

/// Kernels by device kind and op. Each backend fills its table once, when
/// its first device is created (before any lookup of that kind).
class KernelRegistry {
public:
  static KernelRegistry &global();
  KernelTable &table(hal::DeviceKind kind) { return tables_[kind]; }
  const Kernel *find(hal::DeviceKind kind, const std::string &op) const {
    auto it = tables_.find(kind);
    return it == tables_.end() ? nullptr : it->second.find(op);
  }

private:
  std::map<hal::DeviceKind, KernelTable> tables_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_KERNEL_H
