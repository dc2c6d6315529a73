// CpuDevice.h - the host as a device: op-level CPU kernels over host memory.
#ifndef MOEC_RUNTIME_CPU_CPUDEVICE_H
#define MOEC_RUNTIME_CPU_CPUDEVICE_H

#include "runtime/cpu/CpuStream.h"
#include "runtime/hal/Device.h"
#include "runtime/hal/HostMemory.h"

namespace moec::rt::cpu {

class CpuDevice final : public hal::Device {
public:
  /// Registers the CPU kernels (once per process) and returns a device.
  static std::unique_ptr<CpuDevice> create();

  hal::DeviceKind kind() const override { return hal::DeviceKind::cpu; }
  std::string description() const override;
  StatusOr<std::unique_ptr<hal::Buffer>> allocate(size_t bytes) override;
  double allocatableBytes() const override { return hal::hostPhysicalMemory(); }
  hal::Stream &defaultStream() override { return stream_; }
  StatusOr<std::unique_ptr<hal::Stream>> createStream() override;
  StatusOr<std::unique_ptr<hal::Event>> createEvent() override;
  StatusOr<std::shared_ptr<hal::Executable>> loadExecutable(const std::vector<const plan::Kernel *> &kernels) override;

private:
  CpuDevice() = default;
  CpuStream stream_;
};

} // namespace moec::rt::cpu

#endif // MOEC_RUNTIME_CPU_CPUDEVICE_H
