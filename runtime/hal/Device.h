// Device.h - one device the runtime executes plans on: memory, streams,
// executables and the ops it has kernels for.
#ifndef MOEC_RUNTIME_HAL_DEVICE_H
#define MOEC_RUNTIME_HAL_DEVICE_H

#include "runtime/core/Kernel.h"
#include "runtime/hal/Buffer.h"
#include "runtime/hal/DeviceKind.h"
#include "runtime/hal/Event.h"
#include "runtime/hal/Executable.h"
#include "runtime/hal/MemoryUsage.h"
#include "runtime/hal/Stream.h"

#include <memory>
#include <string>
#include <vector>

namespace moec::plan {
struct Kernel;
}

namespace moec::rt::hal {

/// The executor and the trainer see a device only through this interface
/// (and the Buffer, Stream, Event and Executable it hands out), so nothing
/// above it assumes host memory. Each backend (cpu, cuda, cuda-emu)
/// implements it once and registers its op kernels under its kind.
class Device {
public:
  virtual ~Device() = default;

  virtual DeviceKind kind() const = 0;
  /// For messages and logs: "cpu (2 threads)", "cuda:0 (NVIDIA H200, sm_90)".
  virtual std::string description() const = 0;

  /// `bytes` of zeroed memory, 64-byte aligned at least.
  virtual StatusOr<std::unique_ptr<Buffer>> allocate(size_t bytes) = 0;
  /// What a run may still allocate here, for the check before it does
  /// (moe-run): the machine's physical memory for the host devices, the
  /// GPU's free memory for cuda. 0: not known.
  virtual double allocatableBytes() const = 0;
  /// The stream the executor queues steps on.
  virtual Stream &defaultStream() = 0;
  virtual StatusOr<std::unique_ptr<Stream>> createStream() = 0;
  virtual StatusOr<std::unique_ptr<Event>> createEvent() = 0;
  /// Whether steps with generated code (plan kernels) run it here; devices
  /// that do not run every step with their op kernels.
  virtual bool runsGeneratedCode() const { return false; }
  /// Loads generated kernels of a plan as one executable; devices may hand
  /// the same one to every caller that asks for the same kernels.
  virtual StatusOr<std::shared_ptr<Executable>>
  loadExecutable(const std::vector<const plan::Kernel *> &kernels) = 0;

  /// The bytes of the buffers allocated here (live and at most so far).
  const MemoryUsage &memoryUsage() const { return *memoryUsage_; }

  /// The kernel of `op` on this device, or null when it has none.
  const Kernel *findKernel(const std::string &op) const {
    return KernelRegistry::global().find(kind(), op);
  }
  bool supportsOp(const std::string &op) const { return findKernel(op) != nullptr; }

protected:
  /// What allocate() returns: `buffer`, counted in memoryUsage().
  std::unique_ptr<Buffer> tracked(std::unique_ptr<Buffer> buffer) {
    return MemoryUsage::track(memoryUsage_, std::move(buffer));
  }

private:
  std::shared_ptr<MemoryUsage> memoryUsage_ = std::make_shared<MemoryUsage>();
};

} // namespace moec::rt::hal

#endif // MOEC_RUNTIME_HAL_DEVICE_H
