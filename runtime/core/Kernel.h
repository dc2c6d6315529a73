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

/// One step's operands, results and attributes, and the stream it runs on.
/// Operand bytes live in the memory of the stream's device.
class StepContext {
public:
  StepContext(const plan::Step &step, hal::Stream &stream, std::vector<TensorRef *> inputs,
              std::vector<TensorRef *> outputs)
      : step_(step), stream_(stream), inputs_(std::move(inputs)),
        outputs_(std::move(outputs)) {}

  const std::string op() const { return step_.op()->str(); }
  size_t numInputs() const { return inputs_.size(); }
  TensorRef &in(size_t i) const { return *inputs_[i]; }
  TensorRef &out(size_t i) const { return *outputs_[i]; }
  hal::Stream &stream() const { return stream_; }

  /// Attributes. The compiler writes every attribute an op has, defaults
  /// included, so kernels restate no default: an attribute a kernel reads
  /// that the step lacks (a plan from another compiler) reads as zero and is
  /// reported by missingAttribute(), which fails the step. Optional
  /// attributes are read after has(); flag() reads unit attributes too
  /// (absent: false).
  bool has(const char *name) const { return find(name) != nullptr; }
  int64_t i64(const char *name) const;
  double f64(const char *name) const;
  bool flag(const char *name) const;
  std::string str(const char *name) const;
  std::vector<int64_t> ints(const char *name) const;
  std::vector<double> floats(const char *name) const;
  /// The first attribute read that the step lacks, or empty.
  const std::string &missingAttribute() const { return missing_; }

  /// An error naming the step.
  Status error(const std::string &message) const {
    return Status::error(op() + ": " + message);
  }

private:
  const plan::Attr *find(const char *name) const;
  /// find(), remembering a miss.
  const plan::Attr *require(const char *name) const;
  const plan::Step &step_;
  hal::Stream &stream_;
  std::vector<TensorRef *> inputs_;
  std::vector<TensorRef *> outputs_;
  mutable std::string missing_;
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
