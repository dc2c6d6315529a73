// CudaEmuDevice.h - runs a plan's generated CUDA kernels on the host.
#ifndef MOEC_RUNTIME_CUDAEMU_CUDAEMUDEVICE_H
#define MOEC_RUNTIME_CUDAEMU_CUDAEMUDEVICE_H

#include "runtime/cpu/CpuStream.h"
#include "runtime/hal/Device.h"
#include "runtime/hal/HostMemory.h"

namespace moec::rt::cudaemu {

/// For machines without a GPU (CI): host memory and a synchronous stream, as
/// the cpu device, but steps with generated code run it (compiled for the
/// host, see EmuExecutable), so every generated kernel can be checked
/// against the CPU kernels. Steps without generated code (library GEMMs,
/// ops not generated yet) run the CPU op kernels.
class CudaEmuDevice final : public hal::Device {
public:
  /// Registers the CPU op kernels under cuda-emu (once per process).
  static std::unique_ptr<CudaEmuDevice> create();

  hal::DeviceKind kind() const override { return hal::DeviceKind::cudaEmu; }
  std::string description() const override;
  StatusOr<std::unique_ptr<hal::Buffer>> allocate(size_t bytes) override;
  double allocatableBytes() const override { return hal::hostPhysicalMemory(); }
  hal::Stream &defaultStream() override { return stream_; }
  StatusOr<std::unique_ptr<hal::Stream>> createStream() override;
  StatusOr<std::unique_ptr<hal::Event>> createEvent() override;
  bool runsGeneratedCode() const override { return true; }
  StatusOr<std::shared_ptr<hal::Executable>>
  loadExecutable(const std::vector<const plan::Kernel *> &kernels) override;

private:
  CudaEmuDevice() = default;
  cpu::CpuStream stream_;
};

} // namespace moec::rt::cudaemu

#endif // MOEC_RUNTIME_CUDAEMU_CUDAEMUDEVICE_H
